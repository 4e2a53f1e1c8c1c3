"""End-to-end: the admin HTTP port (SPEC §8) of the real binary.

/healthz, /readyz (and its drain), /metrics scraped with the Prometheus client's own
parser while pymongo and raw wire clients drive traffic, /v1/registry from a registry
file, /v1/config and /v1/upstreams without secrets, and the token rules of the mutating
endpoint.

Run: MONGOGATE_BIN=build/proxy/mongogate /usr/bin/python3 -m unittest -v test_admin
"""

from __future__ import annotations

import json
import unittest

from prometheus_client.parser import text_string_to_metric_families

from harness import MAIN_DB, E2ETestCase, WireConnection, client_for, file_registry_config, wait_until

PASSWORD = "pa55-word-e2e"
TOKEN = "e2e-admin-token"
STORES = [
    {"storeId": "s-1", "name": "Shop One", "prefix": "abc", "databaseId": 2},
    {"storeId": "s-2", "name": "Shop Two", "prefix": "xyz", "databaseId": 2},
    {"storeId": "s-3", "name": "Not moved", "prefix": "new", "databaseId": 0},
]

EXPECTED_FAMILIES = {
    # family name (as the parser reports it) -> type
    "mongogate_requests": "counter",
    "mongogate_request_duration_seconds": "histogram",
    "mongogate_client_connections": "gauge",
    "mongogate_open_transactions": "gauge",
    "mongogate_upstream_connections": "gauge",
    "mongogate_pool_wait_seconds": "histogram",
    "mongogate_pool_timeouts": "counter",
    "mongogate_refused_commands": "counter",
    "mongogate_auth_failures": "counter",
    "mongogate_bytes_in": "counter",
    "mongogate_bytes_out": "counter",
    "mongogate_stores_per_database": "gauge",
    "mongogate_registry_stores": "gauge",
    "mongogate_physical_database_requests": "counter",
    "mongogate_config_reloads": "counter",
    "mongogate_config_generation": "gauge",
    "mongogate_config_last_reload_success_timestamp_seconds": "gauge",
}


class Scrape:
    """One /metrics scrape, parsed by prometheus_client."""

    def __init__(self, text: str):
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples: dict[tuple[str, frozenset], float] = {}
        for family in self.families.values():
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)


class AdminPortTest(E2ETestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        # mongogate authenticates with the URI's credentials: the mock checks them.
        cls.upstream = cls.start_upstream("main", extra_args=["--user", f"app:{PASSWORD}"])
        cls.main_uri = f"mongodb://app:{PASSWORD}@127.0.0.1:{cls.upstream.port}/{MAIN_DB}?authSource=admin"
        cls.config = file_registry_config(cls.main_uri, cls.write_registry_file(STORES))
        cls.proxy = cls.start_configured_proxy(cls.config, admin=True, admin_token=TOKEN, name="admin")

    def setUp(self) -> None:
        self.require_proxy()

    def get(self, path: str, token: str | None = None, proxy=None):
        return (proxy or self.proxy).admin_request("GET", path, token)

    def get_json(self, path: str) -> dict:
        status, headers, body = self.get(path)
        self.assertEqual(status, 200, body)
        self.assertEqual(headers.get("Content-Type"), "application/json")
        return json.loads(body)

    def scrape(self) -> Scrape:
        status, headers, body = self.get("/metrics")
        self.assertEqual(status, 200, body)
        self.assertTrue(headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"), headers)
        return Scrape(body.decode())

    def wait_ready(self, proxy=None) -> None:
        wait_until(lambda: self.get("/readyz", proxy=proxy)[0] == 200, 15,
                   message="/readyz to answer 200")

    # ---- probes ----

    def test_healthz(self):
        status, headers, body = self.get("/healthz")
        self.assertEqual((status, body), (200, b"ok\n"))

    def test_readyz_once_the_registry_is_loaded_and_main_answers(self):
        self.wait_ready()
        status, _, body = self.get("/readyz")
        reply = json.loads(body)
        self.assertTrue(reply["ready"], reply)
        self.assertEqual(reply["checks"], {"registry_loaded": True, "main_reachable": True,
                                           "not_draining": True})

    # ---- metrics ----

    def test_metrics_declares_every_family_with_help_and_type(self):
        scrape = self.scrape()
        for name, kind in EXPECTED_FAMILIES.items():
            self.assertIn(name, scrape.families, f"{name} missing from /metrics")
            self.assertEqual(scrape.families[name].type, kind, name)
            self.assertTrue(scrape.families[name].documentation, f"{name} has no HELP")

    def test_requests_total_moves_with_pymongo_traffic(self):
        insert_main = dict(command="insert", database="main", upstream="main", result="ok")
        find_store = dict(command="find", database="store", upstream="main", result="ok")
        before = self.scrape()
        client = client_for(self.proxy.port)
        try:
            for i in range(5):
                client[MAIN_DB].plain.insert_one({"i": i})
            client[MAIN_DB].abc_orders.insert_one({"order": 1})  # rule 2: pos_db_2 on main
            for _ in range(3):
                list(client["store_abc"].orders.find({}))        # rule 3
        finally:
            client.close()
        after = self.scrape()
        self.assertEqual(after.value("mongogate_requests_total", **insert_main)
                         - before.value("mongogate_requests_total", **insert_main), 6)
        self.assertEqual(after.value("mongogate_requests_total", **find_store)
                         - before.value("mongogate_requests_total", **find_store), 3)
        self.assertGreaterEqual(
            after.value("mongogate_request_duration_seconds_count", command="insert")
            - before.value("mongogate_request_duration_seconds_count", command="insert"), 6)
        self.assertGreater(after.value("mongogate_bytes_in_total"), before.value("mongogate_bytes_in_total"))
        self.assertGreater(after.value("mongogate_bytes_out_total"), before.value("mongogate_bytes_out_total"))
        self.assertGreaterEqual(after.value("mongogate_pool_wait_seconds_count", upstream="main")
                                - before.value("mongogate_pool_wait_seconds_count", upstream="main"), 9)
        pooled = (after.value("mongogate_upstream_connections", upstream="main", state="idle")
                  + after.value("mongogate_upstream_connections", upstream="main", state="busy"))
        self.assertGreaterEqual(pooled, 1, "the pool holds the connections the traffic opened")

    def test_refusals_and_auth_failures_are_counted(self):
        before = self.scrape()
        with WireConnection(self.proxy.port) as conn:
            # Rule 3 with an unknown prefix is refused (SPEC §3).
            reply = conn.command({"find": "orders", "$db": "store_nosuchstore"})
            self.assertEqual(reply.get("ok"), 0, reply)
            reply = conn.command({"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": b"x",
                                  "$db": "admin"})
            self.assertEqual(reply.get("ok"), 0, reply)
        after = self.scrape()
        self.assertEqual(after.value("mongogate_refused_commands_total", reason="routing")
                         - before.value("mongogate_refused_commands_total", reason="routing"), 1)
        self.assertEqual(after.value("mongogate_auth_failures_total")
                         - before.value("mongogate_auth_failures_total"), 1)
        refused = dict(command="find", database="store", upstream="none", result="refused")
        self.assertEqual(after.value("mongogate_requests_total", **refused)
                         - before.value("mongogate_requests_total", **refused), 1)

    def test_client_connections_follows_open_clients(self):
        def gauge() -> float:
            return self.scrape().value("mongogate_client_connections")

        baseline = gauge()
        conns = [WireConnection(self.proxy.port) for _ in range(3)]
        try:
            for conn in conns:
                conn.command({"ping": 1, "$db": "admin"})  # accepted and served
            wait_until(lambda: gauge() == baseline + 3, 10, message="client_connections to rise by 3")
        finally:
            for conn in conns:
                conn.close()
        wait_until(lambda: gauge() == baseline, 10, message="client_connections to fall back")

    def test_registry_gauges(self):
        scrape = self.scrape()
        self.assertEqual(scrape.value("mongogate_registry_stores"), len(STORES))
        self.assertEqual(scrape.value("mongogate_stores_per_database", database="pos_db_2"), 2)
        self.assertEqual(scrape.value("mongogate_stores_per_database", database="pos_db_1"), 0)
        self.assertEqual(scrape.value("mongogate_stores_per_database", database=MAIN_DB), 1)

    # ---- /v1 ----

    def test_registry_lists_stores_with_their_physical_place(self):
        reply = self.get_json("/v1/registry")
        self.assertTrue(reply["loaded"])
        self.assertEqual(reply["storeCount"], len(STORES))
        by_prefix = {s["prefix"]: s for s in reply["stores"]}
        self.assertEqual(by_prefix["abc"], {"storeId": "s-1", "name": "Shop One", "prefix": "abc",
                                            "databaseId": 2, "physicalDatabase": "pos_db_2",
                                            "upstream": "main"})
        self.assertEqual(by_prefix["new"]["physicalDatabase"], MAIN_DB)
        counts = {d["database"]: d["stores"] for d in reply["databases"]}
        self.assertEqual(counts["pos_db_2"], 2)
        self.assertEqual(counts[MAIN_DB], 1)

    def test_config_and_upstreams_hold_no_password_or_token(self):
        for path in ("/v1/config", "/v1/upstreams"):
            status, _, body = self.get(path)
            self.assertEqual(status, 200, body)
            self.assertNotIn(PASSWORD.encode(), body, path)
            self.assertNotIn(TOKEN.encode(), body, path)
        config = self.get_json("/v1/config")
        self.assertEqual(config["upstreams"]["main"]["uri"],
                         f"mongodb://app:****@127.0.0.1:{self.upstream.port}/{MAIN_DB}?authSource=admin")
        self.assertEqual(config["admin"]["token"], "****")
        self.assertEqual(config["registry"]["source"], "file")
        upstreams = {u["name"]: u for u in self.get_json("/v1/upstreams")["upstreams"]}
        self.assertEqual(set(upstreams), {"main", "masteradmin"})
        self.assertEqual(upstreams["main"]["hosts"], [f"127.0.0.1:{self.upstream.port}"])
        self.assertIn("****", upstreams["main"]["uri"])

    def test_errors(self):
        status, headers, body = self.get("/nope")
        self.assertEqual(status, 404)
        self.assertIn("error", json.loads(body))
        status, headers, body = self.proxy.admin_request("POST", "/metrics")
        self.assertEqual(status, 405)
        self.assertEqual(headers.get("Allow"), "GET")
        status, headers, body = self.proxy.admin_request("GET", "/v1/drain", TOKEN)
        self.assertEqual((status, headers.get("Allow")), (405, "POST"))
        status, _, body = self.proxy.admin_request("POST", "/v1/drain")
        self.assertEqual(status, 401, body)
        status, _, body = self.proxy.admin_request("POST", "/v1/drain", "wrong-token")
        self.assertEqual(status, 401, body)
        self.wait_ready()  # a refused drain must not drain

    def test_drain_turns_readiness_off_but_keeps_serving(self):
        proxy = self.start_configured_proxy(self.config, admin=True, admin_token=TOKEN, name="drain")
        self.wait_ready(proxy)
        status, _, body = proxy.admin_request("POST", "/v1/drain", TOKEN)
        self.assertEqual(status, 202, body)
        status, _, body = proxy.admin_request("GET", "/readyz")
        self.assertEqual(status, 503, body)
        reply = json.loads(body)
        self.assertEqual(reply["failed"], ["not_draining"])
        self.assertIn("draining", reply["error"])
        client = client_for(proxy.port)
        try:
            client[MAIN_DB].after_drain.insert_one({"still": "served"})
        finally:
            client.close()
        self.assertEqual(self.get("/healthz", proxy=proxy)[0], 200)
        self.stop_proxy(proxy)

    def test_mutating_endpoints_are_off_without_a_token(self):
        proxy = self.start_configured_proxy(self.config, admin=True, name="no-token")
        status, _, body = proxy.admin_request("POST", "/v1/drain", "anything")
        self.assertEqual(status, 403, body)
        self.assertEqual(json.loads(body)["error"],
                         "mutating endpoints are disabled: no admin token configured")
        self.assertIsNone(json.loads(proxy.admin_request("GET", "/v1/config")[2])["admin"]["token"])
        self.stop_proxy(proxy)


if __name__ == "__main__":
    unittest.main()
