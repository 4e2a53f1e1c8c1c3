// resolveNamespace (SPEC §3): one row per logical namespace -> where it lives (upstream,
// physical database and collection, the rule that matched, the store), or the refusal.
// Plus RoutingConfig's store-database helpers and the configurable parts of the rules.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "router/routing.h"
#include "router_test_support.h"

namespace mongogate::router::routing_test {
namespace {

struct NamespaceCase {
  std::string name;
  std::string database;
  std::string collection;
  std::string upstream{};
  std::string physicalDatabase{};
  std::string physicalCollection{};
  int rule = 4;
  std::string storePrefix{};  // the matched store's prefix; empty: no store
  int refusal = 0;
  std::string refusalMessage{};
};

std::ostream& operator<<(std::ostream& os, const NamespaceCase& c) { return os << c.name; }

class RouterNamespace : public ::testing::TestWithParam<NamespaceCase> {};

TEST_P(RouterNamespace, Resolves) {
  const NamespaceCase& c = GetParam();
  const RegistrySnapshot registry(fixtureStores(), 1);
  const NamespaceResolution r = resolveNamespace(fixtureConfig(), registry, c.database, c.collection);
  ASSERT_NE(r.target.has_value(), r.refusal.has_value()) << "exactly one of target and refusal";
  if (c.refusal != 0) {
    ASSERT_TRUE(r.refusal.has_value());
    EXPECT_EQ(r.refusal->code, c.refusal);
    EXPECT_EQ(r.refusal->codeName, "NamespaceNotFound");
    EXPECT_EQ(r.refusal->message, c.refusalMessage);
    return;
  }
  ASSERT_TRUE(r.target.has_value()) << r.refusal->message;
  EXPECT_EQ(r.target->upstream, c.upstream);
  EXPECT_EQ(r.target->database, c.physicalDatabase);
  EXPECT_EQ(r.target->collection, c.physicalCollection);
  EXPECT_EQ(r.target->rule, c.rule);
  if (c.storePrefix.empty()) {
    EXPECT_EQ(r.target->store, nullptr);
  } else {
    ASSERT_NE(r.target->store, nullptr);
    EXPECT_EQ(r.target->store->prefix, c.storePrefix);
  }
}

const NamespaceCase kNamespaces[] = {
    {.name = "MasterAdmin", .database = "masteradmin", .collection = "plans",
     .upstream = "masteradmin", .physicalDatabase = "masteradmin", .physicalCollection = "plans", .rule = 1},
    {.name = "MasterAdminDatabaseLevel", .database = "masteradmin", .collection = "",
     .upstream = "masteradmin", .physicalDatabase = "masteradmin", .physicalCollection = "", .rule = 1},
    {.name = "MasterAdminWinsOverPrefixes", .database = "masteradmin", .collection = "abc_orders",
     .upstream = "masteradmin", .physicalDatabase = "masteradmin", .physicalCollection = "abc_orders", .rule = 1},
    {.name = "Rule2Store1", .database = "main_db", .collection = "abc_orders",
     .upstream = "main", .physicalDatabase = "pos_db_1", .physicalCollection = "abc_orders", .rule = 2, .storePrefix = "abc"},
    {.name = "Rule2LongestPrefix", .database = "main_db", .collection = "abc_x_products",
     .upstream = "shard2", .physicalDatabase = "pos_db_4", .physicalCollection = "abc_x_products", .rule = 2, .storePrefix = "abc_x"},
    {.name = "Rule2LongerPrefixNeedsItsUnderscore", .database = "main_db", .collection = "abc_xproducts",
     .upstream = "main", .physicalDatabase = "pos_db_1", .physicalCollection = "abc_xproducts", .rule = 2, .storePrefix = "abc"},
    {.name = "Rule2Shard2", .database = "main_db", .collection = "xyz_orders",
     .upstream = "shard2", .physicalDatabase = "pos_db_4", .physicalCollection = "xyz_orders", .rule = 2, .storePrefix = "xyz"},
    {.name = "Rule2UnmovedStoreStays", .database = "main_db", .collection = "old_orders",
     .upstream = "main", .physicalDatabase = "main_db", .physicalCollection = "old_orders", .rule = 2, .storePrefix = "old"},
    {.name = "Rule2PrefixAloneIsNotAStoreCollection", .database = "main_db", .collection = "abc_",
     .upstream = "main", .physicalDatabase = "main_db", .physicalCollection = "abc_", .rule = 4},
    {.name = "Rule2PrefixWithoutUnderscore", .database = "main_db", .collection = "abcorders",
     .upstream = "main", .physicalDatabase = "main_db", .physicalCollection = "abcorders", .rule = 4},
    {.name = "MainDatabaseLevel", .database = "main_db", .collection = "",
     .upstream = "main", .physicalDatabase = "main_db", .physicalCollection = "", .rule = 4},
    {.name = "RegistryCollection", .database = "main_db", .collection = "stores",
     .upstream = "main", .physicalDatabase = "main_db", .physicalCollection = "stores", .rule = 4},
    {.name = "PrefixedCollectionInAnotherDatabaseIsRule4", .database = "reporting", .collection = "abc_orders",
     .upstream = "main", .physicalDatabase = "reporting", .physicalCollection = "abc_orders", .rule = 4},
    {.name = "Rule3", .database = "store_abc", .collection = "products",
     .upstream = "main", .physicalDatabase = "pos_db_1", .physicalCollection = "abc_products", .rule = 3, .storePrefix = "abc"},
    {.name = "Rule3DatabaseLevel", .database = "store_xyz", .collection = "",
     .upstream = "shard2", .physicalDatabase = "pos_db_4", .physicalCollection = "", .rule = 3, .storePrefix = "xyz"},
    {.name = "Rule3PrefixWithUnderscore", .database = "store_abc_x", .collection = "orders",
     .upstream = "shard2", .physicalDatabase = "pos_db_4", .physicalCollection = "abc_x_orders", .rule = 3, .storePrefix = "abc_x"},
    {.name = "Rule3Unmoved", .database = "store_old", .collection = "orders",
     .upstream = "main", .physicalDatabase = "main_db", .physicalCollection = "old_orders", .rule = 3, .storePrefix = "old"},
    {.name = "Rule3DottedCollection", .database = "store_m2", .collection = "a.b",
     .upstream = "main", .physicalDatabase = "pos_db_2", .physicalCollection = "m2_a.b", .rule = 3, .storePrefix = "m2"},
    {.name = "Rule3DatabaseCursorNamespace", .database = "store_abc", .collection = "$cmd.listCollections",
     .upstream = "main", .physicalDatabase = "pos_db_1", .physicalCollection = "$cmd.listCollections", .rule = 3, .storePrefix = "abc"},
    {.name = "Rule3ListIndexesCursorNamespace", .database = "store_abc", .collection = "$cmd.listIndexes.products",
     .upstream = "main", .physicalDatabase = "pos_db_1", .physicalCollection = "$cmd.listIndexes.abc_products", .rule = 3, .storePrefix = "abc"},
    {.name = "Rule2ListIndexesCursorNamespace", .database = "main_db", .collection = "$cmd.listIndexes.abc_x_orders",
     .upstream = "shard2", .physicalDatabase = "pos_db_4", .physicalCollection = "$cmd.listIndexes.abc_x_orders", .rule = 2, .storePrefix = "abc_x"},
    {.name = "Rule4ListIndexesCursorNamespace", .database = "main_db", .collection = "$cmd.listIndexes.users",
     .upstream = "main", .physicalDatabase = "main_db", .physicalCollection = "$cmd.listIndexes.users", .rule = 4},
    {.name = "Rule3UnknownPrefix", .database = "store_nope", .collection = "orders",
     .refusal = 26, .refusalMessage = "mongogate: no store with prefix 'nope' is registered (logical "
                                      "namespace 'store_nope.orders')"},
    {.name = "Rule3UnknownPrefixDatabaseLevel", .database = "store_nope", .collection = "",
     .refusal = 26, .refusalMessage = "mongogate: no store with prefix 'nope' is registered (logical "
                                      "database 'store_nope')"},
    {.name = "Rule3PrefixIsExactNotLongest", .database = "store_ab", .collection = "orders",
     .refusal = 26, .refusalMessage = "mongogate: no store with prefix 'ab' is registered (logical "
                                      "namespace 'store_ab.orders')"},
    {.name = "StoreTemplateAloneIsRule4", .database = "store_", .collection = "orders",
     .upstream = "main", .physicalDatabase = "store_", .physicalCollection = "orders", .rule = 4},
    {.name = "PhysicalStoreDatabaseOnItsUpstream", .database = "pos_db_5", .collection = "x",
     .upstream = "shard2", .physicalDatabase = "pos_db_5", .physicalCollection = "x", .rule = 4},
    {.name = "PhysicalStoreDatabaseOnMain", .database = "pos_db_2", .collection = "m2_orders",
     .upstream = "main", .physicalDatabase = "pos_db_2", .physicalCollection = "m2_orders", .rule = 4},
    {.name = "NotAPhysicalStoreDatabaseName", .database = "pos_db_04", .collection = "x",
     .upstream = "main", .physicalDatabase = "pos_db_04", .physicalCollection = "x", .rule = 4},
    {.name = "Admin", .database = "admin", .collection = "",
     .upstream = "main", .physicalDatabase = "admin", .physicalCollection = "", .rule = 4},
};

INSTANTIATE_TEST_SUITE_P(RouterNamespaceRules, RouterNamespace, ::testing::ValuesIn(kNamespaces),
                         [](const auto& info) { return info.param.name; });

TEST(RouterConfig, PhysicalStoreDatabase) {
  RoutingConfig config = fixtureConfig();
  EXPECT_EQ(config.physicalStoreDatabase(3), "pos_db_3");
  config.databasePrefix = "shop";
  EXPECT_EQ(config.physicalStoreDatabase(12), "shop_12");
}

TEST(RouterConfig, UpstreamOfStoreDatabase) {
  const RoutingConfig config = fixtureConfig();
  EXPECT_EQ(config.upstreamOfStoreDatabase(1), "main");  // empty entry
  EXPECT_EQ(config.upstreamOfStoreDatabase(4), "shard2");
  EXPECT_EQ(config.upstreamOfStoreDatabase(5), "shard2");
  EXPECT_EQ(config.upstreamOfStoreDatabase(6), "main");  // beyond the list
  EXPECT_EQ(config.upstreamOfStoreDatabase(0), "main");
  EXPECT_EQ(config.upstreamOfStoreDatabase(-1), "main");
}

TEST(RouterConfig, MasterAdminPhysicalDatabaseAndList) {
  RoutingConfig config = fixtureConfig();
  config.masterAdminDatabases = {"masteradmin", "billing"};
  config.masterAdminPhysicalDatabase = "ma_prod";
  const RegistrySnapshot registry(fixtureStores(), 1);
  for (const char* db : {"masteradmin", "billing"}) {
    const auto r = resolveNamespace(config, registry, db, "plans");
    ASSERT_TRUE(r.target.has_value());
    EXPECT_EQ(r.target->upstream, "masteradmin");
    EXPECT_EQ(r.target->database, "ma_prod");
    EXPECT_EQ(r.target->collection, "plans");
    EXPECT_EQ(r.target->rule, 1);
  }
}

TEST(RouterConfig, RegistryCollectionIsNeverStoreRouted) {
  RoutingConfig config = fixtureConfig();
  config.registryCollection = "abc_registry";  // looks like a store collection of abc
  const RegistrySnapshot registry(fixtureStores(), 1);
  const auto registryNs = resolveNamespace(config, registry, "main_db", "abc_registry");
  ASSERT_TRUE(registryNs.target.has_value());
  EXPECT_EQ(registryNs.target->database, "main_db");
  EXPECT_EQ(registryNs.target->rule, 4);
  const auto other = resolveNamespace(config, registry, "main_db", "abc_orders");
  ASSERT_TRUE(other.target.has_value());
  EXPECT_EQ(other.target->database, "pos_db_1");
}

TEST(RouterConfig, StoreDatabaseTemplate) {
  RoutingConfig config = fixtureConfig();
  config.storeDatabasePrefix = "tenant_";
  const RegistrySnapshot registry(fixtureStores(), 1);
  const auto tenant = resolveNamespace(config, registry, "tenant_xyz", "orders");
  ASSERT_TRUE(tenant.target.has_value());
  EXPECT_EQ(tenant.target->database, "pos_db_4");
  EXPECT_EQ(tenant.target->collection, "xyz_orders");
  EXPECT_EQ(tenant.target->rule, 3);
  const auto store = resolveNamespace(config, registry, "store_xyz", "orders");
  ASSERT_TRUE(store.target.has_value());
  EXPECT_EQ(store.target->rule, 4);

  config.storeDatabasePrefix.clear();  // rule 3 off
  const auto off = resolveNamespace(config, registry, "xyz", "orders");
  ASSERT_TRUE(off.target.has_value());
  EXPECT_EQ(off.target->rule, 4);
}

TEST(RouterConfig, MainDatabaseThatLooksLikeAStoreDatabase) {
  RoutingConfig config = fixtureConfig();
  config.mainDatabase = "store_main";
  const RegistrySnapshot registry(fixtureStores(), 1);
  const auto r = resolveNamespace(config, registry, "store_main", "abc_orders");
  ASSERT_TRUE(r.target.has_value());
  EXPECT_EQ(r.target->rule, 2);
  EXPECT_EQ(r.target->database, "pos_db_1");
  const auto shared = resolveNamespace(config, registry, "store_main", "users");
  ASSERT_TRUE(shared.target.has_value());
  EXPECT_EQ(shared.target->rule, 4);
}

TEST(RouterConfig, EmptyRegistry) {
  const RegistrySnapshot registry;
  const auto r = resolveNamespace(fixtureConfig(), registry, "main_db", "abc_orders");
  ASSERT_TRUE(r.target.has_value());
  EXPECT_EQ(r.target->rule, 4);
  EXPECT_EQ(r.target->database, "main_db");
  EXPECT_TRUE(resolveNamespace(fixtureConfig(), registry, "store_abc", "orders").refusal.has_value());
}

}  // namespace
}  // namespace mongogate::router::routing_test
