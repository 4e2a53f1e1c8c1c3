// tests/fuzz/fuzz_support.h — what the libFuzzer targets share: a check that stops the
// fuzzer at the failing input, and the input re-framed as a whole message of one opcode
// (so the fuzzer's effort goes into the fields after the header).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "wire/message.h"

namespace mongogate::wire::fuzz {

// A broken invariant: crash here, so libFuzzer saves the input (works without asserts).
inline void require(bool condition) {
  if (!condition) __builtin_trap();
}

// A failed parse must say why and point inside the frame.
inline void requireCleanError(const WireError& error, Bytes frame) {
  require(error.status != WireStatus::kOk && error.offset <= frame.size());
}

// The input with messageLength = size and opCode = `op` (size must be at least kHeaderSize).
inline std::vector<std::uint8_t> reframed(const std::uint8_t* data, std::size_t size, OpCode op) {
  std::vector<std::uint8_t> frame(data, data + size);
  storeInt32LE(frame.data(), static_cast<std::int32_t>(size));
  storeInt32LE(frame.data() + 12, static_cast<std::int32_t>(op));
  return frame;
}

}  // namespace mongogate::wire::fuzz
