// libFuzzer target: parseOpCompressed + decompressFrame, and compressFrame round trips.
//
// Each input is tried as given and re-framed (messageLength = size, opCode =
// OP_COMPRESSED), with a 1 MiB maximum so one input never allocates more. A payload that
// decompresses must give a frame of exactly 16 + uncompressedSize bytes that survives
// compress -> parse -> decompress unchanged. The input is also compressed as if it were
// an OP_MSG frame, with the compressor its first byte picks, and must come back intact.
#include <cstring>
#include <vector>

#include "wire/compression.h"
#include "fuzz_support.h"

using namespace mongogate::wire;
using namespace mongogate::wire::fuzz;

namespace {

constexpr std::int32_t kMaxSize = 1 << 20;

bool sameBytes(const std::vector<std::uint8_t>& a, Bytes b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

void roundTrip(Bytes original, Compressor c) {
  std::vector<std::uint8_t> compressed, restored;
  require(compressFrame(original, c, compressed).ok());
  const auto parsed = parseOpCompressed(Bytes(compressed));
  require(parsed.ok() && parsed.value.compressor == c);
  require(decompressFrame(parsed.value, restored).ok());
  require(sameBytes(restored, original));
}

void checkParsed(Bytes frame) {
  const auto r = parseOpCompressed(frame, kMaxSize);
  if (!r.ok()) {
    requireCleanError(r.error, frame);
    return;
  }
  std::vector<std::uint8_t> out;
  const WireError e = decompressFrame(r.value, out);
  if (!e.ok()) {
    require(out.empty() && e.offset <= frame.size());
    return;
  }
  require(out.size() == kHeaderSize + static_cast<std::size_t>(r.value.uncompressedSize));
  const MsgHeader h = readHeader(out.data());
  require(h.messageLength == static_cast<std::int32_t>(out.size()) && h.opCode == r.value.originalOpcode);
  require(h.requestId == r.value.header.requestId && h.responseTo == r.value.header.responseTo);
  require(probeFrame(Bytes(out), kMaxSize).status == WireStatus::kOk);
  roundTrip(Bytes(out), r.value.compressor);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  checkParsed(Bytes(data, size));
  if (size < kHeaderSize || size > static_cast<std::size_t>(kMaxSize)) return 0;
  std::vector<std::uint8_t> frame = reframed(data, size, OpCode::kCompressed);
  checkParsed(Bytes(frame));

  storeInt32LE(frame.data() + 12, static_cast<std::int32_t>(OpCode::kMsg));
  roundTrip(Bytes(frame), static_cast<Compressor>(data[0] % 4));
  return 0;
}
