// BsonWalker (wire/bson_walk.h): every type's size rule checked against libbson's iterator,
// nested documents, keys that run to the end, every truncation, values cut one byte short,
// bad frames, and random bytes (no element ever outside the document). Each case lives in
// an exactly-sized buffer so a sanitizer build sees any overread.
#include <gtest/gtest.h>

#include <bson/bson.h>

#include <random>
#include <set>
#include <cstring>
#include <string>
#include <vector>

#include "wire/bson_walk.h"
#include "wire/op_msg.h"
#include "wire_test_support.h"

namespace mongogate::wire {
namespace {

using test::bson;
using test::bytesOf;
using test::ByteVec;
using test::everyType;

struct Walked {
  std::vector<BsonElement> elements;
  bool malformed = false;
};

Walked walk(const ByteVec& doc) {
  Walked w;
  BsonWalker walker(bytesOf(doc));
  for (BsonElement e; walker.next(e);) w.elements.push_back(e);
  w.malformed = walker.malformed();
  return w;
}

// A document of one element: type, key, value bytes as given.
ByteVec oneElement(std::uint8_t type, std::string_view key, const ByteVec& value) {
  test::FrameWriter w;
  w.i32(0).u8(type).cstr(key).raw(value).u8(0);
  return w.done();
}

TEST(WireBsonWalk, EmptyDocument) {
  const Walked w = walk(bson("{}"));
  EXPECT_TRUE(w.elements.empty());
  EXPECT_FALSE(w.malformed);
}

TEST(WireBsonWalk, BadFramesAreMalformedAtOnce) {
  for (const ByteVec& doc : {ByteVec{}, ByteVec{5, 0, 0, 0}, ByteVec{6, 0, 0, 0, 0},
                             ByteVec{5, 0, 0, 0, 1}, ByteVec{4, 0, 0, 0, 0},
                             ByteVec{0xff, 0xff, 0xff, 0xff, 0}}) {
    const Walked w = walk(doc);
    EXPECT_TRUE(w.elements.empty());
    EXPECT_TRUE(w.malformed) << doc.size() << " bytes";
  }
}

// Every type libbson writes: the walker finds the same elements (key, type, where each
// starts and where its value ends) as libbson's iterator, and the document's end.
TEST(WireBsonWalk, EveryTypeSizedAsLibbsonDoes) {
  const ByteVec doc = everyType();
  const Walked w = walk(doc);
  EXPECT_FALSE(w.malformed);

  bson_iter_t it;
  ASSERT_TRUE(bson_iter_init_from_data(&it, doc.data(), doc.size()));
  std::size_t i = 0;
  std::set<std::uint8_t> types;
  while (bson_iter_next(&it)) {
    ASSERT_LT(i, w.elements.size());
    const BsonElement& e = w.elements[i++];
    SCOPED_TRACE(bson_iter_key(&it));
    EXPECT_EQ(e.key, std::string_view(bson_iter_key(&it)));
    EXPECT_EQ(e.type, static_cast<std::uint8_t>(bson_iter_type(&it)));
    EXPECT_EQ(e.offset, bson_iter_offset(&it));
    EXPECT_EQ(e.end, it.next_off);
    EXPECT_EQ(e.bytes().size(), e.end - e.offset);
    types.insert(e.type);
  }
  EXPECT_EQ(i, w.elements.size());
  EXPECT_EQ(types.size(), 21u);  // 0x01..0x13 but the binary subtypes share one, + min/max
  EXPECT_EQ(w.elements.back().end, doc.size() - 1);
}

TEST(WireBsonWalk, AccessorsAndNestedDocuments) {
  const ByteVec doc =
      bson(R"({"find": "s042_products", "filter": {"_id": 42, "a": [1, {"b": "x"}]}, "$db": "main_db"})");
  const Walked w = walk(doc);
  ASSERT_EQ(w.elements.size(), 3u);
  EXPECT_EQ(w.elements[0].key, "find");
  EXPECT_EQ(w.elements[0].utf8(), "s042_products");
  EXPECT_TRUE(w.elements[0].document().empty());
  EXPECT_FALSE(w.elements[1].utf8());
  EXPECT_EQ(w.elements[2].utf8(), "main_db");

  const Bytes filter = w.elements[1].document();
  EXPECT_EQ(validateBsonDocument(filter), -1);
  BsonWalker inner(filter);
  BsonElement id, a;
  ASSERT_TRUE(inner.next(id));
  ASSERT_TRUE(inner.next(a));
  BsonElement none;
  EXPECT_FALSE(inner.next(none));
  EXPECT_FALSE(inner.malformed());
  EXPECT_EQ(id.key, "_id");
  EXPECT_EQ(id.type, bsontype::kInt32);
  EXPECT_EQ(loadInt32LE(id.value().data()), 42);
  EXPECT_TRUE(a.isArray());

  BsonWalker array(a.document());
  BsonElement zero, one;
  ASSERT_TRUE(array.next(zero));
  ASSERT_TRUE(array.next(one));
  EXPECT_EQ(zero.key, "0");
  EXPECT_EQ(one.key, "1");
  EXPECT_TRUE(one.isDocument());
  BsonElement b;
  ASSERT_TRUE(findElement(one.document(), "b", b));
  EXPECT_EQ(b.utf8(), "x");

  BsonElement found;
  EXPECT_TRUE(findElement(bytesOf(doc), "$db", found));
  EXPECT_EQ(found.utf8(), "main_db");
  EXPECT_FALSE(findElement(bytesOf(doc), "$d", found));
  EXPECT_FALSE(findElement(bytesOf(doc), "_id", found));  // not at the top level
}

// A key that runs into the document's terminator has no NUL of its own: malformed. A key
// whose NUL sits just before the terminator is fine (for a type without a value).
TEST(WireBsonWalk, KeysAtTheEndOfTheBuffer) {
  const ByteVec fits = oneElement(bsontype::kNull, "ab", {});
  Walked w = walk(fits);
  ASSERT_EQ(w.elements.size(), 1u);
  EXPECT_EQ(w.elements[0].key, "ab");
  EXPECT_EQ(w.elements[0].end, fits.size() - 1);
  EXPECT_FALSE(w.malformed);

  const ByteVec runsOn = {8, 0, 0, 0, bsontype::kNull, 'a', 'b', 0};
  w = walk(runsOn);
  EXPECT_TRUE(w.elements.empty());
  EXPECT_TRUE(w.malformed);
  EXPECT_EQ(validateBsonDocument(bytesOf(runsOn)), 4);

  // Long keys, and keys holding bytes the eight-at-a-time NUL search could mistake for a
  // NUL (0x80, 0x01, 0xff): the key is exactly as written, at every length.
  for (std::size_t len = 0; len <= 40; ++len) {
    std::string key;
    for (std::size_t i = 0; i < len; ++i) key.push_back("\x80\x01\xff" "a"[i % 4]);
    const ByteVec doc = oneElement(bsontype::kInt32, key, {7, 0, 0, 0});
    w = walk(doc);
    ASSERT_EQ(w.elements.size(), 1u) << len;
    EXPECT_EQ(w.elements[0].key, key);
    EXPECT_EQ(loadInt32LE(w.elements[0].value().data()), 7);
    // Without the key's NUL nor the value, the key runs into the terminator.
    ByteVec cut(doc.begin(), doc.begin() + static_cast<std::ptrdiff_t>(5 + len));
    cut.push_back(0);
    storeInt32LE(cut.data(), static_cast<std::int32_t>(cut.size()));
    EXPECT_TRUE(walk(cut).malformed) << len;
  }
}

// Each type's value one byte short (and the document re-framed around it) is malformed:
// the walker never sizes an element past its document.
TEST(WireBsonWalk, EveryValueCutShort) {
  const ByteVec doc = everyType();
  bson_iter_t it;
  ASSERT_TRUE(bson_iter_init_from_data(&it, doc.data(), doc.size()));
  int checked = 0;
  while (bson_iter_next(&it)) {
    const std::size_t start = bson_iter_offset(&it);
    const std::size_t end = it.next_off;
    const std::size_t keyEnd = start + 1 + std::strlen(bson_iter_key(&it)) + 1;
    if (end == keyEnd) continue;  // no value: null, undefined, min/max key
    SCOPED_TRACE(bson_iter_key(&it));
    ByteVec one(doc.begin() + static_cast<std::ptrdiff_t>(start),
                doc.begin() + static_cast<std::ptrdiff_t>(end) - 1);
    test::FrameWriter w;
    w.i32(0).raw(one).u8(0);
    const ByteVec cut = w.done();
    EXPECT_TRUE(walk(cut).malformed);
    EXPECT_GE(validateBsonDocument(bytesOf(cut)), 0);
    ++checked;
  }
  EXPECT_EQ(checked, 18);
}

TEST(WireBsonWalk, SizeRulesPerType) {
  struct Case {
    const char* name;
    std::uint8_t type;
    ByteVec value;
    bool ok;
  };
  const Case cases[] = {
      {"StringLengthZero", bsontype::kUtf8, {0, 0, 0, 0}, false},
      {"StringNoNul", bsontype::kUtf8, {2, 0, 0, 0, 'a', 'b'}, false},
      {"StringOk", bsontype::kUtf8, {2, 0, 0, 0, 'a', 0}, true},
      {"StringNegative", bsontype::kUtf8, {0xff, 0xff, 0xff, 0xff, 'a', 0}, false},
      {"DocumentLength4", bsontype::kDocument, {4, 0, 0, 0}, false},
      {"DocumentNoTerminator", bsontype::kDocument, {5, 0, 0, 0, 1}, false},
      {"DocumentOk", bsontype::kDocument, {5, 0, 0, 0, 0}, true},
      {"BinaryOk", bsontype::kBinary, {1, 0, 0, 0, 0x00, 9}, true},
      {"BinaryTooLong", bsontype::kBinary, {2, 0, 0, 0, 0x00, 9}, false},
      {"BinaryNegative", bsontype::kBinary, {0xff, 0xff, 0xff, 0xff, 0x00, 9}, false},
      {"OldBinaryOk", bsontype::kBinary, {5, 0, 0, 0, 0x02, 1, 0, 0, 0, 9}, true},
      {"OldBinaryInnerLength", bsontype::kBinary, {5, 0, 0, 0, 0x02, 2, 0, 0, 0, 9}, false},
      {"OldBinaryTooShort", bsontype::kBinary, {3, 0, 0, 0, 0x02, 0, 0, 0}, false},
      {"BoolTwo", bsontype::kBool, {2}, false},
      {"BoolOne", bsontype::kBool, {1}, true},
      {"Int32Short", bsontype::kInt32, {1, 2, 3}, false},
      {"Decimal128", bsontype::kDecimal128, ByteVec(16, 1), true},
      {"Decimal128Short", bsontype::kDecimal128, ByteVec(15, 1), false},
      {"RegexOk", bsontype::kRegex, {'a', 0, 'i', 0}, true},
      {"RegexNoOptionsNul", bsontype::kRegex, {'a', 0, 'i'}, false},
      {"DbPointerOk", bsontype::kDbPointer, {2, 0, 0, 0, 'c', 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, true},
      {"DbPointerShortOid", bsontype::kDbPointer, {2, 0, 0, 0, 'c', 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, false},
      // code-with-scope: total | string | scope, total exactly their sum.
      {"CodeWithScopeOk", bsontype::kCodeWithScope, {15, 0, 0, 0, 2, 0, 0, 0, 'x', 0, 5, 0, 0, 0, 0}, true},
      {"CodeWithScopeTotalLarger", bsontype::kCodeWithScope, {16, 0, 0, 0, 2, 0, 0, 0, 'x', 0, 5, 0, 0, 0, 0, 0}, false},
      {"CodeWithScopeScopeLength", bsontype::kCodeWithScope, {15, 0, 0, 0, 2, 0, 0, 0, 'x', 0, 6, 0, 0, 0, 0}, false},
      {"CodeWithScopeTotalSmall", bsontype::kCodeWithScope, {13, 0, 0, 0, 1, 0, 0, 0, 0, 5, 0, 0, 0}, false},
      {"UnknownType", 0x14, {}, false},
      {"TypeZeroInside", 0x00, {}, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const ByteVec doc = oneElement(c.type, "k", c.value);
    const Walked w = walk(doc);
    EXPECT_EQ(w.malformed, !c.ok);
    EXPECT_EQ(w.elements.size(), c.ok ? 1u : 0u);
    EXPECT_EQ(validateBsonDocument(bytesOf(doc)) < 0, c.ok);
    if (c.ok) {
      EXPECT_EQ(w.elements[0].value().size(), c.value.size());
    }
  }
}

// Every prefix of a document, re-framed: the walker returns exactly the whole elements
// before the cut, and is malformed unless the cut falls between elements.
TEST(WireBsonWalk, EveryTruncation) {
  const ByteVec doc = everyType();
  const Walked whole = walk(doc);
  for (std::size_t len = 5; len < doc.size(); ++len) {
    SCOPED_TRACE(len);
    ByteVec prefix(doc.begin(), doc.begin() + static_cast<std::ptrdiff_t>(len));
    storeInt32LE(prefix.data(), static_cast<std::int32_t>(len));
    prefix.back() = 0;
    const Walked w = walk(prefix);
    std::size_t fit = 0;
    while (fit < whole.elements.size() && whole.elements[fit].end <= len - 1) ++fit;
    const bool onBoundary = (fit == 0 ? 4 : whole.elements[fit - 1].end) == len - 1;
    EXPECT_EQ(w.malformed, !onBoundary);
    ASSERT_EQ(w.elements.size(), fit);
    for (std::size_t i = 0; i < fit; ++i) EXPECT_EQ(w.elements[i].end, whole.elements[i].end);
  }
}

// Random bytes inside a valid frame: whatever the walker returns lies inside the
// document, in order, and the walk agrees with the validator on the top level.
TEST(WireBsonWalk, RandomBytesStayInBounds) {
  std::mt19937 rng(20240611);
  const ByteVec base = everyType();
  int malformed = 0;
  for (int round = 0; round < 20000; ++round) {
    ByteVec doc;
    if (round % 2 == 0) {
      doc.resize(5 + rng() % 60);
      for (auto& b : doc) b = static_cast<std::uint8_t>(rng() % 24 < 20 ? rng() % 20 : rng());
    } else {
      doc = base;
      for (int k = 0; k < 3; ++k) doc[rng() % doc.size()] = static_cast<std::uint8_t>(rng());
    }
    storeInt32LE(doc.data(), static_cast<std::int32_t>(doc.size()));
    doc.back() = 0;
    const Walked w = walk(doc);
    std::size_t at = 4;
    for (const BsonElement& e : w.elements) {
      ASSERT_EQ(e.offset, at);
      ASSERT_LT(e.offset, e.valueOffset);
      ASSERT_LE(e.valueOffset, e.end);
      ASSERT_LE(e.end, doc.size() - 1);
      at = e.end;
    }
    if (w.malformed) ++malformed;
    // A document the validator accepts walks to its end.
    if (validateBsonDocument(bytesOf(doc)) < 0) {
      EXPECT_FALSE(w.malformed);
      EXPECT_EQ(at, doc.size() - 1);
    }
  }
  EXPECT_GT(malformed, 0);
}

}  // namespace
}  // namespace mongogate::wire
