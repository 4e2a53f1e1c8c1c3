// OP_COMPRESSED: an annotated noop frame, compress -> parse -> decompress round trips for
// every compressor, the fixed-field rules, size mismatches, garbage and trailing payload
// bytes, the decompression-bomb guards and the truncation sweep.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "wire/builder.h"
#include "wire/compression.h"
#include "wire/op_msg.h"
#include "wire_test_support.h"

namespace mongogate::wire {
namespace {

using test::bson;
using test::bytesOf;
using test::ByteVec;
using test::FrameWriter;
using test::isError;
using test::isOk;

constexpr Compressor kAll[] = {Compressor::kNoop, Compressor::kSnappy, Compressor::kZlib, Compressor::kZstd};

// An OP_MSG {ping: true} wrapped with the noop compressor.
const ByteVec kNoopPing = {
    0x2a, 0x00, 0x00, 0x00,  // 0: messageLength = 42
    0x05, 0x00, 0x00, 0x00,  // 4: requestId = 5
    0x06, 0x00, 0x00, 0x00,  // 8: responseTo = 6
    0xdc, 0x07, 0x00, 0x00,  // 12: opCode = 2012 (OP_COMPRESSED)
    0xdd, 0x07, 0x00, 0x00,  // 16: originalOpcode = 2013
    0x11, 0x00, 0x00, 0x00,  // 20: uncompressedSize = 17
    0x00,                    // 24: compressorId = noop
    0x00, 0x00, 0x00, 0x00,  // 25: payload = the OP_MSG after its header: flagBits = 0
    0x00,                    // 29: section kind 0
    0x0c, 0x00, 0x00, 0x00,  // 30: body length = 12
    0x08,                    // 34: type bool
    'p', 'i', 'n', 'g', 0x00,  // 35: key "ping"
    0x01,                    // 40: true
    0x00,                    // 41: body terminator
};

ByteVec pingMsg() {
  ByteVec frame;
  appendOpMsg(frame, 5, 6, 0, bytesOf(bson(R"({"ping": true})")));
  return frame;
}

// A large OP_MSG: half repetitive (compressible), half random.
ByteVec bigMsg(std::size_t randomBytes) {
  std::mt19937 rng(42);
  std::string noise(randomBytes, '\0');
  for (auto& c : noise) c = static_cast<char>('a' + rng() % 26);
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "insert", "orders");
  BSON_APPEND_UTF8(&doc, "noise", noise.c_str());
  std::string repeat(200000, 'x');
  BSON_APPEND_UTF8(&doc, "repeat", repeat.c_str());
  ByteVec frame;
  appendOpMsg(frame, 100, 0, 0, Bytes(bson_get_data(&doc), doc.len));
  bson_destroy(&doc);
  return frame;
}

std::string name(Compressor c) { return std::string(compressorName(c)); }

TEST(WireCompression, Names) {
  for (Compressor c : kAll) EXPECT_EQ(compressorFromName(compressorName(c)), c);
  EXPECT_EQ(compressorName(Compressor::kSnappy), "snappy");
  EXPECT_EQ(compressorName(Compressor::kZlib), "zlib");
  EXPECT_EQ(compressorName(Compressor::kZstd), "zstd");
  EXPECT_EQ(compressorName(Compressor::kNoop), "noop");
  EXPECT_FALSE(compressorFromName("lz4").has_value());
  EXPECT_FALSE(compressorFromName("").has_value());
  EXPECT_FALSE(compressorFromName("Snappy").has_value());
}

TEST(WireCompression, AnnotatedNoopFrame) {
  ByteVec built;
  ASSERT_TRUE(isOk(compressFrame(bytesOf(pingMsg()), Compressor::kNoop, built)));
  EXPECT_EQ(built, kNoopPing);
  const auto r = parseOpCompressed(bytesOf(built));
  ASSERT_TRUE(isOk(r.error));
  EXPECT_EQ(r.value.header.requestId, 5);
  EXPECT_EQ(r.value.header.responseTo, 6);
  EXPECT_EQ(r.value.originalOpcode, 2013);
  EXPECT_EQ(r.value.uncompressedSize, 17);
  EXPECT_EQ(r.value.compressor, Compressor::kNoop);
  EXPECT_EQ(r.value.payload.data(), built.data() + 25);
  EXPECT_EQ(r.value.payload.size(), 17u);
}

TEST(WireCompression, RoundTripEveryCompressor) {
  for (const ByteVec& original : {pingMsg(), bigMsg(1000), bigMsg(300000)}) {
    for (Compressor c : kAll) {
      SCOPED_TRACE(name(c) + " " + std::to_string(original.size()));
      ByteVec compressed;
      ASSERT_TRUE(isOk(compressFrame(bytesOf(original), c, compressed)));
      const FrameProbe probe = probeFrame(bytesOf(compressed));
      ASSERT_TRUE(test::isStatus(probe.status, WireStatus::kOk));
      EXPECT_EQ(static_cast<std::size_t>(probe.header.messageLength), compressed.size());
      EXPECT_EQ(probe.header.opCode, 2012);

      const auto parsed = parseOpCompressed(bytesOf(compressed));
      ASSERT_TRUE(isOk(parsed.error));
      EXPECT_EQ(parsed.value.compressor, c);
      EXPECT_EQ(parsed.value.originalOpcode, 2013);
      EXPECT_EQ(static_cast<std::size_t>(parsed.value.uncompressedSize), original.size() - 16);
      if (c != Compressor::kNoop && original.size() > 100000) {
        EXPECT_LT(compressed.size(), original.size());  // the repetitive half compresses
      }
      ByteVec restored = {1, 2, 3};  // replaced, not appended to
      ASSERT_TRUE(isOk(decompressFrame(parsed.value, restored)));
      EXPECT_EQ(restored, original);
      EXPECT_TRUE(isOk(parseOpMsg(bytesOf(restored)).error));
    }
  }
}

TEST(WireCompression, ZlibLevels) {
  const ByteVec original = bigMsg(1000);
  ByteVec fast, best;
  ASSERT_TRUE(isOk(compressFrame(bytesOf(original), Compressor::kZlib, fast, 1)));
  ASSERT_TRUE(isOk(compressFrame(bytesOf(original), Compressor::kZlib, best, 9)));
  EXPECT_LE(best.size(), fast.size());
  ByteVec out;
  EXPECT_TRUE(isError(compressFrame(bytesOf(original), Compressor::kZlib, out, 42), WireStatus::kCompressFailed, 0));
  EXPECT_TRUE(out.empty());
}

TEST(WireCompression, CompressesLegacyOpcodesAndKeepsIds) {
  ByteVec reply;
  const ByteVec doc = bson(R"({"ok": 1})");
  const Bytes docs[] = {bytesOf(doc)};
  appendOpReply(reply, 31, 30, 0, 0, 0, docs);
  for (Compressor c : kAll) {
    SCOPED_TRACE(name(c));
    ByteVec compressed, restored;
    ASSERT_TRUE(isOk(compressFrame(bytesOf(reply), c, compressed)));
    const auto parsed = parseOpCompressed(bytesOf(compressed));
    ASSERT_TRUE(isOk(parsed.error));
    EXPECT_EQ(parsed.value.originalOpcode, 1);
    EXPECT_EQ(parsed.value.header.requestId, 31);
    EXPECT_EQ(parsed.value.header.responseTo, 30);
    ASSERT_TRUE(isOk(decompressFrame(parsed.value, restored)));
    EXPECT_EQ(restored, reply);
  }
}

TEST(WireCompression, CompressRejectsBadInput) {
  ByteVec out;
  const ByteVec tooShort(10, 0);
  EXPECT_TRUE(isError(compressFrame(bytesOf(tooShort), Compressor::kSnappy, out), WireStatus::kCompressFailed, 0));
  ByteVec lengthWrong = pingMsg();
  lengthWrong.push_back(0);
  EXPECT_TRUE(isError(compressFrame(bytesOf(lengthWrong), Compressor::kSnappy, out), WireStatus::kCompressFailed, 0));
  // OP_COMPRESSED is never nested.
  EXPECT_TRUE(isError(compressFrame(bytesOf(kNoopPing), Compressor::kZlib, out), WireStatus::kCompressFailed, 12));
  EXPECT_TRUE(isError(compressFrame(bytesOf(pingMsg()), static_cast<Compressor>(9), out), WireStatus::kBadCompressor, 0));
  EXPECT_TRUE(out.empty());
}

TEST(WireCompression, UnknownCompressorId) {
  for (std::uint8_t id : {4, 5, 127, 255}) {
    SCOPED_TRACE(int(id));
    ByteVec frame = kNoopPing;
    frame[24] = id;
    EXPECT_TRUE(isError(parseOpCompressed(bytesOf(frame)).error, WireStatus::kBadCompressor, 24));
  }
}

TEST(WireCompression, OriginalOpcodeRules) {
  ByteVec frame = kNoopPing;
  storeInt32LE(frame.data() + 16, 2012);  // OP_COMPRESSED inside OP_COMPRESSED
  EXPECT_TRUE(isError(parseOpCompressed(bytesOf(frame)).error, WireStatus::kUnknownOpcode, 16));
  storeInt32LE(frame.data() + 16, 2014);
  EXPECT_TRUE(isError(parseOpCompressed(bytesOf(frame)).error, WireStatus::kUnknownOpcode, 16));
  storeInt32LE(frame.data() + 16, 2004);
  EXPECT_TRUE(isOk(parseOpCompressed(bytesOf(frame)).error));
}

TEST(WireCompression, UncompressedSizeBounds) {
  ByteVec frame = kNoopPing;
  storeInt32LE(frame.data() + 20, -1);
  EXPECT_TRUE(isError(parseOpCompressed(bytesOf(frame)).error, WireStatus::kLengthTooSmall, 20));
  storeInt32LE(frame.data() + 20, kDefaultMaxMessageSize - 15);
  EXPECT_TRUE(isError(parseOpCompressed(bytesOf(frame)).error, WireStatus::kLengthTooLarge, 20));
  storeInt32LE(frame.data() + 20, kDefaultMaxMessageSize - 16);
  EXPECT_TRUE(isOk(parseOpCompressed(bytesOf(frame)).error));
  // A configured maximum bounds both the frame and the size it claims.
  storeInt32LE(frame.data() + 20, 17);
  EXPECT_TRUE(isOk(parseOpCompressed(bytesOf(frame), 42).error));
  EXPECT_TRUE(isError(parseOpCompressed(bytesOf(frame), 41).error, WireStatus::kLengthTooLarge, 0));
  storeInt32LE(frame.data() + 20, 100);
  EXPECT_TRUE(isOk(parseOpCompressed(bytesOf(frame), 116).error));
  EXPECT_TRUE(isError(parseOpCompressed(bytesOf(frame), 115).error, WireStatus::kLengthTooLarge, 20));
}

TEST(WireCompression, FixedFieldsAndFraming) {
  ByteVec frame = kNoopPing;
  storeInt32LE(frame.data() + 12, 2013);
  EXPECT_TRUE(isError(parseOpCompressed(bytesOf(frame)).error, WireStatus::kUnknownOpcode, 12));
  ByteVec shortest(kNoopPing.begin(), kNoopPing.begin() + 24);
  storeInt32LE(shortest.data(), 24);
  EXPECT_TRUE(isError(parseOpCompressed(bytesOf(shortest)).error, WireStatus::kLengthTooSmall, 0));
}

// A frame declaring `size` uncompressed bytes for `payload` under compressor `c`.
ByteVec compressedFrame(Compressor c, std::int32_t size, const ByteVec& payload) {
  return FrameWriter()
      .header(1, 0, OpCode::kCompressed)
      .i32(2013)
      .i32(size)
      .u8(static_cast<std::uint8_t>(c))
      .raw(payload)
      .done();
}

WireError decompress(const ByteVec& frame, ByteVec& out) {
  const auto parsed = parseOpCompressed(bytesOf(frame));
  if (!parsed.ok()) return parsed.error;
  return decompressFrame(parsed.value, out);
}

TEST(WireCompression, DeclaredSizeMustMatchExactly) {
  const ByteVec original = bigMsg(1000);
  for (Compressor c : kAll) {
    ByteVec compressed;
    ASSERT_TRUE(isOk(compressFrame(bytesOf(original), c, compressed)));
    const auto size = static_cast<std::int32_t>(original.size() - 16);
    for (std::int32_t declared : {size - 1, size + 1, 0, size / 2, size * 2}) {
      SCOPED_TRACE(name(c) + " declared " + std::to_string(declared));
      ByteVec frame = compressed;
      storeInt32LE(frame.data() + 20, declared);
      ByteVec out = {9};
      EXPECT_TRUE(isError(decompress(frame, out), WireStatus::kSizeMismatch, 20));
      EXPECT_TRUE(out.empty());
    }
  }
}

TEST(WireCompression, GarbagePayload) {
  // Starts with 0x64: as a snappy length varint that is 100, so snappy gets to its body.
  const ByteVec garbage = {0x64, 0xde, 0xad, 0xbe, 0xef, 0xff, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
  for (Compressor c : {Compressor::kSnappy, Compressor::kZlib, Compressor::kZstd}) {
    SCOPED_TRACE(name(c));
    ByteVec out;
    EXPECT_TRUE(isError(decompress(compressedFrame(c, 100, garbage), out), WireStatus::kDecompressFailed, 25));
    EXPECT_TRUE(isError(decompress(compressedFrame(c, 100, {}), out), WireStatus::kDecompressFailed, 25));
    const ByteVec badVarint(12, 0xff);
    EXPECT_TRUE(isError(decompress(compressedFrame(c, 100, badVarint), out), WireStatus::kDecompressFailed, 25));
    EXPECT_TRUE(out.empty());
  }
}

TEST(WireCompression, CorruptedStreamsFailCleanly) {
  const ByteVec original = bigMsg(1000);
  for (Compressor c : {Compressor::kSnappy, Compressor::kZlib, Compressor::kZstd}) {
    ByteVec compressed;
    ASSERT_TRUE(isOk(compressFrame(bytesOf(original), c, compressed)));
    int failures = 0;
    for (std::size_t i = 25; i < compressed.size(); i += 7) {
      ByteVec frame = compressed;
      frame[i] ^= 0x5a;
      ByteVec out;
      const WireError e = decompress(frame, out);
      if (!e.ok()) {
        ++failures;
        EXPECT_TRUE(out.empty());
      } else {
        EXPECT_EQ(out.size(), original.size());  // snappy has no checksum
      }
    }
    EXPECT_GT(failures, 0) << name(c);
  }
}

TEST(WireCompression, TrailingBytesAfterTheStream) {
  const ByteVec original = pingMsg();
  for (Compressor c : {Compressor::kZlib, Compressor::kZstd}) {
    SCOPED_TRACE(name(c));
    ByteVec compressed;
    ASSERT_TRUE(isOk(compressFrame(bytesOf(original), c, compressed)));
    const std::size_t end = compressed.size();
    ByteVec frame = FrameWriter().raw(compressed).u8(0).u8(0).done();
    ByteVec out;
    EXPECT_TRUE(isError(decompress(frame, out), WireStatus::kTrailingBytes, end));
  }
  ByteVec compressed;
  ASSERT_TRUE(isOk(compressFrame(bytesOf(original), Compressor::kSnappy, compressed)));
  ByteVec out;
  EXPECT_TRUE(isError(decompress(FrameWriter().raw(compressed).u8(0).done(), out), WireStatus::kDecompressFailed, 25));
  // noop: the payload is the message, so an extra byte is a size mismatch.
  EXPECT_TRUE(isError(decompress(FrameWriter().raw(kNoopPing).u8(0).done(), out), WireStatus::kSizeMismatch, 20));
}

TEST(WireCompression, BombsAreRefusedBeforeAllocating) {
  // 10 MB of zeros compress to ~10 KB (zlib), ~470 KB (snappy) or a few bytes (zstd).
  ByteVec zeros = FrameWriter().header(1, 0, OpCode::kMsg).done();
  zeros.resize(10'000'000, 0);
  storeInt32LE(zeros.data(), static_cast<std::int32_t>(zeros.size()));
  for (Compressor c : {Compressor::kSnappy, Compressor::kZlib, Compressor::kZstd}) {
    SCOPED_TRACE(name(c));
    ByteVec compressed;
    ASSERT_TRUE(isOk(compressFrame(bytesOf(zeros), c, compressed)));
    ASSERT_LT(compressed.size(), 1'000'000u);
    // Claim less than the stream holds: output stops at the declared size.
    storeInt32LE(compressed.data() + 20, 1000);
    ByteVec out;
    EXPECT_TRUE(isError(decompress(compressed, out), WireStatus::kSizeMismatch, 20));
    EXPECT_LE(out.capacity(), 16u + 1000u);
  }
  // A zlib payload cannot inflate more than ~1032:1; a larger claim is refused unallocated.
  const ByteVec tiny = {0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01};  // zlib("")
  ByteVec out;
  EXPECT_TRUE(isError(decompress(compressedFrame(Compressor::kZlib, 40'000'000, tiny), out), WireStatus::kSizeMismatch, 20));
  EXPECT_EQ(out.capacity(), 0u);
  // snappy and zstd carry the size in their header: a mismatch is refused unallocated.
  ByteVec snappyPing;
  ASSERT_TRUE(isOk(compressFrame(bytesOf(pingMsg()), Compressor::kSnappy, snappyPing)));
  storeInt32LE(snappyPing.data() + 20, 40'000'000);
  EXPECT_TRUE(isError(decompress(snappyPing, out), WireStatus::kSizeMismatch, 20));
  EXPECT_EQ(out.capacity(), 0u);
  ByteVec zstdPing;
  ASSERT_TRUE(isOk(compressFrame(bytesOf(pingMsg()), Compressor::kZstd, zstdPing)));
  storeInt32LE(zstdPing.data() + 20, 40'000'000);
  EXPECT_TRUE(isError(decompress(zstdPing, out), WireStatus::kSizeMismatch, 20));
  EXPECT_EQ(out.capacity(), 0u);
}

TEST(WireCompression, EmptyMessageBody) {
  // A 16-byte frame (header only) compresses to uncompressedSize 0 and back.
  const ByteVec headerOnly = FrameWriter().header(3, 4, OpCode::kMsg).done();
  for (Compressor c : kAll) {
    SCOPED_TRACE(name(c));
    ByteVec compressed, restored;
    ASSERT_TRUE(isOk(compressFrame(bytesOf(headerOnly), c, compressed)));
    ASSERT_TRUE(isOk(decompress(compressed, restored)));
    EXPECT_EQ(restored, headerOnly);
  }
}

TEST(WireCompression, TruncationSweep) {
  for (Compressor c : kAll) {
    SCOPED_TRACE(name(c));
    ByteVec compressed;
    ASSERT_TRUE(isOk(compressFrame(bytesOf(pingMsg()), c, compressed)));
    // Parsing alone accepts any payload length; parse + decompress must reject every cut.
    test::truncationSweep(compressed, [](Bytes b) {
      Parsed<ByteVec> result;
      const auto parsed = parseOpCompressed(b);
      if (!parsed.ok()) {
        result.error = parsed.error;
      } else {
        result.error = decompressFrame(parsed.value, result.value);
      }
      return result;
    });
  }
}

}  // namespace
}  // namespace mongogate::wire
