// Topology: hello replies → server types, discovery and primary changes (SDAM), server
// selection by read preference, the request facts selection reads, error labels, the
// circuit breaker and the affinity table.
#include <bson/bson.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proxy/affinity.h"
#include "proxy/breaker.h"
#include "proxy/topology.h"

namespace mongogate::proxy {
namespace {

std::vector<std::uint8_t> bytesOf(bson_t* doc) {
  std::vector<std::uint8_t> out(bson_get_data(doc), bson_get_data(doc) + doc->len);
  bson_destroy(doc);
  return out;
}

void appendList(bson_t* doc, const char* key, const std::vector<std::string>& values) {
  bson_t array;
  bson_append_array_begin(doc, key, -1, &array);
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::string index = std::to_string(i);
    bson_append_utf8(&array, index.c_str(), -1, values[i].c_str(), -1);
  }
  bson_append_array_end(doc, &array);
}

struct Hello {
  bool primary = false;
  bool secondary = false;
  bool arbiter = false;
  std::string setName = "rs0";
  std::string primaryName;
  std::vector<std::string> hosts;
  std::string msg;
  int setVersion = 0;        // 0 = absent
  int electionCounter = 0;   // 0 = absent; else an ObjectId ending in this byte
  std::vector<std::pair<std::string, std::string>> tags;
  bool ok = true;
};

std::vector<std::uint8_t> hello(const Hello& h) {
  bson_t* doc = bson_new();
  BSON_APPEND_BOOL(doc, "isWritablePrimary", h.primary);
  if (h.secondary) BSON_APPEND_BOOL(doc, "secondary", true);
  if (h.arbiter) BSON_APPEND_BOOL(doc, "arbiterOnly", true);
  if (!h.setName.empty()) BSON_APPEND_UTF8(doc, "setName", h.setName.c_str());
  if (!h.primaryName.empty()) BSON_APPEND_UTF8(doc, "primary", h.primaryName.c_str());
  if (!h.hosts.empty()) appendList(doc, "hosts", h.hosts);
  if (!h.msg.empty()) BSON_APPEND_UTF8(doc, "msg", h.msg.c_str());
  if (h.setVersion) BSON_APPEND_INT32(doc, "setVersion", h.setVersion);
  if (h.electionCounter) {
    bson_oid_t oid;
    std::memset(oid.bytes, 0x7f, sizeof oid.bytes);
    oid.bytes[11] = static_cast<std::uint8_t>(h.electionCounter);
    BSON_APPEND_OID(doc, "electionId", &oid);
  }
  if (!h.tags.empty()) {
    bson_t tags;
    BSON_APPEND_DOCUMENT_BEGIN(doc, "tags", &tags);
    for (const auto& [k, v] : h.tags) BSON_APPEND_UTF8(&tags, k.c_str(), v.c_str());
    bson_append_document_end(doc, &tags);
  }
  BSON_APPEND_INT32(doc, "maxWireVersion", 21);
  BSON_APPEND_DOUBLE(doc, "ok", h.ok ? 1.0 : 0.0);
  return bytesOf(doc);
}

Hello standalone() {
  Hello h;
  h.primary = true;
  h.setName.clear();
  return h;
}

ServerDescription describe(const std::string& address, const Hello& h, double rtt = 1) {
  const std::vector<std::uint8_t> reply = hello(h);
  return describeHello(address, reply, rtt);
}

std::vector<config::HostPort> seeds(std::initializer_list<std::uint16_t> ports) {
  std::vector<config::HostPort> out;
  for (std::uint16_t port : ports) out.push_back({"h", port});
  return out;
}

const ServerDescription* byAddress(const TopologyState& state, const std::string& address) {
  for (const ServerDescription& s : state.servers()) {
    if (s.address == address) return &s;
  }
  return nullptr;
}

std::vector<std::string> addresses(const TopologyState& state) {
  std::vector<std::string> out;
  for (const ServerDescription& s : state.servers()) out.push_back(s.address);
  return out;
}

Hello primaryOf(std::vector<std::string> hosts, int election = 0) {
  Hello h;
  h.primary = true;
  h.hosts = std::move(hosts);
  if (election) {
    h.setVersion = 1;
    h.electionCounter = election;
  }
  return h;
}

Hello secondaryOf(std::vector<std::string> hosts, std::string primary = {}) {
  Hello h;
  h.secondary = true;
  h.hosts = std::move(hosts);
  h.primaryName = std::move(primary);
  return h;
}

// ---- describeHello ----

TEST(DescribeHello, ServerTypesFromHelloReplies) {
  EXPECT_EQ(describe("h:1", primaryOf({"h:1"})).type, ServerType::kRSPrimary);
  EXPECT_EQ(describe("h:1", secondaryOf({"h:1"})).type, ServerType::kRSSecondary);
  Hello arbiter;
  arbiter.arbiter = true;
  EXPECT_EQ(describe("h:1", arbiter).type, ServerType::kRSArbiter);
  Hello other;  // in a set, neither primary nor secondary (recovering, say)
  EXPECT_EQ(describe("h:1", other).type, ServerType::kRSOther);
  Hello mongos = standalone();
  mongos.msg = "isdbgrid";
  EXPECT_EQ(describe("h:1", mongos).type, ServerType::kMongos);
  EXPECT_EQ(describe("h:1", standalone()).type, ServerType::kStandalone);
  Hello failed = standalone();
  failed.ok = false;
  const ServerDescription d = describe("h:1", failed);
  EXPECT_EQ(d.type, ServerType::kUnknown);
  EXPECT_FALSE(d.error.empty());
}

TEST(DescribeHello, ReadsMembersPrimaryTagsAndElection) {
  Hello h = secondaryOf({"A:1", "b:2"}, "A:1");
  h.tags = {{"dc", "east"}};
  h.setVersion = 3;
  h.electionCounter = 9;
  const ServerDescription d = describe("b:2", h, 4.5);
  EXPECT_EQ(d.setName, "rs0");
  EXPECT_EQ(d.primary, "a:1");  // hosts compare case-insensitively
  EXPECT_EQ(d.hosts, (std::vector<std::string>{"a:1", "b:2"}));
  ASSERT_EQ(d.tags.size(), 1u);
  EXPECT_EQ(d.tags[0].second, "east");
  EXPECT_EQ(d.setVersion, 3);
  EXPECT_EQ(d.electionId.size(), 12u);
  EXPECT_DOUBLE_EQ(d.rttMs, 4.5);
}

// ---- TopologyState ----

TEST(TopologyState, OneHostWithoutReplicaSetIsSingle) {
  TopologyState state(seeds({1}), "", true);
  EXPECT_EQ(state.type(), TopologyType::kSingle);
  ASSERT_EQ(state.servers().size(), 1u);
  EXPECT_EQ(state.servers()[0].address, "h:1");
  EXPECT_EQ(state.servers()[0].id, 0u);
}

TEST(TopologyState, DiscoversMembersFromThePrimary) {
  TopologyState state(seeds({1}), "rs0", false);
  EXPECT_EQ(state.type(), TopologyType::kReplicaSetNoPrimary);
  state.apply(describe("h:1", primaryOf({"h:1", "h:2", "h:3"})));
  EXPECT_EQ(state.type(), TopologyType::kReplicaSetWithPrimary);
  EXPECT_EQ(addresses(state), (std::vector<std::string>{"h:1", "h:2", "h:3"}));
  EXPECT_EQ(byAddress(state, "h:2")->type, ServerType::kUnknown);  // until its own check
  EXPECT_EQ(byAddress(state, "h:3")->id, 2u);
}

TEST(TopologyState, SecondaryListsMembersWhileThereIsNoPrimary) {
  TopologyState state(seeds({2}), "", false);
  state.apply(describe("h:2", secondaryOf({"h:1", "h:2", "h:3"}, "h:1")));
  EXPECT_EQ(state.type(), TopologyType::kReplicaSetNoPrimary);
  EXPECT_EQ(state.setName(), "rs0");  // learned from the first member
  EXPECT_EQ(state.servers().size(), 3u);
}

TEST(TopologyState, StepDownMovesThePrimary) {
  TopologyState state(seeds({1, 2, 3}), "rs0", false);
  state.apply(describe("h:1", primaryOf({"h:1", "h:2", "h:3"})));
  state.apply(describe("h:2", secondaryOf({"h:1", "h:2", "h:3"}, "h:1")));
  state.apply(describe("h:3", secondaryOf({"h:1", "h:2", "h:3"}, "h:1")));
  // h:1 steps down: its next check says secondary; h:2 is elected.
  state.apply(describe("h:1", secondaryOf({"h:1", "h:2", "h:3"})));
  EXPECT_EQ(state.type(), TopologyType::kReplicaSetNoPrimary);
  state.apply(describe("h:2", primaryOf({"h:1", "h:2", "h:3"})));
  EXPECT_EQ(state.type(), TopologyType::kReplicaSetWithPrimary);
  const auto snapshot = state.snapshot(7);
  ASSERT_NE(snapshot->primary(), nullptr);
  EXPECT_EQ(snapshot->primary()->address, "h:2");
  EXPECT_EQ(snapshot->version, 7u);
}

TEST(TopologyState, NewPrimaryDemotesTheOldOneToUnknown) {
  TopologyState state(seeds({1, 2}), "rs0", false);
  state.apply(describe("h:1", primaryOf({"h:1", "h:2"}, 1)));
  state.apply(describe("h:2", primaryOf({"h:1", "h:2"}, 2)));
  EXPECT_EQ(byAddress(state, "h:1")->type, ServerType::kUnknown);
  EXPECT_EQ(byAddress(state, "h:2")->type, ServerType::kRSPrimary);
}

TEST(TopologyState, StalePrimaryFromAnOlderElectionStaysUnknown) {
  TopologyState state(seeds({1, 2}), "rs0", false);
  state.apply(describe("h:2", primaryOf({"h:1", "h:2"}, 5)));
  state.apply(describe("h:1", primaryOf({"h:1", "h:2"}, 4)));  // it has not heard of election 5
  EXPECT_EQ(byAddress(state, "h:1")->type, ServerType::kUnknown);
  EXPECT_NE(byAddress(state, "h:1")->error.find("stale"), std::string::npos);
  EXPECT_EQ(byAddress(state, "h:2")->type, ServerType::kRSPrimary);
}

TEST(TopologyState, MembersThePrimaryNoLongerListsAreRemoved) {
  TopologyState state(seeds({1, 2, 3}), "rs0", false);
  state.apply(describe("h:1", primaryOf({"h:1", "h:2"})));
  EXPECT_EQ(addresses(state), (std::vector<std::string>{"h:1", "h:2"}));
  // Ids are never reused: h:3 coming back keeps its id.
  state.apply(describe("h:1", primaryOf({"h:1", "h:2", "h:3"})));
  EXPECT_EQ(byAddress(state, "h:3")->id, 2u);
}

TEST(TopologyState, ServersOfAnotherSetOrKindAreRemoved) {
  TopologyState state(seeds({1, 2, 3}), "rs0", false);
  Hello wrongSet = secondaryOf({"h:2"});
  wrongSet.setName = "other";
  state.apply(describe("h:2", wrongSet));
  state.apply(describe("h:3", standalone()));
  EXPECT_EQ(addresses(state), (std::vector<std::string>{"h:1"}));
}

TEST(TopologyState, MongosListIsSharded) {
  TopologyState state(seeds({1, 2, 3}), "", false);
  Hello mongos = standalone();
  mongos.msg = "isdbgrid";
  state.apply(describe("h:1", mongos));
  EXPECT_EQ(state.type(), TopologyType::kSharded);
  state.apply(describe("h:2", mongos));
  state.apply(describe("h:3", primaryOf({"h:3"})));  // a replica-set member among mongos: dropped
  EXPECT_EQ(addresses(state), (std::vector<std::string>{"h:1", "h:2"}));
}

TEST(TopologyState, MarkUnknownLosesThePrimary) {
  TopologyState state(seeds({1, 2}), "rs0", false);
  state.apply(describe("h:1", primaryOf({"h:1", "h:2"})));
  EXPECT_TRUE(state.markUnknown(0, "NotWritablePrimary"));
  EXPECT_EQ(state.type(), TopologyType::kReplicaSetNoPrimary);
  EXPECT_FALSE(state.markUnknown(0, "again"));  // already Unknown: no change
}

TEST(TopologyState, RoundTripTimeIsSmoothed) {
  TopologyState state(seeds({1}), "rs0", false);
  state.apply(describe("h:1", primaryOf({"h:1"}), 10));
  state.apply(describe("h:1", primaryOf({"h:1"}), 20));
  EXPECT_DOUBLE_EQ(state.servers()[0].rttMs, 12.0);
}

// ---- selection ----

TopologySnapshot replicaSet() {
  TopologySnapshot s;
  s.type = TopologyType::kReplicaSetWithPrimary;
  auto server = [](std::size_t id, ServerType type, double rtt, std::vector<std::pair<std::string, std::string>> tags) {
    ServerDescription d;
    d.id = id;
    d.address = "h:" + std::to_string(id);
    d.type = type;
    d.rttMs = rtt;
    d.tags = std::move(tags);
    return d;
  };
  s.servers = {server(0, ServerType::kRSPrimary, 1, {{"dc", "a"}}), server(1, ServerType::kRSSecondary, 2, {{"dc", "a"}}),
               server(2, ServerType::kRSSecondary, 5, {{"dc", "b"}}),
               server(3, ServerType::kRSSecondary, 500, {{"dc", "b"}}), server(4, ServerType::kRSArbiter, 1, {}),
               server(5, ServerType::kUnknown, -1, {})};
  return s;
}

Selection read(ReadMode mode, std::vector<std::vector<std::pair<std::string, std::string>>> tags = {}) {
  Selection s;
  s.write = false;
  s.readPreference.mode = mode;
  s.readPreference.tagSets = std::move(tags);
  return s;
}

// Every server id a selection can pick (spinning through the candidates).
std::vector<std::size_t> picks(const TopologySnapshot& snapshot, const Selection& selection) {
  std::vector<std::size_t> out;
  for (std::uint64_t spin = 0; spin < 8; ++spin) {
    auto index = selectServer(snapshot, selection, spin, 15);
    if (!index) continue;
    const std::size_t id = snapshot.servers[*index].id;
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(SelectServer, ReplicaSetTable) {
  const TopologySnapshot rs = replicaSet();
  TopologySnapshot noPrimary = rs;
  noPrimary.type = TopologyType::kReplicaSetNoPrimary;
  noPrimary.servers[0].type = ServerType::kUnknown;
  struct Case {
    const char* name;
    const TopologySnapshot& snapshot;
    Selection selection;
    std::vector<std::size_t> expected;
  };
  const Case cases[] = {
      {"write", rs, Selection{}, {0}},
      {"write without primary", noPrimary, Selection{}, {}},
      {"primary", rs, read(ReadMode::kPrimary), {0}},
      // The 500 ms secondary is outside the 15 ms latency window.
      {"secondary", rs, read(ReadMode::kSecondary), {1, 2}},
      {"secondaryPreferred", rs, read(ReadMode::kSecondaryPreferred), {1, 2}},
      {"secondaryPreferred tags", rs, read(ReadMode::kSecondaryPreferred, {{{"dc", "b"}}}), {2}},
      {"secondaryPreferred no tag match", rs, read(ReadMode::kSecondaryPreferred, {{{"dc", "z"}}}), {0}},
      {"secondary tag fallback", rs, read(ReadMode::kSecondary, {{{"dc", "z"}}, {}}), {1, 2}},
      {"secondary no tag match", rs, read(ReadMode::kSecondary, {{{"dc", "z"}}}), {}},
      {"primaryPreferred", rs, read(ReadMode::kPrimaryPreferred), {0}},
      {"primaryPreferred without primary", noPrimary, read(ReadMode::kPrimaryPreferred), {1, 2}},
      {"nearest", rs, read(ReadMode::kNearest), {0, 1, 2}},
      {"nearest tags", rs, read(ReadMode::kNearest, {{{"dc", "a"}}}), {0, 1}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(picks(c.snapshot, c.selection), c.expected) << c.name;
  }
}

TEST(SelectServer, MongosListSpreadsOverEveryRouter) {
  TopologySnapshot sharded;
  sharded.type = TopologyType::kSharded;
  for (std::size_t id = 0; id < 3; ++id) {
    ServerDescription d;
    d.id = id;
    d.type = id == 2 ? ServerType::kUnknown : ServerType::kMongos;
    d.rttMs = 1;
    sharded.servers.push_back(d);
  }
  EXPECT_EQ(picks(sharded, Selection{}), (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(picks(sharded, read(ReadMode::kSecondary)), (std::vector<std::size_t>{0, 1}));
  TopologySnapshot unknown;
  unknown.type = TopologyType::kUnknown;
  unknown.servers = sharded.servers;
  EXPECT_EQ(picks(unknown, Selection{}), (std::vector<std::size_t>{}));
}

// ---- request facts ----

TEST(RequestFacts, ReadsWhatSelectionAndAffinityNeed) {
  bson_t* doc = bson_new();
  BSON_APPEND_UTF8(doc, "find", "c");
  bson_t pref;
  BSON_APPEND_DOCUMENT_BEGIN(doc, "$readPreference", &pref);
  BSON_APPEND_UTF8(&pref, "mode", "secondaryPreferred");
  bson_t tags;
  bson_t set;
  BSON_APPEND_ARRAY_BEGIN(&pref, "tags", &tags);
  BSON_APPEND_DOCUMENT_BEGIN(&tags, "0", &set);
  BSON_APPEND_UTF8(&set, "dc", "b");
  bson_append_document_end(&tags, &set);
  bson_append_array_end(&pref, &tags);
  bson_append_document_end(doc, &pref);
  bson_t lsid;
  const std::uint8_t uuid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  BSON_APPEND_DOCUMENT_BEGIN(doc, "lsid", &lsid);
  BSON_APPEND_BINARY(&lsid, "id", BSON_SUBTYPE_UUID, uuid, 16);
  bson_append_document_end(doc, &lsid);
  BSON_APPEND_INT64(doc, "txnNumber", 7);
  BSON_APPEND_BOOL(doc, "autocommit", false);
  BSON_APPEND_BOOL(doc, "startTransaction", true);
  BSON_APPEND_INT32(doc, "maxTimeMS", 250);
  const std::vector<std::uint8_t> body = bytesOf(doc);
  const RequestFacts facts = readRequestFacts("find", body);
  EXPECT_TRUE(facts.hasReadPreference);
  EXPECT_EQ(facts.readPreference.mode, ReadMode::kSecondaryPreferred);
  ASSERT_EQ(facts.readPreference.tagSets.size(), 1u);
  EXPECT_EQ(facts.readPreference.tagSets[0][0].second, "b");
  EXPECT_EQ(facts.lsid.size(), 16u);
  EXPECT_EQ(facts.txnNumber, 7);
  EXPECT_TRUE(facts.autocommitFalse);
  EXPECT_TRUE(facts.startTransaction);
  EXPECT_EQ(facts.maxTimeMs, 250);
}

TEST(RequestFacts, CursorIdsAndAggregateOutput) {
  bson_t* getMore = BCON_NEW("getMore", BCON_INT64(42), "collection", "c");
  EXPECT_EQ(readRequestFacts("getMore", bytesOf(getMore)).cursorId, 42);
  bson_t* kill = BCON_NEW("killCursors", "c", "cursors", "[", BCON_INT64(43), BCON_INT64(44), "]");
  EXPECT_EQ(readRequestFacts("killCursors", bytesOf(kill)).cursorId, 43);
  bson_t* out = BCON_NEW("aggregate", "c", "pipeline", "[", "{", "$match", "{", "}", "}", "{", "$out", "d", "}", "]");
  EXPECT_TRUE(readRequestFacts("aggregate", bytesOf(out)).writesOut);
  bson_t* plain = BCON_NEW("aggregate", "c", "pipeline", "[", "{", "$match", "{", "}", "}", "]");
  EXPECT_FALSE(readRequestFacts("aggregate", bytesOf(plain)).writesOut);
}

TEST(RequestFacts, MaxTimeMsOfReadsOnlyTheTopLevel) {
  EXPECT_EQ(maxTimeMsOf(bytesOf(BCON_NEW("find", "c", "maxTimeMS", BCON_INT32(200)))), 200);
  EXPECT_EQ(maxTimeMsOf(bytesOf(BCON_NEW("find", "c", "maxTimeMS", BCON_DOUBLE(1500.0)))), 1500);
  EXPECT_EQ(maxTimeMsOf(bytesOf(BCON_NEW("find", "c", "maxTimeMS", BCON_INT64(-3)))), 0);
  EXPECT_EQ(maxTimeMsOf(bytesOf(BCON_NEW("find", "c", "maxTimeMS", "soon"))), 0);
  EXPECT_EQ(maxTimeMsOf(bytesOf(BCON_NEW("find", "c"))), 0);
  // Nested (a filter field named maxTimeMS) is not the command's.
  EXPECT_EQ(maxTimeMsOf(bytesOf(BCON_NEW("find", "c", "filter", "{", "maxTimeMS", BCON_INT32(9), "}"))), 0);
}

TEST(SelectionFor, WritesGoToThePrimaryReadsFollowThePreference) {
  ReadPreference uriDefault;
  uriDefault.mode = ReadMode::kSecondaryPreferred;
  RequestFacts none;
  EXPECT_TRUE(selectionFor("insert", none, uriDefault).write);
  EXPECT_FALSE(selectionFor("find", none, uriDefault).write);  // the URI default
  EXPECT_EQ(selectionFor("find", none, uriDefault).readPreference.mode, ReadMode::kSecondaryPreferred);
  EXPECT_TRUE(selectionFor("find", none, ReadPreference{}).write);  // primary by default
  RequestFacts explicitRead;
  explicitRead.hasReadPreference = true;
  explicitRead.readPreference.mode = ReadMode::kNearest;
  EXPECT_EQ(selectionFor("count", explicitRead, ReadPreference{}).readPreference.mode, ReadMode::kNearest);
  RequestFacts aggregateOut;
  aggregateOut.writesOut = true;
  EXPECT_TRUE(selectionFor("aggregate", aggregateOut, uriDefault).write);
  RequestFacts inTransaction = explicitRead;
  inTransaction.autocommitFalse = true;
  EXPECT_TRUE(selectionFor("find", inTransaction, uriDefault).write);
}

TEST(RetryLabel, FollowsTheRetryableWritesAndTransactionsSpecifications) {
  bson_t* retryableWrite = BCON_NEW("insert", "c", "txnNumber", BCON_INT64(1));
  EXPECT_EQ(retryLabelFor("insert", bytesOf(retryableWrite)), RetryLabel::kRetryableWrite);
  bson_t* plainWrite = BCON_NEW("insert", "c");
  EXPECT_EQ(retryLabelFor("insert", bytesOf(plainWrite)), RetryLabel::kNone);
  bson_t* readCommand = BCON_NEW("find", "c");
  EXPECT_EQ(retryLabelFor("find", bytesOf(readCommand)), RetryLabel::kNone);
  bson_t* statement = BCON_NEW("insert", "c", "txnNumber", BCON_INT64(1), "autocommit", BCON_BOOL(false));
  EXPECT_EQ(retryLabelFor("insert", bytesOf(statement)), RetryLabel::kTransientTransaction);
  bson_t* commit = BCON_NEW("commitTransaction", BCON_INT32(1), "txnNumber", BCON_INT64(1), "autocommit",
                            BCON_BOOL(false));
  EXPECT_EQ(retryLabelFor("commitTransaction", bytesOf(commit)), RetryLabel::kRetryableWrite);
  EXPECT_EQ(retryLabelFor("insert", {}), RetryLabel::kNone);
}

TEST(ReplyErrors, StateChangeCodesOnlyWhenOkIsZero) {
  bson_t* failed = BCON_NEW("ok", BCON_DOUBLE(0), "errmsg", "not primary", "code", BCON_INT32(10107));
  EXPECT_EQ(errorCodeOf(bytesOf(failed)), 10107);
  bson_t* fine = BCON_NEW("n", BCON_INT32(1), "ok", BCON_DOUBLE(1), "code", BCON_INT32(10107));
  EXPECT_EQ(errorCodeOf(bytesOf(fine)), 0);
  for (int code : {10107, 13435, 13436, 11600, 11602, 189, 91}) EXPECT_TRUE(isStateChangeError(code)) << code;
  for (int code : {0, 11000, 26, 50}) EXPECT_FALSE(isStateChangeError(code)) << code;
}

// ---- circuit breaker ----

TEST(CircuitBreaker, OpensFailsFastThenLetsOneProbeThrough) {
  using namespace std::chrono_literals;
  CircuitBreaker breaker(3, 1000);
  const auto t0 = CircuitBreaker::Clock::now();
  EXPECT_FALSE(breaker.onFailure(t0));
  EXPECT_FALSE(breaker.onFailure(t0));
  EXPECT_EQ(breaker.admit(t0), CircuitBreaker::Admission::kAllow);
  EXPECT_TRUE(breaker.onFailure(t0));  // the third consecutive failure opens it
  EXPECT_EQ(breaker.state(t0 + 999ms), CircuitBreaker::State::kOpen);
  EXPECT_EQ(breaker.admit(t0 + 999ms), CircuitBreaker::Admission::kReject);
  EXPECT_EQ(breaker.state(t0 + 1s), CircuitBreaker::State::kHalfOpen);
  EXPECT_EQ(breaker.admit(t0 + 1s), CircuitBreaker::Admission::kProbe);
  EXPECT_EQ(breaker.admit(t0 + 1s), CircuitBreaker::Admission::kReject);  // one probe at a time
  EXPECT_TRUE(breaker.onFailure(t0 + 1100ms));  // the probe failed: open for another cool-down
  EXPECT_EQ(breaker.state(t0 + 2s), CircuitBreaker::State::kOpen);
  EXPECT_EQ(breaker.admit(t0 + 2100ms), CircuitBreaker::Admission::kProbe);
  EXPECT_TRUE(breaker.onSuccess());
  EXPECT_EQ(breaker.state(t0 + 2100ms), CircuitBreaker::State::kClosed);
  EXPECT_EQ(breaker.consecutiveFailures(), 0u);
}

TEST(CircuitBreaker, SuccessResetsTheCountAndZeroThresholdDisables) {
  CircuitBreaker breaker(2, 1000);
  breaker.onFailure();
  breaker.onSuccess();
  EXPECT_FALSE(breaker.onFailure());  // not consecutive
  CircuitBreaker off(0, 1000);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(off.onFailure());
  EXPECT_EQ(off.state(), CircuitBreaker::State::kClosed);
}

// ---- affinity ----

TEST(AffinityTable, RemembersForgetsAndExpires) {
  using namespace std::chrono_literals;
  AffinityTable table(1000ms);
  const auto t0 = AffinityTable::Clock::now();
  const auto cursor = AffinityTable::cursorKey(1, 77);
  table.put(cursor, 2, t0);
  EXPECT_EQ(table.get(cursor, t0 + 500ms), 2u);
  EXPECT_EQ(table.get(AffinityTable::cursorKey(0, 77), t0), std::nullopt);  // another deployment
  EXPECT_EQ(table.get(cursor, t0 + 1400ms), 2u);  // the last use restarted the idle clock
  EXPECT_EQ(table.get(cursor, t0 + 2500ms), std::nullopt);
  table.put(cursor, 1, t0);
  table.erase(cursor);
  EXPECT_EQ(table.get(cursor, t0), std::nullopt);
  const std::uint8_t lsidA[16] = {1};
  const std::uint8_t lsidB[16] = {2};
  table.put(AffinityTable::transactionKey(0, lsidA, 1), 3, t0);
  EXPECT_EQ(table.get(AffinityTable::transactionKey(0, lsidA, 1), t0), 3u);
  EXPECT_EQ(table.get(AffinityTable::transactionKey(0, lsidA, 2), t0), std::nullopt);
  EXPECT_EQ(table.get(AffinityTable::transactionKey(0, lsidB, 1), t0), std::nullopt);
}

TEST(AffinityTable, NeverGrowsWithoutBound) {
  AffinityTable table(std::chrono::hours(1), 100);
  for (std::int64_t id = 1; id <= 100'000; ++id) table.put(AffinityTable::cursorKey(0, id), 0);
  EXPECT_LE(table.size(), 16u * 100u);
}

}  // namespace
}  // namespace mongogate::proxy
