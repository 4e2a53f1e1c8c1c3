// router/store_registry.h — the store registry as immutable snapshots (SPEC §2, §5).
//
// Promise: a RegistrySnapshot never changes after it is built, so the request path reads
// it without locks. StoreRegistry publishes new snapshots; each worker thread keeps a
// RegistryReader that re-fetches the shared pointer only when the version moved (one
// relaxed atomic load per request otherwise).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mongogate::router {

struct StoreRecord {
  std::string storeId;          // the registry's storeId, as text (ObjectId hex, number or string)
  std::string name;
  std::string prefix;           // e.g. "abc": collections "abc_products", ...
  std::int32_t databaseId = 0;  // N of pos_db_N; 0 = not moved yet, data still in the main database
};

class RegistrySnapshot {
 public:
  RegistrySnapshot() = default;
  // Builds the indexes. A prefix listed twice keeps the later record.
  explicit RegistrySnapshot(std::vector<StoreRecord> stores, std::uint64_t version = 0);

  const StoreRecord* findByPrefix(std::string_view prefix) const;
  // The store whose prefix p is the longest with collection == p + "_" + rest
  // (rest non-empty); nullptr when none matches.
  const StoreRecord* matchCollection(std::string_view collection) const;
  std::span<const StoreRecord> stores() const { return stores_; }
  // How many stores live in pos_db_<databaseId> (0: the main database).
  std::size_t storesInDatabase(std::int32_t databaseId) const;
  std::uint64_t version() const { return version_; }
  std::size_t size() const { return stores_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<StoreRecord> stores_;
  std::unordered_map<std::string, std::size_t, Hash, std::equal_to<>> byPrefix_;
  std::unordered_map<std::int32_t, std::size_t> perDatabase_;
  std::uint64_t version_ = 0;
};

class StoreRegistry {
 public:
  StoreRegistry();
  std::shared_ptr<const RegistrySnapshot> current() const;
  std::uint64_t version() const { return version_.load(std::memory_order_acquire); }
  // Replaces the snapshot (its version is set to the next number).
  void publish(std::vector<StoreRecord> stores);
  // Adds or replaces one store (matched by prefix) on top of the current snapshot.
  void upsert(const StoreRecord& store);
  bool loaded() const { return loaded_.load(std::memory_order_acquire); }

 private:
  void swapIn(std::shared_ptr<const RegistrySnapshot> snapshot, std::uint64_t version);

  std::mutex writeMutex_;     // one writer at a time: versions follow publication order
  mutable std::mutex mutex_;  // the pointer swap, and readers whose cached version is stale
  std::shared_ptr<const RegistrySnapshot> snapshot_;
  std::atomic<std::uint64_t> version_{0};
  std::atomic<bool> loaded_{false};
};

// Per-thread cache of the current snapshot.
class RegistryReader {
 public:
  explicit RegistryReader(const StoreRegistry& registry) : registry_(registry) {}
  const RegistrySnapshot& snapshot() {
    const std::uint64_t v = registry_.version();
    if (!cached_ || v != cachedVersion_) {
      cached_ = registry_.current();
      cachedVersion_ = cached_->version();
    }
    return *cached_;
  }
  // Keeps the snapshot alive while a request uses pointers into it.
  std::shared_ptr<const RegistrySnapshot> pin() {
    snapshot();
    return cached_;
  }

 private:
  const StoreRegistry& registry_;
  std::shared_ptr<const RegistrySnapshot> cached_;
  std::uint64_t cachedVersion_ = 0;
};

}  // namespace mongogate::router
