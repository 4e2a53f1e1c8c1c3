#include "proxy/runtime_config.h"

#include <algorithm>

namespace mongogate::proxy {
namespace {

using config::ProxyConfig;

// One restart-only setting: whether it differs, and how to put the running value back.
struct RestartOnly {
  const char* path;
  bool (*differs)(const ProxyConfig& running, const ProxyConfig& next);
  void (*keep)(const ProxyConfig& running, ProxyConfig& next);
};

#define MONGOGATE_SAME_FIELD(path, field)                                                  \
  RestartOnly {                                                                            \
    path, [](const ProxyConfig& a, const ProxyConfig& b) { return !(a.field == b.field); }, \
        [](const ProxyConfig& a, ProxyConfig& b) { b.field = a.field; }                     \
  }

bool sameUpstreams(const ProxyConfig& a, const ProxyConfig& b) {
  return std::equal(a.upstreams.begin(), a.upstreams.end(), b.upstreams.begin(), b.upstreams.end(),
                    [](const config::UpstreamConfig& x, const config::UpstreamConfig& y) {
                      return x.name == y.name && x.uri == y.uri;
                    });
}

const RestartOnly kRestartOnly[] = {
    {"listen", [](const ProxyConfig& a, const ProxyConfig& b) { return a.listen.toString() != b.listen.toString(); },
     [](const ProxyConfig& a, ProxyConfig& b) { b.listen = a.listen; }},
    {"tls",
     [](const ProxyConfig& a, const ProxyConfig& b) {
       const config::ListenTlsConfig& x = a.listenTls;
       const config::ListenTlsConfig& y = b.listenTls;
       return x.enabled != y.enabled || x.certificateFile != y.certificateFile || x.keyFile != y.keyFile ||
              x.caFile != y.caFile || x.requireClientCertificate != y.requireClientCertificate ||
              x.handshakeTimeoutMs != y.handshakeTimeoutMs;
     },
     [](const ProxyConfig& a, ProxyConfig& b) { b.listenTls = a.listenTls; }},
    MONGOGATE_SAME_FIELD("compression", compression),
    MONGOGATE_SAME_FIELD("threads", threads),
    MONGOGATE_SAME_FIELD("port_file", portFile),
    MONGOGATE_SAME_FIELD("max_message_size", maxMessageSize),
    MONGOGATE_SAME_FIELD("log.format", log.format),
    MONGOGATE_SAME_FIELD("pool.max_size", pool.maxSize),
    MONGOGATE_SAME_FIELD("pool.wait_queue_timeout_ms", pool.waitQueueTimeoutMs),
    MONGOGATE_SAME_FIELD("pool.connect_timeout_ms", pool.connectTimeoutMs),
    MONGOGATE_SAME_FIELD("pool.idle_check_ms", pool.idleCheckMs),
    {"upstreams", [](const ProxyConfig& a, const ProxyConfig& b) { return !sameUpstreams(a, b); },
     [](const ProxyConfig& a, ProxyConfig& b) {
       b.upstreams = a.upstreams;
       b.main = a.main;
     }},
    {"admin.listen",
     [](const ProxyConfig& a, const ProxyConfig& b) {
       return a.admin.enabled != b.admin.enabled || a.admin.listen.toString() != b.admin.listen.toString();
     },
     [](const ProxyConfig& a, ProxyConfig& b) {
       b.admin.enabled = a.admin.enabled;
       b.admin.listen = a.admin.listen;
     }},
    MONGOGATE_SAME_FIELD("admin.port_file", admin.portFile),
    // Monitors, breakers and the affinity tables are built at start from these.
    MONGOGATE_SAME_FIELD("topology.heartbeat_frequency_ms", topology.heartbeatFrequencyMs),
    MONGOGATE_SAME_FIELD("topology.server_selection_timeout_ms", topology.serverSelectionTimeoutMs),
    MONGOGATE_SAME_FIELD("topology.local_threshold_ms", topology.localThresholdMs),
    MONGOGATE_SAME_FIELD("topology.cursor_idle_timeout_ms", topology.cursorIdleTimeoutMs),
    MONGOGATE_SAME_FIELD("topology.breaker.failure_threshold", topology.breakerFailureThreshold),
    MONGOGATE_SAME_FIELD("topology.breaker.cool_down_ms", topology.breakerCoolDownMs),
};

#undef MONGOGATE_SAME_FIELD

bool registrySourceDiffers(const ProxyConfig& a, const ProxyConfig& b) {
  return a.registry.source != b.registry.source || a.registry.file != b.registry.file ||
         a.registry.pollIntervalMs != b.registry.pollIntervalMs || a.registry.cacheFile != b.registry.cacheFile ||
         a.registry.changeStreams != b.registry.changeStreams ||
         a.routing.mainDatabase != b.routing.mainDatabase ||
         a.routing.registryCollection != b.routing.registryCollection;
}

}  // namespace

RuntimeConfigHolder::RuntimeConfigHolder(config::ProxyConfig initial)
    : current_(std::make_shared<const RuntimeConfig>(RuntimeConfig{std::move(initial), 1})) {}

std::shared_ptr<const RuntimeConfig> RuntimeConfigHolder::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

std::uint64_t RuntimeConfigHolder::publish(config::ProxyConfig next) {
  std::lock_guard lock(mutex_);
  const std::uint64_t generation = current_->generation + 1;
  current_ = std::make_shared<const RuntimeConfig>(RuntimeConfig{std::move(next), generation});
  // Released after the pointer: a reader that sees the new generation finds the new pointer.
  generation_.store(generation, std::memory_order_release);
  return generation;
}

ReloadPlan planReload(const config::ProxyConfig& running, const config::ConfigResult& loaded) {
  ReloadPlan plan;
  for (const config::ConfigProblem& problem : loaded.problems) plan.problems.push_back(config::formatProblem(problem));
  for (const config::ConfigProblem& warning : loaded.warnings) plan.warnings.push_back(config::formatProblem(warning));
  if (loaded.showHelp) plan.problems.emplace_back("--help: not a configuration");
  if (!plan.problems.empty()) return plan;
  plan.next = loaded.config;
  for (const RestartOnly& setting : kRestartOnly) {
    if (setting.differs(running, plan.next)) {
      plan.needsRestart.emplace_back(setting.path);
      setting.keep(running, plan.next);
    }
  }
  // Routes may only name upstreams this process has pools for.
  auto running_upstream = [&](const std::string& name) { return running.findUpstream(name) != nullptr; };
  const router::RoutingConfig& r = plan.next.routing;
  for (std::size_t i = 0; i < r.storeDatabaseUpstreams.size(); ++i) {
    if (!running_upstream(r.storeDatabaseUpstreams[i])) {
      plan.problems.push_back("routing.store_databases.placement." + std::to_string(i + 1) + ": upstream '" +
                              r.storeDatabaseUpstreams[i] + "' is not running; adding an upstream needs a restart");
    }
  }
  if (!running_upstream(r.masterAdminUpstream)) {
    plan.problems.push_back("routing.master_admin.upstream: upstream '" + r.masterAdminUpstream +
                            "' is not running; adding an upstream needs a restart");
  }
  plan.registrySourceChanged = registrySourceDiffers(running, plan.next);
  return plan;
}

std::vector<std::string> restartOnlySettings() {
  std::vector<std::string> paths;
  for (const RestartOnly& setting : kRestartOnly) paths.emplace_back(setting.path);
  return paths;
}

}  // namespace mongogate::proxy
