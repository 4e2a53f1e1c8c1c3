// The store registry: snapshot lookups (longest prefix, SPEC §3 rule 2), publication and
// per-thread readers, concurrent publish/read, the YAML registry file with every validation
// message, the cache file, and a file source followed by mtime.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "proxy/registry_source.h"
#include "router/store_registry.h"

namespace mongogate {
namespace {

using proxy::RegistryFollowMode;
using proxy::RegistrySource;
using proxy::RegistrySourceSettings;
using router::RegistryReader;
using router::RegistrySnapshot;
using router::StoreRecord;
using router::StoreRegistry;

StoreRecord rec(std::string prefix, std::int32_t databaseId = 1, std::string storeId = "",
                std::string name = "") {
  return {std::move(storeId), std::move(name), std::move(prefix), databaseId};
}

// ---- RegistrySnapshot ---------------------------------------------------------------------

struct MatchCase {
  const char* collection;
  const char* expectedPrefix;  // nullptr: no store
};

class MatchCollectionTest : public testing::TestWithParam<MatchCase> {
 protected:
  static const RegistrySnapshot& snapshot() {
    static const RegistrySnapshot snap({rec("abc"), rec("abc_x"), rec("abc_x_y"), rec("zed"), rec("s1")}, 1);
    return snap;
  }
};

TEST_P(MatchCollectionTest, LongestRegisteredPrefixWithNonEmptyRest) {
  const MatchCase& c = GetParam();
  const StoreRecord* store = snapshot().matchCollection(c.collection);
  if (c.expectedPrefix == nullptr) {
    EXPECT_EQ(store, nullptr) << c.collection << " matched " << store->prefix;
  } else {
    ASSERT_NE(store, nullptr) << c.collection;
    EXPECT_EQ(store->prefix, c.expectedPrefix) << c.collection;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, MatchCollectionTest,
    testing::Values(MatchCase{"abc_products", "abc"},        // the plain case
                    MatchCase{"abc_x_products", "abc_x"},    // abc_x beats abc
                    MatchCase{"abc_x_y_products", "abc_x_y"},
                    MatchCase{"abc_x_y", "abc_x"},           // abc_x_y is the whole name: rest empty
                    MatchCase{"abc_x", "abc"},               // likewise abc_x
                    MatchCase{"abc_x_", "abc"},              // "abc_x" + "_" + "": no; abc + "x_": yes
                    MatchCase{"abc_", nullptr},              // rest must be non-empty
                    MatchCase{"abc", nullptr},               // the prefix alone
                    MatchCase{"nounderscore", nullptr},
                    MatchCase{"shared_settings", nullptr},
                    MatchCase{"_abc", nullptr},              // empty prefix never matches
                    MatchCase{"ab_products", nullptr},       // a prefix of a prefix is not a prefix
                    MatchCase{"ABC_products", nullptr},      // case-sensitive, like collection names
                    MatchCase{"zed__double", "zed"},         // rest "_double"
                    MatchCase{"s1_a", "s1"},                 // shortest possible match
                    MatchCase{"", nullptr}));

TEST(RegistrySnapshotTest, FindByPrefixIsExactAndHeterogeneous) {
  RegistrySnapshot snap({rec("abc", 2, "id1", "First"), rec("abd", 3)}, 7);
  std::string_view key = std::string_view("abcdef").substr(0, 3);  // not NUL-terminated
  const StoreRecord* found = snap.findByPrefix(key);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->storeId, "id1");
  EXPECT_EQ(found->name, "First");
  EXPECT_EQ(found->databaseId, 2);
  EXPECT_EQ(snap.findByPrefix("ab"), nullptr);
  EXPECT_EQ(snap.findByPrefix("abcd"), nullptr);
  EXPECT_EQ(snap.version(), 7u);
  EXPECT_EQ(snap.size(), 2u);
}

TEST(RegistrySnapshotTest, DuplicatePrefixKeepsTheLaterRecord) {
  RegistrySnapshot snap({rec("a", 1, "first"), rec("b", 2), rec("a", 3, "second")});
  EXPECT_EQ(snap.size(), 2u);
  ASSERT_NE(snap.findByPrefix("a"), nullptr);
  EXPECT_EQ(snap.findByPrefix("a")->storeId, "second");
  EXPECT_EQ(snap.findByPrefix("a")->databaseId, 3);
  EXPECT_EQ(snap.storesInDatabase(1), 0u);
  EXPECT_EQ(snap.storesInDatabase(3), 1u);
  std::vector<std::string> prefixes;
  for (const auto& s : snap.stores()) prefixes.push_back(s.prefix);
  EXPECT_EQ(prefixes, (std::vector<std::string>{"a", "b"}));
}

TEST(RegistrySnapshotTest, StoresInDatabaseCounts) {
  RegistrySnapshot snap({rec("a", 0), rec("b", 1), rec("c", 1), rec("d", 5), rec("e", 0), rec("f", 1)});
  EXPECT_EQ(snap.storesInDatabase(0), 2u);
  EXPECT_EQ(snap.storesInDatabase(1), 3u);
  EXPECT_EQ(snap.storesInDatabase(5), 1u);
  EXPECT_EQ(snap.storesInDatabase(2), 0u);
  EXPECT_EQ(snap.storesInDatabase(-1), 0u);
}

TEST(RegistrySnapshotTest, EmptySnapshotMatchesNothing) {
  RegistrySnapshot snap;
  EXPECT_EQ(snap.size(), 0u);
  EXPECT_EQ(snap.version(), 0u);
  EXPECT_EQ(snap.findByPrefix("a"), nullptr);
  EXPECT_EQ(snap.matchCollection("a_b"), nullptr);
  EXPECT_EQ(snap.storesInDatabase(0), 0u);
}

// ---- StoreRegistry and RegistryReader -----------------------------------------------------

TEST(StoreRegistryTest, StartsEmptyAndNotLoaded) {
  StoreRegistry registry;
  EXPECT_FALSE(registry.loaded());
  EXPECT_EQ(registry.version(), 0u);
  ASSERT_NE(registry.current(), nullptr);
  EXPECT_EQ(registry.current()->size(), 0u);
}

TEST(StoreRegistryTest, PublishBumpsVersionAndMarksLoaded) {
  StoreRegistry registry;
  registry.publish({rec("a", 1), rec("b", 2)});
  EXPECT_TRUE(registry.loaded());
  EXPECT_EQ(registry.version(), 1u);
  auto first = registry.current();
  EXPECT_EQ(first->version(), 1u);
  EXPECT_EQ(first->size(), 2u);

  registry.publish({rec("c", 3)});
  EXPECT_EQ(registry.version(), 2u);
  EXPECT_EQ(registry.current()->version(), 2u);
  EXPECT_EQ(registry.current()->findByPrefix("a"), nullptr);
  // The old snapshot is immutable and still alive for whoever holds it.
  EXPECT_EQ(first->size(), 2u);
  EXPECT_NE(first->findByPrefix("a"), nullptr);
}

TEST(StoreRegistryTest, UpsertAddsOrReplacesByPrefix) {
  StoreRegistry registry;
  registry.upsert(rec("a", 1));
  EXPECT_FALSE(registry.loaded()) << "only a full publish means the registry is loaded";
  EXPECT_EQ(registry.version(), 1u);
  registry.publish({rec("a", 1), rec("b", 2)});
  auto before = registry.current();

  registry.upsert(rec("c", 4, "new"));
  EXPECT_EQ(registry.version(), 3u);
  EXPECT_EQ(registry.current()->size(), 3u);
  EXPECT_EQ(registry.current()->storesInDatabase(4), 1u);

  registry.upsert(rec("a", 5, "moved"));
  auto after = registry.current();
  EXPECT_EQ(registry.version(), 4u);
  EXPECT_EQ(after->version(), 4u);
  EXPECT_EQ(after->size(), 3u);
  EXPECT_EQ(after->findByPrefix("a")->databaseId, 5);
  EXPECT_EQ(after->findByPrefix("a")->storeId, "moved");
  EXPECT_EQ(after->storesInDatabase(1), 0u);
  EXPECT_EQ(before->findByPrefix("a")->databaseId, 1) << "published snapshots never change";
}

TEST(RegistryReaderTest, RefreshesOnlyWhenTheVersionMoves) {
  StoreRegistry registry;
  registry.publish({rec("a", 1)});
  RegistryReader reader(registry);
  const RegistrySnapshot* first = &reader.snapshot();
  EXPECT_EQ(first->version(), 1u);
  EXPECT_EQ(&reader.snapshot(), first) << "same version: the cached snapshot is reused";
  auto pinned = reader.pin();
  EXPECT_EQ(pinned.get(), first);

  registry.publish({rec("b", 2)});
  const RegistrySnapshot* second = &reader.snapshot();
  EXPECT_NE(second, first);
  EXPECT_EQ(second->version(), 2u);
  EXPECT_NE(second->findByPrefix("b"), nullptr);
  EXPECT_EQ(&reader.snapshot(), second);
  // The pinned snapshot outlives the swap.
  EXPECT_NE(pinned->findByPrefix("a"), nullptr);

  registry.upsert(rec("c", 3));
  EXPECT_EQ(reader.snapshot().version(), 3u);
}

// A writer publishes (and upserts) while two readers read. Every snapshot is built so that
// all its stores share one databaseId; a reader that ever sees a mix, or versions going
// backwards, saw a torn snapshot. Run under ASan/TSan to catch the rest.
TEST(StoreRegistryTest, ConcurrentPublishAndRead) {
  StoreRegistry registry;
  auto generation = [](std::int32_t g) {
    std::vector<StoreRecord> stores;
    for (int i = 0; i < 50; ++i) stores.push_back(rec("p" + std::to_string(i), g));
    return stores;
  };
  registry.publish(generation(1));
  std::atomic<bool> done{false};
  std::atomic<int> problems{0};
  std::atomic<long> reads{0};
  auto readLoop = [&] {
    RegistryReader reader(registry);
    std::uint64_t lastVersion = 0;
    while (!done.load(std::memory_order_acquire)) {
      auto snap = reader.pin();
      if (snap->version() < lastVersion) ++problems;
      lastVersion = snap->version();
      const StoreRecord* p0 = snap->matchCollection("p0_products");
      if (!p0) {
        ++problems;
        continue;
      }
      // Upserted "extra" stores carry their own databaseId; the p* stores must agree.
      for (const StoreRecord& s : snap->stores()) {
        if (s.prefix[0] == 'p' && s.databaseId != p0->databaseId) ++problems;
      }
      if (snap->storesInDatabase(p0->databaseId) < 50) ++problems;
      ++reads;
    }
  };
  std::thread r1(readLoop), r2(readLoop);
  for (std::int32_t g = 2; g <= 400; ++g) {
    registry.publish(generation(g));
    if (g % 10 == 0) registry.upsert(rec("extra" + std::to_string(g), -g));
  }
  // Let the readers see the final state too.
  while (reads.load() < 1000) std::this_thread::yield();
  done = true;
  r1.join();
  r2.join();
  EXPECT_EQ(problems.load(), 0);
  EXPECT_EQ(registry.current()->findByPrefix("p7")->databaseId, 400);
  EXPECT_EQ(registry.version(), 1u + 399u + 40u);  // first publish, 399 publishes, 40 upserts
}

// ---- Files --------------------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "mongogate-registry-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

void writeFile(const std::string& path, const std::string& text) {
  // Through a rename, as an operator's editor or config management would do it.
  const std::string temp = path + ".new";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << text;
  }
  std::filesystem::rename(temp, path);
}

std::string yamlError(const std::string& text) {
  std::vector<StoreRecord> stores;
  std::string error;
  EXPECT_FALSE(proxy::parseRegistryYaml(text, "reg.yaml", stores, error)) << text;
  EXPECT_TRUE(stores.empty());
  return error;
}

TEST(RegistryYamlTest, ParsesEntries) {
  std::vector<StoreRecord> stores;
  std::string error;
  ASSERT_TRUE(proxy::parseRegistryYaml(R"(
stores:
  - storeId: 65a1f0c2e4b0a1b2c3d4e5f6
    name: Main street
    prefix: abc
    databaseId: 2
  - {prefix: Xyz9, storeId: 42}
  - {_id: whatever, prefix: zed, databaseId: 0, name: "Zed's"}
)",
                                       "reg.yaml", stores, error))
      << error;
  ASSERT_EQ(stores.size(), 3u);
  EXPECT_EQ(stores[0].storeId, "65a1f0c2e4b0a1b2c3d4e5f6");
  EXPECT_EQ(stores[0].name, "Main street");
  EXPECT_EQ(stores[0].prefix, "abc");
  EXPECT_EQ(stores[0].databaseId, 2);
  EXPECT_EQ(stores[1].storeId, "42");
  EXPECT_EQ(stores[1].prefix, "Xyz9");
  EXPECT_EQ(stores[1].databaseId, 0) << "absent databaseId: still in the main database";
  EXPECT_EQ(stores[2].name, "Zed's");
}

TEST(RegistryYamlTest, EmptyListIsValid) {
  std::vector<StoreRecord> stores{rec("stale")};
  std::string error;
  ASSERT_TRUE(proxy::parseRegistryYaml("stores: []\n", "reg.yaml", stores, error)) << error;
  EXPECT_TRUE(stores.empty());
}

TEST(RegistryYamlTest, EveryValidationMessage) {
  EXPECT_EQ(yamlError("stores: [\n  {prefix: a\n"),
            yamlError("stores: [\n  {prefix: a\n"));  // deterministic
  EXPECT_NE(yamlError("stores: [\n  {prefix: a\n").find("reg.yaml: invalid YAML at line "), std::string::npos);
  EXPECT_EQ(yamlError("- {prefix: a}\n"), "reg.yaml: expected a mapping with a 'stores' list at the top level");
  EXPECT_EQ(yamlError("other: 1\n"), "reg.yaml: expected a mapping with a 'stores' list at the top level");
  EXPECT_EQ(yamlError("stores: {prefix: a}\n"),
            "reg.yaml: stores: expected a list of {storeId, name, prefix, databaseId}");
  EXPECT_EQ(yamlError("stores: [abc]\n"),
            "reg.yaml: stores[0]: expected a mapping with storeId, name, prefix, databaseId");
  EXPECT_EQ(yamlError("stores: [{name: x}]\n"), "reg.yaml: stores[0]: prefix is required");
  EXPECT_EQ(yamlError("stores: [{prefix: }]\n"), "reg.yaml: stores[0]: prefix is required");
  EXPECT_EQ(yamlError("stores: [{prefix: ''}]\n"), "reg.yaml: stores[0].prefix: must not be empty");
  EXPECT_EQ(yamlError("stores: [{prefix: a_b}]\n"),
            "reg.yaml: stores[0].prefix: 'a_b' may only contain ASCII letters and digits ([A-Za-z0-9]+)");
  EXPECT_EQ(yamlError("stores: [{prefix: [a]}]\n"),
            "reg.yaml: stores[0].prefix: expected a single value, not a list or mapping");
  EXPECT_EQ(yamlError("stores: [{prefix: a, databaseId: -1}]\n"),
            "reg.yaml: stores[0].databaseId: expected a whole number from 0 to 2147483647, got '-1'");
  EXPECT_EQ(yamlError("stores: [{prefix: a, databaseId: two}]\n"),
            "reg.yaml: stores[0].databaseId: expected a whole number from 0 to 2147483647, got 'two'");
  EXPECT_EQ(yamlError("stores: [{prefix: a, databaseId: 1.5}]\n"),
            "reg.yaml: stores[0].databaseId: expected a whole number from 0 to 2147483647, got '1.5'");
  EXPECT_EQ(yamlError("stores: [{prefix: a, databaseId: 2147483648}]\n"),
            "reg.yaml: stores[0].databaseId: expected a whole number from 0 to 2147483647, got '2147483648'");
  EXPECT_EQ(yamlError("stores: [{prefix: a, databaseID: 1}]\n"),
            "reg.yaml: stores[0]: unknown key 'databaseID' (expected storeId, name, prefix, databaseId)");
  EXPECT_EQ(yamlError("stores:\n"
                      "  - {prefix: a, storeId: s1, name: One}\n"
                      "  - {prefix: b}\n"
                      "  - {prefix: a, storeId: s3}\n"),
            "reg.yaml: stores[2].prefix: duplicate prefix 'a' (storeId 's3'); "
            "stores[0] (storeId 's1', name 'One') has it too");
  // Every problem is listed, not just the first.
  EXPECT_EQ(yamlError("stores: [{prefix: 'a-b'}, {databaseId: 1}]\n"),
            "reg.yaml: stores[0].prefix: 'a-b' may only contain ASCII letters and digits ([A-Za-z0-9]+); "
            "reg.yaml: stores[1]: prefix is required");
}

TEST(RegistryYamlTest, MissingFileIsReported) {
  TempDir dir;
  std::vector<StoreRecord> stores;
  std::string error;
  EXPECT_FALSE(proxy::loadRegistryFile(dir.file("absent.yaml"), stores, error));
  EXPECT_EQ(error, "cannot read registry file " + dir.file("absent.yaml") + ": No such file or directory");
}

TEST(RegistryCacheTest, RoundTrip) {
  TempDir dir;
  const std::string path = dir.file("registry.cache");
  std::vector<StoreRecord> stores{rec("abc", 1, "65a1f0c2e4b0a1b2c3d4e5f6", "Main \"street\"\n"),
                                  rec("a_b", 0, "", ""), rec("z9", 2147483647, "42", "Zürich \\ \t\x01 {}"),
                                  rec("emoji", 3, "\xF0\x9F\x8F\xAA", "/ \r")};
  std::string error;
  ASSERT_TRUE(proxy::saveRegistryCache(path, stores, error)) << error;
  std::vector<StoreRecord> loaded;
  ASSERT_TRUE(proxy::loadRegistryCache(path, loaded, error)) << error;
  ASSERT_EQ(loaded.size(), stores.size());
  for (std::size_t i = 0; i < stores.size(); ++i) {
    EXPECT_EQ(loaded[i].storeId, stores[i].storeId);
    EXPECT_EQ(loaded[i].name, stores[i].name);
    EXPECT_EQ(loaded[i].prefix, stores[i].prefix);
    EXPECT_EQ(loaded[i].databaseId, stores[i].databaseId);
  }
  // Written through a temporary file that is renamed away: nothing else is left behind.
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) names.push_back(entry.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"registry.cache"});

  // An empty registry is a valid cache too.
  ASSERT_TRUE(proxy::saveRegistryCache(path, {}, error)) << error;
  ASSERT_TRUE(proxy::loadRegistryCache(path, loaded, error)) << error;
  EXPECT_TRUE(loaded.empty());
}

TEST(RegistryCacheTest, DamagedCachesAreRefused) {
  TempDir dir;
  const std::string path = dir.file("registry.cache");
  std::vector<StoreRecord> loaded;
  std::string error;
  EXPECT_FALSE(proxy::loadRegistryCache(path, loaded, error));
  EXPECT_NE(error.find("cannot read registry cache " + path), std::string::npos) << error;

  writeFile(path, "");
  EXPECT_FALSE(proxy::loadRegistryCache(path, loaded, error));
  EXPECT_EQ(error, "registry cache " + path + " is empty");

  writeFile(path, "{\"stores\": []}\n");
  EXPECT_FALSE(proxy::loadRegistryCache(path, loaded, error));
  EXPECT_EQ(error, "registry cache " + path + " does not start with a mongogate cache header");

  // A line lost: the header's count no longer matches.
  writeFile(path, "{\"mongogateRegistryCache\": 1, \"count\": 2}\n{\"prefix\": \"a\", \"databaseId\": 1}\n");
  EXPECT_FALSE(proxy::loadRegistryCache(path, loaded, error));
  EXPECT_EQ(error, "registry cache " + path + " holds 1 usable stores, its header says 2");
  EXPECT_TRUE(loaded.empty());

  writeFile(path, "{\"mongogateRegistryCache\": 1, \"count\": 1}\n{\"prefix\": \"a\", \"datab");
  EXPECT_FALSE(proxy::loadRegistryCache(path, loaded, error));
  EXPECT_NE(error.find("registry cache " + path + " is corrupt near document 2"), std::string::npos) << error;
}

TEST(RegistryCacheTest, InvalidUtf8IsRefusedAndNothingIsReplaced) {
  TempDir dir;
  const std::string path = dir.file("registry.cache");
  std::string error;
  ASSERT_TRUE(proxy::saveRegistryCache(path, std::vector<StoreRecord>{rec("good")}, error)) << error;
  EXPECT_FALSE(proxy::saveRegistryCache(path, std::vector<StoreRecord>{rec("a"), rec("b", 1, "", "bad \xC3")}, error));
  EXPECT_EQ(error, "cannot write registry cache " + path +
                       ": store #1 has a storeId, name or prefix that is not valid UTF-8");
  std::vector<StoreRecord> loaded;
  ASSERT_TRUE(proxy::loadRegistryCache(path, loaded, error)) << error;
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].prefix, "good");
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1u) << "the temporary file is removed";
}

TEST(RegistryCacheTest, UnwritableDirectoryIsReported) {
  std::string error;
  EXPECT_FALSE(proxy::saveRegistryCache("/nonexistent-dir/registry.cache", {}, error));
  EXPECT_NE(error.find("cannot write registry cache /nonexistent-dir/registry.cache.tmp."), std::string::npos)
      << error;
}

// ---- File source --------------------------------------------------------------------------

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

TEST(RegistryFileSourceTest, LoadsAndFollowsTheFile) {
  TempDir dir;
  const std::string path = dir.file("registry.yaml");
  writeFile(path, "stores:\n  - {prefix: abc, databaseId: 1}\n");
  RegistrySourceSettings settings;
  settings.kind = RegistrySourceSettings::Kind::kFile;
  settings.filePath = path;
  settings.pollIntervalMs = 20;
  StoreRegistry registry;
  RegistrySource source(settings, registry);
  std::string error;
  ASSERT_TRUE(source.loadInitial(error)) << error;
  EXPECT_TRUE(registry.loaded());
  EXPECT_EQ(registry.current()->findByPrefix("abc")->databaseId, 1);
  EXPECT_FALSE(source.loadedFromCache());

  source.start();
  EXPECT_TRUE(eventually([&] { return source.mode() == RegistryFollowMode::kFileWatch; }));

  writeFile(path, "stores:\n  - {prefix: abc, databaseId: 3}\n  - {prefix: new1, databaseId: 2}\n");
  EXPECT_TRUE(eventually([&] {
    auto snap = registry.current();
    return snap->findByPrefix("new1") != nullptr && snap->findByPrefix("abc")->databaseId == 3;
  }));
  const std::uint64_t published = source.publications();

  // A broken edit keeps the last good registry.
  writeFile(path, "stores:\n  - {prefix: 'bad prefix'}\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_NE(registry.current()->findByPrefix("new1"), nullptr);
  EXPECT_EQ(source.publications(), published);

  // Rewriting the same content (new mtime) re-reads the file but publishes nothing.
  writeFile(path, "stores:\n  - {prefix: abc, databaseId: 3}\n  - {prefix: new1, databaseId: 2}\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(source.publications(), published);

  const auto t0 = std::chrono::steady_clock::now();
  source.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  EXPECT_EQ(source.mode(), RegistryFollowMode::kStopped);
}

TEST(RegistryFileSourceTest, InvalidOrMissingFileFailsTheInitialLoad) {
  TempDir dir;
  RegistrySourceSettings settings;
  settings.kind = RegistrySourceSettings::Kind::kFile;
  settings.filePath = dir.file("registry.yaml");
  StoreRegistry registry;
  {
    RegistrySource source(settings, registry);
    std::string error;
    EXPECT_FALSE(source.loadInitial(error));
    EXPECT_EQ(error, "cannot read registry file " + settings.filePath + ": No such file or directory");
  }
  writeFile(settings.filePath, "stores: [{prefix: a}, {prefix: a}]\n");
  RegistrySource source(settings, registry);
  std::string error;
  EXPECT_FALSE(source.loadInitial(error));
  EXPECT_EQ(error, settings.filePath + ": stores[1].prefix: duplicate prefix 'a' (no storeId or name); stores[0] "
                   "(no storeId or name) has it too");
  EXPECT_FALSE(registry.loaded());
}

TEST(RegistryFileSourceTest, ReloadNowPublishesOnlyChanges) {
  TempDir dir;
  const std::string path = dir.file("registry.yaml");
  writeFile(path, "stores: [{prefix: a, databaseId: 1}]\n");
  RegistrySourceSettings settings;
  settings.kind = RegistrySourceSettings::Kind::kFile;
  settings.filePath = path;
  StoreRegistry registry;
  RegistrySource source(settings, registry);
  std::string error;
  ASSERT_TRUE(source.loadInitial(error)) << error;
  EXPECT_EQ(registry.version(), 1u);
  ASSERT_TRUE(source.reloadNow(error)) << error;
  EXPECT_EQ(registry.version(), 1u) << "same content: nothing published";
  writeFile(path, "stores: [{prefix: a, databaseId: 1, name: renamed}]\n");
  ASSERT_TRUE(source.reloadNow(error)) << error;
  EXPECT_EQ(registry.version(), 2u);
  EXPECT_EQ(registry.current()->findByPrefix("a")->name, "renamed");
  writeFile(path, "stores: [{prefix: a, databaseId: x}]\n");
  EXPECT_FALSE(source.reloadNow(error));
  EXPECT_EQ(error, path + ": stores[0].databaseId: expected a whole number from 0 to 2147483647, got 'x'");
  EXPECT_EQ(registry.version(), 2u);
}

}  // namespace
}  // namespace mongogate
