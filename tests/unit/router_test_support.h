// tests/unit/router_test_support.h — the routing fixture shared by router_request_test,
// router_namespace_test and router_assignment_test: one RoutingConfig and registry that
// exercise every rule, OP_MSG frames built from extended JSON, and readable renderings
// (canonical extended JSON, one-line mappings) for the assertions; router_reply_test and
// router_fanout_test use the renderings.
//
// Fixture: main database "main_db", pos_db_1..5 with pos_db_4 and pos_db_5 on "shard2",
// master-admin on "masteradmin"; stores abc -> 1, abc_x -> 4 (a longer prefix that
// overlaps abc), xyz -> 4, old -> 0 (not moved), m2 -> 2.
#pragma once

#include <bson/bson.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "router/routing.h"
#include "router/store_registry.h"
#include "wire/op_msg.h"
#include "wire_test_support.h"

namespace mongogate::router::routing_test {

using wire::test::ByteVec;

inline RoutingConfig fixtureConfig() {
  RoutingConfig c;
  c.mainUpstream = "main";
  c.mainDatabase = "main_db";
  c.databaseCount = 5;
  c.storeDatabaseUpstreams = {"", "", "", "shard2", "shard2"};
  c.masterAdminUpstream = "masteradmin";
  return c;
}

inline std::vector<StoreRecord> fixtureStores() {
  return {
      {"s-abc", "Store ABC", "abc", 1}, {"s-abcx", "Store ABC X", "abc_x", 4},
      {"s-xyz", "Store XYZ", "xyz", 4}, {"s-old", "Old Store", "old", 0},
      {"s-m2", "Store M2", "m2", 2},
  };
}

// Canonical extended JSON of a BSON document ("<not BSON>" when it is not one).
inline std::string jsonOf(wire::Bytes bytes) {
  bson_t doc;
  if (bytes.empty() || !bson_init_static(&doc, bytes.data(), bytes.size())) return "<not BSON>";
  char* json = bson_as_canonical_extended_json(&doc, nullptr);
  if (json == nullptr) return "<not BSON>";
  std::string out(json);
  bson_free(json);
  return out;
}
inline std::string jsonOf(const ByteVec& bytes) { return jsonOf(wire::Bytes(bytes)); }

// The canonical form of relaxed JSON written in a test.
inline std::string canonical(const std::string& json) { return jsonOf(wire::test::bson(json)); }

// The documents of a kind-1 payload, each as canonical JSON.
inline std::vector<std::string> jsonOfDocuments(wire::Bytes documents) {
  std::vector<std::string> out;
  std::size_t off = 0;
  while (off + 4 <= documents.size()) {
    const auto len = static_cast<std::size_t>(wire::loadInt32LE(documents.data() + off));
    if (len < 5 || len > documents.size() - off) {
      out.push_back("<bad sequence>");
      break;
    }
    out.push_back(jsonOf(documents.subspan(off, len)));
    off += len;
  }
  return out;
}

struct Sequence {
  std::string identifier;
  std::vector<std::string> documents;  // relaxed extended JSON
};

// An OP_MSG frame (and its parsed view, which borrows from it).
struct Request {
  ByteVec frame;
  wire::OpMsgView view;
};

inline Request makeRequest(const std::string& body, const std::vector<Sequence>& sequences = {}) {
  wire::test::FrameWriter w;
  w.header(7, 0, wire::OpCode::kMsg).u32(0).u8(0).raw(wire::test::bson(body));
  for (const auto& s : sequences) {
    std::vector<ByteVec> docs;
    for (const auto& d : s.documents) docs.push_back(wire::test::bson(d));
    w.raw(wire::test::sequenceSection(s.identifier, docs));
  }
  Request r;
  r.frame = w.done();
  const auto parsed = wire::parseOpMsg(wire::Bytes(r.frame));
  EXPECT_TRUE(parsed.ok()) << "test request does not parse: " << wire::describe(parsed.error.status);
  r.view = parsed.value;
  return r;
}

// "pos_db_1.abc_orders <- main_db.abc_orders r2 abc" (database-level: no ".coll").
inline std::string describeMapping(const NamespaceMapping& m) {
  auto ns = [](const std::string& db, const std::string& coll) {
    return coll.empty() ? db : db + "." + coll;
  };
  std::string s = ns(m.physicalDatabase, m.physicalCollection) + " <- " +
                  ns(m.logicalDatabase, m.logicalCollection) + " r" + std::to_string(m.rule);
  if (!m.storePrefix.empty()) s += " " + m.storePrefix;
  return s;
}

inline std::vector<std::string> describeMappings(const std::vector<NamespaceMapping>& mappings) {
  std::vector<std::string> out;
  for (const auto& m : mappings) out.push_back(describeMapping(m));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace mongogate::router::routing_test
