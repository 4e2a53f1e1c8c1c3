// Framing: probeFrame's answers for short buffers, bad lengths and every opcode; header
// read/write/patch; the status vocabulary.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "wire/message.h"
#include "wire_test_support.h"

namespace mongogate::wire {
namespace {

using test::bytesOf;
using test::ByteVec;
using test::isStatus;

ByteVec headerOnly(std::int32_t length, std::int32_t opCode) {
  ByteVec b(kHeaderSize);
  writeHeader(b.data(), MsgHeader{length, 11, 22, opCode});
  return b;
}

constexpr std::int32_t kKnownOpcodes[] = {1, 2001, 2002, 2003, 2004, 2005, 2006, 2007, 2012, 2013};

TEST(WireMessage, NeedMoreBelowSixteenBytes) {
  const ByteVec full = headerOnly(100, 2013);
  for (std::size_t len = 0; len < kHeaderSize; ++len) {
    SCOPED_TRACE(len);
    const ByteVec prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    EXPECT_TRUE(isStatus(probeFrame(bytesOf(prefix)).status, WireStatus::kNeedMore));
  }
  const FrameProbe probe = probeFrame(bytesOf(full));
  EXPECT_TRUE(isStatus(probe.status, WireStatus::kOk));
  EXPECT_EQ(probe.header.messageLength, 100);  // more than is buffered: the caller waits
  EXPECT_EQ(probe.header.requestId, 11);
  EXPECT_EQ(probe.header.responseTo, 22);
  EXPECT_EQ(probe.header.opCode, 2013);
}

TEST(WireMessage, LengthsBelowSixteen) {
  for (std::int32_t length : {-2147483647 - 1, -1, 0, 1, 4, 15}) {
    SCOPED_TRACE(length);
    EXPECT_TRUE(isStatus(probeFrame(bytesOf(headerOnly(length, 2013))).status, WireStatus::kLengthTooSmall));
  }
  EXPECT_TRUE(isStatus(probeFrame(bytesOf(headerOnly(16, 2013))).status, WireStatus::kOk));
}

TEST(WireMessage, LengthsAboveMaximum) {
  EXPECT_TRUE(isStatus(probeFrame(bytesOf(headerOnly(kDefaultMaxMessageSize, 2013))).status, WireStatus::kOk));
  EXPECT_TRUE(isStatus(probeFrame(bytesOf(headerOnly(kDefaultMaxMessageSize + 1, 2013))).status,
                       WireStatus::kLengthTooLarge));
  EXPECT_TRUE(isStatus(probeFrame(bytesOf(headerOnly(2147483647, 2013))).status, WireStatus::kLengthTooLarge));
  // A configured maximum replaces the default.
  EXPECT_TRUE(isStatus(probeFrame(bytesOf(headerOnly(1024, 2013)), 1024).status, WireStatus::kOk));
  EXPECT_TRUE(isStatus(probeFrame(bytesOf(headerOnly(1025, 2013)), 1024).status, WireStatus::kLengthTooLarge));
}

TEST(WireMessage, LengthIsCheckedBeforeOpcode) {
  EXPECT_TRUE(isStatus(probeFrame(bytesOf(headerOnly(8, 9999))).status, WireStatus::kLengthTooSmall));
  EXPECT_TRUE(isStatus(probeFrame(bytesOf(headerOnly(kDefaultMaxMessageSize + 1, 9999))).status,
                       WireStatus::kLengthTooLarge));
}

TEST(WireMessage, EveryKnownOpcodeIsAccepted) {
  for (std::int32_t op : kKnownOpcodes) {
    SCOPED_TRACE(op);
    EXPECT_TRUE(isKnownOpcode(op));
    EXPECT_TRUE(isStatus(probeFrame(bytesOf(headerOnly(64, op))).status, WireStatus::kOk));
  }
}

TEST(WireMessage, EveryOtherOpcodeIsUnknown) {
  const std::set<std::int32_t> known(std::begin(kKnownOpcodes), std::end(kKnownOpcodes));
  int checked = 0;
  auto check = [&](std::int32_t op) {
    if (known.count(op) != 0) return;
    ++checked;
    EXPECT_FALSE(isKnownOpcode(op)) << op;
    EXPECT_TRUE(isStatus(probeFrame(bytesOf(headerOnly(64, op))).status, WireStatus::kUnknownOpcode)) << op;
  };
  for (std::int32_t op = -16; op <= 4096; ++op) check(op);
  // Including the long-retired OP_COMMAND / OP_COMMANDREPLY (2010/2011), not in OpCode.
  for (std::int32_t op : {2010, 2011, 2014, 65536 + 2013, 2147483647, -2147483647 - 1}) check(op);
  EXPECT_GT(checked, 4000);
}

TEST(WireMessage, HeaderRoundTrip) {
  const MsgHeader h{123456, -5, 0x7fffffff, 2013};
  std::uint8_t buf[kHeaderSize];
  writeHeader(buf, h);
  const std::uint8_t expected[kHeaderSize] = {
      0x40, 0xe2, 0x01, 0x00,  // 0: messageLength = 123456
      0xfb, 0xff, 0xff, 0xff,  // 4: requestId = -5
      0xff, 0xff, 0xff, 0x7f,  // 8: responseTo = INT32_MAX
      0xdd, 0x07, 0x00, 0x00,  // 12: opCode = 2013
  };
  EXPECT_EQ(0, std::memcmp(buf, expected, kHeaderSize));
  const MsgHeader back = readHeader(buf);
  EXPECT_EQ(back.messageLength, h.messageLength);
  EXPECT_EQ(back.requestId, h.requestId);
  EXPECT_EQ(back.responseTo, h.responseTo);
  EXPECT_EQ(back.opCode, h.opCode);
}

TEST(WireMessage, PatchHeaderIdsTouchesOnlyIds) {
  ByteVec frame = headerOnly(20, 2013);
  frame.push_back(0xaa);
  patchHeaderIds(frame, 77, -88);
  const MsgHeader h = readHeader(frame.data());
  EXPECT_EQ(h.messageLength, 20);
  EXPECT_EQ(h.requestId, 77);
  EXPECT_EQ(h.responseTo, -88);
  EXPECT_EQ(h.opCode, 2013);
  EXPECT_EQ(frame[16], 0xaa);
  ByteVec tooShort(8, 0);
  patchHeaderIds(tooShort, 1, 2);  // ignored, not written past the end
  EXPECT_EQ(tooShort, ByteVec(8, 0));
}

TEST(WireMessage, LittleEndianHelpers) {
  std::uint8_t b[8];
  storeInt64LE(b, -2);
  EXPECT_EQ(b[0], 0xfe);
  EXPECT_EQ(b[7], 0xff);
  EXPECT_EQ(loadInt64LE(b), -2);
  storeInt64LE(b, 0x0102030405060708LL);
  EXPECT_EQ(b[0], 0x08);
  EXPECT_EQ(b[7], 0x01);
  EXPECT_EQ(loadInt64LE(b), 0x0102030405060708LL);
  EXPECT_EQ(loadUInt32LE(b), 0x05060708u);
}

TEST(WireMessage, EveryStatusHasItsOwnDescription) {
  std::set<std::string_view> seen;
  for (int s = 0; s <= static_cast<int>(WireStatus::kCompressFailed); ++s) {
    const std::string_view d = describe(static_cast<WireStatus>(s));
    EXPECT_FALSE(d.empty()) << s;
    EXPECT_TRUE(seen.insert(d).second) << "duplicate description " << d;
  }
  EXPECT_EQ(describe(WireStatus::kTruncated), "truncated");
  EXPECT_EQ(describe(WireStatus::kChecksumMismatch), "checksum mismatch");
}

}  // namespace
}  // namespace mongogate::wire
