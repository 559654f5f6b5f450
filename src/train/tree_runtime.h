#pragma once

// keel's own evaluator of gradient-boosted trees: an XGBoost model (its JSON
// form, XgboostModel::SaveJson, or its UBJSON model file) compiled into flat
// arrays, so a prediction is
// a few cache-friendly, branch-free loops with no allocation and no call into
// XGBoost.
//
// Two layouts, same predictions. "complete" (models whose trees are at most
// kMaxCompleteDepth deep, when the padding stays modest): every tree padded
// to a complete tree of the model's depth D (a leaf above depth D is copied
// to all the leaves below it) and stored as 2^D - 1 eight-byte splits
// {threshold, feature} in breadth-first order plus 2^D leaf values; a walk is
// exactly D steps of `at = 2 * at + 1 + (x >= threshold)`, with no child
// pointers, no leaf test and no branch. Missing values need no test either:
// the row is first widened to 2 * num_features() values, [0, F) with NaN as
// -inf and [F, 2F) with NaN as +inf, and a split whose missing values go
// right reads the second half (+inf >= any finite threshold), one whose
// missing values go left the first. Several trees (one row) or several rows
// (one tree, batches) are walked in lockstep so their loads overlap.
// "linked" (deeper or sparse trees, or a non-finite threshold): nodes with
// child indices, walked until a leaf.
//
// Semantics are XGBoost 1.7's (CPU predictor): a row goes left at a split
// when its value is < the split condition, right otherwise, and down the
// node's default direction when it is NaN (missing); the margin is the base
// margin plus one leaf per tree, added in float in tree order; the
// probability of binary:logistic is the logistic function of the margin.
// Margins equal XGBoost's bit for bit (tested on random models with missing
// values and deep trees, whose base_score is XGBoost 1.7's 0.5; a base_score
// whose logit rounds differently in float could move every margin by an ulp);
// keel train's evaluate step predicts with it (train/runner_steps.h).

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace keel::train {

// Immutable once compiled; every method may be called from many threads.
class CompiledTrees {
 public:
  enum class Objective { kBinaryLogistic, kSquaredError };

  // Compiles an XGBoost JSON model. Errors: InvalidArgument naming what is
  // unsupported or malformed (another objective, several classes or targets,
  // categorical splits, vector leaves, a node index out of range, a tree with
  // a cycle).
  static Result<CompiledTrees> FromXgboostJson(std::string_view json);
  // The same, choosing the complete layout only for models whose trees are at
  // most min(max_complete_depth, kMaxCompleteDepth) deep (-1: always the
  // linked layout; the predictions are the same, only their speed differs).
  static constexpr int kMaxCompleteDepth = 10;
  static constexpr int kDefaultMaxCompleteDepth = kMaxCompleteDepth;
  static Result<CompiledTrees> FromXgboostJson(std::string_view json, int max_complete_depth);
  // The same from XGBoost's UBJSON form of the model (XgboostModel::Save with
  // model_format "ubj", a bundle's model.ubj), read directly: no JSON text in
  // between, the same compiled trees. Errors: as FromXgboostJson, and
  // InvalidArgument for bytes that are not UBJSON.
  static Result<CompiledTrees> FromXgboostUbjson(std::string_view ubjson);

  Objective objective() const { return objective_; }
  size_t num_features() const { return num_features_; }
  size_t num_trees() const { return roots_.size(); }

  // The margin (raw score) of one row of num_features() values (NaN: missing).
  // Precondition: row.size() >= num_features().
  float PredictMargin(std::span<const float> row) const;
  // Margins of `rows` rows stored row-major with `stride` floats per row
  // (stride >= num_features()) into out[0, rows), each equal to
  // PredictMargin of that row. With threads > 1 and enough rows (>= 256 per
  // thread) the rows are split among that many threads started for the call
  // (the calling thread is one of them); on a machine whose cores are busy
  // the extra threads may wait to be scheduled and make the call slower.
  void PredictMargins(const float* values, size_t rows, size_t stride, float* out,
                      int threads = 1) const;
  // The model's output for a margin: the probability for binary:logistic,
  // the margin itself for squared error.
  float Transform(float margin) const;

  // "complete depth D" or "linked": which layout the model was compiled to.
  const char* layout_name() const { return layout_name_.c_str(); }

 private:
  // A node: a split (feature >= 0) with its children at `left` and `left + 1`,
  // or a leaf (feature < 0) whose value is `value`.
  struct Node {
    float value = 0;  // split condition, or leaf value
    int32_t feature = -1;
    uint32_t left = 0;  // bit 31: missing values go left
  };
  static constexpr uint32_t kDefaultLeft = 1u << 31;

  // A split of the complete layout; `feature` indexes the widened row.
  struct Split {
    float threshold = 0;
    uint32_t feature = 0;
  };

  // Compiles a parsed XGBoost model (JSON or UBJSON, the same document).
  static Result<CompiledTrees> FromModel(const nlohmann::json& model, int max_complete_depth);
  // The child of split `node` that `row` goes to.
  uint32_t Next(const Node& node, const float* row) const;
  // Builds splits_ / leaves_ from nodes_ when the trees allow it.
  void BuildCompleteLayout(int max_complete_depth);
  float PredictMarginLinked(const float* row) const;
  void PredictMarginsLinked(const float* values, size_t rows, size_t stride, float* out) const;
  void PredictMarginsComplete(const float* values, size_t rows, size_t stride, float* out) const;
  void Widen(const float* row, float* wide) const;

  Objective objective_ = Objective::kSquaredError;
  size_t num_features_ = 0;
  float base_margin_ = 0;
  std::vector<Node> nodes_;  // linked layout (emptied when complete)
  std::vector<uint32_t> roots_;
  int depth_ = -1;             // complete layout's depth; -1: linked layout
  std::vector<Split> splits_;  // num_trees() * (2^depth_ - 1), breadth-first
  std::vector<float> leaves_;  // num_trees() * 2^depth_
  std::string layout_name_ = "linked";
};

}  // namespace keel::train
