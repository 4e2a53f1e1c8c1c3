// proxy/topology_monitor.h — the live topology of each upstream deployment.
//
// Promise: every server of a monitored deployment (several hosts, or replicaSet=) is
// checked with hello on its own connection every heartbeat_frequency_ms, by a coroutine
// on one dedicated thread that alone owns the TopologyState. Each change publishes an
// immutable TopologySnapshot; workers read it per request with one atomic load
// (TopologyReader) and never lock on the data path. requestCheck() wakes a server's
// monitor at once (no sooner than min(500 ms, heartbeat) after its last check), as
// drivers do after "not writable primary" and network errors.
// A deployment of one host without replicaSet= (or with directConnection=true) is
// Single: used directly, never monitored, at no cost per request.
// Each server has a slot with a stable id (index) holding its circuit breaker; slots
// are never removed, at most kMaxServersPerDeployment per deployment.
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/proxy_config.h"
#include "proxy/asio.h"
#include "proxy/breaker.h"
#include "proxy/buffer_pool.h"
#include "proxy/stream.h"
#include "proxy/topology.h"

namespace mongogate::proxy {

struct ServerSlot {
  ServerSlot(std::size_t id, std::string address, config::HostPort host, const config::TopologyConfig& settings)
      : id(id), address(std::move(address)), host(std::move(host)),
        breaker(settings.breakerFailureThreshold, settings.breakerCoolDownMs) {}
  const std::size_t id;
  const std::string address;     // "host:port" (lowercased host)
  const config::HostPort host;
  CircuitBreaker breaker;
};

class Topology {
 public:
  // tls: the deployment's TLS client context (nullptr: plain TCP), for monitoring connections.
  Topology(const config::UpstreamConfig& upstream, const config::ProxyConfig& config, ssl::context* tls = nullptr);
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  const config::UpstreamConfig& upstream() const { return upstream_; }
  bool single() const { return single_; }
  const ReadPreference& defaultReadPreference() const { return defaultReadPreference_; }

  std::uint64_t version() const { return version_.load(std::memory_order_acquire); }
  std::shared_ptr<const TopologySnapshot> current() const;
  std::size_t slotCount() const { return slotCount_.load(std::memory_order_acquire); }
  // id < slotCount(): slots are created before any snapshot names them.
  ServerSlot& slot(std::size_t id) const { return *slots_[id]; }

  // From any thread. The server is Unknown until its next check, which runs soon.
  void markUnknown(std::size_t id, std::string why);
  void requestCheck(std::size_t id);
  void requestCheckAll();

  // Starts a monitor per server on `ioc` (no-op for Single). stop() must run on ioc's
  // thread before ioc is destroyed.
  void start(asio::io_context& ioc, BufferPool& buffers);
  void stop();

 private:
  struct Monitor;
  awaitable<void> monitor(std::shared_ptr<Monitor> m);
  awaitable<ServerDescription> check(Monitor& m);
  void wake(Monitor& m);
  void publish();
  void syncMonitors();

  const config::UpstreamConfig& upstream_;
  const config::ProxyConfig& config_;
  ssl::context* tls_;
  const bool single_;
  const ReadPreference defaultReadPreference_;
  TopologyState state_;  // only on the monitor thread (after start)
  mutable std::mutex mutex_;
  std::shared_ptr<const TopologySnapshot> snapshot_;
  std::atomic<std::uint64_t> version_{1};
  std::array<std::unique_ptr<ServerSlot>, kMaxServersPerDeployment> slots_;
  std::atomic<std::size_t> slotCount_{0};
  asio::io_context* ioc_ = nullptr;
  BufferPool* buffers_ = nullptr;
  std::map<std::size_t, std::shared_ptr<Monitor>> monitors_;
  bool stopped_ = false;
};

// Per worker, per deployment: the current snapshot, re-fetched only when it changed.
class TopologyReader {
 public:
  explicit TopologyReader(const Topology& topology) : topology_(topology) {}
  const std::shared_ptr<const TopologySnapshot>& snapshot() {
    const std::uint64_t v = topology_.version();
    if (!cached_ || v != cachedVersion_) {
      cached_ = topology_.current();
      cachedVersion_ = v;
    }
    return cached_;
  }

 private:
  const Topology& topology_;
  std::shared_ptr<const TopologySnapshot> cached_;
  std::uint64_t cachedVersion_ = 0;
};

// The monitoring thread shared by every deployment.
class TopologyService {
 public:
  explicit TopologyService(std::vector<std::unique_ptr<Topology>>& topologies) : topologies_(topologies) {}
  ~TopologyService();
  void start();
  void stop();

 private:
  std::vector<std::unique_ptr<Topology>>& topologies_;
  BufferPool buffers_;  // outlives ioc_: monitor connections give their buffers back
  asio::io_context ioc_{1};
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace mongogate::proxy
