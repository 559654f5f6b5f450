// The matrices of the training benchmark (issue 5: "training pipeline on the
// flights example - total time vs the time XGBoost's own boosting takes on
// the same matrix: keel's overhead <= 25 %"). bench/train_bench.py runs
// `keel train --json`, then this program, then XGBoost itself through its
// Python package on what this program writes.
//
//   bench_train --train-json FILE --pipeline FILE --cache DIR --bundle DIR --out DIR
//
// Reads, from the step cache of the run `keel train --json` described in
// --train-json (the dataset, split and transforms steps' keys), the training
// set (dataset.keeltable + meta.json), the training and validation row ids
// (train.idx, validation.idx) and the fitted transforms (transforms.json),
// and rebuilds with keel's own functions (FittedTransforms::Apply,
// BuildDenseMatrix, LabelValues) the two matrices and label vectors the train
// step handed to XGBoost. Checks that the training matrix is that one: the
// same training-data hash as the bundle's train_report.json (matrix, labels
// and column names, hashed as the train step hashes them). Writes to --out:
//   train_x.npy, valid_x.npy  float32 rows x columns (row-major, NaN = missing)
//   train_y.npy, valid_y.npy  float32 labels (XGBoost's label type)
//   params.json               the XGBoost parameters keel's XgboostModel::Train
//                             sets for the pipeline's model section, plus the
//                             rounds and early-stopping rounds
// and prints one "BENCH_RESULT {json}" line (rows, columns, seconds).

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_util.h"
#include "common/files.h"
#include "common/hash.h"
#include "train/matrix.h"
#include "train/pipeline.h"
#include "train/step_cache.h"
#include "train/table_file.h"
#include "train/transforms.h"
#include "train/xgboost_model.h"

namespace keel::bench {
namespace {

namespace fs = std::filesystem;
using train::DenseMatrix;

// The step keys of one `keel train --json` run, by step name.
Result<std::string> StepKeyOf(const nlohmann::json& run, const std::string& step) {
  if (!run.contains("steps") || !run["steps"].is_array()) {
    return InvalidArgument("the train JSON has no \"steps\" array");
  }
  for (const nlohmann::json& entry : run["steps"]) {
    if (entry.value("step", "") == step) return entry.at("key").get<std::string>();
  }
  return NotFound("the train JSON has no step '" + step + "'");
}

std::vector<uint32_t> RowIds(const std::string& bytes) {
  std::vector<uint32_t> rows(bytes.size() / sizeof(uint32_t));
  if (!rows.empty()) std::memcpy(rows.data(), bytes.data(), rows.size() * sizeof(uint32_t));
  return rows;
}

struct SplitData {
  DenseMatrix x;
  std::vector<double> y;
};

// One split as the train step builds it: the input columns' rows, through the
// fitted transforms, as a dense matrix of every transformed column; the label
// column's rows as doubles.
Result<SplitData> BuildSplit(const table::Table& dataset,
                             const std::vector<std::string>& input_columns,
                             const std::string& label, const std::vector<uint32_t>& rows,
                             const train::FittedTransforms& transforms) {
  table::Table inputs;
  for (const std::string& name : input_columns) {
    ASSIGN_OR_RETURN(const table::Column* column, dataset.GetColumn(name));
    RETURN_IF_ERROR(inputs.AddColumn(name, column->Gather(rows)));
  }
  ASSIGN_OR_RETURN(table::Table transformed, transforms.Apply(inputs));
  std::vector<std::string> names;
  for (const table::Field& field : transformed.fields()) names.push_back(field.name);
  SplitData out;
  ASSIGN_OR_RETURN(out.x, train::BuildDenseMatrix(transformed, names));
  ASSIGN_OR_RETURN(const table::Column* label_column, dataset.GetColumn(label));
  ASSIGN_OR_RETURN(out.y, train::LabelValues(label_column->Gather(rows)));
  return out;
}

// The train step's training-data hash (runner_steps.cc): float32 matrix
// bytes, float64 label bytes, then each column name and a newline.
std::string TrainingDataHash(const SplitData& split) {
  std::string bytes(reinterpret_cast<const char*>(split.x.values.data()),
                    split.x.values.size() * sizeof(float));
  bytes.append(reinterpret_cast<const char*>(split.y.data()), split.y.size() * sizeof(double));
  for (const std::string& name : split.x.feature_names) bytes += name + "\n";
  return HashHex128(bytes);
}

// A NumPy .npy file (format 1.0) of little-endian float32 values.
Status WriteNpy(const fs::path& path, const std::vector<float>& values,
                const std::vector<size_t>& shape) {
  std::string dims;
  for (size_t dim : shape) dims += std::to_string(dim) + ", ";
  if (shape.size() > 1) dims.resize(dims.size() - 2);
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Magic (6) + version (2) + header length (2) + header, padded with spaces
  // and ended by a newline to a multiple of 64 bytes.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string bytes = "\x93NUMPY";
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  return WriteFileAtomically(path.string(), bytes);
}

Status WriteSplit(const fs::path& dir, const std::string& name, const SplitData& split) {
  RETURN_IF_ERROR(WriteNpy(dir / (name + "_x.npy"), split.x.values, {split.x.rows, split.x.cols}));
  // XGBoost keeps labels as float; keel's DMatrix gets them rounded the same way.
  std::vector<float> labels(split.y.begin(), split.y.end());
  return WriteNpy(dir / (name + "_y.npy"), labels, {labels.size()});
}

// The booster parameters XgboostModel::Train sets for `params`, by
// XGBoost's names, as the strings keel passes.
nlohmann::json XgboostParamsJson(const train::XgboostParams& params) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, value] : train::XgboostBoosterParams(params)) out[name] = value;
  return out;
}

Status Run(const Flags& flags) {
  ASSIGN_OR_RETURN(const std::string train_json_path, flags.Require("train-json"));
  ASSIGN_OR_RETURN(const std::string pipeline_path, flags.Require("pipeline"));
  ASSIGN_OR_RETURN(const std::string cache_dir, flags.Require("cache"));
  ASSIGN_OR_RETURN(const std::string bundle_dir, flags.Require("bundle"));
  ASSIGN_OR_RETURN(const std::string out_name, flags.Require("out"));
  const fs::path out_dir = out_name;
  fs::create_directories(out_dir);
  Stopwatch watch;

  ASSIGN_OR_RETURN(std::string train_json_text, ReadFileToString(train_json_path));
  const nlohmann::json run = nlohmann::json::parse(train_json_text, nullptr, false);
  if (run.is_discarded()) return InvalidArgument(train_json_path + ": not JSON");
  ASSIGN_OR_RETURN(const std::string dataset_key, StepKeyOf(run, "dataset"));
  ASSIGN_OR_RETURN(const std::string split_key, StepKeyOf(run, "split"));
  ASSIGN_OR_RETURN(const std::string transforms_key, StepKeyOf(run, "transforms"));
  ASSIGN_OR_RETURN(train::PipelineSpec pipeline, train::LoadPipeline(pipeline_path));
  train::XgboostParams params = pipeline.model;
  params.task = pipeline.task;

  const train::StepCache cache(cache_dir, /*force=*/false);
  ASSIGN_OR_RETURN(std::string meta_text, cache.Read("dataset", dataset_key, "meta.json"));
  const nlohmann::json meta = nlohmann::json::parse(meta_text);
  const auto input_columns = meta.at("input_columns").get<std::vector<std::string>>();
  ASSIGN_OR_RETURN(
      table::Table dataset,
      train::ReadTableFile(
          (fs::path(cache.Dir("dataset", dataset_key)) / "dataset.keeltable").string()));
  ASSIGN_OR_RETURN(std::string train_ids, cache.Read("split", split_key, "train.idx"));
  ASSIGN_OR_RETURN(std::string valid_ids, cache.Read("split", split_key, "validation.idx"));
  ASSIGN_OR_RETURN(std::string transforms_text,
                   cache.Read("transforms", transforms_key, "transforms.json"));
  ASSIGN_OR_RETURN(train::FittedTransforms transforms,
                   train::FittedTransforms::FromJson(nlohmann::json::parse(transforms_text)));

  ASSIGN_OR_RETURN(SplitData train, BuildSplit(dataset, input_columns, pipeline.label,
                                               RowIds(train_ids), transforms));
  ASSIGN_OR_RETURN(SplitData valid, BuildSplit(dataset, input_columns, pipeline.label,
                                               RowIds(valid_ids), transforms));

  // The training matrix must be the one the bundle's model was trained on.
  const std::string report_path = (fs::path(bundle_dir) / "train_report.json").string();
  ASSIGN_OR_RETURN(std::string report_text, ReadFileToString(report_path));
  const nlohmann::json report = nlohmann::json::parse(report_text);
  const std::string expected_hash = report.at("training_data_hash").get<std::string>();
  const std::string hash = TrainingDataHash(train);
  if (hash != expected_hash) {
    return FailedPrecondition("the rebuilt training matrix hashes to " + hash + ", but " +
                              report_path + " says the model was trained on " + expected_hash);
  }
  if (report.at("validation_rows").get<size_t>() != valid.x.rows) {
    return FailedPrecondition("the rebuilt validation matrix has " + std::to_string(valid.x.rows) +
                              " rows, " + report_path + " says " +
                              std::to_string(report.at("validation_rows").get<size_t>()));
  }

  RETURN_IF_ERROR(WriteSplit(out_dir, "train", train));
  RETURN_IF_ERROR(WriteSplit(out_dir, "valid", valid));
  const nlohmann::json params_json = {{"params", XgboostParamsJson(params)},
                                      {"num_rounds", params.num_rounds},
                                      {"early_stopping_rounds", params.early_stopping_rounds},
                                      {"feature_names", train.x.feature_names},
                                      {"training_data_hash", hash}};
  RETURN_IF_ERROR(WriteFileAtomically((out_dir / "params.json").string(), params_json.dump(2)));

  Report out;
  out.tool = "keel";
  out.bench = "train-matrices";
  out.seconds = {{"total", watch.Seconds()}};
  out.numbers = {{"train_rows", static_cast<double>(train.x.rows)},
                 {"valid_rows", static_cast<double>(valid.x.rows)},
                 {"columns", static_cast<double>(train.x.cols)}};
  out.texts = {{"training_data_hash", hash}};
  out.Print();
  return Status::Ok();
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) { return keel::bench::Main(argc, argv, keel::bench::Run); }
