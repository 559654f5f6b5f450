#include "serve/tree_runtime.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

namespace keel::serve {

using Json = nlohmann::json;

namespace {

// XGBoost writes its parameters as strings ("5E-1").
Result<double> NumberParam(const Json& object, const char* name) {
  auto found = object.find(name);
  if (found == object.end()) return InvalidArgument(std::string("model: no ") + name);
  if (found->is_number()) return found->get<double>();
  if (!found->is_string()) return InvalidArgument(std::string("model: ") + name + " not a number");
  try {
    return std::stod(found->get<std::string>());
  } catch (const std::exception&) {
    return InvalidArgument(std::string("model: ") + name + " not a number");
  }
}

template <typename T>
Result<std::vector<T>> Array(const Json& tree, const char* name, size_t size, size_t tree_idx) {
  auto found = tree.find(name);
  if (found == tree.end() || !found->is_array() || found->size() != size) {
    return InvalidArgument("model: trees[" + std::to_string(tree_idx) + "]." + name +
                           ": missing or not " + std::to_string(size) + " values");
  }
  try {
    return found->get<std::vector<T>>();
  } catch (const Json::exception&) {
    return InvalidArgument("model: trees[" + std::to_string(tree_idx) + "]." + name +
                           ": wrong value types");
  }
}

}  // namespace

Result<CompiledTrees> CompiledTrees::FromXgboostJson(std::string_view text) {
  Json model;
  try {
    model = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& error) {
    return InvalidArgument(std::string("model: not valid JSON: ") + error.what());
  }
  CompiledTrees compiled;
  try {
    const Json& learner = model.at("learner");
    std::string objective = learner.at("objective").at("name").get<std::string>();
    const Json& params = learner.at("learner_model_param");
    ASSIGN_OR_RETURN(double base_score, NumberParam(params, "base_score"));
    ASSIGN_OR_RETURN(double num_features, NumberParam(params, "num_feature"));
    ASSIGN_OR_RETURN(double num_class, NumberParam(params, "num_class"));
    if (num_class > 1) return InvalidArgument("model: multi-class models are not supported");
    if (params.contains("num_target")) {
      ASSIGN_OR_RETURN(double targets, NumberParam(params, "num_target"));
      if (targets > 1) return InvalidArgument("model: multi-target models are not supported");
    }
    compiled.num_features_ = static_cast<size_t>(num_features);
    if (objective == "binary:logistic") {
      compiled.objective_ = Objective::kBinaryLogistic;
      if (base_score <= 0 || base_score >= 1) {
        return InvalidArgument("model: base_score outside (0, 1) for binary:logistic");
      }
      // XGBoost keeps the base score as a probability; the margin starts at its logit.
      compiled.base_margin_ = static_cast<float>(-std::log(1.0 / base_score - 1.0));
    } else if (objective == "reg:squarederror") {
      compiled.objective_ = Objective::kSquaredError;
      compiled.base_margin_ = static_cast<float>(base_score);
    } else {
      return InvalidArgument("model: objective '" + objective +
                             "' is not supported (binary:logistic, reg:squarederror)");
    }
    const Json& booster = learner.at("gradient_booster");
    if (booster.at("name") != "gbtree") {
      return InvalidArgument("model: only gbtree boosters are supported");
    }
    const Json& trees = booster.at("model").at("trees");
    for (size_t tree_idx = 0; tree_idx < trees.size(); ++tree_idx) {
      const Json& tree = trees[tree_idx];
      ASSIGN_OR_RETURN(double nodes_param, NumberParam(tree.at("tree_param"), "num_nodes"));
      size_t nodes = static_cast<size_t>(nodes_param);
      if (nodes == 0)
        return InvalidArgument("model: trees[" + std::to_string(tree_idx) + "] is empty");
      ASSIGN_OR_RETURN(auto left, Array<int64_t>(tree, "left_children", nodes, tree_idx));
      ASSIGN_OR_RETURN(auto right, Array<int64_t>(tree, "right_children", nodes, tree_idx));
      ASSIGN_OR_RETURN(auto feature, Array<int64_t>(tree, "split_indices", nodes, tree_idx));
      ASSIGN_OR_RETURN(auto condition, Array<double>(tree, "split_conditions", nodes, tree_idx));
      ASSIGN_OR_RETURN(auto default_left, Array<int64_t>(tree, "default_left", nodes, tree_idx));
      if (tree.contains("split_type")) {
        ASSIGN_OR_RETURN(auto split_type, Array<int64_t>(tree, "split_type", nodes, tree_idx));
        for (int64_t type : split_type) {
          if (type != 0) return InvalidArgument("model: categorical splits are not supported");
        }
      }
      // Lay the tree out breadth-first with siblings side by side; every
      // node is placed once (a node reached twice, or never, is malformed).
      uint32_t root = static_cast<uint32_t>(compiled.nodes_.size());
      compiled.nodes_.emplace_back();
      std::vector<std::pair<int64_t, uint32_t>> queue = {{0, root}};  // (source, slot)
      std::vector<uint8_t> seen(nodes, 0);
      seen[0] = 1;
      for (size_t head = 0; head < queue.size(); ++head) {
        auto [source, slot] = queue[head];
        Node node;
        if (left[source] < 0) {
          node.value = static_cast<float>(condition[source]);
        } else {
          int64_t l = left[source], r = right[source];
          if (l >= static_cast<int64_t>(nodes) || r < 0 || r >= static_cast<int64_t>(nodes) ||
              seen[l] || seen[r]) {
            return InvalidArgument("model: trees[" + std::to_string(tree_idx) +
                                   "]: malformed children of node " + std::to_string(source));
          }
          if (feature[source] < 0 || feature[source] >= static_cast<int64_t>(num_features)) {
            return InvalidArgument("model: trees[" + std::to_string(tree_idx) + "] node " +
                                   std::to_string(source) + ": feature out of range");
          }
          seen[l] = seen[r] = 1;
          node.value = static_cast<float>(condition[source]);
          node.feature = static_cast<int32_t>(feature[source]);
          node.left = static_cast<uint32_t>(compiled.nodes_.size());
          compiled.nodes_.emplace_back();
          compiled.nodes_.emplace_back();
          queue.push_back({l, node.left});
          queue.push_back({r, node.left + 1});
          if (default_left[source] != 0) node.left |= kDefaultLeft;
        }
        compiled.nodes_[slot] = node;
      }
      compiled.roots_.push_back(root);
    }
  } catch (const Json::exception& error) {
    return InvalidArgument(std::string("model: unexpected shape: ") + error.what());
  }
  if (compiled.nodes_.size() >= kDefaultLeft) return InvalidArgument("model: too many nodes");
  return compiled;
}

inline uint32_t CompiledTrees::Next(const Node& node, const float* row) const {
  float value = row[node.feature];
  uint32_t left = node.left & ~kDefaultLeft;
  bool go_right = std::isnan(value) ? (node.left & kDefaultLeft) == 0 : !(value < node.value);
  return left + (go_right ? 1 : 0);
}

float CompiledTrees::PredictMargin(std::span<const float> row) const {
  // Several trees walked in lockstep: their node loads are independent, so
  // the memory system overlaps them instead of waiting for one at a time.
  // Leaves are still added in tree order (XGBoost's float roundings).
  constexpr size_t kLanes = 32;
  float sum = base_margin_;
  uint32_t at[kLanes];
  for (size_t first = 0; first < roots_.size(); first += kLanes) {
    size_t lanes = std::min(kLanes, roots_.size() - first);
    for (size_t lane = 0; lane < lanes; ++lane) at[lane] = roots_[first + lane];
    bool moving = true;
    while (moving) {
      moving = false;
      for (size_t lane = 0; lane < lanes; ++lane) {
        const Node& node = nodes_[at[lane]];
        if (node.feature < 0) continue;
        at[lane] = Next(node, row.data());
        moving = true;
      }
    }
    for (size_t lane = 0; lane < lanes; ++lane) sum += nodes_[at[lane]].value;
  }
  return sum;
}

void CompiledTrees::PredictMargins(const float* values, size_t rows, size_t stride,
                                   float* out) const {
  // Blocks of rows, tree by tree (a tree's nodes stay in cache for the
  // block), the block's rows walked in lockstep (independent loads overlap).
  constexpr size_t kBlock = 64;
  float sums[kBlock];
  uint32_t at[kBlock];
  for (size_t begin = 0; begin < rows; begin += kBlock) {
    size_t count = std::min(kBlock, rows - begin);
    const float* block = values + begin * stride;
    std::fill(sums, sums + count, base_margin_);
    for (uint32_t root : roots_) {
      std::fill(at, at + count, root);
      bool moving = true;
      while (moving) {
        moving = false;
        for (size_t i = 0; i < count; ++i) {
          const Node& node = nodes_[at[i]];
          if (node.feature < 0) continue;
          at[i] = Next(node, block + i * stride);
          moving = true;
        }
      }
      for (size_t i = 0; i < count; ++i) sums[i] += nodes_[at[i]].value;
    }
    std::copy(sums, sums + count, out + begin);
  }
}

float CompiledTrees::Transform(float margin) const {
  if (objective_ == Objective::kBinaryLogistic) return 1.0f / (1.0f + std::exp(-margin));
  return margin;
}

}  // namespace keel::serve
