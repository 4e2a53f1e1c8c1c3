// Draining fan-out cursors: batches are joined in order, the id becomes 0, other fields
// stay; error replies are not joined.
#include <bson/bson.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "router/cursor_batches.h"
#include "router/routing.h"

namespace mongogate::router {
namespace {

std::vector<std::uint8_t> bsonOf(const char* json) {
  bson_error_t error;
  bson_t* doc = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(json), -1, &error);
  EXPECT_NE(doc, nullptr) << error.message << " in " << json;
  std::vector<std::uint8_t> bytes(bson_get_data(doc), bson_get_data(doc) + doc->len);
  bson_destroy(doc);
  return bytes;
}

std::string jsonOf(const std::vector<std::uint8_t>& bytes) {
  bson_t doc;
  EXPECT_TRUE(bson_init_static(&doc, bytes.data(), bytes.size()));
  char* text = bson_as_canonical_extended_json(&doc, nullptr);
  std::string out = text ? text : "";
  bson_free(text);
  return out;
}

TEST(RouterCursorBatches, CursorIdOf) {
  EXPECT_EQ(cursorIdOf(bsonOf(R"({"cursor": {"id": {"$numberLong": "77"}, "firstBatch": []}, "ok": 1})")), 77);
  EXPECT_EQ(cursorIdOf(bsonOf(R"({"cursor": {"id": 5}, "ok": 1})")), 5);
  EXPECT_EQ(cursorIdOf(bsonOf(R"({"ok": 0, "errmsg": "x"})")), 0);
  EXPECT_EQ(cursorIdOf(bsonOf(R"({"cursor": {"id": "no"}})")), 0);
  const std::uint8_t garbage[] = {9, 0, 0, 0, 1};
  EXPECT_EQ(cursorIdOf(garbage), 0);
}

TEST(RouterCursorBatches, GetMoreBody) {
  std::vector<std::uint8_t> out;
  appendGetMore(out, 42, "$cmd.listCollections", "pos_db_2");
  EXPECT_EQ(jsonOf(out), jsonOf(bsonOf(
      R"({"getMore": {"$numberLong": "42"}, "collection": "$cmd.listCollections", "$db": "pos_db_2"})")));
}

TEST(RouterCursorBatches, JoinsBatchesInOrder) {
  const auto first = bsonOf(R"({"cursor": {"id": {"$numberLong": "9"}, "ns": "d.$cmd.listCollections",
                               "firstBatch": [{"name": "a"}, {"name": "b"}]}, "ok": 1.0})");
  const std::vector<std::vector<std::uint8_t>> later = {
      bsonOf(R"({"cursor": {"id": {"$numberLong": "9"}, "ns": "d.$cmd.listCollections", "nextBatch": [{"name": "c"}]}, "ok": 1.0})"),
      bsonOf(R"({"cursor": {"id": {"$numberLong": "0"}, "ns": "d.$cmd.listCollections", "nextBatch": [{"name": "d"}]}, "ok": 1.0})")};
  std::vector<std::uint8_t> out;
  ASSERT_TRUE(joinCursorBatches(first, later, out));
  EXPECT_EQ(jsonOf(out), jsonOf(bsonOf(R"({"cursor": {"id": {"$numberLong": "0"}, "ns": "d.$cmd.listCollections",
      "firstBatch": [{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "d"}]}, "ok": 1.0})")));
}

TEST(RouterCursorBatches, ErrorRepliesAreNotJoined) {
  const auto first = bsonOf(R"({"cursor": {"id": {"$numberLong": "9"}, "firstBatch": []}, "ok": 1.0})");
  const std::vector<std::vector<std::uint8_t>> later = {
      bsonOf(R"({"ok": 0.0, "errmsg": "cursor id 9 not found", "code": 43})")};
  std::vector<std::uint8_t> out;
  EXPECT_FALSE(joinCursorBatches(first, later, out));
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(joinCursorBatches(bsonOf(R"({"ok": 1.0})"), {}, out));
  EXPECT_FALSE(joinCursorBatches(bsonOf(R"({"ok": 0.0})"), {}, out));
}

}  // namespace
}  // namespace mongogate::router

namespace mongogate::router {
namespace {

TEST(RouterServerInfo, ExplainServerInfoIsRemoved) {
  const auto reply = bsonOf(R"({"queryPlanner": {"namespace": "main_db.x"},
      "serverInfo": {"host": "db-7.internal", "port": 27017, "version": "7.0.0"}, "ok": 1.0})");
  std::vector<std::uint8_t> out;
  ASSERT_TRUE(removeServerInfo(reply, out));
  EXPECT_EQ(jsonOf(out), jsonOf(bsonOf(R"({"queryPlanner": {"namespace": "main_db.x"}, "ok": 1.0})")));
  std::vector<std::uint8_t> untouched = {1, 2, 3};
  EXPECT_FALSE(removeServerInfo(bsonOf(R"({"cursor": {"id": 0}, "ok": 1.0})"), untouched));
  EXPECT_EQ(untouched, (std::vector<std::uint8_t>{1, 2, 3}));
}

}  // namespace
}  // namespace mongogate::router
