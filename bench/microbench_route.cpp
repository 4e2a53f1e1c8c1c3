// bench/microbench_route.cpp — the per-message CPU cost of mongogate's request path without
// sockets: parse (wire::parseOpMsg, full validation as the client session does) + route
// (router::routeCommand) + rewrite (the new frame built as the session builds it), and the
// reply direction (parse without validation + router::planReplySplice + the gather list), on the POS
// example of the README: main database main_db, pos_db_1..5 (4 and 5 on shard2), 100 stores
// s000..s099 at 20 per database.
//
// Figures only, no assertions; not a ctest test. Run e.g.
//   build/bench/microbench_route --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <bson/bson.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "router/routing.h"
#include "router/store_registry.h"
#include "wire/builder.h"
#include "wire/op_msg.h"

namespace {

namespace wire = mongogate::wire;
namespace router = mongogate::router;

router::RoutingConfig posConfig() {
  router::RoutingConfig c;
  c.mainUpstream = "main";
  c.mainDatabase = "main_db";
  c.databasePrefix = "pos_db";
  c.databaseCount = 5;
  c.storesPerDatabase = 20;
  c.storeDatabaseUpstreams = {"", "", "", "shard2", "shard2"};
  c.masterAdminUpstream = "masteradmin";
  return c;
}

// s000..s099, 20 per database: s042 lives in pos_db_3 on main.
const router::RegistrySnapshot& posRegistry() {
  static const router::RegistrySnapshot snapshot = [] {
    std::vector<router::StoreRecord> stores;
    for (int i = 0; i < 100; ++i) {
      char prefix[8];
      std::snprintf(prefix, sizeof prefix, "s%03d", i);
      char id[32];
      std::snprintf(id, sizeof id, "65a1%020x", i);
      stores.push_back({id, std::string("Store ") + prefix, prefix, i / 20 + 1});
    }
    return router::RegistrySnapshot(std::move(stores), 1);
  }();
  return snapshot;
}

std::vector<std::uint8_t> bytesOf(const bson_t* doc) {
  const std::uint8_t* data = bson_get_data(doc);
  return {data, data + doc->len};
}

// What a driver sends for collection.find({_id: 4242}).limit(1): the command, the
// session id and cluster time a driver adds, and $db.
std::vector<std::uint8_t> findFrame(const char* collection) {
  bson_t body = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&body, "find", collection);
  bson_t filter;
  BSON_APPEND_DOCUMENT_BEGIN(&body, "filter", &filter);
  BSON_APPEND_INT32(&filter, "_id", 4242);
  bson_append_document_end(&body, &filter);
  BSON_APPEND_INT32(&body, "limit", 1);
  BSON_APPEND_BOOL(&body, "singleBatch", true);
  bson_t lsid;
  BSON_APPEND_DOCUMENT_BEGIN(&body, "lsid", &lsid);
  const std::uint8_t uuid[16] = {0x6b, 0x1f, 0x4a, 0x2e, 0x11, 0x22, 0x43, 0x44,
                                 0x95, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc};
  BSON_APPEND_BINARY(&lsid, "id", BSON_SUBTYPE_UUID, uuid, sizeof uuid);
  bson_append_document_end(&body, &lsid);
  BSON_APPEND_UTF8(&body, "$db", "main_db");
  std::vector<std::uint8_t> frame;
  wire::appendOpMsg(frame, 7, 0, 0, bytesOf(&body));
  bson_destroy(&body);
  return frame;
}

// insert {insert: COLL, ordered: true, $db} + a "documents" sequence of one small document.
std::vector<std::uint8_t> insertFrame(const char* collection) {
  bson_t body = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&body, "insert", collection);
  BSON_APPEND_BOOL(&body, "ordered", true);
  BSON_APPEND_UTF8(&body, "$db", "main_db");
  bson_t doc = BSON_INITIALIZER;
  bson_oid_t oid;
  bson_oid_init_from_string(&oid, "65a1000000000000000000aa");
  BSON_APPEND_OID(&doc, "_id", &oid);
  BSON_APPEND_UTF8(&doc, "sku", "SKU-000123");
  BSON_APPEND_INT32(&doc, "qty", 7);
  const std::vector<std::uint8_t> bodyBytes = bytesOf(&body);
  const std::vector<std::uint8_t> docBytes = bytesOf(&doc);
  const wire::SequenceOut documents{"documents", docBytes};
  std::vector<std::uint8_t> frame;
  wire::appendOpMsgWithSequences(frame, 8, 0, 0, bodyBytes, {&documents, 1});
  bson_destroy(&doc);
  bson_destroy(&body);
  return frame;
}

// The upstream's reply to a find: {cursor: {firstBatch: [docs x K], id: 0, ns}, ok: 1}.
std::vector<std::uint8_t> findReplyFrame(const char* ns, int documents) {
  bson_t body = BSON_INITIALIZER;
  bson_t cursor, batch;
  BSON_APPEND_DOCUMENT_BEGIN(&body, "cursor", &cursor);
  BSON_APPEND_ARRAY_BEGIN(&cursor, "firstBatch", &batch);
  for (int i = 0; i < documents; ++i) {
    char key[16];
    std::snprintf(key, sizeof key, "%d", i);
    bson_t doc;
    BSON_APPEND_DOCUMENT_BEGIN(&batch, key, &doc);
    BSON_APPEND_INT32(&doc, "_id", i);
    BSON_APPEND_UTF8(&doc, "sku", "SKU-000123");
    BSON_APPEND_UTF8(&doc, "name", "A product with a reasonably long name");
    BSON_APPEND_INT32(&doc, "qty", 7);
    BSON_APPEND_DOUBLE(&doc, "price", 12.5);
    bson_append_document_end(&batch, &doc);
  }
  bson_append_array_end(&cursor, &batch);
  BSON_APPEND_INT64(&cursor, "id", 0);
  BSON_APPEND_UTF8(&cursor, "ns", ns);
  bson_append_document_end(&body, &cursor);
  BSON_APPEND_DOUBLE(&body, "ok", 1.0);
  std::vector<std::uint8_t> frame;
  wire::appendOpMsg(frame, 90, 7, 0, bytesOf(&body));
  bson_destroy(&body);
  return frame;
}

// The client session's request path for one forwarded command, with its buffers reused
// from message to message as the session reuses them.
struct RequestPath {
  router::RoutingConfig config = posConfig();
  router::AssignmentState assignment;
  router::RoutedCommand route;
  std::vector<std::uint8_t> rewritten;

  // Returns the bytes that would be forwarded.
  wire::Bytes handle(wire::Bytes frame) {
    const auto parsed = wire::parseOpMsg(frame);
    if (!parsed.ok()) std::abort();
    const wire::OpMsgView& message = parsed.value;
    router::routeCommand(config, posRegistry(), assignment, message, route);
    if (route.refusal) std::abort();
    if (!route.bodyRewritten && route.rewrittenSequences.empty()) return frame;
    const wire::Bytes body = route.bodyRewritten ? wire::Bytes(route.body) : message.body;
    std::array<wire::SequenceOut, wire::OpMsgView::kMaxSequences> sequences{};
    std::size_t count = 0;
    for (const wire::DocumentSequence& sequence : message.documentSequences()) {
      wire::SequenceOut out{sequence.identifier, sequence.documents};
      for (const auto& [identifier, documents] : route.rewrittenSequences) {
        if (identifier == sequence.identifier) out.documents = documents;
      }
      sequences[count++] = out;
    }
    rewritten.clear();
    wire::appendOpMsgWithSequences(rewritten, message.header.requestId, 0, message.flags, body,
                                   {sequences.data(), count});
    return rewritten;
  }
};

void requestBenchmark(benchmark::State& state, const std::vector<std::uint8_t>& frame, bool expectRewrite) {
  RequestPath path;
  const wire::Bytes out = path.handle(frame);
  if ((out.data() != frame.data()) != expectRewrite) {
    state.SkipWithError("the route did not rewrite as expected");
    return;
  }
  for (auto _ : state) {
    wire::Bytes forwarded = path.handle(frame);
    benchmark::DoNotOptimize(forwarded.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::to_string(frame.size()) + " B in, " + std::to_string(out.size()) + " B out");
}

void BM_ParseOnly_Find(benchmark::State& state) {
  const std::vector<std::uint8_t> frame = findFrame("s042_products");
  for (auto _ : state) {
    auto parsed = wire::parseOpMsg(frame);
    benchmark::DoNotOptimize(parsed);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseOnly_Find);

// The typical case: a store collection, rule 2, $db rewritten to pos_db_3.
void BM_ParseRouteRewrite_FindStore(benchmark::State& state) {
  requestBenchmark(state, findFrame("s042_products"), true);
}
BENCHMARK(BM_ParseRouteRewrite_FindStore);

// Rule 4: main_db.users goes to main unchanged; the client's frame is forwarded as is.
void BM_ParseRouteRewrite_FindPassThrough(benchmark::State& state) {
  requestBenchmark(state, findFrame("users"), false);
}
BENCHMARK(BM_ParseRouteRewrite_FindPassThrough);

void BM_ParseRouteRewrite_InsertStore(benchmark::State& state) {
  requestBenchmark(state, insertFrame("s042_products"), true);
}
BENCHMARK(BM_ParseRouteRewrite_InsertStore);

// The reply direction as the session runs it: cursor.ns pos_db_3.s042_products ->
// main_db.s042_products planned as edits of the upstream's bytes (router::planReplySplice)
// and laid out for one gather write (wire::spliceOpMsgBodyEdits): the batch is neither
// walked nor copied, so the cost does not grow with the reply's size.
void replyBenchmark(benchmark::State& state, int documents) {
  RequestPath path;
  const std::vector<std::uint8_t> request = findFrame("s042_products");
  path.handle(request);
  const std::vector<std::uint8_t> reply = findReplyFrame("pos_db_3.s042_products", documents);
  router::ReplySplice splice;
  std::array<std::uint8_t, 20> head{};
  for (auto _ : state) {
    const auto parsed = wire::parseOpMsg(reply, {.verifyChecksum = false, .validateBson = false});
    if (!parsed.ok() || router::planReplySplice(path.route, parsed.value.body, splice) !=
                            router::ReplySplicePlan::kSpliced) {
      state.SkipWithError("the reply was not spliced");
      return;
    }
    const wire::MsgHeader& header = parsed.value.header;
    const wire::GatherList pieces =
        wire::spliceOpMsgBodyEdits(parsed.value, splice.view(), header.requestId, header.responseTo, head);
    benchmark::DoNotOptimize(pieces.count);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::to_string(reply.size()) + " B reply");
}

void BM_ReplyRewrite_Find1(benchmark::State& state) { replyBenchmark(state, 1); }
BENCHMARK(BM_ReplyRewrite_Find1);

void BM_ReplyRewrite_Find100(benchmark::State& state) { replyBenchmark(state, 100); }
BENCHMARK(BM_ReplyRewrite_Find100);

}  // namespace

BENCHMARK_MAIN();
