// Upstream connection strings as drivers accept them: libmongoc parses, mongogate takes
// TLS, credentials, replica set, read preference and pool options from the result, and
// reports bad values with the setting's path. mongodb+srv:// answers (SRV, TXT) are
// judged by pure functions; the live lookup is covered by tests/e2e/test_upstream_srv.py.
#include <gtest/gtest.h>

#include "config/proxy_config.h"
#include "config/srv.h"

namespace mongogate::config {
namespace {

ConfigResult load(std::vector<const char*> args, std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), "mongogate");
  return loadConfig(static_cast<int>(args.size()), args.data(), env);
}

std::string problemsOf(const ConfigResult& r) {
  std::string text;
  for (const auto& p : r.problems) text += formatProblem(p) + "\n";
  return text;
}

TEST(UpstreamUriTest, EveryDriverOptionIsRead) {
  auto r = load({}, {{"MONGODB_URI",
                      "mongodb://app:s3cret@db1.example:27018,db2.example:27019/main_db?replicaSet=rs0"
                      "&readPreference=secondaryPreferred&authSource=users&authMechanism=SCRAM-SHA-1"
                      "&tls=true&tlsCAFile=/etc/ca.pem&tlsCertificateKeyFile=/etc/me.pem"
                      "&tlsAllowInvalidHostnames=true&appName=pos&maxPoolSize=20&minPoolSize=4"
                      "&maxIdleTimeMS=60000&waitQueueTimeoutMS=750&connectTimeoutMS=3000"}});
  ASSERT_TRUE(r.problems.empty()) << problemsOf(r);
  const UpstreamConfig& main = r.config.main;
  ASSERT_EQ(main.hosts.size(), 2u);
  EXPECT_EQ(main.hosts[1].toString(), "db2.example:27019");
  EXPECT_EQ(main.replicaSet, "rs0");
  EXPECT_EQ(main.readPreference, "secondaryPreferred");
  EXPECT_EQ(main.auth.user, "app");
  EXPECT_EQ(main.auth.password, "s3cret");
  EXPECT_EQ(main.auth.source, "users");
  EXPECT_EQ(main.auth.mechanism, "SCRAM-SHA-1");
  EXPECT_TRUE(main.tls.enabled);
  EXPECT_EQ(main.tls.caFile, "/etc/ca.pem");
  EXPECT_EQ(main.tls.certificateKeyFile, "/etc/me.pem");
  EXPECT_TRUE(main.tls.allowInvalidHostnames);
  EXPECT_FALSE(main.tls.allowInvalidCertificates);
  EXPECT_EQ(main.appName, "pos");
  EXPECT_EQ(main.pool.maxSize, 20u);
  EXPECT_EQ(main.pool.minSize, 4u);
  EXPECT_EQ(main.pool.maxIdleTimeMs, 60000u);
  EXPECT_EQ(main.pool.waitQueueTimeoutMs, 750u);
  EXPECT_EQ(main.pool.connectTimeoutMs, 3000u);
  // The masteradmin fallback is the same deployment with the same settings.
  EXPECT_EQ(r.config.upstreams[1].pool.maxSize, 20u);
}

TEST(UpstreamUriTest, DefaultsAreSafe) {
  auto r = load({}, {{"MONGODB_URI", "mongodb://app:pw@h:1/main_db"}});
  ASSERT_TRUE(r.problems.empty()) << problemsOf(r);
  const UpstreamConfig& main = r.config.main;
  EXPECT_FALSE(main.tls.enabled);
  EXPECT_EQ(main.auth.source, "main_db");  // the URI's database, as drivers do
  EXPECT_EQ(main.auth.mechanism, "");      // negotiated per connection
  EXPECT_EQ(main.readPreference, "primary");
  auto admin = load({}, {{"MONGODB_URI", "mongodb://app:pw@h:1"}});
  EXPECT_EQ(admin.config.main.auth.source, "admin");
  auto tls = load({}, {{"MONGODB_URI", "mongodb://h:1/?tlsCAFile=/ca.pem"}});
  ASSERT_TRUE(tls.problems.empty()) << problemsOf(tls);
  EXPECT_TRUE(tls.config.main.tls.enabled) << "a tls option turns TLS on";
  EXPECT_FALSE(tls.config.main.tls.allowInvalidCertificates) << "verification is on by default";
  EXPECT_FALSE(tls.config.main.tls.allowInvalidHostnames);
  auto insecure = load({}, {{"MONGODB_URI", "mongodb://h:1/?tls=true&tlsInsecure=true"}});
  EXPECT_TRUE(insecure.config.main.tls.allowInvalidCertificates);
  EXPECT_TRUE(insecure.config.main.tls.allowInvalidHostnames);
}

TEST(UpstreamUriTest, UriPoolOptionsOverrideTheFilesPerUpstream) {
  auto r = load({"--pool-max-size", "50", "--wait-queue-timeout-ms", "900", "--pool-min-size", "2"},
                {{"MONGODB_URI", "mongodb://h:1/main_db?maxPoolSize=10"},
                 {"MASTER_ADMIN_MONGO_URI", "mongodb://other:1/admin_db"}});
  ASSERT_TRUE(r.problems.empty()) << problemsOf(r);
  EXPECT_EQ(r.config.main.pool.maxSize, 10u);
  EXPECT_EQ(r.config.main.pool.waitQueueTimeoutMs, 900u);
  EXPECT_EQ(r.config.main.pool.minSize, 2u);
  const UpstreamConfig* masterAdmin = r.config.findUpstream("masteradmin");
  ASSERT_NE(masterAdmin, nullptr);
  EXPECT_EQ(masterAdmin->pool.maxSize, 50u);
}

TEST(UpstreamUriTest, BadOptionValuesAreReportedWithoutTheUri) {
  struct Case {
    const char* uri;
    const char* fragment;
  };
  const Case cases[] = {
      {"mongodb://u:topsecret@h:1/?maxPoolSize=0", "maxPoolSize must be a whole number from 1"},
      {"mongodb://u:topsecret@h:1/?minPoolSize=9&maxPoolSize=3", "minPoolSize 9 is larger than maxPoolSize 3"},
      {"mongodb://u:topsecret@h:1/?waitQueueTimeoutMS=0", "waitQueueTimeoutMS must be"},
      {"mongodb://u:topsecret@h:1/?authMechanism=GSSAPI", "authMechanism GSSAPI is not supported"},
      {"mongodb://u@h:1/?authMechanism=MONGODB-X509", "authMechanism MONGODB-X509 is not supported"},
      {"mongodb://h:1/?authMechanism=SCRAM-SHA-256", "requires username"},
      {"mongodb://u:topsecret@h:1/?tls=false&tlsCAFile=/ca.pem", "tls is false"},
      {"mongodb://u:topsecret@h:1/?connectTimeoutMS=abc", "invalid connection string"},
      {"mongodb+srv://u:topsecret@cluster.example.com/?srvServiceName=other", "srvServiceName"},
  };
  for (const Case& c : cases) {
    auto r = load({}, {{"MONGODB_URI", c.uri}});
    const std::string text = problemsOf(r);
    EXPECT_NE(text.find("MONGODB_URI: "), std::string::npos) << c.uri << "\n" << text;
    EXPECT_NE(text.find(c.fragment), std::string::npos) << c.uri << "\n" << text;
    EXPECT_EQ(text.find("topsecret"), std::string::npos) << text;
  }
  auto pool = load({"--pool-min-size", "9", "--pool-max-size", "3"}, {{"MONGODB_URI", "mongodb://h:1"}});
  EXPECT_NE(problemsOf(pool).find("the minimum pool size 9 is larger than the maximum 3"), std::string::npos)
      << problemsOf(pool);
}

TEST(UpstreamUriTest, SrvUriTurnsTlsOnAndWaitsForDns) {
  auto r = load({}, {{"MONGODB_URI", "mongodb+srv://cluster0.example.com/main_db"}});
  ASSERT_TRUE(r.problems.empty()) << problemsOf(r);
  EXPECT_EQ(r.config.main.srvHost, "cluster0.example.com");
  EXPECT_TRUE(r.config.main.hosts.empty());
  EXPECT_TRUE(r.config.main.tls.enabled) << "mongodb+srv:// means tls=true unless the URI says otherwise";
  auto plain = load({}, {{"MONGODB_URI", "mongodb+srv://cluster0.example.com/main_db?tls=false"}});
  ASSERT_TRUE(plain.problems.empty()) << problemsOf(plain);
  EXPECT_FALSE(plain.config.main.tls.enabled);
}

TEST(SrvTest, SeedListFromRecordsInTheParentDomain) {
  std::vector<HostPort> seeds;
  const std::vector<SrvRecord> records = {{0, 5, 27017, "node1.example.com."}, {0, 5, 27018, "Node2.Example.COM"}};
  EXPECT_EQ(seedsFromSrv("cluster0.example.com", records, seeds), "");
  ASSERT_EQ(seeds.size(), 2u);
  EXPECT_EQ(seeds[0].toString(), "node1.example.com:27017");
  EXPECT_EQ(seeds[1].toString(), "node2.example.com:27018");
  // A deeper subdomain of the parent is fine too.
  EXPECT_EQ(seedsFromSrv("cluster0.example.com", {{0, 0, 1, "a.b.example.com"}}, seeds), "");
}

TEST(SrvTest, RecordsOutsideTheParentDomainAreRefused) {
  std::vector<HostPort> seeds{{"kept", 1}};
  std::string why = seedsFromSrv("cluster0.example.com", {{0, 0, 27017, "evil.attacker.com."}}, seeds);
  EXPECT_NE(why.find("is not in the domain example.com"), std::string::npos) << why;
  // A name that only ends with the same letters is not in the domain.
  why = seedsFromSrv("cluster0.example.com", {{0, 0, 27017, "node.badexample.com"}}, seeds);
  EXPECT_NE(why.find("is not in the domain"), std::string::npos) << why;
  // The parent itself is not inside the parent domain.
  why = seedsFromSrv("cluster0.example.com", {{0, 0, 27017, "example.com"}}, seeds);
  EXPECT_NE(why.find("is not in the domain"), std::string::npos) << why;
  why = seedsFromSrv("cluster0.example.com", {}, seeds);
  EXPECT_NE(why.find("no SRV records"), std::string::npos) << why;
  why = seedsFromSrv("example.com", {{0, 0, 27017, "a.example.com"}}, seeds);
  EXPECT_NE(why.find("three parts"), std::string::npos) << why;
  ASSERT_EQ(seeds.size(), 1u) << "a refused answer leaves the seed list alone";
  EXPECT_EQ(seeds[0].host, "kept");
}

TEST(SrvTest, TxtRecordGivesOnlyTheAllowedOptionsAndTheUriWins) {
  UpstreamConfig upstream;
  ASSERT_EQ(parseUpstreamUri("mongodb+srv://u:p@cluster0.example.com/main_db?replicaSet=fromUri", upstream), "");
  EXPECT_EQ(upstream.auth.source, "main_db");
  EXPECT_EQ(applySrvTxt({"authSource=admin&replicaSet=fromTxt&loadBalanced=true"}, upstream), "");
  EXPECT_EQ(upstream.auth.source, "admin");
  EXPECT_EQ(upstream.replicaSet, "fromUri");
  EXPECT_TRUE(upstream.loadBalanced);
  std::string why = applySrvTxt({"ssl=false"}, upstream);
  EXPECT_NE(why.find("only authSource, replicaSet and loadBalanced"), std::string::npos) << why;
  why = applySrvTxt({"authSource=a", "replicaSet=b"}, upstream);
  EXPECT_NE(why.find("several TXT records"), std::string::npos) << why;
  why = applySrvTxt({"loadBalanced=maybe"}, upstream);
  EXPECT_NE(why.find("true or false"), std::string::npos) << why;
  EXPECT_EQ(applySrvTxt({}, upstream), "");
  UpstreamConfig explicitSource;
  ASSERT_EQ(parseUpstreamUri("mongodb+srv://u:p@cluster0.example.com/?authSource=mine", explicitSource), "");
  EXPECT_EQ(applySrvTxt({"authSource=admin"}, explicitSource), "");
  EXPECT_EQ(explicitSource.auth.source, "mine") << "the URI's authSource wins over TXT";
}

}  // namespace
}  // namespace mongogate::config
