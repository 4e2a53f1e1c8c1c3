// OP_QUERY and OP_REPLY: annotated frames, mutation tables with exact offsets, the
// truncation sweep, and OP_REPLY's numberReturned rules.
#include <gtest/gtest.h>

#include <string>

#include "wire/builder.h"
#include "wire/legacy.h"
#include "wire/op_msg.h"
#include "wire_test_support.h"

namespace mongogate::wire {
namespace {

using test::bson;
using test::bytesOf;
using test::ByteVec;
using test::FrameWriter;
using test::isError;
using test::isOk;

// The legacy handshake a driver sends first.
const ByteVec kIsMasterQuery = {
    0x3a, 0x00, 0x00, 0x00,  // 0: messageLength = 58
    0x2a, 0x00, 0x00, 0x00,  // 4: requestId = 42
    0x00, 0x00, 0x00, 0x00,  // 8: responseTo = 0
    0xd4, 0x07, 0x00, 0x00,  // 12: opCode = 2004 (OP_QUERY)
    0x04, 0x00, 0x00, 0x00,  // 16: flags = SecondaryOk
    'a', 'd', 'm', 'i', 'n', '.', '$', 'c', 'm', 'd', 0x00,  // 20: "admin.$cmd"
    0x00, 0x00, 0x00, 0x00,  // 31: numberToSkip = 0
    0xff, 0xff, 0xff, 0xff,  // 35: numberToReturn = -1
    0x13, 0x00, 0x00, 0x00,  // 39: query length = 19
    0x10,                    // 43: type int32
    'i', 's', 'M', 'a', 's', 't', 'e', 'r', 0x00,  // 44: key "isMaster"
    0x01, 0x00, 0x00, 0x00,  // 53: 1
    0x00,                    // 57: query terminator
};

// Its answer.
const ByteVec kIsMasterReply = {
    0x35, 0x00, 0x00, 0x00,  // 0: messageLength = 53
    0x09, 0x00, 0x00, 0x00,  // 4: requestId = 9
    0x2a, 0x00, 0x00, 0x00,  // 8: responseTo = 42
    0x01, 0x00, 0x00, 0x00,  // 12: opCode = 1 (OP_REPLY)
    0x08, 0x00, 0x00, 0x00,  // 16: responseFlags = AwaitCapable
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // 20: cursorId = 0
    0x00, 0x00, 0x00, 0x00,  // 28: startingFrom = 0
    0x01, 0x00, 0x00, 0x00,  // 32: numberReturned = 1
    0x11, 0x00, 0x00, 0x00,  // 36: document length = 17
    0x01,                    // 40: type double
    'o', 'k', 0x00,          // 41: key "ok"
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f,  // 44: 1.0
    0x00,                    // 52: document terminator
};

TEST(WireOpQuery, AnnotatedMatchesFieldByFieldBuild) {
  const ByteVec built = FrameWriter()
                            .header(42, 0, OpCode::kQuery)
                            .i32(queryflags::kSecondaryOk)
                            .cstr("admin.$cmd")
                            .i32(0)
                            .i32(-1)
                            .raw(bson(R"({"isMaster": 1})"))
                            .done();
  EXPECT_EQ(built, kIsMasterQuery);
}

TEST(WireOpQuery, ParsesHandshake) {
  const auto r = parseOpQuery(bytesOf(kIsMasterQuery));
  ASSERT_TRUE(isOk(r.error));
  const OpQueryView& q = r.value;
  EXPECT_EQ(q.header.requestId, 42);
  EXPECT_EQ(q.header.opCode, 2004);
  EXPECT_EQ(q.flags, queryflags::kSecondaryOk);
  EXPECT_EQ(q.fullCollectionName, "admin.$cmd");
  EXPECT_EQ(q.fullCollectionName.data(), reinterpret_cast<const char*>(kIsMasterQuery.data() + 20));
  EXPECT_EQ(q.database(), "admin");
  EXPECT_TRUE(q.isCommand());
  EXPECT_EQ(q.numberToSkip, 0);
  EXPECT_EQ(q.numberToReturn, -1);
  EXPECT_EQ(q.query.data(), kIsMasterQuery.data() + 39);
  EXPECT_EQ(q.query.size(), 19u);
  EXPECT_EQ(firstKey(q.query), "isMaster");
  EXPECT_TRUE(q.returnFieldsSelector.empty());
}

TEST(WireOpQuery, NamespaceHelpers) {
  OpQueryView q;
  q.fullCollectionName = "app.users.$cmd";
  EXPECT_EQ(q.database(), "app");
  EXPECT_FALSE(q.isCommand());  // the collection is "users.$cmd"
  q.fullCollectionName = "app.$cmd";
  EXPECT_TRUE(q.isCommand());
  q.fullCollectionName = "app.orders";
  EXPECT_EQ(q.database(), "app");
  EXPECT_FALSE(q.isCommand());
  q.fullCollectionName = "nodot";
  EXPECT_EQ(q.database(), "nodot");
  EXPECT_FALSE(q.isCommand());
}

TEST(WireOpQuery, WithSelector) {
  const ByteVec selector = bson(R"({"a": 1})");
  FrameWriter w;
  w.raw(kIsMasterQuery).raw(selector);
  const ByteVec frame = w.done();
  const auto r = parseOpQuery(bytesOf(frame));
  ASSERT_TRUE(isOk(r.error));
  EXPECT_EQ(r.value.returnFieldsSelector.data(), frame.data() + 58);
  EXPECT_EQ(r.value.returnFieldsSelector.size(), selector.size());
}

TEST(WireOpQuery, NothingAfterTheSelector) {
  const ByteVec selector = bson("{}");
  ByteVec frame = FrameWriter().raw(kIsMasterQuery).raw(selector).u8(0).done();
  EXPECT_TRUE(isError(parseOpQuery(bytesOf(frame)).error, WireStatus::kTrailingBytes, 63));
  // A partial selector is a truncated document.
  frame = FrameWriter().raw(kIsMasterQuery).u8(5).u8(0).done();
  EXPECT_TRUE(isError(parseOpQuery(bytesOf(frame)).error, WireStatus::kTruncated, 58));
}

TEST(WireOpQuery, ShorterThanTheSmallestQuery) {
  const ByteVec smallest =
      FrameWriter().header(1, 0, OpCode::kQuery).i32(0).cstr("").i32(0).i32(0).raw(bson("{}")).done();
  ASSERT_EQ(smallest.size(), 34u);
  EXPECT_TRUE(isOk(parseOpQuery(bytesOf(smallest)).error));
  ByteVec frame(smallest.begin(), smallest.end() - 1);
  storeInt32LE(frame.data(), 33);
  EXPECT_TRUE(isError(parseOpQuery(bytesOf(frame)).error, WireStatus::kLengthTooSmall, 0));
}

TEST(WireOpQuery, UnterminatedCollectionName) {
  FrameWriter w;
  w.header(1, 0, OpCode::kQuery).i32(0);
  for (int i = 0; i < 30; ++i) w.u8('a');
  EXPECT_TRUE(isError(parseOpQuery(bytesOf(w.done())).error, WireStatus::kBadCString, 20));
}

TEST(WireOpQuery, MissingSkipAndReturn) {
  // A long name leaves fewer than eight bytes for numberToSkip and numberToReturn.
  FrameWriter w;
  w.header(1, 0, OpCode::kQuery).i32(0);
  for (int i = 0; i < 20; ++i) w.u8('a');
  w.u8(0).i32(0).u8(1).u8(2);
  EXPECT_TRUE(isError(parseOpQuery(bytesOf(w.done())).error, WireStatus::kTruncated, 45));
}

struct Mutation {
  const char* name;
  std::size_t at;
  ByteVec bytes;
  WireStatus status;
  std::size_t offset;
};

class WireOpQueryMutation : public ::testing::TestWithParam<Mutation> {};
class WireOpReplyMutation : public ::testing::TestWithParam<Mutation> {};

ByteVec mutate(ByteVec frame, const Mutation& m) {
  std::copy(m.bytes.begin(), m.bytes.end(), frame.begin() + static_cast<std::ptrdiff_t>(m.at));
  return frame;
}

TEST_P(WireOpQueryMutation, ExactStatusAndOffset) {
  const ByteVec frame = mutate(kIsMasterQuery, GetParam());
  EXPECT_TRUE(isError(parseOpQuery(bytesOf(frame)).error, GetParam().status, GetParam().offset));
}

TEST_P(WireOpReplyMutation, ExactStatusAndOffset) {
  const ByteVec frame = mutate(kIsMasterReply, GetParam());
  EXPECT_TRUE(isError(parseOpReply(bytesOf(frame)).error, GetParam().status, GetParam().offset));
}

auto mutationName = [](const ::testing::TestParamInfo<Mutation>& info) {
  return std::string(info.param.name);
};

// Offsets refer to kIsMasterQuery.
INSTANTIATE_TEST_SUITE_P(
    IsMaster, WireOpQueryMutation,
    ::testing::Values(
        Mutation{"OpcodeMsg", 12, {0xdd}, WireStatus::kUnknownOpcode, 12},
        Mutation{"LengthShort", 0, {0x39}, WireStatus::kTrailingBytes, 57},
        Mutation{"LengthLong", 0, {0x3b}, WireStatus::kTruncated, 0},
        Mutation{"LengthBelowMinimum", 0, {0x21}, WireStatus::kTrailingBytes, 33},
        Mutation{"QueryLengthPastEnd", 39, {0x14}, WireStatus::kTruncated, 39},
        Mutation{"QueryLength4", 39, {0x04}, WireStatus::kBadBson, 39},
        // One short: the int32 value runs past the query's end.
        Mutation{"QueryLengthOneShort", 39, {0x12}, WireStatus::kBadBson, 53},
        Mutation{"QueryTerminator", 57, {0x01}, WireStatus::kBadBson, 57},
        Mutation{"QueryUnknownType", 43, {0x1f}, WireStatus::kBadBson, 43},
        // As a string, the value 1 is a one-byte string that leaves no room for the terminator.
        Mutation{"QueryTypeString", 43, {0x02}, WireStatus::kBadBson, 53},
        // A shorter name shifts every later field: the query length is read from 34.
        Mutation{"NameEndsEarly", 25, {0x00}, WireStatus::kBadBson, 34}),
    mutationName);

// Offsets refer to kIsMasterReply.
INSTANTIATE_TEST_SUITE_P(
    IsMaster, WireOpReplyMutation,
    ::testing::Values(
        Mutation{"OpcodeQuery", 12, {0xd4, 0x07}, WireStatus::kUnknownOpcode, 12},
        Mutation{"NumberReturned2", 32, {0x02}, WireStatus::kTruncated, 53},
        Mutation{"NumberReturned0", 32, {0x00}, WireStatus::kTrailingBytes, 36},
        Mutation{"NumberReturnedNegative", 32, {0xff, 0xff, 0xff, 0xff}, WireStatus::kBadSequence, 32},
        Mutation{"NumberReturnedHuge", 32, {0xff, 0xff, 0xff, 0x7f}, WireStatus::kTruncated, 53},
        Mutation{"DocumentLengthPastEnd", 36, {0x12}, WireStatus::kTruncated, 36},
        Mutation{"DocumentLength4", 36, {0x04}, WireStatus::kBadBson, 36},
        Mutation{"DocumentTypeDecimal", 40, {0x13}, WireStatus::kBadBson, 44},
        Mutation{"DocumentTerminator", 52, {0x01}, WireStatus::kBadBson, 52}),
    mutationName);

TEST(WireOpReply, AnnotatedMatchesBuilder) {
  const ByteVec doc = bson(R"({"ok": 1.0})");
  const Bytes docs[] = {bytesOf(doc)};
  ByteVec built;
  appendOpReply(built, 9, 42, replyflags::kAwaitCapable, 0, 0, docs);
  EXPECT_EQ(built, kIsMasterReply);
}

TEST(WireOpReply, ParsesHandshakeReply) {
  const auto r = parseOpReply(bytesOf(kIsMasterReply));
  ASSERT_TRUE(isOk(r.error));
  const OpReplyView& v = r.value;
  EXPECT_EQ(v.header.responseTo, 42);
  EXPECT_EQ(v.responseFlags, replyflags::kAwaitCapable);
  EXPECT_EQ(v.cursorId, 0);
  EXPECT_EQ(v.startingFrom, 0);
  EXPECT_EQ(v.numberReturned, 1);
  EXPECT_EQ(v.documents.data(), kIsMasterReply.data() + 36);
  EXPECT_EQ(v.documents.size(), 17u);
}

TEST(WireOpReply, SeveralDocumentsAndNone) {
  const ByteVec a = bson(R"({"a": 1})");
  const ByteVec b = bson(R"({"b": "two"})");
  const Bytes docs[] = {bytesOf(a), bytesOf(b)};
  ByteVec frame;
  appendOpReply(frame, 1, 2, 0, 0x1122334455667788LL, 5, docs);
  auto r = parseOpReply(bytesOf(frame));
  ASSERT_TRUE(isOk(r.error));
  EXPECT_EQ(r.value.numberReturned, 2);
  EXPECT_EQ(r.value.cursorId, 0x1122334455667788LL);
  EXPECT_EQ(r.value.startingFrom, 5);
  EXPECT_EQ(r.value.documents.size(), a.size() + b.size());

  ByteVec empty;
  appendOpReply(empty, 1, 2, 0, 0, 0, {});
  r = parseOpReply(bytesOf(empty));
  ASSERT_TRUE(isOk(r.error));
  EXPECT_EQ(empty.size(), 36u);
  EXPECT_EQ(r.value.numberReturned, 0);
  EXPECT_TRUE(r.value.documents.empty());
}

TEST(WireOpReply, TooShortForFixedFields) {
  ByteVec frame(kIsMasterReply.begin(), kIsMasterReply.begin() + 35);
  storeInt32LE(frame.data(), 35);
  EXPECT_TRUE(isError(parseOpReply(bytesOf(frame)).error, WireStatus::kLengthTooSmall, 0));
}

TEST(WireLegacy, TruncationSweepQuery) {
  test::truncationSweep(kIsMasterQuery, [](Bytes b) { return parseOpQuery(b); });
}

TEST(WireLegacy, TruncationSweepQueryWithSelector) {
  const ByteVec frame = FrameWriter().raw(kIsMasterQuery).raw(bson(R"({"x": 1})")).done();
  // Cut after the query, the selector is simply absent.
  test::truncationSweep(frame, [](Bytes b) { return parseOpQuery(b); }, {58});
}

TEST(WireLegacy, TruncationSweepReply) {
  test::truncationSweep(kIsMasterReply, [](Bytes b) { return parseOpReply(b); });
}

}  // namespace
}  // namespace mongogate::wire
