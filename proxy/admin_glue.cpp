#include "proxy/admin_glue.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <mutex>

namespace mongogate::proxy {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kProbeInterval = std::chrono::seconds(1);
constexpr auto kPoolStatsWait = std::chrono::seconds(1);

std::int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

admin::RequestResult resultOf(SessionStatus status) {
  switch (status) {
    case SessionStatus::kOk: return admin::RequestResult::kOk;
    case SessionStatus::kRefused:
    case SessionStatus::kAuthFailed: return admin::RequestResult::kRefused;
    case SessionStatus::kBadFrame:
    case SessionStatus::kFrameTooLarge:
    case SessionStatus::kLegacyOpcode:
    case SessionStatus::kUnsupportedOpQuery: return admin::RequestResult::kClientError;
    case SessionStatus::kPoolTimeout: return admin::RequestResult::kPoolTimeout;
    case SessionStatus::kUpstreamUnavailable: return admin::RequestResult::kUpstreamUnavailable;
    case SessionStatus::kUpstreamIoError:
    case SessionStatus::kMaxTimeExpired:  // the upstream did not answer in time
    case SessionStatus::kRequestTimeout: return admin::RequestResult::kUpstreamError;
    case SessionStatus::kClientClosed:
    case SessionStatus::kClientIoError: return admin::RequestResult::kClientGone;
  }
  return admin::RequestResult::kClientError;
}

}  // namespace

// The last answer of the main-reachability probe. Shared with the probe coroutine, which
// may outlive this object's owner at shutdown.
struct ProxyAdminState::Probe {
  enum State : int { kUnknown, kReachable, kUnreachable };
  std::atomic<int> state{kUnknown};
  std::atomic<bool> running{false};
  std::atomic<std::int64_t> finishedNs{0};
  std::mutex detailMutex;
  std::string detail;  // why unreachable: AcquireResult::error (no URI, no credentials)
};

ProxyAdminState::ProxyAdminState(SharedState& shared, const std::vector<std::unique_ptr<Worker>>& workers,
                                 ConfigReloader& reloader)
    : shared_(shared), workers_(workers), reloader_(reloader), probe_(std::make_shared<Probe>()) {}

std::shared_ptr<const config::ProxyConfig> ProxyAdminState::config() const {
  std::shared_ptr<const RuntimeConfig> runtime = shared_.runtime.current();
  return {runtime, &runtime->config};  // shares ownership with the RuntimeConfig
}

namespace {

admin::StoreRow storeRowOf(const router::StoreRecord& store, const router::RoutingConfig& routing) {
  admin::StoreRow row{store.storeId, store.name, store.prefix, store.databaseId, {}, {}};
  routing.locateStore(store.databaseId, row.upstream, row.physicalDatabase);
  return row;
}

}  // namespace

admin::StoreCreation ProxyAdminState::createStore(const admin::NewStore& request) const {
  const std::shared_ptr<const RuntimeConfig> runtime = shared_.runtime.current();
  const config::ProxyConfig& c = runtime->config;
  const router::RoutingConfig& routing = c.routing;
  if (c.registry.source == config::RegistryConfig::Source::kFile) {
    return {503, "the store registry is read from a file (registry.source: file): add the store to that file", {}};
  }
  if (!shared_.registry.loaded()) return {503, "the store registry is not loaded yet; retry shortly", {}};
  if (request.databaseId && *request.databaseId > routing.databaseCount) {
    return {400, "databaseId: expected 0 (the main database) to " + std::to_string(routing.databaseCount), {}};
  }
  router::StoreRecord store{request.storeId, request.name, request.prefix, 0};
  {
    // The same lock as inserts into the registry collection through the proxy; released
    // before the upstream I/O, which must never hold up a worker.
    std::lock_guard lock(shared_.assignmentMutex);
    const std::shared_ptr<const router::RegistrySnapshot> snapshot = shared_.registry.current();
    if (snapshot->findByPrefix(store.prefix)) {
      return {409, "a store with prefix '" + store.prefix + "' already exists", {}};
    }
    store.databaseId = request.databaseId ? *request.databaseId
                                          : router::assignDatabase(routing, *snapshot, shared_.assignment);
  }
  const std::shared_ptr<RegistrySource> source = reloader_.registrySource();
  if (!source) return {503, "the store registry source is not running", {}};
  bool exists = false;
  std::string error;
  if (!source->insertStore(store, exists, error)) {
    if (exists) return {409, error, {}};
    spdlog::warn("admin: store '{}' not created: {}", store.prefix, error);
    return {503, "the store was not created: " + error, {}};
  }
  shared_.registry.upsert(store);
  spdlog::info("admin: store '{}' created in database {}", store.prefix, store.databaseId);
  return {201, {}, storeRowOf(store, routing)};
}

void ProxyAdminState::probeMain() const {
  if (workers_.empty() || probe_->running.exchange(true)) return;
  Worker& worker = *workers_.front();
  asio::co_spawn(worker.ioc(), [&worker, probe = probe_]() -> awaitable<void> {
    Acquired acquired = co_await worker.acquire(0, {});
    switch (acquired.result.status) {
      case AcquireStatus::kOk:
        acquired.pool->release(std::move(acquired.result.connection));
        probe->state = Probe::kReachable;
        break;
      case AcquireStatus::kTimeout:  // every connection busy: connected, just saturated
        if (probe->state == Probe::kUnknown) probe->state = Probe::kReachable;
        break;
      case AcquireStatus::kConnectFailed:
      case AcquireStatus::kBreakerOpen:
      case AcquireStatus::kNoSuitableServer: {
        std::lock_guard lock(probe->detailMutex);
        probe->detail = acquired.result.error;
        probe->state = Probe::kUnreachable;
        break;
      }
      case AcquireStatus::kShuttingDown:
        break;
    }
    probe->finishedNs = nowNs();
    probe->running = false;
  }, asio::detached);
}

admin::Readiness ProxyAdminState::readiness() const {
  admin::Readiness r;
  r.registryLoaded = shared_.registry.loaded();
  r.draining = shared_.draining.load();
  const std::int64_t age = nowNs() - probe_->finishedNs.load();
  if (age > std::chrono::nanoseconds(kProbeInterval).count()) probeMain();
  const int state = probe_->state.load();
  r.mainReachable = state == Probe::kReachable;
  if (state == Probe::kUnknown) {
    r.mainDetail = "not checked yet";
  } else if (state == Probe::kUnreachable) {
    std::lock_guard lock(probe_->detailMutex);
    r.mainDetail = probe_->detail;
  }
  return r;
}

void ProxyAdminState::requestDrain() const {
  if (!shared_.draining.exchange(true)) spdlog::info("admin: drain requested: readiness is now false");
}

namespace {
void add(PoolStats& sum, const PoolStats& s) {
  sum.total += s.total;
  sum.idle += s.idle;
  sum.waiting += s.waiting;
}
}  // namespace

ProxyAdminState::PoolCounts ProxyAdminState::poolStats() const {
  struct Gather {
    std::mutex mutex;
    std::condition_variable done;
    std::size_t pending = 0;
    PoolCounts counts;
  };
  auto gather = std::make_shared<Gather>();
  gather->counts.deployments.resize(shared_.deployments.size());
  gather->counts.servers.assign(shared_.deployments.size(), std::vector<PoolStats>(kMaxServersPerDeployment));
  gather->pending = workers_.size();
  for (const auto& worker : workers_) {
    asio::post(worker->ioc(), [gather, &w = *worker] {
      std::lock_guard lock(gather->mutex);
      for (std::size_t i = 0; i < gather->counts.deployments.size(); ++i) {
        add(gather->counts.deployments[i], w.poolStats(i));
        for (std::size_t server = 0; server < kMaxServersPerDeployment; ++server) {
          add(gather->counts.servers[i][server], w.poolStats(i, server));
        }
      }
      if (--gather->pending == 0) gather->done.notify_all();
    });
  }
  std::unique_lock lock(gather->mutex);
  // A stopped (shutting down) or stalled worker is left out rather than waited for.
  gather->done.wait_for(lock, kPoolStatsWait, [&] { return gather->pending == 0; });
  return gather->counts;
}

std::vector<admin::ServerRow> ProxyAdminState::serverRows(std::size_t deployment, const PoolCounts& pools) const {
  const Topology& topology = *shared_.topologies[deployment];
  const std::shared_ptr<const TopologySnapshot> snapshot = topology.current();
  std::vector<admin::ServerRow> rows;
  for (const ServerDescription& server : snapshot->servers) {
    const ServerSlot& slot = topology.slot(server.id);
    admin::ServerRow row;
    row.address = slot.address;
    row.type = topology.single() ? "Direct" : toString(server.type);
    row.breaker = toString(slot.breaker.state());
    row.consecutiveFailures = slot.breaker.consecutiveFailures();
    row.rttMs = server.rttMs;
    row.error = server.error;
    const PoolStats& s = pools.servers[deployment][server.id];
    row.totals = {s.total, s.idle, s.waiting};
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string ProxyAdminState::metricsText() const {
  admin::GaugeValues gauges;
  gauges.clientConnections = shared_.clientConnections.load();
  gauges.openTransactions = shared_.openTransactions.open();
  const PoolCounts counts = poolStats();
  const std::vector<PoolStats>& pools = counts.deployments;
  for (std::size_t i = 0; i < pools.size(); ++i) {
    gauges.pools.push_back({shared_.deployments[i]->name, pools[i].idle, pools[i].total - std::min(pools[i].total, pools[i].idle)});
    for (const admin::ServerRow& server : serverRows(i, counts)) {
      const std::uint64_t state = server.breaker == "open" ? 2 : server.breaker == "half_open" ? 1 : 0;
      gauges.servers.push_back({shared_.deployments[i]->name, server.address, server.type, state});
    }
  }
  const admin::RegistryView view = registry();
  for (const admin::DatabaseRow& row : view.databases) gauges.storesPerDatabase.emplace_back(row.database, row.stores);
  gauges.registryStores = view.stores.size();
  {
    const std::shared_ptr<const RuntimeConfig> runtime = shared_.runtime.current();
    const router::RoutingConfig& routing = runtime->config.routing;
    gauges.physicalDatabases.push_back(routing.mainDatabase);
    for (std::int32_t id = 1; id <= routing.databaseCount; ++id) {
      gauges.physicalDatabases.push_back(routing.physicalStoreDatabase(id));
    }
  }
  const admin::ReloadStatus reload = reloader_.status();
  gauges.reloadsApplied = reload.applied;
  gauges.reloadsRefused = reload.refused;
  gauges.configGeneration = reload.generation;
  gauges.lastReloadSuccessUnix = reload.lastSuccessUnix;
  return shared_.metrics->render(gauges);
}

admin::RegistryView ProxyAdminState::registry() const {
  const std::shared_ptr<const RuntimeConfig> runtime = shared_.runtime.current();
  const router::RoutingConfig& routing = runtime->config.routing;
  const std::shared_ptr<const router::RegistrySnapshot> snapshot = shared_.registry.current();
  admin::RegistryView view;
  view.loaded = shared_.registry.loaded();
  view.version = snapshot->version();
  for (const router::StoreRecord& store : snapshot->stores()) view.stores.push_back(storeRowOf(store, routing));
  view.databases.push_back({routing.mainDatabase, routing.mainUpstream, snapshot->storesInDatabase(0)});
  for (std::int32_t id = 1; id <= routing.databaseCount; ++id) {
    view.databases.push_back(
        {routing.physicalStoreDatabase(id), routing.upstreamOfStoreDatabase(id), snapshot->storesInDatabase(id)});
  }
  return view;
}

std::vector<admin::UpstreamRow> ProxyAdminState::upstreams() const {
  const PoolCounts counts = poolStats();
  const std::vector<PoolStats>& pools = counts.deployments;
  std::vector<admin::UpstreamRow> rows;
  for (const config::UpstreamConfig& upstream : shared_.config.upstreams) {
    admin::UpstreamRow row;
    row.name = upstream.name;
    row.uri = upstream.uri;
    for (const config::HostPort& host : upstream.hosts) row.hosts.push_back(host.toString());
    if (auto deployment = shared_.deploymentOf(upstream.name)) {
      row.pool = shared_.deployments[*deployment]->name;
      const std::shared_ptr<const TopologySnapshot> snapshot = shared_.topologies[*deployment]->current();
      row.topology = toString(snapshot->type);
      row.setName = snapshot->setName;
      row.servers = serverRows(*deployment, counts);
      row.totals = {pools[*deployment].total, pools[*deployment].idle, pools[*deployment].waiting};
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

admin::DatabaseClass databaseClassOf(const router::RoutingConfig& routing, std::string_view database) {
  if (database == routing.mainDatabase) return admin::DatabaseClass::kMain;
  for (const std::string& name : routing.masterAdminDatabases) {
    if (database == name) return admin::DatabaseClass::kMasterAdmin;
  }
  if (!routing.storeDatabasePrefix.empty() && database.size() > routing.storeDatabasePrefix.size() &&
      database.substr(0, routing.storeDatabasePrefix.size()) == routing.storeDatabasePrefix) {
    return admin::DatabaseClass::kStore;
  }
  return admin::DatabaseClass::kOther;
}

RequestLabels requestLabels(const router::RoutingConfig& routing, std::string_view command,
                            std::string_view logicalDatabase) {
  RequestLabels labels;
  labels.command = admin::commandIndex(command);
  labels.database = databaseClassOf(routing, logicalDatabase);
  return labels;
}

std::size_t upstreamLabelOf(const SharedState& shared, const router::RoutedCommand& route) {
  if (route.replyHandling != router::ReplyHandling::kForward) return shared.metrics->fanOutUpstream();
  return shared.metrics->upstreamIndex(route.upstream);
}

std::size_t physicalDatabaseLabelOf(const router::RoutingConfig& routing, const router::RoutedCommand& route) {
  if (route.replyHandling != router::ReplyHandling::kForward) return admin::kPhysicalDatabaseOther;
  const std::string_view database =
      route.mappings.empty() ? std::string_view(route.logicalDatabase) : route.mappings.front().physicalDatabase;
  if (database == routing.mainDatabase) return 0;
  const std::string_view prefix = routing.databasePrefix;
  if (database.size() > prefix.size() + 1 && database.starts_with(prefix) && database[prefix.size()] == '_') {
    std::size_t id = 0;
    const char* first = database.data() + prefix.size() + 1;
    const char* last = database.data() + database.size();
    auto [end, ec] = std::from_chars(first, last, id);
    if (ec == std::errc() && end == last && *first != '0' && id >= 1 &&
        id <= static_cast<std::size_t>(routing.databaseCount)) {
      return id;
    }
  }
  return admin::kPhysicalDatabaseOther;
}

admin::RequestResult requestResultOf(SessionStatus status, const RequestLabels& labels) {
  if (status == SessionStatus::kOk && labels.commandError) return admin::RequestResult::kCommandError;
  return resultOf(status);
}

std::chrono::nanoseconds recordRequest(Worker& worker, const RequestLabels& labels, SessionStatus status,
                                       Clock::time_point started, std::int32_t bytesIn) {
  admin::MetricsShard& shard = worker.metrics();
  const admin::Metrics& metrics = *worker.shared().metrics;
  const std::size_t upstream = labels.upstream == RequestLabels::kNone ? metrics.noUpstream() : labels.upstream;
  const auto duration = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started).count();
  shard.recordRequest(labels.command, labels.database, upstream, requestResultOf(status, labels),
                      static_cast<std::uint64_t>(std::max<std::int64_t>(duration, 0)));
  if (bytesIn > 0) shard.addBytesIn(static_cast<std::uint64_t>(bytesIn));
  if (labels.route && !labels.route->refusal) {
    shard.recordPhysicalDatabase(physicalDatabaseLabelOf(worker.runtime().current()->config.routing, *labels.route));
  }
  switch (status) {
    case SessionStatus::kRefused: shard.recordRefusal(admin::RefusalReason::kRouting); break;
    case SessionStatus::kLegacyOpcode: shard.recordRefusal(admin::RefusalReason::kLegacyOpcode); break;
    case SessionStatus::kUnsupportedOpQuery: shard.recordRefusal(admin::RefusalReason::kUnsupportedOpQuery); break;
    case SessionStatus::kBadFrame: shard.recordRefusal(admin::RefusalReason::kBadFrame); break;
    case SessionStatus::kAuthFailed: shard.recordAuthFailure(); break;
    case SessionStatus::kUpstreamUnavailable:
      if (!worker.shared().registry.loaded()) shard.recordRefusal(admin::RefusalReason::kRegistryNotLoaded);
      break;
    default: break;
  }
  return std::chrono::nanoseconds(duration);
}

void recordPoolAcquire(Worker& worker, std::optional<std::size_t> deployment, AcquireStatus status,
                       Clock::time_point started) {
  if (!deployment) return;
  admin::MetricsShard& shard = worker.metrics();
  if (status == AcquireStatus::kTimeout) shard.recordPoolTimeout(*deployment);
  const auto waited = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started).count();
  shard.recordPoolWait(*deployment, static_cast<std::uint64_t>(std::max<std::int64_t>(waited, 0)));
}

}  // namespace mongogate::proxy
