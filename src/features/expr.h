#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "table/column.h"

namespace keel::features {

// A row expression over the columns of a source, e.g. `delay > 15`,
// `distance / 100`, `coalesce(x, 0)`. This is keel's one evaluator: offline
// backfill and the online path both evaluate row expressions through it, so
// their inputs to the aggregation kernels cannot disagree.
//
// Grammar (case-insensitive keywords, SQL-like):
//   expr     := or
//   or       := and ("or" and)*
//   and      := not ("and" not)*
//   not      := "not" not | cmp
//   cmp      := add (("=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=") add)?
//             | add "is" ["not"] "null"
//             | add ["not"] "in" "(" literal ("," literal)* ")"
//   add      := mul (("+" | "-") mul)*
//   mul      := unary (("*" | "/" | "%") unary)*
//   unary    := "-" unary | primary
//   primary  := number | 'string' | "true" | "false" | "null" | column
//             | function "(" [expr ("," expr)*] ")" | "(" expr ")"
//   column   := identifier, or "double quoted" for any name
//   functions: coalesce(a, b, ...), abs(x), least(a, b, ...), greatest(a, b, ...),
//              if(cond, then, else), ln(x), log10(x), sqrt(x), floor(x), ceil(x),
//              round(x), hour(ts), day_of_week(ts) (0 = Sunday), epoch_seconds(ts)
//
// Semantics (match DuckDB's so that SQL cross-checks agree):
//   - null propagates through arithmetic, comparisons and functions, except
//     coalesce, `is [not] null`, and three-valued and/or
//     (false and null = false, true or null = true);
//   - `/` is always floating-point division; x / 0 and x % 0 are null;
//     ln/log10/sqrt outside their domain are null; results that are NaN or
//     infinite become null;
//   - int64 op int64 stays int64 for + - * % (wrapping is a bug: overflow
//     gives null); mixed int64/double promote to double; bools are 0/1 in
//     arithmetic;
//   - strings compare with strings only (bytewise); comparing a string with a
//     number is a type error found by Bind, not at evaluation.
//
// Thread-safety: a bound Expression is immutable; Evaluate may be called
// concurrently from many threads.
class Expression {
 public:
  // Parses `text`. Errors: InvalidArgument with the 1-based character position
  // ("at 7: expected ')'").
  static Result<Expression> Parse(std::string_view text);

  // Resolves column names against `schema` and infers the result type.
  // Errors: InvalidArgument naming an unknown column (listing the known ones),
  // a wrong argument type or count, or an unknown function.
  Status Bind(const std::vector<table::Field>& schema);

  // The result type. Precondition: Bind succeeded.
  table::DataType result_type() const;

  // Names of the columns the expression reads, in order of first use.
  std::vector<std::string> ReferencedColumns() const;

  // A canonical spelling (normalised spaces, lower-case keywords, full
  // parentheses) used for definition hashing: two texts that parse to the same
  // tree have the same canonical form.
  std::string ToCanonicalString() const;

  // Evaluates over every row of `input` (whose schema must equal the one
  // bound) and returns a column of result_type() and input.num_rows() rows.
  // Errors: InvalidArgument if the schema differs from the bound one.
  Result<table::Column> Evaluate(const table::Table& input) const;

  // Evaluates over rows [begin, end) of `input` only (the online path uses
  // single-row batches).
  Result<table::Column> EvaluateRange(const table::Table& input, size_t begin, size_t end) const;

  struct Node;  // Private to expr.cc; public only so the implementation can name it.

  Expression(Expression&&) noexcept;
  Expression& operator=(Expression&&) noexcept;
  Expression(const Expression& other);
  Expression& operator=(const Expression& other);
  ~Expression();

 private:
  Expression();
  std::unique_ptr<Node> root_;
  std::vector<table::Field> bound_schema_;
  bool bound_ = false;
};

}  // namespace keel::features
