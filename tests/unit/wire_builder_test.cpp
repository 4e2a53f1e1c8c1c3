// Builders and the splice: every builder's output goes back through its parser; error
// documents are checked field by field (order, type, value); the splice replaces only
// the body, keeps the sequences byte for byte, drops the checksum and clears its bit.
#include <gtest/gtest.h>

#include <bson/bson.h>

#include <string>
#include <vector>

#include "wire/builder.h"
#include "wire/crc32c.h"
#include "wire/legacy.h"
#include "wire/op_msg.h"
#include "wire_test_support.h"

namespace mongogate::wire {
namespace {

using test::bson;
using test::bytesOf;
using test::ByteVec;
using test::FrameWriter;
using test::isOk;
using test::sequenceSection;

// One element as seen through libbson: key, type and a printable value.
struct Field {
  std::string key;
  bson_type_t type;
  std::string value;
  bool operator==(const Field&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Field& f) {
  return os << f.key << ":" << int(f.type) << "=" << f.value;
}

std::vector<Field> fieldsOf(Bytes doc) {
  std::vector<Field> out;
  bson_iter_t it;
  if (!bson_iter_init_from_data(&it, doc.data(), doc.size())) return out;
  while (bson_iter_next(&it)) {
    Field f{bson_iter_key(&it), bson_iter_type(&it), ""};
    switch (f.type) {
      case BSON_TYPE_DOUBLE: f.value = std::to_string(bson_iter_double(&it)); break;
      case BSON_TYPE_INT32: f.value = std::to_string(bson_iter_int32(&it)); break;
      case BSON_TYPE_UTF8: {
        std::uint32_t len = 0;
        const char* s = bson_iter_utf8(&it, &len);
        f.value.assign(s, len);
        break;
      }
      case BSON_TYPE_ARRAY: {
        std::uint32_t len = 0;
        const std::uint8_t* data = nullptr;
        bson_iter_array(&it, &len, &data);
        for (const Field& e : fieldsOf(Bytes(data, len))) f.value += e.key + "=" + e.value + ";";
        break;
      }
      default: break;
    }
    out.push_back(f);
  }
  return out;
}

TEST(WireBuilder, OpMsgRoundTripClearsChecksumBit) {
  const ByteVec body = bson(R"({"ping": 1, "$db": "admin"})");
  ByteVec out = {0xaa, 0xbb};  // builders append
  appendOpMsg(out, 12, 34, msgflags::kChecksumPresent | msgflags::kMoreToCome, bytesOf(body));
  ASSERT_EQ(out.size(), 2u + 21u + body.size());
  EXPECT_EQ(out[0], 0xaa);
  const Bytes frame = bytesOf(out).subspan(2);
  const auto r = parseOpMsg(frame);
  ASSERT_TRUE(isOk(r.error));
  EXPECT_EQ(r.value.header.messageLength, static_cast<std::int32_t>(frame.size()));
  EXPECT_EQ(r.value.header.requestId, 12);
  EXPECT_EQ(r.value.header.responseTo, 34);
  EXPECT_EQ(r.value.flags, msgflags::kMoreToCome);
  EXPECT_EQ(ByteVec(r.value.body.begin(), r.value.body.end()), body);
}

TEST(WireBuilder, OpMsgWithSequencesRoundTrip) {
  const ByteVec body = bson(R"({"insert": "c", "$db": "d"})");
  const ByteVec a = bson(R"({"_id": 1})");
  const ByteVec b = bson(R"({"_id": 2})");
  ByteVec docs = a;
  docs.insert(docs.end(), b.begin(), b.end());
  const SequenceOut sequences[] = {{"documents", bytesOf(docs)}, {"empty", {}}};
  ByteVec out;
  appendOpMsgWithSequences(out, 5, 0, msgflags::kChecksumPresent, bytesOf(body), sequences);
  const auto r = parseOpMsg(bytesOf(out));
  ASSERT_TRUE(isOk(r.error));
  EXPECT_EQ(r.value.flags, 0u);
  EXPECT_EQ(ByteVec(r.value.body.begin(), r.value.body.end()), body);
  ASSERT_EQ(r.value.sequenceCount, 2u);
  EXPECT_EQ(r.value.sequences[0].identifier, "documents");
  EXPECT_EQ(ByteVec(r.value.sequences[0].documents.begin(), r.value.sequences[0].documents.end()), docs);
  EXPECT_EQ(r.value.sequences[1].identifier, "empty");
  EXPECT_TRUE(r.value.sequences[1].documents.empty());
}

TEST(WireBuilder, OpReplyCountsItsDocuments) {
  const ByteVec a = bson(R"({"a": 1})");
  const ByteVec b = bson(R"({"b": 2})");
  const ByteVec c = bson(R"({"c": 3})");
  const Bytes docs[] = {bytesOf(a), bytesOf(b), bytesOf(c)};
  ByteVec out;
  appendOpReply(out, 1, 2, replyflags::kAwaitCapable, 99, 4, docs);
  const auto r = parseOpReply(bytesOf(out));
  ASSERT_TRUE(isOk(r.error));
  EXPECT_EQ(r.value.numberReturned, 3);
  EXPECT_EQ(r.value.cursorId, 99);
  EXPECT_EQ(r.value.startingFrom, 4);
  EXPECT_EQ(r.value.responseFlags, replyflags::kAwaitCapable);
  EXPECT_EQ(r.value.documents.size(), a.size() + b.size() + c.size());
}

TEST(WireBuilder, ErrorDocumentFieldsInOrder) {
  ByteVec doc;
  appendErrorDocument(doc, {.code = 13, .codeName = "Unauthorized", .errmsg = "not allowed on store_a.orders"});
  EXPECT_EQ(validateBsonDocument(bytesOf(doc)), -1);
  const std::vector<Field> expected = {
      {"ok", BSON_TYPE_DOUBLE, "0.000000"},
      {"errmsg", BSON_TYPE_UTF8, "not allowed on store_a.orders"},
      {"code", BSON_TYPE_INT32, "13"},
      {"codeName", BSON_TYPE_UTF8, "Unauthorized"},
  };
  EXPECT_EQ(fieldsOf(bytesOf(doc)), expected);
}

TEST(WireBuilder, ErrorDocumentWithLabels) {
  const std::string_view labels[] = {"RetryableWriteError", "SystemOverloadedError"};
  ByteVec doc;
  appendErrorDocument(doc, {.code = 6, .codeName = "HostUnreachable", .errmsg = "upstream main is down", .labels = labels});
  const std::vector<Field> expected = {
      {"ok", BSON_TYPE_DOUBLE, "0.000000"},
      {"errmsg", BSON_TYPE_UTF8, "upstream main is down"},
      {"code", BSON_TYPE_INT32, "6"},
      {"codeName", BSON_TYPE_UTF8, "HostUnreachable"},
      {"errorLabels", BSON_TYPE_ARRAY, "0=RetryableWriteError;1=SystemOverloadedError;"},
  };
  EXPECT_EQ(fieldsOf(bytesOf(doc)), expected);
}

TEST(WireBuilder, ErrorDocumentEmptyStringsStayStrings) {
  ByteVec doc;
  appendErrorDocument(doc, {.code = 0, .codeName = {}, .errmsg = {}});
  const std::vector<Field> expected = {
      {"ok", BSON_TYPE_DOUBLE, "0.000000"},
      {"errmsg", BSON_TYPE_UTF8, ""},
      {"code", BSON_TYPE_INT32, "0"},
      {"codeName", BSON_TYPE_UTF8, ""},
  };
  EXPECT_EQ(fieldsOf(bytesOf(doc)), expected);
}

TEST(WireBuilder, ErrorDocumentLongMessage) {
  const std::string longMessage(5000, 'e');  // past bson_t's inline buffer
  ByteVec doc;
  appendErrorDocument(doc, {.code = 2, .codeName = "BadValue", .errmsg = longMessage});
  ASSERT_EQ(validateBsonDocument(bytesOf(doc)), -1);
  EXPECT_EQ(fieldsOf(bytesOf(doc))[1].value, longMessage);
}

TEST(WireBuilder, OpMsgError) {
  const std::string_view labels[] = {"TransientTransactionError"};
  ByteVec out;
  appendOpMsgError(out, 50, 49, {.code = 251, .codeName = "NoSuchTransaction", .errmsg = "gone", .labels = labels});
  const auto r = parseOpMsg(bytesOf(out));
  ASSERT_TRUE(isOk(r.error));
  EXPECT_EQ(r.value.header.requestId, 50);
  EXPECT_EQ(r.value.header.responseTo, 49);
  EXPECT_EQ(r.value.flags, 0u);
  ByteVec expectedBody;
  appendErrorDocument(expectedBody, {.code = 251, .codeName = "NoSuchTransaction", .errmsg = "gone", .labels = labels});
  EXPECT_EQ(ByteVec(r.value.body.begin(), r.value.body.end()), expectedBody);
}

TEST(WireBuilder, OpReplyError) {
  ByteVec out;
  appendOpReplyError(out, 8, 7, {.code = 18, .codeName = "AuthenticationFailed", .errmsg = "no SASL here"});
  const auto r = parseOpReply(bytesOf(out));
  ASSERT_TRUE(isOk(r.error));
  EXPECT_EQ(r.value.header.requestId, 8);
  EXPECT_EQ(r.value.header.responseTo, 7);
  EXPECT_EQ(r.value.responseFlags, replyflags::kQueryFailure);
  EXPECT_EQ(r.value.cursorId, 0);
  EXPECT_EQ(r.value.startingFrom, 0);
  EXPECT_EQ(r.value.numberReturned, 1);
  const std::vector<Field> expected = {
      {"$err", BSON_TYPE_UTF8, "no SASL here"},
      {"code", BSON_TYPE_INT32, "18"},
      {"codeName", BSON_TYPE_UTF8, "AuthenticationFailed"},
      {"ok", BSON_TYPE_DOUBLE, "0.000000"},
  };
  EXPECT_EQ(fieldsOf(r.value.documents), expected);
}

ByteVec withChecksum(ByteVec frame) {
  storeInt32LE(frame.data() + 16, static_cast<std::int32_t>(loadUInt32LE(frame.data() + 16) | msgflags::kChecksumPresent));
  storeInt32LE(frame.data(), static_cast<std::int32_t>(frame.size() + 4));
  const std::uint32_t crc = crc32c(bytesOf(frame));
  frame.resize(frame.size() + 4);
  storeInt32LE(frame.data() + frame.size() - 4, static_cast<std::int32_t>(crc));
  return frame;
}

struct SpliceCase {
  const char* name;
  int bodyPosition;  // how many sequences precede the body
  bool checksum;
};

class WireSplice : public ::testing::TestWithParam<SpliceCase> {};

// An OP_MSG (requestId 70) with two document sequences and `body` at the case's position,
// with a checksum when the case asks for one.
ByteVec frameWithTwoSequences(const SpliceCase& c, const ByteVec& body, std::int32_t responseTo, std::uint32_t flags) {
  const ByteVec seqA = sequenceSection("documents", {bson(R"({"_id": 1})"), bson(R"({"_id": 2})")});
  const ByteVec seqB = sequenceSection("updates", {});
  FrameWriter w;
  w.header(70, responseTo, OpCode::kMsg).u32(flags);
  const ByteVec* seqs[] = {&seqA, &seqB};
  for (int i = 0; i < 2; ++i) {
    if (i == c.bodyPosition) w.u8(0).raw(body);
    w.raw(*seqs[i]);
  }
  if (c.bodyPosition == 2) w.u8(0).raw(body);
  ByteVec original = w.done();
  return c.checksum ? withChecksum(original) : original;
}

TEST_P(WireSplice, ReplacesOnlyTheBody) {
  const SpliceCase& c = GetParam();
  const ByteVec body = bson(R"({"insert": "orders", "$db": "main_db"})");
  const ByteVec newBody = bson(R"({"insert": "s1_orders", "$db": "pos_db_1", "ordered": true})");
  const ByteVec original =
      frameWithTwoSequences(c, body, 0, msgflags::kMoreToCome | msgflags::kExhaustAllowed);

  const auto parsed = parseOpMsg(bytesOf(original));
  ASSERT_TRUE(isOk(parsed.error));
  std::array<std::uint8_t, 20> head{};
  const GatherList list = spliceOpMsgBody(parsed.value, bytesOf(newBody), 71, 0, head);
  const std::size_t expectedSize = original.size() - (c.checksum ? 4 : 0) - body.size() + newBody.size();
  EXPECT_EQ(list.totalSize(), expectedSize);
  EXPECT_LE(list.count, GatherList::kMaxParts);
  // The sequences are borrowed from the original frame, not copied.
  bool borrowsOriginal = false;
  for (const Bytes& part : list.view()) {
    if (part.data() >= original.data() && part.data() < original.data() + original.size()) borrowsOriginal = true;
  }
  EXPECT_TRUE(borrowsOriginal);

  ByteVec spliced = {0xee};
  flatten(list, spliced);
  ASSERT_EQ(spliced.size(), 1 + expectedSize);
  const Bytes frame = bytesOf(spliced).subspan(1);
  const auto r = parseOpMsg(frame);
  ASSERT_TRUE(isOk(r.error));
  EXPECT_EQ(r.value.header.messageLength, static_cast<std::int32_t>(expectedSize));
  EXPECT_EQ(r.value.header.requestId, 71);
  EXPECT_EQ(r.value.header.responseTo, 0);
  EXPECT_EQ(r.value.flags, msgflags::kMoreToCome | msgflags::kExhaustAllowed);
  EXPECT_FALSE(r.value.checksumPresent());
  EXPECT_EQ(ByteVec(r.value.body.begin(), r.value.body.end()), newBody);
  ASSERT_EQ(r.value.sequenceCount, 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    const DocumentSequence& before = parsed.value.sequences[i];
    const DocumentSequence& after = r.value.sequences[i];
    EXPECT_EQ(after.identifier, before.identifier);
    EXPECT_EQ(ByteVec(after.section.begin(), after.section.end()),
              ByteVec(before.section.begin(), before.section.end()));
  }
}

// The body given as edits of the old one: the result equals splicing in the edited body
// built by applyEdits, and the unchanged stretches are the original frame's own bytes.
TEST_P(WireSplice, EditsEqualTheEditedBodyAndBorrowTheRest) {
  const SpliceCase& c = GetParam();
  const ByteVec body = bson(R"({"cursor": {"id": 0, "ns": "pos_db_1.s1_orders"}, "ok": 1.0})");
  const ByteVec original = frameWithTwoSequences(c, body, 9, 0);
  const auto parsed = parseOpMsg(bytesOf(original));
  ASSERT_TRUE(isOk(parsed.error));

  // Three edits: a new document length, a value made shorter, a tail byte made longer.
  const std::string_view text(reinterpret_cast<const char*>(body.data()), body.size());
  const std::size_t nsAt = text.find("pos_db_1");
  ASSERT_NE(nsAt, std::string_view::npos);
  const ByteVec length = {0x7f, 0, 0, 0};
  const ByteVec shorter = {'m', 'a', 'i', 'n'};
  const ByteVec longer = {0xaa, 0xbb, 0xcc};
  const ByteEdit edits[] = {
      {0, 4, bytesOf(length)},
      {static_cast<std::uint32_t>(nsAt), static_cast<std::uint32_t>(nsAt + 8), bytesOf(shorter)},
      {static_cast<std::uint32_t>(body.size() - 1), static_cast<std::uint32_t>(body.size()), bytesOf(longer)},
  };
  ByteVec editedBody = {0x55};  // applyEdits replaces what was there
  applyEdits(bytesOf(body), edits, editedBody);
  ByteVec expectedBody(body.begin(), body.end());
  expectedBody.erase(expectedBody.end() - 1);
  expectedBody.insert(expectedBody.end(), longer.begin(), longer.end());
  expectedBody.erase(expectedBody.begin() + static_cast<std::ptrdiff_t>(nsAt),
                     expectedBody.begin() + static_cast<std::ptrdiff_t>(nsAt + 8));
  expectedBody.insert(expectedBody.begin() + static_cast<std::ptrdiff_t>(nsAt), shorter.begin(), shorter.end());
  std::copy(length.begin(), length.end(), expectedBody.begin());
  ASSERT_EQ(editedBody, expectedBody);

  std::array<std::uint8_t, 20> head{}, head2{};
  const GatherList byEdits = spliceOpMsgBodyEdits(parsed.value, edits, 3, 70, head);
  EXPECT_LE(byEdits.count, GatherList::kMaxParts);
  ByteVec fromEdits, fromBody;
  flatten(byEdits, fromEdits);
  flatten(spliceOpMsgBody(parsed.value, bytesOf(editedBody), 3, 70, head2), fromBody);
  EXPECT_EQ(fromEdits, fromBody);
  const auto r = parseOpMsg(bytesOf(fromEdits));
  ASSERT_EQ(r.value.header.messageLength, static_cast<std::int32_t>(fromEdits.size()));
  EXPECT_EQ(r.value.header.requestId, 3);
  EXPECT_EQ(r.value.header.responseTo, 70);
  EXPECT_FALSE(r.value.checksumPresent());

  // Everything but the head and the edits' own bytes is borrowed from the frame.
  std::size_t borrowed = 0;
  for (const Bytes& part : byEdits.view()) {
    if (part.data() >= original.data() && part.data() < original.data() + original.size()) borrowed += part.size();
  }
  EXPECT_EQ(borrowed, byEdits.totalSize() - head.size() - length.size() - shorter.size() - longer.size());
}

TEST(WireBuilder, GatherListPushSkipsEmptyAndJoinsAdjacentParts) {
  const ByteVec bytes = {1, 2, 3, 4, 5, 6};
  const ByteVec other = {9};
  const Bytes all = bytesOf(bytes);
  GatherList list;
  list.push(all.subspan(0, 2));
  list.push(all.subspan(2, 0));
  list.push(all.subspan(2, 2));  // starts where the first ends: joined
  list.push(bytesOf(other));
  list.push(all.subspan(5, 1));  // not adjacent to `other`
  ASSERT_EQ(list.count, 3u);
  EXPECT_EQ(list.parts[0].data(), bytes.data());
  EXPECT_EQ(list.parts[0].size(), 4u);
  ByteVec out;
  flatten(list, out);
  EXPECT_EQ(out, (ByteVec{1, 2, 3, 4, 9, 6}));
}

INSTANTIATE_TEST_SUITE_P(Positions, WireSplice,
                         ::testing::Values(SpliceCase{"BodyFirst", 0, false}, SpliceCase{"BodyMiddle", 1, false},
                                           SpliceCase{"BodyLast", 2, false}, SpliceCase{"BodyFirstChecksum", 0, true},
                                           SpliceCase{"BodyMiddleChecksum", 1, true},
                                           SpliceCase{"BodyLastChecksum", 2, true}),
                         [](const ::testing::TestParamInfo<SpliceCase>& info) { return std::string(info.param.name); });

TEST(WireBuilder, SpliceWithTheSameBodyReproducesTheFrame) {
  ByteVec original = FrameWriter()
                         .header(5, 0, OpCode::kMsg)
                         .u32(0)
                         .u8(0)
                         .raw(bson(R"({"find": "c", "$db": "d"})"))
                         .raw(sequenceSection("x", {bson("{}")}))
                         .done();
  const auto parsed = parseOpMsg(bytesOf(original));
  ASSERT_TRUE(isOk(parsed.error));
  std::array<std::uint8_t, 20> head{};
  ByteVec out;
  flatten(spliceOpMsgBody(parsed.value, parsed.value.body, 5, 0, head), out);
  EXPECT_EQ(out, original);
}

TEST(WireBuilder, GatherListTotalAndFlatten) {
  const ByteVec a = {1, 2, 3}, b = {4}, c = {5, 6};
  GatherList list;
  list.parts[0] = bytesOf(a);
  list.parts[1] = bytesOf(b);
  list.parts[2] = bytesOf(c);
  list.count = 2;  // only counted parts belong to the message
  EXPECT_EQ(list.totalSize(), 4u);
  ByteVec out = {0};
  flatten(list, out);
  EXPECT_EQ(out, (ByteVec{0, 1, 2, 3, 4}));
}

}  // namespace
}  // namespace mongogate::wire
