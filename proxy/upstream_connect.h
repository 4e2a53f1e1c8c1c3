// proxy/upstream_connect.h — opening one connection to one upstream server.
//
// Promise: a connection handed out is ready for client requests: TCP connected, TLS
// handshake done with the certificate (and, unless the URI allows otherwise, the
// hostname) verified, mongogate's own hello answered, and — when the URI carries
// credentials — authenticated. Anything short of that is an error with a reason that
// names no host, no URI and no credential (clients and /readyz may show it), within
// the connect timeout as a whole, never a hang.
//
// Which server to connect to is the caller's choice (a pool is the pool of one server);
// nothing here looks at the URI's host list.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "config/proxy_config.h"
#include "proxy/asio.h"
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
  std::chrono::steady_clock::time_point createdAt{};
  std::chrono::steady_clock::time_point idleSince{};
};

// kBreakerOpen: the server's circuit breaker refused without trying (fail fast).
// kNoSuitableServer: no server of the deployment fits the request (Worker::acquire).
enum class AcquireStatus { kOk, kTimeout, kConnectFailed, kShuttingDown, kBreakerOpen, kNoSuitableServer };

// What went wrong while opening, for callers that react differently (the pool backs
// off on any failure, /readyz reports authentication problems as such).
enum class ConnectFailure { kNone, kResolve, kConnect, kTls, kHandshake, kAuth, kTimeout };

struct AcquireResult {
  AcquireStatus status = AcquireStatus::kOk;
  std::unique_ptr<UpstreamConnection> connection;
  std::string error;  // why, for kConnectFailed: no host names, credentials or URI (clients see it)
  ConnectFailure failure = ConnectFailure::kNone;
  std::size_t server = 0;  // the server's id in its deployment's topology (set by Worker::acquire)
};

struct UpstreamConnectOptions {
  const config::UpstreamConfig* upstream = nullptr;  // credentials, appName, TLS settings
  ssl::context* tls = nullptr;                       // nullptr: plain TCP
  BufferPool* buffers = nullptr;
  std::int32_t maxMessageSize = 48'000'000;
  std::chrono::milliseconds timeout{5000};           // TCP + TLS + hello + auth
  // false: stop after hello even when the URI has credentials (relay authentication
  // runs a client's own conversation on such a connection).
  bool authenticate = true;
};

// Opens, secures, greets and authenticates one connection to `server`. On success
// `learned` holds the limits the server's hello announced.
awaitable<AcquireResult> openUpstreamConnection(asio::io_context& ioc, const UpstreamConnectOptions& options,
                                                const config::HostPort& server, UpstreamLimits& learned);

// Sends one OP_MSG command body on `connection` and reads its reply body into `reply`
// (a view into the connection's reader, valid until its next read). Returns "" or why not.
awaitable<std::string> runUpstreamCommand(UpstreamConnection& connection, const std::vector<std::uint8_t>& body,
                                          wire::Bytes& reply);

}  // namespace mongogate::proxy
