// wire/compression.cpp — OP_COMPRESSED parse, decompress and compress (see compression.h).
//
// Reference: MongoDB specifications, source/compression/OP_COMPRESSED.md.
// Formats: snappy raw (not framed), zlib stream (RFC 1950), one zstd frame, noop = raw.
// Decompression never allocates more than 16 + uncompressedSize bytes of output, and the
// declared size is checked against what the payload can possibly hold before allocating.
#include "wire/compression.h"

#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <climits>
#include <memory>

#include "wire/reader.h"

namespace mongogate::wire {
namespace {

constexpr std::size_t kOriginalOpcodeOffset = kHeaderSize;
constexpr std::size_t kUncompressedSizeOffset = kHeaderSize + 4;
constexpr std::size_t kCompressorOffset = kHeaderSize + 8;
constexpr std::size_t kPayloadOffset = kHeaderSize + 9;
// deflate's best case: a 258-byte match coded in 2 bits.
constexpr std::size_t kMaxDeflateRatio = 1032;

ZSTD_DCtx* threadDecompressionContext() {
  thread_local std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx(ZSTD_createDCtx(),
                                                                        &ZSTD_freeDCtx);
  return ctx.get();
}

ZSTD_CCtx* threadCompressionContext() {
  thread_local std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> ctx(ZSTD_createCCtx(),
                                                                        &ZSTD_freeCCtx);
  return ctx.get();
}

WireError inflateZlib(Bytes payload, std::uint8_t* out, std::size_t outSize) {
  z_stream zs{};
  if (inflateInit(&zs) != Z_OK) return {WireStatus::kDecompressFailed, kPayloadOffset};
  zs.next_in = const_cast<Bytef*>(payload.data());
  zs.avail_in = static_cast<uInt>(payload.size());
  zs.next_out = out;
  zs.avail_out = static_cast<uInt>(outSize);
  const int rc = inflate(&zs, Z_FINISH);
  const std::size_t produced = zs.total_out;
  const std::size_t consumed = payload.size() - zs.avail_in;
  const bool outputFull = zs.avail_out == 0;
  inflateEnd(&zs);

  if (rc == Z_STREAM_END) {
    if (produced != outSize) return {WireStatus::kSizeMismatch, kUncompressedSizeOffset};
    if (consumed != payload.size()) return {WireStatus::kTrailingBytes, kPayloadOffset + consumed};
    return {};
  }
  // Output full but the stream goes on: it holds more than uncompressedSize bytes.
  if ((rc == Z_OK || rc == Z_BUF_ERROR) && outputFull && consumed < payload.size()) {
    return {WireStatus::kSizeMismatch, kUncompressedSizeOffset};
  }
  return {WireStatus::kDecompressFailed, kPayloadOffset};
}

WireError decompressZstd(Bytes payload, std::vector<std::uint8_t>& out, std::size_t size) {
  const unsigned long long declared = ZSTD_getFrameContentSize(payload.data(), payload.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) return {WireStatus::kDecompressFailed, kPayloadOffset};
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != size) {
    return {WireStatus::kSizeMismatch, kUncompressedSizeOffset};
  }
  const std::size_t frameSize = ZSTD_findFrameCompressedSize(payload.data(), payload.size());
  if (ZSTD_isError(frameSize)) return {WireStatus::kDecompressFailed, kPayloadOffset};
  if (frameSize != payload.size()) return {WireStatus::kTrailingBytes, kPayloadOffset + frameSize};

  ZSTD_DCtx* ctx = threadDecompressionContext();
  if (ctx == nullptr) return {WireStatus::kDecompressFailed, kPayloadOffset};
  out.resize(kHeaderSize + size);
  const std::size_t n =
      ZSTD_decompressDCtx(ctx, out.data() + kHeaderSize, size, payload.data(), payload.size());
  if (ZSTD_isError(n)) {
    if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall) {
      return {WireStatus::kSizeMismatch, kUncompressedSizeOffset};
    }
    return {WireStatus::kDecompressFailed, kPayloadOffset};
  }
  if (n != size) return {WireStatus::kSizeMismatch, kUncompressedSizeOffset};
  return {};
}

WireError decompressInto(const OpCompressedView& view, std::vector<std::uint8_t>& out) {
  const Bytes payload = view.payload;
  const auto size = static_cast<std::size_t>(view.uncompressedSize);
  switch (view.compressor) {
    case Compressor::kNoop:
      if (payload.size() != size) return {WireStatus::kSizeMismatch, kUncompressedSizeOffset};
      out.resize(kHeaderSize + size);
      if (size != 0) std::memcpy(out.data() + kHeaderSize, payload.data(), size);
      return {};
    case Compressor::kSnappy: {
      if (payload.empty()) return {WireStatus::kDecompressFailed, kPayloadOffset};
      const auto* in = reinterpret_cast<const char*>(payload.data());
      std::size_t declared = 0;
      if (snappy_uncompressed_length(in, payload.size(), &declared) != SNAPPY_OK) {
        return {WireStatus::kDecompressFailed, kPayloadOffset};
      }
      if (declared != size) return {WireStatus::kSizeMismatch, kUncompressedSizeOffset};
      out.resize(kHeaderSize + size);
      std::size_t produced = size;
      if (snappy_uncompress(in, payload.size(), reinterpret_cast<char*>(out.data() + kHeaderSize),
                            &produced) != SNAPPY_OK) {
        return {WireStatus::kDecompressFailed, kPayloadOffset};
      }
      if (produced != size) return {WireStatus::kSizeMismatch, kUncompressedSizeOffset};
      return {};
    }
    case Compressor::kZlib:
      if (payload.empty()) return {WireStatus::kDecompressFailed, kPayloadOffset};
      if (size > payload.size() * kMaxDeflateRatio + 258) {
        return {WireStatus::kSizeMismatch, kUncompressedSizeOffset};
      }
      out.resize(kHeaderSize + size);
      return inflateZlib(payload, out.data() + kHeaderSize, size);
    case Compressor::kZstd:
      if (payload.empty()) return {WireStatus::kDecompressFailed, kPayloadOffset};
      return decompressZstd(payload, out, size);
  }
  return {WireStatus::kBadCompressor, kCompressorOffset};
}

}  // namespace

std::optional<Compressor> compressorFromName(std::string_view name) {
  if (name == "noop") return Compressor::kNoop;
  if (name == "snappy") return Compressor::kSnappy;
  if (name == "zlib") return Compressor::kZlib;
  if (name == "zstd") return Compressor::kZstd;
  return std::nullopt;
}

std::string_view compressorName(Compressor c) {
  switch (c) {
    case Compressor::kNoop: return "noop";
    case Compressor::kSnappy: return "snappy";
    case Compressor::kZlib: return "zlib";
    case Compressor::kZstd: return "zstd";
  }
  return "unknown";
}

Parsed<OpCompressedView> parseOpCompressed(Bytes frame, std::int32_t maxMessageSize) {
  Parsed<OpCompressedView> result;
  auto fail = [&result](WireError e) {
    result.error = e;
    return result;
  };
  if (auto e = detail::checkFrame(frame, OpCode::kCompressed, kPayloadOffset); !e.ok()) return fail(e);
  if (frame.size() > static_cast<std::size_t>(maxMessageSize)) {
    return fail({WireStatus::kLengthTooLarge, 0});
  }

  OpCompressedView& view = result.value;
  view.header = readHeader(frame.data());
  view.originalOpcode = loadInt32LE(frame.data() + kOriginalOpcodeOffset);
  view.uncompressedSize = loadInt32LE(frame.data() + kUncompressedSizeOffset);
  const std::uint8_t compressorId = frame[kCompressorOffset];
  view.payload = frame.subspan(kPayloadOffset);

  if (!isKnownOpcode(view.originalOpcode) ||
      view.originalOpcode == static_cast<std::int32_t>(OpCode::kCompressed)) {
    return fail({WireStatus::kUnknownOpcode, kOriginalOpcodeOffset});
  }
  if (view.uncompressedSize < 0) return fail({WireStatus::kLengthTooSmall, kUncompressedSizeOffset});
  if (view.uncompressedSize > maxMessageSize - static_cast<std::int32_t>(kHeaderSize)) {
    return fail({WireStatus::kLengthTooLarge, kUncompressedSizeOffset});
  }
  if (compressorId > static_cast<std::uint8_t>(Compressor::kZstd)) {
    return fail({WireStatus::kBadCompressor, kCompressorOffset});
  }
  view.compressor = static_cast<Compressor>(compressorId);
  return result;
}

WireError decompressFrame(const OpCompressedView& view, std::vector<std::uint8_t>& out) {
  out.clear();
  if (view.uncompressedSize < 0) return {WireStatus::kLengthTooSmall, kUncompressedSizeOffset};
  if (view.uncompressedSize > INT32_MAX - static_cast<std::int32_t>(kHeaderSize)) {
    return {WireStatus::kLengthTooLarge, kUncompressedSizeOffset};
  }
  if (auto e = decompressInto(view, out); !e.ok()) {
    out.clear();
    return e;
  }
  writeHeader(out.data(), MsgHeader{static_cast<std::int32_t>(kHeaderSize) + view.uncompressedSize,
                                    view.header.requestId, view.header.responseTo,
                                    view.originalOpcode});
  return {};
}

WireError compressFrame(Bytes frame, Compressor compressor, std::vector<std::uint8_t>& out,
                        int zlibLevel) {
  out.clear();
  if (frame.size() < kHeaderSize || frame.size() > static_cast<std::size_t>(INT32_MAX)) {
    return {WireStatus::kCompressFailed, 0};
  }
  const MsgHeader original = readHeader(frame.data());
  if (static_cast<std::size_t>(original.messageLength) != frame.size()) {
    return {WireStatus::kCompressFailed, 0};
  }
  if (original.opCode == static_cast<std::int32_t>(OpCode::kCompressed)) {
    return {WireStatus::kCompressFailed, 12};
  }

  const Bytes message = frame.subspan(kHeaderSize);
  std::size_t written = 0;
  switch (compressor) {
    case Compressor::kNoop:
      out.resize(kPayloadOffset + message.size());
      if (!message.empty()) std::memcpy(out.data() + kPayloadOffset, message.data(), message.size());
      written = message.size();
      break;
    case Compressor::kSnappy: {
      written = snappy_max_compressed_length(message.size());
      out.resize(kPayloadOffset + written);
      if (snappy_compress(reinterpret_cast<const char*>(message.data()), message.size(),
                          reinterpret_cast<char*>(out.data() + kPayloadOffset), &written) != SNAPPY_OK) {
        out.clear();
        return {WireStatus::kCompressFailed, 0};
      }
      break;
    }
    case Compressor::kZlib: {
      uLongf capacity = compressBound(static_cast<uLong>(message.size()));
      out.resize(kPayloadOffset + capacity);
      if (compress2(out.data() + kPayloadOffset, &capacity, message.data(),
                    static_cast<uLong>(message.size()), zlibLevel) != Z_OK) {
        out.clear();
        return {WireStatus::kCompressFailed, 0};
      }
      written = capacity;
      break;
    }
    case Compressor::kZstd: {
      ZSTD_CCtx* ctx = threadCompressionContext();
      if (ctx == nullptr) return {WireStatus::kCompressFailed, 0};
      const std::size_t capacity = ZSTD_compressBound(message.size());
      out.resize(kPayloadOffset + capacity);
      written = ZSTD_compressCCtx(ctx, out.data() + kPayloadOffset, capacity, message.data(),
                                  message.size(), ZSTD_CLEVEL_DEFAULT);
      if (ZSTD_isError(written)) {
        out.clear();
        return {WireStatus::kCompressFailed, 0};
      }
      break;
    }
    default:
      return {WireStatus::kBadCompressor, 0};
  }
  if (kPayloadOffset + written > static_cast<std::size_t>(INT32_MAX)) {
    out.clear();
    return {WireStatus::kCompressFailed, 0};
  }
  out.resize(kPayloadOffset + written);
  writeHeader(out.data(), MsgHeader{static_cast<std::int32_t>(out.size()), original.requestId,
                                    original.responseTo,
                                    static_cast<std::int32_t>(OpCode::kCompressed)});
  storeInt32LE(out.data() + kOriginalOpcodeOffset, original.opCode);
  storeInt32LE(out.data() + kUncompressedSizeOffset, static_cast<std::int32_t>(message.size()));
  out[kCompressorOffset] = static_cast<std::uint8_t>(compressor);
  return {};
}

}  // namespace mongogate::wire
