#include "router/cursor_batches.h"

#include <bson/bson.h>

#include <cstring>
#include <string>

namespace mongogate::router {
namespace {

bool initIter(bson_iter_t& it, wire::Bytes body) {
  return bson_iter_init_from_data(&it, body.data(), body.size());
}

bool replyOk(wire::Bytes body) {
  bson_iter_t it;
  return initIter(it, body) && bson_iter_find(&it, "ok") && bson_iter_as_bool(&it);
}

// Appends every document of cursor.<batchKey> to `array`, numbering from `index`.
bool appendBatch(wire::Bytes body, const char* batchKey, bson_t* array, std::uint32_t& index) {
  bson_iter_t it;
  bson_iter_t batch;
  if (!initIter(it, body) || !bson_iter_find(&it, "cursor") || !BSON_ITER_HOLDS_DOCUMENT(&it)) return false;
  bson_iter_t cursor;
  if (!bson_iter_recurse(&it, &cursor) || !bson_iter_find(&cursor, batchKey) || !BSON_ITER_HOLDS_ARRAY(&cursor) ||
      !bson_iter_recurse(&cursor, &batch)) {
    return false;
  }
  while (bson_iter_next(&batch)) {
    const std::string key = std::to_string(index++);
    bson_append_iter(array, key.c_str(), static_cast<int>(key.size()), &batch);
  }
  return true;
}

}  // namespace

std::int64_t cursorIdOf(wire::Bytes replyBody) {
  bson_iter_t it;
  bson_iter_t id;
  if (initIter(it, replyBody) && bson_iter_find_descendant(&it, "cursor.id", &id) &&
      (BSON_ITER_HOLDS_INT64(&id) || BSON_ITER_HOLDS_INT32(&id))) {
    return bson_iter_as_int64(&id);
  }
  return 0;
}

void appendGetMore(std::vector<std::uint8_t>& out, std::int64_t cursorId, std::string_view collection,
                   std::string_view database) {
  bson_t body = BSON_INITIALIZER;
  BSON_APPEND_INT64(&body, "getMore", cursorId);
  bson_append_utf8(&body, "collection", -1, collection.data(), static_cast<int>(collection.size()));
  bson_append_utf8(&body, "$db", -1, database.data(), static_cast<int>(database.size()));
  const std::uint8_t* data = bson_get_data(&body);
  out.insert(out.end(), data, data + body.len);
  bson_destroy(&body);
}

bool joinCursorBatches(wire::Bytes firstReply, std::span<const std::vector<std::uint8_t>> laterReplies,
                       std::vector<std::uint8_t>& out) {
  if (!replyOk(firstReply)) return false;
  for (const auto& later : laterReplies) {
    if (!replyOk(later)) return false;
  }
  bson_iter_t top;
  if (!initIter(top, firstReply)) return false;
  bson_t joined = BSON_INITIALIZER;
  bool sawCursor = false;
  bool ok = true;
  while (ok && bson_iter_next(&top)) {
    const char* key = bson_iter_key(&top);
    if (std::strcmp(key, "cursor") != 0 || !BSON_ITER_HOLDS_DOCUMENT(&top)) {
      bson_append_iter(&joined, nullptr, 0, &top);
      continue;
    }
    sawCursor = true;
    bson_iter_t cursor;
    bson_iter_recurse(&top, &cursor);
    bson_t cursorOut;
    bson_append_document_begin(&joined, "cursor", -1, &cursorOut);
    while (bson_iter_next(&cursor)) {
      const char* field = bson_iter_key(&cursor);
      if (std::strcmp(field, "id") == 0) {
        BSON_APPEND_INT64(&cursorOut, "id", 0);
      } else if (std::strcmp(field, "firstBatch") == 0) {
        bson_t array;
        bson_append_array_begin(&cursorOut, "firstBatch", -1, &array);
        std::uint32_t index = 0;
        ok = appendBatch(firstReply, "firstBatch", &array, index);
        for (const auto& later : laterReplies) ok = ok && appendBatch(later, "nextBatch", &array, index);
        bson_append_array_end(&cursorOut, &array);
      } else {
        bson_append_iter(&cursorOut, nullptr, 0, &cursor);
      }
    }
    bson_append_document_end(&joined, &cursorOut);
  }
  if (ok && sawCursor) {
    const std::uint8_t* data = bson_get_data(&joined);
    out.assign(data, data + joined.len);
  }
  bson_destroy(&joined);
  return ok && sawCursor;
}

}  // namespace mongogate::router
