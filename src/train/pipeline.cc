#include "train/pipeline.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "features/expr.h"
#include "features/yaml_reader.h"

namespace keel::train {
namespace {

using features::YamlReader;

Result<double> Number(const YamlReader& reader, const YAML::Node& node, const std::string& path) {
  if (!node) return InvalidArgument(reader.file() + ": " + path + ": missing required number");
  if (!node.IsScalar()) return reader.Error(node, path, "expected a number");
  try {
    double value = node.as<double>();
    if (!std::isfinite(value)) return reader.Error(node, path, "expected a finite number");
    return value;
  } catch (const YAML::Exception&) {
    return reader.Error(node, path, "expected a number, got '" + node.as<std::string>() + "'");
  }
}

Result<int64_t> Integer(const YamlReader& reader, const YAML::Node& node, const std::string& path,
                        int64_t min) {
  if (!node.IsScalar()) return reader.Error(node, path, "expected an integer");
  try {
    int64_t value = node.as<int64_t>();
    if (value < min) return reader.Error(node, path, "must be at least " + std::to_string(min));
    return value;
  } catch (const YAML::Exception&) {
    return reader.Error(node, path, "expected an integer, got '" + node.as<std::string>() + "'");
  }
}

Result<Timestamp> Date(const YamlReader& reader, const YAML::Node& parent, const char* key,
                       const std::string& path) {
  const YAML::Node& node = parent[key];
  if (!node) return reader.Error(parent, path, "missing; expected a date like 2001-05-01");
  if (!node.IsScalar()) return reader.Error(node, path, "expected a date like 2001-05-01");
  Result<Timestamp> ts = ParseTimestamp(node.as<std::string>());
  if (!ts.ok()) return reader.Error(node, path, ts.status().message());
  return ts;
}

Status ParseSpine(const YamlReader& reader, const YAML::Node& root, PipelineSpec* spec) {
  const YAML::Node& node = root["spine"];
  if (!node) return reader.Error(root, "pipeline", "missing required field 'spine'");
  if (node.IsScalar()) {
    spec->spine = node.as<std::string>();
    return Status::Ok();
  }
  RETURN_IF_ERROR(reader.CheckKeys(node, "spine", {"source", "time", "keys"}));
  ASSIGN_OR_RETURN(spec->spine, reader.String(node, "source", "spine", true));
  ASSIGN_OR_RETURN(spec->spine_time, reader.String(node, "time", "spine", false));
  if (node["keys"]) {
    ASSIGN_OR_RETURN(spec->spine_keys, reader.StringList(node["keys"], "spine.keys"));
  }
  return Status::Ok();
}

Status ParseFeatures(const YamlReader& reader, const YAML::Node& node, PipelineSpec* spec) {
  if (!node) return Status::Ok();
  RETURN_IF_ERROR(reader.CheckKeys(node, "features", {"service", "views"}));
  ASSIGN_OR_RETURN(spec->service, reader.String(node, "service", "features", false));
  if (node["views"]) {
    const YAML::Node& views = node["views"];
    if (!views.IsSequence()) return reader.Error(views, "features.views", "expected a list");
    for (size_t i = 0; i < views.size(); ++i) {
      std::string path = "features.views[" + std::to_string(i) + "]";
      if (!views[i].IsScalar()) {
        return reader.Error(views[i], path, "expected a reference like view@2");
      }
      Result<std::vector<features::FeatureUse>> uses =
          features::ParseFeatureUses(views[i].as<std::string>());
      if (!uses.ok()) return reader.Error(views[i], path, uses.status().message());
      if (uses->size() != 1) return reader.Error(views[i], path, "expected one view reference");
      (*uses)[0].location = reader.Where(views[i]);
      spec->views.push_back((*uses)[0]);
    }
  }
  return Status::Ok();
}

Status ParseRequestInputs(const YamlReader& reader, const YAML::Node& node, PipelineSpec* spec) {
  if (!node) return Status::Ok();
  if (!node.IsSequence()) return reader.Error(node, "request_inputs", "expected a list");
  for (size_t i = 0; i < node.size(); ++i) {
    std::string path = "request_inputs[" + std::to_string(i) + "]";
    RequestInput input;
    if (node[i].IsScalar()) {
      input.name = node[i].as<std::string>();
    } else {
      RETURN_IF_ERROR(reader.CheckKeys(node[i], path, {"name", "expression"}));
      ASSIGN_OR_RETURN(input.name, reader.String(node[i], "name", path, true));
      ASSIGN_OR_RETURN(input.expression, reader.String(node[i], "expression", path, false));
    }
    spec->request_inputs.push_back(input);
  }
  return Status::Ok();
}

Status ParseSplit(const YamlReader& reader, const YAML::Node& root, PipelineSpec* spec) {
  const YAML::Node& node = root["split"];
  if (!node) return reader.Error(root, "pipeline", "missing required field 'split'");
  RETURN_IF_ERROR(reader.CheckKeys(
      node, "split", {"kind", "train_until", "validation_until", "validation", "test", "seed"}));
  ASSIGN_OR_RETURN(std::string kind, reader.String(node, "kind", "split", true));
  SplitSpec& split = spec->split;
  if (kind == "time") {
    split.kind = SplitKind::kTime;
    ASSIGN_OR_RETURN(split.train_until, Date(reader, node, "train_until", "split.train_until"));
    ASSIGN_OR_RETURN(split.validation_until,
                     Date(reader, node, "validation_until", "split.validation_until"));
    if (split.validation_until <= split.train_until) {
      return reader.Error(node["validation_until"], "split.validation_until",
                          "must be after train_until");
    }
    return Status::Ok();
  }
  if (kind != "random") {
    return reader.Error(node["kind"], "split.kind", "unknown split '" + kind + "' (time, random)");
  }
  split.kind = SplitKind::kRandom;
  for (const char* key : {"validation", "test"}) {
    if (!node[key]) continue;
    ASSIGN_OR_RETURN(double share, Number(reader, node[key], std::string("split.") + key));
    if (share < 0 || share >= 1) {
      return reader.Error(node[key], std::string("split.") + key, "must be in [0, 1)");
    }
    (std::string(key) == "test" ? split.test : split.validation) = share;
  }
  if (split.validation + split.test >= 1) {
    return reader.Error(node, "split", "validation + test must leave rows for training");
  }
  if (node["seed"]) {
    ASSIGN_OR_RETURN(int64_t seed, Integer(reader, node["seed"], "split.seed", 0));
    split.seed = static_cast<uint64_t>(seed);
  }
  return Status::Ok();
}

Result<TransformSpec> ParseTransform(const YamlReader& reader, const YAML::Node& node,
                                     const std::string& path) {
  RETURN_IF_ERROR(reader.CheckKeys(
      node, path,
      {"kind", "column", "strategy", "value", "unknown", "edges", "log1p", "lower", "upper"}));
  TransformSpec spec;
  ASSIGN_OR_RETURN(std::string kind, reader.String(node, "kind", path, true));
  Result<TransformKind> parsed = ParseTransformKind(kind);
  if (!parsed.ok()) return reader.Error(node["kind"], path + ".kind", parsed.status().message());
  spec.kind = *parsed;
  ASSIGN_OR_RETURN(spec.column, reader.String(node, "column", path, true));
  ASSIGN_OR_RETURN(std::string strategy, reader.String(node, "strategy", path, false));
  if (strategy == "mean" || strategy.empty()) {
    spec.strategy = ImputeStrategy::kMean;
  } else if (strategy == "median") {
    spec.strategy = ImputeStrategy::kMedian;
  } else if (strategy == "constant") {
    spec.strategy = ImputeStrategy::kConstant;
  } else {
    return reader.Error(node["strategy"], path + ".strategy",
                        "unknown strategy '" + strategy + "' (mean, median, constant)");
  }
  if (node["value"]) {
    ASSIGN_OR_RETURN(spec.fill_string, reader.String(node, "value", path, false));
    Result<double> number = Number(reader, node["value"], path + ".value");
    if (number.ok()) spec.fill_value = *number;
  }
  ASSIGN_OR_RETURN(std::string unknown, reader.String(node, "unknown", path, false));
  if (unknown == "error") {
    spec.unknown = UnknownCategory::kError;
  } else if (!unknown.empty() && unknown != "ignore") {
    return reader.Error(node["unknown"], path + ".unknown", "expected ignore or error");
  }
  if (node["edges"]) {
    if (!node["edges"].IsSequence()) return reader.Error(node["edges"], path + ".edges", "list");
    for (size_t i = 0; i < node["edges"].size(); ++i) {
      ASSIGN_OR_RETURN(double edge, Number(reader, node["edges"][i], path + ".edges"));
      spec.edges.push_back(edge);
    }
  }
  if (node["log1p"]) spec.log1p = node["log1p"].as<bool>(false);
  if (node["lower"]) {
    ASSIGN_OR_RETURN(spec.lower, Number(reader, node["lower"], path + ".lower"));
  }
  if (node["upper"]) {
    ASSIGN_OR_RETURN(spec.upper, Number(reader, node["upper"], path + ".upper"));
  }
  return spec;
}

Status ParseModel(const YamlReader& reader, const YAML::Node& node, PipelineSpec* spec) {
  XgboostParams& model = spec->model;
  model.task = spec->task;
  if (!node) return Status::Ok();
  RETURN_IF_ERROR(
      reader.CheckKeys(node, "model",
                       {"objective", "max_depth", "eta", "rounds", "early_stopping_rounds", "seed",
                        "subsample", "colsample_bytree", "min_child_weight", "lambda"}));
  ASSIGN_OR_RETURN(std::string objective, reader.String(node, "objective", "model", false));
  std::string expected =
      spec->task == Task::kBinaryClassification ? "binary:logistic" : "reg:squarederror";
  if (!objective.empty() && objective != expected) {
    return reader.Error(node["objective"], "model.objective",
                        "a " + std::string(TaskName(spec->task)) + " task trains " + expected);
  }
  auto integer = [&](const char* key, int64_t min, int* out) -> Status {
    if (!node[key]) return Status::Ok();
    ASSIGN_OR_RETURN(int64_t value, Integer(reader, node[key], std::string("model.") + key, min));
    *out = static_cast<int>(value);
    return Status::Ok();
  };
  auto real = [&](const char* key, double* out) -> Status {
    if (!node[key]) return Status::Ok();
    ASSIGN_OR_RETURN(*out, Number(reader, node[key], std::string("model.") + key));
    return Status::Ok();
  };
  RETURN_IF_ERROR(integer("max_depth", 1, &model.max_depth));
  RETURN_IF_ERROR(integer("rounds", 1, &model.num_rounds));
  RETURN_IF_ERROR(integer("early_stopping_rounds", 0, &model.early_stopping_rounds));
  RETURN_IF_ERROR(real("eta", &model.eta));
  RETURN_IF_ERROR(real("subsample", &model.subsample));
  RETURN_IF_ERROR(real("colsample_bytree", &model.colsample_bytree));
  RETURN_IF_ERROR(real("min_child_weight", &model.min_child_weight));
  RETURN_IF_ERROR(real("lambda", &model.lambda));
  if (node["seed"]) {
    ASSIGN_OR_RETURN(int64_t seed, Integer(reader, node["seed"], "model.seed", 0));
    model.seed = static_cast<uint64_t>(seed);
  }
  return Status::Ok();
}

Status ParseBody(const YamlReader& reader, const YAML::Node& root, PipelineSpec* spec) {
  RETURN_IF_ERROR(reader.CheckKeys(
      root, "pipeline",
      {"name", "task", "spine", "sample", "label", "features", "request_inputs", "split",
       "transforms", "model", "baselines", "metrics", "slices", "golden_cases"}));
  ASSIGN_OR_RETURN(spec->name, reader.String(root, "name", "pipeline", true));
  ASSIGN_OR_RETURN(std::string task, reader.String(root, "task", "pipeline", false));
  if (!task.empty()) {
    Result<Task> parsed = ParseTask(task);
    if (!parsed.ok()) return reader.Error(root["task"], "task", parsed.status().message());
    spec->task = *parsed;
  }
  RETURN_IF_ERROR(ParseSpine(reader, root, spec));
  if (const YAML::Node& sample = root["sample"]) {
    RETURN_IF_ERROR(reader.CheckKeys(sample, "sample", {"fraction", "seed"}));
    ASSIGN_OR_RETURN(spec->sample_fraction, Number(reader, sample["fraction"], "sample.fraction"));
    if (spec->sample_fraction <= 0 || spec->sample_fraction > 1) {
      return reader.Error(sample["fraction"], "sample.fraction", "must be in (0, 1]");
    }
    if (sample["seed"]) {
      ASSIGN_OR_RETURN(int64_t seed, Integer(reader, sample["seed"], "sample.seed", 0));
      spec->sample_seed = static_cast<uint64_t>(seed);
    }
  }
  const YAML::Node& label = root["label"];
  if (!label) return reader.Error(root, "pipeline", "missing required field 'label'");
  if (label.IsScalar()) {
    spec->label = label.as<std::string>();
  } else {
    RETURN_IF_ERROR(reader.CheckKeys(label, "label", {"expression", "name"}));
    ASSIGN_OR_RETURN(spec->label_expression, reader.String(label, "expression", "label", true));
    ASSIGN_OR_RETURN(spec->label, reader.String(label, "name", "label", false));
    if (spec->label.empty()) spec->label = "label";
  }
  RETURN_IF_ERROR(ParseFeatures(reader, root["features"], spec));
  RETURN_IF_ERROR(ParseRequestInputs(reader, root["request_inputs"], spec));
  if (spec->service.empty() && spec->views.empty() && spec->request_inputs.empty()) {
    return reader.Error(root, "features", "no features: name a service, views or request_inputs");
  }
  RETURN_IF_ERROR(ParseSplit(reader, root, spec));
  if (const YAML::Node& transforms = root["transforms"]) {
    if (!transforms.IsSequence()) return reader.Error(transforms, "transforms", "expected a list");
    for (size_t i = 0; i < transforms.size(); ++i) {
      ASSIGN_OR_RETURN(
          TransformSpec transform,
          ParseTransform(reader, transforms[i], "transforms[" + std::to_string(i) + "]"));
      spec->transforms.push_back(std::move(transform));
    }
  }
  RETURN_IF_ERROR(ParseModel(reader, root["model"], spec));
  if (const YAML::Node& baselines = root["baselines"]) {
    RETURN_IF_ERROR(reader.CheckKeys(baselines, "baselines", {"linear_l2"}));
    if (baselines["linear_l2"]) {
      ASSIGN_OR_RETURN(spec->linear_l2,
                       Number(reader, baselines["linear_l2"], "baselines.linear_l2"));
    }
  }
  if (const YAML::Node& metrics = root["metrics"]) {
    RETURN_IF_ERROR(reader.CheckKeys(metrics, "metrics", {"threshold"}));
    if (metrics["threshold"]) {
      ASSIGN_OR_RETURN(spec->threshold, Number(reader, metrics["threshold"], "metrics.threshold"));
    }
  }
  if (root["slices"]) {
    ASSIGN_OR_RETURN(spec->slices, reader.StringList(root["slices"], "slices"));
  }
  if (root["golden_cases"]) {
    ASSIGN_OR_RETURN(int64_t cases, Integer(reader, root["golden_cases"], "golden_cases", 0));
    spec->golden_cases = static_cast<int>(cases);
  }
  return Status::Ok();
}

nlohmann::json UseJson(const features::FeatureUse& use) {
  return {{"view", use.view},
          {"version", use.version},
          {"keys", use.key_map},
          {"alias", use.alias},
          {"features", use.features}};
}

}  // namespace

std::string PipelineSpec::CanonicalJson() const {
  nlohmann::json views_json = nlohmann::json::array();
  for (const features::FeatureUse& use : views) views_json.push_back(UseJson(use));
  nlohmann::json inputs = nlohmann::json::array();
  for (const RequestInput& input : request_inputs) {
    inputs.push_back({{"name", input.name}, {"expression", input.expression}});
  }
  TransformSpec none;
  nlohmann::json transforms_json = nlohmann::json::array();
  for (const TransformSpec& transform : transforms) {
    transforms_json.push_back({{"kind", TransformKindName(transform.kind)},
                               {"column", transform.column},
                               {"strategy", static_cast<int>(transform.strategy)},
                               {"fill_value", transform.fill_value},
                               {"fill_string", transform.fill_string},
                               {"unknown", static_cast<int>(transform.unknown)},
                               {"edges", transform.edges},
                               {"log1p", transform.log1p},
                               {"lower", transform.lower.value_or(NAN)},
                               {"upper", transform.upper.value_or(NAN)}});
  }
  nlohmann::json out = {{"name", name},
                        {"task", TaskName(task)},
                        {"spine", {{"source", spine}, {"time", spine_time}, {"keys", spine_keys}}},
                        {"sample", {{"fraction", sample_fraction}, {"seed", sample_seed}}},
                        {"label", {{"name", label}, {"expression", label_expression}}},
                        {"features", {{"service", service}, {"views", views_json}}},
                        {"request_inputs", inputs},
                        {"split",
                         {{"kind", split.kind == SplitKind::kTime ? "time" : "random"},
                          {"train_until", split.train_until},
                          {"validation_until", split.validation_until},
                          {"validation", split.validation},
                          {"test", split.test},
                          {"seed", split.seed}}},
                        {"transforms", transforms_json},
                        {"model",
                         {{"max_depth", model.max_depth},
                          {"eta", model.eta},
                          {"rounds", model.num_rounds},
                          {"early_stopping_rounds", model.early_stopping_rounds},
                          {"seed", model.seed},
                          {"subsample", model.subsample},
                          {"colsample_bytree", model.colsample_bytree},
                          {"min_child_weight", model.min_child_weight},
                          {"lambda", model.lambda},
                          {"nthread", model.nthread}}},
                        {"baselines", {{"linear_l2", linear_l2}}},
                        {"metrics", {{"threshold", threshold}}},
                        {"slices", slices},
                        {"golden_cases", golden_cases}};
  return out.dump();
}

Result<PipelineSpec> ParsePipeline(const std::string& yaml, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  YamlReader reader(file);
  if (!root.IsMap()) return reader.Error(root, "pipeline", "expected a mapping");
  PipelineSpec spec;
  spec.file = file;
  try {
    RETURN_IF_ERROR(ParseBody(reader, root, &spec));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  return spec;
}

Result<PipelineSpec> LoadPipeline(const std::string& path) {
  if (!FileExists(path)) return NotFound("no such pipeline file: " + path);
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return ParsePipeline(text, path);
}

Status AddRequestInputs(const std::vector<RequestInput>& inputs, table::Table* table) {
  ASSIGN_OR_RETURN(RequestInputPlan plan, RequestInputPlan::Make(inputs));
  return plan.AddTo(table);
}

Result<RequestInputPlan> RequestInputPlan::Make(const std::vector<RequestInput>& inputs) {
  RequestInputPlan plan;
  plan.inputs_ = inputs;
  for (const RequestInput& input : inputs) {
    if (input.expression.empty()) {
      plan.expressions_.emplace_back();
      plan.referenced_.emplace_back();
      continue;
    }
    Result<features::Expression> expression = features::Expression::Parse(input.expression);
    if (!expression.ok()) {
      return expression.status().WithContext("request_inputs '" + input.name + "' (" +
                                             input.expression + ")");
    }
    plan.referenced_.push_back(expression->ReferencedColumns());
    plan.expressions_.push_back(std::move(expression).value());
  }
  return plan;
}

Status RequestInputPlan::AddTo(table::Table* table) const {
  for (size_t index = 0; index < inputs_.size(); ++index) {
    if (!expressions_[index]) continue;
    const RequestInput& input = inputs_[index];
    std::string what = "request_inputs '" + input.name + "' (" + input.expression + ")";
    features::Expression expression = *expressions_[index];
    if (Status bound = expression.Bind(table->fields()); !bound.ok()) {
      return bound.WithContext(what);
    }
    ASSIGN_OR_RETURN(table::Column values, expression.Evaluate(*table));
    int existing = table->FindColumn(input.name);
    if (existing >= 0) {
      if (table->fields()[static_cast<size_t>(existing)].type != values.type()) {
        return InvalidArgument(what + ": the input already has a column '" + input.name +
                               "' of another type");
      }
      RETURN_IF_ERROR(table->ReplaceColumn(static_cast<size_t>(existing), std::move(values)));
      continue;
    }
    RETURN_IF_ERROR(table->AddColumn(input.name, std::move(values)));
  }
  return Status::Ok();
}

}  // namespace keel::train
