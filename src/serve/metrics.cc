#include "serve/metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/files.h"

#ifndef KEEL_VERSION
#define KEEL_VERSION "unknown"
#endif

namespace keel::serve {

namespace {

[[noreturn]] void DefinitionError(const std::string& name, const std::string& problem) {
  std::fprintf(stderr, "keel: metric '%s': %s\n", name.c_str(), problem.c_str());
  std::abort();
}

bool IsMetricName(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool IsLabelName(const std::string& name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

void CheckDefinition(const std::string& name, const std::vector<std::string>& label_names,
                     MetricType type) {
  if (!IsMetricName(name)) DefinitionError(name, "not a valid metric name");
  std::set<std::string> seen;
  for (const std::string& label : label_names) {
    if (!IsLabelName(label)) DefinitionError(name, "'" + label + "' is not a valid label name");
    if (type == MetricType::kHistogram && label == "le") {
      DefinitionError(name, "a histogram cannot have a label 'le'");
    }
    if (!seen.insert(label).second) DefinitionError(name, "label '" + label + "' given twice");
  }
}

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// Prometheus parses sample values with Go's strconv.ParseFloat: integers,
// decimals, exponents, "+Inf", "-Inf" and "NaN" all read back exactly.
void AppendValue(double value, std::string* out) {
  if (std::isnan(value)) {
    out->append("NaN");
  } else if (std::isinf(value)) {
    out->append(value > 0 ? "+Inf" : "-Inf");
  } else if (value == std::trunc(value) && std::fabs(value) < 1e15) {
    out->append(std::to_string(static_cast<int64_t>(value)));
  } else {
    char buffer[64];
    auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
    out->append(buffer, error == std::errc() ? end : buffer);
  }
}

void AppendEscaped(std::string_view text, bool quote, std::string* out) {
  for (char c : text) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '"' && quote) {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

// `{a="1",b="2"}` without the braces, so a histogram can add le.
std::string LabelPairs(const std::vector<std::string>& names,
                       const std::vector<std::string>& values) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.append(names[i]).append("=\"");
    AppendEscaped(values[i], /*quote=*/true, &out);
    out.push_back('"');
  }
  return out;
}

void AppendSample(std::string_view name, std::string_view suffix, const std::string& labels,
                  double value, std::string* out) {
  out->append(name).append(suffix);
  if (!labels.empty()) out->append("{").append(labels).append("}");
  out->push_back(' ');
  AppendValue(value, out);
  out->push_back('\n');
}

void AppendSample(std::string_view name, std::string_view suffix, const std::string& labels,
                  uint64_t value, std::string* out) {
  out->append(name).append(suffix);
  if (!labels.empty()) out->append("{").append(labels).append("}");
  out->push_back(' ');
  out->append(std::to_string(value));
  out->push_back('\n');
}

// A callback gauge or counter.
class CallbackFamily final : public MetricFamily {
 public:
  CallbackFamily(MetricType type, std::string name, std::string help,
                 std::vector<std::string> label_names,
                 std::function<std::vector<MetricSample>()> collect)
      : MetricFamily(type, std::move(name), std::move(help), std::move(label_names)),
        collect_(std::move(collect)) {}

 private:
  void WriteSamples(std::string* out) const override {
    std::vector<MetricSample> samples = collect_();
    for (MetricSample& sample : samples) sample.label_values.resize(label_names_.size());
    std::stable_sort(samples.begin(), samples.end(),
                     [](const MetricSample& a, const MetricSample& b) {
                       return a.label_values < b.label_values;
                     });
    for (size_t i = 0; i < samples.size(); ++i) {
      if (i > 0 && samples[i].label_values == samples[i - 1].label_values) continue;
      AppendSample(name_, "", LabelPairs(label_names_, samples[i].label_values), samples[i].value,
                   out);
    }
  }

  std::function<std::vector<MetricSample>()> collect_;
};

}  // namespace

void Counter::Add(double amount) {
  if (!(amount > 0)) return;  // negative, zero or NaN
  fraction_.fetch_add(amount, std::memory_order_relaxed);
}

double Counter::Value() const {
  return static_cast<double>(whole_.load(std::memory_order_relaxed)) +
         fraction_.load(std::memory_order_relaxed);
}

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  // NaN compares false with every bound: it lands in +Inf (and makes the sum NaN).
  size_t bucket = std::lower_bound(bounds_->begin(), bounds_->end(), value) - bounds_->begin();
  if (std::isnan(value)) bucket = bounds_->size();
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

void Histogram::ObserveSince(std::chrono::steady_clock::time_point start) {
  Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snapshot;
  snapshot.cumulative.resize(bounds_->size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    snapshot.cumulative[i] = total;
  }
  snapshot.count = total;
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

const std::vector<double>& DefaultLatencyBounds() {
  static const std::vector<double> bounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                             0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                             0.5,     1,      2.5,     5,      10};
  return bounds;
}

MetricFamily::MetricFamily(MetricType type, std::string name, std::string help,
                           std::vector<std::string> label_names)
    : type_(type),
      name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)) {}

void MetricFamily::Write(std::string* out) const {
  out->append("# HELP ").append(name_).push_back(' ');
  AppendEscaped(help_, /*quote=*/false, out);
  out->append("\n# TYPE ").append(name_).push_back(' ');
  out->append(TypeName(type_)).push_back('\n');
  WriteSamples(out);
}

template <typename Series>
Series& Family<Series>::With(const std::vector<std::string>& label_values) {
  assert(label_values.size() == label_names_.size() && "wrong number of label values");
  const std::vector<std::string>* key = &label_values;
  std::vector<std::string> fixed;
  if (label_values.size() != label_names_.size()) {
    fixed = label_values;
    fixed.resize(label_names_.size());
    key = &fixed;
  }
  {
    std::shared_lock lock(mutex_);
    auto found = series_.find(*key);
    if (found != series_.end()) return *found->second;
  }
  std::unique_lock lock(mutex_);
  auto [position, inserted] = series_.try_emplace(*key);
  if (inserted) position->second = NewSeries();
  return *position->second;
}

template <typename Series>
void Family<Series>::WriteSamples(std::string* out) const {
  std::shared_lock lock(mutex_);
  for (const auto& [values, series] : series_) {
    WriteSeries(LabelPairs(label_names_, values), *series, out);
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

CounterFamily::CounterFamily(std::string name, std::string help,
                             std::vector<std::string> label_names)
    : Family(MetricType::kCounter, std::move(name), std::move(help), std::move(label_names)) {
  if (label_names_.empty()) Get();
}

std::unique_ptr<Counter> CounterFamily::NewSeries() const { return std::make_unique<Counter>(); }

void CounterFamily::WriteSeries(const std::string& labels, const Counter& series,
                                std::string* out) const {
  AppendSample(name_, "", labels, series.Value(), out);
}

GaugeFamily::GaugeFamily(std::string name, std::string help, std::vector<std::string> label_names)
    : Family(MetricType::kGauge, std::move(name), std::move(help), std::move(label_names)) {
  if (label_names_.empty()) Get();
}

std::unique_ptr<Gauge> GaugeFamily::NewSeries() const { return std::make_unique<Gauge>(); }

void GaugeFamily::WriteSeries(const std::string& labels, const Gauge& series,
                              std::string* out) const {
  AppendSample(name_, "", labels, series.Value(), out);
}

HistogramFamily::HistogramFamily(std::string name, std::string help,
                                 std::vector<std::string> label_names, std::vector<double> bounds)
    : Family(MetricType::kHistogram, std::move(name), std::move(help), std::move(label_names)),
      bounds_(std::move(bounds)) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i])) DefinitionError(name_, "bucket bounds must be finite");
    if (i > 0 && !(bounds_[i - 1] < bounds_[i])) {
      DefinitionError(name_, "bucket bounds must be strictly increasing");
    }
  }
  if (label_names_.empty()) Get();
}

std::unique_ptr<Histogram> HistogramFamily::NewSeries() const {
  return std::make_unique<Histogram>(&bounds_);
}

void HistogramFamily::WriteSeries(const std::string& labels, const Histogram& series,
                                  std::string* out) const {
  Histogram::Snapshot snapshot = series.Read();
  std::string prefix = labels.empty() ? std::string() : labels + ",";
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    std::string le = prefix + "le=\"";
    if (i < bounds_.size()) {
      AppendValue(bounds_[i], &le);
    } else {
      le += "+Inf";
    }
    le += '"';
    AppendSample(name_, "_bucket", le, snapshot.cumulative[i], out);
  }
  AppendSample(name_, "_sum", labels, snapshot.sum, out);
  AppendSample(name_, "_count", labels, snapshot.count, out);
}

MetricRegistration::MetricRegistration(MetricRegistration&& other) noexcept
    : registry_(other.registry_), name_(std::move(other.name_)) {
  other.registry_ = nullptr;
}

MetricRegistration& MetricRegistration::operator=(MetricRegistration&& other) noexcept {
  if (this != &other) {
    if (registry_ != nullptr) registry_->Remove(name_);
    registry_ = other.registry_;
    name_ = std::move(other.name_);
    other.registry_ = nullptr;
  }
  return *this;
}

MetricRegistration::~MetricRegistration() {
  if (registry_ != nullptr) registry_->Remove(name_);
}

MetricFamily* MetricsRegistry::Find(const std::string& name) {
  auto found = families_.find(name);
  return found == families_.end() ? nullptr : found->second.get();
}

CounterFamily& MetricsRegistry::AddCounter(const std::string& name, const std::string& help,
                                           const std::vector<std::string>& label_names) {
  CheckDefinition(name, label_names, MetricType::kCounter);
  std::unique_lock lock(mutex_);
  if (MetricFamily* existing = Find(name)) {
    auto* family = dynamic_cast<CounterFamily*>(existing);
    if (family == nullptr || family->label_names() != label_names) {
      DefinitionError(name, "defined twice, with another type or labels");
    }
    return *family;
  }
  auto family = std::make_unique<CounterFamily>(name, help, label_names);
  CounterFamily& result = *family;
  families_.emplace(name, std::move(family));
  return result;
}

GaugeFamily& MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                                       const std::vector<std::string>& label_names) {
  CheckDefinition(name, label_names, MetricType::kGauge);
  std::unique_lock lock(mutex_);
  if (MetricFamily* existing = Find(name)) {
    auto* family = dynamic_cast<GaugeFamily*>(existing);
    if (family == nullptr || family->label_names() != label_names) {
      DefinitionError(name, "defined twice, with another type or labels");
    }
    return *family;
  }
  auto family = std::make_unique<GaugeFamily>(name, help, label_names);
  GaugeFamily& result = *family;
  families_.emplace(name, std::move(family));
  return result;
}

HistogramFamily& MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                               const std::vector<std::string>& label_names,
                                               const std::vector<double>& bounds) {
  CheckDefinition(name, label_names, MetricType::kHistogram);
  std::unique_lock lock(mutex_);
  if (MetricFamily* existing = Find(name)) {
    auto* family = dynamic_cast<HistogramFamily*>(existing);
    if (family == nullptr || family->label_names() != label_names || family->bounds() != bounds) {
      DefinitionError(name, "defined twice, with another type, labels or buckets");
    }
    return *family;
  }
  auto family = std::make_unique<HistogramFamily>(name, help, label_names, bounds);
  HistogramFamily& result = *family;
  families_.emplace(name, std::move(family));
  return result;
}

MetricRegistration MetricsRegistry::AddCallback(
    MetricType type, const std::string& name, const std::string& help,
    const std::vector<std::string>& label_names,
    std::function<std::vector<MetricSample>()> collect) {
  CheckDefinition(name, label_names, type);
  if (type == MetricType::kHistogram) DefinitionError(name, "a callback cannot be a histogram");
  std::unique_lock lock(mutex_);
  if (Find(name) != nullptr) DefinitionError(name, "defined twice");
  families_.emplace(
      name, std::make_unique<CallbackFamily>(type, name, help, label_names, std::move(collect)));
  return MetricRegistration(this, name);
}

MetricRegistration MetricsRegistry::AddCallback(MetricType type, const std::string& name,
                                                const std::string& help,
                                                std::function<double()> read) {
  return AddCallback(type, name, help, {}, [read = std::move(read)]() -> std::vector<MetricSample> {
    return {MetricSample{{}, read()}};
  });
}

void MetricsRegistry::Remove(const std::string& name) {
  std::unique_lock lock(mutex_);
  families_.erase(name);
}

std::string MetricsRegistry::Exposition() const {
  std::string out;
  std::shared_lock lock(mutex_);
  for (const auto& [name, family] : families_) family->Write(&out);
  return out;
}

Route MetricsRoute(const MetricsRegistry* registry) {
  return Route{"GET", "/metrics", [registry](const HttpRequest&) {
                 Reply reply(200, registry->Exposition());
                 reply.content_type = std::string(kMetricsContentType);
                 return reply;
               }};
}

namespace {

double WallSeconds() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

}  // namespace

std::vector<MetricRegistration> RegisterProcessMetrics(MetricsRegistry* registry) {
  std::vector<MetricRegistration> registrations;
  registrations.push_back(
      registry->AddCallback(MetricType::kGauge, "keel_build_info",
                            "keel's version and git commit; always 1.", {"version", "commit"}, [] {
                              return std::vector<MetricSample>{
                                  MetricSample{{KEEL_VERSION, std::string(CodeVersion())}, 1}};
                            }));
  // Registered once per process: the time the metrics started is close
  // enough to the process' start for restarts to show.
  double start = WallSeconds();
  registrations.push_back(registry->AddCallback(
      MetricType::kGauge, "process_start_time_seconds",
      "Start time of the process since unix epoch in seconds.", [start] { return start; }));
  registrations.push_back(registry->AddCallback(
      MetricType::kCounter, "process_cpu_seconds_total",
      "Total user and system CPU time spent in seconds.", [] {
        rusage usage{};
        getrusage(RUSAGE_SELF, &usage);
        auto seconds = [](const timeval& t) {
          return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
        };
        return seconds(usage.ru_utime) + seconds(usage.ru_stime);
      }));
  if (FileExists("/proc/self/statm")) {
    registrations.push_back(registry->AddCallback(
        MetricType::kGauge, "process_resident_memory_bytes", "Resident memory size in bytes.", [] {
          std::ifstream statm("/proc/self/statm");
          double size_pages = 0;
          double resident_pages = 0;
          if (!(statm >> size_pages >> resident_pages)) return std::nan("");
          return resident_pages * static_cast<double>(sysconf(_SC_PAGESIZE));
        }));
  }
  if (FileExists("/proc/self/fd")) {
    registrations.push_back(registry->AddCallback(
        MetricType::kGauge, "process_open_fds", "Number of open file descriptors.", [] {
          std::error_code error;
          double count = 0;
          for (std::filesystem::directory_iterator it("/proc/self/fd", error), end;
               !error && it != end; it.increment(error)) {
            ++count;
          }
          return error ? std::nan("") : count;
        }));
  }
  return registrations;
}

namespace {
uint64_t NextServingMetricsId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1);
}
}  // namespace

ServingMetrics::ServingMetrics(MetricsRegistry* registry)
    : predictions(registry->AddCounter("keel_predictions_total",
                                       "Prediction requests answered, by model, version and "
                                       "status (ok or the error class).",
                                       {"model", "version", "status"})),
      latency(registry->AddHistogram(
          "keel_prediction_latency_seconds",
          "Prediction latency in seconds, by stage: total, features (online feature fetch), "
          "model (transforms and model).",
          {"model", "stage"})),
      feature_missing(registry->AddCounter(
          "keel_feature_missing_total",
          "Feature values missing from the online store (not found or past their TTL) in "
          "answered predictions.",
          {"model", "feature"})),
      model_loads(registry->AddCounter("keel_model_loads_total",
                                       "Model bundle loads, by result (ok or error).",
                                       {"model", "result"})),
      model_swaps(registry->AddCounter("keel_model_swaps_total",
                                       "Times the served version of a model changed.", {"model"})),
      in_flight(registry->AddGauge("keel_requests_in_flight", "Prediction requests being answered.")
                    .Get()),
      id(NextServingMetricsId()) {}

}  // namespace keel::serve
