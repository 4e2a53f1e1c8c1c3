"""pymongo through the real mongogate binary to a mock upstream.

Each test asserts both what the client sees and what the upstream received.
Run: MONGOGATE_BIN=build/proxy/mongogate /usr/bin/python3 -m unittest -v test_pymongo
"""

from __future__ import annotations


import pymongo
from pymongo import MongoClient
from pymongo.errors import OperationFailure

import harness
from harness import E2ETestCase, commands_named, hello_driver_names, is_hello, wait_until

DB = "e2e_pymongo"
# The upstream announces a wire version below mongogate's built-in default (21), so a
# proxy that does not take its limits from the upstream's hello shows up in the reply.
UPSTREAM_WIRE_VERSION = 17


class PymongoThroughProxy(E2ETestCase):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.upstream = cls.start_upstream("main", max_wire_version=UPSTREAM_WIRE_VERSION)
        cls.proxy = cls.start_proxy(cls.upstream)
        cls.client = cls.new_client()
        cls.db = cls.client[DB]
        # Connect now so the handshake is part of what the upstream recorded.
        cls.client.admin.command("ping")

    @classmethod
    def new_client(cls, **options) -> MongoClient:
        host, port = cls.client_address(cls.proxy, cls.upstream)
        opts = dict(serverSelectionTimeoutMS=10000, connectTimeoutMS=10000,
                    socketTimeoutMS=30000, appname="mongogate-e2e-pymongo")
        opts.update(options)
        client = MongoClient(host, port, **opts)
        # Registered after the proxy started, so it closes before the proxy gets SIGTERM.
        cls.addClassCleanup(client.close)
        return client

    def fresh_collection(self, name: str):
        self.db.drop_collection(name)
        return self.db[name]

    # -- handshake ------------------------------------------------------------------------

    def test_hello_is_answered_by_mongogate_as_a_mongos(self):
        self.require_proxy()
        for spelling in ("isMaster", "hello", "ismaster"):
            with self.subTest(spelling=spelling):
                reply = self.client.admin.command(spelling)
                self.assertEqual(reply["ok"], 1.0)
                self.assertEqual(reply.get("msg"), "isdbgrid")
                self.assertTrue(reply.get("isWritablePrimary") or reply.get("ismaster"))
                self.assertEqual(reply.get("maxWireVersion"), UPSTREAM_WIRE_VERSION,
                                 "limits must come from the upstream's hello")
                for key in ("setName", "hosts", "primary", "me", "passives", "arbiters"):
                    self.assertNotIn(key, reply, f"{key} would reveal the upstream topology")
                flat = repr(reply)
                self.assertNotIn(f":{self.upstream.port}", flat, "upstream port leaked")
        self.assertTrue(self.client.is_mongos, "pymongo must see a mongos (Sharded topology)")

    def test_no_client_hello_reaches_the_upstream(self):
        self.require_proxy()
        # A proxy of its own, so the upstream records every connection it opens from the
        # first byte (other tests clear the record).
        self.upstream.clear_recorded()
        proxy = self.start_proxy(self.upstream, name="hello-check")
        extra = MongoClient("127.0.0.1", proxy.port, serverSelectionTimeoutMS=10000,
                            socketTimeoutMS=30000, appname="hello-probe")
        try:
            extra[DB].hello_probe.insert_one({"x": 1})  # opens an upstream connection
            before = len([r for r in self.upstream.recorded() if is_hello(r)])
            for _ in range(20):
                extra.admin.command("hello")
                extra.admin.command("isMaster")
            extra[DB].hello_probe.find_one()
        finally:
            extra.close()
        self.stop_proxy(proxy)
        records = self.upstream.recorded()
        names = hello_driver_names(records)
        self.assertNotIn("PyMongo", names, "a client hello was forwarded")
        for name in names:
            # mongogate's pooled connections say "mongogate"; its registry reader is a
            # libmongoc client that says "mongoc / mongogate".
            self.assertIn(name, ("mongogate", "mongoc / mongogate", ""), f"unexpected hello driver {name!r}")
        self.assertIn("mongogate", names, "mongogate's own upstream handshake was not recorded")
        # The first hello on every upstream connection is mongogate's.
        first_hello: dict = {}
        for r in records:
            if is_hello(r):
                first_hello.setdefault(r.get("connection_id"), r)
        for conn, r in first_hello.items():
            driver = ((r.get("body") or {}).get("client") or {}).get("driver") or {}
            self.assertIn(driver.get("name"), ("mongogate", "mongoc / mongogate"), f"connection {conn}: {r}")
        # 40 application hellos must not turn into upstream hellos.
        after = len([r for r in records if is_hello(r)])
        self.assertLess(after - before, 40, "application hellos were forwarded upstream")
        self.assertFalse(any("hello-probe" in repr(r.get("body")) for r in records),
                         "client appname reached the upstream")

    def test_authentication_attempt_is_refused_clearly(self):
        self.require_proxy()
        client = self.new_client(username="someone", password="secret", authSource="admin",
                                 authMechanism="SCRAM-SHA-256", serverSelectionTimeoutMS=5000)
        with self.assertRaises(OperationFailure) as ctx:
            client.admin.command("ping")
        self.assertEqual(ctx.exception.code, 18, ctx.exception.details)
        client.close()
        self.client.admin.command("ping")

    # -- writes ---------------------------------------------------------------------------

    def test_insert_one_and_many_land_upstream(self):
        coll = self.fresh_collection("inserts")
        self.upstream.clear_recorded()
        res = coll.insert_one({"_id": "a", "v": 1})
        self.assertEqual(res.inserted_id, "a")
        res = coll.insert_many([{"_id": i, "v": i * 10} for i in range(25)])
        self.assertEqual(res.inserted_ids, list(range(25)))

        records = self.upstream.recorded()
        inserts = commands_named(records, "insert", collection="inserts", db=DB)
        self.assertGreaterEqual(len(inserts), 2, records)
        upstream_docs = self.upstream.find_all(DB, "inserts")
        self.assertEqual(len(upstream_docs), 26)
        self.assertEqual({d["_id"]: d["v"] for d in upstream_docs if d["_id"] != "a"},
                         {i: i * 10 for i in range(25)})

    def test_duplicate_key_error_travels_back(self):
        coll = self.fresh_collection("dupes")
        coll.insert_one({"_id": 1})
        with self.assertRaises(pymongo.errors.DuplicateKeyError) as ctx:
            coll.insert_one({"_id": 1})
        self.assertEqual(ctx.exception.code, 11000)
        self.assertEqual(coll.count_documents({}), 1)

    def test_update_one_and_many_with_upsert(self):
        coll = self.fresh_collection("updates")
        coll.insert_many([{"_id": i, "group": i % 2, "n": i} for i in range(10)])

        res = coll.update_one({"_id": 3}, {"$set": {"n": 300}})
        self.assertEqual((res.matched_count, res.modified_count), (1, 1))
        res = coll.update_many({"group": 0}, {"$inc": {"n": 1000}})
        self.assertEqual((res.matched_count, res.modified_count), (5, 5))
        res = coll.update_one({"_id": "new"}, {"$set": {"n": -1}}, upsert=True)
        self.assertEqual((res.matched_count, res.upserted_id), (0, "new"))
        res = coll.update_many({"group": 7}, {"$set": {"n": 7}}, upsert=True)
        self.assertEqual(res.matched_count, 0)
        self.assertIsNotNone(res.upserted_id)

        upstream = {d["_id"]: d for d in self.upstream.find_all(DB, "updates")}
        self.assertEqual(upstream[3]["n"], 300)
        self.assertEqual(sorted(upstream[i]["n"] for i in (0, 2, 4, 6, 8)),
                         [1000, 1002, 1004, 1006, 1008])
        self.assertEqual(upstream["new"]["n"], -1)
        self.assertEqual(len(upstream), 12)
        updates = commands_named(self.upstream.recorded(), "update", collection="updates")
        self.assertTrue(any(u2.get("upsert") for u in updates
                            for u2 in self._update_statements(u)), updates)

    @staticmethod
    def _update_statements(record: dict) -> list[dict]:
        """`updates` may travel in the body or as an OP_MSG document sequence."""
        body = record.get("body") or {}
        if "updates" in body:
            return list(body["updates"])
        seqs = record.get("sequences") or {}
        if isinstance(seqs, dict):
            return list(seqs.get("updates", []))
        out = []
        for s in seqs:
            if s.get("identifier") == "updates":
                out += s.get("documents", [])
        return out

    def test_delete_one_and_many(self):
        coll = self.fresh_collection("deletes")
        coll.insert_many([{"_id": i, "odd": i % 2 == 1} for i in range(20)])
        self.assertEqual(coll.delete_one({"_id": 0}).deleted_count, 1)
        self.assertEqual(coll.delete_many({"odd": True}).deleted_count, 10)
        self.assertEqual(coll.delete_many({"odd": "never"}).deleted_count, 0)
        self.assertEqual(sorted(d["_id"] for d in self.upstream.find_all(DB, "deletes")),
                         list(range(2, 20, 2)))

    # -- reads ----------------------------------------------------------------------------

    def test_find_filter_sort_limit_projection(self):
        coll = self.fresh_collection("finds")
        coll.insert_many([{"_id": i, "n": i, "even": i % 2 == 0, "pad": "x" * 10}
                          for i in range(30)])
        docs = list(coll.find({"even": True}, {"_id": 0, "n": 1}).sort("n", -1).limit(4))
        self.assertEqual(docs, [{"n": 28}, {"n": 26}, {"n": 24}, {"n": 22}])
        self.assertEqual(coll.find_one({"_id": 7})["n"], 7)
        self.assertIsNone(coll.find_one({"_id": "missing"}))

        finds = [r["body"] for r in commands_named(self.upstream.recorded(), "find",
                                                     collection="finds")]
        find = next((f for f in finds if f.get("filter") == {"even": True}), None)
        self.assertIsNotNone(find, finds)
        self.assertEqual(find.get("sort"), {"n": -1})
        self.assertEqual(find.get("limit"), 4)
        self.assertEqual(find.get("projection"), {"_id": 0, "n": 1})

    def test_find_with_getmore_over_many_batches(self):
        coll = self.fresh_collection("cursor")
        coll.insert_many([{"_id": i, "n": i} for i in range(300)])
        self.upstream.clear_recorded()
        seen = [d["n"] for d in coll.find({}, batch_size=50).sort("_id", 1)]
        self.assertEqual(seen, list(range(300)))

        records = self.upstream.recorded()
        finds = commands_named(records, "find", collection="cursor")
        get_mores = commands_named(records, "getMore", collection="cursor")
        self.assertEqual(len(finds), 1, finds)
        self.assertEqual(finds[0]["body"].get("batchSize"), 50)
        self.assertGreaterEqual(len(get_mores), 5, f"expected ≥5 getMore, got {get_mores}")
        for gm in get_mores:
            self.assertEqual(gm["body"].get("batchSize"), 50)
            self.assertIsInstance(gm["body"]["getMore"], int)
            self.assertNotEqual(gm["body"]["getMore"], 0)

    def test_closing_a_cursor_early_kills_it_upstream(self):
        coll = self.fresh_collection("earlyclose")
        coll.insert_many([{"_id": i} for i in range(100)])
        self.upstream.clear_recorded()
        cursor = coll.find({}, batch_size=10)
        got = [next(cursor)["_id"] for _ in range(15)]  # first batch + one getMore
        self.assertEqual(len(got), 15)
        cursor.close()

        def kill_recorded():
            return commands_named(self.upstream.recorded(), "killCursors",
                                  collection="earlyclose")
        kills = wait_until(kill_recorded, 5, message="killCursors upstream")
        gm_ids = {r["body"]["getMore"] for r in commands_named(
            self.upstream.recorded(), "getMore", collection="earlyclose")}
        killed = set(kills[0]["body"].get("cursors", []))
        self.assertTrue(killed, kills)
        self.assertTrue(killed & gm_ids or not gm_ids,
                        f"killCursors {killed} does not name the upstream cursor {gm_ids}")

    def test_count_documents_and_aggregate(self):
        coll = self.fresh_collection("agg")
        coll.insert_many([{"_id": i, "store": f"s{i % 3}", "amount": i} for i in range(30)])
        self.assertEqual(coll.count_documents({}), 30)
        self.assertEqual(coll.count_documents({"store": "s1"}), 10)
        self.assertEqual(coll.count_documents({"amount": {"$gte": 25}}), 5)

        pipeline = [{"$match": {"amount": {"$gte": 3}}},
                    {"$group": {"_id": "$store", "total": {"$sum": "$amount"},
                                "n": {"$sum": 1}}},
                    {"$sort": {"total": -1}}]
        result = list(coll.aggregate(pipeline))
        # amounts 3..29: s0 gets 3,6..27; s1 4,7..28; s2 5,8..29
        self.assertEqual(result, [{"_id": "s2", "total": 153, "n": 9},
                                  {"_id": "s1", "total": 144, "n": 9},
                                  {"_id": "s0", "total": 135, "n": 9}])
        aggs = commands_named(self.upstream.recorded(), "aggregate", collection="agg")
        self.assertTrue(any(a["body"].get("pipeline") == pipeline for a in aggs), aggs)

    # -- collections ----------------------------------------------------------------------

    def test_create_list_drop_collection(self):
        name = "made_by_create"
        self.db.drop_collection(name)
        self.db.create_collection(name)
        self.assertIn(name, self.db.list_collection_names())
        self.assertIn(name, self.upstream.collection_names(DB))
        records = self.upstream.recorded()
        self.assertTrue(commands_named(records, "create", collection=name, db=DB))

        self.db.drop_collection(name)
        self.assertNotIn(name, self.db.list_collection_names())
        self.assertNotIn(name, self.upstream.collection_names(DB))
        self.assertTrue(commands_named(self.upstream.recorded(), "drop", collection=name, db=DB))

    def test_commands_reach_the_upstream_under_the_same_database(self):
        # Rule 4 (SPEC §3): a database that is no store's goes to main unchanged.
        coll = self.fresh_collection("plain")
        self.upstream.clear_recorded()
        coll.insert_one({"x": 1})
        records = [r for r in self.upstream.recorded() if not is_hello(r)]
        inserts = commands_named(records, "insert")
        self.assertEqual(len(inserts), 1, records)
        self.assertEqual(inserts[0].get("db"), DB)
        self.assertEqual(inserts[0]["body"].get("insert"), "plain")


if __name__ == "__main__":
    harness.main()
