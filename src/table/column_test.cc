#include "table/column.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>

namespace keel::table {
namespace {

TEST(Column, AppendsValuesAndNulls) {
  Column column(DataType::kString, 0);
  column.AppendString("ORD");
  column.AppendNull();
  column.AppendString("");
  ASSERT_EQ(column.size(), 3u);
  EXPECT_EQ(column.StringAt(0), "ORD");
  EXPECT_FALSE(column.IsValid(1));
  EXPECT_TRUE(column.IsValid(2));
  EXPECT_EQ(column.StringAt(2), "");
  EXPECT_EQ(column.NullCount(), 1u);
}

TEST(Column, ValidityStaysEmptyWithoutNulls) {
  Column column(DataType::kInt64, 0);
  column.AppendInt64(1);
  column.AppendInt64(2);
  EXPECT_TRUE(column.validity().empty());
  EXPECT_FALSE(column.HasNulls());
  column.AppendNull();
  EXPECT_EQ(column.validity().size(), 3u);
  column.AppendInt64(4);
  EXPECT_EQ(column.validity(), (std::vector<uint8_t>{1, 1, 0, 1}));
}

TEST(Column, GatherPicksRowsAndMakesNulls) {
  Column column(DataType::kDouble, 0);
  column.AppendDouble(1.5);
  column.AppendNull();
  column.AppendDouble(3.5);
  Column picked = column.Gather({2, Column::kNullRow, 0, 1, 2});
  ASSERT_EQ(picked.size(), 5u);
  EXPECT_EQ(picked.doubles()[0], 3.5);
  EXPECT_FALSE(picked.IsValid(1));
  EXPECT_EQ(picked.doubles()[2], 1.5);
  EXPECT_FALSE(picked.IsValid(3));
  EXPECT_EQ(picked.ValueToString(4), "3.5");
}

// Gather's typed loops against the definition: append the picked rows one by
// one. Every type, with and without nulls, ids picked twice and kNullRow; the
// storage (validity present or not, value slots of nulls, string bytes) must
// be the same, not only the values.
TEST(Column, GatherEqualsAppendingThePickedRowsOneByOne) {
  std::mt19937_64 random(3);
  for (DataType type : {DataType::kBool, DataType::kInt64, DataType::kDouble, DataType::kString,
                        DataType::kTimestamp}) {
    for (int nulls : {0, 1}) {
      for (int null_rows : {0, 1}) {
        Column column(type, 0);
        size_t size = 1 + random() % 300;
        for (size_t row = 0; row < size; ++row) {
          if (nulls && random() % 5 == 0) {
            column.AppendNull();
            continue;
          }
          int64_t value = static_cast<int64_t>(random() % 1000) - 500;
          switch (type) {
            case DataType::kBool:
              column.AppendBool(value > 0);
              break;
            case DataType::kDouble:
              column.AppendDouble(value == 7 ? std::nan("") : value * 0.37);
              break;
            case DataType::kString:
              column.AppendString(
                  std::string(static_cast<size_t>(value + 500) % 9, 'a' + value % 7 + 7));
              break;
            default:
              column.AppendInt64(value * 1000003);
          }
        }
        std::vector<uint32_t> ids(random() % 400);
        for (uint32_t& id : ids) {
          id = null_rows && random() % 9 == 0 ? Column::kNullRow
                                              : static_cast<uint32_t>(random() % size);
        }
        Column expected(type, 0);
        for (uint32_t id : ids) {
          if (id == Column::kNullRow || !column.IsValid(id)) {
            expected.AppendNull();
          } else if (type == DataType::kBool) {
            expected.AppendBool(column.bools()[id] != 0);
          } else if (type == DataType::kDouble) {
            expected.AppendDouble(column.doubles()[id]);
          } else if (type == DataType::kString) {
            expected.AppendString(column.StringAt(id));
          } else {
            expected.AppendInt64(column.ints()[id]);
          }
        }
        Column picked = column.Gather(ids);
        std::string what = std::string(DataTypeName(type)) + " nulls " + std::to_string(nulls) +
                           " null rows " + std::to_string(null_rows);
        ASSERT_EQ(picked.type(), expected.type()) << what;
        ASSERT_EQ(picked.size(), expected.size()) << what;
        EXPECT_EQ(picked.validity(), expected.validity()) << what;
        EXPECT_EQ(picked.ints(), expected.ints()) << what;
        EXPECT_EQ(picked.bools(), expected.bools()) << what;
        EXPECT_EQ(picked.string_offsets(), expected.string_offsets()) << what;
        EXPECT_EQ(picked.string_chars(), expected.string_chars()) << what;
        ASSERT_EQ(picked.doubles().size(), expected.doubles().size()) << what;
        if (!picked.doubles().empty()) {  // memcmp takes no null pointers, even for 0 bytes
          EXPECT_EQ(std::memcmp(picked.doubles().data(), expected.doubles().data(),
                                picked.doubles().size() * sizeof(double)),
                    0)
              << what;
        }
      }
    }
  }
}

// AppendStrings against the definition: AppendString / AppendNull row by row.
// Batches of every size (0 included), with and without a validity array, onto
// columns that start empty or already hold strings and nulls; empty, short and
// long strings. The storage must be the same, not only the values.
TEST(Column, AppendStringsEqualsAppendingOneByOne) {
  std::mt19937_64 random(11);
  for (int trial = 0; trial < 200; ++trial) {
    Column bulk(DataType::kString, 0);
    Column expected(DataType::kString, 0);
    size_t batches = random() % 5;
    for (size_t batch = 0; batch < batches; ++batch) {
      size_t count = random() % 40;
      bool with_valid = random() % 2 == 0;
      int null_every = 1 + static_cast<int>(random() % 4);  // 1: every row null
      std::vector<std::string> texts(count);
      std::vector<std::string_view> views(count);
      std::vector<uint8_t> valid(count, 1);
      for (size_t i = 0; i < count; ++i) {
        texts[i] = std::string(random() % 30, static_cast<char>('a' + random() % 26));
        views[i] = texts[i];
        if (with_valid && random() % null_every == 0) {
          valid[i] = 0;
          views[i] = "ignored";  // a null's view is not read
        }
      }
      bulk.AppendStrings(views.data(), with_valid ? valid.data() : nullptr, count);
      for (size_t i = 0; i < count; ++i) {
        if (valid[i] != 0) {
          expected.AppendString(texts[i]);
        } else {
          expected.AppendNull();
        }
      }
      if (random() % 3 == 0) {  // rows appended one by one in between
        bulk.AppendString("between");
        expected.AppendString("between");
      }
    }
    std::string what = "trial " + std::to_string(trial);
    ASSERT_EQ(bulk.size(), expected.size()) << what;
    EXPECT_EQ(bulk.validity(), expected.validity()) << what;
    EXPECT_EQ(bulk.string_offsets(), expected.string_offsets()) << what;
    EXPECT_EQ(bulk.string_chars(), expected.string_chars()) << what;
  }
}

TEST(Column, ReserveMoreGrowsGeometricallyAndKeepsValues) {
  Column ints(DataType::kInt64, 0);
  ints.AppendInt64(5);
  ints.AppendNull();
  ints.ReserveMore(10);
  size_t capacity = ints.ints().capacity();
  EXPECT_GE(capacity, 12u);
  EXPECT_GE(ints.validity().capacity(), 12u);
  ints.ReserveMore(capacity - 2);  // fits: no regrowth
  EXPECT_EQ(ints.ints().capacity(), capacity);
  ints.ReserveMore(capacity, 0, 8);  // must grow: by 8 times at least
  EXPECT_GE(ints.ints().capacity(), capacity * 8);
  EXPECT_EQ(ints.ints(), (std::vector<int64_t>{5, 0}));
  EXPECT_EQ(ints.validity(), (std::vector<uint8_t>{1, 0}));
  Column strings(DataType::kString, 0);
  strings.AppendString("abc");
  strings.ReserveMore(3, 100);
  EXPECT_GE(strings.string_offsets().capacity(), 5u);
  EXPECT_GE(strings.string_chars().capacity(), 103u);
  EXPECT_EQ(strings.StringAt(0), "abc");
  EXPECT_TRUE(strings.validity().empty());
}

TEST(Column, NumericAtReadsEveryNumericType) {
  Column bools(DataType::kBool, 0);
  bools.AppendBool(true);
  EXPECT_EQ(bools.NumericAt(0), 1.0);
  Column ints(DataType::kInt64, 0);
  ints.AppendInt64(-7);
  EXPECT_EQ(ints.NumericAt(0), -7.0);
}

TEST(Table, RejectsDuplicateAndMisSizedColumns) {
  Table table;
  ASSERT_TRUE(table.AddColumn("a", Column(DataType::kInt64, 3)).ok());
  EXPECT_EQ(table.AddColumn("a", Column(DataType::kInt64, 3)).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(table.AddColumn("b", Column(DataType::kInt64, 2)).code(), StatusCode::kInvalidArgument);
  Result<const Column*> missing = table.GetColumn("zz");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("a int64"), std::string::npos);
}

TEST(DataType, ParsesNamesAndAliases) {
  EXPECT_EQ(*ParseDataType("varchar"), DataType::kString);
  EXPECT_EQ(*ParseDataType("bigint"), DataType::kInt64);
  EXPECT_FALSE(ParseDataType("decimal").ok());
}

}  // namespace
}  // namespace keel::table
