// wire/legacy.cpp — OP_QUERY and OP_REPLY parsers (see legacy.h).
//
// Reference: MongoDB Wire Protocol, "Legacy Opcodes". Every document is fully validated;
// error offsets name the field that failed.
#include "wire/legacy.h"

#include "wire/op_msg.h"
#include "wire/reader.h"

namespace mongogate::wire {
namespace {

// flags + the shortest collection name ("\0") + skip + return + an empty query document.
constexpr std::size_t kMinOpQuerySize = kHeaderSize + 4 + 1 + 4 + 4 + 5;
// responseFlags + cursorId + startingFrom + numberReturned.
constexpr std::size_t kOpReplyDocumentsOffset = kHeaderSize + 4 + 8 + 4 + 4;
constexpr std::size_t kOpReplyNumberReturnedOffset = kOpReplyDocumentsOffset - 4;

}  // namespace

std::string_view OpQueryView::database() const {
  return fullCollectionName.substr(0, fullCollectionName.find('.'));
}

bool OpQueryView::isCommand() const {
  const auto dot = fullCollectionName.find('.');
  return dot != std::string_view::npos && fullCollectionName.substr(dot + 1) == "$cmd";
}

Parsed<OpQueryView> parseOpQuery(Bytes frame) {
  Parsed<OpQueryView> result;
  auto fail = [&result](WireError e) {
    result.error = e;
    return result;
  };
  if (auto e = detail::checkFrame(frame, OpCode::kQuery, kMinOpQuerySize); !e.ok()) return fail(e);

  OpQueryView& view = result.value;
  view.header = readHeader(frame.data());
  detail::FrameReader r(frame, kHeaderSize, frame.size());
  r.readInt32(view.flags);  // in bounds: size >= kMinOpQuerySize
  if (auto e = r.readCString(view.fullCollectionName); !e.ok()) return fail(e);
  if (!r.readInt32(view.numberToSkip)) return fail({WireStatus::kTruncated, r.pos()});
  if (!r.readInt32(view.numberToReturn)) return fail({WireStatus::kTruncated, r.pos()});
  if (auto e = r.readDocument(view.query, true); !e.ok()) return fail(e);
  if (!r.atEnd()) {
    if (auto e = r.readDocument(view.returnFieldsSelector, true); !e.ok()) return fail(e);
  }
  if (!r.atEnd()) return fail({WireStatus::kTrailingBytes, r.pos()});
  return result;
}

Parsed<OpReplyView> parseOpReply(Bytes frame) {
  Parsed<OpReplyView> result;
  auto fail = [&result](WireError e) {
    result.error = e;
    return result;
  };
  if (auto e = detail::checkFrame(frame, OpCode::kReply, kOpReplyDocumentsOffset); !e.ok()) {
    return fail(e);
  }

  OpReplyView& view = result.value;
  view.header = readHeader(frame.data());
  detail::FrameReader r(frame, kHeaderSize, frame.size());
  // In bounds: size >= kOpReplyDocumentsOffset.
  r.readInt32(view.responseFlags);
  r.readInt64(view.cursorId);
  r.readInt32(view.startingFrom);
  r.readInt32(view.numberReturned);
  if (view.numberReturned < 0) return fail({WireStatus::kBadSequence, kOpReplyNumberReturnedOffset});

  for (std::int32_t i = 0; i < view.numberReturned; ++i) {
    // A count larger than the documents present stops at the end of the message.
    Bytes doc;
    if (auto e = r.readDocument(doc, true); !e.ok()) return fail(e);
  }
  if (!r.atEnd()) return fail({WireStatus::kTrailingBytes, r.pos()});
  view.documents = frame.subspan(kOpReplyDocumentsOffset);
  return result;
}

}  // namespace mongogate::wire
