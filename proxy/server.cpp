#include "proxy/server.h"

#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <thread>

#include "proxy/client_session.h"
#include "proxy/tls.h"

namespace mongogate::proxy {

Server::Server(const config::ProxyConfig& config, std::vector<std::string> arguments)
    : config_(config), shared_(config), reloader_(shared_, std::move(arguments)) {
  const std::size_t threads = workerThreadCount(config);
  for (std::size_t i = 0; i < threads; ++i) {
    workers_.push_back(std::make_unique<Worker>(shared_, threads, i));
  }
}

Server::~Server() {
  // The admin thread reads the workers: it stops first.
  if (adminServer_) adminServer_->stop();
}

bool Server::listenAdmin() {
  if (!config_.admin.enabled) return true;
  adminState_ = std::make_unique<ProxyAdminState>(shared_, workers_, reloader_);
  adminServer_ = std::make_unique<admin::AdminServer>(config_.admin.listen, *adminState_);
  if (std::string error = adminServer_->listen(); !error.empty()) {
    spdlog::error("cannot listen on {} (admin port): {}", config_.admin.listen.toString(), error);
    return false;
  }
  return true;
}

awaitable<void> Server::acceptLoop(tcp::acceptor& acceptor) {
  while (!stopping_) {
    Worker& worker = *workers_[nextWorker_];
    nextWorker_ = (nextWorker_ + 1) % workers_.size();
    auto [ec, socket] = co_await acceptor.async_accept(worker.ioc(), nothrow);
    if (ec) {
      if (stopping_ || ec == asio::error::operation_aborted) break;
      spdlog::warn("accept failed: {}", ec.message());
      // Out of descriptors and similar: back off instead of spinning.
      asio::steady_timer pause(control_, std::chrono::milliseconds(50));
      co_await pause.async_wait(nothrow);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(worker.ioc(), runClientSession(std::move(socket), worker), asio::detached);
  }
}

awaitable<void> Server::drainAndStop(tcp::acceptor& acceptor) {
  stopping_ = true;
  shared_.draining = true;  // /readyz answers 503 from now on
  error_code ignored;
  acceptor.close(ignored);
  const std::uint32_t drainTimeoutMs = shared_.runtime.current()->config.drainTimeoutMs;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(drainTimeoutMs);
  // The workers keep serving the open client connections meanwhile: a client can still
  // send the rest of its transaction and its commitTransaction.
  spdlog::info("shutting down: no new connections; waiting up to {} ms for {} in-flight requests and {} open "
               "transactions", drainTimeoutMs, shared_.requestsInFlight.load(), shared_.openTransactions.open());
  asio::steady_timer tick(control_);
  const auto busy = [this] { return shared_.requestsInFlight.load() > 0 || shared_.openTransactions.open() > 0; };
  while (busy() && std::chrono::steady_clock::now() < deadline) {
    tick.expires_after(std::chrono::milliseconds(10));
    co_await tick.async_wait(nothrow);
  }
  if (busy()) {
    spdlog::warn("drain timeout after {} ms: abandoning {} in-flight requests and {} open transactions",
                 drainTimeoutMs, shared_.requestsInFlight.load(), shared_.openTransactions.open());
  }
  for (auto& worker : workers_) worker->stop();
  control_.stop();
}

int Server::run() {
  std::signal(SIGPIPE, SIG_IGN);
  if (!shared_.startupError.empty()) {
    spdlog::error("cannot start: {}", shared_.startupError);
    return 2;
  }
  // A SIGHUP before the reload handler is installed must not end the process.
  std::signal(SIGHUP, SIG_IGN);
  error_code ec;
  const auto address = asio::ip::make_address(config_.listen.host, ec);
  if (ec) {
    spdlog::error("cannot listen on {}: {} is not an IP address", config_.listen.toString(), config_.listen.host);
    return 2;
  }
  if (config_.listenTls.enabled) {
    std::string error;
    shared_.clientTls = makeListenTlsContext(config_.listenTls, error);
    if (!shared_.clientTls) {
      spdlog::error("cannot enable TLS for clients: {}", error);
      return 2;
    }
  }
  tcp::acceptor acceptor(control_);
  const tcp::endpoint endpoint(address, config_.listen.port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    spdlog::error("cannot listen on {}: {}", config_.listen.toString(), ec.message());
    return 2;
  }
  const auto bound = acceptor.local_endpoint();
  if (!listenAdmin()) return 2;
  reloader_.start();
  shared_.topologyService->start();
  for (auto& worker : workers_) worker->start();
  if (adminServer_) {
    adminState_->probeMain();
    adminServer_->start();
  }

  asio::signal_set signals(control_, SIGINT, SIGTERM);
  signals.async_wait([&](const error_code& error, int signal) {
    if (error) return;
    spdlog::info("received signal {}", signal);
    asio::co_spawn(control_, drainAndStop(acceptor), asio::detached);
  });
  // SIGHUP: reload on the reload thread (it may block on the registry's upstream).
  asio::signal_set hangups(control_, SIGHUP);
  std::function<void(const error_code&, int)> onHangup = [&](const error_code& error, int) {
    if (error) return;
    spdlog::info("received SIGHUP: reloading the configuration");
    reloader_.requestReload();
    hangups.async_wait(onHangup);
  };
  hangups.async_wait(onHangup);
  asio::co_spawn(control_, acceptLoop(acceptor), asio::detached);

  // Learn the upstream's limits before the first client asks.
  Worker& first = *workers_.front();
  for (std::size_t i = 0; i < shared_.deployments.size(); ++i) {
    asio::co_spawn(first.ioc(), [&first, i]() -> awaitable<void> {
      Acquired acquired = co_await first.acquire(i, {});
      if (acquired.result.status == AcquireStatus::kOk) acquired.pool->release(std::move(acquired.result.connection));
    }, asio::detached);
  }

  spdlog::info("mongogate {} listening on {}:{}{} with {} worker threads", MONGOGATE_VERSION,
               bound.address().to_string(), bound.port(), shared_.clientTls ? " (TLS)" : "", workers_.size());
  for (const config::UpstreamConfig& upstream : config_.upstreams) {
    spdlog::info("upstream {} = {}", upstream.name, upstream.redactedUri());
  }
  if (!config_.portFile.empty()) {
    const std::string temporary = config_.portFile + ".tmp";
    { std::ofstream(temporary) << bound.port() << "\n"; }
    std::rename(temporary.c_str(), config_.portFile.c_str());
  }
  if (adminServer_) {
    spdlog::info("admin port listening on {}:{}{}", config_.admin.listen.host, adminServer_->port(),
                 config_.admin.token.empty() ? " (mutating endpoints off: no admin token)" : "");
    if (!config_.admin.portFile.empty()) {
      const std::string temporary = config_.admin.portFile + ".tmp";
      { std::ofstream(temporary) << adminServer_->port() << "\n"; }
      std::rename(temporary.c_str(), config_.admin.portFile.c_str());
    }
  }

  control_.run();
  if (adminServer_) adminServer_->stop();
  for (auto& worker : workers_) worker->join();
  shared_.topologyService->stop();
  reloader_.stop();
  spdlog::info("mongogate stopped");
  return 0;
}

}  // namespace mongogate::proxy
