// bench_runtime: keel's compiled-tree runtime (serve/tree_runtime.h) beside
// XGBoost's own in-place prediction (XGBoosterPredictFromDense) on the same
// model and rows, in one run (issue 6: >= 5x faster on single rows, >= 2x on
// batches of 1 000).
//
//   build/bench/bench_runtime [--trees 300] [--depth 8] [--features 20] [--rows 20000]
//
// The model: binary:logistic, trained by XgboostModel on random rows with
// missing values. Single rows: each of --rows rows predicted alone, median of
// the per-call times. Batches: --rows rows in batches of 1 000, median per
// batch. Prints both, the ratios, and the largest difference in probability.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "bench_util.h"
#include "serve/tree_runtime.h"
#include "train/xgboost_model.h"

namespace keel::bench {
namespace {

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

Status Run(const Flags& flags) {
  int trees = std::stoi(flags.Get("trees", "300"));
  int depth = std::stoi(flags.Get("depth", "8"));
  size_t cols = std::stoul(flags.Get("features", "20"));
  size_t rows = std::stoul(flags.Get("rows", "20000"));
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
  ASSIGN_OR_RETURN(std::string json, model->SaveJson());
  ASSIGN_OR_RETURN(serve::CompiledTrees compiled, serve::CompiledTrees::FromXgboostJson(json));
  train::DenseMatrix test = RandomRows(random, rows, cols, &unused);

  // Single rows.
  std::vector<double> keel_single, xgb_single;
  double worst = 0;
  volatile float sink = 0;
  for (size_t row = 0; row < rows; ++row) {
    const float* values = test.values.data() + row * cols;
    auto start = std::chrono::steady_clock::now();
    float keel = compiled.Transform(compiled.PredictMargin(std::span<const float>(values, cols)));
    keel_single.push_back(Micros(start));
    sink = sink + keel;
    start = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(std::vector<double> xgb, model->PredictInPlace(values, 1, false));
    xgb_single.push_back(Micros(start));
    worst = std::max(worst, std::abs(static_cast<double>(keel) - xgb[0]));
  }
  // Batches of 1 000.
  std::vector<double> keel_batch, xgb_batch;
  std::vector<float> out(1000);
  for (int round = 0; round < 3; ++round) {
    for (size_t begin = 0; begin + 1000 <= rows; begin += 1000) {
      const float* values = test.values.data() + begin * cols;
      auto start = std::chrono::steady_clock::now();
      compiled.PredictMargins(values, 1000, cols, out.data());
      for (float& margin : out) margin = compiled.Transform(margin);
      keel_batch.push_back(Micros(start));
      start = std::chrono::steady_clock::now();
      ASSIGN_OR_RETURN(std::vector<double> xgb, model->PredictInPlace(values, 1000, false));
      xgb_batch.push_back(Micros(start));
      for (size_t i = 0; i < 1000; ++i) {
        worst = std::max(worst, std::abs(static_cast<double>(out[i]) - xgb[i]));
      }
    }
  }
  double ks = Median(keel_single), xs = Median(xgb_single);
  double kb = Median(keel_batch), xb = Median(xgb_batch);
  std::printf("model: %d trees, depth %d, %zu features; %zu rows with 10%% missing values\n", trees,
              depth, cols, rows);
  std::printf("single row:  keel %.2f us  XGBoost in-place %.2f us  ratio %.1fx (target >= 5x)\n",
              ks, xs, xs / ks);
  std::printf("1 000 rows:  keel %.1f us  XGBoost in-place %.1f us  ratio %.1fx (target >= 2x)\n",
              kb, xb, xb / kb);
  std::printf("largest probability difference: %.3g (target <= 1e-6)\n", worst);
  std::printf(
      "BENCH_RESULT {\"single_keel_us\":%.3f,\"single_xgboost_us\":%.3f,"
      "\"batch_keel_us\":%.3f,\"batch_xgboost_us\":%.3f,\"max_diff\":%.3g}\n",
      ks, xs, kb, xb, worst);
  return worst <= 1e-6 ? Status::Ok() : Internal("predictions differ from XGBoost's");
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) { return keel::bench::Main(argc, argv, keel::bench::Run); }
