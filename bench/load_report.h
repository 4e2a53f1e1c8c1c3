// bench/load_report.h — the result both load generators (loadgen.cpp, driver_load.cpp) print:
// throughput and p50/p99/p99.9 latency from the merged histogram, errors, exchanges and the
// operations per kind, as JSON fields with the same keys in both tools or as one text line.
//
// Promise: each tool prints its own fields around these (loadgen: mode, rate, send lag,
// broken connections; driver_load: tool, documents read), so a row from either tool is read
// by bench/benchmarks_report.py the same way.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <string>

#include "bench/latency_histogram.h"
#include "bench/load_options.h"

namespace mongogate::bench {

struct LoadReport {
  int connections = 0;
  int established = 0;
  int threads = 0;
  double seconds = 0;                          // the measured window
  const LatencyHistogram* latency = nullptr;   // every operation counted in the window
  std::uint64_t errors = 0;
  std::uint64_t exchanges = 0;                 // request/reply pairs, warm-up and hellos included
  std::array<std::uint64_t, kOpKinds> opsByKind{};

  std::uint64_t ops() const { return latency->total(); }
  double opsPerS() const { return static_cast<double>(ops()) / seconds; }
  double quantileUs(double q) const { return latency->quantileNs(q) / 1000.0; }
};

// `"connections": …, …, "ops_find100": …` without braces: the tool adds its own fields around.
inline std::string loadReportJsonFields(const LoadReport& r) {
  using ull = unsigned long long;
  char text[640];
  std::snprintf(text, sizeof text,
                "\"connections\": %d, \"established\": %d, \"threads\": %d, \"ops\": %llu, \"seconds\": %.3f, "
                "\"ops_per_s\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, \"errors\": %llu, "
                "\"exchanges_total\": %llu, \"ops_find_id\": %llu, \"ops_insert\": %llu, \"ops_find100\": %llu",
                r.connections, r.established, r.threads, ull{r.ops()}, r.seconds, r.opsPerS(), r.quantileUs(0.50),
                r.quantileUs(0.99), r.quantileUs(0.999), ull{r.errors}, ull{r.exchanges},
                ull{r.opsByKind[kFindId]}, ull{r.opsByKind[kInsert]}, ull{r.opsByKind[kFind100]});
  return text;
}

// "`label`, C connections (E established), T threads: N ops in S s = R ops/s; p50 …; K errors"
inline std::string loadReportText(const char* label, const LoadReport& r) {
  char text[512];
  std::snprintf(text, sizeof text,
                "%s, %d connections (%d established), %d threads: %llu ops in %.2f s = %.0f ops/s; "
                "p50 %.1f us, p99 %.1f us, p99.9 %.1f us; %llu errors",
                label, r.connections, r.established, r.threads, static_cast<unsigned long long>(r.ops()),
                r.seconds, r.opsPerS(), r.quantileUs(0.50), r.quantileUs(0.99), r.quantileUs(0.999),
                static_cast<unsigned long long>(r.errors));
  return text;
}

}  // namespace mongogate::bench
