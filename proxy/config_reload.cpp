#include "proxy/config_reload.h"

#include <spdlog/spdlog.h>

#include <chrono>

namespace mongogate::proxy {
namespace {

std::int64_t unixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

RegistrySourceSettings registrySettingsOf(const config::ProxyConfig& config) {
  RegistrySourceSettings settings;
  settings.kind = config.registry.source == config::RegistryConfig::Source::kFile
                      ? RegistrySourceSettings::Kind::kFile
                      : RegistrySourceSettings::Kind::kUpstream;
  settings.upstreamUri = config.main.uri;
  settings.mainDatabase = config.routing.mainDatabase;
  settings.collection = config.routing.registryCollection;
  settings.filePath = config.registry.file;
  settings.pollIntervalMs = config.registry.pollIntervalMs;
  settings.cacheFile = config.registry.cacheFile;
  settings.useChangeStreams = config.registry.changeStreams;
  return settings;
}

ConfigReloader::ConfigReloader(SharedState& shared, std::vector<std::string> arguments)
    : shared_(shared), arguments_(std::move(arguments)) {
  status_.lastSuccessUnix = unixNow();
}

ConfigReloader::~ConfigReloader() { stop(); }

void ConfigReloader::start() {
  auto source = std::make_shared<RegistrySource>(registrySettingsOf(shared_.config), shared_.registry);
  std::string error;
  if (source->loadInitial(error)) {
    spdlog::info("store registry loaded: {} stores{}", shared_.registry.current()->size(),
                 source->loadedFromCache() ? " (from the cache file: the upstream is unreachable)" : "");
  } else {
    spdlog::error("store registry not loaded: {}; commands are refused until it loads", error);
  }
  source->start();
  {
    std::lock_guard lock(mutex_);
    registrySource_ = std::move(source);
  }
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return pending_ || stopping_; });
      if (stopping_) return;
      pending_ = false;
      lock.unlock();
      reload("SIGHUP");
      lock.lock();
    }
  });
}

void ConfigReloader::requestReload() {
  {
    std::lock_guard lock(mutex_);
    pending_ = true;  // several signals before the thread wakes: one reload
  }
  wake_.notify_one();
}

void ConfigReloader::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  std::shared_ptr<RegistrySource> source = registrySource();
  if (source) source->stop();
}

std::shared_ptr<RegistrySource> ConfigReloader::registrySource() const {
  std::lock_guard lock(mutex_);
  return registrySource_;
}

admin::ReloadStatus ConfigReloader::status() const {
  std::lock_guard lock(mutex_);
  admin::ReloadStatus status = status_;
  status.generation = shared_.runtime.generation();
  return status;
}

void ConfigReloader::swapRegistrySource(const config::ProxyConfig& next) {
  auto source = std::make_shared<RegistrySource>(registrySettingsOf(next), shared_.registry);
  std::shared_ptr<RegistrySource> old = registrySource();
  // The old follower must not publish the old source's content after the new one loaded.
  if (old) old->stop();
  std::string error;
  if (source->reloadNow(error)) {
    spdlog::info("configuration reload: the registry now follows its new source ({} stores)",
                 shared_.registry.current()->size());
  } else {
    spdlog::warn("configuration reload: the new registry source has not loaded ({}); the current snapshot keeps "
                 "serving until it does", error);
  }
  source->start();
  std::lock_guard lock(mutex_);
  registrySource_ = std::move(source);
}

admin::ReloadStatus ConfigReloader::reload(std::string_view trigger) {
  std::lock_guard serial(reloadMutex_);
  std::vector<const char*> argv;
  for (const std::string& argument : arguments_) argv.push_back(argument.c_str());
  const config::ConfigResult loaded =
      config::loadConfig(static_cast<int>(argv.size()), argv.data(), config::processEnvironment());
  const std::shared_ptr<const RuntimeConfig> running = shared_.runtime.current();
  ReloadPlan plan = planReload(running->config, loaded);
  const std::int64_t now = unixNow();
  if (!plan.problems.empty()) {
    spdlog::error("configuration reload ({}) refused; the running configuration (generation {}) stays. {} problem{}:",
                  trigger, running->generation, plan.problems.size(), plan.problems.size() == 1 ? "" : "s");
    for (const std::string& problem : plan.problems) spdlog::error("  {}", problem);
    std::lock_guard lock(mutex_);
    status_.refused += 1;
    status_.lastAttemptUnix = now;
    status_.lastResult = "refused";
    status_.lastTrigger = std::string(trigger);
    status_.problems = std::move(plan.problems);
    status_.needsRestart.clear();
  } else {
    for (const std::string& warning : plan.warnings) spdlog::warn("configuration reload: {}", warning);
    for (const std::string& path : plan.needsRestart) {
      spdlog::warn("configuration reload: {} changed, which needs a restart; it keeps its running value", path);
    }
    if (plan.registrySourceChanged) swapRegistrySource(plan.next);
    {
      std::lock_guard lock(shared_.assignmentMutex);
      shared_.assignment.policy = plan.next.registry.assignment;
    }
    spdlog::set_level(spdlog::level::from_str(plan.next.logLevel));
    const std::uint64_t generation = shared_.runtime.publish(std::move(plan.next));
    spdlog::info("configuration reload ({}) applied: generation {}", trigger, generation);
    std::lock_guard lock(mutex_);
    status_.applied += 1;
    status_.lastAttemptUnix = now;
    status_.lastSuccessUnix = now;
    status_.lastResult = "applied";
    status_.lastTrigger = std::string(trigger);
    status_.problems.clear();
    status_.needsRestart = std::move(plan.needsRestart);
  }
  return status();
}

}  // namespace mongogate::proxy
