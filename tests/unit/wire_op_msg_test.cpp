// OP_MSG parser: annotated frames, flag and checksum rules, section rules, a byte-mutation
// table with exact statuses and offsets, and the truncation sweep.
#include <gtest/gtest.h>

#include <string>

#include "wire/crc32c.h"
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
using test::sequenceSection;

// insert with one body and one "documents" sequence of two documents.
const ByteVec kInsertMsg = {
    0x5f, 0x00, 0x00, 0x00,  // 0: messageLength = 95
    0x07, 0x00, 0x00, 0x00,  // 4: requestId = 7
    0x00, 0x00, 0x00, 0x00,  // 8: responseTo = 0
    0xdd, 0x07, 0x00, 0x00,  // 12: opCode = 2013 (OP_MSG)
    0x00, 0x00, 0x00, 0x00,  // 16: flagBits = 0
    0x00,                    // 20: section kind 0
    0x1f, 0x00, 0x00, 0x00,  // 21: body length = 31
    0x02,                    // 25: type string
    'i', 'n', 's', 'e', 'r', 't', 0x00,  // 26: key "insert"
    0x02, 0x00, 0x00, 0x00,  // 33: string length = 2
    'c', 0x00,               // 37: "c"
    0x02,                    // 39: type string
    '$', 'd', 'b', 0x00,     // 40: key "$db"
    0x03, 0x00, 0x00, 0x00,  // 44: string length = 3
    'd', 'b', 0x00,          // 48: "db"
    0x00,                    // 51: body terminator
    0x01,                    // 52: section kind 1
    0x2a, 0x00, 0x00, 0x00,  // 53: sequence size = 42
    'd', 'o', 'c', 'u', 'm', 'e', 'n', 't', 's', 0x00,  // 57: identifier "documents"
    0x0e, 0x00, 0x00, 0x00,  // 67: document 1 length = 14
    0x10,                    // 71: type int32
    '_', 'i', 'd', 0x00,     // 72: key "_id"
    0x01, 0x00, 0x00, 0x00,  // 76: 1
    0x00,                    // 80: document 1 terminator
    0x0e, 0x00, 0x00, 0x00,  // 81: document 2 length = 14
    0x10,                    // 85: type int32
    '_', 'i', 'd', 0x00,     // 86: key "_id"
    0x02, 0x00, 0x00, 0x00,  // 90: 2
    0x00,                    // 94: document 2 terminator
};

// hello with a body only.
const ByteVec kHelloMsg = {
    0x34, 0x00, 0x00, 0x00,  // 0: messageLength = 52
    0x01, 0x00, 0x00, 0x00,  // 4: requestId = 1
    0x00, 0x00, 0x00, 0x00,  // 8: responseTo = 0
    0xdd, 0x07, 0x00, 0x00,  // 12: opCode = 2013
    0x00, 0x00, 0x01, 0x00,  // 16: flagBits = exhaustAllowed (bit 16)
    0x00,                    // 20: section kind 0
    0x1f, 0x00, 0x00, 0x00,  // 21: body length = 31
    0x10,                    // 25: type int32
    'h', 'e', 'l', 'l', 'o', 0x00,  // 26: key "hello"
    0x01, 0x00, 0x00, 0x00,  // 32: 1
    0x02,                    // 36: type string
    '$', 'd', 'b', 0x00,     // 37: key "$db"
    0x06, 0x00, 0x00, 0x00,  // 41: string length = 6
    'a', 'd', 'm', 'i', 'n', 0x00,  // 45: "admin"
    0x00,                    // 51: body terminator
};

ByteVec withChecksum(ByteVec frame) {
  std::uint32_t flags = loadUInt32LE(frame.data() + 16);
  storeInt32LE(frame.data() + 16, static_cast<std::int32_t>(flags | msgflags::kChecksumPresent));
  storeInt32LE(frame.data(), static_cast<std::int32_t>(frame.size() + 4));
  const std::uint32_t crc = crc32c(bytesOf(frame));
  frame.resize(frame.size() + 4);
  storeInt32LE(frame.data() + frame.size() - 4, static_cast<std::int32_t>(crc));
  return frame;
}

TEST(WireOpMsg, AnnotatedInsertMatchesFieldByFieldBuild) {
  const ByteVec built = FrameWriter()
                            .header(7, 0, OpCode::kMsg)
                            .u32(0)
                            .u8(0)
                            .raw(bson(R"({"insert": "c", "$db": "db"})"))
                            .raw(sequenceSection("documents", {bson(R"({"_id": 1})"), bson(R"({"_id": 2})")}))
                            .done();
  EXPECT_EQ(built, kInsertMsg);
}

TEST(WireOpMsg, AnnotatedHelloMatchesFieldByFieldBuild) {
  const ByteVec built = FrameWriter()
                            .header(1, 0, OpCode::kMsg)
                            .u32(msgflags::kExhaustAllowed)
                            .u8(0)
                            .raw(bson(R"({"hello": 1, "$db": "admin"})"))
                            .done();
  EXPECT_EQ(built, kHelloMsg);
}

TEST(WireOpMsg, ParsesBodyAndSequence) {
  const auto r = parseOpMsg(bytesOf(kInsertMsg));
  ASSERT_TRUE(isOk(r.error));
  const OpMsgView& m = r.value;
  EXPECT_EQ(m.header.messageLength, 95);
  EXPECT_EQ(m.header.requestId, 7);
  EXPECT_EQ(m.header.responseTo, 0);
  EXPECT_EQ(m.header.opCode, 2013);
  EXPECT_EQ(m.flags, 0u);
  EXPECT_FALSE(m.checksumPresent());
  EXPECT_FALSE(m.moreToCome());
  EXPECT_FALSE(m.exhaustAllowed());
  EXPECT_EQ(m.bodyOffset, 21u);
  EXPECT_EQ(m.body.data(), kInsertMsg.data() + 21);  // borrowed, not copied
  EXPECT_EQ(m.body.size(), 31u);
  EXPECT_EQ(firstKey(m.body), "insert");
  EXPECT_EQ(m.sections.data(), kInsertMsg.data() + 20);
  EXPECT_EQ(m.sections.size(), 75u);
  ASSERT_EQ(m.documentSequences().size(), 1u);
  const DocumentSequence& s = m.documentSequences()[0];
  EXPECT_EQ(s.identifier, "documents");
  EXPECT_EQ(s.offset, 52u);
  EXPECT_EQ(s.section.data(), kInsertMsg.data() + 52);
  EXPECT_EQ(s.section.size(), 43u);
  EXPECT_EQ(s.documents.data(), kInsertMsg.data() + 67);
  EXPECT_EQ(s.documents.size(), 28u);
}

TEST(WireOpMsg, ParsesHelloWithExhaustAllowed) {
  const auto r = parseOpMsg(bytesOf(kHelloMsg));
  ASSERT_TRUE(isOk(r.error));
  EXPECT_TRUE(r.value.exhaustAllowed());
  EXPECT_FALSE(r.value.moreToCome());
  EXPECT_EQ(r.value.sequenceCount, 0u);
  EXPECT_EQ(firstKey(r.value.body), "hello");
  EXPECT_EQ(r.value.body.size(), 31u);
}

TEST(WireOpMsg, MoreToComeFlag) {
  ByteVec frame = kHelloMsg;
  frame[16] = 0x02;  // moreToCome, exhaustAllowed cleared
  frame[18] = 0x00;
  const auto r = parseOpMsg(bytesOf(frame));
  ASSERT_TRUE(isOk(r.error));
  EXPECT_TRUE(r.value.moreToCome());
  EXPECT_FALSE(r.value.exhaustAllowed());
}

TEST(WireOpMsg, EveryUnknownRequiredFlagBitIsRejected) {
  for (int bit = 2; bit < 16; ++bit) {
    SCOPED_TRACE("bit " + std::to_string(bit));
    ByteVec frame = kInsertMsg;
    storeInt32LE(frame.data() + 16, static_cast<std::int32_t>(1u << bit));
    EXPECT_TRUE(isError(parseOpMsg(bytesOf(frame)).error, WireStatus::kBadFlags, 16));
  }
}

TEST(WireOpMsg, UnknownOptionalFlagBitsAreIgnored) {
  for (int bit = 16; bit < 32; ++bit) {
    SCOPED_TRACE("bit " + std::to_string(bit));
    ByteVec frame = kInsertMsg;
    storeInt32LE(frame.data() + 16, static_cast<std::int32_t>(1u << bit));
    const auto r = parseOpMsg(bytesOf(frame));
    ASSERT_TRUE(isOk(r.error));
    EXPECT_EQ(r.value.flags, 1u << bit);
  }
}

TEST(WireOpMsg, ChecksumPresentAndValid) {
  const ByteVec frame = withChecksum(kInsertMsg);
  const auto r = parseOpMsg(bytesOf(frame));
  ASSERT_TRUE(isOk(r.error));
  EXPECT_TRUE(r.value.checksumPresent());
  EXPECT_EQ(r.value.checksum, loadUInt32LE(frame.data() + 95));
  EXPECT_EQ(r.value.sections.size(), 75u);  // the checksum is not a section
  EXPECT_EQ(r.value.documentSequences()[0].documents.size(), 28u);
}

TEST(WireOpMsg, ChecksumMismatchOnAnyChangedByte) {
  const ByteVec good = withChecksum(kInsertMsg);
  for (std::size_t i = 20; i < good.size(); ++i) {
    SCOPED_TRACE("byte " + std::to_string(i));
    ByteVec frame = good;
    frame[i] ^= 0x40;
    EXPECT_TRUE(isError(parseOpMsg(bytesOf(frame)).error, WireStatus::kChecksumMismatch, 95));
  }
}

TEST(WireOpMsg, ChecksumNotVerifiedWhenDisabled) {
  ByteVec frame = withChecksum(kInsertMsg);
  frame[98] ^= 0xff;
  EXPECT_TRUE(isError(parseOpMsg(bytesOf(frame)).error, WireStatus::kChecksumMismatch, 95));
  const auto r = parseOpMsg(bytesOf(frame), {.verifyChecksum = false, .validateBson = true});
  ASSERT_TRUE(isOk(r.error));
  EXPECT_EQ(r.value.checksum, loadUInt32LE(frame.data() + 95));
}

TEST(WireOpMsg, ChecksumBitWithoutChecksumBytes) {
  ByteVec frame = kInsertMsg;
  frame[16] = 0x01;
  // The last four bytes of document 2 are taken as the checksum.
  EXPECT_TRUE(isError(parseOpMsg(bytesOf(frame)).error, WireStatus::kChecksumMismatch, 91));
  // Unverified, the sequence now runs into the checksum.
  EXPECT_TRUE(isError(parseOpMsg(bytesOf(frame), {.verifyChecksum = false}).error,
                      WireStatus::kTruncated, 53));
}

TEST(WireOpMsg, SequenceBeforeBody) {
  const ByteVec frame = FrameWriter()
                            .header(1, 0, OpCode::kMsg)
                            .u32(0)
                            .raw(sequenceSection("updates", {bson(R"({"q": {}, "u": {"$set": {"a": 1}}})")}))
                            .u8(0)
                            .raw(bson(R"({"update": "c", "$db": "db"})"))
                            .done();
  const auto r = parseOpMsg(bytesOf(frame));
  ASSERT_TRUE(isOk(r.error));
  EXPECT_EQ(firstKey(r.value.body), "update");
  ASSERT_EQ(r.value.sequenceCount, 1u);
  EXPECT_EQ(r.value.sequences[0].offset, 20u);
  EXPECT_EQ(r.value.sequences[0].identifier, "updates");
  EXPECT_EQ(r.value.bodyOffset, 20u + r.value.sequences[0].section.size() + 1);
}

TEST(WireOpMsg, SequenceWithZeroDocuments) {
  const ByteVec frame = FrameWriter()
                            .header(1, 0, OpCode::kMsg)
                            .u32(0)
                            .u8(0)
                            .raw(bson(R"({"insert": "c", "$db": "db"})"))
                            .raw(sequenceSection("documents", {}))
                            .done();
  const auto r = parseOpMsg(bytesOf(frame));
  ASSERT_TRUE(isOk(r.error));
  ASSERT_EQ(r.value.sequenceCount, 1u);
  EXPECT_EQ(r.value.sequences[0].identifier, "documents");
  EXPECT_TRUE(r.value.sequences[0].documents.empty());
  EXPECT_EQ(r.value.sequences[0].section.size(), 1u + 4u + 10u);
}

ByteVec messageWithSequences(std::size_t n) {
  FrameWriter w;
  w.header(1, 0, OpCode::kMsg).u32(0).u8(0).raw(bson(R"({"bulkWrite": 1, "$db": "admin"})"));
  for (std::size_t i = 0; i < n; ++i) w.raw(sequenceSection("s" + std::to_string(i), {bson(R"({"i": 1})")}));
  return w.done();
}

TEST(WireOpMsg, MaxSequencesAccepted) {
  const ByteVec frame = messageWithSequences(OpMsgView::kMaxSequences);
  const auto r = parseOpMsg(bytesOf(frame));
  ASSERT_TRUE(isOk(r.error));
  ASSERT_EQ(r.value.documentSequences().size(), OpMsgView::kMaxSequences);
  EXPECT_EQ(r.value.documentSequences().back().identifier, "s7");
}

TEST(WireOpMsg, TooManySequences) {
  const ByteVec frame = messageWithSequences(OpMsgView::kMaxSequences + 1);
  const auto eight = parseOpMsg(bytesOf(messageWithSequences(OpMsgView::kMaxSequences)));
  ASSERT_TRUE(isOk(eight.error));
  // The ninth kind byte follows the eighth section.
  const DocumentSequence& last = eight.value.documentSequences().back();
  const std::size_t ninth = last.offset + last.section.size();
  EXPECT_TRUE(isError(parseOpMsg(bytesOf(frame)).error, WireStatus::kTooManySequences, ninth));
}

TEST(WireOpMsg, DuplicateSequenceIdentifier) {
  const ByteVec body = bson(R"({"insert": "c", "$db": "db"})");
  const ByteVec seq = sequenceSection("documents", {bson(R"({"_id": 1})")});
  const ByteVec frame = FrameWriter().header(1, 0, OpCode::kMsg).u32(0).u8(0).raw(body).raw(seq).raw(seq).done();
  const std::size_t second = 21 + body.size() + seq.size();
  EXPECT_TRUE(isError(parseOpMsg(bytesOf(frame)).error, WireStatus::kBadSequence, second + 5));
}

TEST(WireOpMsg, NoBody) {
  const ByteVec frame = FrameWriter()
                            .header(1, 0, OpCode::kMsg)
                            .u32(0)
                            .raw(sequenceSection("documents", {bson(R"({"_id": 1})")}))
                            .done();
  EXPECT_TRUE(isError(parseOpMsg(bytesOf(frame)).error, WireStatus::kNoBody, 20));
}

TEST(WireOpMsg, TwoBodies) {
  const ByteVec body = bson(R"({"ping": 1, "$db": "admin"})");
  const ByteVec frame = FrameWriter().header(1, 0, OpCode::kMsg).u32(0).u8(0).raw(body).u8(0).raw(body).done();
  EXPECT_TRUE(isError(parseOpMsg(bytesOf(frame)).error, WireStatus::kMultipleBodies, 21 + body.size()));
}

TEST(WireOpMsg, SmallestMessages) {
  const ByteVec empty = FrameWriter().header(1, 0, OpCode::kMsg).u32(0).u8(0).raw(bson("{}")).done();
  ASSERT_EQ(empty.size(), 26u);
  EXPECT_TRUE(isOk(parseOpMsg(bytesOf(empty)).error));

  for (std::size_t len : {16u, 19u, 20u, 25u}) {
    SCOPED_TRACE(len);
    ByteVec frame(empty.begin(), empty.begin() + static_cast<std::ptrdiff_t>(len));
    storeInt32LE(frame.data(), static_cast<std::int32_t>(len));
    EXPECT_TRUE(isError(parseOpMsg(bytesOf(frame)).error, WireStatus::kLengthTooSmall, 0));
  }
  // With the checksum bit the minimum grows by the checksum's four bytes.
  ByteVec frame = empty;
  frame[16] = 0x01;
  EXPECT_TRUE(isError(parseOpMsg(bytesOf(frame)).error, WireStatus::kLengthTooSmall, 0));
  EXPECT_TRUE(isOk(parseOpMsg(bytesOf(withChecksum(empty))).error));
}

TEST(WireOpMsg, FrameSizeMustMatchMessageLength) {
  ByteVec longer = kInsertMsg;
  longer.push_back(0);
  EXPECT_TRUE(isError(parseOpMsg(bytesOf(longer)).error, WireStatus::kTrailingBytes, 95));
  const ByteVec shorter(kInsertMsg.begin(), kInsertMsg.end() - 1);
  EXPECT_TRUE(isError(parseOpMsg(bytesOf(shorter)).error, WireStatus::kTruncated, 0));
  EXPECT_TRUE(isError(parseOpMsg(Bytes()).error, WireStatus::kTruncated, 0));
}

TEST(WireOpMsg, ValidateBsonOffSkipsTheWalkButNotTheFraming) {
  ByteVec frame = kInsertMsg;
  frame[25] = 0x42;  // unknown element type inside the body
  EXPECT_TRUE(isError(parseOpMsg(bytesOf(frame)).error, WireStatus::kBadBson, 25));
  EXPECT_TRUE(isOk(parseOpMsg(bytesOf(frame), {.verifyChecksum = true, .validateBson = false}).error));

  frame = kInsertMsg;
  frame[51] = 0x01;  // body terminator
  EXPECT_TRUE(isError(parseOpMsg(bytesOf(frame), {.validateBson = false}).error, WireStatus::kBadBson, 51));
  frame = kInsertMsg;
  frame[94] = 0x01;  // last sequence document terminator
  EXPECT_TRUE(isError(parseOpMsg(bytesOf(frame), {.validateBson = false}).error, WireStatus::kBadBson, 94));
}

struct Mutation {
  const char* name;
  std::size_t at;
  ByteVec bytes;  // written over the frame at `at`
  WireStatus status;
  std::size_t offset;
};

class WireOpMsgMutation : public ::testing::TestWithParam<Mutation> {};

TEST_P(WireOpMsgMutation, ExactStatusAndOffset) {
  const Mutation& m = GetParam();
  ByteVec frame = kInsertMsg;
  ASSERT_LE(m.at + m.bytes.size(), frame.size());
  std::copy(m.bytes.begin(), m.bytes.end(), frame.begin() + static_cast<std::ptrdiff_t>(m.at));
  EXPECT_TRUE(isError(parseOpMsg(bytesOf(frame)).error, m.status, m.offset));
}

// Offsets refer to the annotated kInsertMsg above.
INSTANTIATE_TEST_SUITE_P(
    InsertMsg, WireOpMsgMutation,
    ::testing::Values(
        Mutation{"LengthBelowHeader", 0, {0x0f, 0, 0, 0}, WireStatus::kLengthTooSmall, 0},
        Mutation{"LengthNegative", 0, {0xff, 0xff, 0xff, 0xff}, WireStatus::kLengthTooSmall, 0},
        Mutation{"LengthShortOfFrame", 0, {0x5e, 0, 0, 0}, WireStatus::kTrailingBytes, 94},
        Mutation{"LengthPastFrame", 0, {0x60, 0, 0, 0}, WireStatus::kTruncated, 0},
        Mutation{"OpcodeQuery", 12, {0xd4, 0x07, 0, 0}, WireStatus::kUnknownOpcode, 12},
        Mutation{"OpcodeUnknown", 12, {0x99, 0x99, 0, 0}, WireStatus::kUnknownOpcode, 12},
        Mutation{"FlagBit2", 16, {0x04}, WireStatus::kBadFlags, 16},
        Mutation{"FlagBit15", 17, {0x80}, WireStatus::kBadFlags, 16},
        Mutation{"BodyKind2", 20, {0x02}, WireStatus::kBadSectionKind, 20},
        Mutation{"BodyKind255", 20, {0xff}, WireStatus::kBadSectionKind, 20},
        Mutation{"SequenceKind0", 52, {0x00}, WireStatus::kMultipleBodies, 52},
        Mutation{"SequenceKind7", 52, {0x07}, WireStatus::kBadSectionKind, 52},
        // Read as a sequence, the body's first string length (2) is a too-short document.
        Mutation{"BodyKind1", 20, {0x01}, WireStatus::kBadBson, 33},
        Mutation{"BodyLengthPastSections", 21, {0xc8, 0, 0, 0}, WireStatus::kTruncated, 21},
        Mutation{"BodyLengthNegative", 21, {0, 0, 0, 0x80}, WireStatus::kBadBson, 21},
        Mutation{"BodyLength4", 21, {0x04, 0, 0, 0}, WireStatus::kBadBson, 21},
        // One byte shorter: the "$db" string now runs past the body's end.
        Mutation{"BodyLengthOneShort", 21, {0x1e, 0, 0, 0}, WireStatus::kBadBson, 44},
        Mutation{"BodyTerminator", 51, {0x01}, WireStatus::kBadBson, 51},
        Mutation{"BodyUnknownType", 25, {0x20}, WireStatus::kBadBson, 25},
        Mutation{"BodyEndOfObjectType", 25, {0x00}, WireStatus::kBadBson, 25},
        Mutation{"BodyStringLengthHuge", 33, {0xff, 0, 0, 0}, WireStatus::kBadBson, 33},
        Mutation{"BodyStringLengthZero", 33, {0x00, 0, 0, 0}, WireStatus::kBadBson, 33},
        // Length 3 makes the string end on the next type byte instead of its NUL.
        Mutation{"BodyStringNotTerminated", 33, {0x03, 0, 0, 0}, WireStatus::kBadBson, 39},
        Mutation{"SequenceSizePastEnd", 53, {0x2b, 0, 0, 0}, WireStatus::kTruncated, 53},
        Mutation{"SequenceSizeOneShort", 53, {0x29, 0, 0, 0}, WireStatus::kBadSequence, 81},
        Mutation{"SequenceSize4", 53, {0x04, 0, 0, 0}, WireStatus::kBadSequence, 53},
        Mutation{"SequenceSizeNegative", 53, {0, 0, 0, 0x80}, WireStatus::kBadSequence, 53},
        Mutation{"IdentifierUnterminated", 53, {0x09, 0, 0, 0}, WireStatus::kBadCString, 57},
        Mutation{"Document1LengthOneShort", 67, {0x0d, 0, 0, 0}, WireStatus::kBadBson, 76},
        Mutation{"Document1LengthOneLong", 67, {0x0f, 0, 0, 0}, WireStatus::kBadBson, 81},
        Mutation{"Document1Length3", 67, {0x03, 0, 0, 0}, WireStatus::kBadBson, 67},
        Mutation{"Document2PastSection", 81, {0x0f, 0, 0, 0}, WireStatus::kBadSequence, 81},
        Mutation{"Document2Terminator", 94, {0x01}, WireStatus::kBadBson, 94},
        // A bool is one byte, so the value's second byte (0) is read as a type byte.
        Mutation{"Document1TypeBool", 71, {0x08}, WireStatus::kBadBson, 77},
        Mutation{"Document1BoolValue2", 71, {0x08, '_', 'i', 'd', 0x00, 0x02}, WireStatus::kBadBson, 76}),
    [](const ::testing::TestParamInfo<Mutation>& info) { return std::string(info.param.name); });

TEST(WireOpMsg, TruncationSweepInsert) {
  // Cut right after the body, what is left is a valid body-only message.
  test::truncationSweep(kInsertMsg, [](Bytes b) { return parseOpMsg(b); }, {52});
}

TEST(WireOpMsg, TruncationSweepHello) {
  test::truncationSweep(kHelloMsg, [](Bytes b) { return parseOpMsg(b); });
}

TEST(WireOpMsg, TruncationSweepWithChecksum) {
  test::truncationSweep(withChecksum(kInsertMsg), [](Bytes b) { return parseOpMsg(b); });
}

TEST(WireOpMsg, FirstKey) {
  EXPECT_EQ(firstKey(bytesOf(bson(R"({"find": "c", "filter": {}})"))), "find");
  EXPECT_EQ(firstKey(bytesOf(bson("{}"))), "");
  EXPECT_EQ(firstKey(Bytes()), "");
  ByteVec bad = bson(R"({"find": "c"})");
  bad[4] = 0x42;  // unknown type
  EXPECT_EQ(firstKey(bytesOf(bad)), "");
  bad = bson(R"({"find": "c"})");
  bad[0] += 1;  // length disagrees with the buffer
  EXPECT_EQ(firstKey(bytesOf(bad)), "");
}

}  // namespace
}  // namespace mongogate::wire
