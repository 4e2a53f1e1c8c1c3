// proxy/worker.h — what one worker thread owns, and what all workers share.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "admin/metrics.h"
#include "config/proxy_config.h"
#include "proxy/affinity.h"
#include "proxy/asio.h"
#include "proxy/buffer_pool.h"
#include "proxy/handshake.h"
#include "proxy/tls.h"
#include "proxy/topology_monitor.h"
#include "proxy/runtime_config.h"
#include "proxy/sessions.h"
#include "proxy/stream.h"
#include "proxy/upstream_pool.h"
#include "router/routing.h"
#include "router/store_registry.h"

namespace mongogate::proxy {

// Read by every worker; written rarely (handshakes, registry changes, shutdown).
class SharedState {
 public:
  explicit SharedState(const config::ProxyConfig& c);

  // As started: read restart-only settings (listen, pools, upstream URIs …) here.
  const config::ProxyConfig& config;
  // What a reload may replace (routing, registry, log settings …): read it through the
  // worker's RuntimeConfigReader, once per request.
  RuntimeConfigHolder runtime;
  // Distinct upstream deployments (names whose URIs are equal share one, e.g.
  // masteradmin falling back to MONGODB_URI). Index 0 is main.
  std::vector<const config::UpstreamConfig*> deployments;
  std::vector<std::unique_ptr<UpstreamLimitsStore>> limits;  // per deployment
  // Per deployment: its TLS client context, nullptr for plain TCP. Shared by every
  // worker (OpenSSL contexts are safe to share once set up).
  std::vector<std::unique_ptr<ssl::context>> tlsContexts;
  std::string startupError;  // a TLS context could not be made: the server must not start
  std::vector<std::unique_ptr<Topology>> topologies;         // per deployment
  // Monitors every topology on its own thread (Server::run starts and stops it).
  std::unique_ptr<TopologyService> topologyService;
  // Deployments with several servers: the server of a cursor, of a transaction.
  AffinityTable cursors;
  AffinityTable transactions;
  router::StoreRegistry registry;  // registry.loaded(): routing may start

  // Store assignment is rare (inserts into the registry collection) and must see every
  // earlier assignment of this process: one lock.
  std::mutex assignmentMutex;
  router::AssignmentState assignment;

  std::atomic<std::int64_t> nextConnectionId{1};
  std::atomic<std::int64_t> clientConnections{0};
  std::atomic<std::int64_t> requestsInFlight{0};
  // Multi-document transactions open through this process: the drain waits for them.
  OpenTransactions openTransactions;
  // Readiness is false for good (POST /v1/drain, SIGTERM); the proxy keeps serving.
  std::atomic<bool> draining{false};
  // Client side (SPEC §6): the compressors offered in hello, this process's serviceId
  // for load-balanced clients, the TLS context when clients must use TLS (set by the
  // Server before any worker starts), and the session table when there is more than
  // one deployment (with one, sessions pass through untouched).
  std::vector<wire::Compressor> compressors;
  bson_oid_t serviceId{};
  std::unique_ptr<ssl::context> clientTls;
  std::unique_ptr<SessionTable> sessions;
  // Per-worker metric shards (admin/metrics.h); request upstream labels are the
  // configured upstream names, pool labels the deployments' names.
  std::unique_ptr<admin::Metrics> metrics;

  // The deployment index of an upstream name; nullopt for an unknown name.
  std::optional<std::size_t> deploymentOf(std::string_view upstreamName) const;
  // The limits hello advertises: the weakest of every deployment that answered.
  UpstreamLimits advertisedLimits() const;

 private:
  std::vector<std::pair<std::string, std::size_t>> names_;
};

// What a request asks of its deployment's servers (proxy/topology.h).
struct ServerRequest {
  Selection selection;                       // default: the primary
  std::optional<std::size_t> pinnedServer;   // cursor or transaction affinity: this server
  std::chrono::steady_clock::time_point deadline{};  // selection + acquire; {} = serverSelectionTimeout
};

struct Acquired {
  AcquireResult result;          // result.server: the server's id
  UpstreamPool* pool = nullptr;  // give the connection back here (release / discard)
  bool primary = false;          // the server was the primary when selected
};

// Worker threads for a configuration: config.threads, or one per core.
std::size_t workerThreadCount(const config::ProxyConfig& config);

// One thread, one io_context, its own upstream pool shards and buffers: the data path
// of a client connection never crosses threads and takes no lock.
class Worker {
 public:
  // index: this worker's metrics shard (0..workerThreadCount-1). Each deployment's pool
  // size is for the whole process: each of the `threads` workers gets an equal share.
  Worker(SharedState& shared, std::size_t threads, std::size_t index = 0);
  ~Worker();

  void start();
  void stop() { ioc_->stop(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  asio::io_context& ioc() { return *ioc_; }
  // Selects a server of the deployment (waiting up to the deadline for one to be
  // suitable) and borrows a connection to it. Single-server deployments skip selection.
  awaitable<Acquired> acquire(std::size_t deployment, const ServerRequest& request);
  // acquire()'s common case without suspending (no coroutine frame, no wait): a server
  // is selectable now and its pool has an idle connection that needs no I/O to be
  // trusted (UpstreamPool::tryAcquireIdle). nullopt: call acquire().
  std::optional<Acquired> tryAcquireNow(std::size_t deployment, const ServerRequest& request);
  // The pool of the deployment's primary as last seen (its one server when Single; the
  // first seed while no primary is known), for work outside request routing.
  UpstreamPool& primaryPool(std::size_t deployment);
  UpstreamPool& mainPool() { return primaryPool(0); }
  // Pool counts of one deployment: summed over its servers, or of one server.
  PoolStats poolStats(std::size_t deployment) const;
  PoolStats poolStats(std::size_t deployment, std::size_t server) const;
  BufferPool& buffers() { return buffers_; }
  SharedState& shared() { return shared_; }
  router::RegistryReader& registry() { return registryReader_; }
  RuntimeConfigReader& runtime() { return runtimeReader_; }
  admin::MetricsShard& metrics() { return metrics_; }

 private:
  SharedState& shared_;
  BufferPool buffers_;
  std::unique_ptr<asio::io_context> ioc_;
  UpstreamPool& serverPool(std::size_t deployment, std::size_t server);

  std::vector<std::vector<std::unique_ptr<UpstreamPool>>> pools_;  // [deployment][server id], made on first use
  std::vector<TopologyReader> topologyReaders_;                     // per deployment
  router::RegistryReader registryReader_;
  RuntimeConfigReader runtimeReader_;
  admin::MetricsShard& metrics_;
  struct Shard {
    UpstreamConnectOptions connect;
    std::size_t maxSize;  // this worker's share, per server
    std::size_t minSize;
  };
  std::vector<Shard> shards_;  // per deployment
  bool started_ = false;
  std::uint64_t spin_ = 0;  // rotates among equally suitable servers
  std::thread thread_;
};

}  // namespace mongogate::proxy
