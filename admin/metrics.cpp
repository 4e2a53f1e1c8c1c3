#include "admin/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace mongogate::admin {
namespace {

constexpr std::uint64_t kNsPerSecond = 1'000'000'000;

std::size_t bucketOf(std::uint64_t ns) {
  for (std::size_t i = 0; i < std::size(kLatencyBuckets); ++i) {
    if (static_cast<double>(ns) <= kLatencyBuckets[i] * kNsPerSecond) return i;
  }
  return kBucketCount - 1;
}

void appendNumber(std::string& out, double value) {
  if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, ec == std::errc() ? end : buffer);
}

void appendNumber(std::string& out, std::uint64_t value) {
  char buffer[24];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, ec == std::errc() ? end : buffer);
}

void appendNumber(std::string& out, std::int64_t value) {
  char buffer[24];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, ec == std::errc() ? end : buffer);
}

std::uint64_t read(const std::atomic<std::uint64_t>& cell) { return cell.load(std::memory_order_relaxed); }

// Writes `name{k1="v1",k2="v2"} value\n`.
class SampleWriter {
 public:
  explicit SampleWriter(std::string& out) : out_(out) {}

  template <class Value>
  void sample(std::string_view name, std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              Value value) {
    out_ += name;
    if (labels.size() != 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [key, label] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += key;
        out_ += "=\"";
        out_ += escapeLabelValue(label);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    appendNumber(out_, value);
    out_ += '\n';
  }

  // A histogram series from cells summed over the shards.
  void histogram(std::string_view name, std::string_view labelName, std::string_view labelValue,
                 const std::array<std::uint64_t, kBucketCount>& buckets, std::uint64_t sumNs) {
    const std::string bucketName = std::string(name) + "_bucket";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kBucketCount; ++i) {
      cumulative += buckets[i];
      std::string bound;
      appendNumber(bound, i + 1 < kBucketCount ? kLatencyBuckets[i] : HUGE_VAL);
      sample(bucketName, {{labelName, labelValue}, {"le", bound}}, cumulative);
    }
    // _count is the +Inf bucket: a writer racing the scrape may have bumped the
    // bucket but not yet the count, and the format wants the two equal.
    sample(std::string(name) + "_sum", {{labelName, labelValue}}, static_cast<double>(sumNs) / kNsPerSecond);
    sample(std::string(name) + "_count", {{labelName, labelValue}}, cumulative);
  }

 private:
  std::string& out_;
};

}  // namespace

const char* toString(MetricType type) {
  switch (type) {
    case MetricType::kCounter: return "counter";
    case MetricType::kGauge: return "gauge";
    case MetricType::kHistogram: return "histogram";
  }
  return "untyped";
}

std::size_t commandIndex(std::string_view name) {
  if (name == "isMaster" || name == "ismaster") name = "hello";
  for (std::size_t i = 0; i + 1 < kCommandCount; ++i) {
    if (kCommandLabels[i] == name) return i;
  }
  return kCommandCount - 1;
}

MetricsShard::MetricsShard(std::size_t upstreamLabels, std::size_t pools)
    : upstreamLabels_(upstreamLabels),
      pools_(pools),
      requests_(kCommandCount * kDatabaseClassCount * upstreamLabels * kResultCount),
      poolWait_(pools),
      poolTimeouts_(pools) {}

void MetricsShard::observe(HistogramCells& cells, std::uint64_t ns) {
  bump(cells.buckets[bucketOf(ns)], 1);
  bump(cells.sumNs, ns);
  bump(cells.count, 1);
}

void MetricsShard::recordRequest(std::size_t command, DatabaseClass database, std::size_t upstream,
                                 RequestResult result, std::uint64_t durationNs) {
  if (command >= kCommandCount) command = kCommandCount - 1;
  if (upstream >= upstreamLabels_) upstream = upstreamLabels_ - 1;
  const std::size_t index =
      ((command * kDatabaseClassCount + static_cast<std::size_t>(database)) * upstreamLabels_ + upstream) *
          kResultCount +
      static_cast<std::size_t>(result);
  bump(requests_[index], 1);
  observe(duration_[command], durationNs);
}

void MetricsShard::recordPoolWait(std::size_t pool, std::uint64_t waitNs) {
  if (pool < pools_) observe(poolWait_[pool], waitNs);
}

void MetricsShard::recordPoolTimeout(std::size_t pool) {
  if (pool < pools_) bump(poolTimeouts_[pool], 1);
}

Metrics::Metrics(std::size_t shards, std::vector<std::string> upstreams, std::vector<std::string> pools)
    : upstreams_(std::move(upstreams)), pools_(std::move(pools)) {
  upstreamLabels_ = upstreams_;
  upstreamLabels_.emplace_back("none");
  upstreamLabels_.emplace_back("fan_out");
  if (shards == 0) shards = 1;
  for (std::size_t i = 0; i < shards; ++i) {
    shards_.push_back(std::make_unique<MetricsShard>(upstreamLabels_.size(), pools_.size()));
  }
}

std::size_t Metrics::upstreamIndex(std::string_view name) const {
  for (std::size_t i = 0; i < upstreams_.size(); ++i) {
    if (upstreams_[i] == name) return i;
  }
  return noUpstream();
}

std::uint64_t Metrics::requests(std::size_t command, DatabaseClass database, std::size_t upstream,
                                RequestResult result) const {
  const std::size_t labels = upstreamLabels_.size();
  const std::size_t index =
      ((command * kDatabaseClassCount + static_cast<std::size_t>(database)) * labels + upstream) * kResultCount +
      static_cast<std::size_t>(result);
  std::uint64_t total = 0;
  for (const auto& shard : shards_) total += read(shard->requests_[index]);
  return total;
}

std::uint64_t Metrics::bytesIn() const {
  std::uint64_t total = 0;
  for (const auto& shard : shards_) total += read(shard->bytesIn_);
  return total;
}

std::uint64_t Metrics::bytesOut() const {
  std::uint64_t total = 0;
  for (const auto& shard : shards_) total += read(shard->bytesOut_);
  return total;
}

std::string Metrics::render(const GaugeValues& gauges) const {
  std::string out;
  out.reserve(16 * 1024);
  SampleWriter w(out);
  auto sumCounter = [&](auto member) {
    std::uint64_t total = 0;
    for (const auto& shard : shards_) total += read(member(*shard));
    return total;
  };
  auto sumHistogram = [&](auto member, std::array<std::uint64_t, kBucketCount>& buckets, std::uint64_t& sumNs,
                          std::uint64_t& count) {
    buckets.fill(0);
    sumNs = count = 0;
    for (const auto& shard : shards_) {
      const HistogramCells& cells = member(*shard);
      for (std::size_t i = 0; i < kBucketCount; ++i) buckets[i] += read(cells.buckets[i]);
      sumNs += read(cells.sumNs);
      count += read(cells.count);
    }
  };

  for (const MetricInfo& metric : kMetrics) {
    out += "# HELP ";
    out += metric.name;
    out += ' ';
    out += escapeHelp(metric.help);
    out += "\n# TYPE ";
    out += metric.name;
    out += ' ';
    out += toString(metric.type);
    out += '\n';
    switch (metric.id) {
      case MetricId::kRequests: {
        // Only series that moved: the label space is a few thousand, mostly zero.
        for (std::size_t c = 0; c < kCommandCount; ++c) {
          for (std::size_t d = 0; d < kDatabaseClassCount; ++d) {
            for (std::size_t u = 0; u < upstreamLabels_.size(); ++u) {
              for (std::size_t r = 0; r < kResultCount; ++r) {
                const std::uint64_t n =
                    requests(c, static_cast<DatabaseClass>(d), u, static_cast<RequestResult>(r));
                if (n == 0) continue;
                w.sample(metric.name,
                         {{"command", kCommandLabels[c]},
                          {"database", kDatabaseLabels[d]},
                          {"upstream", upstreamLabels_[u]},
                          {"result", kResultLabels[r]}},
                         n);
              }
            }
          }
        }
        break;
      }
      case MetricId::kRequestDuration: {
        std::array<std::uint64_t, kBucketCount> buckets{};
        std::uint64_t sumNs = 0;
        std::uint64_t count = 0;
        for (std::size_t c = 0; c < kCommandCount; ++c) {
          sumHistogram([c](const MetricsShard& s) -> const HistogramCells& { return s.duration_[c]; }, buckets,
                       sumNs, count);
          if (count == 0) continue;
          w.histogram(metric.name, "command", kCommandLabels[c], buckets, sumNs);
        }
        break;
      }
      case MetricId::kPhysicalDatabaseRequests: {
        std::uint64_t other = 0;
        for (std::size_t d = 0; d < kPhysicalDatabaseLabels; ++d) {
          const std::uint64_t n = sumCounter([d](const MetricsShard& s) -> const std::atomic<std::uint64_t>& {
            return s.physicalDatabases_[d];
          });
          if (n == 0) continue;
          if (d < gauges.physicalDatabases.size() && d != kPhysicalDatabaseOther) {
            w.sample(metric.name, {{"database", gauges.physicalDatabases[d]}}, n);
          } else {
            other += n;  // e.g. a store database that a reload removed
          }
        }
        if (other != 0) w.sample(metric.name, {{"database", "other"}}, other);
        break;
      }
      case MetricId::kClientConnections:
        w.sample(metric.name, {}, gauges.clientConnections);
        break;
      case MetricId::kOpenTransactions:
        w.sample(metric.name, {}, gauges.openTransactions);
        break;
      case MetricId::kUpstreamConnections:
        for (const GaugeValues::Pool& pool : gauges.pools) {
          w.sample(metric.name, {{"upstream", pool.upstream}, {"state", "idle"}}, pool.idle);
          w.sample(metric.name, {{"upstream", pool.upstream}, {"state", "busy"}}, pool.busy);
        }
        break;
      case MetricId::kPoolWait: {
        std::array<std::uint64_t, kBucketCount> buckets{};
        std::uint64_t sumNs = 0;
        std::uint64_t count = 0;
        for (std::size_t p = 0; p < pools_.size(); ++p) {
          sumHistogram([p](const MetricsShard& s) -> const HistogramCells& { return s.poolWait_[p]; }, buckets,
                       sumNs, count);  // every pool is shown, waits or not
          w.histogram(metric.name, "upstream", pools_[p], buckets, sumNs);
        }
        break;
      }
      case MetricId::kPoolTimeouts:
        for (std::size_t p = 0; p < pools_.size(); ++p) {
          w.sample(metric.name, {{"upstream", pools_[p]}},
                   sumCounter([p](const MetricsShard& s) -> const std::atomic<std::uint64_t>& {
                     return s.poolTimeouts_[p];
                   }));
        }
        break;
      case MetricId::kRefusedCommands:
        for (std::size_t r = 0; r < kRefusalCount; ++r) {
          w.sample(metric.name, {{"reason", kRefusalLabels[r]}},
                   sumCounter([r](const MetricsShard& s) -> const std::atomic<std::uint64_t>& {
                     return s.refusals_[r];
                   }));
        }
        break;
      case MetricId::kAuthFailures:
        w.sample(metric.name, {},
                 sumCounter([](const MetricsShard& s) -> const std::atomic<std::uint64_t>& { return s.authFailures_; }));
        break;
      case MetricId::kBytesIn:
        w.sample(metric.name, {}, bytesIn());
        break;
      case MetricId::kBytesOut:
        w.sample(metric.name, {}, bytesOut());
        break;
      case MetricId::kStoresPerDatabase:
        for (const auto& [database, stores] : gauges.storesPerDatabase) {
          w.sample(metric.name, {{"database", database}}, stores);
        }
        break;
      case MetricId::kRegistryStores:
        w.sample(metric.name, {}, gauges.registryStores);
        break;
      case MetricId::kConfigReloads:
        w.sample(metric.name, {{"result", "applied"}}, gauges.reloadsApplied);
        w.sample(metric.name, {{"result", "refused"}}, gauges.reloadsRefused);
        break;
      case MetricId::kConfigGeneration:
        w.sample(metric.name, {}, gauges.configGeneration);
        break;
      case MetricId::kConfigLastReloadSuccess:
        w.sample(metric.name, {}, gauges.lastReloadSuccessUnix);
        break;
      case MetricId::kBreakerState:
        for (const GaugeValues::Server& server : gauges.servers) {
          w.sample(metric.name, {{"upstream", server.upstream}, {"server", server.server}}, server.breakerState);
        }
        break;
      case MetricId::kServers: {
        std::vector<std::pair<std::pair<std::string, std::string>, std::uint64_t>> counts;
        for (const GaugeValues::Server& server : gauges.servers) {
          auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) {
            return c.first.first == server.upstream && c.first.second == server.type;
          });
          if (it == counts.end()) {
            counts.push_back({{server.upstream, server.type}, 1});
          } else {
            ++it->second;
          }
        }
        for (const auto& [labels, n] : counts) {
          w.sample(metric.name, {{"upstream", labels.first}, {"type", labels.second}}, n);
        }
        break;
      }
    }
  }
  return out;
}

std::string escapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char ch : value) {
    switch (ch) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += ch;
    }
  }
  return out;
}

std::string escapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char ch : help) {
    switch (ch) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += ch;
    }
  }
  return out;
}

}  // namespace mongogate::admin
