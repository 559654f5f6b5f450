#include "validate/profile.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <string>

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

// The string path (a dictionary per batch of rows, ids into top-k) ends in
// the same summaries as adding every row's string one by one.
TEST(Profile, StringColumnEqualsPerValueSummaries) {
  std::mt19937_64 random(12);
  std::vector<std::string> words = {
      "",         "a",         std::string("a\0", 2), std::string("\0", 1),
      "abcdefgh", "abcdefghi", "abcdefghj",           "ORD",
      "ATL"};
  for (int index = 0; index < 400; ++index) {  // more than top-k's 2k counters
    std::string word = "w" + std::to_string(index);
    if (index % 3 == 0) word += std::string(10 + index % 20, 'x');  // longer than 8 bytes
    words.push_back(word);
  }
  for (const size_t max_categories : {size_t{1000}, size_t{50}}) {
    Column text(DataType::kString, 0);
    std::vector<std::optional<std::string>> rows;
    for (size_t row = 0; row < 150000; ++row) {  // three batches of rows
      if (random() % 17 == 0) {
        text.AppendNull();
        rows.push_back(std::nullopt);
        continue;
      }
      // Skewed: low indices often, so top-k has heavy hitters and purges.
      const size_t pick = std::min<size_t>(
          words.size() - 1, random() % 8 == 0 ? random() % words.size() : random() % 12);
      text.AppendString(words[pick]);
      rows.push_back(words[pick]);
    }
    text.AppendString("Z");  // the last bytes of the buffer: a short read at its end
    rows.push_back("Z");
    Table table;
    ASSERT_TRUE(table.AddColumn("text", std::move(text)).ok());
    ProfileOptions options;
    options.max_categories = max_categories;
    Result<Profile> profile = Profile::Of(table, "", options);
    ASSERT_TRUE(profile.ok());
    const ColumnProfile& column = profile->columns()[0];

    TopK top;
    DistinctCounter distinct;
    std::map<std::string, uint64_t, std::less<>> categories;
    uint64_t nulls = 0;
    for (const auto& row : rows) {
      if (!row) {
        ++nulls;
        continue;
      }
      top.Add(*row);
      distinct.Add(std::string_view(*row));
      ++categories[*row];
    }
    SCOPED_TRACE(max_categories);
    EXPECT_EQ(column.nulls(), nulls);
    EXPECT_EQ(column.rows(), rows.size());
    EXPECT_EQ(column.top().Encode(), top.Encode());
    EXPECT_GT(top.max_overcount(), 0u);
    EXPECT_EQ(column.distinct().Encode(), distinct.Encode());
    if (categories.size() <= max_categories) {
      ASSERT_TRUE(column.categories().has_value());
      EXPECT_EQ(*column.categories(), categories);
    } else {
      EXPECT_FALSE(column.categories().has_value());
    }
  }
}

// Histogram counts (reference deciles counted in a second pass, and fixed
// reference bins counted while adding rows) equal Histogram::BinOf per value,
// for every way of counting: the integer table, the padded binary search and
// upper_bound beyond 63 edges.
TEST(Profile, HistogramCountsEqualBinOfPerValue) {
  std::mt19937_64 random(13);
  const size_t rows = 150000;
  Column small(DataType::kInt64, 0), wide(DataType::kInt64, 0), huge(DataType::kInt64, 0),
      number(DataType::kDouble, 0), stamp(DataType::kTimestamp, 0);
  for (size_t row = 0; row < rows; ++row) {
    const bool null = random() % 13 == 0;
    null ? small.AppendNull() : small.AppendInt64(static_cast<int64_t>(random() % 40) - 7);
    wide.AppendInt64(static_cast<int64_t>(random() % 1000000) - 500000);
    huge.AppendInt64(static_cast<int64_t>(random() % 2000) + (int64_t{1} << 60));
    stamp.AppendInt64(1700000000000000 + static_cast<int64_t>(random() % 5000));
    const uint64_t kind = random() % 50;
    if (kind == 0) {
      number.AppendNull();
    } else if (kind == 1) {
      number.AppendDouble(std::nan(""));
    } else if (kind == 2) {
      number.AppendDouble(random() % 2 ? INFINITY : -INFINITY);
    } else if (kind == 3) {
      number.AppendDouble(random() % 2 ? 0.0 : -0.0);
    } else {
      number.AppendDouble(std::ldexp(static_cast<double>(random() % 100000) - 50000.0, -10));
    }
  }
  Table table;
  ASSERT_TRUE(table.AddColumn("small", std::move(small)).ok());
  ASSERT_TRUE(table.AddColumn("wide", std::move(wide)).ok());
  ASSERT_TRUE(table.AddColumn("huge", std::move(huge)).ok());
  ASSERT_TRUE(table.AddColumn("number", std::move(number)).ok());
  ASSERT_TRUE(table.AddColumn("stamp", std::move(stamp)).ok());
  auto expect_counts = [&table](const Profile& profile, const std::string& label) {
    for (size_t index = 0; index < table.num_columns(); ++index) {
      const Column& column = table.column(index);
      const Histogram& histogram = profile.columns()[index].histogram();
      std::vector<uint64_t> expected(histogram.edges.size() + 1, 0);
      for (size_t row = 0; row < column.size(); ++row) {
        const double value = column.NumericAt(row);
        if (column.IsValid(row) && !std::isnan(value)) ++expected[histogram.BinOf(value)];
      }
      EXPECT_EQ(histogram.counts, expected) << label << " " << table.fields()[index].name;
    }
  };
  for (const int bins : {10, 40, 100}) {  // 9, 39 and 99 edges at most
    ProfileOptions options;
    options.bins = bins;
    Result<Profile> reference = Profile::Of(table, "", options);
    ASSERT_TRUE(reference.ok());
    expect_counts(*reference, "deciles, bins " + std::to_string(bins));
    Result<Profile> fixed = Profile::Of(table, "", reference->ReferenceOptions());
    ASSERT_TRUE(fixed.ok());
    expect_counts(*fixed, "fixed, bins " + std::to_string(bins));
  }
  // Edges between the integers and on them, no edges at all, and more than 63.
  ProfileOptions options;
  options.bin_edges["small"] = {-3.5, 0.0, 0.5, 1.0, 17.25};
  options.bin_edges["wide"] = {};
  std::vector<double> many;
  for (int edge = 0; edge < 70; ++edge) many.push_back(-20.0 + 0.5 * edge);
  options.bin_edges["number"] = many;
  Result<Profile> fixed = Profile::Of(table, "", options);
  ASSERT_TRUE(fixed.ok());
  expect_counts(*fixed, "given edges");
}

// OfPrefix profiles the first rows of longer columns in place: the same
// bytes as Of of a table holding copies of just those rows, for every
// thread count, above and below the sketch's exact limit, with nulls, NaNs,
// strings and a column of exactly the profiled length; too short a column
// is an error naming it.
TEST(Profile, OfPrefixEqualsOfTheCopiedRows) {
  Table table = RandomTable(21, 150000);
  Column with_nan(DataType::kDouble, 0);
  for (size_t row = 0; row < table.num_rows(); ++row) {
    if (row % 97 == 3) {
      with_nan.AppendDouble(std::nan(""));
    } else {
      with_nan.AppendDouble(static_cast<double>(row % 1000) / 8.0);
    }
  }
  ASSERT_TRUE(table.AddColumn("with_nan", std::move(with_nan)).ok());
  for (const size_t rows : {size_t{1}, size_t{5000}, size_t{120001}}) {
    const Table copied = Slice(table, 0, rows);
    Column exact(DataType::kInt64, 0);
    for (size_t row = 0; row < rows; ++row) exact.AppendInt64(static_cast<int64_t>(row % 77));
    std::vector<Profile::NamedColumn> columns;
    for (size_t index = 0; index < table.num_columns(); ++index) {
      columns.push_back({table.fields()[index].name, &table.column(index)});
    }
    columns.push_back({"exact", &exact});
    Table expected_table = copied;
    ASSERT_TRUE(expected_table
                    .AddColumn("exact", exact.Gather([&] {
                      std::vector<uint32_t> ids(rows);
                      for (uint32_t row = 0; row < rows; ++row) ids[row] = row;
                      return ids;
                    }()))
                    .ok());
    for (const int threads : {1, 2, 3}) {
      SCOPED_TRACE("rows " + std::to_string(rows) + ", threads " + std::to_string(threads));
      ProfileOptions options;
      options.threads = threads;
      Result<Profile> expected = Profile::Of(expected_table, "", options);
      ASSERT_TRUE(expected.ok());
      Result<Profile> prefix = Profile::OfPrefix(columns, rows, options);
      ASSERT_TRUE(prefix.ok()) << prefix.status().ToString();
      EXPECT_EQ(prefix->rows(), rows);
      EXPECT_EQ(prefix->ToJson(), expected->ToJson());
    }
  }
  Column short_column(DataType::kInt64, 10);
  Result<Profile> too_short = Profile::OfPrefix({{"short", &short_column}}, 11, ProfileOptions());
  ASSERT_FALSE(too_short.ok());
  EXPECT_NE(too_short.status().message().find("'short'"), std::string::npos);
}

// Profile::Of splits the work into tasks differently by thread and column
// count (whole columns, or a numeric column's sketch and its other statistics
// on different threads, then its histogram); every way gives the same bytes
// as the one-thread profile, with or without reference bins, NaNs and nulls.
TEST(Profile, SameBytesForEveryThreadCount) {
  Table few = RandomTable(14, 200000);  // above the sketch's exact limit
  Column with_nan(DataType::kDouble, 0);
  std::mt19937_64 random(15);
  for (size_t row = 0; row < few.num_rows(); ++row) {
    const uint64_t kind = random() % 100;
    if (kind == 0) {
      with_nan.AppendDouble(std::nan(""));
    } else if (kind == 1) {
      with_nan.AppendNull();
    } else {
      with_nan.AppendDouble(static_cast<double>(random() % 1000) / 8.0);
    }
  }
  ASSERT_TRUE(few.AddColumn("with_nan", std::move(with_nan)).ok());
  Table many;  // enough columns that they stay whole
  for (int copy = 0; copy < 6; ++copy) {
    for (size_t index = 0; index < few.num_columns(); ++index) {
      ASSERT_TRUE(many.AddColumn(few.fields()[index].name + std::to_string(copy),
                                 few.column(index).Gather([&] {
                                   std::vector<uint32_t> rows(20000);
                                   for (uint32_t row = 0; row < rows.size(); ++row) {
                                     rows[row] = row * 7 + static_cast<uint32_t>(copy);
                                   }
                                   return rows;
                                 }()))
                      .ok());
    }
  }
  for (const Table* table : {&few, &many}) {
    ProfileOptions options;
    Result<Profile> one = Profile::Of(*table, "", options);
    ASSERT_TRUE(one.ok());
    ProfileOptions fixed = one->ReferenceOptions();
    Result<Profile> one_fixed = Profile::Of(*table, "", fixed);
    ASSERT_TRUE(one_fixed.ok());
    for (const int threads : {2, 3, 8}) {
      SCOPED_TRACE("columns " + std::to_string(table->num_columns()) + ", threads " +
                   std::to_string(threads));
      options.threads = threads;
      fixed.threads = threads;
      Result<Profile> parallel = Profile::Of(*table, "", options);
      ASSERT_TRUE(parallel.ok());
      EXPECT_EQ(parallel->ToJson(), one->ToJson());
      Result<Profile> parallel_fixed = Profile::Of(*table, "", fixed);
      ASSERT_TRUE(parallel_fixed.ok());
      EXPECT_EQ(parallel_fixed->ToJson(), one_fixed->ToJson());
    }
    // A ColumnProfile fed by AddColumn (the incremental path, in Of's batches
    // of 65536 rows) ends the same as Of's column.
    for (size_t index = 0; index < table->num_columns(); ++index) {
      const Column& column = table->column(index);
      ColumnProfile incremental(table->fields()[index].name, column.type(), fixed);
      for (size_t begin = 0; begin < column.size(); begin += 65536) {
        incremental.AddColumn(column, begin, std::min(column.size(), begin + 65536));
      }
      EXPECT_EQ(incremental.ToJson(), one_fixed->columns()[index].ToJson())
          << table->fields()[index].name;
    }
  }
}

// The distinct counter behind a cache of recent values (skipped for columns
// where nearly every value is new) ends as a counter fed every value.
TEST(Profile, DistinctEqualsPerValueCounter) {
  std::mt19937_64 random(16);
  std::normal_distribution<double> normal(0.0, 1.0);
  Column continuous(DataType::kDouble, 0), ties(DataType::kInt64, 0), mixed(DataType::kDouble, 0);
  for (size_t row = 0; row < 150000; ++row) {
    continuous.AppendDouble(normal(random));
    ties.AppendInt64(static_cast<int64_t>(random() % 300));
    // New values at first (the cache is skipped), then few ones again.
    mixed.AppendDouble(row % 65536 < 5000 ? normal(random) : static_cast<double>(random() % 7));
  }
  Table table;
  ASSERT_TRUE(table.AddColumn("continuous", std::move(continuous)).ok());
  ASSERT_TRUE(table.AddColumn("ties", std::move(ties)).ok());
  ASSERT_TRUE(table.AddColumn("mixed", std::move(mixed)).ok());
  Result<Profile> profile = Profile::Of(table, "", ProfileOptions{});
  ASSERT_TRUE(profile.ok());
  for (size_t index = 0; index < table.num_columns(); ++index) {
    DistinctCounter expected;
    const Column& column = table.column(index);
    for (size_t row = 0; row < column.size(); ++row) expected.Add(column.NumericAt(row));
    EXPECT_EQ(profile->columns()[index].distinct().Encode(), expected.Encode())
        << table.fields()[index].name;
  }
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
