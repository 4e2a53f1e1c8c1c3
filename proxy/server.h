// proxy/server.h — the listening socket, the worker threads, signals and shutdown.
//
// Promise: accepts clients on the configured address and hands each one to a worker
// thread round-robin; SIGTERM/SIGINT stop accepting (readiness off), keep serving the
// open client connections until no request is in flight and no transaction is open
// (proxy/sessions.h OpenTransactions) or drainTimeoutMs passed, and make run() return 0. SIGHUP reloads the configuration
// (proxy/config_reload.h).
#pragma once

#include <memory>
#include <vector>

#include "admin/admin_server.h"
#include "config/proxy_config.h"
#include "proxy/admin_glue.h"
#include "proxy/config_reload.h"
#include "proxy/worker.h"

namespace mongogate::proxy {

class Server {
 public:
  // arguments: the command line (argv[0] first), read again by every reload.
  Server(const config::ProxyConfig& config, std::vector<std::string> arguments);
  ~Server();
  // Blocks until shut down. Returns the process exit code.
  int run();

 private:
  awaitable<void> acceptLoop(tcp::acceptor& acceptor);
  awaitable<void> drainAndStop(tcp::acceptor& acceptor);
  bool listenAdmin();

  const config::ProxyConfig& config_;
  SharedState shared_;
  // The admin port (SPEC §8), on its own thread; stopped before the workers go.
  std::unique_ptr<ProxyAdminState> adminState_;
  std::unique_ptr<admin::AdminServer> adminServer_;
  std::vector<std::unique_ptr<Worker>> workers_;
  ConfigReloader reloader_;  // owns the registry source
  // Declared after the workers so it is destroyed first: a pending accept holds a
  // socket that belongs to a worker's io_context.
  asio::io_context control_{1};
  std::size_t nextWorker_ = 0;
  bool stopping_ = false;
};

}  // namespace mongogate::proxy
