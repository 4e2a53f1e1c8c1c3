// admin/http_handlers.h: every endpoint against a fake AdminState, no socket.
#include "admin/http_handlers.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "admin/metrics.h"

namespace mongogate::admin {
namespace {

namespace json = boost::json;

constexpr const char* kPassword = "s3cr3t-pw";
constexpr const char* kToken = "admin-token-123";

class FakeState : public AdminState {
 public:
  FakeState() {
    config::UpstreamConfig main;
    main.name = "main";
    main.uri = std::string("mongodb://app:") + kPassword + "@db1:27017,db2:27018/main_db?tlsCertificateKeyFilePassword=" +
               kPassword + "&appName=pos";
    main.hosts = {{"db1", 27017}, {"db2", 27018}};
    main.database = "main_db";
    proxyConfig.upstreams.push_back(main);
    config::UpstreamConfig masteradmin = main;
    masteradmin.name = "masteradmin";
    masteradmin.sameAsMain = true;
    proxyConfig.upstreams.push_back(masteradmin);
    proxyConfig.main = main;
    proxyConfig.routing.mainDatabase = "main_db";
    proxyConfig.routing.storeDatabaseUpstreams = {"main", "main", "main", "main", "main"};
  }

  Readiness readiness() const override { return ready; }
  std::string metricsText() const override { return "# HELP x y\n# TYPE x gauge\nx 1\n"; }
  RegistryView registry() const override { return registryView; }
  std::vector<UpstreamRow> upstreams() const override {
    return {{"main", proxyConfig.upstreams[0].uri, {"db1:27017", "db2:27018"}, "main", {5, 2, 1}},
            {"masteradmin", proxyConfig.upstreams[1].uri, {"db1:27017", "db2:27018"}, "main", {5, 2, 1}}};
  }
  std::shared_ptr<const config::ProxyConfig> config() const override {
    return std::make_shared<const config::ProxyConfig>(proxyConfig);
  }
  void requestDrain() const override { ++drains; }
  ReloadStatus reloadStatus() const override { return reloadState; }
  ReloadStatus reload() const override {
    ++reloads;
    return reloadState;
  }
  StoreCreation createStore(const NewStore& store) const override {
    created.push_back(store);
    StoreCreation out = creation;
    out.store.prefix = store.prefix;
    return out;
  }

  config::ProxyConfig proxyConfig;
  Readiness ready{true, true, "", false};
  RegistryView registryView;
  ReloadStatus reloadState;
  StoreCreation creation{201, "", {"id-1", "Shop", "", 2, "pos_db_2", "main"}};
  mutable int drains = 0;
  mutable int reloads = 0;
  mutable std::vector<NewStore> created;
};

Response get(const FakeState& state, std::string target) { return handle({"GET", std::move(target), "", ""}, state); }

Response post(const FakeState& state, std::string target, std::string authorization, std::string body = "") {
  return handle({"POST", std::move(target), std::move(authorization), std::move(body)}, state);
}

json::object bodyOf(const Response& response) {
  EXPECT_EQ(response.contentType, "application/json");
  return json::parse(response.body).as_object();
}

std::string errorOf(const Response& response) { return std::string(bodyOf(response).at("error").as_string()); }

std::string header(const Response& response, std::string_view name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return {};
}

TEST(AdminHandlersTest, HealthzIsAlwaysOk) {
  FakeState state;
  state.ready = {false, false, "down", true};
  const Response r = get(state, "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
}

TEST(AdminHandlersTest, ReadyzIsOkWhenEveryCheckPasses) {
  FakeState state;
  const Response r = get(state, "/readyz");
  EXPECT_EQ(r.status, 200);
  const json::object body = bodyOf(r);
  EXPECT_TRUE(body.at("ready").as_bool());
  EXPECT_TRUE(body.at("checks").at("registry_loaded").as_bool());
  EXPECT_TRUE(body.at("checks").at("main_reachable").as_bool());
  EXPECT_TRUE(body.at("checks").at("not_draining").as_bool());
  EXPECT_FALSE(body.contains("failed"));
}

struct ReadinessCase {
  Readiness readiness;
  std::vector<std::string> failed;
  std::string inMessage;
};

class AdminReadinessTest : public ::testing::TestWithParam<ReadinessCase> {};

TEST_P(AdminReadinessTest, ReadyzNamesEachFailedCheck) {
  FakeState state;
  state.ready = GetParam().readiness;
  const Response r = get(state, "/readyz");
  EXPECT_EQ(r.status, 503);
  const json::object body = bodyOf(r);
  EXPECT_FALSE(body.at("ready").as_bool());
  std::vector<std::string> failed;
  for (const auto& name : body.at("failed").as_array()) failed.emplace_back(name.as_string());
  EXPECT_EQ(failed, GetParam().failed);
  EXPECT_NE(std::string(body.at("error").as_string()).find(GetParam().inMessage), std::string::npos)
      << body.at("error");
}

INSTANTIATE_TEST_SUITE_P(
    EachCheck, AdminReadinessTest,
    ::testing::Values(ReadinessCase{{false, true, "", false}, {"registry_loaded"}, "registry is not loaded"},
                      ReadinessCase{{true, false, "cannot connect: refused", false},
                                    {"main_reachable"},
                                    "main upstream is not reachable (cannot connect: refused)"},
                      ReadinessCase{{true, true, "", true}, {"not_draining"}, "draining"},
                      ReadinessCase{{false, false, "", true},
                                    {"registry_loaded", "main_reachable", "not_draining"},
                                    "not ready"}));

TEST(AdminHandlersTest, MetricsUseThePrometheusTextFormat) {
  FakeState state;
  const Response r = get(state, "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.contentType, kMetricsContentType);
  EXPECT_EQ(r.body, state.metricsText());
}

TEST(AdminHandlersTest, RegistryListsStoresWithTheirPhysicalPlace) {
  FakeState state;
  state.registryView.loaded = true;
  state.registryView.version = 7;
  state.registryView.stores = {{"64b0", "Shop \"One\"", "abc", 2, "pos_db_2", "shard2"},
                               {"65", "New", "new", 0, "main_db", "main"}};
  state.registryView.databases = {{"main_db", "main", 1}, {"pos_db_2", "shard2", 1}};
  const Response r = get(state, "/v1/registry");
  EXPECT_EQ(r.status, 200);
  const json::object body = bodyOf(r);
  EXPECT_TRUE(body.at("loaded").as_bool());
  EXPECT_EQ(body.at("version").to_number<int>(), 7);
  EXPECT_EQ(body.at("storeCount").to_number<int>(), 2);
  const json::object& first = body.at("stores").as_array().at(0).as_object();
  EXPECT_EQ(first.at("storeId").as_string(), "64b0");
  EXPECT_EQ(first.at("name").as_string(), "Shop \"One\"");
  EXPECT_EQ(first.at("prefix").as_string(), "abc");
  EXPECT_EQ(first.at("databaseId").to_number<int>(), 2);
  EXPECT_EQ(first.at("physicalDatabase").as_string(), "pos_db_2");
  EXPECT_EQ(first.at("upstream").as_string(), "shard2");
  const json::object& database = body.at("databases").as_array().at(1).as_object();
  EXPECT_EQ(database.at("database").as_string(), "pos_db_2");
  EXPECT_EQ(database.at("upstream").as_string(), "shard2");
  EXPECT_EQ(database.at("stores").to_number<int>(), 1);
}

TEST(AdminHandlersTest, UpstreamsShowPoolsAndRedactedUris) {
  FakeState state;
  const Response r = get(state, "/v1/upstreams");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.find(kPassword), std::string::npos) << r.body;
  const json::object body = bodyOf(r);
  const json::object& main = body.at("upstreams").as_array().at(0).as_object();
  EXPECT_EQ(main.at("name").as_string(), "main");
  EXPECT_EQ(main.at("uri").as_string(),
            "mongodb://app:****@db1:27017,db2:27018/main_db?tlsCertificateKeyFilePassword=****&appName=pos");
  EXPECT_EQ(main.at("hosts").as_array().size(), 2u);
  EXPECT_EQ(main.at("pool").as_string(), "main");
  const json::object& connections = main.at("connections").as_object();
  EXPECT_EQ(connections.at("total").to_number<int>(), 5);
  EXPECT_EQ(connections.at("idle").to_number<int>(), 2);
  EXPECT_EQ(connections.at("busy").to_number<int>(), 3);
  EXPECT_EQ(connections.at("waiting").to_number<int>(), 1);
}

TEST(AdminHandlersTest, ConfigHasNoSecrets) {
  FakeState state;
  state.proxyConfig.admin.token = kToken;
  auth::UserRecord user;
  user.user = "clerk";
  user.scope.allStores = false;
  user.scope.storePrefixes = {"ab"};
  user.scope.mainDatabase = auth::Access::kRead;
  user.scramSha256 = auth::StoredCredentials{"salt-bytes", 15000, "STORED-KEY-BYTES", "SERVER-KEY-BYTES"};
  state.proxyConfig.auth = {config::AuthConfig::Mode::kUsers, {user}};
  const Response r = get(state, "/v1/config");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.find(kPassword), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find(kToken), std::string::npos) << r.body;
  const json::object body = bodyOf(r);
  EXPECT_EQ(body.at("admin").at("token").as_string(), "****");
  EXPECT_EQ(body.at("admin").at("listen").as_string(), "127.0.0.1:9090");
  EXPECT_EQ(body.at("listen").as_string(), "127.0.0.1:27017");
  EXPECT_EQ(body.at("routing").at("main_database").as_string(), "main_db");
  EXPECT_EQ(body.at("routing").at("store_databases").at("placement").at("3").as_string(), "main");
  EXPECT_EQ(body.at("upstreams").at("main").at("uri").as_string(),
            "mongodb://app:****@db1:27017,db2:27018/main_db?tlsCertificateKeyFilePassword=****&appName=pos");
  EXPECT_TRUE(body.at("upstreams").at("masteradmin").at("same_as_main").as_bool());
  EXPECT_EQ(body.at("registry").at("source").as_string(), "upstream");
  // Users without keys (not even base64 of them).
  EXPECT_EQ(body.at("auth").at("mode").as_string(), "users");
  const json::object& clerk = body.at("auth").at("users").at(0).as_object();
  EXPECT_EQ(clerk.at("user").as_string(), "clerk");
  EXPECT_EQ(clerk.at("db").as_string(), "admin");
  EXPECT_EQ(clerk.at("stores").at(0).as_string(), "ab");
  EXPECT_EQ(clerk.at("main_database").as_string(), "read");
  EXPECT_EQ(clerk.at("mechanisms").at(0).as_string(), "SCRAM-SHA-256");
  for (const char* secret : {"STORED-KEY", "SERVER-KEY", "salt-bytes", "U1RPUkVE", "c2FsdC1ieXRlcw"}) {
    EXPECT_EQ(r.body.find(secret), std::string::npos) << secret;
  }
}

TEST(AdminHandlersTest, ConfigShowsAnUnsetTokenAsNull) {
  FakeState state;
  const json::object body = bodyOf(get(state, "/v1/config"));
  EXPECT_TRUE(body.at("admin").at("token").is_null());
}

TEST(AdminHandlersTest, RedactUriKeepsEverythingButSecrets) {
  EXPECT_EQ(redactUri("mongodb://u:p@h:1/db"), "mongodb://u:****@h:1/db");
  EXPECT_EQ(redactUri("mongodb://h:1/db?replicaSet=rs0"), "mongodb://h:1/db?replicaSet=rs0");
  EXPECT_EQ(redactUri("mongodb://h/?authMechanismProperties=x&mySecret=y&apiToken=z&w=1"),
            "mongodb://h/?authMechanismProperties=x&mySecret=****&apiToken=****&w=1");
  EXPECT_EQ(redactUri("mongodb://u@h/db"), "mongodb://u@h/db");
}

TEST(AdminHandlersTest, DrainWithoutAConfiguredTokenIsForbidden) {
  FakeState state;
  const Response r = post(state, "/v1/drain", "Bearer anything");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(errorOf(r), "mutating endpoints are disabled: no admin token configured");
  EXPECT_EQ(state.drains, 0);
}

TEST(AdminHandlersTest, DrainWithAMissingOrWrongTokenIsUnauthorized) {
  FakeState state;
  state.proxyConfig.admin.token = kToken;
  for (const std::string& authorization :
       {std::string(), std::string("Bearer"), std::string("Bearer wrong"), std::string("Basic ") + kToken,
        std::string("Bearer ") + kToken + "x", std::string("Bearer ") + std::string(kToken).substr(1)}) {
    const Response r = post(state, "/v1/drain", authorization);
    EXPECT_EQ(r.status, 401) << authorization;
    EXPECT_FALSE(header(r, "WWW-Authenticate").empty());
    EXPECT_FALSE(errorOf(r).empty());
    EXPECT_EQ(r.body.find(kToken), std::string::npos);
  }
  EXPECT_EQ(state.drains, 0);
}

TEST(AdminHandlersTest, DrainWithTheTokenDrains) {
  FakeState state;
  state.proxyConfig.admin.token = kToken;
  const Response r = post(state, "/v1/drain", std::string("Bearer ") + kToken);
  EXPECT_EQ(r.status, 202);
  EXPECT_TRUE(bodyOf(r).at("draining").as_bool());
  EXPECT_EQ(state.drains, 1);
  // The scheme is case-insensitive (RFC 7235).
  EXPECT_EQ(post(state, "/v1/drain", std::string("bearer ") + kToken).status, 202);
  EXPECT_EQ(state.drains, 2);
}

TEST(AdminHandlersTest, UnknownPathIsNotFound) {
  FakeState state;
  for (const char* path : {"/", "/nope", "/healthz/", "/v1", "/v1/registry/x", "/METRICS"}) {
    const Response r = get(state, path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_FALSE(errorOf(r).empty());
  }
}

TEST(AdminHandlersTest, WrongMethodIsNotAllowedAndSaysWhichIs) {
  FakeState state;
  state.proxyConfig.admin.token = kToken;
  const std::pair<std::string, std::string> cases[] = {
      {"POST", "/healthz"}, {"DELETE", "/readyz"}, {"PUT", "/metrics"}, {"POST", "/v1/registry"},
      {"POST", "/v1/upstreams"}, {"POST", "/v1/config"}, {"GET", "/v1/drain"}};
  for (const auto& [method, path] : cases) {
    const Response r = handle({method, path, std::string("Bearer ") + kToken, ""}, state);
    EXPECT_EQ(r.status, 405) << method << " " << path;
    EXPECT_EQ(header(r, "Allow"), path == "/v1/drain" ? "POST" : "GET") << path;
    EXPECT_FALSE(errorOf(r).empty());
  }
  EXPECT_EQ(state.drains, 0);
}

TEST(AdminHandlersTest, ReloadAndStoresNeedTheToken) {
  FakeState state;
  for (const char* path : {"/v1/reload", "/v1/stores"}) {
    EXPECT_EQ(post(state, path, "Bearer anything", "{\"prefix\":\"abc\"}").status, 403) << path;
  }
  state.proxyConfig.admin.token = kToken;
  for (const char* path : {"/v1/reload", "/v1/stores"}) {
    EXPECT_EQ(post(state, path, "", "{\"prefix\":\"abc\"}").status, 401) << path;
    EXPECT_EQ(post(state, path, "Bearer wrong", "{\"prefix\":\"abc\"}").status, 401) << path;
  }
  EXPECT_EQ(state.reloads, 0);
  EXPECT_TRUE(state.created.empty());
}

TEST(AdminHandlersTest, ReloadReportsAppliedOrRefused) {
  FakeState state;
  state.proxyConfig.admin.token = kToken;
  const std::string bearer = std::string("Bearer ") + kToken;
  state.reloadState.lastResult = "applied";
  state.reloadState.generation = 2;
  state.reloadState.applied = 1;
  state.reloadState.needsRestart = {"listen"};
  Response r = post(state, "/v1/reload", bearer);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(bodyOf(r).at("generation").to_number<std::uint64_t>(), 2u);
  EXPECT_EQ(bodyOf(r).at("needs_restart").as_array().at(0).as_string(), "listen");
  state.reloadState.lastResult = "refused";
  state.reloadState.problems = {"pool.max_size: expected a whole number", "log.format: expected text or json"};
  r = post(state, "/v1/reload", bearer);
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_NE(errorOf(r).find("pool.max_size: expected a whole number"), std::string::npos);
  EXPECT_NE(errorOf(r).find("log.format"), std::string::npos);
  EXPECT_EQ(bodyOf(r).at("problems").as_array().size(), 2u);
  EXPECT_EQ(state.reloads, 2);
  // /v1/config shows the reload state.
  EXPECT_EQ(bodyOf(get(state, "/v1/config")).at("reload").at("last_result").as_string(), "refused");
}

TEST(AdminHandlersTest, StoresValidatesTheBody) {
  FakeState state;
  state.proxyConfig.admin.token = kToken;
  const std::string bearer = std::string("Bearer ") + kToken;
  const std::pair<std::string, std::string> bad[] = {
      {"", "not JSON"},
      {"{", "not JSON"},
      {"[1]", "must be a JSON object"},
      {"{}", "prefix is required"},
      {"{\"prefix\": 5}", "prefix: expected a string"},
      {"{\"prefix\": \"a-b\"}", "prefix: expected 1 to 64 ASCII letters or digits"},
      {"{\"prefix\": \"\"}", "prefix: expected 1 to 64"},
      {"{\"prefix\": \"abc\", \"databaseId\": -1}", "databaseId: expected 0 or more"},
      {"{\"prefix\": \"abc\", \"databaseId\": 1.5}", "databaseId: expected a whole number"},
      {"{\"prefix\": \"abc\", \"name\": 3}", "name: expected a string"},
      {"{\"prefix\": \"abc\", \"colour\": \"red\"}", "unknown field 'colour'"},
  };
  for (const auto& [body, message] : bad) {
    const Response r = post(state, "/v1/stores", bearer, body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_NE(errorOf(r).find(message), std::string::npos) << body << " -> " << errorOf(r);
  }
  EXPECT_TRUE(state.created.empty());
  const Response ok = post(state, "/v1/stores", bearer, "{\"prefix\": \"abc\", \"name\": \"Shop\", \"databaseId\": 2}");
  EXPECT_EQ(ok.status, 201) << ok.body;
  ASSERT_EQ(state.created.size(), 1u);
  EXPECT_EQ(state.created[0].prefix, "abc");
  EXPECT_EQ(state.created[0].name, "Shop");
  EXPECT_EQ(state.created[0].databaseId, 2);
  EXPECT_EQ(bodyOf(ok).at("physicalDatabase").as_string(), "pos_db_2");
  state.creation = {409, "a store with prefix 'abc' already exists", {}};
  const Response taken = post(state, "/v1/stores", bearer, "{\"prefix\": \"abc\"}");
  EXPECT_EQ(taken.status, 409);
  EXPECT_EQ(errorOf(taken), "a store with prefix 'abc' already exists");
  EXPECT_FALSE(state.created.back().databaseId.has_value());
}

TEST(AdminHandlersTest, QueryStringsAreIgnored) {
  FakeState state;
  EXPECT_EQ(get(state, "/healthz?verbose=1").status, 200);
  EXPECT_EQ(get(state, "/metrics?x").status, 200);
}

}  // namespace
}  // namespace mongogate::admin
