"""Store routing end to end (SPEC §2-§5, issue 3 item 9): real clients through the real
mongogate binary to three mock upstreams.

Topology (every port chosen by the OS; the upstreams run in this process so a test can
hook them, see harness.InProcessUpstream):

    A  "main"         main_db (registry `stores`, shared collections), pos_db_1..3
    B  "shard2"       pos_db_4, pos_db_5            (routing.store_databases.placement)
    C  "masteradmin"  masteradmin

mongogate gets a YAML file (``--config``) naming the three upstreams, the main database,
the store databases and the registry source (``main_db.stores`` on A, polled).

Every test asserts what the client sees *and*, by connecting to A, B and C directly (never
through the proxy), where the data went and what each upstream received.

Run: MONGOGATE_BIN=build/proxy/mongogate /usr/bin/python3 -m unittest -v test_routing
``MONGOGATE_E2E_DIRECT=1`` runs only the client side against A (no routing); the checks of
placement, records and routing-only behaviour are skipped in that mode.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from typing import Any, Iterable, Optional

from bson.int64 import Int64
from pymongo import ASCENDING, MongoClient, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

import harness
from harness import (DIRECT_MODE, E2ETestCase, Upstream, commands_named,
                     record_command_name, run_node_script, wait_until)

MAIN_DB = "main_db"
MASTERADMIN_DB = "masteradmin"
DATABASE_PREFIX = "pos_db"
DATABASE_COUNT = 5
ON_B = (4, 5)  # placement: pos_db_4 and pos_db_5 live on upstream B ("shard2")
STORE_SUFFIXES = ("products", "orders", "categories", "brands")
SERVER_DATABASES = {"admin", "config", "local"}
# Commands mongogate or its registry client send on their own (handshake, monitoring).
INFRA_COMMANDS = {"hello", "ismaster", "ping", "buildinfo", "endsessions", "saslstart",
                  "saslcontinue", "getparameter", "serverstatus", "getlasterror"}
NODE_RUN_TIMEOUT = 100  # below the harness's per-test watchdog (120 s)


def physical_db(database_id: int) -> str:
    return f"{DATABASE_PREFIX}_{database_id}"


def fill_assignment(existing: int, stores_per_database: int) -> int:
    """SPEC §5 `fill`: min(floor(count / stores_per_database) + 1, count of databases)."""
    return min(existing // stores_per_database + 1, DATABASE_COUNT)


def collection_names(upstream: Upstream, db: str) -> list[str]:
    """Every collection of `db`, read straight from the upstream in one batch (harness's
    Upstream.collection_names reads only the first batch of 101)."""
    reply = upstream._checked({"listCollections": 1, "nameOnly": True,
                               "cursor": {"batchSize": 100000}, "$db": db})
    assert reply["cursor"]["id"] == 0
    return sorted(c["name"] for c in reply["cursor"]["firstBatch"])


def by_id(docs: Iterable[dict]) -> list[dict]:
    return sorted(docs, key=lambda d: str(d["_id"]))


def record_db(record: dict) -> Optional[str]:
    return record.get("db") or (record.get("body") or {}).get("$db")


def record_collection(record: dict) -> Any:
    body = record.get("body") or {}
    name = record_command_name(record)
    value = body.get(name)
    return value if isinstance(value, str) else body.get("collection")


def app_records(records: list[dict]) -> list[dict]:
    """Records of what clients asked for: no handshakes or monitoring, and not the
    registry source reading <main db>.stores."""
    out = []
    for r in records:
        name = record_command_name(r)
        if name.lower() in INFRA_COMMANDS:
            continue
        if record_db(r) == MAIN_DB and record_collection(r) == "stores":
            continue
        pipeline = (r.get("body") or {}).get("pipeline") or []
        if any(isinstance(stage, dict) and "$changeStream" in stage for stage in pipeline):
            continue
        out.append(r)
    return out


def brief(records: list[dict], limit: int = 12) -> str:
    """A short listing of records for failure messages."""
    lines = [f"{record_command_name(r)} {record_db(r)}.{record_collection(r)}"
             for r in records[:limit]]
    if len(records) > limit:
        lines.append(f"... and {len(records) - limit} more")
    return "\n  ".join(lines) or "<none>"


class RoutingTestCase(E2ETestCase):
    """Three in-process mock upstreams and one mongogate started from a YAML config."""

    STORES_PER_DATABASE = 5
    POLL_INTERVAL_MS = 500
    # Store documents written straight into A's main_db.stores before mongogate starts
    # (an installation that already has stores; the registry's initial load).
    SEED_STORES: tuple = ()

    a: Upstream
    b: Upstream
    c: Upstream

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.a = cls.start_inprocess_upstream("A")
        cls.b = cls.start_inprocess_upstream("B")
        cls.c = cls.start_inprocess_upstream("C")
        if cls.SEED_STORES:
            cls.a._checked({"insert": "stores", "documents": [dict(d) for d in cls.SEED_STORES],
                            "$db": MAIN_DB})
        cls.proxy = cls.start_configured_proxy(cls.routing_config(), name="router")
        cls.client = cls.new_client()
        cls.main = cls.client[MAIN_DB]
        cls.client.admin.command("ping")

    @classmethod
    def routing_config(cls) -> dict:
        return {
            "listen": "127.0.0.1:0",
            "upstreams": {
                "main": {"uri": f"mongodb://127.0.0.1:{cls.a.port}/{MAIN_DB}"},
                "masteradmin": {"uri": f"mongodb://127.0.0.1:{cls.c.port}/{MASTERADMIN_DB}"},
                "shard2": {"uri": f"mongodb://127.0.0.1:{cls.b.port}"},
            },
            "routing": {
                "main_database": MAIN_DB,
                "store_databases": {
                    "prefix": DATABASE_PREFIX,
                    "count": DATABASE_COUNT,
                    "stores_per_database": cls.STORES_PER_DATABASE,
                    "placement": {4: "shard2", 5: "shard2"},
                },
            },
            "registry": {
                "source": "upstream",
                "poll_interval_ms": cls.POLL_INTERVAL_MS,
                "assignment": "fill",
            },
        }

    @classmethod
    def proxy_uri(cls, db: str = "") -> str:
        port = cls.a.port if cls.proxy is None else cls.proxy.port
        return f"mongodb://127.0.0.1:{port}/{db}"

    @classmethod
    def new_client(cls, **options: Any) -> MongoClient:
        opts = dict(serverSelectionTimeoutMS=10000, connectTimeoutMS=10000,
                    socketTimeoutMS=30000, appname="mongogate-e2e-routing",
                    retryWrites=False)
        opts.update(options)
        client = MongoClient(cls.proxy_uri(), **opts)
        # Registered after the proxy started, so it closes before the proxy gets SIGTERM.
        cls.addClassCleanup(client.close)
        return client

    # -- where things are ------------------------------------------------------------------

    def home(self, database_id: int) -> tuple[Upstream, str]:
        """The upstream and physical database of a store with this databaseId."""
        if database_id in ON_B:
            return self.b, physical_db(database_id)
        return self.a, physical_db(database_id)

    def upstreams(self) -> tuple[Upstream, Upstream, Upstream]:
        return (self.a, self.b, self.c)

    def physical_layout(self) -> dict[tuple[str, str], dict[str, list[dict]]]:
        """Every collection with its documents, per (upstream name, database), read
        directly from A, B and C."""
        layout: dict[tuple[str, str], dict[str, list[dict]]] = {}
        for up in self.upstreams():
            for db in up.database_names():
                if db in SERVER_DATABASES:
                    continue
                layout[(up.name, db)] = {coll: up.find_all(db, coll)
                                         for coll in collection_names(up, db)}
        return layout

    @staticmethod
    def owner(collection: str, prefixes: Iterable[str]) -> Optional[str]:
        """The longest prefix p with collection starting "p_" (SPEC §3 rule 2)."""
        best = None
        for p in prefixes:
            if collection.startswith(p + "_") and (best is None or len(p) > len(best)):
                best = p
        return best

    def assert_store_placement(self, layout: dict, prefix: str, database_id: int,
                               expected: dict[str, list[dict]], prefixes: Iterable[str]) -> None:
        """`expected` (suffix -> documents) is exactly what pos_db_<id> on the store's
        upstream holds, and no other database anywhere holds a collection of the store."""
        home_up, home_db = self.home(database_id)
        here = layout.get((home_up.name, home_db), {})
        for suffix, docs in expected.items():
            coll = f"{prefix}_{suffix}"
            self.assertIn(coll, here, f"{coll} missing from {home_db} on upstream "
                                      f"{home_up.name} (store {prefix}, databaseId {database_id})")
            self.assertEqual(by_id(here[coll]), by_id(docs),
                             f"{home_up.name}:{home_db}.{coll} holds the wrong documents")
        prefixes = list(prefixes)
        for (up_name, db), colls in layout.items():
            if (up_name, db) == (home_up.name, home_db):
                continue
            strays = {c: len(d) for c, d in colls.items() if self.owner(c, prefixes) == prefix}
            self.assertEqual(strays, {}, f"store {prefix} (databaseId {database_id}, home "
                                         f"{home_up.name}:{home_db}) has collections in "
                                         f"{up_name}:{db} (name: document count)")

    def clear_all_records(self) -> None:
        for up in self.upstreams():
            up.clear_recorded()


# ==========================================================================================
# 1. Stores created through mongogate spread over pos_db_1..5 on two upstreams.

class StoreCreationAndPlacement(RoutingTestCase):
    """Registry empty at start; stores are created by inserting into main_db.stores.

    The poll interval is long on purpose: a store's first write follows its creation at
    once, so only a proxy that learns a store from the insert it forwarded (SPEC §5) can
    route it; polling cannot paper over that.
    """

    STORES_PER_DATABASE = 5
    POLL_INTERVAL_MS = 60000
    STORE_COUNT = 25
    # Stores are created in these batches (one insert each); several batches cross a
    # database boundary, so fill must count the documents before each one in the batch.
    BATCHES = (1, 1, 1, 4, 3, 6, 4, 5)
    # Created last with its own databaseId, as the platform's app does today: kept as is.
    EXPLICIT = {"storeId": "store-x", "name": "Explicit", "prefix": "x25", "databaseId": 4}

    @staticmethod
    def dataset(prefix: str, i: int) -> dict[str, list[dict]]:
        cats = [{"_id": f"{prefix}-cat-{k}", "name": f"cat {k}", "store": prefix}
                for k in range(3)]
        brands = [{"_id": f"{prefix}-brand-{k}", "name": f"brand {k}", "country": c,
                   "store": prefix} for k, c in enumerate(("NZ", "AU"))]
        products = [{"_id": f"{prefix}-p-{k}", "sku": f"{prefix.upper()}-{k}",
                     "name": f"product {k}", "category": f"{prefix}-cat-{k % 3}",
                     "brand": f"{prefix}-brand-{k % 2}", "price": 10 * (k + 1) + i,
                     "stock": (k * 3) % 5, "store": prefix} for k in range(6)]
        orders = [{"_id": f"{prefix}-o-{k}", "product": f"{prefix}-p-{k}", "qty": k + 1,
                   "total": (k + 1) * (10 * (k + 1) + i), "status": "open", "store": prefix}
                  for k in range(4)]
        return {"products": products, "orders": orders, "categories": cats, "brands": brands}

    def test_stores_spread_over_both_upstreams_and_data_lands_in_their_databases(self):
        spd = self.STORES_PER_DATABASE
        stores = self.main.stores
        self.assertEqual(stores.count_documents({}), 0, "this class starts with no stores")
        prefixes = [f"s{i:02d}" for i in range(self.STORE_COUNT)]
        expected_id = {p: fill_assignment(i, spd) for i, p in enumerate(prefixes)}
        self.assertEqual(sorted(set(expected_id.values())), [1, 2, 3, 4, 5])
        datasets = {p: self.dataset(p, i) for i, p in enumerate(prefixes)}

        # Shared collections stay in main_db (rule 4).
        users = [{"_id": f"user-{k}", "email": f"admin{k}@example.com", "storeId": None}
                 for k in range(3)]
        self.main.users.insert_many(users)
        self.main.settings.insert_one({"_id": "currency", "value": "NZD"})

        self.assertEqual(sum(self.BATCHES), self.STORE_COUNT)
        start = 0
        for size in self.BATCHES:
            batch = prefixes[start:start + size]
            docs = [{"storeId": f"store-{p}", "name": f"Store {p}", "prefix": p} for p in batch]
            if size == 1:
                stores.insert_one(docs[0])
            else:
                stores.insert_many(docs)
            # Each store's first write comes right after its creation.
            for p in batch:
                self.main[f"{p}_products"].insert_one(datasets[p]["products"][0])
            if not DIRECT_MODE:
                seen = {d["prefix"]: d.get("databaseId")
                        for d in stores.find({"prefix": {"$in": batch}})}
                self.assertEqual(seen, {p: expected_id[p] for p in batch},
                                 f"stores #{start}..#{start + size - 1} (one insert): "
                                 f"databaseId seen through mongogate")
            start += size
        explicit = dict(self.EXPLICIT)
        stores.insert_one(explicit)
        x_product = {"_id": "x25-p-0", "sku": "X25-0", "price": 1, "store": "x25"}
        self.main.x25_products.insert_one(x_product)

        for i, prefix in enumerate(prefixes):
            with self.subTest(store=prefix):
                self.exercise_store(prefix, i, datasets[prefix])

        self.assertEqual(stores.count_documents({}), self.STORE_COUNT + 1)
        self.assertEqual(by_id(self.main.users.find()), by_id(users))
        if DIRECT_MODE:
            return
        self.assertEqual(stores.find_one({"prefix": "x25"})["databaseId"], 4,
                         "a databaseId given by the app is kept")

        # listCollections on main_db: 3 shared + 25 stores x 4 + x25_products = 104
        # collections, more than one default batch (101).
        expected_names = sorted(["settings", "stores", "users", "x25_products"]
                                + [f"{p}_{s}" for p in prefixes for s in STORE_SUFFIXES])
        self.assertEqual(sorted(self.main.list_collection_names()), expected_names)
        listed = self.main.command("listCollections", nameOnly=True)
        self.assertNotIn(DATABASE_PREFIX, repr(listed))

        # -- directly on the upstreams ---------------------------------------------------
        registry = {d["prefix"]: d for d in self.a.find_all(MAIN_DB, "stores")}
        self.assertEqual(sorted(registry), prefixes + ["x25"])
        self.assertEqual(registry["x25"].get("databaseId"), 4)
        for prefix in prefixes:
            got = registry[prefix].get("databaseId")
            self.assertEqual(got, expected_id[prefix],
                             f"main_db.stores on A: {prefix} must carry the assigned databaseId")
            self.assertIsInstance(got, int)

        layout = self.physical_layout()
        self.assertEqual(sorted(k for k in layout if k[0] != "C"), sorted(
            [("A", MAIN_DB)] + [("A", physical_db(n)) for n in (1, 2, 3)]
            + [("B", physical_db(n)) for n in ON_B]),
            "databases per upstream: main_db and pos_db_1..3 on A, pos_db_4..5 on B")
        self.assertLessEqual({k[1] for k in layout if k[0] == "C"}, {MASTERADMIN_DB},
                             "C holds only masteradmin")
        all_prefixes = prefixes + ["x25"]
        for prefix in prefixes:
            with self.subTest(placement=prefix):
                self.assert_store_placement(layout, prefix, expected_id[prefix],
                                            datasets[prefix], all_prefixes)
        with self.subTest(placement="x25"):
            self.assert_store_placement(layout, "x25", 4, {"products": [x_product]},
                                        all_prefixes)
        main_colls = layout[("A", MAIN_DB)]
        self.assertEqual(sorted(main_colls), ["settings", "stores", "users"],
                         "only shared collections may stay in main_db")
        self.assertEqual(by_id(main_colls["users"]), by_id(users))

        # Reads went to the store's home upstream too, never to the other one.
        records = {up.name: app_records(up.recorded()) for up in (self.a, self.b)}
        for prefix in prefixes:
            home_up, home_db = self.home(expected_id[prefix])
            other = "A" if home_up.name == "B" else "B"
            for command in ("find", "aggregate", "update", "delete", "findAndModify",
                            "distinct"):
                self.assertTrue(
                    [r for r in commands_named(records[home_up.name], command, db=home_db)
                     if str(record_collection(r)).startswith(prefix + "_")],
                    f"no {command} on {home_db}.{prefix}_* reached upstream {home_up.name}")
            wrong = [r for r in records[other] if prefix + "_" in json.dumps(
                r.get("body"), default=str)]
            self.assertEqual(wrong, [], f"commands for store {prefix} reached upstream "
                                        f"{other}:\n  {brief(wrong)}")

    def exercise_store(self, prefix: str, i: int, data: dict[str, list[dict]]) -> None:
        """CRUD through mongogate on main_db.<prefix>_*; `data` is updated to what the
        store must hold afterwards."""
        db = self.main
        products, orders = db[f"{prefix}_products"], db[f"{prefix}_orders"]
        categories, brands = db[f"{prefix}_categories"], db[f"{prefix}_brands"]
        products.insert_many(data["products"][1:])
        orders.insert_many(data["orders"])
        categories.insert_many(data["categories"])
        brands.insert_many(data["brands"])

        # find with a filter, sort and projection
        got = list(products.find({"stock": {"$gt": 0}}, {"sku": 1, "price": 1},
                                 sort=[("price", ASCENDING)]))
        want = [{"_id": p["_id"], "sku": p["sku"], "price": p["price"]}
                for p in sorted(data["products"], key=lambda p: p["price"]) if p["stock"] > 0]
        self.assertEqual(got, want)
        self.assertEqual(products.count_documents({}), 6)
        self.assertEqual(products.count_documents({"category": f"{prefix}-cat-0"}), 2)
        self.assertEqual(orders.count_documents({"qty": {"$gte": 2}}), 3)
        self.assertEqual(categories.count_documents({}), 3)
        self.assertEqual(sorted(brands.distinct("country")), ["AU", "NZ"])

        # aggregate with $match and $group
        got = {d["_id"]: (d["value"], d["n"]) for d in products.aggregate([
            {"$match": {"price": {"$gte": 20}}},
            {"$group": {"_id": "$category", "value": {"$sum": "$price"}, "n": {"$sum": 1}}},
        ])}
        want: dict[str, tuple[int, int]] = {}
        for p in data["products"]:
            if p["price"] >= 20:
                value, n = want.get(p["category"], (0, 0))
                want[p["category"]] = (value + p["price"], n + 1)
        self.assertEqual(got, want)

        # updates
        result = products.update_many({"category": f"{prefix}-cat-1"}, {"$inc": {"price": 1}})
        self.assertEqual(result.modified_count, 2)
        for p in data["products"]:
            if p["category"] == f"{prefix}-cat-1":
                p["price"] += 1
        result = orders.update_one({"_id": f"{prefix}-o-2"}, {"$set": {"status": "paid"}})
        self.assertEqual((result.matched_count, result.modified_count), (1, 1))
        data["orders"][2]["status"] = "paid"
        doc = products.find_one_and_update({"_id": f"{prefix}-p-0"}, {"$inc": {"stock": 5}},
                                           return_document=ReturnDocument.AFTER)
        self.assertEqual(doc["stock"], data["products"][0]["stock"] + 5)
        data["products"][0]["stock"] += 5

        # deletes
        self.assertEqual(brands.delete_one({"_id": f"{prefix}-brand-1"}).deleted_count, 1)
        data["brands"] = data["brands"][:1]
        self.assertEqual(orders.delete_many({"qty": {"$lt": 2}}).deleted_count, 1)
        data["orders"] = [o for o in data["orders"] if o["qty"] >= 2]

        # read back everything
        self.assertEqual(by_id(products.find()), by_id(data["products"]))
        self.assertEqual(by_id(orders.find()), by_id(data["orders"]))
        self.assertEqual(by_id(categories.find()), by_id(data["categories"]))
        self.assertEqual(by_id(brands.find()), by_id(data["brands"]))
        paid = list(orders.aggregate([{"$match": {"status": "paid"}},
                                      {"$group": {"_id": None, "revenue": {"$sum": "$total"}}}]))
        self.assertEqual(paid, [{"_id": None, "revenue": data["orders"][1]["total"]}])

    def test_masteradmin_database_goes_to_its_own_upstream(self):
        admins = self.client[MASTERADMIN_DB].masteradmins
        docs = [{"_id": "ma-1", "username": "root", "role": "owner"},
                {"_id": "ma-2", "username": "ops", "role": "support"}]
        if not DIRECT_MODE:
            self.clear_all_records()
        admins.insert_many(docs)
        admins.update_one({"_id": "ma-2"}, {"$set": {"role": "admin"}})
        docs[1]["role"] = "admin"
        self.assertEqual(by_id(admins.find()), by_id(docs))
        self.assertEqual(admins.count_documents({"role": "admin"}), 1)
        if DIRECT_MODE:
            return
        self.assertEqual(by_id(self.c.find_all(MASTERADMIN_DB, "masteradmins")), by_id(docs))
        for up in (self.a, self.b):
            self.assertNotIn(MASTERADMIN_DB, up.database_names(),
                             f"masteradmin data reached upstream {up.name}")
            leaked = [r for r in app_records(up.recorded()) if record_db(r) == MASTERADMIN_DB]
            self.assertEqual(leaked, [], f"masteradmin commands reached {up.name}:\n  "
                                         f"{brief(leaked)}")
        on_c = app_records(self.c.recorded())
        for command in ("insert", "update", "find", "aggregate"):
            self.assertTrue(commands_named(on_c, command, collection="masteradmins",
                                           db=MASTERADMIN_DB),
                            f"no {command} on masteradmin.masteradmins reached C")
        other = [r for r in on_c if record_db(r) not in (MASTERADMIN_DB, "admin")]
        self.assertEqual(other, [], f"C received commands for other databases:\n  {brief(other)}")
        self.assertLessEqual(set(self.c.database_names()) - SERVER_DATABASES, {MASTERADMIN_DB})


# ==========================================================================================
# 2-6. Routing rules against an existing registry.

SEEDED = (
    {"storeId": "st-alpha", "name": "Alpha", "prefix": "alpha", "databaseId": 1},      # A
    {"storeId": "st-acme", "name": "Acme", "prefix": "acme", "databaseId": 2},         # A
    {"storeId": "st-charlie", "name": "Charlie", "prefix": "charlie", "databaseId": 3},  # A
    {"storeId": "st-bravo", "name": "Bravo", "prefix": "bravo", "databaseId": 4},      # B
    {"storeId": "st-delta", "name": "Delta", "prefix": "delta", "databaseId": 4},      # B
    {"storeId": "st-echo", "name": "Echo", "prefix": "echo", "databaseId": 5},         # B
    # Longest registered prefix wins: main_db.acme_west_x belongs to acme_west, not acme.
    {"storeId": "st-acme-west", "name": "Acme West", "prefix": "acme_west", "databaseId": 5},
    # Not moved yet: data stays in main_db.
    {"storeId": "st-legacy", "name": "Legacy", "prefix": "legacy"},
    {"storeId": "st-oldie", "name": "Oldie", "prefix": "oldie", "databaseId": 0},
)


class RoutingRules(RoutingTestCase):
    """The registry already holds SEEDED when mongogate starts (its initial load); the
    tests write through mongogate and check each upstream directly. Tests share the
    upstreams, so expectations about listings are computed from the upstreams at the time
    of the check rather than hard-coded."""

    SEED_STORES = SEEDED
    STORES_PER_DATABASE = 20

    def registered_prefixes(self) -> list[str]:
        return [d["prefix"] for d in self.a.find_all(MAIN_DB, "stores")]

    def database_id(self, prefix: str) -> int:
        doc = self.a.find_all(MAIN_DB, "stores", {"prefix": prefix})[0]
        return int(doc.get("databaseId") or 0)

    # -- 2. duplicate keys ---------------------------------------------------------------

    def test_duplicate_key_error_names_the_logical_namespace(self):
        coll = self.main.bravo_products  # bravo: pos_db_4 on B
        coll.insert_one({"_id": "dup-1", "sku": "D-1"})
        with self.assertRaises(DuplicateKeyError) as ctx:
            coll.insert_one({"_id": "dup-1", "sku": "D-2"})
        for text in (str(ctx.exception), ctx.exception.details.get("errmsg", "")):
            self.assertIn("E11000", text)
            self.assertIn("collection: main_db.bravo_products", text)
            self.assertNotIn(DATABASE_PREFIX, text)

        # Several documents: the error is in writeErrors of a bulk reply.
        with self.assertRaises(BulkWriteError) as ctx:
            coll.insert_many([{"_id": "dup-2", "sku": "D-3"}, {"_id": "dup-1", "sku": "D-4"}])
        errors = ctx.exception.details["writeErrors"]
        self.assertEqual([(e["index"], e["code"]) for e in errors], [(1, 11000)])
        self.assertIn("collection: main_db.bravo_products", errors[0]["errmsg"])
        self.assertNotIn(DATABASE_PREFIX, repr(ctx.exception.details))

        # A unique secondary index, created through mongogate.
        coll.create_index("sku", unique=True)
        with self.assertRaises(DuplicateKeyError) as ctx:
            coll.insert_one({"_id": "dup-3", "sku": "D-1"})
        self.assertIn("collection: main_db.bravo_products index: sku_1", str(ctx.exception))
        self.assertNotIn(DATABASE_PREFIX, str(ctx.exception))
        # An update: the error comes back in writeErrors of the update reply.
        with self.assertRaises(DuplicateKeyError) as ctx:
            coll.update_one({"_id": "dup-2"}, {"$set": {"sku": "D-1"}})
        self.assertIn("collection: main_db.bravo_products", str(ctx.exception))
        self.assertNotIn(DATABASE_PREFIX, repr(ctx.exception.details))
        # findAndModify: the error is the command's own errmsg.
        with self.assertRaises(DuplicateKeyError) as ctx:
            coll.find_one_and_update({"_id": "dup-2"}, {"$set": {"sku": "D-1"}})
        self.assertIn("collection: main_db.bravo_products", str(ctx.exception))
        self.assertNotIn(DATABASE_PREFIX, repr(ctx.exception.details))
        self.assertEqual(by_id(coll.find()), [{"_id": "dup-1", "sku": "D-1"},
                                              {"_id": "dup-2", "sku": "D-3"}])
        if DIRECT_MODE:
            return
        self.assertEqual(by_id(self.b.find_all("pos_db_4", "bravo_products")),
                         [{"_id": "dup-1", "sku": "D-1"}, {"_id": "dup-2", "sku": "D-3"}],
                         "the writes must have been executed in pos_db_4 on B")
        indexes = self.b.command({"listIndexes": "bravo_products", "$db": "pos_db_4"})
        self.assertIn("sku_1", [i["name"] for i in indexes["cursor"]["firstBatch"]])
        self.assertNotIn("bravo_products", collection_names(self.a, MAIN_DB))

    # -- 3. cursors on two upstreams -----------------------------------------------------

    COLLIDING_CURSOR_ID = 0x5EED

    def force_colliding_cursor_ids(self) -> None:
        """A and B hand out the same cursor ids (the lowest free id from 0x5EED), as two
        independent servers may."""
        for up in (self.a, self.b):
            mock = up.mock

            def new_cursor_id(mock=mock) -> int:
                cid = self.COLLIDING_CURSOR_ID
                while cid in mock._cursors:
                    cid += 1
                return cid
            mock._new_cursor_id = new_cursor_id
            self.addCleanup(mock.__dict__.pop, "_new_cursor_id", None)

    def test_interleaved_cursors_on_two_upstreams(self):
        count, batch = 120, 10
        alpha, bravo = self.main.alpha_lines, self.main.bravo_lines  # A pos_db_1, B pos_db_4
        alpha.insert_many([{"_id": f"alpha-{k:03d}", "store": "alpha", "k": k}
                           for k in range(count)])
        bravo.insert_many([{"_id": f"bravo-{k:03d}", "store": "bravo", "k": k}
                           for k in range(count)])
        if not DIRECT_MODE:
            self.force_colliding_cursor_ids()
            self.clear_all_records()
        open_before = {up.name: up.stats()["cursorsOpen"] for up in (self.a, self.b)}

        ca = alpha.find({}, batch_size=batch).sort("k", ASCENDING)
        cb = bravo.find({}, batch_size=batch).sort("k", ASCENDING)
        got_a, got_b = [next(ca)], [next(cb)]
        client_ids = (ca.cursor_id, cb.cursor_id)  # as the client saw them
        for _ in range(count - 1):  # one document from each in turn: getMores alternate
            got_a.append(next(ca))
            got_b.append(next(cb))
        self.assertRaises(StopIteration, next, ca)
        self.assertRaises(StopIteration, next, cb)
        self.assertEqual(got_a, [{"_id": f"alpha-{k:03d}", "store": "alpha", "k": k}
                                 for k in range(count)])
        self.assertEqual(got_b, [{"_id": f"bravo-{k:03d}", "store": "bravo", "k": k}
                                 for k in range(count)])

        # Closed early: killCursors must reach each cursor's own upstream.
        ka = alpha.find({}, batch_size=batch).sort("k", ASCENDING)
        kb = bravo.find({}, batch_size=batch).sort("k", ASCENDING)
        self.assertEqual((next(ka)["store"], next(kb)["store"]), ("alpha", "bravo"))
        ka.close()
        kb.close()
        if DIRECT_MODE:
            return
        for up in (self.a, self.b):
            wait_until(lambda up=up: up.stats()["cursorsOpen"] == open_before[up.name], 5,
                       message=f"upstream {up.name} to have no cursor left open")

        getmores = {}
        for up, db, coll in ((self.a, "pos_db_1", "alpha_lines"),
                             (self.b, "pos_db_4", "bravo_lines")):
            records = app_records(up.recorded())
            mine = commands_named(records, "getMore", collection=coll, db=db)
            self.assertGreaterEqual(len(mine), count // batch - 1,
                                    f"getMores on {db}.{coll} at {up.name}")
            strays = [r for r in commands_named(records, "getMore") if r not in mine]
            self.assertEqual(strays, [], f"getMores for another namespace reached {up.name}:"
                                         f"\n  {brief(strays)}")
            getmores[up.name] = {int(r["body"]["getMore"]) for r in mine}
            killed = commands_named(records, "killCursors", collection=coll, db=db)
            self.assertEqual(len(killed), 1, f"killCursors on {db}.{coll} at {up.name}")
            self.assertEqual([int(c) for c in killed[0]["body"]["cursors"]],
                             [self.COLLIDING_CURSOR_ID])
        collided = getmores["A"] & getmores["B"]
        self.assertEqual(collided, {self.COLLIDING_CURSOR_ID},
                         "A and B were made to hand out the same cursor id")
        print(f"\n[routing] upstream cursor ids in getMore: A {sorted(getmores['A'])}, "
              f"B {sorted(getmores['B'])} (collided: {sorted(collided)}); cursor ids the "
              f"client saw: alpha {client_ids[0]}, bravo {client_ids[1]}", file=sys.stderr)

    # -- 4. namespaces in replies ----------------------------------------------------------

    def test_cursor_namespaces_are_logical(self):
        self.require_proxy()
        coll = self.main.bravo_items
        coll.insert_many([{"_id": k, "v": k} for k in range(5)])
        replies = []
        found = self.main.command("find", "bravo_items", batchSize=2)
        replies.append(found)
        self.assertEqual(found["cursor"]["ns"], "main_db.bravo_items")
        self.assertEqual(len(found["cursor"]["firstBatch"]), 2)
        more = self.main.command("getMore", Int64(found["cursor"]["id"]),
                                 collection="bravo_items", batchSize=2)
        replies.append(more)
        self.assertEqual(more["cursor"]["ns"], "main_db.bravo_items")
        self.assertEqual([d["_id"] for d in more["cursor"]["nextBatch"]], [2, 3])
        killed = self.main.command("killCursors", "bravo_items",
                                   cursors=[Int64(more["cursor"]["id"])])
        replies.append(killed)
        self.assertEqual([int(c) for c in killed["cursorsKilled"]], [int(more["cursor"]["id"])])
        agg = self.main.command("aggregate", "bravo_items", pipeline=[{"$match": {}}],
                                cursor={"batchSize": 10})
        replies.append(agg)
        self.assertEqual(agg["cursor"]["ns"], "main_db.bravo_items")
        indexes = self.main.command("listIndexes", "bravo_items")
        replies.append(indexes)
        self.assertEqual(indexes["cursor"]["ns"], "main_db.$cmd.listIndexes.bravo_items")
        listed = self.main.command("listCollections")
        replies.append(listed)
        self.assertEqual(listed["cursor"]["ns"], "main_db.$cmd.listCollections")
        sdb = self.client["store_bravo"]
        store_find = sdb.command("find", "items", batchSize=3)
        replies.append(store_find)
        self.assertEqual(store_find["cursor"]["ns"], "store_bravo.items")
        self.assertEqual(len(store_find["cursor"]["firstBatch"]), 3)
        store_more = sdb.command("getMore", Int64(store_find["cursor"]["id"]),
                                 collection="items", batchSize=10)
        replies.append(store_more)
        self.assertEqual(store_more["cursor"]["ns"], "store_bravo.items")
        self.assertEqual(len(store_more["cursor"]["nextBatch"]), 2)
        explained = coll.find({"v": {"$gt": 1}}).explain()
        replies.append(explained)
        self.assertEqual(explained["queryPlanner"]["namespace"], "main_db.bravo_items")
        store_explained = sdb.command("explain", {"find": "items", "filter": {}})
        replies.append(store_explained)
        self.assertEqual(store_explained["queryPlanner"]["namespace"], "store_bravo.items")
        for reply in replies:
            self.assertNotIn(DATABASE_PREFIX, repr(reply))

    def test_catalog_cursors_continue_with_getmore(self):
        """listIndexes / listCollections cursors whose getMore names `$cmd.<...>`
        (cursor.ns minus the database, as drivers send it) reach the cursor's upstream.
        (batchSize 1 makes the upstream keep a cursor; mongogate may answer in fewer
        batches, but the client must get every entry.)"""
        self.require_proxy()
        self.main.bravo_catalog.insert_one({"_id": "gm", "v": 1})
        self.main.bravo_catalog.create_index("v")  # two indexes: _id_ and v_1
        sdb = self.client["store_bravo"]
        cases = [
            (self.main, "listIndexes", "bravo_catalog",
             "main_db.$cmd.listIndexes.bravo_catalog", ["_id_", "v_1"]),
            (sdb, "listIndexes", "catalog", "store_bravo.$cmd.listIndexes.catalog",
             ["_id_", "v_1"]),
            (sdb, "listCollections", 1, "store_bravo.$cmd.listCollections",
             sorted(c[len("bravo_"):] for c in collection_names(self.b, "pos_db_4")
                    if self.owner(c, self.registered_prefixes()) == "bravo")),
        ]
        for db, command, target, ns, want in cases:
            with self.subTest(ns=ns):
                first = db.command(command, target, cursor={"batchSize": 1})
                self.assertEqual(first["cursor"]["ns"], ns)
                got = [d["name"] for d in first["cursor"]["firstBatch"]]
                cursor_id = first["cursor"]["id"]  # 0 is fine if the batch holds all
                for _ in range(len(want)):
                    if not cursor_id:
                        break
                    more = db.command("getMore", Int64(cursor_id),
                                      collection=ns.split(".", 1)[1], batchSize=1)
                    self.assertEqual(more["cursor"]["ns"], ns)
                    self.assertNotIn(DATABASE_PREFIX, repr(more))
                    got += [d["name"] for d in more["cursor"]["nextBatch"]]
                    cursor_id = more["cursor"]["id"]
                self.assertEqual(sorted(got), want)

    def seed_store_data(self) -> None:
        """One document in a few collections of every store, plus shared collections."""
        for prefix in self.registered_prefixes():
            for suffix in ("products", "orders"):
                # (a sku: bravo_products gets a unique index on it)
                self.main[f"{prefix}_{suffix}"].update_one(
                    {"_id": f"{prefix}-{suffix}-listing"},
                    {"$set": {"store": prefix, "sku": f"{prefix}-{suffix}-listing"}},
                    upsert=True)
        self.main.delta_giftcards.update_one({"_id": "gc-1"}, {"$set": {"v": 1}}, upsert=True)
        self.main.users.update_one({"_id": "u-1"}, {"$set": {"storeId": None}}, upsert=True)
        self.main.settings.update_one({"_id": "s-1"}, {"$set": {"v": 1}}, upsert=True)

    def expected_main_listing(self) -> set[str]:
        """main_db on A plus every store collection in its home database (direct reads)."""
        prefixes = self.registered_prefixes()
        expected = set(collection_names(self.a, MAIN_DB))
        for prefix in prefixes:
            database_id = self.database_id(prefix)
            if database_id == 0:
                continue
            home_up, home_db = self.home(database_id)
            expected |= {c for c in collection_names(home_up, home_db)
                         if self.owner(c, prefixes) == prefix}
        return expected

    def open_cursors(self) -> dict[str, int]:
        return {up.name: up.stats()["cursorsOpen"] for up in self.upstreams()}

    def test_list_collections_on_main_db_merges_every_store(self):
        self.require_proxy()
        self.seed_store_data()
        open_before = self.open_cursors()
        reply = self.main.command("listCollections")
        self.assertEqual(reply["cursor"]["id"], 0, "all collections fit in one batch")
        names = [c["name"] for c in reply["cursor"]["firstBatch"]]
        self.assertNotIn(DATABASE_PREFIX, repr(reply))
        self.assertEqual(len(names), len(set(names)), f"duplicates in {sorted(names)}")

        expected = self.expected_main_listing()
        self.assertTrue({"stores", "users", "settings", "legacy_products", "bravo_products",
                         "delta_giftcards", "acme_west_orders", "echo_orders",
                         "alpha_products"} <= expected, sorted(expected))
        self.assertEqual(sorted(names), sorted(expected))
        self.assertEqual(sorted(self.main.list_collection_names()), sorted(expected))
        # The merged listing in batches of 3: getMore on main_db.$cmd.listCollections.
        batched = [c["name"] for c in self.main.list_collections(cursor={"batchSize": 3})]
        self.assertEqual(sorted(batched), sorted(expected))
        # nameOnly and a filter on a store collection
        only = self.main.command("listCollections", nameOnly=True,
                                 filter={"name": "echo_products"})
        self.assertEqual([c["name"] for c in only["cursor"]["firstBatch"]], ["echo_products"])
        self.assertEqual(self.open_cursors(), open_before,
                         "listCollections left cursors open on the upstreams")

    def test_list_collections_when_a_database_needs_more_than_one_batch(self):
        """A store database with more collections than one upstream batch (101): 20
        stores x 5 collections is already 100. The merged listing must hold them all."""
        self.require_proxy()
        self.seed_store_data()
        many = [f"delta_c{k:03d}" for k in range(110)]  # delta: pos_db_4 on B
        for name in many:
            self.main[name].insert_one({"_id": 1})
        self.assertLessEqual(set(many), set(collection_names(self.b, "pos_db_4")))
        open_before = self.open_cursors()
        expected = self.expected_main_listing()
        self.assertGreater(len(expected), 120)
        with self.subTest(database=MAIN_DB):
            names = self.main.list_collection_names()
            self.assertEqual(len(names), len(set(names)), "duplicates in the merged listing")
            missing = sorted(expected - set(names))
            self.assertEqual(missing, [], f"{len(missing)} collections missing from "
                                          f"listCollections on main_db ({len(names)} listed)")
            self.assertEqual(sorted(names), sorted(expected))
        with self.subTest(database="store_delta"):
            # Rule 3 on the same database: delta's collections, prefix stripped (the
            # driver continues the cursor with getMore on store_delta.$cmd.listCollections).
            store_names = self.client["store_delta"].list_collection_names()
            self.assertEqual(sorted(store_names),
                             sorted(c[len("delta_"):] for c in collection_names(self.b, "pos_db_4")
                                    if c.startswith("delta_")))
        self.assertEqual(self.open_cursors(), open_before,
                         "listCollections left cursors open on the upstreams")

    def test_list_databases_is_the_logical_view(self):
        self.require_proxy()
        self.seed_store_data()
        self.client[MASTERADMIN_DB].settings.update_one({"_id": "x"}, {"$set": {"v": 1}},
                                                        upsert=True)
        reply = self.client.admin.command("listDatabases")
        names = [d["name"] for d in reply["databases"]]
        self.assertIn(MAIN_DB, names)
        self.assertIn(MASTERADMIN_DB, names)
        self.assertEqual(len(names), len(set(names)), names)
        self.assertNotIn(DATABASE_PREFIX, repr(reply))
        self.assertEqual(sorted(self.client.list_database_names()), sorted(names))
        # The physical layout really has store databases on A and B.
        self.assertIn("pos_db_1", self.a.database_names())
        self.assertIn("pos_db_4", self.b.database_names())

    # -- 5. rule 3: database per store -----------------------------------------------------

    def test_drop_store_database_drops_only_that_store(self):
        """dropDatabase on store_<prefix> drops that store's collections and nothing else,
        even for a store whose prefix extends it (golf vs golf_b) in the same database."""
        self.require_proxy()
        self.main.stores.insert_many([
            {"storeId": "st-golf", "name": "Golf", "prefix": "golf", "databaseId": 5},
            {"storeId": "st-golfb", "name": "Golf B", "prefix": "golf_b", "databaseId": 5}])
        golf = self.client["store_golf"]
        golf.products.insert_one({"_id": 1})
        golf.orders.insert_one({"_id": 1})
        self.main.golf_b_products.insert_one({"_id": 1})
        self.main.echo_products.insert_one({"_id": "keep-on-drop"})
        before = self.b.collection_names("pos_db_5")
        self.assertIn("golf_products", before)
        self.assertIn("golf_orders", before)
        reply = self.client["store_golf"].command("dropDatabase")
        self.assertEqual(reply.get("dropped"), "store_golf")
        after = self.b.collection_names("pos_db_5")
        self.assertNotIn("golf_products", after)
        self.assertNotIn("golf_orders", after)
        self.assertIn("golf_b_products", after)
        self.assertIn("echo_products", after)
        # (Listing store_golf would also show golf_b's collections: a known limit of
        # rule-3 listings, see the README; the physical state is what matters here.)
        self.assertEqual(self.b.find_all("pos_db_5", "golf_b_products"), [{"_id": 1}])

    def test_store_database_maps_collections_to_the_store(self):
        self.require_proxy()
        self.main.delta_giftcards.update_one({"_id": "gc-1"}, {"$set": {"v": 1}}, upsert=True)
        sdb = self.client["store_bravo"]  # bravo: pos_db_4 on B, shared with delta
        docs = [{"_id": f"r3-{k}", "sku": f"R3-{k}", "price": k} for k in range(4)]
        sdb.products.insert_many(docs)
        self.assertEqual(by_id(sdb.products.find({"_id": {"$regex": "^r3-"}})), docs)
        self.assertEqual(sdb.products.count_documents({"price": {"$gte": 2},
                                                      "_id": {"$regex": "^r3-"}}), 2)
        # The same collection seen through rule 2.
        self.assertEqual(by_id(self.main.bravo_products.find({"_id": {"$regex": "^r3-"}})),
                         docs)
        on_b = self.b.find_all("pos_db_4", "bravo_products", {"_id": {"$regex": "^r3-"}})
        self.assertEqual(by_id(on_b), docs)
        self.assertNotIn("store_bravo", self.b.database_names())
        self.assertNotIn("store_bravo", self.a.database_names())

        # Other commands in the store database.
        self.assertEqual(sdb.products.update_one({"_id": "r3-1"}, {"$set": {"price": 10}})
                         .modified_count, 1)
        docs[1]["price"] = 10
        self.assertEqual(sdb.products.delete_one({"_id": "r3-0"}).deleted_count, 1)
        docs = docs[1:]
        self.assertEqual(sorted(sdb.products.distinct("sku", {"_id": {"$regex": "^r3-"}})),
                         ["R3-1", "R3-2", "R3-3"])
        total = list(sdb.products.aggregate([{"$match": {"_id": {"$regex": "^r3-"}}},
                                             {"$group": {"_id": None, "t": {"$sum": "$price"}}}]))
        self.assertEqual(total, [{"_id": None, "t": 10 + 2 + 3}])
        doc = sdb.products.find_one_and_update({"_id": "r3-2"}, {"$inc": {"price": 1}},
                                               return_document=ReturnDocument.AFTER)
        self.assertEqual(doc["price"], 3)
        docs[1]["price"] = 3
        self.assertEqual(by_id(self.b.find_all("pos_db_4", "bravo_products",
                                               {"_id": {"$regex": "^r3-"}})), docs)
        with self.assertRaises(DuplicateKeyError) as ctx:
            sdb.products.insert_one({"_id": "r3-1", "sku": "R3-9"})
        self.assertIn("collection: store_bravo.products", str(ctx.exception))
        self.assertNotIn(DATABASE_PREFIX, str(ctx.exception))

        names = sdb.list_collection_names()
        self.assertIn("products", names)
        for name in names:
            self.assertFalse(name.startswith("bravo_"), f"prefix not stripped: {names}")
            self.assertNotIn(DATABASE_PREFIX, name)
        self.assertNotIn("giftcards", names, "delta's collection listed in store_bravo")
        self.assertNotIn("delta_giftcards", names, "delta's collection listed in store_bravo")
        expected = sorted(c[len("bravo_"):] for c in collection_names(self.b, "pos_db_4")
                          if self.owner(c, self.registered_prefixes()) == "bravo")
        self.assertEqual(sorted(names), expected)

    def test_unknown_store_database_is_refused(self):
        self.require_proxy()
        self.clear_all_records()
        with self.assertRaises(OperationFailure) as ctx:
            self.client["store_nosuch"].products.insert_one({"_id": 1})
        self.assertIn("store_nosuch", str(ctx.exception))
        with self.assertRaises(OperationFailure) as ctx:
            self.client["store_nosuch"].products.find_one()
        self.assertIn("store_nosuch", str(ctx.exception))
        for up in self.upstreams():
            reached = [r for r in app_records(up.recorded()) if "nosuch" in repr(r.get("body"))
                       or "nosuch" in str(record_db(r))]
            self.assertEqual(reached, [], f"refused commands reached {up.name}:\n  "
                                          f"{brief(reached)}")
            self.assertFalse([d for d in up.database_names() if "nosuch" in d])

    # -- 6. one command, two upstreams ------------------------------------------------------

    def test_lookup_across_upstreams_is_refused(self):
        self.require_proxy()
        self.main.alpha_orders.insert_many([{"_id": "xo-1", "sku": "X-1", "qty": 2}])
        self.main.alpha_products.insert_many([{"_id": "xp-1", "sku": "X-1", "name": "a"}])
        self.main.bravo_products.insert_many([{"_id": "xp-2", "sku": "X-1", "name": "b"}])
        self.clear_all_records()
        cross = [
            [{"$match": {"_id": "xo-1"}},
             {"$lookup": {"from": "bravo_products", "localField": "sku",
                          "foreignField": "sku", "as": "product"}}],
            [{"$match": {"_id": "xo-1"}}, {"$unionWith": "bravo_products"}],
        ]
        for pipeline in cross:
            with self.subTest(stage=list(pipeline[1])[0]):
                with self.assertRaises(OperationFailure) as ctx:
                    list(self.main.alpha_orders.aggregate(pipeline))
                message = str(ctx.exception)
                self.assertTrue("main_db.alpha_orders" in message
                                or "main_db.bravo_products" in message,
                                f"refusal must name the logical namespace: {message!r}")
                self.assertNotIn(DATABASE_PREFIX, message)
        for up in self.upstreams():
            reached = [r for r in app_records(up.recorded())
                       if record_command_name(r) == "aggregate"
                       or "bravo_products" in repr(r.get("body"))
                       or "alpha_orders" in repr(r.get("body"))]
            self.assertEqual(reached, [], f"a refused aggregate reached {up.name}:\n  "
                                          f"{brief(reached)}")

        # Control: the same $lookup inside one store runs in its database.
        same_store = [{"$match": {"_id": "xo-1"}},
                      {"$lookup": {"from": "alpha_products", "localField": "sku",
                                   "foreignField": "sku", "as": "product"}}]
        got = list(self.main.alpha_orders.aggregate(same_store))
        self.assertEqual([[p["_id"] for p in d["product"]] for d in got], [["xp-1"]])
        ran = commands_named(app_records(self.a.recorded()), "aggregate",
                             collection="alpha_orders", db="pos_db_1")
        self.assertEqual(len(ran), 1)
        self.assertEqual(ran[0]["body"]["pipeline"][1]["$lookup"]["from"], "alpha_products")

    # -- collection-level commands follow the store ----------------------------------------

    def test_collection_commands_follow_the_store(self):
        self.require_proxy()
        main = self.main  # charlie: pos_db_3 on A; echo: pos_db_5 on B
        main.charlie_orders.insert_many([{"_id": f"co-{k}", "status": s, "total": k}
                                         for k, s in enumerate(["open", "paid", "open"])])
        main.create_collection("charlie_archive")
        self.assertIn("charlie_archive", collection_names(self.a, "pos_db_3"))
        main.charlie_archive.insert_one({"_id": "arch-1"})

        # A view on a store collection is created in the store's database.
        main.command("create", "charlie_open", viewOn="charlie_orders",
                     pipeline=[{"$match": {"status": "open"}}])
        self.assertEqual(sorted(d["_id"] for d in main.charlie_open.find()), ["co-0", "co-2"])
        views = self.a.command({"listCollections": 1, "filter": {"name": "charlie_open"},
                                "$db": "pos_db_3"})["cursor"]["firstBatch"]
        self.assertEqual([(v["type"], v["options"]["viewOn"]) for v in views],
                         [("view", "charlie_orders")])

        # renameCollection (run on admin, full namespaces) inside the store.
        main.charlie_archive.rename("charlie_archive2")
        self.assertEqual(self.a.find_all("pos_db_3", "charlie_archive2"), [{"_id": "arch-1"}])
        self.assertNotIn("charlie_archive", collection_names(self.a, "pos_db_3"))

        # $out inside the store.
        list(main.charlie_orders.aggregate([{"$match": {"status": "open"}},
                                            {"$out": "charlie_report"}]))
        self.assertEqual(sorted(d["_id"] for d in self.a.find_all("pos_db_3", "charlie_report")),
                         ["co-0", "co-2"])

        # Across upstreams: refused, nothing forwarded.
        self.clear_all_records()
        with self.assertRaises(OperationFailure) as ctx:
            main.charlie_archive2.rename("echo_archive")
        self.assertIn("charlie_archive2", str(ctx.exception))
        with self.assertRaises(OperationFailure):
            list(main.charlie_orders.aggregate([{"$merge": {"into": "echo_report"}}]))
        with self.assertRaises(OperationFailure):
            main.command("create", "echo_open", viewOn="charlie_orders", pipeline=[])
        for up in self.upstreams():
            reached = [r for r in app_records(up.recorded())
                       if "echo_" in repr(r.get("body")) or "charlie_" in repr(r.get("body"))]
            self.assertEqual(reached, [], f"refused commands reached {up.name}:\n  "
                                          f"{brief(reached)}")
        self.assertNotIn("echo_archive", collection_names(self.b, "pos_db_5"))
        self.assertIn("charlie_archive2", collection_names(self.a, "pos_db_3"))

        # drop
        main.drop_collection("charlie_archive2")
        self.assertNotIn("charlie_archive2", collection_names(self.a, "pos_db_3"))
        self.assertNotIn("charlie_archive2", collection_names(self.a, MAIN_DB))

    # -- rule 2 details ------------------------------------------------------------------

    def test_longest_registered_prefix_wins(self):
        self.require_proxy()
        self.main.acme_west_stock.insert_one({"_id": "aw-1"})  # acme_west: pos_db_5 on B
        self.main.acme_stock.insert_one({"_id": "ac-1"})       # acme: pos_db_2 on A
        self.assertEqual(list(self.main.acme_west_stock.find()), [{"_id": "aw-1"}])
        self.assertEqual(list(self.main.acme_stock.find()), [{"_id": "ac-1"}])
        self.assertEqual(self.b.find_all("pos_db_5", "acme_west_stock"), [{"_id": "aw-1"}])
        self.assertEqual(self.a.find_all("pos_db_2", "acme_stock"), [{"_id": "ac-1"}])
        self.assertNotIn("acme_west_stock", collection_names(self.a, "pos_db_2"))
        self.assertNotIn("acme_west_stock", collection_names(self.a, MAIN_DB))
        self.assertNotIn("acme_stock", collection_names(self.a, MAIN_DB))

    def test_store_not_moved_yet_stays_in_main_db(self):
        self.require_proxy()
        for prefix in ("legacy", "oldie"):  # databaseId absent / 0
            coll = self.main[f"{prefix}_products"]
            coll.insert_one({"_id": f"{prefix}-1", "price": 1})
            self.assertEqual(coll.find_one({"_id": f"{prefix}-1"}),
                             {"_id": f"{prefix}-1", "price": 1})
            self.assertEqual(self.a.find_all(MAIN_DB, f"{prefix}_products",
                                             {"_id": f"{prefix}-1"}),
                             [{"_id": f"{prefix}-1", "price": 1}])
            for up in (self.a, self.b):
                for db in up.database_names():
                    if db.startswith(DATABASE_PREFIX):
                        self.assertNotIn(f"{prefix}_products", collection_names(up, db),
                                         f"{up.name}:{db}")

    def test_store_registered_elsewhere_is_learned_by_polling(self):
        self.require_proxy()
        # Another sidecar created store foxtrot on pos_db_5 (B) and wrote its first product.
        self.b._checked({"insert": "foxtrot_products", "documents": [{"_id": "fx-1"}],
                         "$db": "pos_db_5"})
        self.a._checked({"insert": "stores", "$db": MAIN_DB, "documents": [
            {"storeId": "st-foxtrot", "name": "Foxtrot", "prefix": "foxtrot", "databaseId": 5}]})
        start = time.monotonic()
        wait_until(lambda: self.main.foxtrot_products.find_one({"_id": "fx-1"}), 10,
                   interval=0.1, message="mongogate to learn store foxtrot from main_db.stores")
        learned = time.monotonic() - start
        self.main.foxtrot_products.insert_one({"_id": "fx-2"})
        self.assertEqual(by_id(self.b.find_all("pos_db_5", "foxtrot_products")),
                         [{"_id": "fx-1"}, {"_id": "fx-2"}])
        self.assertNotIn("foxtrot_products", collection_names(self.a, MAIN_DB))
        print(f"\n[routing] store foxtrot learned {learned:.2f}s after it was registered "
              f"(poll_interval_ms {self.POLL_INTERVAL_MS})", file=sys.stderr)


# ==========================================================================================
# 7. A POS-style mongoose app (tests/e2e/node/pos_app.mjs) through mongogate.

class PosAppWithMongoose(RoutingTestCase):
    """Ten stores created by the app; two per database, so they cover pos_db_1..5."""

    STORES_PER_DATABASE = 2
    STORE_COUNT = 10
    PREFIX = "nd"
    # What pos_app.mjs leaves in each store (it asserts the same numbers itself).
    FINAL_COUNTS = {"products": 4, "orders": 3, "categories": 2, "brands": 2}
    MASTER_ADMINS = 2

    @classmethod
    def setUpClass(cls) -> None:
        harness.ensure_node_modules()
        cls.node = shutil.which("node")
        if cls.node is None:
            raise RuntimeError("node is not on PATH")
        super().setUpClass()

    def run_pos_app(self) -> dict:
        env = {
            "MONGODB_URI": self.proxy_uri(MAIN_DB),
            "MASTER_ADMIN_MONGO_URI": self.proxy_uri(MASTERADMIN_DB),
            "POS_STORE_COUNT": str(self.STORE_COUNT),
            "POS_PREFIX": self.PREFIX,
            "HOME": tempfile.mkdtemp(prefix="home-", dir=self.workdir),
            "NO_COLOR": "1",
        }
        summary, output = run_node_script([self.node, "pos_app.mjs"], env, NODE_RUN_TIMEOUT)
        self.assertIsNotNone(summary, output)
        self.assertTrue(summary.get("ok"), output)
        return summary

    def test_pos_app_stores_land_in_their_databases(self):
        if not DIRECT_MODE:
            self.clear_all_records()
        summary = self.run_pos_app()
        prefixes = [f"{self.PREFIX}{i:02d}" for i in range(self.STORE_COUNT)]
        stores = {s["prefix"]: s for s in summary["stores"]}
        self.assertEqual(sorted(stores), prefixes)
        for prefix in prefixes:
            self.assertEqual(stores[prefix]["counts"], self.FINAL_COUNTS, prefix)
        self.assertEqual(summary["masterAdmins"], self.MASTER_ADMINS)
        if DIRECT_MODE:
            return
        expected_id = {p: fill_assignment(i, self.STORES_PER_DATABASE)
                       for i, p in enumerate(prefixes)}
        self.assertEqual({p: stores[p]["databaseId"] for p in prefixes}, expected_id,
                         "databaseId the app read back through mongogate")
        registry = {d["prefix"]: d for d in self.a.find_all(MAIN_DB, "stores")}
        self.assertEqual({p: registry[p].get("databaseId") for p in prefixes}, expected_id,
                         "databaseId in main_db.stores on A")

        layout = self.physical_layout()
        for prefix in prefixes:
            with self.subTest(placement=prefix):
                home_up, home_db = self.home(expected_id[prefix])
                here = layout.get((home_up.name, home_db), {})
                counts = {s: len(here.get(f"{prefix}_{s}", [])) for s in STORE_SUFFIXES}
                self.assertEqual(counts, self.FINAL_COUNTS,
                                 f"documents of {prefix} in {home_up.name}:{home_db}")
                products = here[f"{prefix}_products"]
                self.assertTrue(all(p["store"] == prefix for p in products))
                # Nothing of the store anywhere else — not even an empty collection
                # (mongoose's createCollection / createIndexes must be routed too).
                self.assert_store_placement(layout, prefix, expected_id[prefix], {},
                                            prefixes)
                indexes = home_up.command({"listIndexes": f"{prefix}_products",
                                           "$db": home_db})
                self.assertIn("sku_1", [i["name"] for i in indexes["cursor"]["firstBatch"]],
                              "mongoose's unique index on sku, built in the store database")
        main_colls = layout[("A", MAIN_DB)]
        self.assertEqual(sorted(main_colls), ["stores", "users"],
                         "only shared collections may stay in main_db")
        self.assertEqual(len(main_colls["users"]), self.STORE_COUNT)
        self.assertEqual(sorted(a["username"] for a in layout[("C", MASTERADMIN_DB)]
                                ["masteradmins"]), ["ops", "root"])
        for up in (self.a, self.b):
            self.assertNotIn(MASTERADMIN_DB, up.database_names())
        on_c = [r for r in app_records(self.c.recorded()) if record_db(r) != MASTERADMIN_DB
                and record_db(r) != "admin"]
        self.assertEqual(on_c, [], f"C received other databases' commands:\n  {brief(on_c)}")
        # mongoose's collection creation went to the store's home database.
        for prefix in prefixes:
            home_up, home_db = self.home(expected_id[prefix])
            records = app_records(home_up.recorded())
            self.assertTrue(commands_named(records, "create", collection=f"{prefix}_orders",
                                           db=home_db),
                            f"no create of {prefix}_orders in {home_db} on {home_up.name}")


if __name__ == "__main__":
    harness.main()
