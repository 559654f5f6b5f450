#include "train/transforms.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <iostream>
#include <limits>
#include <random>
#include <set>

#include "train/python_oracle.h"

namespace keel::train {
namespace {

using nlohmann::json;
using table::Column;
using table::DataType;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A double column with NaN cells and null rows mixed in.
Column RandomColumn(size_t rows, double mean, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(mean, 3.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  Column column(DataType::kDouble, 0);
  for (size_t row = 0; row < rows; ++row) {
    const double draw = uniform(rng);
    if (draw < 0.05) {
      column.AppendNull();
    } else if (draw < 0.1) {
      column.AppendDouble(kNaN);
    } else {
      column.AppendDouble(normal(rng));
    }
  }
  return column;
}

TransformSpec Spec(TransformKind kind, std::string column) {
  TransformSpec spec;
  spec.kind = kind;
  spec.column = std::move(column);
  return spec;
}

Column Strings(const std::vector<std::string>& values) {
  Column column(DataType::kString, 0);
  for (const std::string& value : values) {
    if (value == "<null>") {
      column.AppendNull();
    } else {
      column.AppendString(value);
    }
  }
  return column;
}

constexpr const char* kNumpyScript = R"PY(
import json, sys
import numpy as np
request = json.load(open(sys.argv[1]))
answers = []
for case in request["cases"]:
    x = np.array([np.nan if v is None else v for v in case["values"]], dtype=np.float64)
    edges = np.array(case["edges"], dtype=np.float64)
    present = x[~np.isnan(x)]
    answers.append({
        "mean": float(np.nanmean(x)),
        "median": float(np.nanmedian(x)),
        "std": float(np.nanstd(x)),
        "buckets": np.searchsorted(edges, present, side="right").tolist(),
    })
print(json.dumps({"numpy": np.__version__, "answers": answers}))
)PY";

TEST(TransformsOracle, MeanMedianStdAndBucketsEqualNumpy) {
  const std::vector<size_t> sizes = {1, 2, 3, 4, 10, 101, 1000, 20000};
  const std::vector<double> edges = {-3.0, -0.5, 0.0, 0.25, 2.0, 7.5};
  json request = {{"cases", json::array()}};
  std::vector<Column> columns;
  for (size_t i = 0; i < sizes.size(); ++i) {
    Column column = RandomColumn(sizes[i], 1.0 + static_cast<double>(i), 100 + i);
    if (i < 3) column = RandomColumn(sizes[i], 1.0, 7);  // tiny: make sure values are present
    if (column.NullCount() == column.size()) column.AppendDouble(0.25);
    // Ties with the bucket edges, exactly.
    column.AppendDouble(0.25);
    column.AppendDouble(-3.0);
    json values = json::array();
    for (size_t row = 0; row < column.size(); ++row) {
      const bool missing = !column.IsValid(row) || std::isnan(column.doubles()[row]);
      values.push_back(missing ? json(nullptr) : json(column.doubles()[row]));
    }
    request["cases"].push_back({{"values", values}, {"edges", edges}});
    columns.push_back(std::move(column));
  }
  const json oracle = testing::RunPythonOracle(kNumpyScript, request);
  ASSERT_FALSE(oracle.contains("error")) << oracle["error"].get<std::string>();
  double max_mean_error = 0.0;
  for (size_t i = 0; i < columns.size(); ++i) {
    const json& want = oracle["answers"][i];
    TransformSpec mean = Spec(TransformKind::kImpute, "x");
    TransformSpec median = mean;
    median.strategy = ImputeStrategy::kMedian;
    TransformSpec bucketize = Spec(TransformKind::kBucketize, "x");
    bucketize.edges = edges;
    auto fitted_mean = FittedTransform::Fit(mean, columns[i]);
    auto fitted_median = FittedTransform::Fit(median, columns[i]);
    auto fitted_scale = FittedTransform::Fit(Spec(TransformKind::kStandardScale, "x"), columns[i]);
    auto fitted_buckets = FittedTransform::Fit(bucketize, columns[i]);
    ASSERT_TRUE(fitted_mean.ok() && fitted_median.ok() && fitted_scale.ok() && fitted_buckets.ok());
    const double mean_error = std::abs(fitted_mean->fill() - want["mean"].get<double>());
    max_mean_error = std::max(max_mean_error, mean_error / std::abs(want["mean"].get<double>()));
    EXPECT_LE(mean_error, 1e-12 * std::abs(want["mean"].get<double>()));
    EXPECT_EQ(fitted_median->fill(), want["median"].get<double>()) << "median, case " << i;
    EXPECT_NEAR(fitted_scale->mean(), want["mean"].get<double>(), 1e-12);
    const double std_dev = want["std"].get<double>();
    EXPECT_NEAR(fitted_scale->scale(), std_dev == 0.0 ? 1.0 : std_dev, 1e-12 * (1.0 + std_dev));
    Result<std::vector<Column>> buckets = fitted_buckets->Apply(columns[i]);
    ASSERT_TRUE(buckets.ok());
    std::vector<int64_t> present_buckets;
    for (size_t row = 0; row < columns[i].size(); ++row) {
      if ((*buckets)[0].IsValid(row)) {
        present_buckets.push_back(static_cast<int64_t>((*buckets)[0].doubles()[row]));
      }
    }
    EXPECT_EQ(present_buckets, want["buckets"].get<std::vector<int64_t>>()) << "case " << i;
  }
  std::cout << "[ oracle   ] numpy " << oracle["numpy"].get<std::string>()
            << ": median and buckets bit-equal, max relative mean error " << max_mean_error << "\n";
}

// The leakage guard: statistics come from the training split only.
TEST(Transforms, ValidationSplitIsTransformedWithTrainStatistics) {
  table::Table train;
  table::Table valid;
  ASSERT_TRUE(train.AddColumn("x", RandomColumn(5000, 0.0, 1)).ok());
  ASSERT_TRUE(valid.AddColumn("x", RandomColumn(2000, 10.0, 2)).ok());
  std::vector<TransformSpec> specs = {Spec(TransformKind::kImpute, "x"),
                                      Spec(TransformKind::kStandardScale, "x")};
  Result<FittedTransforms> fitted = FittedTransforms::Fit(specs, train);
  ASSERT_TRUE(fitted.ok()) << fitted.status().ToString();
  const double train_mean = fitted->transforms()[0].fill();
  EXPECT_NEAR(train_mean, 0.0, 0.2);
  Result<table::Table> out = fitted->Apply(valid);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const Column& input = valid.column(0);
  const Column& scaled = out->column(0);
  const FittedTransform& scaler = fitted->transforms()[1];
  double mean_of_scaled = 0.0;
  for (size_t row = 0; row < input.size(); ++row) {
    ASSERT_TRUE(scaled.IsValid(row));
    const bool missing = !input.IsValid(row) || std::isnan(input.doubles()[row]);
    // Missing validation values get the TRAIN mean, not the validation mean (~10).
    const double imputed = missing ? train_mean : input.doubles()[row];
    EXPECT_EQ(scaled.doubles()[row], (imputed - scaler.mean()) / scaler.scale());
    mean_of_scaled += scaled.doubles()[row] / static_cast<double>(input.size());
  }
  // Fitted on validation, the scaled mean would be 0; with train statistics it is ~10/3.
  EXPECT_GT(mean_of_scaled, 2.5);
}

TEST(Transforms, OneHotAndOrdinalHandleUnknownAndMissingCategories) {
  const Column train = Strings({"SFO", "ATL", "<null>", "SFO", "ORD"});
  const Column valid = Strings({"ATL", "JFK", "<null>", "ORD"});
  TransformSpec one_hot = Spec(TransformKind::kOneHot, "origin");
  auto fitted = FittedTransform::Fit(one_hot, train);
  ASSERT_TRUE(fitted.ok());
  EXPECT_EQ(fitted->categories(), (std::vector<std::string>{"ATL", "ORD", "SFO"}));
  EXPECT_EQ(fitted->OutputNames(),
            (std::vector<std::string>{"origin=ATL", "origin=ORD", "origin=SFO"}));
  Result<std::vector<Column>> columns = fitted->Apply(valid);
  ASSERT_TRUE(columns.ok());
  EXPECT_EQ((*columns)[0].doubles(), (std::vector<double>{1, 0, 0, 0}));
  EXPECT_EQ((*columns)[1].doubles(), (std::vector<double>{0, 0, 0, 1}));
  EXPECT_EQ((*columns)[2].doubles(), (std::vector<double>{0, 0, 0, 0}));  // JFK, null: zeros

  TransformSpec ordinal = Spec(TransformKind::kOrdinal, "origin");
  auto fitted_ordinal = FittedTransform::Fit(ordinal, train);
  Result<std::vector<Column>> codes = fitted_ordinal->Apply(valid);
  ASSERT_TRUE(codes.ok());
  EXPECT_EQ((*codes)[0].doubles()[0], 0.0);
  EXPECT_EQ((*codes)[0].doubles()[1], 3.0);  // the reserved unknown index
  EXPECT_FALSE((*codes)[0].IsValid(2));      // missing stays missing
  EXPECT_EQ((*codes)[0].doubles()[3], 1.0);

  for (TransformSpec spec : {one_hot, ordinal}) {
    spec.unknown = UnknownCategory::kError;
    Result<std::vector<Column>> refused = FittedTransform::Fit(spec, train)->Apply(valid);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find("row 1 holds the unknown category 'JFK'"),
              std::string::npos)
        << refused.status().ToString();
  }
  // Integer categories sort numerically.
  Column hours(DataType::kInt64, 0);
  for (int64_t hour : {10, 9, 23, 9}) hours.AppendInt64(hour);
  EXPECT_EQ(FittedTransform::Fit(ordinal, hours)->categories(),
            (std::vector<std::string>{"9", "10", "23"}));
  EXPECT_FALSE(FittedTransform::Fit(ordinal, train)->Apply(hours).ok());  // type mismatch
}

TEST(Transforms, LogClipBucketizeAndImputeConstant) {
  Column column(DataType::kInt64, 0);
  for (int64_t value : {0, 5, -2, 100}) column.AppendInt64(value);
  column.AppendNull();
  TransformSpec log1p = Spec(TransformKind::kLog, "x");
  log1p.log1p = true;
  Result<std::vector<Column>> logged = FittedTransform::Fit(log1p, column)->Apply(column);
  ASSERT_FALSE(logged.ok());  // log1p(-2) is outside the domain
  EXPECT_NE(logged.status().message().find("row 2 holds -2"), std::string::npos);
  TransformSpec clip = Spec(TransformKind::kClip, "x");
  clip.lower = 0.0;
  clip.upper = 50.0;
  Result<std::vector<Column>> clipped = FittedTransform::Fit(clip, column)->Apply(column);
  ASSERT_TRUE(clipped.ok());
  EXPECT_EQ((*clipped)[0].doubles(), (std::vector<double>{0, 5, 0, 50, 0}));
  EXPECT_FALSE((*clipped)[0].IsValid(4));
  // Clipped to [0, 50], every value is inside log1p's domain.
  const Column clipped_column = (*clipped)[0].Gather({0, 1, 2, 3});
  Result<std::vector<Column>> logs = FittedTransform::Fit(log1p, column)->Apply(clipped_column);
  ASSERT_TRUE(logs.ok());
  EXPECT_EQ((*logs)[0].doubles()[1], std::log1p(5.0));
  EXPECT_EQ((*logs)[0].doubles()[2], 0.0);
  TransformSpec constant = Spec(TransformKind::kImpute, "x");
  constant.strategy = ImputeStrategy::kConstant;
  constant.fill_value = -7.5;
  EXPECT_EQ((*FittedTransform::Fit(constant, column)->Apply(column))[0].doubles()[4], -7.5);
  TransformSpec bad_edges = Spec(TransformKind::kBucketize, "x");
  bad_edges.edges = {1.0, 1.0};
  EXPECT_EQ(FittedTransform::Fit(bad_edges, column).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(FittedTransform::Fit(Spec(TransformKind::kClip, "x"), column).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(FittedTransform::Fit(Spec(TransformKind::kStandardScale, "s"), Strings({"a"}))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  Column empty(DataType::kDouble, 0);
  empty.AppendNull();
  EXPECT_EQ(FittedTransform::Fit(Spec(TransformKind::kImpute, "x"), empty).status().code(),
            StatusCode::kFailedPrecondition);
  TransformSpec fill_string = Spec(TransformKind::kImpute, "s");
  fill_string.strategy = ImputeStrategy::kConstant;
  fill_string.fill_string = "UNK";
  EXPECT_EQ(
      (*FittedTransform::Fit(fill_string, Strings({"a", "<null>"}))->Apply(Strings({"<null>"})))[0]
          .StringAt(0),
      "UNK");
}

bool BitEqual(const table::Table& a, const table::Table& b) {
  if (a.num_columns() != b.num_columns() || a.fields() != b.fields()) return false;
  for (size_t column_idx = 0; column_idx < a.num_columns(); ++column_idx) {
    for (size_t row = 0; row < a.num_rows(); ++row) {
      const Column& x = a.column(column_idx);
      const Column& y = b.column(column_idx);
      if (x.IsValid(row) != y.IsValid(row)) return false;
      if (x.type() == DataType::kDouble &&
          std::bit_cast<uint64_t>(x.doubles()[row]) != std::bit_cast<uint64_t>(y.doubles()[row])) {
        return false;
      }
    }
  }
  return true;
}

TEST(Transforms, FittedStateRoundTripsThroughJsonTextBitIdentically) {
  table::Table train;
  ASSERT_TRUE(train.AddColumn("x", RandomColumn(3000, 1.0 / 3.0, 5)).ok());
  ASSERT_TRUE(train.AddColumn("y", RandomColumn(3000, 2.0, 6)).ok());
  ASSERT_TRUE(train.AddColumn("origin", Strings(std::vector<std::string>(3000, "SFO"))).ok());
  std::vector<TransformSpec> specs;
  TransformSpec median = Spec(TransformKind::kImpute, "x");
  median.strategy = ImputeStrategy::kMedian;
  specs.push_back(median);
  specs.push_back(Spec(TransformKind::kStandardScale, "x"));
  TransformSpec clip = Spec(TransformKind::kClip, "y");
  clip.lower = 0.1;
  specs.push_back(clip);
  TransformSpec log = Spec(TransformKind::kLog, "y");
  specs.push_back(log);
  TransformSpec bucketize = Spec(TransformKind::kBucketize, "x");
  bucketize.edges = {-1.0 / 3.0, 0.0, 0.1, 2.0 / 3.0};
  specs.push_back(bucketize);
  TransformSpec one_hot = Spec(TransformKind::kOneHot, "origin");
  one_hot.unknown = UnknownCategory::kError;
  specs.push_back(one_hot);
  Result<FittedTransforms> fitted = FittedTransforms::Fit(specs, train);
  ASSERT_TRUE(fitted.ok()) << fitted.status().ToString();
  const std::string text = fitted->ToJson().dump();
  Result<FittedTransforms> loaded = FittedTransforms::FromJson(json::parse(text));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->ToJson().dump(), text);
  EXPECT_EQ(std::bit_cast<uint64_t>(loaded->transforms()[1].scale()),
            std::bit_cast<uint64_t>(fitted->transforms()[1].scale()));
  table::Table valid;
  ASSERT_TRUE(valid.AddColumn("x", RandomColumn(500, 3.0, 7)).ok());
  ASSERT_TRUE(valid.AddColumn("y", RandomColumn(500, 2.0, 8)).ok());
  ASSERT_TRUE(valid.AddColumn("origin", Strings(std::vector<std::string>(500, "SFO"))).ok());
  Result<table::Table> before = fitted->Apply(valid);
  Result<table::Table> after = loaded->Apply(valid);
  ASSERT_TRUE(before.ok() && after.ok()) << before.status().ToString();
  EXPECT_EQ(before->SchemaToString(), "x double, y double, origin=SFO double");
  EXPECT_TRUE(BitEqual(*before, *after));
  EXPECT_FALSE(FittedTransforms::FromJson(json{{"transforms", {{{"kind", "nope"}}}}}).ok());
  EXPECT_EQ(FittedTransforms::Fit({Spec(TransformKind::kImpute, "missing")}, train).status().code(),
            StatusCode::kNotFound);
}

// Categories and codes of long columns with runs of one value, nulls between
// equal values, bytes above 0x7f and unknown values, against std::set's order
// and a plain lookup per row.
TEST(Transforms, CategoriesAndCodesOfRunsEqualAPlainLookup) {
  const std::vector<std::string> pool = {"b", "a", "A", "", "\xc3\xa9t\xc3\xa9", "ab", "a\x01"};
  std::mt19937 rng(11);
  std::vector<std::string> train_values, valid_values;
  for (size_t row = 0; row < 5000; ++row) {
    const size_t run = rng() % 6 == 0 ? 1 : 0;  // mostly runs
    const std::string value =
        rng() % 10 == 0 ? "<null>" : pool[(row / 7 + run * (rng() % 7)) % pool.size()];
    train_values.push_back(value);
    valid_values.push_back(rng() % 50 == 0 ? "unseen" : value);
  }
  const Column train = Strings(train_values);
  const Column valid = Strings(valid_values);
  std::set<std::string> distinct;
  for (const std::string& value : train_values) {
    if (value != "<null>") distinct.insert(value);
  }
  const std::vector<std::string> expected(distinct.begin(), distinct.end());
  for (TransformKind kind : {TransformKind::kOrdinal, TransformKind::kOneHot}) {
    auto fitted = FittedTransform::Fit(Spec(kind, "s"), train);
    ASSERT_TRUE(fitted.ok());
    EXPECT_EQ(fitted->categories(), expected);
    Result<std::vector<Column>> out = fitted->Apply(valid);
    ASSERT_TRUE(out.ok());
    for (size_t row = 0; row < valid_values.size(); ++row) {
      const std::string& value = valid_values[row];
      const auto at = std::find(expected.begin(), expected.end(), value);
      const size_t code = static_cast<size_t>(at - expected.begin());  // size(): unknown
      if (kind == TransformKind::kOrdinal) {
        ASSERT_EQ((*out)[0].IsValid(row), value != "<null>") << row;
        if (value != "<null>") {
          ASSERT_EQ((*out)[0].doubles()[row], double(code)) << row;
        }
        continue;
      }
      for (size_t category = 0; category < expected.size(); ++category) {
        ASSERT_EQ((*out)[category].doubles()[row], category == code ? 1.0 : 0.0) << row;
      }
    }
  }
  // Integers and bools, with runs and nulls.
  Column ints(DataType::kInt64, 0), bools(DataType::kBool, 0);
  for (size_t row = 0; row < 3000; ++row) {
    if (row % 13 == 5) {
      ints.AppendNull();
      bools.AppendNull();
      continue;
    }
    ints.AppendInt64(static_cast<int64_t>(row / 10 % 7) - 3);
    bools.AppendBool(row / 4 % 3 == 0);
  }
  auto int_codes = FittedTransform::Fit(Spec(TransformKind::kOrdinal, "i"), ints);
  EXPECT_EQ(int_codes->categories(),
            (std::vector<std::string>{"-3", "-2", "-1", "0", "1", "2", "3"}));
  auto bool_codes = FittedTransform::Fit(Spec(TransformKind::kOrdinal, "b"), bools);
  EXPECT_EQ(bool_codes->categories(), (std::vector<std::string>{"false", "true"}));
  const Column int_out = std::move((*int_codes->Apply(ints))[0]);
  const Column bool_out = std::move((*bool_codes->Apply(bools))[0]);
  for (size_t row = 0; row < ints.size(); ++row) {
    ASSERT_EQ(int_out.IsValid(row), ints.IsValid(row));
    if (!ints.IsValid(row)) continue;
    ASSERT_EQ(int_out.doubles()[row], double(ints.ints()[row] + 3)) << row;
    ASSERT_EQ(bool_out.doubles()[row], bools.bools()[row] ? 1.0 : 0.0) << row;
  }
}

}  // namespace
}  // namespace keel::train
