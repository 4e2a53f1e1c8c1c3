// admin/http_handlers.h — what the admin port answers (SPEC §8), without a socket.
//
// Promise: handle() is a pure function of the request and what AdminState reports; it
// never blocks on the data path and never prints a secret (passwords in connection
// strings, the admin token). admin/admin_server.h carries requests to it over HTTP/1.1.
//
//   GET  /healthz      200 "ok" while the process runs
//   GET  /readyz       200 {"ready":true,...}, or 503 naming every failed check:
//                      registry_loaded, main_reachable, not_draining
//   GET  /metrics      Prometheus text format 0.0.4 (admin/metrics.h)
//   GET  /v1/registry  stores with their logical → physical mapping, stores per database
//   GET  /v1/upstreams upstreams (redacted URI, hosts) with pool totals over all workers
//   GET  /v1/config    the effective configuration, secrets redacted
//   POST /v1/drain     readiness goes false for good (the proxy keeps serving until
//                      SIGTERM); needs "Authorization: Bearer <admin token>"
//   POST /v1/reload    reloads the configuration as SIGHUP does: 200 with the outcome,
//                      422 (and every problem) when the new configuration is refused
//   POST /v1/stores    {"prefix", optional "name", "storeId", "databaseId"}: creates a
//                      store through the assignment policy, persists it in the registry
//                      collection, routes it at once: 201 with the store; 400 bad body,
//                      409 prefix taken, 503 registry from a file or main unreachable
//
// Mutating endpoints answer 403 when no admin token is configured, 401 on a missing or
// wrong token. Unknown paths get 404, known paths with another method 405 and Allow.
// Every error body is JSON {"error": "..."}.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/proxy_config.h"

namespace mongogate::admin {

struct Request {
  std::string method;         // "GET", "POST", ...
  std::string target;         // path, optionally with "?query" (ignored)
  std::string authorization;  // the Authorization header's value, "" when absent
  std::string body;
};

struct Response {
  int status = 200;
  std::string contentType = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra ones, e.g. Allow
};

struct Readiness {
  bool registryLoaded = false;
  bool mainReachable = false;
  std::string mainDetail;  // why main is not reachable (no credentials, no URI)
  bool draining = false;
};

struct StoreRow {
  std::string storeId;
  std::string name;
  std::string prefix;
  std::int32_t databaseId = 0;
  std::string physicalDatabase;  // where its collections live
  std::string upstream;          // the upstream holding physicalDatabase
};

struct DatabaseRow {
  std::string database;  // physical
  std::string upstream;
  std::uint64_t stores = 0;
};

struct RegistryView {
  bool loaded = false;
  std::uint64_t version = 0;
  std::vector<StoreRow> stores;
  std::vector<DatabaseRow> databases;  // every store database, and main when it holds stores
};

struct PoolTotals {
  std::uint64_t total = 0;    // open + connecting
  std::uint64_t idle = 0;
  std::uint64_t waiting = 0;  // requests queued for a connection
};

struct ServerRow {
  std::string address;           // host:port
  std::string type;              // Unknown, Standalone, Mongos, RSPrimary, RSSecondary, ...
  std::string breaker;           // closed, open, half_open
  std::uint64_t consecutiveFailures = 0;
  double rttMs = -1;             // -1 = not measured (not monitored)
  std::string error;             // why Unknown
  PoolTotals totals;
};

struct UpstreamRow {
  std::string name;
  std::string uri;               // as configured: handle() redacts it
  std::vector<std::string> hosts;
  std::string pool;              // the pool it uses (upstreams with equal URIs share one)
  PoolTotals totals;             // of that pool, summed over the workers
  std::string topology = {};     // Single, ReplicaSetWithPrimary, Sharded, ...
  std::string setName = {};
  std::vector<ServerRow> servers = {};
};

// Configuration reloads so far (SIGHUP, POST /v1/reload).
struct ReloadStatus {
  std::uint64_t generation = 1;          // of the configuration in use
  std::uint64_t applied = 0;
  std::uint64_t refused = 0;
  std::int64_t lastAttemptUnix = 0;      // 0: no reload attempted
  std::int64_t lastSuccessUnix = 0;      // the start time until a reload is applied
  std::string lastResult = "none";       // none, applied, refused
  std::string lastTrigger;               // "SIGHUP", "POST /v1/reload"
  std::vector<std::string> problems;     // why the last attempt was refused
  std::vector<std::string> needsRestart; // settings the last applied reload could not change
};

// POST /v1/stores, as validated by handle().
struct NewStore {
  std::string prefix;
  std::string name;
  std::string storeId;                    // "" = a new ObjectId
  std::optional<std::int32_t> databaseId; // unset: the assignment policy chooses
};

struct StoreCreation {
  int status = 201;    // 201, or the error status
  std::string error;   // when status is not 201
  StoreRow store;
};

// What the proxy exposes to the admin port. Called on the admin thread; every method
// must be safe to call concurrently with the workers.
class AdminState {
 public:
  virtual ~AdminState() = default;
  virtual Readiness readiness() const = 0;
  virtual std::string metricsText() const = 0;
  virtual RegistryView registry() const = 0;
  virtual std::vector<UpstreamRow> upstreams() const = 0;
  // The configuration in use (reloads replace it).
  virtual std::shared_ptr<const config::ProxyConfig> config() const = 0;
  // POST /v1/drain: readiness turns false (idempotent).
  virtual void requestDrain() const = 0;
  virtual ReloadStatus reloadStatus() const = 0;
  // POST /v1/reload: reloads now (blocking the admin thread, not the data path).
  virtual ReloadStatus reload() const = 0;
  // POST /v1/stores (blocking the admin thread, not the data path).
  virtual StoreCreation createStore(const NewStore& store) const = 0;
};

Response handle(const Request& request, const AdminState& state);

// A connection string with its password and any secret-looking option values
// (…password…, …secret…, …token…) replaced by "****".
std::string redactUri(const std::string& uri);

}  // namespace mongogate::admin
