// libFuzzer target: probeFrame + parseOpMsg (+ firstKey, validateBsonDocument, BsonWalker,
// splice).
//
// Each input is tried as given, then re-framed (messageLength = size, opCode = OP_MSG) so
// the fuzzer's effort goes into flags and sections, and once more with a correct checksum
// when the checksum bit is set. Whatever parses must satisfy the view's invariants and
// survive a splice round trip (same body, same sequences, checksum dropped).
#include <cstdlib>
#include <cstring>
#include <vector>

#include "wire/bson_walk.h"
#include "wire/builder.h"
#include "wire/crc32c.h"
#include "wire/op_msg.h"

using namespace mongogate::wire;

namespace {

void require(bool condition) {
  if (!condition) __builtin_trap();
}

bool within(Bytes part, Bytes whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

bool sameBytes(Bytes a, Bytes b) { return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0); }

// Walks `doc` and its embedded documents: every element lies inside its document, in
// order; a document the validator accepted (`valid`) walks to its terminator.
void walkAll(Bytes doc, bool valid, int depth) {
  BsonWalker walker(doc);
  std::size_t at = 4;
  for (BsonElement e; walker.next(e);) {
    require(e.offset == at && e.offset < e.valueOffset && e.valueOffset <= e.end && e.end < doc.size());
    at = e.end;
    if (depth < kMaxBsonDepth && !e.document().empty()) walkAll(e.document(), valid, depth + 1);
  }
  require(walker.malformed() ? !valid : at == doc.size() - 1);
}

void checkParsed(Bytes frame, const OpMsgParseOptions& options) {
  const auto r = parseOpMsg(frame, options);
  if (!r.ok()) {
    require(r.error.status != WireStatus::kOk && r.error.status != WireStatus::kNeedMore);
    require(r.error.offset <= frame.size());
    return;
  }
  const OpMsgView& m = r.value;
  require(frame.size() == static_cast<std::size_t>(m.header.messageLength));
  require(within(m.body, frame) && m.body.data() == frame.data() + m.bodyOffset && m.body.size() >= 5);
  require(within(m.sections, frame) && m.sections.data() == frame.data() + 20);
  require(m.sequenceCount <= OpMsgView::kMaxSequences);
  const bool valid = validateBsonDocument(m.body) == -1;
  if (options.validateBson) require(valid);
  (void)firstKey(m.body);
  walkAll(m.body, valid, 0);
  for (const DocumentSequence& s : m.documentSequences()) {
    require(within(s.section, m.sections) && s.section[0] == 1 && s.section.data() == frame.data() + s.offset);
    require(within(s.documents, s.section));
    require(s.identifier.find('\0') == std::string_view::npos);
  }

  // Splice the same body back in: the result parses to the same message, minus the checksum.
  std::array<std::uint8_t, 20> head{};
  const GatherList list = spliceOpMsgBody(m, m.body, 77, m.header.responseTo, head);
  std::vector<std::uint8_t> spliced;
  flatten(list, spliced);
  require(spliced.size() == frame.size() - (m.checksumPresent() ? 4 : 0));
  const auto again = parseOpMsg(Bytes(spliced), {.verifyChecksum = true, .validateBson = options.validateBson});
  require(again.ok());
  require(!again.value.checksumPresent());
  require(again.value.flags == (m.flags & ~msgflags::kChecksumPresent));
  require(sameBytes(again.value.body, m.body));
  require(again.value.sequenceCount == m.sequenceCount);
  for (std::size_t i = 0; i < m.sequenceCount; ++i) {
    require(sameBytes(again.value.sequences[i].section, m.sequences[i].section));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes input(data, size);
  const FrameProbe probe = probeFrame(input);
  require(size >= kHeaderSize ? probe.status != WireStatus::kNeedMore : probe.status == WireStatus::kNeedMore);
  checkParsed(input, {});
  if (size < kHeaderSize || size > static_cast<std::size_t>(kDefaultMaxMessageSize)) return 0;

  std::vector<std::uint8_t> frame(data, data + size);
  storeInt32LE(frame.data(), static_cast<std::int32_t>(size));
  storeInt32LE(frame.data() + 12, static_cast<std::int32_t>(OpCode::kMsg));
  checkParsed(Bytes(frame), {});
  checkParsed(Bytes(frame), {.verifyChecksum = false, .validateBson = false});
  if (size >= 24 && (frame[16] & msgflags::kChecksumPresent) != 0) {
    const std::uint32_t crc = crc32c(Bytes(frame).first(size - 4));
    storeInt32LE(frame.data() + size - 4, static_cast<std::int32_t>(crc));
    checkParsed(Bytes(frame), {});
  }
  return 0;
}
