// The row path (row_plan.h) against the table path it replaces on one row:
// train::FittedTransforms::Apply + train::BuildDenseMatrix, bit for bit, on
// random rows with nulls, NaN, unknown categories and every transform kind.
#include "serve/row_plan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "train/matrix.h"

namespace keel::serve {
namespace {

using table::Column;
using table::DataType;
using train::TransformKind;
using train::TransformSpec;

const char* kCities[] = {"Paris", "Lyon", "Nice", "Lille", "Metz"};
const char* kColors[] = {"red", "green", "blue"};

// Raw inputs: x (double), n (int64), b (bool), p (double > -1), q (double > 0),
// city, color, tag (strings), t (timestamp). `unknown`: categories training
// never saw; `domain_errors`: values outside log / log1p's domain.
table::Table RandomTable(size_t rows, uint64_t seed, bool unknown, bool domain_errors) {
  std::mt19937_64 random(seed);
  auto chance = [&](double p) { return std::uniform_real_distribution<>(0, 1)(random) < p; };
  Column x(DataType::kDouble, 0), n(DataType::kInt64, 0), b(DataType::kBool, 0);
  Column p(DataType::kDouble, 0), q(DataType::kDouble, 0), t(DataType::kTimestamp, 0);
  Column city(DataType::kString, 0), color(DataType::kString, 0), tag(DataType::kString, 0);
  for (size_t row = 0; row < rows; ++row) {
    if (chance(0.1)) {
      x.AppendNull();
    } else if (chance(0.1)) {
      x.AppendDouble(std::nan(""));
    } else {
      x.AppendDouble(std::normal_distribution<>(3, 10)(random));
    }
    chance(0.1) ? n.AppendNull() : n.AppendInt64(static_cast<int64_t>(random() % 200) - 50);
    chance(0.1) ? b.AppendNull() : b.AppendBool(chance(0.5));
    if (chance(0.1)) {
      p.AppendNull();
    } else {
      bool bad = domain_errors && chance(0.03);
      p.AppendDouble(bad ? -1.0 : std::uniform_real_distribution<>(-0.99, 50)(random));
    }
    if (chance(0.1)) {
      q.AppendNull();
    } else {
      bool bad = domain_errors && chance(0.03);
      q.AppendDouble(bad ? 0.0 : std::uniform_real_distribution<>(1e-3, 1e4)(random));
    }
    chance(0.1) ? t.AppendNull() : t.AppendInt64(1700000000000000 + int64_t(random() % 1000000));
    if (chance(0.1)) {
      city.AppendNull();
    } else {
      city.AppendString(unknown && chance(0.2) ? "Brest" : kCities[random() % 5]);
    }
    if (chance(0.1)) {
      color.AppendNull();
    } else {
      color.AppendString(unknown && chance(0.2) ? "mauve" : kColors[random() % 3]);
    }
    if (chance(0.2)) {
      tag.AppendNull();
    } else {
      tag.AppendString(unknown && chance(0.2) ? "zzz" : (chance(0.5) ? "a" : "b"));
    }
  }
  table::Table table;
  for (auto& [name, column] : std::vector<std::pair<const char*, Column*>>{{"x", &x},
                                                                           {"n", &n},
                                                                           {"b", &b},
                                                                           {"p", &p},
                                                                           {"q", &q},
                                                                           {"city", &city},
                                                                           {"color", &color},
                                                                           {"tag", &tag},
                                                                           {"t", &t}}) {
    EXPECT_TRUE(table.AddColumn(name, std::move(*column)).ok());
  }
  return table;
}

std::vector<TransformSpec> EveryKind(train::UnknownCategory unknown) {
  std::vector<TransformSpec> specs;
  auto add = [&](TransformKind kind, const char* column) -> TransformSpec& {
    specs.push_back({});
    specs.back().kind = kind;
    specs.back().column = column;
    return specs.back();
  };
  add(TransformKind::kImpute, "x").strategy = train::ImputeStrategy::kMedian;
  add(TransformKind::kStandardScale, "x");
  add(TransformKind::kBucketize, "n").edges = {-10, 0, 25.5, 100};
  add(TransformKind::kClip, "n").lower = 0;  // after bucketize: a chain on one column
  add(TransformKind::kStandardScale, "b");
  add(TransformKind::kLog, "p").log1p = true;
  add(TransformKind::kLog, "q");
  TransformSpec& clip = add(TransformKind::kClip, "q");
  clip.lower = 1;
  clip.upper = 8;
  add(TransformKind::kOrdinal, "city").unknown = unknown;
  add(TransformKind::kOneHot, "color").unknown = unknown;
  TransformSpec& fill = add(TransformKind::kImpute, "tag");
  fill.strategy = train::ImputeStrategy::kConstant;
  fill.fill_string = "b";
  add(TransformKind::kOrdinal, "tag").unknown = unknown;
  add(TransformKind::kImpute, "color=green").fill_value = 7;  // a one-hot output, further
  return specs;
}

std::vector<RowTransformPlan::Input> InputsOf(const table::Table& table) {
  std::vector<RowTransformPlan::Input> inputs;
  for (const table::Field& field : table.fields()) inputs.push_back({field.name, field.type});
  return inputs;
}

std::vector<std::string> ModelColumns() {
  return {"t", "x", "n", "b", "p", "q", "city", "color=blue", "color=green", "color=red", "tag"};
}

// The row path's model row of `row` of `table`, or false.
bool RowPath(const RowTransformPlan& plan, const table::Table& table, size_t row,
             std::vector<float>* out) {
  std::vector<RowValue> values;
  for (size_t col = 0; col < table.num_columns(); ++col) {
    values.push_back(RowValueAt(table.column(col), row));
  }
  out->assign(plan.num_columns(), -1.f);
  return plan.Apply(values, out->data());
}

// The table path on row `row` alone.
Result<train::DenseMatrix> TablePath(const train::FittedTransforms& transforms,
                                     const table::Table& table, size_t row) {
  table::Table one;
  for (size_t col = 0; col < table.num_columns(); ++col) {
    const Column& column = table.column(col);
    Column value(column.type(), 0);
    if (!column.IsValid(row)) {
      value.AppendNull();
    } else if (column.type() == DataType::kString) {
      value.AppendString(column.StringAt(row));
    } else if (column.type() == DataType::kDouble) {
      value.AppendDouble(column.doubles()[row]);
    } else if (column.type() == DataType::kBool) {
      value.AppendBool(column.NumericAt(row) != 0);
    } else {
      value.AppendInt64(column.ints()[row]);
    }
    EXPECT_TRUE(one.AddColumn(table.fields()[col].name, std::move(value)).ok());
  }
  ASSIGN_OR_RETURN(table::Table transformed, transforms.Apply(one));
  return train::BuildDenseMatrix(transformed, ModelColumns());
}

bool SameBits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

TEST(RowTransformPlan, EqualsTheTablePathBitForBitOnRandomRows) {
  for (train::UnknownCategory unknown :
       {train::UnknownCategory::kIgnore, train::UnknownCategory::kError}) {
    table::Table train_table = RandomTable(500, 1, false, false);
    auto fitted = train::FittedTransforms::Fit(EveryKind(unknown), train_table);
    ASSERT_TRUE(fitted.ok()) << fitted.status().ToString();
    auto plan = RowTransformPlan::Make(*fitted, InputsOf(train_table), ModelColumns());
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    EXPECT_EQ(plan->num_columns(), ModelColumns().size());

    table::Table rows = RandomTable(3000, 2, true, true);
    // The whole table through the table path equals row by row (the batch
    // and the online answer are one), except where the table path fails.
    size_t answered = 0, refused = 0;
    std::vector<float> by_row;
    for (size_t row = 0; row < rows.num_rows(); ++row) {
      Result<train::DenseMatrix> by_table = TablePath(*fitted, rows, row);
      bool ok = RowPath(*plan, rows, row, &by_row);
      ASSERT_EQ(ok, by_table.ok())
          << "row " << row << ": " << (by_table.ok() ? "" : by_table.status().ToString());
      if (!ok) {
        ++refused;
        continue;
      }
      ++answered;
      for (size_t col = 0; col < by_row.size(); ++col) {
        ASSERT_TRUE(SameBits(by_row[col], by_table->values[col]))
            << "row " << row << " column " << ModelColumns()[col] << ": " << by_row[col] << " vs "
            << by_table->values[col];
      }
    }
    EXPECT_GT(answered, 1000u);
    EXPECT_GT(refused, 100u);  // log's domain, and unknown categories under kError
    // Rows without domain errors or unknown categories: all answered.
    table::Table clean = RandomTable(500, 3, unknown == train::UnknownCategory::kIgnore, false);
    for (size_t row = 0; row < clean.num_rows(); ++row) {
      ASSERT_TRUE(RowPath(*plan, clean, row, &by_row)) << row;
    }
  }
}

TEST(RowTransformPlan, RefusesValuesOfAnotherTypeThanTrained) {
  table::Table train_table = RandomTable(200, 4, false, false);
  auto fitted =
      train::FittedTransforms::Fit(EveryKind(train::UnknownCategory::kIgnore), train_table);
  ASSERT_TRUE(fitted.ok());
  auto plan = RowTransformPlan::Make(*fitted, InputsOf(train_table), ModelColumns());
  ASSERT_TRUE(plan.ok());
  std::vector<RowValue> values;
  for (size_t col = 0; col < train_table.num_columns(); ++col) {
    values.push_back(RowValueAt(train_table.column(col), 0));
  }
  std::vector<float> out(plan->num_columns());
  EXPECT_TRUE(plan->Apply(values, out.data()));
  values[1].type = DataType::kDouble;  // n as a double: the table path converts it
  EXPECT_FALSE(plan->Apply(values, out.data()));
  values.pop_back();
  EXPECT_FALSE(plan->Apply(values, out.data()));  // too few values
}

TEST(RowTransformPlan, LeavesChainsItDoesNotCoverToTheTablePath) {
  table::Table train_table = RandomTable(200, 5, false, false);
  auto inputs = InputsOf(train_table);
  auto make = [&](std::vector<TransformSpec> specs, std::vector<std::string> columns) {
    auto fitted = train::FittedTransforms::Fit(specs, train_table);
    EXPECT_TRUE(fitted.ok()) << fitted.status().ToString();
    return RowTransformPlan::Make(*fitted, inputs, columns).status();
  };
  TransformSpec ordinal_int;
  ordinal_int.kind = TransformKind::kOrdinal;
  ordinal_int.column = "n";
  Status status = make({ordinal_int}, {"n"});
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("'n'"), std::string::npos) << status.ToString();
  // A string model column (no encoding): the table path's error, not the row path's.
  status = make({}, {"city"});
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  status = make({}, {"nope"});
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  // No transforms at all: the raw values, cast to float.
  EXPECT_TRUE(make({}, {"x", "n", "b", "t"}).ok());
}

}  // namespace
}  // namespace keel::serve
