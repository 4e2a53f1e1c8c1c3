// wire/crc32c.h — CRC-32C (Castagnoli), the OP_MSG checksum.
#pragma once

#include <cstdint>

#include "wire/message.h"

namespace mongogate::wire {

// CRC-32C of `data`, continuing from `crc` (0 to start). Uses SSE4.2 when the CPU has it.
std::uint32_t crc32c(Bytes data, std::uint32_t crc = 0);

}  // namespace mongogate::wire
