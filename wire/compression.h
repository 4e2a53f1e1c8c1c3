// wire/compression.h — OP_COMPRESSED (2012) with snappy, zlib and zstd.
//
// Reference: MongoDB specifications, compression/OP_COMPRESSED.md.
// Layout: header(16) | originalOpcode(int32) | uncompressedSize(int32) |
//         compressorId(uint8) | compressedMessage (the original message minus its header).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "wire/message.h"

namespace mongogate::wire {

enum class Compressor : std::uint8_t { kNoop = 0, kSnappy = 1, kZlib = 2, kZstd = 3 };

std::optional<Compressor> compressorFromName(std::string_view name);  // "snappy", "zlib", "zstd", "noop"
std::string_view compressorName(Compressor c);

// Every field borrows from the parsed frame (non-owning).
struct OpCompressedView {
  MsgHeader header{};
  std::int32_t originalOpcode = 0;
  std::int32_t uncompressedSize = 0;
  Compressor compressor = Compressor::kNoop;
  Bytes payload;  // compressed bytes, borrowed
};

// Validates the fixed fields: a known compressor id, uncompressedSize in
// [0, maxMessageSize - 16], an original opcode that is known and not OP_COMPRESSED.
Parsed<OpCompressedView> parseOpCompressed(Bytes frame,
                                           std::int32_t maxMessageSize = kDefaultMaxMessageSize);

// Replaces `out` with the original frame: a header carrying the same requestId and
// responseTo, messageLength = 16 + uncompressedSize, opCode = originalOpcode, followed by
// the decompressed bytes. The decompressed size must equal uncompressedSize exactly.
WireError decompressFrame(const OpCompressedView& view, std::vector<std::uint8_t>& out);

// Replaces `out` with an OP_COMPRESSED frame wrapping `frame` (a whole frame, header
// included), keeping its requestId and responseTo. zlibLevel -1 means zlib's default.
WireError compressFrame(Bytes frame, Compressor compressor, std::vector<std::uint8_t>& out,
                        int zlibLevel = -1);

}  // namespace mongogate::wire
