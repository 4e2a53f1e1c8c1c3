// wire/legacy.h — OP_QUERY (2004) and OP_REPLY (1), kept only for the legacy handshake.
//
// Drivers still send their first hello/isMaster as OP_QUERY on "admin.$cmd" and expect an
// OP_REPLY back. MongoDB 6+ rejects every other legacy opcode; so does mongogate.
// Reference: MongoDB Wire Protocol, "Legacy Opcodes".
#pragma once

#include <cstdint>
#include <string_view>

#include "wire/message.h"

namespace mongogate::wire {

namespace queryflags {
inline constexpr std::int32_t kSecondaryOk = 1 << 2;
inline constexpr std::int32_t kExhaust = 1 << 6;
}  // namespace queryflags

namespace replyflags {
inline constexpr std::int32_t kCursorNotFound = 1 << 0;
inline constexpr std::int32_t kQueryFailure = 1 << 1;
inline constexpr std::int32_t kAwaitCapable = 1 << 3;
}  // namespace replyflags

// Every field borrows from the parsed frame (non-owning).
struct OpQueryView {
  MsgHeader header{};
  std::int32_t flags = 0;
  std::string_view fullCollectionName;  // e.g. "admin.$cmd"
  std::int32_t numberToSkip = 0;
  std::int32_t numberToReturn = 0;
  Bytes query;                          // BSON, borrowed
  Bytes returnFieldsSelector;           // BSON, borrowed; empty when absent

  // "admin" for "admin.$cmd"; the part before the first '.'.
  std::string_view database() const;
  // True when the collection part is "$cmd".
  bool isCommand() const;
};

// Every field borrows from the parsed frame (non-owning).
struct OpReplyView {
  MsgHeader header{};
  std::int32_t responseFlags = 0;
  std::int64_t cursorId = 0;
  std::int32_t startingFrom = 0;
  std::int32_t numberReturned = 0;
  Bytes documents;  // numberReturned concatenated BSON documents, borrowed
};

// Both parse a whole frame (frame.size() == messageLength) and fully validate every
// document. OP_QUERY: flags, cstring fullCollectionName, numberToSkip, numberToReturn,
// the query, an optional selector, nothing after. OP_REPLY: exactly numberReturned
// documents fill the rest (fewer: kTruncated; more bytes: kTrailingBytes; a negative
// count: kBadSequence at offset 32). error.offset is the offending field's frame offset.
Parsed<OpQueryView> parseOpQuery(Bytes frame);
Parsed<OpReplyView> parseOpReply(Bytes frame);

}  // namespace mongogate::wire
