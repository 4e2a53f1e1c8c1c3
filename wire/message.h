// wire/message.h — frame header, opcodes and the error vocabulary of the wire layer.
//
// Promise: pure functions over byte buffers. No sockets, no routing, no configuration.
// Reference: MongoDB Wire Protocol, "Standard Message Header"
// (https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace mongogate::wire {

using Bytes = std::span<const std::uint8_t>;

inline constexpr std::size_t kHeaderSize = 16;
// The server's maxMessageSizeBytes: 48,000,000 bytes.
inline constexpr std::int32_t kDefaultMaxMessageSize = 48'000'000;

enum class OpCode : std::int32_t {
  kReply = 1,
  kUpdate = 2001,
  kInsert = 2002,
  kReserved = 2003,
  kQuery = 2004,
  kGetMore = 2005,
  kDelete = 2006,
  kKillCursors = 2007,
  kCompressed = 2012,
  kMsg = 2013,
};

// True for every opcode in OpCode; false for anything else.
bool isKnownOpcode(std::int32_t op);

struct MsgHeader {
  std::int32_t messageLength = 0;
  std::int32_t requestId = 0;
  std::int32_t responseTo = 0;
  std::int32_t opCode = 0;
};

enum class WireStatus : std::uint8_t {
  kOk = 0,
  kNeedMore,          // not an error: the buffer holds only part of a frame
  kLengthTooSmall,    // messageLength < 16, or below the smallest well-formed message of
                      // the opcode parsed (OP_COMPRESSED: a negative uncompressedSize)
  kLengthTooLarge,    // messageLength (or OP_COMPRESSED uncompressedSize + 16) > the maximum
  kUnknownOpcode,     // opcode not in OpCode, or not the one the parser handles (offset 12);
                      // OP_COMPRESSED: an original opcode that is unknown or 2012 (offset 16)
  kTruncated,         // a field runs past the end of the message (a frame shorter than
                      // its messageLength: offset 0)
  kTrailingBytes,     // bytes left inside the message after the last field (also a frame
                      // longer than messageLength, and payload bytes after a zlib/zstd stream)
  kBadFlags,          // OP_MSG: a required (bits 0-15) flag bit this codec does not know
  kNoBody,            // OP_MSG: no kind-0 section
  kMultipleBodies,    // OP_MSG: more than one kind-0 section
  kBadSectionKind,    // OP_MSG: section kind other than 0 or 1
  kBadBson,           // a BSON document is malformed
  kBadCString,        // a C string has no terminating NUL inside its bounds
  kBadSequence,       // OP_MSG kind-1: size field inconsistent with its documents, or a
                      // repeated identifier; OP_REPLY: a negative numberReturned
  kTooManySequences,  // OP_MSG: more kind-1 sections than OpMsgView::kMaxSequences
  kChecksumMismatch,  // OP_MSG: CRC-32C does not match
  kBadCompressor,     // OP_COMPRESSED: unknown compressor id
  kDecompressFailed,  // OP_COMPRESSED: the payload does not decompress
  kSizeMismatch,      // OP_COMPRESSED: uncompressedSize differs from the decompressed size
  kCompressFailed,    // compressing a frame failed (or the input is not one whole frame)
};

// A short, stable English phrase for logs and error replies ("truncated", ...).
std::string_view describe(WireStatus status);

struct WireError {
  WireStatus status = WireStatus::kOk;
  std::size_t offset = 0;  // byte offset into the frame where the problem was found
  bool ok() const { return status == WireStatus::kOk; }
};

// Result of a parser: `value` is meaningful only when ok().
template <class T>
struct Parsed {
  T value{};
  WireError error{};
  bool ok() const { return error.ok(); }
};

inline std::int32_t loadInt32LE(const std::uint8_t* p) {
  std::uint32_t v = std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
                    std::uint32_t(p[3]) << 24;
  return static_cast<std::int32_t>(v);
}
inline std::uint32_t loadUInt32LE(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(loadInt32LE(p));
}
inline std::int64_t loadInt64LE(const std::uint8_t* p) {
  std::uint64_t lo = loadUInt32LE(p), hi = loadUInt32LE(p + 4);
  return static_cast<std::int64_t>(lo | hi << 32);
}
inline void storeInt32LE(std::uint8_t* p, std::int32_t v) {
  auto u = static_cast<std::uint32_t>(v);
  p[0] = std::uint8_t(u);
  p[1] = std::uint8_t(u >> 8);
  p[2] = std::uint8_t(u >> 16);
  p[3] = std::uint8_t(u >> 24);
}
inline void storeInt64LE(std::uint8_t* p, std::int64_t v) {
  auto u = static_cast<std::uint64_t>(v);
  storeInt32LE(p, static_cast<std::int32_t>(u & 0xffffffffu));
  storeInt32LE(p + 4, static_cast<std::int32_t>(u >> 32));
}

struct FrameProbe {
  WireStatus status = WireStatus::kNeedMore;  // kOk, kNeedMore, kLengthTooSmall,
                                              // kLengthTooLarge or kUnknownOpcode
  MsgHeader header{};
};

// Frame before you parse: looks only at the first 16 bytes of `buf`.
// kNeedMore when fewer than 16 bytes are present; otherwise validates messageLength
// (16 <= length <= maxMessageSize) and that the opcode is known, and returns the header.
// It does not require the whole frame to be present: compare header.messageLength
// with buf.size() for that.
FrameProbe probeFrame(Bytes buf, std::int32_t maxMessageSize = kDefaultMaxMessageSize);

// Reads the header of a frame known to hold at least 16 bytes.
MsgHeader readHeader(const std::uint8_t* frame);
// Writes a header into the first 16 bytes of `out`.
void writeHeader(std::uint8_t* out, const MsgHeader& header);
// Overwrites requestId and responseTo of a frame in place.
void patchHeaderIds(std::span<std::uint8_t> frame, std::int32_t requestId, std::int32_t responseTo);

}  // namespace mongogate::wire
