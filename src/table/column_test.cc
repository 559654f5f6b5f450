#include "table/column.h"

#include <gtest/gtest.h>

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
