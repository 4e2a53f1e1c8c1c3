// UpstreamPool: request-level multiplexing with a bounded size and a wait queue that
// never hangs. Driven against a tiny in-process upstream that answers hello.
#include <bson/bson.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>

#include "proxy/tls.h"
#include "proxy/upstream_pool.h"
#include "wire/builder.h"

namespace mongogate::proxy {
namespace {

std::vector<std::uint8_t> helloReply(std::int32_t responseTo) {
  bson_t reply = BSON_INITIALIZER;
  BSON_APPEND_BOOL(&reply, "isWritablePrimary", true);
  BSON_APPEND_INT32(&reply, "maxWireVersion", 13);
  BSON_APPEND_INT32(&reply, "minWireVersion", 0);
  BSON_APPEND_DOUBLE(&reply, "ok", 1.0);
  std::vector<std::uint8_t> frame;
  wire::appendOpMsg(frame, 1, responseTo, 0, {bson_get_data(&reply), reply.len});
  bson_destroy(&reply);
  return frame;
}

// Accepts connections and answers every OP_MSG with a hello reply (maxWireVersion 13).
class FakeUpstream {
 public:
  explicit FakeUpstream(asio::io_context& ioc) : ioc_(ioc), acceptor_(ioc, {asio::ip::make_address("127.0.0.1"), 0}) {
    asio::co_spawn(ioc_, acceptLoop(), asio::detached);
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int accepted = 0;
  std::chrono::milliseconds replyDelay{0};  // before each reply: a slow handshake
  // Closes every connection accepted so far (the server "restarts").
  void closeAll() {
    for (auto& s : sockets_) {
      error_code ignored;
      s->close(ignored);
    }
  }

 private:
  awaitable<void> acceptLoop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(nothrow);
      if (ec) co_return;
      ++accepted;
      sockets_.push_back(std::make_shared<tcp::socket>(std::move(socket)));
      asio::co_spawn(ioc_, serve(sockets_.back()), asio::detached);
    }
  }
  awaitable<void> serve(std::shared_ptr<tcp::socket> socket) {
    // The frame owns its buffers: it may outlive this object until the io_context goes.
    BufferPool buffers;
    FrameReader reader(buffers, wire::kDefaultMaxMessageSize);
    for (;;) {
      if (co_await reader.next(*socket) != ReadStatus::kOk) co_return;
      if (replyDelay.count() > 0) {
        asio::steady_timer pause(ioc_, replyDelay);
        co_await pause.async_wait(nothrow);
      }
      const std::vector<std::uint8_t> frame = helloReply(reader.header().requestId);
      auto [ec, n] = co_await asio::async_write(*socket, asio::buffer(frame), nothrow);
      if (ec) co_return;
    }
  }
  asio::io_context& ioc_;
  tcp::acceptor acceptor_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
};

class UpstreamPoolTest : public testing::Test {
 protected:
  void makePool(std::size_t maxSize, std::uint16_t port, std::size_t minSize = 0) {
    upstream_.name = "main";
    upstream_.hosts = {{"127.0.0.1", port}};
    settings_.waitQueueTimeoutMs = 100;
    if (settings_.connectTimeoutMs == config::PoolConfig{}.connectTimeoutMs) settings_.connectTimeoutMs = 2000;
    UpstreamConnectOptions connect;
    connect.upstream = &upstream_;
    connect.buffers = &buffers_;
    connect.maxMessageSize = wire::kDefaultMaxMessageSize;
    connect.timeout = std::chrono::milliseconds(settings_.connectTimeoutMs);
    pool_ = std::make_unique<UpstreamPool>(ioc_, connect, upstream_.hosts.front(), settings_, maxSize, limits_,
                                           minSize, breaker_ ? &*breaker_ : nullptr);
  }
  awaitable<void> sleep(int ms) {
    asio::steady_timer t(ioc_, std::chrono::milliseconds(ms));
    co_await t.async_wait(nothrow);
  }
  // Runs `body` as a coroutine to completion (bounded in time).
  template <class F>
  void run(F body) {
    bool done = false;
    asio::co_spawn(ioc_, [&]() -> awaitable<void> {
      co_await body();
      done = true;
      ioc_.stop();
    }, asio::detached);
    ioc_.run_for(std::chrono::seconds(10));
    ASSERT_TRUE(done) << "the scenario did not finish";
  }

  // Declared before the io_context: coroutine frames destroyed with it give buffers back.
  BufferPool buffers_;
  asio::io_context ioc_;
  UpstreamLimitsStore limits_{UpstreamLimits{}};
  config::UpstreamConfig upstream_;
  config::PoolConfig settings_;
  std::optional<CircuitBreaker> breaker_;
  std::unique_ptr<UpstreamPool> pool_;
};

TEST_F(UpstreamPoolTest, ConnectsAndLearnsTheUpstreamLimits) {
  FakeUpstream server(ioc_);
  makePool(2, server.port());
  run([&]() -> awaitable<void> {
    AcquireResult r = co_await pool_->acquire();
    EXPECT_EQ(r.status, AcquireStatus::kOk) << r.error;
    EXPECT_TRUE(limits_.get().learned);
    EXPECT_EQ(limits_.get().maxWireVersion, 13);
    pool_->release(std::move(r.connection));
    EXPECT_EQ(pool_->stats().idle, 1u);
    // The idle connection is reused: no second connect.
    AcquireResult again = co_await pool_->acquire();
    EXPECT_EQ(again.status, AcquireStatus::kOk);
    EXPECT_EQ(server.accepted, 1);
    pool_->release(std::move(again.connection));
  });
}

TEST_F(UpstreamPoolTest, FullPoolTimesOutInsteadOfHanging) {
  FakeUpstream server(ioc_);
  makePool(1, server.port());
  run([&]() -> awaitable<void> {
    AcquireResult held = co_await pool_->acquire();
    EXPECT_EQ(held.status, AcquireStatus::kOk);
    const auto start = std::chrono::steady_clock::now();
    AcquireResult second = co_await pool_->acquire();
    EXPECT_EQ(second.status, AcquireStatus::kTimeout);
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(100));
    EXPECT_EQ(pool_->stats().waiting, 0u);
    EXPECT_EQ(pool_->stats().total, 1u);
    pool_->release(std::move(held.connection));
  });
}

TEST_F(UpstreamPoolTest, ReleasedConnectionGoesToTheWaiter) {
  FakeUpstream server(ioc_);
  makePool(1, server.port());
  settings_.waitQueueTimeoutMs = 5000;
  std::optional<AcquireStatus> waiterStatus;
  run([&]() -> awaitable<void> {
    AcquireResult held = co_await pool_->acquire();
    UpstreamConnection* first = held.connection.get();
    asio::co_spawn(ioc_, [&]() -> awaitable<void> {
      AcquireResult r = co_await pool_->acquire();
      waiterStatus = r.status;
      EXPECT_EQ(r.connection.get(), first);
      pool_->release(std::move(r.connection));
    }, asio::detached);
    asio::steady_timer t(ioc_, std::chrono::milliseconds(20));
    co_await t.async_wait(nothrow);
    EXPECT_EQ(pool_->stats().waiting, 1u);
    pool_->release(std::move(held.connection));
    t.expires_after(std::chrono::milliseconds(20));
    co_await t.async_wait(nothrow);
  });
  ASSERT_TRUE(waiterStatus.has_value());
  EXPECT_EQ(*waiterStatus, AcquireStatus::kOk);
  EXPECT_EQ(server.accepted, 1);
}

TEST_F(UpstreamPoolTest, DiscardFreesASlotForTheWaiter) {
  FakeUpstream server(ioc_);
  makePool(1, server.port());
  settings_.waitQueueTimeoutMs = 5000;
  std::optional<AcquireStatus> waiterStatus;
  run([&]() -> awaitable<void> {
    AcquireResult held = co_await pool_->acquire();
    asio::co_spawn(ioc_, [&]() -> awaitable<void> {
      AcquireResult r = co_await pool_->acquire();
      waiterStatus = r.status;
      if (r.connection) pool_->release(std::move(r.connection));
    }, asio::detached);
    asio::steady_timer t(ioc_, std::chrono::milliseconds(20));
    co_await t.async_wait(nothrow);
    pool_->discard(std::move(held.connection));
    t.expires_after(std::chrono::milliseconds(200));
    co_await t.async_wait(nothrow);
  });
  ASSERT_TRUE(waiterStatus.has_value());
  EXPECT_EQ(*waiterStatus, AcquireStatus::kOk);
  EXPECT_EQ(server.accepted, 2);
  EXPECT_EQ(pool_->stats().total, 1u);
}

TEST_F(UpstreamPoolTest, UnreachableUpstreamFailsWithAReason) {
  std::uint16_t closedPort;
  {
    tcp::acceptor probe(ioc_, {asio::ip::make_address("127.0.0.1"), 0});
    closedPort = probe.local_endpoint().port();
  }
  makePool(1, closedPort);
  run([&]() -> awaitable<void> {
    AcquireResult r = co_await pool_->acquire();
    EXPECT_EQ(r.status, AcquireStatus::kConnectFailed);
    EXPECT_NE(r.error.find("cannot connect"), std::string::npos) << r.error;
    // Clients see this text: it must not reveal where the upstream is.
    EXPECT_EQ(r.error.find("127.0.0.1"), std::string::npos) << r.error;
    EXPECT_EQ(r.error.find(std::to_string(closedPort)), std::string::npos) << r.error;
    EXPECT_EQ(pool_->stats().total, 0u);
  });
}

TEST_F(UpstreamPoolTest, BreakerOpensAfterConsecutiveFailuresAndFailsFast) {
  std::uint16_t closedPort;
  {
    tcp::acceptor probe(ioc_, {asio::ip::make_address("127.0.0.1"), 0});
    closedPort = probe.local_endpoint().port();
  }
  breaker_.emplace(2, 60'000);
  settings_.backoffInitialMs = 0;  // every acquire tries to connect
  settings_.backoffMaxMs = 0;
  makePool(4, closedPort);
  run([&]() -> awaitable<void> {
    EXPECT_EQ((co_await pool_->acquire()).status, AcquireStatus::kConnectFailed);
    EXPECT_EQ(breaker_->state(), CircuitBreaker::State::kClosed);
    EXPECT_EQ((co_await pool_->acquire()).status, AcquireStatus::kConnectFailed);
    EXPECT_EQ(breaker_->state(), CircuitBreaker::State::kOpen);
    const auto started = std::chrono::steady_clock::now();
    AcquireResult r = co_await pool_->acquire();
    EXPECT_EQ(r.status, AcquireStatus::kBreakerOpen);
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(50));
    EXPECT_EQ(r.error.find("127.0.0.1"), std::string::npos) << r.error;
    EXPECT_EQ(pool_->stats().total, 0u);
  });
}

TEST_F(UpstreamPoolTest, HalfOpenBreakerClosesWhenTheProbeConnects) {
  FakeUpstream server(ioc_);
  breaker_.emplace(1, 1);
  breaker_->onFailure();  // opened; the 1 ms cool-down passes at once
  makePool(2, server.port());
  run([&]() -> awaitable<void> {
    asio::steady_timer pause(ioc_, std::chrono::milliseconds(5));
    co_await pause.async_wait(nothrow);
    EXPECT_EQ(breaker_->state(), CircuitBreaker::State::kHalfOpen);
    AcquireResult r = co_await pool_->acquire();
    EXPECT_EQ(r.status, AcquireStatus::kOk);
    EXPECT_EQ(breaker_->state(), CircuitBreaker::State::kClosed);
    if (r.connection) pool_->release(std::move(r.connection));
  });
}

TEST_F(UpstreamPoolTest, StaleIdleConnectionIsReplaced) {
  FakeUpstream server(ioc_);
  settings_.idleCheckMs = 0;
  makePool(1, server.port());
  run([&]() -> awaitable<void> {
    AcquireResult r = co_await pool_->acquire();
    pool_->release(std::move(r.connection));
    server.closeAll();
    asio::steady_timer t(ioc_, std::chrono::milliseconds(20));
    co_await t.async_wait(nothrow);
    AcquireResult again = co_await pool_->acquire();
    EXPECT_EQ(again.status, AcquireStatus::kOk);
    EXPECT_EQ(server.accepted, 2);
    pool_->release(std::move(again.connection));
  });
}


TEST_F(UpstreamPoolTest, MinSizeIsOpenedInTheBackground) {
  FakeUpstream server(ioc_);
  settings_.maintenanceIntervalMs = 10;
  makePool(4, server.port(), 2);
  pool_->start();
  run([&]() -> awaitable<void> {
    co_await sleep(300);
    EXPECT_EQ(server.accepted, 2);
    EXPECT_EQ(pool_->stats().total, 2u);
    EXPECT_EQ(pool_->stats().idle, 2u);
    // A request takes a ready connection: no new connect.
    AcquireResult r = co_await pool_->acquire();
    EXPECT_EQ(r.status, AcquireStatus::kOk);
    EXPECT_EQ(server.accepted, 2);
    pool_->release(std::move(r.connection));
    pool_->shutdown();
  });
}

TEST_F(UpstreamPoolTest, IdleConnectionsOlderThanMaxIdleTimeAreClosed) {
  FakeUpstream server(ioc_);
  settings_.maintenanceIntervalMs = 10;
  settings_.maxIdleTimeMs = 50;
  makePool(2, server.port());
  pool_->start();
  run([&]() -> awaitable<void> {
    AcquireResult r = co_await pool_->acquire();
    pool_->release(std::move(r.connection));
    EXPECT_EQ(pool_->stats().idle, 1u);
    co_await sleep(200);
    EXPECT_EQ(pool_->stats().total, 0u);
    EXPECT_EQ(pool_->stats().idle, 0u);
    pool_->shutdown();
  });
}

TEST_F(UpstreamPoolTest, ConnectionsOlderThanMaxLifetimeAreReplaced) {
  FakeUpstream server(ioc_);
  settings_.maxLifetimeMs = 50;
  makePool(1, server.port());
  run([&]() -> awaitable<void> {
    AcquireResult r = co_await pool_->acquire();
    pool_->release(std::move(r.connection));
    AcquireResult young = co_await pool_->acquire();  // still young: reused
    EXPECT_EQ(server.accepted, 1);
    co_await sleep(80);
    pool_->release(std::move(young.connection));  // too old: closed on return
    EXPECT_EQ(pool_->stats().total, 0u);
    AcquireResult fresh = co_await pool_->acquire();
    EXPECT_EQ(fresh.status, AcquireStatus::kOk);
    EXPECT_EQ(server.accepted, 2);
    pool_->release(std::move(fresh.connection));
  });
}

TEST_F(UpstreamPoolTest, AtMostMaxConnectingConnectsAtOnceTheRestQueue) {
  FakeUpstream server(ioc_);
  server.replyDelay = std::chrono::milliseconds(100);
  settings_.maxConnecting = 1;
  makePool(4, server.port());
  settings_.waitQueueTimeoutMs = 5000;
  int ok = 0;
  std::size_t peakConnecting = 0;
  run([&]() -> awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      asio::co_spawn(ioc_, [&]() -> awaitable<void> {
        AcquireResult r = co_await pool_->acquire();
        EXPECT_EQ(r.status, AcquireStatus::kOk) << r.error;
        if (r.status != AcquireStatus::kOk) co_return;
        ++ok;
        co_await sleep(400);  // hold it: each request needs its own connection
        pool_->release(std::move(r.connection));
      }, asio::detached);
    }
    for (int i = 0; i < 40; ++i) {
      co_await sleep(10);
      peakConnecting = std::max(peakConnecting, pool_->stats().connecting);
      if (i == 5) {
        EXPECT_EQ(pool_->stats().waiting, 2u) << "the others wait for the connect permit";
      }
    }
    co_await sleep(300);
  });
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(peakConnecting, 1u);
  EXPECT_EQ(server.accepted, 3);
}

TEST_F(UpstreamPoolTest, AfterAFailedConnectRequestsGetTheReasonAtOnceDuringTheBackoff) {
  std::uint16_t closedPort;
  {
    tcp::acceptor probe(ioc_, {asio::ip::make_address("127.0.0.1"), 0});
    closedPort = probe.local_endpoint().port();
  }
  settings_.backoffInitialMs = 2000;
  settings_.backoffMaxMs = 2000;
  makePool(1, closedPort);
  run([&]() -> awaitable<void> {
    AcquireResult first = co_await pool_->acquire();
    EXPECT_EQ(first.status, AcquireStatus::kConnectFailed);
    EXPECT_EQ(first.failure, ConnectFailure::kConnect);
    const auto start = std::chrono::steady_clock::now();
    AcquireResult second = co_await pool_->acquire();  // wait queue 100 ms < backoff >= 1 s
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
    EXPECT_EQ(second.status, AcquireStatus::kConnectFailed);
    EXPECT_EQ(second.error, first.error);
    EXPECT_EQ(pool_->lastError(), first.error);
  });
}

TEST_F(UpstreamPoolTest, ARequestOutlastingTheBackoffTriesAgain) {
  FakeUpstream server(ioc_);
  settings_.backoffInitialMs = 40;
  settings_.backoffMaxMs = 40;
  settings_.connectTimeoutMs = 50;
  server.replyDelay = std::chrono::milliseconds(200);  // the first handshake times out
  makePool(1, server.port());
  settings_.waitQueueTimeoutMs = 1000;
  run([&]() -> awaitable<void> {
    AcquireResult first = co_await pool_->acquire();
    EXPECT_EQ(first.status, AcquireStatus::kConnectFailed);
    EXPECT_EQ(first.failure, ConnectFailure::kTimeout);
    server.replyDelay = std::chrono::milliseconds(0);
    AcquireResult second = co_await pool_->acquire();  // waits out the backoff, then connects
    EXPECT_EQ(second.status, AcquireStatus::kOk) << second.error;
    EXPECT_EQ(server.accepted, 2);
    if (second.connection) pool_->release(std::move(second.connection));
  });
}

// A TLS 1.3 upstream that, after each reply, sends one more session ticket: bytes that
// arrive on an idle connection but carry no data.
class LateTicketTlsUpstream {
 public:
  LateTicketTlsUpstream(asio::io_context& ioc, const std::string& certificate, const std::string& key)
      : ioc_(ioc), context_(ssl::context::tls_server), acceptor_(ioc, {asio::ip::make_address("127.0.0.1"), 0}) {
    context_.use_certificate_chain_file(certificate);
    context_.use_private_key_file(key, ssl::context::pem);
    asio::co_spawn(ioc_, acceptLoop(), asio::detached);
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int accepted = 0;
  int lateTickets = 0;

 private:
  awaitable<void> acceptLoop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(nothrow);
      if (ec) co_return;
      ++accepted;
      asio::co_spawn(ioc_, serve(std::make_shared<ssl::stream<tcp::socket>>(std::move(socket), context_)),
                     asio::detached);
    }
  }
  awaitable<void> serve(std::shared_ptr<ssl::stream<tcp::socket>> stream) {
    auto [handshakeError] = co_await stream->async_handshake(ssl::stream_base::server, nothrow);
    if (handshakeError) co_return;
    BufferPool buffers;
    FrameReader reader(buffers, wire::kDefaultMaxMessageSize);
    for (;;) {
      if (co_await reader.next(*stream) != ReadStatus::kOk) co_return;
      const std::vector<std::uint8_t> frame = helloReply(reader.header().requestId);
      auto [ec, n] = co_await asio::async_write(*stream, asio::buffer(frame), nothrow);
      if (ec) co_return;
      // OpenSSL sends a requested ticket on the next handshake call.
      if (SSL_new_session_ticket(stream->native_handle()) == 1) {
        auto [ticketError] = co_await stream->async_handshake(ssl::stream_base::server, nothrow);
        if (!ticketError) ++lateTickets;
      }
    }
  }
  asio::io_context& ioc_;
  ssl::context context_;
  tcp::acceptor acceptor_;
};

TEST_F(UpstreamPoolTest, TlsRecordsWithoutDataDoNotMakeAnIdleConnectionStale) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("mongogate-pool-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string cert = (dir / "cert.pem").string();
  const std::string key = (dir / "key.pem").string();
  const std::string command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
                              "-addext subjectAltName=IP:127.0.0.1 -keyout " + key + " -out " + cert +
                              " >/dev/null 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << "openssl CLI";
  LateTicketTlsUpstream server(ioc_, cert, key);
  upstream_.tls.enabled = true;
  upstream_.tls.caFile = cert;
  std::string error;
  auto context = makeUpstreamTlsContext(upstream_.tls, error);
  ASSERT_TRUE(context) << error;
  settings_.idleCheckMs = 0;  // check on every reuse
  upstream_.name = "main";
  upstream_.hosts = {{"127.0.0.1", server.port()}};
  UpstreamConnectOptions connect;
  connect.upstream = &upstream_;
  connect.tls = context.get();
  connect.buffers = &buffers_;
  pool_ = std::make_unique<UpstreamPool>(ioc_, connect, upstream_.hosts.front(), settings_, 1, limits_);
  run([&]() -> awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      AcquireResult r = co_await pool_->acquire();
      EXPECT_EQ(r.status, AcquireStatus::kOk) << r.error;
      if (!r.connection) co_return;
      EXPECT_TRUE(r.connection->stream.tls());
      // A real exchange on the reused connection: it is in step.
      std::vector<std::uint8_t> hello;
      appendUpstreamHello(hello, "");
      wire::Bytes reply;
      EXPECT_EQ(co_await runUpstreamCommand(*r.connection, hello, reply), "");
      pool_->release(std::move(r.connection));
      co_await sleep(50);  // the late ticket is on the wire before the next reuse
    }
  });
  EXPECT_GE(server.lateTickets, 2) << "the server did send tickets after replies";
  EXPECT_EQ(server.accepted, 1) << "the idle connection was kept despite the ticket bytes";
  std::filesystem::remove_all(dir);
}

// The request path's fast path: an idle connection that needs no I/O to be trusted is
// handed out without a coroutine; anything else is left to acquire().
TEST_F(UpstreamPoolTest, TryAcquireIdleTakesOnlyATrustedIdleConnection) {
  FakeUpstream server(ioc_);
  settings_.idleCheckMs = 0;  // every reuse peeks at the socket
  makePool(2, server.port());
  run([&]() -> awaitable<void> {
    EXPECT_EQ(pool_->tryAcquireIdle(), nullptr) << "nothing idle: acquire() must connect";
    EXPECT_EQ(server.accepted, 0);
    AcquireResult r = co_await pool_->acquire();
    EXPECT_EQ(r.status, AcquireStatus::kOk) << r.error;
    pool_->release(std::move(r.connection));
    std::unique_ptr<UpstreamConnection> idle = pool_->tryAcquireIdle();
    EXPECT_NE(idle, nullptr);
    EXPECT_EQ(pool_->stats().idle, 0u);
    EXPECT_EQ(pool_->stats().total, 1u);
    pool_->release(std::move(idle));
    // The server closed it while idle: the peek sees EOF, the connection is closed and
    // uncounted, and nothing is handed out.
    server.closeAll();
    co_await sleep(20);
    EXPECT_EQ(pool_->tryAcquireIdle(), nullptr);
    EXPECT_EQ(pool_->stats().idle, 0u);
    EXPECT_EQ(pool_->stats().total, 0u);
    AcquireResult again = co_await pool_->acquire();
    EXPECT_EQ(again.status, AcquireStatus::kOk);
    EXPECT_EQ(server.accepted, 2);
    pool_->release(std::move(again.connection));
    pool_->shutdown();
    EXPECT_EQ(pool_->tryAcquireIdle(), nullptr) << "shutting down";
  });
}

TEST(ReconnectBackoffTest, DoublesUpToTheMaximumWithJitter) {
  using std::chrono::milliseconds;
  EXPECT_EQ(reconnectBackoff(1, 100, 5000, 1.0), milliseconds(100));
  EXPECT_EQ(reconnectBackoff(1, 100, 5000, 0.0), milliseconds(50));
  EXPECT_EQ(reconnectBackoff(3, 100, 5000, 1.0), milliseconds(400));
  EXPECT_EQ(reconnectBackoff(20, 100, 5000, 1.0), milliseconds(5000));
  EXPECT_EQ(reconnectBackoff(20, 100, 5000, 0.5), milliseconds(3750));
  EXPECT_EQ(reconnectBackoff(0, 100, 5000, 1.0), milliseconds(0));
}

}  // namespace
}  // namespace mongogate::proxy
