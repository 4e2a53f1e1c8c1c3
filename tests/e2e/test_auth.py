"""Client authentication and store scopes (SPEC §6) through the real mongogate binary.

* users mode: pymongo 3.11, the Node driver, mongoose and mongosh authenticate with
  SCRAM-SHA-256 and SCRAM-SHA-1 against keys made by ``mongogate hash-password``; a wrong
  password is AuthenticationFailed (18) and the client can run nothing; speculative
  authentication in hello (raw, with a SCRAM client written here); a scoped user reads and
  writes its own store and gets Unauthorized (13) on another's, $lookup included.
* relay mode: the same clients against a mock upstream that checks SCRAM itself.
* none mode: credentials get a clear AuthenticationFailed.
* mongogate's log never holds a password.

Run: MONGOGATE_BIN=build/proxy/mongogate /usr/bin/python3 -m unittest -v test_auth
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.parse
from typing import Any, Optional

import harness
from harness import (DIRECT_MODE, MAIN_DB, NODE_DIR, NODE_QUIET_ENV, E2ETestCase, WireConnection,
                     find_mongogate_binary, import_mock_upstream, run_node_script)

from bson import Binary
from pymongo import MongoClient
from pymongo.errors import OperationFailure

RUN_TIMEOUT = 120
STORE_DB_PREFIX = "pos_db"

# Passwords: distinctive strings, so that finding one in the log is unambiguous.
PASSWORDS = {
    "app": "app-Pw-7f3a91",
    "sha1only": "sha1-Pw-c0ffee",
    "clerk": "clerk-Pw-b4d5e6",
    "relayuser": "relay-Pw-9e8d7c",
}
WRONG = "Wrong-Pw-123456"


def hash_password(user: str, password: str, *args: str) -> dict:
    """An auth.users entry from the real ``mongogate hash-password``."""
    import yaml
    binary = find_mongogate_binary()
    result = subprocess.run([str(binary), "hash-password", "--user", user, *args],
                            input=password + "\n", capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise AssertionError(f"hash-password failed: {result.stderr}")
    if password in result.stdout:
        raise AssertionError("hash-password printed the password")
    entries = yaml.safe_load(result.stdout)
    assert isinstance(entries, list) and len(entries) == 1, result.stdout
    return entries[0]


def uri_for(port: int, user: str, password: str, db: str = "", **options: str) -> str:
    creds = f"{urllib.parse.quote_plus(user)}:{urllib.parse.quote_plus(password)}@"
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"mongodb://{creds}127.0.0.1:{port}/{db}" + (f"?{query}" if query else "")


class ScramClient:
    """A minimal SCRAM client (RFC 5802 / 7677, MongoDB's SHA-1 digest) for raw tests."""

    def __init__(self, mechanism: str, user: str, password: str) -> None:
        self.mechanism = mechanism
        self.user = user
        if mechanism == "SCRAM-SHA-1":
            self.digest = "sha1"
            self.password = hashlib.md5(f"{user}:mongo:{password}".encode()).hexdigest().encode()
        else:
            self.digest = "sha256"
            self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(24)).decode()
        self.first_bare = f"n={user},r={self.nonce}"

    def first(self) -> bytes:
        return ("n,," + self.first_bare).encode()

    def final(self, server_first: bytes) -> bytes:
        text = server_first.decode()
        fields = dict(part.split("=", 1) for part in text.split(","))
        assert fields["r"].startswith(self.nonce)
        salted = hashlib.pbkdf2_hmac(self.digest, self.password, base64.b64decode(fields["s"]),
                                     int(fields["i"]))
        client_key = hmac.new(salted, b"Client Key", self.digest).digest()
        stored_key = hashlib.new(self.digest, client_key).digest()
        without_proof = "c=biws,r=" + fields["r"]
        auth_message = ",".join([self.first_bare, text, without_proof]).encode()
        signature = hmac.new(stored_key, auth_message, self.digest).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", self.digest).digest()
        self.server_signature = hmac.new(server_key, auth_message, self.digest).digest()
        return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()

    def verify(self, server_final: bytes) -> bool:
        return server_final.decode() == "v=" + base64.b64encode(self.server_signature).decode()


class NodeRunner:
    """Runs tests/e2e/node/auth_client.mjs and mongosh with a private HOME."""

    def __init__(self, workdir) -> None:
        harness.ensure_node_modules()
        self.node = shutil.which("node")
        if self.node is None:
            raise RuntimeError("node is not on PATH")
        self.home = tempfile.mkdtemp(prefix="mongogate-e2e-home-", dir=workdir)

    def env(self, uri: str, **extra: str) -> dict:
        """What the clients need in their environment besides this process's own."""
        return {"MONGODB_URI": uri, "HOME": self.home, "E2E_DB": "e2e_auth", **NODE_QUIET_ENV, **extra}

    def client(self, test: E2ETestCase, kind: str, uri: str, collection: str) -> dict:
        summary, output = run_node_script([self.node, "auth_client.mjs"],
                                          self.env(uri, E2E_CLIENT=kind, E2E_COLLECTION=collection), RUN_TIMEOUT)
        test.assertIsNotNone(summary, output)
        return summary

    def mongosh(self, uri: str, script: str) -> subprocess.CompletedProcess:
        mongosh = str(NODE_DIR / "node_modules" / ".bin" / "mongosh")
        return subprocess.run([mongosh, uri, "--quiet", "--norc", "--eval", script], cwd=str(NODE_DIR),
                              env=dict(os.environ, **self.env(uri)), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT)


class AuthCase(E2ETestCase):
    """Shared checks: the log holds no password; the Node clients' right and wrong logins."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        if DIRECT_MODE:
            raise harness.unittest.SkipTest("about mongogate itself")

    def check_node_clients(self, node: NodeRunner, right: str, wrong: str, collection: str) -> None:
        """The Node driver and mongoose write and read with `right`, and get 18 with `wrong`;
        mongosh runs a script with `right` and exits with Authentication failed with `wrong`."""
        for kind in ("driver", "mongoose"):
            with self.subTest(client=kind, collection=collection):
                doc = node.client(self, kind, right, f"{collection}_{kind}")
                self.assertTrue(doc["ok"], doc)
                self.assertEqual(doc["found"], 1)
                doc = node.client(self, kind, wrong, f"{collection}_{kind}_wrong")
                self.assertFalse(doc["ok"], doc)
                self.assertEqual(doc["code"], 18, doc)
        with self.subTest(client="mongosh", collection=collection):
            ok = node.mongosh(right, f"db.{collection}.insertOne({{a: 1}}); "
                                     f"print(JSON.stringify({{n: db.{collection}.countDocuments({{}})}}))")
            self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
            self.assertRegex(ok.stdout, r'\{"n":[1-9]\d*\}')
            bad = node.mongosh(wrong, f"db.{collection}.countDocuments({{}})")
            self.assertNotEqual(bad.returncode, 0, bad.stdout + bad.stderr)
            self.assertIn("Authentication failed", bad.stdout + bad.stderr)

    def assert_log_has_no_password(self, proxy) -> None:
        log = proxy.log()
        for user, password in list(PASSWORDS.items()) + [("wrong", WRONG)]:
            self.assertNotIn(password, log, f"the password of {user} reached mongogate's log")
            self.assertNotIn(base64.b64encode(password.encode()).decode(), log)

    def assert_auth_failed(self, error: Exception) -> None:
        self.assertIsInstance(error, OperationFailure)
        self.assertEqual(error.code, 18, error.details)
        self.assertEqual(error.details.get("errmsg"), "Authentication failed.", error.details)


# --------------------------------------------------------------------------------------
# users mode

class UsersMode(AuthCase):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.upstream = cls.start_upstream("main")
        # Two stores in the same store database, so that a pipeline may join them.
        cls.upstream.command({"insert": "stores", "$db": MAIN_DB, "documents": [
            {"storeId": "s-ab", "name": "Store AB", "prefix": "ab", "databaseId": 1},
            {"storeId": "s-cd", "name": "Store CD", "prefix": "cd", "databaseId": 1},
        ]})
        users = [
            hash_password("app", PASSWORDS["app"]),
            hash_password("sha1only", PASSWORDS["sha1only"], "--mechanisms", "SCRAM-SHA-1"),
            dict(hash_password("clerk", PASSWORDS["clerk"]), stores=["ab"], main_database="read"),
        ]
        config = {
            "upstreams": {"main": {"uri": cls.upstream.uri + MAIN_DB}},
            "routing": {"store_databases": {"prefix": STORE_DB_PREFIX, "count": 2}},
            "registry": {"poll_interval_ms": 200},
            "auth": {"mode": "users", "users": users},
        }
        cls.proxy = cls.start_configured_proxy(config, admin=True)
        harness.wait_until(cls._registry_loaded, 20, message="registry loaded")

    @classmethod
    def _registry_loaded(cls) -> bool:
        client = cls.client_for("app")
        try:
            client[MAIN_DB]["ab_probe"].find_one()
            return True
        except OperationFailure:
            return False
        finally:
            client.close()

    @classmethod
    def client_for(cls, user: str, password: Optional[str] = None, **options: Any) -> MongoClient:
        opts = dict(serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, socketTimeoutMS=20000,
                    retryWrites=False)
        opts.update(options)
        return MongoClient(uri_for(cls.proxy.port, user, password or PASSWORDS[user]), **opts)

    def test_pymongo_scram_sha_256_and_sha_1(self):
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
            with self.subTest(mechanism=mechanism):
                client = self.client_for("app", authMechanism=mechanism)
                try:
                    coll = client["e2e_auth"]["pymongo_" + mechanism.replace("-", "_")]
                    coll.insert_one({"_id": 1, "by": mechanism})
                    self.assertEqual(coll.find_one({"_id": 1})["by"], mechanism)
                    status = client.admin.command("ping")
                    self.assertEqual(status["ok"], 1.0)
                finally:
                    client.close()
        self.proxy.wait_for_log(r"authenticated as 'app' on 'admin' \(SCRAM-SHA-1\)")
        self.proxy.wait_for_log(r"authenticated as 'app' on 'admin' \(SCRAM-SHA-256\)")

    def test_pymongo_negotiates_sha_1_for_a_sha_1_only_user(self):
        # No authMechanism: pymongo asks hello's saslSupportedMechs and picks SCRAM-SHA-1.
        client = self.client_for("sha1only")
        try:
            client["e2e_auth"]["sha1only"].insert_one({"x": 1})
            self.assertEqual(client["e2e_auth"]["sha1only"].count_documents({}), 1)
        finally:
            client.close()
        with WireConnection(self.proxy.port) as conn:
            hello = conn.command({"hello": 1, "saslSupportedMechs": "admin.sha1only"})
            self.assertEqual(hello["saslSupportedMechs"], ["SCRAM-SHA-1"])
            hello = conn.command({"hello": 1, "saslSupportedMechs": "admin.app"})
            self.assertEqual(sorted(hello["saslSupportedMechs"]), ["SCRAM-SHA-1", "SCRAM-SHA-256"])
            hello = conn.command({"hello": 1, "saslSupportedMechs": "admin.nobody"})
            self.assertNotIn("saslSupportedMechs", hello)

    def test_pymongo_wrong_password_and_unknown_user_fail_with_18(self):
        before = self.auth_failures()
        for user, password, mechanism in (("app", WRONG, "SCRAM-SHA-256"), ("app", WRONG, "SCRAM-SHA-1"),
                                          ("nobody", WRONG, "SCRAM-SHA-256"),
                                          ("sha1only", PASSWORDS["sha1only"], "SCRAM-SHA-256")):
            with self.subTest(user=user, mechanism=mechanism):
                client = self.client_for(user, password, authMechanism=mechanism)
                try:
                    with self.assertRaises(OperationFailure) as caught:
                        client["e2e_auth"]["x"].find_one()
                    self.assert_auth_failed(caught.exception)
                finally:
                    client.close()
        self.assertGreaterEqual(self.auth_failures() - before, 4)
        self.proxy.wait_for_log(r"authentication failed for user 'app' on 'admin': wrong password")
        self.assert_log_has_no_password(self.proxy)

    def auth_failures(self) -> float:
        status, _, body = self.proxy.admin_request("GET", "/metrics")
        self.assertEqual(status, 200)
        match = re.search(r"^mongogate_auth_failures_total (\S+)$", body.decode(), re.M)
        self.assertIsNotNone(match, "no mongogate_auth_failures_total in /metrics")
        return float(match.group(1))

    def test_unauthenticated_clients_may_only_handshake(self):
        with WireConnection(self.proxy.port) as conn:
            self.assertEqual(conn.command({"hello": 1})["ok"], 1.0)
            self.assertEqual(conn.command({"ping": 1})["ok"], 1.0)
            for command, db in (({"find": "ab_unauth_probe"}, MAIN_DB), ({"listDatabases": 1}, "admin"),
                                ({"insert": "x", "documents": [{"a": 1}]}, "e2e_auth")):
                reply = conn.command(command, db)
                self.assertEqual(reply["ok"], 0.0, reply)
                self.assertEqual(reply["code"], 13, reply)
                self.assertEqual(reply["codeName"], "Unauthorized")
                self.assertEqual(reply["errmsg"], f"command {next(iter(command))} requires authentication")
        # Nothing of it reached the upstream.
        self.assertFalse(harness.commands_named(self.upstream.recorded(), "find", collection="ab_unauth_probe"))

    def sasl_conversation(self, conn: WireConnection, mechanism: str, user: str, password: str,
                          speculative: bool) -> dict:
        scram = ScramClient(mechanism, user, password)
        if speculative:
            hello = conn.command({"hello": 1, "speculativeAuthenticate": {
                "saslStart": 1, "mechanism": mechanism, "payload": Binary(scram.first()),
                "options": {"skipEmptyExchange": True}, "db": "admin"}})
            self.assertIn("speculativeAuthenticate", hello)
            start = hello["speculativeAuthenticate"]
        else:
            start = conn.command({"saslStart": 1, "mechanism": mechanism, "payload": Binary(scram.first()),
                                  "autoAuthorize": 1})
            self.assertEqual(start["ok"], 1.0, start)
        self.assertFalse(start["done"])
        reply = conn.command({"saslContinue": 1, "conversationId": start["conversationId"],
                              "payload": Binary(scram.final(bytes(start["payload"])))})
        if reply.get("ok") and not reply["done"]:  # no skipEmptyExchange: one more round
            self.assertTrue(scram.verify(bytes(reply["payload"])))
            reply = conn.command({"saslContinue": 1, "conversationId": start["conversationId"],
                                  "payload": Binary(b"")})
            self.assertTrue(reply["done"], reply)
        elif reply.get("ok"):
            self.assertTrue(scram.verify(bytes(reply["payload"])), "the server signature does not verify")
        return reply

    def test_speculative_authentication_in_hello(self):
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
            with self.subTest(mechanism=mechanism), WireConnection(self.proxy.port) as conn:
                reply = self.sasl_conversation(conn, mechanism, "app", PASSWORDS["app"], speculative=True)
                self.assertEqual(reply["ok"], 1.0, reply)
                self.assertTrue(reply["done"])
                found = conn.command({"find": "spec", "filter": {}}, "e2e_auth")
                self.assertEqual(found["ok"], 1.0, found)
        with WireConnection(self.proxy.port) as conn:
            reply = self.sasl_conversation(conn, "SCRAM-SHA-256", "app", WRONG, speculative=True)
            self.assertEqual(reply["code"], 18, reply)
            self.assertEqual(conn.command({"find": "spec"}, "e2e_auth")["code"], 13)

    def test_conversation_without_skip_empty_exchange_and_logout(self):
        with WireConnection(self.proxy.port) as conn:
            reply = self.sasl_conversation(conn, "SCRAM-SHA-256", "app", PASSWORDS["app"], speculative=False)
            self.assertEqual(reply["ok"], 1.0, reply)
            self.assertEqual(conn.command({"find": "raw", "filter": {}}, "e2e_auth")["ok"], 1.0)
            self.assertEqual(conn.command({"logout": 1}, "admin")["ok"], 1.0)
            self.assertEqual(conn.command({"find": "raw", "filter": {}}, "e2e_auth")["code"], 13)

    def test_tampered_or_replayed_proof_is_refused(self):
        with WireConnection(self.proxy.port) as conn:
            scram = ScramClient("SCRAM-SHA-256", "app", PASSWORDS["app"])
            start = conn.command({"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": Binary(scram.first())})
            final = scram.final(bytes(start["payload"]))
            tampered = final[:-6] + (b"AAAA" if final[-6:-2] != b"AAAA" else b"BBBB") + final[-2:]
            reply = conn.command({"saslContinue": 1, "conversationId": 1, "payload": Binary(tampered)})
            self.assertEqual(reply["code"], 18, reply)
            # The right proof of that conversation, replayed after the failure.
            reply = conn.command({"saslContinue": 1, "conversationId": 1, "payload": Binary(final)})
            self.assertEqual(reply["code"], 18, reply)
            self.assertEqual(conn.command({"find": "x"}, "e2e_auth")["code"], 13)

    def test_scoped_user_reads_and_writes_its_own_store_only(self):
        client = self.client_for("clerk")
        try:
            main = client[MAIN_DB]
            # Rule 2 (prefixed collection in the main database) and rule 3 (store database).
            main["ab_orders"].insert_one({"_id": "o1", "total": 5})
            self.assertEqual(main["ab_orders"].find_one({"_id": "o1"})["total"], 5)
            client["store_ab"]["products"].insert_one({"_id": "p1"})
            self.assertEqual(client["store_ab"]["products"].count_documents({}), 1)
            self.assertIn({"_id": "o1", "total": 5},
                          self.upstream.find_all(f"{STORE_DB_PREFIX}_1", "ab_orders"))
            # Shared collections: read, not write (main_database: read).
            main["settings"].find_one()
            with self.assertRaises(OperationFailure) as caught:
                main["settings"].insert_one({"k": "v"})
            self.assertEqual(caught.exception.code, 13)
            self.assertIn(f"{MAIN_DB}.settings", str(caught.exception))
            # Another store: refused, including through a pipeline.
            for action in (lambda: main["cd_orders"].find_one(),
                           lambda: main["cd_orders"].insert_one({"x": 1}),
                           lambda: client["store_cd"]["orders"].find_one(),
                           lambda: list(main["ab_orders"].aggregate([{"$lookup": {
                               "from": "cd_products", "localField": "p", "foreignField": "_id", "as": "x"}}])),
                           lambda: client["masteradmin"]["tenants"].find_one()):
                with self.assertRaises(OperationFailure) as caught:
                    action()
                self.assertEqual(caught.exception.code, 13, caught.exception.details)
                self.assertEqual(caught.exception.details.get("codeName"), "Unauthorized")
            self.assertIn(f"{MAIN_DB}.cd_products", str(caught.exception.details) + str(self.proxy.log()))
        finally:
            client.close()
        # Nothing of the refused commands reached the upstream.
        self.assertNotIn("cd_orders", self.upstream.collection_names(f"{STORE_DB_PREFIX}_1"))
        self.assertEqual(self.upstream.find_all(MAIN_DB, "settings"), [])
        # An unrestricted user still reaches store cd.
        client = self.client_for("app")
        try:
            client[MAIN_DB]["cd_orders"].insert_one({"_id": "c1"})
            self.assertEqual(client[MAIN_DB]["cd_orders"].count_documents({}), 1)
        finally:
            client.close()

    def test_node_driver_mongoose_and_mongosh(self):
        node = NodeRunner(self.workdir)
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
            right = uri_for(self.proxy.port, "app", PASSWORDS["app"], "e2e_auth", authSource="admin",
                            authMechanism=mechanism)
            wrong = uri_for(self.proxy.port, "app", WRONG, "e2e_auth", authSource="admin",
                            authMechanism=mechanism)
            self.check_node_clients(node, right, wrong, "node_" + mechanism.replace("-", "_").lower())
        # No authMechanism: the driver speculates with SCRAM-SHA-256, which a SHA-1-only user
        # cannot use; it then negotiates SCRAM-SHA-1 through saslSupportedMechs.
        doc = node.client(self, "driver", uri_for(self.proxy.port, "sha1only", PASSWORDS["sha1only"], "e2e_auth",
                                                  authSource="admin"), "node_sha1only")
        self.assertTrue(doc["ok"], doc)
        self.assertEqual(doc["found"], 1)
        self.assert_log_has_no_password(self.proxy)


class UsersReload(AuthCase):
    """SIGHUP replaces the users: new logins see the new list; a session keeps the user it
    authenticated as until it logs out or reconnects."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.upstream = cls.start_upstream("main")

    def config(self, *users: dict) -> dict:
        return {"upstreams": {"main": {"uri": self.upstream.uri + MAIN_DB}},
                "auth": {"mode": "users", "users": list(users)}}

    def login(self, port: int, user: str, password: str) -> Optional[Exception]:
        client = MongoClient(uri_for(port, user, password), serverSelectionTimeoutMS=5000)
        try:
            client["e2e_auth"]["reload"].find_one()
            return None
        except OperationFailure as e:
            return e
        finally:
            client.close()

    def test_sighup_swaps_the_users(self):
        app = hash_password("app", PASSWORDS["app"])
        late = hash_password("relayuser", PASSWORDS["relayuser"])
        proxy = self.start_configured_proxy(self.config(app), name="reload")
        self.assertIsNone(self.login(proxy.port, "app", PASSWORDS["app"]))
        self.assert_auth_failed(self.login(proxy.port, "relayuser", PASSWORDS["relayuser"]))
        with WireConnection(proxy.port) as kept:
            scram = ScramClient("SCRAM-SHA-256", "app", PASSWORDS["app"])
            start = kept.command({"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": Binary(scram.first()),
                                  "options": {"skipEmptyExchange": True}})
            done = kept.command({"saslContinue": 1, "conversationId": start["conversationId"],
                                 "payload": Binary(scram.final(bytes(start["payload"])))})
            self.assertTrue(done["done"], done)
            harness.write_yaml_config(self.workdir / f"{proxy.name}.yaml", self.config(late))
            proxy.proc.send_signal(signal.SIGHUP)
            proxy.wait_for_log(r"configuration reload \(SIGHUP\) applied", timeout=10)
            self.assertIsNone(self.login(proxy.port, "relayuser", PASSWORDS["relayuser"]))
            self.assert_auth_failed(self.login(proxy.port, "app", PASSWORDS["app"]))
            self.assertEqual(kept.command({"find": "reload", "filter": {}}, "e2e_auth")["ok"], 1.0)
        self.assert_log_has_no_password(proxy)


# --------------------------------------------------------------------------------------
# relay mode

class _EveryCommand:
    """Stands in for mock_upstream's _AUTH_EXEMPT: the mock checks SCRAM conversations
    but lets mongogate's pooled (unauthenticated) connections run commands."""

    def __contains__(self, name: object) -> bool:
        return True


class RelayMode(AuthCase):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        module = import_mock_upstream()
        module._AUTH_EXEMPT = _EveryCommand()
        cls.upstream = cls.start_inprocess_upstream("main", users={"relayuser": PASSWORDS["relayuser"]})
        cls.proxy = cls.start_proxy(cls.upstream, ["--auth-mode", "relay"], admin=True)

    def client_for(self, password: str, **options: Any) -> MongoClient:
        return MongoClient(uri_for(self.proxy.port, "relayuser", password), serverSelectionTimeoutMS=5000,
                           connectTimeoutMS=5000, retryWrites=False, **options)

    def test_pymongo_right_and_wrong_password(self):
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
            with self.subTest(mechanism=mechanism):
                self.upstream.clear_recorded()
                client = self.client_for(PASSWORDS["relayuser"], authMechanism=mechanism)
                try:
                    client["e2e_auth"]["relay"].insert_one({"m": mechanism})
                    self.assertEqual(client["e2e_auth"]["relay"].count_documents({"m": mechanism}), 1)
                finally:
                    client.close()
                # The conversation was carried out against the upstream.
                names = [harness.record_command_name(r) for r in self.upstream.recorded()]
                self.assertIn("saslContinue", names)
                client = self.client_for(WRONG, authMechanism=mechanism)
                try:
                    with self.assertRaises(OperationFailure) as caught:
                        client["e2e_auth"]["relay"].find_one()
                    self.assert_auth_failed(caught.exception)
                finally:
                    client.close()
        self.proxy.wait_for_log(r"authenticated as 'relayuser' on 'admin' \(relayed to main\)")
        self.proxy.wait_for_log(r"authentication failed for user 'relayuser' on 'admin': the main upstream refused")
        self.assert_log_has_no_password(self.proxy)

    def test_unauthenticated_is_refused(self):
        with WireConnection(self.proxy.port) as conn:
            self.assertEqual(conn.command({"find": "relay"}, "e2e_auth")["code"], 13)

    def test_node_driver_mongoose_and_mongosh(self):
        node = NodeRunner(self.workdir)
        right = uri_for(self.proxy.port, "relayuser", PASSWORDS["relayuser"], "e2e_auth", authSource="admin")
        wrong = uri_for(self.proxy.port, "relayuser", WRONG, "e2e_auth", authSource="admin")
        self.check_node_clients(node, right, wrong, "relay")
        self.assert_log_has_no_password(self.proxy)


# --------------------------------------------------------------------------------------
# none mode and configuration

class NoneMode(AuthCase):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.upstream = cls.start_upstream("main")
        cls.proxy = cls.start_proxy(cls.upstream)

    def test_credentials_get_a_clear_authentication_failed(self):
        client = MongoClient(uri_for(self.proxy.port, "app", PASSWORDS["app"]), serverSelectionTimeoutMS=5000)
        try:
            with self.assertRaises(OperationFailure) as caught:
                client["e2e_auth"]["x"].find_one()
            self.assertEqual(caught.exception.code, 18)
            self.assertIn("auth.mode is none", str(caught.exception))
        finally:
            client.close()
        # Without credentials everything works as before.
        client = MongoClient(f"mongodb://127.0.0.1:{self.proxy.port}/", serverSelectionTimeoutMS=5000)
        try:
            client["e2e_auth"]["x"].insert_one({"a": 1})
        finally:
            client.close()
        self.assert_log_has_no_password(self.proxy)

    def test_check_config_lists_auth_problems_by_path(self):
        binary = find_mongogate_binary()
        bad = self.workdir / "bad-auth.yaml"
        bad.write_text(
            "upstreams: {main: {uri: 'mongodb://127.0.0.1:1/main_db'}}\n"
            "auth:\n  mode: users\n  users:\n"
            "    - user: a\n      stores: 'ab'\n"
            "      scram_sha_256: {salt: 'not base64!', iterations: 100, stored_key: 'AAAA', server_key: 'AAAA'}\n"
            "    - db: admin\n      colour: blue\n")
        result = subprocess.run([str(binary), "--config", str(bad), "--check-config"], capture_output=True,
                                text=True, timeout=30)
        self.assertEqual(result.returncode, 2, result.stderr)
        for expected in ("auth.users[0].stores: expected a list", "auth.users[0].scram_sha_256.salt: expected base64",
                         "auth.users[0].scram_sha_256.iterations: expected a whole number from 4096",
                         "auth.users[0].scram_sha_256.stored_key: expected 32 bytes",
                         "auth.users[1].colour: unknown key", "auth.users[1]: missing: every user needs"):
            self.assertIn(expected, result.stderr)
        result = subprocess.run([str(binary), "--upstream", "mongodb://127.0.0.1:1/main_db", "--auth-mode", "users",
                                 "--check-config"], capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 2)
        self.assertIn("--auth-mode: users mode needs at least one user", result.stderr)


if __name__ == "__main__":
    harness.main()
