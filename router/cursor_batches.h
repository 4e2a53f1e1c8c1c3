// router/cursor_batches.h — reading a cursor reply to its end, for fan-outs.
//
// Promise: pure functions over reply bodies. mongogate merges cross-store views itself,
// so each part's cursor must be drained (getMore until id 0) and its batches joined
// before the merge; no upstream cursor is left open.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "wire/message.h"

namespace mongogate::router {

// cursor.id of a cursor reply; 0 when the reply has no cursor (or is malformed).
std::int64_t cursorIdOf(wire::Bytes replyBody);

// Appends the BSON body {getMore: id, collection, $db}.
void appendGetMore(std::vector<std::uint8_t>& out, std::int64_t cursorId, std::string_view collection,
                   std::string_view database);

// Joins a first reply (cursor.firstBatch) and the replies of the getMores that followed
// (cursor.nextBatch) into one reply {cursor: {id: 0, ns, firstBatch: [every document]}, ...}
// keeping the first reply's other fields. Returns false when a reply is not a cursor
// reply with ok: 1 (the caller answers with that reply instead).
bool joinCursorBatches(wire::Bytes firstReply, std::span<const std::vector<std::uint8_t>> laterReplies,
                       std::vector<std::uint8_t>& out);

}  // namespace mongogate::router
