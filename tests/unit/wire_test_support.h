// tests/unit/wire_test_support.h — shared helpers for the wire_*_test.cpp files:
// a byte writer for building frames field by field, BSON from JSON, assertion helpers
// that print statuses by name, and the truncation sweep every parser goes through.
#pragma once

#include <bson/bson.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "wire/message.h"

namespace mongogate::wire::test {

using ByteVec = std::vector<std::uint8_t>;

inline Bytes bytesOf(const ByteVec& v) { return Bytes(v.data(), v.size()); }

// Appends little-endian fields; patchLength() writes the total size at offset 0.
class FrameWriter {
 public:
  FrameWriter& i32(std::int32_t v) {
    std::uint8_t b[4];
    storeInt32LE(b, v);
    bytes_.insert(bytes_.end(), b, b + 4);
    return *this;
  }
  FrameWriter& u32(std::uint32_t v) { return i32(static_cast<std::int32_t>(v)); }
  FrameWriter& i64(std::int64_t v) {
    std::uint8_t b[8];
    storeInt64LE(b, v);
    bytes_.insert(bytes_.end(), b, b + 8);
    return *this;
  }
  FrameWriter& u8(std::uint8_t v) {
    bytes_.push_back(v);
    return *this;
  }
  FrameWriter& cstr(std::string_view s) {
    bytes_.insert(bytes_.end(), s.begin(), s.end());
    bytes_.push_back(0);
    return *this;
  }
  FrameWriter& raw(const ByteVec& b) {
    bytes_.insert(bytes_.end(), b.begin(), b.end());
    return *this;
  }
  FrameWriter& header(std::int32_t requestId, std::int32_t responseTo, OpCode op) {
    return i32(0).i32(requestId).i32(responseTo).i32(static_cast<std::int32_t>(op));
  }
  std::size_t size() const { return bytes_.size(); }
  // The bytes as written (no length patch), for pieces that are not whole frames.
  const ByteVec& bytes() const { return bytes_; }
  // The whole frame, messageLength set to its size.
  ByteVec done() {
    if (bytes_.size() >= 4) storeInt32LE(bytes_.data(), static_cast<std::int32_t>(bytes_.size()));
    return bytes_;
  }

 private:
  ByteVec bytes_;
};

// A kind-1 section: kind byte, size, identifier, documents.
inline ByteVec sequenceSection(std::string_view identifier, const std::vector<ByteVec>& docs) {
  ByteVec payload;
  payload.insert(payload.end(), identifier.begin(), identifier.end());
  payload.push_back(0);
  for (const auto& d : docs) payload.insert(payload.end(), d.begin(), d.end());
  FrameWriter w;
  w.u8(1).i32(static_cast<std::int32_t>(payload.size() + 4)).raw(payload);
  return w.bytes();
}

// BSON bytes from (relaxed) extended JSON; fails the test on bad JSON.
inline ByteVec bson(std::string_view json) {
  bson_error_t error;
  bson_t* doc = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(json.data()),
                                   static_cast<ssize_t>(json.size()), &error);
  if (doc == nullptr) {
    ADD_FAILURE() << "bad test JSON: " << error.message << " in " << json;
    return {};
  }
  const std::uint8_t* data = bson_get_data(doc);
  ByteVec out(data, data + doc->len);
  bson_destroy(doc);
  return out;
}

// One element of every type libbson writes, including the deprecated ones, with nesting.
inline ByteVec everyType() {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_DOUBLE(&doc, "double", 1.5);
  BSON_APPEND_UTF8(&doc, "string", "text");
  bson_t child;
  BSON_APPEND_DOCUMENT_BEGIN(&doc, "document", &child);
  BSON_APPEND_INT32(&child, "x", 1);
  bson_append_document_end(&doc, &child);
  BSON_APPEND_ARRAY_BEGIN(&doc, "array", &child);
  BSON_APPEND_UTF8(&child, "0", "a");
  BSON_APPEND_INT64(&child, "1", 2);
  bson_append_array_end(&doc, &child);
  const std::uint8_t bin[] = {1, 2, 3};
  BSON_APPEND_BINARY(&doc, "binary", BSON_SUBTYPE_BINARY, bin, 3);
  BSON_APPEND_BINARY(&doc, "oldBinary", BSON_SUBTYPE_BINARY_DEPRECATED, bin, 3);
  BSON_APPEND_UNDEFINED(&doc, "undefined");
  bson_oid_t oid;
  bson_oid_init_from_string(&oid, "0123456789abcdef01234567");
  BSON_APPEND_OID(&doc, "oid", &oid);
  BSON_APPEND_BOOL(&doc, "bool", true);
  BSON_APPEND_DATE_TIME(&doc, "date", 1700000000000);
  BSON_APPEND_NULL(&doc, "null");
  BSON_APPEND_REGEX(&doc, "regex", "^a", "i");
  BSON_APPEND_DBPOINTER(&doc, "dbpointer", "db.c", &oid);
  BSON_APPEND_CODE(&doc, "code", "function() {}");
  BSON_APPEND_SYMBOL(&doc, "symbol", "sym");
  bson_t scope = BSON_INITIALIZER;
  BSON_APPEND_INT32(&scope, "y", 2);
  BSON_APPEND_CODE_WITH_SCOPE(&doc, "codeWithScope", "return y;", &scope);
  bson_destroy(&scope);
  BSON_APPEND_INT32(&doc, "int32", -7);
  BSON_APPEND_TIMESTAMP(&doc, "timestamp", 5, 6);
  BSON_APPEND_INT64(&doc, "int64", 1LL << 40);
  bson_decimal128_t dec;
  bson_decimal128_from_string("1.25", &dec);
  BSON_APPEND_DECIMAL128(&doc, "decimal", &dec);
  BSON_APPEND_MAXKEY(&doc, "max");
  BSON_APPEND_MINKEY(&doc, "min");
  ByteVec out(bson_get_data(&doc), bson_get_data(&doc) + doc.len);
  bson_destroy(&doc);
  return out;
}

inline ::testing::AssertionResult isStatus(WireStatus actual, WireStatus expected) {
  if (actual == expected) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "status is \"" << describe(actual) << "\", expected \""
                                       << describe(expected) << "\"";
}

inline ::testing::AssertionResult isError(const WireError& e, WireStatus status, std::size_t offset) {
  if (e.status == status && e.offset == offset) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got \"" << describe(e.status) << "\" at offset " << e.offset
                                       << ", expected \"" << describe(status) << "\" at offset "
                                       << offset;
}

inline ::testing::AssertionResult isOk(const WireError& e) {
  if (e.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got \"" << describe(e.status) << "\" at offset " << e.offset;
}

// Every proper prefix of `frame`: probeFrame says "need more" below 16 bytes and otherwise
// reports a header whose length exceeds what is buffered; the parser rejects the prefix as
// is (kTruncated at 0) and, with messageLength patched to the prefix length, either
// rejects it with an offset inside it or, only for lengths in `validLengths`, accepts it.
// Each prefix lives in its own exactly-sized buffer so a sanitizer sees any overread.
template <class Parse>
void truncationSweep(const ByteVec& frame, Parse parse, const std::set<std::size_t>& validLengths = {}) {
  for (std::size_t len = 0; len < frame.size(); ++len) {
    SCOPED_TRACE("prefix length " + std::to_string(len));
    ByteVec prefix(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(len));
    const FrameProbe probe = probeFrame(bytesOf(prefix));
    if (len < kHeaderSize) {
      EXPECT_TRUE(isStatus(probe.status, WireStatus::kNeedMore));
      EXPECT_TRUE(isError(parse(bytesOf(prefix)).error, WireStatus::kTruncated, 0));
      continue;
    }
    EXPECT_TRUE(isStatus(probe.status, WireStatus::kOk));
    EXPECT_GT(static_cast<std::size_t>(probe.header.messageLength), len);
    EXPECT_TRUE(isError(parse(bytesOf(prefix)).error, WireStatus::kTruncated, 0));

    storeInt32LE(prefix.data(), static_cast<std::int32_t>(len));
    const auto result = parse(bytesOf(prefix));
    if (validLengths.count(len) != 0) {
      EXPECT_TRUE(isOk(result.error));
    } else {
      EXPECT_FALSE(result.ok());
      EXPECT_LE(result.error.offset, len);
    }
  }
}

}  // namespace mongogate::wire::test
