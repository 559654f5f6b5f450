// The keel side of the training benchmark (issue 5: "keel's overhead over
// XGBoost's own boosting <= 25 %"). bench/train_bench.py drives it and runs
// the peer, XGBoost's own Python training (python3-xgboost 1.7.4, the same
// libxgboost), on the very matrices this program writes.
//
//   bench_train --flights FILE.parquet --dir DIR [--train-rows N] [--rounds N]
//
// Reads flights January-April (train) and May (validation) through DuckDB
// (read, untimed against the peer), then times keel's training path from
// columns in memory: pinned row order, ordinal encoding of origin and
// destination fitted on train, dense matrices, XgboostModel::Train (hist, 2
// threads, early stopping on May), validation predictions and ROC AUC. Writes
// DIR/{train,valid}_{x.f32,y.f64}, DIR/keel_valid_pred.f64 and DIR/params.json
// (what the peer needs) and prints one "BENCH_RESULT {json}" line.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_util.h"
#include "table/duckdb_bridge.h"
#include "train/matrix.h"
#include "train/metrics.h"
#include "train/transforms.h"
#include "train/xgboost_model.h"

namespace keel::bench {
namespace {

using train::DenseMatrix;
using train::FittedTransforms;
using train::TransformKind;
using train::TransformSpec;

const std::vector<std::string> kFeatures = {"origin", "destination", "distance", "hour", "weekday"};

std::string Query(const std::string& path, const std::string& from, const std::string& to,
                  const std::string& limit) {
  return "SELECT date, origin, destination, distance, CAST(hour(date) AS BIGINT) AS hour, "
         "CAST(isodow(date) AS BIGINT) AS weekday, CAST(delay > 15 AS BIGINT) AS label "
         "FROM read_parquet(" +
         table::QuoteSqlString(path) + ") WHERE date >= TIMESTAMP '" + from +
         "' AND date < TIMESTAMP '" + to + "'" + limit;
}

template <typename T>
Status WriteArray(const std::filesystem::path& path, const std::vector<T>& values) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(values.data()),
            static_cast<std::streamsize>(values.size() * sizeof(T)));
  return out ? Status::Ok() : IoError("cannot write " + path.string());
}

struct Prepared {
  DenseMatrix x;
  std::vector<double> y;
};

// Pinned order, fitted transforms, matrix and labels of one split.
Result<Prepared> Prepare(const table::Table& split, const FittedTransforms& transforms) {
  ASSIGN_OR_RETURN(std::vector<uint32_t> order,
                   train::TrainingRowOrder(split, "date", {"origin", "destination"}));
  ASSIGN_OR_RETURN(table::Table encoded, transforms.Apply(train::GatherRows(split, order)));
  Prepared out;
  ASSIGN_OR_RETURN(out.x, train::BuildDenseMatrix(encoded, kFeatures));
  ASSIGN_OR_RETURN(const table::Column* label, encoded.GetColumn("label"));
  ASSIGN_OR_RETURN(out.y, train::LabelValues(*label));
  return out;
}

Status Run(const Flags& flags) {
  ASSIGN_OR_RETURN(const std::string flights, flags.Require("flights"));
  ASSIGN_OR_RETURN(const std::string dir_name, flags.Require("dir"));
  const std::filesystem::path dir = dir_name;
  std::filesystem::create_directories(dir);
  const std::string train_rows = flags.Get("train-rows", "");
  const std::string limit =
      train_rows.empty() ? "" : " USING SAMPLE reservoir(" + train_rows + " ROWS) REPEATABLE (7)";

  Stopwatch read_watch;
  ASSIGN_OR_RETURN(std::unique_ptr<table::DuckDb> db, table::DuckDb::Open());
  RETURN_IF_ERROR(db->Execute("SET threads = 2"));
  ASSIGN_OR_RETURN(table::Table train_table,
                   db->Query(Query(flights, "2001-01-01", "2001-05-01", limit)));
  ASSIGN_OR_RETURN(table::Table valid_table,
                   db->Query(Query(flights, "2001-05-01", "2001-06-01", "")));
  db.reset();  // no idle DuckDB threads beside the timed part
  const double read_seconds = read_watch.Seconds();

  train::XgboostParams params;
  params.num_rounds = std::stoi(flags.Get("rounds", "200"));
  params.eta = 0.1;
  params.max_depth = 8;
  params.seed = 5;
  params.nthread = 2;
  params.early_stopping_rounds = 10;

  Stopwatch total_watch;
  Stopwatch prepare_watch;
  std::vector<TransformSpec> specs;
  for (const char* column : {"origin", "destination"}) {
    TransformSpec spec;
    spec.kind = TransformKind::kOrdinal;
    spec.column = column;
    specs.push_back(spec);
  }
  ASSIGN_OR_RETURN(FittedTransforms transforms, FittedTransforms::Fit(specs, train_table));
  ASSIGN_OR_RETURN(Prepared train, Prepare(train_table, transforms));
  ASSIGN_OR_RETURN(Prepared valid, Prepare(valid_table, transforms));
  const double prepare_seconds = prepare_watch.Seconds();

  Stopwatch boost_watch;
  train::XgboostTrainingReport report;
  ASSIGN_OR_RETURN(
      std::unique_ptr<train::XgboostModel> model,
      train::XgboostModel::Train(params, train.x, train.y, &valid.x, valid.y, &report));
  const double boost_seconds = boost_watch.Seconds();

  Stopwatch evaluate_watch;
  ASSIGN_OR_RETURN(std::vector<double> predictions, model->Predict(valid.x));
  ASSIGN_OR_RETURN(double auc, train::RocAuc(valid.y, predictions));
  ASSIGN_OR_RETURN(std::string model_bytes, model->Save());
  const double evaluate_seconds = evaluate_watch.Seconds();
  const double total_seconds = total_watch.Seconds();

  // Untimed: what the peer needs.
  RETURN_IF_ERROR(WriteArray(dir / "train_x.f32", train.x.values));
  RETURN_IF_ERROR(WriteArray(dir / "train_y.f64", train.y));
  RETURN_IF_ERROR(WriteArray(dir / "valid_x.f32", valid.x.values));
  RETURN_IF_ERROR(WriteArray(dir / "valid_y.f64", valid.y));
  RETURN_IF_ERROR(WriteArray(dir / "keel_valid_pred.f64", predictions));
  std::ofstream(dir / "params.json") << nlohmann::json{
      {"cols", train.x.cols},
      {"num_rounds", params.num_rounds},
      {"early_stopping_rounds", params.early_stopping_rounds},
      {"params",
       {{"objective", "binary:logistic"},
        {"eval_metric", "logloss"},
        {"tree_method", "hist"},
        {"eta", params.eta},
        {"max_depth", params.max_depth},
        {"seed", params.seed},
        {"nthread", params.nthread},
        {"verbosity", 0}}}}.dump();

  Report out;
  out.tool = "keel";
  out.bench = "train";
  out.seconds = {{"read", read_seconds},
                 {"prepare", prepare_seconds},
                 {"boost", boost_seconds},
                 {"evaluate", evaluate_seconds},
                 {"total", total_seconds}};
  out.numbers = {{"train_rows", static_cast<double>(train.x.rows)},
                 {"valid_rows", static_cast<double>(valid.x.rows)},
                 {"rounds_boosted", static_cast<double>(report.rounds_boosted)},
                 {"best_iteration", static_cast<double>(report.best_iteration)},
                 {"valid_auc", auc},
                 {"model_bytes", static_cast<double>(model_bytes.size())}};
  out.Print();
  return Status::Ok();
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) { return keel::bench::Main(argc, argv, keel::bench::Run); }
