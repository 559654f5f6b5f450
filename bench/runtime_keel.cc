// bench_runtime: keel's compiled-tree runtime (train/tree_runtime.h) beside
// XGBoost's own in-place prediction (XGBoosterPredictFromDense) on the same
// model and rows, in one run (issue 6: >= 5x faster on single rows, >= 2x on
// batches of 1 000).
//
//   build/bench/bench_runtime [--model PATH] [--trees 300] [--depth 8]
//                             [--features 20] [--rows 5000] [--reps 5]
//                             [--max-complete-depth 10] [--only-model]
//
// Two models, each measured the same way:
//   flights  the trained flights model (--model, default
//            .cache/out/flight_delay_bundle/model.ubj; skipped when the
//            default is absent). Its rows are synthesized from the model's
//            own split values (each feature a split value of that feature,
//            or just below one, or NaN 10 % of the time), so every branch
//            of every tree is taken.
//   random   binary:logistic trained by XgboostModel on random rows with 10 %
//            missing values (--trees, --depth, --features).
// Single rows: each of --rows rows predicted alone, median of the per-call
// times. Batches: the rows in batches of 1 000, median per batch. Each is
// repeated --reps times; printed is the median of the repetitions' medians
// (and their range). XGBoost runs with nthread=1 and nthread=2 (two boosters
// loaded from the same bytes); keel with one thread, and its batch also with
// two (PredictMargins with threads=2). Batch ratios are XGBoost / keel at the
// same thread count; single-row keel is always one thread. --max-complete-
// depth -1 measures keel's linked layout instead of the complete one;
// --only-model skips the random model. The run fails when any margin or
// probability differs from XGBoost's by more than 1e-6.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "bench_util.h"
#include "common/files.h"
#include "train/tree_runtime.h"
#include "train/xgboost_model.h"

namespace keel::bench {
namespace {

constexpr size_t kBatch = 1000;

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double Micros(std::chrono::steady_clock::time_point from) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - from).count();
}

train::DenseMatrix RandomRows(std::mt19937_64& random, size_t rows, size_t cols,
                              std::vector<double>* labels) {
  train::DenseMatrix matrix;
  matrix.rows = rows;
  matrix.cols = cols;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (size_t row = 0; row < rows; ++row) {
    double score = 0;
    for (size_t col = 0; col < cols; ++col) {
      float value = random() % 10 == 0 ? NAN : normal(random);
      matrix.values.push_back(value);
      if (!std::isnan(value)) score += std::sin(value * (col + 1)) / (col + 1);
    }
    labels->push_back(score + normal(random) * 0.3 > 0 ? 1.0 : 0.0);
  }
  return matrix;
}

// Rows whose values are the model's own split values (or the float just
// below one), NaN 10 % of the time.
train::DenseMatrix RowsFromSplits(std::mt19937_64& random, const std::string& json, size_t rows,
                                  size_t cols) {
  std::vector<std::vector<float>> splits(cols);
  const nlohmann::json parsed = nlohmann::json::parse(json);
  for (const auto& tree : parsed["learner"]["gradient_booster"]["model"]["trees"]) {
    for (size_t node = 0; node < tree["left_children"].size(); ++node) {
      if (tree["left_children"][node].get<int>() < 0) continue;
      splits[tree["split_indices"][node].get<size_t>()].push_back(
          tree["split_conditions"][node].get<float>());
    }
  }
  train::DenseMatrix matrix;
  matrix.rows = rows;
  matrix.cols = cols;
  for (size_t row = 0; row < rows; ++row) {
    for (size_t col = 0; col < cols; ++col) {
      float value = 0;
      if (random() % 10 == 0) {
        value = NAN;
      } else if (!splits[col].empty()) {
        value = splits[col][random() % splits[col].size()];
        if (random() % 2 == 0) value = std::nextafter(value, -INFINITY);
      }
      matrix.values.push_back(value);
    }
  }
  return matrix;
}

struct Timings {
  std::vector<double> single_keel, single_xgb1, single_xgb2;
  std::vector<double> batch_keel1, batch_keel2, batch_xgb1, batch_xgb2;
};

void PrintLine(const char* what, const std::vector<double>& keel,
               const std::vector<double>& xgboost, int threads, double target) {
  double k = Median(keel), x = Median(xgboost);
  auto [kmin, kmax] = std::minmax_element(keel.begin(), keel.end());
  auto [xmin, xmax] = std::minmax_element(xgboost.begin(), xgboost.end());
  std::printf("  %-18s %d thr  keel %9.2f us [%.2f-%.2f]  XGBoost %9.2f us [%.2f-%.2f]  %5.1fx%s\n",
              what, threads, k, *kmin, *kmax, x, *xmin, *xmax, x / k,
              target > 0 ? (x / k >= target ? "  (target met)" : "  (target MISSED)") : "");
}

// Measures one model: `bytes` is what XgboostModel::Load reads.
Status Measure(const std::string& name, const std::string& bytes, const train::DenseMatrix* rows_in,
               size_t rows, int reps, int max_complete_depth) {
  ASSIGN_OR_RETURN(std::unique_ptr<train::XgboostModel> xgb1, train::XgboostModel::Load(bytes, 1));
  ASSIGN_OR_RETURN(std::unique_ptr<train::XgboostModel> xgb2, train::XgboostModel::Load(bytes, 2));
  ASSIGN_OR_RETURN(std::string json, xgb1->SaveJson());
  ASSIGN_OR_RETURN(train::CompiledTrees compiled,
                   train::CompiledTrees::FromXgboostJson(json, max_complete_depth));
  size_t cols = compiled.num_features();
  std::mt19937_64 random(23);
  train::DenseMatrix test =
      rows_in != nullptr ? *rows_in : RowsFromSplits(random, json, rows, cols);
  rows = test.rows;

  // Agreement first (outside the timings): margins and probabilities, single and batch.
  ASSIGN_OR_RETURN(std::vector<double> xgb_margin,
                   xgb1->PredictInPlace(test.values.data(), rows, true));
  ASSIGN_OR_RETURN(std::vector<double> xgb_prob,
                   xgb1->PredictInPlace(test.values.data(), rows, false));
  std::vector<float> batch_margin(rows), batch_margin2(rows);
  compiled.PredictMargins(test.values.data(), rows, cols, batch_margin.data());
  compiled.PredictMargins(test.values.data(), rows, cols, batch_margin2.data(), 2);
  double worst_margin = 0, worst_prob = 0;
  for (size_t row = 0; row < rows; ++row) {
    float single = compiled.PredictMargin(test.row(row));
    if (single != batch_margin[row] || single != batch_margin2[row]) {
      return Internal(name + ": row " + std::to_string(row) + ": single and batch margins differ");
    }
    worst_margin = std::max(worst_margin, std::abs(single - xgb_margin[row]));
    worst_prob = std::max(worst_prob, std::abs(compiled.Transform(single) - xgb_prob[row]));
  }

  Timings times;
  std::vector<float> out(kBatch);
  volatile float sink = 0;
  for (int rep = 0; rep < reps; ++rep) {
    std::vector<double> keel, x1, x2;
    for (size_t row = 0; row < rows; ++row) {
      const float* values = test.values.data() + row * cols;
      auto start = std::chrono::steady_clock::now();
      float p = compiled.Transform(compiled.PredictMargin(std::span<const float>(values, cols)));
      keel.push_back(Micros(start));
      sink = sink + p;
      start = std::chrono::steady_clock::now();
      ASSIGN_OR_RETURN(std::vector<double> xgb, xgb1->PredictInPlace(values, 1, false));
      x1.push_back(Micros(start));
      start = std::chrono::steady_clock::now();
      ASSIGN_OR_RETURN(xgb, xgb2->PredictInPlace(values, 1, false));
      x2.push_back(Micros(start));
    }
    times.single_keel.push_back(Median(keel));
    times.single_xgb1.push_back(Median(x1));
    times.single_xgb2.push_back(Median(x2));
    std::vector<double> k1, k2;
    x1.clear();
    x2.clear();
    for (size_t begin = 0; begin + kBatch <= rows; begin += kBatch) {
      const float* values = test.values.data() + begin * cols;
      for (int threads : {1, 2}) {
        auto start = std::chrono::steady_clock::now();
        compiled.PredictMargins(values, kBatch, cols, out.data(), threads);
        for (float& margin : out) margin = compiled.Transform(margin);
        (threads == 1 ? k1 : k2).push_back(Micros(start));
        sink = sink + out[0];
      }
      auto start = std::chrono::steady_clock::now();
      ASSIGN_OR_RETURN(std::vector<double> xgb, xgb1->PredictInPlace(values, kBatch, false));
      x1.push_back(Micros(start));
      start = std::chrono::steady_clock::now();
      ASSIGN_OR_RETURN(xgb, xgb2->PredictInPlace(values, kBatch, false));
      x2.push_back(Micros(start));
    }
    times.batch_keel1.push_back(Median(k1));
    times.batch_keel2.push_back(Median(k2));
    times.batch_xgb1.push_back(Median(x1));
    times.batch_xgb2.push_back(Median(x2));
  }

  std::printf(
      "%s: %zu trees, %zu features, %s layout; %zu rows; median of %d repetitions [range]\n",
      name.c_str(), compiled.num_trees(), cols, compiled.layout_name(), rows, reps);
  PrintLine("single row", times.single_keel, times.single_xgb1, 1, 5);
  PrintLine("single row", times.single_keel, times.single_xgb2, 2, 0);
  PrintLine("1 000 rows", times.batch_keel1, times.batch_xgb1, 1, 2);
  PrintLine("1 000 rows", times.batch_keel2, times.batch_xgb2, 2, 2);
  std::printf("  largest difference from XGBoost: margin %.3g, probability %.3g (target <= 1e-6)\n",
              worst_margin, worst_prob);
  std::printf(
      "BENCH_RESULT {\"model\":\"%s\",\"single_keel_us\":%.3f,\"single_xgboost1_us\":%.3f,"
      "\"single_xgboost2_us\":%.3f,\"batch_keel1_us\":%.3f,\"batch_xgboost1_us\":%.3f,"
      "\"batch_keel2_us\":%.3f,\"batch_xgboost2_us\":%.3f,\"max_margin_diff\":%.3g,"
      "\"max_prob_diff\":%.3g}\n",
      name.c_str(), Median(times.single_keel), Median(times.single_xgb1), Median(times.single_xgb2),
      Median(times.batch_keel1), Median(times.batch_xgb1), Median(times.batch_keel2),
      Median(times.batch_xgb2), worst_margin, worst_prob);
  std::fflush(stdout);
  if (worst_margin > 1e-6 || worst_prob > 1e-6) {
    return Internal(name + ": predictions differ from XGBoost's");
  }
  return Status::Ok();
}

Status Run(const Flags& flags) {
  int trees = std::stoi(flags.Get("trees", "300"));
  int depth = std::stoi(flags.Get("depth", "8"));
  size_t cols = std::stoul(flags.Get("features", "20"));
  size_t rows = std::stoul(flags.Get("rows", "5000"));
  int reps = std::max(1, std::stoi(flags.Get("reps", "5")));
  int max_complete_depth = std::stoi(flags.Get(
      "max-complete-depth", std::to_string(train::CompiledTrees::kDefaultMaxCompleteDepth)));
  if (rows < kBatch) return InvalidArgument("--rows must be at least 1000");
  const std::string default_model = ".cache/out/flight_delay_bundle/model.ubj";
  std::string model_path = flags.Get("model", default_model);
  if (flags.Has("model") || std::filesystem::exists(model_path)) {
    ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(model_path));
    RETURN_IF_ERROR(
        Measure("flights (" + model_path + ")", bytes, nullptr, rows, reps, max_complete_depth));
  } else {
    std::printf("flights: %s not found (run from the repository root), skipped\n",
                model_path.c_str());
  }
  if (flags.Has("only-model")) return Status::Ok();

  std::mt19937_64 random(11);
  std::vector<double> labels, unused;
  train::DenseMatrix train_rows = RandomRows(random, 50000, cols, &labels);
  train::XgboostParams params;
  params.num_rounds = trees;
  params.max_depth = depth;
  params.eta = 0.1;
  params.seed = 1;
  ASSIGN_OR_RETURN(std::unique_ptr<train::XgboostModel> model,
                   train::XgboostModel::Train(params, train_rows, labels));
  ASSIGN_OR_RETURN(std::string bytes, model->Save());
  train::DenseMatrix test = RandomRows(random, rows, cols, &unused);
  return Measure("random (" + std::to_string(trees) + " trees, depth " + std::to_string(depth) +
                     ", 10% missing)",
                 bytes, &test, rows, reps, max_complete_depth);
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) { return keel::bench::Main(argc, argv, keel::bench::Run); }
