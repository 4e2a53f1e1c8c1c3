#include "proxy/topology_monitor.h"

#include <bson/bson.h>
#include <spdlog/spdlog.h>

#include "proxy/upstream_connect.h"

namespace mongogate::proxy {

using namespace asio::experimental::awaitable_operators;
using Clock = std::chrono::steady_clock;

namespace {

bool singleServer(const config::UpstreamConfig& upstream) {
  return upstream.directConnection || (upstream.hosts.size() == 1 && upstream.replicaSet.empty());
}

}  // namespace

struct Topology::Monitor {
  Monitor(asio::io_context& ioc, std::size_t id) : id(id), timer(ioc) {}
  const std::size_t id;
  asio::steady_timer timer;
  std::unique_ptr<UpstreamConnection> connection;
  bool stopped = false;
  bool checkRequested = false;
  Clock::time_point lastCheck{};
  Clock::time_point next{};
};

Topology::Topology(const config::UpstreamConfig& upstream, const config::ProxyConfig& config, ssl::context* tls)
    : upstream_(upstream),
      config_(config),
      tls_(tls),
      single_(singleServer(upstream)),
      defaultReadPreference_(readPreferenceOf(upstream)),
      state_(upstream.hosts, upstream.replicaSet, singleServer(upstream)) {
  publish();
}

Topology::~Topology() = default;

std::shared_ptr<const TopologySnapshot> Topology::current() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

void Topology::publish() {
  const std::vector<std::string>& addresses = state_.addresses();
  for (std::size_t id = slotCount_.load(std::memory_order_relaxed); id < addresses.size(); ++id) {
    config::HostPort host;
    if (!config::parseHostPort(addresses[id], host)) host = {addresses[id], 27017};
    if (single_ && !upstream_.hosts.empty()) host = upstream_.hosts.front();  // as written in the URI
    slots_[id] = std::make_unique<ServerSlot>(id, addresses[id], std::move(host), config_.topology);
    slotCount_.store(id + 1, std::memory_order_release);
  }
  const std::uint64_t version = version_.load(std::memory_order_relaxed) + 1;
  std::shared_ptr<const TopologySnapshot> next = state_.snapshot(version);
  std::shared_ptr<const TopologySnapshot> previous;
  {
    std::lock_guard lock(mutex_);
    previous = std::move(snapshot_);
    snapshot_ = next;
  }
  version_.store(version, std::memory_order_release);
  if (!previous) return;
  if (previous->type != next->type) {
    spdlog::info("upstream {}: topology is now {}", upstream_.name, toString(next->type));
  }
  const ServerDescription* before = previous->primary();
  const ServerDescription* after = next->primary();
  if (after && (!before || before->address != after->address)) {
    spdlog::info("upstream {}: primary is now {}", upstream_.name, after->address);
  } else if (before && !after) {
    spdlog::warn("upstream {}: no primary ({} was {})", upstream_.name, before->address, toString(ServerType::kRSPrimary));
  }
}

void Topology::start(asio::io_context& ioc, BufferPool& buffers) {
  if (single_) return;
  ioc_ = &ioc;
  buffers_ = &buffers;
  asio::post(ioc, [this] { syncMonitors(); });
}

void Topology::stop() {
  stopped_ = true;
  for (auto& [id, m] : monitors_) {
    m->stopped = true;
    m->timer.cancel();
    if (m->connection) m->connection->stream.close();
  }
  monitors_.clear();
}

void Topology::syncMonitors() {
  if (stopped_ || !ioc_) return;
  const std::vector<ServerDescription>& servers = state_.servers();
  for (auto it = monitors_.begin(); it != monitors_.end();) {
    const bool present = std::any_of(servers.begin(), servers.end(),
                                     [&](const ServerDescription& s) { return s.id == it->first; });
    if (present) {
      ++it;
      continue;
    }
    it->second->stopped = true;
    it->second->timer.cancel();
    if (it->second->connection) it->second->connection->stream.close();
    spdlog::info("upstream {}: {} is no longer a member", upstream_.name, slots_[it->first]->address);
    it = monitors_.erase(it);
  }
  for (const ServerDescription& server : servers) {
    if (monitors_.contains(server.id)) continue;
    auto m = std::make_shared<Monitor>(*ioc_, server.id);
    monitors_.emplace(server.id, m);
    asio::co_spawn(*ioc_, monitor(std::move(m)), asio::detached);
  }
}

void Topology::wake(Monitor& m) {
  m.checkRequested = true;
  const auto minInterval = std::chrono::milliseconds(std::min<std::uint32_t>(500, config_.topology.heartbeatFrequencyMs));
  const auto earliest = std::max(Clock::now(), m.lastCheck + minInterval);
  if (earliest < m.next) {
    m.next = earliest;
    m.timer.cancel();
  }
}

void Topology::markUnknown(std::size_t id, std::string why) {
  if (!ioc_) return;
  asio::post(*ioc_, [this, id, why = std::move(why)]() mutable {
    if (stopped_) return;
    if (state_.markUnknown(id, std::move(why))) publish();
    if (auto it = monitors_.find(id); it != monitors_.end()) wake(*it->second);
  });
}

void Topology::requestCheck(std::size_t id) {
  if (!ioc_) return;
  asio::post(*ioc_, [this, id] {
    if (auto it = monitors_.find(id); !stopped_ && it != monitors_.end()) wake(*it->second);
  });
}

void Topology::requestCheckAll() {
  if (!ioc_) return;
  asio::post(*ioc_, [this] {
    if (stopped_) return;
    for (auto& [id, m] : monitors_) wake(*m);
  });
}

awaitable<void> Topology::monitor(std::shared_ptr<Monitor> m) {
  const auto heartbeat = std::chrono::milliseconds(config_.topology.heartbeatFrequencyMs);
  const auto minInterval = std::chrono::milliseconds(std::min<std::uint32_t>(500, config_.topology.heartbeatFrequencyMs));
  bool retried = false;
  while (!m->stopped && !stopped_) {
    m->lastCheck = Clock::now();
    m->next = m->lastCheck + heartbeat;
    m->checkRequested = false;
    ServerDescription description = co_await check(*m);
    if (m->stopped || stopped_) break;
    const TopologySnapshot& known = *snapshot_;  // only this thread writes it
    const ServerDescription* before = known.find(m->id);
    if (description.type == ServerType::kUnknown && before && before->type != ServerType::kUnknown && !retried) {
      retried = true;  // SDAM: one immediate retry before a known server turns Unknown
      continue;
    }
    retried = false;
    if (description.type == ServerType::kUnknown && (!before || before->error != description.error)) {
      spdlog::warn("upstream {}: server {} is unavailable: {}", upstream_.name, slots_[m->id]->address,
                   description.error);
    }
    state_.apply(std::move(description));
    publish();
    syncMonitors();
    if (m->checkRequested) m->next = std::min(m->next, m->lastCheck + minInterval);
    while (!m->stopped && !stopped_ && Clock::now() < m->next) {
      m->timer.expires_at(m->next);
      co_await m->timer.async_wait(nothrow);
    }
  }
  if (m->connection) m->connection->stream.close();
}

// A monitoring connection is opened like a pooled one (TLS, mongogate's hello, and
// authentication when the URI has credentials); each check is one more hello on it.
awaitable<ServerDescription> Topology::check(Monitor& m) {
  ServerSlot& slot = *slots_[m.id];
  ServerDescription failed;
  failed.address = slot.address;
  auto fail = [&](std::string why) {
    if (m.connection) m.connection->stream.close();
    m.connection.reset();
    if (slot.breaker.onFailure()) {
      spdlog::warn("upstream {}: circuit breaker for {} is open", upstream_.name, slot.address);
    }
    failed.error = std::move(why);
    return failed;
  };
  if (!m.connection) {
    UpstreamConnectOptions options;
    options.upstream = &upstream_;
    options.tls = tls_;
    options.buffers = buffers_;
    options.maxMessageSize = config_.maxMessageSize;
    options.timeout = std::chrono::milliseconds(upstream_.pool.connectTimeoutMs);
    UpstreamLimits ignored;
    AcquireResult opened = co_await openUpstreamConnection(*ioc_, options, slot.host, ignored);
    if (opened.status != AcquireStatus::kOk) co_return fail(opened.error);
    m.connection = std::move(opened.connection);
  }
  std::vector<std::uint8_t> body;
  bson_t hello = BSON_INITIALIZER;
  BSON_APPEND_INT32(&hello, "hello", 1);
  BSON_APPEND_UTF8(&hello, "$db", "admin");
  body.assign(bson_get_data(&hello), bson_get_data(&hello) + hello.len);
  bson_destroy(&hello);
  asio::steady_timer deadline(*ioc_);
  deadline.expires_after(std::chrono::milliseconds(upstream_.pool.connectTimeoutMs));
  wire::Bytes reply;
  const auto started = Clock::now();
  auto outcome = co_await (runUpstreamCommand(*m.connection, body, reply) || deadline.async_wait(nothrow));
  const double rttMs = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  if (outcome.index() != 0) co_return fail("hello timed out");
  if (!std::get<0>(outcome).empty()) co_return fail("hello failed: " + std::get<0>(outcome));
  if (slot.breaker.onSuccess()) {
    spdlog::info("upstream {}: circuit breaker for {} is closed again", upstream_.name, slot.address);
  }
  co_return describeHello(slot.address, reply, rttMs);
}

TopologyService::~TopologyService() { stop(); }

void TopologyService::start() {
  for (auto& topology : topologies_) topology->start(ioc_, buffers_);
  thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(ioc_);
    ioc_.run();
  });
}

void TopologyService::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (thread_.joinable()) {
    asio::post(ioc_, [this] {
      for (auto& topology : topologies_) topology->stop();
      ioc_.stop();
    });
    thread_.join();
  } else {
    for (auto& topology : topologies_) topology->stop();
  }
}

}  // namespace mongogate::proxy
