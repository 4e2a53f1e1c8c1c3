"""1,000 concurrent clients multiplexed onto an upstream pool of 20.

Every client (a raw OP_MSG connection driven by asyncio, so 1,000 of them fit on two
cores) is connected before any of them writes; then all insert documents with unique
keys at once. Proven afterwards, by reading the mock upstream directly:
  * every client got ok:1 / n:1 for every insert (no errors, no timeouts);
  * every key is in the upstream exactly once (no lost, no duplicated write);
  * the upstream saw at most 20 connections from mongogate (its own connection counter),
    and mongogate's /v1/upstreams never reported more than 20 while the load ran.
"""
from __future__ import annotations

import asyncio
import collections
import json
import struct
import sys
import threading
import time
import unittest

from harness import MAIN_DB, E2ETestCase, file_registry_config, op_msg, parse_reply

CLIENTS = 1000
INSERTS_PER_CLIENT = 5
POOL_SIZE = 20
COLLECTION = "multiplexed"


async def read_message(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(16)
    length = struct.unpack_from("<i", header)[0]
    return header + await reader.readexactly(length - 16)


async def run_client(port: int, index: int, start: asyncio.Event, connected: list, errors: list) -> int:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        connected[0] += 1  # connected or failed: either way no longer pending
    acknowledged = 0
    try:
        await start.wait()
        for i in range(INSERTS_PER_CLIENT):
            key = f"c{index}-{i}"
            writer.write(op_msg({"insert": COLLECTION, "documents": [{"key": key, "client": index}],
                                 "$db": MAIN_DB}))
            await writer.drain()
            reply = parse_reply(await read_message(reader)).doc
            if reply.get("ok") != 1 or reply.get("n") != 1 or reply.get("writeErrors"):
                errors.append((key, reply))
            else:
                acknowledged += 1
    finally:
        writer.close()
        await writer.wait_closed()
    return acknowledged


async def run_load(port: int, errors: list) -> int:
    start = asyncio.Event()
    connected = [0]
    tasks = [asyncio.create_task(run_client(port, i, start, connected, errors)) for i in range(CLIENTS)]
    # Every client connects before any writes, so all 1,000 are open at once.
    deadline = time.monotonic() + 60
    while connected[0] < CLIENTS and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    start.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            errors.append(("client", repr(result)))
    return sum(r for r in results if isinstance(r, int))


class PoolMultiplexingTest(E2ETestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.upstream = cls.start_upstream("main")
        config = file_registry_config(f"{cls.upstream.uri}{MAIN_DB}?maxPoolSize={POOL_SIZE}",
                                      cls.write_registry_file([]),
                                      threads=2, pool={"wait_queue_timeout_ms": 60000})
        cls.proxy = cls.start_configured_proxy(config, admin=True, log_level="info")

    def setUp(self) -> None:
        super().setUp()
        self.require_proxy()

    def pool_total(self) -> int:
        status, _, body = self.proxy.admin_request("GET", "/v1/upstreams")
        self.assertEqual(status, 200, body)
        rows = json.loads(body)["upstreams"]
        main = next(row for row in rows if row["name"] == "main")
        return main["connections"]["total"]

    def test_thousand_clients_share_twenty_connections_without_losing_a_write(self):
        opened_before = self.upstream.stats()["connectionsOpened"]
        peak = [0]
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                peak[0] = max(peak[0], self.pool_total())
                time.sleep(0.05)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        errors: list = []
        started = time.monotonic()
        try:
            acknowledged = asyncio.run(run_load(self.proxy.port, errors))
        finally:
            stop.set()
            watcher.join(10)

        self.assertEqual(errors[:5], [], f"{len(errors)} client errors")
        self.assertEqual(acknowledged, CLIENTS * INSERTS_PER_CLIENT)
        docs = self.upstream.find_all(MAIN_DB, COLLECTION)
        counts = collections.Counter(d["key"] for d in docs)
        expected = {f"c{c}-{i}" for c in range(CLIENTS) for i in range(INSERTS_PER_CLIENT)}
        self.assertEqual(set(counts), expected, "lost or unexpected writes")
        duplicated = [k for k, n in counts.items() if n != 1]
        self.assertEqual(duplicated, [], "duplicated writes")
        opened = self.upstream.stats()["connectionsOpened"] - opened_before
        self.assertGreater(opened, 0)
        self.assertLessEqual(opened, POOL_SIZE, "upstream connections opened by mongogate during the load")
        self.assertGreater(peak[0], 0, "/v1/upstreams was sampled during the load")
        self.assertLessEqual(peak[0], POOL_SIZE)
        print(f"\n[pool] {CLIENTS} clients x {INSERTS_PER_CLIENT} inserts in {time.monotonic() - started:.1f}s; "
              f"upstream connections opened {opened}, peak in /v1/upstreams {peak[0]}", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
