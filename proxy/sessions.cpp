#include "proxy/sessions.h"

#include <bson/bson.h>

#include <cstring>
#include <string>
#include <string_view>
#include <utility>

namespace mongogate::proxy {
namespace {

bool iterInit(bson_iter_t& it, wire::Bytes doc) { return bson_iter_init_from_data(&it, doc.data(), doc.size()); }

wire::Bytes documentOf(const bson_iter_t& it) {
  std::uint32_t length = 0;
  const std::uint8_t* data = nullptr;
  if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
    bson_iter_document(&it, &length, &data);
  } else if (BSON_ITER_HOLDS_ARRAY(&it)) {
    bson_iter_array(&it, &length, &data);
  }
  return {data, length};
}

std::optional<SessionKey> keyOfLsid(wire::Bytes lsid) {
  bson_iter_t it;
  if (!iterInit(it, lsid) || !bson_iter_find(&it, "id") || !BSON_ITER_HOLDS_BINARY(&it)) return std::nullopt;
  bson_subtype_t subtype;
  std::uint32_t length = 0;
  const std::uint8_t* data = nullptr;
  bson_iter_binary(&it, &subtype, &length, &data);
  if (length != 16) return std::nullopt;
  SessionKey key;
  std::memcpy(key.data(), data, 16);
  return key;
}

ClusterTimestamp timestampOf(const bson_iter_t& it) {
  std::uint32_t seconds = 0, increment = 0;
  bson_iter_timestamp(&it, &seconds, &increment);
  return (static_cast<ClusterTimestamp>(seconds) << 32) | increment;
}

// The clusterTime inside a $clusterTime document; 0 when it has none.
ClusterTimestamp clusterTimeOf(wire::Bytes document) {
  bson_iter_t it;
  if (!iterInit(it, document) || !bson_iter_find(&it, "clusterTime") || !BSON_ITER_HOLDS_TIMESTAMP(&it)) return 0;
  return timestampOf(it);
}

bool appendIter(bson_t* out, const bson_iter_t& it) {
  const bson_value_t* value = bson_iter_value(const_cast<bson_iter_t*>(&it));
  return bson_append_value(out, bson_iter_key(&it), static_cast<int>(bson_iter_key_len(&it)), value);
}

}  // namespace

bool readSessionFacts(wire::Bytes body, SessionFacts& out) {
  bson_iter_t it;
  if (!iterInit(it, body)) return false;
  while (bson_iter_next(&it)) {
    const std::string_view key(bson_iter_key(&it), bson_iter_key_len(&it));
    if (key == "lsid" && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      out.lsid = documentOf(it);
      out.key = keyOfLsid(out.lsid);
    } else if (key == "txnNumber" && (BSON_ITER_HOLDS_INT64(&it) || BSON_ITER_HOLDS_INT32(&it))) {
      out.txnNumber = bson_iter_as_int64(&it);
    } else if (key == "autocommit") {
      out.inTransaction = BSON_ITER_HOLDS_BOOL(&it) && !bson_iter_bool(&it);
    } else if (key == "startTransaction") {
      out.startTransaction = bson_iter_as_bool(&it);
    } else if (key == "$clusterTime") {
      out.hasClusterTime = true;
      out.clusterTime = documentOf(it);
    } else if (key == "readConcern" && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      bson_iter_t inner;
      out.hasAfterClusterTime = bson_iter_recurse(&it, &inner) && bson_iter_find(&inner, "afterClusterTime");
      if (out.hasAfterClusterTime && BSON_ITER_HOLDS_TIMESTAMP(&inner)) out.afterClusterTime = timestampOf(inner);
    }
  }
  return it.err_off == 0;
}

std::size_t SessionKeyHash::operator()(const SessionKey& key) const {
  // A UUID v4 is random already: its first bytes are a good hash.
  std::size_t h = 0;
  std::memcpy(&h, key.data(), sizeof h);
  return h;
}

bool startsTransaction(wire::Bytes body) {
  // Nearly every command lacks the key anywhere: a byte search (tens of ns) skips the
  // iteration (hundreds) for them.
  constexpr std::string_view kKey{"startTransaction\0", 17};
  if (std::string_view(reinterpret_cast<const char*>(body.data()), body.size()).find(kKey) == std::string_view::npos) {
    return false;
  }
  bson_iter_t it;
  if (body.size() < 5 || !iterInit(it, body)) return false;
  while (bson_iter_next(&it)) {
    if (bson_iter_key_len(&it) == 16 && std::memcmp(bson_iter_key(&it), "startTransaction", 16) == 0) {
      return bson_iter_as_bool(&it);
    }
  }
  return false;
}

void OpenTransactions::started(const SessionKey& key, std::int64_t txnNumber, std::int64_t connectionId,
                               Clock::time_point now) {
  std::lock_guard lock(mutex_);
  Entry& entry = entries_[key];
  if (entry.started != Clock::time_point{} && entry.txnNumber > txnNumber) return;  // a stale retry
  entry = {txnNumber, connectionId, now};
}

void OpenTransactions::ended(const SessionKey& key, std::int64_t txnNumber) {
  std::lock_guard lock(mutex_);
  if (auto it = entries_.find(key); it != entries_.end() && it->second.txnNumber == txnNumber) entries_.erase(it);
}

void OpenTransactions::connectionClosed(std::int64_t connectionId) {
  std::lock_guard lock(mutex_);
  std::erase_if(entries_, [&](const auto& item) { return item.second.connectionId == connectionId; });
}

std::size_t OpenTransactions::open(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  std::erase_if(entries_, [&](const auto& item) { return now - item.second.started >= lifetime_; });
  return entries_.size();
}

SessionTable::SessionTable(std::size_t deployments, std::chrono::minutes timeout)
    : deployments_(deployments), timeout_(timeout) {
  for (std::size_t i = 0; i < deployments; ++i) clocks_.push_back(std::make_unique<DeploymentClock>());
}

SessionTable::Shard& SessionTable::shardOf(const SessionKey& key) const {
  return shards_[key[15] % kShards];
}

SessionTable::Entry& SessionTable::touch(Shard& shard, const SessionKey& key) {
  const auto now = std::chrono::steady_clock::now();
  if (++shard.sinceSweep >= 4096) {
    shard.sinceSweep = 0;
    std::erase_if(shard.entries, [&](const auto& item) { return now - item.second.lastUsed > timeout_; });
  }
  Entry& entry = shard.entries[key];
  entry.lastUsed = now;
  return entry;
}

SessionTable::Verdict SessionTable::noteCommand(const SessionKey& key, std::size_t deployment,
                                                const SessionFacts& facts) {
  Shard& shard = shardOf(key);
  std::lock_guard lock(shard.mutex);
  Entry& entry = touch(shard, key);
  if (facts.inTransaction && facts.txnNumber) {
    if (facts.startTransaction || entry.txnNumber != *facts.txnNumber) {
      entry.txnNumber = *facts.txnNumber;
      entry.txnDeployment = deployment;
    } else if (entry.txnDeployment != deployment) {
      return {Check::kCrossesDeployments, entry.txnDeployment};
    }
  }
  if (deployment < 64) entry.deployments |= std::uint64_t{1} << deployment;
  return {};
}

std::optional<std::size_t> SessionTable::transactionDeployment(const SessionKey& key, std::int64_t txnNumber) const {
  Shard& shard = shardOf(key);
  std::lock_guard lock(shard.mutex);
  auto it = shard.entries.find(key);
  if (it == shard.entries.end() || it->second.txnNumber != txnNumber) return std::nullopt;
  return it->second.txnDeployment;
}

std::uint64_t SessionTable::deploymentsOf(const SessionKey& key) const {
  Shard& shard = shardOf(key);
  std::lock_guard lock(shard.mutex);
  auto it = shard.entries.find(key);
  return it == shard.entries.end() ? 0 : it->second.deployments;
}

void SessionTable::forget(const SessionKey& key) {
  Shard& shard = shardOf(key);
  std::lock_guard lock(shard.mutex);
  shard.entries.erase(key);
}

void SessionTable::noteOperationTime(const SessionKey& key, std::size_t deployment, ClusterTimestamp time) {
  if (deployment >= deployments_) return;
  Shard& shard = shardOf(key);
  std::lock_guard lock(shard.mutex);
  Entry& entry = touch(shard, key);
  if (entry.operationTimes.size() < deployments_) entry.operationTimes.resize(deployments_, 0);
  entry.operationTimes[deployment] = std::max(entry.operationTimes[deployment], time);
}

std::optional<ClusterTimestamp> SessionTable::operationTime(const SessionKey& key, std::size_t deployment) const {
  Shard& shard = shardOf(key);
  std::lock_guard lock(shard.mutex);
  auto it = shard.entries.find(key);
  if (it == shard.entries.end() || deployment >= it->second.operationTimes.size() ||
      it->second.operationTimes[deployment] == 0) {
    return std::nullopt;
  }
  return it->second.operationTimes[deployment];
}

void SessionTable::noteClusterTime(std::size_t deployment, wire::Bytes document) {
  if (deployment >= clocks_.size()) return;
  const ClusterTimestamp time = clusterTimeOf(document);
  if (time == 0) return;
  DeploymentClock& clock = *clocks_[deployment];
  std::lock_guard lock(clock.mutex);
  if (time <= clock.time) return;
  clock.time = time;
  clock.document.assign(document.begin(), document.end());
}

bool SessionTable::clusterTime(std::size_t deployment, std::vector<std::uint8_t>& out) const {
  if (deployment >= clocks_.size()) return false;
  const DeploymentClock& clock = *clocks_[deployment];
  std::lock_guard lock(clock.mutex);
  if (clock.document.empty()) return false;
  out = clock.document;
  return true;
}

bool SessionTable::isClusterTimeOf(std::size_t deployment, wire::Bytes document) const {
  if (deployment >= clocks_.size()) return false;
  const DeploymentClock& clock = *clocks_[deployment];
  std::lock_guard lock(clock.mutex);
  return !clock.document.empty() && clock.document.size() == document.size() &&
         std::memcmp(clock.document.data(), document.data(), document.size()) == 0;
}

std::size_t SessionTable::size() const {
  std::size_t total = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    total += shard.entries.size();
  }
  return total;
}

bool rewriteCausalFields(const SessionTable& table, const SessionFacts& facts, std::size_t deployment,
                         wire::Bytes body, std::vector<std::uint8_t>& out) {
  if (!facts.hasClusterTime && !facts.hasAfterClusterTime) return false;
  // The common case: a client working with one deployment already sends its times.
  std::optional<ClusterTimestamp> operationTime;
  if (facts.hasAfterClusterTime && facts.key) operationTime = table.operationTime(*facts.key, deployment);
  const bool clusterTimeFits = !facts.hasClusterTime || table.isClusterTimeOf(deployment, facts.clusterTime);
  const bool afterFits = !facts.hasAfterClusterTime || (operationTime && *operationTime == facts.afterClusterTime);
  if (clusterTimeFits && afterFits) return false;
  std::vector<std::uint8_t> clusterTime;
  const bool haveClusterTime = facts.hasClusterTime && table.clusterTime(deployment, clusterTime);

  bson_iter_t it;
  if (!iterInit(it, body)) return false;
  bson_t doc = BSON_INITIALIZER;
  bool ok = true;
  while (ok && bson_iter_next(&it)) {
    const std::string_view key(bson_iter_key(&it), bson_iter_key_len(&it));
    if (key == "$clusterTime") {
      bson_t replacement;
      if (haveClusterTime && bson_init_static(&replacement, clusterTime.data(), clusterTime.size())) {
        ok = bson_append_document(&doc, "$clusterTime", -1, &replacement);
      }
    } else if (key == "readConcern" && BSON_ITER_HOLDS_DOCUMENT(&it) && facts.hasAfterClusterTime) {
      bson_t readConcern;
      bson_iter_t inner;
      ok = bson_append_document_begin(&doc, "readConcern", -1, &readConcern) && bson_iter_recurse(&it, &inner);
      while (ok && bson_iter_next(&inner)) {
        if (std::strcmp(bson_iter_key(&inner), "afterClusterTime") == 0) {
          if (operationTime) {
            ok = bson_append_timestamp(&readConcern, "afterClusterTime", -1,
                                       static_cast<std::uint32_t>(*operationTime >> 32),
                                       static_cast<std::uint32_t>(*operationTime & 0xffffffffu));
          }
        } else {
          ok = appendIter(&readConcern, inner);
        }
      }
      ok = ok && bson_append_document_end(&doc, &readConcern);
    } else {
      ok = appendIter(&doc, it);
    }
  }
  if (ok && it.err_off == 0) {
    out.assign(bson_get_data(&doc), bson_get_data(&doc) + doc.len);
  } else {
    ok = false;
  }
  bson_destroy(&doc);
  return ok;
}

void noteReplyTimes(SessionTable& table, const SessionFacts& facts, std::size_t deployment, wire::Bytes replyBody) {
  bson_iter_t it;
  if (!iterInit(it, replyBody)) return;
  while (bson_iter_next(&it)) {
    const char* key = bson_iter_key(&it);
    if (key[0] == '$' && std::strcmp(key, "$clusterTime") == 0 && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      table.noteClusterTime(deployment, documentOf(it));
    } else if (facts.key && std::strcmp(key, "operationTime") == 0 && BSON_ITER_HOLDS_TIMESTAMP(&it)) {
      table.noteOperationTime(*facts.key, deployment, timestampOf(it));
    }
  }
}

bool splitEndSessions(SessionTable& table, wire::Bytes body, std::vector<std::vector<std::uint8_t>>& perDeployment) {
  bson_iter_t it;
  if (!iterInit(it, body) || !bson_iter_find(&it, "endSessions") || !BSON_ITER_HOLDS_ARRAY(&it)) return false;
  bson_iter_t ids;
  if (!bson_iter_recurse(&it, &ids)) return false;
  std::vector<std::pair<wire::Bytes, std::uint64_t>> sessions;  // lsid, deployments that saw it
  while (bson_iter_next(&ids)) {
    if (!BSON_ITER_HOLDS_DOCUMENT(&ids)) continue;
    const wire::Bytes lsid = documentOf(ids);
    if (const auto key = keyOfLsid(lsid)) {
      sessions.emplace_back(lsid, table.deploymentsOf(*key));
      table.forget(*key);
    }
  }
  if (ids.err_off != 0) return false;
  for (std::size_t i = 0; i < perDeployment.size(); ++i) {
    perDeployment[i].clear();
    if (i >= 64) continue;
    bson_t doc = BSON_INITIALIZER;
    bson_t array;
    std::uint32_t count = 0;
    bool ok = BSON_APPEND_ARRAY_BEGIN(&doc, "endSessions", &array);
    for (const auto& [lsid, seen] : sessions) {
      if (!(seen & (std::uint64_t{1} << i))) continue;
      bson_t value;
      const std::string index = std::to_string(count++);
      ok = ok && bson_init_static(&value, lsid.data(), lsid.size()) &&
           bson_append_document(&array, index.c_str(), -1, &value);
    }
    ok = ok && bson_append_array_end(&doc, &array) && BSON_APPEND_UTF8(&doc, "$db", "admin");
    if (ok && count > 0) perDeployment[i].assign(bson_get_data(&doc), bson_get_data(&doc) + doc.len);
    bson_destroy(&doc);
  }
  return true;
}

void appendAbortTransaction(std::vector<std::uint8_t>& out, wire::Bytes lsid, std::int64_t txnNumber) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_INT32(&doc, "abortTransaction", 1);
  bson_t lsidDoc;
  if (bson_init_static(&lsidDoc, lsid.data(), lsid.size())) BSON_APPEND_DOCUMENT(&doc, "lsid", &lsidDoc);
  BSON_APPEND_INT64(&doc, "txnNumber", txnNumber);
  BSON_APPEND_BOOL(&doc, "autocommit", false);
  BSON_APPEND_UTF8(&doc, "$db", "admin");
  out.insert(out.end(), bson_get_data(&doc), bson_get_data(&doc) + doc.len);
  bson_destroy(&doc);
}

}  // namespace mongogate::proxy
