// RegistrySource against a real wire-protocol upstream: tests/upstream/mock_upstream.py
// (mongomock behind a MongoDB listener), started per test with posix_spawn. Covers the
// libmongoc path: initial load and document conversion, the fallback from change streams
// (the mock is a standalone: 40573) to polling, a change stream (faked through the mock's
// reply faults) whose events trigger reloads, the cache when the upstream is gone, and
// error messages that never carry the URI's credentials.
//
// Skipped when /usr/bin/python3 or the mock is missing.
#include <gtest/gtest.h>
#include <mongoc/mongoc.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "proxy/registry_source.h"
#include "router/store_registry.h"

extern char** environ;

namespace mongogate {
namespace {

using proxy::RegistryFollowMode;
using proxy::RegistrySource;
using proxy::RegistrySourceSettings;
using router::StoreRecord;
using router::StoreRegistry;
using namespace std::chrono_literals;

const std::filesystem::path kRepo = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
const std::string kPython = "/usr/bin/python3";

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

bson_t* json(const std::string& text) {
  bson_error_t error;
  bson_t* doc = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(text.data()),
                                   static_cast<ssize_t>(text.size()), &error);
  if (!doc) ADD_FAILURE() << "bad test JSON: " << error.message << ": " << text;
  return doc;
}

// A TCP port nothing listens on (bound, then closed).
std::uint16_t closedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class RegistrySourceUpstreamTest : public testing::Test {
 protected:
  void SetUp() override {
    const auto mock = kRepo / "tests/upstream/mock_upstream.py";
    if (::access(kPython.c_str(), X_OK) != 0 || !std::filesystem::exists(mock)) {
      GTEST_SKIP() << "needs " << kPython << " and " << mock;
    }
    std::string pattern = (std::filesystem::temp_directory_path() / "mongogate-regsrc-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    cacheFile_ = (dir_ / "registry.cache").string();
    startMock();
    mongoc_init();
    const std::string uri = "mongodb://127.0.0.1:" + std::to_string(port_) +
                            "/?directConnection=true&serverSelectionTimeoutMS=5000";
    client_ = mongoc_client_new(uri.c_str());
    ASSERT_NE(client_, nullptr);
    stores_ = mongoc_client_get_collection(client_, "main_db", "stores");
  }

  void TearDown() override {
    if (stores_) mongoc_collection_destroy(stores_);
    if (client_) mongoc_client_destroy(client_);
    stopMock();
    if (!dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
    }
  }

  void startMock() {
    const std::string portFile = (dir_ / "port").string();
    const std::string script = (kRepo / "tests/upstream/mock_upstream.py").string();
    std::vector<std::string> args{kPython, script, "--port", "0", "--port-file", portFile, "--name", "main"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env{"PYTHONDONTWRITEBYTECODE=1"};
    for (char** e = environ; *e; ++e) env.emplace_back(*e);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    const int rc = ::posix_spawn(&pid_, kPython.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    ASSERT_EQ(rc, 0) << "posix_spawn: " << std::strerror(rc);
    ASSERT_TRUE(eventually(
        [&] {
          std::ifstream in(portFile);
          int port = 0;
          if (in >> port && port > 0) {
            port_ = static_cast<std::uint16_t>(port);
            return true;
          }
          return false;
        },
        30s))
        << "the mock upstream did not start";
  }

  void stopMock() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    if (!eventually([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, 5s)) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }

  void insert(const std::string& doc) {
    bson_t* d = json(doc);
    bson_error_t error;
    ASSERT_TRUE(mongoc_collection_insert_one(stores_, d, nullptr, nullptr, &error)) << error.message;
    bson_destroy(d);
  }

  void update(const std::string& filter, const std::string& change) {
    bson_t* f = json(filter);
    bson_t* u = json(change);
    bson_error_t error;
    ASSERT_TRUE(mongoc_collection_update_one(stores_, f, u, nullptr, nullptr, &error)) << error.message;
    bson_destroy(f);
    bson_destroy(u);
  }

  void remove(const std::string& filter) {
    bson_t* f = json(filter);
    bson_error_t error;
    ASSERT_TRUE(mongoc_collection_delete_one(stores_, f, nullptr, nullptr, &error)) << error.message;
    bson_destroy(f);
  }

  // Sends a control command (mockFault, mockRecorded, ...) to the mock; returns its reply.
  bson_t* command(const std::string& text) {
    bson_t* cmd = json(text);
    bson_t reply;
    bson_error_t error;
    EXPECT_TRUE(mongoc_client_command_simple(client_, "admin", cmd, nullptr, &reply, &error)) << error.message;
    bson_destroy(cmd);
    bson_t* copy = bson_copy(&reply);
    bson_destroy(&reply);
    return copy;
  }
  void control(const std::string& text) { bson_destroy(command(text)); }

  // How many `find` commands on main_db.stores the mock received.
  int registryFinds() {
    bson_t* reply = command(R"({"mockRecorded": 1, "command": "find"})");
    int n = 0;
    bson_iter_t it, records;
    if (bson_iter_init_find(&it, reply, "records") && bson_iter_recurse(&it, &records)) {
      while (bson_iter_next(&records)) {
        bson_iter_t field;
        if (bson_iter_recurse(&records, &field) && bson_iter_find_descendant(&field, "body.find", &field) &&
            BSON_ITER_HOLDS_UTF8(&field) && std::string(bson_iter_utf8(&field, nullptr)) == "stores") {
          ++n;
        }
      }
    }
    bson_destroy(reply);
    return n;
  }

  RegistrySourceSettings settings(std::uint16_t port) const {
    RegistrySourceSettings s;
    s.kind = RegistrySourceSettings::Kind::kUpstream;
    s.upstreamUri = "mongodb://127.0.0.1:" + std::to_string(port) + "/main_db?directConnection=true";
    s.pollIntervalMs = 200;
    s.cacheFile = cacheFile_;
    s.serverSelectionTimeoutMs = 500;
    return s;
  }
  RegistrySourceSettings settings() const { return settings(port_); }

  std::filesystem::path dir_;
  std::string cacheFile_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  mongoc_client_t* client_ = nullptr;
  mongoc_collection_t* stores_ = nullptr;
};

TEST_F(RegistrySourceUpstreamTest, LoadsConvertsAndCaches) {
  insert(R"({"storeId": {"$oid": "65a1f0c2e4b0a1b2c3d4e5f6"}, "name": "Main", "prefix": "abc", "databaseId": 1,
             "secret": "not projected"})");
  insert(R"({"storeId": "S-2", "name": "Two", "prefix": "def", "databaseId": {"$numberLong": "2"}})");
  insert(R"({"storeId": 77, "prefix": "ghi", "databaseId": 3.0})");
  insert(R"({"storeId": {"$numberLong": "9000000000"}, "prefix": "jkl"})");
  insert(R"({"prefix": "neg", "databaseId": -4})");
  insert(R"({"prefix": "txt", "databaseId": "3"})");
  insert(R"({"prefix": "nul", "databaseId": null})");
  insert(R"({"name": "no prefix"})");
  insert(R"({"prefix": 5})");
  insert(R"({"prefix": ""})");

  StoreRegistry registry;
  RegistrySource source(settings(), registry);
  std::string error;
  ASSERT_TRUE(source.loadInitial(error)) << error;
  EXPECT_FALSE(source.loadedFromCache());
  EXPECT_TRUE(registry.loaded());
  auto snap = registry.current();
  EXPECT_EQ(snap->size(), 7u);
  auto expect = [&](const char* prefix, const char* storeId, const char* name, std::int32_t databaseId) {
    const StoreRecord* r = snap->findByPrefix(prefix);
    ASSERT_NE(r, nullptr) << prefix;
    EXPECT_EQ(r->storeId, storeId) << prefix;
    EXPECT_EQ(r->name, name) << prefix;
    EXPECT_EQ(r->databaseId, databaseId) << prefix;
  };
  expect("abc", "65a1f0c2e4b0a1b2c3d4e5f6", "Main", 1);
  expect("def", "S-2", "Two", 2);
  expect("ghi", "77", "", 3);
  expect("jkl", "9000000000", "", 0);  // missing databaseId: main database
  expect("neg", "", "", 0);            // invalid values fall back to 0 (with a warning)
  expect("txt", "", "", 0);
  expect("nul", "", "", 0);
  EXPECT_EQ(snap->storesInDatabase(0), 4u);

  // The cache holds what was published.
  std::vector<StoreRecord> cached;
  ASSERT_TRUE(proxy::loadRegistryCache(cacheFile_, cached, error)) << error;
  EXPECT_EQ(cached.size(), 7u);

  // Nothing changed: a reload publishes nothing.
  const auto version = registry.version();
  ASSERT_TRUE(source.reloadNow(error)) << error;
  EXPECT_EQ(registry.version(), version);
}

TEST_F(RegistrySourceUpstreamTest, FallsBackToPollingAndFollowsChanges) {
  insert(R"({"storeId": "1", "prefix": "abc", "databaseId": 1})");
  insert(R"({"storeId": "2", "prefix": "def", "databaseId": 2})");
  StoreRegistry registry;
  RegistrySource source(settings(), registry);  // useChangeStreams defaults to true
  std::string error;
  ASSERT_TRUE(source.loadInitial(error)) << error;
  source.start();
  // A standalone refuses $changeStream (40573): the source polls instead.
  ASSERT_TRUE(eventually([&] { return source.mode() == RegistryFollowMode::kPolling; }));

  insert(R"({"storeId": "3", "prefix": "new1", "databaseId": 4})");
  EXPECT_TRUE(eventually([&] { return registry.current()->findByPrefix("new1") != nullptr; }, 3s));
  update(R"({"prefix": "abc"})", R"({"$set": {"databaseId": 5}})");
  EXPECT_TRUE(eventually([&] { return registry.current()->findByPrefix("abc")->databaseId == 5; }, 3s));
  remove(R"({"prefix": "def"})");
  EXPECT_TRUE(eventually([&] { return registry.current()->findByPrefix("def") == nullptr; }, 3s));

  // Unchanged content is not republished, however often it is polled.
  const auto publications = source.publications();
  const auto version = registry.version();
  std::this_thread::sleep_for(1s);  // ~5 polls
  EXPECT_EQ(source.publications(), publications);
  EXPECT_EQ(registry.version(), version);
  EXPECT_GE(registryFinds(), 5);

  // Each change was saved.
  std::vector<StoreRecord> cached;
  ASSERT_TRUE(proxy::loadRegistryCache(cacheFile_, cached, error)) << error;
  EXPECT_EQ(cached.size(), 2u);

  const auto t0 = std::chrono::steady_clock::now();
  source.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
  EXPECT_EQ(source.mode(), RegistryFollowMode::kStopped);
}

TEST_F(RegistrySourceUpstreamTest, WithoutChangeStreamsItOnlyPolls) {
  auto s = settings();
  s.useChangeStreams = false;
  StoreRegistry registry;
  RegistrySource source(s, registry);
  std::string error;
  ASSERT_TRUE(source.loadInitial(error)) << error;
  control(R"({"mockClearRecorded": 1})");
  source.start();
  EXPECT_TRUE(eventually([&] { return source.mode() == RegistryFollowMode::kPolling; }));
  insert(R"({"prefix": "late", "databaseId": 2})");
  EXPECT_TRUE(eventually([&] { return registry.current()->findByPrefix("late") != nullptr; }, 3s));
  bson_t* recorded = command(R"({"mockRecorded": 1, "command": "aggregate"})");
  bson_iter_t it;
  ASSERT_TRUE(bson_iter_init_find(&it, recorded, "records"));
  std::uint32_t len = 0;
  const std::uint8_t* data = nullptr;
  bson_iter_array(&it, &len, &data);
  EXPECT_EQ(len, 5u) << "no change stream was attempted (an empty array is 5 bytes)";
  bson_destroy(recorded);
}

// The mock is a standalone, so its $changeStream is refused; the mock's "reply" faults stand
// in for a replica set: the aggregate opens a cursor whose first batch holds one insert
// event, and every getMore returns an empty batch.
TEST_F(RegistrySourceUpstreamTest, ChangeStreamEventsTriggerReloads) {
  insert(R"({"storeId": "1", "prefix": "abc", "databaseId": 1})");
  StoreRegistry registry;
  auto s = settings();
  s.pollIntervalMs = 100;  // if the source polled, finds would pile up
  RegistrySource source(s, registry);
  std::string error;
  ASSERT_TRUE(source.loadInitial(error)) << error;

  control(R"({"mockFault": "aggregate", "action": "reply", "collection": "stores",
      "times": 1, "reply": {"ok": 1, "cursor": {"id": {"$numberLong": "777"}, "ns": "main_db.stores",
      "firstBatch": [{"_id": {"_data": "826500000000000000"}, "operationType": "insert",
                      "ns": {"db": "main_db", "coll": "stores"}, "documentKey": {"_id": 1},
                      "fullDocument": {"_id": 1, "prefix": "cs1", "databaseId": 2}}]}}})");
  control(R"({"mockFault": "getMore", "action": "reply", "times": -1, "delayMs": 100,
      "reply": {"ok": 1, "cursor": {"id": {"$numberLong": "777"}, "ns": "main_db.stores", "nextBatch": []}}})");
  insert(R"({"storeId": "2", "prefix": "cs1", "databaseId": 2})");
  control(R"({"mockClearRecorded": 1})");

  source.start();
  ASSERT_TRUE(eventually([&] { return source.mode() == RegistryFollowMode::kChangeStream; }));
  EXPECT_TRUE(eventually([&] { return registry.current()->findByPrefix("cs1") != nullptr; }));
  // One reload when the stream opened, one for the event; no polling on top.
  EXPECT_TRUE(eventually([&] { return registryFinds() >= 2; }));
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(registryFinds(), 2);
  EXPECT_EQ(source.mode(), RegistryFollowMode::kChangeStream);

  const auto t0 = std::chrono::steady_clock::now();
  source.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
}

TEST_F(RegistrySourceUpstreamTest, CacheServesWhenTheUpstreamIsDown) {
  insert(R"({"storeId": "1", "name": "One", "prefix": "abc", "databaseId": 1})");
  insert(R"({"storeId": "2", "prefix": "def", "databaseId": 3})");
  {
    StoreRegistry registry;
    RegistrySource source(settings(), registry);
    std::string error;
    ASSERT_TRUE(source.loadInitial(error)) << error;
  }
  const std::uint16_t deadPort = port_;
  mongoc_collection_destroy(stores_);
  stores_ = nullptr;
  mongoc_client_destroy(client_);
  client_ = nullptr;
  stopMock();

  StoreRegistry registry;
  RegistrySource source(settings(deadPort), registry);
  std::string error;
  ASSERT_TRUE(source.loadInitial(error)) << error;
  EXPECT_TRUE(source.loadedFromCache());
  EXPECT_TRUE(registry.loaded());
  auto snap = registry.current();
  ASSERT_EQ(snap->size(), 2u);
  EXPECT_EQ(snap->findByPrefix("abc")->name, "One");
  EXPECT_EQ(snap->findByPrefix("def")->databaseId, 3);

  // Following a dead upstream keeps the cached registry.
  source.start();
  std::this_thread::sleep_for(800ms);
  EXPECT_EQ(registry.current()->size(), 2u);
  source.stop();

  // No cache: a clear failure.
  auto noCache = settings(deadPort);
  noCache.cacheFile.clear();
  StoreRegistry empty;
  RegistrySource failing(noCache, empty);
  EXPECT_FALSE(failing.loadInitial(error));
  EXPECT_NE(error.find("cannot read the registry from main upstream main_db.stores: "), std::string::npos) << error;
  EXPECT_NE(error.find("(and no registry cache file is configured)"), std::string::npos) << error;
  EXPECT_FALSE(empty.loaded());
}

TEST(RegistrySourceUnreachableTest, FailsClearlyWithoutLeakingCredentials) {
  std::string pattern = (std::filesystem::temp_directory_path() / "mongogate-regsrc-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  RegistrySourceSettings s;
  s.upstreamUri = "mongodb://alice:Sup3rSecretPw@127.0.0.1:" + std::to_string(closedPort()) + "/main_db";
  s.collection = "registry";
  s.serverSelectionTimeoutMs = 300;
  s.cacheFile = pattern + "/absent.cache";
  StoreRegistry registry;
  RegistrySource source(s, registry);
  std::string error;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(source.loadInitial(error));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s) << "server selection must be bounded";
  EXPECT_NE(error.find("cannot read the registry from main upstream main_db.registry: "), std::string::npos) << error;
  EXPECT_NE(error.find("the cache cannot be used either: cannot read registry cache " + s.cacheFile), std::string::npos)
      << error;
  EXPECT_EQ(error.find("Sup3rSecretPw"), std::string::npos) << error;
  EXPECT_EQ(error.find("alice"), std::string::npos) << error;
  EXPECT_FALSE(registry.loaded());
  std::filesystem::remove_all(pattern);

  // An unusable URI is reported without echoing it.
  RegistrySourceSettings bad;
  bad.upstreamUri = "mongodb://bob:Sup3rSecretPw@";
  RegistrySource invalid(bad, registry);
  EXPECT_FALSE(invalid.loadInitial(error));
  EXPECT_NE(error.find("invalid main upstream connection string"), std::string::npos) << error;
  EXPECT_EQ(error.find("Sup3rSecretPw"), std::string::npos) << error;
}

}  // namespace
}  // namespace mongogate
