// bench/loadgen.cpp — a closed- or open-loop MongoDB wire-protocol load generator (OP_MSG).
//
// Promise: opens C client connections to HOST:PORT, sends each one `hello` once, then runs a
// closed loop per connection (one request in flight, the next sent when the whole reply has
// arrived) drawn from a weighted mix of
//   find_id  {find: COLL, filter: {_id: N}, limit: 1, singleBatch: true}
//   insert   {insert: COLL, ordered: true} + a kind-1 "documents" sequence of one ~60-byte doc
//   find100  {find: COLL, filter: {qty: {$gte: 0}}, limit: 100, batchSize: 100}
// for a warm-up and then a measured duration, and prints throughput and latency
// percentiles. Requests are pre-built frames whose requestId is patched in place; every
// reply's responseTo and `ok` are checked (anything else counts as an error). Latencies go
// into a fixed log-linear histogram (bench/latency_histogram.h), one per thread, merged at the
// end: nothing is allocated per operation.
//
// --rate R makes it open loop: R requests per second in total on a fixed schedule, each
// connection sending every C/R seconds, the connections' schedules evenly staggered. Still one
// request in flight per connection: a send whose slot passed while the previous reply was
// outstanding goes out at once, and every latency is measured from the *scheduled* send time,
// so a stall shows up in the percentiles instead of silently lowering the offered load
// (coordinated omission). The window counts requests by their scheduled time (so `ops_per_s`
// is the offered rate); `completed_per_s` counts replies by arrival, falling below the rate
// when the target cannot keep up; `send_lag` reports how late sends left compared to their
// schedule (client or target falling behind).
//
// --idle-connections N --hold-s S opens N connections, says hello on each, writes
// "ready N" to --ready-file once all are open, holds them S seconds (or until
// --release-file exists), and exits: for measuring the proxy's memory per idle client
// connection and how many upstream connections it keeps for them.
//
// Every phase is bounded: connects and handshakes by --connect-timeout-s, the measured loop by
// its end time plus a grace period after which sockets are closed.
//
// Reference: MongoDB specifications message/OP_MSG.md.
#include <bson/bson.h>

#include <sys/prctl.h>

#include <boost/asio.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/latency_histogram.h"
#include "bench/load_options.h"
#include "bench/load_report.h"
#include "wire/builder.h"
#include "wire/message.h"
#include "wire/op_msg.h"

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
namespace wire = mongogate::wire;
using mongogate::bench::LatencyHistogram;
using mongogate::bench::LoadReport;
using mongogate::bench::loadReportJsonFields;
using mongogate::bench::loadReportText;
using mongogate::bench::kFind100;
using mongogate::bench::kFindId;
using mongogate::bench::kInsert;
using mongogate::bench::kOpKinds;

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// ---- options -----------------------------------------------------------------------------------

struct Options : mongogate::bench::LoadOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  int threads = 1;
  int idleConnections = 0;
  double holdS = 5;
  std::string readyFile;
  std::string releaseFile;
  double rate = 0;  // open loop when > 0: requests per second over all connections
};

[[noreturn]] void usage(const char* argv0, const std::string& problem) {
  if (!problem.empty()) std::cerr << argv0 << ": " << problem << "\n";
  std::cerr << "usage: " << argv0
            << " --port P [--uri-host 127.0.0.1] [--threads T]\n       "
            << mongogate::bench::kLoadOptionsUsage
            << "\n       [--rate R (open loop: R requests/s in total on a fixed schedule)]\n"
               "   or: "
            << argv0
            << " --port P --idle-connections N [--hold-s S] [--ready-file PATH] [--release-file PATH]\n";
  std::exit(2);
}

Options parseOptions(int argc, char** argv) {
  Options o;
  auto own = [&](const std::string& arg, auto& value) {
    if (arg == "--uri-host" || arg == "--host") {
      o.host = value();
    } else if (arg == "--port") {
      const int p = std::stoi(value());
      if (p < 1 || p > 65535) usage(argv[0], "--port must be 1..65535");
      o.port = static_cast<std::uint16_t>(p);
    } else if (arg == "--threads") {
      o.threads = std::stoi(value());
    } else if (arg == "--idle-connections") {
      o.idleConnections = std::stoi(value());
    } else if (arg == "--hold-s") {
      o.holdS = std::stod(value());
    } else if (arg == "--ready-file") {
      o.readyFile = value();
    } else if (arg == "--release-file") {
      o.releaseFile = value();
    } else if (arg == "--rate") {
      o.rate = std::stod(value());
      if (!(o.rate > 0)) usage(argv[0], "--rate must be positive");
    } else {
      return false;
    }
    return true;
  };
  mongogate::bench::parseLoadCommandLine(argc, argv, o, own,
                                         [&](const std::string& problem) { usage(argv[0], problem); });
  if (o.port == 0) usage(argv[0], "--port is required");
  if (const std::string problem = mongogate::bench::checkLoadOptions(o); !problem.empty()) {
    usage(argv[0], problem);
  }
  if (o.threads < 1 || o.idleConnections < 0) usage(argv[0], "--threads must be >= 1");
  if (o.holdS < 0) usage(argv[0], "durations must be positive");
  if (o.rate > 0 && static_cast<double>(o.connections) / o.rate < 1e-6) {
    usage(argv[0], "--rate is above one request per microsecond per connection");
  }
  return o;
}

// ---- request frames ----------------------------------------------------------------------------


std::vector<std::uint8_t> bsonBytes(const bson_t* doc) {
  const std::uint8_t* data = bson_get_data(doc);
  return {data, data + doc->len};
}

struct RequestFrames {
  std::vector<std::uint8_t> hello;
  std::array<std::vector<std::uint8_t>, kOpKinds> ops;
};

RequestFrames buildFrames(const Options& o) {
  RequestFrames frames;
  const char* db = o.database.c_str();
  const char* coll = o.collection.c_str();

  bson_t hello = BSON_INITIALIZER;
  BSON_APPEND_INT32(&hello, "hello", 1);
  BSON_APPEND_BOOL(&hello, "helloOk", true);
  bson_t client, driver;
  BSON_APPEND_DOCUMENT_BEGIN(&hello, "client", &client);
  BSON_APPEND_DOCUMENT_BEGIN(&client, "driver", &driver);
  BSON_APPEND_UTF8(&driver, "name", "mongogate-loadgen");
  BSON_APPEND_UTF8(&driver, "version", "0.1");
  bson_append_document_end(&client, &driver);
  bson_append_document_end(&hello, &client);
  BSON_APPEND_UTF8(&hello, "$db", "admin");
  wire::appendOpMsg(frames.hello, 0, 0, 0, bsonBytes(&hello));
  bson_destroy(&hello);

  bson_t findId = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&findId, "find", coll);
  bson_t filter;
  BSON_APPEND_DOCUMENT_BEGIN(&findId, "filter", &filter);
  BSON_APPEND_INT32(&filter, "_id", 4242);
  bson_append_document_end(&findId, &filter);
  BSON_APPEND_INT32(&findId, "limit", 1);
  BSON_APPEND_BOOL(&findId, "singleBatch", true);
  BSON_APPEND_UTF8(&findId, "$db", db);
  wire::appendOpMsg(frames.ops[kFindId], 0, 0, 0, bsonBytes(&findId));
  bson_destroy(&findId);

  bson_t insert = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&insert, "insert", coll);
  BSON_APPEND_BOOL(&insert, "ordered", true);
  BSON_APPEND_UTF8(&insert, "$db", db);
  bson_t doc = BSON_INITIALIZER;
  bson_oid_t oid;
  bson_oid_init(&oid, nullptr);
  BSON_APPEND_OID(&doc, "_id", &oid);
  BSON_APPEND_UTF8(&doc, "sku", "SKU-000123");
  BSON_APPEND_INT32(&doc, "qty", 7);
  BSON_APPEND_DOUBLE(&doc, "price", 12.5);
  const std::vector<std::uint8_t> insertBody = bsonBytes(&insert);
  const std::vector<std::uint8_t> insertDoc = bsonBytes(&doc);
  const wire::SequenceOut documents{"documents", insertDoc};
  wire::appendOpMsgWithSequences(frames.ops[kInsert], 0, 0, 0, insertBody, {&documents, 1});
  bson_destroy(&doc);
  bson_destroy(&insert);

  bson_t find100 = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&find100, "find", coll);
  bson_t filter100, gte;
  BSON_APPEND_DOCUMENT_BEGIN(&find100, "filter", &filter100);
  BSON_APPEND_DOCUMENT_BEGIN(&filter100, "qty", &gte);
  BSON_APPEND_INT32(&gte, "$gte", 0);
  bson_append_document_end(&filter100, &gte);
  bson_append_document_end(&find100, &filter100);
  BSON_APPEND_INT32(&find100, "limit", 100);
  BSON_APPEND_INT32(&find100, "batchSize", 100);
  BSON_APPEND_UTF8(&find100, "$db", db);
  wire::appendOpMsg(frames.ops[kFind100], 0, 0, 0, bsonBytes(&find100));
  bson_destroy(&find100);
  return frames;
}

// ---- one connection ----------------------------------------------------------------------------

struct ThreadState;

// True when an OP_MSG reply body says ok: 1.
bool replyOk(const std::uint8_t* frame, std::size_t size) {
  const auto parsed =
      wire::parseOpMsg(wire::Bytes(frame, size), {.verifyChecksum = false, .validateBson = false});
  if (!parsed.ok()) return false;
  bson_iter_t it;
  if (!bson_iter_init_from_data(&it, parsed.value.body.data(), parsed.value.body.size())) return false;
  if (!bson_iter_find(&it, "ok")) return false;
  return BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_double(&it) == 1.0 : bson_iter_as_bool(&it);
}

class Connection {
 public:
  Connection(asio::io_context& io, const RequestFrames& frames, std::uint32_t seed)
      : socket_(io), hello_(frames.hello), ops_(frames.ops), rng_(seed) {
    buffer_.resize(64 * 1024);
  }

  tcp::socket& socket() { return socket_; }
  bool established() const { return established_; }

  // One request/reply exchange. Returns false on a transport or framing failure (the
  // connection is then unusable); *ok tells whether the reply said ok: 1.
  asio::awaitable<bool> exchange(std::vector<std::uint8_t>& frame, bool* ok) {
    const std::int32_t id = nextRequestId_++;
    wire::storeInt32LE(frame.data() + 4, id);
    auto [werr, written] = co_await asio::async_write(socket_, asio::buffer(frame), nothrow);
    (void)written;
    if (werr) co_return false;
    std::size_t have = 0;
    std::size_t need = wire::kHeaderSize;
    for (;;) {
      auto [rerr, n] = co_await socket_.async_read_some(
          asio::buffer(buffer_.data() + have, buffer_.size() - have), nothrow);
      if (rerr) co_return false;
      have += n;
      if (need == wire::kHeaderSize && have >= wire::kHeaderSize) {
        const std::int32_t length = wire::loadInt32LE(buffer_.data());
        if (length < 16 || length > wire::kDefaultMaxMessageSize) co_return false;
        need = static_cast<std::size_t>(length);
        if (need > buffer_.size()) buffer_.resize(need);
      }
      if (have >= need && need > wire::kHeaderSize) break;
    }
    if (have != need) co_return false;  // closed loop: nothing may follow the reply
    if (wire::loadInt32LE(buffer_.data() + 8) != id ||
        wire::loadInt32LE(buffer_.data() + 12) != static_cast<std::int32_t>(wire::OpCode::kMsg)) {
      co_return false;
    }
    *ok = replyOk(buffer_.data(), need);
    co_return true;
  }

  asio::awaitable<void> establish(tcp::endpoint endpoint, std::atomic<int>& failures) {
    auto [cerr] = co_await socket_.async_connect(endpoint, nothrow);
    if (cerr) {
      failures.fetch_add(1, std::memory_order_relaxed);
      co_return;
    }
    socket_.set_option(tcp::no_delay(true));
    bool ok = false;
    if (!co_await exchange(hello_, &ok) || !ok) {
      failures.fetch_add(1, std::memory_order_relaxed);
      co_return;
    }
    established_ = true;
  }

  // Closed loop from now, or open loop with the first send at `firstSend`.
  asio::awaitable<void> run(ThreadState& thread, Clock::time_point firstSend);

  void close() {
    error_code ignored;
    socket_.close(ignored);
  }

 private:
  tcp::socket socket_;
  std::vector<std::uint8_t> hello_;
  std::array<std::vector<std::uint8_t>, kOpKinds> ops_;  // this connection's copies (ids patched)
  std::vector<std::uint8_t> buffer_;
  std::minstd_rand rng_;
  std::int32_t nextRequestId_ = 1;
  bool established_ = false;
};

struct ThreadState {
  asio::io_context io{1};
  // Closes every socket when a phase overruns its deadline; cancelled by the last
  // coroutine of the phase, so io.run() returns as soon as the phase is over.
  asio::steady_timer watchdog{io};
  int active = 0;  // coroutines of the current phase still running
  std::vector<std::unique_ptr<Connection>> connections;
  LatencyHistogram histogram;
  LatencyHistogram sendLag;        // open loop: actual send - scheduled send
  std::uint64_t completedInWindow = 0;  // ok replies that arrived in the window, whenever scheduled
  std::array<std::uint64_t, kOpKinds> opsByKind{};
  std::uint64_t errors = 0;        // error replies and broken connections, in the window
  std::uint64_t brokenConnections = 0;
  std::uint64_t exchanges = 0;     // every completed exchange, warm-up included (CPU per request)
  Clock::time_point measureFrom{};
  Clock::time_point measureUntil{};
  Clock::duration interval{};      // open loop: one connection's send period; zero = closed loop
  std::array<unsigned, kOpKinds> mix{};

  void armWatchdog(Clock::time_point deadline) {
    watchdog.expires_at(deadline);
    watchdog.async_wait([this](error_code ec) {
      if (ec) return;
      for (auto& c : connections) c->close();
    });
  }
  void finished() {
    if (--active == 0) watchdog.cancel();
  }
};

asio::awaitable<void> Connection::run(ThreadState& thread, Clock::time_point firstSend) {
  const bool openLoop = thread.interval != Clock::duration::zero();
  asio::steady_timer timer(socket_.get_executor());
  Clock::time_point scheduled = firstSend;
  for (;;) {
    if (openLoop) {
      if (scheduled >= thread.measureUntil) co_return;
      if (Clock::now() < scheduled) {
        timer.expires_at(scheduled);
        co_await timer.async_wait(nothrow);
      }
    }
    const Clock::time_point sent = Clock::now();
    if (!openLoop) {
      if (sent >= thread.measureUntil) co_return;
      scheduled = sent;
    }
    const std::size_t kind = mongogate::bench::pickOp(rng_, thread.mix);
    bool ok = false;
    const bool alive = co_await exchange(ops_[kind], &ok);
    const Clock::time_point end = Clock::now();
    // Closed loop: counted by completion; open loop: by the slot it was scheduled in.
    const Clock::time_point stamp = openLoop ? scheduled : end;
    const bool counted = stamp >= thread.measureFrom && stamp < thread.measureUntil;
    if (!alive) {
      ++thread.brokenConnections;
      if (counted) ++thread.errors;
      close();
      co_return;
    }
    ++thread.exchanges;
    if (ok && end >= thread.measureFrom && end < thread.measureUntil) ++thread.completedInWindow;
    if (counted) {
      if (ok) {
        thread.histogram.record(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(end - scheduled).count()));
        ++thread.opsByKind[kind];
        if (openLoop) {
          thread.sendLag.record(static_cast<std::uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(sent - scheduled).count()));
        }
      } else {
        ++thread.errors;
      }
    }
    scheduled += thread.interval;
  }
}

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// Runs every thread's io_context until its phase is over (on its own or by the watchdog).
void runThreads(std::vector<std::unique_ptr<ThreadState>>& threads) {
  std::vector<std::thread> workers;
  for (auto& t : threads) {
    workers.emplace_back([state = t.get()] {
      // Wake-ups as close to the schedule as the kernel allows (the default slack is 50 us).
      prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
      state->io.run();
      state->io.restart();
    });
  }
  for (auto& w : workers) w.join();
}

int runIdle(const Options& o, const RequestFrames& frames) {
  asio::io_context io{1};
  const tcp::endpoint endpoint(asio::ip::make_address(o.host), o.port);
  std::vector<std::unique_ptr<Connection>> connections;
  connections.reserve(static_cast<std::size_t>(o.idleConnections));
  for (int i = 0; i < o.idleConnections; ++i) {
    connections.push_back(std::make_unique<Connection>(io, frames, static_cast<std::uint32_t>(i + 1)));
  }
  std::atomic<int> failures{0};
  std::size_t next = 0;
  asio::steady_timer watchdog(io, Clock::now() + seconds(o.connectTimeoutS));
  watchdog.async_wait([&](error_code ec) {
    if (ec) return;
    for (auto& c : connections) c->close();
  });
  // A bounded number of connects in flight, so the listener's backlog is not overrun.
  int openers = std::min(o.idleConnections, 64);
  for (int i = 0, n = openers; i < n; ++i) {
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      while (next < connections.size()) {
        Connection& c = *connections[next++];
        co_await c.establish(endpoint, failures);
      }
      if (--openers == 0) watchdog.cancel();
    }, asio::detached);
  }
  io.run();
  std::size_t open = 0;
  for (auto& c : connections) open += c->established() ? 1 : 0;
  if (!o.readyFile.empty()) {
    std::ofstream(o.readyFile) << "ready " << open << "\n";
  }
  const Clock::time_point holdUntil = Clock::now() + seconds(o.holdS);
  while (Clock::now() < holdUntil) {
    std::error_code ignored;
    if (!o.releaseFile.empty() && std::filesystem::exists(o.releaseFile, ignored)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& c : connections) c->close();
  std::printf("{\"idle_connections_requested\": %d, \"idle_connections_open\": %zu, \"errors\": %d}\n",
              o.idleConnections, open, failures.load());
  return open == connections.size() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parseOptions(argc, argv);
  const RequestFrames frames = buildFrames(o);
  if (o.idleConnections > 0) return runIdle(o, frames);

  const tcp::endpoint endpoint(asio::ip::make_address(o.host), o.port);
  const int threadCount = std::min(o.threads, o.connections);
  std::vector<std::unique_ptr<ThreadState>> threads;
  for (int t = 0; t < threadCount; ++t) {
    auto state = std::make_unique<ThreadState>();
    state->mix = o.mix;
    threads.push_back(std::move(state));
  }
  for (int i = 0; i < o.connections; ++i) {
    ThreadState& t = *threads[static_cast<std::size_t>(i % threadCount)];
    const auto seed = static_cast<std::uint32_t>(i * 7919 + 1);
    t.connections.push_back(std::make_unique<Connection>(t.io, frames, seed));
  }

  // Phase 1: connect and hello on every connection.
  std::atomic<int> failures{0};
  const Clock::time_point connectDeadline = Clock::now() + seconds(o.connectTimeoutS);
  for (auto& t : threads) {
    ThreadState* state = t.get();
    state->active = static_cast<int>(state->connections.size());
    state->armWatchdog(connectDeadline);
    for (auto& c : state->connections) {
      asio::co_spawn(state->io, [state, conn = c.get(), endpoint, &failures]() -> asio::awaitable<void> {
        co_await conn->establish(endpoint, failures);
        state->finished();
      }, asio::detached);
    }
  }
  runThreads(threads);
  int established = 0;
  for (auto& t : threads) {
    for (auto& c : t->connections) established += c->established() ? 1 : 0;
  }
  if (established == 0) {
    std::fprintf(stderr, "loadgen: no connection to %s:%u could be established\n", o.host.c_str(), o.port);
    return 1;
  }

  // Phase 2: the loops: warm-up, then the measured window. A reply that never arrives
  // cannot hang the run: 5 s past the window every socket is closed. Open loop: connection
  // i's schedule starts i/C of a period after the start, so sends are spread evenly.
  const Clock::time_point begin = Clock::now();
  const Clock::time_point from = begin + seconds(o.warmupS);
  const Clock::time_point until = from + seconds(o.durationS);
  const Clock::duration interval =
      o.rate > 0 ? seconds(static_cast<double>(o.connections) / o.rate) : Clock::duration::zero();
  for (auto& t : threads) {
    ThreadState* state = t.get();
    state->measureFrom = from;
    state->measureUntil = until;
    state->interval = interval;
    state->active = 0;
    for (auto& c : state->connections) state->active += c->established() ? 1 : 0;
    if (state->active == 0) continue;
    state->armWatchdog(until + std::chrono::seconds(5));
    for (std::size_t k = 0; k < state->connections.size(); ++k) {
      Connection* conn = state->connections[k].get();
      if (!conn->established()) continue;
      // Connections are dealt round-robin: this one is number t + k * threads overall.
      const auto index = static_cast<std::int64_t>(&t - threads.data()) +
                         static_cast<std::int64_t>(k) * threadCount;
      const Clock::time_point firstSend = begin + interval * index / o.connections;
      asio::co_spawn(state->io, [state, conn, firstSend]() -> asio::awaitable<void> {
        co_await conn->run(*state, firstSend);
        state->finished();
      }, asio::detached);
    }
  }
  runThreads(threads);
  for (auto& t : threads) {
    for (auto& c : t->connections) c->close();
  }

  LatencyHistogram merged;
  LatencyHistogram lag;
  LoadReport report;
  report.connections = o.connections;
  report.established = established;
  report.threads = threadCount;
  report.seconds = std::chrono::duration<double>(until - from).count();
  report.latency = &merged;
  report.errors = static_cast<std::uint64_t>(failures.load());
  report.exchanges = static_cast<std::uint64_t>(established);  // the hellos
  std::uint64_t broken = 0;
  std::uint64_t completed = 0;
  for (auto& t : threads) {
    report.exchanges += t->exchanges;
    completed += t->completedInWindow;
    merged.merge(t->histogram);
    lag.merge(t->sendLag);
    for (std::size_t k = 0; k < kOpKinds; ++k) report.opsByKind[k] += t->opsByKind[k];
    report.errors += t->errors;
    broken += t->brokenConnections;
  }
  // Open loop: what the target actually got through; below the rate when it fell behind.
  const double completedPerS = static_cast<double>(completed) / report.seconds;
  const double lagP50 = lag.quantileNs(0.50) / 1000.0;
  const double lagP99 = lag.quantileNs(0.99) / 1000.0;
  const char* mode = o.rate > 0 ? "open" : "closed";
  if (o.json) {
    std::printf("{\"mode\": \"%s\", \"rate\": %.1f, \"completed_per_s\": %.1f, \"send_lag_p50_us\": %.1f, "
                "\"send_lag_p99_us\": %.1f, %s, \"broken_connections\": %llu}\n",
                mode, o.rate, completedPerS, lagP50, lagP99, loadReportJsonFields(report).c_str(),
                static_cast<unsigned long long>(broken));
  } else {
    std::printf("%s\n", loadReportText(o.rate > 0 ? "open loop" : "closed loop", report).c_str());
    if (o.rate > 0) {
      std::printf("requested %.0f ops/s, completed %.0f ops/s in the window; send lag behind the "
                  "schedule p50 %.1f us, p99 %.1f us\n",
                  o.rate, completedPerS, lagP50, lagP99);
    }
  }
  return report.errors == 0 ? 0 : 1;
}
