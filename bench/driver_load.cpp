// bench/driver_load.cpp — the benchmark's op mix driven through a real driver (libmongoc), as a
// cross-check of bench/loadgen.cpp.
//
// Promise: against a MongoDB URI, runs C threads, each holding one client popped from a
// mongoc_client_pool_t of maxPoolSize C (so C application connections, plus the pool's
// monitoring connection), in a closed loop over the same weighted mix as the load generator:
//   find_id  find {_id: 4242} with limit 1, singleBatch
//   insert   insert_one of one ~60-byte document
//   find100  find {qty: {$gte: 0}} with limit 100, batchSize 100, iterated to the end
// for a warm-up and then a measured duration (each thread first runs a ping so connections
// and handshakes are done before the clock starts), and prints throughput, p50/p99/p99.9
// latency (from the call to the last document read, driver work included) and errors, as
// JSON with the load generator's keys. Every operation is bounded by socketTimeoutMS
// (10 s unless the URI sets it).
//
// Reference: libmongoc client pool and collection API (mongoc_client_pool_t,
// mongoc_collection_find_with_opts, mongoc_collection_insert_one).
#include <mongoc/mongoc.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <latch>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/latency_histogram.h"
#include "bench/load_options.h"
#include "bench/load_report.h"

namespace {

using Clock = std::chrono::steady_clock;
using mongogate::bench::LatencyHistogram;
using mongogate::bench::LoadReport;
using mongogate::bench::loadReportJsonFields;
using mongogate::bench::loadReportText;
using mongogate::bench::kFind100;
using mongogate::bench::kFindId;
using mongogate::bench::kInsert;
using mongogate::bench::kOpKinds;

struct Options : mongogate::bench::LoadOptions {
  Options() { connections = 16; }
  std::string uri;
};

[[noreturn]] void usage(const char* argv0, const std::string& problem) {
  if (!problem.empty()) std::cerr << argv0 << ": " << problem << "\n";
  std::cerr << "usage: " << argv0
            << " --uri mongodb://HOST:PORT/ (--connections defaults to 16)\n       "
            << mongogate::bench::kLoadOptionsUsage << "\n";
  std::exit(2);
}

Options parseOptions(int argc, char** argv) {
  Options o;
  mongogate::bench::parseLoadCommandLine(
      argc, argv, o,
      [&](const std::string& arg, auto& value) {
        if (arg != "--uri") return false;
        o.uri = value();
        return true;
      },
      [&](const std::string& problem) { usage(argv[0], problem); });
  if (o.uri.empty()) usage(argv[0], "--uri is required");
  if (const std::string problem = mongogate::bench::checkLoadOptions(o); !problem.empty()) {
    usage(argv[0], problem);
  }
  if (o.connections > 10000) usage(argv[0], "--connections must be at most 10000 (one thread each)");
  return o;
}


// The documents every operation uses, built once and only read by the threads.
struct Requests {
  bson_t* filterId = nullptr;
  bson_t* optsId = nullptr;
  bson_t* filter100 = nullptr;
  bson_t* opts100 = nullptr;
  bson_t* insertDoc = nullptr;

  Requests() {
    filterId = BCON_NEW("_id", BCON_INT32(4242));
    optsId = BCON_NEW("limit", BCON_INT64(1), "singleBatch", BCON_BOOL(true));
    filter100 = BCON_NEW("qty", "{", "$gte", BCON_INT32(0), "}");
    opts100 = BCON_NEW("limit", BCON_INT64(100), "batchSize", BCON_INT64(100));
    bson_oid_t oid;
    bson_oid_init(&oid, nullptr);
    insertDoc = BCON_NEW("_id", BCON_OID(&oid), "sku", BCON_UTF8("SKU-000123"), "qty", BCON_INT32(7),
                         "price", BCON_DOUBLE(12.5));
  }
  ~Requests() {
    for (bson_t* d : {filterId, optsId, filter100, opts100, insertDoc}) bson_destroy(d);
  }
  Requests(const Requests&) = delete;
  Requests& operator=(const Requests&) = delete;
};

struct Window {
  Clock::time_point from{};
  Clock::time_point until{};
};

// One thread's figures; each thread writes only its own.
struct ThreadResult {
  LatencyHistogram histogram;
  std::array<std::uint64_t, kOpKinds> opsByKind{};
  std::uint64_t docsFindId = 0;   // documents read by counted find_id operations
  std::uint64_t docsFind100 = 0;  // documents read by counted find100 operations
  std::uint64_t errors = 0;       // failed operations in the window
  std::uint64_t operations = 0;   // every operation, warm-up included (CPU per request)
  bool connected = false;
  std::string firstError;
};

// Runs one operation; returns false (with `error` filled) when the driver reports a failure.
bool runOp(mongoc_collection_t* coll, const Requests& req, std::size_t kind, std::uint64_t& docs,
           bson_error_t& error) {
  if (kind == kInsert) {
    return mongoc_collection_insert_one(coll, req.insertDoc, nullptr, nullptr, &error);
  }
  mongoc_cursor_t* cursor = kind == kFindId
                                ? mongoc_collection_find_with_opts(coll, req.filterId, req.optsId, nullptr)
                                : mongoc_collection_find_with_opts(coll, req.filter100, req.opts100, nullptr);
  const bson_t* doc = nullptr;
  while (mongoc_cursor_next(cursor, &doc)) ++docs;
  const bool failed = mongoc_cursor_error(cursor, &error);
  mongoc_cursor_destroy(cursor);
  return !failed;
}

void worker(mongoc_client_pool_t* pool, const Options& o, const Requests& req, std::uint32_t seed,
            std::latch& ready, std::latch& go, const Window& window, ThreadResult& result) {
  mongoc_client_t* client = mongoc_client_pool_pop(pool);
  mongoc_collection_t* coll =
      mongoc_client_get_collection(client, o.database.c_str(), o.collection.c_str());
  bson_error_t error;
  bson_t* ping = BCON_NEW("ping", BCON_INT32(1));
  result.connected = mongoc_client_command_simple(client, "admin", ping, nullptr, nullptr, &error);
  bson_destroy(ping);
  if (!result.connected) result.firstError = error.message;
  ready.count_down();
  go.wait();

  std::minstd_rand rng(seed);
  while (result.connected) {
    const Clock::time_point start = Clock::now();
    if (start >= window.until) break;
    const std::size_t kind = mongogate::bench::pickOp(rng, o.mix);
    std::uint64_t docs = 0;
    const bool ok = runOp(coll, req, kind, docs, error);
    const Clock::time_point end = Clock::now();
    ++result.operations;
    if (end < window.from || end >= window.until) continue;
    if (!ok) {
      if (result.errors++ == 0) result.firstError = error.message;
      continue;
    }
    result.histogram.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count()));
    ++result.opsByKind[kind];
    if (kind == kFindId) result.docsFindId += docs;
    if (kind == kFind100) result.docsFind100 += docs;
  }
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(pool, client);
}

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parseOptions(argc, argv);
  mongoc_init();
  bson_error_t error;
  mongoc_uri_t* uri = mongoc_uri_new_with_error(o.uri.c_str(), &error);
  if (!uri) {
    std::fprintf(stderr, "driver_load: bad --uri: %s\n", error.message);
    mongoc_cleanup();
    return 2;
  }
  mongoc_uri_set_option_as_int32(uri, MONGOC_URI_MAXPOOLSIZE, o.connections);
  mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                 static_cast<std::int32_t>(o.connectTimeoutS * 1000));
  if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS)) {
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 10000);
  }
  mongoc_uri_set_appname(uri, "mongogate-driver-load");
  mongoc_client_pool_t* pool = mongoc_client_pool_new(uri);
  mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);

  const Requests requests;
  std::vector<std::unique_ptr<ThreadResult>> results;
  for (int i = 0; i < o.connections; ++i) results.push_back(std::make_unique<ThreadResult>());
  std::latch ready(o.connections);
  std::latch go(1);
  Window window;
  std::vector<std::thread> threads;
  for (int i = 0; i < o.connections; ++i) {
    threads.emplace_back(worker, pool, std::cref(o), std::cref(requests),
                         static_cast<std::uint32_t>(i * 7919 + 1), std::ref(ready), std::ref(go),
                         std::cref(window), std::ref(*results[static_cast<std::size_t>(i)]));
  }
  ready.wait();
  // The window is written before go is released, so every thread sees it.
  window.from = Clock::now() + seconds(o.warmupS);
  window.until = window.from + seconds(o.durationS);
  go.count_down();
  for (auto& t : threads) t.join();
  mongoc_client_pool_destroy(pool);
  mongoc_uri_destroy(uri);
  mongoc_cleanup();

  LatencyHistogram merged;
  LoadReport report;
  report.connections = o.connections;
  report.threads = o.connections;  // one per connection
  report.seconds = std::chrono::duration<double>(window.until - window.from).count();
  report.latency = &merged;
  std::uint64_t operations = 0, docsFindId = 0, docsFind100 = 0;
  std::string firstError;
  for (const auto& r : results) {
    merged.merge(r->histogram);
    for (std::size_t k = 0; k < kOpKinds; ++k) report.opsByKind[k] += r->opsByKind[k];
    report.errors += r->errors + (r->connected ? 0 : 1);
    operations += r->operations;
    docsFindId += r->docsFindId;
    docsFind100 += r->docsFind100;
    report.established += r->connected ? 1 : 0;
    if (firstError.empty()) firstError = r->firstError;
  }
  report.exchanges = operations + static_cast<std::uint64_t>(report.established);  // the pings
  if (!firstError.empty()) std::fprintf(stderr, "driver_load: first error: %s\n", firstError.c_str());
  if (o.json) {
    std::printf("{\"tool\": \"libmongoc\", \"mode\": \"closed\", %s, \"docs_find_id\": %llu, "
                "\"docs_find100\": %llu}\n",
                loadReportJsonFields(report).c_str(), static_cast<unsigned long long>(docsFindId),
                static_cast<unsigned long long>(docsFind100));
  } else {
    std::printf("%s\n", loadReportText("libmongoc", report).c_str());
  }
  return report.errors == 0 && report.established > 0 ? 0 : 1;
}
