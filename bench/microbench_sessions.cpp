// Per-request cost of the session rules with several deployments (proxy/sessions.h):
// reading the session facts of a command, recording it in the table, making its causal
// fields fit for the target, and learning the times of a reply. Figures only. Also the
// request deadline's maxTimeMS lookup (proxy/topology.h maxTimeMsOf), paid by every request
// to a single-server deployment.
#include <benchmark/benchmark.h>
#include <bson/bson.h>

#include <cstring>
#include <vector>

#include "proxy/sessions.h"
#include "proxy/topology.h"

namespace {

using mongogate::proxy::SessionFacts;
using mongogate::proxy::SessionTable;

std::vector<std::uint8_t> bytesOf(bson_t* b) {
  std::vector<std::uint8_t> v(bson_get_data(b), bson_get_data(b) + b->len);
  bson_destroy(b);
  return v;
}

void appendClusterTime(bson_t* doc, std::uint32_t increment, std::int64_t keyId) {
  bson_t ct, sig;
  BSON_APPEND_DOCUMENT_BEGIN(doc, "$clusterTime", &ct);
  bson_append_timestamp(&ct, "clusterTime", -1, 1'700'000'000, increment);
  BSON_APPEND_DOCUMENT_BEGIN(&ct, "signature", &sig);
  std::uint8_t hash[20] = {};
  bson_append_binary(&sig, "hash", -1, BSON_SUBTYPE_BINARY, hash, sizeof hash);
  BSON_APPEND_INT64(&sig, "keyId", keyId);
  bson_append_document_end(&ct, &sig);
  bson_append_document_end(doc, &ct);
}

// A driver's find: filter, lsid, $clusterTime, causal readConcern, $db.
std::vector<std::uint8_t> causalFind() {
  bson_t b = BSON_INITIALIZER, filter, lsid, rc;
  BSON_APPEND_UTF8(&b, "find", "abc_products");
  BSON_APPEND_DOCUMENT_BEGIN(&b, "filter", &filter);
  BSON_APPEND_INT32(&filter, "_id", 42);
  bson_append_document_end(&b, &filter);
  BSON_APPEND_DOCUMENT_BEGIN(&b, "lsid", &lsid);
  std::uint8_t id[16];
  std::memset(id, 7, sizeof id);
  bson_append_binary(&lsid, "id", -1, BSON_SUBTYPE_UUID, id, 16);
  bson_append_document_end(&b, &lsid);
  appendClusterTime(&b, 2'000'001, 2);
  BSON_APPEND_DOCUMENT_BEGIN(&b, "readConcern", &rc);
  bson_append_timestamp(&rc, "afterClusterTime", -1, 1'700'000'000, 2'000'001);
  bson_append_document_end(&b, &rc);
  BSON_APPEND_UTF8(&b, "$db", "main_db");
  return bytesOf(&b);
}

void BM_ReadSessionFacts(benchmark::State& state) {
  const auto body = causalFind();
  for (auto _ : state) {
    SessionFacts facts;
    benchmark::DoNotOptimize(mongogate::proxy::readSessionFacts(body, facts));
  }
}
BENCHMARK(BM_ReadSessionFacts);

void BM_NoteCommand(benchmark::State& state) {
  const auto body = causalFind();
  SessionFacts facts;
  mongogate::proxy::readSessionFacts(body, facts);
  SessionTable table(2, std::chrono::minutes(30));
  for (auto _ : state) benchmark::DoNotOptimize(table.noteCommand(*facts.key, 0, facts));
}
BENCHMARK(BM_NoteCommand);

void BM_RewriteCausalFields(benchmark::State& state) {
  const auto body = causalFind();
  SessionFacts facts;
  mongogate::proxy::readSessionFacts(body, facts);
  SessionTable table(2, std::chrono::minutes(30));
  bson_t reply = BSON_INITIALIZER;
  bson_append_timestamp(&reply, "operationTime", -1, 1'700'000'000, 1'000'001);
  appendClusterTime(&reply, 1'000'001, 1);
  const auto replyBody = bytesOf(&reply);
  mongogate::proxy::noteReplyTimes(table, facts, 0, replyBody);
  std::vector<std::uint8_t> out;
  for (auto _ : state) benchmark::DoNotOptimize(mongogate::proxy::rewriteCausalFields(table, facts, 0, body, out));
}
BENCHMARK(BM_RewriteCausalFields);

// A find reply of `range(0)` documents with operationTime and $clusterTime.
void BM_NoteReplyTimes(benchmark::State& state) {
  bson_t b = BSON_INITIALIZER, cursor, batch;
  BSON_APPEND_DOCUMENT_BEGIN(&b, "cursor", &cursor);
  BSON_APPEND_ARRAY_BEGIN(&cursor, "firstBatch", &batch);
  for (int i = 0; i < state.range(0); ++i) {
    bson_t doc;
    const std::string key = std::to_string(i);
    BSON_APPEND_DOCUMENT_BEGIN(&batch, key.c_str(), &doc);
    BSON_APPEND_INT32(&doc, "_id", i);
    BSON_APPEND_UTF8(&doc, "name", "a product with a name of some length");
    bson_append_document_end(&batch, &doc);
  }
  bson_append_array_end(&cursor, &batch);
  BSON_APPEND_INT64(&cursor, "id", 0);
  BSON_APPEND_UTF8(&cursor, "ns", "pos_db_1.abc_products");
  bson_append_document_end(&b, &cursor);
  BSON_APPEND_DOUBLE(&b, "ok", 1.0);
  bson_append_timestamp(&b, "operationTime", -1, 1'700'000'000, 1'000'002);
  appendClusterTime(&b, 1'000'002, 1);
  const auto reply = bytesOf(&b);
  const auto body = causalFind();
  SessionFacts facts;
  mongogate::proxy::readSessionFacts(body, facts);
  SessionTable table(2, std::chrono::minutes(30));
  for (auto _ : state) mongogate::proxy::noteReplyTimes(table, facts, 0, reply);
}
BENCHMARK(BM_NoteReplyTimes)->Arg(1)->Arg(100);

// Arg 0: the driver's find as is; arg 1: with maxTimeMS as its last key.
void BM_MaxTimeMsOf(benchmark::State& state) {
  std::vector<std::uint8_t> body = causalFind();
  if (state.range(0) != 0) {
    bson_t* doc = bson_new_from_data(body.data(), body.size());
    BSON_APPEND_INT32(doc, "maxTimeMS", 200);
    body = bytesOf(doc);
  }
  for (auto _ : state) benchmark::DoNotOptimize(mongogate::proxy::maxTimeMsOf(body));
}
BENCHMARK(BM_MaxTimeMsOf)->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
