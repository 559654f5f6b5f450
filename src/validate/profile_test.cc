#include "validate/profile.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace keel::validate {
namespace {

using table::Column;
using table::DataType;
using table::Table;

// Random rows with nulls, ties (integers), heavy tails and a few categories.
Table RandomTable(uint64_t seed, size_t rows) {
  std::mt19937_64 random(seed);
  std::lognormal_distribution<double> heavy(0.0, 1.5);
  std::uniform_int_distribution<int64_t> small(-5, 5);
  Column number(DataType::kDouble, 0), integer(DataType::kInt64, 0), text(DataType::kString, 0),
      flag(DataType::kBool, 0);
  const char* words[] = {"alpha", "beta", "gamma", "delta"};
  for (size_t row = 0; row < rows; ++row) {
    if (random() % 10 == 0) {
      number.AppendNull();
    } else {
      number.AppendDouble(heavy(random) * 100.0 - 50.0);
    }
    integer.AppendInt64(small(random));
    if (random() % 20 == 0) {
      text.AppendNull();
    } else {
      text.AppendString(words[random() % 4]);
    }
    flag.AppendBool(random() % 3 == 0);
  }
  Table table;
  EXPECT_TRUE(table.AddColumn("number", std::move(number)).ok());
  EXPECT_TRUE(table.AddColumn("integer", std::move(integer)).ok());
  EXPECT_TRUE(table.AddColumn("text", std::move(text)).ok());
  EXPECT_TRUE(table.AddColumn("flag", std::move(flag)).ok());
  return table;
}

Table Slice(const Table& table, size_t begin, size_t end) {
  std::vector<uint32_t> rows;
  for (size_t row = begin; row < end; ++row) rows.push_back(static_cast<uint32_t>(row));
  Table out;
  for (size_t index = 0; index < table.num_columns(); ++index) {
    EXPECT_TRUE(out.AddColumn(table.fields()[index].name, table.column(index).Gather(rows)).ok());
  }
  return out;
}

void ExpectRelative(double expected, double actual, double tolerance, const std::string& what) {
  double scale = std::max(1.0, std::fabs(expected));
  EXPECT_LE(std::fabs(expected - actual), tolerance * scale)
      << what << ": " << expected << " vs " << actual;
}

TEST(Profile, MomentsMinMaxAndCountsEqualDirectComputation) {
  Table table = RandomTable(1, 5000);
  Result<Profile> profile = Profile::Of(table, "", ProfileOptions{});
  ASSERT_TRUE(profile.ok()) << profile.status().ToString();
  const Column& number = table.column(0);
  std::vector<double> values;
  for (size_t row = 0; row < number.size(); ++row) {
    if (number.IsValid(row)) values.push_back(number.doubles()[row]);
  }
  long double sum = 0;
  for (double v : values) sum += v;
  long double mean = sum / values.size();
  long double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  const ColumnProfile* column = profile->Find("number");
  ASSERT_NE(column, nullptr);
  EXPECT_EQ(column->rows(), 5000u);
  EXPECT_EQ(column->nulls(), 5000u - values.size());
  EXPECT_EQ(column->moments().count, values.size());
  ExpectRelative(double(mean), column->moments().mean, 1e-12, "mean");
  ExpectRelative(double(squares / values.size()), column->moments().Variance(), 1e-12, "variance");
  EXPECT_EQ(*column->min(), *std::min_element(values.begin(), values.end()));
  EXPECT_EQ(*column->max(), *std::max_element(values.begin(), values.end()));
  // Histogram: deciles of its own data; every value counted once, in its bin.
  const Histogram& histogram = column->histogram();
  uint64_t total = 0;
  for (uint64_t count : histogram.counts) total += count;
  EXPECT_EQ(total, values.size());
  EXPECT_EQ(histogram.edges.size(), 9u);
  for (size_t bin = 0; bin < histogram.counts.size(); ++bin) {
    uint64_t expected = 0;
    for (double v : values) {
      bool above = bin == 0 || v >= histogram.edges[bin - 1];
      bool below = bin == histogram.edges.size() || v < histogram.edges[bin];
      expected += above && below;
    }
    EXPECT_EQ(histogram.counts[bin], expected) << "bin " << bin;
  }
  // Categories are exact.
  const ColumnProfile* text = profile->Find("text");
  ASSERT_NE(text, nullptr);
  ASSERT_TRUE(text->categories().has_value());
  uint64_t counted = 0;
  for (const auto& [value, count] : *text->categories()) counted += count;
  EXPECT_EQ(counted + text->nulls(), 5000u);
  EXPECT_EQ(text->categories()->size(), 4u);
}

TEST(Profile, MergeOfPartsEqualsProfileOfTheUnion) {
  for (uint64_t seed : {2u, 3u, 4u}) {
    Table table = RandomTable(seed, 30000);
    // Fixed bins from a reference, so every part's histogram is comparable.
    Result<Profile> reference = Profile::Of(Slice(table, 0, 1000), "", ProfileOptions{});
    ASSERT_TRUE(reference.ok());
    ProfileOptions options = reference->ReferenceOptions();
    options.exact_quantile_limit = 4096;  // the union needs the sketch, parts may not
    Result<Profile> whole = Profile::Of(table, "", options);
    ASSERT_TRUE(whole.ok());
    Result<Profile> merged = Profile::Of(Slice(table, 0, 7000), "", options);
    ASSERT_TRUE(merged.ok());
    for (auto [begin, end] :
         {std::pair<size_t, size_t>{7000, 7001}, {7001, 20000}, {20000, 30000}}) {
      Result<Profile> part = Profile::Of(Slice(table, begin, end), "", options);
      ASSERT_TRUE(part.ok());
      ASSERT_TRUE(merged->Merge(*part).ok());
    }
    EXPECT_EQ(merged->rows(), whole->rows());
    for (const ColumnProfile& expected : whole->columns()) {
      const ColumnProfile* actual = merged->Find(expected.name());
      ASSERT_NE(actual, nullptr);
      SCOPED_TRACE(expected.name());
      EXPECT_EQ(actual->rows(), expected.rows());
      EXPECT_EQ(actual->nulls(), expected.nulls());
      EXPECT_EQ(actual->moments().count, expected.moments().count);
      ExpectRelative(expected.moments().mean, actual->moments().mean, 1e-12, "mean");
      ExpectRelative(expected.moments().m2, actual->moments().m2, 1e-12, "m2");
      EXPECT_EQ(actual->min(), expected.min());
      EXPECT_EQ(actual->max(), expected.max());
      EXPECT_EQ(actual->histogram().counts, expected.histogram().counts);
      EXPECT_EQ(actual->categories(), expected.categories());
      if (expected.numeric()) {
        double bound = actual->quantiles().RankError() + expected.quantiles().RankError();
        for (double q : {0.1, 0.5, 0.9}) {
          // With ties the rank jumps at a value: q must lie within the jump.
          double value = actual->quantiles().Quantile(q);
          double at_or_below = expected.quantiles().Rank(value);
          double below = expected.quantiles().Rank(std::nextafter(value, -INFINITY));
          EXPECT_GE(at_or_below, q - bound - 1e-3) << "q=" << q;
          EXPECT_LE(below, q + bound + 1e-3) << "q=" << q;
        }
      }
      double distinct = expected.distinct().Estimate();
      EXPECT_NEAR(actual->distinct().Estimate(), distinct, 0.05 * distinct + 1);
    }
  }
}

TEST(Profile, MergeRejectsDifferentBins) {
  Table table = RandomTable(5, 2000);
  Result<Profile> a = Profile::Of(Slice(table, 0, 1000), "", ProfileOptions{});
  Result<Profile> b = Profile::Of(Slice(table, 1000, 2000), "", ProfileOptions{});
  ASSERT_TRUE(a.ok() && b.ok());
  Status status = a->Merge(*b);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("different bins"), std::string::npos);
}

TEST(Profile, JsonRoundTripKeepsEverything) {
  Table table = RandomTable(6, 100000);  // above the exact limit: a real sketch
  Result<Profile> profile = Profile::Of(table, "", ProfileOptions{});
  ASSERT_TRUE(profile.ok());
  profile->source = "random";
  std::string json = profile->ToJson();
  Result<Profile> back = Profile::FromJson(json);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->ToJson(), json);
  // Merging a decoded profile works like merging the original.
  Result<Profile> copy = Profile::FromJson(json);
  ASSERT_TRUE(copy.ok());
  ASSERT_TRUE(copy->Merge(*back).ok());
  EXPECT_EQ(copy->rows(), 200000u);
}

TEST(Profile, FromJsonNamesWhatIsWrong) {
  EXPECT_FALSE(Profile::FromJson("not json").ok());
  Result<Profile> missing = Profile::FromJson(R"({"format": "keel.profile.v1"})");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("profile.source: missing"), std::string::npos);
  Table table = RandomTable(7, 100);
  Result<Profile> profile = Profile::Of(table, "", ProfileOptions{});
  ASSERT_TRUE(profile.ok());
  std::string json = profile->ToJson();
  size_t at = json.find("\"quantile_sketch\": \"") + 20;
  json[at] = json[at] == 'A' ? 'B' : 'A';  // corrupt the first sketch's bytes
  json.insert(at, "!");
  Result<Profile> corrupt = Profile::FromJson(json);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_NE(corrupt.status().message().find("columns[0]"), std::string::npos)
      << corrupt.status().ToString();
}

TEST(Profile, AllNullAndEmptyColumns) {
  Column empty(DataType::kDouble, 0);
  for (int i = 0; i < 10; ++i) empty.AppendNull();
  Table table;
  ASSERT_TRUE(table.AddColumn("x", std::move(empty)).ok());
  Result<Profile> profile = Profile::Of(table, "", ProfileOptions{});
  ASSERT_TRUE(profile.ok());
  const ColumnProfile* column = profile->Find("x");
  EXPECT_EQ(column->nulls(), 10u);
  EXPECT_FALSE(column->min().has_value());
  Result<Profile> back = Profile::FromJson(profile->ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString() << profile->ToJson();
  EXPECT_EQ(back->Find("x")->nulls(), 10u);
}

}  // namespace
}  // namespace keel::validate
