#include "config/proxy_config.h"

#include <mongoc/mongoc.h>

#include <charconv>
#include <cstdlib>
#include <limits>
#include <optional>

extern char** environ;

namespace mongogate::config {
namespace {

template <class T>
std::optional<T> parseNumber(const std::string& text, T min, T max) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return std::nullopt;
  }
  return value;
}

struct OptionSpec {
  const char* flag;
  const char* env;  // nullptr: command line only
  const char* help;
};

constexpr OptionSpec kOptions[] = {
    {"--listen", "MONGOGATE_LISTEN", "HOST:PORT to accept clients on (default 127.0.0.1:27017; port 0 picks one)"},
    {"--upstream", "MONGODB_URI", "connection string of the main upstream (required)"},
    {"--threads", "MONGOGATE_THREADS", "worker threads (default: one per core)"},
    {"--port-file", nullptr, "write the bound port to this file once listening"},
    {"--pool-max-size", "MONGOGATE_POOL_MAX_SIZE", "upstream connections per upstream (default 100)"},
    {"--wait-queue-timeout-ms", "MONGOGATE_WAIT_QUEUE_TIMEOUT_MS", "how long a request waits for an upstream connection (default 2000)"},
    {"--connect-timeout-ms", "MONGOGATE_CONNECT_TIMEOUT_MS", "upstream connect + handshake timeout (default 5000)"},
    {"--max-message-size", "MONGOGATE_MAX_MESSAGE_SIZE", "largest accepted message in bytes (default 48000000)"},
    {"--drain-timeout-ms", "MONGOGATE_DRAIN_TIMEOUT_MS", "on SIGTERM, how long in-flight requests may finish (default 10000)"},
    {"--log-level", "MONGOGATE_LOG_LEVEL", "trace, debug, info, warn or error (default info)"},
};

void applySetting(const std::string& name, const std::string& value, ProxyConfig& c,
                  std::vector<ConfigProblem>& problems) {
  auto bad = [&](std::string why) { problems.push_back({name, std::move(why)}); };
  auto u32 = [&](std::uint32_t& field, std::uint32_t min, std::uint32_t max) {
    if (auto v = parseNumber<std::uint32_t>(value, min, max)) {
      field = *v;
    } else {
      bad("expected a whole number from " + std::to_string(min) + " to " + std::to_string(max) +
          ", got '" + value + "'");
    }
  };
  if (name == "--listen" || name == "MONGOGATE_LISTEN") {
    if (!parseHostPort(value, c.listen)) bad("expected HOST:PORT, got '" + value + "'");
  } else if (name == "--upstream" || name == "MONGODB_URI") {
    c.main.name = "main";
    std::string why = parseUpstreamUri(value, c.main);
    if (!why.empty()) bad(why);
  } else if (name == "--threads" || name == "MONGOGATE_THREADS") {
    u32(c.threads, 0, 1024);
  } else if (name == "--port-file") {
    c.portFile = value;
  } else if (name == "--pool-max-size" || name == "MONGOGATE_POOL_MAX_SIZE") {
    u32(c.pool.maxSize, 1, 100'000);
  } else if (name == "--wait-queue-timeout-ms" || name == "MONGOGATE_WAIT_QUEUE_TIMEOUT_MS") {
    u32(c.pool.waitQueueTimeoutMs, 1, 3'600'000);
  } else if (name == "--connect-timeout-ms" || name == "MONGOGATE_CONNECT_TIMEOUT_MS") {
    u32(c.pool.connectTimeoutMs, 1, 3'600'000);
  } else if (name == "--drain-timeout-ms" || name == "MONGOGATE_DRAIN_TIMEOUT_MS") {
    u32(c.drainTimeoutMs, 0, 3'600'000);
  } else if (name == "--max-message-size" || name == "MONGOGATE_MAX_MESSAGE_SIZE") {
    std::uint32_t v = 0;
    u32(v, 1024, 48'000'000);
    if (v != 0) c.maxMessageSize = static_cast<std::int32_t>(v);
  } else if (name == "--log-level" || name == "MONGOGATE_LOG_LEVEL") {
    static constexpr const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
    bool known = false;
    for (auto* l : kLevels) known = known || value == l;
    if (known) {
      c.logLevel = value;
    } else {
      bad("expected one of trace, debug, info, warn, error, off; got '" + value + "'");
    }
  }
}

}  // namespace

std::string HostPort::toString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

bool parseHostPort(const std::string& text, HostPort& out) {
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) return false;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  auto p = parseNumber<std::uint32_t>(port, 0, 65535);
  if (host.empty() || !p) return false;
  out.host = host;
  out.port = static_cast<std::uint16_t>(*p);
  return true;
}

std::string UpstreamConfig::redactedUri() const {
  // mongodb://user:pass@host → mongodb://user:****@host
  auto scheme = uri.find("://");
  auto at = uri.rfind('@');
  if (scheme == std::string::npos || at == std::string::npos || at < scheme) return uri;
  auto colon = uri.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return uri;
  return uri.substr(0, colon + 1) + "****" + uri.substr(at);
}

std::string parseUpstreamUri(const std::string& uri, UpstreamConfig& out) {
  static const bool initialized = [] {
    mongoc_init();
    return true;
  }();
  (void)initialized;
  if (uri.rfind("mongodb://", 0) != 0 && uri.rfind("mongodb+srv://", 0) != 0) {
    return "expected a connection string starting with mongodb:// or mongodb+srv://";
  }
  bson_error_t error;
  mongoc_uri_t* parsed = mongoc_uri_new_with_error(uri.c_str(), &error);
  if (!parsed) {
    // libmongoc's message may quote the URI; keep only a credential-free summary.
    std::string message = error.message;
    if (message.find('@') != std::string::npos) message = "the connection string is malformed";
    return "invalid connection string: " + message;
  }
  out.uri = uri;
  out.hosts.clear();
  for (const mongoc_host_list_t* h = mongoc_uri_get_hosts(parsed); h; h = h->next) {
    out.hosts.push_back({h->host, h->port});
  }
  const char* db = mongoc_uri_get_database(parsed);
  out.database = db ? db : "";
  const char* app = mongoc_uri_get_appname(parsed);
  out.appName = app ? app : "";
  const bool srv = mongoc_uri_get_srv_hostname(parsed) != nullptr;
  mongoc_uri_destroy(parsed);
  if (srv) return "mongodb+srv:// is not supported yet; list the hosts with mongodb://";
  if (out.hosts.empty()) return "the connection string names no host";
  return {};
}

ConfigResult loadConfig(int argc, const char* const* argv,
                        const std::map<std::string, std::string>& environment) {
  ConfigResult result;
  ProxyConfig& c = result.config;
  for (const auto& spec : kOptions) {
    if (!spec.env) continue;
    auto it = environment.find(spec.env);
    if (it != environment.end() && !it->second.empty()) {
      applySetting(spec.env, it->second, c, result.problems);
    }
  }
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      result.showHelp = true;
      continue;
    }
    std::string value;
    bool hasValue = false;
    if (auto eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      hasValue = true;
    }
    bool known = false;
    for (const auto& spec : kOptions) known = known || arg == spec.flag;
    if (!known) {
      result.problems.push_back({arg, "unknown option (see --help)"});
      // Skip its value too, so that one typo is reported once.
      if (!hasValue && i + 1 < argc && argv[i + 1][0] != '-') ++i;
      continue;
    }
    if (!hasValue) {
      if (i + 1 >= argc) {
        result.problems.push_back({arg, "needs a value"});
        continue;
      }
      value = argv[++i];
    }
    applySetting(arg, value, c, result.problems);
  }
  if (c.main.uri.empty() && !result.showHelp) {
    bool reported = false;
    for (const auto& p : result.problems) reported = reported || p.path == "MONGODB_URI" || p.path == "--upstream";
    if (!reported) {
      result.problems.push_back({"MONGODB_URI", "no upstream: set MONGODB_URI or pass --upstream"});
    }
  }
  return result;
}

std::map<std::string, std::string> processEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string entry = *e;
    auto eq = entry.find('=');
    if (eq != std::string::npos) env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

std::string usageText() {
  std::string text =
      "usage: mongogate [options]\n"
      "A MongoDB wire-protocol proxy. Options (environment variable in brackets):\n";
  for (const auto& spec : kOptions) {
    text += "  ";
    text += spec.flag;
    text += " VALUE";
    if (spec.env) {
      text += "  [";
      text += spec.env;
      text += "]";
    }
    text += "\n      ";
    text += spec.help;
    text += "\n";
  }
  return text;
}

}  // namespace mongogate::config
