#pragma once

// Internal to the expression evaluator (expr.cc): the syntax tree of an
// Expression, the parser that builds it and the canonical printer. Nothing
// outside src/features/expr*.cc should include this file.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "features/expr.h"
#include "table/column.h"

namespace keel::features {

enum class NodeKind : uint8_t {
  kLiteral,  // number, 'string', true, false, null
  kColumn,   // a column reference
  kNegate,   // unary "-"
  kNot,      // "not"
  kBinary,   // and, or, comparisons, arithmetic
  kIsNull,   // "is null" / "is not null" (negated)
  kIn,       // "in (...)" / "not in (...)" (negated)
  kCall,     // function(args...)
};

enum class BinaryOp : uint8_t {
  kAnd,
  kOr,
  kEqual,
  kNotEqual,
  kLess,
  kLessEqual,
  kGreater,
  kGreaterEqual,
  kAdd,
  kSubtract,
  kMultiply,
  kDivide,
  kModulo,
};

// The functions Bind knows; kUnknown until bound.
enum class Function : uint8_t {
  kUnknown,
  kCoalesce,
  kAbs,
  kLeast,
  kGreatest,
  kIf,
  kLn,
  kLog10,
  kSqrt,
  kFloor,
  kCeil,
  kRound,
  kHour,
  kDayOfWeek,
  kEpochSeconds,
};

// A constant written in the expression text.
struct Literal {
  enum class Kind : uint8_t { kNull, kBool, kInt64, kDouble, kString };
  Kind kind = Kind::kNull;
  bool bool_value = false;
  int64_t int_value = 0;
  double double_value = 0.0;
  std::string string_value;
};

// One node of the syntax tree. The parser fills the syntax fields; Bind fills
// the bound fields (and recomputes all of them on every Bind).
struct Expression::Node {
  // Syntax.
  NodeKind kind = NodeKind::kLiteral;
  BinaryOp op = BinaryOp::kAnd;  // kBinary only
  bool negated = false;          // kIsNull ("is not null") and kIn ("not in")
  Literal literal;               // kLiteral only
  std::vector<Literal> in_list;  // kIn only, in written order
  std::string name;              // kColumn: column name; kCall: lower-case function name
  std::vector<std::unique_ptr<Node>> children;
  size_t position = 1;  // 1-based character position in the text, for messages
  uint32_t height = 1;  // 1 + the largest child height; bounds recursion depth

  // Bound.
  table::DataType type = table::DataType::kInt64;  // type of this node's values
  // A null literal whose type comes from its context (`null + 1` is int64).
  bool untyped_null = false;
  // The type children are converted to before the operation (comparisons,
  // arithmetic, in, and functions whose arguments share a type).
  table::DataType operand_type = table::DataType::kInt64;
  int column_index = -1;  // kColumn
  Function function = Function::kUnknown;
  // kIn: the non-null list values converted to operand_type, sorted.
  std::vector<int64_t> in_ints;
  std::vector<double> in_doubles;
  std::vector<std::string> in_strings;
  bool in_list_has_null = false;

  // A deep copy, bound fields included.
  std::unique_ptr<Node> Clone() const;
};

namespace expr_internal {

// The deepest tree the parser accepts; evaluation recurses once per level.
inline constexpr uint32_t kMaxExpressionHeight = 256;

// Parses `text` (grammar in expr.h) into an unbound tree.
// Errors: InvalidArgument "at <1-based position>: expected <what>, found <token>".
Result<std::unique_ptr<Expression::Node>> ParseTree(std::string_view text);

// Fully parenthesised, lower-case-keyword spelling of `node` (see
// Expression::ToCanonicalString). Parsing it yields the same tree.
std::string CanonicalString(const Expression::Node& node);

// 1-based position of the character (UTF-8 code point) at `byte_offset`.
size_t CharacterPosition(std::string_view text, size_t byte_offset);

// "+", "=", "and", ... as written in canonical form.
std::string_view BinaryOpSymbol(BinaryOp op);

}  // namespace expr_internal
}  // namespace keel::features
