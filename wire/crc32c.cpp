// wire/crc32c.cpp — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), see crc32c.h.
//
// Software: slice-by-8 over tables built at compile time. Hardware: the SSE4.2 crc32
// instruction, compiled for that target only and chosen once at run time.
#include "wire/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define MONGOGATE_CRC32C_X86 1
#endif

namespace mongogate::wire::detail {
namespace {

constexpr std::uint32_t kPolynomial = 0x82F63B78u;

using Tables = std::array<std::array<std::uint32_t, 256>, 8>;

// tables[k][b] is the CRC register after byte b followed by k zero bytes.
constexpr Tables makeTables() {
  Tables t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c >> 1) ^ ((c & 1u) ? kPolynomial : 0u);
    t[0][b] = c;
  }
  for (std::size_t k = 1; k < 8; ++k) {
    for (std::uint32_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xffu];
  }
  return t;
}

constexpr Tables kTables = makeTables();

}  // namespace

std::uint32_t crc32cSoftware(Bytes data, std::uint32_t crc) {
  const std::uint8_t* p = data.data();
  std::size_t n = data.size();
  std::uint32_t c = ~crc;
  while (n >= 8) {
    const std::uint32_t lo = loadUInt32LE(p) ^ c;
    const std::uint32_t hi = loadUInt32LE(p + 4);
    c = kTables[7][lo & 0xffu] ^ kTables[6][(lo >> 8) & 0xffu] ^ kTables[5][(lo >> 16) & 0xffu] ^
        kTables[4][lo >> 24] ^ kTables[3][hi & 0xffu] ^ kTables[2][(hi >> 8) & 0xffu] ^
        kTables[1][(hi >> 16) & 0xffu] ^ kTables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = kTables[0][(c ^ *p++) & 0xffu] ^ (c >> 8);
  return ~c;
}

#ifdef MONGOGATE_CRC32C_X86

bool crc32cHardwareAvailable() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2"))) std::uint32_t crc32cHardware(Bytes data, std::uint32_t crc) {
  const std::uint8_t* p = data.data();
  std::size_t n = data.size();
  std::uint64_t c = ~crc;
  while (n >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);  // x86 is little-endian, as the CRC expects
    c = _mm_crc32_u64(c, word);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}

#else

bool crc32cHardwareAvailable() { return false; }
std::uint32_t crc32cHardware(Bytes data, std::uint32_t crc) { return crc32cSoftware(data, crc); }

#endif

}  // namespace mongogate::wire::detail

namespace mongogate::wire {

std::uint32_t crc32c(Bytes data, std::uint32_t crc) {
  using Impl = std::uint32_t (*)(Bytes, std::uint32_t);
  static const Impl impl =
      detail::crc32cHardwareAvailable() ? &detail::crc32cHardware : &detail::crc32cSoftware;
  return impl(data, crc);
}

}  // namespace mongogate::wire
