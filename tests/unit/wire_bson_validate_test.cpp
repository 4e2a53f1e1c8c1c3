// validateBsonDocument: every element type accepted, a mutation table with exact offsets,
// nesting depth at and past the limit, truncation, and a differential check against
// libbson's own bson_validate over every single-byte mutation of a document of all types.
#include <gtest/gtest.h>

#include <bson/bson.h>

#include <set>
#include <string>

#include "wire/op_msg.h"
#include "wire_test_support.h"

namespace mongogate::wire {
namespace {

using test::bson;
using test::bytesOf;
using test::ByteVec;
using test::everyType;

// A document with `levels` documents nested below it: {a: {a: ... {}}}.
ByteVec nested(int levels) {
  // Level k (0 = outermost) opens at 7k with its length, type document and key "a", and
  // is 8 bytes shorter than level k-1; the innermost {} sits in the middle, then zeros
  // (every level's terminator).
  const std::size_t total = 7 * static_cast<std::size_t>(levels) + 5 + static_cast<std::size_t>(levels);
  ByteVec doc(total, 0);
  for (int k = 0; k <= levels; ++k) {
    const std::size_t at = 7 * static_cast<std::size_t>(k);
    storeInt32LE(doc.data() + at, static_cast<std::int32_t>(total - 8 * static_cast<std::size_t>(k)));
    if (k < levels) {
      doc[at + 4] = 0x03;
      doc[at + 5] = 'a';
    }
  }
  return doc;
}

bool libbsonAccepts(const ByteVec& doc) {
  bson_t b;
  if (!bson_init_static(&b, doc.data(), doc.size())) return false;
  std::size_t offset = 0;
  return bson_validate(&b, BSON_VALIDATE_NONE, &offset);
}

TEST(WireBsonValidate, AcceptsEveryType) {
  const ByteVec doc = everyType();
  EXPECT_EQ(validateBsonDocument(bytesOf(doc)), -1);
  EXPECT_EQ(validateBsonDocument(bytesOf(bson("{}"))), -1);
  EXPECT_EQ(validateBsonDocument(bytesOf(bson(R"({"a": [[], {}, [[{"b": []}]]]})"))), -1);
}

TEST(WireBsonValidate, RejectsBadFrames) {
  EXPECT_EQ(validateBsonDocument(Bytes()), 0);
  const ByteVec four = {4, 0, 0, 0};
  EXPECT_EQ(validateBsonDocument(bytesOf(four)), 0);
  const ByteVec lengthDisagrees = {6, 0, 0, 0, 0};
  EXPECT_EQ(validateBsonDocument(bytesOf(lengthDisagrees)), 0);
  const ByteVec noTerminator = {5, 0, 0, 0, 1};
  EXPECT_EQ(validateBsonDocument(bytesOf(noTerminator)), 4);
}

struct DocMutation {
  const char* name;
  const char* json;
  std::size_t at;
  ByteVec bytes;
  std::ptrdiff_t offset;  // expected result of validateBsonDocument
};

class WireBsonMutation : public ::testing::TestWithParam<DocMutation> {};

TEST_P(WireBsonMutation, ReportsOffset) {
  const DocMutation& m = GetParam();
  ByteVec doc = bson(m.json);
  ASSERT_EQ(validateBsonDocument(bytesOf(doc)), -1);
  ASSERT_LE(m.at + m.bytes.size(), doc.size());
  std::copy(m.bytes.begin(), m.bytes.end(), doc.begin() + static_cast<std::ptrdiff_t>(m.at));
  EXPECT_EQ(validateBsonDocument(bytesOf(doc)), m.offset);
}

// {"a": {"b": "xy"}}: 0: length 23 | 4: type document | 5: "a\0" | 7: inner length 15 |
//   11: type string | 12: "b\0" | 14: string length 3 | 18: "xy\0" | 21: inner terminator |
//   22: outer terminator.
// {"t": true}: 0: length | 4: type bool | 5: "t\0" | 7: value | 8: terminator (likewise for
//   the one-element documents below: value at 7).
INSTANTIATE_TEST_SUITE_P(
    Nested, WireBsonMutation,
    ::testing::Values(
        DocMutation{"InnerLength4", R"({"a": {"b": "xy"}})", 7, {4, 0, 0, 0}, 7},
        DocMutation{"InnerLengthPastOuter", R"({"a": {"b": "xy"}})", 7, {30, 0, 0, 0}, 7},
        DocMutation{"InnerTerminator", R"({"a": {"b": "xy"}})", 21, {1}, 21},
        DocMutation{"InnerUnknownType", R"({"a": {"b": "xy"}})", 11, {0x14}, 11},
        DocMutation{"InnerStringLength", R"({"a": {"b": "xy"}})", 14, {9, 0, 0, 0}, 14},
        DocMutation{"InnerStringUnterminated", R"({"a": {"b": "xy"}})", 20, {'z'}, 20},
        DocMutation{"OuterTypeArrayStillValid", R"({"a": {"b": "xy"}})", 4, {0x04}, -1},
        DocMutation{"BoolValue", R"({"t": true})", 7, {2}, 7},
        DocMutation{"Int64PastEnd", R"({"n": {"$numberInt": "1"}})", 4, {0x12}, 7},
        DocMutation{"DoubleAsDecimal", R"({"d": 1.5})", 4, {0x13}, 7},
        DocMutation{"BinaryLength", R"({"b": {"$binary": {"base64": "AQID", "subType": "00"}}})", 7,
                    {0x20, 0, 0, 0}, 7}),
    [](const ::testing::TestParamInfo<DocMutation>& info) { return std::string(info.param.name); });

TEST(WireBsonValidate, CodeWithScopeTerminators) {
  bson_t doc = BSON_INITIALIZER;
  bson_t scope = BSON_INITIALIZER;
  BSON_APPEND_INT32(&scope, "y", 2);
  BSON_APPEND_CODE_WITH_SCOPE(&doc, "c", "ab", &scope);
  ByteVec bytes(bson_get_data(&doc), bson_get_data(&doc) + doc.len);
  bson_destroy(&scope);
  bson_destroy(&doc);
  // 0: length | 4: 0x0f | 5: "c\0" | 7: total | 11: code length 3 | 15: "ab\0" |
  // 18: scope length 12 | 22: 0x10 | 23: "y\0" | 25: 2 | 29: scope terminator | 30: end
  ASSERT_EQ(bytes.size(), 31u);
  ASSERT_EQ(validateBsonDocument(bytesOf(bytes)), -1);
  ByteVec bad = bytes;
  bad[17] = 'c';  // code string without its NUL: libbson's iterator does not look
  EXPECT_EQ(validateBsonDocument(bytesOf(bad)), 17);
  bad = bytes;
  bad[29] = 1;  // scope without its terminator
  EXPECT_EQ(validateBsonDocument(bytesOf(bad)), 29);
  bad = bytes;
  bad[22] = 0x77;  // unknown type inside the scope
  EXPECT_EQ(validateBsonDocument(bytesOf(bad)), 22);
}

TEST(WireBsonValidate, DepthLimit) {
  const ByteVec atLimit = nested(kMaxBsonDepth);
  EXPECT_EQ(validateBsonDocument(bytesOf(atLimit)), -1);
  const ByteVec pastLimit = nested(kMaxBsonDepth + 1);
  // Each level adds 7 bytes before its child: length, type, "a\0".
  EXPECT_EQ(validateBsonDocument(bytesOf(pastLimit)), 7 * (kMaxBsonDepth + 1));
  // Far deeper input fails the same way without exhausting the stack.
  const ByteVec deep = nested(100000);
  EXPECT_EQ(validateBsonDocument(bytesOf(deep)), 7 * (kMaxBsonDepth + 1));
}

// Every prefix is rejected as is; re-framed (length patched, last byte made the terminator)
// it is valid exactly when it ends where a top-level element began, else rejected with an
// offset inside it.
TEST(WireBsonValidate, EveryTruncationIsRejected) {
  const ByteVec doc = everyType();
  std::set<std::size_t> elementStarts;
  bson_iter_t iter;
  ASSERT_TRUE(bson_iter_init_from_data(&iter, doc.data(), doc.size()));
  while (bson_iter_next(&iter)) elementStarts.insert(bson_iter_offset(&iter));
  ASSERT_EQ(elementStarts.size(), 22u);

  for (std::size_t len = 0; len < doc.size(); ++len) {
    SCOPED_TRACE(len);
    ByteVec prefix(doc.begin(), doc.begin() + static_cast<std::ptrdiff_t>(len));
    EXPECT_GE(validateBsonDocument(bytesOf(prefix)), 0);
    if (len < 5) continue;
    storeInt32LE(prefix.data(), static_cast<std::int32_t>(len));
    prefix.back() = 0;
    const auto bad = validateBsonDocument(bytesOf(prefix));
    if (elementStarts.count(len - 1) != 0) {
      EXPECT_EQ(bad, -1);
    } else {
      EXPECT_GE(bad, 0);
      EXPECT_LT(bad, static_cast<std::ptrdiff_t>(len));
    }
  }
}

// Whatever this validator accepts, libbson's validator accepts too; where they disagree the
// other way it is one of the gaps this validator closes (code-with-scope string terminator).
TEST(WireBsonValidate, AgreesWithLibbsonOnEverySingleByteMutation) {
  const ByteVec doc = everyType();
  int rejected = 0;
  for (std::size_t i = 0; i < doc.size(); ++i) {
    for (std::uint8_t value : {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x7f, 0x80, 0xff}) {
      ByteVec m = doc;
      m[i] = value;
      const auto ours = validateBsonDocument(bytesOf(m));
      const bool theirs = libbsonAccepts(m);
      if (ours >= 0) ++rejected;
      EXPECT_TRUE(ours < 0 || ours < static_cast<std::ptrdiff_t>(m.size()));
      // libbson also insists on UTF-8 keys, which is not structure: compare ASCII only.
      if (ours < 0 && value < 0x80) {
        EXPECT_TRUE(theirs) << "byte " << i << " = " << int(value);
      }
    }
  }
  EXPECT_GT(rejected, 0);
}

}  // namespace
}  // namespace mongogate::wire
