// proxy/admin_glue.h — the proxy as the admin port sees it, and the data path's metric
// calls (admin/http_handlers.h, admin/metrics.h).
//
// Promise: nothing here blocks a worker. The admin thread reads atomics and immutable
// registry snapshots directly; pool counts, which belong to their worker thread, are
// read by a task posted to each worker (the admin thread waits for them, up to 1 s).
// Whether main is reachable comes from a probe (borrow and return one pooled
// connection) that runs on the first worker at start and when /readyz finds the last
// answer older than a second.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <string_view>
#include <vector>

#include "admin/http_handlers.h"
#include "admin/metrics.h"
#include "proxy/config_reload.h"
#include "proxy/session_status.h"
#include "proxy/upstream_pool.h"
#include "proxy/worker.h"

namespace mongogate::proxy {

class ProxyAdminState final : public admin::AdminState {
 public:
  ProxyAdminState(SharedState& shared, const std::vector<std::unique_ptr<Worker>>& workers,
                  ConfigReloader& reloader);

  admin::Readiness readiness() const override;
  std::string metricsText() const override;
  admin::RegistryView registry() const override;
  std::vector<admin::UpstreamRow> upstreams() const override;
  std::shared_ptr<const config::ProxyConfig> config() const override;
  void requestDrain() const override;
  admin::ReloadStatus reloadStatus() const override { return reloader_.status(); }
  admin::ReloadStatus reload() const override { return reloader_.reload("POST /v1/reload"); }
  admin::StoreCreation createStore(const admin::NewStore& store) const override;

  // Starts a reachability check of main on the first worker (no-op while one runs).
  void probeMain() const;

 private:
  struct Probe;
  // Summed over the workers: per deployment, and per deployment and server id.
  struct PoolCounts {
    std::vector<PoolStats> deployments;
    std::vector<std::vector<PoolStats>> servers;
  };
  PoolCounts poolStats() const;
  // Every server of every deployment as the admin port shows it.
  std::vector<admin::ServerRow> serverRows(std::size_t deployment, const PoolCounts& pools) const;

  SharedState& shared_;
  const std::vector<std::unique_ptr<Worker>>& workers_;
  ConfigReloader& reloader_;
  std::shared_ptr<Probe> probe_;
};

// ---- The data path's metric calls (all cheap, no allocation). ----

// What one request is counted as; filled in while it is handled.
struct RequestLabels {
  static constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();
  std::size_t command = admin::kCommandCount - 1;  // "other"
  admin::DatabaseClass database = admin::DatabaseClass::kOther;
  std::size_t upstream = kNone;                    // a Metrics upstream label index
  const router::RoutedCommand* route = nullptr;    // set once the request is routed
  bool commandError = false;                       // the upstream's reply said ok: 0
};

// The class of a logical database for the `database` label (SPEC §3's rules).
admin::DatabaseClass databaseClassOf(const router::RoutingConfig& routing, std::string_view logicalDatabase);
RequestLabels requestLabels(const router::RoutingConfig& routing, std::string_view command,
                            std::string_view logicalDatabase);
// The upstream label of a routed command ("fan_out" when it is split).
std::size_t upstreamLabelOf(const SharedState& shared, const router::RoutedCommand& route);

// The physical database label index of a routed request (admin::kPhysicalDatabaseLabels).
std::size_t physicalDatabaseLabelOf(const router::RoutingConfig& routing, const router::RoutedCommand& route);
// The result label of a request that ended with `status`.
admin::RequestResult requestResultOf(SessionStatus status, const RequestLabels& labels);
// One client request finished with `status`; `bytesIn` is its message length. Returns
// how long it took.
std::chrono::nanoseconds recordRequest(Worker& worker, const RequestLabels& labels, SessionStatus status,
                   std::chrono::steady_clock::time_point started, std::int32_t bytesIn);
// One pool acquire finished (deployment nullopt: not counted).
void recordPoolAcquire(Worker& worker, std::optional<std::size_t> deployment, AcquireStatus status,
                       std::chrono::steady_clock::time_point started);

}  // namespace mongogate::proxy
