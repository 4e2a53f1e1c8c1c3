// proxy/sessions.h — logical sessions and transactions across several upstream clusters.
//
// Promise (SPEC §6; MongoDB specifications: driver-sessions, causal-consistency,
// transactions, retryable-writes):
//   * lsid, txnNumber and the transaction fields pass through untouched;
//   * a transaction is pinned to the deployment (upstream cluster) of its first
//     statement; a later statement routed to another deployment is refused, and
//     commitTransaction / abortTransaction go to the pinned deployment;
//   * endSessions is split: each deployment is sent only the sessions it has seen;
//   * a deployment is never sent another deployment's signed $clusterTime, nor an
//     afterClusterTime that it did not issue to the session.
// With one deployment nothing here is used but OpenTransactions (the drain's count):
// everything passes through (mongogate is then as transparent as a mongos in front of
// one shard).
//
// The table is process-wide (a session's connections may land on different worker
// threads) and sharded by lsid so that threads rarely contend. Entries idle longer than
// the session timeout are dropped, as the server drops its own.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "wire/message.h"

namespace mongogate::proxy {

// The 16-byte UUID of lsid.id.
using SessionKey = std::array<std::uint8_t, 16>;
struct SessionKeyHash {
  std::size_t operator()(const SessionKey& key) const;
};

// The session facts of one command body; every Bytes borrows from the body.
struct SessionFacts {
  wire::Bytes lsid;               // the lsid document; empty when the command has none
  std::optional<SessionKey> key;  // lsid.id when it is a 16-byte UUID
  std::optional<std::int64_t> txnNumber;
  bool inTransaction = false;     // autocommit: false
  bool startTransaction = false;
  bool hasClusterTime = false;    // top-level $clusterTime
  bool hasAfterClusterTime = false;  // readConcern.afterClusterTime
  wire::Bytes clusterTime;        // the $clusterTime document
  std::uint64_t afterClusterTime = 0;  // seconds << 32 | increment
};

// Reads the facts above from a command body (top level and readConcern only).
// Returns false on malformed BSON.
bool readSessionFacts(wire::Bytes body, SessionFacts& out);

// A BSON Timestamp as one number (seconds << 32 | increment): ordered like the server's.
using ClusterTimestamp = std::uint64_t;

class SessionTable {
 public:
  // deployments: how many upstream clusters (at most 64); timeout: the advertised
  // logicalSessionTimeoutMinutes (idle entries older than this are forgotten).
  SessionTable(std::size_t deployments, std::chrono::minutes timeout);

  enum class Check { kOk, kCrossesDeployments };
  struct Verdict {
    Check check = Check::kOk;
    std::size_t pinnedDeployment = 0;  // kCrossesDeployments: where the transaction runs
  };
  // Called before a command with a session is forwarded to `deployment`: records that
  // the deployment saw the session, and pins or checks the transaction.
  Verdict noteCommand(const SessionKey& key, std::size_t deployment, const SessionFacts& facts);

  // The deployment a transaction runs on (for commitTransaction / abortTransaction):
  // nullopt when no statement of transaction txnNumber was forwarded.
  std::optional<std::size_t> transactionDeployment(const SessionKey& key, std::int64_t txnNumber) const;

  // Deployments that saw the session, as a bit mask (bit i = deployment i); 0 = none.
  std::uint64_t deploymentsOf(const SessionKey& key) const;
  void forget(const SessionKey& key);

  // Causal consistency: the highest operationTime `deployment` returned to the session.
  void noteOperationTime(const SessionKey& key, std::size_t deployment, ClusterTimestamp time);
  std::optional<ClusterTimestamp> operationTime(const SessionKey& key, std::size_t deployment) const;

  // Gossip: the highest signed $clusterTime document each deployment returned.
  void noteClusterTime(std::size_t deployment, wire::Bytes clusterTimeDocument);
  // Copies the deployment's last $clusterTime document into `out`; false when none.
  bool clusterTime(std::size_t deployment, std::vector<std::uint8_t>& out) const;
  // True when `document` is the deployment's last $clusterTime, byte for byte.
  bool isClusterTimeOf(std::size_t deployment, wire::Bytes document) const;

  std::size_t size() const;  // live entries (tests, metrics)

 private:
  struct Entry {
    std::uint64_t deployments = 0;
    std::int64_t txnNumber = -1;       // the last transaction seen; -1: none
    std::size_t txnDeployment = 0;
    std::vector<ClusterTimestamp> operationTimes;  // per deployment; 0 = none
    std::chrono::steady_clock::time_point lastUsed;
  };
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<SessionKey, Entry, SessionKeyHash> entries;
    std::uint32_t sinceSweep = 0;
  };
  struct DeploymentClock {
    mutable std::mutex mutex;
    ClusterTimestamp time = 0;
    std::vector<std::uint8_t> document;
  };
  static constexpr std::size_t kShards = 32;

  Shard& shardOf(const SessionKey& key) const;
  Entry& touch(Shard& shard, const SessionKey& key);  // shard locked

  std::size_t deployments_;
  std::chrono::minutes timeout_;
  mutable std::array<Shard, kShards> shards_;
  std::vector<std::unique_ptr<DeploymentClock>> clocks_;
};

// Makes `body` fit for `deployment` (see the promise above): $clusterTime is replaced by
// that deployment's own last one (or removed), readConcern.afterClusterTime by the
// session's last operationTime from that deployment (or removed). Returns false, `out`
// untouched, when nothing needs to change.
bool rewriteCausalFields(const SessionTable& table, const SessionFacts& facts, std::size_t deployment,
                         wire::Bytes body, std::vector<std::uint8_t>& out);

// Learns $clusterTime and (for a session) operationTime from a deployment's reply body.
void noteReplyTimes(SessionTable& table, const SessionFacts& facts, std::size_t deployment, wire::Bytes replyBody);

// endSessions split: appends to perDeployment[i] the body {endSessions: [...], $db:
// "admin"} holding the sessions deployment i saw (empty when none), and forgets them.
// Returns false on a malformed command.
bool splitEndSessions(SessionTable& table, wire::Bytes body, std::vector<std::vector<std::uint8_t>>& perDeployment);

// True when a command body has a top-level startTransaction: true: one walk over the
// top-level keys, no allocation, no lock (all an ordinary command pays for the table below).
bool startsTransaction(wire::Bytes body);

// The multi-document transactions open through this process, whatever the number of
// deployments: a SIGTERM drain waits for them (SPEC §9). Process-wide and keyed by
// lsid.id, because a driver may commit on another pooled connection than the one that
// started the transaction. Only transaction statements touch it: a statement with
// startTransaction opens (a later txnNumber on the session replaces the earlier one);
// commitTransaction / abortTransaction with a reply, or the close of the client
// connection that started it, ends one. Entries older than `lifetime` (the server's
// default transactionLifetimeLimitSeconds) count no more: a vanished client cannot
// hold a drain (which its timeout bounds anyway).
class OpenTransactions {
 public:
  using Clock = std::chrono::steady_clock;
  explicit OpenTransactions(Clock::duration lifetime = std::chrono::seconds(60)) : lifetime_(lifetime) {}

  void started(const SessionKey& key, std::int64_t txnNumber, std::int64_t connectionId,
               Clock::time_point now = Clock::now());
  // A reply to commitTransaction / abortTransaction for (key, txnNumber).
  void ended(const SessionKey& key, std::int64_t txnNumber);
  // The client connection closed: the transactions it started end.
  void connectionClosed(std::int64_t connectionId);
  // Transactions open now (forgets the expired ones).
  std::size_t open(Clock::time_point now = Clock::now());

 private:
  struct Entry {
    std::int64_t txnNumber = 0;
    std::int64_t connectionId = 0;
    Clock::time_point started;
  };
  Clock::duration lifetime_;
  std::mutex mutex_;
  std::unordered_map<SessionKey, Entry, SessionKeyHash> entries_;
};

// {abortTransaction: 1, lsid, txnNumber, autocommit: false, $db: "admin"}.
void appendAbortTransaction(std::vector<std::uint8_t>& out, wire::Bytes lsid, std::int64_t txnNumber);

}  // namespace mongogate::proxy
