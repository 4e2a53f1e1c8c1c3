// router/reply_bson.h — the few libbson conveniences the reply rewriters share.
//
// Promise: thin, allocation-free wrappers (except ReplyDocument, which owns one bson_t).
// Callers validate a reply with wire::validateBsonDocument before walking it, so a
// bson_iter_next that returns false always means "end of document" here.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "wire/message.h"

namespace mongogate::router::replybson {

// An owned, growable document; bson_destroy on scope exit.
class ReplyDocument {
 public:
  ReplyDocument() { bson_init(&doc_); }
  ~ReplyDocument() { bson_destroy(&doc_); }
  ReplyDocument(const ReplyDocument&) = delete;
  ReplyDocument& operator=(const ReplyDocument&) = delete;
  bson_t* get() { return &doc_; }
  void copyTo(std::vector<std::uint8_t>& out) const {
    const std::uint8_t* data = bson_get_data(&doc_);
    out.assign(data, data + doc_.len);
  }

 private:
  bson_t doc_;
};

inline std::string_view keyOf(const bson_iter_t& it) {
  return {bson_iter_key(&it), bson_iter_key_len(&it)};
}

// The string value, or an empty view with ok=false for other types.
inline std::string_view utf8Of(const bson_iter_t& it, bool* ok = nullptr) {
  if (!BSON_ITER_HOLDS_UTF8(&it)) {
    if (ok) *ok = false;
    return {};
  }
  std::uint32_t len = 0;
  const char* s = bson_iter_utf8(&it, &len);
  if (ok) *ok = true;
  return {s, len};
}

inline void appendUtf8(bson_t* doc, std::string_view key, std::string_view value) {
  bson_append_utf8(doc, key.data(), static_cast<int>(key.size()), value.data(),
                   static_cast<int>(value.size()));
}

// Copies the element unchanged under `key`. libbson prints a warning to stderr when it
// copies an array whose first key is not "0" (an upstream's odd shape): such an array is
// copied element by element instead, its keys kept, without the warning.
inline void appendAs(bson_t* doc, std::string_view key, const bson_iter_t& it) {
  const int keyLength = static_cast<int>(key.size());
  bson_iter_t child;
  if (BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &child) && bson_iter_next(&child) &&
      std::string_view(bson_iter_key(&child), bson_iter_key_len(&child)) != "0") {
    bson_t sub;
    bson_append_array_begin(doc, key.data(), keyLength, &sub);
    do {
      bson_append_iter(&sub, nullptr, 0, &child);
    } while (bson_iter_next(&child));
    bson_append_array_end(doc, &sub);
    return;
  }
  bson_append_iter(doc, key.data(), keyLength, &it);
}

// Copies the element unchanged under its own key.
inline void appendSame(bson_t* doc, const bson_iter_t& it) {
  appendAs(doc, {bson_iter_key(&it), bson_iter_key_len(&it)}, it);
}

// Array keys "0", "1", ... as libbson wants them. key() names the next entry; advance()
// once it was appended (an entry that is dropped does not use up a number).
class ArrayKeys {
 public:
  std::string_view key() {
    const char* text = nullptr;
    const std::size_t len = bson_uint32_to_string(index_, &text, buffer_, sizeof buffer_);
    return {text, len};
  }
  void advance() { ++index_; }
  std::string_view next() {
    const std::string_view k = key();
    advance();
    return k;
  }

 private:
  std::uint32_t index_ = 0;
  char buffer_[16] = {};
};

// Initialises `it` over a document that was validated beforehand.
inline bool iterOver(bson_iter_t& it, wire::Bytes doc) {
  // libbson asserts (aborts) on a null pointer: an empty span must not reach it.
  if (doc.data() == nullptr || doc.size() < 5) return false;
  return bson_iter_init_from_data(&it, doc.data(), doc.size());
}

// MongoDB's "ok" is 1 / 1.0 / true for success; anything else (or none) is a failure.
inline bool replyIsOk(wire::Bytes doc) {
  bson_iter_t it;
  if (!iterOver(it, doc) || !bson_iter_find_w_len(&it, "ok", 2)) return false;
  switch (bson_iter_type(&it)) {
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_BOOL:
      return bson_iter_as_double(&it) == 1.0;
    default:
      return false;
  }
}

}  // namespace mongogate::router::replybson
