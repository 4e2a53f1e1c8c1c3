#include "admin/admin_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <chrono>

namespace mongogate::admin {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::uint32_t kHeaderLimit = 8 * 1024;
constexpr std::uint64_t kBodyLimit = 64 * 1024;
constexpr auto kIdleTimeout = std::chrono::seconds(10);

http::response<http::string_body> toHttp(Response response, unsigned version, bool keepAlive) {
  http::response<http::string_body> out{static_cast<http::status>(response.status), version};
  out.set(http::field::server, "mongogate");
  out.set(http::field::content_type, response.contentType);
  out.set(http::field::cache_control, "no-store");
  for (const auto& [name, value] : response.headers) out.set(name, value);
  out.body() = std::move(response.body);
  out.keep_alive(keepAlive);
  out.prepare_payload();
  return out;
}

asio::awaitable<void> serve(tcp::socket socket, const AdminState& state) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(kBodyLimit);
    stream.expires_after(kIdleTimeout);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, nothrow);
    (void)n;
    if (ec == http::error::body_limit || ec == http::error::header_limit) {
      const bool body = ec == http::error::body_limit;
      Response tooLarge;
      tooLarge.status = body ? 413 : 431;
      tooLarge.body = body ? "{\"error\":\"request body too large\"}\n" : "{\"error\":\"request headers too large\"}\n";
      auto reply = toHttp(std::move(tooLarge), 11, false);
      stream.expires_after(kIdleTimeout);
      co_await http::async_write(stream, reply, nothrow);
      break;
    }
    if (ec) break;  // closed, timed out or malformed: nothing useful to answer
    http::request<http::string_body> request = parser.release();
    Request in{std::string(request.method_string()), std::string(request.target()),
               std::string(request[http::field::authorization]), std::move(request.body())};
    const bool keepAlive = request.keep_alive();
    auto reply = toHttp(handle(in, state), request.version(), keepAlive);
    stream.expires_after(kIdleTimeout);
    auto [writeError, written] = co_await http::async_write(stream, reply, nothrow);
    (void)written;
    if (writeError || !keepAlive) break;
  }
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.socket().close(ignored);
}

asio::awaitable<void> acceptLoop(tcp::acceptor& acceptor, const AdminState& state) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      spdlog::warn("admin port: accept failed: {}", ec.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(nothrow);
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket), state), asio::detached);
  }
}

}  // namespace

AdminServer::AdminServer(config::HostPort listen, const AdminState& state)
    : address_(std::move(listen)), state_(state), ioc_(std::make_unique<asio::io_context>(1)) {}

AdminServer::~AdminServer() {
  stop();
  // Coroutine frames parked in the io_context (connections) are destroyed with it.
  acceptor_.reset();
  ioc_.reset();
}

std::string AdminServer::listen() {
  error_code ec;
  const auto address = asio::ip::make_address(address_.host, ec);
  if (ec) return address_.host + " is not an IP address";
  const tcp::endpoint endpoint(address, address_.port);
  acceptor_ = std::make_unique<tcp::acceptor>(*ioc_);
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return ec.message();
  port_ = acceptor_->local_endpoint(ec).port();
  return {};
}

void AdminServer::start() {
  asio::co_spawn(*ioc_, acceptLoop(*acceptor_, state_), asio::detached);
  thread_ = std::thread([this] { ioc_->run(); });
}

void AdminServer::stop() {
  if (!thread_.joinable()) return;
  asio::post(*ioc_, [this] {
    error_code ignored;
    acceptor_->close(ignored);
    ioc_->stop();
  });
  thread_.join();
}

}  // namespace mongogate::admin
