// wire/crc32c.h — CRC-32C (Castagnoli), the OP_MSG checksum.
//
// Reference: MongoDB specifications, message/OP_MSG.md (checksum); RFC 3720 B.4 (the CRC).
#pragma once

#include <cstdint>

#include "wire/message.h"

namespace mongogate::wire {

// CRC-32C of `data`, continuing from `crc` (0 to start). Uses SSE4.2 when the CPU has it.
std::uint32_t crc32c(Bytes data, std::uint32_t crc = 0);

// The two implementations crc32c() chooses between, exposed so tests can compare them.
namespace detail {
std::uint32_t crc32cSoftware(Bytes data, std::uint32_t crc);
bool crc32cHardwareAvailable();
// Precondition: crc32cHardwareAvailable().
std::uint32_t crc32cHardware(Bytes data, std::uint32_t crc);
}  // namespace detail

}  // namespace mongogate::wire
