// mongogate — a MongoDB wire-protocol proxy. Entry point: configuration, logging, run.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <mongoc/mongoc.h>

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "auth/scram.h"
#include "config/proxy_config.h"
#include "config/srv.h"
#include "proxy/log_format.h"
#include "proxy/server.h"

namespace {

constexpr const char* kHashPasswordUsage =
    "usage: mongogate hash-password --user NAME [--db admin] [--mechanisms SCRAM-SHA-256,SCRAM-SHA-1]\n"
    "                               [--iterations-sha256 15000] [--iterations-sha1 10000]\n"
    "Reads the password from stdin (first line) or, on a terminal, prompts for it twice without\n"
    "echo, and prints an auth.users entry with stored keys (salt, iterations, StoredKey,\n"
    "ServerKey) to paste into the configuration. The password itself is not printed or kept.\n";

// Reads one line; on a terminal without echo.
bool readPassword(const char* prompt, std::string& out) {
  const bool terminal = isatty(STDIN_FILENO);
  termios saved{};
  if (terminal) {
    std::fputs(prompt, stderr);
    tcgetattr(STDIN_FILENO, &saved);
    termios quiet = saved;
    quiet.c_lflag &= static_cast<tcflag_t>(~ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  const bool ok = static_cast<bool>(std::getline(std::cin, out));
  if (terminal) {
    tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::fputs("\n", stderr);
  }
  if (!out.empty() && out.back() == '\r') out.pop_back();
  return ok || !out.empty();
}

std::string keysLine(mongogate::auth::Mechanism mechanism, const std::string& user, const std::string& password,
                     int iterations, std::string& error) {
  using namespace mongogate::auth;
  PreparedPassword prepared = preparePassword(mechanism, user, password);
  if (!prepared.ok()) {
    error = prepared.error;
    return {};
  }
  const StoredCredentials keys = deriveCredentials(mechanism, prepared.value, randomSalt(mechanism), iterations);
  return "{salt: \"" + base64Encode(keys.salt) + "\", iterations: " + std::to_string(iterations) +
         ", stored_key: \"" + base64Encode(keys.storedKey) + "\", server_key: \"" + base64Encode(keys.serverKey) +
         "\"}";
}

// A YAML double-quoted scalar.
std::string yamlQuoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

// `mongogate hash-password`: prints an auth.users entry. Exit 0, or 2 on bad usage.
int hashPassword(int argc, char** argv) {
  using namespace mongogate::auth;
  std::string user;
  std::string database = "admin";
  std::string mechanisms = "SCRAM-SHA-256,SCRAM-SHA-1";
  int iterationsSha256 = kDefaultIterationsSha256;
  int iterationsSha1 = kDefaultIterationsSha1;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kHashPasswordUsage, stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "mongogate hash-password: %s needs a value\n%s", arg.c_str(), kHashPasswordUsage);
      return 2;
    }
    const std::string value = argv[++i];
    if (arg == "--user") {
      user = value;
    } else if (arg == "--db") {
      database = value;
    } else if (arg == "--mechanisms") {
      mechanisms = value;
    } else if (arg == "--iterations-sha256" || arg == "--iterations-sha1") {
      int& field = arg == "--iterations-sha256" ? iterationsSha256 : iterationsSha1;
      try {
        field = std::stoi(value);
      } catch (const std::exception&) {
        field = 0;
      }
      if (field < kMinIterations) {
        std::fprintf(stderr, "mongogate hash-password: %s: expected a whole number of at least %d\n", arg.c_str(),
                     kMinIterations);
        return 2;
      }
    } else {
      std::fprintf(stderr, "mongogate hash-password: unknown option %s\n%s", arg.c_str(), kHashPasswordUsage);
      return 2;
    }
  }
  if (user.empty()) {
    std::fprintf(stderr, "mongogate hash-password: --user is required (SCRAM-SHA-1 keys depend on it)\n%s",
                 kHashPasswordUsage);
    return 2;
  }
  std::vector<Mechanism> chosen;
  for (std::size_t start = 0; start <= mechanisms.size();) {
    const std::size_t comma = std::min(mechanisms.find(',', start), mechanisms.size());
    const std::string name = mechanisms.substr(start, comma - start);
    auto mechanism = parseMechanism(name);
    if (!mechanism) {
      std::fprintf(stderr, "mongogate hash-password: --mechanisms: unknown mechanism '%s' (SCRAM-SHA-256, SCRAM-SHA-1)\n",
                   name.c_str());
      return 2;
    }
    chosen.push_back(*mechanism);
    start = comma + 1;
  }
  std::string password;
  if (!readPassword("Password: ", password) || password.empty()) {
    std::fputs("mongogate hash-password: no password given\n", stderr);
    return 2;
  }
  if (isatty(STDIN_FILENO)) {
    std::string again;
    if (!readPassword("Again: ", again) || again != password) {
      std::fputs("mongogate hash-password: the passwords differ\n", stderr);
      return 2;
    }
  }
  std::string text = "# Paste under auth.users (stored keys only: the password is not in it).\n";
  text += "  - user: " + yamlQuoted(user) + "\n    db: " + yamlQuoted(database) + "\n";
  for (Mechanism mechanism : chosen) {
    std::string error;
    const bool sha1 = mechanism == Mechanism::kScramSha1;
    std::string keys = keysLine(mechanism, user, password, sha1 ? iterationsSha1 : iterationsSha256, error);
    if (!error.empty()) {
      std::fprintf(stderr, "mongogate hash-password: %s\n", error.c_str());
      return 2;
    }
    text += std::string("    ") + (sha1 ? "scram_sha_1: " : "scram_sha_256: ") + keys + "\n";
  }
  std::fputs(text.c_str(), stdout);
  return 0;
}

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
  if (argc >= 2 && std::strcmp(argv[1], "hash-password") == 0) return hashPassword(argc, argv);
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
