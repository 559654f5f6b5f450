#include "train/tree_runtime.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <thread>

namespace keel::train {

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
  return FromXgboostJson(text, kDefaultMaxCompleteDepth);
}

Result<CompiledTrees> CompiledTrees::FromXgboostJson(std::string_view text,
                                                     int max_complete_depth) {
  Json model;
  try {
    model = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& error) {
    return InvalidArgument(std::string("model: not valid JSON: ") + error.what());
  }
  return FromModel(model, max_complete_depth);
}

Result<CompiledTrees> CompiledTrees::FromXgboostUbjson(std::string_view bytes) {
  Json model;
  try {
    model = Json::from_ubjson(bytes.begin(), bytes.end());
  } catch (const Json::exception& error) {
    return InvalidArgument(std::string("model: not valid UBJSON: ") + error.what());
  }
  return FromModel(model, kDefaultMaxCompleteDepth);
}

Result<CompiledTrees> CompiledTrees::FromModel(const Json& model, int max_complete_depth) {
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
  compiled.BuildCompleteLayout(max_complete_depth);
  return compiled;
}

void CompiledTrees::BuildCompleteLayout(int max_complete_depth) {
  // The model's depth; any non-finite threshold keeps the linked layout (the
  // widened row's infinities are only right against finite thresholds).
  int depth = 0;
  std::vector<std::pair<uint32_t, int>> stack;
  for (uint32_t root : roots_) {
    stack.push_back({root, 0});
    while (!stack.empty()) {
      auto [at, level] = stack.back();
      stack.pop_back();
      const Node& node = nodes_[at];
      if (node.feature < 0) {
        depth = std::max(depth, level);
        continue;
      }
      if (!std::isfinite(node.value)) return;
      uint32_t left = node.left & ~kDefaultLeft;
      stack.push_back({left, level + 1});
      stack.push_back({left + 1, level + 1});
    }
  }
  if (depth > std::min(max_complete_depth, kMaxCompleteDepth)) return;
  // Padding grows a sparse deep tree exponentially: keep the linked layout
  // when the complete one would be much larger (and not small anyway).
  const size_t complete_bytes =
      roots_.size() * (((size_t{1} << depth) - 1) * sizeof(Split) + (size_t{1} << depth) * 4);
  if (complete_bytes > std::max<size_t>(8 * nodes_.size() * sizeof(Node), 1 << 20)) return;
  const size_t splits_per_tree = (size_t{1} << depth) - 1, leaves_per_tree = size_t{1} << depth;
  splits_.assign(roots_.size() * splits_per_tree, Split{});
  leaves_.assign(roots_.size() * leaves_per_tree, 0.0f);
  // Padding splits (below a leaf shallower than `depth`) lead to copies of
  // that leaf whichever way a row goes; +inf sends nearly every row left.
  const Split padding{std::numeric_limits<float>::infinity(), 0};
  struct Item {
    uint32_t node;
    uint32_t slot;  // breadth-first index in the complete tree
    int level;
  };
  std::vector<Item> work;
  for (size_t tree_idx = 0; tree_idx < roots_.size(); ++tree_idx) {
    Split* splits = splits_.data() + tree_idx * splits_per_tree;
    float* leaves = leaves_.data() + tree_idx * leaves_per_tree;
    work.push_back({roots_[tree_idx], 0, 0});
    while (!work.empty()) {
      Item item = work.back();
      work.pop_back();
      const Node& node = nodes_[item.node];
      if (item.level == depth) {
        leaves[item.slot - splits_per_tree] = node.value;
        continue;
      }
      uint32_t left = node.left & ~kDefaultLeft;
      if (node.feature < 0) {
        splits[item.slot] = padding;
        work.push_back({item.node, 2 * item.slot + 1, item.level + 1});
        work.push_back({item.node, 2 * item.slot + 2, item.level + 1});
      } else {
        bool missing_left = (node.left & kDefaultLeft) != 0;
        splits[item.slot] = {node.value,
                             static_cast<uint32_t>(node.feature) +
                                 (missing_left ? 0 : static_cast<uint32_t>(num_features_))};
        work.push_back({left, 2 * item.slot + 1, item.level + 1});
        work.push_back({left + 1, 2 * item.slot + 2, item.level + 1});
      }
    }
  }
  depth_ = depth;
  layout_name_ = "complete depth " + std::to_string(depth);
  nodes_.clear();
  nodes_.shrink_to_fit();
}

inline uint32_t CompiledTrees::Next(const Node& node, const float* row) const {
  float value = row[node.feature];
  uint32_t left = node.left & ~kDefaultLeft;
  bool go_right = std::isnan(value) ? (node.left & kDefaultLeft) == 0 : !(value < node.value);
  return left + (go_right ? 1 : 0);
}

float CompiledTrees::PredictMarginLinked(const float* row) const {
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
        at[lane] = Next(node, row);
        moving = true;
      }
    }
    for (size_t lane = 0; lane < lanes; ++lane) sum += nodes_[at[lane]].value;
  }
  return sum;
}

void CompiledTrees::PredictMarginsLinked(const float* values, size_t rows, size_t stride,
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

void CompiledTrees::Widen(const float* row, float* wide) const {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (size_t feature = 0; feature < num_features_; ++feature) {
    float value = row[feature];
    bool missing = std::isnan(value);
    wide[feature] = missing ? -kInf : value;
    wide[num_features_ + feature] = missing ? kInf : value;
  }
}

namespace {

// Walks K trees of the complete layout (depth D) in lockstep for one widened
// row: their loads are independent, so they overlap.
template <int D, size_t K, typename Split>
inline void WalkTrees(const Split* splits, const float* wide, size_t* at) {
  constexpr size_t kSplits = (size_t{1} << D) - 1;
  for (size_t lane = 0; lane < K; ++lane) at[lane] = 0;
  for (int level = 0; level < D; ++level) {
    for (size_t lane = 0; lane < K; ++lane) {
      const Split& split = splits[lane * kSplits + at[lane]];
      at[lane] = 2 * at[lane] + 1 + (wide[split.feature] >= split.threshold ? 1 : 0);
    }
  }
}

template <int D, typename Split>
float SumComplete(const Split* splits, const float* leaves, size_t trees, const float* wide,
                  float sum) {
  constexpr size_t kSplits = (size_t{1} << D) - 1, kLeaves = size_t{1} << D;
  constexpr size_t kLanes = 16;
  size_t at[kLanes];
  size_t tree = 0;
  for (; tree + kLanes <= trees; tree += kLanes) {
    WalkTrees<D, kLanes>(splits + tree * kSplits, wide, at);
    for (size_t lane = 0; lane < kLanes; ++lane) {
      sum += leaves[(tree + lane) * kLeaves + at[lane] - kSplits];
    }
  }
  for (; tree < trees; ++tree) {
    WalkTrees<D, 1>(splits + tree * kSplits, wide, at);
    sum += leaves[tree * kLeaves + at[0] - kSplits];
  }
  return sum;
}

// Adds every tree's leaf to sums[0, count) for `count` widened rows (`width`
// floats apart): tree by tree (its splits stay in L1), rows in lockstep.
template <int D, typename Split>
void AddComplete(const Split* splits, const float* leaves, size_t trees, const float* wide,
                 size_t width, size_t count, float* sums) {
  constexpr size_t kSplits = (size_t{1} << D) - 1, kLeaves = size_t{1} << D;
  constexpr size_t kLanes = 16;
  for (size_t tree = 0; tree < trees; ++tree) {
    const Split* tree_splits = splits + tree * kSplits;
    const float* tree_leaves = leaves + tree * kLeaves;
    size_t row = 0;
    for (; row + kLanes <= count; row += kLanes) {
      size_t at[kLanes] = {};
      for (int level = 0; level < D; ++level) {
        for (size_t lane = 0; lane < kLanes; ++lane) {
          const Split& split = tree_splits[at[lane]];
          at[lane] = 2 * at[lane] + 1 +
                     (wide[(row + lane) * width + split.feature] >= split.threshold ? 1 : 0);
        }
      }
      for (size_t lane = 0; lane < kLanes; ++lane) {
        sums[row + lane] += tree_leaves[at[lane] - kSplits];
      }
    }
    for (; row < count; ++row) {
      size_t at = 0;
      for (int level = 0; level < D; ++level) {
        const Split& split = tree_splits[at];
        at = 2 * at + 1 + (wide[row * width + split.feature] >= split.threshold ? 1 : 0);
      }
      sums[row] += tree_leaves[at - kSplits];
    }
  }
}

// Calls fn.template operator()<D>() for the runtime depth (0..kMaxCompleteDepth).
template <typename Fn>
decltype(auto) WithDepth(int depth, Fn&& fn) {
  switch (depth) {
    case 0:
      return fn.template operator()<0>();
    case 1:
      return fn.template operator()<1>();
    case 2:
      return fn.template operator()<2>();
    case 3:
      return fn.template operator()<3>();
    case 4:
      return fn.template operator()<4>();
    case 5:
      return fn.template operator()<5>();
    case 6:
      return fn.template operator()<6>();
    case 7:
      return fn.template operator()<7>();
    case 8:
      return fn.template operator()<8>();
    case 9:
      return fn.template operator()<9>();
    default:
      return fn.template operator()<10>();
  }
}

}  // namespace

float CompiledTrees::PredictMargin(std::span<const float> row) const {
  if (depth_ < 0) return PredictMarginLinked(row.data());
  constexpr size_t kStackFloats = 1024;
  float stack[kStackFloats];
  std::vector<float> heap;
  float* wide = stack;
  if (2 * num_features_ > kStackFloats) {
    heap.resize(2 * num_features_);
    wide = heap.data();
  }
  Widen(row.data(), wide);
  return WithDepth(depth_, [&]<int D>() {
    return SumComplete<D>(splits_.data(), leaves_.data(), roots_.size(), wide, base_margin_);
  });
}

void CompiledTrees::PredictMarginsComplete(const float* values, size_t rows, size_t stride,
                                           float* out) const {
  // Blocks of widened rows small enough to stay in L1 beside one tree.
  const size_t width = 2 * num_features_;
  const size_t block = std::clamp<size_t>(32768 / (width * sizeof(float) + 1), 8, 256);
  std::vector<float> wide(block * width);
  for (size_t begin = 0; begin < rows; begin += block) {
    size_t count = std::min(block, rows - begin);
    for (size_t i = 0; i < count; ++i) Widen(values + (begin + i) * stride, &wide[i * width]);
    float* sums = out + begin;
    std::fill(sums, sums + count, base_margin_);
    WithDepth(depth_, [&]<int D>() {
      AddComplete<D>(splits_.data(), leaves_.data(), roots_.size(), wide.data(), width, count,
                     sums);
    });
  }
}

void CompiledTrees::PredictMargins(const float* values, size_t rows, size_t stride, float* out,
                                   int threads) const {
  auto run = [this, stride](const float* part, size_t count, float* part_out) {
    if (depth_ < 0) {
      PredictMarginsLinked(part, count, stride, part_out);
    } else {
      PredictMarginsComplete(part, count, stride, part_out);
    }
  };
  constexpr size_t kMinRowsPerThread = 256;
  size_t parts = std::min<size_t>(std::max(threads, 1), rows / kMinRowsPerThread);
  if (parts <= 1) {
    run(values, rows, out);
    return;
  }
  std::vector<std::thread> helpers;
  size_t per_part = (rows + parts - 1) / parts;
  for (size_t part = 1; part < parts; ++part) {
    size_t begin = part * per_part;
    if (begin >= rows) break;
    size_t count = std::min(per_part, rows - begin);
    try {
      helpers.emplace_back(run, values + begin * stride, count, out + begin);
    } catch (const std::system_error&) {
      run(values + begin * stride, count, out + begin);  // no thread to be had: do it here
    }
  }
  run(values, per_part, out);
  for (std::thread& helper : helpers) helper.join();
}

float CompiledTrees::Transform(float margin) const {
  if (objective_ == Objective::kBinaryLogistic) return 1.0f / (1.0f + std::exp(-margin));
  return margin;
}

}  // namespace keel::train
