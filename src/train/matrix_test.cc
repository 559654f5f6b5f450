#include "train/matrix.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace keel::train {
namespace {

using table::Column;
using table::DataType;

TEST(TrainingRowOrder, SortsByTimeThenKeysThenArrival) {
  table::Table spine;
  Column time(DataType::kTimestamp, 0);
  Column origin(DataType::kString, 0);
  Column arrival(DataType::kInt64, 0);  // remembers the input position
  const std::vector<std::pair<int64_t, std::string>> rows = {
      {30, "SFO"}, {10, "SFO"}, {30, "ATL"}, {10, "SFO"}, {20, ""}, {10, "ATL"}, {30, "ATL"}};
  for (size_t row = 0; row < rows.size(); ++row) {
    time.AppendInt64(rows[row].first);
    if (rows[row].second.empty()) {
      origin.AppendNull();
    } else {
      origin.AppendString(rows[row].second);
    }
    arrival.AppendInt64(static_cast<int64_t>(row));
  }
  ASSERT_TRUE(spine.AddColumn("ts", std::move(time)).ok());
  ASSERT_TRUE(spine.AddColumn("origin", std::move(origin)).ok());
  ASSERT_TRUE(spine.AddColumn("arrival", std::move(arrival)).ok());
  Result<std::vector<uint32_t>> order = TrainingRowOrder(spine, "ts", {"origin"});
  ASSERT_TRUE(order.ok()) << order.status().ToString();
  // t=10: ATL(5), SFO(1), SFO(3); t=20: null(4); t=30: ATL(2), ATL(6), SFO(0).
  EXPECT_EQ(*order, (std::vector<uint32_t>{5, 1, 3, 4, 2, 6, 0}));
  const table::Table sorted = GatherRows(spine, *order);
  EXPECT_EQ(sorted.column(2).ints(), (std::vector<int64_t>{5, 1, 3, 4, 2, 6, 0}));

  // The order is a function of the rows, not of how they arrived (up to exact ties).
  std::vector<uint32_t> shuffle = {6, 0, 4, 1, 5, 3, 2};
  const table::Table shuffled = GatherRows(spine, shuffle);
  const table::Table resorted = GatherRows(shuffled, *TrainingRowOrder(shuffled, "ts", {"origin"}));
  EXPECT_EQ(resorted.column(0).ints(), sorted.column(0).ints());
  for (size_t row = 0; row < rows.size(); ++row) {
    EXPECT_EQ(resorted.column(1).ValueToString(row), sorted.column(1).ValueToString(row));
  }
  EXPECT_EQ(TrainingRowOrder(spine, "origin", {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(TrainingRowOrder(spine, "ts", {"nope"}).status().code(), StatusCode::kNotFound);
}

// The order against its definition on random spines large enough for the
// two-thread sort and merge: (time, keys in order; nulls first), then arrival.
// Times with and without nulls (the fast path reads them directly), many ties.
TEST(TrainingRowOrder, EqualsSortingByTimeKeysAndArrivalOnRandomSpines) {
  std::mt19937_64 random(17);
  for (size_t rows : {1u, 100u, 9000u, 30001u}) {
    for (bool time_nulls : {false, true}) {
      Column time(DataType::kTimestamp, 0), origin(DataType::kString, 0);
      Column distance(DataType::kInt64, 0), flag(DataType::kBool, 0);
      for (size_t row = 0; row < rows; ++row) {
        if (time_nulls && random() % 50 == 0) {
          time.AppendNull();
        } else {
          time.AppendInt64(static_cast<int64_t>(random() % 200) - 100);
        }
        if (random() % 20 == 0) {
          origin.AppendNull();
        } else {
          origin.AppendString(std::string(1, static_cast<char>('A' + random() % 5)));
        }
        if (random() % 30 == 0) {
          distance.AppendNull();
        } else {
          distance.AppendInt64(static_cast<int64_t>(random() % 4));
        }
        flag.AppendBool(random() % 2 == 0);
      }
      table::Table spine;
      ASSERT_TRUE(spine.AddColumn("ts", std::move(time)).ok());
      ASSERT_TRUE(spine.AddColumn("origin", std::move(origin)).ok());
      ASSERT_TRUE(spine.AddColumn("distance", std::move(distance)).ok());
      ASSERT_TRUE(spine.AddColumn("flag", std::move(flag)).ok());
      // Keys of one row: (valid, value) per column; strings compare as strings.
      auto less = [&](uint32_t a, uint32_t b) {
        for (size_t column = 0; column < spine.num_columns(); ++column) {
          const Column& c = spine.column(column);
          if (c.IsValid(a) != c.IsValid(b)) return !c.IsValid(a);
          if (!c.IsValid(a)) continue;
          if (c.type() == DataType::kString) {
            if (c.StringAt(a) != c.StringAt(b)) return c.StringAt(a) < c.StringAt(b);
          } else if (c.NumericAt(a) != c.NumericAt(b)) {
            return c.NumericAt(a) < c.NumericAt(b);
          }
        }
        return a < b;
      };
      std::vector<uint32_t> expected(rows);
      for (size_t row = 0; row < rows; ++row) expected[row] = static_cast<uint32_t>(row);
      std::sort(expected.begin(), expected.end(), less);
      Result<std::vector<uint32_t>> order =
          TrainingRowOrder(spine, "ts", {"origin", "distance", "flag"});
      ASSERT_TRUE(order.ok()) << order.status().ToString();
      EXPECT_EQ(*order, expected) << rows << " rows, time nulls " << time_nulls;
    }
  }
}

TEST(BuildDenseMatrix, ConvertsNumericColumnsRowMajorWithNullsAsNaN) {
  table::Table table;
  Column ints(DataType::kInt64, 0);
  Column doubles(DataType::kDouble, 0);
  Column bools(DataType::kBool, 0);
  Column names(DataType::kString, 0);
  for (int row = 0; row < 3; ++row) {
    ints.AppendInt64(row * 10);
    if (row == 1) {
      doubles.AppendNull();
    } else {
      doubles.AppendDouble(row + 0.5);
    }
    bools.AppendBool(row == 2);
    names.AppendString("x");
  }
  ASSERT_TRUE(table.AddColumn("i", std::move(ints)).ok());
  ASSERT_TRUE(table.AddColumn("d", std::move(doubles)).ok());
  ASSERT_TRUE(table.AddColumn("b", std::move(bools)).ok());
  ASSERT_TRUE(table.AddColumn("s", std::move(names)).ok());
  Result<DenseMatrix> matrix = BuildDenseMatrix(table, {"d", "i", "b"});
  ASSERT_TRUE(matrix.ok()) << matrix.status().ToString();
  EXPECT_EQ(matrix->rows, 3u);
  EXPECT_EQ(matrix->cols, 3u);
  EXPECT_EQ(matrix->feature_names, (std::vector<std::string>{"d", "i", "b"}));
  EXPECT_EQ(matrix->at(0, 0), 0.5f);
  EXPECT_TRUE(std::isnan(matrix->at(1, 0)));
  EXPECT_EQ(matrix->at(2, 1), 20.0f);
  EXPECT_EQ(matrix->at(2, 2), 1.0f);
  EXPECT_EQ(matrix->row(2)[0], 2.5f);
  EXPECT_EQ(BuildDenseMatrix(table, {"s"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BuildDenseMatrix(table, {"zz"}).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(BuildDenseMatrix(table, {}).ok());
  EXPECT_FALSE(LabelValues(table.column(1)).ok());  // a null label
  EXPECT_EQ(*LabelValues(table.column(2)), (std::vector<double>{0, 0, 1}));
}

}  // namespace
}  // namespace keel::train
