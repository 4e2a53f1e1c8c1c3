// Store scopes (SPEC §6): one row per command shape — the logical request a user sends,
// the user's scope, and whether mongogate lets it through or answers Unauthorized (13).
// The requests go through the real router first, as in the proxy, so pipelines,
// bulkWrite nsInfo and renameCollection are judged by the namespaces the router resolved.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "auth/scope.h"
#include "router_test_support.h"

namespace mongogate::auth {
namespace {

using router::routing_test::makeRequest;
using router::routing_test::Sequence;

UserScope storesOnly(std::vector<std::string> prefixes, Access main = Access::kNone) {
  UserScope s;
  s.allStores = false;
  s.storePrefixes = std::move(prefixes);
  s.mainDatabase = main;
  return s;
}

const UserScope kAbcOnly = storesOnly({"abc"});
const UserScope kAbcMainRead = storesOnly({"abc"}, Access::kRead);
const UserScope kAbcMainWrite = storesOnly({"abc"}, Access::kReadWrite);
const UserScope kEverything{};
const UserScope kAllStoresMainRead = [] {
  UserScope s;
  s.mainDatabase = Access::kRead;
  return s;
}();

struct ScopeCase {
  std::string name;
  const UserScope* scope;
  std::string request;
  std::vector<Sequence> sequences{};
  bool allowed = true;
  std::string refusalMentions{};  // a logical namespace the refusal must name
};

std::ostream& operator<<(std::ostream& os, const ScopeCase& c) { return os << c.name; }

const ScopeCase kCases[] = {
    // Stores by prefix: rule 2 (prefixed collection in the main database) and rule 3.
    {"OwnStoreRule2Find", &kAbcOnly, R"({"find": "abc_orders", "$db": "main_db"})"},
    {"OwnStoreRule2Insert", &kAbcOnly, R"({"insert": "abc_orders", "documents": [{"a": 1}], "$db": "main_db"})"},
    {"OwnStoreRule3", &kAbcOnly, R"({"find": "orders", "$db": "store_abc"})"},
    {"OtherStoreRule2", &kAbcOnly, R"({"find": "m2_orders", "$db": "main_db"})", {}, false, "main_db.m2_orders"},
    {"OtherStoreRule3", &kAbcOnly, R"({"delete": "orders", "deletes": [], "$db": "store_m2"})", {}, false,
     "store_m2.orders"},
    // A longer prefix that starts like the user's own is another store.
    {"LongerPrefixIsAnotherStore", &kAbcOnly, R"({"find": "abc_x_orders", "$db": "main_db"})", {}, false,
     "main_db.abc_x_orders"},
    // Pipelines: every stage that names a namespace counts.
    {"LookupIntoOwnStore", &kAbcOnly,
     R"({"aggregate": "orders", "pipeline": [{"$lookup": {"from": "products", "localField": "p",
        "foreignField": "_id", "as": "x"}}], "cursor": {}, "$db": "store_abc"})"},
    {"LookupIntoOtherStore", &kAbcOnly,
     R"({"aggregate": "abc_orders", "pipeline": [{"$lookup": {"from": "def_products", "localField": "p",
        "foreignField": "_id", "as": "x"}}], "cursor": {}, "$db": "main_db"})",
     {}, false, "main_db.def_products"},
    {"UnionWithOtherStore", &kAbcOnly,
     R"({"aggregate": "abc_orders", "pipeline": [{"$unionWith": {"coll": "def_orders"}}], "cursor": {},
        "$db": "main_db"})",
     {}, false, "main_db.def_orders"},
    {"GraphLookupIntoOtherStore", &kAbcOnly,
     R"({"aggregate": "abc_orders", "pipeline": [{"$graphLookup": {"from": "def_users", "startWith": "$a",
        "connectFromField": "a", "connectToField": "b", "as": "g"}}], "cursor": {}, "$db": "main_db"})",
     {}, false, "main_db.def_users"},
    {"OutIntoOtherStore", &kAbcOnly,
     R"({"aggregate": "abc_orders", "pipeline": [{"$out": "old_copy"}], "cursor": {}, "$db": "main_db"})", {},
     false, "main_db.old_copy"},
    {"MergeIntoSharedNeedsReadWrite", &kAbcMainRead,
     R"({"aggregate": "abc_orders", "pipeline": [{"$merge": {"into": "totals"}}], "cursor": {}, "$db": "main_db"})",
     {}, false, "main_db.totals"},
    {"MergeIntoSharedWithReadWrite", &kAbcMainWrite,
     R"({"aggregate": "abc_orders", "pipeline": [{"$merge": {"into": "totals"}}], "cursor": {}, "$db": "main_db"})"},
    // Shared collections of the main database.
    {"SharedReadWithoutAccess", &kAbcOnly, R"({"find": "settings", "$db": "main_db"})", {}, false,
     "main_db.settings"},
    {"SharedReadWithRead", &kAbcMainRead, R"({"find": "settings", "$db": "main_db"})"},
    {"SharedWriteWithRead", &kAbcMainRead,
     R"({"update": "settings", "updates": [{"q": {}, "u": {"$set": {"a": 1}}}], "$db": "main_db"})", {}, false,
     "main_db.settings"},
    {"SharedWriteWithReadWrite", &kAbcMainWrite,
     R"({"update": "settings", "updates": [{"q": {}, "u": {"$set": {"a": 1}}}], "$db": "main_db"})"},
    {"SharedReadOnlyUserCannotCreateIndexes", &kAllStoresMainRead,
     R"({"createIndexes": "settings", "indexes": [{"key": {"a": 1}, "name": "a_1"}], "$db": "main_db"})", {}, false,
     "main_db.settings"},
    {"AllStoresMainReadStillWritesStores", &kAllStoresMainRead,
     R"({"insert": "m2_orders", "documents": [{"a": 1}], "$db": "main_db"})"},
    // Commands naming full namespaces.
    {"RenameIntoOtherStore", &kAbcOnly,
     R"({"renameCollection": "main_db.abc_tmp", "to": "main_db.old_tmp", "$db": "admin"})", {}, false,
     "main_db.old_tmp"},
    {"RenameWithinOwnStore", &kAbcOnly,
     R"({"renameCollection": "main_db.abc_tmp", "to": "main_db.abc_orders", "$db": "admin"})"},
    {"BulkWriteNsInfoOtherStore", &kAbcOnly,
     R"({"bulkWrite": 1, "ops": [{"insert": 0, "document": {"a": 1}}, {"insert": 1, "document": {"b": 1}}],
        "nsInfo": [{"ns": "main_db.abc_orders"}, {"ns": "main_db.m2_orders"}], "$db": "admin"})",
     {}, false, "main_db.m2_orders"},
    {"BulkWriteNsInfoSequenceOwnStore", &kAbcOnly, R"({"bulkWrite": 1, "$db": "admin"})",
     {{"ops", {R"({"insert": 0, "document": {"a": 1}})"}}, {"nsInfo", {R"({"ns": "main_db.abc_orders"})"}}}},
    {"ExplainOfOtherStore", &kAbcOnly,
     R"({"explain": {"find": "m2_orders", "filter": {}}, "verbosity": "queryPlanner", "$db": "main_db"})", {},
     false, "main_db.m2_orders"},
    // Other databases: master-admin is outside every store scope; admin's database-level
    // commands are not.
    {"MasterAdminRefused", &kAbcMainWrite, R"({"find": "tenants", "$db": "masteradmin"})", {}, false,
     "masteradmin.tenants"},
    {"OtherDatabaseRefused", &kAbcMainWrite, R"({"find": "c", "$db": "elsewhere"})", {}, false, "elsewhere.c"},
    {"AdminBuildInfoAllowed", &kAbcOnly, R"({"buildInfo": 1, "$db": "admin"})"},
    {"MasterAdminForUnrestricted", &kEverything, R"({"find": "tenants", "$db": "masteradmin"})"},
    {"CrossStoreListingRefused", &kAbcMainWrite, R"({"listCollections": 1, "$db": "main_db"})", {}, false,
     "main_db"},
    {"OwnStoreListingAllowed", &kAbcOnly, R"({"listCollections": 1, "$db": "store_abc"})"},
    {"CrossStoreListingForAllStores", &kAllStoresMainRead, R"({"listCollections": 1, "$db": "main_db"})"},
};

class Scope : public ::testing::TestWithParam<ScopeCase> {};

TEST_P(Scope, AllowsOrRefuses) {
  const ScopeCase& c = GetParam();
  // The shared fixture plus "def", a second store in abc's database (pos_db_1): pipelines
  // may only join collections of one database, so that is where another store is reachable.
  std::vector<router::StoreRecord> stores = router::routing_test::fixtureStores();
  stores.push_back({"s-def", "Store DEF", "def", 1});
  const router::RegistrySnapshot registry(std::move(stores), 1);
  const router::RoutingConfig config = router::routing_test::fixtureConfig();
  router::AssignmentState assignment;
  const auto req = makeRequest(c.request, c.sequences);
  const router::RoutedCommand route = router::routeCommand(config, registry, assignment, req.view);
  ASSERT_FALSE(route.refusal) << route.refusal->message;
  const bool writes = commandWrites(route.commandName, req.view.body);
  const auto refusal = checkScope(*c.scope, "clerk", config, route, writes);
  if (c.allowed) {
    EXPECT_FALSE(refusal) << refusal->message;
    return;
  }
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->code, 13);
  EXPECT_EQ(refusal->codeName, "Unauthorized");
  EXPECT_NE(refusal->message.find(c.refusalMentions), std::string::npos) << refusal->message;
  EXPECT_NE(refusal->message.find("'clerk'"), std::string::npos) << refusal->message;
  EXPECT_EQ(refusal->message.find("pos_db"), std::string::npos) << "names a physical database: " << refusal->message;
}

INSTANTIATE_TEST_SUITE_P(AuthScope, Scope, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name; });

TEST(ScopeWrites, ClassifiesCommands) {
  const auto writes = [](const std::string& body) {
    const auto req = makeRequest(body);
    return commandWrites(wire::firstKey(req.view.body), req.view.body);
  };
  EXPECT_FALSE(writes(R"({"find": "c", "$db": "d"})"));
  EXPECT_FALSE(writes(R"({"aggregate": "c", "pipeline": [{"$match": {}}], "cursor": {}, "$db": "d"})"));
  EXPECT_TRUE(writes(R"({"aggregate": "c", "pipeline": [{"$match": {}}, {"$out": "o"}], "cursor": {}, "$db": "d"})"));
  EXPECT_TRUE(writes(R"({"insert": "c", "documents": [], "$db": "d"})"));
  EXPECT_TRUE(writes(R"({"findAndModify": "c", "query": {}, "remove": true, "$db": "d"})"));
  EXPECT_TRUE(writes(R"({"drop": "c", "$db": "d"})"));
  EXPECT_TRUE(writes(R"({"create": "c", "$db": "d"})"));
  EXPECT_TRUE(writes(R"({"someFutureCommand": "c", "$db": "d"})"));  // unknown: a write
  EXPECT_FALSE(writes(R"({"explain": {"delete": "c", "deletes": []}, "$db": "d"})"));  // explain runs nothing
}

TEST(ScopeStoreDrop, OnlyOwnStores) {
  EXPECT_FALSE(checkStoreDrop(kAbcOnly, "clerk", "store_abc", "abc"));
  auto refusal = checkStoreDrop(kAbcOnly, "clerk", "store_m2", "m2");
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->code, 13);
  EXPECT_NE(refusal->message.find("store_m2"), std::string::npos);
}

}  // namespace
}  // namespace mongogate::auth
