// router/request_rewrite.h — the namespace walk behind routeCommand (internal to router/).
//
// Promise: given a command whose logical database and name are known, resolves every
// namespace it names (SPEC §3), checks that they all live on one upstream (and, where
// MongoDB needs it, in one physical database), and rewrites `$db` and each namespace
// field (SPEC §4). The first, read-only pass walks the body's top level with
// wire::BsonWalker (libbson iterators only below the fields that name namespaces); a new
// body or kind-1 sequence is built, with libbson, only when something changes. The fan-out plans and the registry insert are
// routing.cpp's business and are not handled here.
#pragma once

#include <cstdint>
#include <string_view>

#include "router/routing.h"

namespace mongogate::router::detail {

// What the value of a command's first key names.
enum class CommandShape : std::uint8_t {
  kDatabase,    // nothing: a database-level command ({dbStats: 1}); also unknown commands
  kCollection,  // a collection of $db ({find: "orders"}); any other value: database-level
  kNamespace,   // a full "db.coll" namespace ({dataSize: "db.coll"}, renameCollection)
  kGetMore,     // a cursor id; the collection is in the `collection` field
  kExplain,     // a nested command document, routed as if it came alone
  kBulkWrite,   // 1; the namespaces are nsInfo[].ns (body array or kind-1 sequence)
};

// Other fields of a command that name namespaces (bit set).
namespace fields {
inline constexpr std::uint32_t kPipeline = 1u << 0;       // pipeline: aggregation stages
inline constexpr std::uint32_t kViewOn = 1u << 1;         // viewOn: collection, same database
inline constexpr std::uint32_t kMapReduceOut = 1u << 2;   // out: string or {replace|merge|reduce, db}
inline constexpr std::uint32_t kToNamespace = 1u << 3;    // to: "db.coll" (renameCollection)
inline constexpr std::uint32_t kToCollection = 1u << 4;   // toCollection: same database
inline constexpr std::uint32_t kListFilter = 1u << 5;     // listCollections filter (rule 3 scoping)
inline constexpr std::uint32_t kChangeStreams = 1u << 6;  // aggregate: rule-3 $changeStream scoping
inline constexpr std::uint32_t kIndexSpecs = 1u << 7;     // indexes[].ns (legacy index specs)
}  // namespace fields

struct CommandSpec {
  CommandShape shape = CommandShape::kDatabase;
  std::uint32_t fields = 0;
};

// The spec of a command mongogate knows by name; nullptr for any other command.
const CommandSpec* findCommandSpec(std::string_view name);

// Adds the mapping (physical -> logical) of one resolved namespace to `mappings`, unless
// an identical one is already there. Built in place: no temporary mapping.
void addMapping(std::vector<NamespaceMapping>& mappings, const PhysicalNamespace& target,
                std::string_view logicalDatabase, std::string_view logicalCollection);

// Routes `message` by the namespaces it names. out.commandName and out.logicalDatabase
// must be filled. Sets out.upstream, the rewritten body and sequences, out.mappings, or
// out.refusal (then nothing else is meaningful).
void routeByNamespaces(const RoutingConfig& config, const RegistrySnapshot& registry,
                       const wire::OpMsgView& message, RoutedCommand& out);

}  // namespace mongogate::router::detail
