// router/reply_rewrite.cpp — physical → logical names in upstream replies (SPEC §4
// "Replies"): cursor.ns, listCollections names (rule 3), listIndexes ns, change-event
// ns/to, explain namespaces, errmsg texts.
//
// The hot path is "nothing to do": identity mappings answer at once, and otherwise only
// the reply's top-level keys are looked at before anything is parsed further. A reply
// that does need a change is validated in full (a truncated copy of a corrupt reply
// would be worse than the physical names) and rebuilt with libbson: untouched elements
// are copied with bson_append_iter, so a find's batch of user documents is one memcpy
// and is never looked into. User documents are only ever walked when the cursor is
// known to hold server-made documents (listCollections, listIndexes, change events,
// bulkWrite results).
//
// References: MongoDB manual, "Change Events" (ns / to / operationDescription),
// "listCollections" and "listIndexes" (cursor.ns, idIndex.ns / index ns before 4.4),
// "Explain Results" (queryPlanner.namespace), "Write Errors" (writeErrors[].errmsg).
#include <bson/bson.h>

#include <cstring>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/reply_bson.h"
#include "router/reply_namespaces.h"
#include "router/routing.h"
#include "wire/bson_walk.h"
#include "wire/op_msg.h"

namespace mongogate::router {

namespace {

using replybson::appendSame;
using replybson::appendUtf8;
using replybson::keyOf;
using replybson::utf8Of;

constexpr std::string_view kListIndexesMarker = "$cmd.listIndexes.";
constexpr std::string_view kListCollectionsMarker = "$cmd.listCollections";

bool isIdentity(const NamespaceMapping& m) {
  return m.physicalDatabase == m.logicalDatabase && m.physicalCollection == m.logicalCollection;
}

bool usable(const NamespaceMapping& m) { return !m.physicalDatabase.empty() && !isIdentity(m); }

// Characters that continue a database or collection name in running text. A match of a
// physical name must not be preceded or followed by one ("pos_db_1" inside "pos_db_10").
bool continuesName(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '$';
}

// The store prefix of a rule-3 mapping: given, or read off "<prefix>_<logicalColl>".
std::string_view storePrefixOf(const NamespaceMapping& m) {
  if (!m.storePrefix.empty()) return m.storePrefix;
  if (m.rule == 3 && !m.logicalCollection.empty() &&
      m.physicalCollection.size() > m.logicalCollection.size() + 1 &&
      m.physicalCollection.ends_with(m.logicalCollection)) {
    const std::size_t cut = m.physicalCollection.size() - m.logicalCollection.size() - 1;
    if (m.physicalCollection[cut] == '_') return std::string_view(m.physicalCollection).substr(0, cut);
  }
  return {};
}

// "abc_products" → "products" for prefix "abc"; nullopt when not that store's.
std::optional<std::string_view> stripPrefix(std::string_view collection, std::string_view prefix) {
  if (prefix.empty() || collection.size() <= prefix.size() + 1) return std::nullopt;
  if (!collection.starts_with(prefix) || collection[prefix.size()] != '_') return std::nullopt;
  return collection.substr(prefix.size() + 1);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// ReplyNamespaces

ReplyNamespaces::ReplyNamespaces(std::span<const NamespaceMapping> mappings) : mappings_(mappings) {
  active_ = std::any_of(mappings.begin(), mappings.end(), usable);
}

const NamespaceMapping* ReplyNamespaces::mappingOfDatabase(std::string_view database) const {
  for (const auto& m : mappings_) {
    if (usable(m) && m.physicalDatabase == database) return &m;
  }
  return nullptr;
}

std::optional<std::string> ReplyNamespaces::logicalDatabase(std::string_view database) const {
  const NamespaceMapping* m = mappingOfDatabase(database);
  if (m == nullptr) return std::nullopt;
  return m->logicalDatabase;
}

std::optional<std::pair<std::string, std::string>> ReplyNamespaces::logicalPair(
    std::string_view database, std::string_view collection) const {
  for (const auto& m : mappings_) {
    if (usable(m) && !m.physicalCollection.empty() && m.physicalDatabase == database &&
        m.physicalCollection == collection) {
      return std::pair{m.logicalDatabase, m.logicalCollection};
    }
  }
  // Pre-4.4 listIndexes cursors name "<db>.$cmd.listIndexes.<coll>": map the inner one.
  if (collection.starts_with(kListIndexesMarker)) {
    auto inner = logicalPair(database, collection.substr(kListIndexesMarker.size()));
    if (!inner) return std::nullopt;
    return std::pair{std::move(inner->first), std::string(kListIndexesMarker) + inner->second};
  }
  const NamespaceMapping* m = mappingOfDatabase(database);
  if (m == nullptr) return std::nullopt;
  if (m->rule == 3) {
    const std::string_view prefix = storePrefixOf(*m);
    if (collection.empty() || collection.starts_with("$cmd") || collection.starts_with("system.") ||
        prefix.empty()) {
      return std::pair{m->logicalDatabase, std::string(collection)};
    }
    if (auto rest = stripPrefix(collection, prefix)) return std::pair{m->logicalDatabase, std::string(*rest)};
    // Another store's collection in the same physical database: it has no name in this
    // store's logical database, so it is not renamed into it.
    return std::nullopt;
  }
  return std::pair{m->logicalDatabase, std::string(collection)};
}

std::optional<std::string> ReplyNamespaces::logicalNamespace(std::string_view ns) const {
  const std::size_t dot = ns.find('.');
  if (dot == std::string_view::npos) return logicalDatabase(ns);
  auto pair = logicalPair(ns.substr(0, dot), ns.substr(dot + 1));
  if (!pair) return std::nullopt;
  std::string result = std::move(pair->first);
  result += '.';
  result += pair->second;
  return result;
}

std::optional<std::string> ReplyNamespaces::rewriteText(std::string_view text) const {
  // Cheap rejection: most error messages name no physical database at all.
  const bool mentioned = std::any_of(mappings_.begin(), mappings_.end(), [&](const NamespaceMapping& m) {
    return usable(m) && text.find(m.physicalDatabase) != std::string_view::npos;
  });
  if (!mentioned) return std::nullopt;

  std::string result;
  result.reserve(text.size() + 32);
  bool changed = false;
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    std::size_t bestLength = 0;
    std::string replacement;
    if (i == 0 || !continuesName(text[i - 1])) {
      for (const auto& m : mappings_) {
        if (!usable(m) || !text.substr(i).starts_with(m.physicalDatabase)) continue;
        const std::size_t after = i + m.physicalDatabase.size();
        const bool dotFollows = after < n && text[after] == '.';
        // "<physDb>.<physColl>" as a whole name.
        if (dotFollows && !m.physicalCollection.empty() &&
            text.substr(after + 1).starts_with(m.physicalCollection)) {
          const std::size_t end = after + 1 + m.physicalCollection.size();
          if ((end == n || !continuesName(text[end])) && end - i > bestLength) {
            bestLength = end - i;
            replacement = m.logicalDatabase + "." + m.logicalCollection;
          }
        }
        // Rule 3: "<physDb>.<prefix>_<c>" is "<logicalDb>.<c>" for any c of that store.
        const std::string_view prefix = m.rule == 3 ? storePrefixOf(m) : std::string_view{};
        if (dotFollows && !prefix.empty()) {
          const std::size_t start = after + 1;
          const std::size_t cut = start + prefix.size() + 1;
          if (cut < n && text.substr(start).starts_with(prefix) && text[start + prefix.size()] == '_' &&
              continuesName(text[cut]) && cut - i > bestLength) {
            bestLength = cut - i;
            replacement = m.logicalDatabase + ".";
          }
        }
        // The database name alone.
        if (m.physicalDatabase != m.logicalDatabase && (after == n || !continuesName(text[after])) &&
            after - i > bestLength) {
          bestLength = after - i;
          replacement = m.logicalDatabase;
        }
      }
    }
    if (bestLength > 0) {
      result += replacement;
      i += bestLength;
      changed = true;
    } else {
      result += text[i];
      ++i;
    }
  }
  if (!changed) return std::nullopt;
  return result;
}

// ---------------------------------------------------------------------------------------
// The reply walk

namespace {

// What the documents of a cursor batch are, which decides whether they may be looked into.
enum class BatchKind {
  kUserDocuments,    // find / aggregate / getMore results: copied untouched
  kCollectionInfos,  // listCollections
  kIndexSpecs,       // listIndexes
  kChangeEvents,     // a change stream's cursor (it carries postBatchResumeToken)
  kBulkWriteResults, // bulkWrite (8.0): per-operation results with errmsg
};

class ReplyRewriter {
 public:
  ReplyRewriter(const ReplyNamespaces& names, const RoutedCommand& route) : names_(names), route_(route) {}

  bool changed() const { return changed_; }

  void rewriteTop(bson_iter_t& it, bson_t* out, bool explainShape) {
    while (bson_iter_next(&it)) {
      const std::string_view key = keyOf(it);
      if (key == "errmsg" && BSON_ITER_HOLDS_UTF8(&it)) {
        appendText(it, out);
      } else if (key == "writeErrors" && BSON_ITER_HOLDS_ARRAY(&it)) {
        rebuild(it, out, [this](bson_iter_t& e, bson_t* sub) {
          if (BSON_ITER_HOLDS_DOCUMENT(&e)) {
            rebuild(e, sub, [this](bson_iter_t& f, bson_t* doc) { appendWithErrmsg(f, doc); });
          } else {
            appendSame(sub, e);
          }
        });
      } else if (key == "writeConcernError" && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        rebuild(it, out, [this](bson_iter_t& f, bson_t* doc) { appendWithErrmsg(f, doc); });
      } else if (explainShape) {
        if (key == "command" && BSON_ITER_HOLDS_DOCUMENT(&it)) {
          rewriteEchoedCommand(it, out);
        } else {
          appendExplain(it, out);
        }
      } else if (key == "cursor" && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        rewriteCursor(it, out);
      } else if (key == "ns" && BSON_ITER_HOLDS_UTF8(&it)) {
        // collStats, validate, ...: the command's own namespace.
        appendNamespace(it, out);
      } else if (key == "db" && BSON_ITER_HOLDS_UTF8(&it) && route_.commandName == "dbStats") {
        appendDatabase(it, out);
      } else {
        appendSame(out, it);
      }
    }
  }

 private:
  // Begins a container under the element's key, hands each child element to `each`
  // (which must append it, changed or not, to the child builder), and closes it.
  template <class Each>
  void rebuild(const bson_iter_t& holder, bson_t* out, Each&& each) {
    bson_iter_t child;
    if (!bson_iter_recurse(&holder, &child)) {
      appendSame(out, holder);
      return;
    }
    bson_t sub;
    const char* key = bson_iter_key(&holder);
    const int keyLength = static_cast<int>(bson_iter_key_len(&holder));
    const bool isArray = BSON_ITER_HOLDS_ARRAY(&holder);
    if (isArray) {
      bson_append_array_begin(out, key, keyLength, &sub);
    } else {
      bson_append_document_begin(out, key, keyLength, &sub);
    }
    while (bson_iter_next(&child)) each(child, &sub);
    if (isArray) {
      bson_append_array_end(out, &sub);
    } else {
      bson_append_document_end(out, &sub);
    }
  }

  void appendReplaced(const bson_iter_t& it, bson_t* out, const std::optional<std::string>& value) {
    if (value && *value != utf8Of(it)) {
      appendUtf8(out, keyOf(it), *value);
      changed_ = true;
    } else {
      appendSame(out, it);
    }
  }

  void appendText(const bson_iter_t& it, bson_t* out) { appendReplaced(it, out, names_.rewriteText(utf8Of(it))); }
  void appendNamespace(const bson_iter_t& it, bson_t* out) {
    appendReplaced(it, out, names_.logicalNamespace(utf8Of(it)));
  }
  void appendDatabase(const bson_iter_t& it, bson_t* out) {
    appendReplaced(it, out, names_.logicalDatabase(utf8Of(it)));
  }

  void appendWithErrmsg(const bson_iter_t& it, bson_t* out) {
    if (keyOf(it) == "errmsg" && BSON_ITER_HOLDS_UTF8(&it)) {
      appendText(it, out);
    } else {
      appendSame(out, it);
    }
  }

  // ---- cursors

  void rewriteCursor(const bson_iter_t& cursor, bson_t* out) {
    bson_iter_t scan;
    if (!bson_iter_recurse(&cursor, &scan)) {
      appendSame(out, cursor);
      return;
    }
    std::string_view ns;
    bool changeStream = false;
    while (bson_iter_next(&scan)) {
      const std::string_view key = keyOf(scan);
      if (key == "ns") ns = utf8Of(scan);
      if (key == "postBatchResumeToken") changeStream = true;
    }
    const std::size_t dot = ns.find('.');
    const std::string_view nsDatabase = dot == std::string_view::npos ? ns : ns.substr(0, dot);
    const std::string_view nsCollection = dot == std::string_view::npos ? std::string_view{} : ns.substr(dot + 1);

    BatchKind kind = BatchKind::kUserDocuments;
    if (route_.commandName == "listCollections" || nsCollection.starts_with(kListCollectionsMarker)) {
      kind = BatchKind::kCollectionInfos;
    } else if (route_.commandName == "listIndexes" || nsCollection.starts_with(kListIndexesMarker)) {
      kind = BatchKind::kIndexSpecs;
    } else if (changeStream) {
      kind = BatchKind::kChangeEvents;
    } else if (route_.commandName == "bulkWrite") {
      kind = BatchKind::kBulkWriteResults;
    }
    // Which store a listCollections reply is about: the mapping of its physical database.
    listing_ = nullptr;
    if (kind == BatchKind::kCollectionInfos) {
      listing_ = ns.empty() ? firstUsableMapping() : names_.mappingOfDatabase(nsDatabase);
    }

    rebuild(cursor, out, [this, kind](bson_iter_t& f, bson_t* sub) {
      const std::string_view key = keyOf(f);
      if (key == "ns" && BSON_ITER_HOLDS_UTF8(&f)) {
        appendNamespace(f, sub);
      } else if ((key == "firstBatch" || key == "nextBatch") && BSON_ITER_HOLDS_ARRAY(&f) &&
                 kind != BatchKind::kUserDocuments) {
        rewriteBatch(f, sub, kind);
      } else {
        appendSame(sub, f);
      }
    });
  }

  const NamespaceMapping* firstUsableMapping() const {
    for (const auto& m : route_.mappings) {
      if (usable(m)) return &m;
    }
    return nullptr;
  }

  void rewriteBatch(const bson_iter_t& batch, bson_t* out, BatchKind kind) {
    replybson::ArrayKeys keys;  // renumbered: listCollections may drop entries
    rebuild(batch, out, [&](bson_iter_t& e, bson_t* sub) {
      const std::string_view key = keys.key();
      bool kept = true;
      if (!BSON_ITER_HOLDS_DOCUMENT(&e)) {
        replybson::appendAs(sub, key, e);
      } else {
        switch (kind) {
          case BatchKind::kCollectionInfos:
            kept = appendCollectionInfo(e, sub, key);
            break;
          case BatchKind::kIndexSpecs:
            rebuildAs(e, sub, key, [this](bson_iter_t& f, bson_t* doc) {
              if (keyOf(f) == "ns" && BSON_ITER_HOLDS_UTF8(&f)) {
                appendNamespace(f, doc);
              } else {
                appendSame(doc, f);
              }
            });
            break;
          case BatchKind::kChangeEvents:
            appendChangeEvent(e, sub, key);
            break;
          case BatchKind::kBulkWriteResults:
            rebuildAs(e, sub, key, [this](bson_iter_t& f, bson_t* doc) { appendWithErrmsg(f, doc); });
            break;
          case BatchKind::kUserDocuments:
            replybson::appendAs(sub, key, e);
            break;
        }
      }
      if (kept) keys.advance();
    });
  }

  // Like rebuild(), under an explicit key (array entries are renumbered).
  template <class Each>
  void rebuildAs(const bson_iter_t& holder, bson_t* out, std::string_view key, Each&& each) {
    bson_iter_t child;
    if (!bson_iter_recurse(&holder, &child)) {
      replybson::appendAs(out, key, holder);
      return;
    }
    bson_t sub;
    bson_append_document_begin(out, key.data(), static_cast<int>(key.size()), &sub);
    while (bson_iter_next(&child)) each(child, &sub);
    bson_append_document_end(out, &sub);
  }

  // One listCollections entry. Rule 3: only the store's own "<prefix>_<c>" collections,
  // shown as "<c>" (views' viewOn likewise); everything else in the physical database is
  // another store's or the database's own and is dropped. Other rules keep names.
  // Returns false when the entry was dropped.
  bool appendCollectionInfo(const bson_iter_t& entry, bson_t* out, std::string_view key) {
    const std::string_view prefix =
        listing_ != nullptr && listing_->rule == 3 ? storePrefixOf(*listing_) : std::string_view{};
    bson_iter_t f;
    std::optional<std::string_view> name;
    if (bson_iter_recurse(&entry, &f) && bson_iter_find_w_len(&f, "name", 4) && BSON_ITER_HOLDS_UTF8(&f)) {
      name = utf8Of(f);
    }
    std::optional<std::string_view> shownName;
    if (!prefix.empty() && name) {
      shownName = stripPrefix(*name, prefix);
      if (!shownName) {
        changed_ = true;
        return false;
      }
    }
    rebuildAs(entry, out, key, [&](bson_iter_t& g, bson_t* doc) {
      const std::string_view k = keyOf(g);
      if (k == "name" && shownName && BSON_ITER_HOLDS_UTF8(&g)) {
        appendUtf8(doc, k, *shownName);
        changed_ = true;
      } else if (k == "options" && !prefix.empty() && BSON_ITER_HOLDS_DOCUMENT(&g)) {
        rebuild(g, doc, [&](bson_iter_t& o, bson_t* opts) {
          std::optional<std::string_view> viewOn;
          if (keyOf(o) == "viewOn" && BSON_ITER_HOLDS_UTF8(&o)) viewOn = stripPrefix(utf8Of(o), prefix);
          if (viewOn) {
            appendUtf8(opts, "viewOn", *viewOn);
            changed_ = true;
          } else {
            appendSame(opts, o);
          }
        });
      } else if (k == "idIndex" && BSON_ITER_HOLDS_DOCUMENT(&g)) {
        rebuild(g, doc, [this](bson_iter_t& x, bson_t* idx) {
          if (keyOf(x) == "ns" && BSON_ITER_HOLDS_UTF8(&x)) {
            appendNamespace(x, idx);
          } else {
            appendSame(idx, x);
          }
        });
      } else {
        appendSame(doc, g);
      }
    });
    return true;
  }

  // A change event: ns {db, coll}, rename's to {db, coll}, and expanded events'
  // operationDescription.to. Documents without operationType are left alone.
  void appendChangeEvent(const bson_iter_t& event, bson_t* out, std::string_view key) {
    bson_iter_t probe;
    if (!bson_iter_recurse(&event, &probe) || !bson_iter_find_w_len(&probe, "operationType", 13)) {
      replybson::appendAs(out, key, event);
      return;
    }
    rebuildAs(event, out, key, [this](bson_iter_t& f, bson_t* doc) {
      const std::string_view k = keyOf(f);
      if ((k == "ns" || k == "to") && BSON_ITER_HOLDS_DOCUMENT(&f)) {
        appendDbColl(f, doc);
      } else if (k == "operationDescription" && BSON_ITER_HOLDS_DOCUMENT(&f)) {
        rebuild(f, doc, [this](bson_iter_t& g, bson_t* desc) {
          if (keyOf(g) == "to" && BSON_ITER_HOLDS_DOCUMENT(&g)) {
            appendDbColl(g, desc);
          } else {
            appendSame(desc, g);
          }
        });
      } else {
        appendSame(doc, f);
      }
    });
  }

  void appendDbColl(const bson_iter_t& holder, bson_t* out) {
    bson_iter_t f;
    std::optional<std::string_view> db;
    std::optional<std::string_view> coll;
    if (bson_iter_recurse(&holder, &f)) {
      while (bson_iter_next(&f)) {
        bool isString = false;
        const std::string_view value = utf8Of(f, &isString);
        if (!isString) continue;
        if (keyOf(f) == "db") db = value;
        if (keyOf(f) == "coll") coll = value;
      }
    }
    std::optional<std::pair<std::string, std::string>> logical;
    if (db && coll) {
      logical = names_.logicalPair(*db, *coll);
    } else if (db) {
      if (auto d = names_.logicalDatabase(*db)) logical = std::pair{std::move(*d), std::string()};
    }
    if (!logical) {
      appendSame(out, holder);
      return;
    }
    rebuild(holder, out, [&](bson_iter_t& g, bson_t* doc) {
      const std::string_view k = keyOf(g);
      if (k == "db" && BSON_ITER_HOLDS_UTF8(&g)) {
        appendReplaced(g, doc, logical->first);
      } else if (k == "coll" && coll && BSON_ITER_HOLDS_UTF8(&g)) {
        appendReplaced(g, doc, logical->second);
      } else {
        appendSame(doc, g);
      }
    });
  }

  // ---- explain

  // Any "namespace" / "ns" string anywhere in the explain output. (A user's filter value
  // is rendered as {field: {$eq: v}}, so it never sits directly under such a key.)
  void appendExplain(const bson_iter_t& it, bson_t* out) {
    const std::string_view key = keyOf(it);
    if ((key == "namespace" || key == "ns") && BSON_ITER_HOLDS_UTF8(&it)) {
      appendNamespace(it, out);
    } else if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)) {
      rebuild(it, out, [this](bson_iter_t& f, bson_t* sub) { appendExplain(f, sub); });
    } else {
      appendSame(out, it);
    }
  }

  // explain's echo of the physical command: {find: "<coll>", ..., $db: "<db>"}.
  void rewriteEchoedCommand(const bson_iter_t& command, bson_t* out) {
    bson_iter_t scan;
    std::string_view database;
    if (bson_iter_recurse(&command, &scan) && bson_iter_find_w_len(&scan, "$db", 3)) database = utf8Of(scan);
    bool first = true;
    rebuild(command, out, [&](bson_iter_t& f, bson_t* sub) {
      const bool isFirst = first;
      first = false;
      if (keyOf(f) == "$db" && BSON_ITER_HOLDS_UTF8(&f)) {
        appendDatabase(f, sub);
      } else if (isFirst && BSON_ITER_HOLDS_UTF8(&f) && !database.empty()) {
        auto logical = names_.logicalPair(database, utf8Of(f));
        appendReplaced(f, sub, logical ? std::optional<std::string>(logical->second) : std::nullopt);
      } else {
        appendSame(sub, f);  // the rest is the user's command (filter values are data)
      }
    });
  }

  const ReplyNamespaces& names_;
  const RoutedCommand& route_;
  const NamespaceMapping* listing_ = nullptr;
  bool changed_ = false;
};

// Top-level keys that may hold a physical name. Anything else ({n: 1, ok: 1}, hello
// fields, ...) means there is nothing to rewrite and the reply is not parsed further.
bool mayNamePhysical(std::string_view key, std::string_view commandName) {
  return key == "cursor" || key == "errmsg" || key == "writeErrors" || key == "writeConcernError" ||
         key == "ns" || key == "queryPlanner" || key == "explainVersion" || key == "stages" ||
         (key == "db" && commandName == "dbStats");
}

}  // namespace

namespace {

// Where cursor.ns lies in a reply of the spliceable shape (see ReplySplice), or nothing.
struct CursorNsPlace {
  std::size_t cursorStart = 0;   // offset of the cursor document in the body
  std::uint32_t cursorLength = 0;
  std::size_t nsBegin = 0;       // the ns element, relative to the cursor document
  std::size_t nsEnd = 0;
  std::string_view ns;
};

std::optional<CursorNsPlace> findCursorNs(std::string_view command, wire::Bytes body) {
  if (command != "find" && command != "getMore" && command != "aggregate") return std::nullopt;
  // The walker checks every length against the reply's own bytes (replies are not
  // validated before this) and never descends into the batch.
  wire::BsonWalker top(body);
  wire::BsonElement element, cursorElement;
  bool sawCursor = false;
  while (top.next(element)) {
    if (element.key == "cursor" && element.isDocument() && !sawCursor) {
      cursorElement = element;
      sawCursor = true;
    } else if (element.key != "ok" && element.key != "$clusterTime" && element.key != "operationTime") {
      return std::nullopt;
    }
  }
  if (top.malformed() || !sawCursor) return std::nullopt;
  CursorNsPlace place;
  const wire::Bytes cursorDoc = cursorElement.document();
  place.cursorStart = cursorElement.valueOffset;
  place.cursorLength = static_cast<std::uint32_t>(cursorDoc.size());
  wire::BsonWalker cursor(cursorDoc);
  while (cursor.next(element)) {
    if (element.key == "ns" && element.type == wire::bsontype::kUtf8 && place.ns.empty()) {
      place.ns = *element.utf8();
      place.nsBegin = element.offset;
      place.nsEnd = element.end;
    } else if (element.key != "id" && element.key != "firstBatch" && element.key != "nextBatch") {
      return std::nullopt;  // e.g. postBatchResumeToken: a change stream
    }
  }
  if (cursor.malformed() || place.ns.empty() || place.ns.find(".$cmd.") != std::string_view::npos) {
    return std::nullopt;
  }
  return place;
}

ReplySplicePlan planCursorNs(const ReplyNamespaces& names, std::string_view command, wire::Bytes body,
                             ReplySplice& splice) {
  const std::optional<CursorNsPlace> place = findCursorNs(command, body);
  if (!place) return ReplySplicePlan::kNotApplicable;
  const std::optional<std::string> logical = names.logicalNamespace(place->ns);
  if (!logical || *logical == place->ns) return ReplySplicePlan::kUnchanged;

  // the new ns element: type 0x02, "ns\0", int32 length (with NUL), bytes, NUL
  std::vector<std::uint8_t>& element = splice.element;
  element.resize(1 + 3 + 4 + logical->size() + 1);
  element[0] = BSON_TYPE_UTF8;
  std::memcpy(element.data() + 1, "ns", 3);
  wire::storeInt32LE(element.data() + 4, static_cast<std::int32_t>(logical->size() + 1));
  std::memcpy(element.data() + 8, logical->data(), logical->size());
  element.back() = 0;
  const std::ptrdiff_t delta =
      static_cast<std::ptrdiff_t>(element.size()) - static_cast<std::ptrdiff_t>(place->nsEnd - place->nsBegin);
  wire::storeInt32LE(splice.lengths.data(), static_cast<std::int32_t>(static_cast<std::ptrdiff_t>(body.size()) + delta));
  wire::storeInt32LE(splice.lengths.data() + 4,
                     static_cast<std::int32_t>(static_cast<std::ptrdiff_t>(place->cursorLength) + delta));
  const auto at = [](std::size_t offset) { return static_cast<std::uint32_t>(offset); };
  splice.edits[0] = {0, 4, wire::Bytes(splice.lengths.data(), 4)};
  splice.edits[1] = {at(place->cursorStart), at(place->cursorStart + 4), wire::Bytes(splice.lengths.data() + 4, 4)};
  splice.edits[2] = {at(place->cursorStart + place->nsBegin), at(place->cursorStart + place->nsEnd),
                     wire::Bytes(element)};
  return ReplySplicePlan::kSpliced;
}

}  // namespace

ReplySplicePlan planReplySplice(const RoutedCommand& route, wire::Bytes replyBody, ReplySplice& splice) {
  const ReplyNamespaces names(route.mappings);
  if (!names.active()) return ReplySplicePlan::kUnchanged;
  return planCursorNs(names, route.commandName, replyBody, splice);
}

bool removeServerInfo(wire::Bytes replyBody, std::vector<std::uint8_t>& out) {
  bson_iter_t it;
  if (!replybson::iterOver(it, replyBody) || !bson_iter_find(&it, "serverInfo")) return false;
  if (wire::validateBsonDocument(replyBody) >= 0) return false;
  bson_t result = BSON_INITIALIZER;
  replybson::iterOver(it, replyBody);
  while (bson_iter_next(&it)) {
    if (keyOf(it) != "serverInfo") bson_append_iter(&result, nullptr, 0, &it);
  }
  out.assign(bson_get_data(&result), bson_get_data(&result) + result.len);
  bson_destroy(&result);
  return true;
}

bool rewriteReply(const RoutedCommand& route, wire::Bytes replyBody, std::vector<std::uint8_t>& out) {
  const ReplyNamespaces names(route.mappings);
  if (!names.active()) return false;
  ReplySplice splice;
  switch (planCursorNs(names, route.commandName, replyBody, splice)) {
    case ReplySplicePlan::kSpliced:
      wire::applyEdits(replyBody, splice.view(), out);
      return true;
    case ReplySplicePlan::kUnchanged: return false;
    case ReplySplicePlan::kNotApplicable: break;
  }

  bson_iter_t it;
  if (!replybson::iterOver(it, replyBody)) return false;
  bool interesting = route.commandName == "explain";
  bool hasCursor = false;
  bool explainKeys = false;
  while (bson_iter_next(&it)) {
    const std::string_view key = keyOf(it);
    if (mayNamePhysical(key, route.commandName)) interesting = true;
    if (key == "cursor") hasCursor = true;
    if (key == "queryPlanner" || key == "explainVersion" || key == "stages") explainKeys = true;
  }
  if (!interesting) return false;
  // A rewrite must copy every element: only a structurally valid reply is rebuilt.
  if (wire::validateBsonDocument(replyBody) >= 0) return false;

  // explain, or aggregate with {explain: true}: no cursor, a query plan.
  const bool explainShape = route.commandName == "explain" || (explainKeys && !hasCursor);
  replybson::ReplyDocument result;
  ReplyRewriter rewriter(names, route);
  replybson::iterOver(it, replyBody);
  rewriter.rewriteTop(it, result.get(), explainShape);
  if (!rewriter.changed()) return false;
  result.copyTo(out);
  return true;
}

}  // namespace mongogate::router
