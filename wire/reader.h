// wire/reader.h — internal to wire/: the bounds-checked pieces every parser is made of.
//
// Promise: no read ever leaves [begin, end) of the frame; each failure names the offset
// in the frame of the field that failed. Not part of the wire/ public API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "wire/message.h"

namespace mongogate::wire::detail {

// Checks what every parser needs before its own fields: a header, messageLength equal to
// the frame size, the expected opcode and at least `minSize` bytes (the smallest
// well-formed message of that opcode).
inline WireError checkFrame(Bytes frame, OpCode expected, std::size_t minSize) {
  if (frame.size() < kHeaderSize) return {WireStatus::kTruncated, 0};
  const MsgHeader h = readHeader(frame.data());
  if (h.messageLength < static_cast<std::int32_t>(kHeaderSize)) return {WireStatus::kLengthTooSmall, 0};
  const auto length = static_cast<std::size_t>(h.messageLength);
  if (length > frame.size()) return {WireStatus::kTruncated, 0};
  if (length < frame.size()) return {WireStatus::kTrailingBytes, length};
  if (h.opCode != static_cast<std::int32_t>(expected)) return {WireStatus::kUnknownOpcode, 12};
  if (length < minSize) return {WireStatus::kLengthTooSmall, 0};
  return {};
}

// A forward cursor over frame[pos, end). Offsets are offsets into the frame.
class FrameReader {
 public:
  FrameReader(Bytes frame, std::size_t pos, std::size_t end) : frame_(frame), pos_(pos), end_(end) {}

  std::size_t pos() const { return pos_; }
  std::size_t end() const { return end_; }
  std::size_t remaining() const { return end_ - pos_; }
  bool atEnd() const { return pos_ == end_; }

  // Precondition: n <= remaining().
  void skip(std::size_t n) { pos_ += n; }

  bool readInt32(std::int32_t& v) {
    if (remaining() < 4) return false;
    v = loadInt32LE(frame_.data() + pos_);
    pos_ += 4;
    return true;
  }
  bool readInt64(std::int64_t& v) {
    if (remaining() < 8) return false;
    v = loadInt64LE(frame_.data() + pos_);
    pos_ += 8;
    return true;
  }
  bool readUInt8(std::uint8_t& v) {
    if (remaining() < 1) return false;
    v = frame_[pos_++];
    return true;
  }

  // A NUL-terminated string wholly inside the reader's bounds; kBadCString at its start.
  WireError readCString(std::string_view& out) {
    const std::uint8_t* start = frame_.data() + pos_;
    const void* nul = std::memchr(start, 0, remaining());
    if (nul == nullptr) return {WireStatus::kBadCString, pos_};
    const auto len = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nul) - start);
    out = std::string_view(reinterpret_cast<const char*>(start), len);
    pos_ += len + 1;
    return {};
  }

  // One BSON document. A document that does not fit reports `overrun` (kTruncated for a
  // message field, kBadSequence inside a kind-1 section) at the document's offset.
  // With `validate` the document is walked in full; otherwise only its length and
  // terminator are checked.
  WireError readDocument(Bytes& out, bool validate, WireStatus overrun = WireStatus::kTruncated);

 private:
  Bytes frame_;
  std::size_t pos_;
  std::size_t end_;
};

}  // namespace mongogate::wire::detail
