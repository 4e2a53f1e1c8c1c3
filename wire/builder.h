// wire/builder.h — builders for replies and error replies, and the splice that rewrites
// an OP_MSG body without copying its document sequences.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "wire/message.h"
#include "wire/op_msg.h"

namespace mongogate::wire {

// Appends to `out` an OP_MSG with one kind-0 section holding `body`. The checksum bit of
// `flags` is cleared and no checksum is written.
void appendOpMsg(std::vector<std::uint8_t>& out, std::int32_t requestId, std::int32_t responseTo,
                 std::uint32_t flags, Bytes body);

// One kind-1 section to write: its identifier and its concatenated BSON documents.
struct SequenceOut {
  std::string_view identifier;
  Bytes documents;
};

// Appends to `out` an OP_MSG with a kind-0 `body` followed by the kind-1 `sequences`
// in order. The checksum bit of `flags` is cleared and no checksum is written.
void appendOpMsgWithSequences(std::vector<std::uint8_t>& out, std::int32_t requestId,
                              std::int32_t responseTo, std::uint32_t flags, Bytes body,
                              std::span<const SequenceOut> sequences);

// Appends to `out` an OP_REPLY carrying `documents` (each one BSON document).
void appendOpReply(std::vector<std::uint8_t>& out, std::int32_t requestId, std::int32_t responseTo,
                   std::int32_t responseFlags, std::int64_t cursorId, std::int32_t startingFrom,
                   std::span<const Bytes> documents);

// A MongoDB command error: {ok: 0, errmsg, code, codeName, errorLabels?}.
struct CommandError {
  std::int32_t code = 0;
  std::string_view codeName;
  std::string_view errmsg;
  std::span<const std::string_view> labels{};
};

// Appends to `out` the BSON document {ok: 0.0, errmsg, code, codeName[, errorLabels]}.
void appendErrorDocument(std::vector<std::uint8_t>& out, const CommandError& error);

// Appends an OP_MSG reply whose body is the error document.
void appendOpMsgError(std::vector<std::uint8_t>& out, std::int32_t requestId,
                      std::int32_t responseTo, const CommandError& error);

// Appends an OP_REPLY (QueryFailure flag set) whose one document is
// {$err: errmsg, code, codeName, ok: 0}: the legacy form of an error.
void appendOpReplyError(std::vector<std::uint8_t>& out, std::int32_t requestId,
                        std::int32_t responseTo, const CommandError& error);

// A message as up to kMaxParts borrowed pieces, to be written with one gather write.
struct GatherList {
  static constexpr std::size_t kMaxParts = 10;
  std::array<Bytes, kMaxParts> parts{};
  std::size_t count = 0;
  std::size_t totalSize() const;
  std::span<const Bytes> view() const { return {parts.data(), count}; }
  // Appends `part`; an empty part is skipped, and a part that starts where the previous
  // one ends in memory extends it (fewer pieces for the kernel to walk).
  void push(Bytes part);
};

// One byte range [begin, end) of a document replaced by `bytes` (borrowed).
struct ByteEdit {
  std::uint32_t begin = 0;
  std::uint32_t end = 0;
  Bytes bytes;
};

// The most edits spliceOpMsgBodyEdits takes (a cursor reply's ns needs three: the
// reply's length, the cursor document's length and the ns element).
inline constexpr std::size_t kMaxBodyEdits = 3;

// Rewrites an OP_MSG by splicing: a new header (length recomputed, the given ids) and
// flags (checksum bit cleared) are written into `head`; the result is
//   head | the sections before the body (kind byte 0 included) | newBody |
//   the sections after the body (the checksum dropped).
// Document sequences are not copied. `newBody` and `head` must outlive the list.
GatherList spliceOpMsgBody(const OpMsgView& message, Bytes newBody, std::int32_t requestId,
                           std::int32_t responseTo, std::array<std::uint8_t, 20>& head);

// The same with the new body given as `edits` of the old one (sorted, not overlapping,
// inside the body, at most kMaxBodyEdits): the unchanged stretches of the body are
// borrowed from the message, so a large reply is never copied. The edits' bytes, the
// message and `head` must outlive the list.
GatherList spliceOpMsgBodyEdits(const OpMsgView& message, std::span<const ByteEdit> edits,
                                std::int32_t requestId, std::int32_t responseTo,
                                std::array<std::uint8_t, 20>& head);

// Replaces `out` with `document` after `edits` (sorted, not overlapping, inside it).
void applyEdits(Bytes document, std::span<const ByteEdit> edits, std::vector<std::uint8_t>& out);

// Appends every part of `list` to `out`.
void flatten(const GatherList& list, std::vector<std::uint8_t>& out);

}  // namespace mongogate::wire
