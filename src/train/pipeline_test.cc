#include "train/pipeline.h"

#include <gtest/gtest.h>

namespace keel::train {
namespace {

constexpr const char* kGood = R"yaml(name: delay
spine: {source: flight_spine, time: date, keys: [origin]}
sample: {fraction: 0.5, seed: 3}
label: {expression: "delay > 15", name: delayed}
features:
  service: flight_delay
  views: ["origin_delay@2", "airport_info(iata=origin) as origin"]
request_inputs: [distance, {name: hour, expression: "hour(date)"
}]
split: {kind: time, train_until: 2001-05-01, validation_until: 2001-06-01}
transforms:
  - {kind: impute, column: distance, strategy: median}
  - {kind: ordinal, column: origin__state, unknown: ignore}
model: {objective: "binary:logistic", max_depth: 4, eta: 0.1, rounds: 50, early_stopping_rounds: 5, seed: 7}
slices: [hour]
)yaml";

// Parses kGood with `from` replaced by `to` and returns the error message.
std::string ErrorOf(const std::string& from, const std::string& to) {
  std::string text = kGood;
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  text.replace(at, from.size(), to);
  Result<PipelineSpec> spec = ParsePipeline(text, "p.yaml");
  EXPECT_FALSE(spec.ok());
  return spec.ok() ? "" : spec.status().message();
}

TEST(Pipeline, ParsesEveryField) {
  Result<PipelineSpec> spec = ParsePipeline(kGood, "p.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->name, "delay");
  EXPECT_EQ(spec->spine, "flight_spine");
  EXPECT_EQ(spec->spine_keys, std::vector<std::string>{"origin"});
  EXPECT_EQ(spec->label, "delayed");
  EXPECT_EQ(spec->label_expression, "delay > 15");
  EXPECT_EQ(spec->service, "flight_delay");
  ASSERT_EQ(spec->views.size(), 2u);
  EXPECT_EQ(spec->views[0].view, "origin_delay");
  EXPECT_EQ(spec->views[0].version, "2");
  EXPECT_EQ(spec->views[1].alias, "origin");
  ASSERT_EQ(spec->request_inputs.size(), 2u);
  EXPECT_EQ(spec->request_inputs[1].expression, "hour(date)");
  EXPECT_EQ(spec->split.kind, SplitKind::kTime);
  EXPECT_LT(spec->split.train_until, spec->split.validation_until);
  ASSERT_EQ(spec->transforms.size(), 2u);
  EXPECT_EQ(spec->transforms[0].strategy, ImputeStrategy::kMedian);
  EXPECT_EQ(spec->model.max_depth, 4);
  EXPECT_EQ(spec->model.seed, 7u);
  EXPECT_DOUBLE_EQ(spec->sample_fraction, 0.5);
  EXPECT_EQ(ParsePipeline(kGood, "p.yaml")->CanonicalJson(), spec->CanonicalJson());
}

TEST(Pipeline, CanonicalJsonChangesWithAParameter) {
  std::string text = kGood;
  text.replace(text.find("eta: 0.1"), 8, "eta: 0.2");
  EXPECT_NE(ParsePipeline(text, "p.yaml")->CanonicalJson(),
            ParsePipeline(kGood, "p.yaml")->CanonicalJson());
}

TEST(Pipeline, ErrorsNameFileLineAndField) {
  EXPECT_EQ(ErrorOf("max_depth: 4", "max_dept: 4"),
            "p.yaml:14:39: model.max_dept: unknown field (expected one of: objective, max_depth, "
            "eta, rounds, early_stopping_rounds, seed, subsample, colsample_bytree, "
            "min_child_weight, lambda)");
  EXPECT_NE(ErrorOf("eta: 0.1", "eta: fast").find("p.yaml:14:"), std::string::npos);
  EXPECT_NE(ErrorOf("eta: 0.1", "eta: fast").find("model.eta: expected a number"),
            std::string::npos);
  EXPECT_NE(ErrorOf("kind: time", "kind: weekly").find("split.kind: unknown split 'weekly'"),
            std::string::npos);
  EXPECT_NE(ErrorOf("validation_until: 2001-06-01", "validation_until: 2001-04-01")
                .find("split.validation_until: must be after train_until"),
            std::string::npos);
  EXPECT_NE(ErrorOf("kind: impute", "kind: magic").find("transforms[0].kind"), std::string::npos);
  EXPECT_NE(ErrorOf("fraction: 0.5", "fraction: 1.5").find("sample.fraction: must be in (0, 1]"),
            std::string::npos);
  EXPECT_NE(
      ErrorOf("fraction: 0.5", "fraction: .nan").find("sample.fraction: expected a finite number"),
      std::string::npos);
  EXPECT_NE(ErrorOf("\"origin_delay@2\"", "\"origin_delay(iata\"").find("features.views[0]"),
            std::string::npos);
  EXPECT_NE(ErrorOf("name: delay\n", "").find("missing required field 'name'"), std::string::npos);
  EXPECT_NE(ErrorOf("binary:logistic", "reg:squarederror").find("model.objective"),
            std::string::npos);
}

TEST(Pipeline, RejectsBadYamlAndMissingParts) {
  Result<PipelineSpec> spec = ParsePipeline("name: [unclosed", "bad.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message().rfind("bad.yaml:", 0), 0u) << spec.status().message();
  spec = ParsePipeline("name: x\nspine: s\nlabel: y\nsplit: {kind: random}\n", "f.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("no features"), std::string::npos);
  spec = ParsePipeline("name: x\nspine: s\nlabel: y\nrequest_inputs: [a]\n", "f.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("missing required field 'split'"), std::string::npos);
  spec = ParsePipeline(
      "name: x\nspine: s\nlabel: y\nrequest_inputs: [a]\nsplit: {kind: random, test: 0.6, "
      "validation: 0.5}\n",
      "f.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("leave rows for training"), std::string::npos);
  EXPECT_EQ(LoadPipeline("/nonexistent/p.yaml").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace keel::train
