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
