// proxy/affinity.h — which server of a deployment owns a cursor or a transaction.
//
// Promise: a getMore or killCursors goes to the server that returned the cursor, and
// every statement of a transaction (and its commit or abort) to the server its first
// statement went to, whichever worker receives it (drivers use any pooled connection,
// so any mongogate worker). Shared by all workers: 16 mutex shards, short critical
// sections, no allocation on lookup. Entries end when the cursor is exhausted or
// killed, and expire after `idleTimeout` without use, so the table cannot grow without
// bound. Only deployments with several servers use it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "wire/message.h"

namespace mongogate::proxy {

class AffinityTable {
 public:
  using Clock = std::chrono::steady_clock;
  struct Key {
    std::uint64_t words[4]{};
    bool operator==(const Key&) const = default;
  };

  static Key cursorKey(std::size_t deployment, std::int64_t cursorId) {
    return {{deployment, 0, 0, static_cast<std::uint64_t>(cursorId)}};
  }
  // lsid.id is a 16-byte UUID; anything else is folded into the same two words.
  static Key transactionKey(std::size_t deployment, wire::Bytes lsid, std::int64_t txnNumber) {
    Key key{{deployment | (std::uint64_t{1} << 63), 0, 0, static_cast<std::uint64_t>(txnNumber)}};
    for (std::size_t i = 0; i < lsid.size(); ++i) {
      std::uint64_t& word = key.words[1 + (i / 8) % 2];
      word = (word << 8 | word >> 56) ^ lsid[i];
    }
    return key;
  }

  explicit AffinityTable(std::chrono::milliseconds idleTimeout, std::size_t maxEntriesPerShard = 1 << 16)
      : idleTimeout_(idleTimeout), maxEntriesPerShard_(maxEntriesPerShard) {}

  void put(const Key& key, std::size_t server, Clock::time_point now = Clock::now()) {
    Shard& shard = shardOf(key);
    std::lock_guard lock(shard.mutex);
    if (now - shard.lastSweep > idleTimeout_ / 4 || shard.map.size() >= maxEntriesPerShard_) {
      sweep(shard, now);
      if (shard.map.size() >= maxEntriesPerShard_) shard.map.clear();  // a flood: forget, never grow
    }
    shard.map.insert_or_assign(key, Entry{server, now});
  }

  // The server of a live entry (and its idle clock restarts).
  std::optional<std::size_t> get(const Key& key, Clock::time_point now = Clock::now()) {
    Shard& shard = shardOf(key);
    std::lock_guard lock(shard.mutex);
    auto it = shard.map.find(key);
    if (it == shard.map.end()) return std::nullopt;
    if (now - it->second.lastUsed > idleTimeout_) {
      shard.map.erase(it);
      return std::nullopt;
    }
    it->second.lastUsed = now;
    return it->second.server;
  }

  void erase(const Key& key) {
    Shard& shard = shardOf(key);
    std::lock_guard lock(shard.mutex);
    shard.map.erase(key);
  }

  std::size_t size() {
    std::size_t total = 0;
    for (Shard& shard : shards_) {
      std::lock_guard lock(shard.mutex);
      total += shard.map.size();
    }
    return total;
  }

 private:
  struct Hash {
    std::size_t operator()(const Key& key) const {
      std::uint64_t h = 0x9e3779b97f4a7c15ull;
      for (std::uint64_t w : key.words) h = (h ^ w) * 0xff51afd7ed558ccdull;
      return static_cast<std::size_t>(h ^ (h >> 29));
    }
  };
  struct Entry {
    std::size_t server;
    Clock::time_point lastUsed;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<Key, Entry, Hash> map;
    Clock::time_point lastSweep{};
  };

  Shard& shardOf(const Key& key) { return shards_[Hash{}(key) >> 7 & (kShards - 1)]; }
  void sweep(Shard& shard, Clock::time_point now) {
    std::erase_if(shard.map, [&](const auto& entry) { return now - entry.second.lastUsed > idleTimeout_; });
    shard.lastSweep = now;
  }

  static constexpr std::size_t kShards = 16;
  const Clock::duration idleTimeout_;
  const std::size_t maxEntriesPerShard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace mongogate::proxy
