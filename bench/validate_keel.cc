// The keel side of the validation benchmark: the work of a user's
// `keel profile` of a reference part and a current part of a source followed
// by `keel drift` between them (PSI on the reference's decile bins, KS
// statistic and p-value, Jensen-Shannon distance), column by column.
//
//   bench_validate prepare --flights FILE.parquet --dir DIR [--rows N] [--columns N]
//                  [--force]
//   bench_validate run --dataset flights|synthetic --dir DIR [--exact] [--threads N]
//                  [--out FILE.json] [--profiles FILE.json]
//
// prepare writes, once, under DIR: synthetic.parquet (N rows x M seeded
// pseudo-random numeric columns of mixed shapes plus `part`: 0 for the first
// half, the reference, 1 for the shifted second half) and, for the NumPy
// peer (no Parquet reader there), both parts of both datasets as .npy files
// with a <dataset>.json listing the columns. Skips the work when
// DIR/prepared.json records the same inputs.
//
// run reads both parts through DuckDB into keel columns (read), then
// profiles them with validate::Profile::Of and compares every column with
// validate::MeasureDrift (compute). --exact raises the quantile sketch's
// exact limit above the row count, so deciles and KS are exact (the default
// is what `keel profile` does: exact up to 65 536 values, a KLL sketch
// beyond). --threads N (default 1) profiles N columns at a time
// (ProfileOptions::threads); values_per_second_per_core divides by N.
// Prints one "BENCH_RESULT {json}" line; --out writes every
// statistic as JSON for bench/run's agreement check; --profiles writes both
// profiles as `keel profile` does (sketches encoded), so two builds can be
// checked for byte-identical profiles.

#include <time.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <numbers>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "common/files.h"
#include "table/duckdb_bridge.h"
#include "validate/drift_check.h"
#include "validate/profile.h"

namespace keel::bench {
namespace {

using table::Column;
using table::DataType;
using table::Table;
using validate::ColumnProfile;
using validate::DriftMethod;

// Bump when the generated data changes, so old caches are rebuilt.
constexpr int kFormatVersion = 1;
constexpr uint64_t kSeed = 3;  // issue 3
constexpr double kProfileQuantiles[] = {0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99};

// The SQL of one dataset's reference and current parts.
struct Dataset {
  std::string reference_sql;
  std::string current_sql;
};

Dataset FlightsDataset(const std::string& parquet) {
  // January against June, as scripts/main's drift demo; five columns: two
  // measures, two calendar integers with heavy ties and a category.
  std::string select =
      "SELECT delay, distance, hour(date) AS hour, dayofweek(date) AS weekday, origin FROM "
      "read_parquet(" +
      table::QuoteSqlString(parquet) + ") WHERE ";
  return {select + "date >= TIMESTAMP '2001-01-01' AND date < TIMESTAMP '2001-02-01'",
          select + "date >= TIMESTAMP '2001-06-01' AND date < TIMESTAMP '2001-07-01'"};
}

Dataset SyntheticDataset(const std::string& dir) {
  std::string select = "SELECT * EXCLUDE (part) FROM read_parquet(" +
                       table::QuoteSqlString(dir + "/synthetic.parquet") + ") WHERE part = ";
  return {select + "0", select + "1"};
}

// ---------------------------------------------------------------------------
// Synthetic data: every value a function of (seed, column, row), so the data
// does not depend on generation order.

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Uniform in [0, 1); `draw` picks one of several independent values per cell.
double Uniform(size_t column, size_t row, int draw) {
  uint64_t key = Mix(kSeed ^ Mix((uint64_t(column) << 40) ^ (uint64_t(row) << 2) ^ uint64_t(draw)));
  return double(key >> 11) * 0x1.0p-53;
}

double Normal(size_t column, size_t row) {  // Box-Muller
  double radius = std::sqrt(-2.0 * std::log1p(-Uniform(column, row, 0)));
  return radius * std::cos(2.0 * std::numbers::pi * Uniform(column, row, 1));
}

// Column `column`'s shape cycles over five kinds; the current half (rows >=
// half) is shifted by a column-dependent amount, zero for some columns.
Column SyntheticColumn(size_t column, size_t rows, size_t half) {
  int kind = int(column % 5);
  double shift = double(column % 4);
  Column out(kind == 3 ? DataType::kInt64 : DataType::kDouble, rows);
  for (size_t row = 0; row < rows; ++row) {
    bool current = row >= half;
    double z = Normal(column, row);
    switch (kind) {
      case 0: {  // normal, mean shifted by up to 0.06 sd
        double sd = 1.0 + double(column % 3);
        out.doubles()[row] = double(column) + sd * (z + (current ? 0.02 * shift : 0.0));
        break;
      }
      case 1:  // lognormal, scaled by up to 3 %
        out.doubles()[row] =
            std::exp((0.5 + 0.1 * double(column % 3)) * z) * (current ? 1.0 + 0.01 * shift : 1.0);
        break;
      case 2:  // uniform on [0, 100), widened by up to 3
        out.doubles()[row] = Uniform(column, row, 2) * (100.0 + (current ? shift : 0.0));
        break;
      case 3: {  // integers with ties, ~30 % zeros (so deciles repeat)
        int64_t value = std::max<int64_t>(0, std::llround(z * 6.0 + 3.0));
        out.ints()[row] = value > 0 && current ? value + int64_t(column % 2) : value;
        break;
      }
      default:  // normal with 5 % nulls (7 % in the current half of odd columns)
        out.doubles()[row] = z * (current ? 1.0 + 0.05 * double(column % 2) : 1.0);
        if (Uniform(column, row, 3) < (current && column % 2 == 1 ? 0.07 : 0.05)) {
          out.doubles()[row] = 0.0;
          out.SetNull(row);
        }
    }
  }
  return out;
}

Result<Table> SyntheticTable(size_t rows, size_t columns) {
  Table table;
  size_t half = rows / 2;
  for (size_t column = 0; column < columns; ++column) {
    char name[16];
    std::snprintf(name, sizeof(name), "c%02zu", column);
    RETURN_IF_ERROR(table.AddColumn(name, SyntheticColumn(column, rows, half)));
  }
  Column part(DataType::kInt64, rows);
  for (size_t row = half; row < rows; ++row) part.ints()[row] = 1;
  RETURN_IF_ERROR(table.AddColumn("part", std::move(part)));
  return table;
}

// ---------------------------------------------------------------------------
// .npy files for the NumPy peer (format version 1.0).

std::string NpyFile(const std::string& descr, const std::string& shape, std::string_view data) {
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t unpadded = 10 + header.size() + 1;  // magic, version, length; newline
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += char(1);
  out += char(0);
  out += char(header.size() & 0xff);
  out += char(header.size() >> 8);
  return out + header + std::string(data);
}

// Writes `part`'s numeric columns as one float64 array (columns x rows, NaN for
// null) to PREFIX.npy and each string column as fixed-width bytes to
// PREFIX_<column>.npy.
Status WriteNumpyPart(const Table& part, const std::string& prefix) {
  std::vector<double> numeric;
  numeric.reserve(part.num_rows() * part.num_columns());
  size_t numeric_columns = 0;
  for (size_t column_idx = 0; column_idx < part.num_columns(); ++column_idx) {
    const Column& column = part.column(column_idx);
    if (column.type() == DataType::kString) {
      size_t width = 1;
      for (size_t row = 0; row < column.size(); ++row) {
        width = std::max(width, column.StringAt(row).size());
      }
      std::string bytes(column.size() * width, '\0');
      for (size_t row = 0; row < column.size(); ++row) {
        std::string_view value = column.StringAt(row);
        std::memcpy(bytes.data() + row * width, value.data(), value.size());
      }
      RETURN_IF_ERROR(
          WriteFileAtomically(prefix + "_" + part.fields()[column_idx].name + ".npy",
                              NpyFile("|S" + std::to_string(width),
                                      "(" + std::to_string(column.size()) + ",)", bytes)));
      continue;
    }
    ++numeric_columns;
    for (size_t row = 0; row < column.size(); ++row) {
      numeric.push_back(column.IsValid(row) ? column.NumericAt(row) : std::nan(""));
    }
  }
  std::string shape =
      "(" + std::to_string(numeric_columns) + ", " + std::to_string(part.num_rows()) + ")";
  return WriteFileAtomically(prefix + ".npy",
                             NpyFile("<f8", shape,
                                     std::string_view(reinterpret_cast<const char*>(numeric.data()),
                                                      numeric.size() * sizeof(double))));
}

// DIR/<name>.json: the columns in order, with their kind, for the NumPy peer.
Status WriteNumpyMeta(const Table& part, const std::string& dir, const std::string& name) {
  nlohmann::json columns = nlohmann::json::array();
  for (const table::Field& field : part.fields()) {
    columns.push_back({{"name", field.name},
                       {"kind", field.type == DataType::kString ? "categorical" : "numeric"},
                       {"type", std::string(table::DataTypeName(field.type))}});
  }
  return WriteFileAtomically(dir + "/" + name + ".json",
                             nlohmann::json{{"columns", columns}}.dump());
}

Status PrepareDataset(table::DuckDb* duckdb, const Dataset& dataset, const std::string& dir,
                      const std::string& name) {
  ASSIGN_OR_RETURN(Table reference, duckdb->Query(dataset.reference_sql));
  ASSIGN_OR_RETURN(Table current, duckdb->Query(dataset.current_sql));
  RETURN_IF_ERROR(WriteNumpyPart(reference, dir + "/" + name + "_reference"));
  RETURN_IF_ERROR(WriteNumpyPart(current, dir + "/" + name + "_current"));
  return WriteNumpyMeta(reference, dir, name);
}

Status Prepare(const Flags& flags) {
  Stopwatch watch;
  ASSIGN_OR_RETURN(std::string flights, flags.Require("flights"));
  ASSIGN_OR_RETURN(std::string dir, flags.Require("dir"));
  if (!FileExists(flights))
    return NotFound("no flight data at " + flights + " (run scripts/setup)");
  size_t rows = std::stoull(flags.Get("rows", "1000000"));
  size_t columns = std::stoull(flags.Get("columns", "50"));
  std::filesystem::create_directories(dir);
  nlohmann::json stamp = {{"version", kFormatVersion},
                          {"flights", flights},
                          {"flights_bytes", std::filesystem::file_size(flights)},
                          {"rows", rows},
                          {"columns", columns},
                          {"seed", kSeed}};
  std::string stamp_path = dir + "/prepared.json";
  Result<std::string> old = ReadFileToString(stamp_path);
  bool prepared = false;
  if (flags.Has("force") || !old.ok() || *old != stamp.dump()) {
    std::fprintf(stderr, "[bench] preparing the validation inputs in %s\n", dir.c_str());
    RemoveFileQuietly(stamp_path);
    ASSIGN_OR_RETURN(std::unique_ptr<table::DuckDb> duckdb, table::DuckDb::Open());
    ASSIGN_OR_RETURN(Table synthetic, SyntheticTable(rows, columns));
    RETURN_IF_ERROR(duckdb->WriteParquet(synthetic, dir + "/synthetic.parquet"));
    synthetic = Table();
    RETURN_IF_ERROR(PrepareDataset(duckdb.get(), SyntheticDataset(dir), dir, "synthetic"));
    RETURN_IF_ERROR(PrepareDataset(duckdb.get(), FlightsDataset(flights), dir, "flights"));
    RETURN_IF_ERROR(WriteFileAtomically(stamp_path, stamp.dump()));
    prepared = true;
  }
  nlohmann::json out = {{"tool", "prepare"}, {"prepared", prepared}, {"seconds", watch.Seconds()}};
  std::printf("BENCH_RESULT %s\n", out.dump().c_str());
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// The measured work.

// CPU seconds of the process (every thread): on a shared machine, the cost of
// the compute without the time spent waiting for a core. DuckDB's threads are
// idle while keel computes.
double ProcessCpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return double(now.tv_sec) + double(now.tv_nsec) * 1e-9;
}

// What a user reads off one column's profile (`keel profile`'s table and
// JSON): taken inside the timed part, serialised after it.
struct ColumnSummary {
  std::vector<double> quantiles;  // at kProfileQuantiles
  double distinct = 0.0;
  std::vector<validate::TopK::Entry> top;  // categories: the 10 most frequent
};

ColumnSummary Summarise(const ColumnProfile& column) {
  ColumnSummary summary;
  summary.distinct = column.distinct().Estimate();
  if (column.numeric()) {
    for (double q : kProfileQuantiles) summary.quantiles.push_back(column.quantiles().Quantile(q));
  } else {
    summary.top = column.top().Top(10);
  }
  return summary;
}

struct ColumnDrift {
  std::vector<std::pair<DriftMethod, double>> values;
};

Result<ColumnDrift> Compare(const ColumnProfile& reference, const ColumnProfile& current) {
  // `keel drift`'s numeric and categorical tables (Wasserstein, L-inf and
  // chi-square aside: the peer's script does not compute them).
  std::vector<DriftMethod> methods = {DriftMethod::kPsi, DriftMethod::kJensenShannon};
  if (reference.numeric()) {
    methods = {DriftMethod::kPsi, DriftMethod::kKsStatistic, DriftMethod::kKs,
               DriftMethod::kJensenShannon};
  }
  ColumnDrift drift;
  for (DriftMethod method : methods) {
    ASSIGN_OR_RETURN(validate::DriftMeasure measure,
                     validate::MeasureDrift(reference, current, method, std::nullopt));
    drift.values.emplace_back(method, measure.value);
  }
  return drift;
}

nlohmann::json SideJson(const ColumnProfile& column, const ColumnSummary& summary) {
  nlohmann::json out = {{"rows", column.rows()},
                        {"nulls", column.nulls() + column.nans()},
                        {"distinct", summary.distinct},
                        {"distinct_exact", column.distinct().is_exact()}};
  if (column.numeric()) {
    out["count"] = column.moments().count;
    out["mean"] = column.moments().mean;
    out["var"] = column.moments().Variance();
    out["min"] = column.min().value_or(std::nan(""));
    out["max"] = column.max().value_or(std::nan(""));
    out["quantiles"] = summary.quantiles;
    out["quantiles_exact"] = column.quantiles().is_exact();
    out["rank_error"] = column.quantiles().RankError();
    out["histogram"] = column.histogram().counts;
  } else {
    out["count"] = column.rows() - column.nulls();
    nlohmann::json top = nlohmann::json::array();
    for (const auto& entry : summary.top) top.push_back({entry.value, entry.count});
    out["top"] = top;
    if (column.categories()) {
      out["categories"] = nlohmann::json(*column.categories());
    }
  }
  return out;
}

// The profiles of both parts and the drift statistics of every column.
struct Measured {
  validate::Profile reference;
  validate::Profile current;
  std::vector<ColumnSummary> reference_summaries;
  std::vector<ColumnSummary> current_summaries;
  std::vector<ColumnDrift> drifts;
  double profile_seconds = 0.0;  // both Profile::Of and the summaries
  double drift_seconds = 0.0;    // MeasureDrift
};

// The timed work: `keel profile` of the reference, `keel profile
// --reference` of the current part (on the reference's bins), then `keel
// drift`. `exact_limit` is the quantile sketches' exact limit; `threads` the
// columns profiled at a time.
Result<Measured> Measure(const Table& reference_data, const Table& current_data, size_t exact_limit,
                         int threads) {
  Measured out;
  Stopwatch profile_watch;
  validate::ProfileOptions options;
  options.exact_quantile_limit = exact_limit;
  options.threads = threads;
  ASSIGN_OR_RETURN(out.reference, validate::Profile::Of(reference_data, "", options));
  validate::ProfileOptions current_options = out.reference.ReferenceOptions();
  current_options.exact_quantile_limit = exact_limit;
  current_options.threads = threads;
  ASSIGN_OR_RETURN(out.current, validate::Profile::Of(current_data, "", current_options));
  for (size_t column_idx = 0; column_idx < out.reference.columns().size(); ++column_idx) {
    const ColumnProfile& ref = out.reference.columns()[column_idx];
    const ColumnProfile& cur = out.current.columns()[column_idx];
    out.reference_summaries.push_back(Summarise(ref));
    out.current_summaries.push_back(Summarise(cur));
  }
  out.profile_seconds = profile_watch.Seconds();
  // Columns compared `threads` at a time (MeasureDrift reads the profiles
  // only, so concurrent calls are safe), as Profile::Of profiles them.
  Stopwatch drift_watch;
  const size_t columns = out.reference.columns().size();
  std::vector<Result<ColumnDrift>> drifts(columns, InvalidArgument("not compared"));
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t column_idx = next++; column_idx < columns; column_idx = next++) {
      drifts[column_idx] =
          Compare(out.reference.columns()[column_idx], out.current.columns()[column_idx]);
    }
  };
  std::vector<std::thread> pool;
  for (int helper = 1; helper < threads; ++helper) pool.emplace_back(worker);
  worker();
  for (std::thread& thread : pool) thread.join();
  for (Result<ColumnDrift>& drift : drifts) {
    if (!drift.ok()) return drift.status();
    out.drifts.push_back(std::move(*drift));
  }
  out.drift_seconds = drift_watch.Seconds();
  return out;
}

nlohmann::json OutputJson(const Measured& measured) {
  nlohmann::json columns = nlohmann::json::array();
  for (size_t column_idx = 0; column_idx < measured.reference.columns().size(); ++column_idx) {
    const ColumnProfile& ref = measured.reference.columns()[column_idx];
    const ColumnProfile& cur = measured.current.columns()[column_idx];
    nlohmann::json column = {{"name", ref.name()},
                             {"kind", ref.numeric() ? "numeric" : "categorical"},
                             {"reference", SideJson(ref, measured.reference_summaries[column_idx])},
                             {"current", SideJson(cur, measured.current_summaries[column_idx])}};
    if (ref.numeric()) column["edges"] = ref.histogram().edges;
    for (const auto& [method, value] : measured.drifts[column_idx].values) {
      column[std::string(validate::DriftMethodName(method))] = value;
    }
    columns.push_back(std::move(column));
  }
  return {{"columns", columns}};
}

Status Run(const Flags& flags) {
  Stopwatch total;
  ASSIGN_OR_RETURN(std::string dir, flags.Require("dir"));
  std::string name = flags.Get("dataset");
  Dataset dataset;
  if (name == "flights") {
    ASSIGN_OR_RETURN(std::string flights, flags.Require("flights"));
    dataset = FlightsDataset(flights);
  } else if (name == "synthetic") {
    dataset = SyntheticDataset(dir);
  } else {
    return InvalidArgument("--dataset: '" + name + "' (flights or synthetic)");
  }

  Stopwatch read_watch;
  ASSIGN_OR_RETURN(std::unique_ptr<table::DuckDb> duckdb, table::DuckDb::Open());
  ASSIGN_OR_RETURN(Table reference_data, duckdb->Query(dataset.reference_sql));
  ASSIGN_OR_RETURN(Table current_data, duckdb->Query(dataset.current_sql));
  double read_seconds = read_watch.Seconds();

  size_t exact_limit = validate::ProfileOptions().exact_quantile_limit;
  if (flags.Has("exact"))
    exact_limit = std::max(reference_data.num_rows(), current_data.num_rows());
  Stopwatch compute_watch;
  double compute_cpu_start = ProcessCpuSeconds();
  const int threads = std::max(1, std::stoi(flags.Get("threads", "1")));
  ASSIGN_OR_RETURN(Measured measured, Measure(reference_data, current_data, exact_limit, threads));
  double compute_seconds = compute_watch.Seconds();
  double compute_cpu_seconds = ProcessCpuSeconds() - compute_cpu_start;
  double values = double(reference_data.num_rows() + current_data.num_rows()) *
                  double(reference_data.num_columns());

  Report report;
  report.tool = flags.Has("exact") ? "keel-exact" : "keel";
  report.bench = "validate-" + name;
  report.seconds = {{"read", read_seconds},
                    {"compute", compute_seconds},
                    {"total", total.Seconds()},
                    {"compute_cpu", compute_cpu_seconds},
                    {"compute_profile", measured.profile_seconds},
                    {"compute_drift", measured.drift_seconds}};
  report.numbers = {{"reference_rows", double(reference_data.num_rows())},
                    {"current_rows", double(current_data.num_rows())},
                    {"columns", double(reference_data.num_columns())},
                    {"values", values},
                    {"threads", double(threads)},
                    {"values_per_second_per_core", values / compute_seconds / threads}};
  if (flags.Has("out")) {
    RETURN_IF_ERROR(WriteFileAtomically(flags.Get("out"), OutputJson(measured).dump(1) + "\n"));
  }
  if (flags.Has("profiles")) {
    RETURN_IF_ERROR(WriteFileAtomically(
        flags.Get("profiles"), "{\"reference\": " + measured.reference.ToJson() +
                                   ",\n\"current\": " + measured.current.ToJson() + "}\n"));
  }
  report.Print();
  return Status::Ok();
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) {
  keel::Result<keel::bench::Flags> flags = keel::bench::Flags::Parse(argc, argv);
  if (!flags.ok()) return keel::bench::Fail(flags.status());
  keel::Status status = flags->mode() == "prepare" ? keel::bench::Prepare(*flags)
                        : flags->mode() == "run"
                            ? keel::bench::Run(*flags)
                            : keel::InvalidArgument("usage: bench_validate prepare|run ...");
  if (!status.ok()) return keel::bench::Fail(status);
  return 0;
}
