"""The client side of mongogate end to end (SPEC §6, issue 5 items 1, 4, 5, 6): compression
negotiation, TLS towards clients, load-balanced clients, sessions, causal consistency,
retryable writes and transactions — with pymongo 3.11, the Node driver, mongoose and
mongosh through the real binary to mock upstreams (tests/upstream/mock_upstream.py).

Run: MONGOGATE_BIN=build/proxy/mongogate /usr/bin/python3 -m unittest -v test_client_side
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
import uuid
import zlib
from pathlib import Path
from typing import Any, Optional

import bson
from pymongo import MongoClient
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

import harness
from harness import (NODE_DIR, OP_COMPRESSED, OP_MSG, E2ETestCase, WireConnection, commands_named,
                     frame, next_request_id, op_msg_payload, wait_until)

DB = "e2e_client"
RUN_TIMEOUT = 100  # below the harness's per-test watchdog (120 s)
COMPRESSORS = ("snappy", "zlib", "zstd")
ZLIB_ID = 2


def compressed(opcode: int, payload: bytes, request_id: int) -> bytes:
    """An OP_COMPRESSED (zlib) frame wrapping `payload` of `opcode`."""
    body = struct.pack("<iiB", opcode, len(payload), ZLIB_ID) + zlib.compress(payload)
    return frame(OP_COMPRESSED, body, request_id)


def read_raw(conn: WireConnection) -> tuple[int, bytes]:
    """One reply frame as (opcode, whole frame), without decoding."""
    header = harness._recv_exact(conn.sock, 16)
    length, _rid, _to, opcode = struct.unpack("<iiii", header)
    return opcode, header + harness._recv_exact(conn.sock, length - 16)


def make_certificates(directory: Path) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1/localhost, a client certificate signed by
    the CA and one signed by nobody we trust — made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is needed to make test certificates")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True, timeout=60)

    def signed(name: str, subject: str, extensions: str, ca: str = "ca") -> None:
        (directory / f"{name}.ext").write_text(extensions)
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", subject)
        run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
        (directory / f"{name}-bundle.pem").write_text(
            (directory / f"{name}.pem").read_text() + (directory / f"{name}.key").read_text())

    for ca in ("ca", "rogue-ca"):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
            "-days", "2", "-subj", f"/CN=mongogate e2e {ca}")
    signed("server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    signed("client", "/CN=e2e-client", "extendedKeyUsage=clientAuth\n")
    signed("rogue-client", "/CN=rogue-client", "extendedKeyUsage=clientAuth\n", ca="rogue-ca")
    return {name: str(directory / name) for name in
            ("ca.pem", "server.pem", "server.key", "client-bundle.pem", "rogue-client-bundle.pem")}


class NodeRunner:
    """Runs the Node driver, mongoose and mongosh scripts of tests/e2e/node."""

    home: str

    def run_node(self, args: list[str], uri: str, collection: str, extra_env: Optional[dict] = None) -> dict:
        env = dict(os.environ)
        env.update({"MONGODB_URI": uri, "E2E_DB": DB, "E2E_COLLECTION": collection, "HOME": self.home,
                    "MONGOSH_FORCE_DISABLE_TELEMETRY_FOR_TESTING": "1", "MONGOSH_NO_UPDATE_CHECK": "1",
                    "DO_NOT_TRACK": "1", "CI": "1", "NO_COLOR": "1"})
        env.update(extra_env or {})
        try:
            result = subprocess.run(args, cwd=str(NODE_DIR), env=env, stdin=subprocess.DEVNULL,
                                    capture_output=True, text=True, timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"{args[:2]} did not finish within {RUN_TIMEOUT}s\n{e.stdout}\n{e.stderr}")
        output = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        if result.returncode != 0:
            raise AssertionError(output)
        summary = [line for line in result.stdout.splitlines() if line.startswith("{")]
        return json.loads(summary[-1]) if summary else {"ok": True, "output": output}

    @staticmethod
    def node() -> str:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not on PATH")
        return node

    @staticmethod
    def mongosh() -> str:
        return str(NODE_DIR / "node_modules" / ".bin" / "mongosh")


# --------------------------------------------------------------------------------------
# Compression (OP_COMPRESSED spec: negotiation in hello, both directions).

class CompressionTest(E2ETestCase, NodeRunner):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        harness.ensure_node_modules()
        cls.upstream = cls.start_upstream("main")
        cls.proxy = cls.start_proxy(cls.upstream)
        cls.zlib_only = cls.start_proxy(cls.upstream, ["--compression", "zlib"], name="zlib-only")
        cls.home = tempfile.mkdtemp(prefix="home-", dir=cls.workdir)

    def setUp(self) -> None:
        super().setUp()
        self.require_proxy()

    def compressed_requests(self, proxy: Any, name: str) -> int:
        return proxy.log().count(f"compressed requests ({name})")

    def test_hello_answers_the_agreed_compressors_in_the_clients_order(self) -> None:
        with WireConnection(self.proxy.port) as conn:
            reply = conn.command({"hello": 1, "compression": ["zstd", "lz4", "snappy", "zlib"]})
            self.assertEqual(reply["compression"], ["zstd", "snappy", "zlib"])
        with WireConnection(self.zlib_only.port) as conn:
            reply = conn.command({"hello": 1, "compression": ["zstd", "snappy", "zlib"]})
            self.assertEqual(reply["compression"], ["zlib"])
            reply = conn.command({"isMaster": 1, "compression": ["snappy"]})
            self.assertNotIn("compression", reply)
        with WireConnection(self.proxy.port) as conn:
            self.assertNotIn("compression", conn.command({"hello": 1}))

    def test_hello_and_authentication_are_never_compressed(self) -> None:
        with WireConnection(self.proxy.port) as conn:
            for command in ({"hello": 1, "$db": "admin"}, {"isMaster": 1, "$db": "admin"},
                            {"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": b"n,,n=u,r=abc",
                             "$db": "admin"}):
                rid = next_request_id()
                conn.send(compressed(OP_MSG, op_msg_payload(command), rid))
                opcode, raw = read_raw(conn)
                self.assertEqual(opcode, OP_MSG, f"{next(iter(command))} reply was compressed")
                self.assertEqual(struct.unpack_from("<i", raw, 8)[0], rid)
            # Any other command's reply uses the request's compressor.
            conn.send(compressed(OP_MSG, op_msg_payload({"ping": 1, "$db": "admin"}), next_request_id()))
            opcode, raw = read_raw(conn)
            self.assertEqual(opcode, OP_COMPRESSED)
            self.assertEqual(raw[24], ZLIB_ID)

    def test_pymongo_with_each_compressor(self) -> None:
        for name in COMPRESSORS:
            with self.subTest(compressor=name):
                before = self.compressed_requests(self.proxy, name)
                client = MongoClient(self.proxy.uri(), compressors=name, serverSelectionTimeoutMS=10000)
                try:
                    coll = client[DB][f"py_{name}"]
                    coll.delete_many({})
                    coll.insert_many([{"_id": i, "text": "x" * 200} for i in range(300)])
                    self.assertEqual(len(list(coll.find().batch_size(50))), 300)
                finally:
                    client.close()
                self.assertGreater(self.compressed_requests(self.proxy, name), before,
                                   f"pymongo did not compress with {name}")
                self.assertEqual(len(self.upstream.find_all(DB, f"py_{name}")), 300)

    def test_store_replies_are_rewritten_and_compressed(self) -> None:
        # A rule-3 store's cursor replies name the physical namespace upstream: the proxy
        # splices the logical one in without copying the batch, and a compressed reply
        # must still be one whole frame with the client's compressor.
        self.upstream._checked({"insert": "stores", "documents": [
            {"storeId": "st-zip", "name": "Zip", "prefix": "zip", "databaseId": 2}], "$db": "main_db"})
        routed = self.start_configured_proxy({
            "upstreams": {"main": {"uri": f"{self.upstream.uri}main_db"}},
            "routing": {"main_database": "main_db",
                        "store_databases": {"prefix": "pos_db", "count": 5, "stores_per_database": 20}},
            "registry": {"source": "upstream", "poll_interval_ms": 500},
        }, name="routed-compression")
        for name in COMPRESSORS:
            with self.subTest(compressor=name):
                client = MongoClient(routed.uri("main_db"), compressors=name, serverSelectionTimeoutMS=10000)
                try:
                    coll = client["store_zip"][f"items_{name}"]
                    coll.insert_many([{"_id": i, "text": "y" * 300} for i in range(120)])
                    cursor = coll.find().sort("_id", 1).batch_size(40)  # find + getMores
                    self.assertEqual([d["_id"] for d in cursor], list(range(120)))
                    reply = client["store_zip"].command("find", f"items_{name}", batchSize=5)
                    self.assertEqual(reply["cursor"]["ns"], f"store_zip.items_{name}")
                finally:
                    client.close()
                self.assertEqual(len(self.upstream.find_all("pos_db_2", f"zip_items_{name}")), 120)
                self.assertGreater(self.compressed_requests(routed, name), 0)
        # On the wire: the spliced reply comes back as one zlib OP_COMPRESSED frame.
        with WireConnection(routed.port) as conn:
            rid = next_request_id()
            conn.send(compressed(OP_MSG, op_msg_payload(
                {"find": "items_zlib", "batchSize": 7, "$db": "store_zip"}), rid))
            opcode, raw = read_raw(conn)
            self.assertEqual(opcode, OP_COMPRESSED)
            self.assertEqual(struct.unpack_from("<i", raw, 8)[0], rid)
            self.assertEqual(struct.unpack_from("<i", raw, 16)[0], OP_MSG)
            self.assertEqual(raw[24], ZLIB_ID)
            message = zlib.decompress(raw[25:])
            self.assertEqual(len(message), struct.unpack_from("<i", raw, 20)[0])
            self.assertEqual(message[4], 0)  # kind 0 after the flags
            body = bson.decode(message[5:])
            self.assertEqual(body["cursor"]["ns"], "store_zip.items_zlib")
            self.assertEqual([d["_id"] for d in body["cursor"]["firstBatch"]], list(range(7)))

    def test_node_mongoose_and_mongosh_with_snappy_and_zlib(self) -> None:
        # The Node driver's zstd needs the npm package @mongodb-js/zstd, whose install
        # downloads a binary from outside the npm registry (README); snappy (npm `snappy`,
        # prebuilt binaries inside npm packages) and zlib (built in) are tested.
        for name in ("snappy", "zlib"):
            with self.subTest(compressor=name):
                uri = self.proxy.uri("", compressors=name)
                before = self.compressed_requests(self.proxy, name)
                self.assertTrue(self.run_node([self.node(), "client_side.mjs"], uri, f"node_{name}")["ok"])
                after_node = self.compressed_requests(self.proxy, name)
                self.assertGreater(after_node, before, f"the Node driver did not compress with {name}")
                self.assertEqual(len(self.upstream.find_all(DB, f"node_{name}")), 24)
                self.run_node([self.node(), "mongoose.mjs"], uri, f"mongoose_{name}")
                after_mongoose = self.compressed_requests(self.proxy, name)
                self.assertGreater(after_mongoose, after_node, f"mongoose did not compress with {name}")
                self.run_node([self.mongosh(), self.proxy.uri(DB, compressors=name), "--quiet", "--norc",
                               "--file", "crud_mongosh.js"], self.proxy.uri(DB), f"mongosh_{name}")
                self.assertGreater(self.compressed_requests(self.proxy, name), after_mongoose,
                                   f"mongosh did not compress with {name}")


# --------------------------------------------------------------------------------------
# TLS towards clients.

class ClientTlsTest(E2ETestCase, NodeRunner):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        harness.ensure_node_modules()
        cls.certs = make_certificates(Path(tempfile.mkdtemp(prefix="certs-", dir=cls.workdir)))
        cls.home = tempfile.mkdtemp(prefix="home-", dir=cls.workdir)
        cls.upstream = cls.start_upstream("main")
        tls = {"enabled": True, "certificate_file": cls.certs["server.pem"],
               "key_file": cls.certs["server.key"], "handshake_timeout_ms": 500}
        cls.proxy = cls.start_configured_proxy(cls.config(tls), name="tls")
        cls.mtls = cls.start_configured_proxy(
            cls.config(dict(tls, ca_file=cls.certs["ca.pem"], require_client_certificate=True)), name="mtls")

    @classmethod
    def config(cls, tls: dict) -> dict:
        return {"upstreams": {"main": {"uri": f"{cls.upstream.uri}{DB}"}}, "tls": tls}

    def setUp(self) -> None:
        super().setUp()
        self.require_proxy()

    def tls_client(self, proxy: Any, **options: Any) -> MongoClient:
        opts = dict(tls=True, tlsCAFile=self.certs["ca.pem"], serverSelectionTimeoutMS=5000)
        opts.update(options)
        client = MongoClient(proxy.uri(), **opts)
        self.addCleanup(client.close)
        return client

    def test_pymongo_over_tls_with_each_compressor(self) -> None:
        for name in (None, *COMPRESSORS):
            with self.subTest(compressor=name):
                options = {"compressors": name} if name else {}
                coll = self.tls_client(self.proxy, **options)[DB][f"tls_{name or 'plain'}"]
                coll.delete_many({})
                coll.insert_many([{"_id": i} for i in range(20)])
                self.assertEqual(coll.count_documents({}), 20)
                self.assertEqual(len(self.upstream.find_all(DB, f"tls_{name or 'plain'}")), 20)
                if name:
                    self.assertIn(f"compressed requests ({name})", self.proxy.log())
        self.assertIn("(TLS)", self.proxy.log())

    def test_plain_client_to_a_tls_listener_is_closed(self) -> None:
        plain = MongoClient(self.proxy.uri(), serverSelectionTimeoutMS=1500)
        self.addCleanup(plain.close)
        with self.assertRaises(ServerSelectionTimeoutError):
            plain.admin.command("ping")
        with WireConnection(self.proxy.port) as conn:
            conn.send(harness.op_msg({"hello": 1, "$db": "admin"}))
            self.assertTrue(conn.wait_closed(5), "a plain hello on the TLS port was not closed")
        # Still serving TLS clients.
        self.assertEqual(self.tls_client(self.proxy).admin.command("ping")["ok"], 1.0)

    def test_stalled_handshake_is_closed_after_the_timeout(self) -> None:
        with WireConnection(self.proxy.port) as conn:  # connects, never says a word
            self.assertTrue(conn.wait_closed(5), "a silent client kept its connection")
        self.proxy.wait_for_log("TLS handshake failed: timed out")

    def test_client_certificate_required(self) -> None:
        with self.assertRaises(ServerSelectionTimeoutError):
            self.tls_client(self.mtls, serverSelectionTimeoutMS=1500).admin.command("ping")
        with self.assertRaises(ServerSelectionTimeoutError):
            self.tls_client(self.mtls, serverSelectionTimeoutMS=1500,
                            tlsCertificateKeyFile=self.certs["rogue-client-bundle.pem"]).admin.command("ping")
        client = self.tls_client(self.mtls, tlsCertificateKeyFile=self.certs["client-bundle.pem"])
        client[DB].mtls.insert_one({"_id": "with-cert"})
        self.assertEqual(self.upstream.find_all(DB, "mtls"), [{"_id": "with-cert"}])

    def test_a_key_that_does_not_match_is_refused(self) -> None:
        certs_dir = Path(self.certs["ca.pem"]).parent
        config = self.workdir / "bad-key.yaml"
        harness.write_yaml_config(config, self.config({"enabled": True, "certificate_file": self.certs["server.pem"],
                                                       "key_file": str(certs_dir / "client.key")}))
        binary = str(harness.find_mongogate_binary())
        env = dict(os.environ, MONGODB_URI=f"{self.upstream.uri}{DB}")
        for extra in (["--check-config"], ["--listen", "127.0.0.1:0", "--admin-listen", "off"]):
            with self.subTest(args=extra):
                result = subprocess.run([binary, "--config", str(config), *extra], env=env, capture_output=True,
                                        text=True, timeout=30, stdin=subprocess.DEVNULL)
                self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
                self.assertRegex(result.stderr, r"client\.key: .*(mismatch|does not match)")

    def test_node_mongoose_and_mongosh_over_tls(self) -> None:
        ca = self.certs["ca.pem"]
        uri = self.proxy.uri("", tls="true", tlsCAFile=ca)
        self.assertEqual(self.run_node([self.node(), "client_side.mjs"], uri, "node_tls")["count"], 24)
        self.assertEqual(len(self.upstream.find_all(DB, "node_tls")), 24)
        self.run_node([self.node(), "mongoose.mjs"], uri, "mongoose_tls")
        self.assertEqual(len(self.upstream.find_all(DB, "mongoose_tls")), 2)
        self.run_node([self.mongosh(), self.proxy.uri(DB), "--tls", "--tlsCAFile", ca, "--quiet", "--norc",
                       "--file", "crud_mongosh.js"], self.proxy.uri(DB), "mongosh_tls")
        self.assertEqual(len(self.upstream.find_all(DB, "mongosh_tls")), 16)
        # Compressed inside TLS.
        self.run_node([self.mongosh(), self.proxy.uri(DB, compressors="zlib"), "--tls", "--tlsCAFile", ca,
                       "--quiet", "--norc", "--file", "crud_mongosh.js"], self.proxy.uri(DB), "mongosh_tls_zlib")
        self.assertIn("compressed requests (zlib)", self.proxy.log())
        # With a client certificate, where one is required (and snappy inside).
        mtls_uri = self.mtls.uri("", tls="true", tlsCAFile=ca, tlsCertificateKeyFile=self.certs["client-bundle.pem"],
                                 compressors="snappy")
        self.assertEqual(self.run_node([self.node(), "client_side.mjs"], mtls_uri, "node_mtls")["count"], 24)
        self.assertIn("compressed requests (snappy)", self.mtls.log())


# --------------------------------------------------------------------------------------
# Load-balanced clients (load-balancer spec): serviceId in hello, pinned cursors and
# transactions.

class LoadBalancedTest(E2ETestCase, NodeRunner):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        harness.ensure_node_modules()
        cls.home = tempfile.mkdtemp(prefix="home-", dir=cls.workdir)
        cls.upstream = cls.start_upstream("main")
        cls.proxy = cls.start_proxy(cls.upstream)

    def setUp(self) -> None:
        super().setUp()
        self.require_proxy()

    def test_hello_carries_a_stable_service_id(self) -> None:
        ids = []
        for _ in range(2):
            with WireConnection(self.proxy.port) as conn:
                ids.append(conn.command({"hello": 1, "loadBalanced": True})["serviceId"])
                self.assertNotIn("serviceId", conn.command({"hello": 1}))
        self.assertEqual(ids[0], ids[1])

    def test_node_driver_load_balanced(self) -> None:
        uri = self.proxy.uri("", loadBalanced="true")
        self.upstream.clear_recorded()
        summary = self.run_node([self.node(), "client_side.mjs"], uri, "node_lb",
                                {"E2E_TXN_COLLECTIONS": "lb_a,lb_b"})
        self.assertEqual(summary["count"], 24)
        self.assertTrue(summary["transactions"])
        records = self.upstream.recorded()
        self.assertGreaterEqual(len(commands_named(records, "getMore", collection="node_lb")), 6)
        self.assertEqual(len(commands_named(records, "commitTransaction")), 1)
        self.assertEqual(len(commands_named(records, "abortTransaction")), 1)
        for coll in ("lb_a", "lb_b"):
            self.assertEqual(self.upstream.find_all(DB, coll), [{"_id": "committed", "from": "node"}])


# --------------------------------------------------------------------------------------
# hello advertises only what every upstream offers (SPEC §6: the weakest upstream).

class WeakestUpstreamTest(E2ETestCase):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.a = cls.start_upstream("A")
        cls.b = cls.start_upstream("B", max_wire_version=17, extra_args=["--no-sessions"])
        cls.proxy = cls.start_configured_proxy({
            "upstreams": {"main": {"uri": f"{cls.a.uri}{DB}"}, "masteradmin": {"uri": f"{cls.b.uri}masteradmin"}},
        }, name="weakest")

    def setUp(self) -> None:
        super().setUp()
        self.require_proxy()

    def test_no_sessions_upstream_means_no_sessions_advertised(self) -> None:
        def hello() -> dict:
            with WireConnection(self.proxy.port) as conn:
                return conn.command({"hello": 1})
        wait_until(lambda: hello()["maxWireVersion"] == 17, timeout=10)
        self.assertNotIn("logicalSessionTimeoutMinutes", hello())
        # So drivers send no lsid and make no write retryable.
        client = MongoClient(self.proxy.uri(DB), serverSelectionTimeoutMS=10000)
        self.addCleanup(client.close)
        self.a.clear_recorded()
        client[DB].nosessions.insert_one({"_id": 1})
        inserts = commands_named(self.a.recorded(), "insert", collection="nosessions")
        self.assertEqual(len(inserts), 1)
        self.assertNotIn("lsid", inserts[0]["body"])
        self.assertNotIn("txnNumber", inserts[0]["body"])


# --------------------------------------------------------------------------------------
# Sessions, causal consistency, retryable writes and transactions over two clusters.

MAIN_DB = "main_db"
STORES = [
    {"storeId": "st-one", "name": "One", "prefix": "one", "databaseId": 1},   # cluster A
    {"storeId": "st-two", "name": "Two", "prefix": "two", "databaseId": 2},   # cluster A
    {"storeId": "st-four", "name": "Four", "prefix": "four", "databaseId": 4},  # cluster B
]
KEY_A, KEY_B = 1, 2  # the mocks sign $clusterTime with these keyIds


def key_of_increment(inc: int) -> int:
    """Which mock issued a cluster time (mock_upstream: increments from keyId * 1e6)."""
    return inc // 1_000_000


class SessionsTest(E2ETestCase):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.a = cls.start_upstream("A", extra_args=["--cluster-time-key", str(KEY_A)])
        cls.b = cls.start_upstream("B", extra_args=["--cluster-time-key", str(KEY_B)])
        cls.a._checked({"insert": "stores", "documents": [dict(s) for s in STORES], "$db": MAIN_DB})
        cls.proxy = cls.start_configured_proxy({
            "upstreams": {"main": {"uri": f"{cls.a.uri}{MAIN_DB}"}, "shard2": {"uri": cls.b.uri}},
            "routing": {"main_database": MAIN_DB,
                        "store_databases": {"prefix": "pos_db", "count": 5, "stores_per_database": 20,
                                            "placement": {4: "shard2", 5: "shard2"}}},
            "registry": {"source": "upstream", "poll_interval_ms": 500},
        }, name="sessions")

    def setUp(self) -> None:
        super().setUp()
        self.require_proxy()
        for up in (self.a, self.b):
            up.clear_faults()
            up.clear_recorded()

    def client(self, **options: Any) -> MongoClient:
        opts = dict(serverSelectionTimeoutMS=10000, socketTimeoutMS=20000)
        opts.update(options)
        client = MongoClient(self.proxy.uri(MAIN_DB), **opts)
        self.addCleanup(client.close)
        return client

    def orders(self, up: Any, db: str, coll: str) -> list:
        return sorted(d["_id"] for d in up.find_all(db, coll))

    def test_transaction_across_two_stores_on_one_upstream_commits(self) -> None:
        client = self.client()
        main = client[MAIN_DB]
        with client.start_session() as session:
            with session.start_transaction():
                main.one_orders.insert_one({"_id": "t-commit"}, session=session)
                main.two_orders.insert_one({"_id": "t-commit"}, session=session)
                self.assertEqual(self.orders(self.a, "pos_db_1", "one_orders"), [])  # not yet
        self.assertEqual(self.orders(self.a, "pos_db_1", "one_orders"), ["t-commit"])
        self.assertEqual(self.orders(self.a, "pos_db_2", "two_orders"), ["t-commit"])
        self.assertEqual(len(commands_named(self.a.recorded(), "commitTransaction")), 1)
        self.assertEqual(commands_named(self.b.recorded(), "commitTransaction"), [])

    def test_transaction_across_two_stores_on_one_upstream_aborts(self) -> None:
        client = self.client()
        main = client[MAIN_DB]
        with client.start_session() as session:
            session.start_transaction()
            main.one_orders.insert_one({"_id": "t-abort"}, session=session)
            main.two_orders.insert_one({"_id": "t-abort"}, session=session)
            session.abort_transaction()
        self.assertNotIn("t-abort", self.orders(self.a, "pos_db_1", "one_orders"))
        self.assertNotIn("t-abort", self.orders(self.a, "pos_db_2", "two_orders"))
        self.assertEqual(len(commands_named(self.a.recorded(), "abortTransaction")), 1)

    def test_transaction_crossing_to_a_second_upstream_is_refused_and_aborted(self) -> None:
        client = self.client()
        main = client[MAIN_DB]
        with client.start_session() as session:
            session.start_transaction()
            main.one_orders.insert_one({"_id": "t-cross"}, session=session)
            with self.assertRaises(OperationFailure) as caught:
                main.four_orders.insert_one({"_id": "t-cross"}, session=session)
            self.assertEqual(caught.exception.code, 263)
            self.assertIn("cannot span upstream clusters", str(caught.exception))
            self.assertNotIn("TransientTransactionError", caught.exception.details.get("errorLabels", []))
            session.abort_transaction()  # the driver's own abort must not fail
        aborts = commands_named(self.a.recorded(), "abortTransaction")
        self.assertGreaterEqual(len(aborts), 1, "mongogate did not abort the transaction on A")
        first = commands_named(self.a.recorded(), "insert", collection="one_orders")[0]["body"]
        self.assertEqual(aborts[0]["body"]["txnNumber"], first["txnNumber"])
        self.assertEqual(aborts[0]["body"]["lsid"], first["lsid"])
        self.assertEqual(commands_named(self.b.recorded(), "insert"), [], "the crossing statement reached B")
        self.assertNotIn("t-cross", self.orders(self.a, "pos_db_1", "one_orders"))
        self.assertEqual(self.orders(self.b, "pos_db_4", "four_orders"), [])

    def test_retryable_write_after_a_network_error_is_applied_once(self) -> None:
        client = self.client(retryWrites=True)
        coll = client[MAIN_DB].one_retry
        for action in ("close_after", "close"):  # reply lost after the write / before it
            with self.subTest(action=action):
                self.a.clear_recorded()
                self.a.add_fault("insert", action)
                coll.insert_one({"_id": action})
                inserts = commands_named(self.a.recorded(), "insert", collection="one_retry")
                self.assertEqual(len(inserts), 2, "the driver did not retry")
                self.assertEqual(inserts[0]["body"]["txnNumber"], inserts[1]["body"]["txnNumber"])
                self.assertEqual(inserts[0]["body"]["lsid"], inserts[1]["body"]["lsid"])
        self.assertEqual(self.orders(self.a, "pos_db_1", "one_retry"), ["close", "close_after"])

    def test_end_sessions_is_split_per_upstream(self) -> None:
        client = self.client()
        main = client[MAIN_DB]
        ids = {}
        sessions = []  # all open at once: pymongo reuses an ended session's lsid
        for name, colls in (("a", ["one_s"]), ("b", ["four_s"]), ("ab", ["one_s", "four_s"])):
            session = client.start_session()
            sessions.append(session)
            for coll in colls:
                main[coll].insert_one({"session": name}, session=session)
            ids[name] = session.session_id["id"]
        self.assertEqual(len({bytes(i) if not isinstance(i, uuid.UUID) else i.bytes for i in ids.values()}), 3)
        for session in sessions:
            session.end_session()
        client.close()  # pymongo ends its pooled sessions here

        def raw(value: Any) -> bytes:
            return value.bytes if isinstance(value, uuid.UUID) else bytes(value)

        def ended(up: Any) -> set:
            return {raw(s["id"]) for r in commands_named(up.recorded(), "endSessions")
                    for s in r["body"]["endSessions"]}
        wait_until(lambda: ended(self.a) and ended(self.b), timeout=10)
        a, b, ab = raw(ids["a"]), raw(ids["b"]), raw(ids["ab"])
        self.assertLessEqual({a, ab}, ended(self.a))
        self.assertNotIn(b, ended(self.a), "A was sent a session it never saw")
        self.assertLessEqual({b, ab}, ended(self.b))
        self.assertNotIn(a, ended(self.b), "B was sent a session it never saw")

    def test_cluster_time_never_crosses_clusters(self) -> None:
        client = self.client()
        main = client[MAIN_DB]
        with client.start_session(causal_consistency=True) as session:
            for round_ in range(3):
                main.one_causal.insert_one({"round": round_}, session=session)
                self.assertEqual(main.four_causal.count_documents({}, session=session), round_)
                main.four_causal.insert_one({"round": round_}, session=session)
                self.assertEqual(main.one_causal.count_documents({}, session=session), round_ + 1)
        for up, key in ((self.a, KEY_A), (self.b, KEY_B)):
            records = [r for r in up.recorded() if r["command"] not in ("hello", "isMaster")]
            gossiped = [r for r in records if "$clusterTime" in r["body"]]
            self.assertTrue(gossiped, f"no $clusterTime reached {up.name}: nothing was checked")
            for r in gossiped:
                self.assertEqual(r["body"]["$clusterTime"]["signature"]["keyId"], key,
                                 f"{up.name} received another cluster's $clusterTime in {r['command']}")
            after = [r["body"]["readConcern"]["afterClusterTime"] for r in records
                     if "afterClusterTime" in (r["body"].get("readConcern") or {})]
            self.assertTrue(after, f"no causally consistent read reached {up.name}")
            for t in after:
                self.assertEqual(key_of_increment(t.inc), key,
                                 f"{up.name} received an afterClusterTime it never issued")

    def test_single_upstream_passes_cluster_time_through(self) -> None:
        solo = self.start_upstream("solo", extra_args=["--cluster-time-key", "9"])
        proxy = self.start_proxy(solo, name="solo")
        client = MongoClient(proxy.uri(DB), serverSelectionTimeoutMS=10000)
        self.addCleanup(client.close)
        with client.start_session(causal_consistency=True) as session:
            client[DB].solo.insert_one({"_id": 1}, session=session)
            self.assertEqual(client[DB].solo.count_documents({}, session=session), 1)
        records = [r for r in solo.recorded() if r["command"] in ("insert", "aggregate")]
        self.assertTrue(any(r["body"].get("$clusterTime", {}).get("signature", {}).get("keyId") == 9
                            for r in records))
        after = [r["body"]["readConcern"]["afterClusterTime"] for r in records
                 if "afterClusterTime" in (r["body"].get("readConcern") or {})]
        self.assertTrue(after)


if __name__ == "__main__":
    harness.main()
