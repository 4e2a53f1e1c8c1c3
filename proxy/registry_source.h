// proxy/registry_source.h — where the store registry comes from, and how it stays current
// (SPEC §2 "registry", §5 "every sidecar learns it ... within seconds").
//
// Promise: loadInitial() fills the StoreRegistry once at start, from `<main db>.<collection>`
// on the main upstream (libmongoc, blocking, bounded by serverSelectionTimeoutMs) or from a
// YAML file. start() then keeps it current on a thread of its own, off the data path: a
// change stream where the upstream offers one (every event reloads the collection, at most
// once a second under a burst), else polling every pollIntervalMs, publishing only when the
// content changed; a file source is re-read when its mtime/size/inode change. A source that
// fails keeps the last good snapshot. The last good upstream registry is saved to cacheFile
// (written atomically) and used at start when the upstream cannot be reached.
//
// Nothing here ever puts the URI's credentials into a message or a log line.
//
// Registry file (YAML):
//   stores:
//     - {storeId: "65a1…", name: "Main street", prefix: abc, databaseId: 1}
// Rules: `stores` is a list (may be empty); per entry `prefix` is required, 1+ ASCII letters
// or digits (exactly [A-Za-z0-9]+); `databaseId` is optional, a whole number 0..2147483647
// (0 or absent: the store's data is still in the main database); `storeId` and `name` are
// optional scalars; `_id` is ignored; any other key, a duplicate prefix, or a wrong type is
// an error naming the entry (stores[i]). Every problem is reported, joined by "; ".
//
// Upstream documents are taken as they are (the application wrote them): a document
// without a non-empty string `prefix` is skipped (debug log); storeId ObjectId → hex,
// string as is, numbers → decimal; databaseId int32/int64/double → int, missing or null → 0,
// anything else (or out of range) → 0 with a warning. A duplicate prefix keeps the later
// document (warning naming both).
//
// Cache file: JSON lines — a header {"mongogateRegistryCache": 1, "count": N}, then one
// {storeId, name, prefix, databaseId} document per line (read back with libbson's JSON
// reader; a count that does not match refuses the file). Written to "<path>.tmp.<pid>.<n>",
// fsync'ed and renamed over <path>, so a reader never sees half a cache.
//
// Timeouts: unless the URI sets them, serverSelectionTimeoutMS = serverSelectionTimeoutMs,
// connectTimeoutMS = min(that, 10 s), socketTimeoutMS = 10 s. stop() returns within about a
// second, except while a libmongoc call is blocked on an unresponsive upstream (then within
// those timeouts).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "router/store_registry.h"

namespace mongogate::proxy {

struct RegistrySourceSettings {
  enum class Kind { kUpstream, kFile };
  Kind kind = Kind::kUpstream;
  std::string upstreamUri;          // the main upstream (may hold credentials: never logged)
  std::string mainDatabase;         // "" = the URI's database, else "test"
  std::string collection = "stores";
  std::string filePath;             // Kind::kFile
  std::uint32_t pollIntervalMs = 2000;
  std::string cacheFile;            // "" = no cache
  bool useChangeStreams = true;
  std::uint32_t serverSelectionTimeoutMs = 3000;
};

// How the background thread currently follows the source (for /readyz, metrics, tests).
enum class RegistryFollowMode { kStopped, kChangeStream, kPolling, kFileWatch };

class RegistrySource {
 public:
  RegistrySource(RegistrySourceSettings settings, router::StoreRegistry& registry);
  ~RegistrySource();  // stop()s
  RegistrySource(const RegistrySource&) = delete;
  RegistrySource& operator=(const RegistrySource&) = delete;

  // Loads and publishes the registry. Upstream unreachable (or failing) with a readable
  // cache file: publishes the cache, logs a warning, returns true (loadedFromCache()).
  // Otherwise false and `error` says why.
  bool loadInitial(std::string& error);
  // Starts the follower thread (at most once; no-op when running).
  void start();
  // Stops and joins the thread (see "Timeouts" above for how long it can take).
  void stop();
  // One synchronous reload from the source; publishes (and saves the cache) when the
  // content differs. Thread-safe with the follower thread. False + `error` on failure.
  bool reloadNow(std::string& error);

  // POST /v1/stores: inserts one store document {_id, storeId, name, prefix, databaseId}
  // into <main db>.<collection> (Kind::kUpstream only), unless a document with its prefix
  // is already there (then `exists` is set). storeId "" becomes the new _id (an ObjectId)
  // and `store.storeId` its hex. Blocking, bounded by the URI timeouts; never publishes
  // (the caller upserts, the follower sees the document later). False + `error` on failure.
  bool insertStore(router::StoreRecord& store, bool& exists, std::string& error);

  RegistryFollowMode mode() const { return mode_.load(std::memory_order_acquire); }
  bool loadedFromCache() const { return loadedFromCache_.load(std::memory_order_acquire); }
  // Publications made by this source (initial load included).
  std::uint64_t publications() const { return publications_.load(std::memory_order_acquire); }

 private:
  struct Upstream;  // libmongoc pool and URI facts, defined in the .cpp
  enum class Reload { kUnchanged, kPublished, kFailed };
  struct FileStamp {  // what says "the registry file changed"
    bool exists = false;
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
    std::int64_t size = 0;
    std::int64_t mtimeNs = 0;
    bool operator==(const FileStamp&) const = default;
  };
  static FileStamp stampOf(const std::string& path);

  Reload reload(std::string& error);
  bool fetch(std::vector<router::StoreRecord>& stores, std::string& error);
  bool fetchFromUpstream(std::vector<router::StoreRecord>& stores, std::string& error);
  bool publishIfChanged(std::vector<router::StoreRecord> stores);
  // reload() on the follower thread, logging failures on transitions only. False on failure.
  bool reloadLogged();
  void run();
  void runFileWatch();
  // Follows a change stream until stop, an error or an invalidating event. Returns false
  // when the server refuses change streams for good (not a replica set, no privilege).
  bool followChangeStream();
  // Sleeps up to `ms`; true when stop() was called.
  bool waitForStop(std::uint32_t ms);
  bool stopping() const { return stop_.load(std::memory_order_acquire); }
  std::string scrub(std::string message) const;

  const RegistrySourceSettings settings_;
  router::StoreRegistry& registry_;
  std::unique_ptr<Upstream> upstream_;
  std::mutex reloadMutex_;  // one fetch + compare + publish at a time
  std::mutex stopMutex_;
  std::condition_variable stopSignal_;
  std::atomic<bool> stop_{false};
  std::atomic<RegistryFollowMode> mode_{RegistryFollowMode::kStopped};
  std::atomic<bool> loadedFromCache_{false};
  std::atomic<std::uint64_t> publications_{0};
  FileStamp fileStamp_;    // the registry file as last read (guarded by reloadMutex_)
  bool failing_ = false;   // follower thread: the last reload failed (log on transitions)
  bool streamFailing_ = false;  // follower thread: the last change stream attempt failed
  std::thread thread_;
};

// The pieces, public for tests and tools.

// Parses a registry YAML document (rules above). `origin` names it in messages.
bool parseRegistryYaml(const std::string& text, const std::string& origin,
                       std::vector<router::StoreRecord>& stores, std::string& error);
bool loadRegistryFile(const std::string& path, std::vector<router::StoreRecord>& stores,
                      std::string& error);
bool saveRegistryCache(const std::string& path, std::span<const router::StoreRecord> stores,
                       std::string& error);
bool loadRegistryCache(const std::string& path, std::vector<router::StoreRecord>& stores,
                       std::string& error);

}  // namespace mongogate::proxy
