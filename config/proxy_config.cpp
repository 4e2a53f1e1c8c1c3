#include "config/proxy_config.h"

#include <mongoc/mongoc.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

extern char** environ;

namespace mongogate::config {
namespace {

using Environment = std::map<std::string, std::string>;

template <class T>
std::optional<T> parseNumber(const std::string& text, T min, T max) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return std::nullopt;
  }
  return value;
}

// Where a value came from: the path a problem names, and the file position if any.
struct Origin {
  std::string path;
  std::string location;
};

// State while the layers (file, environment, command line) are applied. Upstream URIs
// and placement are staged because they can only be judged once every layer is in.
struct Draft {
  Draft(ProxyConfig& c, std::vector<ConfigProblem>& p, std::vector<ConfigProblem>& w)
      : config(c), problems(p), warnings(w) {}
  ProxyConfig& config;
  std::vector<ConfigProblem>& problems;
  std::vector<ConfigProblem>& warnings;
  struct StagedUri {
    std::string uri;
    Origin origin;
  };
  std::map<std::string, StagedUri> uris;  // by upstream name
  struct DeclaredUpstream {
    std::string name;
    Origin origin;
  };
  std::vector<DeclaredUpstream> fileUpstreams;  // the file's upstreams other than main/masteradmin
  struct Placement {
    std::int64_t database;
    std::string upstream;
    Origin origin;
  };
  std::vector<Placement> placement;
  std::map<std::string, Origin> origins;  // setting path -> where its current value came from
  std::set<std::string> fromFile;         // setting paths the file sets
  std::map<std::string, std::string> fileValues;  // path -> the file's value, expanded
  std::set<std::string> referenced;       // variables the file references
  bool authUsersInvalid = false;          // an auth.users entry was reported

  void report(const Origin& origin, std::string message) {
    problems.push_back({origin.path, std::move(message), origin.location});
  }
  Origin originOf(const std::string& path) const {
    auto it = origins.find(path);
    return it != origins.end() ? it->second : Origin{path, ""};
  }
};

// Applies one value; returns why it is bad ("" when applied).
using Apply = std::string (*)(const std::string& value, Draft& draft, const Origin& origin);

// A single-valued setting, however it is given.
struct Setting {
  const char* path;     // its YAML path
  const char* flag;     // nullptr: not on the command line
  const char* env;      // nullptr: no environment variable
  const char* expects;  // for "expected ..., got a map"
  const char* help;     // for --help (settings with a flag)
  Apply apply;
};

template <class T>
std::string setNumber(const std::string& value, T& field, T min, T max) {
  if (auto v = parseNumber<T>(value, min, max)) {
    field = *v;
    return {};
  }
  return "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max) + ", got '" +
         value + "'";
}

std::string setBool(const std::string& value, bool& field) {
  // The YAML 1.2 core schema's spellings; yes/no/on/off are too easy to misread.
  if (value == "true" || value == "True" || value == "TRUE") {
    field = true;
  } else if (value == "false" || value == "False" || value == "FALSE") {
    field = false;
  } else {
    return "expected true or false, got '" + value + "'";
  }
  return {};
}

std::string stageUri(const char* upstream, const std::string& value, Draft& d, const Origin& origin) {
  // Judged in finish(): parse errors never quote the connection string.
  d.uris[upstream] = {value, origin};
  return {};
}

const Setting kSettings[] = {
    {"listen", "--listen", "MONGOGATE_LISTEN", "HOST:PORT",
     "HOST:PORT to accept clients on (default 127.0.0.1:27017; port 0 picks one)",
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       return parseHostPort(v, d.config.listen) ? "" : "expected HOST:PORT, got '" + v + "'";
     }},
    {"threads", "--threads", "MONGOGATE_THREADS", "a number", "worker threads (default: one per core)",
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.threads, 0, 1024);
     }},
    {"log_level", "--log-level", "MONGOGATE_LOG_LEVEL", "a log level",
     "trace, debug, info, warn, error or off (default info)",
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       static constexpr const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
       for (const char* level : kLevels) {
         if (v == level) {
           d.config.logLevel = v;
           return {};
         }
       }
       return "expected one of trace, debug, info, warn, error, off; got '" + v + "'";
     }},
    {"log.format", "--log-format", "MONGOGATE_LOG_FORMAT", "text or json",
     "text (default) or json: one JSON object per line with ts, level, msg",
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       if (v == "text") {
         d.config.log.format = LogConfig::Format::kText;
       } else if (v == "json") {
         d.config.log.format = LogConfig::Format::kJson;
       } else {
         return "expected text or json, got '" + v + "'";
       }
       return {};
     }},
    {"log.slow_operation_ms", "--slow-operation-ms", "MONGOGATE_SLOW_OPERATION_MS", "a number",
     "log requests that take longer than this many ms (default 100; 0 = off)",
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.log.slowOperationMs, 0, 3'600'000);
     }},
    {"max_message_size", "--max-message-size", "MONGOGATE_MAX_MESSAGE_SIZE", "a number",
     "largest accepted message in bytes (default 48000000)",
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::int32_t>(v, d.config.maxMessageSize, 1024, 48'000'000);
     }},
    {"drain_timeout_ms", "--drain-timeout-ms", "MONGOGATE_DRAIN_TIMEOUT_MS", "a number",
     "on SIGTERM, how long in-flight requests may finish (default 10000)",
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.drainTimeoutMs, 0, 3'600'000);
     }},
    {"port_file", "--port-file", nullptr, "a path", "write the bound port to this file once listening",
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       d.config.portFile = v;
       return {};
     }},
    {"upstreams.main.uri", "--upstream", "MONGODB_URI", "a connection string",
     "connection string of the main upstream (required)",
     [](const std::string& v, Draft& d, const Origin& o) { return stageUri("main", v, d, o); }},
    {"upstreams.masteradmin.uri", "--master-admin-uri", "MASTER_ADMIN_MONGO_URI", "a connection string",
     "connection string of the masteradmin upstream (default: the main upstream's)",
     [](const std::string& v, Draft& d, const Origin& o) { return stageUri("masteradmin", v, d, o); }},
    {"pool.max_size", "--pool-max-size", "MONGOGATE_POOL_MAX_SIZE", "a number",
     "upstream connections per upstream (default 100)",
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.pool.maxSize, 1, 100'000);
     }},
    {"pool.wait_queue_timeout_ms", "--wait-queue-timeout-ms", "MONGOGATE_WAIT_QUEUE_TIMEOUT_MS", "a number",
     "how long a request waits for an upstream connection (default 2000)",
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.pool.waitQueueTimeoutMs, 1, 3'600'000);
     }},
    {"pool.connect_timeout_ms", "--connect-timeout-ms", "MONGOGATE_CONNECT_TIMEOUT_MS", "a number",
     "upstream connect + handshake timeout (default 5000)",
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.pool.connectTimeoutMs, 1, 3'600'000);
     }},
    {"pool.idle_check_ms", nullptr, nullptr, "a number", nullptr,
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.pool.idleCheckMs, 0, 3'600'000);
     }},
    {"topology.heartbeat_frequency_ms", "--heartbeat-frequency-ms", "MONGOGATE_HEARTBEAT_FREQUENCY_MS", "a number",
     "how often each upstream server is checked with hello (default 10000)",
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.topology.heartbeatFrequencyMs, 50, 3'600'000);
     }},
    {"topology.server_selection_timeout_ms", "--server-selection-timeout-ms", "MONGOGATE_SERVER_SELECTION_TIMEOUT_MS",
     "a number", "how long a request waits for a suitable upstream server (default 5000)",
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.topology.serverSelectionTimeoutMs, 1, 3'600'000);
     }},
    {"topology.local_threshold_ms", nullptr, nullptr, "a number", nullptr,
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.topology.localThresholdMs, 0, 3'600'000);
     }},
    {"topology.cursor_idle_timeout_ms", nullptr, nullptr, "a number", nullptr,
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.topology.cursorIdleTimeoutMs, 1'000, 86'400'000);
     }},
    {"topology.request_deadline_grace_ms", "--request-deadline-grace-ms", "MONGOGATE_REQUEST_DEADLINE_GRACE_MS",
     "a number", "a command with maxTimeMS gets MaxTimeMSExpired when no reply came within maxTimeMS + this (default 1000)",
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.topology.requestDeadlineGraceMs, 0, 3'600'000);
     }},
    {"topology.request_timeout_ms", "--request-timeout-ms", "MONGOGATE_REQUEST_TIMEOUT_MS", "a number",
     "a command without maxTimeMS gets ExceededTimeLimit when no reply came within this (default 0 = no limit)",
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.topology.requestTimeoutMs, 0, 86'400'000);
     }},
    {"topology.breaker.failure_threshold", "--breaker-failure-threshold", "MONGOGATE_BREAKER_FAILURE_THRESHOLD",
     "a number", "consecutive connect failures that open a server's circuit breaker (default 5, 0 = off)",
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.topology.breakerFailureThreshold, 0, 1'000);
     }},
    {"topology.breaker.cool_down_ms", "--breaker-cool-down-ms", "MONGOGATE_BREAKER_COOL_DOWN_MS", "a number",
     "how long an open breaker fails fast before one probe connection (default 5000)",
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.topology.breakerCoolDownMs, 1, 3'600'000);
       }},
    {"pool.min_size", "--pool-min-size", "MONGOGATE_POOL_MIN_SIZE", "a number",
     "upstream connections kept open per upstream server (default 0)",
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.pool.minSize, 0, 100'000);
     }},
    {"pool.max_idle_time_ms", nullptr, nullptr, "a number", nullptr,
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.pool.maxIdleTimeMs, 0, 86'400'000);
     }},
    {"pool.max_lifetime_ms", nullptr, nullptr, "a number", nullptr,
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.pool.maxLifetimeMs, 0, 86'400'000);
     }},
    {"pool.max_connecting", nullptr, nullptr, "a number", nullptr,
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.pool.maxConnecting, 1, 1000);
     }},
    {"pool.reconnect_backoff_initial_ms", nullptr, nullptr, "a number", nullptr,
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.pool.backoffInitialMs, 0, 600'000);
     }},
    {"pool.reconnect_backoff_max_ms", nullptr, nullptr, "a number", nullptr,
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.pool.backoffMaxMs, 0, 600'000);
     }},
    {"routing.main_database", "--main-database", nullptr, "a database name",
     "the main database (default: the one named in the main upstream's URI, else test)",
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       d.config.routing.mainDatabase = v;
       return {};
     }},
    {"routing.registry_collection", nullptr, nullptr, "a collection name", nullptr,
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       d.config.routing.registryCollection = v;
       return {};
     }},
    {"routing.master_admin.upstream", nullptr, nullptr, "an upstream name", nullptr,
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       d.config.routing.masterAdminUpstream = v;
       return {};
     }},
    {"routing.master_admin.physical_database", nullptr, nullptr, "a database name", nullptr,
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       d.config.routing.masterAdminPhysicalDatabase = v;
       return {};
     }},
    {"routing.store_databases.prefix", "--database-prefix", "DATABASE_PREFIX", "a database name prefix",
     "store databases are PREFIX_1 ... PREFIX_N (default pos_db)",
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       d.config.routing.databasePrefix = v;
       return {};
     }},
    {"routing.store_databases.count", "--database-count", "DATABASE_COUNT", "a number",
     "how many store databases, N (default 5)",
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::int32_t>(v, d.config.routing.databaseCount, 1, 1000);
     }},
    {"routing.store_databases.stores_per_database", "--stores-per-database", "STORES_PER_DATABASE", "a number",
     "stores per store database for the fill policy (default 20)",
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::int32_t>(v, d.config.routing.storesPerDatabase, 1, 1'000'000);
     }},
    {"routing.store_database_prefix", nullptr, nullptr, "a database name prefix", nullptr,
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       d.config.routing.storeDatabasePrefix = v;
       return {};
     }},
    {"routing.allow_drop_main_database", nullptr, nullptr, "true or false", nullptr,
     [](const std::string& v, Draft& d, const Origin&) { return setBool(v, d.config.routing.allowDropMainDatabase); }},
    {"registry.source", nullptr, nullptr, "upstream or file", nullptr,
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       if (v == "upstream") {
         d.config.registry.source = RegistryConfig::Source::kUpstream;
       } else if (v == "file") {
         d.config.registry.source = RegistryConfig::Source::kFile;
       } else {
         return "expected upstream or file, got '" + v + "'";
       }
       return {};
     }},
    {"registry.file", nullptr, nullptr, "a path", nullptr,
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       d.config.registry.file = v;
       return {};
     }},
    {"registry.poll_interval_ms", nullptr, nullptr, "a number", nullptr,
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.registry.pollIntervalMs, 100, 3'600'000);
     }},
    {"registry.change_streams", nullptr, nullptr, "true or false", nullptr,
     [](const std::string& v, Draft& d, const Origin&) { return setBool(v, d.config.registry.changeStreams); }},
    {"registry.cache_file", nullptr, nullptr, "a path", nullptr,
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       d.config.registry.cacheFile = v;
       return {};
     }},
    {"registry.assignment", nullptr, nullptr, "an assignment policy", nullptr,
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       using router::AssignmentPolicy;
       for (auto policy : {AssignmentPolicy::kFill, AssignmentPolicy::kLeastLoaded, AssignmentPolicy::kRoundRobin}) {
         if (v == toString(policy)) {
           d.config.registry.assignment = policy;
           return {};
         }
       }
       return "expected fill, least_loaded or round_robin, got '" + v + "'";
     }},
    {"compression", "--compression", "MONGOGATE_COMPRESSION", "a list of compressors",
     "compressors offered to clients: snappy,zstd,zlib (the default), any subset, or none",
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       std::vector<std::string> names;
       if (v != "none") {
         std::size_t start = 0;
         while (start <= v.size()) {
           std::size_t end = v.find(',', start);
           if (end == std::string::npos) end = v.size();
           std::string name = v.substr(start, end - start);
           name.erase(0, name.find_first_not_of(' '));
           name.erase(name.find_last_not_of(' ') + 1);
           if (name != "snappy" && name != "zlib" && name != "zstd") {
             return "expected snappy, zlib or zstd (or none), got '" + name + "'";
           }
           if (std::find(names.begin(), names.end(), name) != names.end()) return "'" + name + "' is listed twice";
           names.push_back(std::move(name));
           start = end + 1;
         }
       }
       d.config.compression = std::move(names);
       return {};
     }},
    {"tls.enabled", "--tls", "MONGOGATE_TLS", "true or false",
     "TLS towards clients: true or false (default false)",
     [](const std::string& v, Draft& d, const Origin&) { return setBool(v, d.config.listenTls.enabled); }},
    {"tls.certificate_file", "--tls-certificate-file", "MONGOGATE_TLS_CERTIFICATE_FILE", "a path",
     "PEM certificate chain mongogate presents to clients",
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       d.config.listenTls.certificateFile = v;
       return {};
     }},
    {"tls.key_file", "--tls-key-file", "MONGOGATE_TLS_KEY_FILE", "a path",
     "PEM private key of that certificate (default: in the certificate file)",
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       d.config.listenTls.keyFile = v;
       return {};
     }},
    {"tls.ca_file", "--tls-ca-file", "MONGOGATE_TLS_CA_FILE", "a path",
     "PEM CA certificates that verify client certificates",
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       d.config.listenTls.caFile = v;
       return {};
     }},
    {"tls.require_client_certificate", "--tls-require-client-certificate",
     "MONGOGATE_TLS_REQUIRE_CLIENT_CERTIFICATE", "true or false",
     "refuse clients without a certificate signed by tls.ca_file (default false)",
     [](const std::string& v, Draft& d, const Origin&) {
       return setBool(v, d.config.listenTls.requireClientCertificate);
     }},
    {"tls.handshake_timeout_ms", nullptr, nullptr, "a number", nullptr,
     [](const std::string& v, Draft& d, const Origin&) {
       return setNumber<std::uint32_t>(v, d.config.listenTls.handshakeTimeoutMs, 100, 600'000);
     }},
    {"admin.listen", "--admin-listen", "MONGOGATE_ADMIN_LISTEN", "HOST:PORT or off",
     "HOST:PORT of the admin HTTP port (default 127.0.0.1:9090; port 0 picks one; off disables it)",
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       if (v == "off") {
         d.config.admin.enabled = false;
         return {};
       }
       if (!parseHostPort(v, d.config.admin.listen)) return "expected HOST:PORT or off, got '" + v + "'";
       d.config.admin.enabled = true;
       return {};
     }},
    {"admin.token", "--admin-token", "MONGOGATE_ADMIN_TOKEN", "a token",
     "bearer token that enables the admin port's mutating endpoints (default: none, they are off)",
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       // Never echo the value: it is a secret.
       if (v.find_first_of(" \t\r\n") != std::string::npos) return "a token cannot contain whitespace";
       d.config.admin.token = v;
       return {};
     }},
    {"auth.mode", "--auth-mode", "MONGOGATE_AUTH_MODE", "none, users or relay",
     "client authentication: none (default), users (SCRAM against auth.users) or relay (verified by main)",
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       using Mode = AuthConfig::Mode;
       for (auto mode : {Mode::kNone, Mode::kUsers, Mode::kRelay}) {
         if (v == toString(mode)) {
           d.config.auth.mode = mode;
           return {};
         }
       }
       return "expected none, users or relay, got '" + v + "'";
     }},
    {"admin.port_file", "--admin-port-file", nullptr, "a path",
     "write the admin port's bound port to this file once listening",
     [](const std::string& v, Draft& d, const Origin&) -> std::string {
       d.config.admin.portFile = v;
       return {};
     }},
};

// Maps of settings; their keys are looked up in kSettings or below.
constexpr const char* kSections[] = {"log",      "pool", "topology", "topology.breaker", "routing", "routing.master_admin",
                                     "routing.store_databases", "registry", "admin", "auth", "tls"};
constexpr const char* kUpstreamsPath = "upstreams";
constexpr const char* kAuthUsersPath = "auth.users";
constexpr const char* kPlacementPath = "routing.store_databases.placement";
constexpr const char* kMasterAdminDatabasesPath = "routing.master_admin.databases";

const Setting* settingByPath(std::string_view path) {
  for (const Setting& s : kSettings) {
    if (path == s.path) return &s;
  }
  return nullptr;
}

const Setting* settingByFlag(std::string_view flag) {
  for (const Setting& s : kSettings) {
    if (s.flag && flag == s.flag) return &s;
  }
  return nullptr;
}

void applySetting(const Setting& setting, const std::string& value, const Origin& origin, Draft& d) {
  std::string why = setting.apply(value, d, origin);
  if (why.empty()) {
    d.origins[setting.path] = origin;
  } else {
    d.report(origin, std::move(why));
  }
}

// MongoDB's rules for database names (those of Unix-like systems).
std::string databaseNameProblem(std::string_view name) {
  if (name.empty()) return "a database name cannot be empty";
  if (name.size() > 63) return "a database name has at most 63 bytes";
  for (char ch : std::string_view("/\\. \"$")) {
    if (name.find(ch) != std::string_view::npos) return std::string("a database name cannot contain '") + ch + "'";
  }
  if (name.find('\0') != std::string_view::npos) return "a database name cannot contain a NUL byte";
  return {};
}

std::string collectionNameProblem(std::string_view name) {
  if (name.empty()) return "a collection name cannot be empty";
  if (name.find('$') != std::string_view::npos) return "a collection name cannot contain '$'";
  if (name.find('\0') != std::string_view::npos) return "a collection name cannot contain a NUL byte";
  if (name.rfind("system.", 0) == 0) return "collection names starting with 'system.' are reserved";
  return {};
}

bool validUpstreamName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
  });
}

const char* describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "a single value";
    default: return "nothing";
  }
}

// Walks the YAML document: every key is known, every value expanded and applied.
class FileLayer {
 public:
  FileLayer(Draft& draft, const Environment& environment, std::string file)
      : d_(draft), environment_(environment), file_(std::move(file)) {}

  void load(const std::string& text) {
    std::vector<YAML::Node> documents;
    try {
      documents = YAML::LoadAll(text);
    } catch (const YAML::Exception& e) {
      d_.report({file_, e.mark.is_null() ? "" : locate(e.mark)}, "not valid YAML: " + e.msg);
      return;
    }
    if (documents.size() > 1) {
      d_.report({file_, ""}, "holds " + std::to_string(documents.size()) + " YAML documents; expected one");
      return;
    }
    if (documents.empty() || documents[0].IsNull()) return;  // an empty file: nothing set
    if (!documents[0].IsMap()) {
      d_.report({file_, locate(documents[0].Mark())},
                std::string("expected a map of settings at the top level, got ") + describe(documents[0]));
      return;
    }
    try {
      section(documents[0], "");
    } catch (const YAML::Exception& e) {
      d_.report({file_, e.mark.is_null() ? "" : locate(e.mark)}, e.msg);
    }
  }

 private:
  std::string locate(const YAML::Mark& mark) const {
    if (mark.is_null()) return file_;
    return file_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  Origin originAt(const std::string& path, const YAML::Node& node) const { return {path, locate(node.Mark())}; }

  // Calls visit(key, path, keyNode, value) for each entry of a map, after rejecting
  // keys that are not plain names and keys given twice (yaml-cpp keeps both).
  template <class Visit>
  void entries(const YAML::Node& map, const std::string& prefix, Visit visit) {
    std::map<std::string, int> seen;  // key -> line
    for (auto it = map.begin(); it != map.end(); ++it) {
      // Copies: yaml-cpp's operator-> returns a temporary proxy (nodes are handles).
      const YAML::Node keyNode = it->first;
      const YAML::Node value = it->second;
      if (!keyNode.IsScalar()) {
        d_.report(originAt(prefix.empty() ? file_ : prefix, keyNode),
                  std::string("keys must be plain names, got ") + describe(keyNode));
        continue;
      }
      const std::string key = keyNode.Scalar();
      const std::string path = prefix.empty() ? key : prefix + "." + key;
      auto [previous, fresh] = seen.emplace(key, keyNode.Mark().line + 1);
      if (!fresh) {
        d_.report(originAt(path, keyNode),
                  "duplicate key (first given on line " + std::to_string(previous->second) + ")");
        continue;
      }
      visit(key, path, keyNode, value);
    }
  }

  // The scalar at `path`, expanded; nullopt (reported) when it is not one or fails.
  std::optional<std::string> scalar(const YAML::Node& node, const std::string& path, const char* expects) {
    if (!node.IsScalar()) {
      d_.report(originAt(path, node), std::string("expected ") + expects + ", got " + describe(node));
      return std::nullopt;
    }
    Expansion expanded = expandVariables(node.Scalar(), environment_);
    d_.referenced.insert(expanded.variables.begin(), expanded.variables.end());
    if (!expanded.error.empty()) {
      d_.report(originAt(path, node), expanded.error);
      return std::nullopt;
    }
    return std::move(expanded.value);
  }

  void section(const YAML::Node& map, const std::string& prefix) {
    entries(map, prefix, [&](const std::string& key, const std::string& path, const YAML::Node& keyNode,
                             const YAML::Node& value) {
      // A dotted key ("routing.main_database" at the top) would reach a nested setting
      // from the wrong level; the "upstreams" map is walked by upstreams().
      const bool plain = key.find('.') == std::string::npos && path.rfind("upstreams.", 0) != 0;
      const bool isSection =
          plain && std::find(std::begin(kSections), std::end(kSections), path) != std::end(kSections);
      const Setting* setting = plain ? settingByPath(path) : nullptr;
      const bool known = isSection || setting ||
                         (plain && (path == kUpstreamsPath || path == kPlacementPath ||
                                    path == kMasterAdminDatabasesPath || path == kAuthUsersPath));
      if (!known) {
        d_.report(originAt(path, keyNode), "unknown key");
        return;
      }
      if (value.IsNull()) return;  // "key:" or "key: ~" counts as not given
      if (isSection) {
        if (!value.IsMap()) {
          d_.report(originAt(path, value), std::string("expected a map of settings, got ") + describe(value));
          return;
        }
        section(value, path);
      } else if (path == kUpstreamsPath) {
        upstreams(value);
      } else if (path == kPlacementPath) {
        placement(value);
      } else if (path == kMasterAdminDatabasesPath) {
        masterAdminDatabases(value);
      } else if (path == "compression" && value.IsSequence()) {
        // A YAML list [snappy, zstd] means the same as "snappy,zstd"; [] means none.
        d_.fromFile.insert(path);
        std::string joined;
        for (std::size_t i = 0; i < value.size(); ++i) {
          auto name = scalar(value[i], path + "[" + std::to_string(i) + "]", "a compressor name");
          if (!name) return;
          joined += (i ? "," : "") + *name;
        }
        if (joined.empty()) joined = "none";
        d_.fileValues[path] = joined;
        applySetting(*setting, joined, originAt(path, value), d_);
      } else if (path == kAuthUsersPath) {
        authUsers(value);
      } else {
        d_.fromFile.insert(path);
        if (auto text = scalar(value, path, setting->expects)) {
          d_.fileValues[path] = *text;
          applySetting(*setting, *text, originAt(path, value), d_);
        }
      }
    });
  }

  void upstreams(const YAML::Node& map) {
    if (!map.IsMap()) {
      d_.report(originAt(kUpstreamsPath, map),
                std::string("expected a map of upstream names to { uri: ... }, got ") + describe(map));
      return;
    }
    entries(map, kUpstreamsPath, [&](const std::string& name, const std::string& path, const YAML::Node& keyNode,
                                     const YAML::Node& value) {
      if (!validUpstreamName(name)) {
        d_.report(originAt(path, keyNode), "an upstream name has 1 to 64 letters, digits, '_' or '-'");
        return;
      }
      if (name != "main" && name != "masteradmin") d_.fileUpstreams.push_back({name, originAt(path, keyNode)});
      if (value.IsNull()) return;
      if (!value.IsMap()) {
        d_.report(originAt(path, value), std::string("expected a map such as { uri: ... }, got ") + describe(value));
        return;
      }
      entries(value, path, [&](const std::string& key, const std::string& keyPath, const YAML::Node& innerKey,
                               const YAML::Node& inner) {
        if (key != "uri") {
          d_.report(originAt(keyPath, innerKey), "unknown key");
          return;
        }
        if (inner.IsNull()) return;
        d_.fromFile.insert(keyPath);
        if (auto uri = scalar(inner, keyPath, "a connection string")) {
          d_.fileValues[keyPath] = *uri;
          d_.origins[keyPath] = originAt(keyPath, inner);
          d_.uris[name] = {std::move(*uri), originAt(keyPath, inner)};
        }
      });
    });
  }

  void placement(const YAML::Node& map) {
    if (!map.IsMap()) {
      d_.report(originAt(kPlacementPath, map),
                std::string("expected a map of store database numbers to upstream names, got ") + describe(map));
      return;
    }
    entries(map, kPlacementPath, [&](const std::string& key, const std::string& path, const YAML::Node& keyNode,
                                     const YAML::Node& value) {
      auto number = parseNumber<std::int64_t>(key, std::numeric_limits<std::int64_t>::min(),
                                              std::numeric_limits<std::int64_t>::max());
      if (!number) {
        d_.report(originAt(path, keyNode), "expected a store database number (N of " +
                                               d_.config.routing.databasePrefix + "_N) as the key");
        return;
      }
      if (value.IsNull()) return;
      if (auto upstream = scalar(value, path, "an upstream name")) {
        d_.placement.push_back({*number, std::move(*upstream), originAt(path, value)});
      }
    });
  }

  void masterAdminDatabases(const YAML::Node& list) {
    const std::string path = kMasterAdminDatabasesPath;
    if (!list.IsSequence()) {
      d_.report(originAt(path, list), std::string("expected a list of database names, got ") + describe(list));
      return;
    }
    std::vector<std::string> names;
    bool ok = true;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string itemPath = path + "[" + std::to_string(i) + "]";
      auto name = scalar(list[i], itemPath, "a database name");
      if (!name) {
        ok = false;
        continue;
      }
      if (std::string why = databaseNameProblem(*name); !why.empty()) {
        d_.report(originAt(itemPath, list[i]), "'" + *name + "': " + why);
        ok = false;
      } else if (std::find(names.begin(), names.end(), *name) != names.end()) {
        d_.report(originAt(itemPath, list[i]), "'" + *name + "' is listed twice");
        ok = false;
      }
      names.push_back(std::move(*name));
    }
    d_.fromFile.insert(path);
    if (ok) {
      d_.config.routing.masterAdminDatabases = std::move(names);
      d_.origins[path] = originAt(path, list);
    }
  }

  // auth.users: [{user, db, stores, main_database, scram_sha_1: {...}, scram_sha_256: {...}}]
  void authUsers(const YAML::Node& list) {
    const std::string path = kAuthUsersPath;
    d_.fromFile.insert(path);
    d_.origins[path] = originAt(path, list);
    if (!list.IsSequence()) {
      d_.report(originAt(path, list), std::string("expected a list of users, got ") + describe(list));
      return;
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string itemPath = path + "[" + std::to_string(i) + "]";
      const YAML::Node item = list[i];
      if (!item.IsMap()) {
        d_.report(originAt(itemPath, item), std::string("expected a map such as { user: ..., scram_sha_256: ... }, got ") +
                                                describe(item));
        continue;
      }
      auth::UserRecord user;
      bool ok = true;
      auto problem = [&](const std::string& where, const YAML::Node& node, std::string message) {
        d_.report(originAt(where, node), std::move(message));
        ok = false;
      };
      bool sawUser = false;
      entries(item, itemPath, [&](const std::string& key, const std::string& keyPath, const YAML::Node& keyNode,
                                  const YAML::Node& value) {
        if (key == "user" || key == "db" || key == "main_database") {
          auto text = scalar(value, keyPath, key == "main_database" ? "none, read or readWrite" : "a name");
          if (!text) {
            ok = false;
            return;
          }
          if (key == "user") {
            sawUser = true;
            if (text->empty()) return problem(keyPath, value, "a user name cannot be empty");
            user.user = *text;
          } else if (key == "db") {
            if (std::string why = databaseNameProblem(*text); !why.empty()) return problem(keyPath, value, why);
            user.database = *text;
          } else if (auto access = auth::parseAccess(*text)) {
            user.scope.mainDatabase = *access;
          } else {
            problem(keyPath, value, "expected none, read or readWrite, got '" + *text + "'");
          }
        } else if (key == "stores") {
          storeScope(value, keyPath, user.scope, ok);
        } else if (key == "scram_sha_1" || key == "scram_sha_256") {
          const auto mechanism = key == "scram_sha_1" ? auth::Mechanism::kScramSha1 : auth::Mechanism::kScramSha256;
          auto keys = storedKeys(value, keyPath, mechanism);
          if (!keys) {
            ok = false;
          } else if (mechanism == auth::Mechanism::kScramSha1) {
            user.scramSha1 = std::move(*keys);
          } else {
            user.scramSha256 = std::move(*keys);
          }
        } else {
          problem(keyPath, keyNode, "unknown key (expected user, db, stores, main_database, scram_sha_1, scram_sha_256)");
        }
      });
      if (!sawUser) problem(itemPath, item, "missing: every user needs a `user` name");
      for (const auto& other : d_.config.auth.users) {
        if (ok && other.user == user.user && other.database == user.database) {
          problem(itemPath, item, "user '" + user.user + "' of database '" + user.database + "' is listed twice");
        }
      }
      if (ok) d_.config.auth.users.push_back(std::move(user));
      else d_.authUsersInvalid = true;
    }
  }

  // stores: ["*"] (every store, the default) or a list of store prefixes.
  void storeScope(const YAML::Node& list, const std::string& path, auth::UserScope& scope, bool& ok) {
    if (!list.IsSequence()) {
      d_.report(originAt(path, list), std::string("expected a list of store prefixes or [\"*\"], got ") + describe(list));
      ok = false;
      return;
    }
    scope.allStores = false;
    scope.storePrefixes.clear();
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string itemPath = path + "[" + std::to_string(i) + "]";
      auto prefix = scalar(list[i], itemPath, "a store prefix");
      if (!prefix) {
        ok = false;
      } else if (*prefix == "*") {
        scope.allStores = true;
      } else if (prefix->empty() || prefix->find_first_of("._$/\\ \"") != std::string::npos) {
        d_.report(originAt(itemPath, list[i]), "'" + *prefix + "' is not a store prefix");
        ok = false;
      } else {
        scope.storePrefixes.push_back(std::move(*prefix));
      }
    }
    if (scope.allStores && !scope.storePrefixes.empty()) {
      d_.report(originAt(path, list), "\"*\" already means every store: list it alone");
      ok = false;
    }
  }

  // {salt, iterations, stored_key, server_key}, as `mongogate hash-password` prints them.
  std::optional<auth::StoredCredentials> storedKeys(const YAML::Node& map, const std::string& path,
                                                    auth::Mechanism mechanism) {
    if (!map.IsMap()) {
      d_.report(originAt(path, map), std::string("expected a map { salt, iterations, stored_key, server_key } "
                                                 "(see mongogate hash-password), got ") + describe(map));
      return std::nullopt;
    }
    auth::StoredCredentials keys;
    const std::size_t keySize = mechanism == auth::Mechanism::kScramSha1 ? 20 : 32;
    bool ok = true;
    std::set<std::string> given;
    entries(map, path, [&](const std::string& key, const std::string& keyPath, const YAML::Node& keyNode,
                           const YAML::Node& value) {
      if (key != "salt" && key != "iterations" && key != "stored_key" && key != "server_key") {
        d_.report(originAt(keyPath, keyNode), "unknown key (expected salt, iterations, stored_key, server_key)");
        ok = false;
        return;
      }
      auto text = scalar(value, keyPath, key == "iterations" ? "a whole number" : "base64 text");
      if (!text) {
        ok = false;
        return;
      }
      given.insert(key);
      if (key == "iterations") {
        if (std::string why = setNumber<int>(*text, keys.iterations, auth::kMinIterations, 10'000'000); !why.empty()) {
          d_.report(originAt(keyPath, value), why);
          ok = false;
        }
        return;
      }
      // Never echo the value: stored keys are secrets too.
      auto bytes = auth::base64Decode(*text);
      if (!bytes || bytes->empty()) {
        d_.report(originAt(keyPath, value), "expected base64 text (as mongogate hash-password prints it)");
        ok = false;
      } else if (key != "salt" && bytes->size() != keySize) {
        d_.report(originAt(keyPath, value), "expected " + std::to_string(keySize) + " bytes for " +
                                                std::string(auth::mechanismName(mechanism)) + ", got " +
                                                std::to_string(bytes->size()));
        ok = false;
      } else {
        (key == "salt" ? keys.salt : key == "stored_key" ? keys.storedKey : keys.serverKey) = std::move(*bytes);
      }
    });
    for (const char* required : {"salt", "iterations", "stored_key", "server_key"}) {
      if (!given.count(required)) {
        d_.report(originAt(path + "." + required, map), "missing (see mongogate hash-password)");
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return keys;
  }

  Draft& d_;
  const Environment& environment_;
  std::string file_;
};

// Environment variables fill what the file leaves out.
void applyEnvironment(const Environment& environment, const std::string& configFile, Draft& d) {
  for (const Setting& setting : kSettings) {
    if (!setting.env) continue;
    auto it = environment.find(setting.env);
    if (it == environment.end() || it->second.empty()) continue;
    if (d.fromFile.count(setting.path)) {
      auto fileValue = d.fileValues.find(setting.path);
      const bool same = fileValue != d.fileValues.end() && fileValue->second == it->second;
      if (!same && !d.referenced.count(setting.env)) {
        d.warnings.push_back({setting.env,
                              std::string("ignored: ") + configFile + " sets " + setting.path + "; write \"${" +
                                  setting.env + "}\" there to use this variable",
                              ""});
      }
      continue;
    }
    applySetting(setting, it->second, {setting.env, ""}, d);
  }
}

std::string joined(const std::set<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// Judges what only makes sense once every layer is in, and fills the derived fields.
void finish(Draft& d, bool haveFile, bool showHelp) {
  ProxyConfig& c = d.config;

  // Upstreams.
  std::set<std::string> declared{"main", "masteradmin"};
  for (const auto& u : d.fileUpstreams) declared.insert(u.name);
  auto resolve = [&](const std::string& name, UpstreamConfig& out) {
    out.name = name;
    auto it = d.uris.find(name);
    if (it == d.uris.end()) return false;
    if (std::string why = parseUpstreamUri(it->second.uri, out); !why.empty()) d.report(it->second.origin, why);
    out.uri = it->second.uri;
    return true;
  };
  // A value that was given but failed (an unset variable, say) is reported already.
  auto reported = [&](std::initializer_list<std::string_view> paths) {
    return std::any_of(d.problems.begin(), d.problems.end(), [&](const ConfigProblem& p) {
      return std::find(paths.begin(), paths.end(), p.path) != paths.end();
    });
  };
  UpstreamConfig main;
  if (!resolve("main", main) && !showHelp && !reported({"upstreams.main.uri", "MONGODB_URI", "--upstream"})) {
    d.report({haveFile ? "upstreams.main.uri" : "MONGODB_URI", ""},
             haveFile ? "no upstream: give upstreams.main.uri in the file, set MONGODB_URI or pass --upstream"
                      : "no upstream: set MONGODB_URI or pass --upstream");
  }
  UpstreamConfig masterAdmin;
  if (!resolve("masteradmin", masterAdmin)) {
    masterAdmin = main;  // SPEC §2: MASTER_ADMIN_MONGO_URI falls back to MONGODB_URI
    masterAdmin.name = "masteradmin";
  }
  c.upstreams.clear();
  c.upstreams.push_back(main);
  c.upstreams.push_back(masterAdmin);
  for (const auto& declaredUpstream : d.fileUpstreams) {
    UpstreamConfig upstream;
    const std::string uriPath = declaredUpstream.origin.path + ".uri";
    if (!resolve(declaredUpstream.name, upstream) && !reported({declaredUpstream.origin.path, uriPath})) {
      d.report({uriPath, declaredUpstream.origin.location},
               "missing: every upstream needs a connection string");
    }
    c.upstreams.push_back(std::move(upstream));
  }
  for (std::size_t i = 1; i < c.upstreams.size(); ++i) {
    c.upstreams[i].sameAsMain = !main.uri.empty() && c.upstreams[i].uri == main.uri;
  }
  for (UpstreamConfig& upstream : c.upstreams) {
    applyPoolOptions(upstream, c.pool);
    if (upstream.pool.minSize > upstream.pool.maxSize) {
      const bool fromUri = upstream.uriPool.minSize || upstream.uriPool.maxSize;
      auto it = d.uris.find(upstream.name);
      d.report(fromUri && it != d.uris.end() ? it->second.origin : d.originOf("pool.min_size"),
               "the minimum pool size " + std::to_string(upstream.pool.minSize) + " is larger than the maximum " +
                   std::to_string(upstream.pool.maxSize));
    }
  }
  if (c.pool.backoffInitialMs > c.pool.backoffMaxMs) {
    d.report(d.originOf("pool.reconnect_backoff_initial_ms"), "is larger than pool.reconnect_backoff_max_ms");
  }
  c.main = c.upstreams.front();

  // Client authentication (SPEC §6).
  if (c.auth.mode == AuthConfig::Mode::kUsers && !d.authUsersInvalid) {
    if (c.auth.users.empty()) {
      d.report(d.originOf("auth.mode"), "users mode needs at least one user in auth.users (see mongogate hash-password)");
    }
    for (std::size_t i = 0; i < c.auth.users.size(); ++i) {
      const auth::UserRecord& user = c.auth.users[i];
      if (!user.scramSha1 && !user.scramSha256) {
        d.report({std::string(kAuthUsersPath) + "[" + std::to_string(i) + "]", d.originOf(kAuthUsersPath).location},
                 "user '" + user.user + "' has no stored keys: give scram_sha_256 and/or scram_sha_1 (see mongogate "
                 "hash-password)");
      }
    }
  }
  if (c.auth.mode == AuthConfig::Mode::kNone && !c.auth.users.empty()) {
    d.warnings.push_back({kAuthUsersPath, "ignored: auth.mode is none, so no client is authenticated", ""});
  }

  // Routing (SPEC §2, §3).
  router::RoutingConfig& r = c.routing;
  r.mainUpstream = "main";
  const bool mainDatabaseGiven = d.origins.count("routing.main_database") > 0;
  if (!mainDatabaseGiven) r.mainDatabase = main.database.empty() ? "test" : main.database;
  const Origin mainDatabaseOrigin =
      mainDatabaseGiven ? d.originOf("routing.main_database") : d.originOf("upstreams.main.uri");
  if (std::string why = databaseNameProblem(r.mainDatabase); !why.empty()) {
    d.report(mainDatabaseOrigin, "main database '" + r.mainDatabase + "': " + why);
  }
  if (std::string why = collectionNameProblem(r.registryCollection); !why.empty()) {
    d.report(d.originOf("routing.registry_collection"), "'" + r.registryCollection + "': " + why);
  }
  const std::string lastStoreDatabase = r.databasePrefix + "_" + std::to_string(r.databaseCount);
  if (std::string why = databaseNameProblem(lastStoreDatabase); !why.empty()) {
    d.report(d.originOf("routing.store_databases.prefix"),
             "'" + r.databasePrefix + "' makes store database names such as '" + lastStoreDatabase + "': " + why);
  }
  if (r.storeDatabasePrefix.empty()) {
    d.report(d.originOf("routing.store_database_prefix"),
             "cannot be empty: every database would be taken for a per-store database");
  } else if (std::string why = databaseNameProblem(r.storeDatabasePrefix); !why.empty()) {
    d.report(d.originOf("routing.store_database_prefix"), "'" + r.storeDatabasePrefix + "': " + why);
  } else if (r.mainDatabase.rfind(r.storeDatabasePrefix, 0) == 0) {
    d.report(mainDatabaseOrigin, "main database '" + r.mainDatabase + "' starts with store_database_prefix '" +
                                     r.storeDatabasePrefix + "', so it would be taken for a per-store database");
  }
  for (std::int32_t n = 1; n <= r.databaseCount; ++n) {
    if (r.mainDatabase == r.databasePrefix + "_" + std::to_string(n)) {
      d.report(mainDatabaseOrigin, "main database '" + r.mainDatabase + "' is also store database " +
                                       std::to_string(n));
    }
  }
  if (std::find(r.masterAdminDatabases.begin(), r.masterAdminDatabases.end(), r.mainDatabase) !=
      r.masterAdminDatabases.end()) {
    d.report(d.originOf(kMasterAdminDatabasesPath),
             "'" + r.mainDatabase + "' is the main database; it cannot also be a master-admin database");
  }
  if (!r.masterAdminPhysicalDatabase.empty()) {
    const Origin origin = d.originOf("routing.master_admin.physical_database");
    if (std::string why = databaseNameProblem(r.masterAdminPhysicalDatabase); !why.empty()) {
      d.report(origin, "'" + r.masterAdminPhysicalDatabase + "': " + why);
    } else if (r.masterAdminDatabases.size() > 1) {
      d.report(origin, "only one master-admin database can be renamed; with " +
                           std::to_string(r.masterAdminDatabases.size()) +
                           " listed, leave physical_database out and each keeps its name");
    }
  }
  if (!declared.count(r.masterAdminUpstream)) {
    d.report(d.originOf("routing.master_admin.upstream"),
             "unknown upstream '" + r.masterAdminUpstream + "' (known: " + joined(declared) + ")");
  }
  r.storeDatabaseUpstreams.assign(static_cast<std::size_t>(r.databaseCount), r.mainUpstream);
  std::set<std::string> used{"main", "masteradmin", r.masterAdminUpstream};
  for (const auto& placed : d.placement) {
    if (placed.database < 1 || placed.database > r.databaseCount) {
      d.report(placed.origin, "store database " + std::to_string(placed.database) + " is outside 1.." +
                                  std::to_string(r.databaseCount) + " (routing.store_databases.count)");
    } else if (!declared.count(placed.upstream)) {
      d.report(placed.origin, "unknown upstream '" + placed.upstream + "' (known: " + joined(declared) + ")");
    } else {
      r.storeDatabaseUpstreams[static_cast<std::size_t>(placed.database - 1)] = placed.upstream;
      used.insert(placed.upstream);
    }
  }
  for (const auto& declaredUpstream : d.fileUpstreams) {
    if (!used.count(declaredUpstream.name)) {
      d.warnings.push_back({declaredUpstream.origin.path,
                            "no route uses this upstream (not in placement, not the master-admin upstream)",
                            declaredUpstream.origin.location});
    }
  }

  // TLS towards clients: every named file must be readable now, not at the first client.
  ListenTlsConfig& tls = c.listenTls;
  const auto checkReadable = [&](const std::string& file, const char* path) {
    if (!file.empty() && !std::ifstream(file).good()) {
      d.report(d.originOf(path), "cannot read '" + file + "'");
    }
  };
  if (tls.enabled) {
    if (tls.certificateFile.empty()) {
      d.report(d.originOf("tls.certificate_file"), "required when tls.enabled is true");
    }
    checkReadable(tls.certificateFile, "tls.certificate_file");
    checkReadable(tls.keyFile, "tls.key_file");
    checkReadable(tls.caFile, "tls.ca_file");
    if (tls.requireClientCertificate && tls.caFile.empty()) {
      d.report(d.originOf("tls.require_client_certificate"),
               "needs tls.ca_file: client certificates are verified against it");
    }
  } else if (!tls.certificateFile.empty() || tls.requireClientCertificate) {
    d.warnings.push_back({"tls.enabled", "TLS settings are given but tls.enabled is false: clients connect in plain TCP",
                          d.originOf("tls.enabled").location});
  }

  // Registry.
  if (c.registry.source == RegistryConfig::Source::kFile && c.registry.file.empty()) {
    d.report(d.originOf("registry.file"), "required when registry.source is file");
  }
}

bool isNameStart(char ch) { return ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'); }
bool isNameChar(char ch) { return isNameStart(ch) || (ch >= '0' && ch <= '9'); }

// "${NAME}", "${NAME:-default}" (default expanded only when taken), "$${" → "${".
class Expander {
 public:
  Expander(std::string_view text, const Environment& environment, Expansion& out)
      : text_(text), environment_(environment), out_(out) {}

  void run() {
    std::vector<std::string> missing;
    if (!expand("", 0, out_.value, missing)) {
      out_.value.clear();
      return;
    }
    if (!missing.empty()) {
      std::string names;
      for (const auto& name : missing) names += (names.empty() ? "" : ", ") + name;
      out_.error = (missing.size() == 1 ? "environment variable " + names + " is not set"
                                        : "environment variables " + names + " are not set") +
                   " (write ${" + missing.front() + ":-default} to give a default)";
      out_.value.clear();
    }
  }

 private:
  // Expands up to the end of the text, or (openName non-empty) up to and including the
  // '}' that closes the default of "${openName:-". False on a syntax error (out_.error).
  bool expand(const std::string& openName, int depth, std::string& into, std::vector<std::string>& missing) {
    if (depth > 8) return fail("references are nested more than 8 deep");
    while (pos_ < text_.size()) {
      const char ch = text_[pos_];
      if (!openName.empty() && ch == '}') {
        ++pos_;
        return true;
      }
      if (text_.substr(pos_, 3) == "$${") {
        into += "${";
        pos_ += 3;
        continue;
      }
      if (text_.substr(pos_, 2) != "${") {
        into += ch;
        ++pos_;
        continue;
      }
      pos_ += 2;
      const std::size_t nameStart = pos_;
      if (pos_ < text_.size() && isNameStart(text_[pos_])) {
        while (pos_ < text_.size() && isNameChar(text_[pos_])) ++pos_;
      }
      const std::string name(text_.substr(nameStart, pos_ - nameStart));
      if (name.empty()) return fail("'${' must be followed by a variable name (write $${ for a literal ${)");
      if (std::find(out_.variables.begin(), out_.variables.end(), name) == out_.variables.end()) {
        out_.variables.push_back(name);
      }
      const auto found = environment_.find(name);
      if (pos_ < text_.size() && text_[pos_] == '}') {
        ++pos_;
        if (found != environment_.end()) {
          into += found->second;
        } else if (std::find(missing.begin(), missing.end(), name) == missing.end()) {
          missing.push_back(name);
        }
        continue;
      }
      if (text_.substr(pos_, 2) == ":-") {
        pos_ += 2;
        std::string fallback;
        std::vector<std::string> fallbackMissing;
        if (!expand(name, depth + 1, fallback, fallbackMissing)) return false;
        if (found != environment_.end() && !found->second.empty()) {
          into += found->second;
        } else {
          into += fallback;
          for (auto& m : fallbackMissing) {
            if (std::find(missing.begin(), missing.end(), m) == missing.end()) missing.push_back(std::move(m));
          }
        }
        continue;
      }
      if (pos_ >= text_.size()) return fail("'${" + name + "' has no closing '}'");
      return fail("'${" + name + "' is followed by '" + text_[pos_] + "': write ${" + name + "} or ${" + name +
                  ":-default}");
    }
    if (!openName.empty()) return fail("'${" + openName + ":-' has no closing '}'");
    return true;
  }

  bool fail(std::string message) {
    out_.error = std::move(message);
    return false;
  }

  std::string_view text_;
  const Environment& environment_;
  Expansion& out_;
  std::size_t pos_ = 0;
};

bool readFile(const std::string& path, std::string& text, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read '" + path + "': " + std::strerror(errno);
    return false;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    error = "cannot read '" + path + "'";
    return false;
  }
  text = buffer.str();
  return true;
}

}  // namespace

std::string HostPort::toString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

bool parseHostPort(const std::string& text, HostPort& out) {
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) return false;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  auto p = parseNumber<std::uint32_t>(port, 0, 65535);
  if (host.empty() || !p) return false;
  out.host = host;
  out.port = static_cast<std::uint16_t>(*p);
  return true;
}

std::string UpstreamConfig::redactedUri() const {
  // mongodb://user:pass@host → mongodb://user:****@host
  std::string out = uri;
  auto scheme = out.find("://");
  auto at = out.rfind('@', out.find('?'));
  if (scheme != std::string::npos && at != std::string::npos && at > scheme) {
    auto colon = out.find(':', scheme + 3);
    if (colon != std::string::npos && colon < at) out = out.substr(0, colon + 1) + "****" + out.substr(at);
  }
  // ...&tlsCertificateKeyFilePassword=secret → ...=**** (any option naming a password)
  for (std::size_t at = out.find('?'); at != std::string::npos && at < out.size(); at = out.find('&', at)) {
    ++at;
    const std::size_t eq = out.find('=', at);
    const std::size_t end = std::min(out.find('&', at), out.size());
    if (eq == std::string::npos || eq > end) continue;
    std::string key = out.substr(at, eq - at);
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    if (key.find("password") != std::string::npos) out.replace(eq + 1, end - eq - 1, "****");
  }
  return out;
}

const UpstreamConfig* ProxyConfig::findUpstream(std::string_view name) const {
  for (const auto& upstream : upstreams) {
    if (upstream.name == name) return &upstream;
  }
  return nullptr;
}

std::string formatProblem(const ConfigProblem& problem) {
  std::string text = problem.path + ": " + problem.message;
  if (!problem.location.empty()) text += " (at " + problem.location + ")";
  return text;
}

namespace {

const char* readModeName(mongoc_read_mode_t mode) {
  switch (mode) {
    case MONGOC_READ_PRIMARY: return "primary";
    case MONGOC_READ_PRIMARY_PREFERRED: return "primaryPreferred";
    case MONGOC_READ_SECONDARY: return "secondary";
    case MONGOC_READ_SECONDARY_PREFERRED: return "secondaryPreferred";
    case MONGOC_READ_NEAREST: return "nearest";
  }
  return "primary";
}

// An int32 URI option into `field` when the URI gives it; "" or why it is out of range.
std::string uriNumber(const mongoc_uri_t* uri, const char* key, const char* name, std::int64_t min, std::int64_t max,
                      std::optional<std::uint32_t>& field) {
  if (!mongoc_uri_has_option(uri, key)) return {};
  const std::int64_t value = mongoc_uri_get_option_as_int32(uri, key, -1);
  if (value < min || value > max) {
    return std::string(name) + " must be a whole number from " + std::to_string(min) + " to " + std::to_string(max) +
           ", got " + std::to_string(value);
  }
  field = static_cast<std::uint32_t>(value);
  return {};
}

}  // namespace

std::string parseUpstreamUri(const std::string& uri, UpstreamConfig& out) {
  static const bool initialized = [] {
    mongoc_init();
    return true;
  }();
  (void)initialized;
  if (uri.rfind("mongodb://", 0) != 0 && uri.rfind("mongodb+srv://", 0) != 0) {
    return "expected a connection string starting with mongodb:// or mongodb+srv://";
  }
  bson_error_t error;
  mongoc_uri_t* parsed = mongoc_uri_new_with_error(uri.c_str(), &error);
  if (!parsed) {
    // libmongoc's message may quote the URI; keep only a credential-free summary.
    std::string message = error.message;
    if (message.find('@') != std::string::npos) message = "the connection string is malformed";
    return "invalid connection string: " + message;
  }
  std::unique_ptr<mongoc_uri_t, void (*)(mongoc_uri_t*)> owner(parsed, mongoc_uri_destroy);
  out.uri = uri;
  out.hosts.clear();
  for (const mongoc_host_list_t* h = mongoc_uri_get_hosts(parsed); h; h = h->next) {
    out.hosts.push_back({h->host, h->port});
  }
  const char* db = mongoc_uri_get_database(parsed);
  out.database = db ? db : "";
  const char* app = mongoc_uri_get_appname(parsed);
  out.appName = app ? app : "";
  const char* srv = mongoc_uri_get_srv_hostname(parsed);
  out.srvHost = srv ? srv : "";

  // TLS: any tls option turns it on; mongodb+srv:// defaults to on (the SRV spec).
  UpstreamTlsConfig& tls = out.tls;
  tls.enabled = mongoc_uri_has_option(parsed, MONGOC_URI_TLS) || mongoc_uri_has_option(parsed, MONGOC_URI_SSL)
                    ? mongoc_uri_get_tls(parsed)
                    : (mongoc_uri_get_tls(parsed) || srv != nullptr);
  auto utf8 = [&](const char* key) {
    const char* value = mongoc_uri_get_option_as_utf8(parsed, key, nullptr);
    return std::string(value ? value : "");
  };
  tls.caFile = utf8(MONGOC_URI_TLSCAFILE);
  tls.certificateKeyFile = utf8(MONGOC_URI_TLSCERTIFICATEKEYFILE);
  tls.certificateKeyPassword = utf8(MONGOC_URI_TLSCERTIFICATEKEYFILEPASSWORD);
  const bool insecure = mongoc_uri_get_option_as_bool(parsed, MONGOC_URI_TLSINSECURE, false);
  tls.allowInvalidCertificates =
      insecure || mongoc_uri_get_option_as_bool(parsed, MONGOC_URI_TLSALLOWINVALIDCERTIFICATES, false);
  tls.allowInvalidHostnames =
      insecure || mongoc_uri_get_option_as_bool(parsed, MONGOC_URI_TLSALLOWINVALIDHOSTNAMES, false);
  if (!tls.enabled && (!tls.caFile.empty() || !tls.certificateKeyFile.empty())) {
    return "tlsCAFile / tlsCertificateKeyFile are given but tls is false";
  }

  // Credentials (the password is never copied into a message).
  const char* user = mongoc_uri_get_username(parsed);
  const char* password = mongoc_uri_get_password(parsed);
  out.auth = {};
  out.auth.user = user ? user : "";
  out.auth.password = password ? password : "";
  const char* mechanism = mongoc_uri_get_auth_mechanism(parsed);
  out.auth.mechanism = mechanism ? mechanism : "";
  if (!out.auth.mechanism.empty() && out.auth.mechanism != "SCRAM-SHA-256" && out.auth.mechanism != "SCRAM-SHA-1") {
    return "authMechanism " + out.auth.mechanism + " is not supported (SCRAM-SHA-256 or SCRAM-SHA-1)";
  }
  if (!out.auth.mechanism.empty() && out.auth.user.empty()) {
    return "authMechanism " + out.auth.mechanism + " needs a user name in the connection string";
  }
  if (!out.auth.user.empty() && !password) return "the connection string names a user but no password";
  // authSource, else the URI's database, else admin (libmongoc applies the drivers' rule).
  const char* source = mongoc_uri_get_auth_source(parsed);
  out.auth.source = source ? source : "admin";

  const char* replicaSet = mongoc_uri_get_replica_set(parsed);
  out.replicaSet = replicaSet ? replicaSet : "";
  out.readPreference = readModeName(mongoc_read_prefs_get_mode(mongoc_uri_get_read_prefs_t(parsed)));
  out.loadBalanced = mongoc_uri_get_option_as_bool(parsed, MONGOC_URI_LOADBALANCED, false);
  out.directConnection = mongoc_uri_get_option_as_bool(parsed, MONGOC_URI_DIRECTCONNECTION, false);
  out.readPreferenceTags.clear();
  if (const mongoc_read_prefs_t* prefs = mongoc_uri_get_read_prefs_t(parsed)) {
    bson_iter_t sets;
    const bson_t* tags = mongoc_read_prefs_get_tags(prefs);
    if (tags && bson_iter_init(&sets, tags)) {
      while (bson_iter_next(&sets)) {
        bson_iter_t tag;
        if (!BSON_ITER_HOLDS_DOCUMENT(&sets) || !bson_iter_recurse(&sets, &tag)) continue;
        auto& tagSet = out.readPreferenceTags.emplace_back();
        while (bson_iter_next(&tag)) {
          if (BSON_ITER_HOLDS_UTF8(&tag)) tagSet.emplace_back(bson_iter_key(&tag), bson_iter_utf8(&tag, nullptr));
        }
      }
    }
  }

  out.uriPool = {};
  for (const std::string& why : {
           uriNumber(parsed, MONGOC_URI_MAXPOOLSIZE, "maxPoolSize", 1, 100'000, out.uriPool.maxSize),
           uriNumber(parsed, MONGOC_URI_MINPOOLSIZE, "minPoolSize", 0, 100'000, out.uriPool.minSize),
           uriNumber(parsed, MONGOC_URI_MAXIDLETIMEMS, "maxIdleTimeMS", 0, 86'400'000, out.uriPool.maxIdleTimeMs),
           uriNumber(parsed, MONGOC_URI_WAITQUEUETIMEOUTMS, "waitQueueTimeoutMS", 1, 3'600'000,
                     out.uriPool.waitQueueTimeoutMs),
           uriNumber(parsed, MONGOC_URI_CONNECTTIMEOUTMS, "connectTimeoutMS", 1, 3'600'000,
                     out.uriPool.connectTimeoutMs),
       }) {
    if (!why.empty()) return why;
  }
  if (out.uriPool.maxSize && out.uriPool.minSize && *out.uriPool.minSize > *out.uriPool.maxSize) {
    return "minPoolSize " + std::to_string(*out.uriPool.minSize) + " is larger than maxPoolSize " +
           std::to_string(*out.uriPool.maxSize);
  }
  if (srv) {
    if (mongoc_uri_has_option(parsed, MONGOC_URI_SRVSERVICENAME) &&
        utf8(MONGOC_URI_SRVSERVICENAME) != "mongodb") {
      return "srvServiceName other than mongodb is not supported";
    }
    return {};  // hosts come from DNS at start (resolveSrvUpstreams)
  }
  if (out.hosts.empty()) return "the connection string names no host";
  return {};
}

void applyPoolOptions(UpstreamConfig& upstream, const PoolConfig& defaults) {
  PoolConfig& pool = upstream.pool;
  pool = defaults;
  const UriPoolOptions& uri = upstream.uriPool;
  if (uri.maxSize) pool.maxSize = *uri.maxSize;
  if (uri.minSize) pool.minSize = *uri.minSize;
  if (uri.maxIdleTimeMs) pool.maxIdleTimeMs = *uri.maxIdleTimeMs;
  if (uri.waitQueueTimeoutMs) pool.waitQueueTimeoutMs = *uri.waitQueueTimeoutMs;
  if (uri.connectTimeoutMs) pool.connectTimeoutMs = *uri.connectTimeoutMs;
}

Expansion expandVariables(std::string_view text, const std::map<std::string, std::string>& environment) {
  Expansion out;
  Expander(text, environment, out).run();
  return out;
}

ConfigResult loadConfig(int argc, const char* const* argv,
                        const std::map<std::string, std::string>& environment) {
  ConfigResult result;
  ProxyConfig& c = result.config;
  Draft d(c, result.problems, result.warnings);

  // The command line first: it names the file, and its values are applied last.
  struct Argument {
    const Setting* setting;
    std::string flag;
    std::string value;
  };
  std::vector<Argument> arguments;
  std::string configFlag;  // "--config" or "MONGOGATE_CONFIG": where the file's name came from
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      result.showHelp = true;
      continue;
    }
    std::string value;
    bool hasValue = false;
    if (auto eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      hasValue = true;
    }
    if (arg == "--check-config") {
      if (hasValue) {
        result.problems.push_back({arg, "takes no value"});
      } else {
        c.checkConfigOnly = true;
      }
      continue;
    }
    const Setting* setting = settingByFlag(arg);
    if (!setting && arg != "--config") {
      result.problems.push_back({arg, "unknown option (see --help)"});
      // Skip its value too, so that one typo is reported once.
      if (!hasValue && i + 1 < argc && argv[i + 1][0] != '-') ++i;
      continue;
    }
    if (!hasValue) {
      if (i + 1 >= argc) {
        result.problems.push_back({arg, "needs a value"});
        continue;
      }
      value = argv[++i];
    }
    if (!setting) {
      c.configFile = value;
      configFlag = arg;
      continue;
    }
    arguments.push_back({setting, arg, value});
  }

  if (configFlag.empty()) {
    if (auto it = environment.find("MONGOGATE_CONFIG"); it != environment.end() && !it->second.empty()) {
      c.configFile = it->second;
      configFlag = "MONGOGATE_CONFIG";
    }
  }
  if (!configFlag.empty()) {
    std::string text;
    std::string error;
    if (c.configFile.empty()) {
      result.problems.push_back({configFlag, "needs a file name"});
    } else if (!readFile(c.configFile, text, error)) {
      result.problems.push_back({configFlag, error});
    } else {
      FileLayer(d, environment, c.configFile).load(text);
    }
  }
  applyEnvironment(environment, c.configFile, d);
  for (const Argument& argument : arguments) applySetting(*argument.setting, argument.value, {argument.flag, ""}, d);
  finish(d, !configFlag.empty(), result.showHelp);
  return result;
}

std::map<std::string, std::string> processEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string entry = *e;
    auto eq = entry.find('=');
    if (eq != std::string::npos) env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

std::string usageText() {
  std::string text =
      "usage: mongogate [options]\n"
      "A MongoDB wire-protocol proxy. Options (environment variable in brackets):\n"
      "  --config FILE  [MONGOGATE_CONFIG]\n"
      "      YAML configuration file; every setting is described in config/mongogate.example.yaml\n"
      "  --check-config\n"
      "      validate the configuration, print \"configuration OK\" or every problem, and exit\n";
  for (const auto& spec : kSettings) {
    if (!spec.flag) continue;
    text += "  ";
    text += spec.flag;
    text += " VALUE";
    if (spec.env) {
      text += "  [";
      text += spec.env;
      text += "]";
    }
    text += "\n      ";
    text += spec.help;
    text += "\n";
  }
  text +=
      "Precedence: defaults < the file < environment variables (only for settings the file\n"
      "leaves out; the file reads the environment through ${VAR} and ${VAR:-default}) <\n"
      "command-line options.\n";
  return text;
}

std::vector<std::string> settingPaths() {
  std::vector<std::string> paths;
  for (const auto& spec : kSettings) paths.emplace_back(spec.path);
  paths.emplace_back(kPlacementPath);
  paths.emplace_back(kMasterAdminDatabasesPath);
  paths.emplace_back(kAuthUsersPath);
  return paths;
}

const char* toString(AuthConfig::Mode mode) {
  switch (mode) {
    case AuthConfig::Mode::kUsers: return "users";
    case AuthConfig::Mode::kRelay: return "relay";
    case AuthConfig::Mode::kNone: break;
  }
  return "none";
}

const char* toString(RegistryConfig::Source source) {
  return source == RegistryConfig::Source::kFile ? "file" : "upstream";
}

const char* toString(LogConfig::Format format) { return format == LogConfig::Format::kJson ? "json" : "text"; }

const char* toString(router::AssignmentPolicy policy) {
  switch (policy) {
    case router::AssignmentPolicy::kLeastLoaded: return "least_loaded";
    case router::AssignmentPolicy::kRoundRobin: return "round_robin";
    case router::AssignmentPolicy::kFill: break;
  }
  return "fill";
}

}  // namespace mongogate::config
