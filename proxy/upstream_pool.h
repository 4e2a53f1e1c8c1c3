// proxy/upstream_pool.h — pooled connections to one upstream server, for one worker.
//
// Promise: request-level multiplexing. A request borrows a connection for its own
// request/reply exchange (or a whole exhaust stream) and gives it back. At most
// `maxSize` connections exist in this shard; a request that cannot get one within the
// wait-queue timeout gets kTimeout, never a hang. New connections are authenticated by
// a hello carrying mongogate's own metadata (never the client's), and each handshake
// refreshes the limits mongogate advertises.
//
// Single-threaded: each worker thread owns its own pool shard, so nothing here locks.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "config/proxy_config.h"
#include "proxy/asio.h"
#include "proxy/breaker.h"
#include "proxy/buffer_pool.h"
#include "proxy/frame_reader.h"
#include "proxy/handshake.h"
#include "proxy/stream.h"

namespace mongogate::proxy {

struct UpstreamConnection {
  UpstreamConnection(const asio::any_io_executor& executor, BufferPool& buffers,
                     std::int32_t maxMessageSize)
      : stream(executor), reader(buffers, maxMessageSize) {}
  Stream stream;
  FrameReader reader;
  std::chrono::steady_clock::time_point idleSince{};
};

// kBreakerOpen: the server's circuit breaker refused without trying (fail fast).
// kNoSuitableServer: no server of the deployment fits the request (Worker::acquire).
enum class AcquireStatus { kOk, kTimeout, kConnectFailed, kShuttingDown, kBreakerOpen, kNoSuitableServer };

struct AcquireResult {
  AcquireStatus status = AcquireStatus::kOk;
  std::unique_ptr<UpstreamConnection> connection;
  std::string error;  // why, for kConnectFailed: no host names, credentials or URI (clients see it)
  std::size_t server = 0;  // the server's id in its deployment's topology (proxy/topology_monitor.h)
};

struct PoolStats {
  std::size_t total = 0;    // open + connecting
  std::size_t idle = 0;
  std::size_t waiting = 0;  // requests in the wait queue
};

class UpstreamPool {
 public:
  // server: the one server (of `upstream`'s deployment) this pool connects to;
  // breaker: that server's circuit breaker (nullptr: none).
  UpstreamPool(asio::io_context& ioc, const config::UpstreamConfig& upstream, const config::HostPort& server,
               const config::PoolConfig& settings, std::size_t maxSize,
               std::int32_t maxMessageSize, BufferPool& buffers, UpstreamLimitsStore& limits,
               CircuitBreaker* breaker = nullptr, std::size_t serverId = 0);
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  awaitable<AcquireResult> acquire();
  // The exchange finished cleanly: the connection may serve another request.
  void release(std::unique_ptr<UpstreamConnection> connection);
  // The connection is in an unknown state (I/O error, half-read reply): close it.
  void discard(std::unique_ptr<UpstreamConnection> connection);
  // Closes idle connections and makes later releases close theirs.
  void shutdown();

  PoolStats stats() const { return {total_, idle_.size(), waiters_.size()}; }
  std::size_t serverId() const { return serverId_; }

 private:
  struct Waiter;
  awaitable<AcquireResult> connect();
  awaitable<AcquireResult> connectAndHandshake();
  void handOver(std::unique_ptr<UpstreamConnection> connection);
  bool stillUsable(UpstreamConnection& connection) const;

  asio::io_context& ioc_;
  const config::UpstreamConfig& upstream_;
  const config::HostPort server_;
  const config::PoolConfig& settings_;
  std::size_t maxSize_;
  std::int32_t maxMessageSize_;
  BufferPool& buffers_;
  UpstreamLimitsStore& limits_;
  CircuitBreaker* breaker_;
  std::size_t serverId_;
  std::size_t total_ = 0;
  bool shuttingDown_ = false;
  std::vector<std::unique_ptr<UpstreamConnection>> idle_;
  std::deque<Waiter*> waiters_;
};

}  // namespace mongogate::proxy
