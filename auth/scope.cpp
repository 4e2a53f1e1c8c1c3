// auth/scope.cpp — the store-scope check (see scope.h).
#include "auth/scope.h"

#include <bson/bson.h>

#include <algorithm>
#include <array>

namespace mongogate::auth {
namespace {

// Commands that only read. Anything not listed (and not an aggregate) counts as a write,
// so a command mongogate does not know is never let through a read-only scope.
constexpr std::array<std::string_view, 23> kReadCommands{
    "find",        "count",         "distinct",     "getMore",        "killCursors",   "listIndexes",
    "listCollections", "collStats", "dbStats",      "dataSize",       "explain",       "validate",
    "listDatabases", "buildInfo",   "endSessions",  "connectionStatus", "serverStatus", "getParameter",
    "listSearchIndexes", "hostInfo", "getLastError", "whatsmyuri",   "dbHash"};

// aggregate writes when its last stage is $out or $merge.
bool pipelineWrites(wire::Bytes body) {
  bson_iter_t it;
  bson_iter_t stages;
  if (!bson_iter_init_from_data(&it, body.data(), body.size()) || !bson_iter_find(&it, "pipeline") ||
      !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &stages)) {
    return false;
  }
  bool writes = false;
  while (bson_iter_next(&stages)) {
    bson_iter_t stage;
    writes = false;
    if (BSON_ITER_HOLDS_DOCUMENT(&stages) && bson_iter_recurse(&stages, &stage) && bson_iter_next(&stage)) {
      const std::string_view name = bson_iter_key(&stage);
      writes = name == "$out" || name == "$merge";
    }
  }
  return writes;
}

std::string logicalName(std::string_view database, std::string_view collection) {
  std::string out(database);
  if (!collection.empty()) out.append(".").append(collection);
  return out;
}

std::string storeList(const UserScope& scope) {
  if (scope.storePrefixes.empty()) return "no store";
  std::string out = scope.storePrefixes.size() == 1 ? "store " : "stores ";
  for (std::size_t i = 0; i < scope.storePrefixes.size(); ++i) {
    out += (i ? ", '" : "'") + scope.storePrefixes[i] + "'";
  }
  return out;
}

router::Refusal unauthorized(std::string message) {
  return {kUnauthorized, "Unauthorized", "mongogate: " + std::move(message)};
}

}  // namespace

bool commandWrites(std::string_view commandName, wire::Bytes body) {
  if (commandName == "aggregate") return pipelineWrites(body);
  return std::find(kReadCommands.begin(), kReadCommands.end(), commandName) == kReadCommands.end();
}

std::optional<router::Refusal> checkScope(const UserScope& scope, std::string_view user,
                                          const router::RoutingConfig& config, const router::RoutedCommand& route,
                                          bool writes) {
  if (scope.unrestricted()) return std::nullopt;
  if (route.replyHandling == router::ReplyHandling::kMergeListCollections && !scope.allStores) {
    // The merged listing names every store's collections: refused rather than leaking
    // other stores' names to a user limited to some.
    return unauthorized("listCollections on " + config.mainDatabase + " lists the collections of every store; user '" +
                        std::string(user) + "' may only use " + storeList(scope) + ": list " +
                        config.storeDatabasePrefix + "<prefix> databases instead");
  }
  for (const router::NamespaceMapping& m : route.mappings) {
    const std::string name = logicalName(m.logicalDatabase, m.logicalCollection);
    if (!m.storePrefix.empty()) {
      if (!scope.allowsStore(m.storePrefix)) {
        return unauthorized("not authorized on " + name + ": it belongs to store '" + m.storePrefix + "' and user '" +
                            std::string(user) + "' may only use " + storeList(scope));
      }
      continue;
    }
    if (m.logicalDatabase == config.mainDatabase) {
      const Access needed = writes ? Access::kReadWrite : Access::kRead;
      if (scope.mainDatabase < needed) {
        return unauthorized("not authorized to " + std::string(writes ? "write" : "read") + " " + name + ": user '" +
                            std::string(user) + "' has " + std::string(toString(scope.mainDatabase)) +
                            " access to the main database's shared collections");
      }
      continue;
    }
    if (m.logicalDatabase == "admin" && m.logicalCollection.empty()) continue;  // buildInfo, endSessions, ...
    // Rule 1 (master-admin) and any other database: outside every store scope.
    return unauthorized("not authorized on " + name + ": user '" + std::string(user) + "' may only use " +
                        storeList(scope) + (scope.mainDatabase == Access::kNone ? "" : " and the main database"));
  }
  return std::nullopt;
}

std::optional<router::Refusal> checkStoreDrop(const UserScope& scope, std::string_view user,
                                              std::string_view database, std::string_view prefix) {
  if (scope.allowsStore(prefix)) return std::nullopt;
  return unauthorized("not authorized on " + std::string(database) + ": it belongs to store '" + std::string(prefix) +
                      "' and user '" + std::string(user) + "' may only use " + storeList(scope));
}

}  // namespace mongogate::auth
