// config/proxy_config.h — mongogate's start-up configuration as plain structs.
//
// Promise: parsed and validated once, before anything listens (and again on reload).
// Every problem is reported with the path of the setting it concerns — a YAML path such
// as "routing.store_databases.placement.7", an environment variable or a command-line
// flag — and nothing is silently defaulted when the user gave a bad value. (SPEC §9.)
//
// Sources, lowest to highest precedence (config/mongogate.example.yaml says the same):
//   1. built-in defaults;
//   2. the YAML file (--config FILE or MONGOGATE_CONFIG), whose "${VAR}" and
//      "${VAR:-default}" references are how the environment enters it;
//   3. environment variables (MONGODB_URI, MASTER_ADMIN_MONGO_URI, DATABASE_PREFIX,
//      DATABASE_COUNT, STORES_PER_DATABASE, MONGOGATE_*), but only for settings the file
//      does not set — a variable shadowed by the file yields a warning unless the file
//      references it;
//   4. command-line options.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/user_store.h"
#include "router/routing.h"

namespace mongogate::config {

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
  std::string toString() const;
};

// TLS towards an upstream, from its connection string (tls=true, tlsCAFile, ...).
// Certificate and hostname verification are on unless the URI turns them off.
struct UpstreamTlsConfig {
  bool enabled = false;
  std::string caFile;                  // "" = the system's trust store
  std::string certificateKeyFile;      // client certificate and key (PEM); "" = none
  std::string certificateKeyPassword;  // secret: never logged
  bool allowInvalidCertificates = false;
  bool allowInvalidHostnames = false;
};

// TLS towards clients: off by default (a sidecar listens on localhost).
struct ListenTlsConfig {
  bool enabled = false;
  std::string certificateFile;         // PEM certificate chain
  std::string keyFile;                 // PEM private key; "" = in certificateFile
  std::string caFile;                  // verifies client certificates
  bool requireClientCertificate = false;
  std::uint32_t handshakeTimeoutMs = 10'000;  // a client that stalls its TLS handshake is closed
};

// Pool settings of one upstream. The file / environment / flags give the defaults for
// every upstream; a connection string's own options (maxPoolSize, minPoolSize,
// maxIdleTimeMS, waitQueueTimeoutMS, connectTimeoutMS) override them for that upstream.
// Sizes are for the whole process; each worker thread holds an equal share.
struct PoolConfig {
  std::uint32_t maxSize = 100;             // upstream connections per upstream server, all threads
  std::uint32_t minSize = 0;               // kept open in the background, all threads
  std::uint32_t waitQueueTimeoutMs = 2000; // a request waits this long for a connection
  std::uint32_t connectTimeoutMs = 5000;   // TCP connect + TLS + hello + authentication
  std::uint32_t idleCheckMs = 1000;        // idle longer than this: probe before reuse
  std::uint32_t maxIdleTimeMs = 0;         // idle longer than this: closed (0 = never)
  std::uint32_t maxLifetimeMs = 0;         // older than this: closed when next idle (0 = never)
  std::uint32_t maxConnecting = 2;         // connections being opened at once, per thread
  std::uint32_t backoffInitialMs = 100;    // after a failed connect, no new attempt for ~this
  std::uint32_t backoffMaxMs = 5000;       // the backoff doubles per failure up to this
  std::uint32_t maintenanceIntervalMs = 500;  // idle pruning and min-size top-up (tests shorten it)
};

// Credentials mongogate authenticates with on every upstream connection (from the URI).
struct UpstreamAuthConfig {
  std::string user;       // "" = no authentication
  std::string password;   // secret: never logged, never in an error
  std::string source;     // authSource, else the URI's database, else "admin"
  std::string mechanism;  // "SCRAM-SHA-256", "SCRAM-SHA-1", or "" = negotiate as drivers do
};

// The pool options a connection string may carry; each one given overrides the file's.
struct UriPoolOptions {
  std::optional<std::uint32_t> maxSize, minSize, maxIdleTimeMs, waitQueueTimeoutMs, connectTimeoutMs;
};

// One upstream deployment as its connection string describes it.
struct UpstreamConfig {
  std::string name;               // "main", "masteradmin", or a name from the file
  std::string uri;                // as given (may hold credentials: never log it)
  std::vector<HostPort> hosts;    // seed list from the URI
  std::string database;           // the database named in the URI path ("" when none)
  std::string appName;            // appName= option, sent in mongogate's own hello
  // Not "main", but its connection string is exactly main's (masteradmin falling back to
  // MONGODB_URI, say): the same deployment, so main's pool can serve it.
  bool sameAsMain = false;
  UpstreamTlsConfig tls;
  UpstreamAuthConfig auth;
  std::string replicaSet;         // replicaSet= ("" = none)
  std::string readPreference;     // readPreference= mode: primary (default), primaryPreferred, ...
  // readPreferenceTags=: tag sets tried in order; each is name → value ({} matches any)
  std::vector<std::vector<std::pair<std::string, std::string>>> readPreferenceTags;
  bool directConnection = false;  // directConnection=true: use the one host, no discovery
  std::string srvHost;            // mongodb+srv://: the name whose SRV records give `hosts`
  bool loadBalanced = false;      // loadBalanced=true (also from a +srv TXT record)
  UriPoolOptions uriPool;         // pool options given in the URI
  PoolConfig pool;                // the file's pool settings, overridden by uriPool
  std::string redactedUri() const;  // the URI with any password replaced by "****"
};

// Replica sets and mongos lists (proxy/topology.h) and the circuit breaker per server.
struct TopologyConfig {
  std::uint32_t heartbeatFrequencyMs = 10'000;     // hello to every server this often
  std::uint32_t serverSelectionTimeoutMs = 5'000;  // wait this long for a suitable server
  std::uint32_t localThresholdMs = 15;             // latency window among eligible servers
  std::uint32_t cursorIdleTimeoutMs = 1'800'000;   // forget a cursor's server after this idle time
  std::uint32_t breakerFailureThreshold = 5;       // consecutive connect failures that open it (0 = off)
  std::uint32_t breakerCoolDownMs = 5'000;         // open this long, then one probe
  // A request's deadline (reloadable): a command with maxTimeMS gets no reply-wait beyond
  // maxTimeMS + this grace (the server's own MaxTimeMSExpired normally comes first) ...
  std::uint32_t requestDeadlineGraceMs = 1'000;
  std::uint32_t requestTimeoutMs = 0;              // ... one without it, this (0 = none)
};

// Where the store registry comes from and how it stays current (SPEC §2, §5).
struct RegistryConfig {
  enum class Source { kUpstream, kFile };
  Source source = Source::kUpstream;       // <main db>.<registry collection>, or a YAML file
  std::string file;                        // Source::kFile: the YAML store list
  std::uint32_t pollIntervalMs = 2000;     // re-read this often when no change stream is used
  std::string cacheFile;                   // "" = none: last good registry, read when main is down
  bool changeStreams = true;               // watch the registry collection where offered
  router::AssignmentPolicy assignment = router::AssignmentPolicy::kFill;  // new stores
};

// The admin HTTP port (SPEC §8). Loopback by default; Kubernetes sets 0.0.0.0 so the
// kubelet's probes and Prometheus reach it.
struct AdminConfig {
  bool enabled = true;                     // listen: off disables the admin port
  HostPort listen{"127.0.0.1", 9090};      // port 0: the OS picks one (see portFile)
  std::string token;                       // bearer token for mutating endpoints; "" = they are off
  std::string portFile;                    // write the admin port's bound port here
};

// Client authentication (SPEC §6). none: clients are not authenticated and SASL is
// refused; users: SCRAM against `users`' stored keys; relay: the client's SCRAM
// conversation is carried out against the main upstream. `users` also carries the store
// scopes (in relay mode, keys are optional: an entry only scopes that user).
struct AuthConfig {
  enum class Mode { kNone, kUsers, kRelay };
  Mode mode = Mode::kNone;
  std::vector<auth::UserRecord> users;
};

// Logging (spdlog on stderr). The format is fixed at start; the slow-operation threshold
// and log_level follow a reload.
struct LogConfig {
  enum class Format { kText, kJson };
  Format format = Format::kText;           // json: one object per line {ts, level, msg, ...}
  std::uint32_t slowOperationMs = 100;     // log requests slower than this; 0 = off
};

struct ProxyConfig {
  HostPort listen{"127.0.0.1", 27017};
  ListenTlsConfig listenTls;
  UpstreamConfig main;                     // the same as upstreams[0]
  std::uint32_t threads = 0;               // 0: one per core
  std::string portFile;                    // write the bound port here once listening
  PoolConfig pool;
  TopologyConfig topology;
  std::int32_t maxMessageSize = 48'000'000;
  std::uint32_t drainTimeoutMs = 10'000;   // SIGTERM: how long in-flight requests may finish
  std::string logLevel = "info";
  LogConfig log;
  // Used in hello until the upstream's own hello has been seen.
  std::int32_t fallbackMaxWireVersion = 21;
  // Compressors offered to clients (OP_COMPRESSED), any of "snappy", "zlib", "zstd";
  // empty: none. The client's order of preference decides among them.
  std::vector<std::string> compression{"snappy", "zstd", "zlib"};

  // Every upstream: "main" first, then "masteradmin" (always present; MONGODB_URI's
  // deployment unless it has its own connection string), then the file's others in the
  // order the file lists them.
  std::vector<UpstreamConfig> upstreams;
  // SPEC §3. mainDatabase defaults to the database in main's URI ("test" when it names
  // none, as drivers do); storeDatabaseUpstreams holds databaseCount names (placement).
  router::RoutingConfig routing;
  RegistryConfig registry;
  AdminConfig admin;
  AuthConfig auth;
  std::string configFile;                  // --config / MONGOGATE_CONFIG; "" = none
  bool checkConfigOnly = false;            // --check-config: validate, report, exit

  const UpstreamConfig* findUpstream(std::string_view name) const;  // nullptr if none
};

struct ConfigProblem {
  std::string path;      // the setting, e.g. "pool.max_size", "--listen" or "MONGODB_URI"
  std::string message;   // what is wrong with it (never the value of a connection string)
  std::string location = {};  // "FILE:LINE:COLUMN" when found in the YAML file, else ""
};

// "path: message" plus " (at FILE:LINE:COLUMN)" when the problem has a location.
std::string formatProblem(const ConfigProblem& problem);

struct ConfigResult {
  ProxyConfig config;
  std::vector<ConfigProblem> problems;  // empty when the configuration is valid
  std::vector<ConfigProblem> warnings;  // valid, but probably not what was meant
  bool showHelp = false;
};

// Parses a "host:port" or "[v6]:port" address. Returns false on a malformed one.
bool parseHostPort(const std::string& text, HostPort& out);

// Parses a mongodb:// or mongodb+srv:// URI with libmongoc's parser.
// Returns an empty string on success, else why it is invalid (never the URI itself).
std::string parseUpstreamUri(const std::string& uri, UpstreamConfig& out);

// upstream.pool = defaults, then every pool option the upstream's URI gives.
void applyPoolOptions(UpstreamConfig& upstream, const PoolConfig& defaults);

// "${VAR}" and "${VAR:-default}" expansion, as in a POSIX shell: ":-" takes the default
// when VAR is unset or empty, and the default may itself hold references. "$${" stands
// for a literal "${"; any other "$" is literal. Values are not expanded again.
struct Expansion {
  std::string value;
  std::string error;                   // "" on success; names variables, never values
  std::vector<std::string> variables;  // every variable the text references
};
Expansion expandVariables(std::string_view text, const std::map<std::string, std::string>& environment);

// Builds the configuration from the defaults, the YAML file (--config FILE or
// MONGOGATE_CONFIG), the environment and the command line (see the top of this file).
ConfigResult loadConfig(int argc, const char* const* argv,
                        const std::map<std::string, std::string>& environment);

// Every environment variable of this process.
std::map<std::string, std::string> processEnvironment();

std::string usageText();

// Every key path the YAML file can hold, e.g. "pool.max_size" (upstreams as
// "upstreams.main.uri" and "upstreams.masteradmin.uri"): for documentation and tests.
std::vector<std::string> settingPaths();

const char* toString(AuthConfig::Mode mode);             // "none", "users", "relay"
const char* toString(RegistryConfig::Source source);      // "upstream", "file"
const char* toString(LogConfig::Format format);           // "text", "json"
const char* toString(router::AssignmentPolicy policy);    // "fill", "least_loaded", "round_robin"

}  // namespace mongogate::config
