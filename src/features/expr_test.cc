#include "features/expr.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/time.h"

namespace keel::features {
namespace {

using table::Column;
using table::DataType;
using table::Field;
using table::Table;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr auto kNull = std::nullopt;

Column Ints(const std::vector<std::optional<int64_t>>& values, DataType type = DataType::kInt64) {
  Column column(type, 0);
  for (const auto& value : values) value ? column.AppendInt64(*value) : column.AppendNull();
  return column;
}
Column Doubles(const std::vector<std::optional<double>>& values) {
  Column column(DataType::kDouble, 0);
  for (const auto& value : values) value ? column.AppendDouble(*value) : column.AppendNull();
  return column;
}
Column Bools(const std::vector<std::optional<bool>>& values) {
  Column column(DataType::kBool, 0);
  for (const auto& value : values) value ? column.AppendBool(*value) : column.AppendNull();
  return column;
}
Column Strings(const std::vector<std::optional<std::string>>& values) {
  Column column(DataType::kString, 0);
  for (const auto& value : values) value ? column.AppendString(*value) : column.AppendNull();
  return column;
}
Timestamp Ts(const char* text) {
  Result<Timestamp> ts = ParseTimestamp(text);
  EXPECT_TRUE(ts.ok()) << text;
  return ts.ok() ? *ts : 0;
}

Table MakeTable(std::vector<std::pair<std::string, Column>> columns) {
  Table table;
  for (auto& [name, column] : columns) EXPECT_TRUE(table.AddColumn(name, std::move(column)).ok());
  return table;
}

// Five rows exercising nulls, zeros and negatives in every type.
Table SampleTable() {
  return MakeTable({
      {"i", Ints({1, 2, kNull, -7, 0})},
      {"j", Ints({2, 0, 5, 3, kNull})},
      {"d", Doubles({0.5, -1.5, kNull, 2.0, 0.0})},
      {"b", Bools({true, false, kNull, true, false})},
      {"s", Strings({"a", "b", kNull, "it's", ""})},
      {"ts", Ints({Ts("2024-03-10 13:45:00"), Ts("1969-12-31 23:30:00"), kNull,
                   Ts("1970-01-01 00:00:01.5"), Ts("2000-01-01 00:00:00")},
                  DataType::kTimestamp)},
  });
}

Result<Column> EvaluateText(std::string_view text, const Table& table) {
  ASSIGN_OR_RETURN(Expression expression, Expression::Parse(text));
  RETURN_IF_ERROR(expression.Bind(table.fields()));
  return expression.Evaluate(table);
}

// The rows of `text` evaluated over `table`, as strings ("null" for nulls).
std::vector<std::string> Rows(std::string_view text, const Table& table) {
  Result<Column> column = EvaluateText(text, table);
  if (!column.ok()) {
    ADD_FAILURE() << text << ": " << column.status().ToString();
    return {};
  }
  std::vector<std::string> rows;
  for (size_t row = 0; row < column->size(); ++row) rows.push_back(column->ValueToString(row));
  return rows;
}
using Strs = std::vector<std::string>;

DataType TypeOf(std::string_view text, const Table& table) {
  Result<Expression> expression = Expression::Parse(text);
  EXPECT_TRUE(expression.ok()) << expression.status().ToString();
  Status status = expression->Bind(table.fields());
  EXPECT_TRUE(status.ok()) << text << ": " << status.ToString();
  return expression->result_type();
}

std::string Canonical(std::string_view text) {
  Result<Expression> expression = Expression::Parse(text);
  if (!expression.ok()) return "error: " + expression.status().ToString();
  return expression->ToCanonicalString();
}

std::string ParseError(std::string_view text) {
  Result<Expression> expression = Expression::Parse(text);
  if (expression.ok()) return "parsed as " + expression->ToCanonicalString();
  EXPECT_EQ(expression.status().code(), StatusCode::kInvalidArgument);
  return expression.status().message();
}

std::string BindError(std::string_view text, const Table& table) {
  Result<Expression> expression = Expression::Parse(text);
  if (!expression.ok()) return "parse error: " + expression.status().ToString();
  Status status = expression->Bind(table.fields());
  if (status.ok()) return "bound";
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  return status.message();
}

TEST(Expression, PrecedenceAndAssociativity) {
  EXPECT_EQ(Canonical("1 + 2 * 3"), "(1 + (2 * 3))");
  EXPECT_EQ(Canonical("(1 + 2) * 3"), "((1 + 2) * 3)");
  EXPECT_EQ(Canonical("a - b - c"), "((a - b) - c)");
  EXPECT_EQ(Canonical("a / b * c % d"), "(((a / b) * c) % d)");
  EXPECT_EQ(Canonical("a or b and c"), "(a or (b and c))");
  EXPECT_EQ(Canonical("a and b or c and d"), "((a and b) or (c and d))");
  EXPECT_EQ(Canonical("not a = b"), "(not (a = b))");
  EXPECT_EQ(Canonical("not not a"), "(not (not a))");
  EXPECT_EQ(Canonical("a + 1 > b * 2 and c"), "(((a + 1) > (b * 2)) and c)");
  EXPECT_EQ(Canonical("a + 1 is not null"), "((a + 1) is not null)");
  EXPECT_EQ(Canonical("not a in (1, 2)"), "(not (a in (1, 2)))");
}

TEST(Expression, UnaryMinus) {
  EXPECT_EQ(Canonical("-a * b"), "((-a) * b)");
  EXPECT_EQ(Canonical("- - a"), "(-(-a))");
  EXPECT_EQ(Canonical("a - -b"), "(a - (-b))");
  EXPECT_EQ(Canonical("2--3"), "(2 - -3)");
  EXPECT_EQ(Canonical("-5"), "-5");
  EXPECT_EQ(Canonical("- 5"), "-5");
  EXPECT_EQ(Canonical("-(5)"), "-5");
  EXPECT_EQ(Canonical("--5"), "5");
  EXPECT_EQ(Canonical("-2.5 * x"), "(-2.5 * x)");
  EXPECT_EQ(Canonical("-9223372036854775808"), "-9223372036854775808");
  Table table = MakeTable({{"x", Ints({1})}});
  EXPECT_EQ(TypeOf("-9223372036854775808", table), DataType::kInt64);
  EXPECT_EQ(Rows("-(-9223372036854775808)", table), Strs({"null"}));  // overflow
  EXPECT_EQ(Rows("-x * 3", table), Strs({"-3"}));
}

TEST(Expression, QuotedIdentifiersAndStringEscapes) {
  EXPECT_EQ(Canonical("\"my col\" + 1"), "(\"my col\" + 1)");
  EXPECT_EQ(Canonical("\"delay\" > 1"), "(delay > 1)");
  EXPECT_EQ(Canonical("\"and\" or \"NULL\""), "(\"and\" or \"NULL\")");
  EXPECT_EQ(Canonical("\"say \"\"hi\"\"\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(Canonical("s = 'it''s'"), "(s = 'it''s')");
  Table table = MakeTable({{"my col", Ints({1, 2})}, {"s", Strings({"it's", "its"})}});
  EXPECT_EQ(Rows("\"my col\" * 10", table), Strs({"10", "20"}));
  EXPECT_EQ(Rows("s = 'it''s'", table), Strs({"true", "false"}));
  EXPECT_EQ(Rows("'a''b'", table), Strs({"a'b", "a'b"}));
  EXPECT_EQ(Rows("''", table), Strs({"", ""}));
}

TEST(Expression, CanonicalFormOfEquivalentSpellings) {
  EXPECT_EQ(Canonical("  Delay>15 AND x is not NULL "), "((Delay > 15) and (x is not null))");
  EXPECT_EQ(Canonical("a <> b"), Canonical("a != b"));
  EXPECT_EQ(Canonical("a == b"), Canonical("a=b"));
  EXPECT_EQ(Canonical("COALESCE(x,0)"), "coalesce(x, 0)");
  EXPECT_EQ(Canonical("x NOT IN (1,'a' , NULL, TRUE)"), "(x not in (1, 'a', null, true))");
  EXPECT_EQ(Canonical("x IS NULL"), "(x is null)");
  EXPECT_EQ(Canonical("((x))"), "x");
  EXPECT_EQ(Canonical("1e1"), "10.0");
  EXPECT_EQ(Canonical("1e1"), Canonical("10.0"));
  EXPECT_EQ(Canonical("0.1"), "0.1");
  EXPECT_EQ(Canonical(".5"), "0.5");
  EXPECT_EQ(Canonical("1E300"), "1e+300");
  EXPECT_NE(Canonical("15"), Canonical("15.0"));          // int64 vs double
  EXPECT_NE(Canonical("X"), Canonical("x"));              // column names are case-sensitive
  EXPECT_EQ(Canonical("99999999999999999999"), "1e+20");  // too big for int64: a double
  for (const char* text : {"((Delay > 15) and (x is not null))", "(-x)", "(a - -3)", "-0.0",
                           "(x not in (-1, 2.5, 'a''b', null))", "if((a > 1), 'x', \"y z\")",
                           "-9223372036854775808", "1e+300", "(1.5e-07 * \"in\")"}) {
    EXPECT_EQ(Canonical(text), text) << "canonical form must be a fixed point";
  }
}

TEST(Expression, ParseErrorsGivePositionAndExpectation) {
  EXPECT_EQ(ParseError("(a + 1"), "at 7: expected ')', found end of input");
  EXPECT_EQ(ParseError("a +"), "at 4: expected an expression, found end of input");
  EXPECT_EQ(ParseError("a + * b"), "at 5: expected an expression, found '*'");
  EXPECT_EQ(ParseError("a + and"), "at 5: expected an expression, found 'and'");
  EXPECT_EQ(ParseError(""), "at 1: expected an expression, found end of input");
  EXPECT_EQ(ParseError("a is 5"), "at 6: expected 'null', found '5'");
  EXPECT_EQ(ParseError("a < b < c"), "at 7: expected an operator or end of input, found '<'");
  EXPECT_EQ(ParseError("f(a b)"), "at 5: expected ',' or ')', found 'b'");
  EXPECT_EQ(ParseError("x in 1"), "at 6: expected '(', found '1'");
  EXPECT_EQ(ParseError("x in (1, )"),
            "at 10: expected a literal (number, 'string', true, false or null), found ')'");
  EXPECT_EQ(ParseError("x in (y)"),
            "at 7: expected a literal (number, 'string', true, false or null), found 'y'");
  EXPECT_EQ(ParseError("x not 5"), "at 7: expected 'in', found '5'");
  EXPECT_EQ(ParseError("'abc"), "at 1: unterminated string literal");
  EXPECT_EQ(ParseError("x + \"abc"), "at 5: unterminated quoted identifier");
  EXPECT_EQ(ParseError("a $ b"), "at 3: unexpected character '$'");
  EXPECT_EQ(ParseError("1e"), "at 3: expected digits in the exponent of a number");
  EXPECT_EQ(ParseError("1e999"), "at 1: number '1e999' is out of range");
  EXPECT_EQ(ParseError("'é' + )"), "at 7: expected an expression, found ')'");  // characters
  std::string deep = std::string(300, '(') + "1" + std::string(300, ')');
  EXPECT_NE(ParseError(deep).find("nested too deeply"), std::string::npos);
  std::string long_chain = "x";
  for (int i = 0; i < 300; ++i) long_chain += " + x";
  EXPECT_NE(ParseError(long_chain).find("nested too deeply"), std::string::npos);
}

TEST(Expression, UnknownColumnListsAvailableColumns) {
  Table table = MakeTable({{"delay", Ints({1})}, {"distance", Doubles({2})}});
  EXPECT_EQ(BindError("dealy > 1", table),
            "unknown column 'dealy' (columns: delay int64, distance double)");
  EXPECT_EQ(BindError("Delay > 1", table),
            "unknown column 'Delay' (columns: delay int64, distance double); did you mean "
            "'delay'? column names are case-sensitive");
}

TEST(Expression, UnknownFunctionAndArityErrors) {
  Table table = SampleTable();
  EXPECT_EQ(BindError("foo(i)", table),
            "unknown function 'foo' (functions: abs, ceil, coalesce, day_of_week, "
            "epoch_seconds, floor, greatest, hour, if, least, ln, log10, round, sqrt)");
  EXPECT_EQ(BindError("ABS(i, j)", table), "function 'abs' expects 1 argument, got 2");
  EXPECT_EQ(BindError("if(b, 1)", table), "function 'if' expects 3 arguments, got 2");
  EXPECT_EQ(BindError("coalesce()", table),
            "function 'coalesce' expects at least 1 argument, got 0");
}

TEST(Expression, TypeErrorsAtBindNameOperatorAndTypes) {
  Table table = SampleTable();
  EXPECT_EQ(BindError("s + 1", table), "operator '+' cannot be applied to string and int64");
  EXPECT_EQ(BindError("ts + 1", table), "operator '+' cannot be applied to timestamp and int64");
  EXPECT_EQ(BindError("ts - ts", table),
            "operator '-' cannot be applied to timestamp and timestamp");
  EXPECT_EQ(BindError("s = 1", table), "cannot compare string with int64 (operator '=')");
  EXPECT_EQ(BindError("ts >= 1.5", table), "cannot compare timestamp with double (operator '>=')");
  EXPECT_EQ(BindError("-s", table), "operator '-' expects a numeric operand, got string");
  EXPECT_EQ(BindError("-ts", table), "operator '-' expects a numeric operand, got timestamp");
  EXPECT_EQ(BindError("not i", table), "operator 'not' expects a bool operand, got int64");
  EXPECT_EQ(BindError("i and b", table), "operator 'and' expects a bool operand, got int64");
  EXPECT_EQ(BindError("b or s", table), "operator 'or' expects a bool operand, got string");
  EXPECT_EQ(BindError("hour(i)", table), "function 'hour' expects a timestamp operand, got int64");
  EXPECT_EQ(BindError("sqrt(s)", table), "function 'sqrt' expects a numeric operand, got string");
  EXPECT_EQ(BindError("abs(ts)", table), "function 'abs' expects a numeric operand, got timestamp");
  EXPECT_EQ(BindError("coalesce(s, 1)", table),
            "function 'coalesce' cannot combine string and int64 arguments");
  EXPECT_EQ(BindError("least(ts, i)", table),
            "function 'least' cannot combine timestamp and int64 arguments");
  EXPECT_EQ(BindError("if(i, 1, 2)", table), "function 'if' expects a bool condition, got int64");
  EXPECT_EQ(BindError("if(b, 1, 'x')", table),
            "function 'if' cannot combine int64 and string arguments");
  EXPECT_EQ(BindError("s in (1, 2)", table),
            "operator 'in' cannot compare string with int64 values");
  EXPECT_EQ(BindError("ts in (1)", table),
            "operator 'in' cannot compare timestamp with int64 values");
  EXPECT_EQ(BindError("i in ('a')", table),
            "operator 'in' cannot compare int64 with string values");
}

TEST(Expression, ResultTypes) {
  Table table = SampleTable();
  EXPECT_EQ(TypeOf("i + j", table), DataType::kInt64);
  EXPECT_EQ(TypeOf("i % j", table), DataType::kInt64);
  EXPECT_EQ(TypeOf("i / j", table), DataType::kDouble);
  EXPECT_EQ(TypeOf("i + d", table), DataType::kDouble);
  EXPECT_EQ(TypeOf("b + b", table), DataType::kInt64);
  EXPECT_EQ(TypeOf("-b", table), DataType::kInt64);
  EXPECT_EQ(TypeOf("i > 1", table), DataType::kBool);
  EXPECT_EQ(TypeOf("i in (1)", table), DataType::kBool);
  EXPECT_EQ(TypeOf("s is null", table), DataType::kBool);
  EXPECT_EQ(TypeOf("ts", table), DataType::kTimestamp);
  EXPECT_EQ(TypeOf("coalesce(ts, ts)", table), DataType::kTimestamp);
  EXPECT_EQ(TypeOf("coalesce(i, d)", table), DataType::kDouble);
  EXPECT_EQ(TypeOf("coalesce(b, i)", table), DataType::kInt64);
  EXPECT_EQ(TypeOf("coalesce(b, null)", table), DataType::kBool);
  EXPECT_EQ(TypeOf("if(b, s, null)", table), DataType::kString);
  EXPECT_EQ(TypeOf("hour(ts)", table), DataType::kInt64);
  EXPECT_EQ(TypeOf("epoch_seconds(ts)", table), DataType::kDouble);
  EXPECT_EQ(TypeOf("floor(i)", table), DataType::kInt64);
  EXPECT_EQ(TypeOf("round(d)", table), DataType::kDouble);
  EXPECT_EQ(TypeOf("sqrt(i)", table), DataType::kDouble);
  EXPECT_EQ(TypeOf("null", table), DataType::kInt64);
  EXPECT_EQ(TypeOf("null + 1.5", table), DataType::kDouble);
  EXPECT_EQ(TypeOf("null and b", table), DataType::kBool);
}

TEST(Expression, NullPropagatesThroughArithmetic) {
  Table table = SampleTable();
  EXPECT_EQ(Rows("i + j", table), Strs({"3", "2", "null", "-4", "null"}));
  EXPECT_EQ(Rows("i - j", table), Strs({"-1", "2", "null", "-10", "null"}));
  EXPECT_EQ(Rows("i * j", table), Strs({"2", "0", "null", "-21", "null"}));
  EXPECT_EQ(Rows("i / j", table), Strs({"0.5", "null", "null", "-2.3333333333333335", "null"}));
  EXPECT_EQ(Rows("i % j", table), Strs({"1", "null", "null", "-1", "null"}));
  EXPECT_EQ(Rows("i + d", table), Strs({"1.5", "0.5", "null", "-5", "0"}));
  EXPECT_EQ(Rows("-i", table), Strs({"-1", "-2", "null", "7", "0"}));
  EXPECT_EQ(Rows("-d", table), Strs({"-0.5", "1.5", "null", "-2", "-0"}));
  EXPECT_EQ(Rows("i + null", table), Strs({"null", "null", "null", "null", "null"}));
  EXPECT_EQ(Rows("b + b", table), Strs({"2", "0", "null", "2", "0"}));
  EXPECT_EQ(Rows("b * 1.5", table), Strs({"1.5", "0", "null", "1.5", "0"}));
  EXPECT_EQ(Rows("7 / 2 + i * 0", table), Strs({"3.5", "3.5", "null", "3.5", "3.5"}));
  EXPECT_EQ(Rows("d % 1", table), Strs({"0.5", "-0.5", "null", "0", "0"}));
  EXPECT_EQ(Rows("j - i + d", table), Strs({"1.5", "-3.5", "null", "12", "null"}));
}

TEST(Expression, NullPropagatesThroughComparisons) {
  Table table = SampleTable();
  EXPECT_EQ(Rows("i > 0", table), Strs({"true", "true", "null", "false", "false"}));
  EXPECT_EQ(Rows("i = j", table), Strs({"false", "false", "null", "false", "null"}));
  EXPECT_EQ(Rows("i != 1", table), Strs({"false", "true", "null", "true", "true"}));
  EXPECT_EQ(Rows("i <= d", table), Strs({"false", "false", "null", "true", "true"}));
  EXPECT_EQ(Rows("i >= -7", table), Strs({"true", "true", "null", "true", "true"}));
  EXPECT_EQ(Rows("i < 1.0", table), Strs({"false", "false", "null", "true", "true"}));
  EXPECT_EQ(Rows("b = true", table), Strs({"true", "false", "null", "true", "false"}));
  EXPECT_EQ(Rows("b < i", table), Strs({"false", "true", "null", "false", "false"}));
  EXPECT_EQ(Rows("s < 'b'", table), Strs({"true", "false", "null", "false", "true"}));
  EXPECT_EQ(Rows("s <> 'a'", table), Strs({"false", "true", "null", "true", "true"}));
  EXPECT_EQ(Rows("'B' < 'a' and 1 = 1.0", table), Strs(5, "true"));  // bytewise
  EXPECT_EQ(Rows("ts > coalesce(ts, ts)", table),
            Strs({"false", "false", "null", "false", "false"}));
  EXPECT_EQ(Rows("i = null", table), Strs(5, "null"));
}

TEST(Expression, ThreeValuedLogicTruthTables) {
  // p and q run over {true, false, null} x {true, false, null}.
  Table table =
      MakeTable({{"p", Bools({true, true, true, false, false, false, kNull, kNull, kNull})},
                 {"q", Bools({true, false, kNull, true, false, kNull, true, false, kNull})}});
  EXPECT_EQ(Rows("p and q", table),
            Strs({"true", "false", "null", "false", "false", "false", "null", "false", "null"}));
  EXPECT_EQ(Rows("p or q", table),
            Strs({"true", "true", "true", "true", "false", "null", "true", "null", "null"}));
  EXPECT_EQ(Rows("not p", table),
            Strs({"false", "false", "false", "true", "true", "true", "null", "null", "null"}));
  EXPECT_EQ(Rows("p is null", table),
            Strs({"false", "false", "false", "false", "false", "false", "true", "true", "true"}));
  EXPECT_EQ(Rows("q is not null", table),
            Strs({"true", "true", "false", "true", "true", "false", "true", "true", "false"}));
  EXPECT_EQ(Rows("p and null", table),
            Strs({"null", "null", "null", "false", "false", "false", "null", "null", "null"}));
  EXPECT_EQ(Rows("true or null", table), Strs(9, "true"));
  EXPECT_EQ(Rows("false and null", table), Strs(9, "false"));
  EXPECT_EQ(Rows("not null", table), Strs(9, "null"));
  EXPECT_EQ(Rows("null is null", table), Strs(9, "true"));
}

TEST(Expression, DivisionAndModuloByZeroAreNull) {
  Table table = MakeTable({{"x", Ints({7, -7, 0, kMin})}, {"y", Doubles({7.5, -7.5, 0.0, 1.0})}});
  EXPECT_EQ(Rows("x / 0", table), Strs(4, "null"));
  EXPECT_EQ(Rows("x % 0", table), Strs(4, "null"));
  EXPECT_EQ(Rows("y / 0.0", table), Strs(4, "null"));
  EXPECT_EQ(Rows("y % 0", table), Strs(4, "null"));
  EXPECT_EQ(Rows("y / -0.0", table), Strs(4, "null"));
  EXPECT_EQ(Rows("x % 3", table), Strs({"1", "-1", "0", "-2"}));  // sign of the dividend
  EXPECT_EQ(Rows("x % -1", table), Strs(4, "0"));                 // no trap on INT64_MIN % -1
  EXPECT_EQ(Rows("y % 2", table), Strs({"1.5", "-1.5", "0", "1"}));
  EXPECT_EQ(Rows("x / 2", table), Strs({"3.5", "-3.5", "0", "-4.6116860184273879e+18"}));
}

TEST(Expression, IntegerOverflowIsNull) {
  Table table = MakeTable({{"a", Ints({kMax, kMin, 5})}});
  EXPECT_EQ(Rows("a + 1", table), Strs({"null", std::to_string(kMin + 1), "6"}));
  EXPECT_EQ(Rows("a - 1", table), Strs({std::to_string(kMax - 1), "null", "4"}));
  EXPECT_EQ(Rows("a * 2", table), Strs({"null", "null", "10"}));
  EXPECT_EQ(Rows("a * -1", table), Strs({std::to_string(-kMax), "null", "-5"}));
  EXPECT_EQ(Rows("-a", table), Strs({std::to_string(-kMax), "null", "-5"}));
  EXPECT_EQ(Rows("abs(a)", table), Strs({std::to_string(kMax), "null", "5"}));
  EXPECT_EQ(Rows("9223372036854775807 + 1", table), Strs(3, "null"));
  EXPECT_EQ(Rows("a + 0.0 > 0", table), Strs({"true", "false", "true"}));  // doubles don't overflow
}

TEST(Expression, NonFiniteResultsAreNull) {
  Table table = MakeTable({{"d", Doubles({10.0, 0.5, 0.0, -1.0, 100.0, kNull})}});
  EXPECT_EQ(Rows("d * 1e308", table),
            Strs({"null", "5.0000000000000001e+307", "0", "-1e+308", "null", "null"}));
  EXPECT_EQ(Rows("ln(d)", table), Strs({"2.3025850929940459", "-0.69314718055994529", "null",
                                        "null", "4.6051701859880918", "null"}));
  EXPECT_EQ(Rows("log10(d)", table),
            Strs({"1", "-0.3010299956639812", "null", "null", "2", "null"}));
  EXPECT_EQ(Rows("sqrt(d)", table),
            Strs({"3.1622776601683795", "0.70710678118654757", "0", "null", "10", "null"}));
  EXPECT_EQ(Rows("1e308 + 1e308", table), Strs(6, "null"));
}

TEST(Expression, CoalesceLeastGreatest) {
  Table table = SampleTable();
  EXPECT_EQ(Rows("coalesce(i, j)", table), Strs({"1", "2", "5", "-7", "0"}));
  EXPECT_EQ(Rows("coalesce(j, 99)", table), Strs({"2", "0", "5", "3", "99"}));
  EXPECT_EQ(Rows("coalesce(i, d)", table), Strs({"1", "2", "null", "-7", "0"}));
  EXPECT_EQ(Rows("coalesce(null, i, 1.5)", table), Strs({"1", "2", "1.5", "-7", "0"}));
  EXPECT_EQ(Rows("coalesce(s, 'none')", table), Strs({"a", "b", "none", "it's", ""}));
  EXPECT_EQ(Rows("coalesce(null, null)", table), Strs(5, "null"));
  EXPECT_EQ(Rows("least(i, j)", table), Strs({"1", "0", "5", "-7", "0"}));
  EXPECT_EQ(Rows("greatest(i, j)", table), Strs({"2", "2", "5", "3", "0"}));
  EXPECT_EQ(Rows("least(i, d, j)", table), Strs({"0.5", "-1.5", "5", "-7", "0"}));
  EXPECT_EQ(Rows("greatest(i, null, d)", table), Strs({"1", "2", "null", "2", "0"}));
  EXPECT_EQ(Rows("least(s, 'b')", table), Strs({"a", "b", "b", "b", ""}));
  EXPECT_EQ(Rows("greatest(s, 'b')", table), Strs({"b", "b", "b", "it's", "b"}));
  EXPECT_EQ(Rows("least(null, null)", table), Strs(5, "null"));
  EXPECT_EQ(Rows("least(b, true)", table), Strs({"true", "false", "true", "true", "false"}));
}

TEST(Expression, IfTreatsNullConditionAsFalse) {
  Table table = SampleTable();
  EXPECT_EQ(Rows("if(b, i, j)", table), Strs({"1", "0", "5", "-7", "null"}));
  EXPECT_EQ(Rows("IF(b, s, 'x')", table), Strs({"a", "x", "x", "it's", "x"}));
  EXPECT_EQ(Rows("if(i > 0, d, i)", table), Strs({"0.5", "-1.5", "null", "-7", "0"}));
  EXPECT_EQ(Rows("if(null, 1, 2)", table), Strs(5, "2"));
  EXPECT_EQ(Rows("if(b, null, s)", table), Strs({"null", "b", "null", "null", ""}));
}

TEST(Expression, NumericFunctions) {
  Table table =
      MakeTable({{"d", Doubles({2.5, -2.5, -1.5, 0.4, kNull})}, {"i", Ints({-3, 3, kNull, 0, 1})}});
  EXPECT_EQ(Rows("abs(d)", table), Strs({"2.5", "2.5", "1.5", "0.40000000000000002", "null"}));
  EXPECT_EQ(Rows("abs(i)", table), Strs({"3", "3", "null", "0", "1"}));
  EXPECT_EQ(Rows("round(d)", table), Strs({"3", "-3", "-2", "0", "null"}));  // half away from 0
  EXPECT_EQ(Rows("floor(d)", table), Strs({"2", "-3", "-2", "0", "null"}));
  EXPECT_EQ(Rows("ceil(d)", table), Strs({"3", "-2", "-1", "1", "null"}));
  EXPECT_EQ(Rows("floor(i) + ceil(i) + round(i)", table), Strs({"-9", "9", "null", "0", "3"}));
  EXPECT_EQ(Rows("abs(null)", table), Strs(5, "null"));
}

TEST(Expression, TimestampFunctions) {
  Table table = SampleTable();
  EXPECT_EQ(Rows("hour(ts)", table), Strs({"13", "23", "null", "0", "0"}));
  EXPECT_EQ(Rows("day_of_week(ts)", table), Strs({"0", "3", "null", "4", "6"}));
  EXPECT_EQ(Rows("epoch_seconds(ts)", table),
            Strs({"1710078300", "-1800", "null", "1.5", "946684800"}));
  EXPECT_EQ(Rows("coalesce(ts, ts)", table),
            Strs({"2024-03-10 13:45:00", "1969-12-31 23:30:00", "null",
                  "1970-01-01 00:00:01.500000", "2000-01-01 00:00:00"}));
}

TEST(Expression, InListUsesThreeValuedLogic) {
  Table table = SampleTable();
  EXPECT_EQ(Rows("i in (1, -7)", table), Strs({"true", "false", "null", "true", "false"}));
  EXPECT_EQ(Rows("i not in (1, -7)", table), Strs({"false", "true", "null", "false", "true"}));
  EXPECT_EQ(Rows("i in (1, null)", table), Strs({"true", "null", "null", "null", "null"}));
  EXPECT_EQ(Rows("i not in (1, null)", table), Strs({"false", "null", "null", "null", "null"}));
  EXPECT_EQ(Rows("i in (2.0, -1)", table), Strs({"false", "true", "null", "false", "false"}));
  EXPECT_EQ(Rows("d in (2, 0.5, -0.0)", table), Strs({"true", "false", "null", "true", "true"}));
  EXPECT_EQ(Rows("s in ('a', 'it''s')", table), Strs({"true", "false", "null", "true", "false"}));
  EXPECT_EQ(Rows("b in (false)", table), Strs({"false", "true", "null", "false", "true"}));
  EXPECT_EQ(Rows("null in (1, 2)", table), Strs(5, "null"));
}

TEST(Expression, ConstantExpressionsBroadcast) {
  Table table = SampleTable();
  EXPECT_EQ(Rows("1 + 2", table), Strs(5, "3"));
  EXPECT_EQ(Rows("'x'", table), Strs(5, "x"));
  EXPECT_EQ(Rows("null", table), Strs(5, "null"));
  Table empty = MakeTable({{"x", Ints({})}});
  Result<Column> none = EvaluateText("x + 1", empty);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->size(), 0u);
}

TEST(Expression, ResultColumnContract) {
  Table table = MakeTable({{"x", Ints({1, 2, 3})}, {"y", Ints({1, 0, 3})}});
  Result<Column> no_nulls = EvaluateText("x * 2", table);
  ASSERT_TRUE(no_nulls.ok());
  EXPECT_TRUE(no_nulls->validity().empty());
  Result<Column> with_null = EvaluateText("x % y + 1", table);  // the middle row is null
  ASSERT_TRUE(with_null.ok());
  EXPECT_EQ(with_null->validity(), std::vector<uint8_t>({1, 0, 1}));
  EXPECT_EQ(with_null->ints()[1], 0) << "null slots hold zero";
  Result<Column> copy = EvaluateText("x", table);
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(copy->ints(), table.column(0).ints());
  EXPECT_TRUE(copy->validity().empty());
}

TEST(Expression, ReferencedColumnsInOrderOfFirstUse) {
  Result<Expression> expression = Expression::Parse("coalesce(b, a) + b * \"c d\" + a");
  ASSERT_TRUE(expression.ok());
  EXPECT_EQ(expression->ReferencedColumns(), std::vector<std::string>({"b", "a", "c d"}));
}

TEST(Expression, EvaluateChecksSchemaAndRange) {
  Table table = SampleTable();
  Result<Expression> expression = Expression::Parse("i + 1");
  ASSERT_TRUE(expression.ok());
  EXPECT_EQ(expression->Evaluate(table).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(expression->Bind(table.fields()).ok());
  Table other = MakeTable({{"i", Doubles({1.0})}});
  Result<Column> mismatch = expression->Evaluate(other);
  EXPECT_EQ(mismatch.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(mismatch.status().message().find("i double"), std::string::npos);
  EXPECT_EQ(expression->EvaluateRange(table, 3, 6).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(expression->EvaluateRange(table, 4, 3).status().code(), StatusCode::kInvalidArgument);
  Result<Column> empty = expression->EvaluateRange(table, 2, 2);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->size(), 0u);
}

TEST(Expression, RebindingToAnotherSchemaRetypes) {
  Result<Expression> expression = Expression::Parse("x + null");
  ASSERT_TRUE(expression.ok());
  ASSERT_TRUE(expression->Bind({{"x", DataType::kInt64}}).ok());
  EXPECT_EQ(expression->result_type(), DataType::kInt64);
  ASSERT_TRUE(expression->Bind({{"x", DataType::kDouble}}).ok());
  EXPECT_EQ(expression->result_type(), DataType::kDouble);
  EXPECT_FALSE(expression->Bind({{"y", DataType::kDouble}}).ok());
  EXPECT_EQ(expression->Evaluate(MakeTable({{"x", Doubles({1})}})).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST(Expression, CopiesAreIndependentAndUsableConcurrently) {
  Table table = MakeTable({{"x", Ints({1, 2, kNull, 4})}});
  Result<Expression> parsed = Expression::Parse("x * 10 + 1");
  ASSERT_TRUE(parsed.ok());
  ASSERT_TRUE(parsed->Bind(table.fields()).ok());
  Expression copy = *parsed;
  EXPECT_FALSE(parsed->Bind({{"y", DataType::kInt64}}).ok());  // unbinds only the original
  std::vector<std::vector<std::string>> results(8);
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&copy, &table, &result] {
      for (int round = 0; round < 50; ++round) {
        Result<Column> column = copy.Evaluate(table);
        result.clear();
        for (size_t row = 0; column.ok() && row < column->size(); ++row) {
          result.push_back(column->ValueToString(row));
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const auto& result : results) EXPECT_EQ(result, Strs({"11", "21", "null", "41"}));
}

bool SameValue(const Column& a, size_t row_a, const Column& b, size_t row_b) {
  if (a.type() != b.type() || a.IsValid(row_a) != b.IsValid(row_b)) return false;
  if (!a.IsValid(row_a)) return true;
  switch (a.type()) {
    case DataType::kBool:
      return (a.bools()[row_a] != 0) == (b.bools()[row_b] != 0);
    case DataType::kDouble:
      return std::memcmp(&a.doubles()[row_a], &b.doubles()[row_b], sizeof(double)) == 0;
    case DataType::kString:
      return a.StringAt(row_a) == b.StringAt(row_b);
    default:
      return a.ints()[row_a] == b.ints()[row_b];
  }
}

TEST(Expression, EvaluateRangeEqualsSliceOfEvaluate) {
  Table table = SampleTable();
  for (const char* text : {"i", "s", "ts", "i + j * 2", "coalesce(s, 'z')", "b and i > 0",
                           "if(b, d, j)", "1.5", "null", "least(i, j, 0)", "i in (1, null)"}) {
    Result<Expression> expression = Expression::Parse(text);
    ASSERT_TRUE(expression.ok());
    ASSERT_TRUE(expression->Bind(table.fields()).ok());
    Result<Column> full = expression->Evaluate(table);
    ASSERT_TRUE(full.ok());
    for (size_t begin = 0; begin <= table.num_rows(); ++begin) {
      for (size_t end = begin; end <= table.num_rows(); ++end) {
        Result<Column> part = expression->EvaluateRange(table, begin, end);
        ASSERT_TRUE(part.ok());
        ASSERT_EQ(part->size(), end - begin);
        for (size_t row = begin; row < end; ++row) {
          EXPECT_TRUE(SameValue(*full, row, *part, row - begin))
              << text << " row " << row << " of [" << begin << ", " << end << ")";
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Property test: random expressions evaluated vectorised must equal a naive
// row-at-a-time reference interpreter written from the semantics in expr.h
// (int64 overflow detected with 128-bit arithmetic, not overflow builtins).

enum class RefType { kNull, kBool, kInt, kDouble };  // kNull: an untyped null literal

struct RefValue {
  bool is_null = true;
  bool b = false;
  int64_t i = 0;
  double d = 0.0;
};
RefValue RefBool(bool value) { return {false, value, 0, 0.0}; }
RefValue RefInt(__int128 value) {
  if (value < kMin || value > kMax) return {};
  return {false, false, static_cast<int64_t>(value), 0.0};
}
RefValue RefDouble(double value) {
  if (!std::isfinite(value)) return {};
  return {false, false, 0, value};
}

struct RefExpr {
  enum class Kind {
    kColumn,
    kLiteral,
    kNegate,
    kNot,
    kArithmetic,
    kCompare,
    kLogic,
    kIsNull,
    kIn,
    kCall
  };
  Kind kind = Kind::kLiteral;
  std::string op;  // operator symbol or function name
  int column = -1;
  std::string text;                       // kLiteral: as written
  RefValue literal;                       // kLiteral
  RefType literal_type = RefType::kNull;  // kLiteral
  bool negated = false;                   // kIsNull, kIn
  std::vector<std::pair<RefType, RefValue>> in_list;
  std::vector<std::string> in_texts;  // kIn: the list items as written
  std::vector<std::unique_ptr<RefExpr>> args;
  RefType type = RefType::kNull;
};

const RefType kColumnTypes[] = {RefType::kInt, RefType::kInt, RefType::kDouble, RefType::kBool};
const char* const kColumnNames[] = {"i1", "i2", "d1", "b1"};

double AsDouble(const RefValue& value, RefType type) {
  return type == RefType::kDouble ? value.d : type == RefType::kBool ? value.b : value.i;
}
int64_t AsInt(const RefValue& value, RefType type) {
  return type == RefType::kBool ? value.b : value.i;
}
RefValue Convert(const RefValue& value, RefType from, RefType to) {
  if (value.is_null || from == to) return value;
  if (to == RefType::kDouble) return RefDouble(AsDouble(value, from));
  return RefInt(AsInt(value, from));
}
// The type of merged values (coalesce, least, greatest, if branches).
RefType MergedType(const std::vector<RefType>& types) {
  bool any = false, all_bool = true, any_double = false;
  for (RefType type : types) {
    if (type == RefType::kNull) continue;
    any = true;
    all_bool = all_bool && type == RefType::kBool;
    any_double = any_double || type == RefType::kDouble;
  }
  if (!any) return RefType::kInt;
  if (all_bool) return RefType::kBool;
  return any_double ? RefType::kDouble : RefType::kInt;
}

class ReferenceInterpreter {
 public:
  explicit ReferenceInterpreter(const std::vector<std::vector<RefValue>>& columns)
      : columns_(columns) {}

  RefValue Eval(const RefExpr& e, size_t row) const {
    switch (e.kind) {
      case RefExpr::Kind::kColumn:
        return columns_[e.column][row];
      case RefExpr::Kind::kLiteral:
        return e.literal;
      case RefExpr::Kind::kNegate: {
        RefValue x = Eval(*e.args[0], row);
        if (x.is_null) return {};
        if (e.type == RefType::kDouble) return RefDouble(-x.d);
        return RefInt(-static_cast<__int128>(AsInt(x, e.args[0]->type)));
      }
      case RefExpr::Kind::kNot: {
        RefValue x = Eval(*e.args[0], row);
        return x.is_null ? RefValue{} : RefBool(!x.b);
      }
      case RefExpr::Kind::kArithmetic:
        return Arithmetic(e, Eval(*e.args[0], row), Eval(*e.args[1], row));
      case RefExpr::Kind::kCompare:
        return Compare(e, Eval(*e.args[0], row), Eval(*e.args[1], row));
      case RefExpr::Kind::kLogic: {
        RefValue a = Eval(*e.args[0], row), b = Eval(*e.args[1], row);
        bool is_and = e.op == "and";
        bool a_decides = !a.is_null && a.b != is_and, b_decides = !b.is_null && b.b != is_and;
        if (a_decides || b_decides) return RefBool(!is_and);
        if (a.is_null || b.is_null) return {};
        return RefBool(is_and);
      }
      case RefExpr::Kind::kIsNull:
        return RefBool(Eval(*e.args[0], row).is_null != e.negated);
      case RefExpr::Kind::kIn:
        return In(e, Eval(*e.args[0], row));
      case RefExpr::Kind::kCall:
        return Call(e, row);
    }
    return {};
  }

 private:
  static RefValue Arithmetic(const RefExpr& e, const RefValue& a, const RefValue& b) {
    if (a.is_null || b.is_null) return {};
    RefType ta = e.args[0]->type, tb = e.args[1]->type;
    if (e.type == RefType::kDouble) {
      double x = AsDouble(a, ta), y = AsDouble(b, tb);
      if (e.op == "+") return RefDouble(x + y);
      if (e.op == "-") return RefDouble(x - y);
      if (e.op == "*") return RefDouble(x * y);
      if (y == 0) return {};
      return RefDouble(e.op == "/" ? x / y : std::fmod(x, y));
    }
    __int128 x = AsInt(a, ta), y = AsInt(b, tb);
    if (e.op == "+") return RefInt(x + y);
    if (e.op == "-") return RefInt(x - y);
    if (e.op == "*") return RefInt(x * y);
    if (y == 0) return {};
    return RefInt(x % y);
  }

  static RefValue Compare(const RefExpr& e, const RefValue& a, const RefValue& b) {
    if (a.is_null || b.is_null) return {};
    RefType ta = e.args[0]->type, tb = e.args[1]->type;
    int order;
    if (ta == RefType::kDouble || tb == RefType::kDouble) {
      double x = AsDouble(a, ta), y = AsDouble(b, tb);
      order = x < y ? -1 : x > y ? 1 : 0;
    } else {
      int64_t x = AsInt(a, ta), y = AsInt(b, tb);
      order = x < y ? -1 : x > y ? 1 : 0;
    }
    if (e.op == "=" || e.op == "==") return RefBool(order == 0);
    if (e.op == "!=" || e.op == "<>") return RefBool(order != 0);
    if (e.op == "<") return RefBool(order < 0);
    if (e.op == "<=") return RefBool(order <= 0);
    if (e.op == ">") return RefBool(order > 0);
    return RefBool(order >= 0);
  }

  static RefValue In(const RefExpr& e, const RefValue& x) {
    if (x.is_null) return {};
    RefType tx = e.args[0]->type;
    bool as_double = tx == RefType::kDouble;
    for (const auto& [type, value] : e.in_list) as_double = as_double || type == RefType::kDouble;
    bool has_null = false;
    for (const auto& [type, value] : e.in_list) {
      if (value.is_null) {
        has_null = true;
        continue;
      }
      bool equal =
          as_double ? AsDouble(x, tx) == AsDouble(value, type) : AsInt(x, tx) == AsInt(value, type);
      if (equal) return RefBool(!e.negated);
    }
    return has_null ? RefValue{} : RefBool(e.negated);
  }

  RefValue Call(const RefExpr& e, size_t row) const {
    std::vector<RefValue> args;
    for (const auto& arg : e.args) args.push_back(Eval(*arg, row));
    if (e.op == "if") {
      bool take_then = !args[0].is_null && args[0].b;
      size_t index = take_then ? 1 : 2;
      return Convert(args[index], e.args[index]->type, e.type);
    }
    if (e.op == "coalesce" || e.op == "least" || e.op == "greatest") {
      RefValue best;
      for (size_t index = 0; index < args.size(); ++index) {
        RefValue value = Convert(args[index], e.args[index]->type, e.type);
        if (value.is_null) continue;
        if (best.is_null) {
          best = value;
          if (e.op == "coalesce") break;
          continue;
        }
        double v = AsDouble(value, e.type), current = AsDouble(best, e.type);
        if (e.type != RefType::kDouble) {
          int64_t vi = AsInt(value, e.type), ci = AsInt(best, e.type);
          if ((e.op == "least" && vi < ci) || (e.op == "greatest" && vi > ci)) best = value;
        } else if ((e.op == "least" && v < current) || (e.op == "greatest" && v > current)) {
          best = value;
        }
      }
      return best;
    }
    const RefValue& x = args[0];
    if (x.is_null) return {};
    RefType tx = e.args[0]->type;
    if (e.type != RefType::kDouble) {  // abs/floor/ceil/round of an integer
      __int128 value = AsInt(x, tx);
      return RefInt(e.op == "abs" && value < 0 ? -value : value);
    }
    double value = AsDouble(x, tx);
    if (e.op == "abs") return RefDouble(std::fabs(value));
    if (e.op == "floor") return RefDouble(std::floor(value));
    if (e.op == "ceil") return RefDouble(std::ceil(value));
    if (e.op == "round") return RefDouble(std::round(value));
    if (e.op == "sqrt") return value < 0 ? RefValue{} : RefDouble(std::sqrt(value));
    if (value <= 0) return {};
    return RefDouble(e.op == "ln" ? std::log(value) : std::log10(value));
  }

  const std::vector<std::vector<RefValue>>& columns_;
};

// Builds random well-typed expressions and their text, with random spacing
// and keyword case so that the parser is exercised too.
class ExpressionGenerator {
 public:
  explicit ExpressionGenerator(uint64_t seed) : random_(seed) {}

  std::unique_ptr<RefExpr> Numeric(int depth) {
    if (depth == 0 || Chance(0.25)) return NumericLeaf();
    auto e = std::make_unique<RefExpr>();
    int choice = Pick(10);
    if (choice <= 3) {
      static const char* const kOps[] = {"+", "-", "*", "/", "%"};
      e->kind = RefExpr::Kind::kArithmetic;
      e->op = kOps[Pick(5)];
      e->args.push_back(Numeric(depth - 1));
      e->args.push_back(Numeric(depth - 1));
      bool floating = e->op == "/" || e->args[0]->type == RefType::kDouble ||
                      e->args[1]->type == RefType::kDouble;
      e->type = floating ? RefType::kDouble : RefType::kInt;
    } else if (choice == 4) {
      e->kind = RefExpr::Kind::kNegate;
      e->args.push_back(Numeric(depth - 1));
      e->type = e->args[0]->type == RefType::kDouble ? RefType::kDouble : RefType::kInt;
    } else if (choice <= 6) {
      static const char* const kFunctions[] = {"abs",  "floor", "ceil", "round",
                                               "sqrt", "ln",    "log10"};
      e->kind = RefExpr::Kind::kCall;
      e->op = kFunctions[Pick(7)];
      e->args.push_back(Numeric(depth - 1));
      bool same_type = e->op == "abs" || e->op == "floor" || e->op == "ceil" || e->op == "round";
      e->type =
          same_type && e->args[0]->type != RefType::kDouble ? RefType::kInt : RefType::kDouble;
    } else if (choice <= 8) {
      static const char* const kFunctions[] = {"coalesce", "least", "greatest"};
      e->kind = RefExpr::Kind::kCall;
      e->op = kFunctions[Pick(3)];
      int count = 1 + Pick(3);
      for (int index = 0; index < count; ++index) e->args.push_back(Numeric(depth - 1));
      e->type = MergedTypeOf(*e, 0);
    } else {
      e->kind = RefExpr::Kind::kCall;
      e->op = "if";
      e->args.push_back(Boolean(depth - 1));
      e->args.push_back(Numeric(depth - 1));
      e->args.push_back(Numeric(depth - 1));
      e->type = MergedTypeOf(*e, 1);
    }
    return e;
  }

  std::unique_ptr<RefExpr> Boolean(int depth) {
    if (depth == 0 || Chance(0.2)) return BooleanLeaf();
    auto e = std::make_unique<RefExpr>();
    e->type = RefType::kBool;
    int choice = Pick(8);
    if (choice <= 2) {
      static const char* const kOps[] = {"=", "==", "!=", "<>", "<", "<=", ">", ">="};
      e->kind = RefExpr::Kind::kCompare;
      e->op = kOps[Pick(8)];
      bool booleans = Chance(0.15);
      e->args.push_back(booleans ? Boolean(depth - 1) : Numeric(depth - 1));
      e->args.push_back(booleans ? Boolean(depth - 1) : Numeric(depth - 1));
    } else if (choice <= 4) {
      e->kind = RefExpr::Kind::kLogic;
      e->op = Chance(0.5) ? "and" : "or";
      e->args.push_back(Boolean(depth - 1));
      e->args.push_back(Boolean(depth - 1));
    } else if (choice == 5) {
      e->kind = RefExpr::Kind::kNot;
      e->args.push_back(Boolean(depth - 1));
    } else if (choice == 6) {
      e->kind = RefExpr::Kind::kIsNull;
      e->negated = Chance(0.5);
      e->args.push_back(Chance(0.5) ? Numeric(depth - 1) : Boolean(depth - 1));
    } else {
      e->kind = RefExpr::Kind::kIn;
      e->negated = Chance(0.3);
      e->args.push_back(Numeric(depth - 1));
      int count = 1 + Pick(4);
      for (int index = 0; index < count; ++index) {
        std::unique_ptr<RefExpr> literal = Chance(0.8)   ? IntLiteral()
                                           : Chance(0.5) ? DoubleLiteral()
                                                         : NullLiteral();
        e->in_list.emplace_back(literal->literal_type, literal->literal);
        e->in_texts.push_back(literal->text);
      }
    }
    return e;
  }

  std::string Text(const RefExpr& e) {
    switch (e.kind) {
      case RefExpr::Kind::kColumn:
        return kColumnNames[e.column];
      case RefExpr::Kind::kLiteral:
        return e.text;
      case RefExpr::Kind::kNegate:
        return "(-" + Text(*e.args[0]) + ")";
      case RefExpr::Kind::kNot:
        return "(" + Keyword("not") + " " + Text(*e.args[0]) + ")";
      case RefExpr::Kind::kArithmetic:
      case RefExpr::Kind::kCompare:
        return "(" + Text(*e.args[0]) + Space() + e.op + Space() + Text(*e.args[1]) + ")";
      case RefExpr::Kind::kLogic:
        return "(" + Text(*e.args[0]) + " " + Keyword(e.op) + " " + Text(*e.args[1]) + ")";
      case RefExpr::Kind::kIsNull:
        return "(" + Text(*e.args[0]) + " " + Keyword("is") +
               (e.negated ? " " + Keyword("not") : "") + " " + Keyword("null") + ")";
      case RefExpr::Kind::kIn: {
        std::string text = "(" + Text(*e.args[0]) + (e.negated ? " " + Keyword("not") : "") + " " +
                           Keyword("in") + Space() + "(";
        const std::vector<std::string>& items = e.in_texts;
        for (size_t index = 0; index < items.size(); ++index) {
          text += (index > 0 ? "," + Space() : "") + items[index];
        }
        return text + "))";
      }
      case RefExpr::Kind::kCall: {
        std::string text = Keyword(e.op) + "(";
        for (size_t index = 0; index < e.args.size(); ++index) {
          text += (index > 0 ? "," + Space() : "") + Text(*e.args[index]);
        }
        return text + ")";
      }
    }
    return "";
  }

  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(random_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(random_); }
  std::mt19937_64& random() { return random_; }

 private:
  static RefType MergedTypeOf(const RefExpr& e, size_t first) {
    std::vector<RefType> types;
    for (size_t index = first; index < e.args.size(); ++index) {
      types.push_back(e.args[index]->type);
    }
    return MergedType(types);
  }

  std::unique_ptr<RefExpr> NumericLeaf() {
    int choice = Pick(10);
    if (choice <= 5) {  // mostly columns; the bool column joins arithmetic as 0/1
      auto e = std::make_unique<RefExpr>();
      e->kind = RefExpr::Kind::kColumn;
      e->column = choice <= 4 ? choice % 3 : 3;
      e->type = kColumnTypes[e->column];
      return e;
    }
    if (choice <= 7) return IntLiteral();
    if (choice == 8) return DoubleLiteral();
    return NullLiteral();
  }

  std::unique_ptr<RefExpr> BooleanLeaf() {
    int choice = Pick(6);
    if (choice <= 3) {
      auto e = std::make_unique<RefExpr>();
      e->kind = RefExpr::Kind::kColumn;
      e->column = 3;
      e->type = RefType::kBool;
      return e;
    }
    if (choice == 4) return NullLiteral();
    bool value = Chance(0.5);
    auto e = Literal(value ? Keyword("true") : Keyword("false"), RefType::kBool);
    e->literal = RefBool(value);
    return e;
  }

  std::unique_ptr<RefExpr> IntLiteral() {
    static const int64_t kValues[] = {
        0, 1, -1, 2, 3, 7, -5, 100, kMax, kMin, int64_t{1} << 62, 3037000500};
    int64_t value = kValues[Pick(12)];
    auto e = Literal(std::to_string(value), RefType::kInt);
    e->literal = RefInt(value);
    return e;
  }
  std::unique_ptr<RefExpr> DoubleLiteral() {
    static const char* const kTexts[] = {"0.5",    "-2.5",   "3.0",    "0.0",  "1e300",
                                         "-1E300", "1e-300", "2.5e-3", "-0.0", ".25"};
    const char* text = kTexts[Pick(10)];
    auto e = Literal(text, RefType::kDouble);
    e->literal = RefDouble(std::strtod(text, nullptr));
    return e;
  }
  std::unique_ptr<RefExpr> NullLiteral() { return Literal(Keyword("null"), RefType::kNull); }
  std::unique_ptr<RefExpr> Literal(std::string text, RefType type) {
    auto e = std::make_unique<RefExpr>();
    e->kind = RefExpr::Kind::kLiteral;
    e->text = std::move(text);
    e->literal_type = type;
    e->type = type;
    return e;
  }

  std::string Keyword(const std::string& word) {
    std::string text = word;
    int style = Pick(3);
    for (char& c : text) {
      if (style == 1 || (style == 2 && Chance(0.5))) c = static_cast<char>(std::toupper(c));
    }
    return text;
  }
  std::string Space() {
    static const char* const kSpaces[] = {"", " ", "  ", "\t", "\n "};
    return kSpaces[Pick(5)];
  }

  std::mt19937_64 random_;
};

// Random data for the four columns: ~20% nulls, small values (so literals
// and zero divisors hit) mixed with extremes (so int64 arithmetic overflows).
Table RandomTable(ExpressionGenerator& generator, size_t rows,
                  std::vector<std::vector<RefValue>>& reference) {
  reference.assign(4, {});
  std::vector<std::optional<int64_t>> ints[2];
  std::vector<std::optional<double>> doubles;
  std::vector<std::optional<bool>> bools;
  static const int64_t kExtremes[] = {kMax,       kMin,       int64_t{1} << 62, -(int64_t{1} << 62),
                                      3037000500, -3037000500};
  static const double kSpecial[] = {0.0, -0.0, 1e300, -1e300, 1e-300, 0.5};
  std::uniform_real_distribution<double> small(-10.0, 10.0);
  for (size_t row = 0; row < rows; ++row) {
    for (auto& column : ints) {
      std::optional<int64_t> value;
      int choice = generator.Pick(10);
      if (choice >= 2) {
        value = choice <= 6   ? generator.Pick(21) - 10
                : choice <= 8 ? generator.Pick(2000001) - 1000000
                              : kExtremes[generator.Pick(6)];
      }
      column.push_back(value);
    }
    std::optional<double> d;
    int choice = generator.Pick(10);
    if (choice >= 2) {
      d = choice <= 5   ? small(generator.random())
          : choice <= 7 ? static_cast<double>(generator.Pick(11) - 5)
                        : kSpecial[generator.Pick(6)];
    }
    doubles.push_back(d);
    bools.push_back(generator.Pick(10) < 2 ? std::nullopt
                                           : std::optional<bool>(generator.Chance(0.5)));
    for (int column = 0; column < 2; ++column) {
      reference[column].push_back(ints[column].back() ? RefInt(*ints[column].back()) : RefValue{});
    }
    reference[2].push_back(d ? RefDouble(*d) : RefValue{});
    reference[3].push_back(bools.back() ? RefBool(*bools.back()) : RefValue{});
  }
  return MakeTable({{"i1", Ints(ints[0])},
                    {"i2", Ints(ints[1])},
                    {"d1", Doubles(doubles)},
                    {"b1", Bools(bools)}});
}

DataType ToDataType(RefType type) {
  switch (type) {
    case RefType::kBool:
      return DataType::kBool;
    case RefType::kDouble:
      return DataType::kDouble;
    default:
      return DataType::kInt64;
  }
}

// Empty when row `row` of `column` holds `expected`; else a description.
std::string CompareRow(const Column& column, size_t row, const RefValue& expected, RefType type) {
  std::string actual = column.ValueToString(row);
  if (column.IsValid(row) == expected.is_null) {
    return "got " + actual + ", expected " + (expected.is_null ? "null" : "a value");
  }
  if (expected.is_null) {
    bool zero_slot = type == RefType::kBool     ? column.bools()[row] == 0
                     : type == RefType::kDouble ? std::signbit(column.doubles()[row]) == false &&
                                                      column.doubles()[row] == 0.0
                                                : column.ints()[row] == 0;
    return zero_slot ? "" : "null row with a non-zero value slot";
  }
  bool same = type == RefType::kBool ? (column.bools()[row] != 0) == expected.b
              : type == RefType::kDouble
                  ? std::memcmp(&column.doubles()[row], &expected.d, sizeof(double)) == 0
                  : column.ints()[row] == expected.i;
  if (same) return "";
  Column reference(column.type(), 0);
  type == RefType::kBool     ? reference.AppendBool(expected.b)
  : type == RefType::kDouble ? reference.AppendDouble(expected.d)
                             : reference.AppendInt64(expected.i);
  return "got " + actual + ", expected " + reference.ValueToString(0);
}

TEST(Expression, PropertyVectorisedMatchesRowAtATimeReference) {
  // KEEL_PROPERTY_SEED=<n> explores other seeds when reproducing a failure.
  const char* seed_text = std::getenv("KEEL_PROPERTY_SEED");
  const uint64_t kSeed = seed_text != nullptr ? std::strtoull(seed_text, nullptr, 10) : 20240611;
  constexpr int kExpressions = 1500;
  constexpr size_t kRows = 700;
  ExpressionGenerator generator(kSeed);
  std::vector<std::vector<RefValue>> reference_columns;
  Table table = RandomTable(generator, kRows, reference_columns);
  ReferenceInterpreter reference(reference_columns);
  int failures = 0;
  for (int iteration = 0; iteration < kExpressions && failures < 5; ++iteration) {
    std::unique_ptr<RefExpr> tree =
        generator.Chance(0.5) ? generator.Numeric(4) : generator.Boolean(4);
    std::string text = generator.Text(*tree);
    SCOPED_TRACE("expression #" + std::to_string(iteration) + ": " + text);
    Result<Expression> expression = Expression::Parse(text);
    ASSERT_TRUE(expression.ok()) << expression.status().ToString();
    ASSERT_TRUE(expression->Bind(table.fields()).ok());
    ASSERT_EQ(expression->result_type(), ToDataType(tree->type));
    Result<Column> result = expression->Evaluate(table);
    ASSERT_TRUE(result.ok());
    ASSERT_EQ(result->size(), kRows);
    bool any_null = false;
    for (size_t row = 0; row < kRows; ++row) {
      RefValue expected = reference.Eval(*tree, row);
      any_null = any_null || expected.is_null;
      std::string problem = CompareRow(*result, row, expected, tree->type);
      if (!problem.empty()) {
        ADD_FAILURE() << "row " << row << ": " << problem;
        ++failures;
        break;
      }
    }
    EXPECT_EQ(result->validity().empty(), !any_null) << "validity is empty iff no nulls";

    // The canonical form is a fixed point and means the same thing.
    Result<Expression> reparsed = Expression::Parse(expression->ToCanonicalString());
    ASSERT_TRUE(reparsed.ok()) << reparsed.status().ToString();
    EXPECT_EQ(reparsed->ToCanonicalString(), expression->ToCanonicalString());

    // A random sub-range equals the slice of the full evaluation.
    size_t begin = generator.Pick(static_cast<int>(kRows));
    size_t end = begin + generator.Pick(static_cast<int>(kRows - begin) + 1);
    Result<Column> part = expression->EvaluateRange(table, begin, end);
    ASSERT_TRUE(part.ok());
    for (size_t row = begin; row < end; ++row) {
      if (!SameValue(*result, row, *part, row - begin)) {
        ADD_FAILURE() << "EvaluateRange [" << begin << ", " << end << ") differs at row " << row;
        ++failures;
        break;
      }
    }
  }
}

TEST(Expression, PropertyParserNeverFailsOnGarbageAndCanonicalFormIsFixedPoint) {
  static const char* const kPieces[] = {
      "x",  "Y",    "\"q q\"", "1",   "2.5", "-", "+",   "*",  "/",   "%",  "(",
      ")",  ",",    "=",       "<>",  "<=",  ">", "and", "OR", "not", "is", "null",
      "in", "true", "'s''t'",  "abs", "if",  " ", "1e3", "'",  "\"",  "$",  "é"};
  std::mt19937_64 random(99);
  int parsed_count = 0;
  for (int iteration = 0; iteration < 20000; ++iteration) {
    std::string text;
    int length = 1 + static_cast<int>(random() % 12);
    for (int piece = 0; piece < length; ++piece) {
      text += kPieces[random() % std::size(kPieces)];
      if (random() % 2 == 0) text += " ";
    }
    Result<Expression> expression = Expression::Parse(text);
    if (!expression.ok()) {
      EXPECT_EQ(expression.status().message().rfind("at ", 0), 0u) << text;
      continue;
    }
    ++parsed_count;
    std::string canonical = expression->ToCanonicalString();
    Result<Expression> reparsed = Expression::Parse(canonical);
    ASSERT_TRUE(reparsed.ok()) << text << " -> " << canonical;
    EXPECT_EQ(reparsed->ToCanonicalString(), canonical) << text;
  }
  EXPECT_GT(parsed_count, 100);
}

// Prints the evaluation rate; asserts only correctness, never timing.
TEST(Expression, ThroughputOnThreeMillionRows) {
  constexpr size_t kRows = 3'000'000;
  std::mt19937_64 random(7);
  Column delay(DataType::kInt64, kRows), distance(DataType::kDouble, kRows);
  for (size_t row = 0; row < kRows; ++row) {
    delay.ints()[row] = static_cast<int64_t>(random() % 120) - 20;
    distance.doubles()[row] = static_cast<double>(random() % 5000);
    if (row % 20 == 0) delay.SetNull(row);
  }
  Table table = MakeTable({{"delay", std::move(delay)}, {"distance", std::move(distance)}});
  for (const char* text : {"delay > 15", "distance / 100", "coalesce(delay, 0) * 2 + 1",
                           "delay > 15 and distance >= 1000 or delay is null"}) {
    Result<Expression> expression = Expression::Parse(text);
    ASSERT_TRUE(expression.ok());
    ASSERT_TRUE(expression->Bind(table.fields()).ok());
    auto start = std::chrono::steady_clock::now();
    Result<Column> result = expression->Evaluate(table);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(result.ok());
    ASSERT_EQ(result->size(), kRows);
    std::printf("[ rate     ] %-50s %8.1f M rows/s\n", text, kRows / seconds / 1e6);
  }
}

}  // namespace
}  // namespace keel::features
