#include "proxy/upstream_pool.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>

namespace mongogate::proxy {

using namespace asio::experimental::awaitable_operators;

namespace {
// How long a TLS idle check reads to consume post-handshake records already on the wire.
constexpr auto kTlsRecordDrainWait = std::chrono::milliseconds(20);
}  // namespace

struct UpstreamPool::Waiter {
  explicit Waiter(asio::io_context& ioc) : timer(ioc) {}
  asio::steady_timer timer;
  std::unique_ptr<UpstreamConnection> connection;  // handed over by release()
  bool served = false;                             // woken: take `connection`, or try again
};

std::chrono::milliseconds reconnectBackoff(std::uint32_t failures, std::uint32_t initialMs, std::uint32_t maxMs,
                                           double random01) {
  if (failures == 0 || maxMs == 0) return std::chrono::milliseconds(0);
  double delay = initialMs;
  for (std::uint32_t i = 1; i < failures && delay < maxMs; ++i) delay *= 2;
  delay = std::min<double>(delay, maxMs);
  random01 = std::clamp(random01, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<std::int64_t>(delay * (0.5 + 0.5 * random01)));
}

UpstreamPool::UpstreamPool(asio::io_context& ioc, const UpstreamConnectOptions& connect, config::HostPort server,
                           const config::PoolConfig& settings, std::size_t maxSize, UpstreamLimitsStore& limits,
                           std::size_t minSize, CircuitBreaker* breaker)
    : ioc_(ioc),
      connect_(connect),
      server_(std::move(server)),
      settings_(settings),
      maxSize_(maxSize == 0 ? 1 : maxSize),
      minSize_(std::min(minSize, maxSize_)),
      limits_(limits),
      breaker_(breaker),
      random_(static_cast<std::uint_fast32_t>(reinterpret_cast<std::uintptr_t>(this) ^
                                              static_cast<std::uintptr_t>(Clock::now().time_since_epoch().count()))) {}

bool UpstreamPool::expired(const UpstreamConnection& connection, Clock::time_point now) const {
  if (settings_.maxIdleTimeMs != 0 && now - connection.idleSince >= std::chrono::milliseconds(settings_.maxIdleTimeMs)) {
    return true;
  }
  return settings_.maxLifetimeMs != 0 &&
         now - connection.createdAt >= std::chrono::milliseconds(settings_.maxLifetimeMs);
}

UpstreamPool::Usable UpstreamPool::usableNow(UpstreamConnection& connection) const {
  if (!connection.stream.socket().is_open()) return Usable::kNo;
  const auto now = Clock::now();
  if (expired(connection, now)) return Usable::kNo;
  if (now - connection.idleSince < std::chrono::milliseconds(settings_.idleCheckMs)) return Usable::kYes;
  // Long idle: the server may have closed it. A peek that finds EOF or an error means it
  // cannot carry a request; nothing pending means it can.
  std::uint8_t byte;
  const ssize_t n = ::recv(connection.stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Usable::kYes;
  if (n <= 0) return Usable::kNo;
  // Bytes nobody asked for. On plain TCP that is a stray reply: the connection is out of
  // step. Under TLS they may be records the server sends after the handshake (TLS 1.3
  // session tickets, key updates) that carry no data: drainTls reads them.
  return connection.stream.tls() ? Usable::kCheckTls : Usable::kNo;
}

// Application data means out of step; a read that finds none leaves it usable.
awaitable<bool> UpstreamPool::drainTls(UpstreamConnection& connection) {
  std::array<std::uint8_t, 64> scratch;
  asio::steady_timer deadline(ioc_);
  deadline.expires_after(kTlsRecordDrainWait);
  auto outcome = co_await (connection.stream.async_read_some(asio::buffer(scratch), nothrow) ||
                           deadline.async_wait(nothrow));
  if (outcome.index() == 1) co_return true;  // only non-data records were pending
  spdlog::debug("upstream {}: an idle TLS connection received data or was closed", connect_.upstream->name);
  co_return false;
}

std::unique_ptr<UpstreamConnection> UpstreamPool::tryAcquireIdle() {
  if (shuttingDown_ || (breaker_ && breaker_->state() == CircuitBreaker::State::kOpen)) return nullptr;
  while (!idle_.empty()) {
    UpstreamConnection& connection = *idle_.back();
    switch (usableNow(connection)) {
      case Usable::kYes: {
        auto usable = std::move(idle_.back());
        idle_.pop_back();
        return usable;
      }
      case Usable::kCheckTls:
        return nullptr;  // acquire() reads through TLS
      case Usable::kNo:
        spdlog::debug("upstream {}: closing a stale, expired or out-of-step idle connection", connect_.upstream->name);
        connection.stream.close();
        idle_.pop_back();
        --total_;
        break;
    }
  }
  return nullptr;
}

void UpstreamPool::start() {
  if (maintenanceTimer_) return;
  maintenanceTimer_ = std::make_unique<asio::steady_timer>(ioc_);
  asio::co_spawn(ioc_, maintain(), asio::detached);
}

awaitable<void> UpstreamPool::maintain() {
  while (!shuttingDown_) {
    const auto now = Clock::now();
    // Oldest first (front): idle too long or too old.
    for (std::size_t i = 0; i < idle_.size();) {
      if (expired(*idle_[i], now)) {
        closeIdle(i);
      } else {
        ++i;
      }
    }
    // Top up to the minimum, within the connect limit and outside a backoff.
    while (total_ < minSize_ && connecting_ < settings_.maxConnecting && Clock::now() >= backoffUntil_) {
      ++total_;
      ++connecting_;
      asio::co_spawn(ioc_, connectInBackground(), asio::detached);
    }
    maintenanceTimer_->expires_after(std::chrono::milliseconds(std::max<std::uint32_t>(settings_.maintenanceIntervalMs, 1)));
    co_await maintenanceTimer_->async_wait(nothrow);
  }
}

void UpstreamPool::closeIdle(std::size_t index) {
  idle_[index]->stream.close();
  idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(index));
  --total_;
  wakeOne();  // a slot is free: a queued request may open a connection
}

awaitable<void> UpstreamPool::connectInBackground() {
  AcquireResult result = co_await connect();
  if (result.status == AcquireStatus::kOk) release(std::move(result.connection));
}

awaitable<AcquireResult> UpstreamPool::acquire() {
  const auto deadline = Clock::now() + std::chrono::milliseconds(settings_.waitQueueTimeoutMs);
  for (;;) {
    if (shuttingDown_) co_return AcquireResult{AcquireStatus::kShuttingDown, nullptr, "shutting down"};
    if (breaker_ && breaker_->state() == CircuitBreaker::State::kOpen) {
      co_return AcquireResult{AcquireStatus::kBreakerOpen, nullptr, "the server is failing (circuit breaker open)"};
    }
    while (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      const Usable usable = usableNow(*connection);
      if (usable == Usable::kYes || (usable == Usable::kCheckTls && co_await drainTls(*connection))) {
        co_return AcquireResult{AcquireStatus::kOk, std::move(connection), {}};
      }
      spdlog::debug("upstream {}: closing a stale, expired or out-of-step idle connection", connect_.upstream->name);
      connection->stream.close();
      --total_;
    }
    auto now = Clock::now();
    if (total_ < maxSize_ && connecting_ < settings_.maxConnecting) {
      if (now < backoffUntil_) {
        if (backoffUntil_ >= deadline) {
          AcquireResult result{AcquireStatus::kConnectFailed, nullptr, lastError_};
          result.failure = lastFailure_;
          co_return result;
        }
        asio::steady_timer pause(ioc_);
        pause.expires_at(backoffUntil_);
        co_await pause.async_wait(nothrow);
        continue;
      }
      ++total_;
      ++connecting_;
      co_return co_await connect();
    }
    if (now >= deadline) co_return AcquireResult{AcquireStatus::kTimeout, nullptr, {}};
    Waiter waiter(ioc_);
    waiter.timer.expires_at(deadline);
    waiters_.push_back(&waiter);
    co_await waiter.timer.async_wait(nothrow);
    if (!waiter.served) {
      std::erase(waiters_, &waiter);
      co_return AcquireResult{AcquireStatus::kTimeout, nullptr, {}};
    }
    if (waiter.connection) co_return AcquireResult{AcquireStatus::kOk, std::move(waiter.connection), {}};
    // Woken to try again: a slot or a connect permit was freed, or a connect failed.
  }
}

void UpstreamPool::wakeOne() {
  if (waiters_.empty()) return;
  Waiter* waiter = waiters_.front();
  waiters_.pop_front();
  waiter->served = true;
  waiter->timer.cancel();
}

void UpstreamPool::wakeAll() {
  while (!waiters_.empty()) wakeOne();
}

void UpstreamPool::release(std::unique_ptr<UpstreamConnection> connection) {
  if (shuttingDown_) {
    --total_;
    return;
  }
  const auto now = Clock::now();
  connection->idleSince = now;
  connection->reader.releaseIfIdle();
  if (settings_.maxLifetimeMs != 0 &&
      now - connection->createdAt >= std::chrono::milliseconds(settings_.maxLifetimeMs)) {
    discard(std::move(connection));
    return;
  }
  if (!waiters_.empty()) {
    Waiter* waiter = waiters_.front();
    waiters_.pop_front();
    waiter->served = true;
    waiter->connection = std::move(connection);
    waiter->timer.cancel();
  } else {
    idle_.push_back(std::move(connection));
  }
}

void UpstreamPool::discard(std::unique_ptr<UpstreamConnection> connection) {
  connection->stream.close();
  connection.reset();
  --total_;
  if (!shuttingDown_) wakeOne();
}

void UpstreamPool::shutdown() {
  shuttingDown_ = true;
  total_ -= idle_.size();
  idle_.clear();
  if (maintenanceTimer_) maintenanceTimer_->cancel();
  wakeAll();  // each sees shuttingDown_ and reports it
}

void UpstreamPool::releaseIoObjects() {
  // The timer's service lives in the io_context: it must go first. Its pending wait is
  // cancelled; the maintenance coroutine's frame is destroyed with the io_context.
  maintenanceTimer_.reset();
}

awaitable<AcquireResult> UpstreamPool::connect() {
  if (breaker_ && breaker_->admit() == CircuitBreaker::Admission::kReject) {
    --connecting_;
    --total_;
    wakeOne();
    co_return AcquireResult{AcquireStatus::kBreakerOpen, nullptr, "the server is failing (circuit breaker open)"};
  }
  UpstreamLimits learned = limits_.get();
  AcquireResult result = co_await openUpstreamConnection(ioc_, connect_, server_, learned);
  --connecting_;
  if (breaker_ && result.status == AcquireStatus::kOk && breaker_->onSuccess()) {
    spdlog::info("upstream {} ({}): circuit breaker closed: connected again", connect_.upstream->name,
                 server_.toString());
  }
  if (breaker_ && result.status != AcquireStatus::kOk && breaker_->onFailure()) {
    spdlog::warn("upstream {} ({}): circuit breaker open: failing fast until a probe connects",
                 connect_.upstream->name, server_.toString());
  }
  if (result.status == AcquireStatus::kOk) {
    limits_.set(learned);
    failures_ = 0;
    backoffUntil_ = {};
    lastError_.clear();
    lastFailure_ = ConnectFailure::kNone;
    wakeOne();  // a connect permit is free again
    co_return result;
  }
  --total_;
  ++failures_;
  const auto backoff = reconnectBackoff(failures_, settings_.backoffInitialMs, settings_.backoffMaxMs,
                                        std::uniform_real_distribution<double>(0.0, 1.0)(random_));
  backoffUntil_ = Clock::now() + backoff;
  lastError_ = result.error;
  lastFailure_ = result.failure;
  spdlog::warn("upstream {} ({}): cannot open a connection: {} (next attempt in {} ms at the earliest)",
               connect_.upstream->name, server_.toString(), result.error, backoff.count());
  // Queued requests learn the reason now instead of timing out, unless the backoff ends
  // before their wait does.
  wakeAll();
  co_return result;
}

awaitable<AcquireResult> UpstreamPool::openDedicated() {
  UpstreamConnectOptions unauthenticated = connect_;
  unauthenticated.authenticate = false;
  UpstreamLimits learned = limits_.get();
  co_return co_await openUpstreamConnection(ioc_, unauthenticated, server_, learned);
}

}  // namespace mongogate::proxy
