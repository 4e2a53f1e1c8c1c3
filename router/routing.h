// router/routing.h — logical namespace in, physical target out (SPEC §3), and the
// request/reply rewriting that goes with it (SPEC §4).
//
// Promise: pure functions over a RoutingConfig and a RegistrySnapshot; no I/O. A
// command is either routed whole to one upstream and one physical database, refused
// with a MongoDB error (nothing half-executed), or planned as a fan-out that mongogate
// merges itself (cross-store listCollections / listDatabases).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/store_registry.h"
#include "wire/builder.h"
#include "wire/message.h"
#include "wire/op_msg.h"

namespace mongogate::router {

struct RoutingConfig {
  std::string mainUpstream = "main";
  std::string mainDatabase = "test";  // the database named in MONGODB_URI
  std::string registryCollection = "stores";
  // Rule 1.
  std::vector<std::string> masterAdminDatabases{"masteradmin"};
  std::string masterAdminUpstream = "masteradmin";
  std::string masterAdminPhysicalDatabase;  // "" = same name as the logical database
  // Store databases {databasePrefix}_{1..databaseCount}.
  std::string databasePrefix = "pos_db";
  std::int32_t databaseCount = 5;
  std::int32_t storesPerDatabase = 20;
  // storeDatabaseUpstreams[N-1] holds pos_db_N; missing or empty = mainUpstream.
  std::vector<std::string> storeDatabaseUpstreams;
  // Rule 3: logical database storeDatabasePrefix + <prefix>.
  std::string storeDatabasePrefix = "store_";
  bool allowDropMainDatabase = false;

  std::string physicalStoreDatabase(std::int32_t databaseId) const;  // "pos_db_3"
  void assignPhysicalStoreDatabase(std::string& out, std::int32_t databaseId) const;  // same, into `out`
  const std::string& upstreamOfStoreDatabase(std::int32_t databaseId) const;
  // Where the data of a store with this databaseId lives: its store database, or, for a store
  // not moved yet (databaseId 0), the main database on the main upstream.
  void locateStore(std::int32_t databaseId, std::string& upstream, std::string& database) const;
};

// A MongoDB error that mongogate returns instead of forwarding.
struct Refusal {
  std::int32_t code = 0;
  std::string codeName;
  std::string message;  // names the logical namespace(s) and why
};

// Where one logical namespace lives.
struct PhysicalNamespace {
  std::string upstream;
  std::string database;
  std::string collection;  // empty when the logical collection was empty (database-level)
  int rule = 4;            // which SPEC §3 rule matched
  const StoreRecord* store = nullptr;  // rules 2 and 3
};

struct NamespaceResolution {
  std::optional<PhysicalNamespace> target;
  std::optional<Refusal> refusal;  // exactly one of the two is set
};

NamespaceResolution resolveNamespace(const RoutingConfig& config, const RegistrySnapshot& registry,
                                     std::string_view database, std::string_view collection);

// physical ↔ logical, for rewriting replies.
struct NamespaceMapping {
  std::string physicalDatabase;
  std::string physicalCollection;
  std::string logicalDatabase;
  std::string logicalCollection;
  int rule = 4;
  std::string storePrefix;  // rules 2 and 3
};

// How the reply to a routed command must be treated.
enum class ReplyHandling {
  kForward,              // rewrite namespaces per mappings (or pass through when none)
  kMergeListCollections, // fan-out: merge the parts' collections into one cursor
  kMergeListDatabases,   // fan-out: merge into the logical database list
};

// One request mongogate sends upstream for a fan-out.
struct SubRequest {
  std::string upstream;
  std::string physicalDatabase;
  std::vector<std::uint8_t> body;  // the full command body (BSON), $db included
};

struct RoutedCommand {
  std::optional<Refusal> refusal;       // set: reply with this error, forward nothing
  std::string upstream;                 // where the command goes (single target)
  bool bodyRewritten = false;
  std::vector<std::uint8_t> body;       // the new body when bodyRewritten
  // Kind-1 sequences that changed, by identifier; the others travel untouched.
  std::vector<std::pair<std::string, std::vector<std::uint8_t>>> rewrittenSequences;
  std::vector<NamespaceMapping> mappings;
  ReplyHandling replyHandling = ReplyHandling::kForward;
  std::vector<SubRequest> fanOut;       // for the merge kinds
  std::string logicalDatabase;          // $db as the client sent it
  std::string commandName;
  // insert into <main db>.stores: the store records it creates (databaseId filled).
  std::vector<StoreRecord> newStores;

  // Back to the state of a new RoutedCommand, keeping the buffers' capacity.
  void reset();
};

// Chooses databaseId for a new store (SPEC §5).
enum class AssignmentPolicy { kFill, kLeastLoaded, kRoundRobin };
struct AssignmentState {
  AssignmentPolicy policy = AssignmentPolicy::kFill;
  std::uint64_t roundRobinNext = 0;  // advanced by the round_robin policy
};
std::int32_t assignDatabase(const RoutingConfig& config, const RegistrySnapshot& registry,
                            AssignmentState& state, std::size_t storesAlreadyAdded = 0);

// True when mongogate knows which fields of this command name namespaces; any other
// command is routed by its `$db` alone (SPEC §4: "forwarded by $db alone and logged once").
bool knowsCommandNamespaces(std::string_view commandName);

// Routes one OP_MSG command (SPEC §3, §4). `message` borrows the client's frame.
RoutedCommand routeCommand(const RoutingConfig& config, const RegistrySnapshot& registry,
                           AssignmentState& assignment, const wire::OpMsgView& message);
// The same into `out`, reusing its buffers: the proxy's per-request path allocates
// nothing for the common routes once a session's RoutedCommand has grown.
void routeCommand(const RoutingConfig& config, const RegistrySnapshot& registry, AssignmentState& assignment,
                  const wire::OpMsgView& message, RoutedCommand& out);

// Rewrites physical namespaces in a reply body back to logical ones (cursor.ns,
// listCollections names, listIndexes ns, change-event ns, explain namespaces, errmsg,
// writeErrors[].errmsg, writeConcernError.errmsg). Returns false and leaves `out`
// untouched when nothing needs to change.
bool rewriteReply(const RoutedCommand& route, wire::Bytes replyBody, std::vector<std::uint8_t>& out);

// The hot path of the reply direction: a find / getMore / aggregate reply whose only
// physical name is cursor.ns ({cursor: {id, ns, firstBatch|nextBatch}, ok,
// $clusterTime?, operationTime?}) is rewritten as three edits of the upstream's bytes
// (the reply's length, the cursor document's length, the new ns element), so the batch
// of user documents is neither walked nor copied (wire::spliceOpMsgBodyEdits).
struct ReplySplice {
  std::array<wire::ByteEdit, wire::kMaxBodyEdits> edits{};
  std::array<std::uint8_t, 8> lengths{};  // the two new int32 document lengths
  std::vector<std::uint8_t> element;      // the new ns element (capacity reused)
  std::span<const wire::ByteEdit> view() const { return edits; }
};
enum class ReplySplicePlan {
  kNotApplicable,  // another shape: use rewriteReply
  kUnchanged,      // the reply needs no change
  kSpliced,        // `splice` holds the edits
};
ReplySplicePlan planReplySplice(const RoutedCommand& route, wire::Bytes replyBody, ReplySplice& splice);

// Removes a top-level `serverInfo` (explain output names the upstream's host and port,
// which the app must never see, SPEC §6). Returns false and leaves `out` untouched when
// the reply has none.
bool removeServerInfo(wire::Bytes replyBody, std::vector<std::uint8_t>& out);

// Merges fan-out replies (one body per SubRequest, same order) into the client's reply
// body. A failed part makes the whole reply that part's error.
void mergeFanOutReplies(const RoutingConfig& config, const RegistrySnapshot& registry,
                        const RoutedCommand& route, const std::vector<wire::Bytes>& replies,
                        std::vector<std::uint8_t>& out);

}  // namespace mongogate::router
