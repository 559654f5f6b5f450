#include "table/duckdb_bridge.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/files.h"

namespace keel::table {
namespace {

std::unique_ptr<DuckDb> OpenDb() {
  Result<std::unique_ptr<DuckDb>> db = DuckDb::Open(1);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return std::move(db).value();
}

TEST(DuckDb, QueryMapsTypes) {
  auto db = OpenDb();
  Result<Table> table = db->Query(
      "SELECT 1::TINYINT AS i8, 2::INTEGER AS i32, 3::BIGINT AS i64, 4::UINTEGER AS u32, "
      "1.5::FLOAT AS f, 2.25::DOUBLE AS d, 12.34::DECIMAL(10,2) AS dec, true AS b, 'x' AS s, "
      "TIMESTAMP '2001-01-01 00:00:01' AS ts, DATE '1970-01-02' AS day, "
      "TIMESTAMP_S '1970-01-01 00:00:02' AS ts_s, 'a much longer string than twelve' AS long_s");
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  ASSERT_EQ(table->num_rows(), 1u);
  EXPECT_EQ(table->SchemaToString(),
            "i8 int64, i32 int64, i64 int64, u32 int64, f double, d double, dec double, b bool, "
            "s string, ts timestamp, day timestamp, ts_s timestamp, long_s string");
  EXPECT_EQ(table->column(0).ints()[0], 1);
  EXPECT_EQ(table->column(5).doubles()[0], 2.25);
  EXPECT_DOUBLE_EQ(table->column(6).doubles()[0], 12.34);
  EXPECT_EQ(table->column(7).bools()[0], 1);
  EXPECT_EQ(table->column(8).StringAt(0), "x");
  EXPECT_EQ(table->column(9).ints()[0], 978307201000000LL);
  EXPECT_EQ(table->column(10).ints()[0], 86400000000LL);
  EXPECT_EQ(table->column(11).ints()[0], 2000000LL);
  EXPECT_EQ(table->column(12).StringAt(0), "a much longer string than twelve");
}

TEST(DuckDb, QueryKeepsNullsAcrossChunks) {
  auto db = OpenDb();
  Result<Table> table = db->Query(
      "SELECT CASE WHEN i % 3 = 0 THEN NULL ELSE i END AS v, "
      "CASE WHEN i % 5 = 0 THEN NULL ELSE 'k' || i END AS s FROM range(10000) t(i)");
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  ASSERT_EQ(table->num_rows(), 10000u);
  for (size_t row = 0; row < 10000; ++row) {
    EXPECT_EQ(table->column(0).IsValid(row), row % 3 != 0) << row;
    EXPECT_EQ(table->column(1).IsValid(row), row % 5 != 0) << row;
    if (row % 3 != 0) {
      EXPECT_EQ(table->column(0).ints()[row], static_cast<int64_t>(row));
    }
    if (row % 5 != 0) {
      EXPECT_EQ(table->column(1).StringAt(row), "k" + std::to_string(row));
    }
  }
}

// One DuckDB type: a SQL expression of the row number i (a BIGINT) and the
// keel value the same row must read as, appended to a column the naive way.
struct TypeCase {
  std::string sql_type;
  std::string expression;
  DataType keel_type;
  std::function<void(int64_t i, Column* out)> append_expected;
};

std::vector<TypeCase> TypeCases() {
  const int64_t kDay = 86400000000LL;
  const int64_t k2001 = 978307200000000LL;  // 2001-01-01 in µs
  // (Whole seconds and milliseconds for TIMESTAMP_S / _MS: DuckDB's cast rounds.)
  auto ints = [](std::function<int64_t(int64_t)> f) {
    return [f](int64_t i, Column* out) { out->AppendInt64(f(i)); };
  };
  auto string_of = [](int64_t i) {  // lengths 0..16: empty, inlined (<= 12) and not
    return std::string(static_cast<size_t>(i % 17), static_cast<char>('a' + i % 26));
  };
  return {
      {"BOOLEAN", "i % 3 = 1", DataType::kBool,
       [](int64_t i, Column* out) { out->AppendBool(i % 3 == 1); }},
      {"TINYINT", "(i % 251 - 125)::TINYINT", DataType::kInt64,
       ints([](int64_t i) { return i % 251 - 125; })},
      {"SMALLINT", "(i * 7 % 65000 - 32000)::SMALLINT", DataType::kInt64,
       ints([](int64_t i) { return i * 7 % 65000 - 32000; })},
      {"INTEGER", "(i * 100003 - 2000000000)::INTEGER", DataType::kInt64,
       ints([](int64_t i) { return i * 100003 - 2000000000; })},
      {"BIGINT", "i * 3000000007 - 7", DataType::kInt64,
       ints([](int64_t i) { return i * 3000000007LL - 7; })},
      {"UTINYINT", "(i % 256)::UTINYINT", DataType::kInt64,
       ints([](int64_t i) { return i % 256; })},
      {"USMALLINT", "(i * 13 % 65536)::USMALLINT", DataType::kInt64,
       ints([](int64_t i) { return i * 13 % 65536; })},
      {"UINTEGER", "(i * 1000003 % 4294967296)::UINTEGER", DataType::kInt64,
       ints([](int64_t i) { return i * 1000003 % 4294967296LL; })},
      {"UBIGINT", "(i * 4000000000007)::UBIGINT", DataType::kInt64,
       ints([](int64_t i) { return i * 4000000000007LL; })},
      {"FLOAT", "(i * 0.25 - 100)::FLOAT", DataType::kDouble,
       [](int64_t i, Column* out) {
         out->AppendDouble(static_cast<double>(static_cast<float>(i * 0.25 - 100)));
       }},
      {"DOUBLE", "i::DOUBLE / 3.0::DOUBLE", DataType::kDouble,
       [](int64_t i, Column* out) { out->AppendDouble(static_cast<double>(i) / 3.0); }},
      {"VARCHAR", "repeat(chr((97 + i % 26)::INTEGER), (i % 17)::INTEGER)", DataType::kString,
       [string_of](int64_t i, Column* out) { out->AppendString(string_of(i)); }},
      {"TIMESTAMP", "make_timestamp(978307200000000 + i * 1234567)", DataType::kTimestamp,
       ints([k2001](int64_t i) { return k2001 + i * 1234567; })},
      {"TIMESTAMP_S", "make_timestamp(978307200000000 + i * 7000000)::TIMESTAMP_S",
       DataType::kTimestamp, ints([k2001](int64_t i) { return k2001 + i * 7000000; })},
      {"TIMESTAMP_MS", "make_timestamp(978307200000000 + i * 1234000)::TIMESTAMP_MS",
       DataType::kTimestamp, ints([k2001](int64_t i) { return k2001 + i * 1234000; })},
      {"TIMESTAMP_NS", "make_timestamp(978307200000000 + i * 1234567)::TIMESTAMP_NS",
       DataType::kTimestamp, ints([k2001](int64_t i) { return k2001 + i * 1234567; })},
      {"TIMESTAMPTZ", "make_timestamp(978307200000000 + i * 1234567)::TIMESTAMPTZ",
       DataType::kTimestamp, ints([k2001](int64_t i) { return k2001 + i * 1234567; })},
      {"DATE", "DATE '2001-01-01' + (i % 5000)::INTEGER", DataType::kTimestamp,
       ints([k2001, kDay](int64_t i) { return k2001 + (i % 5000) * kDay; })},
  };
}

// Rows with a null: none, dense, rare (chunks without one), and a prefix longer
// than a chunk (a chunk all null, then chunks with a mask but no null).
struct NullPattern {
  std::string name;
  std::string sql_condition;  // empty: no nulls
  std::function<bool(int64_t)> is_null;
};

std::vector<NullPattern> NullPatterns() {
  return {{"none", "", [](int64_t) { return false; }},
          {"every third", "i % 3 = 0", [](int64_t i) { return i % 3 == 0; }},
          {"rare", "i % 1500 = 7", [](int64_t i) { return i % 1500 == 7; }},
          {"first 2100", "i < 2100", [](int64_t i) { return i < 2100; }}};
}

// The converted table against the naive one, storage and all: types, sizes,
// validity (absent when no row is null), value slots (0 / "" for nulls).
void ExpectSameColumn(const Column& actual, const Column& expected, const std::string& what) {
  ASSERT_EQ(actual.type(), expected.type()) << what;
  ASSERT_EQ(actual.size(), expected.size()) << what;
  EXPECT_EQ(actual.validity(), expected.validity()) << what;
  EXPECT_EQ(actual.ints(), expected.ints()) << what;
  EXPECT_EQ(actual.bools(), expected.bools()) << what;
  EXPECT_EQ(actual.string_offsets(), expected.string_offsets()) << what;
  EXPECT_EQ(actual.string_chars(), expected.string_chars()) << what;
  ASSERT_EQ(actual.doubles().size(), expected.doubles().size()) << what;
  if (!actual.doubles().empty()) {  // memcmp takes no null pointers, even for 0 bytes
    EXPECT_EQ(std::memcmp(actual.doubles().data(), expected.doubles().data(),
                          actual.doubles().size() * sizeof(double)),
              0)
        << what;
  }
}

TEST(DuckDb, QueryEqualsNaiveConversionForEveryTypeNullsAndChunking) {
  for (int threads : {1, 2}) {
    Result<std::unique_ptr<DuckDb>> db = DuckDb::Open(threads);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    for (int64_t rows : {0, 1, 2047, 2048, 2049, 7000}) {
      // All types and null patterns as columns of one query (chunks carry them all).
      std::string select;
      std::vector<Column> expected;
      std::vector<std::string> names;
      for (const TypeCase& type : TypeCases()) {
        for (const NullPattern& nulls : NullPatterns()) {
          std::string name = type.sql_type + " " + nulls.name;
          std::string value = "(" + type.expression + ")";
          if (!nulls.sql_condition.empty()) {
            value = "CASE WHEN " + nulls.sql_condition + " THEN NULL ELSE " + value + " END";
          }
          select += (select.empty() ? "" : ", ") + value + " AS " + QuoteSqlIdentifier(name);
          names.push_back(name);
          Column column(type.keel_type, 0);
          for (int64_t i = 0; i < rows; ++i) {
            if (nulls.is_null(i)) {
              column.AppendNull();
            } else {
              type.append_expected(i, &column);
            }
          }
          expected.push_back(std::move(column));
        }
      }
      Result<Table> table = (*db)->Query("SELECT " + select + " FROM range(" +
                                         std::to_string(rows) + ") t(i) ORDER BY i");
      ASSERT_TRUE(table.ok()) << table.status().ToString();
      ASSERT_EQ(table->num_columns(), expected.size());
      EXPECT_EQ(table->num_rows(), static_cast<size_t>(rows));
      for (size_t column = 0; column < expected.size(); ++column) {
        EXPECT_EQ(table->fields()[column].name, names[column]);
        ExpectSameColumn(table->column(column), expected[column],
                         names[column] + ", " + std::to_string(rows) + " rows, " +
                             std::to_string(threads) + " threads");
      }
    }
  }
}

TEST(DuckDb, QueryReadsLongStringsAndNullsOfAParquetFileAcrossChunks) {
  auto db = OpenDb();
  std::string dir = testing::TempDir() + "/keel_bridge_strings";
  std::filesystem::create_directories(dir);
  std::string path = dir + "/strings.parquet";
  // Long strings (some repeated, so dictionary-encoded), short ones, empty ones and nulls.
  ASSERT_TRUE(db->Execute("COPY (SELECT i, CASE WHEN i % 11 = 0 THEN NULL WHEN i % 5 = 0 THEN '' "
                          "ELSE repeat('long-string-', (1 + i % 4)::INTEGER) || (i % 97) END AS s "
                          "FROM range(9000) t(i)) TO " +
                          QuoteSqlString(path) + " (FORMAT PARQUET)")
                  .ok());
  Result<Table> table =
      db->Query("SELECT * FROM read_parquet(" + QuoteSqlString(path) + ") ORDER BY i");
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  Column expected(DataType::kString, 0);
  for (int64_t i = 0; i < 9000; ++i) {
    if (i % 11 == 0) {
      expected.AppendNull();
    } else if (i % 5 == 0) {
      expected.AppendString("");
    } else {
      std::string text;
      for (int64_t k = 0; k < 1 + i % 4; ++k) text += "long-string-";
      expected.AppendString(text + std::to_string(i % 97));
    }
  }
  ExpectSameColumn(table->column(1), expected, "parquet strings");
}

TEST(DuckDb, EmptyResultsKeepTheirTypes) {
  auto db = OpenDb();
  Result<Table> table = db->Query(
      "SELECT 1::BIGINT AS a, 'x' AS s, 1.5::DOUBLE AS d, true AS b, TIMESTAMP '2001-01-01' AS "
      "ts WHERE false");
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ(table->num_rows(), 0u);
  EXPECT_EQ(table->SchemaToString(), "a int64, s string, d double, b bool, ts timestamp");
  for (size_t column = 0; column < table->num_columns(); ++column) {
    EXPECT_EQ(table->column(column).size(), 0u);
    EXPECT_TRUE(table->column(column).validity().empty());
  }
  EXPECT_EQ(table->column(1).string_offsets(), std::vector<uint64_t>{0});
}

TEST(DuckDb, UbigintBeyondInt64IsAnErrorButItsNullIsNot) {
  auto db = OpenDb();
  Result<Table> big = db->Query(
      "SELECT CASE WHEN i = 3000 THEN 18446744073709551615::UBIGINT ELSE i::UBIGINT END AS u "
      "FROM range(4000) t(i)");
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("'u'"), std::string::npos) << big.status().ToString();
  EXPECT_NE(big.status().message().find("18446744073709551615"), std::string::npos);
  Result<Table> null = db->Query(
      "SELECT CASE WHEN i = 3000 THEN NULL ELSE i::UBIGINT END AS u FROM range(4000) t(i)");
  ASSERT_TRUE(null.ok()) << null.status().ToString();
  EXPECT_FALSE(null->column(0).IsValid(3000));
  EXPECT_EQ(null->column(0).ints()[3000], 0);
  EXPECT_EQ(null->column(0).ints()[3999], 3999);
}

TEST(DuckDb, BadSqlAndMissingFilesAreErrors) {
  auto db = OpenDb();
  Result<Table> bad = db->Query("SELEC 1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  Result<Table> missing = db->Query("SELECT * FROM read_parquet('/nonexistent/x.parquet')");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/x.parquet"), std::string::npos);
  Result<Table> unsupported = db->Query("SELECT [1, 2] AS list_column");
  ASSERT_FALSE(unsupported.ok());
  EXPECT_NE(unsupported.status().message().find("list_column"), std::string::npos);
}

TEST(DuckDb, ParquetRoundTripIsExactAndAtomic) {
  auto db = OpenDb();
  Result<Table> table = db->Query(
      "SELECT i, i * 0.1 AS d, i % 2 = 0 AS b, CASE WHEN i % 7 = 0 THEN NULL ELSE 'v' || i END "
      "AS s, TIMESTAMP '2001-01-01' + INTERVAL (i) MINUTE AS ts FROM range(5000) t(i)");
  ASSERT_TRUE(table.ok());
  std::string dir = testing::TempDir() + "/keel_bridge_test";
  std::filesystem::create_directories(dir);
  std::string path = dir + "/round.parquet";
  ASSERT_TRUE(db->WriteParquet(*table, path, {{"keel", "{\"x\": 1}"}}).ok());
  Result<Table> back = db->Query("SELECT * FROM read_parquet(" + QuoteSqlString(path) + ")");
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->num_rows(), table->num_rows());
  for (size_t column = 0; column < table->num_columns(); ++column) {
    for (size_t row = 0; row < table->num_rows(); ++row) {
      ASSERT_EQ(back->column(column).ValueToString(row), table->column(column).ValueToString(row));
    }
  }
  Result<Table> metadata = db->Query("SELECT decode(value) AS v FROM parquet_kv_metadata(" +
                                     QuoteSqlString(path) + ") WHERE decode(key) = 'keel'");
  ASSERT_TRUE(metadata.ok()) << metadata.status().ToString();
  ASSERT_EQ(metadata->num_rows(), 1u);
  EXPECT_EQ(metadata->column(0).StringAt(0), "{\"x\": 1}");
  // Nothing but the final file is left in the folder.
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1u);
  // A failed write leaves no file behind.
  std::string bad_path = dir + "/no_such_dir/out.parquet";
  EXPECT_FALSE(db->WriteParquet(*table, bad_path).ok());
  EXPECT_FALSE(FileExists(bad_path));
}

TEST(Quote, EscapesQuotes) {
  EXPECT_EQ(QuoteSqlString("it's"), "'it''s'");
  EXPECT_EQ(QuoteSqlIdentifier("a\"b"), "\"a\"\"b\"");
}

}  // namespace
}  // namespace keel::table
