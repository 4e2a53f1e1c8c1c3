// router/bson_edit.h — small libbson helpers for the router: read facts straight from
// BSON bytes with iterators, and build a replacement document only when one is needed.
//
// Promise: no document trees; every std::string_view returned borrows from the bytes the
// iterator walks. Nothing here throws.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wire/bson_walk.h"
#include "wire/message.h"

namespace mongogate::router::bson_edit {

// Owns one bson_t (built with bson_init), destroyed with the object.
class Document {
 public:
  Document() { bson_init(&doc_); }
  ~Document() { bson_destroy(&doc_); }
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

  bson_t* get() { return &doc_; }
  const bson_t* get() const { return &doc_; }
  wire::Bytes bytes() const { return {bson_get_data(&doc_), doc_.len}; }
  std::vector<std::uint8_t> toVector() const {
    const auto b = bytes();
    return {b.begin(), b.end()};
  }

 private:
  bson_t doc_;
};

inline bool initIter(bson_iter_t& it, wire::Bytes doc) {
  return bson_iter_init_from_data(&it, doc.data(), doc.size());
}

inline std::string_view keyOf(const bson_iter_t& it) {
  return {bson_iter_key(&it), bson_iter_key_len(&it)};
}

// True when the last bson_iter_next stopped on corrupt data rather than the end.
inline bool stoppedOnCorruption(const bson_iter_t& it) { return it.err_off != 0; }

// The string value of a UTF-8 element; nullopt for any other type.
std::optional<std::string_view> utf8Of(const bson_iter_t& it);

// An integral value of an int32, int64 or integral double element.
std::optional<std::int64_t> integerOf(const bson_iter_t& it);

// The bytes of an embedded document or array element (empty span for other types).
wire::Bytes subdocumentOf(const bson_iter_t& it);

// Positions `it` on the top-level `key` of `doc`; false when absent or malformed.
bool findKey(wire::Bytes doc, std::string_view key, bson_iter_t& it);

// The string value of the top-level `key` of `doc`, nullopt when absent or not a string.
// (Found with wire::BsonWalker: a fraction of the cost of a libbson iterator.)
inline std::optional<std::string_view> findUtf8(wire::Bytes doc, std::string_view key) {
  wire::BsonElement e;
  if (!wire::findElement(doc, key, e)) return std::nullopt;
  return e.utf8();
}

// A libbson iterator standing on the element `e` of `doc` (found by a wire::BsonWalker),
// for code written against bson_iter_t; false if libbson does not see that element there.
inline bool iterAt(bson_iter_t& it, wire::Bytes doc, const wire::BsonElement& e) {
  return bson_iter_init_from_data_at_offset(&it, doc.data(), doc.size(), e.offset,
                                            static_cast<std::uint32_t>(e.key.size())) &&
         it.off == e.offset && it.next_off == e.end;
}

// Calls fn(Bytes document) for each document of a kind-1 sequence payload (concatenated
// BSON documents). Returns false when the payload is malformed.
template <class Fn>
bool forEachDocument(wire::Bytes documents, Fn&& fn) {
  std::size_t off = 0;
  while (off < documents.size()) {
    if (documents.size() - off < 5) return false;
    const std::int32_t len = wire::loadInt32LE(documents.data() + off);
    if (len < 5 || static_cast<std::size_t>(len) > documents.size() - off) return false;
    fn(documents.subspan(off, static_cast<std::size_t>(len)));
    off += static_cast<std::size_t>(len);
  }
  return true;
}

// Copies the element `it` stands on into `out`, under `key`, or under its own key.
// (libbson prints a warning on stderr for an array whose first key is not "0": such an
// array, which only a broken or hostile client sends, is copied element by element so
// that no client can make mongogate write to stderr.)
void copyElementAs(bson_t* out, std::string_view key, const bson_iter_t& it);
void copyElement(bson_t* out, const bson_iter_t& it);

inline void appendUtf8(bson_t* out, std::string_view key, std::string_view value) {
  bson_append_utf8(out, key.data(), static_cast<int>(key.size()), value.data(),
                   static_cast<int>(value.size()));
}

// A namespace "db.coll" split at its first dot (collection names may hold dots).
struct NamespaceParts {
  std::string_view database;
  std::string_view collection;
};
std::optional<NamespaceParts> splitNamespace(std::string_view ns);
std::string joinNamespace(std::string_view database, std::string_view collection);

// "^<prefix>_" with the regular-expression metacharacters of `prefix` escaped.
std::string prefixRegex(std::string_view prefix);

// An identifier as text: ObjectId as 24 hex digits, strings as they are, integers in
// decimal; empty for other types.
std::string idText(const bson_iter_t& it);

}  // namespace mongogate::router::bson_edit
