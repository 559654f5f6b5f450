#include "validate/checks.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "validate/drift_check.h"

namespace keel::validate {
namespace {

using table::Column;
using table::DataType;
using table::Table;

constexpr Timestamp kDay0 = 1'700'006'400'000'000;  // 2023-11-15 00:00:00 UTC

// Events: one row per (day, hour) for `days` days, `per_day` rows a day.
Table Events(int days, int per_day) {
  Column time(DataType::kTimestamp, 0), user(DataType::kString, 0), amount(DataType::kDouble, 0),
      count(DataType::kInt64, 0);
  for (int day = 0; day < days; ++day) {
    for (int i = 0; i < per_day; ++i) {
      time.AppendInt64(kDay0 + day * kMicrosPerDay + i * (kMicrosPerDay / per_day));
      user.AppendString(i % 3 == 0 ? "ann" : (i % 3 == 1 ? "bob" : "cy"));
      amount.AppendDouble(10.0 + i % 7);
      count.AppendInt64(i % 5);
    }
  }
  Table table;
  EXPECT_TRUE(table.AddColumn("ts", std::move(time)).ok());
  EXPECT_TRUE(table.AddColumn("user", std::move(user)).ok());
  EXPECT_TRUE(table.AddColumn("amount", std::move(amount)).ok());
  EXPECT_TRUE(table.AddColumn("count", std::move(count)).ok());
  return table;
}

CheckContext Context(Timestamp as_of = kDay0 + 10 * kMicrosPerDay) {
  CheckContext context;
  context.source = "events";
  context.time_column = "ts";
  context.as_of = as_of;
  return context;
}

ValidationReport RunOne(const CheckDef& check, const Table& data, const CheckContext& context) {
  Result<ValidationReport> report = RunChecks({check}, data, context);
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  return report.ok() ? *report : ValidationReport{};
}

Outcome Only(const ValidationReport& report) {
  EXPECT_EQ(report.results.size(), 1u);
  return report.results.empty() ? Outcome::kPass : report.results[0].outcome;
}

TEST(Checks, SchemaCatchesAColumnThatChangedFromIntToString) {
  CheckDef check;
  check.kind = CheckKind::kSchema;
  check.schema = {{"ts", DataType::kTimestamp}, {"count", DataType::kInt64}};
  Table good = Events(2, 4);
  ValidationReport report = RunOne(check, good, Context());
  EXPECT_FALSE(report.HasErrors());

  // Same data, but `count` arrives as strings.
  Table bad;
  ASSERT_TRUE(bad.AddColumn("ts", good.column(0)).ok());
  Column as_text(DataType::kString, 0);
  for (size_t row = 0; row < good.num_rows(); ++row) as_text.AppendString("3");
  ASSERT_TRUE(bad.AddColumn("count", std::move(as_text)).ok());
  report = RunOne(check, bad, Context());
  ASSERT_TRUE(report.HasErrors());
  EXPECT_NE(report.Failures()[0]->detail.find("changed type: string, expected int64"),
            std::string::npos);

  // Unexpected columns only fail when extra columns are forbidden.
  check.allow_extra_columns = false;
  report = RunOne(check, good, Context());
  EXPECT_EQ(report.Failures().size(), 2u);  // user, amount
}

TEST(Checks, NullShareCatchesAllNullAfterMidnight) {
  Table data = Events(2, 10);
  CheckDef check;
  check.kind = CheckKind::kNullShare;
  check.columns = {"amount"};
  check.max_null_share = 0.1;
  EXPECT_EQ(Only(RunOne(check, data, Context())), Outcome::kPass);
  // Day two: every amount is null (an upstream job broke at midnight).
  Column& amount = data.mutable_column(2);
  for (size_t row = 10; row < 20; ++row) amount.SetNull(row);
  ValidationReport report = RunOne(check, data, Context());
  EXPECT_EQ(Only(report), Outcome::kFail);
  EXPECT_DOUBLE_EQ(report.results[0].numeric_value, 0.5);
  // NaN counts as missing too.
  Table nan_data = Events(1, 4);
  nan_data.mutable_column(2).doubles()[0] = std::nan("");
  check.max_null_share = 0.2;
  EXPECT_EQ(Only(RunOne(check, nan_data, Context())), Outcome::kFail);
  // Severity warn reports without failing.
  check.severity = Severity::kWarn;
  report = RunOne(check, nan_data, Context());
  EXPECT_EQ(Only(report), Outcome::kWarn);
  EXPECT_FALSE(report.HasErrors());
}

TEST(Checks, RangeAndMissingColumn) {
  Table data = Events(1, 10);
  CheckDef check;
  check.kind = CheckKind::kRange;
  check.columns = {"amount"};
  check.min = 10;
  check.max = 16;
  EXPECT_EQ(Only(RunOne(check, data, Context())), Outcome::kPass);
  check.max = 15;
  ValidationReport report = RunOne(check, data, Context());
  EXPECT_EQ(Only(report), Outcome::kFail);
  EXPECT_EQ(report.results[0].numeric_value, 1);  // one 16.0 in ten rows
  check.columns = {"nosuch"};
  report = RunOne(check, data, Context());
  EXPECT_EQ(Only(report), Outcome::kFail);
  EXPECT_NE(report.results[0].detail.find("no column 'nosuch'"), std::string::npos);
}

TEST(Checks, AllowedValuesAndRegex) {
  Table data = Events(1, 9);
  CheckDef values;
  values.kind = CheckKind::kValues;
  values.columns = {"user"};
  values.allowed = {"ann", "bob", "cy"};
  EXPECT_EQ(Only(RunOne(values, data, Context())), Outcome::kPass);
  values.allowed = {"ann", "bob"};
  ValidationReport report = RunOne(values, data, Context());
  EXPECT_EQ(Only(report), Outcome::kFail);
  EXPECT_NE(report.results[0].detail.find("'cy' (3)"), std::string::npos);

  CheckDef regex;
  regex.kind = CheckKind::kRegex;
  regex.columns = {"user"};
  regex.pattern = "[a-z]+";
  EXPECT_EQ(Only(RunOne(regex, data, Context())), Outcome::kPass);
  regex.pattern = "[a-z]{3}";  // full match: "cy" fails
  report = RunOne(regex, data, Context());
  EXPECT_EQ(Only(report), Outcome::kFail);
  // Every row of a repeated value counts, matching ones memoized or not.
  EXPECT_EQ(report.results[0].numeric_value, 3.0);
  EXPECT_EQ(report.results[0].value, "3 not matching");
  EXPECT_EQ(report.results[0].detail, "e.g. row 2: 'cy'");
  regex.pattern = "ann|cy";
  EXPECT_EQ(RunOne(regex, data, Context()).results[0].value, "3 not matching");
  regex.pattern = "[a-z";
  EXPECT_FALSE(RunChecks({regex}, data, Context()).ok());
}

TEST(Checks, UniqueCatchesTheSameEventsIngestedTwice) {
  Table once = Events(2, 6);
  CheckDef check;
  check.kind = CheckKind::kUnique;
  check.columns = {"user"};  // + the timestamp
  EXPECT_EQ(Only(RunOne(check, once, Context())), Outcome::kPass);
  // The same batch loaded twice.
  Table twice;
  for (size_t index = 0; index < once.num_columns(); ++index) {
    std::vector<uint32_t> rows;
    for (int copy = 0; copy < 2; ++copy) {
      for (uint32_t row = 0; row < once.num_rows(); ++row) rows.push_back(row);
    }
    ASSERT_TRUE(twice.AddColumn(once.fields()[index].name, once.column(index).Gather(rows)).ok());
  }
  ValidationReport report = RunOne(check, twice, Context());
  EXPECT_EQ(Only(report), Outcome::kFail);
  EXPECT_EQ(report.results[0].numeric_value, 12);
}

TEST(Checks, VolumeCatchesZeroNewRows) {
  Table data = Events(10, 24);
  CheckDef check;
  check.kind = CheckKind::kVolume;
  check.partition = kMicrosPerDay;
  check.min_rows = 1;
  CheckContext context = Context(kDay0 + 10 * kMicrosPerDay);
  context.volume_to_as_of = true;
  EXPECT_EQ(Only(RunOne(check, data, context)), Outcome::kPass);
  // As of two days later the last two days have no rows: "ETL wrote 0 rows".
  context.as_of = kDay0 + 12 * kMicrosPerDay;
  ValidationReport report = RunOne(check, data, context);
  EXPECT_EQ(Only(report), Outcome::kFail);
  EXPECT_EQ(report.results[0].numeric_value, 2);
  // Trailing sigma: a day with a third of the usual rows stands out.
  Table uneven = Events(10, 24);
  std::vector<uint32_t> keep;
  for (uint32_t row = 0; row < uneven.num_rows(); ++row) {
    if (row < 9 * 24 || row % 3 == 0) keep.push_back(row);
  }
  Table thinned;
  for (size_t index = 0; index < uneven.num_columns(); ++index) {
    ASSERT_TRUE(
        thinned.AddColumn(uneven.fields()[index].name, uneven.column(index).Gather(keep)).ok());
  }
  check.min_rows.reset();
  check.trailing = 5;
  check.max_sigma = 3;
  context.as_of = kDay0 + 10 * kMicrosPerDay;
  EXPECT_EQ(Only(RunOne(check, data, context)), Outcome::kPass);  // constant volume: sigma 0
  EXPECT_EQ(Only(RunOne(check, thinned, context)), Outcome::kFail);
}

TEST(Checks, FreshnessCatchesStaleByThreeDays) {
  Table data = Events(10, 4);  // newest row on day 9
  CheckDef check;
  check.kind = CheckKind::kFreshness;
  check.max_age = kMicrosPerDay;
  EXPECT_EQ(Only(RunOne(check, data, Context(kDay0 + 10 * kMicrosPerDay))), Outcome::kPass);
  ValidationReport report = RunOne(check, data, Context(kDay0 + 13 * kMicrosPerDay));
  EXPECT_EQ(Only(report), Outcome::kFail);
  EXPECT_NE(report.results[0].detail.find("stale by"), std::string::npos);
}

TEST(Checks, EmptyDataFailsVolumeAndFreshness) {
  Table empty = Events(0, 0);
  CheckDef volume;
  volume.kind = CheckKind::kVolume;
  volume.partition = kMicrosPerDay;
  volume.min_rows = 1;
  CheckDef fresh;
  fresh.kind = CheckKind::kFreshness;
  fresh.max_age = kMicrosPerDay;
  Result<ValidationReport> report = RunChecks({volume, fresh}, empty, Context());
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->Failures().size(), 2u);
}

TEST(Checks, DriftAgainstAReferenceProfile) {
  std::mt19937_64 random(7);
  std::normal_distribution<double> normal(0.0, 1.0);
  auto sample = [&](double shift, size_t rows) {
    Column value(DataType::kDouble, 0), kind(DataType::kString, 0);
    for (size_t row = 0; row < rows; ++row) {
      value.AppendDouble(normal(random) + shift);
      kind.AppendString(row % 4 == 0 ? "a" : "b");
    }
    Table table;
    EXPECT_TRUE(table.AddColumn("value", std::move(value)).ok());
    EXPECT_TRUE(table.AddColumn("kind", std::move(kind)).ok());
    return table;
  };
  Result<Profile> reference = Profile::Of(sample(0.0, 20000), "", ProfileOptions{});
  ASSERT_TRUE(reference.ok()) << reference.status().ToString();
  CheckDef check;
  check.kind = CheckKind::kDrift;
  CheckContext context = Context();
  context.reference = &*reference;
  for (DriftMethod method : {DriftMethod::kAuto, DriftMethod::kPsi, DriftMethod::kWasserstein,
                             DriftMethod::kKsStatistic, DriftMethod::kJensenShannon}) {
    check.method = method;
    check.columns = {"value"};
    ValidationReport same = RunOne(check, sample(0.0, 20000), context);
    EXPECT_EQ(Only(same), Outcome::kPass)
        << DriftMethodName(method) << " " << same.results[0].value;
    ValidationReport shifted = RunOne(check, sample(1.0, 20000), context);
    EXPECT_EQ(Only(shifted), Outcome::kFail) << DriftMethodName(method);
  }
  // Small samples default to the KS p-value.
  check.method = DriftMethod::kAuto;
  ValidationReport small = RunOne(check, sample(0.0, 300), context);
  EXPECT_EQ(small.results[0].check, "drift:ks");
  EXPECT_EQ(Only(RunOne(check, sample(1.0, 300), context)), Outcome::kFail);
  // Categories: a share moving from 25% to 50% is drift.
  check.columns = {"kind"};
  EXPECT_EQ(Only(RunOne(check, sample(0.0, 5000), context)), Outcome::kPass);
  Table flipped = sample(0.0, 5000);
  Column kind(DataType::kString, 0);
  for (size_t row = 0; row < 5000; ++row) kind.AppendString(row % 2 == 0 ? "a" : "b");
  Table categorical;
  ASSERT_TRUE(categorical.AddColumn("kind", std::move(kind)).ok());
  EXPECT_EQ(Only(RunOne(check, categorical, context)), Outcome::kFail);
  // Too few rows to judge: a warning, never a silent pass.
  check.columns = {"value"};
  EXPECT_EQ(Only(RunOne(check, sample(5.0, 20), context)), Outcome::kWarn);
}

}  // namespace
}  // namespace keel::validate
