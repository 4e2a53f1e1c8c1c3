// rewriteReply (SPEC §4 "Replies"): one row per reply shape — the route's mappings and
// command, the physical reply an upstream sends, and the logical reply the app must see
// (or "no change": rewriteReply returns false and leaves `out` alone). Replies are
// written as extended JSON; the rewritten body must equal the expected one byte for
// byte (types included), and the failure message prints both as canonical JSON.
#include <gtest/gtest.h>

#include <bson/bson.h>

#include <array>
#include <string>
#include <vector>

#include "router/reply_namespaces.h"
#include "router/routing.h"
#include "wire/op_msg.h"
#include "wire_test_support.h"

namespace mongogate::router {
namespace {

using wire::test::bson;
using wire::test::ByteVec;

std::string jsonOf(const ByteVec& bytes) {
  bson_t doc;
  if (bytes.empty() || !bson_init_static(&doc, bytes.data(), bytes.size())) return "<not BSON>";
  char* json = bson_as_canonical_extended_json(&doc, nullptr);
  if (json == nullptr) return "<not BSON>";
  std::string out(json);
  bson_free(json);
  return out;
}

NamespaceMapping rule2(std::string db, std::string coll, std::string prefix = "abc") {
  return {db, coll, "main_db", coll, 2, prefix};
}
NamespaceMapping rule3(std::string db, std::string physColl, std::string logColl, std::string prefix = "abc") {
  return {db, physColl, "store_" + prefix, logColl, 3, prefix};
}

const NamespaceMapping kAbcProducts2 = rule2("pos_db_1", "abc_products");
const NamespaceMapping kAbcProducts3 = rule3("pos_db_1", "abc_products", "products");
// A database-level rule-3 route (listCollections on store_abc).
const NamespaceMapping kAbcDatabase3 = rule3("pos_db_1", "", "");
// Rule 4 (and rule 2 for a store still in the main database): the identity.
const NamespaceMapping kIdentity{"main_db", "shared", "main_db", "shared", 4, ""};

struct ReplyCase {
  std::string name;
  std::string command;
  std::vector<NamespaceMapping> mappings;
  std::string reply;     // physical, as the upstream sent it
  std::string expected;  // logical; empty: no change expected
};

std::ostream& operator<<(std::ostream& os, const ReplyCase& c) { return os << c.name; }

class RouterReply : public ::testing::TestWithParam<ReplyCase> {};

TEST_P(RouterReply, RewritesToTheLogicalView) {
  const ReplyCase& c = GetParam();
  RoutedCommand route;
  route.commandName = c.command;
  route.mappings = c.mappings;
  const ByteVec reply = bson(c.reply);
  ASSERT_FALSE(reply.empty());

  std::vector<std::uint8_t> out;
  const bool changed = rewriteReply(route, wire::Bytes(reply.data(), reply.size()), out);
  if (c.expected.empty()) {
    EXPECT_FALSE(changed) << "rewrote to " << jsonOf(out);
    EXPECT_TRUE(out.empty());
    return;
  }
  ASSERT_TRUE(changed) << "expected " << c.expected;
  const ByteVec expected = bson(c.expected);
  EXPECT_EQ(out, expected) << "\n   got: " << jsonOf(out) << "\nwanted: " << jsonOf(expected);
}

// The proxy's reply path tries planReplySplice first and sends a spliced frame
// (wire::spliceOpMsgBodyEdits): whenever the plan takes a reply, the frame's body must be
// the expected logical reply, or the plan must leave a reply alone that needs no change.
TEST_P(RouterReply, SplicedFrameCarriesTheLogicalReply) {
  const ReplyCase& c = GetParam();
  RoutedCommand route;
  route.commandName = c.command;
  route.mappings = c.mappings;
  const ByteVec reply = bson(c.reply);
  ByteVec frame = {0, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0xdd, 0x07, 0, 0, 0, 0, 0, 0, 0};  // OP_MSG, kind 0
  frame.insert(frame.end(), reply.begin(), reply.end());
  wire::storeInt32LE(frame.data(), static_cast<std::int32_t>(frame.size()));
  const auto parsed = wire::parseOpMsg(wire::Bytes(frame.data(), frame.size()));
  ASSERT_TRUE(parsed.ok());
  ReplySplice splice;
  switch (planReplySplice(route, parsed.value.body, splice)) {
    case ReplySplicePlan::kNotApplicable:
      break;
    case ReplySplicePlan::kUnchanged:
      EXPECT_TRUE(c.expected.empty()) << "the plan said unchanged; expected " << c.expected;
      break;
    case ReplySplicePlan::kSpliced: {
      ASSERT_FALSE(c.expected.empty()) << "the plan changed a reply that needs no change";
      std::array<std::uint8_t, 20> head{};
      std::vector<std::uint8_t> sent;
      wire::flatten(wire::spliceOpMsgBodyEdits(parsed.value, splice.view(), 1, 9, head), sent);
      const auto out = wire::parseOpMsg(wire::Bytes(sent.data(), sent.size()));
      ASSERT_TRUE(out.ok());
      const ByteVec body(out.value.body.begin(), out.value.body.end());
      const ByteVec expected = bson(c.expected);
      EXPECT_EQ(body, expected) << "\n   got: " << jsonOf(body) << "\nwanted: " << jsonOf(expected);
      break;
    }
  }
}

// The cursor shapes the hot path exists for are spliced, not rebuilt.
TEST(RouterReplySplice, CursorRepliesAreSplicedWithoutTouchingTheBatch) {
  RoutedCommand route;
  route.commandName = "find";
  route.mappings = {kAbcProducts3};
  const ByteVec reply = bson(R"({"cursor": {"firstBatch": [{"_id": 1, "ns": "pos_db_1.abc_products"}], )"
                             R"("id": {"$numberLong": "5"}, "ns": "pos_db_1.abc_products"}, "ok": 1.0, )"
                             R"("operationTime": {"$timestamp": {"t": 1, "i": 2}}})");
  ReplySplice splice;
  ASSERT_EQ(planReplySplice(route, wire::Bytes(reply.data(), reply.size()), splice), ReplySplicePlan::kSpliced);
  std::vector<std::uint8_t> out;
  wire::applyEdits(wire::Bytes(reply.data(), reply.size()), splice.view(), out);
  EXPECT_EQ(out, bson(R"({"cursor": {"firstBatch": [{"_id": 1, "ns": "pos_db_1.abc_products"}], )"
                      R"("id": {"$numberLong": "5"}, "ns": "store_abc.products"}, "ok": 1.0, )"
                      R"("operationTime": {"$timestamp": {"t": 1, "i": 2}}})"));
  // No edit falls inside the batch: the user's documents are sent as the upstream sent them.
  const std::string_view text(reinterpret_cast<const char*>(reply.data()), reply.size());
  const std::size_t batchBegin = text.find("firstBatch");
  const std::size_t batchEnd = text.find(std::string_view("\x12id\0", 4));  // the int64 cursor id element
  ASSERT_NE(batchBegin, std::string_view::npos);
  ASSERT_NE(batchEnd, std::string_view::npos);
  for (const wire::ByteEdit& edit : splice.view()) {
    EXPECT_TRUE(edit.end <= batchBegin || edit.begin >= batchEnd) << edit.begin << ".." << edit.end;
  }

  route.mappings = {kIdentity};
  EXPECT_EQ(planReplySplice(route, wire::Bytes(reply.data(), reply.size()), splice), ReplySplicePlan::kUnchanged);
  route.mappings = {kAbcProducts3};
  route.commandName = "listIndexes";
  EXPECT_EQ(planReplySplice(route, wire::Bytes(reply.data(), reply.size()), splice),
            ReplySplicePlan::kNotApplicable);
}

const std::string kCursor0 = R"("id": {"$numberLong": "0"})";
const std::string kResumeToken = R"("postBatchResumeToken": {"_data": "8265"})";

const ReplyCase kReplyCases[] = {
    // ---- cursors
    {"FindFirstBatchRule2", "find", {kAbcProducts2},
     R"({"cursor": {"firstBatch": [{"_id": 1, "ns": "pos_db_1.abc_products"}], )" + kCursor0 +
         R"(, "ns": "pos_db_1.abc_products"}, "ok": 1.0})",
     // The user's own "ns" field is data: never touched.
     R"({"cursor": {"firstBatch": [{"_id": 1, "ns": "pos_db_1.abc_products"}], )" + kCursor0 +
         R"(, "ns": "main_db.abc_products"}, "ok": 1.0})"},
    {"FindFirstBatchRule3", "find", {kAbcProducts3},
     R"({"cursor": {"firstBatch": [{"_id": 1}, {"_id": 2}], "id": {"$numberLong": "77"}, "ns": "pos_db_1.abc_products"}, "ok": 1.0})",
     R"({"cursor": {"firstBatch": [{"_id": 1}, {"_id": 2}], "id": {"$numberLong": "77"}, "ns": "store_abc.products"}, "ok": 1.0})"},
    {"GetMoreNextBatch", "getMore", {kAbcProducts2},
     R"({"cursor": {"nextBatch": [{"_id": 3}], "id": {"$numberLong": "77"}, "ns": "pos_db_1.abc_products"}, "ok": 1})",
     R"({"cursor": {"nextBatch": [{"_id": 3}], "id": {"$numberLong": "77"}, "ns": "main_db.abc_products"}, "ok": 1})"},
    {"AggregateUserDocumentsShapedLikeEventsStayData", "aggregate", {kAbcProducts3},
     R"({"cursor": {"firstBatch": [{"operationType": "insert", "ns": {"db": "pos_db_1", "coll": "abc_products"}}], )" +
         kCursor0 + R"(, "ns": "pos_db_1.abc_products"}, "ok": 1.0})",
     R"({"cursor": {"firstBatch": [{"operationType": "insert", "ns": {"db": "pos_db_1", "coll": "abc_products"}}], )" +
         kCursor0 + R"(, "ns": "store_abc.products"}, "ok": 1.0})"},
    {"CursorNsOfAnotherStoreCollectionRule3", "aggregate", {kAbcProducts3},
     R"({"cursor": {"firstBatch": [], )" + kCursor0 + R"(, "ns": "pos_db_1.abc_orders"}, "ok": 1.0})",
     R"({"cursor": {"firstBatch": [], )" + kCursor0 + R"(, "ns": "store_abc.orders"}, "ok": 1.0})"},

    // ---- listIndexes
    {"ListIndexesNsRule3", "listIndexes", {kAbcProducts3},
     R"({"cursor": {)" + kCursor0 + R"(, "ns": "pos_db_1.abc_products", "firstBatch": [)"
         R"({"v": 2, "key": {"_id": 1}, "name": "_id_", "ns": "pos_db_1.abc_products"}, {"v": 2, "key": {"sku": 1}, "name": "sku_1"}]}, "ok": 1.0})",
     R"({"cursor": {)" + kCursor0 + R"(, "ns": "store_abc.products", "firstBatch": [)"
         R"({"v": 2, "key": {"_id": 1}, "name": "_id_", "ns": "store_abc.products"}, {"v": 2, "key": {"sku": 1}, "name": "sku_1"}]}, "ok": 1.0})"},
    {"ListIndexesLegacyCursorNs", "listIndexes", {kAbcProducts3},
     R"({"cursor": {)" + kCursor0 + R"(, "ns": "pos_db_1.$cmd.listIndexes.abc_products", "firstBatch": []}, "ok": 1.0})",
     R"({"cursor": {)" + kCursor0 + R"(, "ns": "store_abc.$cmd.listIndexes.products", "firstBatch": []}, "ok": 1.0})"},

    // ---- listCollections
    {"ListCollectionsRule3StripsAndDrops", "listCollections", {kAbcDatabase3},
     R"({"cursor": {)" + kCursor0 + R"(, "ns": "pos_db_1.$cmd.listCollections", "firstBatch": [)"
         R"({"name": "abc_products", "type": "collection", "options": {}, "info": {"readOnly": false}, "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_", "ns": "pos_db_1.abc_products"}},)"
         R"({"name": "def_products", "type": "collection"},)"
         R"({"name": "abc_cheap", "type": "view", "options": {"viewOn": "abc_products", "pipeline": []}},)"
         R"({"name": "system.views", "type": "collection"},)"
         R"({"name": "abc_", "type": "collection"},)"
         R"({"name": "abcd_orders", "type": "collection"},)"
         R"({"name": "abc_orders", "type": "collection"}]}, "ok": 1.0})",
     R"({"cursor": {)" + kCursor0 + R"(, "ns": "store_abc.$cmd.listCollections", "firstBatch": [)"
         R"({"name": "products", "type": "collection", "options": {}, "info": {"readOnly": false}, "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_", "ns": "store_abc.products"}},)"
         R"({"name": "cheap", "type": "view", "options": {"viewOn": "products", "pipeline": []}},)"
         R"({"name": "orders", "type": "collection"}]}, "ok": 1.0})"},
    {"ListCollectionsRule3NothingOfTheStore", "listCollections", {kAbcDatabase3},
     R"({"cursor": {)" + kCursor0 + R"(, "ns": "pos_db_1.$cmd.listCollections", "firstBatch": [{"name": "def_products"}]}, "ok": 1.0})",
     R"({"cursor": {)" + kCursor0 + R"(, "ns": "store_abc.$cmd.listCollections", "firstBatch": []}, "ok": 1.0})"},
    {"ListCollectionsRule2KeepsNames", "listCollections", {rule2("pos_db_1", "abc_products")},
     R"({"cursor": {)" + kCursor0 + R"(, "ns": "pos_db_1.$cmd.listCollections", "firstBatch": [)"
         R"({"name": "abc_products", "type": "collection", "idIndex": {"ns": "pos_db_1.abc_products"}}]}, "ok": 1.0})",
     R"({"cursor": {)" + kCursor0 + R"(, "ns": "main_db.$cmd.listCollections", "firstBatch": [)"
         R"({"name": "abc_products", "type": "collection", "idIndex": {"ns": "main_db.abc_products"}}]}, "ok": 1.0})"},
    {"ListCollectionsGetMoreRule3", "getMore", {rule3("pos_db_1", "$cmd.listCollections", "$cmd.listCollections")},
     R"({"cursor": {"nextBatch": [{"name": "abc_users"}, {"name": "xyz_users"}], "id": {"$numberLong": "9"}, "ns": "pos_db_1.$cmd.listCollections"}, "ok": 1.0})",
     R"({"cursor": {"nextBatch": [{"name": "users"}], "id": {"$numberLong": "9"}, "ns": "store_abc.$cmd.listCollections"}, "ok": 1.0})"},
    {"ListCollectionsWithoutCursorNs", "listCollections", {kAbcDatabase3},
     R"({"cursor": {)" + kCursor0 + R"(, "firstBatch": [{"name": "abc_a"}, {"name": "def_b"}]}, "ok": 1.0})",
     R"({"cursor": {)" + kCursor0 + R"(, "firstBatch": [{"name": "a"}]}, "ok": 1.0})"},
    {"ListCollectionsRule3OddEntriesKept", "listCollections", {kAbcDatabase3},
     R"({"cursor": {)" + kCursor0 + R"(, "ns": "pos_db_1.$cmd.listCollections", "firstBatch": [7, {"type": "collection"}, {"name": 5}, {"name": "abc_x"}]}, "ok": 1.0})",
     R"({"cursor": {)" + kCursor0 + R"(, "ns": "store_abc.$cmd.listCollections", "firstBatch": [7, {"type": "collection"}, {"name": 5}, {"name": "x"}]}, "ok": 1.0})"},

    // ---- change streams (the cursor carries postBatchResumeToken)
    {"ChangeEventInsertRule3", "aggregate", {kAbcProducts3},
     R"({"cursor": {"firstBatch": [{"_id": {"_data": "82"}, "operationType": "insert", "ns": {"db": "pos_db_1", "coll": "abc_products"}, )"
         R"("documentKey": {"_id": 1}, "fullDocument": {"_id": 1, "ns": {"db": "pos_db_1", "coll": "abc_products"}}}], )" +
         kResumeToken + R"(, "id": {"$numberLong": "5"}, "ns": "pos_db_1.abc_products"}, "ok": 1.0})",
     R"({"cursor": {"firstBatch": [{"_id": {"_data": "82"}, "operationType": "insert", "ns": {"db": "store_abc", "coll": "products"}, )"
         R"("documentKey": {"_id": 1}, "fullDocument": {"_id": 1, "ns": {"db": "pos_db_1", "coll": "abc_products"}}}], )" +
         kResumeToken + R"(, "id": {"$numberLong": "5"}, "ns": "store_abc.products"}, "ok": 1.0})"},
    {"ChangeEventRenameToRule2", "getMore", {kAbcProducts2, rule2("pos_db_1", "abc_products_old")},
     R"({"cursor": {"nextBatch": [{"_id": {"_data": "83"}, "operationType": "rename", "ns": {"db": "pos_db_1", "coll": "abc_products_old"}, )"
         R"("to": {"db": "pos_db_1", "coll": "abc_products"}, "operationDescription": {"to": {"db": "pos_db_1", "coll": "abc_products"}}}], )" +
         kResumeToken + R"(, "id": {"$numberLong": "5"}, "ns": "pos_db_1.abc_products_old"}, "ok": 1.0})",
     R"({"cursor": {"nextBatch": [{"_id": {"_data": "83"}, "operationType": "rename", "ns": {"db": "main_db", "coll": "abc_products_old"}, )"
         R"("to": {"db": "main_db", "coll": "abc_products"}, "operationDescription": {"to": {"db": "main_db", "coll": "abc_products"}}}], )" +
         kResumeToken + R"(, "id": {"$numberLong": "5"}, "ns": "main_db.abc_products_old"}, "ok": 1.0})"},
    {"ChangeEventDropDatabaseAndRenameRule3", "getMore", {kAbcDatabase3},
     R"({"cursor": {"nextBatch": [{"_id": {"_data": "84"}, "operationType": "rename", "ns": {"db": "pos_db_1", "coll": "abc_tmp"}, "to": {"db": "pos_db_1", "coll": "abc_orders"}},)"
         R"({"_id": {"_data": "85"}, "operationType": "dropDatabase", "ns": {"db": "pos_db_1"}}, {"_id": {"_data": "86"}, "ns": {"db": "pos_db_1"}}], )" +
         kResumeToken + R"(, "id": {"$numberLong": "5"}, "ns": "pos_db_1.$cmd.aggregate"}, "ok": 1.0})",
     R"({"cursor": {"nextBatch": [{"_id": {"_data": "84"}, "operationType": "rename", "ns": {"db": "store_abc", "coll": "tmp"}, "to": {"db": "store_abc", "coll": "orders"}},)"
         R"({"_id": {"_data": "85"}, "operationType": "dropDatabase", "ns": {"db": "store_abc"}}, {"_id": {"_data": "86"}, "ns": {"db": "pos_db_1"}}], )" +
         kResumeToken + R"(, "id": {"$numberLong": "5"}, "ns": "store_abc.$cmd.aggregate"}, "ok": 1.0})"},

    // ---- explain
    {"ExplainFindRule3", "explain", {kAbcProducts3},
     R"({"explainVersion": "1", "queryPlanner": {"namespace": "pos_db_1.abc_products", "indexFilterSet": false, )"
         R"("parsedQuery": {"ns": {"$eq": "pos_db_1.abc_products"}}, "winningPlan": {"stage": "COLLSCAN"}}, )"
         R"("command": {"find": "abc_products", "filter": {"ns": "pos_db_1.abc_products"}, "$db": "pos_db_1"}, "ok": 1.0})",
     R"({"explainVersion": "1", "queryPlanner": {"namespace": "store_abc.products", "indexFilterSet": false, )"
         R"("parsedQuery": {"ns": {"$eq": "pos_db_1.abc_products"}}, "winningPlan": {"stage": "COLLSCAN"}}, )"
         R"("command": {"find": "products", "filter": {"ns": "pos_db_1.abc_products"}, "$db": "store_abc"}, "ok": 1.0})"},
    {"ExplainAggregateNestedStages", "aggregate", {kAbcProducts2, rule2("pos_db_1", "abc_orders")},
     R"({"explainVersion": "1", "stages": [{"$cursor": {"queryPlanner": {"namespace": "pos_db_1.abc_products"}}}, )"
         R"({"$lookup": {"from": "abc_orders"}, "totalDocsExamined": 3, "collectionScans": [{"ns": "pos_db_1.abc_orders"}]}], "ok": 1.0})",
     R"({"explainVersion": "1", "stages": [{"$cursor": {"queryPlanner": {"namespace": "main_db.abc_products"}}}, )"
         R"({"$lookup": {"from": "abc_orders"}, "totalDocsExamined": 3, "collectionScans": [{"ns": "main_db.abc_orders"}]}], "ok": 1.0})"},

    // ---- errors
    {"WriteErrorE11000Rule2", "insert", {kAbcProducts2},
     R"({"n": 0, "writeErrors": [{"index": 0, "code": 11000, "errmsg": "E11000 duplicate key error collection: pos_db_1.abc_products index: _id_ dup key: { _id: 1 }", )"
         R"("keyPattern": {"_id": 1}, "keyValue": {"_id": 1}}, "not a document"], "ok": 1.0})",
     R"({"n": 0, "writeErrors": [{"index": 0, "code": 11000, "errmsg": "E11000 duplicate key error collection: main_db.abc_products index: _id_ dup key: { _id: 1 }", )"
         R"("keyPattern": {"_id": 1}, "keyValue": {"_id": 1}}, "not a document"], "ok": 1.0})"},
    {"ErrmsgAlreadyExistsRule3", "create", {kAbcProducts3},
     R"({"ok": 0.0, "errmsg": "Collection pos_db_1.abc_products already exists.", "code": 48, "codeName": "NamespaceExists"})",
     R"({"ok": 0.0, "errmsg": "Collection store_abc.products already exists.", "code": 48, "codeName": "NamespaceExists"})"},
    {"ErrmsgNsNotFoundNamesNothing", "drop", {kAbcProducts2},
     R"({"ok": 0.0, "errmsg": "ns not found", "code": 26, "codeName": "NamespaceNotFound"})", ""},
    {"ErrmsgOtherCollectionOfTheStoreRule3", "renameCollection", {kAbcProducts3},
     R"({"ok": 0.0, "errmsg": "target namespace exists: pos_db_1.abc_orders; source pos_db_1.abc_products", "code": 48})",
     R"({"ok": 0.0, "errmsg": "target namespace exists: store_abc.orders; source store_abc.products", "code": 48})"},
    {"ErrmsgBareDatabaseName", "dropDatabase", {kAbcProducts2},
     R"({"ok": 0.0, "errmsg": "database 'pos_db_1' is being dropped", "code": 215})",
     R"({"ok": 0.0, "errmsg": "database 'main_db' is being dropped", "code": 215})"},
    {"ErrmsgLegacyIndexNamespace", "insert", {kAbcProducts2},
     R"({"ok": 0.0, "errmsg": "E11000 duplicate key error index: pos_db_1.abc_products.$_id_ dup key", "code": 11000})",
     R"({"ok": 0.0, "errmsg": "E11000 duplicate key error index: main_db.abc_products.$_id_ dup key", "code": 11000})"},
    {"WriteConcernError", "update", {kAbcProducts3},
     R"({"n": 1, "nModified": 1, "writeConcernError": {"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out on pos_db_1.abc_products", "errInfo": {"wtimeout": true}}, "ok": 1.0})",
     R"({"n": 1, "nModified": 1, "writeConcernError": {"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out on store_abc.products", "errInfo": {"wtimeout": true}}, "ok": 1.0})"},
    {"BulkWriteResultErrmsg", "bulkWrite", {kAbcProducts2},
     R"({"cursor": {"id": {"$numberLong": "0"}, "firstBatch": [{"ok": 1.0, "idx": 0, "n": 1}, {"ok": 0.0, "idx": 1, "code": 11000, "errmsg": "E11000 duplicate key error collection: pos_db_1.abc_products index: _id_"}], )"
         R"("ns": "admin.$cmd.bulkWrite"}, "nErrors": 1, "ok": 1.0})",
     R"({"cursor": {"id": {"$numberLong": "0"}, "firstBatch": [{"ok": 1.0, "idx": 0, "n": 1}, {"ok": 0.0, "idx": 1, "code": 11000, "errmsg": "E11000 duplicate key error collection: main_db.abc_products index: _id_"}], )"
         R"("ns": "admin.$cmd.bulkWrite"}, "nErrors": 1, "ok": 1.0})"},

    // ---- prefix-of-another-name: pos_db_1 must never touch pos_db_10
    {"PrefixDatabaseCursorNsUntouched", "find", {kAbcProducts2},
     R"({"cursor": {"firstBatch": [], )" + kCursor0 + R"(, "ns": "pos_db_10.abc_products"}, "ok": 1.0})", ""},
    {"PrefixDatabaseInErrmsg", "insert", {kAbcProducts2},
     R"({"ok": 0.0, "errmsg": "pos_db_10.abc_products vs pos_db_1.abc_products vs xpos_db_1 vs pos_db_1.abc_productsX vs pos_db_1", "code": 2})",
     R"({"ok": 0.0, "errmsg": "pos_db_10.abc_products vs main_db.abc_products vs xpos_db_1 vs main_db.abc_productsX vs main_db", "code": 2})"},
    {"PrefixDatabaseBothMapped", "insert", {kAbcProducts2, rule2("pos_db_10", "xyz_users", "xyz")},
     R"({"ok": 0.0, "errmsg": "pos_db_10.xyz_users and pos_db_1.abc_products", "code": 2})",
     R"({"ok": 0.0, "errmsg": "main_db.xyz_users and main_db.abc_products", "code": 2})"},

    // ---- other commands' own namespaces
    {"CollStatsNs", "collStats", {kAbcProducts3},
     R"({"ns": "pos_db_1.abc_products", "size": 10, "count": 1, "ok": 1.0})",
     R"({"ns": "store_abc.products", "size": 10, "count": 1, "ok": 1.0})"},
    {"DbStatsDb", "dbStats", {kAbcDatabase3},
     R"({"db": "pos_db_1", "collections": 3, "ok": 1.0})",
     R"({"db": "store_abc", "collections": 3, "ok": 1.0})"},

    // ---- nothing to do
    {"InsertAckNoChange", "insert", {kAbcProducts2}, R"({"n": 1, "ok": 1.0})", ""},
    {"NoMappingsNoChange", "find", {},
     R"({"cursor": {"firstBatch": [], )" + kCursor0 + R"(, "ns": "pos_db_1.abc_products"}, "ok": 1.0})", ""},
    {"IdentityMappingNoChange", "find", {kIdentity},
     R"({"cursor": {"firstBatch": [], )" + kCursor0 + R"(, "ns": "main_db.shared"}, "ok": 1.0})", ""},
    {"LogicalNamesAlreadyNoChange", "find", {kAbcProducts2},
     R"({"cursor": {"firstBatch": [{"x": "pos_db_1.abc_products"}], )" + kCursor0 + R"(, "ns": "main_db.abc_products"}, "ok": 1.0})", ""},
    {"OtherStoreInRule3DatabaseLeftAlone", "find", {kAbcDatabase3},
     R"({"cursor": {"firstBatch": [], )" + kCursor0 + R"(, "ns": "pos_db_1.def_products"}, "ok": 1.0})", ""},

    // ---- odd shapes: left as they are
    {"CursorNotADocument", "find", {kAbcProducts2}, R"({"cursor": "pos_db_1.abc_products", "ok": 1.0})", ""},
    {"CursorNsNotAString", "find", {kAbcProducts2}, R"({"cursor": {"ns": 5, "firstBatch": "x"}, "ok": 1.0})", ""},
    {"ErrmsgNotAString", "insert", {kAbcProducts2},
     R"({"errmsg": {"text": "pos_db_1.abc_products"}, "writeErrors": {"0": 1}, "writeConcernError": [1], "ok": 0.0})", ""},
    {"ListCollectionsBatchNotAnArray", "listCollections", {kAbcDatabase3},
     R"({"cursor": {"ns": "pos_db_1.$cmd.listCollections", "firstBatch": {"name": "def_x"}}, "ok": 1.0})",
     R"({"cursor": {"ns": "store_abc.$cmd.listCollections", "firstBatch": {"name": "def_x"}}, "ok": 1.0})"},
    {"ChangeEventOddNs", "getMore", {kAbcProducts2},
     R"({"cursor": {"nextBatch": [{"operationType": "insert", "ns": "pos_db_1.abc_products"}, {"operationType": "insert", "ns": {"db": 1, "coll": "abc_products"}}], )" +
         kResumeToken + R"(, "ns": 4}, "ok": 1.0})", ""},
};

INSTANTIATE_TEST_SUITE_P(RouterReplyShapes, RouterReply, ::testing::ValuesIn(kReplyCases),
                         [](const ::testing::TestParamInfo<ReplyCase>& info) { return info.param.name; });

// A reply that is not valid BSON is never rebuilt (the proxy forwards it as it came).
TEST(RouterReplyMalformed, CorruptOrTruncatedRepliesAreLeftAlone) {
  RoutedCommand route;
  route.commandName = "find";
  route.mappings = {kAbcProducts2};
  const ByteVec good = bson(R"({"cursor": {"firstBatch": [{"a": 1}], "ns": "pos_db_1.abc_products"}, "ok": 1.0})");
  std::vector<std::uint8_t> out;
  ASSERT_TRUE(rewriteReply(route, wire::Bytes(good.data(), good.size()), out));

  // Every truncation, with the length field patched to match: never a crash, never `out`.
  for (std::size_t len = 0; len < good.size(); ++len) {
    SCOPED_TRACE("length " + std::to_string(len));
    ByteVec cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len));
    if (len >= 4) wire::storeInt32LE(cut.data(), static_cast<std::int32_t>(len));
    out.clear();
    EXPECT_FALSE(rewriteReply(route, wire::Bytes(cut.data(), cut.size()), out));
    EXPECT_TRUE(out.empty());
  }
  // An inner length that overruns its parent.
  ByteVec bad = good;
  bad[4 + 1 + 7] = 0x7f;  // the cursor document's length (after type byte and "cursor\0")
  out.clear();
  EXPECT_FALSE(rewriteReply(route, wire::Bytes(bad.data(), bad.size()), out));
  EXPECT_TRUE(out.empty());
}

// An upstream array whose keys are not "0", "1", ... is copied as it is, and quietly
// (libbson's own array copy would print a warning to stderr for every such reply).
TEST(RouterReplyOddArrays, KeysKeptAndNoWarning) {
  const auto build = [](const char* ns) {
    bson_t doc = BSON_INITIALIZER;
    bson_t cursor;
    bson_t batch;
    bson_append_document_begin(&doc, "cursor", -1, &cursor);
    bson_append_array_begin(&cursor, "firstBatch", -1, &batch);
    bson_append_int32(&batch, "7", -1, 1);
    bson_append_int32(&batch, "x", -1, 2);
    bson_append_array_end(&cursor, &batch);
    bson_append_utf8(&cursor, "ns", -1, ns, -1);
    bson_append_document_end(&doc, &cursor);
    ByteVec bytes(bson_get_data(&doc), bson_get_data(&doc) + doc.len);
    bson_destroy(&doc);
    return bytes;
  };
  RoutedCommand route;
  route.commandName = "find";
  route.mappings = {kAbcProducts2};
  const ByteVec reply = build("pos_db_1.abc_products");
  std::vector<std::uint8_t> out;
  ::testing::internal::CaptureStderr();
  const bool changed = rewriteReply(route, wire::Bytes(reply.data(), reply.size()), out);
  const std::string warnings = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(changed);
  EXPECT_EQ(out, build("main_db.abc_products"));
  EXPECT_EQ(warnings, "");
}

// `out` is replaced, not appended to, when the reply changes.
TEST(RouterReplyOutput, ReplacesOut) {
  RoutedCommand route;
  route.commandName = "find";
  route.mappings = {kAbcProducts2};
  const ByteVec reply = bson(R"({"cursor": {"ns": "pos_db_1.abc_products"}, "ok": 1.0})");
  std::vector<std::uint8_t> out{1, 2, 3};
  ASSERT_TRUE(rewriteReply(route, wire::Bytes(reply.data(), reply.size()), out));
  EXPECT_EQ(out, bson(R"({"cursor": {"ns": "main_db.abc_products"}, "ok": 1.0})"));
}

// The namespace arithmetic on its own.
TEST(RouterReplyNamespaces, LogicalNames) {
  const std::vector<NamespaceMapping> mappings{kAbcProducts3, rule2("pos_db_2", "def_orders", "def")};
  const ReplyNamespaces names(mappings);
  ASSERT_TRUE(names.active());
  EXPECT_EQ(names.logicalNamespace("pos_db_1.abc_products"), "store_abc.products");
  EXPECT_EQ(names.logicalNamespace("pos_db_1.abc_a.b"), "store_abc.a.b");
  EXPECT_EQ(names.logicalNamespace("pos_db_1.$cmd.listCollections"), "store_abc.$cmd.listCollections");
  EXPECT_EQ(names.logicalNamespace("pos_db_1.def_products"), std::nullopt);
  EXPECT_EQ(names.logicalNamespace("pos_db_2.anything"), "main_db.anything");
  EXPECT_EQ(names.logicalNamespace("pos_db_3.abc_products"), std::nullopt);
  EXPECT_EQ(names.logicalNamespace("pos_db_1"), "store_abc");
  EXPECT_EQ(names.rewriteText("no names here"), std::nullopt);
  EXPECT_EQ(names.rewriteText("pos_db_1-x pos_db_1_x pos_db_1"), "pos_db_1-x pos_db_1_x store_abc");
  EXPECT_EQ(names.rewriteText("pos_db_1.abc_"), "store_abc.abc_");

  // An exact mapping wins over another mapping of the same physical database.
  const std::vector<NamespaceMapping> both{kAbcDatabase3, kAbcProducts2};
  EXPECT_EQ(ReplyNamespaces(both).logicalNamespace("pos_db_1.abc_products"), "main_db.abc_products");
  EXPECT_EQ(ReplyNamespaces(both).logicalNamespace("pos_db_1.abc_orders"), "store_abc.orders");

  // A whole-namespace match must end where the collection name ends: "x_db.collX" is not
  // "x_db.coll" followed by "X" (visible when the logical name is not the physical one).
  const std::vector<NamespaceMapping> renamed{{"x_db", "coll", "y_db", "other", 1, ""}};
  EXPECT_EQ(ReplyNamespaces(renamed).rewriteText("x_db.collX x_db.coll"), "y_db.collX y_db.other");

  const std::vector<NamespaceMapping> identities{kIdentity};
  EXPECT_FALSE(ReplyNamespaces(identities).active());
}

}  // namespace
}  // namespace mongogate::router
