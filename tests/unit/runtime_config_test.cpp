// proxy/runtime_config.h: the holder readers see swaps through, and what a reload applies.
#include "proxy/runtime_config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

namespace mongogate::proxy {
namespace {

using Environment = std::map<std::string, std::string>;
const Environment kEnv{{"MONGODB_URI", "mongodb://db.internal:27017/main_db"}};

config::ConfigResult load(std::vector<std::string> args, const Environment& env = kEnv) {
  args.insert(args.begin(), "mongogate");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return config::loadConfig(static_cast<int>(argv.size()), argv.data(), env);
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

TEST(RuntimeConfigHolderTest, ReaderSeesAPublishAndOldPointersStayValid) {
  config::ProxyConfig first;
  first.routing.mainDatabase = "one";
  RuntimeConfigHolder holder(first);
  RuntimeConfigReader reader(holder);
  const std::shared_ptr<const RuntimeConfig> pinned = reader.current();  // an in-flight request
  EXPECT_EQ(pinned->generation, 1u);
  EXPECT_EQ(reader.current().get(), pinned.get());  // unchanged: same object, no re-fetch

  config::ProxyConfig second = first;
  second.routing.mainDatabase = "two";
  EXPECT_EQ(holder.publish(second), 2u);
  EXPECT_EQ(holder.generation(), 2u);
  EXPECT_EQ(reader.current()->generation, 2u);
  EXPECT_EQ(reader.current()->config.routing.mainDatabase, "two");
  // The request that started before the swap still reads its own configuration.
  EXPECT_EQ(pinned->config.routing.mainDatabase, "one");
}

TEST(RuntimeConfigHolderTest, ConcurrentReadersNeverSeeAMixedConfiguration) {
  config::ProxyConfig initial;
  initial.routing.mainDatabase = "db0";
  initial.routing.databasePrefix = "p0";
  RuntimeConfigHolder holder(initial);
  std::atomic<bool> stop{false};
  std::atomic<int> mismatches{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      RuntimeConfigReader reader(holder);
      std::uint64_t last = 0;
      while (!stop.load()) {
        const auto& current = reader.current();
        const std::string& db = current->config.routing.mainDatabase;
        if (db.substr(2) != current->config.routing.databasePrefix.substr(1) || current->generation < last) {
          mismatches.fetch_add(1);
        }
        last = current->generation;
      }
    });
  }
  for (int i = 1; i <= 2000; ++i) {
    config::ProxyConfig next;
    next.routing.mainDatabase = "db" + std::to_string(i);
    next.routing.databasePrefix = "p" + std::to_string(i);
    holder.publish(next);
  }
  stop = true;
  for (auto& reader : readers) reader.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(holder.generation(), 2001u);
}

TEST(ReloadPlanTest, RoutingChangesApplyAndRestartOnlySettingsKeepTheirValues) {
  const config::ConfigResult running = load({"--listen", "127.0.0.1:7000", "--pool-max-size", "10"});
  ASSERT_TRUE(running.problems.empty());
  const config::ConfigResult next = load({"--listen", "127.0.0.1:7001", "--pool-max-size", "20", "--main-database",
                                          "other_db", "--database-count", "7", "--log-level", "debug",
                                          "--slow-operation-ms", "5"});
  ASSERT_TRUE(next.problems.empty());
  const ReloadPlan plan = planReload(running.config, next);
  EXPECT_TRUE(plan.problems.empty());
  EXPECT_TRUE(contains(plan.needsRestart, "listen"));
  EXPECT_TRUE(contains(plan.needsRestart, "pool.max_size"));
  EXPECT_EQ(plan.needsRestart.size(), 2u);
  EXPECT_EQ(plan.next.listen.port, 7000);     // kept
  EXPECT_EQ(plan.next.pool.maxSize, 10u);     // kept
  EXPECT_EQ(plan.next.routing.mainDatabase, "other_db");  // applied
  EXPECT_EQ(plan.next.routing.databaseCount, 7);
  EXPECT_EQ(plan.next.logLevel, "debug");
  EXPECT_EQ(plan.next.log.slowOperationMs, 5u);
  EXPECT_TRUE(plan.registrySourceChanged);  // the registry lives in the main database
}

TEST(ReloadPlanTest, AnUnchangedConfigurationChangesNothing) {
  const config::ConfigResult running = load({});
  const ReloadPlan plan = planReload(running.config, load({}));
  EXPECT_TRUE(plan.problems.empty());
  EXPECT_TRUE(plan.needsRestart.empty());
  EXPECT_FALSE(plan.registrySourceChanged);
}

TEST(ReloadPlanTest, AnInvalidConfigurationIsRefusedWithEveryProblem) {
  const config::ConfigResult running = load({});
  const ReloadPlan plan = planReload(running.config, load({"--pool-max-size", "lots", "--log-format", "xml"}));
  ASSERT_EQ(plan.problems.size(), 2u);
  EXPECT_NE(plan.problems[0].find("--pool-max-size"), std::string::npos);
  EXPECT_NE(plan.problems[1].find("--log-format: expected text or json"), std::string::npos);
}

TEST(ReloadPlanTest, RoutesToAnUpstreamThatIsNotRunningAreRefused) {
  const config::ConfigResult running = load({});
  // The new environment adds a masteradmin deployment and routes to it.
  Environment env = kEnv;
  env["MASTER_ADMIN_MONGO_URI"] = "mongodb://admin.internal:27017/admin_db";
  const config::ConfigResult next = load({}, env);
  ASSERT_TRUE(next.problems.empty());
  const ReloadPlan plan = planReload(running.config, next);
  // masteradmin's URI changed: needs a restart, and its routes stay on the running one.
  EXPECT_TRUE(contains(plan.needsRestart, "upstreams"));
  EXPECT_TRUE(plan.problems.empty());
  EXPECT_EQ(plan.next.findUpstream("masteradmin")->uri, running.config.findUpstream("masteradmin")->uri);

  config::ConfigResult renamed = load({});
  renamed.config.routing.storeDatabaseUpstreams[2] = "shard9";
  const ReloadPlan refused = planReload(running.config, renamed);
  ASSERT_EQ(refused.problems.size(), 1u);
  EXPECT_EQ(refused.problems[0],
            "routing.store_databases.placement.3: upstream 'shard9' is not running; adding an upstream needs a restart");
}

TEST(ReloadPlanTest, RestartOnlySettingsAreListed) {
  const std::vector<std::string> paths = restartOnlySettings();
  for (const char* path : {"listen", "threads", "pool.max_size", "upstreams", "admin.listen", "log.format",
                           "max_message_size", "tls", "compression", "topology.heartbeat_frequency_ms",
                           "topology.breaker.cool_down_ms"}) {
    EXPECT_TRUE(contains(paths, path)) << path;
  }
  EXPECT_FALSE(contains(paths, "routing.main_database"));
  EXPECT_FALSE(contains(paths, "admin.token"));
  // Read per request from the running configuration: a reload applies them.
  EXPECT_FALSE(contains(paths, "topology.request_deadline_grace_ms"));
  EXPECT_FALSE(contains(paths, "topology.request_timeout_ms"));
}

}  // namespace
}  // namespace mongogate::proxy
