// bench/registry_bench.cpp — the store registry at 1,000,000 stores: snapshot build time,
// resident memory per store, the lookups the request path makes (SPEC §3 rules 2, 3), and
// saving/loading the registry cache file (what a start with the upstream down reads).
//
// Figures only, no assertions. Memory is the growth of the process's resident set
// (/proc/self/statm), so run the benchmarks in one fresh process, BM_BuildSnapshot first
// (registration order), e.g.:  registry_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "proxy/registry_source.h"
#include "router/store_registry.h"

namespace {

using mongogate::router::RegistryReader;
using mongogate::router::RegistrySnapshot;
using mongogate::router::StoreRecord;
using mongogate::router::StoreRegistry;

constexpr std::size_t kStores = 1'000'000;

std::size_t residentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

std::string prefixOf(std::size_t i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "s%06zu", i);
  return buf;
}

// What a registry document looks like: a 24-hex-digit ObjectId, a short name, a prefix and
// pos_db_1..5 at 20 stores per database... except that a million stores would need 50,000
// databases, so databaseId cycles through 1..50 here.
std::vector<StoreRecord> makeStores(std::size_t n) {
  std::vector<StoreRecord> stores;
  stores.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "65a1%020zx", i);
    stores.push_back({id, "Store " + std::to_string(i), prefixOf(i), static_cast<std::int32_t>(i % 50 + 1)});
  }
  return stores;
}

std::unique_ptr<StoreRegistry> g_registry;

const RegistrySnapshot& snapshot() {
  if (!g_registry) {
    g_registry = std::make_unique<StoreRegistry>();
    g_registry->publish(makeStores(kStores));
  }
  return *g_registry->current();
}

void BM_BuildSnapshot(benchmark::State& state) {
  for (auto _ : state) {
    g_registry.reset();
    const std::size_t before = residentBytes();
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<StoreRecord> stores = makeStores(kStores);
    const auto t1 = std::chrono::steady_clock::now();
    const std::size_t records = residentBytes();
    auto registry = std::make_unique<StoreRegistry>();
    registry->publish(std::move(stores));
    const auto t2 = std::chrono::steady_clock::now();
    const std::size_t after = residentBytes();
    g_registry = std::move(registry);

    const double perStore = static_cast<double>(after - before) / kStores;
    const double recordsPerStore = static_cast<double>(records - before) / kStores;
    state.counters["stores"] = static_cast<double>(kStores);
    state.counters["bytes_per_store"] = perStore;
    state.counters["record_bytes_per_store"] = recordsPerStore;
    state.counters["index_bytes_per_store"] = perStore - recordsPerStore;
    state.counters["generate_ms"] = std::chrono::duration<double, std::milli>(t1 - t0).count();
    state.counters["publish_ms"] = std::chrono::duration<double, std::milli>(t2 - t1).count();
    std::printf("registry: %zu stores; records generated in %.0f ms, snapshot built and published in %.0f ms; "
                "resident growth %.1f MiB = %.0f bytes/store (records %.0f, indexes %.0f)\n",
                kStores, std::chrono::duration<double, std::milli>(t1 - t0).count(),
                std::chrono::duration<double, std::milli>(t2 - t1).count(),
                static_cast<double>(after - before) / (1024.0 * 1024.0), perStore, recordsPerStore,
                perStore - recordsPerStore);
    std::fflush(stdout);
  }
}
BENCHMARK(BM_BuildSnapshot)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_CacheSaveAndLoad(benchmark::State& state) {
  const RegistrySnapshot& snap = snapshot();
  const std::string path =
      (std::filesystem::temp_directory_path() / ("mongogate-bench-" + std::to_string(::getpid()) + ".cache")).string();
  for (auto _ : state) {
    std::string error;
    const auto t0 = std::chrono::steady_clock::now();
    if (!mongogate::proxy::saveRegistryCache(path, snap.stores(), error)) {
      state.SkipWithError(error.c_str());
      break;
    }
    const auto t1 = std::chrono::steady_clock::now();
    std::vector<StoreRecord> loaded;
    if (!mongogate::proxy::loadRegistryCache(path, loaded, error)) {
      state.SkipWithError(error.c_str());
      break;
    }
    const auto t2 = std::chrono::steady_clock::now();
    StoreRegistry registry;
    registry.publish(std::move(loaded));
    const auto t3 = std::chrono::steady_clock::now();
    const double mib = static_cast<double>(std::filesystem::file_size(path)) / (1024.0 * 1024.0);
    auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
    state.counters["save_ms"] = ms(t1 - t0);
    state.counters["load_ms"] = ms(t2 - t1);
    state.counters["publish_ms"] = ms(t3 - t2);
    state.counters["file_MiB"] = mib;
    std::printf("registry cache: %zu stores; saved in %.0f ms (%.1f MiB), read in %.0f ms, published in %.0f ms\n",
                snap.size(), ms(t1 - t0), mib, ms(t2 - t1), ms(t3 - t2));
    std::fflush(stdout);
  }
  std::filesystem::remove(path);
}
BENCHMARK(BM_CacheSaveAndLoad)->Iterations(1)->Unit(benchmark::kMillisecond);

// Keys spread over the whole registry so lookups are not served from one hot cache line.
std::vector<std::string> randomKeys(const char* suffix) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::size_t> pick(0, kStores - 1);
  std::vector<std::string> keys(4096);
  for (auto& k : keys) k = prefixOf(pick(rng)) + suffix;
  return keys;
}

void BM_FindByPrefixHit(benchmark::State& state) {
  const RegistrySnapshot& snap = snapshot();
  const auto keys = randomKeys("");
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(snap.findByPrefix(keys[i++ & 4095]));
  }
}
BENCHMARK(BM_FindByPrefixHit);

void BM_MatchCollectionFixedHit(benchmark::State& state) {
  const RegistrySnapshot& snap = snapshot();
  const std::string collection = "s123456_products";
  for (auto _ : state) benchmark::DoNotOptimize(snap.matchCollection(collection));
}
BENCHMARK(BM_MatchCollectionFixedHit);

void BM_MatchCollectionHit(benchmark::State& state) {
  const RegistrySnapshot& snap = snapshot();
  const auto keys = randomKeys("_products");
  std::size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(snap.matchCollection(keys[i++ & 4095]));
}
BENCHMARK(BM_MatchCollectionHit);

void BM_MatchCollectionMissShared(benchmark::State& state) {
  const RegistrySnapshot& snap = snapshot();
  const std::string collection = "shared_settings";
  for (auto _ : state) benchmark::DoNotOptimize(snap.matchCollection(collection));
}
BENCHMARK(BM_MatchCollectionMissShared);

void BM_MatchCollectionMissNoUnderscore(benchmark::State& state) {
  const RegistrySnapshot& snap = snapshot();
  const std::string collection = "nounderscore";
  for (auto _ : state) benchmark::DoNotOptimize(snap.matchCollection(collection));
}
BENCHMARK(BM_MatchCollectionMissNoUnderscore);

// What every request pays to reach the snapshot: one atomic load when nothing changed.
void BM_RegistryReaderSnapshot(benchmark::State& state) {
  snapshot();
  RegistryReader reader(*g_registry);
  for (auto _ : state) benchmark::DoNotOptimize(&reader.snapshot());
}
BENCHMARK(BM_RegistryReaderSnapshot);

}  // namespace

BENCHMARK_MAIN();
