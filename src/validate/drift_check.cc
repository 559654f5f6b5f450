#include "validate/drift_check.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "common/files.h"
#include "validate/drift.h"

namespace keel::validate {

namespace {

// Below this many current values, p-value tests are the default; above it,
// distances (p-values flag every tiny shift on large samples).
constexpr uint64_t kSmallSample = 1000;

bool IsPValue(DriftMethod method) {
  return method == DriftMethod::kKs || method == DriftMethod::kChiSquare;
}

// Values a statistic can use: non-null, and for numbers not NaN.
uint64_t ValueCount(const ColumnProfile& column) {
  return column.numeric() ? column.moments().count : column.rows() - column.nulls();
}

std::vector<double> Shares(const std::vector<uint64_t>& counts) {
  double total = 0;
  for (uint64_t count : counts) total += double(count);
  std::vector<double> shares(counts.size(), 0.0);
  if (total == 0) return shares;
  for (size_t i = 0; i < counts.size(); ++i) shares[i] = double(counts[i]) / total;
  return shares;
}

// Counts of the union of both sides' categories, reference first.
void AlignCategories(const ColumnProfile& reference, const ColumnProfile& current,
                     std::vector<double>* ref_counts, std::vector<double>* cur_counts) {
  std::map<std::string, std::pair<double, double>, std::less<>> merged;
  auto collect = [&](const ColumnProfile& profile, bool is_reference) {
    if (profile.categories()) {
      for (const auto& [value, count] : *profile.categories()) {
        auto& slot = merged[value];
        (is_reference ? slot.first : slot.second) += double(count);
      }
    } else {
      for (const auto& item : profile.top().Top(profile.top().size())) {
        auto& slot = merged[item.value];
        (is_reference ? slot.first : slot.second) += double(item.count);
      }
    }
  };
  collect(reference, true);
  collect(current, false);
  for (const auto& [value, counts] : merged) {
    ref_counts->push_back(counts.first);
    cur_counts->push_back(counts.second);
  }
}

std::vector<double> Normalise(const std::vector<double>& counts) {
  double total = 0;
  for (double count : counts) total += count;
  std::vector<double> shares(counts.size(), 0.0);
  if (total > 0) {
    for (size_t i = 0; i < counts.size(); ++i) shares[i] = counts[i] / total;
  }
  return shares;
}

}  // namespace

double DefaultThreshold(DriftMethod method) {
  switch (method) {
    case DriftMethod::kPsi:
      return 0.2;
    case DriftMethod::kKs:
    case DriftMethod::kChiSquare:
      return 0.05;
    default:
      return 0.1;
  }
}

std::string DriftMeasure::Describe() const {
  char buffer[96];
  std::snprintf(buffer, sizeof(buffer), "%s%s %.4g", std::string(DriftMethodName(method)).c_str(),
                IsPValue(method) ? " p-value" : "", value);
  return buffer;
}

Result<DriftMeasure> MeasureDrift(const ColumnProfile& reference, const ColumnProfile& current,
                                  DriftMethod method, std::optional<double> threshold) {
  if (reference.type() != current.type()) {
    return InvalidArgument("column '" + reference.name() + "': type changed from " +
                           std::string(table::DataTypeName(reference.type())) + " to " +
                           std::string(table::DataTypeName(current.type())));
  }
  bool numeric = reference.numeric();
  uint64_t n_cur = ValueCount(current);
  uint64_t n_ref = ValueCount(reference);
  if (method == DriftMethod::kAuto) {
    if (numeric) {
      method = n_cur < kSmallSample ? DriftMethod::kKs : DriftMethod::kWasserstein;
    } else {
      method = n_cur < kSmallSample ? DriftMethod::kChiSquare : DriftMethod::kJensenShannon;
    }
  }
  DriftMeasure measure;
  measure.method = method;
  measure.threshold = threshold ? *threshold : DefaultThreshold(method);
  std::string column = "column '" + reference.name() + "': ";
  if (numeric) {
    if (reference.histogram().edges != current.histogram().edges) {
      return InvalidArgument(column + "current data was not binned on the reference's edges");
    }
    std::vector<double> ref_values, ref_weights, cur_values, cur_weights;
    reference.quantiles().SortedItems(&ref_values, &ref_weights);
    current.quantiles().SortedItems(&cur_values, &cur_weights);
    WeightedSample ref{ref_values, ref_weights}, cur{cur_values, cur_weights};
    std::vector<double> ref_shares = Shares(reference.histogram().counts);
    std::vector<double> cur_shares = Shares(current.histogram().counts);
    switch (method) {
      case DriftMethod::kPsi:
        measure.value = PopulationStabilityIndex(ref_shares, cur_shares);
        break;
      case DriftMethod::kJensenShannon:
        measure.value = JensenShannonDistance(ref_shares, cur_shares);
        break;
      case DriftMethod::kKs:
        measure.value = KsPValue(KsStatistic(ref, cur), n_ref, n_cur);
        break;
      case DriftMethod::kKsStatistic:
        measure.value = KsStatistic(ref, cur);
        break;
      case DriftMethod::kWasserstein: {
        double std_ref = std::sqrt(reference.moments().Variance());
        double distance = WassersteinDistance(ref, cur);
        measure.value = std_ref > 0 ? distance / std_ref : (distance == 0 ? 0.0 : INFINITY);
        break;
      }
      case DriftMethod::kLInfinity:
        measure.value = LInfinityDistance(ref_shares, cur_shares);
        break;
      default:
        return InvalidArgument(column + std::string(DriftMethodName(method)) +
                               " applies to categories, not numbers");
    }
  } else {
    std::vector<double> ref_counts, cur_counts;
    AlignCategories(reference, current, &ref_counts, &cur_counts);
    std::vector<double> ref_shares = Normalise(ref_counts), cur_shares = Normalise(cur_counts);
    switch (method) {
      case DriftMethod::kPsi:
        measure.value = PopulationStabilityIndex(ref_shares, cur_shares);
        break;
      case DriftMethod::kJensenShannon:
        measure.value = JensenShannonDistance(ref_shares, cur_shares);
        break;
      case DriftMethod::kLInfinity:
        measure.value = LInfinityDistance(ref_shares, cur_shares);
        break;
      case DriftMethod::kChiSquare: {
        // A category the reference never saw would make the statistic
        // infinite; give every category at least half an observation.
        double floor = n_ref > 0 ? 0.5 / double(n_ref) : 0.0;
        for (double& share : ref_shares) share = std::max(share, floor);
        measure.value = ChiSquareTest(cur_counts, Normalise(ref_shares)).p_value;
        break;
      }
      default:
        return InvalidArgument(column + std::string(DriftMethodName(method)) +
                               " applies to numbers, not categories");
    }
  }
  measure.drifted =
      IsPValue(method) ? measure.value < measure.threshold : !(measure.value <= measure.threshold);
  return measure;
}

Result<const Profile*> DriftChecker::Reference(const CheckDef& check) {
  if (context_.reference != nullptr) return context_.reference;
  if (check.reference.empty()) {
    return InvalidArgument(check.location + ": drift check has no reference profile (set " +
                           "'reference:' or pass --reference PROFILE)");
  }
  std::filesystem::path path(check.reference);
  if (path.is_relative() && !context_.reference_root.empty()) {
    path = std::filesystem::path(context_.reference_root) / path;
  }
  auto it = loaded_.find(path.string());
  if (it != loaded_.end()) return it->second.get();
  Result<std::string> text = ReadFileToString(path.string());
  if (!text.ok()) return text.status().WithContext(check.location + ": reference profile");
  Result<Profile> profile = Profile::FromJson(*text);
  if (!profile.ok()) return profile.status().WithContext(path.string());
  auto owned = std::make_unique<Profile>(std::move(*profile));
  const Profile* raw = owned.get();
  loaded_.emplace(path.string(), std::move(owned));
  return raw;
}

Status DriftChecker::Run(const CheckDef& check, const table::Table& data,
                         std::vector<CheckResult>* results) {
  ASSIGN_OR_RETURN(const Profile* reference, Reference(check));
  ProfileOptions options = reference->ReferenceOptions();
  std::vector<std::string> columns = check.columns;
  if (columns.empty()) {
    for (const ColumnProfile& column : reference->columns()) {
      if (column.name() != reference->time_column()) columns.push_back(column.name());
    }
  }
  for (const std::string& name : columns) {
    CheckResult result;
    result.check = "drift";
    result.column = name;
    result.location = check.location;
    result.numeric_value = std::nan("");
    Outcome fail = check.severity == Severity::kError ? Outcome::kFail : Outcome::kWarn;
    const ColumnProfile* ref = reference->Find(name);
    int index = data.FindColumn(name);
    if (ref == nullptr || index < 0) {
      result.value = "missing";
      result.threshold = "column present";
      result.outcome = fail;
      result.detail = ref == nullptr ? "the reference profile has no column '" + name + "'"
                                     : "the data has no column '" + name + "'";
      results->push_back(std::move(result));
      continue;
    }
    const table::Column& column = data.column(size_t(index));
    if (column.type() != ref->type()) {
      result.value = std::string(table::DataTypeName(column.type()));
      result.threshold = std::string(table::DataTypeName(ref->type()));
      result.outcome = fail;
      result.detail = "type changed from " + std::string(table::DataTypeName(ref->type())) +
                      " to " + result.value;
      results->push_back(std::move(result));
      continue;
    }
    ColumnProfile current(name, column.type(), options);
    current.AddColumn(column, 0, column.size());
    uint64_t n = ValueCount(current);
    if (n < check.min_rows_for_drift) {
      result.value = std::to_string(n) + " values";
      result.threshold = ">= " + std::to_string(check.min_rows_for_drift) + " values to judge";
      result.outcome = Outcome::kWarn;
      result.detail = "too few values to judge drift";
      results->push_back(std::move(result));
      continue;
    }
    if (ValueCount(*ref) == 0) {  // every statistic would be NaN
      result.value = std::to_string(n) + " values";
      result.threshold = "reference values";
      result.outcome = Outcome::kWarn;
      result.detail = "the reference has no values to compare with";
      results->push_back(std::move(result));
      continue;
    }
    Result<DriftMeasure> measure = MeasureDrift(*ref, current, check.method, check.threshold);
    if (!measure.ok()) return measure.status().WithContext(check.location);
    result.check = "drift:" + std::string(DriftMethodName(measure->method));
    result.numeric_value = measure->value;
    char value[64];
    std::snprintf(value, sizeof(value), "%.4g", measure->value);
    result.value = value;
    std::snprintf(value, sizeof(value), "%s %.4g",
                  IsPValue(measure->method) ? ">=" : "<=", measure->threshold);
    result.threshold = value;
    result.outcome = measure->drifted ? fail : Outcome::kPass;
    if (measure->drifted) {
      result.detail = "distribution shifted (" + measure->Describe() + ", reference " +
                      std::to_string(ref->rows()) + " rows, current " +
                      std::to_string(current.rows()) + ")";
    }
    results->push_back(std::move(result));
  }
  return Status::Ok();
}

}  // namespace keel::validate
