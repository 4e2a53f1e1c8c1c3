#include "proxy/upstream_connect.h"

#include <atomic>

#include "wire/builder.h"
#include "wire/op_msg.h"

namespace mongogate::proxy {

using namespace asio::experimental::awaitable_operators;

namespace {

std::atomic<std::int32_t> nextRequestId{1};

AcquireResult failed(ConnectFailure failure, std::string error) {
  AcquireResult result;
  result.status = AcquireStatus::kConnectFailed;
  result.failure = failure;
  result.error = std::move(error);
  return result;
}

awaitable<AcquireResult> open(asio::io_context& ioc, const UpstreamConnectOptions& options,
                              const config::HostPort& server, UpstreamLimits& learned) {
  const config::UpstreamConfig& upstream = *options.upstream;
  tcp::resolver resolver(ioc);
  auto [resolveError, endpoints] =
      co_await resolver.async_resolve(server.host, std::to_string(server.port), nothrow);
  if (resolveError) co_return failed(ConnectFailure::kResolve, "cannot resolve the host: " + resolveError.message());
  auto connection = std::make_unique<UpstreamConnection>(ioc.get_executor(), *options.buffers, options.maxMessageSize);
  auto [connectError, endpoint] = co_await asio::async_connect(connection->stream.socket(), endpoints, nothrow);
  (void)endpoint;
  if (connectError) co_return failed(ConnectFailure::kConnect, "cannot connect: " + connectError.message());
  error_code ignored;
  connection->stream.socket().set_option(tcp::no_delay(true), ignored);

  if (options.tls) {
    // tlsAllowInvalidCertificates implies any hostname (the connection string spec).
    const bool verifyHostname = !upstream.tls.allowInvalidHostnames && !upstream.tls.allowInvalidCertificates;
    connection->stream.enableTlsClient(*options.tls, server.host, verifyHostname);
    if (error_code ec = co_await connection->stream.handshake(ssl::stream_base::client)) {
      const std::string why = connection->stream.verifyError();
      co_return failed(ConnectFailure::kTls, "TLS handshake failed: " +
                                                 (why.empty() ? ec.message() : "certificate verify failed (" + why + ")"));
    }
  }

  // mongogate's own hello: its metadata, never a client's.
  std::vector<std::uint8_t> hello;
  appendUpstreamHello(hello, upstream.appName);
  wire::Bytes reply;
  if (std::string error = co_await runUpstreamCommand(*connection, hello, reply); !error.empty()) {
    co_return failed(ConnectFailure::kHandshake, "handshake failed: " + error);
  }
  UpstreamLimits limits = learned;
  std::string error;
  if (!readUpstreamHelloReply(reply, limits, error)) co_return failed(ConnectFailure::kHandshake, error);
  learned = limits;

  AcquireResult result;
  result.connection = std::move(connection);
  result.connection->createdAt = std::chrono::steady_clock::now();
  co_return result;
}

}  // namespace

awaitable<std::string> runUpstreamCommand(UpstreamConnection& connection, const std::vector<std::uint8_t>& body,
                                          wire::Bytes& reply) {
  std::vector<std::uint8_t> frame;
  wire::appendOpMsg(frame, nextRequestId.fetch_add(1, std::memory_order_relaxed), 0, 0, body);
  auto [writeError, written] = co_await asio::async_write(connection.stream, asio::buffer(frame), nothrow);
  (void)written;
  if (writeError) co_return writeError.message();
  if (co_await connection.reader.next(connection.stream) != ReadStatus::kOk) co_return "no valid reply";
  auto parsed = wire::parseOpMsg(connection.reader.frame());
  if (!parsed.ok()) co_return "bad reply (" + std::string(wire::describe(parsed.error.status)) + ")";
  reply = parsed.value.body;
  co_return std::string();
}

awaitable<AcquireResult> openUpstreamConnection(asio::io_context& ioc, const UpstreamConnectOptions& options,
                                                const config::HostPort& server, UpstreamLimits& learned) {
  asio::steady_timer deadline(ioc);
  deadline.expires_after(options.timeout);
  auto outcome = co_await (open(ioc, options, server, learned) || deadline.async_wait(nothrow));
  if (outcome.index() == 0) co_return std::move(std::get<0>(outcome));
  co_return failed(ConnectFailure::kTimeout, "connect and handshake timed out after " +
                                                 std::to_string(options.timeout.count()) + " ms");
}

}  // namespace mongogate::proxy
