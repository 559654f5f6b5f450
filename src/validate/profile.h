#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "table/column.h"
#include "validate/sketch.h"

namespace keel::validate {

// Mean and variance of a stream, mergeable (Welford's update, Chan et al.'s
// pairwise merge), so profile(A ∪ B) == merge(profile(A), profile(B)) up to
// rounding (~1e-15 relative). ColumnProfile adds a batch of values as the
// Moments of the batch (a two-pass sum, no division per value) merged in.
struct Moments {
  uint64_t count = 0;
  double mean = 0.0;
  double m2 = 0.0;  // sum of squared deviations from the mean

  void Add(double value) {
    ++count;
    double delta = value - mean;
    mean += delta / static_cast<double>(count);
    m2 += delta * (value - mean);
  }
  void Merge(const Moments& other);
  // Population variance (ddof = 0); NaN when empty.
  double Variance() const;
  // Sample variance (ddof = 1); NaN below two values.
  double SampleVariance() const;
};

// Counts of a numeric column over fixed bins: bin 0 is (-inf, edges[0]),
// bin i is [edges[i-1], edges[i]), the last bin is [edges.back(), +inf).
// `edges` is strictly increasing; an empty `edges` means one bin.
struct Histogram {
  std::vector<double> edges;
  std::vector<uint64_t> counts;  // edges.size() + 1 entries

  // Bin of `value` (binary search). Precondition: value is not NaN.
  size_t BinOf(double value) const;
};

// Options for profiling. Fixed reference bins make histograms of different
// data comparable (PSI, JS) and mergeable.
struct ProfileOptions {
  // Numeric histogram edges per column; a column not listed gets the deciles
  // of its own values (a second pass over the data, see Profile::Of).
  std::map<std::string, std::vector<double>> bin_edges;
  int bins = 10;
  // Categories counted exactly per column, beyond which only top-k is kept.
  size_t max_categories = 1000;
  size_t exact_quantile_limit = 1 << 16;
  // Threads Profile::Of profiles on; 1 = the calling thread only. The work
  // is split into tasks that each own a disjoint part of one column's
  // profile (a string column; a numeric column's quantile sketch; its other
  // statistics; then its histogram), each doing what the one-thread run
  // does, so the profile is byte-identical for every thread count.
  int threads = 1;
};

// What is known about one column. Numeric columns (int64, double, timestamp
// as microseconds) keep moments, min/max, a quantile sketch and a histogram;
// string and bool columns keep exact category counts (up to a limit), top-k
// and a distinct count; every column keeps counts and nulls.
// Thread-safety: a value type; no internal synchronisation.
class ColumnProfile {
 public:
  ColumnProfile(std::string name, table::DataType type, const ProfileOptions& options);

  const std::string& name() const { return name_; }
  table::DataType type() const { return type_; }
  bool numeric() const {
    return type_ != table::DataType::kString && type_ != table::DataType::kBool;
  }

  // Adds rows [begin, end) of `column`. Precondition: column.type() == type().
  // Allocation-free per row once buffers are warm (category maps aside).
  void AddColumn(const table::Column& column, size_t begin, size_t end);

  // Sets histogram edges (strictly increasing) and counts the rows of
  // `column` into them; for a profile made without fixed edges, once all its
  // rows were added (Profile::Of does this). Precondition: no fixed edges yet.
  void SetBinsAndCount(std::vector<double> edges, const table::Column& column);
  // The same for the first `rows` rows of `column` (rows <= column.size()).
  void SetBinsAndCount(std::vector<double> edges, const table::Column& column, size_t rows);

  // Merges a profile of other rows of the same column. Errors:
  // InvalidArgument when names, types or histogram edges differ.
  Status Merge(const ColumnProfile& other);

  uint64_t rows() const { return rows_; }
  uint64_t nulls() const { return nulls_; }
  double NullShare() const { return rows_ == 0 ? 0.0 : double(nulls_) / double(rows_); }
  const Moments& moments() const { return moments_; }
  // Smallest/largest non-null value (numeric columns); nullopt when none.
  std::optional<double> min() const;
  std::optional<double> max() const;
  const QuantileSketch& quantiles() const { return quantiles_; }
  const Histogram& histogram() const { return histogram_; }
  const TopK& top() const { return top_; }
  const DistinctCounter& distinct() const { return distinct_; }
  // Exact counts per category (string/bool columns) while there are at most
  // max_categories distinct values; nullopt once there were more.
  const std::optional<std::map<std::string, uint64_t, std::less<>>>& categories() const {
    return categories_;
  }
  // Count of non-null values with a NaN (double columns), not in moments.
  uint64_t nans() const { return nans_; }

  // JSON object (see profile.cc for the layout); sketches base64-encoded.
  std::string ToJson() const;

 private:
  friend class Profile;
  // What AddRowStatistics saw of a numeric batch: clean = no NaN, with the
  // batch's min and max (then the sketch needs no scan of its own).
  struct RowScan {
    bool clean = true;
    double min = 0.0;
    double max = 0.0;
  };
  void AddNumeric(double value);
  void AddCategory(std::string_view value);
  // AddColumn's parts, which touch disjoint members (Profile::Of runs them
  // on different threads): everything but the quantile sketch, leaving a
  // numeric batch's valid values in buffer_; and the sketch alone, with
  // `values` as its buffer.
  RowScan AddRowStatistics(const table::Column& column, size_t begin, size_t end);
  void AddRowQuantiles(const table::Column& column, size_t begin, size_t end,
                       std::vector<double>* values);
  // The valid values of numeric rows [begin, end) as doubles, NaNs included.
  static void GatherValid(const table::Column& column, size_t begin, size_t end,
                          std::vector<double>* values);
  // Histogram edges from the sketch (the `bins_` quantiles) and the counts of
  // the first `rows` rows of `column`; for a profile of those rows made
  // without fixed edges.
  void SetQuantileBins(const table::Column& column, size_t rows);

  std::string name_;
  table::DataType type_;
  size_t max_categories_;
  uint64_t rows_ = 0;
  uint64_t nulls_ = 0;
  uint64_t nans_ = 0;
  double min_ = 0.0;
  double max_ = 0.0;
  Moments moments_;
  QuantileSketch quantiles_;
  Histogram histogram_;
  bool fixed_bins_ = false;
  int bins_ = 10;
  TopK top_;
  DistinctCounter distinct_;
  std::optional<std::map<std::string, uint64_t, std::less<>>> categories_;
  std::vector<double> buffer_;  // values of one AddRowStatistics call, reused
};

// The profile of a table: rows, time range and one ColumnProfile per column.
// Thread-safety: a value type.
class Profile {
 public:
  Profile() = default;

  // Profiles `table` (all columns), options.threads columns at a time.
  // `time_column` (may be empty) is the source's timestamp, recorded as the
  // profile's time range.
  static Result<Profile> Of(const table::Table& table, const std::string& time_column,
                            const ProfileOptions& options);

  // A column to profile and its name.
  struct NamedColumn {
    std::string name;
    const table::Column* column;
  };
  // Profiles the first `rows` rows of `columns` (no time column), without
  // copying them: the same profile as Of of a table of those rows. Errors:
  // InvalidArgument naming a column with fewer rows.
  static Result<Profile> OfPrefix(const std::vector<NamedColumn>& columns, size_t rows,
                                  const ProfileOptions& options);

  // Adds the profile of other rows of the same table. Errors: InvalidArgument
  // naming the column whose schema or bins differ.
  Status Merge(const Profile& other);

  uint64_t rows() const { return rows_; }
  const std::vector<ColumnProfile>& columns() const { return columns_; }
  const ColumnProfile* Find(std::string_view name) const;
  const std::string& time_column() const { return time_column_; }
  // Bin edges of every numeric column, to profile other data on the same bins.
  ProfileOptions ReferenceOptions() const;

  std::string source;      // free text, e.g. the source name
  std::string created_at;  // ISO time the profile was made

  std::string ToJson() const;
  // Errors: InvalidArgument naming the field that is missing or malformed.
  static Result<Profile> FromJson(std::string_view json);

 private:
  static Result<Profile> OfColumns(const std::vector<NamedColumn>& columns, size_t rows,
                                   const std::string& time_column, const ProfileOptions& options);

  uint64_t rows_ = 0;
  std::string time_column_;
  std::vector<ColumnProfile> columns_;
};

}  // namespace keel::validate
