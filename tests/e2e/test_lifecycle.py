"""mongogate as a process: start-up contract, environment fallbacks, SIGTERM, dead upstream.

Run: MONGOGATE_BIN=build/proxy/mongogate /usr/bin/python3 -m unittest -v test_lifecycle
"""

from __future__ import annotations

import socket
import threading
import time

from pymongo import MongoClient

import harness
from harness import STOP_TIMEOUT, E2ETestCase, WireConnection, commands_named, wait_until

DB = "e2e_lifecycle"


def client_for(port: int, **options) -> MongoClient:
    opts = dict(serverSelectionTimeoutMS=10000, connectTimeoutMS=10000, socketTimeoutMS=20000,
                retryReads=False, retryWrites=False)
    opts.update(options)
    return MongoClient("127.0.0.1", port, **opts)


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
