#include "proxy/worker.h"

#include <algorithm>

namespace mongogate::proxy {

SharedState::SharedState(const config::ProxyConfig& c) : config(c), runtime(c) {
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
  for (std::size_t i = 0; i < shared.deployments.size(); ++i) {
    const config::UpstreamConfig& deployment = *shared.deployments[i];
    UpstreamConnectOptions connect;
    connect.upstream = &deployment;
    connect.tls = shared.tlsContexts[i].get();
    connect.buffers = &buffers_;
    connect.maxMessageSize = shared.config.maxMessageSize;
    connect.timeout = std::chrono::milliseconds(deployment.pool.connectTimeoutMs);
    // Exact shares (10 over 3 threads: 4, 3, 3), so the process never holds more than
    // maxSize; but every worker can hold at least one connection.
    auto share = [&](std::size_t whole) { return whole / threads + (index < whole % threads ? 1 : 0); };
    const std::size_t maxShard = std::max<std::size_t>(share(deployment.pool.maxSize), 1);
    const std::size_t minShard = share(deployment.pool.minSize);
    // The topology layer picks among the URI's hosts; until then the first one.
    pools_.push_back(std::make_unique<UpstreamPool>(*ioc_, connect, deployment.hosts.front(), deployment.pool,
                                                    maxShard, *shared.limits[i], minShard));
  }
}

Worker::~Worker() {
  stop();
  join();
  // Coroutine frames still parked in the io_context give connections and buffers back
  // as they are destroyed: the pools and buffers must outlive the io_context.
  for (auto& pool : pools_) pool->shutdown();
  ioc_.reset();
  pools_.clear();
}

void Worker::start() {
  for (auto& pool : pools_) pool->start();
  thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(*ioc_);
    ioc_->run();
  });
}

UpstreamPool* Worker::pool(std::string_view upstreamName) {
  auto index = shared_.deploymentOf(upstreamName);
  return index ? pools_[*index].get() : nullptr;
}

}  // namespace mongogate::proxy
