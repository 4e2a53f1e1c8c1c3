// proxy/stream.h — one byte stream type for both sides of the proxy: plain TCP or TLS.
//
// Promise: FrameReader, asio::async_write and the sessions use a Stream the same way
// whether or not it is encrypted. The choice is made once per connection (enableTls*
// before the handshake), and each read or write dispatches with one branch: no
// type-erased handler, no allocation beyond what Asio's own operations make.
// Plain connections never touch OpenSSL.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

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
    SSL* handle = tls_->native_handle();
    error_code ec;
    asio::ip::make_address(host, ec);
    const bool isAddress = !ec;
    if (!isAddress) SSL_set_tlsext_host_name(handle, host.c_str());
    // OpenSSL's own check: a mismatch fails the handshake with a verify result that
    // says so (X509_V_ERR_HOSTNAME_MISMATCH), which verifyError() reports.
    if (verifyHostname) {
      X509_VERIFY_PARAM* param = SSL_get0_param(handle);
      if (isAddress) {
        X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
      } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        SSL_set1_host(handle, host.c_str());
      }
    }
  }
  // After a failed client handshake: why the peer's certificate was refused ("" when
  // it was not a verification failure).
  std::string verifyError() {
    if (!tls_) return {};
    const long result = SSL_get_verify_result(tls_->native_handle());
    return result == X509_V_OK ? std::string() : X509_verify_cert_error_string(result);
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

  // Plain TCP only, never blocking: what the socket takes (or has) right now. nullopt
  // when nothing can move without waiting, or for TLS (whose records go through the
  // async operations); then use async_write / async_read_some. A closed peer or a
  // socket error is reported in `ec` (eof for a clean close on receive). Used to finish
  // the common exchange without suspending: most writes are taken at once, and a read
  // after a readiness wait finds the bytes there.
  template <class ConstBuffers>
  std::optional<std::size_t> trySend(const ConstBuffers& buffers, error_code& ec) {
    if (tls_ || !makeNonBlocking(ec)) return std::nullopt;
    const std::size_t n = plain_.send(buffers, 0, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec.clear();
      return std::nullopt;
    }
    return n;
  }
  template <class MutableBuffers>
  std::optional<std::size_t> tryReceive(const MutableBuffers& buffers, error_code& ec) {
    if (tls_ || !makeNonBlocking(ec)) return std::nullopt;
    const std::size_t n = plain_.receive(buffers, 0, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec.clear();
      return std::nullopt;
    }
    return n;
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
  // The synchronous operations above must return would_block instead of waiting (Asio's
  // own async operations are unaffected by this mode).
  bool makeNonBlocking(error_code& ec) {
    if (!nonBlocking_) {
      plain_.non_blocking(true, ec);
      nonBlocking_ = !ec;
    }
    return nonBlocking_;
  }

  tcp::socket plain_;
  std::optional<ssl::stream<tcp::socket>> tls_;
  bool nonBlocking_ = false;
};

}  // namespace mongogate::proxy
