// router/request_rewrite.cpp — see request_rewrite.h.
//
// Command shapes follow the MongoDB server's command reference
// (https://www.mongodb.com/docs/manual/reference/command/) and the aggregation stage
// reference for $lookup, $graphLookup, $unionWith, $out, $merge, $facet and $changeStream.
//
// How a command is walked: the namespace the command runs on (its "primary": the
// collection of find/aggregate/..., the first namespace of renameCollection/bulkWrite,
// or just $db) is resolved first; it decides the upstream and the physical $db. Every
// other namespace is then resolved and must be on the same upstream; those MongoDB
// reads only from the command's own database ($lookup, $graphLookup, $unionWith, viewOn,
// toCollection) must also be in the same physical database. The walk runs twice at
// most: once reading (resolve, check, note whether anything changes), and, only when
// something does, once more writing the new document with the same code path.
#include "router/request_rewrite.h"

#include <bson/bson.h>

#include <array>
#include <cstring>
#include <unordered_map>

#include "router/bson_edit.h"

namespace mongogate::router::detail {
namespace {

using bson_edit::appendUtf8;
using bson_edit::keyOf;
using bson_edit::utf8Of;

// Refusal for namespaces that do not fit together. IllegalOperation (20) is what the
// server answers for operations that are well formed but not allowed in the current
// setup; drivers do not retry it.
constexpr std::int32_t kIllegalOperation = 20;

enum class Reach {
  kSameDatabase,  // MongoDB itself only reads from the command's database
  kSameUpstream,  // another database is fine, another upstream is not
};

std::string logicalName(std::string_view database, std::string_view collection) {
  return bson_edit::joinNamespace(database, collection);
}

// Where a namespace lives, in the client's terms: refusals never name a physical store
// database the client did not ask for (SPEC §4: the app never sees pos_db_N).
std::string homeOf(const RoutingConfig& config, const PhysicalNamespace& p) {
  if (p.store != nullptr) {
    if (p.database == config.mainDatabase) return "the main database";
    return "the database of store '" + p.store->prefix + "'";
  }
  if (p.database == config.mainDatabase) return "the main database";
  return "database '" + p.database + "'";
}

struct Walk {
  Walk(const RoutingConfig& c, const RegistrySnapshot& r) : config(c), registry(r) {}

  const RoutingConfig& config;
  const RegistrySnapshot& registry;
  std::string_view command;    // the routed command (the inner one of an explain)
  std::string_view logicalDb;  // $db as the client sent it
  const CommandSpec* innerSpec = nullptr;  // explain: the nested command's spec
  // The namespace the command runs on, as sent and where it lives.
  std::string_view primaryDb;
  std::string_view primaryCollection;
  PhysicalNamespace primary;
  std::string dollarDb;  // the physical $db
  bool emit = false;     // second pass: write the new documents
  bool changed = false;  // first pass: something differs from the request
  bool corrupt = false;  // a document stopped iterating early: forward the original
  // First pass over the body: when every change is a new string value of a top-level
  // element (the usual case: $db, or the collection of a rule-3 store), the second pass
  // splices those elements into the original bytes instead of rebuilding the document.
  struct Edit {
    std::uint32_t begin = 0;  // the element's bytes [begin, end) in the body
    std::uint32_t end = 0;
    std::uint32_t keyLength = 0;
    std::string value;
  };
  bool recordEdits = false;  // walking the top level of the body
  int depth = 0;             // > 0 inside a subdocument or array
  bool spliceable = true;
  std::array<Edit, 4> edits;
  std::size_t editCount = 0;
  std::optional<Refusal> refusal;
  std::vector<NamespaceMapping>* mappings = nullptr;

  void fail(Refusal r) {
    if (!refusal) refusal = std::move(r);
  }

  // Resolves a namespace the command names besides its primary, checks it against the
  // primary and records its mapping. nullopt when refused (or, when emitting, when it
  // does not resolve, which the first pass has already refused).
  std::optional<PhysicalNamespace> reach(std::string_view db, std::string_view collection,
                                         Reach how, std::string_view field) {
    NamespaceResolution r = resolveNamespace(config, registry, db, collection);
    if (emit || !r.target) {
      if (!r.target && r.refusal) fail(std::move(*r.refusal));
      return std::move(r.target);
    }
    const PhysicalNamespace& t = *r.target;
    if (t.upstream != primary.upstream) {
      const std::string primaryName = logicalName(primaryDb, primaryCollection);
      fail({kIllegalOperation, "IllegalOperation",
            "mongogate: " + std::string(command) + " on " + primaryName + " names " +
                logicalName(db, collection) + " in " + std::string(field) +
                ", which is on upstream '" + t.upstream + "' while " + primaryName +
                " is on '" + primary.upstream + "'; cross-upstream commands are refused"});
      return std::nullopt;
    }
    if (how == Reach::kSameDatabase && t.database != primary.database) {
      const std::string primaryName = logicalName(primaryDb, primaryCollection);
      fail({kIllegalOperation, "IllegalOperation",
            "mongogate: " + std::string(command) + " on " + primaryName + " names " +
                logicalName(db, collection) + " in " + std::string(field) + ", which is in " +
                homeOf(config, t) + " while " + primaryName + " is in " +
                homeOf(config, primary) + "; " + std::string(field) +
                " can only name a collection of the database the command runs in, so the "
                "command is refused"});
      return std::nullopt;
    }
    addMapping(*mappings, t, db, collection);
    return std::move(r.target);
  }
};

void copy(bson_t* out, const bson_iter_t& it) {
  if (out != nullptr) bson_edit::copyElement(out, it);
}

// First pass: notes whether the element [begin, end), whose string value is `current`
// (nullopt: not a string), must become the string `value`. Only a string value at the top
// level of the body can be spliced: the edit keeps the element's type byte.
void noteUtf8(Walk& w, std::optional<std::string_view> current, std::uint32_t begin,
              std::string_view key, std::uint32_t end, std::string_view value) {
  if (current == value) return;
  w.changed = true;
  if (current && w.recordEdits && w.depth == 0 && w.editCount < w.edits.size()) {
    Walk::Edit& edit = w.edits[w.editCount++];
    edit.begin = begin;
    edit.end = end;
    edit.keyLength = static_cast<std::uint32_t>(key.size());
    edit.value.assign(value);
  } else {
    w.spliceable = false;
  }
}

// Writes `value` under the element's key (first pass: notes whether it differs).
void putUtf8(Walk& w, const bson_iter_t& it, bson_t* out, std::string_view value) {
  if (out != nullptr) {
    appendUtf8(out, keyOf(it), value);
  } else {
    noteUtf8(w, utf8Of(it), it.off, keyOf(it), it.next_off, value);
  }
}

// A change other than a top-level string value: the body must be rebuilt.
void noteStructuralChange(Walk& w) {
  w.changed = true;
  w.spliceable = false;
}

// The body with the first pass's edits spliced in: each edited element keeps its type
// byte and key and gets its new string value. One resize, then plain copies.
void spliceEdits(const Walk& w, wire::Bytes body, std::vector<std::uint8_t>& out) {
  std::size_t size = body.size();
  for (std::size_t i = 0; i < w.editCount; ++i) {
    const Walk::Edit& edit = w.edits[i];
    const std::size_t valueStart = edit.begin + 1 + edit.keyLength + 1;
    size = size - (edit.end - valueStart) + 4 + edit.value.size() + 1;
  }
  out.resize(size);
  std::uint8_t* to = out.data();
  const auto put = [&to](const void* from, std::size_t n) {
    std::memcpy(to, from, n);
    to += n;
  };
  std::size_t at = 0;
  for (std::size_t i = 0; i < w.editCount; ++i) {
    const Walk::Edit& edit = w.edits[i];
    const std::size_t valueStart = edit.begin + 1 + edit.keyLength + 1;
    put(body.data() + at, valueStart - at);  // up to the key's NUL
    wire::storeInt32LE(to, static_cast<std::int32_t>(edit.value.size() + 1));
    to += 4;
    put(edit.value.data(), edit.value.size());
    *to++ = 0;
    at = edit.end;
  }
  put(body.data() + at, body.size() - at);
  wire::storeInt32LE(out.data(), static_cast<std::int32_t>(out.size()));
}

// Walks the elements of the document or array `elem` stands on, written under `key`
// (the element's own key when empty). field(child, sub) handles one element and returns
// true, or returns false to have it copied; after(sub) may append more elements.
template <class Field, class After>
void editContainer(Walk& w, const bson_iter_t& elem, bson_t* out, std::string_view key,
                   Field&& field, After&& after) {
  bson_iter_t child;
  if (!bson_iter_recurse(&elem, &child)) {
    copy(out, elem);
    return;
  }
  if (key.empty()) key = keyOf(elem);
  const bool isArray = bson_iter_type(&elem) == BSON_TYPE_ARRAY;
  bson_t sub;
  bson_t* subp = nullptr;
  if (out != nullptr) {
    if (isArray) {
      bson_append_array_begin(out, key.data(), static_cast<int>(key.size()), &sub);
    } else {
      bson_append_document_begin(out, key.data(), static_cast<int>(key.size()), &sub);
    }
    subp = &sub;
  }
  ++w.depth;
  while (bson_iter_next(&child)) {
    if (!field(child, subp)) copy(subp, child);
  }
  --w.depth;
  if (bson_edit::stoppedOnCorruption(child)) w.corrupt = true;
  after(subp);
  if (out != nullptr) {
    if (isArray) {
      bson_append_array_end(out, &sub);
    } else {
      bson_append_document_end(out, &sub);
    }
  }
}

template <class Field>
void editContainer(Walk& w, const bson_iter_t& elem, bson_t* out, Field&& field) {
  editContainer(w, elem, out, {}, std::forward<Field>(field), [](bson_t*) {});
}

// Same, over a whole top-level document (a command body or a sequence document).
template <class Field, class After>
void editDocument(Walk& w, wire::Bytes doc, bson_t* out, Field&& field, After&& after) {
  bson_iter_t it;
  if (!bson_edit::initIter(it, doc)) {
    w.corrupt = true;
    return;
  }
  while (bson_iter_next(&it)) {
    if (!field(it, out)) copy(out, it);
  }
  if (bson_edit::stoppedOnCorruption(it)) w.corrupt = true;
  after(out);
}

// A document {<dbKey>: db, <collKey>: coll, ...} naming one namespace: $out {db, coll},
// $merge {into: {db, coll}}, $lookup {from: {db, coll}}, mapReduce out {replace, db}.
// A missing db means the command's database; it is added when the target's physical
// database is not the one the command runs in.
void editTargetDocument(Walk& w, const bson_iter_t& elem, bson_t* out, std::string_view collKey,
                        Reach how, std::string_view field) {
  const wire::Bytes doc = bson_edit::subdocumentOf(elem);
  const auto coll = bson_edit::findUtf8(doc, collKey);
  const auto db = bson_edit::findUtf8(doc, "db");
  bson_iter_t dbIt;
  const bool hasDb = bson_edit::findKey(doc, "db", dbIt);
  if (!coll || (hasDb && !db)) {  // malformed: let the server say so
    copy(out, elem);
    return;
  }
  const auto target = w.reach(db.value_or(w.logicalDb), *coll, how, field);
  if (!target) {
    copy(out, elem);
    return;
  }
  editContainer(
      w, elem, out, {},
      [&](const bson_iter_t& it, bson_t* sub) {
        const auto k = keyOf(it);
        if (k == "db") {
          putUtf8(w, it, sub, target->database);
          return true;
        }
        if (k == collKey) {
          putUtf8(w, it, sub, target->collection);
          return true;
        }
        return false;
      },
      [&](bson_t* sub) {
        if (hasDb || target->database == w.primary.database) return;
        if (sub != nullptr) {
          appendUtf8(sub, "db", target->database);
        } else {
          noteStructuralChange(w);
        }
      });
}

// A collection name (string) that MongoDB resolves in the command's database and that
// may live elsewhere ($out: "c", $merge: "c", mapReduce out: "c"): written as a string
// when it stays in the command's database, otherwise as {<collKey>: coll, db: db}
// (wrapped in {<wrapKey>: ...} when wrapKey is set: $merge: {into: {db, coll}}).
void putCollectionOrTarget(Walk& w, const bson_iter_t& it, bson_t* out, std::string_view collKey,
                           std::string_view field, std::string_view wrapKey = {}) {
  const auto target = w.reach(w.logicalDb, *utf8Of(it), Reach::kSameUpstream, field);
  if (!target) {
    copy(out, it);
    return;
  }
  if (target->database == w.primary.database) {
    putUtf8(w, it, out, target->collection);
    return;
  }
  if (out == nullptr) {
    noteStructuralChange(w);
    return;
  }
  const auto key = keyOf(it);
  bson_t outer, sub;
  bson_t* parent = out;
  if (!wrapKey.empty()) {
    bson_append_document_begin(out, key.data(), static_cast<int>(key.size()), &outer);
    parent = &outer;
  }
  const std::string_view subKey = wrapKey.empty() ? key : wrapKey;
  bson_append_document_begin(parent, subKey.data(), static_cast<int>(subKey.size()), &sub);
  appendUtf8(&sub, collKey, target->collection);
  appendUtf8(&sub, "db", target->database);
  bson_append_document_end(parent, &sub);
  if (!wrapKey.empty()) bson_append_document_end(out, &outer);
}

// A collection of the command's own database, by name.
void putSameDatabaseCollection(Walk& w, const bson_iter_t& it, bson_t* out,
                               std::string_view field) {
  const auto target = w.reach(w.logicalDb, *utf8Of(it), Reach::kSameDatabase, field);
  if (target) {
    putUtf8(w, it, out, target->collection);
  } else {
    copy(out, it);
  }
}

void walkPipeline(Walk& w, const bson_iter_t& elem, bson_t* out, bool topLevel);

// Writes the element under another key (pipelines are renumbered when a stage is added).
void copyAs(bson_t* out, std::string_view key, const bson_iter_t& it) {
  if (out != nullptr) bson_edit::copyElementAs(out, key, it);
}

void walkLookup(Walk& w, const bson_iter_t& stage, bson_t* out) {
  editContainer(w, stage, out, [&](const bson_iter_t& it, bson_t* sub) {
    const auto k = keyOf(it);
    if (k == "from" && utf8Of(it)) {
      putSameDatabaseCollection(w, it, sub, "$lookup");
      return true;
    }
    if (k == "from" && bson_iter_type(&it) == BSON_TYPE_DOCUMENT) {
      editTargetDocument(w, it, sub, "coll", Reach::kSameUpstream, "$lookup");
      return true;
    }
    if (k == "pipeline") {
      walkPipeline(w, it, sub, false);
      return true;
    }
    return false;
  });
}

void walkStage(Walk& w, const bson_iter_t& stageElem, bson_t* out, std::string_view key) {
  if (bson_iter_type(&stageElem) != BSON_TYPE_DOCUMENT) {
    copyAs(out, key, stageElem);
    return;
  }
  editContainer(w, stageElem, out, key, [&](const bson_iter_t& it, bson_t* sub) {
    const auto name = keyOf(it);
    const auto type = bson_iter_type(&it);
    if (name == "$lookup" && type == BSON_TYPE_DOCUMENT) {
      walkLookup(w, it, sub);
      return true;
    }
    if (name == "$graphLookup" && type == BSON_TYPE_DOCUMENT) {
      editContainer(w, it, sub, [&](const bson_iter_t& f, bson_t* s) {
        if (keyOf(f) != "from" || !utf8Of(f)) return false;
        putSameDatabaseCollection(w, f, s, "$graphLookup");
        return true;
      });
      return true;
    }
    if (name == "$unionWith" && type == BSON_TYPE_UTF8) {
      putSameDatabaseCollection(w, it, sub, "$unionWith");
      return true;
    }
    if (name == "$unionWith" && type == BSON_TYPE_DOCUMENT) {
      editContainer(w, it, sub, [&](const bson_iter_t& f, bson_t* s) {
        if (keyOf(f) == "coll" && utf8Of(f)) {
          putSameDatabaseCollection(w, f, s, "$unionWith");
          return true;
        }
        if (keyOf(f) == "pipeline") {
          walkPipeline(w, f, s, false);
          return true;
        }
        return false;
      });
      return true;
    }
    if (name == "$out" && type == BSON_TYPE_UTF8) {
      putCollectionOrTarget(w, it, sub, "coll", "$out");
      return true;
    }
    if (name == "$merge" && type == BSON_TYPE_UTF8) {
      putCollectionOrTarget(w, it, sub, "coll", "$merge", "into");
      return true;
    }
    if (name == "$out" && type == BSON_TYPE_DOCUMENT) {
      editTargetDocument(w, it, sub, "coll", Reach::kSameUpstream, "$out");
      return true;
    }
    if (name == "$merge" && type == BSON_TYPE_DOCUMENT) {
      editContainer(w, it, sub, [&](const bson_iter_t& f, bson_t* s) {
        if (keyOf(f) != "into") return false;
        if (utf8Of(f)) {
          putCollectionOrTarget(w, f, s, "coll", "$merge");
        } else if (bson_iter_type(&f) == BSON_TYPE_DOCUMENT) {
          editTargetDocument(w, f, s, "coll", Reach::kSameUpstream, "$merge");
        } else {
          copy(s, f);
        }
        return true;
      });
      return true;
    }
    if (name == "$facet" && type == BSON_TYPE_DOCUMENT) {
      editContainer(w, it, sub, [&](const bson_iter_t& f, bson_t* s) {
        walkPipeline(w, f, s, false);
        return true;
      });
      return true;
    }
    return false;
  }, [](bson_t*) {});
}

// A rule-3 database-level change stream watches the whole physical database, which other
// stores share: this $match, added right after $changeStream, keeps the events of the
// store's own collections (and the events without a collection, such as invalidate).
void appendStoreChangeStreamMatch(Walk& w, bson_t* out, std::string_view key) {
  const std::string regex = bson_edit::prefixRegex(w.primary.store->prefix);
  bson_t stage, match, orArray, first, second, exists;
  bson_append_document_begin(out, key.data(), static_cast<int>(key.size()), &stage);
  bson_append_document_begin(&stage, "$match", -1, &match);
  bson_append_array_begin(&match, "$or", -1, &orArray);
  bson_append_document_begin(&orArray, "0", -1, &first);
  bson_append_regex(&first, "ns.coll", -1, regex.c_str(), "");
  bson_append_document_end(&orArray, &first);
  bson_append_document_begin(&orArray, "1", -1, &second);
  bson_append_document_begin(&second, "ns.coll", -1, &exists);
  bson_append_bool(&exists, "$exists", -1, false);
  bson_append_document_end(&second, &exists);
  bson_append_document_end(&orArray, &second);
  bson_append_array_end(&match, &orArray);
  bson_append_document_end(&stage, &match);
  bson_append_document_end(out, &stage);
}

bool scopesChangeStreams(const Walk& w) {
  const CommandSpec* spec = w.innerSpec != nullptr ? w.innerSpec : findCommandSpec(w.command);
  return spec != nullptr && (spec->fields & fields::kChangeStreams) != 0 && w.primary.rule == 3 &&
         w.primaryCollection.empty() && w.primary.store != nullptr;
}

void walkPipeline(Walk& w, const bson_iter_t& elem, bson_t* out, bool topLevel) {
  if (bson_iter_type(&elem) != BSON_TYPE_ARRAY) {
    copy(out, elem);
    return;
  }
  const bool scope = topLevel && scopesChangeStreams(w);
  std::uint32_t index = 0;
  editContainer(w, elem, out, {}, [&](const bson_iter_t& stage, bson_t* arr) {
    std::array<char, 16> buf{};
    const char* key = nullptr;
    std::size_t len = bson_uint32_to_string(index++, &key, buf.data(), buf.size());
    walkStage(w, stage, arr, {key, len});
    bson_iter_t probe;
    if (scope && bson_iter_type(&stage) == BSON_TYPE_DOCUMENT &&
        bson_iter_recurse(&stage, &probe) && bson_iter_next(&probe) &&
        keyOf(probe) == "$changeStream") {
      if (arr != nullptr) {
        len = bson_uint32_to_string(index, &key, buf.data(), buf.size());
        appendStoreChangeStreamMatch(w, arr, {key, len});
      } else {
        noteStructuralChange(w);
      }
      ++index;
    }
    return true;
  }, [](bson_t*) {});
}

// listCollections on a rule-3 database: the physical database holds other stores'
// collections too, so the filter is narrowed to this store's prefix. A name selector
// that only picks names ({name: "c"}, what drivers and ODMs send, {name: {$eq: "c"}},
// {name: {$in: [...]}}) gets the prefix on each name; any other filter is kept inside
// {$and: [{name: /^<prefix>_/}, <filter>]} (its other name conditions then see physical
// names); no filter becomes {name: /^<prefix>_/}. The reply side strips the prefix.
void appendPrefixCondition(bson_t* out, const std::string& regex) {
  bson_append_regex(out, "name", -1, regex.c_str(), "");
}

bool isNameSelector(const bson_iter_t& name) {
  if (utf8Of(name)) return true;
  bson_iter_t ops;
  if (bson_iter_type(&name) != BSON_TYPE_DOCUMENT || !bson_iter_recurse(&name, &ops)) return false;
  bool any = false;
  while (bson_iter_next(&ops)) {
    any = true;
    const auto op = keyOf(ops);
    if (op == "$eq" && utf8Of(ops)) continue;
    if (op != "$in" || bson_iter_type(&ops) != BSON_TYPE_ARRAY) return false;
    bson_iter_t names;
    if (!bson_iter_recurse(&ops, &names)) return false;
    while (bson_iter_next(&names)) {
      if (!utf8Of(names)) return false;
    }
  }
  return any;
}

void putPrefixedName(Walk& w, const bson_iter_t& it, bson_t* out, const std::string& prefix) {
  if (auto name = utf8Of(it)) {
    putUtf8(w, it, out, prefix + "_" + std::string(*name));
    return;
  }
  editContainer(w, it, out, [&](const bson_iter_t& op, bson_t* sub) {
    if (utf8Of(op)) {
      putPrefixedName(w, op, sub, prefix);
    } else {  // $in: [names]
      editContainer(w, op, sub, [&](const bson_iter_t& n, bson_t* arr) {
        putPrefixedName(w, n, arr, prefix);
        return true;
      });
    }
    return true;
  });
}

void putStoreListFilter(Walk& w, const bson_iter_t* filter, bson_t* out) {
  const std::string& prefix = w.primary.store->prefix;
  const std::string regex = bson_edit::prefixRegex(prefix);
  if (filter != nullptr && bson_iter_type(filter) != BSON_TYPE_DOCUMENT) {
    copy(out, *filter);  // not a document: the server will refuse it
    return;
  }
  bson_iter_t name;
  if (filter != nullptr && bson_edit::findKey(bson_edit::subdocumentOf(*filter), "name", name) &&
      isNameSelector(name)) {
    editContainer(w, *filter, out, [&](const bson_iter_t& it, bson_t* sub) {
      if (keyOf(it) != "name") return false;
      putPrefixedName(w, it, sub, prefix);
      return true;
    });
    return;
  }
  if (out == nullptr) {
    noteStructuralChange(w);
    return;
  }
  bson_t f;
  bson_append_document_begin(out, "filter", -1, &f);
  if (filter == nullptr) {
    appendPrefixCondition(&f, regex);
  } else {
    bson_t all, first;
    bson_append_array_begin(&f, "$and", -1, &all);
    bson_append_document_begin(&all, "0", -1, &first);
    appendPrefixCondition(&first, regex);
    bson_append_document_end(&all, &first);
    copyAs(&all, "1", *filter);
    bson_append_array_end(&f, &all);
  }
  bson_append_document_end(out, &f);
}

// One nsInfo entry of bulkWrite: {ns: "db.coll", ...}.
bool walkNsInfoField(Walk& w, const bson_iter_t& it, bson_t* out) {
  if (keyOf(it) != "ns" || !utf8Of(it)) return false;
  const auto parts = bson_edit::splitNamespace(*utf8Of(it));
  if (!parts) return false;
  const auto target = w.reach(parts->database, parts->collection, Reach::kSameUpstream, "nsInfo");
  if (!target) return false;
  putUtf8(w, it, out, bson_edit::joinNamespace(target->database, target->collection));
  return true;
}

void walkCommand(Walk& w, const CommandSpec& spec, wire::Bytes doc, bson_t* out, bool topLevel);

void walkCommandValue(Walk& w, const CommandSpec& spec, const bson_iter_t& it, bson_t* out) {
  switch (spec.shape) {
    case CommandShape::kCollection:
      if (utf8Of(it)) {
        putUtf8(w, it, out, w.primary.collection);
        return;
      }
      break;
    case CommandShape::kNamespace:
      if (utf8Of(it) && bson_edit::splitNamespace(*utf8Of(it))) {
        putUtf8(w, it, out, bson_edit::joinNamespace(w.primary.database, w.primary.collection));
        return;
      }
      break;
    case CommandShape::kExplain:
      if (w.innerSpec != nullptr && bson_iter_type(&it) == BSON_TYPE_DOCUMENT) {
        if (out == nullptr) {
          ++w.depth;
          walkCommand(w, *w.innerSpec, bson_edit::subdocumentOf(it), nullptr, false);
          --w.depth;
        } else {
          const auto key = keyOf(it);
          bson_t sub;
          bson_append_document_begin(out, key.data(), static_cast<int>(key.size()), &sub);
          walkCommand(w, *w.innerSpec, bson_edit::subdocumentOf(it), &sub, false);
          bson_append_document_end(out, &sub);
        }
        return;
      }
      break;
    default:
      break;
  }
  copy(out, it);
}

bool mayNameNamespaces(const CommandSpec& spec, std::string_view key);

bool walkCommandField(Walk& w, const CommandSpec& spec, const bson_iter_t& it, bson_t* out,
                      bool& sawListFilter) {
  const auto key = keyOf(it);
  if (!mayNameNamespaces(spec, key)) return false;  // the first pass skips these fields too
  const auto type = bson_iter_type(&it);
  if ((spec.fields & fields::kPipeline) && key == "pipeline") {
    walkPipeline(w, it, out, true);
    return true;
  }
  if ((spec.fields & fields::kViewOn) && key == "viewOn" && type == BSON_TYPE_UTF8) {
    putSameDatabaseCollection(w, it, out, "viewOn");
    return true;
  }
  if ((spec.fields & fields::kToCollection) && key == "toCollection" && type == BSON_TYPE_UTF8) {
    putSameDatabaseCollection(w, it, out, "toCollection");
    return true;
  }
  if ((spec.fields & fields::kMapReduceOut) && key == "out") {
    if (type == BSON_TYPE_UTF8) {
      putCollectionOrTarget(w, it, out, "replace", "out");
      return true;
    }
    if (type == BSON_TYPE_DOCUMENT) {
      const wire::Bytes doc = bson_edit::subdocumentOf(it);
      for (std::string_view action : {"replace", "merge", "reduce"}) {
        if (bson_edit::findUtf8(doc, action)) {
          editTargetDocument(w, it, out, action, Reach::kSameUpstream, "out");
          return true;
        }
      }
    }
    return false;  // {inline: 1}
  }
  if ((spec.fields & fields::kToNamespace) && key == "to" && type == BSON_TYPE_UTF8) {
    const auto parts = bson_edit::splitNamespace(*utf8Of(it));
    if (!parts) return false;
    const auto target = w.reach(parts->database, parts->collection, Reach::kSameUpstream, "to");
    if (!target) return false;
    putUtf8(w, it, out, bson_edit::joinNamespace(target->database, target->collection));
    return true;
  }
  if (spec.shape == CommandShape::kGetMore && key == "collection" && type == BSON_TYPE_UTF8) {
    putUtf8(w, it, out, w.primary.collection);
    return true;
  }
  if (spec.shape == CommandShape::kBulkWrite && key == "nsInfo" && type == BSON_TYPE_ARRAY) {
    editContainer(w, it, out, [&](const bson_iter_t& entry, bson_t* arr) {
      if (bson_iter_type(&entry) != BSON_TYPE_DOCUMENT) return false;
      editContainer(w, entry, arr, [&](const bson_iter_t& f, bson_t* s) {
        return walkNsInfoField(w, f, s);
      });
      return true;
    });
    return true;
  }
  if ((spec.fields & fields::kIndexSpecs) && key == "indexes" && type == BSON_TYPE_ARRAY) {
    // Old drivers put the index's namespace in each spec; it must match the target.
    const std::string logical = logicalName(w.primaryDb, w.primaryCollection);
    editContainer(w, it, out, [&](const bson_iter_t& index, bson_t* arr) {
      if (bson_iter_type(&index) != BSON_TYPE_DOCUMENT) return false;
      editContainer(w, index, arr, [&](const bson_iter_t& f, bson_t* s) {
        if (keyOf(f) != "ns" || utf8Of(f) != std::string_view(logical)) return false;
        putUtf8(w, f, s, bson_edit::joinNamespace(w.primary.database, w.primary.collection));
        return true;
      });
      return true;
    });
    return true;
  }
  if ((spec.fields & fields::kListFilter) && key == "filter" && w.primary.rule == 3) {
    sawListFilter = true;
    putStoreListFilter(w, &it, out);
    return true;
  }
  return false;
}

// True when walkCommandField may handle the field `key` of a `spec` command; it leaves
// every other field alone.
bool mayNameNamespaces(const CommandSpec& spec, std::string_view key) {
  using namespace fields;
  if (spec.fields == 0 && spec.shape != CommandShape::kGetMore && spec.shape != CommandShape::kBulkWrite) {
    return false;  // find, insert, update, delete, ...: no such field
  }
  return ((spec.fields & kPipeline) && key == "pipeline") ||
         ((spec.fields & kViewOn) && key == "viewOn") ||
         ((spec.fields & kToCollection) && key == "toCollection") ||
         ((spec.fields & kMapReduceOut) && key == "out") ||
         ((spec.fields & kToNamespace) && key == "to") ||
         (spec.shape == CommandShape::kGetMore && key == "collection") ||
         (spec.shape == CommandShape::kBulkWrite && key == "nsInfo") ||
         ((spec.fields & kIndexSpecs) && key == "indexes") ||
         ((spec.fields & kListFilter) && key == "filter");
}

// walkCommand's first pass: the same decisions, with the command's fields found by a
// wire::BsonWalker; a libbson iterator is made only for a field that names namespaces
// (none in a find, insert, update or delete), so the usual command costs one cheap walk.
void readCommand(Walk& w, const CommandSpec& spec, wire::Bytes doc, bool topLevel) {
  wire::BsonWalker walker(doc);
  bool first = true;
  bool sawListFilter = false;
  bool stopped = false;
  bson_iter_t it;
  for (wire::BsonElement e; walker.next(e);) {
    if (first) {
      first = false;
      if (spec.shape == CommandShape::kCollection) {  // walkCommandValue's kCollection case
        if (const auto collection = e.utf8()) {
          noteUtf8(w, collection, e.offset, e.key, e.end, w.primary.collection);
        }
      } else if (spec.shape != CommandShape::kDatabase) {
        if (!bson_edit::iterAt(it, doc, e)) {
          stopped = true;
          break;
        }
        walkCommandValue(w, spec, it, nullptr);
      }
      continue;
    }
    if (topLevel && e.key == "$db") {
      noteUtf8(w, e.utf8(), e.offset, e.key, e.end, w.dollarDb);
      continue;
    }
    if (!mayNameNamespaces(spec, e.key)) continue;
    if (!bson_edit::iterAt(it, doc, e)) {
      stopped = true;
      break;
    }
    walkCommandField(w, spec, it, nullptr, sawListFilter);
  }
  // Stopped early (malformed, or libbson disagreeing about an element): forward as it came.
  if (stopped || walker.malformed()) w.corrupt = true;
  if ((spec.fields & fields::kListFilter) && w.primary.rule == 3 && !sawListFilter &&
      w.primary.store != nullptr) {
    putStoreListFilter(w, nullptr, nullptr);
  }
}

void walkCommand(Walk& w, const CommandSpec& spec, wire::Bytes doc, bson_t* out, bool topLevel) {
  if (out == nullptr) {
    readCommand(w, spec, doc, topLevel);
    return;
  }
  bool first = true;
  bool sawListFilter = false;
  editDocument(
      w, doc, out,
      [&](const bson_iter_t& it, bson_t* o) {
        if (first) {
          first = false;
          walkCommandValue(w, spec, it, o);
          return true;
        }
        if (topLevel && keyOf(it) == "$db") {
          putUtf8(w, it, o, w.dollarDb);
          return true;
        }
        return walkCommandField(w, spec, it, o, sawListFilter);
      },
      [&](bson_t* o) {
        if ((spec.fields & fields::kListFilter) && w.primary.rule == 3 && !sawListFilter &&
            w.primary.store != nullptr) {
          putStoreListFilter(w, nullptr, o);
        }
      });
}

// The first nsInfo[].ns of a bulkWrite, from the body or from its "nsInfo" sequence.
std::optional<std::string_view> firstBulkWriteNamespace(const wire::OpMsgView& message) {
  wire::Bytes first;
  bson_iter_t it;
  if (bson_edit::findKey(message.body, "nsInfo", it) && bson_iter_type(&it) == BSON_TYPE_ARRAY) {
    bson_iter_t entries;
    if (bson_iter_recurse(&it, &entries) && bson_iter_next(&entries)) {
      first = bson_edit::subdocumentOf(entries);
    }
  } else {
    for (const auto& seq : message.documentSequences()) {
      if (seq.identifier != "nsInfo") continue;
      bson_edit::forEachDocument(seq.documents, [&](wire::Bytes d) {
        if (first.empty()) first = d;
      });
    }
  }
  if (first.empty()) return std::nullopt;
  return bson_edit::findUtf8(first, "ns");
}

const CommandSpec kUnknownCommand{CommandShape::kDatabase, 0};

}  // namespace

const CommandSpec* findCommandSpec(std::string_view name) {
  using enum CommandShape;
  using namespace fields;
  static const std::unordered_map<std::string_view, CommandSpec> kTable{
      {"aggregate", {kCollection, kPipeline | kChangeStreams}},
      {"analyzeShardKey", {kNamespace, 0}},
      {"bulkWrite", {kBulkWrite, 0}},
      {"checkMetadataConsistency", {kCollection, 0}},
      {"cloneCollectionAsCapped", {kCollection, kToCollection}},
      {"collMod", {kCollection, kViewOn | kPipeline}},
      {"collStats", {kCollection, 0}},
      {"compact", {kCollection, 0}},
      {"configureQueryAnalyzer", {kNamespace, 0}},
      {"convertToCapped", {kCollection, 0}},
      {"count", {kCollection, 0}},
      {"create", {kCollection, kViewOn | kPipeline}},
      {"createIndexes", {kCollection, kIndexSpecs}},
      {"createSearchIndexes", {kCollection, 0}},
      {"dataSize", {kNamespace, 0}},
      {"datasize", {kNamespace, 0}},
      {"dbStats", {kDatabase, 0}},
      {"dbstats", {kDatabase, 0}},
      {"delete", {kCollection, 0}},
      {"deleteIndexes", {kCollection, 0}},
      {"distinct", {kCollection, 0}},
      {"drop", {kCollection, 0}},
      {"dropDatabase", {kDatabase, 0}},
      {"dropIndexes", {kCollection, 0}},
      {"dropSearchIndex", {kCollection, 0}},
      {"explain", {kExplain, 0}},
      {"find", {kCollection, 0}},
      {"findAndModify", {kCollection, 0}},
      {"findandmodify", {kCollection, 0}},
      {"getMore", {kGetMore, 0}},
      {"insert", {kCollection, 0}},
      {"killCursors", {kCollection, 0}},
      {"listCollections", {kDatabase, kListFilter}},
      {"listIndexes", {kCollection, 0}},
      {"mapReduce", {kCollection, kMapReduceOut}},
      {"mapreduce", {kCollection, kMapReduceOut}},
      {"moveCollection", {kNamespace, 0}},
      {"planCacheClear", {kCollection, 0}},
      {"planCacheClearFilters", {kCollection, 0}},
      {"planCacheListFilters", {kCollection, 0}},
      {"planCacheSetFilter", {kCollection, 0}},
      {"reIndex", {kCollection, 0}},
      {"refineCollectionShardKey", {kNamespace, 0}},
      {"renameCollection", {kNamespace, kToNamespace}},
      {"reshardCollection", {kNamespace, 0}},
      {"shardCollection", {kNamespace, 0}},
      {"unshardCollection", {kNamespace, 0}},
      {"update", {kCollection, 0}},
      {"updateSearchIndex", {kCollection, 0}},
      {"validate", {kCollection, 0}},
  };
  const auto it = kTable.find(name);
  return it == kTable.end() ? nullptr : &it->second;
}

void addMapping(std::vector<NamespaceMapping>& mappings, const PhysicalNamespace& target,
                std::string_view logicalDatabase, std::string_view logicalCollection) {
  for (const auto& m : mappings) {
    if (m.physicalDatabase == target.database && m.physicalCollection == target.collection &&
        m.logicalDatabase == logicalDatabase && m.logicalCollection == logicalCollection) {
      return;
    }
  }
  NamespaceMapping& m = mappings.emplace_back();
  m.physicalDatabase = target.database;
  m.physicalCollection = target.collection;
  m.logicalDatabase = logicalDatabase;
  m.logicalCollection = logicalCollection;
  m.rule = target.rule;
  if (target.store != nullptr) m.storePrefix = target.store->prefix;
}

void routeByNamespaces(const RoutingConfig& config, const RegistrySnapshot& registry,
                       const wire::OpMsgView& message, RoutedCommand& out) {
  // Unknown commands are routed by $db alone (rules 1, 3 and 4 on the database; for
  // rule 3 that is the store's physical database). The proxy logs each unknown command
  // name once, so that a command naming a collection somewhere mongogate does not
  // rewrite is noticed.
  const CommandSpec* spec = findCommandSpec(out.commandName);
  if (spec == nullptr) spec = &kUnknownCommand;

  Walk w{config, registry};
  w.command = out.commandName;
  w.logicalDb = out.logicalDatabase;
  w.mappings = &out.mappings;
  w.primaryDb = w.logicalDb;

  // The document whose namespaces decide the target: the body, or explain's inner command.
  const CommandSpec* routed = spec;
  wire::Bytes routedDoc = message.body;
  if (spec->shape == CommandShape::kExplain) {
    bson_iter_t it;
    if (bson_edit::findKey(message.body, "explain", it) && bson_iter_type(&it) == BSON_TYPE_DOCUMENT) {
      routedDoc = bson_edit::subdocumentOf(it);
      w.command = wire::firstKey(routedDoc);
      w.innerSpec = findCommandSpec(w.command);
      if (w.innerSpec == nullptr) w.innerSpec = &kUnknownCommand;
      routed = w.innerSpec;
    } else {
      routed = &kUnknownCommand;
    }
  }

  // The primary namespace.
  bool carriesNamespaces = false;  // names full "db.coll" namespaces, whatever $db is
  wire::BsonElement first;
  const bool hasFirst = wire::BsonWalker(routedDoc).next(first);
  switch (routed->shape) {
    case CommandShape::kCollection:
      if (hasFirst && first.utf8()) w.primaryCollection = *first.utf8();
      break;
    case CommandShape::kGetMore:
      if (auto c = bson_edit::findUtf8(routedDoc, "collection")) w.primaryCollection = *c;
      break;
    case CommandShape::kNamespace:
      carriesNamespaces = true;
      if (hasFirst && first.utf8()) {
        if (auto parts = bson_edit::splitNamespace(*first.utf8())) {
          w.primaryDb = parts->database;
          w.primaryCollection = parts->collection;
        }
      }
      break;
    case CommandShape::kBulkWrite:
      carriesNamespaces = true;
      if (auto ns = firstBulkWriteNamespace(message)) {
        if (auto parts = bson_edit::splitNamespace(*ns)) {
          w.primaryDb = parts->database;
          w.primaryCollection = parts->collection;
        }
      }
      break;
    default:
      break;
  }
  NamespaceResolution primary = resolveNamespace(config, registry, w.primaryDb, w.primaryCollection);
  if (!primary.target) {
    out.refusal = std::move(primary.refusal);
    return;
  }
  w.primary = std::move(*primary.target);
  addMapping(out.mappings, w.primary, w.primaryDb, w.primaryCollection);

  // The physical $db. Commands that name full namespaces and run on admin
  // (renameCollection, bulkWrite, shardCollection, ...) stay on admin and go where their
  // namespaces live; otherwise $db resolves like any database and must agree.
  w.dollarDb = w.primary.database;
  if (carriesNamespaces && w.primaryDb != w.logicalDb) {
    if (w.logicalDb == "admin") {
      w.dollarDb = "admin";
    } else {
      NamespaceResolution db = resolveNamespace(config, registry, w.logicalDb, {});
      if (!db.target) {
        out.refusal = std::move(db.refusal);
        out.mappings.clear();
        return;
      }
      if (db.target->upstream != w.primary.upstream) {
        const std::string primaryName = logicalName(w.primaryDb, w.primaryCollection);
        out.refusal = Refusal{kIllegalOperation, "IllegalOperation",
                              "mongogate: " + std::string(w.command) + " run on " +
                                  std::string(w.logicalDb) + " names " + primaryName +
                                  ", which is on upstream '" + w.primary.upstream + "' while " +
                                  std::string(w.logicalDb) + " is on '" + db.target->upstream +
                                  "'; cross-upstream commands are refused"};
        out.mappings.clear();
        return;
      }
      w.dollarDb = db.target->database;
      addMapping(out.mappings, *db.target, w.logicalDb, {});
    }
  }

  // First pass: resolve and check everything, note what changes.
  w.recordEdits = true;
  walkCommand(w, *spec, message.body, nullptr, true);
  w.recordEdits = false;
  const bool bodyChanged = w.changed;
  const wire::DocumentSequence* nsInfo = nullptr;
  bool nsInfoChanged = false;
  if (spec->shape == CommandShape::kBulkWrite) {
    for (const auto& seq : message.documentSequences()) {
      if (seq.identifier == "nsInfo") nsInfo = &seq;
    }
    if (nsInfo != nullptr) {
      w.changed = false;
      const bool wellFormed = bson_edit::forEachDocument(nsInfo->documents, [&](wire::Bytes d) {
        editDocument(
            w, d, nullptr, [&](const bson_iter_t& f, bson_t* o) { return walkNsInfoField(w, f, o); },
            [](bson_t*) {});
      });
      if (!wellFormed) w.corrupt = true;
      nsInfoChanged = w.changed;
    }
  }
  if (w.refusal) {
    out.refusal = std::move(w.refusal);
    out.mappings.clear();
    return;
  }
  out.upstream = w.primary.upstream;
  // A document that does not iterate to its end is forwarded as it came: rewriting it
  // would forward part of a command. The upstream rejects it.
  if (w.corrupt) return;

  // Second pass: write what changed.
  w.emit = true;
  if (bodyChanged && w.spliceable) {
    spliceEdits(w, message.body, out.body);
    out.bodyRewritten = true;
  } else if (bodyChanged) {
    bson_edit::Document doc;
    walkCommand(w, *spec, message.body, doc.get(), true);
    const wire::Bytes bytes = doc.bytes();
    out.body.assign(bytes.begin(), bytes.end());
    out.bodyRewritten = true;
  }
  if (nsInfoChanged) {
    std::vector<std::uint8_t> documents;
    documents.reserve(nsInfo->documents.size() + 64);
    bson_edit::forEachDocument(nsInfo->documents, [&](wire::Bytes d) {
      bson_edit::Document doc;
      editDocument(
          w, d, doc.get(), [&](const bson_iter_t& f, bson_t* o) { return walkNsInfoField(w, f, o); },
          [](bson_t*) {});
      const auto bytes = doc.bytes();
      documents.insert(documents.end(), bytes.begin(), bytes.end());
    });
    out.rewrittenSequences.emplace_back(std::string(nsInfo->identifier), std::move(documents));
  }
}

}  // namespace mongogate::router::detail
