// wire/bson_validate.cpp — structural BSON validation and first-key lookup (see op_msg.h),
// and FrameReader::readDocument (see reader.h).
//
// Promise: safe on arbitrary bytes, no heap allocation, bounded stack (kMaxBsonDepth).
// The walk uses libbson's iterator for each element and adds what the iterator leaves to
// its caller: the length and terminator of every embedded document, array and
// code-with-scope scope, the terminator of the code-with-scope string, and a depth limit.
// Reference: BSON specification (https://bsonspec.org/spec.html).
#include <bson/bson.h>

#include <climits>

#include "wire/op_msg.h"
#include "wire/reader.h"

namespace mongogate::wire {
namespace {

bool isElementType(std::uint8_t t) { return (t >= 0x01 && t <= 0x13) || t == 0x7f || t == 0xff; }

// Checks the frame of an embedded document at `data` (length prefix and terminator);
// returns the offset of the problem relative to `data`, or -1.
std::ptrdiff_t embeddedDocumentProblem(const std::uint8_t* data, std::uint32_t len) {
  if (len < 5) return 0;
  if (data[len - 1] != 0) return static_cast<std::ptrdiff_t>(len) - 1;
  return -1;
}

struct Level {
  bson_iter_t iter;
  std::size_t base;  // offset of this (sub)document in the top-level document
};

}  // namespace

std::ptrdiff_t validateBsonDocument(Bytes document) {
  if (document.size() < 5 || document.size() > static_cast<std::size_t>(INT32_MAX)) return 0;
  if (static_cast<std::size_t>(loadUInt32LE(document.data())) != document.size()) return 0;
  if (document.back() != 0) return static_cast<std::ptrdiff_t>(document.size()) - 1;

  // One iterator per open document; bson_iter_t is 128-byte aligned, so this is ~26 KiB
  // of stack, chosen over recursion so the bound is explicit.
  Level stack[kMaxBsonDepth + 1];
  int depth = 0;
  if (!bson_iter_init_from_data(&stack[0].iter, document.data(), document.size())) return 0;
  stack[0].base = 0;

  while (depth >= 0) {
    Level& level = stack[depth];
    if (!bson_iter_next(&level.iter)) {
      // bson_iter_next is false both at the end of the document and on corrupt bytes;
      // only the latter records an error offset (always > 0: it lies past the key).
      if (level.iter.err_off == 0) {
        --depth;
        continue;
      }
      // Report the element's type byte when the type is the problem or when libbson's
      // offset lies at the document's end (a value cut short); else libbson's offset.
      const std::size_t elementStart = level.base + level.iter.off;
      const std::size_t levelLength = loadUInt32LE(document.data() + level.base);
      if (!isElementType(document[elementStart]) || level.iter.err_off >= levelLength) {
        return static_cast<std::ptrdiff_t>(elementStart);
      }
      return static_cast<std::ptrdiff_t>(level.base + level.iter.err_off);
    }

    std::uint32_t childLen = 0;
    const std::uint8_t* child = nullptr;
    switch (bson_iter_type(&level.iter)) {
      case BSON_TYPE_DOCUMENT:
        bson_iter_document(&level.iter, &childLen, &child);
        break;
      case BSON_TYPE_ARRAY:
        bson_iter_array(&level.iter, &childLen, &child);
        break;
      case BSON_TYPE_CODEWSCOPE: {
        std::uint32_t codeLen = 0;
        const char* code = bson_iter_codewscope(&level.iter, &codeLen, &childLen, &child);
        // libbson checks the code string's length but not its terminator.
        if (code[codeLen] != '\0') {
          return reinterpret_cast<const std::uint8_t*>(code) + codeLen - document.data();
        }
        break;
      }
      default:
        continue;
    }

    const std::size_t childOffset = static_cast<std::size_t>(child - document.data());
    if (depth == kMaxBsonDepth) return static_cast<std::ptrdiff_t>(childOffset);
    if (auto bad = embeddedDocumentProblem(child, childLen); bad >= 0) {
      return static_cast<std::ptrdiff_t>(childOffset) + bad;
    }
    Level& next = stack[depth + 1];
    if (!bson_iter_init_from_data(&next.iter, child, childLen)) {
      return static_cast<std::ptrdiff_t>(childOffset);
    }
    next.base = childOffset;
    ++depth;
  }
  return -1;
}

std::string_view firstKey(Bytes document) {
  bson_iter_t iter;
  if (document.size() < 5 || !bson_iter_init_from_data(&iter, document.data(), document.size())) {
    return {};
  }
  if (!bson_iter_next(&iter)) return {};
  return std::string_view(bson_iter_key(&iter), bson_iter_key_len(&iter));
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
