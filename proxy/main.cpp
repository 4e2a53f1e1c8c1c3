// mongogate — a MongoDB wire-protocol proxy. Entry point: configuration, logging, run.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <mongoc/mongoc.h>

#include <cstdio>
#include <string>
#include <vector>

#include "config/proxy_config.h"
#include "config/srv.h"
#include "proxy/log_format.h"
#include "proxy/server.h"

namespace {

// libmongoc (the registry reader) logs through spdlog, one level down: its monitor
// chatter must not drown the proxy's own lines.
void forwardMongocLog(mongoc_log_level_t level, const char* domain, const char* message, void*) {
  switch (level) {
    case MONGOC_LOG_LEVEL_ERROR:
    case MONGOC_LOG_LEVEL_CRITICAL:
      spdlog::error("{}: {}", domain, message);
      break;
    case MONGOC_LOG_LEVEL_WARNING:
      spdlog::warn("{}: {}", domain, message);
      break;
    case MONGOC_LOG_LEVEL_MESSAGE:
    case MONGOC_LOG_LEVEL_INFO:
      spdlog::debug("{}: {}", domain, message);
      break;
    default:
      spdlog::trace("{}: {}", domain, message);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // mongogate's own libmongoc clients (the registry reader) introduce themselves as
  // "mongoc / mongogate"; client metadata is never forwarded.
  mongoc_init();
  mongoc_log_set_handler(forwardMongocLog, nullptr);
  mongoc_handshake_data_append("mongogate", MONGOGATE_VERSION, nullptr);
  using namespace mongogate;
  auto logger = spdlog::stderr_color_mt("mongogate");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");

  const auto environment = config::processEnvironment();
  config::ConfigResult loaded = config::loadConfig(argc, argv, environment);
  if (loaded.showHelp) {
    std::fputs(config::usageText().c_str(), stdout);
    return 0;
  }
  // mongodb+srv:// seed lists come from DNS, once, at start (and in --check-config).
  if (loaded.problems.empty()) config::resolveSrvUpstreams(loaded.config, environment, loaded.problems);
  if (!loaded.problems.empty() || loaded.config.checkConfigOnly) {
    for (const auto& warning : loaded.warnings) {
      std::fprintf(stderr, "warning: %s\n", config::formatProblem(warning).c_str());
    }
  }
  if (!loaded.problems.empty()) {
    std::fprintf(stderr, "mongogate: invalid configuration:\n");
    for (const auto& problem : loaded.problems) {
      std::fprintf(stderr, "  %s\n", config::formatProblem(problem).c_str());
    }
    return 2;
  }
  if (loaded.config.checkConfigOnly) {
    std::puts("configuration OK");
    return 0;
  }
  proxy::configureLogFormat(loaded.config.log.format);
  spdlog::set_level(spdlog::level::from_str(loaded.config.logLevel));
  spdlog::flush_on(spdlog::level::info);
  for (const auto& warning : loaded.warnings) spdlog::warn("configuration: {}", config::formatProblem(warning));
  proxy::Server server(loaded.config, std::vector<std::string>(argv, argv + argc));
  return server.run();
}
