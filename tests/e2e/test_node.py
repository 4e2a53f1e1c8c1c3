"""The Node driver, mongoose and mongosh through the real mongogate binary.

The clients live in tests/e2e/node (package-lock.json pins them); `npm ci` runs on first
use, serialized by a file lock so parallel ctest runs do not race.
Run: MONGOGATE_BIN=build/proxy/mongogate /usr/bin/python3 -m unittest -v test_node
"""

from __future__ import annotations

import shutil
import tempfile

import harness
from harness import (DIRECT_MODE, NODE_DIR, NODE_QUIET_ENV, E2ETestCase, commands_named, hello_driver_names,
                     run_node_script)

DB = "e2e_node"
RUN_TIMEOUT = 120


class NodeClientsThroughProxy(E2ETestCase):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        harness.ensure_node_modules()
        cls.node = shutil.which("node")
        if cls.node is None:
            raise RuntimeError("node is not on PATH")
        cls.upstream = cls.start_upstream("main")
        cls.proxy = cls.start_proxy(cls.upstream)
        host, port = cls.client_address(cls.proxy, cls.upstream)
        cls.base_uri = f"mongodb://{host}:{port}"
        # mongosh writes config and logs under $HOME; keep them out of the real one.
        cls.home = tempfile.mkdtemp(prefix="mongogate-e2e-home-", dir=cls.workdir)

    def run_client(self, args: list[str], collection: str, uri: str) -> dict:
        summary, output = run_node_script(
            args, {"MONGODB_URI": uri, "E2E_DB": DB, "E2E_COLLECTION": collection, "HOME": self.home,
                   **NODE_QUIET_ENV}, RUN_TIMEOUT)
        self.assertIsNotNone(summary, output)
        self.assertTrue(summary.get("ok"), output)
        return summary

    def assert_no_client_hello_forwarded(self, records: list[dict]) -> None:
        if DIRECT_MODE:
            return
        names = hello_driver_names(records)
        leaked = [n for n in names if n not in ("mongogate", "")]
        self.assertEqual(leaked, [], "client hello metadata reached the upstream")

    def assert_commands_arrived(self, records: list[dict], collection: str,
                                names: list[str]) -> None:
        for name in names:
            with self.subTest(command=name):
                self.assertTrue(commands_named(records, name, collection=collection, db=DB),
                                f"no {name} on {DB}.{collection} reached the upstream")

    def test_node_driver_crud(self):
        coll = "node_crud"
        self.upstream.clear_recorded()
        self.run_client([self.node, "crud.mjs"], coll, f"{self.base_uri}/")
        records = self.upstream.recorded()
        self.assert_commands_arrived(records, coll, ["insert", "find", "getMore", "update",
                                                     "aggregate", "delete"])
        self.assert_no_client_hello_forwarded(records)
        docs = self.upstream.find_all(DB, coll)
        self.assertEqual(len(docs), 21)
        self.assertEqual(next(d for d in docs if d["_id"] == "first")["tags"], ["a", "b"])

    def test_mongoose_model(self):
        coll = "mongoose_products"
        self.upstream.clear_recorded()
        self.run_client([self.node, "mongoose.mjs"], coll, f"{self.base_uri}/")
        records = self.upstream.recorded()
        self.assert_commands_arrived(records, coll, ["insert", "find", "update", "aggregate",
                                                     "delete"])
        self.assert_no_client_hello_forwarded(records)
        docs = sorted(self.upstream.find_all(DB, coll), key=lambda d: d["sku"])
        self.assertEqual([(d["sku"], d["price"], d["stock"]) for d in docs],
                         [("B-2", 6, 7), ("C-3", 12, 4)])

    def test_mongosh_script(self):
        coll = "mongosh_crud"
        self.upstream.clear_recorded()
        mongosh = str(NODE_DIR / "node_modules" / ".bin" / "mongosh")
        self.run_client([mongosh, f"{self.base_uri}/{DB}", "--quiet", "--norc",
                         "--file", "crud_mongosh.js"], coll, f"{self.base_uri}/{DB}")
        records = self.upstream.recorded()
        self.assert_commands_arrived(records, coll, ["insert", "find", "getMore", "update",
                                                     "aggregate", "delete"])
        self.assert_no_client_hello_forwarded(records)
        self.assertEqual(len(self.upstream.find_all(DB, coll)), 16)


if __name__ == "__main__":
    harness.main()
