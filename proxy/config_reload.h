// proxy/config_reload.h — SIGHUP and POST /v1/reload: re-read the configuration from the
// same sources as at start (the file, the environment, the command line), validate it,
// and swap in what may change while running (proxy/runtime_config.h).
//
// Promise: a configuration with any problem is refused as a whole: every problem is
// logged, counted (mongogate_config_reloads_total{result="refused"}) and shown in
// /v1/config, and the running configuration stays. A valid one is published at once;
// settings that need a restart keep their running values and are logged as such. When the
// registry settings changed, the registry source is restarted with them; the registry
// keeps serving its last snapshot until the new source has loaded. Reloads run one at a
// time, on the reload thread (SIGHUP) or the admin thread (POST), never on a worker.
//
// The registry source lives here because a reload replaces it.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "admin/http_handlers.h"
#include "proxy/registry_source.h"
#include "proxy/runtime_config.h"
#include "proxy/worker.h"

namespace mongogate::proxy {

RegistrySourceSettings registrySettingsOf(const config::ProxyConfig& config);

class ConfigReloader {
 public:
  // arguments: the command line (argv[0] first), re-read on every reload.
  ConfigReloader(SharedState& shared, std::vector<std::string> arguments);
  ~ConfigReloader();  // stop()s
  ConfigReloader(const ConfigReloader&) = delete;
  ConfigReloader& operator=(const ConfigReloader&) = delete;

  // The initial registry load, then the follower thread; starts the reload thread.
  void start();
  // Asks the reload thread for a reload (from the signal handler's executor).
  void requestReload();
  // Reloads now, blocking; serialized with every other reload.
  admin::ReloadStatus reload(std::string_view trigger);
  admin::ReloadStatus status() const;
  // The registry source in use (the caller may keep it across a reload).
  std::shared_ptr<RegistrySource> registrySource() const;
  // Stops the reload thread and the registry source.
  void stop();

 private:
  void swapRegistrySource(const config::ProxyConfig& next);

  SharedState& shared_;
  const std::vector<std::string> arguments_;
  std::mutex reloadMutex_;            // one reload at a time
  mutable std::mutex mutex_;          // status_, registrySource_, pending_, stopping_
  std::condition_variable wake_;
  bool pending_ = false;
  bool stopping_ = false;
  admin::ReloadStatus status_;
  std::shared_ptr<RegistrySource> registrySource_;
  std::thread thread_;
};

}  // namespace mongogate::proxy
