// router/routing.cpp — the request side of routing.h: where a logical namespace lives
// (SPEC §3), which database a new store gets (SPEC §5), and how one OP_MSG command is
// routed, rewritten, refused or planned as a fan-out (SPEC §4). The namespace walk
// itself is in request_rewrite.cpp; the reply side is in another file.
//
// Error codes mongogate answers with instead of forwarding:
//   26 NamespaceNotFound  rule 3 names a store prefix the registry does not know: the
//                         logical database does not exist, and retrying will not help.
//   20 IllegalOperation   a well-formed command mongogate will not run: namespaces on
//                         different upstreams (or, for $lookup & co., in different
//                         physical databases), dropDatabase on a store database, or on
//                         the main database unless allowDropMainDatabase.
//
// Deliberate limits (the README's "what is and is not supported" should say so):
// - Database-level change streams watch one physical database: on a rule-3 database a
//   $match keeps the store's own events; on the main database (and cluster-wide on
//   admin) only `main` is watched, not the stores moved to pos_db_N.
// - In a rule-3 database every collection gets the prefix, system.* included (another
//   store's views are never visible); "$cmd.*" cursor namespaces are left alone.
// - Only `insert` into the registry collection assigns databaseId; upserts through
//   update/findAndModify are forwarded as they are.
// - Commands on admin without namespaces (currentOp, endSessions, commitTransaction...)
//   go to `main`; splitting or pinning them per upstream is the proxy's job (SPEC §6).
#include "router/routing.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "router/bson_edit.h"
#include "router/request_rewrite.h"

namespace mongogate::router {
namespace {

constexpr std::int32_t kNamespaceNotFound = 26;
constexpr std::int32_t kIllegalOperation = 20;

// N when `database` is the physical store database {databasePrefix}_N (N >= 1, decimal
// without a leading zero).
std::optional<std::int32_t> storeDatabaseIdOf(const RoutingConfig& config, std::string_view database) {
  const std::string_view prefix = config.databasePrefix;
  if (database.size() <= prefix.size() + 1 || !database.starts_with(prefix) ||
      database[prefix.size()] != '_') {
    return std::nullopt;
  }
  const std::string_view digits = database.substr(prefix.size() + 1);
  if (digits.front() == '0') return std::nullopt;
  std::int32_t id = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (ec != std::errc() || end != digits.data() + digits.size() || id < 1) return std::nullopt;
  return id;
}

bool isMasterAdminDatabase(const RoutingConfig& config, std::string_view database) {
  return std::find(config.masterAdminDatabases.begin(), config.masterAdminDatabases.end(),
                   database) != config.masterAdminDatabases.end();
}

// Where a store's data lives: fills all of `p` but its collection.
void inStore(const RoutingConfig& config, const StoreRecord& store, int rule, PhysicalNamespace& p) {
  config.locateStore(store.databaseId, p.upstream, p.database);
  p.rule = rule;
  p.store = &store;
}

// The physical store databases a cross-store view covers: pos_db_1..databaseCount, and
// any higher id the registry uses.
std::vector<std::int32_t> storeDatabaseIds(const RoutingConfig& config,
                                           const RegistrySnapshot& registry) {
  std::vector<std::int32_t> ids;
  for (std::int32_t id = 1; id <= config.databaseCount; ++id) ids.push_back(id);
  for (const auto& store : registry.stores()) {
    if (store.databaseId > config.databaseCount &&
        std::find(ids.begin(), ids.end(), store.databaseId) == ids.end()) {
      ids.push_back(store.databaseId);
    }
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

// The body with its top-level string field `key` set to `value` (other elements copied).
std::vector<std::uint8_t> withUtf8Field(wire::Bytes body, std::string_view key,
                                        std::string_view value) {
  bson_edit::Document doc;
  bson_iter_t it;
  if (bson_edit::initIter(it, body)) {
    while (bson_iter_next(&it)) {
      if (bson_edit::keyOf(it) == key) {
        bson_edit::appendUtf8(doc.get(), key, value);
      } else {
        bson_edit::copyElement(doc.get(), it);
      }
    }
  }
  return doc.toVector();
}

std::vector<std::uint8_t> toVector(wire::Bytes b) { return {b.begin(), b.end()}; }

// listCollections on the main database: the logical view holds the main database's
// collections and every store's (rule 2 keeps their names), so it is planned as a
// fan-out over the main database and each store database. A filter that is exactly
// {name: "<prefix>_<rest>"} (how drivers and ODMs ask "does this collection exist")
// concerns one store: it is routed there alone.
void planListCollections(const RoutingConfig& config, const RegistrySnapshot& registry,
                         const wire::OpMsgView& message, RoutedCommand& out) {
  bson_iter_t filter;
  if (bson_edit::findKey(message.body, "filter", filter) &&
      bson_iter_type(&filter) == BSON_TYPE_DOCUMENT) {
    bson_iter_t f;
    std::optional<std::string_view> name;
    int keys = 0;
    if (bson_iter_recurse(&filter, &f)) {
      while (bson_iter_next(&f)) {
        ++keys;
        if (bson_edit::keyOf(f) == "name") name = bson_edit::utf8Of(f);
      }
    }
    if (keys == 1 && name && *name != config.registryCollection &&
        registry.matchCollection(*name) != nullptr) {
      NamespaceResolution r = resolveNamespace(config, registry, config.mainDatabase, *name);
      const PhysicalNamespace& t = *r.target;
      out.upstream = t.upstream;
      detail::addMapping(out.mappings, t, config.mainDatabase, *name);
      if (t.database != out.logicalDatabase) {
        out.body = withUtf8Field(message.body, "$db", t.database);
        out.bodyRewritten = true;
      }
      return;
    }
  }

  out.replyHandling = ReplyHandling::kMergeListCollections;
  out.upstream = config.mainUpstream;
  out.fanOut.push_back({config.mainUpstream, config.mainDatabase, toVector(message.body)});
  PhysicalNamespace main;
  main.upstream = config.mainUpstream;
  main.database = config.mainDatabase;
  detail::addMapping(out.mappings, main, config.mainDatabase, {});
  for (const std::int32_t id : storeDatabaseIds(config, registry)) {
    PhysicalNamespace part;
    part.upstream = config.upstreamOfStoreDatabase(id);
    part.database = config.physicalStoreDatabase(id);
    part.rule = 2;
    out.fanOut.push_back(
        {part.upstream, part.database, withUtf8Field(message.body, "$db", part.database)});
    detail::addMapping(out.mappings, part, config.mainDatabase, {});
  }
}

// listDatabases: one request per distinct upstream, merged into the logical view.
void planListDatabases(const RoutingConfig& config, const RegistrySnapshot& registry,
                       const wire::OpMsgView& message, RoutedCommand& out) {
  out.replyHandling = ReplyHandling::kMergeListDatabases;
  out.upstream = config.mainUpstream;
  std::vector<std::string_view> upstreams{config.mainUpstream};
  auto add = [&](std::string_view upstream) {
    if (std::find(upstreams.begin(), upstreams.end(), upstream) == upstreams.end()) {
      upstreams.push_back(upstream);
    }
  };
  add(config.masterAdminUpstream);
  for (const std::int32_t id : storeDatabaseIds(config, registry)) {
    add(config.upstreamOfStoreDatabase(id));
  }
  for (const auto upstream : upstreams) {
    out.fanOut.push_back({std::string(upstream), "admin", toVector(message.body)});
  }
}

// dropDatabase is refused where it would destroy more than the client's logical
// database: a rule-3 store database shares its physical database with other stores
// (mongogate cannot list the store's collections without I/O, so the client drops them
// one by one); the main database holds the registry and the stores not moved yet; a
// physical store database holds several stores.
std::optional<Refusal> checkDropDatabase(const RoutingConfig& config,
                                         const RegistrySnapshot& registry,
                                         std::string_view database) {
  if (isMasterAdminDatabase(config, database)) return std::nullopt;
  if (database == config.mainDatabase) {
    if (config.allowDropMainDatabase) return std::nullopt;
    return Refusal{kIllegalOperation, "IllegalOperation",
                   "mongogate: dropDatabase on the main database '" + std::string(database) +
                       "' is refused: it holds the store registry and every store not moved "
                       "yet (set allowDropMainDatabase to allow it)"};
  }
  NamespaceResolution r = resolveNamespace(config, registry, database, {});
  if (!r.target) return std::move(r.refusal);
  if (r.target->rule == 3) {
    return Refusal{kIllegalOperation, "IllegalOperation",
                   "mongogate: dropDatabase on store database '" + std::string(database) +
                       "' is refused: the store shares its physical database with other "
                       "stores; drop its collections one by one instead"};
  }
  if (auto id = storeDatabaseIdOf(config, database)) {
    if (const std::size_t n = registry.storesInDatabase(*id); n > 0) {
      return Refusal{kIllegalOperation, "IllegalOperation",
                     "mongogate: dropDatabase on '" + std::string(database) +
                         "' is refused: it holds the data of " + std::to_string(n) +
                         (n == 1 ? " store" : " stores")};
    }
  }
  return std::nullopt;
}

// What one document inserted into the registry collection says about its store.
struct InsertedStore {
  StoreRecord record;
  bool hasPrefix = false;
  bool needsDatabaseId = false;  // databaseId absent or null
};

InsertedStore readInsertedStore(wire::Bytes doc) {
  InsertedStore s;
  s.needsDatabaseId = true;
  std::string fallbackId;
  bool hasStoreId = false;
  bson_iter_t it;
  if (!bson_edit::initIter(it, doc)) return {};
  while (bson_iter_next(&it)) {
    const auto key = bson_edit::keyOf(it);
    if (key == "storeId") {
      s.record.storeId = bson_edit::idText(it);
      hasStoreId = true;
    } else if (key == "_id") {
      fallbackId = bson_edit::idText(it);
    } else if (key == "name") {
      if (auto v = bson_edit::utf8Of(it)) s.record.name = *v;
    } else if (key == "prefix") {
      if (auto v = bson_edit::utf8Of(it)) {
        s.record.prefix = *v;
        s.hasPrefix = !v->empty();
      }
    } else if (key == "databaseId") {
      if (bson_iter_type(&it) != BSON_TYPE_NULL) {
        s.needsDatabaseId = false;
        const auto v = bson_edit::integerOf(it);
        if (v && *v >= 0 && *v <= std::numeric_limits<std::int32_t>::max()) {
          s.record.databaseId = static_cast<std::int32_t>(*v);
        }
      }
    }
  }
  if (!hasStoreId) s.record.storeId = std::move(fallbackId);  // no storeId: _id names it
  return s;
}

// Writes `doc` with databaseId set to `id`: a null databaseId is replaced where it
// stands, an absent one appended.
void appendWithDatabaseId(bson_t* out, wire::Bytes doc, std::int32_t id) {
  bson_iter_t it;
  bool written = false;
  if (bson_edit::initIter(it, doc)) {
    while (bson_iter_next(&it)) {
      if (bson_edit::keyOf(it) == "databaseId") {
        bson_append_int32(out, "databaseId", -1, id);
        written = true;
      } else {
        bson_edit::copyElement(out, it);
      }
    }
  }
  if (!written) bson_append_int32(out, "databaseId", -1, id);
}

// insert into <main db>.<registry collection> (SPEC §5): each new store without a
// databaseId gets one before the insert is forwarded, and every inserted store is
// reported in out.newStores for the proxy to publish once the upstream acknowledges.
void assignNewStores(const RoutingConfig& config, const RegistrySnapshot& registry,
                     AssignmentState& assignment, const wire::OpMsgView& message,
                     RoutedCommand& out) {
  const wire::Bytes body = out.bodyRewritten ? wire::Bytes(out.body) : message.body;
  bson_iter_t documents;
  const bool inBody = bson_edit::findKey(body, "documents", documents) &&
                      bson_iter_type(&documents) == BSON_TYPE_ARRAY;
  const wire::DocumentSequence* sequence = nullptr;
  if (!inBody) {
    for (const auto& seq : message.documentSequences()) {
      if (seq.identifier == "documents") sequence = &seq;
    }
    if (sequence == nullptr) return;
  }

  // Calls fn(document bytes) for each inserted document; false when malformed.
  auto forEachInserted = [&](auto&& fn) {
    if (sequence != nullptr) return bson_edit::forEachDocument(sequence->documents, fn);
    bson_iter_t docs;
    if (!bson_iter_recurse(&documents, &docs)) return false;
    while (bson_iter_next(&docs)) {
      // A non-document is the server's to refuse: rewriting would drop it.
      if (bson_iter_type(&docs) != BSON_TYPE_DOCUMENT) return false;
      fn(bson_edit::subdocumentOf(docs));
    }
    return !bson_edit::stoppedOnCorruption(docs);
  };

  bool anyNeedsId = false;
  const bool wellFormed = forEachInserted([&](wire::Bytes doc) {
    if (readInsertedStore(doc).needsDatabaseId) anyNeedsId = true;
  });
  if (!wellFormed) return;  // the upstream rejects it; nothing is assigned

  // Reads one inserted store; when `rewritten` is set, writes the document there with
  // its databaseId (assigned when missing).
  std::size_t assigned = 0;
  auto take = [&](wire::Bytes doc, bson_t* rewritten) {
    InsertedStore s = readInsertedStore(doc);
    if (s.needsDatabaseId) {
      s.record.databaseId = assignDatabase(config, registry, assignment, assigned++);
    }
    if (rewritten != nullptr) {
      if (s.needsDatabaseId) {
        appendWithDatabaseId(rewritten, doc, s.record.databaseId);
      } else {
        bson_iter_t e;
        if (bson_edit::initIter(e, doc)) {
          while (bson_iter_next(&e)) bson_edit::copyElement(rewritten, e);
        }
      }
    }
    if (s.hasPrefix) out.newStores.push_back(std::move(s.record));
  };

  if (!anyNeedsId) {
    forEachInserted([&](wire::Bytes doc) { take(doc, nullptr); });
    return;
  }

  if (sequence != nullptr) {
    std::vector<std::uint8_t> rewritten;
    rewritten.reserve(sequence->documents.size() + 32);
    forEachInserted([&](wire::Bytes doc) {
      bson_edit::Document d;
      take(doc, d.get());
      const auto bytes = d.bytes();
      rewritten.insert(rewritten.end(), bytes.begin(), bytes.end());
    });
    out.rewrittenSequences.emplace_back(std::string(sequence->identifier), std::move(rewritten));
    return;
  }

  bson_edit::Document doc;
  bson_iter_t it;
  bson_edit::initIter(it, body);
  while (bson_iter_next(&it)) {
    if (bson_edit::keyOf(it) != "documents") {
      bson_edit::copyElement(doc.get(), it);
      continue;
    }
    bson_t array;
    bson_append_array_begin(doc.get(), "documents", -1, &array);
    std::uint32_t index = 0;
    forEachInserted([&](wire::Bytes inserted) {
      char buf[16];
      const char* key = nullptr;
      const std::size_t len = bson_uint32_to_string(index++, &key, buf, sizeof buf);
      bson_t d;
      bson_append_document_begin(&array, key, static_cast<int>(len), &d);
      take(inserted, &d);
      bson_append_document_end(&array, &d);
    });
    bson_append_array_end(doc.get(), &array);
  }
  out.body = doc.toVector();
  out.bodyRewritten = true;
}

}  // namespace

std::string RoutingConfig::physicalStoreDatabase(std::int32_t databaseId) const {
  std::string name;
  assignPhysicalStoreDatabase(name, databaseId);
  return name;
}

void RoutingConfig::assignPhysicalStoreDatabase(std::string& out, std::int32_t databaseId) const {
  char digits[16];
  const auto end = std::to_chars(digits, digits + sizeof digits, databaseId).ptr;
  out.assign(databasePrefix).append(1, '_').append(digits, end);
}

void RoutingConfig::locateStore(std::int32_t databaseId, std::string& upstream, std::string& database) const {
  if (databaseId > 0) {
    upstream = upstreamOfStoreDatabase(databaseId);
    assignPhysicalStoreDatabase(database, databaseId);
  } else {  // not moved yet: the data is still in the main database
    upstream = mainUpstream;
    database = mainDatabase;
  }
}

const std::string& RoutingConfig::upstreamOfStoreDatabase(std::int32_t databaseId) const {
  if (databaseId >= 1 && static_cast<std::size_t>(databaseId) <= storeDatabaseUpstreams.size()) {
    const std::string& upstream = storeDatabaseUpstreams[static_cast<std::size_t>(databaseId) - 1];
    if (!upstream.empty()) return upstream;
  }
  return mainUpstream;
}

NamespaceResolution resolveNamespace(const RoutingConfig& config, const RegistrySnapshot& registry,
                                     std::string_view database, std::string_view collection) {
  // A listIndexes cursor's namespace, as a getMore names it ("$cmd.listIndexes.<coll>"):
  // it lives with <coll>.
  // Every return below names `r`: the result is built in place, not moved out.
  NamespaceResolution r;
  constexpr std::string_view kListIndexesCursor = "$cmd.listIndexes.";
  if (collection.size() > kListIndexesCursor.size() && collection.starts_with(kListIndexesCursor)) {
    r = resolveNamespace(config, registry, database, collection.substr(kListIndexesCursor.size()));
    if (r.target) r.target->collection.insert(0, kListIndexesCursor);
    return r;
  }
  // Rule 1: master-admin.
  if (isMasterAdminDatabase(config, database)) {
    PhysicalNamespace& p = r.target.emplace();
    p.upstream = config.masterAdminUpstream;
    p.database = config.masterAdminPhysicalDatabase.empty() ? std::string(database)
                                                            : config.masterAdminPhysicalDatabase;
    p.collection = collection;
    p.rule = 1;
    return r;
  }
  // Rule 2: <main db>.<prefix>_<rest>; the registry collection itself never moves.
  if (database == config.mainDatabase) {
    if (!collection.empty() && collection != config.registryCollection) {
      if (const StoreRecord* store = registry.matchCollection(collection)) {
        PhysicalNamespace& p = r.target.emplace();
        inStore(config, *store, 2, p);
        p.collection = collection;
        return r;
      }
    }
  } else if (!config.storeDatabasePrefix.empty() &&
             database.size() > config.storeDatabasePrefix.size() &&
             database.starts_with(config.storeDatabasePrefix)) {
    // Rule 3: store_<prefix>.c -> <prefix>_c in the store's database.
    const std::string_view prefix = database.substr(config.storeDatabasePrefix.size());
    const StoreRecord* store = registry.findByPrefix(prefix);
    if (store == nullptr) {
      const std::string what =
          collection.empty()
              ? "logical database '" + std::string(database) + "'"
              : "logical namespace '" + bson_edit::joinNamespace(database, collection) + "'";
      r.refusal = Refusal{kNamespaceNotFound, "NamespaceNotFound",
                          "mongogate: no store with prefix '" + std::string(prefix) +
                              "' is registered (" + what + ")"};
      return r;
    }
    PhysicalNamespace& p = r.target.emplace();
    inStore(config, *store, 3, p);
    if (collection.starts_with("$cmd")) {
      // A database-level cursor's namespace ("$cmd.listCollections", "$cmd.aggregate"),
      // as a getMore names it: it belongs to the database, not to a collection.
      p.collection = collection;
    } else if (!collection.empty()) {
      p.collection.reserve(store->prefix.size() + 1 + collection.size());
      p.collection.append(store->prefix).append("_").append(collection);
    }
    return r;
  }
  // Rule 4: unchanged, on main — except a physical store database named directly
  // (pos_db_N), which goes to the upstream that holds it rather than to a copy created
  // by accident on main.
  PhysicalNamespace& p = r.target.emplace();
  const auto id = storeDatabaseIdOf(config, database);
  p.upstream = id ? config.upstreamOfStoreDatabase(*id) : config.mainUpstream;
  p.database = database;
  p.collection = collection;
  p.rule = 4;
  return r;
}

std::int32_t assignDatabase(const RoutingConfig& config, const RegistrySnapshot& registry,
                            AssignmentState& state, std::size_t storesAlreadyAdded) {
  const std::int32_t count = config.databaseCount;
  if (count <= 0) return 0;  // no store databases: the store stays in the main database
  switch (state.policy) {
    case AssignmentPolicy::kFill: {
      // The seed formula: fill pos_db_1 up to storesPerDatabase, then the next.
      const std::uint64_t perDatabase =
          static_cast<std::uint64_t>(std::max<std::int32_t>(config.storesPerDatabase, 1));
      const std::uint64_t stores = registry.size() + storesAlreadyAdded;
      return static_cast<std::int32_t>(
          std::min<std::uint64_t>(stores / perDatabase + 1, static_cast<std::uint64_t>(count)));
    }
    case AssignmentPolicy::kLeastLoaded: {
      // The database with the fewest stores (ties: the lowest id). Stores added earlier in
      // the same request went, by this same rule, where the replay below puts them.
      std::vector<std::size_t> load(static_cast<std::size_t>(count));
      for (std::int32_t id = 1; id <= count; ++id) {
        load[static_cast<std::size_t>(id) - 1] = registry.storesInDatabase(id);
      }
      auto least = [&load] {
        return static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
      };
      for (std::size_t i = 0; i < storesAlreadyAdded; ++i) ++load[least()];
      return static_cast<std::int32_t>(least()) + 1;
    }
    case AssignmentPolicy::kRoundRobin:
      return 1 + static_cast<std::int32_t>(state.roundRobinNext++ % static_cast<std::uint64_t>(count));
  }
  return 1;
}

bool knowsCommandNamespaces(std::string_view commandName) {
  return detail::findCommandSpec(commandName) != nullptr;
}

void RoutedCommand::reset() {
  refusal.reset();
  upstream.clear();
  bodyRewritten = false;
  body.clear();
  rewrittenSequences.clear();
  mappings.clear();
  replyHandling = ReplyHandling::kForward;
  fanOut.clear();
  logicalDatabase.clear();
  commandName.clear();
  newStores.clear();
}

RoutedCommand routeCommand(const RoutingConfig& config, const RegistrySnapshot& registry,
                           AssignmentState& assignment, const wire::OpMsgView& message) {
  RoutedCommand out;
  routeCommand(config, registry, assignment, message, out);
  return out;
}

void routeCommand(const RoutingConfig& config, const RegistrySnapshot& registry, AssignmentState& assignment,
                  const wire::OpMsgView& message, RoutedCommand& out) {
  out.reset();
  out.upstream = config.mainUpstream;
  // One walk finds the command (the first element) and $db (the first "$db").
  wire::BsonWalker walker(message.body);
  wire::BsonElement first;
  std::optional<std::string_view> db;
  if (walker.next(first)) {
    out.commandName = first.key;
    wire::BsonElement e = first;
    do {
      if (e.key == "$db") {
        db = e.utf8();
        break;
      }
    } while (walker.next(e));
  }
  if (!db) return;  // not a valid OP_MSG command: the upstream answers with its error
  out.logicalDatabase = *db;
  const std::string_view name = out.commandName;

  if (name == "listCollections" && *db == config.mainDatabase &&
      !isMasterAdminDatabase(config, *db)) {
    planListCollections(config, registry, message, out);
    return;
  }
  if (name == "listDatabases" && *db == "admin") {
    planListDatabases(config, registry, message, out);
    return;
  }
  if (name == "dropDatabase") {
    if (auto refusal = checkDropDatabase(config, registry, *db)) {
      out.refusal = std::move(refusal);
      return;
    }
  }

  detail::routeByNamespaces(config, registry, message, out);
  if (out.refusal) return;

  if (name == "insert" && *db == config.mainDatabase && !isMasterAdminDatabase(config, *db) &&
      first.utf8() == config.registryCollection) {
    assignNewStores(config, registry, assignment, message, out);
  }
}

}  // namespace mongogate::router
