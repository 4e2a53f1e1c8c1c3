// router/fan_out_merge.cpp — the cross-store views of SPEC §4: listCollections on the
// main database and listDatabases, each answered by merging the replies of a fan-out.
//
// listCollections: the main database's part is shown whole; a store database's part
// (pos_db_N) contributes only collections "<prefix>_<rest>" whose store the registry
// places in that same database N, because only those are reachable as
// "<main db>.<prefix>_<rest>" under rule 2. Names are deduplicated, the main database
// first.
//
// listDatabases: the logical view. Store databases are hidden and their sizes count
// towards the main database (their contents are logically part of it); a master-admin
// database is shown under its logical name; from upstreams other than `main` only the
// master-admin databases are shown, since every other logical name routes to `main`.
//
// Cursors (no I/O here): the merge reads each part's cursor.firstBatch only. The proxy
// drains every part's cursor first and joins its batches into one firstBatch with id 0
// (router/cursor_batches.h), so nothing is lost on that path. A caller that hands over a
// part whose cursor id is not 0 gets a merged reply without that part's later entries;
// the merged cursor itself is always exhausted (id 0).
//
// The merged reply carries no $clusterTime or operationTime: the parts come from
// different deployments, whose times do not compare.
//
// References: MongoDB manual, "listCollections" and "listDatabases" (reply fields).
#include <bson/bson.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "router/reply_bson.h"
#include "router/routing.h"
#include "wire/builder.h"
#include "wire/op_msg.h"

namespace mongogate::router {

namespace {

using replybson::appendSame;
using replybson::appendUtf8;
using replybson::keyOf;
using replybson::utf8Of;

void appendMergeError(std::vector<std::uint8_t>& out, std::string_view why) {
  out.clear();
  wire::appendErrorDocument(out, wire::CommandError{1, "InternalError", why});
}

// N when `database` is the physical store database pos_db_N, else 0.
std::int32_t storeDatabaseNumber(const RoutingConfig& config, std::string_view database) {
  const std::string head = config.databasePrefix + "_";
  if (!database.starts_with(head)) return 0;
  const std::string_view digits = database.substr(head.size());
  if (digits.empty() || digits.front() == '0') return 0;
  std::int32_t n = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc{} || end != digits.data() + digits.size() || n <= 0) return 0;
  return config.physicalStoreDatabase(n) == database ? n : 0;
}

// Calls each(entry) for every element of the top-level document `container`.`array`
// (e.g. cursor.firstBatch, or databases when `container` is empty).
template <class Each>
void forEachEntry(wire::Bytes reply, std::string_view container, std::string_view array, Each&& each) {
  bson_iter_t it;
  if (!replybson::iterOver(it, reply)) return;
  bson_iter_t arrayIt;
  if (container.empty()) {
    if (!bson_iter_find_w_len(&it, array.data(), static_cast<int>(array.size()))) return;
    arrayIt = it;
  } else {
    bson_iter_t inner;
    if (!bson_iter_find_w_len(&it, container.data(), static_cast<int>(container.size())) ||
        !BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &inner) ||
        !bson_iter_find_w_len(&inner, array.data(), static_cast<int>(array.size()))) {
      return;
    }
    arrayIt = inner;
  }
  bson_iter_t entry;
  if (!BSON_ITER_HOLDS_ARRAY(&arrayIt) || !bson_iter_recurse(&arrayIt, &entry)) return;
  while (bson_iter_next(&entry)) each(entry);
}

std::optional<std::string_view> nameOf(const bson_iter_t& entry) {
  bson_iter_t f;
  if (!BSON_ITER_HOLDS_DOCUMENT(&entry) || !bson_iter_recurse(&entry, &f) || !bson_iter_find_w_len(&f, "name", 4)) {
    return std::nullopt;
  }
  bool isString = false;
  const std::string_view name = utf8Of(f, &isString);
  if (!isString) return std::nullopt;
  return name;
}

bool requestedNameOnly(const RoutedCommand& route) {
  for (const auto& part : route.fanOut) {
    bson_iter_t it;
    if (replybson::iterOver(it, part.body) && bson_iter_find_w_len(&it, "nameOnly", 8) && bson_iter_as_bool(&it)) {
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// listCollections

// A store database's entry, with the (pre-4.4) idIndex.ns moved to the main database.
void appendStoreCollection(const bson_iter_t& entry, bson_t* out, std::string_view key,
                           std::string_view mainDatabase, std::string_view physicalDatabase) {
  bson_iter_t f;
  bson_iter_recurse(&entry, &f);
  bson_t doc;
  bson_append_document_begin(out, key.data(), static_cast<int>(key.size()), &doc);
  while (bson_iter_next(&f)) {
    bson_iter_t idx;
    if (keyOf(f) != "idIndex" || !BSON_ITER_HOLDS_DOCUMENT(&f) || !bson_iter_recurse(&f, &idx)) {
      appendSame(&doc, f);
      continue;
    }
    bson_t idIndex;
    bson_append_document_begin(&doc, "idIndex", 7, &idIndex);
    while (bson_iter_next(&idx)) {
      const std::string_view ns = utf8Of(idx);
      if (keyOf(idx) == "ns" && ns.size() > physicalDatabase.size() && ns.starts_with(physicalDatabase) &&
          ns[physicalDatabase.size()] == '.') {
        appendUtf8(&idIndex, "ns", std::string(mainDatabase) + std::string(ns.substr(physicalDatabase.size())));
      } else {
        appendSame(&idIndex, idx);
      }
    }
    bson_append_document_end(&doc, &idIndex);
  }
  bson_append_document_end(out, &doc);
}

void mergeListCollections(const RoutingConfig& config, const RegistrySnapshot& registry, const RoutedCommand& route,
                          const std::vector<wire::Bytes>& replies, std::vector<std::uint8_t>& out) {
  replybson::ReplyDocument result;
  bson_t cursor;
  bson_t batch;
  bson_append_document_begin(result.get(), "cursor", 6, &cursor);
  bson_append_int64(&cursor, "id", 2, 0);
  appendUtf8(&cursor, "ns", config.mainDatabase + ".$cmd.listCollections");
  bson_append_array_begin(&cursor, "firstBatch", 10, &batch);

  replybson::ArrayKeys keys;
  std::unordered_set<std::string> shown;
  // The main database first: its entries win over a store database's of the same name.
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (route.fanOut[i].physicalDatabase != config.mainDatabase) continue;
    forEachEntry(replies[i], "cursor", "firstBatch", [&](const bson_iter_t& entry) {
      const auto name = nameOf(entry);
      if (name && !shown.emplace(*name).second) return;
      const std::string_view key = keys.next();
      replybson::appendAs(&batch, key, entry);
    });
  }
  for (std::size_t i = 0; i < replies.size(); ++i) {
    const std::string& database = route.fanOut[i].physicalDatabase;
    if (database == config.mainDatabase) continue;
    // Not a store database: nothing in it is reachable through the main database.
    const std::int32_t number = storeDatabaseNumber(config, database);
    if (number == 0) continue;
    forEachEntry(replies[i], "cursor", "firstBatch", [&](const bson_iter_t& entry) {
      const auto name = nameOf(entry);
      if (!name) return;
      const StoreRecord* store = registry.matchCollection(*name);
      if (store == nullptr || store->databaseId != number) return;  // unassigned here: hidden
      if (!shown.emplace(*name).second) return;
      appendStoreCollection(entry, &batch, keys.next(), config.mainDatabase, database);
    });
  }

  bson_append_array_end(&cursor, &batch);
  bson_append_document_end(result.get(), &cursor);
  bson_append_double(result.get(), "ok", 2, 1.0);
  result.copyTo(out);
}

// ---------------------------------------------------------------------------------------
// listDatabases

struct DatabaseEntry {
  std::string name;
  std::optional<bson_iter_t> source;  // the upstream's entry (absent: made up here)
  std::int64_t size = 0;
  bool empty = true;
  bool rename = false;  // shown under `name`, not the source's physical name
  bool resize = false;  // size/empty include folded store databases
};

struct EntryFacts {
  std::int64_t size = 0;
  bool hasSize = false;
  bool empty = false;
  bool hasEmpty = false;
};

EntryFacts factsOf(const bson_iter_t& entry) {
  EntryFacts facts;
  bson_iter_t f;
  if (!bson_iter_recurse(&entry, &f)) return facts;
  while (bson_iter_next(&f)) {
    if (keyOf(f) == "sizeOnDisk" && (BSON_ITER_HOLDS_NUMBER(&f))) {
      facts.size = bson_iter_as_int64(&f);
      facts.hasSize = true;
    } else if (keyOf(f) == "empty" && BSON_ITER_HOLDS_BOOL(&f)) {
      facts.empty = bson_iter_bool(&f);
      facts.hasEmpty = true;
    }
  }
  return facts;
}

void appendDatabaseEntry(const DatabaseEntry& entry, bson_t* out, std::string_view key, bool nameOnly) {
  const int keyLength = static_cast<int>(key.size());
  if (entry.source && !entry.rename && !entry.resize && !nameOnly) {
    replybson::appendAs(out, key, *entry.source);
    return;
  }
  bson_t doc;
  bson_append_document_begin(out, key.data(), keyLength, &doc);
  appendUtf8(&doc, "name", entry.name);
  if (!nameOnly) {
    bool wroteSize = false;
    bool wroteEmpty = false;
    bson_iter_t f;
    if (entry.source && bson_iter_recurse(&*entry.source, &f)) {
      while (bson_iter_next(&f)) {
        const std::string_view k = keyOf(f);
        if (k == "name") continue;
        if (k == "sizeOnDisk" && entry.resize) {
          // Keep the upstream's type: older servers report a double.
          if (BSON_ITER_HOLDS_DOUBLE(&f)) {
            bson_append_double(&doc, "sizeOnDisk", 10, static_cast<double>(entry.size));
          } else {
            bson_append_int64(&doc, "sizeOnDisk", 10, entry.size);
          }
          wroteSize = true;
        } else if (k == "empty" && entry.resize) {
          bson_append_bool(&doc, "empty", 5, entry.empty);
          wroteEmpty = true;
        } else {
          appendSame(&doc, f);
        }
      }
    }
    if (!wroteSize && (entry.resize || !entry.source)) bson_append_int64(&doc, "sizeOnDisk", 10, entry.size);
    if (!wroteEmpty && (entry.resize || !entry.source)) bson_append_bool(&doc, "empty", 5, entry.empty);
  }
  bson_append_document_end(out, &doc);
}

void mergeListDatabases(const RoutingConfig& config, const RoutedCommand& route,
                        const std::vector<wire::Bytes>& replies, std::vector<std::uint8_t>& out) {
  const bool nameOnly = requestedNameOnly(route);
  const auto isMasterAdminName = [&](std::string_view name) {
    if (!config.masterAdminPhysicalDatabase.empty() && name == config.masterAdminPhysicalDatabase) return true;
    return std::find(config.masterAdminDatabases.begin(), config.masterAdminDatabases.end(), name) !=
           config.masterAdminDatabases.end();
  };

  std::vector<DatabaseEntry> entries;
  std::unordered_set<std::string> shown;
  std::int64_t foldedSize = 0;
  bool foldedNonEmpty = false;
  bool anyFolded = false;
  bool totalIsDouble = false;
  bool totalSizeMb = false;
  bool sawTotal = false;

  // Main-upstream parts first, so their entries win the deduplication.
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (route.fanOut[i].upstream == config.mainUpstream) order.push_back(i);
  }
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (route.fanOut[i].upstream != config.mainUpstream) order.push_back(i);
  }

  for (const std::size_t i : order) {
    const std::string& upstream = route.fanOut[i].upstream;
    const bool fromMain = upstream == config.mainUpstream;
    bson_iter_t top;
    if (replybson::iterOver(top, replies[i])) {
      while (bson_iter_next(&top)) {
        if (keyOf(top) == "totalSize" && !sawTotal) {
          sawTotal = true;
          totalIsDouble = BSON_ITER_HOLDS_DOUBLE(&top);
        }
        if (keyOf(top) == "totalSizeMb") totalSizeMb = true;
      }
    }
    forEachEntry(replies[i], "", "databases", [&](const bson_iter_t& entry) {
      const auto name = nameOf(entry);
      if (!name) return;
      if (const std::int32_t n = storeDatabaseNumber(config, *name); n != 0) {
        // Part of the main database. A store database's name on an upstream that does
        // not hold it is a stray copy: hidden, and not counted.
        if (config.upstreamOfStoreDatabase(n) == upstream) {
          const EntryFacts facts = factsOf(entry);
          foldedSize += facts.size;
          foldedNonEmpty = foldedNonEmpty || (facts.hasEmpty ? !facts.empty : facts.size > 0);
          anyFolded = true;
        }
        return;
      }
      if (isMasterAdminName(*name)) return;  // shown below under its logical name
      if (!fromMain) return;  // any other name routes to `main`, where it is not
      if (!shown.emplace(*name).second) return;
      const EntryFacts facts = factsOf(entry);
      entries.push_back(DatabaseEntry{std::string(*name), entry, facts.size, facts.hasEmpty && facts.empty});
    });
  }

  // Master-admin databases, from the master-admin upstream's part (or main's, when the
  // fan-out did not ask the master-admin upstream separately).
  const auto sourcePart = [&]() -> std::optional<std::size_t> {
    std::optional<std::size_t> mainPart;
    for (std::size_t i = 0; i < replies.size(); ++i) {
      if (route.fanOut[i].upstream == config.masterAdminUpstream) return i;
      if (!mainPart && route.fanOut[i].upstream == config.mainUpstream) mainPart = i;
    }
    return mainPart;
  }();
  if (sourcePart) {
    for (const std::string& logical : config.masterAdminDatabases) {
      const std::string& physical =
          config.masterAdminPhysicalDatabase.empty() ? logical : config.masterAdminPhysicalDatabase;
      forEachEntry(replies[*sourcePart], "", "databases", [&](const bson_iter_t& entry) {
        const auto name = nameOf(entry);
        if (!name || *name != physical || !shown.emplace(logical).second) return;
        const EntryFacts facts = factsOf(entry);
        DatabaseEntry shownEntry{logical, entry, facts.size, facts.hasEmpty && facts.empty};
        shownEntry.rename = physical != logical;
        entries.push_back(std::move(shownEntry));
      });
    }
  }

  if (anyFolded) {
    auto main = std::find_if(entries.begin(), entries.end(),
                             [&](const DatabaseEntry& e) { return e.name == config.mainDatabase; });
    if (main == entries.end()) {
      entries.push_back(DatabaseEntry{config.mainDatabase, std::nullopt, foldedSize, !foldedNonEmpty});
      entries.back().resize = true;
    } else {
      main->size += foldedSize;
      main->empty = main->empty && !foldedNonEmpty;
      main->resize = true;
    }
  }
  std::sort(entries.begin(), entries.end(),
            [](const DatabaseEntry& a, const DatabaseEntry& b) { return a.name < b.name; });

  replybson::ReplyDocument result;
  bson_t databases;
  bson_append_array_begin(result.get(), "databases", 9, &databases);
  replybson::ArrayKeys keys;
  std::int64_t total = 0;
  for (const auto& entry : entries) {
    appendDatabaseEntry(entry, &databases, keys.next(), nameOnly);
    total += entry.size;
  }
  bson_append_array_end(result.get(), &databases);
  if (!nameOnly) {
    if (totalIsDouble) {
      bson_append_double(result.get(), "totalSize", 9, static_cast<double>(total));
    } else {
      bson_append_int64(result.get(), "totalSize", 9, total);
    }
    if (totalSizeMb) bson_append_int64(result.get(), "totalSizeMb", 11, total / (1024 * 1024));
  }
  bson_append_double(result.get(), "ok", 2, 1.0);
  result.copyTo(out);
}

}  // namespace

// Replaces `out` with the merged reply (or with the first failed part's error document).
void mergeFanOutReplies(const RoutingConfig& config, const RegistrySnapshot& registry, const RoutedCommand& route,
                        const std::vector<wire::Bytes>& replies, std::vector<std::uint8_t>& out) {
  if (replies.size() != route.fanOut.size() || replies.empty()) {
    appendMergeError(out, "mongogate: a fan-out did not receive one reply per part");
    return;
  }
  for (const wire::Bytes reply : replies) {
    if (wire::validateBsonDocument(reply) >= 0) {
      appendMergeError(out, "mongogate: an upstream's part of a merged reply is not valid BSON");
      return;
    }
    if (!replybson::replyIsOk(reply)) {
      out.assign(reply.begin(), reply.end());
      return;
    }
  }
  switch (route.replyHandling) {
    case ReplyHandling::kMergeListCollections:
      mergeListCollections(config, registry, route, replies, out);
      return;
    case ReplyHandling::kMergeListDatabases:
      mergeListDatabases(config, route, replies, out);
      return;
    case ReplyHandling::kForward:
      break;
  }
  if (replies.size() == 1) {
    out.assign(replies.front().begin(), replies.front().end());
  } else {
    appendMergeError(out, "mongogate: a fan-out reply has no merge rule");
  }
}

}  // namespace mongogate::router
