// routeCommand, request side (SPEC §3, §4, §5): one row per command shape — the logical
// request the app sends (extended JSON, with its kind-1 sequences), and the target
// upstream plus the physical request mongogate must forward (or "unchanged": the
// original bytes go as they are), or the refusal it must answer with. Then the
// fan-out plans (listCollections, listDatabases) and the registry insert that assigns
// databaseId, which have more to check than a row holds.
#include <gtest/gtest.h>

#include <bson/bson.h>

#include <string>
#include <vector>

#include "router/routing.h"
#include "router_test_support.h"
#include "wire/builder.h"
#include "wire_test_support.h"

namespace mongogate::router::routing_test {
namespace {

struct RequestCase {
  std::string name;
  std::string request;                  // the logical body
  std::vector<Sequence> sequences{};    // its kind-1 sequences
  std::string upstream{};               // expected target (unused when refused)
  std::string physical{};               // expected body; empty: forwarded unchanged
  std::vector<Sequence> physicalSequences{};  // expected rewritten sequences (others untouched)
  std::vector<std::string> mappings{};  // expected mappings (describeMapping); empty: not checked
  int refusal = 0;                      // expected refusal code; 0: routed
  std::string refusalMessage{};         // the whole expected message, when refused
};

std::ostream& operator<<(std::ostream& os, const RequestCase& c) { return os << c.name; }

class RouterRequest : public ::testing::TestWithParam<RequestCase> {};

TEST_P(RouterRequest, RoutesAndRewrites) {
  const RequestCase& c = GetParam();
  const RegistrySnapshot registry(fixtureStores(), 1);
  const RoutingConfig config = fixtureConfig();
  AssignmentState assignment;
  const Request req = makeRequest(c.request, c.sequences);
  const RoutedCommand r = routeCommand(config, registry, assignment, req.view);

  EXPECT_EQ(r.commandName, std::string(wire::firstKey(req.view.body)));
  EXPECT_EQ(r.replyHandling, ReplyHandling::kForward);
  EXPECT_TRUE(r.fanOut.empty());
  EXPECT_TRUE(r.newStores.empty());

  if (c.refusal != 0) {
    ASSERT_TRUE(r.refusal.has_value()) << "routed to " << r.upstream << ": " << jsonOf(r.body);
    EXPECT_EQ(r.refusal->code, c.refusal);
    EXPECT_EQ(r.refusal->codeName, c.refusal == 26 ? "NamespaceNotFound" : "IllegalOperation");
    EXPECT_EQ(r.refusal->message, c.refusalMessage);
    // SPEC §4: the app never sees a physical store database it did not name itself.
    if (c.request.find("pos_db") == std::string::npos) {
      EXPECT_EQ(r.refusal->message.find("pos_db"), std::string::npos);
    }
    EXPECT_FALSE(r.bodyRewritten);
    EXPECT_TRUE(r.rewrittenSequences.empty());
    return;
  }
  ASSERT_FALSE(r.refusal.has_value()) << r.refusal->message;
  EXPECT_EQ(r.upstream, c.upstream);

  if (c.physical.empty()) {
    EXPECT_FALSE(r.bodyRewritten) << "rewrote to " << jsonOf(r.body);
    EXPECT_TRUE(r.body.empty());
  } else {
    ASSERT_TRUE(r.bodyRewritten) << "expected " << canonical(c.physical);
    EXPECT_EQ(jsonOf(r.body), canonical(c.physical));
    // Same bytes (types and order), and a body the wire layer accepts.
    EXPECT_EQ(r.body, wire::test::bson(c.physical));
    EXPECT_EQ(wire::validateBsonDocument(wire::Bytes(r.body)), -1);
  }

  ASSERT_EQ(r.rewrittenSequences.size(), c.physicalSequences.size());
  for (std::size_t i = 0; i < c.physicalSequences.size(); ++i) {
    EXPECT_EQ(r.rewrittenSequences[i].first, c.physicalSequences[i].identifier);
    std::vector<std::string> expected;
    for (const auto& d : c.physicalSequences[i].documents) expected.push_back(canonical(d));
    EXPECT_EQ(jsonOfDocuments(wire::Bytes(r.rewrittenSequences[i].second)), expected);
  }

  if (!c.mappings.empty()) {
    std::vector<std::string> expected = c.mappings;
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(describeMappings(r.mappings), expected);
  }
}

const std::string kLookupProducts =
    R"({"$lookup": {"from": "abc_products", "localField": "p", "foreignField": "_id", "as": "prod"}})";

const RequestCase kCases[] = {
    // ---- find: rules 1-4 -------------------------------------------------------------
    {.name = "FindRule2StoreInPosDb1",
     .request = R"({"find": "abc_orders", "filter": {"total": {"$gt": 5}}, "$db": "main_db"})",
     .upstream = "main",
     .physical = R"({"find": "abc_orders", "filter": {"total": {"$gt": 5}}, "$db": "pos_db_1"})",
     .mappings = {"pos_db_1.abc_orders <- main_db.abc_orders r2 abc"}},
    // A second $db that is not a string (a broken client): rebuilt, never spliced as a
    // string value behind the int32 type byte.
    {.name = "FindDuplicateDollarDbNotAString",
     .request = R"({"find": "abc_orders", "$db": "main_db", "$db": 5})",
     .upstream = "main",
     .physical = R"({"find": "abc_orders", "$db": "pos_db_1", "$db": "pos_db_1"})"},
    {.name = "FindRule2LongestPrefixOnShard2",
     .request = R"({"find": "abc_x_products", "$db": "main_db"})",
     .upstream = "shard2",
     .physical = R"({"find": "abc_x_products", "$db": "pos_db_4"})",
     .mappings = {"pos_db_4.abc_x_products <- main_db.abc_x_products r2 abc_x"}},
    {.name = "FindRule2ShorterPrefixWhenLongerDoesNotFit",
     .request = R"({"find": "abc_xylophones", "$db": "main_db"})",
     .upstream = "main",
     .physical = R"({"find": "abc_xylophones", "$db": "pos_db_1"})",
     .mappings = {"pos_db_1.abc_xylophones <- main_db.abc_xylophones r2 abc"}},
    {.name = "FindRule2UnmovedStoreStaysInMainDb",
     .request = R"({"find": "old_orders", "$db": "main_db"})",
     .upstream = "main",
     .mappings = {"main_db.old_orders <- main_db.old_orders r2 old"}},
    {.name = "FindSharedCollectionRule4",
     .request = R"({"find": "users", "filter": {"storeId": null}, "$db": "main_db"})",
     .upstream = "main",
     .mappings = {"main_db.users <- main_db.users r4"}},
    {.name = "FindRegistryCollection",
     .request = R"({"find": "stores", "$db": "main_db"})",
     .upstream = "main",
     .mappings = {"main_db.stores <- main_db.stores r4"}},
    {.name = "FindMasterAdminRule1",
     .request = R"({"find": "plans", "$db": "masteradmin"})",
     .upstream = "masteradmin",
     .mappings = {"masteradmin.plans <- masteradmin.plans r1"}},
    {.name = "FindRule3",
     .request = R"({"find": "products", "filter": {}, "limit": 3, "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"find": "abc_products", "filter": {}, "limit": 3, "$db": "pos_db_1"})",
     .mappings = {"pos_db_1.abc_products <- store_abc.products r3 abc"}},
    {.name = "FindRule3OnShard2",
     .request = R"({"find": "orders", "$db": "store_xyz"})",
     .upstream = "shard2",
     .physical = R"({"find": "xyz_orders", "$db": "pos_db_4"})"},
    {.name = "FindRule3LongerPrefix",
     .request = R"({"find": "products", "$db": "store_abc_x"})",
     .upstream = "shard2",
     .physical = R"({"find": "abc_x_products", "$db": "pos_db_4"})",
     .mappings = {"pos_db_4.abc_x_products <- store_abc_x.products r3 abc_x"}},
    {.name = "FindRule3UnmovedStoreGoesToMainDb",
     .request = R"({"find": "orders", "$db": "store_old"})",
     .upstream = "main",
     .physical = R"({"find": "old_orders", "$db": "main_db"})",
     .mappings = {"main_db.old_orders <- store_old.orders r3 old"}},
    {.name = "FindRule3UnknownPrefixRefused",
     .request = R"({"find": "products", "$db": "store_nope"})",
     .refusal = 26,
     .refusalMessage = "mongogate: no store with prefix 'nope' is registered (logical namespace "
                       "'store_nope.products')"},
    {.name = "FindPhysicalStoreDatabaseGoesWhereItLives",
     .request = R"({"find": "abc_x_products", "$db": "pos_db_4"})",
     .upstream = "shard2",
     .mappings = {"pos_db_4.abc_x_products <- pos_db_4.abc_x_products r4"}},
    {.name = "FindWithNonStringValuePassesThrough",
     .request = R"({"find": 5, "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"find": 5, "$db": "pos_db_1"})"},
    {.name = "NoDollarDbGoesToMainUnchanged",
     .request = R"({"find": "abc_orders"})",
     .upstream = "main"},

    // ---- writes: sequences travel untouched ------------------------------------------
    {.name = "InsertDocumentsInBody",
     .request = R"({"insert": "abc_orders", "documents": [{"_id": 1, "ns": "main_db.abc_orders"}], "ordered": true, "$db": "main_db"})",
     .upstream = "main",
     .physical = R"({"insert": "abc_orders", "documents": [{"_id": 1, "ns": "main_db.abc_orders"}], "ordered": true, "$db": "pos_db_1"})"},
    {.name = "InsertDocumentSequenceUntouched",
     .request = R"({"insert": "xyz_orders", "ordered": true, "$db": "main_db"})",
     .sequences = {{"documents", {R"({"_id": 1, "ns": "main_db.xyz_orders"})", R"({"_id": 2})"}}},
     .upstream = "shard2",
     .physical = R"({"insert": "xyz_orders", "ordered": true, "$db": "pos_db_4"})"},
    {.name = "UpdateRule3WithSequence",
     .request = R"({"update": "products", "ordered": true, "$db": "store_m2"})",
     .sequences = {{"updates", {R"({"q": {}, "u": {"$set": {"a": 1}}, "multi": true})"}}},
     .upstream = "main",
     .physical = R"({"update": "m2_products", "ordered": true, "$db": "pos_db_2"})"},
    {.name = "DeleteRule3InBody",
     .request = R"({"delete": "orders", "deletes": [{"q": {}, "limit": 0}], "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"delete": "abc_orders", "deletes": [{"q": {}, "limit": 0}], "$db": "pos_db_1"})"},
    {.name = "FindAndModifyRule2",
     .request = R"({"findAndModify": "abc_x_orders", "query": {}, "update": {"$inc": {"n": 1}}, "$db": "main_db"})",
     .upstream = "shard2",
     .physical = R"({"findAndModify": "abc_x_orders", "query": {}, "update": {"$inc": {"n": 1}}, "$db": "pos_db_4"})"},
    {.name = "CountRule3",
     .request = R"({"count": "orders", "query": {"a": 1}, "$db": "store_xyz"})",
     .upstream = "shard2",
     .physical = R"({"count": "xyz_orders", "query": {"a": 1}, "$db": "pos_db_4"})"},
    {.name = "DistinctRule2",
     .request = R"({"distinct": "m2_products", "key": "brand", "$db": "main_db"})",
     .upstream = "main",
     .physical = R"({"distinct": "m2_products", "key": "brand", "$db": "pos_db_2"})"},

    // ---- aggregate -------------------------------------------------------------------
    {.name = "AggregateRule2",
     .request = R"({"aggregate": "abc_orders", "pipeline": [{"$match": {}}], "cursor": {}, "$db": "main_db"})",
     .upstream = "main",
     .physical = R"({"aggregate": "abc_orders", "pipeline": [{"$match": {}}], "cursor": {}, "$db": "pos_db_1"})"},
    {.name = "AggregateLookupSameDatabaseRule2",
     .request = R"({"aggregate": "abc_orders", "pipeline": [)" + kLookupProducts + R"(], "cursor": {}, "$db": "main_db"})",
     .upstream = "main",
     .physical = R"({"aggregate": "abc_orders", "pipeline": [)" + kLookupProducts + R"(], "cursor": {}, "$db": "pos_db_1"})",
     .mappings = {"pos_db_1.abc_orders <- main_db.abc_orders r2 abc",
                  "pos_db_1.abc_products <- main_db.abc_products r2 abc"}},
    {.name = "AggregateLookupSameDatabaseTwoStoresOnShard2",
     .request = R"({"aggregate": "xyz_orders", "pipeline": [{"$lookup": {"from": "abc_x_products", "localField": "p", "foreignField": "_id", "as": "x"}}], "$db": "main_db"})",
     .upstream = "shard2",
     .physical = R"({"aggregate": "xyz_orders", "pipeline": [{"$lookup": {"from": "abc_x_products", "localField": "p", "foreignField": "_id", "as": "x"}}], "$db": "pos_db_4"})"},
    {.name = "AggregateLookupRule3Rewritten",
     .request = R"({"aggregate": "orders", "pipeline": [{"$lookup": {"from": "products", "localField": "p", "foreignField": "_id", "as": "prod"}}], "cursor": {}, "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"aggregate": "abc_orders", "pipeline": [)" + kLookupProducts + R"(], "cursor": {}, "$db": "pos_db_1"})",
     .mappings = {"pos_db_1.abc_orders <- store_abc.orders r3 abc",
                  "pos_db_1.abc_products <- store_abc.products r3 abc"}},
    {.name = "AggregateLookupCrossUpstreamRefused",
     .request = R"({"aggregate": "abc_orders", "pipeline": [{"$lookup": {"from": "xyz_products", "localField": "p", "foreignField": "_id", "as": "x"}}], "cursor": {}, "$db": "main_db"})",
     .refusal = 20,
     .refusalMessage =
         "mongogate: aggregate on main_db.abc_orders names main_db.xyz_products in $lookup, which is on upstream 'shard2' while main_db.abc_orders is on 'main'; cross-upstream commands are refused"},
    {.name = "AggregateLookupCrossDatabaseRefused",
     .request = R"({"aggregate": "abc_orders", "pipeline": [{"$lookup": {"from": "m2_products", "localField": "p", "foreignField": "_id", "as": "x"}}], "$db": "main_db"})",
     .refusal = 20,
     .refusalMessage =
         "mongogate: aggregate on main_db.abc_orders names main_db.m2_products in $lookup, which is in the database of store 'm2' while main_db.abc_orders is in the database of store 'abc'; $lookup can only name a collection of the database the command runs in, so the command is refused"},
    {.name = "AggregateLookupSharedCollectionFromMovedStoreRefused",
     .request = R"({"aggregate": "m2_orders", "pipeline": [{"$lookup": {"from": "users", "localField": "u", "foreignField": "_id", "as": "x"}}], "$db": "main_db"})",
     .refusal = 20,
     .refusalMessage =
         "mongogate: aggregate on main_db.m2_orders names main_db.users in $lookup, which is in the main database while main_db.m2_orders is in the database of store 'm2'; $lookup can only name a collection of the database the command runs in, so the command is refused"},
    {.name = "AggregateLookupSharedCollectionFromUnmovedStore",
     .request = R"({"aggregate": "old_orders", "pipeline": [{"$lookup": {"from": "users", "localField": "u", "foreignField": "_id", "as": "x"}}], "$db": "main_db"})",
     .upstream = "main",
     .mappings = {"main_db.old_orders <- main_db.old_orders r2 old", "main_db.users <- main_db.users r4"}},
    {.name = "AggregateNestedPipelinesRule3",
     .request = R"({"aggregate": "orders", "pipeline": [
         {"$lookup": {"from": "products", "let": {"p": "$p"}, "pipeline": [
             {"$lookup": {"from": "brands", "localField": "b", "foreignField": "_id", "as": "brand"}}], "as": "prod"}},
         {"$unionWith": {"coll": "archive", "pipeline": [{"$graphLookup": {"from": "categories", "startWith": "$c", "connectFromField": "parent", "connectToField": "_id", "as": "tree"}}]}},
         {"$unionWith": "returns"},
         {"$facet": {"a": [{"$lookup": {"from": "users", "localField": "u", "foreignField": "_id", "as": "u"}}], "b": [{"$unionWith": {"coll": "brands", "pipeline": [{"$match": {}}]}}], "c": [{"$count": "n"}]}}
       ], "cursor": {}, "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"aggregate": "abc_orders", "pipeline": [
         {"$lookup": {"from": "abc_products", "let": {"p": "$p"}, "pipeline": [
             {"$lookup": {"from": "abc_brands", "localField": "b", "foreignField": "_id", "as": "brand"}}], "as": "prod"}},
         {"$unionWith": {"coll": "abc_archive", "pipeline": [{"$graphLookup": {"from": "abc_categories", "startWith": "$c", "connectFromField": "parent", "connectToField": "_id", "as": "tree"}}]}},
         {"$unionWith": "abc_returns"},
         {"$facet": {"a": [{"$lookup": {"from": "abc_users", "localField": "u", "foreignField": "_id", "as": "u"}}], "b": [{"$unionWith": {"coll": "abc_brands", "pipeline": [{"$match": {}}]}}], "c": [{"$count": "n"}]}}
       ], "cursor": {}, "$db": "pos_db_1"})"},
    {.name = "AggregateNestedFacetCrossUpstreamRefused",
     .request = R"({"aggregate": "abc_orders", "pipeline": [{"$facet": {"a": [{"$unionWith": {"coll": "abc_archive", "pipeline": [{"$lookup": {"from": "xyz_products", "pipeline": [], "as": "x"}}]}}]}}], "$db": "main_db"})",
     .refusal = 20,
     .refusalMessage =
         "mongogate: aggregate on main_db.abc_orders names main_db.xyz_products in $lookup, which is on upstream 'shard2' while main_db.abc_orders is on 'main'; cross-upstream commands are refused"},
    {.name = "AggregateGraphLookupRule3",
     .request = R"({"aggregate": "orders", "pipeline": [{"$graphLookup": {"from": "products", "startWith": "$a", "connectFromField": "a", "connectToField": "b", "as": "c"}}], "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"aggregate": "abc_orders", "pipeline": [{"$graphLookup": {"from": "abc_products", "startWith": "$a", "connectFromField": "a", "connectToField": "b", "as": "c"}}], "$db": "pos_db_1"})"},
    {.name = "AggregateOutStringSameDatabase",
     .request = R"({"aggregate": "orders", "pipeline": [{"$out": "summary"}], "cursor": {}, "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"aggregate": "abc_orders", "pipeline": [{"$out": "abc_summary"}], "cursor": {}, "$db": "pos_db_1"})"},
    {.name = "AggregateOutStringToAnotherDatabaseBecomesDbColl",
     .request = R"({"aggregate": "abc_orders", "pipeline": [{"$out": "report"}], "cursor": {}, "$db": "main_db"})",
     .upstream = "main",
     .physical = R"({"aggregate": "abc_orders", "pipeline": [{"$out": {"coll": "report", "db": "main_db"}}], "cursor": {}, "$db": "pos_db_1"})",
     .mappings = {"pos_db_1.abc_orders <- main_db.abc_orders r2 abc", "main_db.report <- main_db.report r4"}},
    {.name = "AggregateOutDbColl",
     .request = R"({"aggregate": "orders", "pipeline": [{"$out": {"db": "store_m2", "coll": "copy"}}], "cursor": {}, "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"aggregate": "abc_orders", "pipeline": [{"$out": {"db": "pos_db_2", "coll": "m2_copy"}}], "cursor": {}, "$db": "pos_db_1"})"},
    {.name = "AggregateOutCrossUpstreamRefused",
     .request = R"({"aggregate": "orders", "pipeline": [{"$out": {"db": "store_xyz", "coll": "copy"}}], "$db": "store_abc"})",
     .refusal = 20,
     .refusalMessage =
         "mongogate: aggregate on store_abc.orders names store_xyz.copy in $out, which is on upstream 'shard2' while store_abc.orders is on 'main'; cross-upstream commands are refused"},
    {.name = "AggregateMergeStringSameDatabase",
     .request = R"({"aggregate": "abc_orders", "pipeline": [{"$merge": "abc_totals"}], "$db": "main_db"})",
     .upstream = "main",
     .physical = R"({"aggregate": "abc_orders", "pipeline": [{"$merge": "abc_totals"}], "$db": "pos_db_1"})"},
    {.name = "AggregateMergeStringToAnotherDatabaseBecomesInto",
     .request = R"({"aggregate": "abc_orders", "pipeline": [{"$merge": "totals"}], "$db": "main_db"})",
     .upstream = "main",
     .physical = R"({"aggregate": "abc_orders", "pipeline": [{"$merge": {"into": {"coll": "totals", "db": "main_db"}}}], "$db": "pos_db_1"})"},
    {.name = "AggregateMergeIntoStringRule3",
     .request = R"({"aggregate": "orders", "pipeline": [{"$merge": {"into": "totals", "on": "_id", "whenMatched": "replace"}}], "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"aggregate": "abc_orders", "pipeline": [{"$merge": {"into": "abc_totals", "on": "_id", "whenMatched": "replace"}}], "$db": "pos_db_1"})"},
    {.name = "AggregateMergeIntoDbColl",
     .request = R"({"aggregate": "orders", "pipeline": [{"$merge": {"into": {"db": "store_xyz", "coll": "totals"}, "whenNotMatched": "insert"}}], "$db": "store_abc_x"})",
     .upstream = "shard2",
     .physical = R"({"aggregate": "abc_x_orders", "pipeline": [{"$merge": {"into": {"db": "pos_db_4", "coll": "xyz_totals"}, "whenNotMatched": "insert"}}], "$db": "pos_db_4"})"},
    {.name = "AggregateMergeIntoCrossUpstreamRefused",
     .request = R"({"aggregate": "orders", "pipeline": [{"$merge": {"into": {"db": "main_db", "coll": "totals"}}}], "$db": "store_xyz"})",
     .refusal = 20,
     .refusalMessage =
         "mongogate: aggregate on store_xyz.orders names main_db.totals in $merge, which is on upstream 'main' while store_xyz.orders is on 'shard2'; cross-upstream commands are refused"},
    {.name = "AggregateDatabaseLevelRule4",
     .request = R"({"aggregate": 1, "pipeline": [{"$documents": [{"a": 1}]}], "cursor": {}, "$db": "main_db"})",
     .upstream = "main",
     .mappings = {"main_db <- main_db r4"}},
    {.name = "AggregateDatabaseLevelRule3WithLookup",
     .request = R"({"aggregate": 1, "pipeline": [{"$documents": [{"a": 1}]}, {"$lookup": {"from": "products", "pipeline": [], "as": "p"}}], "cursor": {}, "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"aggregate": 1, "pipeline": [{"$documents": [{"a": 1}]}, {"$lookup": {"from": "abc_products", "pipeline": [], "as": "p"}}], "cursor": {}, "$db": "pos_db_1"})",
     .mappings = {"pos_db_1 <- store_abc r3 abc", "pos_db_1.abc_products <- store_abc.products r3 abc"}},
    {.name = "AggregateOutToUnknownStoreRefused",
     .request = R"({"aggregate": "orders", "pipeline": [{"$out": {"db": "store_nope", "coll": "x"}}], "$db": "store_abc"})",
     .refusal = 26,
     .refusalMessage = "mongogate: no store with prefix 'nope' is registered (logical namespace "
                       "'store_nope.x')"},

    // ---- change streams --------------------------------------------------------------
    {.name = "ChangeStreamOnRule2Collection",
     .request = R"({"aggregate": "abc_x_orders", "pipeline": [{"$changeStream": {}}], "cursor": {}, "$db": "main_db"})",
     .upstream = "shard2",
     .physical = R"({"aggregate": "abc_x_orders", "pipeline": [{"$changeStream": {}}], "cursor": {}, "$db": "pos_db_4"})"},
    {.name = "ChangeStreamOnRule3Collection",
     .request = R"({"aggregate": "orders", "pipeline": [{"$changeStream": {}}], "cursor": {}, "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"aggregate": "abc_orders", "pipeline": [{"$changeStream": {}}], "cursor": {}, "$db": "pos_db_1"})"},
    {.name = "ChangeStreamOnRule3DatabaseScopedToTheStore",
     .request = R"({"aggregate": 1, "pipeline": [{"$changeStream": {"fullDocument": "updateLookup"}}, {"$project": {"x": 1}}], "cursor": {}, "$db": "store_xyz"})",
     .upstream = "shard2",
     .physical = R"({"aggregate": 1, "pipeline": [{"$changeStream": {"fullDocument": "updateLookup"}},
         {"$match": {"$or": [{"ns.coll": {"$regularExpression": {"pattern": "^xyz_", "options": ""}}}, {"ns.coll": {"$exists": false}}]}},
         {"$project": {"x": 1}}], "cursor": {}, "$db": "pos_db_4"})"},
    {.name = "ChangeStreamOnMainDatabaseUnchanged",
     .request = R"({"aggregate": 1, "pipeline": [{"$changeStream": {}}], "cursor": {}, "$db": "main_db"})",
     .upstream = "main"},

    // ---- cursors ---------------------------------------------------------------------
    {.name = "GetMoreRule2",
     .request = R"({"getMore": {"$numberLong": "42"}, "collection": "abc_x_products", "batchSize": 10, "$db": "main_db"})",
     .upstream = "shard2",
     .physical = R"({"getMore": {"$numberLong": "42"}, "collection": "abc_x_products", "batchSize": 10, "$db": "pos_db_4"})"},
    {.name = "GetMoreRule3",
     .request = R"({"getMore": {"$numberLong": "42"}, "collection": "products", "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"getMore": {"$numberLong": "42"}, "collection": "abc_products", "$db": "pos_db_1"})",
     .mappings = {"pos_db_1.abc_products <- store_abc.products r3 abc"}},
    {.name = "GetMoreRule3DatabaseLevelCursor",
     .request = R"({"getMore": {"$numberLong": "43"}, "collection": "$cmd.aggregate", "$db": "store_xyz"})",
     .upstream = "shard2",
     .physical = R"({"getMore": {"$numberLong": "43"}, "collection": "$cmd.aggregate", "$db": "pos_db_4"})"},
    {.name = "GetMoreListIndexesCursorRule2",
     .request = R"({"getMore": {"$numberLong": "44"}, "collection": "$cmd.listIndexes.xyz_products", "$db": "main_db"})",
     .upstream = "shard2",
     .physical = R"({"getMore": {"$numberLong": "44"}, "collection": "$cmd.listIndexes.xyz_products", "$db": "pos_db_4"})",
     .mappings = {"pos_db_4.$cmd.listIndexes.xyz_products <- main_db.$cmd.listIndexes.xyz_products r2 xyz"}},
    {.name = "GetMoreListIndexesCursorRule3",
     .request = R"({"getMore": {"$numberLong": "44"}, "collection": "$cmd.listIndexes.products", "$db": "store_m2"})",
     .upstream = "main",
     .physical = R"({"getMore": {"$numberLong": "44"}, "collection": "$cmd.listIndexes.m2_products", "$db": "pos_db_2"})",
     .mappings = {"pos_db_2.$cmd.listIndexes.m2_products <- store_m2.$cmd.listIndexes.products r3 m2"}},
    {.name = "KillCursorsRule3",
     .request = R"({"killCursors": "products", "cursors": [{"$numberLong": "42"}], "$db": "store_xyz"})",
     .upstream = "shard2",
     .physical = R"({"killCursors": "xyz_products", "cursors": [{"$numberLong": "42"}], "$db": "pos_db_4"})"},
    {.name = "KillCursorsRule2",
     .request = R"({"killCursors": "m2_orders", "cursors": [{"$numberLong": "7"}], "$db": "main_db"})",
     .upstream = "main",
     .physical = R"({"killCursors": "m2_orders", "cursors": [{"$numberLong": "7"}], "$db": "pos_db_2"})"},

    // ---- DDL -------------------------------------------------------------------------
    {.name = "CreateRule3",
     .request = R"({"create": "products", "$db": "store_m2"})",
     .upstream = "main",
     .physical = R"({"create": "m2_products", "$db": "pos_db_2"})"},
    {.name = "CreateViewRule3",
     .request = R"({"create": "cheap", "viewOn": "products", "pipeline": [{"$match": {"price": {"$lt": 5}}}, {"$lookup": {"from": "brands", "localField": "b", "foreignField": "_id", "as": "brand"}}], "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"create": "abc_cheap", "viewOn": "abc_products", "pipeline": [{"$match": {"price": {"$lt": 5}}}, {"$lookup": {"from": "abc_brands", "localField": "b", "foreignField": "_id", "as": "brand"}}], "$db": "pos_db_1"})"},
    {.name = "CreateViewCrossDatabaseRefused",
     .request = R"({"create": "abc_view", "viewOn": "m2_products", "pipeline": [], "$db": "main_db"})",
     .refusal = 20,
     .refusalMessage =
         "mongogate: create on main_db.abc_view names main_db.m2_products in viewOn, which is in the database of store 'm2' while main_db.abc_view is in the database of store 'abc'; viewOn can only name a collection of the database the command runs in, so the command is refused"},
    {.name = "CollModViewRule3",
     .request = R"({"collMod": "cheap", "viewOn": "products", "pipeline": [{"$unionWith": "archive"}], "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"collMod": "abc_cheap", "viewOn": "abc_products", "pipeline": [{"$unionWith": "abc_archive"}], "$db": "pos_db_1"})"},
    {.name = "DropRule2",
     .request = R"({"drop": "abc_orders", "$db": "main_db"})",
     .upstream = "main",
     .physical = R"({"drop": "abc_orders", "$db": "pos_db_1"})"},
    {.name = "CreateIndexesRule3",
     .request = R"({"createIndexes": "products", "indexes": [{"key": {"sku": 1}, "name": "sku_1"}, {"key": {"a": 1}, "name": "a_1", "ns": "store_abc.products"}], "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"createIndexes": "abc_products", "indexes": [{"key": {"sku": 1}, "name": "sku_1"}, {"key": {"a": 1}, "name": "a_1", "ns": "pos_db_1.abc_products"}], "$db": "pos_db_1"})"},
    {.name = "DropIndexesRule2",
     .request = R"({"dropIndexes": "abc_orders", "index": "*", "$db": "main_db"})",
     .upstream = "main",
     .physical = R"({"dropIndexes": "abc_orders", "index": "*", "$db": "pos_db_1"})"},
    {.name = "ListIndexesRule3",
     .request = R"({"listIndexes": "orders", "cursor": {}, "$db": "store_xyz"})",
     .upstream = "shard2",
     .physical = R"({"listIndexes": "xyz_orders", "cursor": {}, "$db": "pos_db_4"})"},
    {.name = "CloneCollectionAsCappedRule3",
     .request = R"({"cloneCollectionAsCapped": "orders", "toCollection": "orders_capped", "size": 1000, "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"cloneCollectionAsCapped": "abc_orders", "toCollection": "abc_orders_capped", "size": 1000, "$db": "pos_db_1"})"},
    {.name = "RenameCollectionRule2OnAdmin",
     .request = R"({"renameCollection": "main_db.abc_orders", "to": "main_db.abc_orders_old", "dropTarget": false, "$db": "admin"})",
     .upstream = "main",
     .physical = R"({"renameCollection": "pos_db_1.abc_orders", "to": "pos_db_1.abc_orders_old", "dropTarget": false, "$db": "admin"})",
     .mappings = {"pos_db_1.abc_orders <- main_db.abc_orders r2 abc",
                  "pos_db_1.abc_orders_old <- main_db.abc_orders_old r2 abc"}},
    {.name = "RenameCollectionRule3OnShard2",
     .request = R"({"renameCollection": "store_xyz.orders", "to": "store_xyz.archive", "$db": "admin"})",
     .upstream = "shard2",
     .physical = R"({"renameCollection": "pos_db_4.xyz_orders", "to": "pos_db_4.xyz_archive", "$db": "admin"})"},
    {.name = "RenameCollectionToAnotherDatabaseOnTheSameUpstream",
     .request = R"({"renameCollection": "main_db.abc_orders", "to": "main_db.archive", "$db": "admin"})",
     .upstream = "main",
     .physical = R"({"renameCollection": "pos_db_1.abc_orders", "to": "main_db.archive", "$db": "admin"})"},
    {.name = "RenameCollectionCrossUpstreamRefused",
     .request = R"({"renameCollection": "main_db.abc_orders", "to": "main_db.xyz_orders", "$db": "admin"})",
     .refusal = 20,
     .refusalMessage =
         "mongogate: renameCollection on main_db.abc_orders names main_db.xyz_orders in to, which is on upstream 'shard2' while main_db.abc_orders is on 'main'; cross-upstream commands are refused"},
    {.name = "ValidateRule3",
     .request = R"({"validate": "orders", "full": true, "$db": "store_m2"})",
     .upstream = "main",
     .physical = R"({"validate": "m2_orders", "full": true, "$db": "pos_db_2"})"},
    {.name = "CollStatsRule2",
     .request = R"({"collStats": "abc_x_products", "scale": 1024, "$db": "main_db"})",
     .upstream = "shard2",
     .physical = R"({"collStats": "abc_x_products", "scale": 1024, "$db": "pos_db_4"})"},
    {.name = "DbStatsRule3",
     .request = R"({"dbStats": 1, "$db": "store_xyz"})",
     .upstream = "shard2",
     .physical = R"({"dbStats": 1, "$db": "pos_db_4"})",
     .mappings = {"pos_db_4 <- store_xyz r3 xyz"}},
    {.name = "DbStatsMainDatabase",
     .request = R"({"dbStats": 1, "$db": "main_db"})",
     .upstream = "main"},
    {.name = "DataSizeRule2",
     .request = R"({"dataSize": "main_db.abc_orders", "$db": "main_db"})",
     .upstream = "main",
     .physical = R"({"dataSize": "pos_db_1.abc_orders", "$db": "pos_db_1"})"},
    {.name = "DataSizeRule3",
     .request = R"({"dataSize": "store_xyz.orders", "keyPattern": {"_id": 1}, "$db": "store_xyz"})",
     .upstream = "shard2",
     .physical = R"({"dataSize": "pos_db_4.xyz_orders", "keyPattern": {"_id": 1}, "$db": "pos_db_4"})"},

    // ---- explain ---------------------------------------------------------------------
    {.name = "ExplainFindRule2",
     .request = R"({"explain": {"find": "abc_x_orders", "filter": {"a": 1}}, "verbosity": "queryPlanner", "$db": "main_db"})",
     .upstream = "shard2",
     .physical = R"({"explain": {"find": "abc_x_orders", "filter": {"a": 1}}, "verbosity": "queryPlanner", "$db": "pos_db_4"})",
     .mappings = {"pos_db_4.abc_x_orders <- main_db.abc_x_orders r2 abc_x"}},
    {.name = "ExplainFindRule3",
     .request = R"({"explain": {"find": "orders", "filter": {}}, "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"explain": {"find": "abc_orders", "filter": {}}, "$db": "pos_db_1"})"},
    {.name = "ExplainAggregateRule3",
     .request = R"({"explain": {"aggregate": "orders", "pipeline": [{"$lookup": {"from": "products", "localField": "p", "foreignField": "_id", "as": "prod"}}], "cursor": {}}, "verbosity": "executionStats", "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"explain": {"aggregate": "abc_orders", "pipeline": [)" + kLookupProducts + R"(], "cursor": {}}, "verbosity": "executionStats", "$db": "pos_db_1"})"},
    {.name = "ExplainCrossUpstreamRefused",
     .request = R"({"explain": {"aggregate": "abc_orders", "pipeline": [{"$unionWith": "xyz_orders"}], "cursor": {}}, "$db": "main_db"})",
     .refusal = 20,
     .refusalMessage =
         "mongogate: aggregate on main_db.abc_orders names main_db.xyz_orders in $unionWith, which is on upstream 'shard2' while main_db.abc_orders is on 'main'; cross-upstream commands are refused"},

    // ---- mapReduce -------------------------------------------------------------------
    {.name = "MapReduceOutStringRule3",
     .request = R"({"mapReduce": "orders", "map": {"$code": "function(){}"}, "reduce": {"$code": "function(k, v){}"}, "out": "totals", "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"mapReduce": "abc_orders", "map": {"$code": "function(){}"}, "reduce": {"$code": "function(k, v){}"}, "out": "abc_totals", "$db": "pos_db_1"})"},
    {.name = "MapReduceOutMergeWithDb",
     .request = R"({"mapReduce": "orders", "map": {"$code": "f"}, "reduce": {"$code": "g"}, "out": {"merge": "totals", "db": "store_m2"}, "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"mapReduce": "abc_orders", "map": {"$code": "f"}, "reduce": {"$code": "g"}, "out": {"merge": "m2_totals", "db": "pos_db_2"}, "$db": "pos_db_1"})"},
    {.name = "MapReduceOutStringToAnotherDatabase",
     .request = R"({"mapReduce": "abc_orders", "map": {"$code": "f"}, "reduce": {"$code": "g"}, "out": "totals", "$db": "main_db"})",
     .upstream = "main",
     .physical = R"({"mapReduce": "abc_orders", "map": {"$code": "f"}, "reduce": {"$code": "g"}, "out": {"replace": "totals", "db": "main_db"}, "$db": "pos_db_1"})"},
    {.name = "MapReduceOutReduceWithoutDbRule3",
     .request = R"({"mapReduce": "orders", "map": {"$code": "f"}, "reduce": {"$code": "g"}, "out": {"reduce": "totals", "nonAtomic": true}, "$db": "store_xyz"})",
     .upstream = "shard2",
     .physical = R"({"mapReduce": "xyz_orders", "map": {"$code": "f"}, "reduce": {"$code": "g"}, "out": {"reduce": "xyz_totals", "nonAtomic": true}, "$db": "pos_db_4"})"},
    {.name = "MapReduceInline",
     .request = R"({"mapReduce": "m2_orders", "map": {"$code": "f"}, "reduce": {"$code": "g"}, "out": {"inline": 1}, "$db": "main_db"})",
     .upstream = "main",
     .physical = R"({"mapReduce": "m2_orders", "map": {"$code": "f"}, "reduce": {"$code": "g"}, "out": {"inline": 1}, "$db": "pos_db_2"})"},
    {.name = "MapReduceOutCrossUpstreamRefused",
     .request = R"({"mapReduce": "orders", "map": {"$code": "f"}, "reduce": {"$code": "g"}, "out": {"replace": "t", "db": "store_xyz"}, "$db": "store_abc"})",
     .refusal = 20,
     .refusalMessage =
         "mongogate: mapReduce on store_abc.orders names store_xyz.t in out, which is on upstream 'shard2' while store_abc.orders is on 'main'; cross-upstream commands are refused"},

    // ---- bulkWrite (8.0) -------------------------------------------------------------
    {.name = "BulkWriteNsInfoInBody",
     .request = R"({"bulkWrite": 1, "ops": [{"insert": 0, "document": {"a": 1}}, {"update": 1, "filter": {}, "updateMods": {"$set": {"b": 1}}}],
                   "nsInfo": [{"ns": "main_db.abc_orders"}, {"ns": "store_abc.products"}], "$db": "admin"})",
     .upstream = "main",
     .physical = R"({"bulkWrite": 1, "ops": [{"insert": 0, "document": {"a": 1}}, {"update": 1, "filter": {}, "updateMods": {"$set": {"b": 1}}}],
                   "nsInfo": [{"ns": "pos_db_1.abc_orders"}, {"ns": "pos_db_1.abc_products"}], "$db": "admin"})",
     .mappings = {"pos_db_1.abc_orders <- main_db.abc_orders r2 abc",
                  "pos_db_1.abc_products <- store_abc.products r3 abc"}},
    {.name = "BulkWriteNsInfoInSequence",
     .request = R"({"bulkWrite": 1, "ordered": true, "$db": "admin"})",
     .sequences = {{"ops", {R"({"insert": 0, "document": {"a": 1}})", R"({"insert": 1, "document": {"b": 1}})"}},
                   {"nsInfo", {R"({"ns": "store_xyz.orders"})", R"({"ns": "main_db.abc_x_products"})"}}},
     .upstream = "shard2",
     .physicalSequences = {{"nsInfo", {R"({"ns": "pos_db_4.xyz_orders"})", R"({"ns": "pos_db_4.abc_x_products"})"}}}},
    {.name = "BulkWriteNsInfoSequenceUnchanged",
     .request = R"({"bulkWrite": 1, "$db": "admin"})",
     .sequences = {{"ops", {R"({"insert": 0, "document": {"a": 1}})"}}, {"nsInfo", {R"({"ns": "main_db.users"})"}}},
     .upstream = "main"},
    {.name = "BulkWriteCrossUpstreamRefused",
     .request = R"({"bulkWrite": 1, "ops": [], "nsInfo": [{"ns": "main_db.abc_orders"}, {"ns": "store_xyz.orders"}], "$db": "admin"})",
     .refusal = 20,
     .refusalMessage =
         "mongogate: bulkWrite on main_db.abc_orders names store_xyz.orders in nsInfo, which is on upstream 'shard2' while main_db.abc_orders is on 'main'; cross-upstream commands are refused"},
    {.name = "BulkWriteSequenceCrossUpstreamRefused",
     .request = R"({"bulkWrite": 1, "$db": "admin"})",
     .sequences = {{"ops", {R"({"insert": 0, "document": {"a": 1}})"}},
                   {"nsInfo", {R"({"ns": "main_db.users"})", R"({"ns": "masteradmin.plans"})"}}},
     .refusal = 20,
     .refusalMessage =
         "mongogate: bulkWrite on main_db.users names masteradmin.plans in nsInfo, which is on upstream 'masteradmin' while main_db.users is on 'main'; cross-upstream commands are refused"},

    // ---- listCollections outside the cross-store view --------------------------------
    {.name = "ListCollectionsRule3NameFilter",
     .request = R"({"listCollections": 1, "filter": {"name": "products"}, "nameOnly": true, "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"listCollections": 1, "filter": {"name": "abc_products"}, "nameOnly": true, "$db": "pos_db_1"})",
     .mappings = {"pos_db_1 <- store_abc r3 abc"}},
    {.name = "ListCollectionsRule3NameEqAndIn",
     .request = R"({"listCollections": 1, "filter": {"name": {"$in": ["products", "orders"]}, "type": "collection"}, "$db": "store_abc"})",
     .upstream = "main",
     .physical = R"({"listCollections": 1, "filter": {"name": {"$in": ["abc_products", "abc_orders"]}, "type": "collection"}, "$db": "pos_db_1"})"},
    {.name = "ListCollectionsRule3NameEq",
     .request = R"({"listCollections": 1, "filter": {"name": {"$eq": "products"}}, "$db": "store_m2"})",
     .upstream = "main",
     .physical = R"({"listCollections": 1, "filter": {"name": {"$eq": "m2_products"}}, "$db": "pos_db_2"})"},
    {.name = "ListCollectionsRule3NameRegexKeptUnderThePrefix",
     .request = R"({"listCollections": 1, "filter": {"name": {"$regex": "^prod"}}, "$db": "store_m2"})",
     .upstream = "main",
     .physical = R"({"listCollections": 1, "filter": {"$and": [{"name": {"$regularExpression": {"pattern": "^m2_", "options": ""}}}, {"name": {"$regex": "^prod"}}]}, "$db": "pos_db_2"})"},
    {.name = "ListCollectionsRule3NoFilterScopedToPrefix",
     .request = R"({"listCollections": 1, "cursor": {}, "$db": "store_xyz"})",
     .upstream = "shard2",
     .physical = R"({"listCollections": 1, "cursor": {}, "$db": "pos_db_4", "filter": {"name": {"$regularExpression": {"pattern": "^xyz_", "options": ""}}}})"},
    {.name = "ListCollectionsRule3OtherFilterScopedToPrefix",
     .request = R"({"listCollections": 1, "filter": {"type": "view"}, "$db": "store_abc_x"})",
     .upstream = "shard2",
     .physical = R"({"listCollections": 1, "filter": {"$and": [{"name": {"$regularExpression": {"pattern": "^abc_x_", "options": ""}}}, {"type": "view"}]}, "$db": "pos_db_4"})"},
    {.name = "ListCollectionsMasterAdmin",
     .request = R"({"listCollections": 1, "$db": "masteradmin"})",
     .upstream = "masteradmin"},
    {.name = "ListCollectionsOtherDatabase",
     .request = R"({"listCollections": 1, "$db": "reporting"})",
     .upstream = "main"},

    // ---- unknown commands: by $db alone ----------------------------------------------
    {.name = "UnknownCommandRule4ByDbOnly",
     .request = R"({"fooBar": "abc_orders", "$db": "main_db"})",
     .upstream = "main",
     .mappings = {"main_db <- main_db r4"}},
    {.name = "UnknownCommandRule3GoesToTheStoreDatabase",
     .request = R"({"fooBar": "orders", "$db": "store_xyz"})",
     .upstream = "shard2",
     .physical = R"({"fooBar": "orders", "$db": "pos_db_4"})",
     .mappings = {"pos_db_4 <- store_xyz r3 xyz"}},
    {.name = "UnknownCommandMasterAdmin",
     .request = R"({"fooBar": 1, "$db": "masteradmin"})",
     .upstream = "masteradmin"},
    {.name = "UnknownCommandUnknownStoreRefused",
     .request = R"({"fooBar": 1, "$db": "store_nope"})",
     .refusal = 26,
     .refusalMessage = "mongogate: no store with prefix 'nope' is registered (logical database "
                       "'store_nope')"},
    {.name = "CommitTransactionOnAdmin",
     .request = R"({"commitTransaction": 1, "txnNumber": {"$numberLong": "1"}, "autocommit": false, "$db": "admin"})",
     .upstream = "main"},

    // ---- dropDatabase ----------------------------------------------------------------
    {.name = "DropDatabaseRule3Refused",
     .request = R"({"dropDatabase": 1, "$db": "store_abc"})",
     .refusal = 20,
     .refusalMessage =
         "mongogate: dropDatabase on store database 'store_abc' is refused: the store shares its physical database with other stores; drop its collections one by one instead"},
    {.name = "DropDatabaseRule3UnknownStoreRefused",
     .request = R"({"dropDatabase": 1, "$db": "store_nope"})",
     .refusal = 26,
     .refusalMessage = "mongogate: no store with prefix 'nope' is registered (logical database "
                       "'store_nope')"},
    {.name = "DropDatabaseMainRefused",
     .request = R"({"dropDatabase": 1, "$db": "main_db"})",
     .refusal = 20,
     .refusalMessage = "mongogate: dropDatabase on the main database 'main_db' is refused: it holds "
                       "the store registry and every store not moved yet (set "
                       "allowDropMainDatabase to allow it)"},
    {.name = "DropDatabasePhysicalStoreDatabaseRefused",
     .request = R"({"dropDatabase": 1, "$db": "pos_db_4"})",
     .refusal = 20,
     .refusalMessage = "mongogate: dropDatabase on 'pos_db_4' is refused: it holds the data of 2 stores"},
    {.name = "DropDatabaseEmptyPhysicalStoreDatabase",
     .request = R"({"dropDatabase": 1, "$db": "pos_db_5"})",
     .upstream = "shard2"},
    {.name = "DropDatabaseOtherDatabase",
     .request = R"({"dropDatabase": 1, "$db": "scratch"})",
     .upstream = "main"},
    {.name = "DropDatabaseMasterAdmin",
     .request = R"({"dropDatabase": 1, "$db": "masteradmin"})",
     .upstream = "masteradmin"},
};

INSTANTIATE_TEST_SUITE_P(RouterRequestShapes, RouterRequest, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name; });

// ---- beyond one row ----------------------------------------------------------------

RoutedCommand route(const Request& req, const RoutingConfig& config = fixtureConfig(),
                    AssignmentState* state = nullptr,
                    const std::vector<StoreRecord>& stores = fixtureStores()) {
  const RegistrySnapshot registry(stores, 1);
  AssignmentState local;
  return routeCommand(config, registry, state != nullptr ? *state : local, req.view);
}

TEST(RouterRequestUnchanged, ForwardsTheOriginalBytesWhenNothingChanges) {
  // A rule-4 command: no new body, no sequences, and the splice is not needed at all.
  const Request req = makeRequest(R"({"find": "users", "$db": "main_db"})",
                                  {{"documents", {R"({"a": 1})"}}});
  const RoutedCommand r = route(req);
  EXPECT_FALSE(r.bodyRewritten);
  EXPECT_TRUE(r.body.empty());
  EXPECT_TRUE(r.rewrittenSequences.empty());
  EXPECT_EQ(r.logicalDatabase, "main_db");
  EXPECT_EQ(r.commandName, "find");
}

TEST(RouterRequestUnchanged, RewrittenBodySplicesIntoAValidMessage) {
  const Request req = makeRequest(R"({"insert": "abc_orders", "$db": "main_db"})",
                                  {{"documents", {R"({"_id": 1})", R"({"_id": 2})"}}});
  const RoutedCommand r = route(req);
  ASSERT_TRUE(r.bodyRewritten);
  std::array<std::uint8_t, 20> head{};
  const auto list = wire::spliceOpMsgBody(req.view, wire::Bytes(r.body), 9, 0, head);
  std::vector<std::uint8_t> frame;
  wire::flatten(list, frame);
  const auto parsed = wire::parseOpMsg(wire::Bytes(frame));
  ASSERT_TRUE(parsed.ok()) << wire::describe(parsed.error.status);
  EXPECT_EQ(jsonOf(parsed.value.body), canonical(R"({"insert": "abc_orders", "$db": "pos_db_1"})"));
  ASSERT_EQ(parsed.value.sequenceCount, 1u);
  EXPECT_EQ(jsonOfDocuments(parsed.value.sequences[0].documents),
            (std::vector<std::string>{canonical(R"({"_id": 1})"), canonical(R"({"_id": 2})")}));
}

TEST(RouterRequestUnchanged, OddlyKeyedArraysAreCopiedAsTheyCameAndSilently) {
  // {find: "orders", filter: {a: {$in: [1, 2]}}, hint: [..] keyed "7","8", $db: "store_abc"}
  // libbson warns on stderr when appending an array whose first key is not "0"; a client
  // must not be able to make mongogate write there.
  bson_t body, filter, a, in, hint;
  bson_init(&body);
  BSON_APPEND_UTF8(&body, "find", "orders");
  BSON_APPEND_DOCUMENT_BEGIN(&body, "filter", &filter);
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "a", &a);
  BSON_APPEND_ARRAY_BEGIN(&a, "$in", &in);
  BSON_APPEND_INT32(&in, "0", 1);
  BSON_APPEND_INT32(&in, "1", 2);
  bson_append_array_end(&a, &in);
  bson_append_document_end(&filter, &a);
  bson_append_document_end(&body, &filter);
  BSON_APPEND_ARRAY_BEGIN(&body, "hint", &hint);
  BSON_APPEND_INT32(&hint, "7", 1);
  BSON_APPEND_INT32(&hint, "8", 2);
  bson_append_array_end(&body, &hint);
  BSON_APPEND_UTF8(&body, "$db", "store_abc");
  const std::string json = jsonOf(wire::Bytes(bson_get_data(&body), body.len));
  wire::test::FrameWriter w;
  w.header(7, 0, wire::OpCode::kMsg).u32(0).u8(0).raw(ByteVec(bson_get_data(&body), bson_get_data(&body) + body.len));
  bson_destroy(&body);
  const ByteVec frame = w.done();
  const auto parsed = wire::parseOpMsg(wire::Bytes(frame));
  ASSERT_TRUE(parsed.ok());

  const RegistrySnapshot registry(fixtureStores(), 1);
  AssignmentState state;
  ::testing::internal::CaptureStderr();
  const RoutedCommand r = routeCommand(fixtureConfig(), registry, state, parsed.value);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  ASSERT_TRUE(r.bodyRewritten);
  std::string expected = json;
  expected.replace(expected.find("\"orders\""), 8, "\"abc_orders\"");
  expected.replace(expected.find("\"store_abc\""), 11, "\"pos_db_1\"");
  EXPECT_EQ(jsonOf(r.body), expected);
  bson_t out;
  ASSERT_TRUE(bson_init_static(&out, r.body.data(), r.body.size()));
  bson_iter_t it, child;
  ASSERT_TRUE(bson_iter_init_find(&it, &out, "hint") && bson_iter_recurse(&it, &child) &&
              bson_iter_next(&child));
  EXPECT_STREQ(bson_iter_key(&child), "7");  // keys as they came
}

// ---- cross-store listCollections ---------------------------------------------------

struct Part {
  std::string upstream;
  std::string database;
  std::string body;  // canonical JSON
};

std::vector<Part> partsOf(const RoutedCommand& r) {
  std::vector<Part> parts;
  for (const auto& s : r.fanOut) parts.push_back({s.upstream, s.physicalDatabase, jsonOf(s.body)});
  return parts;
}

void expectParts(const RoutedCommand& r, const std::vector<Part>& expected) {
  const auto parts = partsOf(r);
  ASSERT_EQ(parts.size(), expected.size());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    SCOPED_TRACE("part " + std::to_string(i));
    EXPECT_EQ(parts[i].upstream, expected[i].upstream);
    EXPECT_EQ(parts[i].database, expected[i].database);
    EXPECT_EQ(parts[i].body, expected[i].body);
  }
}

std::string listCollectionsOn(const std::string& db) {
  return canonical(R"({"listCollections": 1, "filter": {"type": "collection"}, "nameOnly": true, "$db": ")" +
                   db + R"("})");
}

TEST(RouterListCollections, MainDatabasePlansOnePartPerDatabase) {
  const Request req = makeRequest(
      R"({"listCollections": 1, "filter": {"type": "collection"}, "nameOnly": true, "$db": "main_db"})");
  const RoutedCommand r = route(req);
  ASSERT_FALSE(r.refusal.has_value());
  EXPECT_EQ(r.replyHandling, ReplyHandling::kMergeListCollections);
  EXPECT_EQ(r.upstream, "main");
  EXPECT_FALSE(r.bodyRewritten);
  expectParts(r, {{"main", "main_db", listCollectionsOn("main_db")},
                  {"main", "pos_db_1", listCollectionsOn("pos_db_1")},
                  {"main", "pos_db_2", listCollectionsOn("pos_db_2")},
                  {"main", "pos_db_3", listCollectionsOn("pos_db_3")},
                  {"shard2", "pos_db_4", listCollectionsOn("pos_db_4")},
                  {"shard2", "pos_db_5", listCollectionsOn("pos_db_5")}});
  // The main part is the client's bytes as they came.
  EXPECT_EQ(r.fanOut[0].body, std::vector<std::uint8_t>(req.view.body.begin(), req.view.body.end()));
  EXPECT_EQ(describeMappings(r.mappings),
            (std::vector<std::string>{"main_db <- main_db r4", "pos_db_1 <- main_db r2",
                                      "pos_db_2 <- main_db r2", "pos_db_3 <- main_db r2",
                                      "pos_db_4 <- main_db r2", "pos_db_5 <- main_db r2"}));
}

TEST(RouterListCollections, FanOutCoversRegistryDatabasesBeyondTheCount) {
  auto stores = fixtureStores();
  stores.push_back({"s-far", "Far", "far", 7});
  RoutingConfig config = fixtureConfig();
  config.databaseCount = 2;
  const Request req = makeRequest(R"({"listCollections": 1, "$db": "main_db"})");
  const RoutedCommand r = route(req, config, nullptr, stores);
  std::vector<std::string> databases;
  for (const auto& s : r.fanOut) databases.push_back(s.upstream + "/" + s.physicalDatabase);
  // pos_db_4 (abc_x, xyz) and pos_db_7 (far) are beyond databaseCount 2 but hold stores.
  EXPECT_EQ(databases, (std::vector<std::string>{"main/main_db", "main/pos_db_1", "main/pos_db_2",
                                                 "shard2/pos_db_4", "main/pos_db_7"}));
}

TEST(RouterListCollections, NameFilterOfOneStoreGoesToThatDatabaseOnly) {
  const Request req = makeRequest(
      R"({"listCollections": 1, "filter": {"name": "abc_x_products"}, "cursor": {}, "$db": "main_db"})");
  const RoutedCommand r = route(req);
  ASSERT_FALSE(r.refusal.has_value());
  EXPECT_EQ(r.replyHandling, ReplyHandling::kForward);
  EXPECT_TRUE(r.fanOut.empty());
  EXPECT_EQ(r.upstream, "shard2");
  ASSERT_TRUE(r.bodyRewritten);
  EXPECT_EQ(jsonOf(r.body),
            canonical(R"({"listCollections": 1, "filter": {"name": "abc_x_products"}, "cursor": {}, "$db": "pos_db_4"})"));
  EXPECT_EQ(describeMappings(r.mappings),
            (std::vector<std::string>{"pos_db_4.abc_x_products <- main_db.abc_x_products r2 abc_x"}));
}

TEST(RouterListCollections, NameFilterOfAnUnmovedStoreStaysInMainDb) {
  const Request req = makeRequest(R"({"listCollections": 1, "filter": {"name": "old_orders"}, "$db": "main_db"})");
  const RoutedCommand r = route(req);
  EXPECT_EQ(r.replyHandling, ReplyHandling::kForward);
  EXPECT_TRUE(r.fanOut.empty());
  EXPECT_EQ(r.upstream, "main");
  EXPECT_FALSE(r.bodyRewritten);
  EXPECT_EQ(describeMappings(r.mappings),
            (std::vector<std::string>{"main_db.old_orders <- main_db.old_orders r2 old"}));
}

TEST(RouterListCollections, OtherFiltersFanOut) {
  for (const char* body : {
           R"({"listCollections": 1, "filter": {"name": "users"}, "$db": "main_db"})",
           R"({"listCollections": 1, "filter": {"name": "stores"}, "$db": "main_db"})",
           R"({"listCollections": 1, "filter": {"name": "abc_orders", "type": "collection"}, "$db": "main_db"})",
           R"({"listCollections": 1, "filter": {"name": {"$in": ["abc_orders"]}}, "$db": "main_db"})",
       }) {
    SCOPED_TRACE(body);
    const RoutedCommand r = route(makeRequest(body));
    EXPECT_EQ(r.replyHandling, ReplyHandling::kMergeListCollections);
    EXPECT_EQ(r.fanOut.size(), 6u);
  }
}

// ---- listDatabases -----------------------------------------------------------------

TEST(RouterListDatabases, OnePartPerDistinctUpstream) {
  const Request req = makeRequest(R"({"listDatabases": 1, "nameOnly": true, "$db": "admin"})");
  const RoutedCommand r = route(req);
  ASSERT_FALSE(r.refusal.has_value());
  EXPECT_EQ(r.replyHandling, ReplyHandling::kMergeListDatabases);
  EXPECT_EQ(r.upstream, "main");
  const std::string body = canonical(R"({"listDatabases": 1, "nameOnly": true, "$db": "admin"})");
  expectParts(r, {{"main", "admin", body}, {"masteradmin", "admin", body}, {"shard2", "admin", body}});
}

TEST(RouterListDatabases, OneUpstreamOnePart) {
  RoutingConfig config = fixtureConfig();
  config.storeDatabaseUpstreams.clear();
  config.masterAdminUpstream = "main";
  const RoutedCommand r = route(makeRequest(R"({"listDatabases": 1, "$db": "admin"})"), config);
  EXPECT_EQ(r.replyHandling, ReplyHandling::kMergeListDatabases);
  ASSERT_EQ(r.fanOut.size(), 1u);
  EXPECT_EQ(r.fanOut[0].upstream, "main");
}

TEST(RouterListDatabases, OnlyOnAdmin) {
  const RoutedCommand r = route(makeRequest(R"({"listDatabases": 1, "$db": "main_db"})"));
  EXPECT_EQ(r.replyHandling, ReplyHandling::kForward);
  EXPECT_TRUE(r.fanOut.empty());
}

TEST(RouterDropDatabase, MainDatabaseWhenAllowed) {
  RoutingConfig config = fixtureConfig();
  config.allowDropMainDatabase = true;
  const RoutedCommand r = route(makeRequest(R"({"dropDatabase": 1, "$db": "main_db"})"), config);
  ASSERT_FALSE(r.refusal.has_value());
  EXPECT_EQ(r.upstream, "main");
  EXPECT_FALSE(r.bodyRewritten);
}

TEST(RouterRequestMasterAdmin, PhysicalNameRewritesDb) {
  RoutingConfig config = fixtureConfig();
  config.masterAdminPhysicalDatabase = "ma_prod";
  const RoutedCommand r = route(makeRequest(R"({"find": "plans", "$db": "masteradmin"})"), config);
  EXPECT_EQ(r.upstream, "masteradmin");
  ASSERT_TRUE(r.bodyRewritten);
  EXPECT_EQ(jsonOf(r.body), canonical(R"({"find": "plans", "$db": "ma_prod"})"));
  EXPECT_EQ(describeMappings(r.mappings), (std::vector<std::string>{"ma_prod.plans <- masteradmin.plans r1"}));
}

// ---- insert into main_db.stores: databaseId assignment (SPEC §5) -------------------

struct StoreRow {
  std::string storeId, name, prefix;
  std::int32_t databaseId;
};

std::vector<StoreRow> rowsOf(const std::vector<StoreRecord>& stores) {
  std::vector<StoreRow> rows;
  for (const auto& s : stores) rows.push_back({s.storeId, s.name, s.prefix, s.databaseId});
  return rows;
}

bool operator==(const StoreRow& a, const StoreRow& b) {
  return a.storeId == b.storeId && a.name == b.name && a.prefix == b.prefix && a.databaseId == b.databaseId;
}
std::ostream& operator<<(std::ostream& os, const StoreRow& s) {
  return os << "{" << s.storeId << ", " << s.name << ", " << s.prefix << ", " << s.databaseId << "}";
}

TEST(RouterStoreInsert, FillAssignsTheMissingDatabaseIdInTheBody) {
  RoutingConfig config = fixtureConfig();
  config.storesPerDatabase = 2;  // 5 stores registered: floor(5 / 2) + 1 = 3
  AssignmentState state;
  const Request req = makeRequest(
      R"({"insert": "stores", "documents": [{"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}, "storeId": "s9", "name": "New", "prefix": "new"}], "ordered": true, "$db": "main_db"})");
  const RoutedCommand r = route(req, config, &state);
  ASSERT_FALSE(r.refusal.has_value());
  EXPECT_EQ(r.upstream, "main");
  ASSERT_TRUE(r.bodyRewritten);
  EXPECT_EQ(jsonOf(r.body),
            canonical(R"({"insert": "stores", "documents": [{"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}, "storeId": "s9", "name": "New", "prefix": "new", "databaseId": 3}], "ordered": true, "$db": "main_db"})"));
  EXPECT_EQ(rowsOf(r.newStores), (std::vector<StoreRow>{{"s9", "New", "new", 3}}));
}

TEST(RouterStoreInsert, MultiDocumentSequenceCountsEarlierDocuments) {
  RoutingConfig config = fixtureConfig();
  config.storesPerDatabase = 2;
  AssignmentState state;
  // null counts as absent; an explicit databaseId (even 0) is kept.
  const Request req = makeRequest(R"({"insert": "stores", "$db": "main_db"})",
                                  {{"documents",
                                    {R"({"storeId": "a1", "prefix": "p1", "databaseId": null, "name": "P1"})",
                                     R"({"storeId": "a2", "prefix": "p2", "databaseId": 5})",
                                     R"({"storeId": "a3", "prefix": "p3", "databaseId": 0})",
                                     R"({"storeId": "a4", "prefix": "p4"})"}}});
  const RoutedCommand r = route(req, config, &state);
  ASSERT_FALSE(r.refusal.has_value());
  EXPECT_FALSE(r.bodyRewritten);
  ASSERT_EQ(r.rewrittenSequences.size(), 1u);
  EXPECT_EQ(r.rewrittenSequences[0].first, "documents");
  EXPECT_EQ(jsonOfDocuments(wire::Bytes(r.rewrittenSequences[0].second)),
            (std::vector<std::string>{
                canonical(R"({"storeId": "a1", "prefix": "p1", "databaseId": 3, "name": "P1"})"),
                canonical(R"({"storeId": "a2", "prefix": "p2", "databaseId": 5})"),
                canonical(R"({"storeId": "a3", "prefix": "p3", "databaseId": 0})"),
                canonical(R"({"storeId": "a4", "prefix": "p4", "databaseId": 4})")}));
  EXPECT_EQ(rowsOf(r.newStores), (std::vector<StoreRow>{{"a1", "P1", "p1", 3},
                                                        {"a2", "", "p2", 5},
                                                        {"a3", "", "p3", 0},
                                                        {"a4", "", "p4", 4}}));
}

TEST(RouterStoreInsert, LeastLoadedSpreadsAMultiDocumentInsert) {
  // Loads: pos_db_1 1, pos_db_2 1, pos_db_3 0, pos_db_4 2, pos_db_5 0.
  AssignmentState state{AssignmentPolicy::kLeastLoaded, 0};
  const Request req = makeRequest(
      R"({"insert": "stores", "documents": [{"prefix": "q1"}, {"prefix": "q2"}, {"prefix": "q3"}], "$db": "main_db"})");
  const RoutedCommand r = route(req, fixtureConfig(), &state);
  ASSERT_TRUE(r.bodyRewritten);
  EXPECT_EQ(jsonOf(r.body),
            canonical(R"({"insert": "stores", "documents": [{"prefix": "q1", "databaseId": 3}, {"prefix": "q2", "databaseId": 5}, {"prefix": "q3", "databaseId": 1}], "$db": "main_db"})"));
}

TEST(RouterStoreInsert, RoundRobinAdvancesTheState) {
  AssignmentState state{AssignmentPolicy::kRoundRobin, 3};
  const Request req = makeRequest(R"({"insert": "stores", "$db": "main_db"})",
                                  {{"documents", {R"({"prefix": "r1"})", R"({"prefix": "r2"})", R"({"prefix": "r3"})"}}});
  const RoutedCommand r = route(req, fixtureConfig(), &state);
  ASSERT_EQ(r.rewrittenSequences.size(), 1u);
  EXPECT_EQ(jsonOfDocuments(wire::Bytes(r.rewrittenSequences[0].second)),
            (std::vector<std::string>{canonical(R"({"prefix": "r1", "databaseId": 4})"),
                                      canonical(R"({"prefix": "r2", "databaseId": 5})"),
                                      canonical(R"({"prefix": "r3", "databaseId": 1})")}));
  EXPECT_EQ(state.roundRobinNext, 6u);
}

TEST(RouterStoreInsert, DocumentsWithDatabaseIdAreForwardedAsTheyCame) {
  AssignmentState state{AssignmentPolicy::kRoundRobin, 0};
  const Request req = makeRequest(
      R"({"insert": "stores", "documents": [{"storeId": 12, "name": "N", "prefix": "n1", "databaseId": 2}], "$db": "main_db"})");
  const RoutedCommand r = route(req, fixtureConfig(), &state);
  EXPECT_FALSE(r.bodyRewritten);
  EXPECT_TRUE(r.rewrittenSequences.empty());
  EXPECT_EQ(state.roundRobinNext, 0u);  // nothing assigned
  EXPECT_EQ(rowsOf(r.newStores), (std::vector<StoreRow>{{"12", "N", "n1", 2}}));
}

TEST(RouterStoreInsert, StoreIdTextAndDocumentsWithoutPrefix) {
  const Request req = makeRequest(R"({"insert": "stores", "$db": "main_db"})",
                                  {{"documents",
                                    {R"({"storeId": {"$oid": "65a1b2c3d4e5f60718293a4b"}, "prefix": "o1", "databaseId": 1})",
                                     R"({"_id": {"$numberLong": "77"}, "prefix": "o2", "databaseId": 1})",
                                     R"({"storeId": "x", "name": "no prefix", "databaseId": 1})"}}});
  const RoutedCommand r = route(req);
  EXPECT_EQ(rowsOf(r.newStores), (std::vector<StoreRow>{{"65a1b2c3d4e5f60718293a4b", "", "o1", 1},
                                                        {"77", "", "o2", 1}}));
}

TEST(RouterStoreInsert, OnlyTheRegistryCollectionOfTheMainDatabase) {
  for (const char* body : {
           R"({"insert": "stores", "documents": [{"prefix": "z"}], "$db": "store_abc"})",
           R"({"insert": "stores", "documents": [{"prefix": "z"}], "$db": "other_db"})",
           R"({"insert": "abc_stores", "documents": [{"prefix": "z"}], "$db": "main_db"})",
       }) {
    SCOPED_TRACE(body);
    AssignmentState state{AssignmentPolicy::kRoundRobin, 0};
    const RoutedCommand r = route(makeRequest(body), fixtureConfig(), &state);
    EXPECT_TRUE(r.newStores.empty());
    EXPECT_EQ(state.roundRobinNext, 0u);
    if (r.bodyRewritten) {
      EXPECT_EQ(jsonOf(r.body).find("databaseId"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace mongogate::router::routing_test
