// proxy/upstream_pool.h — pooled connections to one upstream server, for one worker.
// (Opening a connection — TCP, TLS, hello, authentication — is proxy/upstream_connect.h.)
//
// Promise: request-level multiplexing. A request borrows a connection for its own
// request/reply exchange (or a whole exhaust stream) and gives it back. At most
// `maxSize` connections exist in this shard; a request that cannot get one within the
// wait-queue timeout gets kTimeout, never a hang. New connections are authenticated by
// a hello carrying mongogate's own metadata (never the client's), and each handshake
// refreshes the limits mongogate advertises.
//
// Lifecycle (PoolConfig): `minSize` connections are opened in the background and kept;
// idle ones older than maxIdleTimeMs and any older than maxLifetimeMs are closed; at
// most maxConnecting connections are being opened at once (others queue); one idle
// longer than idleCheckMs is checked before reuse. After a failed connect no new one is
// tried until a backoff (doubling per failure, with jitter) has passed: a request whose
// wait would end before that gets the last failure's reason at once.
//
// Single-threaded: each worker thread owns its own pool shard, so nothing here locks.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "config/proxy_config.h"
#include "proxy/asio.h"
#include "proxy/breaker.h"
#include "proxy/handshake.h"
#include "proxy/upstream_connect.h"

namespace mongogate::proxy {

struct PoolStats {
  std::size_t total = 0;       // open + connecting
  std::size_t idle = 0;
  std::size_t waiting = 0;     // requests in the wait queue
  std::size_t connecting = 0;  // being opened now
};

// The reconnect backoff after `failures` consecutive failed connects (failures >= 1):
// initial * 2^(failures-1), capped at max, then scaled into [50%, 100%] by `random01`
// (0..1) so that workers and proxies do not retry in step.
std::chrono::milliseconds reconnectBackoff(std::uint32_t failures, std::uint32_t initialMs, std::uint32_t maxMs,
                                           double random01);

class UpstreamPool {
 public:
  // `server` is the one host this pool connects to; `connect` says how (TLS context,
  // credentials, timeout). maxSize and minSize are this shard's share of the upstream's.
  // `breaker`: the server's circuit breaker, shared by every worker (nullptr: none). While
  // it is open, acquire() fails at once with kBreakerOpen; every connect reports to it.
  UpstreamPool(asio::io_context& ioc, const UpstreamConnectOptions& connect, config::HostPort server,
               const config::PoolConfig& settings, std::size_t maxSize, UpstreamLimitsStore& limits,
               std::size_t minSize = 0, CircuitBreaker* breaker = nullptr);
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // Starts the background maintenance (min size, idle and lifetime pruning). Optional:
  // without it the pool still works, lazily.
  void start();

  awaitable<AcquireResult> acquire();
  // acquire()'s common case without suspending: an idle connection that needs no I/O to
  // be trusted. nullptr when acquire() has to decide (none idle, a TLS connection to check,
  // the breaker open, shutting down); stale idle connections met on the way are closed.
  std::unique_ptr<UpstreamConnection> tryAcquireIdle();
  // The exchange finished cleanly: the connection may serve another request.
  void release(std::unique_ptr<UpstreamConnection> connection);
  // The connection is in an unknown state (I/O error, half-read reply): close it.
  void discard(std::unique_ptr<UpstreamConnection> connection);
  // Closes idle connections and makes later releases close theirs.
  void shutdown();
  // Destroys the pool's own timers; call after shutdown(), before the io_context goes.
  void releaseIoObjects();
  // A connection outside the pool (not counted, never released into it): connected and
  // handshaken with the pool's settings but never authenticated as mongogate. Relay
  // authentication runs a client's SASL conversation on it, then closes it, since it is
  // then authenticated as that client's user.
  awaitable<AcquireResult> openDedicated();

  PoolStats stats() const { return {total_, idle_.size(), waiters_.size(), connecting_}; }
  const config::HostPort& server() const { return server_; }
  // The reason of the last failed connect ("" after a success).
  const std::string& lastError() const { return lastError_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Waiter;
  // Opens one connection in a slot already counted in total_ and connecting_.
  awaitable<AcquireResult> connect();
  awaitable<void> connectInBackground();
  awaitable<void> maintain();
  // Whether an idle connection can carry a request, decided without waiting; a TLS
  // connection that received bytes while idle needs a read through TLS (drainTls).
  enum class Usable { kYes, kNo, kCheckTls };
  Usable usableNow(UpstreamConnection& connection) const;
  awaitable<bool> drainTls(UpstreamConnection& connection);
  bool expired(const UpstreamConnection& connection, Clock::time_point now) const;
  void closeIdle(std::size_t index);
  void wakeOne();
  void wakeAll();

  asio::io_context& ioc_;
  UpstreamConnectOptions connect_;
  config::HostPort server_;
  const config::PoolConfig& settings_;
  std::size_t maxSize_;
  std::size_t minSize_;
  UpstreamLimitsStore& limits_;
  CircuitBreaker* breaker_;
  std::size_t total_ = 0;
  std::size_t connecting_ = 0;
  bool shuttingDown_ = false;
  std::vector<std::unique_ptr<UpstreamConnection>> idle_;  // back = most recently used
  std::deque<Waiter*> waiters_;
  // Reconnect backoff.
  std::uint32_t failures_ = 0;
  Clock::time_point backoffUntil_{};
  std::string lastError_;
  ConnectFailure lastFailure_ = ConnectFailure::kNone;
  std::minstd_rand random_;
  std::unique_ptr<asio::steady_timer> maintenanceTimer_;
};

}  // namespace mongogate::proxy
