#!/usr/bin/python3
"""demo_app.py — a tiny POS app that talks only to mongogate (docker/compose.yaml runs it).

Promise: written the way the platform's apps are (background 001/002) with no knowledge
of pos_db_N: it registers stores in main_db.stores without a databaseId, writes each
store's products and orders to main_db.{prefix}_products / _orders, reads them back
through main_db and through the store's own database view store_{prefix}, and writes an
admin to the masteradmin database. Safe to run again (stores and documents are upserted).
Prints one JSON line per store and a summary; exits 1 when a read-back disagrees.

Env: MONGODB_URI (mongogate, path /main_db), MASTER_ADMIN_MONGO_URI (mongogate, path
/masteradmin; falls back to MONGODB_URI), DEMO_STORES (3), DEMO_PREFIX ("demo").
Needs pymongo (Debian's python3-pymongo).
"""

import json
import os
import sys

import pymongo
from pymongo.uri_parser import parse_uri


def main() -> int:
    uri = os.environ["MONGODB_URI"]
    admin_uri = os.environ.get("MASTER_ADMIN_MONGO_URI") or uri
    count = int(os.environ.get("DEMO_STORES", "3"))
    base = os.environ.get("DEMO_PREFIX", "demo")
    options = dict(serverSelectionTimeoutMS=20000, connectTimeoutMS=5000)
    client = pymongo.MongoClient(uri, **options)
    main_db = client[parse_uri(uri)["database"] or "test"]
    problems = []

    for number in range(1, count + 1):
        prefix = f"{base}{number}"
        stores = main_db["stores"]
        if stores.find_one({"prefix": prefix}) is None:
            # No databaseId: mongogate assigns one on insert (SPEC §5).
            stores.insert_one({"storeId": f"store-{prefix}", "name": f"Store {number}", "prefix": prefix})
        store = stores.find_one({"prefix": prefix})
        products = main_db[f"{prefix}_products"]
        for sku in range(1, 4):
            products.update_one({"sku": f"{prefix}-{sku}"},
                                {"$set": {"name": f"item {sku}", "price": sku * 2.5}}, upsert=True)
        main_db[f"{prefix}_orders"].update_one(
            {"number": 1}, {"$set": {"items": [{"sku": f"{prefix}-1", "qty": 2}], "total": 5.0}}, upsert=True)
        through_main = products.count_documents({})
        through_view = client[f"store_{prefix}"]["products"].count_documents({})
        row = {"store": prefix, "databaseId": store.get("databaseId"),
               "products": through_main, "products_via_store_view": through_view}
        print(json.dumps(row), flush=True)
        if not isinstance(store.get("databaseId"), int) or store["databaseId"] < 1:
            problems.append(f"{prefix}: no databaseId assigned")
        if through_main != 3 or through_view != 3:
            problems.append(f"{prefix}: expected 3 products, read {through_main} and {through_view}")

    admin_client = pymongo.MongoClient(admin_uri, **options)
    admins = admin_client[parse_uri(admin_uri)["database"] or "masteradmin"]["admins"]
    admins.update_one({"username": "owner"}, {"$set": {"role": "owner"}}, upsert=True)
    if admins.count_documents({"username": "owner"}) != 1:
        problems.append("masteradmin: the admin was not read back")

    print(json.dumps({"stores": count, "problems": problems}), flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
