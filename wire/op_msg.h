// wire/op_msg.h — OP_MSG (opcode 2013): a non-owning view and its parser.
//
// Reference: MongoDB specifications, message/OP_MSG.md.
// Layout: header(16) | flagBits(uint32) | sections... | [checksum(uint32) if bit 0].
// Section kind 0: one BSON document (the command body). Kind 1: int32 size, cstring
// identifier, then zero or more BSON documents, all within `size`.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "wire/message.h"

namespace mongogate::wire {

namespace msgflags {
inline constexpr std::uint32_t kChecksumPresent = 1u << 0;
inline constexpr std::uint32_t kMoreToCome = 1u << 1;
inline constexpr std::uint32_t kExhaustAllowed = 1u << 16;
// Bits 0-15 are "required": a receiver must reject a message with an unknown one set.
inline constexpr std::uint32_t kRequiredMask = 0x0000ffffu;
inline constexpr std::uint32_t kKnownRequired = kChecksumPresent | kMoreToCome;
}  // namespace msgflags

// One kind-1 section. Every field borrows from the frame buffer (non-owning).
struct DocumentSequence {
  std::string_view identifier;  // e.g. "documents", "updates", "deletes", "ops", "nsInfo"
  Bytes documents;              // the concatenated BSON documents, borrowed
  Bytes section;                // the whole section, kind byte included, borrowed
  std::size_t offset = 0;       // offset of the kind byte in the frame
};

// A parsed OP_MSG. Every Bytes / string_view borrows from the frame that was parsed:
// the view is valid only while that buffer is alive and unchanged.
struct OpMsgView {
  static constexpr std::size_t kMaxSequences = 8;

  MsgHeader header{};
  std::uint32_t flags = 0;
  Bytes body;                   // the kind-0 BSON document, borrowed
  std::size_t bodyOffset = 0;   // offset of the body document (after its kind byte) in the frame
  Bytes sections;               // all section bytes (from offset 20 up to the checksum), borrowed
  std::array<DocumentSequence, kMaxSequences> sequences{};
  std::size_t sequenceCount = 0;
  std::uint32_t checksum = 0;   // meaningful only when checksumPresent()

  bool checksumPresent() const { return flags & msgflags::kChecksumPresent; }
  bool moreToCome() const { return flags & msgflags::kMoreToCome; }
  bool exhaustAllowed() const { return flags & msgflags::kExhaustAllowed; }
  std::span<const DocumentSequence> documentSequences() const {
    return {sequences.data(), sequenceCount};
  }
};

struct OpMsgParseOptions {
  bool verifyChecksum = true;  // check the CRC-32C when the checksum bit is set
  bool validateBson = true;    // fully walk the body and every sequence document
};

// Parses a whole frame (header included, frame.size() == messageLength).
// Enforces: opcode 2013, exactly one kind-0 section, only kinds 0 and 1, no unknown
// required flag bits, every size inside the message, no trailing bytes, the checksum,
// at most kMaxSequences kind-1 sections with distinct identifiers. Does not allocate.
// On error, error.offset is the offset in the frame of the offending field.
Parsed<OpMsgView> parseOpMsg(Bytes frame, const OpMsgParseOptions& options = {});

// The first key of a BSON document (the command name of an OP_MSG body), or an empty
// view when the document is empty or malformed. Borrows from `document`.
std::string_view firstKey(Bytes document);

// Deepest nesting validateBsonDocument accepts: documents/arrays below the top-level
// document (the server's default maxBSONDepth). Deeper input is reported as malformed.
inline constexpr int kMaxBsonDepth = 200;

// Structural validation of one BSON document (sizes, types, nesting, terminators).
// Returns the offset inside `document` of the first problem, or -1 when valid.
std::ptrdiff_t validateBsonDocument(Bytes document);

}  // namespace mongogate::wire
