// wire/op_msg.cpp — the OP_MSG parser (see op_msg.h).
//
// Reference: MongoDB specifications, source/message/OP_MSG.md. Error offsets name the
// field that failed: 16 for flagBits, the kind byte for a section-level problem, the
// size field of a document or sequence that does not fit, the checksum for a mismatch.
#include "wire/op_msg.h"

#include "wire/crc32c.h"
#include "wire/reader.h"

namespace mongogate::wire {
namespace {

constexpr std::size_t kFlagsOffset = kHeaderSize;
constexpr std::size_t kSectionsOffset = kHeaderSize + 4;
// flagBits + the smallest body section (kind byte + empty document).
constexpr std::size_t kMinOpMsgSize = kSectionsOffset + 1 + 5;

// One kind-1 section starting at the kind byte `kindOffset`; `r` is positioned after it.
WireError readSequence(Bytes frame, detail::FrameReader& r, std::size_t kindOffset,
                       bool validate, DocumentSequence& out) {
  const std::size_t sizeOffset = r.pos();
  std::int32_t size = 0;
  if (!r.readInt32(size)) return {WireStatus::kTruncated, sizeOffset};
  // The size covers itself and at least the identifier's NUL.
  if (size < 5) return {WireStatus::kBadSequence, sizeOffset};
  if (static_cast<std::size_t>(size) - 4 > r.remaining()) return {WireStatus::kTruncated, sizeOffset};
  const std::size_t sectionEnd = sizeOffset + static_cast<std::size_t>(size);

  detail::FrameReader inner(frame, r.pos(), sectionEnd);
  if (auto e = inner.readCString(out.identifier); !e.ok()) return e;
  const std::size_t documentsOffset = inner.pos();
  while (!inner.atEnd()) {
    Bytes doc;
    if (auto e = inner.readDocument(doc, validate, WireStatus::kBadSequence); !e.ok()) return e;
  }
  out.documents = frame.subspan(documentsOffset, sectionEnd - documentsOffset);
  out.section = frame.subspan(kindOffset, sectionEnd - kindOffset);
  out.offset = kindOffset;
  r.skip(sectionEnd - r.pos());
  return {};
}

// parseOpMsg's work, filling `view` in place; returns the first error.
WireError parseInto(Bytes frame, const OpMsgParseOptions& options, OpMsgView& view) {
  if (auto e = detail::checkFrame(frame, OpCode::kMsg, kSectionsOffset); !e.ok()) return e;

  view.header = readHeader(frame.data());
  view.flags = loadUInt32LE(frame.data() + kFlagsOffset);
  if ((view.flags & msgflags::kRequiredMask & ~msgflags::kKnownRequired) != 0) {
    return {WireStatus::kBadFlags, kFlagsOffset};
  }
  const std::size_t checksumSize = view.checksumPresent() ? 4 : 0;
  if (frame.size() < kMinOpMsgSize + checksumSize) return {WireStatus::kLengthTooSmall, 0};

  const std::size_t sectionsEnd = frame.size() - checksumSize;
  if (view.checksumPresent()) {
    view.checksum = loadUInt32LE(frame.data() + sectionsEnd);
    if (options.verifyChecksum && crc32c(frame.first(sectionsEnd)) != view.checksum) {
      return {WireStatus::kChecksumMismatch, sectionsEnd};
    }
  }
  view.sections = frame.subspan(kSectionsOffset, sectionsEnd - kSectionsOffset);

  detail::FrameReader r(frame, kSectionsOffset, sectionsEnd);
  bool haveBody = false;
  while (!r.atEnd()) {
    const std::size_t kindOffset = r.pos();
    std::uint8_t kind = 0;
    r.readUInt8(kind);
    if (kind == 0) {
      if (haveBody) return {WireStatus::kMultipleBodies, kindOffset};
      view.bodyOffset = r.pos();
      if (auto e = r.readDocument(view.body, options.validateBson); !e.ok()) return e;
      haveBody = true;
    } else if (kind == 1) {
      if (view.sequenceCount == OpMsgView::kMaxSequences) {
        return {WireStatus::kTooManySequences, kindOffset};
      }
      DocumentSequence& seq = view.sequences[view.sequenceCount];
      if (auto e = readSequence(frame, r, kindOffset, options.validateBson, seq); !e.ok()) return e;
      for (std::size_t i = 0; i < view.sequenceCount; ++i) {
        // OP_MSG.md: each identifier MUST be unique per message.
        if (view.sequences[i].identifier == seq.identifier) {
          return {WireStatus::kBadSequence, kindOffset + 5};
        }
      }
      ++view.sequenceCount;
    } else {
      return {WireStatus::kBadSectionKind, kindOffset};
    }
  }
  if (!haveBody) return {WireStatus::kNoBody, kSectionsOffset};
  return {};
}

}  // namespace

Parsed<OpMsgView> parseOpMsg(Bytes frame, const OpMsgParseOptions& options) {
  Parsed<OpMsgView> result;  // one return of one object: built in place, never copied
  result.error = parseInto(frame, options, result.value);
  return result;
}

}  // namespace mongogate::wire
