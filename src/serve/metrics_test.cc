// Prometheus metrics: the exposition text (checked against hand-written
// expectations from the 0.0.4 format and by promtool), atomic updates under
// many threads, callbacks, and GET /metrics on a running server.
#include "serve/metrics.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include "serve/feature_server.h"

namespace keel::serve {
namespace {

namespace fs = std::filesystem;

TEST(Metrics, ExpositionFollowsTheTextFormat) {
  MetricsRegistry registry;
  CounterFamily& requests =
      registry.AddCounter("http_requests_total", "Requests answered.", {"method", "code"});
  // Created out of order: series are written sorted by label values.
  Counter& post = requests.With({"POST", "400"});
  Counter& get = requests.With({"GET", "200"});
  get.Inc();
  get.Inc(2);
  post.Inc();
  post.Add(0.5);
  post.Add(-7);  // ignored: counters never go down
  registry.AddGauge("temperature_celsius", "Current temperature.").Get().Set(-3.5);
  HistogramFamily& rpc =
      registry.AddHistogram("rpc_seconds", "RPC latency.", {"op"}, {0.05, 0.5, 1});
  Histogram& read = rpc.With({"read"});
  read.Observe(0.25);
  read.Observe(0.5);  // on a bound: counted in that bound's bucket (v <= le)
  read.Observe(2);
  registry.AddCounter("unused_total", "Nothing yet.", {"kind"});
  MetricRegistration queue =
      registry.AddCallback(MetricType::kGauge, "queue_length", "Items waiting.", {"queue"}, [] {
        return std::vector<MetricSample>{{{"b"}, 0.25}, {{"a"}, 7}};
      });

  EXPECT_EQ(registry.Exposition(),
            "# HELP http_requests_total Requests answered.\n"
            "# TYPE http_requests_total counter\n"
            "http_requests_total{method=\"GET\",code=\"200\"} 3\n"
            "http_requests_total{method=\"POST\",code=\"400\"} 1.5\n"
            "# HELP queue_length Items waiting.\n"
            "# TYPE queue_length gauge\n"
            "queue_length{queue=\"a\"} 7\n"
            "queue_length{queue=\"b\"} 0.25\n"
            "# HELP rpc_seconds RPC latency.\n"
            "# TYPE rpc_seconds histogram\n"
            "rpc_seconds_bucket{op=\"read\",le=\"0.05\"} 0\n"
            "rpc_seconds_bucket{op=\"read\",le=\"0.5\"} 2\n"
            "rpc_seconds_bucket{op=\"read\",le=\"1\"} 2\n"
            "rpc_seconds_bucket{op=\"read\",le=\"+Inf\"} 3\n"
            "rpc_seconds_sum{op=\"read\"} 2.75\n"
            "rpc_seconds_count{op=\"read\"} 3\n"
            "# HELP temperature_celsius Current temperature.\n"
            "# TYPE temperature_celsius gauge\n"
            "temperature_celsius -3.5\n"
            "# HELP unused_total Nothing yet.\n"
            "# TYPE unused_total counter\n");
}

TEST(Metrics, EscapesLabelValuesAndHelp) {
  MetricsRegistry registry;
  registry.AddCounter("odd_total", "Back\\slash and\nnewline, \"quotes\" kept.", {"model"})
      .With({"a\\b\"c\nd"})
      .Inc();
  EXPECT_EQ(registry.Exposition(),
            "# HELP odd_total Back\\\\slash and\\nnewline, \"quotes\" kept.\n"
            "# TYPE odd_total counter\n"
            "odd_total{model=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(Metrics, WritesSpecialAndFractionalValuesAsPrometheusReadsThem) {
  MetricsRegistry registry;
  GaugeFamily& values = registry.AddGauge("values", "Values.", {"case"});
  values.With({"a_inf"}).Set(std::numeric_limits<double>::infinity());
  values.With({"b_minus_inf"}).Set(-std::numeric_limits<double>::infinity());
  values.With({"c_nan"}).Set(std::nan(""));
  values.With({"d_small"}).Set(0.00005);
  values.With({"e_large"}).Set(1e20);
  values.With({"f_tenth"}).Set(0.1);
  values.With({"g_big_int"}).Set(123456789012);
  values.With({"h_zero"}).Set(-0.0);
  EXPECT_EQ(registry.Exposition(),
            "# HELP values Values.\n"
            "# TYPE values gauge\n"
            "values{case=\"a_inf\"} +Inf\n"
            "values{case=\"b_minus_inf\"} -Inf\n"
            "values{case=\"c_nan\"} NaN\n"
            "values{case=\"d_small\"} 5e-05\n"
            "values{case=\"e_large\"} 1e+20\n"
            "values{case=\"f_tenth\"} 0.1\n"
            "values{case=\"g_big_int\"} 123456789012\n"
            "values{case=\"h_zero\"} 0\n");
}

TEST(Metrics, HistogramBucketsAreCumulativeWithSumAndCount) {
  MetricsRegistry registry;
  Histogram& latency = registry.AddHistogram("latency_seconds", "Latency.", {}).Get();
  const std::vector<double>& bounds = DefaultLatencyBounds();
  ASSERT_EQ(bounds.front(), 0.00005);
  ASSERT_EQ(bounds.back(), 10);
  // One observation just below each bound and one above the last.
  double sum = 0;
  for (double bound : bounds) {
    latency.Observe(bound * 0.75);
    sum += bound * 0.75;
  }
  latency.Observe(60);
  sum += 60;
  Histogram::Snapshot snapshot = latency.Read();
  ASSERT_EQ(snapshot.cumulative.size(), bounds.size() + 1);
  for (size_t i = 0; i < snapshot.cumulative.size(); ++i) {
    EXPECT_EQ(snapshot.cumulative[i], i + 1) << "bucket " << i;
  }
  EXPECT_EQ(snapshot.count, bounds.size() + 1);
  EXPECT_DOUBLE_EQ(snapshot.sum, sum);
  std::string text = registry.Exposition();
  EXPECT_NE(text.find("latency_seconds_bucket{le=\"5e-05\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_bucket{le=\"0.00025\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_bucket{le=\"10\"} 17\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_bucket{le=\"+Inf\"} 18\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_count 18\n"), std::string::npos) << text;

  // NaN counts in +Inf and makes the sum NaN, as Prometheus' own clients do.
  latency.Observe(std::nan(""));
  snapshot = latency.Read();
  EXPECT_EQ(snapshot.cumulative[bounds.size() - 1], bounds.size());
  EXPECT_EQ(snapshot.count, bounds.size() + 2);
  EXPECT_TRUE(std::isnan(snapshot.sum));
}

TEST(Metrics, ManyThreadsGiveExactTotals) {
  MetricsRegistry registry;
  CounterFamily& counters = registry.AddCounter("hits_total", "Hits.", {"model"});
  GaugeFamily& gauges = registry.AddGauge("level", "Level.", {"model"});
  HistogramFamily& histograms =
      registry.AddHistogram("work_seconds", "Work.", {"model"}, {1, 2, 3});
  constexpr int kThreads = 8;
  constexpr int kRounds = 50000;
  std::vector<std::thread> threads;
  std::atomic<bool> stop_scraping{false};
  // A scraper runs all along: writing must not disturb the writers.
  std::thread scraper([&] {
    while (!stop_scraping) (void)registry.Exposition();
  });
  for (int thread = 0; thread < kThreads; ++thread) {
    threads.emplace_back([&, thread] {
      // Every thread looks the series up itself (creation races included).
      Counter& counter = counters.With({"shared"});
      Counter& own = counters.With({"t" + std::to_string(thread)});
      Gauge& gauge = gauges.With({"shared"});
      Histogram& histogram = histograms.With({"shared"});
      for (int round = 0; round < kRounds; ++round) {
        counter.Inc();
        own.Add(0.5);
        gauge.Inc();
        if (round % 2 == 1) gauge.Dec();
        histogram.Observe(round % 4);  // 0, 1, 2, 3 in turn
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  stop_scraping = true;
  scraper.join();
  EXPECT_EQ(counters.With({"shared"}).Value(), kThreads * kRounds);
  for (int thread = 0; thread < kThreads; ++thread) {
    EXPECT_EQ(counters.With({"t" + std::to_string(thread)}).Value(), kRounds * 0.5);
  }
  EXPECT_EQ(gauges.With({"shared"}).Value(), kThreads * kRounds / 2);
  Histogram::Snapshot snapshot = histograms.With({"shared"}).Read();
  const uint64_t quarter = kThreads * kRounds / 4;
  EXPECT_EQ(snapshot.cumulative,
            (std::vector<uint64_t>{2 * quarter, 3 * quarter, 4 * quarter, 4 * quarter}));
  EXPECT_EQ(snapshot.sum, static_cast<double>(quarter * (0 + 1 + 2 + 3)));
  EXPECT_EQ(&counters.With({"shared"}), &counters.With({"shared"}));
}

TEST(Metrics, CallbacksAreReadAtScrapeAndGoWithTheirRegistration) {
  MetricsRegistry registry;
  std::atomic<int> dropped{0};
  {
    MetricRegistration registration =
        registry.AddCallback(MetricType::kCounter, "log_dropped_total", "Records dropped.",
                             [&dropped] { return static_cast<double>(dropped.load()); });
    dropped = 4;
    EXPECT_EQ(registry.Exposition(),
              "# HELP log_dropped_total Records dropped.\n"
              "# TYPE log_dropped_total counter\n"
              "log_dropped_total 4\n");
    dropped = 9;
    MetricRegistration moved = std::move(registration);
    EXPECT_NE(registry.Exposition().find("log_dropped_total 9\n"), std::string::npos);
  }
  // Unregistered: the callback (which captured a local) is never called again.
  EXPECT_EQ(registry.Exposition(), "");
  // The name is free again.
  MetricRegistration again =
      registry.AddCallback(MetricType::kGauge, "log_dropped_total", "Again.", [] { return 1.0; });
  EXPECT_NE(registry.Exposition().find("log_dropped_total 1\n"), std::string::npos);
}

TEST(Metrics, CallbackDuplicatesAndShortLabelsAreTidied) {
  MetricsRegistry registry;
  MetricRegistration registration =
      registry.AddCallback(MetricType::kGauge, "store_state", "State.", {"store", "state"}, [] {
        return std::vector<MetricSample>{{{"redis", "up"}, 1}, {{"redis", "up"}, 2}, {{"x"}, 3}};
      });
  EXPECT_EQ(registry.Exposition(),
            "# HELP store_state State.\n"
            "# TYPE store_state gauge\n"
            "store_state{store=\"redis\",state=\"up\"} 1\n"
            "store_state{store=\"x\",state=\"\"} 3\n");
}

TEST(Metrics, SameDefinitionGivesTheSameFamily) {
  MetricsRegistry registry;
  ServingMetrics first(&registry);
  ServingMetrics second(&registry);
  EXPECT_EQ(&first.predictions, &second.predictions);
  EXPECT_EQ(&first.in_flight, &second.in_flight);
  {
    InFlight request(&first.in_flight);
    EXPECT_EQ(second.in_flight.Value(), 1);
  }
  EXPECT_EQ(second.in_flight.Value(), 0);
}

TEST(MetricsDeathTest, WrongDefinitionsAbortNamingTheMetric) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MetricsRegistry registry;
  registry.AddCounter("taken_total", "Taken.", {"a"});
  EXPECT_DEATH(registry.AddGauge("taken_total", "Taken.", {"a"}), "taken_total");
  EXPECT_DEATH(registry.AddCounter("taken_total", "Taken.", {"b"}), "taken_total");
  EXPECT_DEATH(registry.AddCounter("bad-name", "Bad."), "bad-name");
  EXPECT_DEATH(registry.AddCounter("ok_total", "Bad label.", {"__reserved"}), "__reserved");
  EXPECT_DEATH(registry.AddHistogram("h_seconds", "Le.", {"le"}), "le");
  EXPECT_DEATH(registry.AddHistogram("h_seconds", "Unsorted.", {}, {1, 0.5}), "increasing");
  EXPECT_DEATH(
      (void)registry.AddCallback(MetricType::kGauge, "taken_total", "Taken.", [] { return 0.0; }),
      "taken_total");
}

// promtool (Debian's prometheus package; scripts/setup installs it) is
// Prometheus' own parser and linter: the exposition must pass `promtool check
// metrics` with no complaint.
TEST(Metrics, PromtoolAcceptsTheServingExposition) {
  ASSERT_EQ(std::system("command -v promtool >/dev/null 2>&1"), 0)
      << "promtool not found: run scripts/setup (it installs Debian's prometheus package)";
  MetricsRegistry registry;
  ServingMetrics serving(&registry);
  std::vector<MetricRegistration> process = RegisterProcessMetrics(&registry);
  serving.predictions.With({"delay", "3", "ok"}).Inc(5);
  serving.predictions.With({"delay", "3", "bad_request"}).Inc();
  serving.latency.With({"delay", "total"}).Observe(0.0012);
  serving.latency.With({"delay", "features"}).Observe(0.0004);
  serving.latency.With({"delay", "model"}).Observe(0.00003);
  serving.feature_missing.With({"delay", "route_stats__delay_mean_7d"}).Inc();
  serving.model_loads.With({"delay", "ok"}).Inc();
  serving.model_swaps.With({"delay"}).Inc();
  serving.in_flight.Set(2);
  registry.AddGauge("keel_odd_labels", "Odd \"label\" values\\ and\nlines.", {"value"})
      .With({"quote \" backslash \\ newline \n unicode \xc3\xa9"})
      .Set(std::nan(""));
  registry.AddGauge("keel_infinite", "Infinite values.", {"sign"}).With({"plus"}).Set(INFINITY);
  std::string text = registry.Exposition();
  for (const char* family :
       {"keel_predictions_total", "keel_prediction_latency_seconds", "keel_feature_missing_total",
        "keel_model_loads_total", "keel_model_swaps_total", "keel_requests_in_flight 2",
        "keel_build_info{version=", "process_start_time_seconds", "process_cpu_seconds_total",
        "process_resident_memory_bytes", "process_open_fds"}) {
    EXPECT_NE(text.find(family), std::string::npos) << family << "\n" << text;
  }
  fs::path file = fs::temp_directory_path() / ("keel_metrics_" + std::to_string(::getpid()));
  {
    std::ofstream out(file);
    out << text;
  }
  fs::path report = file.string() + ".out";
  int status = std::system(
      ("promtool check metrics < " + file.string() + " > " + report.string() + " 2>&1").c_str());
  std::ifstream in(report);
  std::string complaints((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(status, 0) << complaints << "\n" << text;
  EXPECT_EQ(complaints, "") << text;
  fs::remove(file);
  fs::remove(report);
}

// promtool must not pass anything: a broken exposition is refused (so the
// test above means something).
TEST(Metrics, PromtoolRefusesABrokenExposition) {
  ASSERT_EQ(std::system("command -v promtool >/dev/null 2>&1"), 0) << "promtool not found";
  int status = std::system(
      "printf '# TYPE x counter\\nx{a=\"unterminated} 1\\n' | promtool check metrics "
      ">/dev/null 2>&1");
  EXPECT_NE(status, 0);
}

TEST(Metrics, ServedOnGetMetrics) {
  fs::path dir = fs::temp_directory_path() / ("keel_metrics_route_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  MetricsRegistry registry;
  registry.AddCounter("keel_test_total", "A test counter.").Get().Inc(3);
  ServerOptions options;
  options.port = 0;
  options.threads = 2;
  options.routes.push_back(MetricsRoute(&registry));
  Result<std::unique_ptr<features::Catalog>> catalog =
      features::Catalog::Open((dir / "catalog.db").string());
  ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
  Result<std::unique_ptr<FeatureServer>> server = FeatureServer::Make(
      std::move(options), std::move(*catalog), store::NewMemoryStore("metrics"));
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ASSERT_TRUE((*server)->Bind().ok());
  std::thread runner([&] { (void)(*server)->Run(); });
  httplib::Client client("127.0.0.1", (*server)->port());
  auto response = client.Get("/metrics");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(response->body,
            "# HELP keel_test_total A test counter.\n"
            "# TYPE keel_test_total counter\n"
            "keel_test_total 3\n");
  auto post = client.Post("/metrics", "", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  (*server)->Shutdown();
  runner.join();
  server->reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace keel::serve
