// admin/metrics.h — every metric mongogate exports, declared in one table, and the
// per-worker shards the data path writes them into (SPEC §8).
//
// Promise: the data path records with a handful of relaxed atomic stores into memory
// its own thread owns — no lock, no allocation, no string building. A scrape (on the
// admin thread) sums the shards and renders the Prometheus text exposition format
// 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Label values are bounded: commands outside a fixed list count as "other", logical
// databases are reported by class (main, masteradmin, store, other), upstreams by
// configured name.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mongogate::admin {

enum class MetricType { kCounter, kGauge, kHistogram };

// X(id, name, type, label names (comma-separated), help). Renders in this order.
#define MONGOGATE_METRICS(X)                                                                                  \
  X(kRequests, "mongogate_requests_total", kCounter, "command,database,upstream,result",                     \
    "Client requests by command, logical database class, upstream and result")                               \
  X(kRequestDuration, "mongogate_request_duration_seconds", kHistogram, "command",                            \
    "Time from a complete client request to the end of its reply")                                           \
  X(kPhysicalDatabaseRequests, "mongogate_physical_database_requests_total", kCounter, "database",            \
    "Routed client requests by the physical database they went to: the main database, a store database, other") \
  X(kClientConnections, "mongogate_client_connections", kGauge, "", "Open client connections")               \
  X(kOpenTransactions, "mongogate_open_transactions", kGauge, "",                                             \
    "Multi-document transactions open through this process (a SIGTERM drain waits for them)")                 \
  X(kUpstreamConnections, "mongogate_upstream_connections", kGauge, "upstream,state",                        \
    "Pooled upstream connections (all workers) by state: idle or busy")                                      \
  X(kPoolWait, "mongogate_pool_wait_seconds", kHistogram, "upstream",                                         \
    "Time a request waited to obtain an upstream connection (including connecting)")                         \
  X(kPoolTimeouts, "mongogate_pool_timeouts_total", kCounter, "upstream",                                     \
    "Requests that got no upstream connection within the wait-queue timeout")                                \
  X(kRefusedCommands, "mongogate_refused_commands_total", kCounter, "reason",                                 \
    "Requests mongogate refused instead of forwarding, by reason")                                           \
  X(kAuthFailures, "mongogate_auth_failures_total", kCounter, "", "Client authentication attempts refused")  \
  X(kBytesIn, "mongogate_bytes_in_total", kCounter, "", "Bytes of complete messages read from clients")      \
  X(kBytesOut, "mongogate_bytes_out_total", kCounter, "", "Bytes written to clients")                        \
  X(kStoresPerDatabase, "mongogate_stores_per_database", kGauge, "database",                                  \
    "Stores in the registry by physical database")                                                           \
  X(kRegistryStores, "mongogate_registry_stores", kGauge, "", "Stores in the current registry snapshot")        \
  X(kConfigReloads, "mongogate_config_reloads_total", kCounter, "result",                                     \
    "Configuration reloads (SIGHUP, POST /v1/reload) by result: applied or refused")                          \
  X(kConfigGeneration, "mongogate_config_generation", kGauge, "",                                             \
    "Generation of the configuration in use: 1 as started, one more per applied reload")                     \
  X(kConfigLastReloadSuccess, "mongogate_config_last_reload_success_timestamp_seconds", kGauge, "",           \
    "Unix time of the last applied reload (of the start while none was applied)")             \
  X(kBreakerState, "mongogate_upstream_breaker_state", kGauge, "upstream,server",                             \
    "Circuit breaker of each upstream server: 0 closed, 1 half-open (probing), 2 open (failing fast)")        \
  X(kServers, "mongogate_upstream_servers", kGauge, "upstream,type",                                          \
    "Servers of each upstream deployment by monitored type (Unknown, RSPrimary, RSSecondary, Mongos, ...)")

enum class MetricId {
#define MONGOGATE_METRIC_ID(id, name, type, labels, help) id,
  MONGOGATE_METRICS(MONGOGATE_METRIC_ID)
#undef MONGOGATE_METRIC_ID
};

struct MetricInfo {
  MetricId id;
  std::string_view name;
  MetricType type;
  std::string_view labels;  // comma-separated label names; "" = none
  std::string_view help;
};

inline constexpr MetricInfo kMetrics[] = {
#define MONGOGATE_METRIC_INFO(id, name, type, labels, help) {MetricId::id, name, MetricType::type, labels, help},
    MONGOGATE_METRICS(MONGOGATE_METRIC_INFO)
#undef MONGOGATE_METRIC_INFO
};

const char* toString(MetricType type);  // "counter", "gauge", "histogram"

// ---- Label values. ----

// The commands counted by name; anything else is "other" (the last entry).
inline constexpr std::string_view kCommandLabels[] = {
    "find",          "insert",          "update",       "delete",        "aggregate",   "getMore",
    "count",         "distinct",        "findAndModify", "bulkWrite",    "createIndexes", "dropIndexes",
    "listIndexes",   "listCollections", "listDatabases", "create",       "drop",        "dropDatabase",
    "killCursors",   "endSessions",     "hello",        "ping",          "saslStart",   "other"};
inline constexpr std::size_t kCommandCount = std::size(kCommandLabels);
// The label index of a command name (isMaster/ismaster count as hello).
std::size_t commandIndex(std::string_view commandName);

enum class DatabaseClass : std::uint8_t { kMain, kMasterAdmin, kStore, kOther };
inline constexpr std::string_view kDatabaseLabels[] = {"main", "masteradmin", "store", "other"};
inline constexpr std::size_t kDatabaseClassCount = std::size(kDatabaseLabels);

enum class RequestResult : std::uint8_t {
  kOk,                   // forwarded (or answered locally) and replied with ok: 1
  kCommandError,         // forwarded and replied, but the upstream's reply said ok: 0
  kRefused,              // mongogate answered with an error instead of forwarding
  kClientError,          // malformed or unsupported request
  kPoolTimeout,
  kUpstreamUnavailable,
  kUpstreamError,        // the upstream failed during the exchange
  kClientGone,           // the client's socket failed while replying
};
inline constexpr std::string_view kResultLabels[] = {"ok",          "command_error", "refused",         "client_error", "pool_timeout",
                                                     "upstream_unavailable", "upstream_error", "client_gone"};
inline constexpr std::size_t kResultCount = std::size(kResultLabels);

enum class RefusalReason : std::uint8_t { kRouting, kRegistryNotLoaded, kLegacyOpcode, kUnsupportedOpQuery, kBadFrame };
inline constexpr std::string_view kRefusalLabels[] = {"routing", "registry_not_loaded", "legacy_opcode",
                                                      "unsupported_op_query", "bad_frame"};
inline constexpr std::size_t kRefusalCount = std::size(kRefusalLabels);

// Physical database label indexes: 0 the main database, N store database N (up to
// routing.store_databases.count's maximum), then "other". Names come at scrape time.
inline constexpr std::size_t kMaxStoreDatabases = 1000;
inline constexpr std::size_t kPhysicalDatabaseOther = kMaxStoreDatabases + 1;
inline constexpr std::size_t kPhysicalDatabaseLabels = kMaxStoreDatabases + 2;

// Histogram bucket upper bounds in seconds (the +Inf bucket is implicit).
inline constexpr double kLatencyBuckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10};
inline constexpr std::size_t kBucketCount = std::size(kLatencyBuckets) + 1;

// ---- The data path's side. ----

// One histogram series: per-bucket counts (not cumulative), sum and count.
struct HistogramCells {
  std::array<std::atomic<std::uint64_t>, kBucketCount> buckets{};
  std::atomic<std::uint64_t> sumNs{0};
  std::atomic<std::uint64_t> count{0};
};

// Written by exactly one worker thread; read by the scraper. Each cell is updated with a
// relaxed load + store (no read-modify-write is needed with a single writer).
class alignas(64) MetricsShard {
 public:
  // upstreamLabels: request upstream label count (configured names + "none" + "fan_out");
  // pools: pool (deployment) count.
  MetricsShard(std::size_t upstreamLabels, std::size_t pools);

  // upstream: an index into Metrics::upstreamLabels() (Metrics::kNoUpstream... helpers).
  void recordRequest(std::size_t command, DatabaseClass database, std::size_t upstream, RequestResult result,
                     std::uint64_t durationNs);
  void addBytesIn(std::uint64_t n) { bump(bytesIn_, n); }
  void addBytesOut(std::uint64_t n) { bump(bytesOut_, n); }
  void recordPoolWait(std::size_t pool, std::uint64_t waitNs);
  void recordPoolTimeout(std::size_t pool);
  void recordRefusal(RefusalReason reason) { bump(refusals_[static_cast<std::size_t>(reason)], 1); }
  void recordAuthFailure() { bump(authFailures_, 1); }
  // database: a physical database label index (kPhysicalDatabaseOther when out of range).
  void recordPhysicalDatabase(std::size_t database) {
    bump(physicalDatabases_[database < kPhysicalDatabaseLabels ? database : kPhysicalDatabaseOther], 1);
  }

 private:
  friend class Metrics;
  static void bump(std::atomic<std::uint64_t>& cell, std::uint64_t n) {
    cell.store(cell.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  static void observe(HistogramCells& cells, std::uint64_t ns);

  std::size_t upstreamLabels_;
  std::size_t pools_;
  std::vector<std::atomic<std::uint64_t>> requests_;  // [command][database][upstream][result]
  std::array<HistogramCells, kCommandCount> duration_;
  std::vector<HistogramCells> poolWait_;               // [pool]
  std::vector<std::atomic<std::uint64_t>> poolTimeouts_;
  std::array<std::atomic<std::uint64_t>, kRefusalCount> refusals_{};
  std::atomic<std::uint64_t> authFailures_{0};
  std::array<std::atomic<std::uint64_t>, kPhysicalDatabaseLabels> physicalDatabases_{};
  std::atomic<std::uint64_t> bytesIn_{0};
  std::atomic<std::uint64_t> bytesOut_{0};
};

// ---- The scraper's side. ----

// Values that live elsewhere (pools, registry, connection counter), read at scrape time.
struct GaugeValues {
  std::int64_t clientConnections = 0;
  std::uint64_t openTransactions = 0;
  struct Pool {
    std::string upstream;
    std::uint64_t idle = 0;
    std::uint64_t busy = 0;
  };
  std::vector<Pool> pools;
  std::vector<std::pair<std::string, std::uint64_t>> storesPerDatabase;  // physical database → stores
  std::uint64_t registryStores = 0;
  // Physical database label values by index (see kPhysicalDatabaseLabels): [0] the main
  // database, [N] store database N; indexes past the end render as "other".
  std::vector<std::string> physicalDatabases;
  std::uint64_t reloadsApplied = 0;
  std::uint64_t reloadsRefused = 0;
  std::uint64_t configGeneration = 1;
  std::int64_t lastReloadSuccessUnix = 0;
  struct Server {
    std::string upstream;  // the deployment's (pool's) name
    std::string server;    // host:port, bounded by the deployment's members
    std::string type;
    std::uint64_t breakerState = 0;
  };
  std::vector<Server> servers;
};

class Metrics {
 public:
  // upstreams: the configured upstream names (request label); pools: the pool names
  // (one per distinct deployment).
  Metrics(std::size_t shards, std::vector<std::string> upstreams, std::vector<std::string> pools);

  MetricsShard& shardFor(std::size_t worker) { return *shards_[worker % shards_.size()]; }
  std::size_t shardCount() const { return shards_.size(); }

  // Request upstream label indexes: 0..N-1 the configured names, then these two.
  std::size_t noUpstream() const { return upstreams_.size(); }      // "none": answered locally
  std::size_t fanOutUpstream() const { return upstreams_.size() + 1; }  // "fan_out": several
  // The label index of a configured upstream name; noUpstream() when unknown.
  std::size_t upstreamIndex(std::string_view name) const;
  const std::vector<std::string>& upstreamLabels() const { return upstreamLabels_; }

  // Sums of every shard (for tests and the renderer).
  std::uint64_t requests(std::size_t command, DatabaseClass database, std::size_t upstream,
                         RequestResult result) const;
  std::uint64_t bytesIn() const;
  std::uint64_t bytesOut() const;

  // The Prometheus text exposition (format 0.0.4) of every metric in kMetrics.
  std::string render(const GaugeValues& gauges) const;

 private:
  std::vector<std::string> upstreams_;
  std::vector<std::string> upstreamLabels_;  // upstreams_ + "none" + "fan_out"
  std::vector<std::string> pools_;
  std::vector<std::unique_ptr<MetricsShard>> shards_;
};

// A label value with \, " and newline escaped as the text format requires.
std::string escapeLabelValue(std::string_view value);
// HELP text with \ and newline escaped.
std::string escapeHelp(std::string_view help);

inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace mongogate::admin
