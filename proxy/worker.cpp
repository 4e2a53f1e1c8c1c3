#include "proxy/worker.h"

#include <algorithm>

namespace mongogate::proxy {

SharedState::SharedState(const config::ProxyConfig& c)
    : config(c),
      runtime(c),
      cursors(std::chrono::milliseconds(c.topology.cursorIdleTimeoutMs)),
      // mongod aborts a transaction after transactionLifetimeLimitSeconds (60 s by default);
      // a commit may be retried a while after that.
      transactions(std::chrono::minutes(5)) {
  for (const config::UpstreamConfig& upstream : c.upstreams) {
    std::size_t index = deployments.size();
    for (std::size_t i = 0; i < deployments.size(); ++i) {
      if (deployments[i]->uri == upstream.uri) index = i;
    }
    if (index == deployments.size()) {
      deployments.push_back(&upstream);
      limits.push_back(std::make_unique<UpstreamLimitsStore>(
          UpstreamLimits{.maxWireVersion = c.fallbackMaxWireVersion}));
      std::unique_ptr<ssl::context> tls;
      if (upstream.tls.enabled) {
        std::string error;
        tls = makeUpstreamTlsContext(upstream.tls, error);
        if (!tls && startupError.empty()) startupError = "upstream " + upstream.name + ": " + error;
      }
      tlsContexts.push_back(std::move(tls));
      topologies.push_back(std::make_unique<Topology>(upstream, c, tlsContexts.back().get()));
    }
    names_.emplace_back(upstream.name, index);
  }
  assignment.policy = c.registry.assignment;
  for (const std::string& name : c.compression) {
    if (auto compressor = wire::compressorFromName(name)) compressors.push_back(*compressor);
  }
  bson_oid_init(&serviceId, nullptr);
  if (deployments.size() > 1) {
    sessions = std::make_unique<SessionTable>(deployments.size(), std::chrono::minutes(30));
  }
  std::vector<std::string> upstreamNames;
  for (const config::UpstreamConfig& upstream : c.upstreams) upstreamNames.push_back(upstream.name);
  std::vector<std::string> poolNames;
  for (const config::UpstreamConfig* deployment : deployments) poolNames.push_back(deployment->name);
  metrics = std::make_unique<admin::Metrics>(workerThreadCount(c), std::move(upstreamNames), std::move(poolNames));
  topologyService = std::make_unique<TopologyService>(topologies);
}

std::size_t workerThreadCount(const config::ProxyConfig& config) {
  std::size_t threads = config.threads ? config.threads : std::thread::hardware_concurrency();
  return threads == 0 ? 1 : threads;
}

std::optional<std::size_t> SharedState::deploymentOf(std::string_view upstreamName) const {
  for (const auto& [name, index] : names_) {
    if (name == upstreamName) return index;
  }
  return std::nullopt;
}

UpstreamLimits SharedState::advertisedLimits() const {
  std::optional<UpstreamLimits> weakest;
  for (const auto& store : limits) {
    const UpstreamLimits l = store->get();
    if (!l.learned) continue;
    if (!weakest) {
      weakest = l;
      continue;
    }
    weakest->minWireVersion = std::max(weakest->minWireVersion, l.minWireVersion);
    weakest->maxWireVersion = std::min(weakest->maxWireVersion, l.maxWireVersion);
    weakest->maxBsonObjectSize = std::min(weakest->maxBsonObjectSize, l.maxBsonObjectSize);
    weakest->maxMessageSizeBytes = std::min(weakest->maxMessageSizeBytes, l.maxMessageSizeBytes);
    weakest->maxWriteBatchSize = std::min(weakest->maxWriteBatchSize, l.maxWriteBatchSize);
    if (weakest->logicalSessionTimeoutMinutes < 0 || l.logicalSessionTimeoutMinutes < 0) {
      weakest->logicalSessionTimeoutMinutes = -1;
    } else {
      weakest->logicalSessionTimeoutMinutes =
          std::min(weakest->logicalSessionTimeoutMinutes, l.logicalSessionTimeoutMinutes);
    }
  }
  return weakest ? *weakest : limits.front()->get();
}

Worker::Worker(SharedState& shared, std::size_t threads, std::size_t index)
    : shared_(shared),
      ioc_(std::make_unique<asio::io_context>(1)),
      registryReader_(shared.registry),
      runtimeReader_(shared.runtime),
      metrics_(shared.metrics->shardFor(index)) {
  if (threads == 0) threads = 1;
  pools_.resize(shared.deployments.size());
  for (std::size_t i = 0; i < shared.deployments.size(); ++i) {
    const config::UpstreamConfig& deployment = *shared.deployments[i];
    UpstreamConnectOptions connect;
    connect.upstream = &deployment;
    connect.tls = shared.tlsContexts[i].get();
    connect.buffers = &buffers_;
    connect.maxMessageSize = shared.config.maxMessageSize;
    connect.timeout = std::chrono::milliseconds(deployment.pool.connectTimeoutMs);
    // Exact shares (10 over 3 threads: 4, 3, 3), so the process never holds more than
    // maxSize per server; but every worker can hold at least one connection.
    auto share = [&](std::size_t whole) { return whole / threads + (index < whole % threads ? 1 : 0); };
    shards_.push_back({connect, std::max<std::size_t>(share(deployment.pool.maxSize), 1), share(deployment.pool.minSize)});
    topologyReaders_.emplace_back(*shared.topologies[i]);
    pools_[i].resize(kMaxServersPerDeployment);
    // The servers known now (the seeds) get their pools at once: minSize applies from the start.
    for (std::size_t server = 0; server < shared.topologies[i]->slotCount(); ++server) serverPool(i, server);
  }
}

Worker::~Worker() {
  stop();
  join();
  // Coroutine frames still parked in the io_context give connections and buffers back
  // as they are destroyed: the pools and buffers must outlive the io_context.
  for (auto& servers : pools_) {
    for (auto& pool : servers) {
      if (pool) pool->shutdown();
    }
  }
  for (auto& servers : pools_) {
    for (auto& pool : servers) {
      if (pool) pool->releaseIoObjects();
    }
  }
  ioc_.reset();
  pools_.clear();
}

UpstreamPool& Worker::serverPool(std::size_t deployment, std::size_t server) {
  std::unique_ptr<UpstreamPool>& pool = pools_[deployment][server];
  if (!pool) {
    ServerSlot& slot = shared_.topologies[deployment]->slot(server);
    const Shard& shard = shards_[deployment];
    pool = std::make_unique<UpstreamPool>(*ioc_, shard.connect, slot.host, shared_.deployments[deployment]->pool,
                                          shard.maxSize, *shared_.limits[deployment], shard.minSize, &slot.breaker);
    if (started_) pool->start();
  }
  return *pool;
}

std::optional<Acquired> Worker::tryAcquireNow(std::size_t deployment, const ServerRequest& request) {
  Topology& topology = *shared_.topologies[deployment];
  Acquired out;
  if (topology.single() || request.pinnedServer) {
    out.result.server = request.pinnedServer.value_or(0);
  } else {
    const std::shared_ptr<const TopologySnapshot>& snapshot = topologyReaders_[deployment].snapshot();
    const auto index = selectServer(*snapshot, request.selection, spin_, shared_.config.topology.localThresholdMs);
    if (!index) return std::nullopt;  // acquire() waits for a suitable server
    const ServerDescription& server = snapshot->servers[*index];
    out.primary = server.type == ServerType::kRSPrimary;
    out.result.server = server.id;
  }
  out.pool = &serverPool(deployment, out.result.server);
  out.result.connection = out.pool->tryAcquireIdle();
  if (!out.result.connection) return std::nullopt;  // acquire() selects with the same spin
  if (!topology.single() && !request.pinnedServer) ++spin_;
  out.result.status = AcquireStatus::kOk;
  return out;
}

awaitable<Acquired> Worker::acquire(std::size_t deployment, const ServerRequest& request) {
  using Clock = std::chrono::steady_clock;
  Topology& topology = *shared_.topologies[deployment];
  Acquired out;
  if (topology.single() || request.pinnedServer) {
    const std::size_t server = request.pinnedServer.value_or(0);
    out.pool = &serverPool(deployment, server);
    out.result = co_await out.pool->acquire();
    out.result.server = server;
    if (!topology.single() && (out.result.status == AcquireStatus::kConnectFailed ||
                               out.result.status == AcquireStatus::kBreakerOpen)) {
      topology.markUnknown(server, "cannot connect");
    }
    co_return out;
  }
  const auto& settings = shared_.config.topology;
  const Clock::time_point deadline =
      request.deadline != Clock::time_point{}
          ? request.deadline
          : Clock::now() + std::chrono::milliseconds(settings.serverSelectionTimeoutMs);
  const std::uint64_t spin = spin_++;
  bool checkRequested = false;
  std::optional<asio::steady_timer> pause;
  for (;;) {
    const std::shared_ptr<const TopologySnapshot>& snapshot = topologyReaders_[deployment].snapshot();
    if (auto index = selectServer(*snapshot, request.selection, spin, settings.localThresholdMs)) {
      const ServerDescription& server = snapshot->servers[*index];
      out.primary = server.type == ServerType::kRSPrimary;
      out.pool = &serverPool(deployment, server.id);
      out.result = co_await out.pool->acquire();
      out.result.server = server.id;
      if (out.result.status == AcquireStatus::kConnectFailed || out.result.status == AcquireStatus::kBreakerOpen) {
        topology.markUnknown(server.id, "cannot connect");
      }
      co_return out;
    }
    if (Clock::now() >= deadline) break;
    if (!checkRequested) {
      topology.requestCheckAll();  // drivers' "request an immediate check" on a failed selection
      checkRequested = true;
    }
    if (!pause) pause.emplace(*ioc_);
    pause->expires_at(std::min(deadline, Clock::now() + std::chrono::milliseconds(20)));
    co_await pause->async_wait(nothrow);
  }
  out.result.status = AcquireStatus::kNoSuitableServer;
  out.result.error = std::string("no suitable server (") +
                     (request.selection.write ? "no primary" : "none matches the read preference") + ") within " +
                     std::to_string(settings.serverSelectionTimeoutMs) + " ms";
  co_return out;
}

UpstreamPool& Worker::primaryPool(std::size_t deployment) {
  const std::shared_ptr<const TopologySnapshot>& snapshot = topologyReaders_[deployment].snapshot();
  const ServerDescription* primary = snapshot->type == TopologyType::kSingle ? nullptr : snapshot->primary();
  return serverPool(deployment, primary ? primary->id : 0);
}

PoolStats Worker::poolStats(std::size_t deployment, std::size_t server) const {
  const auto& pool = pools_[deployment][server];
  return pool ? pool->stats() : PoolStats{};
}

PoolStats Worker::poolStats(std::size_t deployment) const {
  PoolStats sum;
  for (const auto& pool : pools_[deployment]) {
    if (!pool) continue;
    const PoolStats s = pool->stats();
    sum.total += s.total;
    sum.idle += s.idle;
    sum.waiting += s.waiting;
  }
  return sum;
}

void Worker::start() {
  started_ = true;
  for (auto& servers : pools_) {
    for (auto& pool : servers) {
      if (pool) pool->start();
    }
  }
  thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(*ioc_);
    ioc_->run();
  });
}

}  // namespace mongogate::proxy
