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
