// wire/bson_validate.cpp — structural BSON validation and first-key lookup (see op_msg.h),
// and FrameReader::readDocument (see reader.h).
//
// Promise: safe on arbitrary bytes, no heap allocation, bounded stack (kMaxBsonDepth).
// Every element is checked with the size rules of wire/bson_walk.h (type known, key
// terminated, value inside its document, strings terminated, bool 0 or 1, embedded
// documents framed and terminated, code-with-scope's parts filling it exactly), and every
// embedded document, array and code-with-scope scope is walked in turn, at most
// kMaxBsonDepth deep. Problem offsets name the field at fault: the type byte of an unknown
// type or of an element whose key runs to the end, a length that does not fit, the byte
// that should be a terminator.
// Reference: BSON specification (https://bsonspec.org/spec.html).
#include <climits>

#include "wire/bson_walk.h"
#include "wire/op_msg.h"
#include "wire/reader.h"

namespace mongogate::wire {

std::ptrdiff_t validateBsonDocument(Bytes document) {
  if (document.size() < 5 || document.size() > static_cast<std::size_t>(INT32_MAX)) return 0;
  if (static_cast<std::size_t>(loadUInt32LE(document.data())) != document.size()) return 0;
  if (document.back() != 0) return static_cast<std::ptrdiff_t>(document.size()) - 1;

  // One entry per open document: where its next element starts and where its terminator is.
  struct Level {
    std::uint32_t pos;
    std::uint32_t end;
  };
  Level stack[kMaxBsonDepth + 1];
  int depth = 0;
  stack[0] = {4, static_cast<std::uint32_t>(document.size() - 1)};
  const std::uint8_t* data = document.data();

  while (depth >= 0) {
    Level& level = stack[depth];
    if (level.pos == level.end) {
      --depth;
      continue;
    }
    const std::size_t typeAt = level.pos;
    std::size_t value = 0;
    if (bson_rules::checkCString(data, typeAt + 1, level.end, value) >= 0) {
      return static_cast<std::ptrdiff_t>(typeAt);
    }
    std::size_t next = 0;
    std::size_t child = 0;
    if (auto bad = bson_rules::checkValue(data, typeAt, data[typeAt], value, level.end, next, child);
        bad >= 0) {
      return bad;
    }
    level.pos = static_cast<std::uint32_t>(next);
    if (child == 0) continue;
    if (depth == kMaxBsonDepth) return static_cast<std::ptrdiff_t>(child);
    // The child's frame (length, terminator) was checked with its element.
    stack[++depth] = {static_cast<std::uint32_t>(child + 4),
                      static_cast<std::uint32_t>(child + loadUInt32LE(data + child) - 1)};
  }
  return -1;
}

std::string_view firstKey(Bytes document) {
  BsonWalker walker(document);
  BsonElement first;
  if (!walker.next(first)) return {};
  return first.key;
}

namespace detail {

WireError FrameReader::readDocument(Bytes& out, bool validate, WireStatus overrun) {
  const std::size_t start = pos_;
  if (remaining() < 4) return {overrun, start};
  const std::int32_t len = loadInt32LE(frame_.data() + start);
  if (len < 5) return {WireStatus::kBadBson, start};
  if (static_cast<std::size_t>(len) > remaining()) return {overrun, start};
  const Bytes doc = frame_.subspan(start, static_cast<std::size_t>(len));
  if (validate) {
    if (auto bad = validateBsonDocument(doc); bad >= 0) {
      return {WireStatus::kBadBson, start + static_cast<std::size_t>(bad)};
    }
  } else if (doc.back() != 0) {
    return {WireStatus::kBadBson, start + doc.size() - 1};
  }
  out = doc;
  pos_ += doc.size();
  return {};
}

}  // namespace detail
}  // namespace mongogate::wire
