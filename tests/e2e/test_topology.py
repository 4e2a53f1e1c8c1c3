"""Upstream topology through the real mongogate binary: replica sets, mongos lists, the
circuit breaker, cursor and transaction affinity.

Three mock upstreams pose as a replica set (mockSetRole: hello describes setName, hosts,
primary; a secondary refuses writes with NotWritablePrimary). Data is not replicated:
every server keeps its own, and its own record, so a test tells which server got what.
Run: MONGOGATE_BIN=build/proxy/mongogate /usr/bin/python3 -m unittest -v test_topology
"""

from __future__ import annotations

import json
import re
import time

from pymongo import MongoClient, ReadPreference
from pymongo.errors import PyMongoError

import harness
from harness import E2ETestCase, commands_named, wait_until

DB = "e2e_topology"
HEARTBEAT_MS = 500
SET = "rs0"


def make_client(port: int, **options) -> MongoClient:
    opts = dict(serverSelectionTimeoutMS=10000, connectTimeoutMS=10000, socketTimeoutMS=20000,
                appname="mongogate-e2e-topology")
    opts.update(options)
    return MongoClient("127.0.0.1", port, **opts)


def upstream_rows(proxy) -> dict:
    status, _headers, body = proxy.admin_request("GET", "/v1/upstreams")
    assert status == 200, (status, body)
    return {row["name"]: row for row in json.loads(body)["upstreams"]}


def metric_value(proxy, name: str, **labels: str):
    status, _headers, body = proxy.admin_request("GET", "/metrics")
    assert status == 200, status
    for line in body.decode().splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


class ReplicaSetTest(E2ETestCase):
    """Three servers posing as replica set rs0; mongogate in front of all three."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        if harness.DIRECT_MODE:
            raise __import__("unittest").SkipTest("about mongogate itself")
        cls.members = [cls.start_upstream(name) for name in ("rs-a", "rs-b", "rs-c")]
        cls.hosts = [m.address for m in cls.members]
        cls.make_primary(0, term=1)
        uri = "mongodb://" + ",".join(cls.hosts) + f"/{harness.MAIN_DB}?replicaSet={SET}"
        cls.proxy = cls.start_proxy(uri, ["--heartbeat-frequency-ms", str(HEARTBEAT_MS)], admin=True)
        cls.client = make_client(cls.proxy.port, retryWrites=True)
        cls.addClassCleanup(cls.client.close)
        wait_until(lambda: upstream_rows(cls.proxy)["main"]["topology"] == "ReplicaSetWithPrimary", 10,
                   message="mongogate to find the primary")

    @classmethod
    def make_primary(cls, index: int, term: int) -> None:
        """Member `index` is the primary of election `term`; the others are secondaries."""
        for i, member in enumerate(cls.members):
            if i != index:
                member.set_role("secondary", setName=SET, hosts=cls.hosts, me=member.address,
                                primary=cls.hosts[index])
        cls.members[index].set_role("primary", setName=SET, hosts=cls.hosts, me=cls.members[index].address,
                                    electionTerm=term)

    def setUp(self) -> None:
        super().setUp()
        for member in self.members:
            member.clear_recorded()

    def inserts_of(self, member, marker: str) -> list[dict]:
        return [r for r in commands_named(member.recorded(), "insert", collection="writes")
                if any(d.get("marker") == marker for d in (r["sequences"].get("documents") or
                                                           r["body"].get("documents") or []))]

    def test_discovers_every_member_and_the_primary(self) -> None:
        row = upstream_rows(self.proxy)["main"]
        self.assertEqual(row["set_name"], SET)
        by_address = {s["address"]: s for s in row["servers"]}
        self.assertEqual(sorted(by_address), sorted(self.hosts))
        wait_until(lambda: sorted(s["type"] for s in upstream_rows(self.proxy)["main"]["servers"])
                   == ["RSPrimary", "RSSecondary", "RSSecondary"], 5, message="all three members checked")
        self.assertEqual(metric_value(self.proxy, "mongogate_upstream_servers", upstream="main",
                                      type="RSSecondary"), 2)

    def test_writes_go_to_the_primary(self) -> None:
        primary = next(i for i, s in enumerate(self.current_types()) if s == "RSPrimary")
        coll = self.client[DB].writes
        for n in range(5):
            coll.insert_one({"marker": "to-primary", "n": n})
        self.assertEqual(len(self.inserts_of(self.members[primary], "to-primary")), 5)
        for i, member in enumerate(self.members):
            if i != primary:
                self.assertEqual(self.inserts_of(member, "to-primary"), [], member.name)

    def current_types(self) -> list[str]:
        by_address = {s["address"]: s["type"] for s in upstream_rows(self.proxy)["main"]["servers"]}
        return [by_address.get(h, "absent") for h in self.hosts]

    def test_secondary_preferred_reads_go_to_secondaries(self) -> None:
        wait_until(lambda: self.current_types().count("RSSecondary") == 2, 5, message="two secondaries")
        primary = self.current_types().index("RSPrimary")
        coll = self.client[DB].get_collection("reads", read_preference=ReadPreference.SECONDARY_PREFERRED)
        for _ in range(10):
            list(coll.find({"x": 1}))
        finds = [len(commands_named(m.recorded(), "find", collection="reads")) for m in self.members]
        self.assertEqual(finds[primary], 0, finds)
        self.assertEqual(sum(finds), 10, finds)
        # A primary-mode read of the same client still goes to the primary.
        list(self.client[DB].reads.find({"x": 2}))
        self.assertEqual(len(commands_named(self.members[primary].recorded(), "find", collection="reads")), 1)

    def test_getmore_goes_to_the_server_that_owns_the_cursor(self) -> None:
        wait_until(lambda: self.current_types().count("RSSecondary") == 2, 5, message="two secondaries")
        for member in self.members:  # each server has its own data: 9 documents each
            reply = member.command({"mockSeed": "cursors", "db": DB, "documents": [{"i": i} for i in range(9)]})
            self.assertEqual(reply.get("n"), 9, reply)
        coll = self.client[DB].get_collection("cursors", read_preference=ReadPreference.SECONDARY_PREFERRED)
        for _ in range(4):
            docs = list(coll.find({}, batch_size=2))
            self.assertEqual(len(docs), 9)  # a getMore elsewhere would fail with CursorNotFound
        for member in self.members:
            records = member.recorded()
            finds = len(commands_named(records, "find", collection="cursors"))
            get_mores = len(commands_named(records, "getMore"))
            self.assertEqual(get_mores, 4 * finds, f"{member.name}: {finds} finds, {get_mores} getMores")

    def test_writes_follow_a_new_primary_within_one_heartbeat(self) -> None:
        coll = self.client[DB].writes
        coll.insert_one({"marker": "before"})
        old = self.current_types().index("RSPrimary")
        new = (old + 1) % 3
        self.make_primary(new, term=10 + new + int(time.time()) % 1000)
        started = time.monotonic()
        coll.insert_one({"marker": "after-step-down"})  # may be retried once by pymongo
        elapsed = time.monotonic() - started
        self.assertEqual(len(self.inserts_of(self.members[new], "after-step-down")), 1)
        self.assertLess(elapsed, HEARTBEAT_MS / 1000 + 1.0)
        wait_until(lambda: self.current_types()[new] == "RSPrimary", HEARTBEAT_MS / 1000 * 3,
                   message="the new primary in /v1/upstreams")
        for n in range(3):
            coll.insert_one({"marker": "later", "n": n})
        self.assertEqual(len(self.inserts_of(self.members[new], "later")), 3)
        self.assertEqual(self.inserts_of(self.members[old], "later"), [])
        self.proxy.wait_for_log(r"primary is now " + re.escape(self.hosts[new]))


class MongosListTest(E2ETestCase):
    """Two servers posing as mongos routers, listed in one connection string."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        if harness.DIRECT_MODE:
            raise __import__("unittest").SkipTest("about mongogate itself")
        cls.routers = [cls.start_upstream(name) for name in ("mongos-a", "mongos-b")]
        for router in cls.routers:
            router.set_role("mongos")
        uri = "mongodb://" + ",".join(r.address for r in cls.routers) + f"/{harness.MAIN_DB}"
        # Several workers: a transaction's statements arrive on any of them.
        cls.proxy = cls.start_proxy(uri, ["--heartbeat-frequency-ms", str(HEARTBEAT_MS), "--threads", "3"],
                                    admin=True)
        cls.client = make_client(cls.proxy.port, maxPoolSize=8)
        cls.addClassCleanup(cls.client.close)
        wait_until(lambda: [s["type"] for s in upstream_rows(cls.proxy)["main"]["servers"]] == ["Mongos", "Mongos"],
                   10, message="both routers checked")

    def setUp(self) -> None:
        super().setUp()
        for router in self.routers:
            router.clear_recorded()

    def test_load_is_spread_over_every_router(self) -> None:
        self.assertEqual(upstream_rows(self.proxy)["main"]["topology"], "Sharded")
        coll = self.client[DB].spread
        for n in range(40):
            coll.insert_one({"n": n})
        counts = [len(commands_named(r.recorded(), "insert", collection="spread")) for r in self.routers]
        self.assertEqual(sum(counts), 40, counts)
        self.assertGreaterEqual(min(counts), 8, counts)

    def test_a_transaction_stays_on_one_router(self) -> None:
        for attempt in range(4):
            with self.client.start_session() as session:
                with session.start_transaction():
                    for n in range(6):
                        self.client[DB].txn.insert_one({"attempt": attempt, "n": n}, session=session)
            per_router = []
            for router in self.routers:
                records = router.recorded()
                inserts = [r for r in commands_named(records, "insert", collection="txn")
                           if r["body"].get("txnNumber") is not None]
                commits = commands_named(records, "commitTransaction")
                per_router.append((len(inserts), len(commits)))
                router.clear_recorded()
            self.assertIn((6, 1), per_router, per_router)
            self.assertIn((0, 0), per_router, per_router)


class BreakerTest(E2ETestCase):
    """One upstream that is killed and restarted on the same port."""

    THRESHOLD = 3
    COOL_DOWN_MS = 1500

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        if harness.DIRECT_MODE:
            raise __import__("unittest").SkipTest("about mongogate itself")
        cls.upstream = cls.start_upstream("breaker")
        cls.proxy = cls.start_proxy(cls.upstream, ["--breaker-failure-threshold", str(cls.THRESHOLD),
                                                   "--breaker-cool-down-ms", str(cls.COOL_DOWN_MS)], admin=True)

    def breaker_state(self) -> str:
        return upstream_rows(self.proxy)["main"]["servers"][0]["breaker"]

    def test_breaker_opens_fails_fast_and_service_resumes(self) -> None:
        client = make_client(self.proxy.port, retryWrites=True, serverSelectionTimeoutMS=3000)
        self.addCleanup(client.close)
        coll = client[DB].breaker
        coll.insert_one({"phase": "up"})
        self.upstream.stop()
        errors = []
        # pymongo retries a retryable write once: each insert costs up to two attempts.
        for _ in range(self.THRESHOLD + 1):
            started = time.monotonic()
            with self.assertRaises(PyMongoError) as caught:
                coll.insert_one({"phase": "down"})
            errors.append((caught.exception, time.monotonic() - started))
        self.assertEqual(self.breaker_state(), "open")
        self.assertEqual(metric_value(self.proxy, "mongogate_upstream_breaker_state", upstream="main"), 2)
        # While open, requests fail at once, with what drivers retry on.
        started = time.monotonic()
        with self.assertRaises(PyMongoError) as caught:
            coll.insert_one({"phase": "open"})
        self.assertLess(time.monotonic() - started, 0.5)
        error = caught.exception
        self.assertTrue(error.has_error_label("RetryableWriteError"), repr(error))
        self.assertEqual(getattr(error, "code", None), 6, repr(error))  # HostUnreachable
        self.assertIn("circuit breaker open", str(error))
        self.assertNotIn(str(self.upstream.port), str(error))
        self.proxy.wait_for_log(r"circuit breaker open")
        # Back again: after the cool-down a probe connects and the breaker closes by itself.
        self.upstream.restart()

        def works() -> bool:
            try:
                coll.insert_one({"phase": "back"})
                return True
            except PyMongoError:
                return False
        wait_until(works, self.COOL_DOWN_MS / 1000 + 5, interval=0.2, message="service to resume")
        self.assertEqual(self.breaker_state(), "closed")
        self.assertEqual(metric_value(self.proxy, "mongogate_upstream_breaker_state", upstream="main"), 0)


if __name__ == "__main__":
    harness.main()
