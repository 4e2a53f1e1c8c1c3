"""End-to-end: operating mongogate (issue 6) through the real binary and mock upstreams.

- SIGHUP and POST /v1/reload: a good new configuration changes where a client's writes
  land (placement of a store database moves to another upstream); a bad one is refused,
  logged with every problem, counted, and the old routing keeps working.
- POST /v1/stores: the store is created through the assignment policy, persisted in
  <main db>.stores upstream, listed by /v1/registry and routed at once; 400/401/403/409/503.
- log.format json with the slow-operation log: every line is a JSON object; a delayed
  upstream reply yields one slow-operation entry with its fields; no document content.
- mongogate_requests_total{result="command_error"} counts replies whose ok is 0.

Run: MONGOGATE_BIN=build/proxy/mongogate /usr/bin/python3 -m unittest -v test_operations
"""

from __future__ import annotations

import json
import signal
import unittest

from prometheus_client.parser import text_string_to_metric_families
from pymongo.errors import OperationFailure

from harness import (MAIN_DB, E2ETestCase, WireConnection, client_for, file_registry_config, wait_until,
                     write_yaml_config)

TOKEN = "ops-e2e-token"
SECRET_CONTENT = "card-4111-1111-1111-1111"  # document content that must never reach a log


def scrape(proxy) -> dict:
    status, _, body = proxy.admin_request("GET", "/metrics")
    assert status == 200, body
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def metric(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


class ReloadTest(E2ETestCase):
    """Store abc lives in pos_db_2; a reload moves pos_db_2 from main to shard2."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.main = cls.start_inprocess_upstream("main")
        cls.shard = cls.start_inprocess_upstream("shard2")
        cls.main._checked({"insert": "stores", "documents": [
            {"storeId": "s-1", "name": "Shop One", "prefix": "abc", "databaseId": 2}], "$db": MAIN_DB})

    def config(self, placement: dict | None = None, **extra) -> dict:
        config = {
            "upstreams": {
                "main": {"uri": f"mongodb://127.0.0.1:{self.main.port}/{MAIN_DB}"},
                "shard2": {"uri": f"mongodb://127.0.0.1:{self.shard.port}"},
            },
            "routing": {"store_databases": {"count": 3, "placement": placement or {3: "shard2"}}},
            "registry": {"poll_interval_ms": 200},
        }
        config.update(extra)
        return config

    def start(self, name: str):
        proxy = self.start_configured_proxy(self.config(), admin=True, admin_token=TOKEN, name=name)
        proxy.config_path = self.workdir / f"{proxy.name}.yaml"
        return proxy

    def rewrite(self, proxy, config: dict) -> None:
        write_yaml_config(proxy.config_path, config)

    def where_does_an_insert_land(self, proxy, marker: str) -> str:
        client = client_for(proxy.port)
        try:
            client["store_abc"].orders.insert_one({"marker": marker})
        finally:
            client.close()
        on_main = self.main.find_all("pos_db_2", "abc_orders", {"marker": marker})
        on_shard = self.shard.find_all("pos_db_2", "abc_orders", {"marker": marker})
        self.assertEqual(len(on_main) + len(on_shard), 1, (on_main, on_shard))
        return "main" if on_main else "shard2"

    def reload_config(self, proxy) -> dict:
        status, _, body = proxy.admin_request("GET", "/v1/config")
        self.assertEqual(status, 200, body)
        return json.loads(body)["reload"]

    def test_sighup_with_a_good_configuration_moves_the_routing(self):
        proxy = self.start("good")
        self.assertEqual(self.where_does_an_insert_land(proxy, "before"), "main")
        self.rewrite(proxy, self.config({2: "shard2", 3: "shard2"}))
        proxy.proc.send_signal(signal.SIGHUP)
        proxy.wait_for_log(r"configuration reload \(SIGHUP\) applied: generation 2", timeout=10)
        self.assertEqual(self.where_does_an_insert_land(proxy, "after"), "shard2")
        reload = self.reload_config(proxy)
        self.assertEqual((reload["generation"], reload["applied"], reload["last_result"]), (2, 1, "applied"))
        config = json.loads(proxy.admin_request("GET", "/v1/config")[2])
        self.assertEqual(config["routing"]["store_databases"]["placement"]["2"], "shard2")
        registry = json.loads(proxy.admin_request("GET", "/v1/registry")[2])
        self.assertEqual(registry["stores"][0]["upstream"], "shard2")
        samples = scrape(proxy)
        self.assertEqual(metric(samples, "mongogate_config_reloads_total", result="applied"), 1)
        self.assertEqual(metric(samples, "mongogate_config_generation"), 2)
        self.stop_proxy(proxy)

    def test_sighup_with_a_bad_configuration_keeps_the_old_one(self):
        proxy = self.start("bad")
        bad = self.config({2: "nowhere"}, pool={"max_size": "lots"})
        self.rewrite(proxy, bad)
        proxy.proc.send_signal(signal.SIGHUP)
        proxy.wait_for_log(r"configuration reload \(SIGHUP\) refused", timeout=10)
        proxy.wait_for_log(r"pool\.max_size: expected a whole number from 1 to 100000, got 'lots'")
        proxy.wait_for_log(r"routing\.store_databases\.placement\.2: unknown upstream 'nowhere'")
        self.assertTrue(proxy.alive())
        self.assertEqual(self.where_does_an_insert_land(proxy, "still-main"), "main")
        reload = self.reload_config(proxy)
        self.assertEqual((reload["generation"], reload["refused"], reload["last_result"]), (1, 1, "refused"))
        self.assertEqual(len(reload["problems"]), 2, reload)
        samples = scrape(proxy)
        self.assertEqual(metric(samples, "mongogate_config_reloads_total", result="refused"), 1)
        self.assertEqual(metric(samples, "mongogate_config_reloads_total", result="applied"), 0)
        self.assertEqual(metric(samples, "mongogate_config_generation"), 1)
        # Fixed, the next reload applies.
        self.rewrite(proxy, self.config({2: "shard2"}))
        proxy.proc.send_signal(signal.SIGHUP)
        proxy.wait_for_log(r"configuration reload \(SIGHUP\) applied", timeout=10)
        self.assertEqual(self.where_does_an_insert_land(proxy, "fixed"), "shard2")
        self.stop_proxy(proxy)

    def test_post_reload_applies_and_reports_settings_that_need_a_restart(self):
        proxy = self.start("post")
        self.rewrite(proxy, self.config({2: "shard2"}, pool={"max_size": 7}))
        status, _, body = proxy.admin_request("POST", "/v1/reload")
        self.assertEqual(status, 401, body)
        status, _, body = proxy.admin_request("POST", "/v1/reload", TOKEN)
        self.assertEqual(status, 200, body)
        reply = json.loads(body)
        self.assertEqual(reply["last_result"], "applied")
        self.assertEqual(reply["needs_restart"], ["pool.max_size"])
        proxy.wait_for_log(r"pool\.max_size changed, which needs a restart")
        self.assertEqual(json.loads(proxy.admin_request("GET", "/v1/config")[2])["pool"]["max_size"], 100)
        self.assertEqual(self.where_does_an_insert_land(proxy, "posted"), "shard2")
        # A refused one answers 422 with every problem.
        self.rewrite(proxy, self.config(log={"format": "xml"}))
        status, _, body = proxy.admin_request("POST", "/v1/reload", TOKEN)
        self.assertEqual(status, 422, body)
        self.assertIn("log.format: expected text or json, got 'xml'", json.loads(body)["error"])
        self.assertEqual(self.where_does_an_insert_land(proxy, "kept"), "shard2")
        self.stop_proxy(proxy)

    def test_a_registry_source_that_cannot_load_yet_keeps_the_old_snapshot(self):
        proxy = self.start("registry-file")
        registry_file = self.workdir / "later-stores.yaml"
        self.rewrite(proxy, self.config(registry={"source": "file", "file": str(registry_file)}))
        status, _, body = proxy.admin_request("POST", "/v1/reload", TOKEN)
        self.assertEqual(status, 200, body)
        proxy.wait_for_log(r"the new registry source has not loaded .*the current snapshot keeps serving")
        registry = json.loads(proxy.admin_request("GET", "/v1/registry")[2])
        self.assertEqual([s["prefix"] for s in registry["stores"]], ["abc"], registry)
        self.assertEqual(self.where_does_an_insert_land(proxy, "old-snapshot"), "main")
        # Once the file appears, the new source's follower publishes it.
        registry_file.write_text(json.dumps({"stores": [{"prefix": "filed", "databaseId": 1}]}))
        wait_until(lambda: [s["prefix"] for s in json.loads(
            proxy.admin_request("GET", "/v1/registry")[2])["stores"]] == ["filed"], 10,
            message="the new registry source to publish the file")
        self.stop_proxy(proxy)

    def test_a_reload_that_moves_the_registry_collection_follows_the_new_one(self):
        proxy = self.start("registry")
        # The registry moves to a collection that does not exist yet: the new source loads
        # an empty registry, so store abc is gone ...
        self.rewrite(proxy, self.config(routing={"registry_collection": "tenants",
                                                 "store_databases": {"count": 3}}))
        status, _, body = proxy.admin_request("POST", "/v1/reload", TOKEN)
        self.assertEqual(status, 200, body)
        registry = json.loads(proxy.admin_request("GET", "/v1/registry")[2])
        self.assertEqual(registry["storeCount"], 0, registry)
        # ... and the follower of the new source sees a store written there.
        self.main._checked({"insert": "tenants", "documents": [
            {"storeId": "t-1", "prefix": "tnt", "databaseId": 1}], "$db": MAIN_DB})
        wait_until(lambda: json.loads(proxy.admin_request("GET", "/v1/registry")[2])["storeCount"] == 1, 10,
                   message="the new registry source to publish the new store")
        self.stop_proxy(proxy)


class StoresEndpointTest(E2ETestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.main = cls.start_inprocess_upstream("main")
        cls.main._checked({"insert": "stores", "documents": [
            {"storeId": "s-1", "name": "Old", "prefix": "old", "databaseId": 1}], "$db": MAIN_DB})
        cls.main_uri = f"mongodb://127.0.0.1:{cls.main.port}/{MAIN_DB}"
        cls.proxy = cls.start_configured_proxy(
            {"upstreams": {"main": {"uri": cls.main_uri}},
             "routing": {"store_databases": {"count": 3, "stores_per_database": 2}},
             "registry": {"poll_interval_ms": 200}},
            admin=True, admin_token=TOKEN, name="stores")

    def post(self, body, token=TOKEN, proxy=None):
        status, _, raw = (proxy or self.proxy).admin_request(
            "POST", "/v1/stores", token, json.dumps(body).encode() if not isinstance(body, bytes) else body)
        return status, json.loads(raw)

    def test_a_created_store_is_persisted_listed_and_routed_at_once(self):
        status, store = self.post({"prefix": "neo", "name": "New Shop"})
        self.assertEqual(status, 201, store)
        # fill: pos_db_1 holds one store of 2, so it still has room.
        self.assertEqual((store["prefix"], store["name"], store["databaseId"], store["physicalDatabase"],
                          store["upstream"]), ("neo", "New Shop", 1, "pos_db_1", "main"))
        docs = self.main.find_all(MAIN_DB, "stores", {"prefix": "neo"})
        self.assertEqual(len(docs), 1, docs)
        self.assertEqual((docs[0]["databaseId"], docs[0]["name"]), (1, "New Shop"))
        self.assertEqual(str(docs[0]["storeId"]), store["storeId"])
        registry = json.loads(self.proxy.admin_request("GET", "/v1/registry")[2])
        self.assertIn("neo", {s["prefix"] for s in registry["stores"]})
        client = client_for(self.proxy.port)
        try:
            client["store_neo"].items.insert_one({"sku": 1})
            self.assertEqual(client["store_neo"].items.count_documents({}), 1)
        finally:
            client.close()
        self.assertEqual(len(self.main.find_all("pos_db_1", "neo_items")), 1)
        # The next one goes to pos_db_2 (pos_db_1 is full); an explicit databaseId is kept.
        status, store = self.post({"prefix": "second"})
        self.assertEqual((status, store["databaseId"]), (201, 2), store)
        status, store = self.post({"prefix": "third", "databaseId": 3, "storeId": "given-id"})
        self.assertEqual((status, store["databaseId"], store["storeId"]), (201, 3, "given-id"), store)

    def test_errors(self):
        status, reply = self.post({"prefix": "old"})
        self.assertEqual(status, 409, reply)
        self.assertIn("prefix 'old' already exists", reply["error"])
        # Known upstream but not yet in this proxy's registry snapshot: also 409.
        self.main._checked({"insert": "stores", "documents": [{"prefix": "race", "databaseId": 1}],
                            "$db": MAIN_DB})
        status, reply = self.post({"prefix": "race"})
        if status != 409:
            self.fail(f"expected 409 for a prefix already upstream, got {status}: {reply}")
        status, reply = self.post(b"{not json")
        self.assertEqual(status, 400, reply)
        self.assertIn("not JSON", reply["error"])
        status, reply = self.post({"prefix": "a b"})
        self.assertEqual(status, 400, reply)
        status, reply = self.post({"prefix": "big", "databaseId": 9})
        self.assertEqual(status, 400, reply)
        self.assertIn("databaseId: expected 0 (the main database) to 3", reply["error"])
        status, reply = self.post({"prefix": "nope"}, token="wrong")
        self.assertEqual(status, 401, reply)
        status, reply = self.post({"prefix": "nope"}, token=None)
        self.assertEqual(status, 401, reply)
        self.assertEqual(self.main.find_all(MAIN_DB, "stores", {"prefix": {"$in": ["nope", "big", "a b"]}}), [])

    def test_without_a_token_or_with_a_file_registry_or_main_down(self):
        no_token = self.start_configured_proxy({"upstreams": {"main": {"uri": self.main_uri}}},
                                               admin=True, name="no-token")
        status, reply = self.post({"prefix": "x1"}, token="anything", proxy=no_token)
        self.assertEqual(status, 403, reply)
        self.stop_proxy(no_token)

        from_file = self.start_configured_proxy(
            file_registry_config(self.main_uri, self.write_registry_file([])),
            admin=True, admin_token=TOKEN, name="file")
        status, reply = self.post({"prefix": "x2"}, proxy=from_file)
        self.assertEqual(status, 503, reply)
        self.assertIn("registry.source: file", reply["error"])
        self.stop_proxy(from_file)

        # A second upstream that the test stops: the store cannot be persisted.
        doomed = self.start_inprocess_upstream("doomed")
        doomed_proxy = self.start_configured_proxy(
            {"upstreams": {"main": {"uri": f"mongodb://127.0.0.1:{doomed.port}/{MAIN_DB}"}}},
            admin=True, admin_token=TOKEN, name="doomed")
        wait_until(lambda: doomed_proxy.admin_request("GET", "/readyz")[0] == 200, 15, message="ready")
        doomed.stop()
        status, reply = self.post({"prefix": "x3"}, proxy=doomed_proxy)
        self.assertEqual(status, 503, reply)
        self.assertIn("the store was not created", reply["error"])
        self.assertNotIn("x3", {s["prefix"] for s in json.loads(
            doomed_proxy.admin_request("GET", "/v1/registry")[2])["stores"]})
        self.stop_proxy(doomed_proxy)


class LoggingAndResultsTest(E2ETestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.main = cls.start_inprocess_upstream("main")
        cls.main._checked({"insert": "stores", "documents": [
            {"storeId": "s-1", "prefix": "abc", "databaseId": 2}], "$db": MAIN_DB})
        cls.proxy = cls.start_configured_proxy(
            {"upstreams": {"main": {"uri": f"mongodb://127.0.0.1:{cls.main.port}/{MAIN_DB}"}},
             "log": {"format": "json", "slow_operation_ms": 150}},
            admin=True, admin_token=TOKEN, name="json-log", log_level="info")

    def json_lines(self) -> list[dict]:
        entries = []
        for line in self.proxy.log().splitlines():
            if line.startswith("# "):  # the harness's own command-line note
                continue
            entry = json.loads(line)  # every line mongogate writes is one JSON object
            self.assertTrue({"ts", "level", "msg"} <= set(entry), entry)
            entries.append(entry)
        return entries

    def test_slow_operations_are_logged_as_json_without_document_content(self):
        client = client_for(self.proxy.port)
        try:
            client["store_abc"].orders.insert_one({"card": SECRET_CONTENT})
            self.main.add_fault("find", "delay", delayMs=400, times=1)
            docs = list(client["store_abc"].orders.find({"card": SECRET_CONTENT}))
            self.assertEqual(len(docs), 1)
            list(client["store_abc"].orders.find({"card": "fast"}))  # not slow: not logged
        finally:
            client.close()
        slow = wait_until(lambda: [e for e in self.json_lines() if e["msg"] == "slow operation"], 5,
                          message="a slow-operation entry")
        self.assertEqual(len(slow), 1, slow)
        entry = slow[0]
        self.assertEqual(entry["level"], "warn")
        self.assertGreaterEqual(entry["duration_ms"], 400)
        self.assertEqual(entry["command"], "find")
        self.assertEqual(entry["ns"], "store_abc.orders")
        self.assertEqual(entry["physical_ns"], "pos_db_2.abc_orders")
        self.assertEqual(entry["upstream"], "main")
        self.assertEqual(entry["result"], "ok")
        self.assertRegex(entry["client"], r"^127\.0\.0\.1:\d+$")
        self.assertNotIn(SECRET_CONTENT, self.proxy.log())
        # Startup lines are JSON too.
        self.assertTrue(any(e["msg"].startswith("mongogate ") and "listening" in e["msg"]
                            for e in self.json_lines()))

    def test_replies_with_ok_0_count_as_command_error(self):
        labels = dict(command="find", database="store", upstream="main")
        before = scrape(self.proxy)
        self.main.add_fault("find", "error", code=2, codeName="BadValue", errmsg="injected", times=1)
        client = client_for(self.proxy.port)
        try:
            with self.assertRaises(OperationFailure):
                list(client["store_abc"].orders.find({}))
            list(client["store_abc"].orders.find({}))
        finally:
            client.close()
        after = scrape(self.proxy)
        self.assertEqual(metric(after, "mongogate_requests_total", result="command_error", **labels)
                         - metric(before, "mongogate_requests_total", result="command_error", **labels), 1)
        self.assertEqual(metric(after, "mongogate_requests_total", result="ok", **labels)
                         - metric(before, "mongogate_requests_total", result="ok", **labels), 1)

    def test_requests_are_counted_by_physical_database(self):
        before = scrape(self.proxy)
        client = client_for(self.proxy.port)
        try:
            for _ in range(3):
                list(client["store_abc"].orders.find({}))   # rule 3: pos_db_2
            client[MAIN_DB].abc_orders.insert_one({"n": 1})  # rule 2: pos_db_2 too
            client[MAIN_DB].shared.insert_one({"n": 1})      # main database
        finally:
            client.close()
        after = scrape(self.proxy)
        name = "mongogate_physical_database_requests_total"
        self.assertEqual(metric(after, name, database="pos_db_2") - metric(before, name, database="pos_db_2"), 4)
        self.assertEqual(metric(after, name, database=MAIN_DB) - metric(before, name, database=MAIN_DB), 1)

    def test_refused_rewrites_are_counted(self):
        before = scrape(self.proxy)
        with WireConnection(self.proxy.port) as conn:
            reply = conn.command({"find": "orders", "$db": "store_unknown"})
            self.assertEqual(reply.get("ok"), 0, reply)
        after = scrape(self.proxy)
        self.assertEqual(metric(after, "mongogate_refused_commands_total", reason="routing")
                         - metric(before, "mongogate_refused_commands_total", reason="routing"), 1)


if __name__ == "__main__":
    unittest.main()
