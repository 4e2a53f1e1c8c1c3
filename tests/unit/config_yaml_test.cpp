// The YAML configuration file (SPEC §9): every problem is reported with its path and
// position, ${VAR} / ${VAR:-default} expansion, the precedence of file, environment and
// command line, and the annotated example file, which must validate.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <unistd.h>

#include "config/proxy_config.h"

namespace mongogate::config {
namespace {

namespace fs = std::filesystem;
using Environment = std::map<std::string, std::string>;

const Environment kMainOnly{{"MONGODB_URI", "mongodb://db.internal:27017/main_db"}};

// A fresh directory per test, removed afterwards.
class ConfigYamlFiles {
 public:
  ConfigYamlFiles() {
    std::string pattern = (fs::temp_directory_path() / "mongogate-config-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
  }
  ~ConfigYamlFiles() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }

 private:
  fs::path dir_;
};

ConfigResult load(std::vector<std::string> args, const Environment& env) {
  std::vector<const char*> argv{"mongogate"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return loadConfig(static_cast<int>(argv.size()), argv.data(), env);
}

ConfigResult loadYaml(const ConfigYamlFiles& files, const std::string& yaml, const Environment& env = kMainOnly,
                      std::vector<std::string> extraArgs = {}) {
  std::vector<std::string> args{"--config", files.write("mongogate.yaml", yaml)};
  args.insert(args.end(), extraArgs.begin(), extraArgs.end());
  return load(args, env);
}

std::string listProblems(const std::vector<ConfigProblem>& problems) {
  std::string out;
  for (const auto& p : problems) out += "\n  " + formatProblem(p);
  return out.empty() ? " (none)" : out;
}

const ConfigProblem* findProblem(const std::vector<ConfigProblem>& problems, const std::string& path,
                                 const std::string& fragment) {
  for (const auto& p : problems) {
    if (p.path == path && p.message.find(fragment) != std::string::npos) return &p;
  }
  return nullptr;
}

// ---- Broken files: one row per mistake, with the path and message it must produce. ----

struct BrokenCase {
  const char* name;
  const char* yaml;
  const char* path;      // "FILE": the configuration file's own path
  const char* fragment;  // part of the message
  int line = 0;          // 1-based line the problem points at; 0: not checked
  std::size_t problems = 1;
};

std::ostream& operator<<(std::ostream& os, const BrokenCase& c) { return os << c.name; }

class ConfigYamlBrokenTest : public testing::TestWithParam<BrokenCase> {};

TEST_P(ConfigYamlBrokenTest, ReportsThePathAndWhy) {
  const BrokenCase& c = GetParam();
  ConfigYamlFiles files;
  ConfigResult r = loadYaml(files, c.yaml);
  const std::string file = files.write("mongogate.yaml", c.yaml);
  const std::string path = std::string(c.path) == "FILE" ? file : c.path;
  const ConfigProblem* problem = findProblem(r.problems, path, c.fragment);
  ASSERT_NE(problem, nullptr) << "expected " << path << ": ..." << c.fragment << "...; got" << listProblems(r.problems);
  EXPECT_EQ(r.problems.size(), c.problems) << listProblems(r.problems);
  if (c.line > 0) {
    EXPECT_EQ(problem->location.rfind(file + ":" + std::to_string(c.line) + ":", 0), 0u) << problem->location;
  }
}

INSTANTIATE_TEST_SUITE_P(
    ConfigFiles, ConfigYamlBrokenTest,
    testing::Values(
        BrokenCase{"InvalidUri", "upstreams:\n  shard2: { uri: \"mongodb://h:99999\" }\n",
                   "upstreams.shard2.uri", "invalid connection string", 2},
        BrokenCase{"UriWithoutScheme", "upstreams:\n  shard2: { uri: \"h:27017\" }\n", "upstreams.shard2.uri",
                   "starting with mongodb://", 2},
        BrokenCase{"UpstreamWithoutUri", "upstreams:\n  shard2: {}\n", "upstreams.shard2.uri",
                   "every upstream needs a connection string", 2},
        BrokenCase{"UpstreamNull", "upstreams:\n  shard2:\n", "upstreams.shard2.uri", "missing"},
        BrokenCase{"UpstreamUnknownKey", "upstreams:\n  shard2: { uri: \"mongodb://h\", url: x }\n",
                   "upstreams.shard2.url", "unknown key", 2},
        BrokenCase{"UpstreamNotAMap", "upstreams:\n  shard2: mongodb://h\n", "upstreams.shard2",
                   "expected a map such as { uri: ... }, got a single value", 2},
        BrokenCase{"UpstreamsNotAMap", "upstreams: [main]\n", "upstreams", "expected a map of upstream names"},
        BrokenCase{"UpstreamBadName", "upstreams:\n  \"shard two\": { uri: \"mongodb://h\" }\n",
                   "upstreams.shard two", "letters, digits"},
        BrokenCase{"DuplicateUpstream",
                   "upstreams:\n  shard2: { uri: \"mongodb://a\" }\n  shard2: { uri: \"mongodb://b\" }\n",
                   "upstreams.shard2", "duplicate key (first given on line 2)", 3},
        BrokenCase{"DuplicateTopLevelKey", "threads: 1\nthreads: 2\n", "threads", "duplicate key", 2},
        BrokenCase{"PlacementOutOfRange", "routing:\n  store_databases:\n    placement: { 7: main }\n",
                   "routing.store_databases.placement.7", "store database 7 is outside 1..5", 3},
        BrokenCase{"PlacementZero", "routing:\n  store_databases:\n    placement: { 0: main }\n",
                   "routing.store_databases.placement.0", "outside 1..5"},
        BrokenCase{"PlacementOutsideSmallerCount",
                   "routing:\n  store_databases:\n    count: 3\n    placement: { 4: main }\n",
                   "routing.store_databases.placement.4", "outside 1..3"},
        BrokenCase{"PlacementUnknownUpstream", "routing:\n  store_databases:\n    placement: { 4: shard9 }\n",
                   "routing.store_databases.placement.4", "unknown upstream 'shard9'", 3},
        BrokenCase{"PlacementKeyNotANumber", "routing:\n  store_databases:\n    placement: { four: main }\n",
                   "routing.store_databases.placement.four", "expected a store database number"},
        BrokenCase{"PoolSizeNotANumber", "pool: { max_size: lots }\n", "pool.max_size",
                   "expected a whole number from 1 to 100000, got 'lots'", 1},
        BrokenCase{"PoolSizeZero", "pool:\n  max_size: 0\n", "pool.max_size", "from 1 to 100000, got '0'", 2},
        BrokenCase{"PoolNotAMap", "pool: 5\n", "pool", "expected a map of settings, got a single value"},
        BrokenCase{"HeartbeatTooFrequent", "topology:\n  heartbeat_frequency_ms: 10\n",
                   "topology.heartbeat_frequency_ms", "from 50 to 3600000, got '10'", 2},
        BrokenCase{"RequestTimeoutNegative", "topology:\n  request_timeout_ms: -5\n",
                   "topology.request_timeout_ms", "from 0 to 86400000, got '-5'", 2},
        BrokenCase{"BreakerThresholdNotANumber", "topology:\n  breaker: { failure_threshold: many }\n",
                   "topology.breaker.failure_threshold", "got 'many'", 2},
        BrokenCase{"BreakerUnknownKey", "topology:\n  breaker: { cooldown_ms: 5 }\n",
                   "topology.breaker.cooldown_ms", "unknown key", 2},
        BrokenCase{"UnknownNestedKey", "routing:\n  stor_databases: { count: 3 }\n", "routing.stor_databases",
                   "unknown key", 2},
        BrokenCase{"UnknownTopLevelKey", "listn: 127.0.0.1:1\n", "listn", "unknown key", 1},
        BrokenCase{"DottedKey", "routing.main_database: x\n", "routing.main_database", "unknown key"},
        BrokenCase{"DottedKeyToAList", "routing:\n  master_admin.databases: [a]\n", "routing.master_admin.databases",
                   "unknown key", 2},
        BrokenCase{"ThreadsAList", "threads: [1, 2]\n", "threads", "expected a number, got a list", 1},
        BrokenCase{"ThreadsTooMany", "threads: 5000\n", "threads", "from 0 to 1024"},
        BrokenCase{"ListenNotAnAddress", "listen: nonsense\n", "listen", "expected HOST:PORT, got 'nonsense'", 1},
        BrokenCase{"ListenBadPort", "listen: \"127.0.0.1:70000\"\n", "listen", "expected HOST:PORT"},
        BrokenCase{"LogLevel", "log_level: loud\n", "log_level", "expected one of trace"},
        BrokenCase{"CompressionUnknown", "compression: [snappy, lz4]\n", "compression",
                   "expected snappy, zlib or zstd (or none), got 'lz4'", 1},
        BrokenCase{"CompressionTwice", "compression: \"zlib,zlib\"\n", "compression", "'zlib' is listed twice", 1},
        BrokenCase{"TlsWithoutCertificate", "tls: { enabled: true }\n", "tls.certificate_file",
                   "required when tls.enabled is true"},
        BrokenCase{"TlsCertificateMissing", "tls: { enabled: true, certificate_file: /nonexistent/cert.pem }\n",
                   "tls.certificate_file", "cannot read '/nonexistent/cert.pem'", 1},
        BrokenCase{"TlsKeyMissing",
                   "tls: { enabled: true, certificate_file: /etc/hostname, key_file: /nonexistent/key.pem }\n",
                   "tls.key_file", "cannot read '/nonexistent/key.pem'", 1},
        BrokenCase{"TlsCaMissing",
                   "tls: { enabled: true, certificate_file: /etc/hostname, ca_file: /nonexistent/ca.pem }\n",
                   "tls.ca_file", "cannot read '/nonexistent/ca.pem'", 1},
        BrokenCase{"TlsClientCertificateWithoutCa",
                   "tls: { enabled: true, certificate_file: /etc/hostname, require_client_certificate: true }\n",
                   "tls.require_client_certificate", "needs tls.ca_file"},
        BrokenCase{"TlsEnabledNotABool", "tls: { enabled: yes }\n", "tls.enabled", "expected true or false", 1},
        BrokenCase{"TlsUnknownKey", "tls: { certfile: x }\n", "tls.certfile", "unknown key", 1},
        BrokenCase{"TlsHandshakeTimeoutTooSmall", "tls: { handshake_timeout_ms: 5 }\n", "tls.handshake_timeout_ms",
                   "from 100 to 600000", 1},
        BrokenCase{"LogFormat", "log:\n  format: xml\n", "log.format", "expected text or json, got 'xml'", 2},
        BrokenCase{"SlowOperationNotANumber", "log: { slow_operation_ms: fast }\n", "log.slow_operation_ms",
                   "expected a whole number from 0 to 3600000, got 'fast'", 1},
        BrokenCase{"LogNotAMap", "log: json\n", "log", "expected a map of settings, got a single value"},
        BrokenCase{"MaxMessageSizeTooSmall", "max_message_size: 10\n", "max_message_size", "from 1024 to"},
        BrokenCase{"MasterAdminUnknownUpstream", "routing:\n  master_admin: { upstream: nope }\n",
                   "routing.master_admin.upstream", "unknown upstream 'nope'", 2},
        BrokenCase{"MasterAdminDatabasesNotAList", "routing:\n  master_admin: { databases: masteradmin }\n",
                   "routing.master_admin.databases", "expected a list of database names"},
        BrokenCase{"MasterAdminDatabaseInvalid", "routing:\n  master_admin: { databases: [ok, \"a.b\"] }\n",
                   "routing.master_admin.databases[1]", "cannot contain '.'"},
        BrokenCase{"MasterAdminDatabaseTwice", "routing:\n  master_admin: { databases: [a, a] }\n",
                   "routing.master_admin.databases[1]", "listed twice"},
        BrokenCase{"MasterAdminIsMainDatabase", "routing:\n  master_admin: { databases: [main_db] }\n",
                   "routing.master_admin.databases", "is the main database"},
        BrokenCase{"PhysicalDatabaseWithTwoDatabases",
                   "routing:\n  master_admin: { databases: [a, b], physical_database: c }\n",
                   "routing.master_admin.physical_database", "only one master-admin database can be renamed"},
        BrokenCase{"MainDatabaseInvalid", "routing: { main_database: \"a.b\" }\n", "routing.main_database",
                   "cannot contain '.'"},
        BrokenCase{"MainDatabaseIsAStoreDatabase", "routing: { main_database: pos_db_2 }\n",
                   "routing.main_database", "is also store database 2"},
        BrokenCase{"MainDatabaseLooksPerStore", "routing: { main_database: store_x }\n", "routing.main_database",
                   "starts with store_database_prefix"},
        BrokenCase{"StoreDatabasePrefixEmpty", "routing: { store_database_prefix: \"\" }\n",
                   "routing.store_database_prefix", "cannot be empty"},
        BrokenCase{"RegistryCollectionReserved", "routing: { registry_collection: system.stores }\n",
                   "routing.registry_collection", "reserved"},
        BrokenCase{"PrefixInvalid", "routing:\n  store_databases: { prefix: \"pos db\" }\n",
                   "routing.store_databases.prefix", "cannot contain ' '"},
        BrokenCase{"CountZero", "routing:\n  store_databases: { count: 0 }\n", "routing.store_databases.count",
                   "from 1 to 1000, got '0'"},
        BrokenCase{"StoresPerDatabaseZero", "routing:\n  store_databases: { stores_per_database: 0 }\n",
                   "routing.store_databases.stores_per_database", "from 1 to 1000000, got '0'"},
        BrokenCase{"AllowDropNotABool", "routing: { allow_drop_main_database: maybe }\n",
                   "routing.allow_drop_main_database", "expected true or false, got 'maybe'"},
        BrokenCase{"RegistryFileMissing", "registry:\n  source: file\n", "registry.file",
                   "required when registry.source is file"},
        BrokenCase{"RegistrySourceUnknown", "registry: { source: database }\n", "registry.source",
                   "expected upstream or file"},
        BrokenCase{"AssignmentUnknown", "registry:\n  assignment: random\n", "registry.assignment",
                   "expected fill, least_loaded or round_robin, got 'random'", 2},
        BrokenCase{"PollIntervalTooShort", "registry: { poll_interval_ms: 5 }\n", "registry.poll_interval_ms",
                   "from 100 to"},
        BrokenCase{"ChangeStreamsNotABool", "registry: { change_streams: yes }\n", "registry.change_streams",
                   "expected true or false"},
        BrokenCase{"UnsetVariable", "listen: \"${MONGOGATE_TEST_SURELY_UNSET}\"\n", "listen",
                   "environment variable MONGOGATE_TEST_SURELY_UNSET is not set", 1},
        BrokenCase{"UnsetVariableInUri", "upstreams:\n  main: { uri: \"${MONGOGATE_TEST_SURELY_UNSET}\" }\n",
                   "upstreams.main.uri", "MONGOGATE_TEST_SURELY_UNSET is not set", 2},
        BrokenCase{"BadReference", "listen: \"${}\"\n", "listen", "must be followed by a variable name"},
        BrokenCase{"UnclosedReference", "listen: \"${HOST\"\n", "listen", "'${HOST' has no closing '}'"},
        BrokenCase{"NotYaml", "threads: [1,\nlisten: x\n", "FILE", "not valid YAML"},
        BrokenCase{"TwoDocuments", "threads: 1\n---\nthreads: 2\n", "FILE", "holds 2 YAML documents"},
        BrokenCase{"TopLevelList", "- listen\n- threads\n", "FILE", "expected a map of settings at the top level"},
        BrokenCase{"ComplexKey", "? [a, b]\n: c\n", "FILE", "keys must be plain names"},
        BrokenCase{"EveryProblemOfAFile",
                   "threads: many\npool: { max_size: lots }\nregistry: { assignment: random }\nbogus: 1\n",
                   "bogus", "unknown key", 4, 4}),
    [](const testing::TestParamInfo<BrokenCase>& info) { return std::string(info.param.name); });

TEST(ConfigYamlTest, EveryProblemOfAFileIsListed) {
  ConfigYamlFiles files;
  auto r = loadYaml(files,
                    "threads: many\n"
                    "pool: { max_size: lots }\n"
                    "routing:\n"
                    "  store_databases:\n"
                    "    placement: { 7: shard9 }\n"
                    "registry: { source: file }\n");
  EXPECT_NE(findProblem(r.problems, "threads", "got 'many'"), nullptr);
  EXPECT_NE(findProblem(r.problems, "pool.max_size", "got 'lots'"), nullptr);
  EXPECT_NE(findProblem(r.problems, "routing.store_databases.placement.7", "outside 1..5"), nullptr);
  EXPECT_NE(findProblem(r.problems, "registry.file", "required"), nullptr);
  EXPECT_EQ(r.problems.size(), 4u) << listProblems(r.problems);
}

TEST(ConfigYamlTest, MissingFileIsReported) {
  auto r = load({"--config", "/nonexistent/mongogate.yaml"}, kMainOnly);
  EXPECT_NE(findProblem(r.problems, "--config", "cannot read '/nonexistent/mongogate.yaml'"), nullptr)
      << listProblems(r.problems);
}

TEST(ConfigYamlTest, ConnectionStringsNeverAppearInProblems) {
  ConfigYamlFiles files;
  auto r = loadYaml(files,
                    "upstreams:\n"
                    "  main: { uri: \"${MONGODB_URI}\" }\n"
                    "  shard2: { uri: \"mongodb://app:hunter2@\" }\n",
                    {{"MONGODB_URI", "mongodb://app:s3cret@db:notaport/main_db"}});
  ASSERT_NE(findProblem(r.problems, "upstreams.main.uri", "invalid connection string"), nullptr)
      << listProblems(r.problems);
  ASSERT_NE(findProblem(r.problems, "upstreams.shard2.uri", ""), nullptr) << listProblems(r.problems);
  for (const auto& p : r.problems) {
    EXPECT_EQ(formatProblem(p).find("s3cret"), std::string::npos) << formatProblem(p);
    EXPECT_EQ(formatProblem(p).find("hunter2"), std::string::npos) << formatProblem(p);
  }
}

// ---- A valid file: every section lands in the plain structs. ----

TEST(ConfigYamlTest, FileFillsEveryStruct) {
  ConfigYamlFiles files;
  auto r = loadYaml(files,
                    "listen: 0.0.0.0:7000\n"
                    "threads: 3\n"
                    "log_level: debug\n"
                    "log: { format: json, slow_operation_ms: 0 }\n"
                    "max_message_size: 2000000\n"
                    "drain_timeout_ms: 500\n"
                    "port_file: /tmp/port\n"
                    "upstreams:\n"
                    "  main: { uri: \"mongodb://m1:27017,m2:27018/shop_main?appName=pos\" }\n"
                    "  masteradmin: { uri: \"mongodb://admin.internal:27019/admin_db\" }\n"
                    "  shard2: { uri: \"mongodb://s2:27017\" }\n"
                    "  shard3: { uri: \"mongodb://s3:27017\" }\n"
                    "pool: { max_size: 10, wait_queue_timeout_ms: 30, connect_timeout_ms: 40, idle_check_ms: 50 }\n"
                    "topology:\n"
                    "  heartbeat_frequency_ms: 700\n"
                    "  server_selection_timeout_ms: 800\n"
                    "  local_threshold_ms: 9\n"
                    "  cursor_idle_timeout_ms: 60000\n"
                    "  request_deadline_grace_ms: 250\n"
                    "  request_timeout_ms: 30000\n"
                    "  breaker: { failure_threshold: 2, cool_down_ms: 900 }\n"
                    "routing:\n"
                    "  registry_collection: tenants\n"
                    "  master_admin: { databases: [masteradmin], upstream: shard3, physical_database: ma }\n"
                    "  store_databases:\n"
                    "    prefix: shop\n"
                    "    count: 4\n"
                    "    stores_per_database: 7\n"
                    "    placement: { 2: shard2, 4: shard2 }\n"
                    "  store_database_prefix: tenant_\n"
                    "  allow_drop_main_database: true\n"
                    "registry:\n"
                    "  source: file\n"
                    "  file: /etc/stores.yaml\n"
                    "  poll_interval_ms: 250\n"
                    "  change_streams: false\n"
                    "  cache_file: /var/cache.json\n"
                    "  assignment: least_loaded\n",
                    {});
  ASSERT_TRUE(r.problems.empty()) << listProblems(r.problems);
  EXPECT_TRUE(r.warnings.empty()) << listProblems(r.warnings);
  const ProxyConfig& c = r.config;
  EXPECT_EQ(c.listen.toString(), "0.0.0.0:7000");
  EXPECT_EQ(c.threads, 3u);
  EXPECT_EQ(c.logLevel, "debug");
  EXPECT_EQ(c.log.format, LogConfig::Format::kJson);
  EXPECT_EQ(c.log.slowOperationMs, 0u);
  EXPECT_EQ(c.maxMessageSize, 2'000'000);
  EXPECT_EQ(c.drainTimeoutMs, 500u);
  EXPECT_EQ(c.portFile, "/tmp/port");
  EXPECT_EQ(c.pool.maxSize, 10u);
  EXPECT_EQ(c.pool.waitQueueTimeoutMs, 30u);
  EXPECT_EQ(c.pool.connectTimeoutMs, 40u);
  EXPECT_EQ(c.pool.idleCheckMs, 50u);
  EXPECT_EQ(c.topology.heartbeatFrequencyMs, 700u);
  EXPECT_EQ(c.topology.serverSelectionTimeoutMs, 800u);
  EXPECT_EQ(c.topology.localThresholdMs, 9u);
  EXPECT_EQ(c.topology.cursorIdleTimeoutMs, 60'000u);
  EXPECT_EQ(c.topology.breakerFailureThreshold, 2u);
  EXPECT_EQ(c.topology.breakerCoolDownMs, 900u);
  EXPECT_EQ(c.topology.requestDeadlineGraceMs, 250u);
  EXPECT_EQ(c.topology.requestTimeoutMs, 30'000u);

  ASSERT_EQ(c.upstreams.size(), 4u);
  EXPECT_EQ(c.upstreams[0].name, "main");
  EXPECT_EQ(c.upstreams[1].name, "masteradmin");
  EXPECT_EQ(c.upstreams[2].name, "shard2");
  EXPECT_EQ(c.upstreams[3].name, "shard3");
  EXPECT_EQ(c.main.name, "main");
  ASSERT_EQ(c.main.hosts.size(), 2u);
  EXPECT_EQ(c.main.hosts[1].port, 27018);
  EXPECT_EQ(c.main.appName, "pos");
  EXPECT_FALSE(c.upstreams[1].sameAsMain);
  EXPECT_EQ(c.upstreams[1].hosts.at(0).host, "admin.internal");
  ASSERT_NE(c.findUpstream("shard3"), nullptr);
  EXPECT_EQ(c.findUpstream("shard3")->hosts.at(0).host, "s3");
  EXPECT_EQ(c.findUpstream("shard4"), nullptr);

  const router::RoutingConfig& routing = c.routing;
  EXPECT_EQ(routing.mainUpstream, "main");
  EXPECT_EQ(routing.mainDatabase, "shop_main");  // from main's URI
  EXPECT_EQ(routing.registryCollection, "tenants");
  EXPECT_EQ(routing.masterAdminDatabases, std::vector<std::string>{"masteradmin"});
  EXPECT_EQ(routing.masterAdminUpstream, "shard3");
  EXPECT_EQ(routing.masterAdminPhysicalDatabase, "ma");
  EXPECT_EQ(routing.databasePrefix, "shop");
  EXPECT_EQ(routing.databaseCount, 4);
  EXPECT_EQ(routing.storesPerDatabase, 7);
  EXPECT_EQ(routing.storeDatabaseUpstreams, (std::vector<std::string>{"main", "shard2", "main", "shard2"}));
  EXPECT_EQ(routing.storeDatabasePrefix, "tenant_");
  EXPECT_TRUE(routing.allowDropMainDatabase);

  EXPECT_EQ(c.registry.source, RegistryConfig::Source::kFile);
  EXPECT_EQ(c.registry.file, "/etc/stores.yaml");
  EXPECT_EQ(c.registry.pollIntervalMs, 250u);
  EXPECT_FALSE(c.registry.changeStreams);
  EXPECT_EQ(c.registry.cacheFile, "/var/cache.json");
  EXPECT_EQ(c.registry.assignment, router::AssignmentPolicy::kLeastLoaded);
}

TEST(ConfigYamlTest, EmptyFileAndEmptyValuesMeanDefaults) {
  ConfigYamlFiles files;
  for (const char* yaml : {"", "# nothing\n", "threads:\npool: ~\nrouting:\n  main_database:\n"}) {
    auto r = loadYaml(files, yaml);
    ASSERT_TRUE(r.problems.empty()) << yaml << listProblems(r.problems);
    EXPECT_EQ(r.config.threads, 0u);
    EXPECT_EQ(r.config.routing.mainDatabase, "main_db");
    EXPECT_EQ(r.config.routing.databaseCount, 5);
  }
}

TEST(ConfigYamlTest, UnusedUpstreamIsAWarning) {
  ConfigYamlFiles files;
  auto r = loadYaml(files, "upstreams:\n  spare: { uri: \"mongodb://spare\" }\n");
  EXPECT_TRUE(r.problems.empty()) << listProblems(r.problems);
  EXPECT_NE(findProblem(r.warnings, "upstreams.spare", "no route uses this upstream"), nullptr)
      << listProblems(r.warnings);
}

// ---- ${VAR} expansion. ----

struct ExpansionCase {
  const char* name;
  const char* text;
  Environment env;
  const char* value;  // expected when error is empty
  const char* error;  // "" = success expected; else a fragment of the error
};

std::ostream& operator<<(std::ostream& os, const ExpansionCase& c) { return os << c.name; }

class ConfigExpansionTest : public testing::TestWithParam<ExpansionCase> {};

TEST_P(ConfigExpansionTest, Expands) {
  const ExpansionCase& c = GetParam();
  Expansion e = expandVariables(c.text, c.env);
  if (std::string(c.error).empty()) {
    EXPECT_EQ(e.error, "");
    EXPECT_EQ(e.value, c.value);
  } else {
    EXPECT_NE(e.error.find(c.error), std::string::npos) << e.error;
    EXPECT_EQ(e.value, "");
  }
  for (const auto& [name, value] : c.env) {
    if (!value.empty()) {
      EXPECT_EQ(e.error.find(value), std::string::npos) << "leaks " << name << ": " << e.error;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    ConfigCases, ConfigExpansionTest,
    testing::Values(
        ExpansionCase{"Plain", "no references", {}, "no references", ""},
        ExpansionCase{"Set", "${A}", {{"A", "x"}}, "x", ""},
        ExpansionCase{"Embedded", "mongodb://${HOST}:${PORT}/db", {{"HOST", "h"}, {"PORT", "1"}}, "mongodb://h:1/db",
                      ""},
        ExpansionCase{"SetButEmpty", "[${A}]", {{"A", ""}}, "[]", ""},
        ExpansionCase{"UnsetWithDefault", "${A:-fallback}", {}, "fallback", ""},
        ExpansionCase{"EmptyTakesDefault", "${A:-fallback}", {{"A", ""}}, "fallback", ""},
        ExpansionCase{"SetIgnoresDefault", "${A:-fallback}", {{"A", "x"}}, "x", ""},
        ExpansionCase{"EmptyDefault", "<${A:-}>", {}, "<>", ""},
        ExpansionCase{"DefaultWithColons", "${A:-mongodb://h:1/db?w=1}", {}, "mongodb://h:1/db?w=1", ""},
        ExpansionCase{"NestedDefaultTaken", "${A:-${B:-z}}", {}, "z", ""},
        ExpansionCase{"NestedDefaultInner", "${A:-${B:-z}}", {{"B", "b"}}, "b", ""},
        ExpansionCase{"NestedDefaultOuter", "${A:-${B:-z}}", {{"A", "a"}, {"B", "b"}}, "a", ""},
        ExpansionCase{"UnusedDefaultMayBeUnset", "${A:-${B}}", {{"A", "a"}}, "a", ""},
        ExpansionCase{"ValueNotReexpanded", "${A}", {{"A", "${B}"}}, "${B}", ""},
        ExpansionCase{"LiteralDollar", "pa$$word $5 $", {}, "pa$$word $5 $", ""},
        ExpansionCase{"EscapedReference", "$${A}", {{"A", "x"}}, "${A}", ""},
        ExpansionCase{"Unset", "${A}", {}, "", "environment variable A is not set"},
        ExpansionCase{"UnsetNames", "${A}${B}", {}, "", "environment variables A, B are not set"},
        ExpansionCase{"UnsetInTakenDefault", "${A:-${B}}", {}, "", "environment variable B is not set"},
        ExpansionCase{"NoName", "${}", {}, "", "must be followed by a variable name"},
        ExpansionCase{"DigitName", "${1A}", {}, "", "must be followed by a variable name"},
        ExpansionCase{"Unclosed", "${A", {{"A", "secret-a"}}, "", "'${A' has no closing '}'"},
        ExpansionCase{"UnclosedDefault", "${A:-x", {}, "", "'${A:-' has no closing '}'"},
        ExpansionCase{"OtherOperator", "${A-x}", {{"A", "secret-a"}}, "", "write ${A} or ${A:-default}"},
        ExpansionCase{"TooDeep", "${A:-${B:-${C:-${D:-${E:-${F:-${G:-${H:-${I:-${J:-x}}}}}}}}}}", {}, "",
                      "nested more than 8 deep"}),
    [](const testing::TestParamInfo<ExpansionCase>& info) { return std::string(info.param.name); });

TEST(ConfigYamlTest, ExpansionListsTheVariablesReferenced) {
  Expansion e = expandVariables("${A:-${B}}-${C}", {{"A", "1"}, {"C", "3"}});
  EXPECT_EQ(e.error, "");
  EXPECT_EQ(e.value, "1-3");
  EXPECT_EQ(e.variables, (std::vector<std::string>{"A", "B", "C"}));
}

TEST(ConfigYamlTest, ExpansionHappensInEveryValueAfterParsing) {
  ConfigYamlFiles files;
  // The value holds YAML syntax; it must not change the document's structure.
  auto r = loadYaml(files,
                    "listen: \"${LISTEN_HOST:-127.0.0.1}:${LISTEN_PORT}\"\n"
                    "routing:\n"
                    "  master_admin: { databases: [\"${ADMIN_DB}\"] }\n"
                    "  store_databases:\n"
                    "    count: ${DATABASE_COUNT:-5}\n"
                    "    placement: { 2: \"${SHARD:-main}\" }\n"
                    "registry: { source: file, file: \"${REGISTRY_FILE}\" }\n",
                    {{"MONGODB_URI", "mongodb://h/main_db"},
                     {"LISTEN_PORT", "6000"},
                     {"ADMIN_DB", "admin2"},
                     {"DATABASE_COUNT", "2"},
                     {"REGISTRY_FILE", "/tmp/a: b # c"}});
  ASSERT_TRUE(r.problems.empty()) << listProblems(r.problems);
  EXPECT_EQ(r.config.listen.toString(), "127.0.0.1:6000");
  EXPECT_EQ(r.config.routing.masterAdminDatabases, std::vector<std::string>{"admin2"});
  EXPECT_EQ(r.config.routing.databaseCount, 2);
  EXPECT_EQ(r.config.routing.storeDatabaseUpstreams, (std::vector<std::string>{"main", "main"}));
  EXPECT_EQ(r.config.registry.file, "/tmp/a: b # c");
  EXPECT_TRUE(r.warnings.empty()) << listProblems(r.warnings);  // DATABASE_COUNT is referenced
}

TEST(ConfigYamlTest, MasterAdminNestedDefaultFallsBackToMain) {
  ConfigYamlFiles files;
  const std::string yaml =
      "upstreams:\n"
      "  main: { uri: \"${MONGODB_URI}\" }\n"
      "  masteradmin: { uri: \"${MASTER_ADMIN_MONGO_URI:-${MONGODB_URI}}\" }\n";
  auto fallback = loadYaml(files, yaml);
  ASSERT_TRUE(fallback.problems.empty()) << listProblems(fallback.problems);
  const UpstreamConfig* admin = fallback.config.findUpstream("masteradmin");
  ASSERT_NE(admin, nullptr);
  EXPECT_EQ(admin->uri, "mongodb://db.internal:27017/main_db");
  EXPECT_TRUE(admin->sameAsMain);

  auto own = loadYaml(files, yaml,
                      {{"MONGODB_URI", "mongodb://db.internal:27017/main_db"},
                       {"MASTER_ADMIN_MONGO_URI", "mongodb://admin.internal:27017/masteradmin"}});
  ASSERT_TRUE(own.problems.empty()) << listProblems(own.problems);
  admin = own.config.findUpstream("masteradmin");
  ASSERT_NE(admin, nullptr);
  EXPECT_EQ(admin->hosts.at(0).host, "admin.internal");
  EXPECT_FALSE(admin->sameAsMain);
}

// ---- Precedence: defaults < file < environment (keys the file omits) < command line. ----

TEST(ConfigYamlTest, FileWinsOverEnvironmentItDoesNotReference) {
  ConfigYamlFiles files;
  auto r = loadYaml(files, "listen: 127.0.0.1:1000\nrouting:\n  store_databases: { count: 3 }\n",
                    {{"MONGODB_URI", "mongodb://h/main_db"},
                     {"MONGOGATE_LISTEN", "0.0.0.0:2000"},
                     {"DATABASE_COUNT", "8"}});
  ASSERT_TRUE(r.problems.empty()) << listProblems(r.problems);
  EXPECT_EQ(r.config.listen.port, 1000);
  EXPECT_EQ(r.config.routing.databaseCount, 3);
  // The shadowed variables are named, so that nobody wonders why they had no effect.
  EXPECT_NE(findProblem(r.warnings, "MONGOGATE_LISTEN", "sets listen"), nullptr) << listProblems(r.warnings);
  EXPECT_NE(findProblem(r.warnings, "DATABASE_COUNT", "routing.store_databases.count"), nullptr)
      << listProblems(r.warnings);
}

TEST(ConfigYamlTest, NoWarningWhenTheEnvironmentAgreesWithTheFile) {
  ConfigYamlFiles files;
  auto r = loadYaml(files, "listen: 127.0.0.1:1000\nupstreams:\n  main: { uri: \"mongodb://h/main_db\" }\n",
                    {{"MONGODB_URI", "mongodb://h/main_db"}, {"MONGOGATE_LISTEN", "127.0.0.1:1000"}});
  ASSERT_TRUE(r.problems.empty()) << listProblems(r.problems);
  EXPECT_TRUE(r.warnings.empty()) << listProblems(r.warnings);
}

TEST(ConfigYamlTest, EnvironmentFillsWhatTheFileOmits) {
  ConfigYamlFiles files;
  auto r = loadYaml(files, "threads: 2\nupstreams:\n  shard2: { uri: \"mongodb://s2\" }\n"
                           "routing:\n  store_databases: { placement: { 1: shard2 } }\n",
                    {{"MONGODB_URI", "mongodb://h/main_db"},
                     {"MASTER_ADMIN_MONGO_URI", "mongodb://admin/ma"},
                     {"MONGOGATE_LISTEN", "0.0.0.0:2000"},
                     {"DATABASE_PREFIX", "shop"},
                     {"DATABASE_COUNT", "8"},
                     {"STORES_PER_DATABASE", "9"}});
  ASSERT_TRUE(r.problems.empty()) << listProblems(r.problems);
  EXPECT_TRUE(r.warnings.empty()) << listProblems(r.warnings);
  EXPECT_EQ(r.config.threads, 2u);
  EXPECT_EQ(r.config.listen.port, 2000);
  EXPECT_EQ(r.config.main.hosts.at(0).host, "h");
  EXPECT_EQ(r.config.findUpstream("masteradmin")->hosts.at(0).host, "admin");
  EXPECT_EQ(r.config.routing.databasePrefix, "shop");
  EXPECT_EQ(r.config.routing.databaseCount, 8);
  EXPECT_EQ(r.config.routing.storesPerDatabase, 9);
  EXPECT_EQ(r.config.routing.storeDatabaseUpstreams.at(0), "shard2");
}

TEST(ConfigYamlTest, CommandLineWinsOverFileAndEnvironment) {
  ConfigYamlFiles files;
  auto r = loadYaml(files, "listen: 127.0.0.1:1000\nupstreams:\n  main: { uri: \"mongodb://file/f_db\" }\n"
                           "routing:\n  store_databases: { count: 3 }\n",
                    {{"MONGODB_URI", "mongodb://env/e_db"}, {"MONGOGATE_LISTEN", "0.0.0.0:2000"}},
                    {"--listen", "0.0.0.0:3000", "--database-count", "9", "--upstream", "mongodb://cli/c_db"});
  ASSERT_TRUE(r.problems.empty()) << listProblems(r.problems);
  EXPECT_EQ(r.config.listen.port, 3000);
  EXPECT_EQ(r.config.routing.databaseCount, 9);
  EXPECT_EQ(r.config.main.hosts.at(0).host, "cli");
  EXPECT_EQ(r.config.routing.mainDatabase, "c_db");
}

TEST(ConfigYamlTest, ProblemsNameTheLayerThatGaveTheValue) {
  ConfigYamlFiles files;
  auto r = loadYaml(files, "threads: 2\n", {{"MONGODB_URI", "mongodb://h/main_db"}, {"DATABASE_COUNT", "lots"}},
                    {"--pool-max-size", "0"});
  EXPECT_NE(findProblem(r.problems, "DATABASE_COUNT", "got 'lots'"), nullptr) << listProblems(r.problems);
  EXPECT_NE(findProblem(r.problems, "--pool-max-size", "got '0'"), nullptr) << listProblems(r.problems);
  EXPECT_EQ(r.problems.size(), 2u) << listProblems(r.problems);
}

TEST(ConfigYamlTest, PlacementIsJudgedAgainstTheFinalCount) {
  ConfigYamlFiles files;
  const std::string yaml = "routing:\n  store_databases: { placement: { 7: main } }\n";
  auto tooFew = loadYaml(files, yaml);
  EXPECT_NE(findProblem(tooFew.problems, "routing.store_databases.placement.7", "outside 1..5"), nullptr);
  auto enough = loadYaml(files, yaml, {{"MONGODB_URI", "mongodb://h/main_db"}, {"DATABASE_COUNT", "8"}});
  EXPECT_TRUE(enough.problems.empty()) << listProblems(enough.problems);
  EXPECT_EQ(enough.config.routing.storeDatabaseUpstreams.size(), 8u);
}

TEST(ConfigYamlTest, ConfigFileFromTheEnvironment) {
  ConfigYamlFiles files;
  const std::string first = files.write("first.yaml", "threads: 4\n");
  const std::string second = files.write("second.yaml", "threads: 6\n");
  Environment env = kMainOnly;
  env["MONGOGATE_CONFIG"] = first;
  auto fromEnv = load({}, env);
  ASSERT_TRUE(fromEnv.problems.empty()) << listProblems(fromEnv.problems);
  EXPECT_EQ(fromEnv.config.configFile, first);
  EXPECT_EQ(fromEnv.config.threads, 4u);
  auto fromFlag = load({"--config=" + second}, env);  // --config wins
  EXPECT_EQ(fromFlag.config.configFile, second);
  EXPECT_EQ(fromFlag.config.threads, 6u);
  env["MONGOGATE_CONFIG"] = "/nonexistent.yaml";
  EXPECT_NE(findProblem(load({}, env).problems, "MONGOGATE_CONFIG", "cannot read"), nullptr);
}

TEST(ConfigYamlTest, MissingMainUpstreamInAFile) {
  ConfigYamlFiles files;
  auto r = loadYaml(files, "threads: 1\n", {});
  EXPECT_NE(findProblem(r.problems, "upstreams.main.uri", "no upstream"), nullptr) << listProblems(r.problems);
  EXPECT_EQ(r.problems.size(), 1u) << listProblems(r.problems);
}

// ---- The annotated example file. ----

std::string examplePath() {
  return (fs::path(__FILE__).parent_path() / ".." / ".." / "config" / "mongogate.example.yaml").string();
}

TEST(ConfigYamlTest, ExampleFileValidates) {
  auto r = load({"--config", examplePath(), "--check-config"}, kMainOnly);
  ASSERT_TRUE(r.problems.empty()) << listProblems(r.problems);
  EXPECT_TRUE(r.warnings.empty()) << listProblems(r.warnings);
  EXPECT_TRUE(r.config.checkConfigOnly);
  const ProxyConfig& c = r.config;
  ASSERT_EQ(c.upstreams.size(), 3u);
  EXPECT_TRUE(c.findUpstream("masteradmin")->sameAsMain);  // MASTER_ADMIN_MONGO_URI unset
  EXPECT_EQ(c.routing.mainDatabase, "main_db");
  EXPECT_EQ(c.routing.storeDatabaseUpstreams,
            (std::vector<std::string>{"main", "main", "main", "shard2", "shard2"}));
  EXPECT_EQ(c.registry.cacheFile, "/var/lib/mongogate/registry-cache.json");

  // The example says its values are the defaults; hold it to that.
  const ProxyConfig defaults;
  const router::RoutingConfig defaultRouting;
  const RegistryConfig defaultRegistry;
  EXPECT_EQ(c.listen.toString(), defaults.listen.toString());
  EXPECT_EQ(c.threads, defaults.threads);
  EXPECT_EQ(c.logLevel, defaults.logLevel);
  EXPECT_EQ(c.log.format, defaults.log.format);
  EXPECT_EQ(c.log.slowOperationMs, defaults.log.slowOperationMs);
  EXPECT_EQ(c.maxMessageSize, defaults.maxMessageSize);
  EXPECT_EQ(c.drainTimeoutMs, defaults.drainTimeoutMs);
  EXPECT_EQ(c.topology.heartbeatFrequencyMs, defaults.topology.heartbeatFrequencyMs);
  EXPECT_EQ(c.topology.serverSelectionTimeoutMs, defaults.topology.serverSelectionTimeoutMs);
  EXPECT_EQ(c.topology.localThresholdMs, defaults.topology.localThresholdMs);
  EXPECT_EQ(c.topology.cursorIdleTimeoutMs, defaults.topology.cursorIdleTimeoutMs);
  EXPECT_EQ(c.topology.breakerFailureThreshold, defaults.topology.breakerFailureThreshold);
  EXPECT_EQ(c.topology.breakerCoolDownMs, defaults.topology.breakerCoolDownMs);
  EXPECT_EQ(c.portFile, defaults.portFile);
  EXPECT_EQ(c.pool.maxSize, defaults.pool.maxSize);
  EXPECT_EQ(c.pool.waitQueueTimeoutMs, defaults.pool.waitQueueTimeoutMs);
  EXPECT_EQ(c.pool.connectTimeoutMs, defaults.pool.connectTimeoutMs);
  EXPECT_EQ(c.pool.idleCheckMs, defaults.pool.idleCheckMs);
  EXPECT_EQ(c.routing.registryCollection, defaultRouting.registryCollection);
  EXPECT_EQ(c.routing.masterAdminDatabases, defaultRouting.masterAdminDatabases);
  EXPECT_EQ(c.routing.masterAdminUpstream, defaultRouting.masterAdminUpstream);
  EXPECT_EQ(c.routing.databasePrefix, defaultRouting.databasePrefix);
  EXPECT_EQ(c.routing.databaseCount, defaultRouting.databaseCount);
  EXPECT_EQ(c.routing.storesPerDatabase, defaultRouting.storesPerDatabase);
  EXPECT_EQ(c.routing.storeDatabasePrefix, defaultRouting.storeDatabasePrefix);
  EXPECT_EQ(c.routing.allowDropMainDatabase, defaultRouting.allowDropMainDatabase);
  EXPECT_EQ(c.registry.source, defaultRegistry.source);
  EXPECT_EQ(c.registry.pollIntervalMs, defaultRegistry.pollIntervalMs);
  EXPECT_EQ(c.registry.changeStreams, defaultRegistry.changeStreams);
  EXPECT_EQ(c.registry.assignment, defaultRegistry.assignment);
  const AdminConfig defaultAdmin;
  EXPECT_EQ(c.admin.enabled, defaultAdmin.enabled);
  EXPECT_EQ(c.admin.listen.toString(), defaultAdmin.listen.toString());
  EXPECT_EQ(c.admin.token, defaultAdmin.token);
  EXPECT_EQ(c.admin.portFile, defaultAdmin.portFile);
  EXPECT_EQ(c.compression, defaults.compression);
  EXPECT_EQ(c.listenTls.enabled, defaults.listenTls.enabled);
  EXPECT_EQ(c.listenTls.requireClientCertificate, defaults.listenTls.requireClientCertificate);
  EXPECT_EQ(c.listenTls.handshakeTimeoutMs, defaults.listenTls.handshakeTimeoutMs);
}

// ---- Client-side TLS and compression. ----

TEST(ConfigYamlTest, TlsAndCompressionFromTheFile) {
  ConfigYamlFiles files;
  const std::string cert = files.write("cert.pem", "not parsed at load time");
  const std::string ca = files.write("ca.pem", "not parsed at load time");
  auto r = loadYaml(files, "compression: [zstd, zlib]\ntls:\n  enabled: true\n  certificate_file: " + cert +
                               "\n  ca_file: " + ca + "\n  require_client_certificate: true\n");
  ASSERT_TRUE(r.problems.empty()) << listProblems(r.problems);
  EXPECT_EQ(r.config.compression, (std::vector<std::string>{"zstd", "zlib"}));
  EXPECT_TRUE(r.config.listenTls.enabled);
  EXPECT_EQ(r.config.listenTls.certificateFile, cert);
  EXPECT_EQ(r.config.listenTls.caFile, ca);
  EXPECT_TRUE(r.config.listenTls.requireClientCertificate);
  r = loadYaml(files, "compression: []\n");
  ASSERT_TRUE(r.problems.empty()) << listProblems(r.problems);
  EXPECT_TRUE(r.config.compression.empty());
}

TEST(ConfigYamlTest, TlsAndCompressionFromTheCommandLine) {
  ConfigYamlFiles files;
  const std::string cert = files.write("cert.pem", "x");
  auto r = load({"--tls", "true", "--tls-certificate-file", cert, "--compression", "none"}, kMainOnly);
  ASSERT_TRUE(r.problems.empty()) << listProblems(r.problems);
  EXPECT_TRUE(r.config.listenTls.enabled);
  EXPECT_TRUE(r.config.compression.empty());
  Environment env = kMainOnly;
  env["MONGOGATE_COMPRESSION"] = "zlib";
  r = load({}, env);
  ASSERT_TRUE(r.problems.empty()) << listProblems(r.problems);
  EXPECT_EQ(r.config.compression, std::vector<std::string>{"zlib"});
}

TEST(ConfigYamlTest, TlsSettingsWithTlsOffWarn) {
  ConfigYamlFiles files;
  auto r = loadYaml(files, "tls: { certificate_file: /etc/hostname }\n");
  ASSERT_TRUE(r.problems.empty()) << listProblems(r.problems);
  EXPECT_NE(findProblem(r.warnings, "tls.enabled", "tls.enabled is false"), nullptr) << listProblems(r.warnings);
}

// ---- The admin port's settings (SPEC §8). ----

TEST(ConfigYamlTest, AdminSettingsFromTheFile) {
  ConfigYamlFiles files;
  Environment env = kMainOnly;
  env["ADMIN_SECRET"] = "t0ken";
  auto r = loadYaml(files, "admin:\n  listen: 0.0.0.0:9191\n  token: ${ADMIN_SECRET}\n  port_file: /tmp/a.port\n", env);
  ASSERT_TRUE(r.problems.empty()) << listProblems(r.problems);
  EXPECT_TRUE(r.config.admin.enabled);
  EXPECT_EQ(r.config.admin.listen.toString(), "0.0.0.0:9191");
  EXPECT_EQ(r.config.admin.token, "t0ken");
  EXPECT_EQ(r.config.admin.portFile, "/tmp/a.port");
}

TEST(ConfigYamlTest, AdminSettingsFromTheEnvironmentAndTheCommandLine) {
  Environment env = kMainOnly;
  env["MONGOGATE_ADMIN_LISTEN"] = "127.0.0.1:0";
  env["MONGOGATE_ADMIN_TOKEN"] = "from-env";
  auto r = load({"--admin-port-file", "/tmp/p"}, env);
  ASSERT_TRUE(r.problems.empty()) << listProblems(r.problems);
  EXPECT_EQ(r.config.admin.listen.port, 0);
  EXPECT_EQ(r.config.admin.token, "from-env");
  EXPECT_EQ(r.config.admin.portFile, "/tmp/p");
  r = load({"--admin-listen", "off", "--admin-token", "cli"}, env);
  ASSERT_TRUE(r.problems.empty()) << listProblems(r.problems);
  EXPECT_FALSE(r.config.admin.enabled);
  EXPECT_EQ(r.config.admin.token, "cli");
}

TEST(ConfigYamlTest, AdminProblemsNameTheSettingButNotTheToken) {
  ConfigYamlFiles files;
  auto r = loadYaml(files, "admin:\n  listen: nowhere\n  token: \"has space\"\n  colour: blue\n");
  EXPECT_NE(findProblem(r.problems, "admin.listen", "expected HOST:PORT or off"), nullptr) << listProblems(r.problems);
  EXPECT_NE(findProblem(r.problems, "admin.token", "whitespace"), nullptr) << listProblems(r.problems);
  EXPECT_NE(findProblem(r.problems, "admin.colour", "unknown key"), nullptr) << listProblems(r.problems);
  EXPECT_EQ(listProblems(r.problems).find("has space"), std::string::npos);
}

void collectPaths(const YAML::Node& node, const std::string& prefix, std::set<std::string>& out) {
  if (!prefix.empty()) out.insert(prefix);
  if (!node.IsMap()) return;
  for (auto it = node.begin(); it != node.end(); ++it) {
    collectPaths(it->second, prefix.empty() ? it->first.Scalar() : prefix + "." + it->first.Scalar(), out);
  }
}

TEST(ConfigYamlTest, ExampleFileShowsEverySetting) {
  std::set<std::string> shown;
  collectPaths(YAML::LoadFile(examplePath()), "", shown);
  for (const std::string& path : settingPaths()) EXPECT_TRUE(shown.count(path)) << path << " is not in the example";
}

}  // namespace
}  // namespace mongogate::config
