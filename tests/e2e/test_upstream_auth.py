"""SCRAM authentication from mongogate to its upstream, with the credentials of the
upstream's connection string, against a mock upstream that checks them (--user).

What is proven (the real binary; the mock's own record of what it received):
  * right password: CRUD works; every pooled connection mongogate opened ran exactly one
    saslStart (SCRAM-SHA-256, negotiated through hello's saslSupportedMechs as drivers
    do) before any other command, and no command ran on an unauthenticated connection;
  * authMechanism=SCRAM-SHA-1 in the URI is used as given;
  * wrong password: a clear error in the log at start, /readyz 503 with main_reachable
    false and the reason, a client error that says authentication failed — and the
    password appears in none of them, nor does the upstream's address in the client's.
"""
from __future__ import annotations

import json
import threading
import unittest

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from harness import (MAIN_DB, E2ETestCase, client_for, commands_named, file_registry_config, hello_driver_names,
                     is_hello, refused_insert_error, wait_until)

USER = "proxyuser"
PASSWORD = "Pa55-w0rd-never-shown"
WRONG = "Wr0ng-pa55-never-shown"


class UpstreamScramTest(E2ETestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.upstream = cls.start_upstream("main", extra_args=["--user", f"{USER}:{PASSWORD}"])
        cls.registry_file = cls.write_registry_file([])

    def setUp(self) -> None:
        super().setUp()
        self.require_proxy()

    def start(self, password: str, options: str = ""):
        uri = (f"mongodb://{USER}:{password}@127.0.0.1:{self.upstream.port}/{MAIN_DB}"
               f"?authSource=admin&maxPoolSize=4{options}")
        config = file_registry_config(uri, self.registry_file, threads=1, pool={"reconnect_backoff_max_ms": 200})
        proxy = self.start_configured_proxy(config, admin=True)
        self.addCleanup(self.stop_proxy, proxy)
        return proxy

    def direct_count(self, collection: str) -> int:
        """Documents upstream, read by pymongo authenticating itself (not through mongogate)."""
        client = MongoClient(f"mongodb://{USER}:{PASSWORD}@127.0.0.1:{self.upstream.port}/?authSource=admin",
                             directConnection=True, serverSelectionTimeoutMS=10000)
        try:
            return client[MAIN_DB][collection].count_documents({})
        finally:
            client.close()

    def mongogate_connections(self, records: list[dict]) -> set:
        return {r["connection_id"] for r in records
                if is_hello(r) and hello_driver_names([r]) == ["mongogate"]}

    def test_right_password_authenticates_every_pooled_connection(self):
        self.upstream.clear_recorded()
        proxy = self.start(PASSWORD)
        errors: list = []

        def work(n: int) -> None:
            client = client_for(proxy.port)
            try:
                for i in range(15):
                    client[MAIN_DB].scram_ok.insert_one({"worker": n, "i": i})
            except PyMongoError as e:  # pragma: no cover - reported below
                errors.append(repr(e))
            finally:
                client.close()
        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(self.direct_count("scram_ok"), 8 * 15)

        records = self.upstream.recorded()
        connections = self.mongogate_connections(records)
        self.assertGreaterEqual(len(connections), 1)
        self.assertLessEqual(len(connections), 4)
        for connection in connections:
            mine = [r for r in records if r["connection_id"] == connection]
            names = [r["command"] for r in mine]
            self.assertEqual(names.count("saslStart"), 1, names)
            # hello, then the SCRAM conversation, then anything else.
            self.assertEqual(names[0].lower(), "hello", names)
            self.assertEqual(names[1], "saslStart", names)
            self.assertEqual(names[2], "saslContinue", names)
            start = mine[1]
            self.assertEqual(start["body"]["mechanism"], "SCRAM-SHA-256")
            self.assertEqual(start["db"], "admin")
            self.assertEqual(mine[0]["body"].get("saslSupportedMechs"), f"admin.{USER}")
        inserts = commands_named(records, "insert", "scram_ok")
        self.assertEqual(len(inserts), 8 * 15)
        self.assertTrue(all(r["connection_id"] in connections for r in inserts))
        self.assertNotIn(PASSWORD, proxy.log())
        status, _, body = proxy.admin_request("GET", "/readyz")
        self.assertEqual(status, 200, body)

    def test_mechanism_given_in_the_uri_is_used(self):
        self.upstream.clear_recorded()
        proxy = self.start(PASSWORD, "&authMechanism=SCRAM-SHA-1")
        client = client_for(proxy.port)
        try:
            client[MAIN_DB].scram_sha1.insert_one({"x": 1})
        finally:
            client.close()
        records = self.upstream.recorded()
        starts = [r for r in records if r["command"] == "saslStart"
                  and r["connection_id"] in self.mongogate_connections(records)]
        self.assertTrue(starts)
        self.assertTrue(all(r["body"]["mechanism"] == "SCRAM-SHA-1" for r in starts), starts)
        self.assertEqual(self.direct_count("scram_sha1"), 1)

    def test_wrong_password_is_a_clear_error_at_start_on_readyz_and_for_clients(self):
        proxy = self.start(WRONG)
        line = proxy.wait_for_log(r"upstream main .*cannot open a connection: authentication with "
                                  r"SCRAM-SHA-256 failed: Authentication failed", timeout=10)
        self.assertNotIn(WRONG, line)

        def not_ready():
            status, _, body = proxy.admin_request("GET", "/readyz")
            reply = json.loads(body)
            return status == 503 and reply["checks"]["main_reachable"] is False and \
                "authentication with SCRAM-SHA-256 failed" in reply["error"] and reply
        reply = wait_until(not_ready, 10, message="/readyz 503 naming the authentication failure")
        self.assertNotIn(WRONG, json.dumps(reply))

        message = refused_insert_error(self, proxy.port, MAIN_DB)
        self.assertIn("authentication with SCRAM-SHA-256 failed", message)
        for secret in (WRONG, PASSWORD, "127.0.0.1", str(self.upstream.port)):
            self.assertNotIn(secret, message)
        self.assertNotIn(WRONG, proxy.log())
        self.assertEqual(self.direct_count("refused"), 0)


if __name__ == "__main__":
    unittest.main()
