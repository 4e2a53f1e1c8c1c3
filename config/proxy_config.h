// config/proxy_config.h — mongogate's start-up configuration as plain structs.
//
// Promise: parsed and validated once, before anything listens. Every problem is
// reported with the name of the setting it concerns; nothing is silently defaulted
// when the user gave a bad value. (SPEC §9; YAML files come with the operations issue.)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mongogate::config {

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
  std::string toString() const;
};

// One upstream deployment as its connection string describes it.
struct UpstreamConfig {
  std::string name;               // "main"
  std::string uri;                // as given (may hold credentials: never log it)
  std::vector<HostPort> hosts;    // seed list from the URI
  std::string database;           // the database named in the URI path ("" when none)
  std::string appName;            // appName= option, sent in mongogate's own hello
  std::string redactedUri() const;  // the URI with any password replaced by "****"
};

struct PoolConfig {
  std::uint32_t maxSize = 100;             // upstream connections per upstream, all threads
  std::uint32_t waitQueueTimeoutMs = 2000; // a request waits this long for a connection
  std::uint32_t connectTimeoutMs = 5000;   // TCP connect + handshake
  std::uint32_t idleCheckMs = 1000;        // idle longer than this: probe before reuse
};

struct ProxyConfig {
  HostPort listen{"127.0.0.1", 27017};
  UpstreamConfig main;
  std::uint32_t threads = 0;               // 0: one per core
  std::string portFile;                    // write the bound port here once listening
  PoolConfig pool;
  std::int32_t maxMessageSize = 48'000'000;
  std::uint32_t drainTimeoutMs = 10'000;   // SIGTERM: how long in-flight requests may finish
  std::string logLevel = "info";
  // Used in hello until the upstream's own hello has been seen.
  std::int32_t fallbackMaxWireVersion = 21;
};

struct ConfigProblem {
  std::string path;     // the setting, e.g. "--listen" or "MONGODB_URI"
  std::string message;  // what is wrong with it
};

struct ConfigResult {
  ProxyConfig config;
  std::vector<ConfigProblem> problems;  // empty when the configuration is valid
  bool showHelp = false;
};

// Parses a "host:port" or "[v6]:port" address. Returns false on a malformed one.
bool parseHostPort(const std::string& text, HostPort& out);

// Parses a mongodb:// or mongodb+srv:// URI with libmongoc's parser.
// Returns an empty string on success, else why it is invalid (never the URI itself).
std::string parseUpstreamUri(const std::string& uri, UpstreamConfig& out);

// Builds the configuration from the command line and the environment. Command-line
// options win over environment variables, which win over the defaults.
ConfigResult loadConfig(int argc, const char* const* argv,
                        const std::map<std::string, std::string>& environment);

// Every environment variable of this process.
std::map<std::string, std::string> processEnvironment();

std::string usageText();

}  // namespace mongogate::config
