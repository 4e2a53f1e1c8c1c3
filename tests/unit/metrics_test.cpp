// admin/metrics.h: the one table, shard summing, and the text exposition format.
#include "admin/metrics.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <sstream>
#include <thread>

namespace mongogate::admin {
namespace {

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The value of the sample line `series` ("name{labels}"), or -1 when absent.
double sampleValue(const std::string& text, const std::string& series) {
  for (const std::string& line : lines(text)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return -1;
}

// Hand-written checks of the text format's grammar (std::regex trips GCC 12's
// -Wmaybe-uninitialized under the sanitizers).
bool isNameChar(char ch, bool first, bool allowColon) {
  const bool letter = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || (allowColon && ch == ':');
  return letter || (!first && ch >= '0' && ch <= '9');
}

// Consumes a metric or label name at `pos`; false when there is none.
bool consumeName(std::string_view line, std::size_t& pos, bool allowColon = true) {
  const std::size_t start = pos;
  while (pos < line.size() && isNameChar(line[pos], pos == start, allowColon)) ++pos;
  return pos > start;
}

bool validMetricName(std::string_view text) {
  std::size_t pos = 0;
  return consumeName(text, pos) && pos == text.size();
}

bool validLabelList(std::string_view labels) {
  if (labels.empty()) return true;
  std::size_t pos = 0;
  for (;;) {
    if (!consumeName(labels, pos, false)) return false;
    if (pos == labels.size()) return true;
    if (labels[pos++] != ',') return false;
  }
}

// name{label="value",...} number
bool wellFormedSample(std::string_view line) {
  std::size_t pos = 0;
  if (!consumeName(line, pos)) return false;
  if (pos < line.size() && line[pos] == '{') {
    ++pos;
    for (;;) {
      if (!consumeName(line, pos, false) || pos + 1 >= line.size() || line[pos] != '=' || line[pos + 1] != '"') {
        return false;
      }
      pos += 2;
      while (pos < line.size() && line[pos] != '"') {
        if (line[pos] == '\\') {
          if (pos + 1 >= line.size() || std::string_view("\\\"n").find(line[pos + 1]) == std::string_view::npos) {
            return false;
          }
          ++pos;
        } else if (line[pos] == '\n') {
          return false;
        }
        ++pos;
      }
      if (pos >= line.size()) return false;
      ++pos;  // the closing quote
      if (pos < line.size() && line[pos] == ',') {
        ++pos;
        continue;
      }
      if (pos >= line.size() || line[pos] != '}') return false;
      ++pos;
      break;
    }
  }
  if (pos >= line.size() || line[pos] != ' ') return false;
  const std::string value(line.substr(pos + 1));
  if (value == "+Inf" || value == "-Inf" || value == "NaN") return true;
  char* end = nullptr;
  std::strtod(value.c_str(), &end);
  return !value.empty() && end == value.c_str() + value.size();
}

TEST(MetricsTextTest, TheGrammarCheckItselfRejectsBrokenLines) {
  EXPECT_TRUE(wellFormedSample(R"(a_b{c="d\"e",f="g"} 1.5)"));
  EXPECT_TRUE(wellFormedSample("a 3"));
  EXPECT_FALSE(wellFormedSample(R"(a{c="d} 1)"));
  EXPECT_FALSE(wellFormedSample(R"(a{c="d"}1)"));
  EXPECT_FALSE(wellFormedSample(R"(a{c="d\x"} 1)"));
  EXPECT_FALSE(wellFormedSample("a 1x"));
  EXPECT_FALSE(wellFormedSample("1a 1"));
  EXPECT_FALSE(validLabelList("a,,b"));
  EXPECT_FALSE(validMetricName("a-b"));
}

Metrics twoShardMetrics() { return Metrics(2, {"main", "masteradmin"}, {"main"}); }

TEST(MetricsTableTest, NamesArePrefixedUniqueAndWellFormed) {
  std::set<std::string_view> names;
  for (const MetricInfo& metric : kMetrics) {
    EXPECT_TRUE(metric.name.starts_with("mongogate_")) << metric.name;
    EXPECT_TRUE(validMetricName(metric.name)) << metric.name;
    EXPECT_TRUE(validLabelList(metric.labels)) << metric.name;
    EXPECT_FALSE(metric.help.empty()) << metric.name;
    EXPECT_TRUE(names.insert(metric.name).second) << "duplicate " << metric.name;
    if (metric.type == MetricType::kCounter) {
      EXPECT_TRUE(metric.name.ends_with("_total")) << metric.name;
    }
    // "le" belongs to histogram buckets.
    const std::string labels = "," + std::string(metric.labels) + ",";
    EXPECT_EQ(labels.find(",le,"), std::string::npos) << metric.name;
  }
}

TEST(MetricsTableTest, DeclaresTheMetricsTheAdminPortPromises) {
  const std::pair<std::string_view, MetricType> expected[] = {
      {"mongogate_requests_total", MetricType::kCounter},
      {"mongogate_request_duration_seconds", MetricType::kHistogram},
      {"mongogate_client_connections", MetricType::kGauge},
      {"mongogate_open_transactions", MetricType::kGauge},
      {"mongogate_upstream_connections", MetricType::kGauge},
      {"mongogate_pool_wait_seconds", MetricType::kHistogram},
      {"mongogate_pool_timeouts_total", MetricType::kCounter},
      {"mongogate_refused_commands_total", MetricType::kCounter},
      {"mongogate_auth_failures_total", MetricType::kCounter},
      {"mongogate_bytes_in_total", MetricType::kCounter},
      {"mongogate_bytes_out_total", MetricType::kCounter},
      {"mongogate_stores_per_database", MetricType::kGauge},
      {"mongogate_registry_stores", MetricType::kGauge},
      {"mongogate_physical_database_requests_total", MetricType::kCounter},
      {"mongogate_config_reloads_total", MetricType::kCounter},
      {"mongogate_config_generation", MetricType::kGauge},
      {"mongogate_config_last_reload_success_timestamp_seconds", MetricType::kGauge},
      {"mongogate_upstream_breaker_state", MetricType::kGauge},
      {"mongogate_upstream_servers", MetricType::kGauge},
  };
  for (const auto& [name, type] : expected) {
    const MetricInfo* found = nullptr;
    for (const MetricInfo& metric : kMetrics) {
      if (metric.name == name) found = &metric;
    }
    ASSERT_NE(found, nullptr) << name;
    EXPECT_EQ(found->type, type) << name;
  }
  EXPECT_EQ(std::size(kMetrics), std::size(expected));
}

TEST(MetricsTest, PhysicalDatabasesAreNamedAtScrapeTimeAndBounded) {
  Metrics metrics(2, {"main"}, {"main"});
  metrics.shardFor(0).recordPhysicalDatabase(0);
  metrics.shardFor(1).recordPhysicalDatabase(2);
  metrics.shardFor(1).recordPhysicalDatabase(2);
  metrics.shardFor(0).recordPhysicalDatabase(7);                       // past the names: other
  metrics.shardFor(0).recordPhysicalDatabase(kPhysicalDatabaseOther);
  metrics.shardFor(0).recordPhysicalDatabase(123456);                  // out of range: other
  GaugeValues gauges;
  gauges.physicalDatabases = {"main_db", "pos_db_1", "pos_db_2"};
  const std::string text = metrics.render(gauges);
  EXPECT_NE(text.find("mongogate_physical_database_requests_total{database=\"main_db\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("mongogate_physical_database_requests_total{database=\"pos_db_2\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("mongogate_physical_database_requests_total{database=\"other\"} 3\n"), std::string::npos);
  EXPECT_EQ(text.find("database=\"pos_db_1\""), std::string::npos);  // never used: not shown
}

TEST(MetricsTest, CommandNamesOutsideTheListCountAsOther) {
  EXPECT_EQ(kCommandLabels[commandIndex("find")], "find");
  EXPECT_EQ(kCommandLabels[commandIndex("isMaster")], "hello");
  EXPECT_EQ(kCommandLabels[commandIndex("ismaster")], "hello");
  EXPECT_EQ(kCommandLabels[commandIndex("frobnicate")], "other");
  EXPECT_EQ(kCommandLabels[commandIndex("")], "other");
  EXPECT_EQ(kCommandLabels[commandIndex("other")], "other");
}

TEST(MetricsTest, ShardsAreSummedAtScrapeTime) {
  Metrics metrics = twoShardMetrics();
  const std::size_t find = commandIndex("find");
  metrics.shardFor(0).recordRequest(find, DatabaseClass::kMain, 0, RequestResult::kOk, 1'000'000);
  metrics.shardFor(1).recordRequest(find, DatabaseClass::kMain, 0, RequestResult::kOk, 3'000'000);
  metrics.shardFor(1).recordRequest(find, DatabaseClass::kStore, 1, RequestResult::kRefused, 10);
  metrics.shardFor(0).addBytesIn(100);
  metrics.shardFor(1).addBytesIn(50);
  metrics.shardFor(1).addBytesOut(7);
  EXPECT_EQ(metrics.requests(find, DatabaseClass::kMain, 0, RequestResult::kOk), 2u);
  EXPECT_EQ(metrics.requests(find, DatabaseClass::kStore, 1, RequestResult::kRefused), 1u);
  EXPECT_EQ(metrics.bytesIn(), 150u);
  EXPECT_EQ(metrics.bytesOut(), 7u);

  const std::string text = metrics.render({});
  EXPECT_EQ(sampleValue(text, R"(mongogate_requests_total{command="find",database="main",upstream="main",result="ok"})"), 2);
  EXPECT_EQ(sampleValue(text, R"(mongogate_requests_total{command="find",database="store",upstream="masteradmin",result="refused"})"), 1);
  EXPECT_EQ(sampleValue(text, "mongogate_bytes_in_total"), 150);
  EXPECT_EQ(sampleValue(text, "mongogate_bytes_out_total"), 7);
  // 1 ms and 3 ms: both within 5 ms, one within 1 ms; the sum is 4 ms.
  EXPECT_EQ(sampleValue(text, R"(mongogate_request_duration_seconds_bucket{command="find",le="0.001"})"), 2);  // 10 ns too
  EXPECT_EQ(sampleValue(text, R"(mongogate_request_duration_seconds_bucket{command="find",le="0.0025"})"), 2);
  EXPECT_EQ(sampleValue(text, R"(mongogate_request_duration_seconds_bucket{command="find",le="0.005"})"), 3);
  EXPECT_EQ(sampleValue(text, R"(mongogate_request_duration_seconds_bucket{command="find",le="+Inf"})"), 3);
  EXPECT_EQ(sampleValue(text, R"(mongogate_request_duration_seconds_count{command="find"})"), 3);
  EXPECT_NEAR(sampleValue(text, R"(mongogate_request_duration_seconds_sum{command="find"})"), 0.00400001, 1e-9);
}

TEST(MetricsTest, WorkerIndexesWrapOntoTheShards) {
  Metrics metrics = twoShardMetrics();
  EXPECT_EQ(metrics.shardCount(), 2u);
  EXPECT_EQ(&metrics.shardFor(0), &metrics.shardFor(2));
  EXPECT_NE(&metrics.shardFor(0), &metrics.shardFor(1));
}

TEST(MetricsTest, UpstreamLabelsAreTheConfiguredNamesThenNoneAndFanOut) {
  Metrics metrics = twoShardMetrics();
  EXPECT_EQ(metrics.upstreamIndex("main"), 0u);
  EXPECT_EQ(metrics.upstreamIndex("masteradmin"), 1u);
  EXPECT_EQ(metrics.upstreamIndex("nope"), metrics.noUpstream());
  EXPECT_EQ(metrics.upstreamLabels()[metrics.noUpstream()], "none");
  EXPECT_EQ(metrics.upstreamLabels()[metrics.fanOutUpstream()], "fan_out");
}

TEST(MetricsTest, ConcurrentWritersEachOnTheirOwnShardLoseNothing) {
  Metrics metrics(4, {"main"}, {"main"});
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&metrics, t] {
      MetricsShard& shard = metrics.shardFor(t);
      for (int i = 0; i < 10000; ++i) {
        shard.recordRequest(0, DatabaseClass::kOther, 0, RequestResult::kOk, 5);
        shard.addBytesIn(1);
      }
    });
  }
  // A scrape while they write must not crash or tear (TSan/ASan builds check this).
  for (int i = 0; i < 20; ++i) (void)metrics.render({});
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(metrics.requests(0, DatabaseClass::kOther, 0, RequestResult::kOk), 40000u);
  EXPECT_EQ(metrics.bytesIn(), 40000u);
}

TEST(MetricsTextTest, EveryMetricHasOneHelpAndOneTypeLineInTableOrder) {
  Metrics metrics = twoShardMetrics();
  const std::string text = metrics.render({});
  std::size_t position = 0;
  for (const MetricInfo& metric : kMetrics) {
    const std::string help = "# HELP " + std::string(metric.name) + " ";
    const std::string type = "# TYPE " + std::string(metric.name) + " " + toString(metric.type) + "\n";
    const std::size_t at = text.find(help, position);
    ASSERT_NE(at, std::string::npos) << metric.name;
    EXPECT_EQ(text.find(help, at + 1), std::string::npos) << "two HELP lines for " << metric.name;
    const std::size_t typeAt = text.find(type, at);
    ASSERT_NE(typeAt, std::string::npos) << metric.name;
    position = typeAt;
  }
}

TEST(MetricsTextTest, EveryLineIsACommentOrAWellFormedSample) {
  Metrics metrics = twoShardMetrics();
  metrics.shardFor(0).recordRequest(commandIndex("insert"), DatabaseClass::kMasterAdmin, 1, RequestResult::kOk, 1);
  metrics.shardFor(0).recordPoolWait(0, 2'000'000);
  metrics.shardFor(1).recordPoolTimeout(0);
  metrics.shardFor(1).recordRefusal(RefusalReason::kRouting);
  metrics.shardFor(1).recordAuthFailure();
  GaugeValues gauges;
  gauges.clientConnections = 3;
  gauges.openTransactions = 2;
  gauges.pools = {{"main", 2, 1}};
  gauges.storesPerDatabase = {{"pos_db_1", 4}};
  gauges.registryStores = 4;
  const std::string text = metrics.render(gauges);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  for (const std::string& line : lines(text)) {
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) continue;
    EXPECT_TRUE(wellFormedSample(line)) << line;
  }
  EXPECT_EQ(sampleValue(text, "mongogate_client_connections"), 3);
  EXPECT_EQ(sampleValue(text, "mongogate_open_transactions"), 2);
  EXPECT_EQ(sampleValue(text, R"(mongogate_upstream_connections{upstream="main",state="idle"})"), 2);
  EXPECT_EQ(sampleValue(text, R"(mongogate_upstream_connections{upstream="main",state="busy"})"), 1);
  EXPECT_EQ(sampleValue(text, R"(mongogate_pool_wait_seconds_count{upstream="main"})"), 1);
  EXPECT_EQ(sampleValue(text, R"(mongogate_pool_wait_seconds_bucket{upstream="main",le="0.001"})"), 0);
  EXPECT_EQ(sampleValue(text, R"(mongogate_pool_wait_seconds_bucket{upstream="main",le="0.0025"})"), 1);
  EXPECT_EQ(sampleValue(text, R"(mongogate_pool_timeouts_total{upstream="main"})"), 1);
  EXPECT_EQ(sampleValue(text, R"(mongogate_refused_commands_total{reason="routing"})"), 1);
  EXPECT_EQ(sampleValue(text, R"(mongogate_refused_commands_total{reason="legacy_opcode"})"), 0);
  EXPECT_EQ(sampleValue(text, "mongogate_auth_failures_total"), 1);
  EXPECT_EQ(sampleValue(text, R"(mongogate_stores_per_database{database="pos_db_1"})"), 4);
  EXPECT_EQ(sampleValue(text, "mongogate_registry_stores"), 4);
}

TEST(MetricsTextTest, UnusedRequestSeriesAreLeftOut) {
  Metrics metrics = twoShardMetrics();
  const std::string text = metrics.render({});
  EXPECT_EQ(text.find("mongogate_requests_total{"), std::string::npos);
  EXPECT_EQ(text.find("mongogate_request_duration_seconds_bucket{"), std::string::npos);
}

TEST(MetricsTextTest, LabelValuesAreEscaped) {
  EXPECT_EQ(escapeLabelValue(R"(a"b)"), R"(a\"b)");
  EXPECT_EQ(escapeLabelValue("a\\b"), "a\\\\b");
  EXPECT_EQ(escapeLabelValue("a\nb"), "a\\nb");
  EXPECT_EQ(escapeLabelValue("plain"), "plain");
  EXPECT_EQ(escapeHelp("a\\b\nc\"d"), "a\\\\b\\nc\"d");

  Metrics metrics(1, {"main"}, {"we\"ird\\pool\n"});
  GaugeValues gauges;
  gauges.storesPerDatabase = {{"db\"x", 1}};
  const std::string text = metrics.render(gauges);
  EXPECT_NE(text.find(R"(mongogate_pool_timeouts_total{upstream="we\"ird\\pool\n"} 0)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(mongogate_stores_per_database{database="db\"x"} 1)"), std::string::npos);
}

TEST(MetricsTextTest, BreakerStatesAndServerCountsByType) {
  Metrics metrics(1, {"main"}, {"main"});
  GaugeValues gauges;
  gauges.servers = {{"main", "a:1", "RSPrimary", 0}, {"main", "b:2", "RSSecondary", 2}, {"main", "c:3", "RSSecondary", 1}};
  const std::string text = metrics.render(gauges);
  EXPECT_NE(text.find(R"(mongogate_upstream_breaker_state{upstream="main",server="b:2"} 2)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(mongogate_upstream_breaker_state{upstream="main",server="c:3"} 1)"), std::string::npos);
  EXPECT_NE(text.find(R"(mongogate_upstream_servers{upstream="main",type="RSSecondary"} 2)"), std::string::npos);
  EXPECT_NE(text.find(R"(mongogate_upstream_servers{upstream="main",type="RSPrimary"} 1)"), std::string::npos);
}

}  // namespace
}  // namespace mongogate::admin
