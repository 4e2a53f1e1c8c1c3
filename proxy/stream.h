// proxy/stream.h — one byte stream type for both sides of the proxy: plain TCP or TLS.
//
// Promise: FrameReader, asio::async_write and the sessions use a Stream the same way
// whether or not it is encrypted. The choice is made once per connection (enableTls*
// before the handshake), and each read or write dispatches with one branch: no
// type-erased handler, no allocation beyond what Asio's own operations make.
// Plain connections never touch OpenSSL.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl.hpp>
#include <optional>
#include <string>
#include <utility>

#include "proxy/asio.h"

namespace mongogate::proxy {

namespace ssl = asio::ssl;

class Stream {
 public:
  using executor_type = tcp::socket::executor_type;

  explicit Stream(tcp::socket socket) : plain_(std::move(socket)) {}
  explicit Stream(const executor_type& executor) : plain_(executor) {}
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  bool tls() const { return tls_.has_value(); }
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : plain_; }
  executor_type get_executor() { return socket().get_executor(); }

  // mongogate as the TLS client (towards an upstream). With verifyHostname the peer's
  // certificate must name `host` (DNS name or IP address); SNI is sent for DNS names.
  void enableTlsClient(ssl::context& context, const std::string& host, bool verifyHostname) {
    tls_.emplace(std::move(plain_), context);
    if (verifyHostname) tls_->set_verify_callback(ssl::host_name_verification(host));
    error_code ec;
    asio::ip::make_address(host, ec);
    if (ec) SSL_set_tlsext_host_name(tls_->native_handle(), host.c_str());
  }
  // mongogate as the TLS server (towards a client).
  void enableTlsServer(ssl::context& context) { tls_.emplace(std::move(plain_), context); }

  awaitable<error_code> handshake(ssl::stream_base::handshake_type type) {
    if (!tls_) co_return error_code{};
    auto [ec] = co_await tls_->async_handshake(type, nothrow);
    co_return ec;
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (tls_) {
            tls_->async_read_some(b, std::move(handler));
          } else {
            plain_.async_read_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (tls_) {
            tls_->async_write_some(b, std::move(handler));
          } else {
            plain_.async_write_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

  // Plain streams can wait for readability without a buffer (an idle client holds
  // none). A TLS stream may already hold decrypted or undecoded bytes, so it must read.
  bool canWaitWithoutBuffer() const { return !tls_; }

  void close() {
    error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
  }

 private:
  tcp::socket plain_;
  std::optional<ssl::stream<tcp::socket>> tls_;
};

}  // namespace mongogate::proxy
