// wire/message.cpp — frame probing, header I/O and the status vocabulary (see message.h).
#include "wire/message.h"

namespace mongogate::wire {

bool isKnownOpcode(std::int32_t op) {
  switch (static_cast<OpCode>(op)) {
    case OpCode::kReply:
    case OpCode::kUpdate:
    case OpCode::kInsert:
    case OpCode::kReserved:
    case OpCode::kQuery:
    case OpCode::kGetMore:
    case OpCode::kDelete:
    case OpCode::kKillCursors:
    case OpCode::kCompressed:
    case OpCode::kMsg:
      return true;
  }
  return false;
}

std::string_view describe(WireStatus status) {
  switch (status) {
    case WireStatus::kOk: return "ok";
    case WireStatus::kNeedMore: return "need more bytes";
    case WireStatus::kLengthTooSmall: return "message length too small";
    case WireStatus::kLengthTooLarge: return "message length too large";
    case WireStatus::kUnknownOpcode: return "unknown opcode";
    case WireStatus::kTruncated: return "truncated";
    case WireStatus::kTrailingBytes: return "trailing bytes";
    case WireStatus::kBadFlags: return "unknown required flag bits";
    case WireStatus::kNoBody: return "no body section";
    case WireStatus::kMultipleBodies: return "more than one body section";
    case WireStatus::kBadSectionKind: return "unknown section kind";
    case WireStatus::kBadBson: return "malformed BSON";
    case WireStatus::kBadCString: return "unterminated C string";
    case WireStatus::kBadSequence: return "malformed document sequence";
    case WireStatus::kTooManySequences: return "too many document sequences";
    case WireStatus::kChecksumMismatch: return "checksum mismatch";
    case WireStatus::kBadCompressor: return "unknown compressor";
    case WireStatus::kDecompressFailed: return "decompression failed";
    case WireStatus::kSizeMismatch: return "uncompressed size mismatch";
    case WireStatus::kCompressFailed: return "compression failed";
  }
  return "unknown wire status";
}

MsgHeader readHeader(const std::uint8_t* frame) {
  return MsgHeader{loadInt32LE(frame), loadInt32LE(frame + 4), loadInt32LE(frame + 8),
                   loadInt32LE(frame + 12)};
}

void writeHeader(std::uint8_t* out, const MsgHeader& header) {
  storeInt32LE(out, header.messageLength);
  storeInt32LE(out + 4, header.requestId);
  storeInt32LE(out + 8, header.responseTo);
  storeInt32LE(out + 12, header.opCode);
}

void patchHeaderIds(std::span<std::uint8_t> frame, std::int32_t requestId, std::int32_t responseTo) {
  if (frame.size() < kHeaderSize) return;
  storeInt32LE(frame.data() + 4, requestId);
  storeInt32LE(frame.data() + 8, responseTo);
}

FrameProbe probeFrame(Bytes buf, std::int32_t maxMessageSize) {
  FrameProbe probe;
  if (buf.size() < kHeaderSize) return probe;  // kNeedMore
  probe.header = readHeader(buf.data());
  if (probe.header.messageLength < static_cast<std::int32_t>(kHeaderSize)) {
    probe.status = WireStatus::kLengthTooSmall;
  } else if (probe.header.messageLength > maxMessageSize) {
    probe.status = WireStatus::kLengthTooLarge;
  } else if (!isKnownOpcode(probe.header.opCode)) {
    probe.status = WireStatus::kUnknownOpcode;
  } else {
    probe.status = WireStatus::kOk;
  }
  return probe;
}

}  // namespace mongogate::wire
