"""mongogate as a process: start-up contract, environment fallbacks, SIGTERM (its drain
waits for in-flight requests and open transactions), dead upstream.

Run: MONGOGATE_BIN=build/proxy/mongogate /usr/bin/python3 -m unittest -v test_lifecycle
"""

from __future__ import annotations

import signal
import socket
import threading
import time
import uuid

from bson import Binary, Int64

import harness
from harness import STOP_TIMEOUT, E2ETestCase, WireConnection, client_for, commands_named, wait_until

DB = "e2e_lifecycle"


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lifecycle(E2ETestCase):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.upstream = cls.start_upstream("main")

    def setUp(self) -> None:
        super().setUp()
        self.require_proxy()
        self.addCleanup(self.upstream.clear_faults)

    def test_port_file_and_listening_line(self):
        proxy = self.start_proxy(self.upstream)
        self.assertEqual(proxy.port_file.read_text(), f"{proxy.port}\n")
        # "mongogate listening on 127.0.0.1:PORT" (a version may sit between the words).
        proxy.wait_for_log(rf"mongogate\b.*\blistening on 127\.0\.0\.1:{proxy.port}\b")
        self.stop_proxy(proxy)
        self.assertEqual(proxy.exit_code, 0)

    def test_first_hello_already_carries_the_upstream_limits(self):
        # A client connecting right after start must not be told mongogate's defaults
        # (maxWireVersion 21) when the upstream is older (17 = MongoDB 6.0).
        old = self.start_upstream("wire17", max_wire_version=17)
        proxy = self.start_proxy(old)
        with WireConnection(proxy.port) as conn:
            hello = conn.command({"hello": 1})
        self.assertEqual(hello.get("maxWireVersion"), 17, hello)
        self.stop_proxy(proxy)

    def test_environment_fallbacks(self):
        # No --upstream and no --listen: MONGODB_URI and MONGOGATE_LISTEN (127.0.0.1:0).
        proxy = self.start_proxy(self.upstream, cli_upstream=False, cli_listen=False)
        client = client_for(proxy.port)
        try:
            client[DB].envcheck.insert_one({"_id": "via-env"})
        finally:
            client.close()
        self.assertEqual(self.upstream.find_all(DB, "envcheck"), [{"_id": "via-env"}])
        self.stop_proxy(proxy)

    def test_sigterm_with_connected_clients_exits_zero_promptly(self):
        proxy = self.start_proxy(self.upstream)
        client = client_for(proxy.port)
        client[DB].idle.insert_one({"x": 1})  # pooled connections now open both ways
        idle_raw = WireConnection(proxy.port)
        self.addCleanup(idle_raw.close)
        self.addCleanup(client.close)
        started = time.monotonic()
        self.stop_proxy(proxy)  # SIGTERM, exit 0, no sanitizer report
        self.assertLess(time.monotonic() - started, STOP_TIMEOUT)
        self.assertTrue(idle_raw.wait_closed(5), "an idle client connection outlived the proxy")
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()

    def test_sigterm_lets_an_in_flight_request_finish(self):
        # SPEC §9: SIGTERM drains — stop accepting, finish in-flight work, exit 0.
        proxy = self.start_proxy(self.upstream)
        self.upstream.clear_recorded()
        self.upstream.add_fault("find", "delay", delayMs=1500, times=1, collection="inflight")
        result: dict = {}

        def in_flight() -> None:
            try:
                with WireConnection(proxy.port, timeout=15) as conn:
                    result["doc"] = conn.command({"find": "inflight", "filter": {}}, db=DB)
            except Exception as e:  # noqa: BLE001 - asserted below
                result["error"] = e

        t = threading.Thread(target=in_flight, daemon=True)
        t.start()
        wait_until(lambda: commands_named(self.upstream.recorded(), "find",
                                          collection="inflight"), 5,
                   message="the in-flight find at the upstream")
        self.stop_proxy(proxy)
        t.join(timeout=15)
        self.assertFalse(t.is_alive())
        self.assertNotIn("error", result, result)
        self.assertEqual(result["doc"].get("ok"), 1.0, result)

    def start_draining_proxy(self, drain_timeout_ms: int):
        proxy = self.start_proxy(self.upstream, ["--drain-timeout-ms", str(drain_timeout_ms)], admin=True)
        wait_until(lambda: proxy.admin_request("GET", "/readyz")[0] == 200, 15, message="/readyz 200")
        client = client_for(proxy.port)
        self.addCleanup(client.close)
        return proxy, client

    def open_transaction(self, proxy, client, collection: str):
        """A transaction with one insert, not committed; the open-transactions gauge shows it."""
        session = client.start_session()
        self.addCleanup(session.end_session)
        session.start_transaction()
        client[DB][collection].insert_one({"_id": "in-txn"}, session=session)
        metrics = proxy.admin_request("GET", "/metrics")[2].decode()
        self.assertIn("\nmongogate_open_transactions 1\n", metrics)
        return session

    def test_sigterm_waits_for_an_open_transaction_to_commit(self):
        # Issue 6: on SIGTERM, readiness turns false and new connections are refused, but an
        # open transaction may still commit on its connection; exit 0 follows the commit.
        proxy, client = self.start_draining_proxy(15000)
        session = self.open_transaction(proxy, client, "drain_commit")
        proxy.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: proxy.admin_request("GET", "/readyz")[0] == 503, 5, message="/readyz 503")
        wait_until(lambda: proxy.log().count("open transactions") > 0, 5, message="the drain's log line")
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()
        time.sleep(1.0)
        self.assertTrue(proxy.alive(), "mongogate exited with a transaction still open")
        self.assertEqual(self.upstream.find_all(DB, "drain_commit"), [])
        committed = time.monotonic()
        session.commit_transaction()
        proxy.proc.wait(timeout=5)
        self.assertLess(time.monotonic() - committed, 5)
        self.assertEqual(self.upstream.find_all(DB, "drain_commit"), [{"_id": "in-txn"}])
        self.assertNotIn("drain timeout", proxy.log())
        self.stop_proxy(proxy)  # exit code 0, no sanitizer report

    def test_sigterm_with_a_transaction_never_committed_exits_at_the_drain_timeout(self):
        proxy, client = self.start_draining_proxy(2000)
        self.open_transaction(proxy, client, "drain_abandoned")
        signalled = time.monotonic()
        proxy.proc.send_signal(signal.SIGTERM)
        proxy.proc.wait(timeout=STOP_TIMEOUT)
        waited = time.monotonic() - signalled
        self.assertGreaterEqual(waited, 1.9)
        self.assertLess(waited, 10)
        proxy.wait_for_log(r"drain timeout after 2000 ms: abandoning 0 in-flight requests and 1 open transactions")
        self.assertEqual(self.upstream.find_all(DB, "drain_abandoned"), [])
        self.stop_proxy(proxy)  # exit code 0, no sanitizer report

    def test_open_transactions_end_on_commit_from_another_connection_or_when_their_connection_closes(self):
        # The count is by session, process-wide: a driver may commit on another pooled
        # connection; the connection that started a transaction closing ends it too.
        proxy, _ = self.start_draining_proxy(10000)

        def gauge() -> str:
            text = proxy.admin_request("GET", "/metrics")[2].decode()
            return next(line for line in text.splitlines() if line.startswith("mongogate_open_transactions "))

        def start(conn: WireConnection, lsid: dict, coll: str) -> None:
            reply = conn.command({"insert": coll, "documents": [{"_id": 1}], "lsid": lsid, "txnNumber": Int64(1),
                                  "startTransaction": True, "autocommit": False}, db=DB)
            self.assertEqual(reply.get("ok"), 1.0, reply)

        first = {"id": Binary(uuid.uuid4().bytes, 4)}
        with WireConnection(proxy.port) as starter, WireConnection(proxy.port) as other:
            start(starter, first, "drain_other_conn")
            self.assertEqual(gauge(), "mongogate_open_transactions 1")
            reply = other.command({"commitTransaction": 1, "lsid": first, "txnNumber": Int64(1),
                                   "autocommit": False}, db="admin")
            self.assertEqual(reply.get("ok"), 1.0, reply)
            # The count drops just after the commit's reply is written to the client.
            wait_until(lambda: gauge() == "mongogate_open_transactions 0", 5, message="the commit to end it")
            start(starter, {"id": Binary(uuid.uuid4().bytes, 4)}, "drain_closed_conn")
            self.assertEqual(gauge(), "mongogate_open_transactions 1")
        wait_until(lambda: gauge() == "mongogate_open_transactions 0", 5, message="the gauge back to 0")
        self.assertEqual(self.upstream.find_all(DB, "drain_other_conn"), [{"_id": 1}])
        signalled = time.monotonic()
        self.stop_proxy(proxy)
        self.assertLess(time.monotonic() - signalled, 5)

    def test_unreachable_upstream_is_an_error_reply_not_a_hang(self):
        dead = f"mongodb://127.0.0.1:{unused_port()}/{harness.MAIN_DB}"
        proxy = self.start_proxy(dead, ["--wait-queue-timeout-ms", "1000"])
        with WireConnection(proxy.port) as conn:
            hello = conn.command({"hello": 1})
            self.assertEqual((hello.get("ok"), hello.get("msg")), (1.0, "isdbgrid"))
            started = time.monotonic()
            doc = conn.command({"find": "anything", "filter": {}}, db=DB, timeout=15)
            self.assertLess(time.monotonic() - started, 10)
            self.assertEqual(doc.get("ok"), 0, doc)
            self.assertIsInstance(doc.get("code"), int, doc)
            self.assertTrue(doc.get("errmsg"), doc)
            self.assertNotIn(dead.split("/")[2], repr(doc), "error reveals the upstream host")
        self.stop_proxy(proxy)


if __name__ == "__main__":
    harness.main()
