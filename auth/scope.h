// auth/scope.h — may this user run this routed command? (SPEC §6 store scopes)
//
// Promise: a pure check over the router's result. The router has already resolved every
// namespace the command names — $lookup / $unionWith / $graphLookup / $out / $merge in
// pipelines, bulkWrite nsInfo, renameCollection's target, explain's inner command — into
// RoutedCommand::mappings, so the check reads those instead of parsing the command again.
//
//   * a store's namespace (rule 2 or 3) needs the store's prefix in the user's stores;
//   * the main database's own collections (rule 4 in the main database) need read access
//     for reads and readWrite for writes (a write command needs it for every namespace
//     it names, the ones it only reads included);
//   * anything else (master-admin databases, other databases) is for unrestricted users
//     only, except database-level commands on admin (buildInfo, endSessions, ...) which
//     every authenticated user may run.
// A refusal is Unauthorized (13) and names the logical namespace.
#pragma once

#include <optional>
#include <string_view>

#include "auth/user_store.h"
#include "router/routing.h"
#include "wire/message.h"

namespace mongogate::auth {

inline constexpr std::int32_t kUnauthorized = 13;

// True when the command may change data or the catalog: insert, update, delete,
// findAndModify, create, drop, createIndexes, ..., aggregate with $out or $merge,
// mapReduce, bulkWrite; unknown commands count as writes. `body` is the command body.
bool commandWrites(std::string_view commandName, wire::Bytes body);

// nullopt when allowed; otherwise the Unauthorized refusal to send.
std::optional<router::Refusal> checkScope(const UserScope& scope, std::string_view user,
                                          const router::RoutingConfig& config, const router::RoutedCommand& route,
                                          bool writes);

// dropDatabase of a per-store database (answered by mongogate before routing).
std::optional<router::Refusal> checkStoreDrop(const UserScope& scope, std::string_view user,
                                              std::string_view database, std::string_view prefix);

}  // namespace mongogate::auth
