// mergeFanOutReplies (SPEC §4 "Cross-store views"): one row per fan-out — the parts
// (upstream, physical database, reply) and the one reply the app must see. The merged
// body must equal the expected one byte for byte (types included).
#include <gtest/gtest.h>

#include <bson/bson.h>

#include <string>
#include <vector>

#include "router/routing.h"
#include "router/store_registry.h"
#include "router_test_support.h"
#include "wire_test_support.h"

namespace mongogate::router {
namespace {

using routing_test::jsonOf;
using wire::test::bson;
using wire::test::ByteVec;

RoutingConfig testConfig() {
  RoutingConfig config;
  config.mainDatabase = "main_db";
  config.databaseCount = 3;
  // pos_db_1 and pos_db_3 on main, pos_db_2 on the "east" cluster.
  config.storeDatabaseUpstreams = {"", "east"};
  config.masterAdminPhysicalDatabase = "ma_phys";
  return config;
}

RegistrySnapshot testRegistry() {
  return RegistrySnapshot({
      {"1", "Abc", "abc", 1},
      {"2", "Def", "def", 2},
      {"3", "Ghi", "ghi", 0},    // not moved yet: lives in main_db
      {"4", "Ab", "ab", 1},
      {"5", "AbC", "ab_c", 2},   // longest prefix: "ab_c_products" is ab_c's, in pos_db_2
  });
}

struct Part {
  std::string upstream;
  std::string database;
  std::string reply;  // JSON
};

struct FanOutCase {
  std::string name;
  ReplyHandling handling;
  std::string requestExtra;  // extra request fields, e.g. R"(, "nameOnly": true)"
  std::vector<Part> parts;
  std::string expected;      // JSON; "=N": part N's reply unchanged
};

std::ostream& operator<<(std::ostream& os, const FanOutCase& c) { return os << c.name; }

class RouterFanOut : public ::testing::TestWithParam<FanOutCase> {};

TEST_P(RouterFanOut, MergesIntoTheLogicalView) {
  const FanOutCase& c = GetParam();
  const RoutingConfig config = testConfig();
  const RegistrySnapshot registry = testRegistry();
  RoutedCommand route;
  route.replyHandling = c.handling;
  route.commandName = c.handling == ReplyHandling::kMergeListDatabases ? "listDatabases" : "listCollections";
  std::vector<ByteVec> bodies;
  for (const Part& p : c.parts) {
    const std::string command = c.handling == ReplyHandling::kMergeListDatabases ? R"("listDatabases": 1)"
                                                                                 : R"("listCollections": 1)";
    route.fanOut.push_back(SubRequest{p.upstream, p.database,
                                      bson("{" + command + c.requestExtra + R"(, "$db": ")" + p.database + "\"}")});
    bodies.push_back(bson(p.reply));
  }
  std::vector<wire::Bytes> replies;
  for (const auto& b : bodies) replies.emplace_back(b.data(), b.size());

  std::vector<std::uint8_t> out{0xde, 0xad};
  mergeFanOutReplies(config, registry, route, replies, out);
  const ByteVec expected = c.expected.starts_with("=") ? bodies.at(std::stoul(c.expected.substr(1))) : bson(c.expected);
  EXPECT_EQ(out, expected) << "\n   got: " << jsonOf(out) << "\nwanted: " << jsonOf(expected);
}

std::string collections(const std::string& database, const std::string& entries) {
  return R"({"cursor": {"id": {"$numberLong": "0"}, "ns": ")" + database + R"(.$cmd.listCollections", "firstBatch": [)" +
         entries + R"(]}, "ok": 1.0})";
}

const std::string kMergedNs = R"({"cursor": {"id": {"$numberLong": "0"}, "ns": "main_db.$cmd.listCollections", "firstBatch": [)";

const FanOutCase kFanOutCases[] = {
    {"ListCollectionsHidesUnassignedAndDedupes", ReplyHandling::kMergeListCollections, "",
     {{"main", "main_db",
       collections("main_db", R"({"name": "stores", "type": "collection"}, {"name": "ghi_products", "type": "collection"},)"
                              R"({"name": "abc_products", "type": "collection", "options": {"capped": true}})")},
      {"main", "pos_db_1",
       collections("pos_db_1", R"({"name": "abc_products", "type": "collection"}, {"name": "abc_orders", "type": "collection"},)"
                               R"({"name": "def_products", "type": "collection"}, {"name": "zzz_products", "type": "collection"},)"
                               R"({"name": "system.views", "type": "collection"}, {"name": "ab_users", "type": "collection"},)"
                               R"({"name": "ab_c_products", "type": "collection"}, {"name": "orphan", "type": "collection"})")},
      {"east", "pos_db_2",
       collections("pos_db_2", R"({"name": "def_products", "type": "collection", "idIndex": {"v": 2, "name": "_id_", "ns": "pos_db_2.def_products"}},)"
                               R"({"name": "abc_users", "type": "collection"}, {"name": "ab_c_products", "type": "collection"})")}},
     kMergedNs + R"({"name": "stores", "type": "collection"}, {"name": "ghi_products", "type": "collection"},)"
                 R"({"name": "abc_products", "type": "collection", "options": {"capped": true}},)"
                 R"({"name": "abc_orders", "type": "collection"}, {"name": "ab_users", "type": "collection"},)"
                 R"({"name": "def_products", "type": "collection", "idIndex": {"v": 2, "name": "_id_", "ns": "main_db.def_products"}},)"
                 R"({"name": "ab_c_products", "type": "collection"}]}, "ok": 1.0})"},
    {"ListCollectionsNameOnly", ReplyHandling::kMergeListCollections, R"(, "nameOnly": true)",
     {{"main", "main_db", collections("main_db", R"({"name": "stores", "type": "collection"})")},
      {"east", "pos_db_2", collections("pos_db_2", R"({"name": "def_x", "type": "view"}, {"name": "stores", "type": "collection"})")}},
     kMergedNs + R"({"name": "stores", "type": "collection"}, {"name": "def_x", "type": "view"}]}, "ok": 1.0})"},
    {"ListCollectionsAcceptsIntegerAndBoolOk", ReplyHandling::kMergeListCollections, "",
     {{"main", "main_db", R"({"cursor": {"id": {"$numberLong": "0"}, "firstBatch": [{"name": "a"}]}, "ok": 1})"},
      {"main", "pos_db_1", R"({"cursor": {"id": {"$numberLong": "0"}, "firstBatch": [{"name": "abc_b"}]}, "ok": true})"}},
     kMergedNs + R"({"name": "a"}, {"name": "abc_b"}]}, "ok": 1.0})"},
    {"ListCollectionsOddPartsSkipped", ReplyHandling::kMergeListCollections, "",
     {{"main", "main_db", R"({"cursor": {"firstBatch": [{"name": "a"}, 5, {"type": "x"}]}, "ok": 1.0})"},
      {"main", "pos_db_1", R"({"cursor": "nope", "ok": 1.0})"},
      {"main", "pos_db_3", R"({"cursor": {"firstBatch": [{"name": 3}, 4, {"name": "abc_z"}]}, "ok": 1.0})"},
      {"main", "other_db", collections("other_db", R"({"name": "abc_q"})")}},
     // main's odd entries are shown as they are; abc is in pos_db_1, so pos_db_3's abc_z is hidden.
     kMergedNs + R"({"name": "a"}, 5, {"type": "x"}]}, "ok": 1.0})"},
    {"ListCollectionsErrorPartPropagates", ReplyHandling::kMergeListCollections, "",
     {{"main", "main_db", collections("main_db", R"({"name": "stores"})")},
      {"east", "pos_db_2", R"({"ok": 0.0, "errmsg": "not authorized on pos_db_2", "code": 13, "codeName": "Unauthorized"})"}},
     "=1"},
    {"ListCollectionsMissingOkIsAnError", ReplyHandling::kMergeListCollections, "",
     {{"main", "main_db", R"({"cursor": {"firstBatch": []}})"}, {"main", "pos_db_1", collections("pos_db_1", "")}},
     "=0"},

    {"ListDatabasesHidesStoreDatabasesAndFoldsSizes", ReplyHandling::kMergeListDatabases, "",
     {{"main", "admin",
       R"({"databases": [{"name": "admin", "sizeOnDisk": {"$numberLong": "40"}, "empty": false},)"
       R"({"name": "main_db", "sizeOnDisk": {"$numberLong": "100"}, "empty": true},)"
       R"({"name": "ma_phys", "sizeOnDisk": {"$numberLong": "1"}, "empty": false},)"
       R"({"name": "masteradmin", "sizeOnDisk": {"$numberLong": "2"}, "empty": false},)"
       R"({"name": "pos_db_1", "sizeOnDisk": {"$numberLong": "1000"}, "empty": false},)"
       R"({"name": "pos_db_2", "sizeOnDisk": {"$numberLong": "9"}, "empty": false},)"
       R"({"name": "pos_db_3", "sizeOnDisk": {"$numberLong": "0"}, "empty": true},)"
       R"({"name": "config", "sizeOnDisk": {"$numberLong": "20"}, "empty": false}],)"
       R"( "totalSize": {"$numberLong": "1169"}, "totalSizeMb": {"$numberLong": "0"}, "ok": 1.0})"},
      {"east", "admin",
       R"({"databases": [{"name": "admin", "sizeOnDisk": {"$numberLong": "41"}, "empty": false},)"
       R"({"name": "pos_db_2", "sizeOnDisk": {"$numberLong": "500"}, "empty": false},)"
       R"({"name": "east_only", "sizeOnDisk": {"$numberLong": "3"}, "empty": false}], "totalSize": {"$numberLong": "544"}, "ok": 1.0})"},
      {"masteradmin", "admin",
       R"({"databases": [{"name": "local", "sizeOnDisk": {"$numberLong": "5"}, "empty": false},)"
       R"({"name": "ma_phys", "sizeOnDisk": {"$numberLong": "7"}, "empty": false}], "totalSize": {"$numberLong": "12"}, "ok": 1.0})"}},
     // pos_db_2 counts from "east" (which holds it), not the stray copy on main; the
     // master-admin database comes from its own upstream, never from main's copies.
     R"({"databases": [{"name": "admin", "sizeOnDisk": {"$numberLong": "40"}, "empty": false},)"
     R"({"name": "config", "sizeOnDisk": {"$numberLong": "20"}, "empty": false},)"
     R"({"name": "main_db", "sizeOnDisk": {"$numberLong": "1600"}, "empty": false},)"
     R"({"name": "masteradmin", "sizeOnDisk": {"$numberLong": "7"}, "empty": false}],)"
     R"( "totalSize": {"$numberLong": "1667"}, "totalSizeMb": {"$numberLong": "0"}, "ok": 1.0})"},
    {"ListDatabasesKeepsDoubles", ReplyHandling::kMergeListDatabases, "",
     {{"main", "admin",
       R"({"databases": [{"name": "pos_db_1", "sizeOnDisk": 3145728.0, "empty": false}, {"name": "main_db", "sizeOnDisk": 1048576.0, "empty": false},)"
       R"({"name": "local", "sizeOnDisk": 1048576.0, "empty": false}], "totalSize": 5242880.0, "totalSizeMb": 5, "ok": 1.0})"}},
     R"({"databases": [{"name": "local", "sizeOnDisk": 1048576.0, "empty": false},)"
     R"({"name": "main_db", "sizeOnDisk": 4194304.0, "empty": false}],)"
     R"( "totalSize": 5242880.0, "totalSizeMb": {"$numberLong": "5"}, "ok": 1.0})"},
    {"ListDatabasesSynthesisesMain", ReplyHandling::kMergeListDatabases, "",
     {{"main", "admin",
       R"({"databases": [{"name": "pos_db_1", "sizeOnDisk": {"$numberLong": "30"}, "empty": false}, {"name": "local", "sizeOnDisk": {"$numberLong": "10"}, "empty": false}], "totalSize": {"$numberLong": "40"}, "ok": 1.0})"}},
     R"({"databases": [{"name": "local", "sizeOnDisk": {"$numberLong": "10"}, "empty": false},)"
     R"({"name": "main_db", "sizeOnDisk": {"$numberLong": "30"}, "empty": false}], "totalSize": {"$numberLong": "40"}, "ok": 1.0})"},
    {"ListDatabasesNameOnly", ReplyHandling::kMergeListDatabases, R"(, "nameOnly": true)",
     {{"main", "admin", R"({"databases": [{"name": "main_db"}, {"name": "pos_db_1"}, {"name": "admin"}], "ok": 1.0})"},
      {"masteradmin", "admin", R"({"databases": [{"name": "ma_phys"}, {"name": "admin"}], "ok": 1.0})"}},
     R"({"databases": [{"name": "admin"}, {"name": "main_db"}, {"name": "masteradmin"}], "ok": 1.0})"},
    {"ListDatabasesErrorPartPropagates", ReplyHandling::kMergeListDatabases, "",
     {{"main", "admin", R"({"databases": [], "totalSize": 0, "ok": 1.0})"},
      {"east", "admin", R"({"ok": 0, "errmsg": "command listDatabases requires authentication", "code": 13})"}},
     "=1"},
};

INSTANTIATE_TEST_SUITE_P(RouterFanOutMerges, RouterFanOut, ::testing::ValuesIn(kFanOutCases),
                         [](const ::testing::TestParamInfo<FanOutCase>& info) { return info.param.name; });

// The master-admin database under its own name (no physical rename) still comes from the
// master-admin upstream, and a copy on main of that name is not shown twice.
TEST(RouterFanOutListDatabases, MasterAdminWithoutRename) {
  RoutingConfig config = testConfig();
  config.masterAdminPhysicalDatabase.clear();
  const RegistrySnapshot registry = testRegistry();
  RoutedCommand route;
  route.replyHandling = ReplyHandling::kMergeListDatabases;
  const ByteVec body = bson(R"({"listDatabases": 1, "nameOnly": true, "$db": "admin"})");
  route.fanOut = {{"main", "admin", body}, {"masteradmin", "admin", body}};
  const ByteVec mainPart = bson(R"({"databases": [{"name": "masteradmin"}, {"name": "main_db"}], "ok": 1.0})");
  const ByteVec adminPart = bson(R"({"databases": [{"name": "masteradmin"}, {"name": "other"}], "ok": 1.0})");
  std::vector<std::uint8_t> out;
  mergeFanOutReplies(config, registry, route, {wire::Bytes(mainPart.data(), mainPart.size()), wire::Bytes(adminPart.data(), adminPart.size())}, out);
  EXPECT_EQ(out, bson(R"({"databases": [{"name": "main_db"}, {"name": "masteradmin"}], "ok": 1.0})")) << jsonOf(out);
}

// Malformed parts and a reply count that does not match the plan become one error.
TEST(RouterFanOutErrors, MalformedPartOrMissingReplyIsAnInternalError) {
  const RoutingConfig config = testConfig();
  const RegistrySnapshot registry = testRegistry();
  RoutedCommand route;
  route.replyHandling = ReplyHandling::kMergeListCollections;
  const ByteVec body = bson(R"({"listCollections": 1, "$db": "main_db"})");
  route.fanOut = {{"main", "main_db", body}, {"main", "pos_db_1", body}};
  const ByteVec good = bson(collections("main_db", R"({"name": "a"})"));
  ByteVec bad = good;
  bad.resize(bad.size() - 3);
  wire::storeInt32LE(bad.data(), static_cast<std::int32_t>(bad.size()));

  const auto expectInternalError = [](const std::vector<std::uint8_t>& out) {
    bson_iter_t it;
    ASSERT_TRUE(bson_iter_init_from_data(&it, out.data(), out.size())) << jsonOf(out);
    ASSERT_TRUE(bson_iter_find(&it, "ok"));
    EXPECT_EQ(bson_iter_as_double(&it), 0.0);
    ASSERT_TRUE(bson_iter_init_from_data(&it, out.data(), out.size()));
    ASSERT_TRUE(bson_iter_find(&it, "code"));
    EXPECT_EQ(bson_iter_int32(&it), 1);
  };
  std::vector<std::uint8_t> out;
  mergeFanOutReplies(config, registry, route, {wire::Bytes(good.data(), good.size()), wire::Bytes(bad.data(), bad.size())}, out);
  expectInternalError(out);
  out.clear();
  mergeFanOutReplies(config, registry, route, {wire::Bytes(good.data(), good.size())}, out);
  expectInternalError(out);
}

}  // namespace
}  // namespace mongogate::router
