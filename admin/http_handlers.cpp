#include "admin/http_handlers.h"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <limits>
#include <string_view>

#include "admin/metrics.h"

namespace mongogate::admin {
namespace {

namespace json = boost::json;

constexpr std::string_view kRedacted = "****";

Response jsonResponse(int status, const json::value& body) {
  Response response;
  response.status = status;
  response.body = json::serialize(body);
  response.body += '\n';
  return response;
}

Response error(int status, std::string_view message) {
  return jsonResponse(status, json::object{{"error", message}});
}

bool containsSecretWord(std::string_view key) {
  std::string lower(key);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
  for (std::string_view word : {"password", "secret", "token"}) {
    if (lower.find(word) != std::string::npos) return true;
  }
  return false;
}

// Constant time in the length of the expected token: the comparison does not say how
// much of a guess was right.
bool sameSecret(std::string_view given, std::string_view expected) {
  unsigned char difference = given.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    difference |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(expected[i]));
  }
  return difference == 0;
}

// 0 when the request may mutate; else the error response's status.
Response authorize(const Request& request, const AdminState& state, bool& allowed) {
  allowed = false;
  const std::shared_ptr<const config::ProxyConfig> current = state.config();
  const std::string& token = current->admin.token;
  if (token.empty()) return error(403, "mutating endpoints are disabled: no admin token configured");
  constexpr std::string_view kBearer = "Bearer ";
  std::string_view header = request.authorization;
  if (header.size() < kBearer.size() ||
      !std::equal(kBearer.begin(), kBearer.end(), header.begin(),
                  [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) ==
                                              std::tolower(static_cast<unsigned char>(b)); })) {
    Response response = error(401, "missing bearer token (Authorization: Bearer <admin token>)");
    response.headers.emplace_back("WWW-Authenticate", "Bearer");
    return response;
  }
  if (!sameSecret(header.substr(kBearer.size()), token)) {
    Response response = error(401, "wrong bearer token");
    response.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    return response;
  }
  allowed = true;
  return {};
}

Response healthz() {
  Response response;
  response.contentType = "text/plain; charset=utf-8";
  response.body = "ok\n";
  return response;
}

Response readyz(const AdminState& state) {
  const Readiness r = state.readiness();
  json::array failed;
  json::object checks;
  checks["registry_loaded"] = r.registryLoaded;
  checks["main_reachable"] = r.mainReachable;
  checks["not_draining"] = !r.draining;
  if (!r.registryLoaded) failed.emplace_back("registry_loaded");
  if (!r.mainReachable) failed.emplace_back("main_reachable");
  if (r.draining) failed.emplace_back("not_draining");
  json::object body;
  body["ready"] = failed.empty();
  body["checks"] = std::move(checks);
  if (!failed.empty()) {
    std::string message = "not ready:";
    for (const auto& name : failed) {
      const std::string_view check = name.as_string();
      message += ' ';
      if (check == "registry_loaded") message += "the store registry is not loaded;";
      if (check == "main_reachable") {
        message += "the main upstream is not reachable";
        if (!r.mainDetail.empty()) message += " (" + r.mainDetail + ")";
        message += ';';
      }
      if (check == "not_draining") message += "draining;";
    }
    message.pop_back();
    body["failed"] = std::move(failed);
    body["error"] = message;
  }
  return jsonResponse(body.at("ready").as_bool() ? 200 : 503, body);
}

Response metrics(const AdminState& state) {
  Response response;
  response.contentType = std::string(kMetricsContentType);
  response.body = state.metricsText();
  return response;
}

json::object storeJson(const StoreRow& store) {
  return json::object{{"storeId", store.storeId},
                      {"name", store.name},
                      {"prefix", store.prefix},
                      {"databaseId", store.databaseId},
                      {"physicalDatabase", store.physicalDatabase},
                      {"upstream", store.upstream}};
}

Response registry(const AdminState& state) {
  const RegistryView view = state.registry();
  json::array stores;
  for (const StoreRow& store : view.stores) stores.emplace_back(storeJson(store));
  json::array databases;
  for (const DatabaseRow& database : view.databases) {
    databases.emplace_back(json::object{
        {"database", database.database}, {"upstream", database.upstream}, {"stores", database.stores}});
  }
  return jsonResponse(200, json::object{{"loaded", view.loaded},
                                        {"version", view.version},
                                        {"storeCount", view.stores.size()},
                                        {"stores", std::move(stores)},
                                        {"databases", std::move(databases)}});
}

Response upstreams(const AdminState& state) {
  json::array rows;
  for (const UpstreamRow& row : state.upstreams()) {
    json::array hosts;
    for (const std::string& host : row.hosts) hosts.emplace_back(host);
    json::array servers;
    for (const ServerRow& server : row.servers) {
      servers.emplace_back(json::object{
          {"address", server.address},
          {"type", server.type},
          {"breaker", server.breaker},
          {"consecutive_failures", server.consecutiveFailures},
          {"rtt_ms", server.rttMs},
          {"error", server.error},
          {"connections", json::object{{"total", server.totals.total},
                                       {"idle", server.totals.idle},
                                       {"busy", server.totals.total - std::min(server.totals.total, server.totals.idle)},
                                       {"waiting", server.totals.waiting}}}});
    }
    rows.emplace_back(json::object{{"name", row.name},
                                   {"uri", redactUri(row.uri)},
                                   {"hosts", std::move(hosts)},
                                   {"topology", row.topology},
                                   {"set_name", row.setName},
                                   {"servers", std::move(servers)},
                                   {"pool", row.pool},
                                   {"connections", json::object{{"total", row.totals.total},
                                                                {"idle", row.totals.idle},
                                                                {"busy", row.totals.total - std::min(row.totals.total, row.totals.idle)},
                                                                {"waiting", row.totals.waiting}}}});
  }
  return jsonResponse(200, json::object{{"upstreams", std::move(rows)}});
}

json::value optionalText(const std::string& text) { return text.empty() ? json::value(nullptr) : json::value(text); }

json::array textArray(const std::vector<std::string>& texts) {
  json::array out;
  for (const std::string& text : texts) out.emplace_back(text);
  return out;
}

json::object reloadJson(const ReloadStatus& r) {
  return json::object{{"generation", r.generation},
                      {"applied", r.applied},
                      {"refused", r.refused},
                      {"last_attempt_unix", r.lastAttemptUnix == 0 ? json::value(nullptr) : json::value(r.lastAttemptUnix)},
                      {"last_success_unix", r.lastSuccessUnix},
                      {"last_result", r.lastResult},
                      {"last_trigger", optionalText(r.lastTrigger)},
                      {"problems", textArray(r.problems)},
                      {"needs_restart", textArray(r.needsRestart)}};
}

Response configuration(const AdminState& state) {
  const std::shared_ptr<const config::ProxyConfig> current = state.config();
  const config::ProxyConfig& c = *current;
  json::object upstreamsJson;
  for (const config::UpstreamConfig& upstream : c.upstreams) {
    json::array hosts;
    for (const config::HostPort& host : upstream.hosts) hosts.emplace_back(host.toString());
    upstreamsJson[upstream.name] = json::object{{"uri", redactUri(upstream.uri)},
                                                {"hosts", std::move(hosts)},
                                                {"database", optionalText(upstream.database)},
                                                {"app_name", optionalText(upstream.appName)},
                                                {"same_as_main", upstream.sameAsMain}};
  }
  // Users without their stored keys: names, mechanisms and scopes only.
  json::array users;
  for (const auth::UserRecord& user : c.auth.users) {
    json::array mechanisms;
    if (user.scramSha256) mechanisms.emplace_back("SCRAM-SHA-256");
    if (user.scramSha1) mechanisms.emplace_back("SCRAM-SHA-1");
    json::array stores;
    if (user.scope.allStores) stores.emplace_back("*");
    for (const std::string& prefix : user.scope.storePrefixes) stores.emplace_back(prefix);
    users.emplace_back(json::object{{"user", user.user},
                                    {"db", user.database},
                                    {"mechanisms", std::move(mechanisms)},
                                    {"stores", std::move(stores)},
                                    {"main_database", std::string(auth::toString(user.scope.mainDatabase))}});
  }
  const router::RoutingConfig& r = c.routing;
  json::array masterAdminDatabases;
  for (const std::string& name : r.masterAdminDatabases) masterAdminDatabases.emplace_back(name);
  json::object placement;
  for (std::size_t i = 0; i < r.storeDatabaseUpstreams.size(); ++i) {
    placement[std::to_string(i + 1)] = r.storeDatabaseUpstreams[i];
  }
  json::object body{
      {"listen", c.listen.toString()},
      {"threads", c.threads},
      {"port_file", optionalText(c.portFile)},
      {"log_level", c.logLevel},
      {"log", json::object{{"format", config::toString(c.log.format)}, {"slow_operation_ms", c.log.slowOperationMs}}},
      {"max_message_size", c.maxMessageSize},
      {"drain_timeout_ms", c.drainTimeoutMs},
      {"config_file", optionalText(c.configFile)},
      {"pool", json::object{{"max_size", c.pool.maxSize},
                            {"wait_queue_timeout_ms", c.pool.waitQueueTimeoutMs},
                            {"connect_timeout_ms", c.pool.connectTimeoutMs},
                            {"idle_check_ms", c.pool.idleCheckMs}}},
      {"upstreams", std::move(upstreamsJson)},
      {"routing", json::object{{"main_database", r.mainDatabase},
                               {"registry_collection", r.registryCollection},
                               {"master_admin", json::object{{"databases", std::move(masterAdminDatabases)},
                                                             {"upstream", r.masterAdminUpstream},
                                                             {"physical_database",
                                                              optionalText(r.masterAdminPhysicalDatabase)}}},
                               {"store_databases", json::object{{"prefix", r.databasePrefix},
                                                                {"count", r.databaseCount},
                                                                {"stores_per_database", r.storesPerDatabase},
                                                                {"placement", std::move(placement)}}},
                               {"store_database_prefix", r.storeDatabasePrefix},
                               {"allow_drop_main_database", r.allowDropMainDatabase}}},
      {"registry", json::object{{"source", config::toString(c.registry.source)},
                                {"file", optionalText(c.registry.file)},
                                {"poll_interval_ms", c.registry.pollIntervalMs},
                                {"cache_file", optionalText(c.registry.cacheFile)},
                                {"change_streams", c.registry.changeStreams},
                                {"assignment", config::toString(c.registry.assignment)}}},
      {"compression", [&] {
         json::array names;
         for (const std::string& name : c.compression) names.emplace_back(name);
         return names;
       }()},
      {"tls", json::object{{"enabled", c.listenTls.enabled},
                           {"certificate_file", optionalText(c.listenTls.certificateFile)},
                           {"key_file", optionalText(c.listenTls.keyFile)},
                           {"ca_file", optionalText(c.listenTls.caFile)},
                           {"require_client_certificate", c.listenTls.requireClientCertificate},
                           {"handshake_timeout_ms", c.listenTls.handshakeTimeoutMs}}},
      {"admin", json::object{{"listen", c.admin.enabled ? json::value(c.admin.listen.toString()) : json::value("off")},
                             {"token", c.admin.token.empty() ? json::value(nullptr) : json::value(kRedacted)},
                             {"port_file", optionalText(c.admin.portFile)}}},
      {"auth", json::object{{"mode", config::toString(c.auth.mode)}, {"users", std::move(users)}}},
      {"reload", reloadJson(state.reloadStatus())},
  };
  return jsonResponse(200, body);
}

Response drain(const Request&, const AdminState& state) {
  state.requestDrain();
  return jsonResponse(202, json::object{{"draining", true}});
}

Response reload(const Request&, const AdminState& state) {
  const ReloadStatus status = state.reload();
  json::object body = reloadJson(status);
  if (status.lastResult == "applied") return jsonResponse(200, body);
  std::string message = "configuration refused; the running configuration stays:";
  for (const std::string& problem : status.problems) message += " " + problem + ";";
  message.pop_back();
  body["error"] = message;
  return jsonResponse(422, body);
}

bool validPrefix(std::string_view prefix) {
  return !prefix.empty() && prefix.size() <= 64 && std::all_of(prefix.begin(), prefix.end(), [](unsigned char ch) {
    return std::isalnum(ch) != 0;
  });
}

// The body of POST /v1/stores, or why it is not one (400).
std::string parseNewStore(const std::string& text, NewStore& out) {
  boost::system::error_code ec;
  const json::value value = json::parse(text, ec);
  if (ec) return "the body is not JSON: " + ec.message();
  if (!value.is_object()) return "the body must be a JSON object such as {\"prefix\": \"abc\"}";
  bool hasPrefix = false;
  for (const auto& [key, field] : value.as_object()) {
    if (key == "prefix" || key == "name" || key == "storeId") {
      if (!field.is_string()) return std::string(key) + ": expected a string";
      std::string text(field.as_string());
      if (text.find('\0') != std::string::npos) return std::string(key) + ": cannot contain a NUL character";
      if (key == "prefix") {
        if (!validPrefix(text)) return "prefix: expected 1 to 64 ASCII letters or digits, got '" + text + "'";
        out.prefix = std::move(text);
        hasPrefix = true;
      } else {
        (key == "name" ? out.name : out.storeId) = std::move(text);
      }
    } else if (key == "databaseId") {
      if (!field.is_int64() && !field.is_uint64()) return "databaseId: expected a whole number";
      const std::int64_t id = field.is_int64() ? field.as_int64() : -1;
      if (id < 0 || id > std::numeric_limits<std::int32_t>::max()) return "databaseId: expected 0 or more";
      out.databaseId = static_cast<std::int32_t>(id);
    } else {
      return "unknown field '" + std::string(key) + "' (expected prefix, name, storeId, databaseId)";
    }
  }
  if (!hasPrefix) return "prefix is required";
  return {};
}

Response stores(const Request& request, const AdminState& state) {
  NewStore store;
  if (std::string why = parseNewStore(request.body, store); !why.empty()) return error(400, why);
  const StoreCreation created = state.createStore(store);
  if (created.status != 201) return error(created.status, created.error);
  return jsonResponse(201, storeJson(created.store));
}

struct Endpoint {
  std::string_view path;
  std::string_view method;
  bool mutating;
  Response (*respond)(const Request&, const AdminState&);
};

const Endpoint kEndpoints[] = {
    {"/healthz", "GET", false, [](const Request&, const AdminState&) { return healthz(); }},
    {"/readyz", "GET", false, [](const Request&, const AdminState& s) { return readyz(s); }},
    {"/metrics", "GET", false, [](const Request&, const AdminState& s) { return metrics(s); }},
    {"/v1/registry", "GET", false, [](const Request&, const AdminState& s) { return registry(s); }},
    {"/v1/upstreams", "GET", false, [](const Request&, const AdminState& s) { return upstreams(s); }},
    {"/v1/config", "GET", false, [](const Request&, const AdminState& s) { return configuration(s); }},
    {"/v1/drain", "POST", true, drain},
    {"/v1/reload", "POST", true, reload},
    {"/v1/stores", "POST", true, stores},
};

}  // namespace

std::string redactUri(const std::string& uri) {
  config::UpstreamConfig upstream;
  upstream.uri = uri;
  std::string out = upstream.redactedUri();
  const std::size_t query = out.find('?');
  if (query == std::string::npos) return out;
  std::string result = out.substr(0, query + 1);
  std::string_view options = std::string_view(out).substr(query + 1);
  while (!options.empty()) {
    const std::size_t end = std::min(options.find('&'), options.size());
    const std::string_view option = options.substr(0, end);
    const std::size_t eq = option.find('=');
    if (eq != std::string_view::npos && containsSecretWord(option.substr(0, eq))) {
      result.append(option.substr(0, eq + 1));
      result.append(kRedacted);
    } else {
      result.append(option);
    }
    if (end < options.size()) result += '&';
    options.remove_prefix(std::min(end + 1, options.size()));
  }
  return result;
}

Response handle(const Request& request, const AdminState& state) {
  std::string_view path = request.target;
  path = path.substr(0, path.find('?'));
  const Endpoint* match = nullptr;
  for (const Endpoint& endpoint : kEndpoints) {
    if (endpoint.path == path) match = &endpoint;
  }
  if (!match) return error(404, "no such endpoint: " + std::string(path));
  if (request.method != match->method) {
    Response response = error(405, "method " + request.method + " is not allowed on " + std::string(path) +
                                       "; use " + std::string(match->method));
    response.headers.emplace_back("Allow", std::string(match->method));
    return response;
  }
  if (match->mutating) {
    bool allowed = false;
    Response refusal = authorize(request, state, allowed);
    if (!allowed) return refusal;
  }
  return match->respond(request, state);
}

}  // namespace mongogate::admin
