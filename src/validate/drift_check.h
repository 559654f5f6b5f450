#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "table/column.h"
#include "validate/checks.h"
#include "validate/profile.h"

namespace keel::validate {

// Runs `drift` checks: each column of the data is profiled on the reference
// profile's bins and compared with it by the check's method (or the default
// for its type and sample size, see DriftMethod::kAuto). Reference profiles
// named by checks are loaded once per checker.
// Thread-safety: not thread-safe.
class DriftChecker {
 public:
  explicit DriftChecker(const CheckContext& context) : context_(context) {}

  // Appends one result per column of `check`. Errors: the reference profile
  // cannot be read or parsed (NotFound / InvalidArgument naming the file).
  Status Run(const CheckDef& check, const table::Table& data, std::vector<CheckResult>* results);

 private:
  Result<const Profile*> Reference(const CheckDef& check);

  const CheckContext& context_;
  std::map<std::string, std::unique_ptr<Profile>> loaded_;
};

// One drift statistic between a reference column profile and a current one
// (made on the reference's bins). `value` is the statistic (or p-value for
// the p-value methods); `drifted` says whether it crosses `threshold`.
struct DriftMeasure {
  DriftMethod method = DriftMethod::kAuto;  // the method actually used
  double value = 0.0;
  double threshold = 0.0;
  bool drifted = false;
  std::string Describe() const;  // "psi 0.031", "ks p-value 0.41"
};

// Computes `method` (kAuto resolved by type and size) between two profiles of
// the same column. `threshold` (when set) overrides the method's default.
// Errors: InvalidArgument when the method does not apply to the column type
// or the histograms' bins differ.
Result<DriftMeasure> MeasureDrift(const ColumnProfile& reference, const ColumnProfile& current,
                                  DriftMethod method, std::optional<double> threshold);

// The default threshold of a method (psi 0.2, js/wasserstein/l-inf/ks
// statistic 0.1, p-values 0.05).
double DefaultThreshold(DriftMethod method);

}  // namespace keel::validate
