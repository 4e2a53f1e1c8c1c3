// proxy/runtime_config.h — the configuration the data path reads, replaceable while the
// proxy runs (SIGHUP, POST /v1/reload), and what a reload may change.
//
// Promise: a published RuntimeConfig never changes; a reload publishes a new one as a
// whole (routing rules, registry settings, users … never half of them). Each worker keeps
// a RuntimeConfigReader that re-fetches the shared pointer only when the generation moved:
// one acquire load per request otherwise (router::RegistryReader's idea). A session holds
// the pointer its request started with, so in-flight requests finish on their
// configuration and the old one is freed when the last of them ends.
//
// What a reload applies: everything, except the settings that shape what was built at
// start (restartOnlySettings()): those keep their running values and are reported as
// "needs a restart". A new setting is therefore reloadable by default.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/proxy_config.h"

namespace mongogate::proxy {

struct RuntimeConfig {
  config::ProxyConfig config;
  std::uint64_t generation = 1;  // 1: as started; each applied reload adds one
};

class RuntimeConfigHolder {
 public:
  explicit RuntimeConfigHolder(config::ProxyConfig initial);
  std::shared_ptr<const RuntimeConfig> current() const;
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  // Publishes `next` as the next generation; returns that generation.
  std::uint64_t publish(config::ProxyConfig next);

 private:
  mutable std::mutex mutex_;  // the pointer swap, and readers whose generation is stale
  std::shared_ptr<const RuntimeConfig> current_;
  std::atomic<std::uint64_t> generation_{1};
};

// Per worker thread.
class RuntimeConfigReader {
 public:
  explicit RuntimeConfigReader(const RuntimeConfigHolder& holder) : holder_(holder), cached_(holder.current()) {}
  const std::shared_ptr<const RuntimeConfig>& current() {
    if (holder_.generation() != cached_->generation) cached_ = holder_.current();
    return cached_;
  }

 private:
  const RuntimeConfigHolder& holder_;
  std::shared_ptr<const RuntimeConfig> cached_;
};

// A reload, decided: what to publish, or why not.
struct ReloadPlan {
  config::ProxyConfig next;               // valid only when problems is empty
  std::vector<std::string> problems;      // refuse the reload ("path: message (at …)")
  std::vector<std::string> warnings;
  std::vector<std::string> needsRestart;  // settings that changed but keep their running value
  bool registrySourceChanged = false;     // the registry source must be restarted
};

// `loaded` is a fresh loadConfig() of the same sources; `running` the configuration in use.
ReloadPlan planReload(const config::ProxyConfig& running, const config::ConfigResult& loaded);

// The settings a reload cannot change (for documentation and tests).
std::vector<std::string> restartOnlySettings();

}  // namespace mongogate::proxy
