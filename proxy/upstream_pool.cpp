#include "proxy/upstream_pool.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>

#include "wire/builder.h"
#include "wire/op_msg.h"

namespace mongogate::proxy {

using namespace asio::experimental::awaitable_operators;
using Clock = std::chrono::steady_clock;

struct UpstreamPool::Waiter {
  explicit Waiter(asio::io_context& ioc) : timer(ioc) {}
  asio::steady_timer timer;
  std::unique_ptr<UpstreamConnection> connection;  // handed over by release()
  bool mayConnect = false;                         // a slot was freed by discard()
  bool served = false;
};

namespace {
std::atomic<std::int32_t> nextHandshakeRequestId{1};
}

UpstreamPool::UpstreamPool(asio::io_context& ioc, const config::UpstreamConfig& upstream,
                           const config::HostPort& server, const config::PoolConfig& settings, std::size_t maxSize,
                           std::int32_t maxMessageSize, BufferPool& buffers,
                           UpstreamLimitsStore& limits, CircuitBreaker* breaker, std::size_t serverId)
    : ioc_(ioc),
      upstream_(upstream),
      server_(server),
      settings_(settings),
      maxSize_(maxSize == 0 ? 1 : maxSize),
      maxMessageSize_(maxMessageSize),
      buffers_(buffers),
      limits_(limits),
      breaker_(breaker),
      serverId_(serverId) {}

bool UpstreamPool::stillUsable(UpstreamConnection& connection) const {
  if (!connection.stream.socket().is_open()) return false;
  const auto idleFor = Clock::now() - connection.idleSince;
  if (idleFor < std::chrono::milliseconds(settings_.idleCheckMs)) return true;
  // Long idle: the server may have closed it. A peek that finds EOF, an error or
  // unsolicited bytes means this connection cannot carry a request.
  std::uint8_t byte;
  ssize_t n = ::recv(connection.stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

awaitable<AcquireResult> UpstreamPool::acquire() {
  if (shuttingDown_) co_return AcquireResult{AcquireStatus::kShuttingDown, nullptr, "shutting down"};
  if (breaker_ && breaker_->state() == CircuitBreaker::State::kOpen) {
    co_return AcquireResult{AcquireStatus::kBreakerOpen, nullptr, "the server is failing (circuit breaker open)",
                            serverId_};
  }
  while (!idle_.empty()) {
    auto connection = std::move(idle_.back());
    idle_.pop_back();
    if (stillUsable(*connection)) co_return AcquireResult{AcquireStatus::kOk, std::move(connection), {}, serverId_};
    spdlog::debug("upstream {}: dropping a stale idle connection", upstream_.name);
    --total_;
  }
  if (total_ < maxSize_) {
    ++total_;
    co_return co_await connect();
  }
  Waiter waiter(ioc_);
  waiter.timer.expires_after(std::chrono::milliseconds(settings_.waitQueueTimeoutMs));
  waiters_.push_back(&waiter);
  co_await waiter.timer.async_wait(nothrow);
  if (!waiter.served) {
    std::erase(waiters_, &waiter);
    co_return AcquireResult{AcquireStatus::kTimeout, nullptr, {}};
  }
  if (waiter.connection) co_return AcquireResult{AcquireStatus::kOk, std::move(waiter.connection), {}, serverId_};
  co_return co_await connect();  // discard() gave this waiter the freed slot
}

void UpstreamPool::handOver(std::unique_ptr<UpstreamConnection> connection) {
  Waiter* waiter = waiters_.front();
  waiters_.pop_front();
  waiter->served = true;
  if (connection) {
    waiter->connection = std::move(connection);
  } else {
    waiter->mayConnect = true;
    ++total_;
  }
  waiter->timer.cancel();
}

void UpstreamPool::release(std::unique_ptr<UpstreamConnection> connection) {
  if (shuttingDown_) {
    --total_;
    return;
  }
  connection->idleSince = Clock::now();
  connection->reader.releaseIfIdle();
  if (!waiters_.empty()) {
    handOver(std::move(connection));
  } else {
    idle_.push_back(std::move(connection));
  }
}

void UpstreamPool::discard(std::unique_ptr<UpstreamConnection> connection) {
  connection->stream.close();
  connection.reset();
  --total_;
  if (!shuttingDown_ && !waiters_.empty()) handOver(nullptr);
}

void UpstreamPool::shutdown() {
  shuttingDown_ = true;
  total_ -= idle_.size();
  idle_.clear();
  while (!waiters_.empty()) {
    Waiter* waiter = waiters_.front();
    waiters_.pop_front();
    waiter->timer.cancel();  // wakes up unserved: reports a timeout
  }
}

awaitable<AcquireResult> UpstreamPool::connect() {
  if (breaker_ && breaker_->admit() == CircuitBreaker::Admission::kReject) {
    --total_;
    if (!waiters_.empty() && total_ < maxSize_) handOver(nullptr);
    co_return AcquireResult{AcquireStatus::kBreakerOpen, nullptr, "the server is failing (circuit breaker open)",
                            serverId_};
  }
  asio::steady_timer deadline(ioc_);
  deadline.expires_after(std::chrono::milliseconds(settings_.connectTimeoutMs));
  auto outcome = co_await (connectAndHandshake() || deadline.async_wait(nothrow));
  AcquireResult result;
  if (outcome.index() == 0) {
    result = std::move(std::get<0>(outcome));
  } else {
    result.status = AcquireStatus::kConnectFailed;
    result.error = "connect and handshake timed out after " +
                   std::to_string(settings_.connectTimeoutMs) + " ms";
  }
  result.server = serverId_;
  if (breaker_ && result.status == AcquireStatus::kOk && breaker_->onSuccess()) {
    spdlog::info("upstream {} ({}): circuit breaker closed: connected again", upstream_.name, server_.toString());
  }
  if (result.status != AcquireStatus::kOk) {
    --total_;
    spdlog::warn("upstream {} ({}): cannot open a connection: {}", upstream_.name,
                 server_.toString(), result.error);
    if (breaker_ && breaker_->onFailure()) {
      spdlog::warn("upstream {} ({}): circuit breaker open: failing fast until a probe connects", upstream_.name,
                   server_.toString());
    }
    // The slot this attempt held is free again: let a queued request try.
    if (!waiters_.empty() && total_ < maxSize_) handOver(nullptr);
  }
  co_return result;
}

awaitable<AcquireResult> UpstreamPool::connectAndHandshake() {
  AcquireResult result;
  result.status = AcquireStatus::kConnectFailed;
  const config::HostPort& host = server_;
  tcp::resolver resolver(ioc_);
  auto [resolveError, endpoints] =
      co_await resolver.async_resolve(host.host, std::to_string(host.port), nothrow);
  if (resolveError) {
    result.error = "cannot resolve the host: " + resolveError.message();
    co_return result;
  }
  auto connection = std::make_unique<UpstreamConnection>(ioc_.get_executor(), buffers_, maxMessageSize_);
  auto [connectError, endpoint] = co_await asio::async_connect(connection->stream.socket(), endpoints, nothrow);
  if (connectError) {
    result.error = "cannot connect: " + connectError.message();
    co_return result;
  }
  connection->stream.socket().set_option(tcp::no_delay(true));

  // mongogate's own hello: its metadata, never a client's.
  std::vector<std::uint8_t> body;
  std::vector<std::uint8_t> frame;
  appendUpstreamHello(body, upstream_.appName);
  wire::appendOpMsg(frame, nextHandshakeRequestId.fetch_add(1), 0, 0, body);
  auto [writeError, written] = co_await asio::async_write(connection->stream, asio::buffer(frame), nothrow);
  (void)written;
  if (writeError) {
    result.error = "handshake failed: " + writeError.message();
    co_return result;
  }
  ReadStatus status = co_await connection->reader.next(connection->stream);
  if (status != ReadStatus::kOk) {
    result.error = "handshake failed: no valid reply";
    co_return result;
  }
  auto reply = wire::parseOpMsg(connection->reader.frame());
  if (!reply.ok()) {
    result.error = "handshake failed: bad reply (" +
                   std::string(wire::describe(reply.error.status)) + ")";
    co_return result;
  }
  UpstreamLimits limits = limits_.get();
  if (!readUpstreamHelloReply(reply.value.body, limits, result.error)) co_return result;
  limits_.set(limits);
  result.status = AcquireStatus::kOk;
  result.connection = std::move(connection);
  co_return result;
}

}  // namespace mongogate::proxy
