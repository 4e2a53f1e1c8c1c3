// admin/admin_server.h — the admin port's HTTP/1.1 server (SPEC §8).
//
// Promise: runs on its own thread and io_context, never on a proxy worker, so a slow or
// hostile admin client cannot slow the data path. One coroutine per connection;
// keep-alive; requests larger than 64 KiB (headers 8 KiB) are refused with 413/431; a
// connection idle for 10 s, or a request not complete within 10 s, is closed. Every
// request goes to admin::handle() (admin/http_handlers.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "admin/http_handlers.h"
#include "config/proxy_config.h"

namespace mongogate::admin {

class AdminServer {
 public:
  AdminServer(config::HostPort listen, const AdminState& state);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and listens. Returns "" on success, else why not.
  std::string listen();
  std::uint16_t port() const { return port_; }
  // Starts the server thread (after listen()).
  void start();
  // Stops accepting, drops connections, joins the thread. Idempotent.
  void stop();

 private:
  config::HostPort address_;
  const AdminState& state_;
  std::unique_ptr<boost::asio::io_context> ioc_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::thread thread_;
  std::uint16_t port_ = 0;
};

}  // namespace mongogate::admin
