// wire/builder.cpp — reply builders, error documents and the OP_MSG body splice
// (see builder.h).
//
// References: MongoDB specifications message/OP_MSG.md; MongoDB Wire Protocol, OP_REPLY.
// Builders append a header with messageLength 0 and patch it once the body is written,
// so nothing is built twice.
#include "wire/builder.h"

#include <bson/bson.h>

#include <cassert>

#include "wire/legacy.h"

namespace mongogate::wire {
namespace {

std::size_t beginMessage(std::vector<std::uint8_t>& out, std::int32_t requestId,
                         std::int32_t responseTo, OpCode opCode) {
  const std::size_t start = out.size();
  out.resize(start + kHeaderSize);
  writeHeader(out.data() + start, MsgHeader{0, requestId, responseTo, static_cast<std::int32_t>(opCode)});
  return start;
}

void endMessage(std::vector<std::uint8_t>& out, std::size_t start) {
  storeInt32LE(out.data() + start, static_cast<std::int32_t>(out.size() - start));
}

void appendInt32(std::vector<std::uint8_t>& out, std::int32_t v) {
  const std::size_t at = out.size();
  out.resize(at + 4);
  storeInt32LE(out.data() + at, v);
}

void appendInt64(std::vector<std::uint8_t>& out, std::int64_t v) {
  const std::size_t at = out.size();
  out.resize(at + 8);
  storeInt64LE(out.data() + at, v);
}

void appendBytes(std::vector<std::uint8_t>& out, Bytes bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

// bson_append_utf8 turns a NULL value into a BSON null, and an empty view may have one.
void appendUtf8(bson_t* doc, const char* key, std::string_view value) {
  bson_append_utf8(doc, key, -1, value.empty() ? "" : value.data(), static_cast<int>(value.size()));
}

void appendBson(std::vector<std::uint8_t>& out, const bson_t* doc) {
  appendBytes(out, Bytes(bson_get_data(doc), doc->len));
}

}  // namespace

void appendOpMsg(std::vector<std::uint8_t>& out, std::int32_t requestId, std::int32_t responseTo,
                 std::uint32_t flags, Bytes body) {
  const std::size_t start = beginMessage(out, requestId, responseTo, OpCode::kMsg);
  appendInt32(out, static_cast<std::int32_t>(flags & ~msgflags::kChecksumPresent));
  out.push_back(0);  // section kind 0
  appendBytes(out, body);
  endMessage(out, start);
}

void appendOpMsgWithSequences(std::vector<std::uint8_t>& out, std::int32_t requestId,
                              std::int32_t responseTo, std::uint32_t flags, Bytes body,
                              std::span<const SequenceOut> sequences) {
  const std::size_t start = beginMessage(out, requestId, responseTo, OpCode::kMsg);
  appendInt32(out, static_cast<std::int32_t>(flags & ~msgflags::kChecksumPresent));
  out.push_back(0);  // section kind 0
  appendBytes(out, body);
  for (const SequenceOut& sequence : sequences) {
    out.push_back(1);  // section kind 1
    // size covers itself, the identifier with its NUL, and the documents
    appendInt32(out, static_cast<std::int32_t>(4 + sequence.identifier.size() + 1 + sequence.documents.size()));
    out.insert(out.end(), sequence.identifier.begin(), sequence.identifier.end());
    out.push_back(0);
    appendBytes(out, sequence.documents);
  }
  endMessage(out, start);
}

void appendOpReply(std::vector<std::uint8_t>& out, std::int32_t requestId, std::int32_t responseTo,
                   std::int32_t responseFlags, std::int64_t cursorId, std::int32_t startingFrom,
                   std::span<const Bytes> documents) {
  const std::size_t start = beginMessage(out, requestId, responseTo, OpCode::kReply);
  appendInt32(out, responseFlags);
  appendInt64(out, cursorId);
  appendInt32(out, startingFrom);
  appendInt32(out, static_cast<std::int32_t>(documents.size()));
  for (const Bytes& doc : documents) appendBytes(out, doc);
  endMessage(out, start);
}

void appendErrorDocument(std::vector<std::uint8_t>& out, const CommandError& error) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_DOUBLE(&doc, "ok", 0.0);
  appendUtf8(&doc, "errmsg", error.errmsg);
  BSON_APPEND_INT32(&doc, "code", error.code);
  appendUtf8(&doc, "codeName", error.codeName);
  if (!error.labels.empty()) {
    bson_t labels;
    BSON_APPEND_ARRAY_BEGIN(&doc, "errorLabels", &labels);
    char keyBuffer[16];
    for (std::size_t i = 0; i < error.labels.size(); ++i) {
      const char* key = nullptr;
      bson_uint32_to_string(static_cast<std::uint32_t>(i), &key, keyBuffer, sizeof keyBuffer);
      appendUtf8(&labels, key, error.labels[i]);
    }
    bson_append_array_end(&doc, &labels);
  }
  appendBson(out, &doc);
  bson_destroy(&doc);
}

void appendOpMsgError(std::vector<std::uint8_t>& out, std::int32_t requestId,
                      std::int32_t responseTo, const CommandError& error) {
  const std::size_t start = beginMessage(out, requestId, responseTo, OpCode::kMsg);
  appendInt32(out, 0);  // flagBits
  out.push_back(0);     // section kind 0
  appendErrorDocument(out, error);
  endMessage(out, start);
}

void appendOpReplyError(std::vector<std::uint8_t>& out, std::int32_t requestId,
                        std::int32_t responseTo, const CommandError& error) {
  const std::size_t start = beginMessage(out, requestId, responseTo, OpCode::kReply);
  appendInt32(out, replyflags::kQueryFailure);
  appendInt64(out, 0);  // cursorId
  appendInt32(out, 0);  // startingFrom
  appendInt32(out, 1);  // numberReturned
  bson_t doc = BSON_INITIALIZER;
  appendUtf8(&doc, "$err", error.errmsg);
  BSON_APPEND_INT32(&doc, "code", error.code);
  appendUtf8(&doc, "codeName", error.codeName);
  BSON_APPEND_DOUBLE(&doc, "ok", 0.0);
  appendBson(out, &doc);
  bson_destroy(&doc);
  endMessage(out, start);
}

std::size_t GatherList::totalSize() const {
  std::size_t total = 0;
  for (const Bytes& part : view()) total += part.size();
  return total;
}

void GatherList::push(Bytes part) {
  if (part.empty()) return;
  if (count > 0) {
    Bytes& last = parts[count - 1];
    if (last.data() + last.size() == part.data()) {
      last = Bytes(last.data(), last.size() + part.size());
      return;
    }
  }
  assert(count < kMaxParts);  // the splices below stay within kMaxParts by construction
  parts[count++] = part;
}

void GatherList::consume(std::size_t n) {
  std::size_t first = 0;
  while (first < count && n >= parts[first].size()) n -= parts[first++].size();
  if (first < count) parts[first] = parts[first].subspan(n);
  for (std::size_t i = first; i < count; ++i) parts[i - first] = parts[i];
  count -= first;
}

namespace {

// The new header and flags for a spliced OP_MSG of `length` bytes.
void writeSpliceHead(const OpMsgView& message, std::size_t length, std::int32_t requestId,
                     std::int32_t responseTo, std::array<std::uint8_t, 20>& head) {
  writeHeader(head.data(), MsgHeader{static_cast<std::int32_t>(length), requestId, responseTo,
                                     static_cast<std::int32_t>(OpCode::kMsg)});
  storeInt32LE(head.data() + kHeaderSize,
               static_cast<std::int32_t>(message.flags & ~msgflags::kChecksumPresent));
}

// The sections around the body: message.sections starts at frame offset 20 and the body
// lies inside it; the checksum is not part of the sections.
struct AroundBody {
  Bytes before;
  Bytes after;
};
AroundBody aroundBody(const OpMsgView& message) {
  constexpr std::size_t kSectionsOffset = kHeaderSize + 4;
  const std::size_t beforeSize = message.bodyOffset - kSectionsOffset;
  return {message.sections.first(beforeSize), message.sections.subspan(beforeSize + message.body.size())};
}

}  // namespace

GatherList spliceOpMsgBody(const OpMsgView& message, Bytes newBody, std::int32_t requestId,
                           std::int32_t responseTo, std::array<std::uint8_t, 20>& head) {
  const AroundBody around = aroundBody(message);
  writeSpliceHead(message, head.size() + around.before.size() + newBody.size() + around.after.size(), requestId,
                  responseTo, head);
  GatherList list;
  for (Bytes part : {Bytes(head), around.before, newBody, around.after}) list.push(part);
  return list;
}

GatherList spliceOpMsgBodyEdits(const OpMsgView& message, std::span<const ByteEdit> edits,
                                std::int32_t requestId, std::int32_t responseTo,
                                std::array<std::uint8_t, 20>& head) {
  // head, before, then per edit an unchanged stretch and the edit's bytes, then the rest
  // of the body and the sections after it: 2 + 2 * edits + 2 parts at most.
  static_assert(GatherList::kMaxParts >= 4 + 2 * kMaxBodyEdits);
  const AroundBody around = aroundBody(message);
  const Bytes body = message.body;
  assert(edits.size() <= kMaxBodyEdits);
  edits = edits.first(std::min(edits.size(), kMaxBodyEdits));
  std::size_t bodySize = body.size();
  for (const ByteEdit& edit : edits) bodySize = bodySize - (edit.end - edit.begin) + edit.bytes.size();
  writeSpliceHead(message, head.size() + around.before.size() + bodySize + around.after.size(), requestId,
                  responseTo, head);
  GatherList list;
  list.push(Bytes(head));
  list.push(around.before);
  std::size_t at = 0;
  for (const ByteEdit& edit : edits) {
    list.push(body.subspan(at, edit.begin - at));
    list.push(edit.bytes);
    at = edit.end;
  }
  list.push(body.subspan(at));
  list.push(around.after);
  return list;
}

void applyEdits(Bytes document, std::span<const ByteEdit> edits, std::vector<std::uint8_t>& out) {
  out.clear();
  std::size_t at = 0;
  for (const ByteEdit& edit : edits) {
    appendBytes(out, document.subspan(at, edit.begin - at));
    appendBytes(out, edit.bytes);
    at = edit.end;
  }
  appendBytes(out, document.subspan(at));
}

void flatten(const GatherList& list, std::vector<std::uint8_t>& out) {
  out.reserve(out.size() + list.totalSize());
  for (const Bytes& part : list.view()) appendBytes(out, part);
}

}  // namespace mongogate::wire
