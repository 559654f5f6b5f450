#pragma once

// Prometheus metrics of `keel serve`: counters, gauges and histograms kept in
// process and written in Prometheus' text exposition format 0.0.4 on
// GET /metrics.
//
// A metric is a family (a name, a help text, label names) of series, one per
// combination of label values. `family.With({"delay", "7", "ok"})` returns
// the series for those values, created on first use and never moved or
// freed while the registry lives: callers look a series up once (that takes
// a lock) and keep the reference; Inc / Add / Set / Observe on it are
// lock-free atomics. A family without labels has its one series from the
// start (`family.With({})`, or `Get()`).
//
// Label values are caller data (model names, feature names): each distinct
// value makes a series that lives as long as the registry, so create series
// only for values the server knows (a loaded model, a bundle's feature), never
// straight from a request field.
//
// Values a module owns itself (a queue's dropped count, a store's state) are
// exported with callback metrics: a function the scrape calls. Its
// registration unregisters it when destroyed, so the callback may capture the
// module's `this`.
//
// Defining a metric wrongly (an invalid name or label name, the same name
// twice with another type, labels or buckets, a callback's name taken) is a
// programmer error: it aborts with a message naming the metric.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "serve/http_route.h"

namespace keel::serve {

// A value that only goes up (requests, errors, seconds spent).
// Thread-safety: every method may be called from many threads at once (lock-free).
class Counter {
 public:
  // Adds one.
  void Inc() { whole_.fetch_add(1, std::memory_order_relaxed); }
  // Adds `count`.
  void Inc(uint64_t count) { whole_.fetch_add(count, std::memory_order_relaxed); }
  // Adds `amount`; a negative or NaN amount is ignored (a counter never goes down).
  void Add(double amount);
  // The current total.
  double Value() const;

 private:
  // Whole increments are exact integers; fractional ones (seconds) go to a double.
  std::atomic<uint64_t> whole_{0};
  std::atomic<double> fraction_{0};
};

// A value that goes up and down (requests in flight, queue length).
// Thread-safety: every method may be called from many threads at once (lock-free).
class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
  void Inc() { Add(1); }
  void Dec() { Add(-1); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Counts observations (latencies in seconds) in buckets with fixed upper
// bounds, plus their sum and count. A value v falls in the first bucket whose
// bound b has v <= b, or in the +Inf bucket.
// Thread-safety: every method may be called from many threads at once
// (lock-free). A Read racing with Observe may see the sum of an observation
// before or after its bucket; the count always equals the buckets' total.
class Histogram {
 public:
  // `bounds` (sorted, finite) must outlive the histogram.
  explicit Histogram(const std::vector<double>* bounds);

  void Observe(double value);
  // Observes the seconds since `start`.
  void ObserveSince(std::chrono::steady_clock::time_point start);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // per bound, then +Inf: observations <= bound
    double sum = 0;
    uint64_t count = 0;  // == cumulative.back()
  };
  Snapshot Read() const;

 private:
  const std::vector<double>* bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_->size() + 1, not cumulative
  std::atomic<double> sum_{0};
};

// The bucket bounds of latency histograms, in seconds: 50 us to 10 s.
const std::vector<double>& DefaultLatencyBounds();

enum class MetricType { kCounter, kGauge, kHistogram };

// One metric family, as the registry writes it. Not used directly.
// Thread-safety: Write may run concurrently with the families' own methods.
class MetricFamily {
 public:
  virtual ~MetricFamily() = default;
  const std::string& name() const { return name_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Appends "# HELP", "# TYPE" and every sample, series sorted by label values.
  void Write(std::string* out) const;

 protected:
  MetricFamily(MetricType type, std::string name, std::string help,
               std::vector<std::string> label_names);
  virtual void WriteSamples(std::string* out) const = 0;

  MetricType type_;
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
};

// Series keyed by label values.
// Thread-safety: With may be called from many threads at once.
template <typename Series>
class Family : public MetricFamily {
 public:
  // The series for `label_values` (one per label name, in order), created on
  // first use; the reference stays valid while the registry lives. A wrong
  // number of values is a programmer error (it asserts; a release build pads
  // with "" or drops the extra values).
  Series& With(const std::vector<std::string>& label_values);
  // The series of a family without labels.
  Series& Get() { return With({}); }

 protected:
  using MetricFamily::MetricFamily;
  virtual std::unique_ptr<Series> NewSeries() const = 0;
  virtual void WriteSeries(const std::string& labels, const Series& series,
                           std::string* out) const = 0;
  void WriteSamples(std::string* out) const final;

  mutable std::shared_mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Series>> series_;  // GUARDED_BY(mutex_)
};

class CounterFamily final : public Family<Counter> {
 public:
  CounterFamily(std::string name, std::string help, std::vector<std::string> label_names);

 private:
  std::unique_ptr<Counter> NewSeries() const override;
  void WriteSeries(const std::string& labels, const Counter& series,
                   std::string* out) const override;
};

class GaugeFamily final : public Family<Gauge> {
 public:
  GaugeFamily(std::string name, std::string help, std::vector<std::string> label_names);

 private:
  std::unique_ptr<Gauge> NewSeries() const override;
  void WriteSeries(const std::string& labels, const Gauge& series, std::string* out) const override;
};

class HistogramFamily final : public Family<Histogram> {
 public:
  HistogramFamily(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds);
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::unique_ptr<Histogram> NewSeries() const override;
  void WriteSeries(const std::string& labels, const Histogram& series,
                   std::string* out) const override;
  std::vector<double> bounds_;
};

// One sample of a callback metric.
struct MetricSample {
  std::vector<std::string> label_values;  // one per label name, in order
  double value = 0;
};

class MetricsRegistry;

// Keeps a callback metric registered; unregisters it when destroyed (waiting
// for a scrape that is calling it). Movable; an empty one does nothing.
// Thread-safety: as a value; destroy it before the registry.
class MetricRegistration {
 public:
  MetricRegistration() = default;
  MetricRegistration(MetricsRegistry* registry, std::string name)
      : registry_(registry), name_(std::move(name)) {}
  MetricRegistration(MetricRegistration&& other) noexcept;
  MetricRegistration& operator=(MetricRegistration&& other) noexcept;
  ~MetricRegistration();

 private:
  MetricsRegistry* registry_ = nullptr;
  std::string name_;
};

// The process' metrics: families by name, written in name order.
// Thread-safety: every method may be called from many threads at once.
// Callbacks run under the registry's lock: they must not call the registry.
class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Define a family, or return the one already defined with the same name,
  // type, label names (and bounds). Names match [a-zA-Z_:][a-zA-Z0-9_:]*,
  // label names [a-zA-Z_][a-zA-Z0-9_]* not starting with "__" ("le" is taken
  // by histograms). The reference lives as long as the registry.
  CounterFamily& AddCounter(const std::string& name, const std::string& help,
                            const std::vector<std::string>& label_names = {});
  GaugeFamily& AddGauge(const std::string& name, const std::string& help,
                        const std::vector<std::string>& label_names = {});
  // `bounds`: finite, strictly increasing upper bounds (+Inf is implied).
  HistogramFamily& AddHistogram(const std::string& name, const std::string& help,
                                const std::vector<std::string>& label_names,
                                const std::vector<double>& bounds = DefaultLatencyBounds());

  // A gauge or counter (type kGauge or kCounter) whose samples `collect`
  // returns at each scrape, labelled by `label_names`. Samples with the same
  // label values: the first one is written.
  [[nodiscard]] MetricRegistration AddCallback(MetricType type, const std::string& name,
                                               const std::string& help,
                                               const std::vector<std::string>& label_names,
                                               std::function<std::vector<MetricSample>()> collect);
  // One unlabelled value read at each scrape.
  [[nodiscard]] MetricRegistration AddCallback(MetricType type, const std::string& name,
                                               const std::string& help,
                                               std::function<double()> read);

  // Every family in the text exposition format 0.0.4, families sorted by
  // name, series by label values.
  std::string Exposition() const;

 private:
  friend class MetricRegistration;
  void Remove(const std::string& name);
  MetricFamily* Find(const std::string& name);

  mutable std::shared_mutex mutex_;
  std::map<std::string, std::unique_ptr<MetricFamily>> families_;  // GUARDED_BY(mutex_)
};

// The Content-Type of the exposition.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// GET /metrics: the registry's exposition. `registry` must outlive the route.
Route MetricsRoute(const MetricsRegistry* registry);

// Metrics of the process: keel_build_info{version, commit} (always 1),
// process_start_time_seconds, process_cpu_seconds_total,
// process_resident_memory_bytes and process_open_fds (from /proc; absent
// where it cannot be read). Keep the registration while the registry serves.
[[nodiscard]] std::vector<MetricRegistration> RegisterProcessMetrics(MetricsRegistry* registry);

// The families of the prediction API (issue 6), defined on one registry.
// Look series up once per model (With takes a lock) and keep them.
// Thread-safety: as the families.
struct ServingMetrics {
  explicit ServingMetrics(MetricsRegistry* registry);

  // keel_predictions_total{model, version, status}: predictions answered;
  // status "ok", or the error class ("bad_request", "not_found", "unavailable", "error").
  CounterFamily& predictions;
  // keel_prediction_latency_seconds{model, stage}: stage "total" (the whole
  // request), "features" (the online feature fetch) or "model" (transforms and model).
  HistogramFamily& latency;
  // keel_feature_missing_total{model, feature}: feature values the store did
  // not have (not found or older than their TTL) in answered predictions.
  CounterFamily& feature_missing;
  // keel_model_loads_total{model, result}: bundle loads, result "ok" or "error".
  CounterFamily& model_loads;
  // keel_model_swaps_total{model}: times the served version changed.
  CounterFamily& model_swaps;
  // keel_requests_in_flight: prediction requests being answered.
  Gauge& in_flight;
  // Distinct for every ServingMetrics of the process (never reused), so a
  // caller may cache series references of this one under it.
  const uint64_t id;
};

// Counts a request in flight for its lifetime.
// Thread-safety: one per request; the gauge is shared.
class InFlight {
 public:
  explicit InFlight(Gauge* gauge) : gauge_(gauge) { gauge_->Inc(); }
  ~InFlight() { gauge_->Dec(); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  Gauge* gauge_;
};

}  // namespace keel::serve
