"""Faults through the real mongogate binary: broken upstreams, hostile frames, full pools.

Every test bounds its waits. The rule under test: a bad client or a bad upstream costs
exactly one client connection, a clear error or a prompt network error — never a hang,
never the proxy, never another client.
Run: MONGOGATE_BIN=build/proxy/mongogate /usr/bin/python3 -m unittest -v test_faults
"""

from __future__ import annotations

import signal
import socket
import struct
import threading
import time

import bson
from pymongo import MongoClient
from pymongo.errors import AutoReconnect, ConnectionFailure, OperationFailure

import harness
from harness import (OP_INSERT, OP_MSG, OP_REPLY, E2ETestCase, WireConnection,
                     commands_named, frame, op_msg, op_msg_payload, op_query)

DB = "e2e_faults"
CLOSE_TIMEOUT = 5.0  # a misbehaving connection must be closed well within this


def error_message(reply) -> str:
    """errmsg (OP_MSG), or $err (an OP_REPLY query failure, as mongod sends)."""
    return reply.doc.get("errmsg") or reply.doc.get("$err") or ""


def make_client(port: int, **options) -> MongoClient:
    opts = dict(serverSelectionTimeoutMS=10000, connectTimeoutMS=10000, socketTimeoutMS=20000,
                retryReads=False, retryWrites=False, appname="mongogate-e2e-faults")
    opts.update(options)
    return MongoClient("127.0.0.1", port, **opts)


class FaultTestCase(E2ETestCase):
    """One upstream and one proxy per class; a healthy bystander client for every test."""

    proxy_args: tuple[str, ...] = ()

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.upstream = cls.start_upstream("main")
        cls.proxy = cls.start_proxy(cls.upstream, cls.proxy_args)
        cls.port = cls.client_address(cls.proxy, cls.upstream)[1]
        cls.bystander = make_client(cls.port)
        cls.addClassCleanup(cls.bystander.close)
        cls.bystander[DB].bystander.insert_one({"warm": True})

    def setUp(self) -> None:
        super().setUp()
        self.addCleanup(self.upstream.clear_faults)

    def assert_bystander_works(self) -> None:
        coll = self.bystander[DB].bystander
        marker = {"t": time.monotonic_ns()}
        coll.insert_one(marker)
        self.assertEqual(coll.count_documents({"t": marker["t"]}), 1)


class UpstreamFailures(FaultTestCase):

    def test_upstream_closing_mid_request_is_a_prompt_network_error(self):
        self.require_proxy()
        victim = make_client(self.port)
        self.addCleanup(victim.close)
        victim[DB].things.insert_one({"_id": 1, "k": "v"})

        # A second client keeps working for the whole episode.
        stop = threading.Event()
        bystander_errors: list[BaseException] = []
        bystander_ops = [0]

        def keep_working() -> None:
            client = make_client(self.port)
            try:
                coll = client[DB].concurrent
                while not stop.is_set():
                    coll.insert_one({"n": bystander_ops[0]})
                    coll.find_one({"n": bystander_ops[0]})
                    bystander_ops[0] += 1
            except BaseException as e:  # noqa: BLE001 - reported by the test thread
                bystander_errors.append(e)
            finally:
                client.close()

        worker = threading.Thread(target=keep_working, daemon=True)
        worker.start()
        try:
            # Only `distinct` on this collection is faulted; the bystander is not.
            self.upstream.add_fault("distinct", "close", times=1, collection="things")
            started = time.monotonic()
            with self.assertRaises((AutoReconnect, ConnectionFailure)):
                victim[DB].things.distinct("k")
            elapsed = time.monotonic() - started
            self.assertLess(elapsed, 5.0, "network error must be prompt, not a socket timeout")
            # The driver reconnects and carries on.
            self.assertEqual(victim[DB].things.distinct("k"), ["v"])
            time.sleep(0.5)
        finally:
            stop.set()
            worker.join(timeout=10)
        self.assertFalse(worker.is_alive(), "bystander client hung")
        self.assertEqual(bystander_errors, [])
        self.assertGreater(bystander_ops[0], 0)
        self.assertTrue(commands_named(self.upstream.recorded(), "distinct", collection="things"))
        self.assert_bystander_works()

    def test_upstream_error_reply_is_relayed(self):
        # Not a state-change code (those make pymongo reset its pool), just a failure.
        self.upstream.add_fault("count", "error", code=2, codeName="BadValue",
                                errmsg="injected by the e2e test", times=1)
        with self.assertRaises(OperationFailure) as ctx:
            self.bystander[DB].command("count", "things")
        self.assertEqual(ctx.exception.code, 2)
        self.assertEqual(ctx.exception.details.get("codeName"), "BadValue")
        self.assertIn("injected by the e2e test", str(ctx.exception))
        self.assert_bystander_works()


class HostileFrames(FaultTestCase):
    """Raw sockets sending what no driver sends; only that connection may suffer."""

    def send_and_expect_close(self, data: bytes, half_close: bool = False) -> None:
        with WireConnection(self.port) as conn:
            conn.send(data)
            if half_close:
                conn.sock.shutdown(socket.SHUT_WR)
            self.assertTrue(conn.wait_closed(CLOSE_TIMEOUT),
                            "mongogate kept the connection open after a bad frame")
        self.assert_bystander_works()

    def setUp(self) -> None:
        super().setUp()
        self.require_proxy()

    def test_length_below_header_size(self):
        for length in (0, 8, 15, -1):
            with self.subTest(length=length):
                self.send_and_expect_close(frame(OP_MSG, b"", length=length))

    def test_length_above_the_maximum(self):
        self.send_and_expect_close(frame(OP_MSG, b"\x00" * 64, length=0x7FFFFFF0))

    def test_truncated_body_then_close(self):
        full = op_msg({"ping": 1, "$db": "admin"})
        self.send_and_expect_close(full[:-5], half_close=True)

    def test_unknown_opcode(self):
        self.send_and_expect_close(frame(9999, op_msg_payload({"ping": 1, "$db": "admin"})))

    def test_op_msg_with_invalid_bson_body(self):
        good = bson.encode({"ping": 1, "$db": "admin"})
        bodies = {
            # document length points past the end of the message
            "length past end": struct.pack("<i", len(good) + 50) + good[4:],
            # unknown element type as the very first element
            "unknown type": struct.pack("<i", 12) + b"\x77x\x00" + b"\x01\x02\x03\x04" + b"\x00",
            # missing terminating NUL
            "no terminator": good[:-1] + b"\x01",
            # string length larger than the document
            "bad string": struct.pack("<i", 20) + b"\x02$db\x00" + struct.pack("<i", 999)
                          + b"ab\x00\x00\x00",
        }
        for what, body in bodies.items():
            with self.subTest(what):
                self.send_and_expect_close(frame(OP_MSG, op_msg_payload(body_bytes=body)))

    def test_op_msg_with_two_body_sections(self):
        payload = (struct.pack("<I", 0)
                   + b"\x00" + bson.encode({"ping": 1, "$db": "admin"})
                   + b"\x00" + bson.encode({"ping": 1, "$db": "admin"}))
        self.send_and_expect_close(frame(OP_MSG, payload))

    def test_op_msg_with_unknown_required_flag(self):
        # Bits 0-15 are "required": a receiver must reject bits it does not know (bit 2).
        self.send_and_expect_close(op_msg({"ping": 1, "$db": "admin"}, flags=1 << 2))

    def test_legacy_op_insert_gets_an_error_then_close(self):
        self.upstream.clear_recorded()
        payload = (struct.pack("<i", 0) + f"{DB}.legacy".encode() + b"\x00"
                   + bson.encode({"_id": "legacy-doc"}))
        with WireConnection(self.port) as conn:
            conn.send(frame(OP_INSERT, payload))
            reply = conn.recv_message(CLOSE_TIMEOUT)
            self.assertIn(reply.opcode, (OP_MSG, OP_REPLY))
            self.assertEqual(reply.doc.get("ok"), 0, reply.doc)
            self.assertTrue(error_message(reply), reply.doc)
            self.assertIsInstance(reply.doc.get("code"), int, reply.doc)
            self.assertTrue(conn.wait_closed(CLOSE_TIMEOUT), "legacy opcode: connection stayed open")
        self.assertEqual(commands_named(self.upstream.recorded(), "insert", collection="legacy"), [])
        self.assertEqual(self.upstream.find_all(DB, "legacy"), [])
        self.assert_bystander_works()

    def test_op_query_handshake_gets_op_reply(self):
        for name in ("isMaster", "ismaster", "hello"):
            with self.subTest(name=name), WireConnection(self.port) as conn:
                rid = harness.next_request_id()
                conn.send(op_query("admin.$cmd", {name: 1, "client": {
                    "driver": {"name": "raw-e2e", "version": "0"}}}, request_id=rid))
                reply = conn.recv_message(CLOSE_TIMEOUT)
                self.assertEqual(reply.opcode, OP_REPLY)
                self.assertEqual(reply.response_to, rid)
                self.assertEqual(len(reply.docs), 1)
                doc = reply.doc
                self.assertEqual(doc.get("ok"), 1.0, doc)
                self.assertEqual(doc.get("msg"), "isdbgrid")
                self.assertNotIn("hosts", doc)
                # The same connection then speaks OP_MSG.
                self.assertEqual(conn.command({"ping": 1}).get("ok"), 1.0)
        names = harness.hello_driver_names(self.upstream.recorded())
        self.assertNotIn("raw-e2e", names)

    def test_op_query_for_a_normal_command_is_refused(self):
        self.upstream.clear_recorded()
        with WireConnection(self.port) as conn:
            rid = harness.next_request_id()
            conn.send(op_query(f"{DB}.$cmd", {"count": "bystander"}, request_id=rid))
            reply = conn.recv_message(CLOSE_TIMEOUT)
            self.assertEqual(reply.opcode, OP_REPLY)
            self.assertEqual(reply.response_to, rid)
            self.assertEqual(reply.doc.get("ok"), 0, reply.doc)
            self.assertTrue(error_message(reply), reply.doc)
            # Refused, not closed: the handshake still works on the same connection.
            self.assertEqual(conn.command({"hello": 1}).get("ok"), 1.0)
        self.assertEqual(commands_named(self.upstream.recorded(), "count",
                                        collection="bystander"), [])
        self.assert_bystander_works()

    def test_raw_op_msg_round_trip(self):
        # Positive control for the raw client: a well-formed frame works.
        with WireConnection(self.port) as conn:
            doc = conn.command({"insert": "raw", "documents": [{"_id": 1}]}, db=DB)
            self.assertEqual((doc.get("ok"), doc.get("n")), (1.0, 1))
            rid = harness.next_request_id()
            conn.send(op_msg({"insert": "raw", "$db": DB}, request_id=rid,
                             sequences=[("documents", [{"_id": 2}, {"_id": 3}])]))
            reply = conn.recv_message(CLOSE_TIMEOUT)
            self.assertEqual(reply.response_to, rid)
            self.assertEqual((reply.doc.get("ok"), reply.doc.get("n")), (1.0, 2))
        self.assertEqual(sorted(d["_id"] for d in self.upstream.find_all(DB, "raw")), [1, 2, 3])


MAX_MESSAGE = 1024 * 1024


class MessageSizeLimit(FaultTestCase):
    proxy_args = ("--max-message-size", str(MAX_MESSAGE))

    def setUp(self) -> None:
        super().setUp()
        self.require_proxy()

    def test_frame_over_the_limit_is_closed_and_logged(self):
        header_only = frame(OP_MSG, b"", length=2 * MAX_MESSAGE)
        with WireConnection(self.port) as conn:
            conn.send(header_only + b"\x00" * 4096)
            self.assertTrue(conn.wait_closed(CLOSE_TIMEOUT))
        self.proxy.wait_for_log(r"exceeds|too large")
        self.assert_bystander_works()

    def test_frame_under_the_limit_is_served(self):
        coll = self.bystander[DB].big
        coll.insert_one({"_id": "big", "blob": "x" * (MAX_MESSAGE // 2)})
        self.assertEqual(len(coll.find_one({"_id": "big"})["blob"]), MAX_MESSAGE // 2)


WAIT_QUEUE_MS = 500
DELAY_MS = 4000


class RequestDeadline(FaultTestCase):
    """No request outlives its deadline: maxTimeMS + topology.request_deadline_grace_ms
    (default 1000 ms) bounds the wait for the upstream's reply; without maxTimeMS (and
    request_timeout_ms off) a slow reply is waited for."""

    GRACE_S = 1.0  # the default grace

    def setUp(self) -> None:
        super().setUp()
        self.require_proxy()

    def test_hung_find_with_max_time_gets_max_time_ms_expired(self):
        self.upstream.add_fault("find", "hang", times=1, collection="hung")
        with WireConnection(self.port, timeout=30) as conn:
            started = time.monotonic()
            doc = conn.command({"find": "hung", "filter": {}, "maxTimeMS": 200}, db=DB, timeout=30)
            elapsed = time.monotonic() - started
            self.assertEqual(doc.get("ok"), 0, doc)
            self.assertEqual(doc.get("code"), 50, doc)
            self.assertEqual(doc.get("codeName"), "MaxTimeMSExpired", doc)
            self.assertNotIn("errorLabels", doc)  # the upstream may have done the work
            self.assertNotIn("127.0.0.1", doc.get("errmsg", ""))
            # maxTimeMS + grace = 1.2 s; generous above for a loaded machine, and the hang
            # itself lasts until the fault is cleared (never, within this test).
            self.assertGreaterEqual(elapsed, 0.2 + self.GRACE_S * 0.9)
            self.assertLess(elapsed, 5.0)
            # The client connection is kept and serves the next request.
            again = conn.command({"find": "hung", "filter": {}, "maxTimeMS": 5000}, db=DB, timeout=10)
            self.assertEqual(again.get("ok"), 1.0, again)
        line = self.proxy.wait_for_log(r"no reply to find from upstream .* within 1200 ms; answering MaxTimeMSExpired")
        self.assertNotIn(str(self.upstream.port), line)  # the configured name, never the host
        self.assert_bystander_works()

    def test_reply_within_the_grace_arrives(self):
        # The upstream answers after maxTimeMS but within the grace: the reply wins.
        self.upstream.add_fault("find", "delay", delayMs=500, times=1, collection="late")
        with WireConnection(self.port, timeout=30) as conn:
            doc = conn.command({"find": "late", "filter": {}, "maxTimeMS": 200}, db=DB, timeout=30)
        self.assertEqual(doc.get("ok"), 1.0, doc)

    def test_delayed_reply_without_max_time_arrives(self):
        self.upstream.add_fault("find", "delay", delayMs=2500, times=1, collection="slow")
        with WireConnection(self.port, timeout=30) as conn:
            started = time.monotonic()
            doc = conn.command({"find": "slow", "filter": {}}, db=DB, timeout=30)
            elapsed = time.monotonic() - started
        self.assertEqual(doc.get("ok"), 1.0, doc)
        self.assertGreaterEqual(elapsed, 2.4)


class GlobalRequestTimeout(FaultTestCase):
    """topology.request_timeout_ms bounds commands without maxTimeMS; maxTimeMS wins."""

    proxy_args = ("--request-timeout-ms", "800")

    def setUp(self) -> None:
        super().setUp()
        self.require_proxy()

    def test_hung_command_without_max_time_gets_exceeded_time_limit(self):
        self.upstream.add_fault("find", "hang", times=1, collection="hung")
        with WireConnection(self.port, timeout=30) as conn:
            started = time.monotonic()
            doc = conn.command({"find": "hung", "filter": {}}, db=DB, timeout=30)
            elapsed = time.monotonic() - started
            self.assertEqual(doc.get("ok"), 0, doc)
            self.assertEqual(doc.get("code"), 262, doc)
            self.assertEqual(doc.get("codeName"), "ExceededTimeLimit", doc)
            self.assertNotIn("errorLabels", doc)
            self.assertGreaterEqual(elapsed, 0.7)
            self.assertLess(elapsed, 5.0)
            self.assertEqual(conn.command({"ping": 1}, db=DB, timeout=10).get("ok"), 1.0)
        self.proxy.wait_for_log(r"no reply to find from upstream .* within 800 ms; answering ExceededTimeLimit")
        self.assert_bystander_works()

    def test_a_reload_applies_the_timeout(self):
        def config(timeout_ms: int) -> dict:
            return {"upstreams": {"main": {"uri": self.upstream.uri + harness.MAIN_DB}},
                    "topology": {"request_timeout_ms": timeout_ms}}

        proxy = self.start_configured_proxy(config(0), name="deadline-reload")
        self.upstream.add_fault("find", "delay", delayMs=1200, times=1, collection="slow")
        with WireConnection(proxy.port, timeout=30) as conn:
            self.assertEqual(conn.command({"find": "slow", "filter": {}}, db=DB, timeout=30).get("ok"), 1.0)
            harness.write_yaml_config(self.workdir / f"{proxy.name}.yaml", config(500))
            proxy.proc.send_signal(signal.SIGHUP)
            proxy.wait_for_log(r"configuration reload \(SIGHUP\) applied", timeout=10)
            self.upstream.add_fault("find", "hang", times=1, collection="hung")
            started = time.monotonic()
            doc = conn.command({"find": "hung", "filter": {}}, db=DB, timeout=30)
            self.assertEqual(doc.get("code"), 262, doc)
            self.assertLess(time.monotonic() - started, 5.0)

    def test_max_time_overrides_the_global_timeout(self):
        self.upstream.add_fault("find", "delay", delayMs=1500, times=1, collection="slow")
        with WireConnection(self.port, timeout=30) as conn:
            doc = conn.command({"find": "slow", "filter": {}, "maxTimeMS": 3000}, db=DB, timeout=30)
        self.assertEqual(doc.get("ok"), 1.0, doc)


class PoolExhaustion(FaultTestCase):
    # One worker thread, so "one pooled connection" cannot mean one per thread.
    proxy_args = ("--pool-max-size", "1", "--wait-queue-timeout-ms", str(WAIT_QUEUE_MS),
                  "--threads", "1")

    def setUp(self) -> None:
        super().setUp()
        self.require_proxy()
        self.upstream.clear_recorded()

    def test_waiter_gets_an_error_reply_not_a_hang(self):
        self.upstream.add_fault("find", "delay", delayMs=DELAY_MS, times=1)
        slow_result: dict = {}

        def slow() -> None:
            with WireConnection(self.port, timeout=DELAY_MS / 1000 + 10) as conn:
                slow_result["doc"] = conn.command({"find": "bystander", "filter": {}}, db=DB)

        t = threading.Thread(target=slow, daemon=True)
        t.start()
        # Wait until the slow find holds the only upstream connection.
        harness.wait_until(lambda: commands_named(self.upstream.recorded(), "find",
                                                  collection="bystander"), 5,
                           message="slow find upstream")
        started = time.monotonic()
        with WireConnection(self.port) as conn:
            doc = conn.command({"count": "bystander"}, db=DB, timeout=DELAY_MS / 1000 + 5)
        elapsed = time.monotonic() - started
        self.assertEqual(doc.get("ok"), 0, doc)
        self.assertTrue(doc.get("errmsg"), doc)
        self.assertIsInstance(doc.get("code"), int)
        self.assertLess(elapsed, DELAY_MS / 1000 - 1, "the waiter must give up at the wait-queue "
                        "timeout, not wait for the slow request")
        self.assertGreaterEqual(elapsed, WAIT_QUEUE_MS / 1000 * 0.8)

        t.join(timeout=DELAY_MS / 1000 + 10)
        self.assertFalse(t.is_alive())
        self.assertEqual(slow_result["doc"].get("ok"), 1.0, slow_result)
        # The pool recovered: the same connection serves again.
        self.assert_bystander_works()

    def test_pymongo_sees_an_operation_failure(self):
        self.upstream.add_fault("find", "delay", delayMs=DELAY_MS, times=1)
        slow = make_client(self.port)
        self.addCleanup(slow.close)
        slow.admin.command("ping")
        t = threading.Thread(target=lambda: slow[DB].bystander.find_one({}), daemon=True)
        t.start()
        harness.wait_until(lambda: commands_named(self.upstream.recorded(), "find",
                                                  collection="bystander"), 5,
                           message="slow find upstream")
        started = time.monotonic()
        with self.assertRaises(OperationFailure):
            self.bystander[DB].command("count", "bystander")
        self.assertLess(time.monotonic() - started, DELAY_MS / 1000 - 1)
        t.join(timeout=DELAY_MS / 1000 + 10)
        self.assertFalse(t.is_alive())
        self.assert_bystander_works()


if __name__ == "__main__":
    harness.main()
