// router/store_registry.cpp — immutable registry snapshots and their atomic publication.
#include "router/store_registry.h"

#include <utility>

namespace mongogate::router {

RegistrySnapshot::RegistrySnapshot(std::vector<StoreRecord> stores, std::uint64_t version)
    : version_(version) {
  stores_.reserve(stores.size());
  byPrefix_.reserve(stores.size());
  for (StoreRecord& record : stores) {
    auto [it, inserted] = byPrefix_.try_emplace(record.prefix, stores_.size());
    if (inserted) {
      stores_.push_back(std::move(record));
    } else {
      // A prefix listed twice keeps the later record, at the earlier one's position.
      stores_[it->second] = std::move(record);
    }
  }
  // Duplicates leave spare capacity behind; a snapshot lives long, so give it back.
  if (stores_.size() != stores.size()) stores_.shrink_to_fit();
  for (const StoreRecord& record : stores_) ++perDatabase_[record.databaseId];
}

const StoreRecord* RegistrySnapshot::findByPrefix(std::string_view prefix) const {
  auto it = byPrefix_.find(prefix);
  return it == byPrefix_.end() ? nullptr : &stores_[it->second];
}

const StoreRecord* RegistrySnapshot::matchCollection(std::string_view collection) const {
  if (byPrefix_.empty() || collection.size() < 3) return nullptr;  // shortest match: "p_r"
  // Candidate prefixes end right before an '_'. Scanning the underscores from the right
  // tries the longest candidate first, so the first hit is the longest registered prefix.
  // The last character is skipped: "<prefix>_" alone has an empty rest and never matches.
  // Position 0 is skipped too: an empty prefix would claim every "_x" collection.
  for (std::size_t pos = collection.rfind('_', collection.size() - 2);
       pos != std::string_view::npos && pos > 0; pos = collection.rfind('_', pos - 1)) {
    auto it = byPrefix_.find(collection.substr(0, pos));
    if (it != byPrefix_.end()) return &stores_[it->second];
  }
  return nullptr;
}

std::size_t RegistrySnapshot::storesInDatabase(std::int32_t databaseId) const {
  auto it = perDatabase_.find(databaseId);
  return it == perDatabase_.end() ? 0 : it->second;
}

StoreRegistry::StoreRegistry() : snapshot_(std::make_shared<const RegistrySnapshot>()) {}

std::shared_ptr<const RegistrySnapshot> StoreRegistry::current() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

void StoreRegistry::publish(std::vector<StoreRecord> stores) {
  // Writers are serialised by writeMutex_ so versions stay in publication order; the
  // snapshot (slow for big registries) is built outside mutex_, so readers refreshing
  // their cached pointer never wait for a build.
  std::lock_guard writer(writeMutex_);
  const std::uint64_t next = version_.load(std::memory_order_relaxed) + 1;
  auto snapshot = std::make_shared<const RegistrySnapshot>(std::move(stores), next);
  swapIn(std::move(snapshot), next);
  loaded_.store(true, std::memory_order_release);
}

void StoreRegistry::upsert(const StoreRecord& store) {
  std::lock_guard writer(writeMutex_);
  std::shared_ptr<const RegistrySnapshot> base = current();
  std::vector<StoreRecord> stores(base->stores().begin(), base->stores().end());
  // The snapshot constructor keeps the later of two records with one prefix, in place.
  stores.push_back(store);
  const std::uint64_t next = version_.load(std::memory_order_relaxed) + 1;
  swapIn(std::make_shared<const RegistrySnapshot>(std::move(stores), next), next);
}

void StoreRegistry::swapIn(std::shared_ptr<const RegistrySnapshot> snapshot, std::uint64_t version) {
  std::shared_ptr<const RegistrySnapshot> previous;
  {
    std::lock_guard lock(mutex_);
    previous = std::exchange(snapshot_, std::move(snapshot));
    // After the pointer: a reader that sees the new version finds the new snapshot.
    version_.store(version, std::memory_order_release);
  }
  // `previous` is released here, outside the lock (it may be the last reference to a big
  // snapshot, and freeing it is not free).
}

}  // namespace mongogate::router
