#pragma once

// keel's own evaluator of gradient-boosted trees: an XGBoost model (its JSON
// form, XgboostModel::SaveJson) compiled into one flat array of nodes, so a
// prediction is a few cache-friendly loops with no allocation and no call
// into XGBoost.
//
// Semantics are XGBoost 1.7's (CPU predictor): a row goes left at a split
// when its value is < the split condition, right otherwise, and down the
// node's default direction when it is NaN (missing); the margin is the base
// margin plus one leaf per tree, added in float in tree order; the
// probability of binary:logistic is the logistic function of the margin.
// Outputs equal XGBoost's to ~1e-7 (tested on random models with missing
// values and deep trees).

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace keel::serve {

// Immutable once compiled; every method may be called from many threads.
class CompiledTrees {
 public:
  enum class Objective { kBinaryLogistic, kSquaredError };

  // Compiles an XGBoost JSON model. Errors: InvalidArgument naming what is
  // unsupported or malformed (another objective, several classes or targets,
  // categorical splits, vector leaves, a node index out of range, a tree with
  // a cycle).
  static Result<CompiledTrees> FromXgboostJson(std::string_view json);

  Objective objective() const { return objective_; }
  size_t num_features() const { return num_features_; }
  size_t num_trees() const { return roots_.size(); }

  // The margin (raw score) of one row of num_features() values (NaN: missing).
  // Precondition: row.size() >= num_features().
  float PredictMargin(std::span<const float> row) const;
  // Margins of `rows` rows stored row-major with `stride` floats per row
  // (stride >= num_features()) into out[0, rows).
  void PredictMargins(const float* values, size_t rows, size_t stride, float* out) const;
  // The model's output for a margin: the probability for binary:logistic,
  // the margin itself for squared error.
  float Transform(float margin) const;

 private:
  // A node: a split (feature >= 0) with its children at `left` and `left + 1`,
  // or a leaf (feature < 0) whose value is `value`.
  struct Node {
    float value = 0;  // split condition, or leaf value
    int32_t feature = -1;
    uint32_t left = 0;  // bit 31: missing values go left
  };
  static constexpr uint32_t kDefaultLeft = 1u << 31;

  // The child of split `node` that `row` goes to.
  uint32_t Next(const Node& node, const float* row) const;

  Objective objective_ = Objective::kSquaredError;
  size_t num_features_ = 0;
  float base_margin_ = 0;
  std::vector<Node> nodes_;
  std::vector<uint32_t> roots_;
};

}  // namespace keel::serve
