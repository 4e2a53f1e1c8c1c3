// Configuration from the command line and the environment: every bad value is
// reported with the setting it concerns.
#include <gtest/gtest.h>

#include "config/proxy_config.h"

namespace mongogate::config {
namespace {

ConfigResult load(std::vector<const char*> args, std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), "mongogate");
  return loadConfig(static_cast<int>(args.size()), args.data(), env);
}

bool hasProblem(const ConfigResult& r, const std::string& path, const std::string& fragment) {
  for (const auto& p : r.problems) {
    if (p.path == path && p.message.find(fragment) != std::string::npos) return true;
  }
  return false;
}

TEST(ConfigTest, DefaultsWithUpstreamFromEnvironment) {
  auto r = load({}, {{"MONGODB_URI", "mongodb://db.example:27018/main_db?appName=pos"}});
  ASSERT_TRUE(r.problems.empty());
  EXPECT_EQ(r.config.listen.host, "127.0.0.1");
  EXPECT_EQ(r.config.listen.port, 27017);
  ASSERT_EQ(r.config.main.hosts.size(), 1u);
  EXPECT_EQ(r.config.main.hosts[0].host, "db.example");
  EXPECT_EQ(r.config.main.hosts[0].port, 27018);
  EXPECT_EQ(r.config.main.database, "main_db");
  EXPECT_EQ(r.config.main.appName, "pos");
  EXPECT_EQ(r.config.maxMessageSize, 48'000'000);
}

TEST(ConfigTest, CommandLineWinsOverEnvironment) {
  auto r = load({"--listen", "0.0.0.0:0", "--upstream=mongodb://a:1,b:2/x", "--pool-max-size", "7"},
                {{"MONGODB_URI", "mongodb://env:1"}, {"MONGOGATE_LISTEN", "127.0.0.1:9"}});
  ASSERT_TRUE(r.problems.empty());
  EXPECT_EQ(r.config.listen.host, "0.0.0.0");
  EXPECT_EQ(r.config.listen.port, 0);
  ASSERT_EQ(r.config.main.hosts.size(), 2u);
  EXPECT_EQ(r.config.main.hosts[1].host, "b");
  EXPECT_EQ(r.config.pool.maxSize, 7u);
}

TEST(ConfigTest, MissingUpstreamIsReported) {
  auto r = load({});
  EXPECT_TRUE(hasProblem(r, "MONGODB_URI", "no upstream"));
}

TEST(ConfigTest, EveryProblemIsListedWithItsPath) {
  auto r = load({"--listen", "nonsense", "--threads", "-3", "--max-message-size", "12", "--bogus", "1",
                 "--log-level", "loud", "--upstream", "http://x"});
  EXPECT_TRUE(hasProblem(r, "--listen", "HOST:PORT"));
  EXPECT_TRUE(hasProblem(r, "--threads", "whole number"));
  EXPECT_TRUE(hasProblem(r, "--max-message-size", "1024"));
  EXPECT_TRUE(hasProblem(r, "--bogus", "unknown option"));
  EXPECT_TRUE(hasProblem(r, "--log-level", "trace"));
  EXPECT_TRUE(hasProblem(r, "--upstream", "mongodb://"));
  EXPECT_EQ(r.problems.size(), 6u);
}

TEST(ConfigTest, OptionWithoutValue) {
  auto r = load({"--upstream", "mongodb://h", "--listen"});
  EXPECT_TRUE(hasProblem(r, "--listen", "needs a value"));
}

TEST(ConfigTest, MalformedUriDoesNotEchoCredentials) {
  auto r = load({"--upstream", "mongodb://user:secret@"});
  ASSERT_FALSE(r.problems.empty());
  for (const auto& p : r.problems) EXPECT_EQ(p.message.find("secret"), std::string::npos) << p.message;
}

TEST(ConfigTest, RedactedUriHidesThePassword) {
  UpstreamConfig u;
  ASSERT_EQ(parseUpstreamUri("mongodb://app:s3cret@h1:27017/db", u), "");
  EXPECT_EQ(u.redactedUri(), "mongodb://app:****@h1:27017/db");
  ASSERT_EQ(parseUpstreamUri("mongodb://h1:27017/db", u), "");
  EXPECT_EQ(u.redactedUri(), "mongodb://h1:27017/db");
}

TEST(ConfigTest, UriTopologyOptions) {
  UpstreamConfig u;
  ASSERT_EQ(parseUpstreamUri("mongodb://a:1,b:2/db?replicaSet=rs0&readPreference=secondaryPreferred"
                             "&readPreferenceTags=dc:east,rack:1&readPreferenceTags=",
                             u),
            "");
  EXPECT_EQ(u.replicaSet, "rs0");
  EXPECT_FALSE(u.directConnection);
  EXPECT_EQ(u.readPreference, "secondaryPreferred");
  ASSERT_EQ(u.readPreferenceTags.size(), 2u);
  EXPECT_EQ(u.readPreferenceTags[0],
            (std::vector<std::pair<std::string, std::string>>{{"dc", "east"}, {"rack", "1"}}));
  EXPECT_TRUE(u.readPreferenceTags[1].empty());  // {}: any server
  ASSERT_EQ(parseUpstreamUri("mongodb://a:1/db?directConnection=true", u), "");
  EXPECT_TRUE(u.directConnection);
  EXPECT_EQ(u.replicaSet, "");
  EXPECT_EQ(u.readPreference, "primary");
  EXPECT_TRUE(u.readPreferenceTags.empty());
}

// ---- The seeds' variables with no configuration file (SPEC §9). ----

TEST(ConfigTest, SeedsAloneWithDefaults) {
  auto r = load({}, {{"MONGODB_URI", "mongodb://db.example:27018/main_db"}});
  ASSERT_TRUE(r.problems.empty());
  EXPECT_TRUE(r.warnings.empty());
  const ProxyConfig& c = r.config;
  EXPECT_EQ(c.configFile, "");
  EXPECT_FALSE(c.checkConfigOnly);
  ASSERT_EQ(c.upstreams.size(), 2u);
  EXPECT_EQ(c.upstreams[0].name, "main");
  EXPECT_EQ(c.upstreams[0].uri, c.main.uri);
  EXPECT_EQ(c.main.name, "main");
  EXPECT_FALSE(c.upstreams[0].sameAsMain);
  EXPECT_EQ(c.routing.mainUpstream, "main");
  EXPECT_EQ(c.routing.mainDatabase, "main_db");
  EXPECT_EQ(c.routing.registryCollection, "stores");
  EXPECT_EQ(c.routing.masterAdminUpstream, "masteradmin");
  EXPECT_EQ(c.routing.databasePrefix, "pos_db");
  EXPECT_EQ(c.routing.databaseCount, 5);
  EXPECT_EQ(c.routing.storesPerDatabase, 20);
  EXPECT_EQ(c.routing.storeDatabaseUpstreams, std::vector<std::string>(5, "main"));
  EXPECT_EQ(c.registry.source, RegistryConfig::Source::kUpstream);
  EXPECT_EQ(c.registry.pollIntervalMs, 2000u);
  EXPECT_EQ(c.registry.cacheFile, "");
  EXPECT_TRUE(c.registry.changeStreams);
  EXPECT_EQ(c.registry.assignment, router::AssignmentPolicy::kFill);
}

TEST(ConfigTest, SeedsSetTheStoreDatabases) {
  auto r = load({}, {{"MONGODB_URI", "mongodb://h/main_db"},
                     {"DATABASE_PREFIX", "shop_db"},
                     {"DATABASE_COUNT", "8"},
                     {"STORES_PER_DATABASE", "12"}});
  ASSERT_TRUE(r.problems.empty());
  EXPECT_EQ(r.config.routing.databasePrefix, "shop_db");
  EXPECT_EQ(r.config.routing.databaseCount, 8);
  EXPECT_EQ(r.config.routing.storesPerDatabase, 12);
  EXPECT_EQ(r.config.routing.storeDatabaseUpstreams.size(), 8u);
}

TEST(ConfigTest, BadSeedsAreReportedByName) {
  auto r = load({}, {{"MONGODB_URI", "mongodb://h/main_db"},
                     {"DATABASE_PREFIX", "pos.db"},
                     {"DATABASE_COUNT", "0"},
                     {"STORES_PER_DATABASE", "many"},
                     {"MASTER_ADMIN_MONGO_URI", "postgres://x"}});
  EXPECT_TRUE(hasProblem(r, "DATABASE_PREFIX", "cannot contain '.'"));
  EXPECT_TRUE(hasProblem(r, "DATABASE_COUNT", "from 1 to 1000"));
  EXPECT_TRUE(hasProblem(r, "STORES_PER_DATABASE", "got 'many'"));
  EXPECT_TRUE(hasProblem(r, "MASTER_ADMIN_MONGO_URI", "mongodb://"));
  EXPECT_EQ(r.problems.size(), 4u);
}

TEST(ConfigTest, MasterAdminFallsBackToMain) {
  auto r = load({}, {{"MONGODB_URI", "mongodb://app:pw@h:1/main_db"}});
  ASSERT_TRUE(r.problems.empty());
  const UpstreamConfig* admin = r.config.findUpstream("masteradmin");
  ASSERT_NE(admin, nullptr);
  EXPECT_EQ(admin, &r.config.upstreams[1]);
  EXPECT_EQ(admin->name, "masteradmin");
  EXPECT_EQ(admin->uri, "mongodb://app:pw@h:1/main_db");
  EXPECT_TRUE(admin->sameAsMain);
  EXPECT_EQ(r.config.findUpstream("main"), &r.config.upstreams[0]);
  EXPECT_EQ(r.config.findUpstream("shard2"), nullptr);
}

TEST(ConfigTest, MasterAdminHasItsOwnUpstream) {
  auto r = load({}, {{"MONGODB_URI", "mongodb://h:1/main_db"},
                     {"MASTER_ADMIN_MONGO_URI", "mongodb://admin.internal:2/masteradmin"}});
  ASSERT_TRUE(r.problems.empty());
  const UpstreamConfig* admin = r.config.findUpstream("masteradmin");
  ASSERT_NE(admin, nullptr);
  EXPECT_FALSE(admin->sameAsMain);
  ASSERT_EQ(admin->hosts.size(), 1u);
  EXPECT_EQ(admin->hosts[0].host, "admin.internal");
  EXPECT_EQ(admin->database, "masteradmin");
  EXPECT_EQ(r.config.routing.mainDatabase, "main_db");  // never the master-admin URI's
}

TEST(ConfigTest, MainDatabaseDefaultsToTest) {
  auto r = load({}, {{"MONGODB_URI", "mongodb://h:1"}});
  ASSERT_TRUE(r.problems.empty());
  EXPECT_EQ(r.config.routing.mainDatabase, "test");
  auto named = load({"--main-database", "other"}, {{"MONGODB_URI", "mongodb://h:1/main_db"}});
  ASSERT_TRUE(named.problems.empty());
  EXPECT_EQ(named.config.routing.mainDatabase, "other");
}

TEST(ConfigTest, MainDatabaseThatIsAStoreDatabaseIsRefused) {
  auto r = load({}, {{"MONGODB_URI", "mongodb://h:1/pos_db_3"}});
  EXPECT_TRUE(hasProblem(r, "MONGODB_URI", "is also store database 3"));
}

TEST(ConfigTest, RoutingFlagsWinOverSeeds) {
  auto r = load({"--database-prefix", "cli_db", "--database-count=2", "--stores-per-database", "3",
                 "--master-admin-uri", "mongodb://a:1"},
                {{"MONGODB_URI", "mongodb://h/main_db"}, {"DATABASE_PREFIX", "env_db"}, {"DATABASE_COUNT", "8"}});
  ASSERT_TRUE(r.problems.empty());
  EXPECT_EQ(r.config.routing.databasePrefix, "cli_db");
  EXPECT_EQ(r.config.routing.databaseCount, 2);
  EXPECT_EQ(r.config.routing.storesPerDatabase, 3);
  EXPECT_EQ(r.config.findUpstream("masteradmin")->hosts.at(0).host, "a");
}

TEST(ConfigTest, CheckConfigFlag) {
  auto r = load({"--check-config"}, {{"MONGODB_URI", "mongodb://h"}});
  ASSERT_TRUE(r.problems.empty());
  EXPECT_TRUE(r.config.checkConfigOnly);
  auto withValue = load({"--check-config=yes"}, {{"MONGODB_URI", "mongodb://h"}});
  EXPECT_TRUE(hasProblem(withValue, "--check-config", "takes no value"));
  auto noFile = load({"--upstream", "mongodb://h", "--config"});
  EXPECT_TRUE(hasProblem(noFile, "--config", "needs a value"));
}

TEST(ConfigTest, HelpNamesTheNewOptions) {
  const std::string help = usageText();
  for (const char* name : {"--config", "MONGOGATE_CONFIG", "--check-config", "--master-admin-uri",
                           "MASTER_ADMIN_MONGO_URI", "DATABASE_PREFIX", "DATABASE_COUNT", "STORES_PER_DATABASE"}) {
    EXPECT_NE(help.find(name), std::string::npos) << name;
  }
}

TEST(ConfigTest, ProblemFormat) {
  EXPECT_EQ(formatProblem({"pool.max_size", "too big", "/etc/m.yaml:3:14"}),
            "pool.max_size: too big (at /etc/m.yaml:3:14)");
  EXPECT_EQ(formatProblem({"--listen", "bad"}), "--listen: bad");
}

struct HostPortCase {
  const char* text;
  bool ok;
  const char* host;
  int port;
};

class HostPortTest : public testing::TestWithParam<HostPortCase> {};

TEST_P(HostPortTest, Parses) {
  const auto& c = GetParam();
  HostPort hp;
  ASSERT_EQ(parseHostPort(c.text, hp), c.ok) << c.text;
  if (c.ok) {
    EXPECT_EQ(hp.host, c.host);
    EXPECT_EQ(hp.port, c.port);
  }
}

INSTANTIATE_TEST_SUITE_P(Addresses, HostPortTest,
                         testing::Values(HostPortCase{"127.0.0.1:27017", true, "127.0.0.1", 27017},
                                         HostPortCase{"0.0.0.0:0", true, "0.0.0.0", 0},
                                         HostPortCase{"[::1]:27017", true, "::1", 27017},
                                         HostPortCase{"localhost", false, "", 0},
                                         HostPortCase{":27017", false, "", 0},
                                         HostPortCase{"h:65536", false, "", 0},
                                         HostPortCase{"h:12x", false, "", 0},
                                         HostPortCase{"::1:27017", false, "", 0},
                                         HostPortCase{"[::1]27017", false, "", 0}));

}  // namespace
}  // namespace mongogate::config
