// proxy/worker.h — what one worker thread owns, and what all workers share.
#pragma once

#include <atomic>
#include <memory>
#include <thread>

#include "config/proxy_config.h"
#include "proxy/asio.h"
#include "proxy/buffer_pool.h"
#include "proxy/handshake.h"
#include "proxy/upstream_pool.h"

namespace mongogate::proxy {

// Read by every worker; written rarely (handshakes, shutdown).
struct SharedState {
  explicit SharedState(const config::ProxyConfig& c)
      : config(c), limits(UpstreamLimits{.maxWireVersion = c.fallbackMaxWireVersion}) {}
  const config::ProxyConfig& config;
  UpstreamLimitsStore limits;
  std::atomic<std::int64_t> nextConnectionId{1};
  std::atomic<std::int64_t> clientConnections{0};
  std::atomic<std::int64_t> requestsInFlight{0};
};

// One thread, one io_context, its own upstream pool shard and buffers: the data path
// of a client connection never crosses threads and never takes a lock.
class Worker {
 public:
  Worker(SharedState& shared, std::size_t poolShardSize)
      : shared_(shared), ioc_(std::make_unique<asio::io_context>(1)) {
    pool_ = std::make_unique<UpstreamPool>(*ioc_, shared.config.main, shared.config.pool,
                                           poolShardSize, shared.config.maxMessageSize, buffers_,
                                           shared.limits);
  }
  ~Worker() {
    stop();
    join();
    // Coroutine frames still parked in the io_context give connections and buffers
    // back as they are destroyed: the pool and buffers must outlive the io_context.
    pool_->shutdown();
    ioc_.reset();
    pool_.reset();
  }

  void start() {
    thread_ = std::thread([this] {
      auto guard = asio::make_work_guard(*ioc_);
      ioc_->run();
    });
  }
  void stop() { ioc_->stop(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  asio::io_context& ioc() { return *ioc_; }
  UpstreamPool& pool() { return *pool_; }
  BufferPool& buffers() { return buffers_; }
  SharedState& shared() { return shared_; }

 private:
  SharedState& shared_;
  BufferPool buffers_;
  std::unique_ptr<asio::io_context> ioc_;
  std::unique_ptr<UpstreamPool> pool_;
  std::thread thread_;
};

}  // namespace mongogate::proxy
