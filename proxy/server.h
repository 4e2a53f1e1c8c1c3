// proxy/server.h — the listening socket, the worker threads, signals and shutdown.
//
// Promise: accepts clients on the configured address and hands each one to a worker
// thread round-robin; SIGTERM/SIGINT stop accepting, let in-flight requests finish for
// up to drainTimeoutMs, and make run() return 0.
#pragma once

#include <memory>
#include <vector>

#include "admin/admin_server.h"
#include "config/proxy_config.h"
#include "proxy/admin_glue.h"
#include "proxy/registry_source.h"
#include "proxy/worker.h"

namespace mongogate::proxy {

class Server {
 public:
  explicit Server(const config::ProxyConfig& config);
  ~Server();
  // Blocks until shut down. Returns the process exit code.
  int run();

 private:
  awaitable<void> acceptLoop(tcp::acceptor& acceptor);
  awaitable<void> drainAndStop(tcp::acceptor& acceptor);
  void startRegistry();
  bool listenAdmin();

  const config::ProxyConfig& config_;
  SharedState shared_;
  // The admin port (SPEC §8), on its own thread; stopped before the workers go.
  std::unique_ptr<ProxyAdminState> adminState_;
  std::unique_ptr<admin::AdminServer> adminServer_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<RegistrySource> registrySource_;
  // Declared after the workers so it is destroyed first: a pending accept holds a
  // socket that belongs to a worker's io_context.
  asio::io_context control_{1};
  std::size_t nextWorker_ = 0;
  bool stopping_ = false;
};

}  // namespace mongogate::proxy
