// replyIsCommandError: the metric label result="command_error" comes from the reply's
// top-level `ok`, read as servers and drivers read it (0 / 0.0 / false / null mean
// failure), without trusting the reply's lengths.
#include <gtest/gtest.h>

#include <string>

#include "proxy/request_log.h"
#include "wire/builder.h"
#include "wire_test_support.h"

namespace mongogate::proxy {
namespace {

using wire::test::bson;
using wire::test::ByteVec;

ByteVec replyFrame(const std::string& json) {
  ByteVec frame;
  wire::appendOpMsg(frame, 1, 2, 0, wire::test::bytesOf(bson(json)));
  return frame;
}

bool isError(const std::string& json) {
  const ByteVec frame = replyFrame(json);
  return replyIsCommandError(wire::Bytes(frame.data(), frame.size()));
}

TEST(ReplyIsCommandError, ReadsOkOfEveryNumericAndBooleanType) {
  EXPECT_FALSE(isError(R"({"ok": 1.0})"));
  EXPECT_TRUE(isError(R"({"ok": 0.0, "errmsg": "x", "code": 2})"));
  EXPECT_FALSE(isError(R"({"ok": 1})"));
  EXPECT_TRUE(isError(R"({"ok": 0})"));
  EXPECT_FALSE(isError(R"({"ok": {"$numberLong": "1"}})"));
  EXPECT_FALSE(isError(R"({"ok": {"$numberLong": "4294967296"}})"));  // only the high word set
  EXPECT_TRUE(isError(R"({"ok": {"$numberLong": "0"}})"));
  EXPECT_FALSE(isError(R"({"ok": true})"));
  EXPECT_TRUE(isError(R"({"ok": false})"));
  EXPECT_TRUE(isError(R"({"ok": null})"));
  EXPECT_FALSE(isError(R"({"n": 1})")) << "no ok: not counted as an error";
}

TEST(ReplyIsCommandError, FindsOkAfterALargeCursor) {
  std::string docs;
  for (int i = 0; i < 200; ++i) docs += (i ? ", " : "") + std::string(R"({"_id": )") + std::to_string(i) + ", \"ok\": 0}";
  EXPECT_FALSE(isError(R"({"cursor": {"firstBatch": [)" + docs + R"(], "id": 0, "ns": "d.c"}, "ok": 1.0})"))
      << "a user document's ok field is data, not the reply's";
  EXPECT_TRUE(isError(R"({"cursor": {"firstBatch": [)" + docs + R"(], "id": 0, "ns": "d.c"}, "ok": 0.0})"));
}

TEST(ReplyIsCommandError, BadFramesAreNotErrors) {
  ByteVec frame = replyFrame(R"({"errmsg": "x", "ok": 0.0})");
  // Cut inside the body: the walk stops before reaching ok.
  for (std::size_t cut = 0; cut < frame.size(); ++cut) {
    EXPECT_FALSE(replyIsCommandError(wire::Bytes(frame.data(), cut))) << "cut at " << cut;
  }
  // A body length larger than the frame.
  wire::storeInt32LE(frame.data() + 21, 4096);
  EXPECT_FALSE(replyIsCommandError(wire::Bytes(frame.data(), frame.size())));
  // Not an OP_MSG.
  ByteVec other = replyFrame(R"({"ok": 0.0})");
  wire::storeInt32LE(other.data() + 12, 1);  // OP_REPLY
  EXPECT_FALSE(replyIsCommandError(wire::Bytes(other.data(), other.size())));
}

}  // namespace
}  // namespace mongogate::proxy
