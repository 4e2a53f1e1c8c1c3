// CRC-32C: published check values (RFC 3720 B.4 and the "123456789" check), chaining,
// and the SSE4.2 path against the table-driven one at every length and alignment.
#include <gtest/gtest.h>

#include <random>
#include <string_view>

#include "wire/crc32c.h"
#include "wire_test_support.h"

namespace mongogate::wire {
namespace {

using test::bytesOf;
using test::ByteVec;

Bytes ascii(std::string_view s) { return Bytes(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()); }

struct Vector {
  const char* name;
  ByteVec data;
  std::uint32_t crc;
};

std::vector<Vector> knownVectors() {
  ByteVec ascending(32), descending(32);
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<std::uint8_t>(i);
    descending[i] = static_cast<std::uint8_t>(31 - i);
  }
  const std::string_view check = "123456789";
  return {
      {"Empty", {}, 0x00000000u},
      {"Check123456789", ByteVec(check.begin(), check.end()), 0xE3069283u},
      {"Zeros32", ByteVec(32, 0x00), 0x8A9136AAu},
      {"Ones32", ByteVec(32, 0xff), 0x62A8AB43u},
      {"Ascending32", ascending, 0x46DD794Eu},
      {"Descending32", descending, 0x113FDB5Cu},
  };
}

TEST(WireCrc32c, KnownVectors) {
  for (const Vector& v : knownVectors()) {
    SCOPED_TRACE(v.name);
    EXPECT_EQ(crc32c(bytesOf(v.data)), v.crc);
    EXPECT_EQ(detail::crc32cSoftware(bytesOf(v.data), 0), v.crc);
    if (detail::crc32cHardwareAvailable()) {
      EXPECT_EQ(detail::crc32cHardware(bytesOf(v.data), 0), v.crc);
    }
  }
}

TEST(WireCrc32c, ChainingEqualsOneShot) {
  const std::string_view text = "The quick brown fox jumps over the lazy dog, twice over.";
  const std::uint32_t whole = crc32c(ascii(text));
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    SCOPED_TRACE(cut);
    const std::uint32_t first = crc32c(ascii(text.substr(0, cut)));
    EXPECT_EQ(crc32c(ascii(text.substr(cut)), first), whole);
    EXPECT_EQ(detail::crc32cSoftware(ascii(text.substr(cut)), detail::crc32cSoftware(ascii(text.substr(0, cut)), 0)),
              whole);
  }
}

TEST(WireCrc32c, HardwareMatchesSoftwareAtEveryLengthAndAlignment) {
  if (!detail::crc32cHardwareAvailable()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  std::mt19937 rng(7);
  ByteVec data(600);
  for (auto& b : data) b = static_cast<std::uint8_t>(rng());
  for (std::size_t start = 0; start < 8; ++start) {
    for (std::size_t len = 0; start + len <= data.size(); ++len) {
      const Bytes slice = bytesOf(data).subspan(start, len);
      ASSERT_EQ(detail::crc32cHardware(slice, 0x1234u), detail::crc32cSoftware(slice, 0x1234u))
          << "start " << start << " length " << len;
    }
  }
}

TEST(WireCrc32c, DetectsEverySingleBitFlip) {
  ByteVec data(64);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 7);
  const std::uint32_t good = crc32c(bytesOf(data));
  for (std::size_t bit = 0; bit < data.size() * 8; ++bit) {
    data[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    EXPECT_NE(crc32c(bytesOf(data)), good) << bit;
    data[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
  }
}

}  // namespace
}  // namespace mongogate::wire
