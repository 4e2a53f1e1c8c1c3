// proxy/topology.h — what mongogate knows about the servers of one upstream deployment,
// and which of them a request goes to.
//
// Promise: pure, single-threaded value logic, unit-tested without sockets.
//  * describeHello turns a monitoring hello reply into a ServerDescription.
//  * TopologyState applies descriptions the way the driver specification "Server
//    Discovery and Monitoring" does (simplified: no SRV polling, no load balancer):
//    replica-set members are discovered from any member's hosts/passives/arbiters,
//    a primary's list is authoritative (members it no longer names are removed), a
//    newer primary (by electionId/setVersion) demotes the old one to Unknown, a primary
//    that is older than one already seen is stale and stays Unknown, servers of
//    another set or kind are removed.
//  * selectServer picks a server of an immutable snapshot for a request, following
//    "Server Selection": writes to the primary (any mongos of a mongos list), reads by
//    read preference and tag sets, within the latency window, round-robin by a counter.
//  * readRequestFacts reads, in one pass over the top-level fields of a command body,
//    what selection and affinity need ($readPreference, lsid, txnNumber, ...).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/proxy_config.h"
#include "wire/message.h"

namespace mongogate::proxy {

enum class ServerType : std::uint8_t {
  kUnknown,
  kStandalone,
  kMongos,
  kRSPrimary,
  kRSSecondary,
  kRSArbiter,
  kRSOther,
  kRSGhost,
};
const char* toString(ServerType type);  // "Unknown", "RSPrimary", ...

enum class TopologyType : std::uint8_t {
  kSingle,                 // one host used directly: no discovery, no monitoring
  kUnknown,                // several seeds, nothing known yet
  kReplicaSetNoPrimary,
  kReplicaSetWithPrimary,
  kSharded,                // a list of mongos routers
};
const char* toString(TopologyType type);

// The most servers one deployment may have (discovered members beyond it are ignored
// with a warning): bounds per-server pools, breakers and metric labels.
inline constexpr std::size_t kMaxServersPerDeployment = 64;

struct ServerDescription {
  std::size_t id = 0;       // stable within the deployment (TopologyState assigns it)
  std::string address;      // "host:port", host lowercased
  ServerType type = ServerType::kUnknown;
  std::string setName;
  std::string me;           // the member's own name in the set config ("" = not given)
  std::string primary;      // the primary this server reports ("" = none)
  std::vector<std::string> hosts;  // hosts + passives + arbiters, lowercased
  std::vector<std::pair<std::string, std::string>> tags;
  std::optional<std::int64_t> setVersion;
  std::string electionId;   // the 12 ObjectId bytes ("" = none)
  double rttMs = -1;        // smoothed round-trip time; -1 = not measured
  std::string error;        // why Unknown (no host names of other servers, no credentials)
};

// "host:port" with the host lowercased (hosts in hello replies are compared this way).
std::string normalizeAddress(std::string_view address);
std::string addressOf(const config::HostPort& host);

// A monitoring hello reply (OP_MSG body). Unknown (with error) when it is not ok: 1.
ServerDescription describeHello(std::string address, wire::Bytes reply, double rttMs);

struct TopologySnapshot {
  TopologyType type = TopologyType::kUnknown;
  std::string setName;
  std::vector<ServerDescription> servers;  // in discovery order
  std::uint64_t version = 0;
  const ServerDescription* find(std::size_t id) const;
  const ServerDescription* primary() const;
};

class TopologyState {
 public:
  // seeds: the URI's hosts; setName: replicaSet= ("" = not given); single: use the one
  // seed directly (directConnection=true, or one host without replicaSet=).
  TopologyState(const std::vector<config::HostPort>& seeds, std::string setName, bool single);

  // Applies the outcome of one check. Returns true when the topology changed in a way
  // selection can see (types, members, primary).
  bool apply(ServerDescription description);
  // An application error (NotWritablePrimary, ...) or network error: the server is
  // Unknown until its next check.
  bool markUnknown(std::size_t id, std::string error);

  TopologyType type() const { return type_; }
  const std::string& setName() const { return setName_; }
  const std::vector<ServerDescription>& servers() const { return servers_; }
  // Every address ever known, by id (ids are never reused).
  const std::vector<std::string>& addresses() const { return addresses_; }
  std::shared_ptr<const TopologySnapshot> snapshot(std::uint64_t version) const;

 private:
  ServerDescription* find(const std::string& address);
  void add(const std::string& address);
  void remove(const std::string& address);
  void addAll(const std::vector<std::string>& hosts);
  void updateReplicaSetType();
  bool applyPrimary(ServerDescription description);

  TopologyType type_;
  std::string setName_;
  std::vector<ServerDescription> servers_;
  std::vector<std::string> addresses_;
  std::optional<std::int64_t> maxSetVersion_;
  std::string maxElectionId_;
};

enum class ReadMode : std::uint8_t { kPrimary, kPrimaryPreferred, kSecondary, kSecondaryPreferred, kNearest };
std::optional<ReadMode> readModeOf(std::string_view name);  // "secondaryPreferred" → ...

struct ReadPreference {
  ReadMode mode = ReadMode::kPrimary;
  // Tried in order; the first set that matches any eligible server wins. {} matches all.
  std::vector<std::vector<std::pair<std::string, std::string>>> tagSets;
};
ReadPreference readPreferenceOf(const config::UpstreamConfig& upstream);  // the URI default

// What a request needs from selection. Only `write` and `readPreference` matter.
struct Selection {
  bool write = true;               // primary only (any mongos for a mongos list)
  ReadPreference readPreference;   // when !write
};

// The index into snapshot.servers of the server to use, or nullopt when none is
// suitable now. `spin` rotates among equally suitable servers.
std::optional<std::size_t> selectServer(const TopologySnapshot& snapshot, const Selection& selection,
                                        std::uint64_t spin, std::uint32_t localThresholdMs);

// The facts of a command body that decide where it goes.
struct RequestFacts {
  bool hasReadPreference = false;
  ReadPreference readPreference;
  wire::Bytes lsid;                    // the lsid.id bytes (a UUID), empty when absent
  std::optional<std::int64_t> txnNumber;
  bool autocommitFalse = false;        // a statement of a multi-document transaction
  bool startTransaction = false;
  std::int64_t maxTimeMs = 0;          // 0 = none
  std::int64_t cursorId = 0;           // getMore's cursor, or killCursors' first one
  bool writesOut = false;              // an aggregate ending in $out or $merge
};
RequestFacts readRequestFacts(std::string_view commandName, wire::Bytes body);
// A (validated) command body's top-level maxTimeMS, 0 when absent or not positive: one
// pass over the top-level keys, for deployments that skip readRequestFacts.
std::int64_t maxTimeMsOf(wire::Bytes body);

// The error label mongogate's own retryable errors (nothing reached the upstream) carry,
// as a server would add it (retryable-writes and transactions specifications):
// RetryableWriteError for a retryable write (txnNumber outside a transaction) and for
// commitTransaction/abortTransaction; TransientTransactionError for other statements of a
// transaction; none otherwise (reads are retried by their error code).
enum class RetryLabel : std::uint8_t { kNone, kRetryableWrite, kTransientTransaction };
RetryLabel retryLabelFor(std::string_view commandName, wire::Bytes body);

// Commands that honour the URI's default read preference when the client sends none.
bool isReadCommand(std::string_view commandName);

// The selection for a command: its $readPreference if it has one, else the URI default
// for reads, else the primary.
Selection selectionFor(std::string_view commandName, const RequestFacts& facts, const ReadPreference& uriDefault);

// Reply codes after which the server is Unknown until re-checked (SDAM "not writable
// primary" and "node is recovering" errors).
bool isStateChangeError(std::int32_t code);
// The code of an {ok: 0} reply body; 0 when ok is 1 or there is none.
std::int32_t errorCodeOf(wire::Bytes replyBody);

}  // namespace mongogate::proxy
