#include "features/expr.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/time.h"
#include "features/expr_parser.h"

namespace keel::features {
namespace {

using table::Column;
using table::DataType;
using table::Field;
using Node = Expression::Node;
using expr_internal::BinaryOpSymbol;

std::string TypeName(DataType type) { return std::string(table::DataTypeName(type)); }

bool IsComparison(BinaryOp op) { return op >= BinaryOp::kEqual && op <= BinaryOp::kGreaterEqual; }

// The type two values are converted to when compared or merged (coalesce,
// least, greatest, if branches); nullopt when they do not mix.
std::optional<DataType> CommonType(DataType a, DataType b) {
  if (a == b) return a;
  if (table::IsNumeric(a) && table::IsNumeric(b)) {
    return a == DataType::kDouble || b == DataType::kDouble ? DataType::kDouble : DataType::kInt64;
  }
  return std::nullopt;
}

std::optional<DataType> LiteralType(const Literal& literal) {
  switch (literal.kind) {
    case Literal::Kind::kNull:
      return std::nullopt;
    case Literal::Kind::kBool:
      return DataType::kBool;
    case Literal::Kind::kInt64:
      return DataType::kInt64;
    case Literal::Kind::kDouble:
      return DataType::kDouble;
    case Literal::Kind::kString:
      return DataType::kString;
  }
  return std::nullopt;
}

struct FunctionSpec {
  std::string_view name;
  Function function;
  size_t min_args;
  size_t max_args;
};
constexpr size_t kVariadic = std::numeric_limits<size_t>::max();
constexpr FunctionSpec kFunctions[] = {
    {"abs", Function::kAbs, 1, 1},
    {"ceil", Function::kCeil, 1, 1},
    {"coalesce", Function::kCoalesce, 1, kVariadic},
    {"day_of_week", Function::kDayOfWeek, 1, 1},
    {"epoch_seconds", Function::kEpochSeconds, 1, 1},
    {"floor", Function::kFloor, 1, 1},
    {"greatest", Function::kGreatest, 1, kVariadic},
    {"hour", Function::kHour, 1, 1},
    {"if", Function::kIf, 3, 3},
    {"least", Function::kLeast, 1, kVariadic},
    {"ln", Function::kLn, 1, 1},
    {"log10", Function::kLog10, 1, 1},
    {"round", Function::kRound, 1, 1},
    {"sqrt", Function::kSqrt, 1, 1},
};

// Resolves names and infers types bottom-up, rewriting every bound field.
class Binder {
 public:
  explicit Binder(const std::vector<Field>& schema) : schema_(schema) {}

  Status Bind(Node& node) {
    for (auto& child : node.children) RETURN_IF_ERROR(Bind(*child));
    node.untyped_null = false;
    node.column_index = -1;
    node.function = Function::kUnknown;
    switch (node.kind) {
      case NodeKind::kLiteral:
        node.untyped_null = node.literal.kind == Literal::Kind::kNull;
        node.type = LiteralType(node.literal).value_or(DataType::kInt64);
        return Status::Ok();
      case NodeKind::kColumn:
        return BindColumn(node);
      case NodeKind::kNegate:
        return BindNumeric(node, "operator '-'");
      case NodeKind::kNot:
        node.type = node.operand_type = DataType::kBool;
        return ExpectBool(*node.children[0], "operator 'not'");
      case NodeKind::kBinary:
        return BindBinary(node);
      case NodeKind::kIsNull:
        node.type = DataType::kBool;
        return Status::Ok();
      case NodeKind::kIn:
        return BindIn(node);
      case NodeKind::kCall:
        return BindCall(node);
    }
    return Internal("unknown expression node");
  }

 private:
  // A null literal takes the type its context gives it.
  static DataType TypeOr(const Node& node, DataType if_untyped) {
    return node.untyped_null ? if_untyped : node.type;
  }
  static void Resolve(Node& node, DataType type) {
    if (node.untyped_null) node.type = type;
  }

  Status BindColumn(Node& node) {
    for (size_t index = 0; index < schema_.size(); ++index) {
      if (schema_[index].name != node.name) continue;
      node.column_index = static_cast<int>(index);
      node.type = schema_[index].type;
      return Status::Ok();
    }
    std::string message = "unknown column '" + node.name + "' (columns: ";
    std::string near_miss;
    for (size_t index = 0; index < schema_.size(); ++index) {
      const std::string& name = schema_[index].name;
      message += (index > 0 ? ", " : "") + name + " " + TypeName(schema_[index].type);
      bool same_letters =
          name.size() == node.name.size() &&
          std::equal(name.begin(), name.end(), node.name.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
          });
      if (same_letters) near_miss = name;
    }
    message += ")";
    if (!near_miss.empty()) {
      message += "; did you mean '" + near_miss + "'? column names are case-sensitive";
    }
    return InvalidArgument(message);
  }

  Status ExpectBool(Node& operand, std::string_view what, std::string_view role = "operand") {
    Resolve(operand, DataType::kBool);
    if (operand.type == DataType::kBool) return Status::Ok();
    return InvalidArgument(std::string(what) + " expects a bool " + std::string(role) + ", got " +
                           TypeName(operand.type));
  }

  // `-x`, abs, floor, ceil, round: int64 (bools as 0/1) or double in, same out.
  Status BindNumeric(Node& node, std::string_view what) {
    Node& operand = *node.children[0];
    Resolve(operand, DataType::kInt64);
    if (!table::IsNumeric(operand.type)) {
      return InvalidArgument(std::string(what) + " expects a numeric operand, got " +
                             TypeName(operand.type));
    }
    node.type = operand.type == DataType::kDouble ? DataType::kDouble : DataType::kInt64;
    node.operand_type = node.type;
    return Status::Ok();
  }

  Status BindBinary(Node& node) {
    Node& left = *node.children[0];
    Node& right = *node.children[1];
    std::string symbol(BinaryOpSymbol(node.op));
    if (node.op == BinaryOp::kAnd || node.op == BinaryOp::kOr) {
      node.type = node.operand_type = DataType::kBool;
      RETURN_IF_ERROR(ExpectBool(left, "operator '" + symbol + "'"));
      return ExpectBool(right, "operator '" + symbol + "'");
    }
    DataType left_type = TypeOr(left, TypeOr(right, DataType::kInt64));
    DataType right_type = TypeOr(right, left_type);
    Resolve(left, left_type);
    Resolve(right, right_type);
    if (IsComparison(node.op)) {
      std::optional<DataType> common = CommonType(left_type, right_type);
      if (!common) {
        return InvalidArgument("cannot compare " + TypeName(left_type) + " with " +
                               TypeName(right_type) + " (operator '" + symbol + "')");
      }
      node.operand_type = *common;
      node.type = DataType::kBool;
      return Status::Ok();
    }
    if (!table::IsNumeric(left_type) || !table::IsNumeric(right_type)) {
      return InvalidArgument("operator '" + symbol + "' cannot be applied to " +
                             TypeName(left_type) + " and " + TypeName(right_type));
    }
    bool floating = node.op == BinaryOp::kDivide || left_type == DataType::kDouble ||
                    right_type == DataType::kDouble;
    node.type = node.operand_type = floating ? DataType::kDouble : DataType::kInt64;
    return Status::Ok();
  }

  Status BindIn(Node& node) {
    Node& operand = *node.children[0];
    std::optional<DataType> common;
    if (!operand.untyped_null) common = operand.type;
    for (const Literal& literal : node.in_list) {
      std::optional<DataType> literal_type = LiteralType(literal);
      if (!literal_type) continue;
      std::optional<DataType> merged = common ? CommonType(*common, *literal_type) : literal_type;
      if (!merged) {
        return InvalidArgument("operator 'in' cannot compare " + TypeName(*common) + " with " +
                               TypeName(*literal_type) + " values");
      }
      common = merged;
    }
    Resolve(operand, common.value_or(DataType::kInt64));
    DataType operand_type = common.value_or(DataType::kInt64);
    if (operand_type == DataType::kBool || operand_type == DataType::kTimestamp) {
      operand_type = DataType::kInt64;  // bools compare as 0/1; timestamps share int storage
    }
    node.type = DataType::kBool;
    node.operand_type = operand_type;
    node.in_ints.clear();
    node.in_doubles.clear();
    node.in_strings.clear();
    node.in_list_has_null = false;
    for (const Literal& literal : node.in_list) {
      if (literal.kind == Literal::Kind::kNull) {
        node.in_list_has_null = true;
      } else if (operand_type == DataType::kString) {
        node.in_strings.push_back(literal.string_value);
      } else if (operand_type == DataType::kDouble) {
        node.in_doubles.push_back(literal.kind == Literal::Kind::kDouble
                                      ? literal.double_value
                                      : static_cast<double>(literal.kind == Literal::Kind::kBool
                                                                ? literal.bool_value
                                                                : literal.int_value));
      } else {
        node.in_ints.push_back(literal.kind == Literal::Kind::kBool ? literal.bool_value
                                                                    : literal.int_value);
      }
    }
    std::sort(node.in_ints.begin(), node.in_ints.end());
    std::sort(node.in_doubles.begin(), node.in_doubles.end());
    std::sort(node.in_strings.begin(), node.in_strings.end());
    return Status::Ok();
  }

  Status BindCall(Node& node) {
    const FunctionSpec* spec = nullptr;
    for (const FunctionSpec& candidate : kFunctions) {
      if (candidate.name == node.name) spec = &candidate;
    }
    if (spec == nullptr) {
      std::string known;
      for (const FunctionSpec& candidate : kFunctions) {
        known += (known.empty() ? "" : ", ") + std::string(candidate.name);
      }
      return InvalidArgument("unknown function '" + node.name + "' (functions: " + known + ")");
    }
    RETURN_IF_ERROR(CheckArity(*spec, node.children.size()));
    node.function = spec->function;
    std::string what = "function '" + node.name + "'";
    switch (spec->function) {
      case Function::kCoalesce:
      case Function::kLeast:
      case Function::kGreatest:
        return BindCommonArguments(node, 0, what);
      case Function::kIf:
        RETURN_IF_ERROR(ExpectBool(*node.children[0], what, "condition"));
        return BindCommonArguments(node, 1, what);
      case Function::kAbs:
      case Function::kFloor:
      case Function::kCeil:
      case Function::kRound:
        return BindNumeric(node, what);
      case Function::kLn:
      case Function::kLog10:
      case Function::kSqrt:
        RETURN_IF_ERROR(BindNumeric(node, what));
        node.type = node.operand_type = DataType::kDouble;
        return Status::Ok();
      case Function::kHour:
      case Function::kDayOfWeek:
      case Function::kEpochSeconds: {
        Node& operand = *node.children[0];
        Resolve(operand, DataType::kTimestamp);
        if (operand.type != DataType::kTimestamp) {
          return InvalidArgument(what + " expects a timestamp operand, got " +
                                 TypeName(operand.type));
        }
        node.operand_type = DataType::kTimestamp;
        node.type =
            spec->function == Function::kEpochSeconds ? DataType::kDouble : DataType::kInt64;
        return Status::Ok();
      }
      case Function::kUnknown:
        break;
    }
    return Internal("unhandled function '" + node.name + "'");
  }

  static Status CheckArity(const FunctionSpec& spec, size_t count) {
    if (count >= spec.min_args && count <= spec.max_args) return Status::Ok();
    std::string expected = spec.max_args == kVariadic ? "at least " + std::to_string(spec.min_args)
                                                      : std::to_string(spec.min_args);
    bool plural = spec.min_args != 1;
    return InvalidArgument("function '" + std::string(spec.name) + "' expects " + expected +
                           (plural ? " arguments" : " argument") + ", got " +
                           std::to_string(count));
  }

  // Arguments [first, end) share one type, which is also the result type.
  Status BindCommonArguments(Node& node, size_t first, const std::string& what) {
    std::optional<DataType> common;
    for (size_t index = first; index < node.children.size(); ++index) {
      const Node& argument = *node.children[index];
      if (argument.untyped_null) continue;
      std::optional<DataType> merged = common ? CommonType(*common, argument.type) : argument.type;
      if (!merged) {
        return InvalidArgument(what + " cannot combine " + TypeName(*common) + " and " +
                               TypeName(argument.type) + " arguments");
      }
      common = merged;
    }
    node.type = node.operand_type = common.value_or(DataType::kInt64);
    for (size_t index = first; index < node.children.size(); ++index) {
      Resolve(*node.children[index], node.type);
    }
    return Status::Ok();
  }

  const std::vector<Field>& schema_;
};

// ---------------------------------------------------------------------------
// Vectorised evaluation: every node is evaluated once over all rows of the
// batch, into a Vector, by a tight loop over contiguous typed storage.

// The rows being evaluated: [begin, begin + rows) of `input`.
struct Batch {
  const table::Table& input;
  size_t begin;
  size_t rows;
};

// The typed storage of a fixed-width column: T is int64_t (int64, timestamp),
// double, or uint8_t (bool).
template <typename T>
T* MutableData(Column& column) {
  if constexpr (std::is_same_v<T, int64_t>) return column.ints().data();
  if constexpr (std::is_same_v<T, double>) return column.doubles().data();
  if constexpr (std::is_same_v<T, uint8_t>) return column.bools().data();
}
template <typename T>
const T* ConstData(const Column& column) {
  if constexpr (std::is_same_v<T, int64_t>) return column.ints().data();
  if constexpr (std::is_same_v<T, double>) return column.doubles().data();
  if constexpr (std::is_same_v<T, uint8_t>) return column.bools().data();
}

// Calls fn(T{}) with T the storage type of a fixed-width type: uint8_t for
// bool, double, int64_t for int64 and timestamp. Never called for strings.
template <typename Fn>
decltype(auto) DispatchFixed(DataType type, Fn&& fn) {
  switch (type) {
    case DataType::kBool:
      return fn(uint8_t{});
    case DataType::kDouble:
      return fn(double{});
    default:
      return fn(int64_t{});
  }
}

// The values of one node for the rows of a batch: a view of an input column
// (no copy), a single value that stands for every row (literals and
// expressions over literals only), or storage the node computed.
class Vector {
 public:
  static Vector View(const Column& column, size_t offset) {
    Vector vector;
    vector.borrowed_ = &column;
    vector.offset_ = offset;
    return vector;
  }
  static Vector Computed(Column column, bool constant) {
    Vector vector;
    vector.owned_ = std::move(column);
    vector.constant_ = constant;
    return vector;
  }
  static Vector Null(DataType type) {
    Column column(type, 1);
    column.SetNull(0);
    return Computed(std::move(column), /*constant=*/true);
  }

  DataType type() const { return column().type(); }
  bool constant() const { return constant_; }
  bool IsConstantNull() const { return constant_ && !column().IsValid(offset_); }
  // Null flags relative to row 0 of the batch; nullptr when no row is null.
  const uint8_t* validity() const {
    const std::vector<uint8_t>& validity = column().validity();
    return validity.empty() ? nullptr : validity.data() + offset_;
  }
  template <typename T>
  const T* data() const {
    return ConstData<T>(column()) + offset_;
  }
  std::string_view StringAt(size_t row) const {
    return column().StringAt(offset_ + (constant_ ? 0 : row));
  }

  // The values as a standalone column of `rows` rows.
  Column ToColumn(size_t rows) &&;

 private:
  const Column& column() const { return borrowed_ != nullptr ? *borrowed_ : owned_; }

  const Column* borrowed_ = nullptr;
  Column owned_;
  size_t offset_ = 0;
  bool constant_ = false;
};

// Reads row i of a Vector, or its single value for every row when constant.
template <typename T>
struct Reader {
  const T* values;
  size_t stride;
  T operator[](size_t row) const { return values[row * stride]; }
};
template <typename T>
Reader<T> ReaderOf(const Vector& vector) {
  return {vector.data<T>(), vector.constant() ? size_t{0} : size_t{1}};
}
Reader<uint8_t> ValidityOf(const Vector& vector) {
  static const uint8_t kAllValid = 1;
  if (vector.validity() == nullptr) return {&kAllValid, 0};
  return {vector.validity(), vector.constant() ? size_t{0} : size_t{1}};
}

// Clears validity[i] where `input` is null; an empty `validity` means all valid.
void AndValidity(std::vector<uint8_t>& validity, const Vector& input, size_t rows) {
  const uint8_t* input_validity = input.validity();
  if (input_validity == nullptr) return;
  if (input.constant()) {
    if (input_validity[0] == 0) validity.assign(rows, 0);
    return;
  }
  if (validity.empty()) {
    validity.resize(rows);
    for (size_t row = 0; row < rows; ++row) validity[row] = input_validity[row] != 0;
    return;
  }
  for (size_t row = 0; row < rows; ++row) validity[row] &= input_validity[row] != 0;
}

// Gives a fixed-width `column` the null rows in `validity` (empty = none),
// zeroing their value slots as Column requires; a validity without nulls is
// dropped so that the column reports none.
void AttachValidity(Column& column, std::vector<uint8_t> validity) {
  if (validity.empty() || std::memchr(validity.data(), 0, validity.size()) == nullptr) return;
  DispatchFixed(column.type(), [&](auto tag) {
    using T = decltype(tag);
    T* values = MutableData<T>(column);
    for (size_t row = 0; row < validity.size(); ++row) {
      if (validity[row] == 0) values[row] = T{};
    }
  });
  column.mutable_validity() = std::move(validity);
}

Vector Finish(Column column, std::vector<uint8_t> validity, bool constant) {
  AttachValidity(column, std::move(validity));
  return Vector::Computed(std::move(column), constant);
}

Column Vector::ToColumn(size_t rows) && {
  if (borrowed_ == nullptr && !constant_) return std::move(owned_);
  if (type() == DataType::kString) {
    Column out(DataType::kString, 0);
    Reader<uint8_t> valid = ValidityOf(*this);
    for (size_t row = 0; row < rows; ++row) {
      if (valid[row]) {
        out.AppendString(StringAt(row));
      } else {
        out.AppendNull();
      }
    }
    return out;
  }
  Column out(type(), rows);
  DispatchFixed(type(), [&](auto tag) {
    using T = decltype(tag);
    Reader<T> in = ReaderOf<T>(*this);
    T* values = MutableData<T>(out);
    for (size_t row = 0; row < rows; ++row) values[row] = in[row];
  });
  std::vector<uint8_t> validity;
  AndValidity(validity, *this, rows);
  AttachValidity(out, std::move(validity));
  return out;
}

// Applies op(in, &out) -> ok to every row; rows where op fails become null.
template <typename T, typename Out, typename Op>
Vector UnaryKernel(const Vector& input, size_t rows, DataType out_type, Op op) {
  if (input.IsConstantNull()) return Vector::Null(out_type);
  if (input.constant()) rows = 1;
  Column out(out_type, rows);
  Out* values = MutableData<Out>(out);
  const T* in = input.data<T>();
  std::vector<uint8_t> validity(rows);
  for (size_t row = 0; row < rows; ++row) validity[row] = op(in[row], values[row]);
  AndValidity(validity, input, rows);
  return Finish(std::move(out), std::move(validity), input.constant());
}

// Converts to `target`. Bind only asks for widening conversions (bool to
// int64 or double, int64 to double) or none; timestamps are read as int64
// without a copy.
Vector Cast(Vector input, DataType target, size_t rows) {
  DataType source = input.type();
  if (source == target || target == DataType::kString) return input;
  if (input.IsConstantNull()) return Vector::Null(target);
  if (source == DataType::kTimestamp && target == DataType::kInt64) return input;
  return DispatchFixed(source, [&](auto source_tag) {
    using From = decltype(source_tag);
    return DispatchFixed(target, [&](auto target_tag) {
      using To = decltype(target_tag);
      return UnaryKernel<From, To>(input, rows, target, [](From value, To& out) {
        out = static_cast<To>(value);
        return true;
      });
    });
  });
}

// Binary operations on two values of the operand type T; `out` gets the
// result, and a false return makes the row null (overflow, x / 0, NaN, inf).
struct IntAdd {
  bool operator()(int64_t a, int64_t b, int64_t& out) const {
    return !__builtin_add_overflow(a, b, &out);
  }
};
struct IntSubtract {
  bool operator()(int64_t a, int64_t b, int64_t& out) const {
    return !__builtin_sub_overflow(a, b, &out);
  }
};
struct IntMultiply {
  bool operator()(int64_t a, int64_t b, int64_t& out) const {
    return !__builtin_mul_overflow(a, b, &out);
  }
};
struct IntModulo {
  bool operator()(int64_t a, int64_t b, int64_t& out) const {
    // INT64_MIN % -1 traps in hardware; its mathematical value is 0.
    out = b == 0 || b == -1 ? 0 : a % b;
    return b != 0;
  }
};
template <typename Arithmetic>
struct DoubleOp {
  bool operator()(double a, double b, double& out) const {
    out = Arithmetic{}(a, b);
    return std::isfinite(out);
  }
};
struct DoubleDivide {
  bool operator()(double a, double b, double& out) const {
    out = b == 0.0 ? 0.0 : a / b;
    return b != 0.0 && std::isfinite(out);
  }
};
struct DoubleModulo {
  bool operator()(double a, double b, double& out) const {
    out = b == 0.0 ? 0.0 : std::fmod(a, b);
    return b != 0.0 && std::isfinite(out);
  }
};
template <typename Comparison>
struct Compare {
  template <typename T>
  bool operator()(T a, T b, uint8_t& out) const {
    out = Comparison{}(a, b);
    return true;
  }
};

// The hot loop: one specialisation per constant-ness so that the common
// `column op literal` case reads the literal once and vectorises.
template <typename T, typename Out, typename Op>
void BinaryLoop(const Vector& left, const Vector& right, size_t rows, Out* out, uint8_t* ok,
                Op op) {
  const T* a = left.data<T>();
  const T* b = right.data<T>();
  if (right.constant() && !left.constant()) {
    const T b0 = b[0];
    for (size_t row = 0; row < rows; ++row) ok[row] = op(a[row], b0, out[row]);
  } else if (left.constant() && !right.constant()) {
    const T a0 = a[0];
    for (size_t row = 0; row < rows; ++row) ok[row] = op(a0, b[row], out[row]);
  } else {
    for (size_t row = 0; row < rows; ++row) ok[row] = op(a[row], b[row], out[row]);
  }
}

template <typename Fn>
void DispatchComparison(BinaryOp op, Fn&& fn) {
  switch (op) {
    case BinaryOp::kEqual:
      return fn(Compare<std::equal_to<>>{});
    case BinaryOp::kNotEqual:
      return fn(Compare<std::not_equal_to<>>{});
    case BinaryOp::kLess:
      return fn(Compare<std::less<>>{});
    case BinaryOp::kLessEqual:
      return fn(Compare<std::less_equal<>>{});
    case BinaryOp::kGreater:
      return fn(Compare<std::greater<>>{});
    default:
      return fn(Compare<std::greater_equal<>>{});
  }
}

// Fills `out` and `ok` for a comparison or arithmetic node.
void ComputeBinary(const Node& node, const Vector& left, const Vector& right, size_t rows,
                   Column& out, uint8_t* ok) {
  if (IsComparison(node.op)) {
    uint8_t* values = MutableData<uint8_t>(out);
    if (node.operand_type == DataType::kString) {
      DispatchComparison(node.op, [&](auto compare) {
        for (size_t row = 0; row < rows; ++row) {
          ok[row] = compare(left.StringAt(row), right.StringAt(row), values[row]);
        }
      });
      return;
    }
    DispatchFixed(node.operand_type, [&](auto tag) {
      using T = decltype(tag);
      DispatchComparison(
          node.op, [&](auto compare) { BinaryLoop<T>(left, right, rows, values, ok, compare); });
    });
    return;
  }
  if (node.operand_type == DataType::kInt64) {
    int64_t* values = MutableData<int64_t>(out);
    switch (node.op) {
      case BinaryOp::kAdd:
        return BinaryLoop<int64_t>(left, right, rows, values, ok, IntAdd{});
      case BinaryOp::kSubtract:
        return BinaryLoop<int64_t>(left, right, rows, values, ok, IntSubtract{});
      case BinaryOp::kMultiply:
        return BinaryLoop<int64_t>(left, right, rows, values, ok, IntMultiply{});
      default:
        return BinaryLoop<int64_t>(left, right, rows, values, ok, IntModulo{});
    }
  }
  double* values = MutableData<double>(out);
  switch (node.op) {
    case BinaryOp::kAdd:
      return BinaryLoop<double>(left, right, rows, values, ok, DoubleOp<std::plus<>>{});
    case BinaryOp::kSubtract:
      return BinaryLoop<double>(left, right, rows, values, ok, DoubleOp<std::minus<>>{});
    case BinaryOp::kMultiply:
      return BinaryLoop<double>(left, right, rows, values, ok, DoubleOp<std::multiplies<>>{});
    case BinaryOp::kDivide:
      return BinaryLoop<double>(left, right, rows, values, ok, DoubleDivide{});
    default:
      return BinaryLoop<double>(left, right, rows, values, ok, DoubleModulo{});
  }
}

// Evaluates a bound tree over one batch, node by node. It holds nothing but
// the batch, so concurrent Evaluate calls share no mutable state.
class Evaluator {
 public:
  explicit Evaluator(const Batch& batch) : batch_(batch) {}

  Vector Eval(const Node& node) const {
    switch (node.kind) {
      case NodeKind::kLiteral:
        return EvalLiteral(node);
      case NodeKind::kColumn:
        return Vector::View(batch_.input.column(static_cast<size_t>(node.column_index)),
                            batch_.begin);
      case NodeKind::kNegate:
        return EvalNegate(node);
      case NodeKind::kNot:
        return UnaryKernel<uint8_t, uint8_t>(Child(node, 0), batch_.rows, DataType::kBool,
                                             [](uint8_t value, uint8_t& out) {
                                               out = value == 0;
                                               return true;
                                             });
      case NodeKind::kBinary:
        return node.op == BinaryOp::kAnd || node.op == BinaryOp::kOr ? EvalLogical(node)
                                                                     : EvalBinary(node);
      case NodeKind::kIsNull:
        return EvalIsNull(node);
      case NodeKind::kIn:
        return EvalIn(node);
      case NodeKind::kCall:
        return EvalCall(node);
    }
    return Vector::Null(node.type);
  }

 private:
  // Child `index` converted to the node's operand type.
  Vector Child(const Node& node, size_t index) const {
    return Cast(Eval(*node.children[index]), node.operand_type, batch_.rows);
  }
  size_t RowsFor(bool constant) const { return constant ? 1 : batch_.rows; }

  static Vector EvalLiteral(const Node& node) {
    const Literal& literal = node.literal;
    Column column(node.type, 0);
    switch (literal.kind) {
      case Literal::Kind::kNull:
        return Vector::Null(node.type);
      case Literal::Kind::kBool:
        column.AppendBool(literal.bool_value);
        break;
      case Literal::Kind::kInt64:
        column.AppendInt64(literal.int_value);
        break;
      case Literal::Kind::kDouble:
        column.AppendDouble(literal.double_value);
        break;
      case Literal::Kind::kString:
        column.AppendString(literal.string_value);
        break;
    }
    return Vector::Computed(std::move(column), /*constant=*/true);
  }

  Vector EvalBinary(const Node& node) const {
    Vector left = Child(node, 0);
    Vector right = Child(node, 1);
    if (left.IsConstantNull() || right.IsConstantNull()) return Vector::Null(node.type);
    bool constant = left.constant() && right.constant();
    size_t rows = RowsFor(constant);
    Column out(node.type, rows);
    std::vector<uint8_t> validity(rows);
    ComputeBinary(node, left, right, rows, out, validity.data());
    AndValidity(validity, left, rows);
    AndValidity(validity, right, rows);
    return Finish(std::move(out), std::move(validity), constant);
  }

  // Three-valued and/or: a false (and) or true (or) operand decides the row
  // even when the other one is null.
  Vector EvalLogical(const Node& node) const {
    Vector left = Child(node, 0);
    Vector right = Child(node, 1);
    bool constant = left.constant() && right.constant();
    size_t rows = RowsFor(constant);
    Reader<uint8_t> a = ReaderOf<uint8_t>(left), b = ReaderOf<uint8_t>(right);
    Reader<uint8_t> a_valid = ValidityOf(left), b_valid = ValidityOf(right);
    Column out(DataType::kBool, rows);
    uint8_t* values = MutableData<uint8_t>(out);
    std::vector<uint8_t> validity(rows);
    bool is_and = node.op == BinaryOp::kAnd;
    for (size_t row = 0; row < rows; ++row) {
      bool a_known = a_valid[row] != 0, b_known = b_valid[row] != 0;
      bool a_true = a_known && a[row] != 0, b_true = b_known && b[row] != 0;
      bool decided = is_and ? (a_known && !a_true) || (b_known && !b_true) : a_true || b_true;
      validity[row] = decided || (a_known && b_known);
      values[row] = is_and ? a_true && b_true : a_true || b_true;
    }
    return Finish(std::move(out), std::move(validity), constant);
  }

  Vector EvalIsNull(const Node& node) const {
    Vector operand = Eval(*node.children[0]);
    size_t rows = RowsFor(operand.constant());
    Reader<uint8_t> valid = ValidityOf(operand);
    Column out(DataType::kBool, rows);
    uint8_t* values = MutableData<uint8_t>(out);
    for (size_t row = 0; row < rows; ++row) values[row] = (valid[row] != 0) == node.negated;
    return Vector::Computed(std::move(out), operand.constant());
  }

  // SQL `in`: true when found; otherwise null if the list holds a null, else false.
  Vector EvalIn(const Node& node) const {
    Vector operand = Child(node, 0);
    if (operand.IsConstantNull()) return Vector::Null(DataType::kBool);
    size_t rows = RowsFor(operand.constant());
    Column out(DataType::kBool, rows);
    uint8_t* values = MutableData<uint8_t>(out);
    std::vector<uint8_t> validity(rows);
    auto set = [&](size_t row, bool found) {
      values[row] = found != node.negated;
      validity[row] = found || !node.in_list_has_null;
    };
    if (node.operand_type == DataType::kString) {
      for (size_t row = 0; row < rows; ++row) {
        set(row, std::binary_search(node.in_strings.begin(), node.in_strings.end(),
                                    operand.StringAt(row), std::less<>()));
      }
    } else if (node.operand_type == DataType::kDouble) {
      const double* in = operand.data<double>();
      for (size_t row = 0; row < rows; ++row) {
        set(row, std::binary_search(node.in_doubles.begin(), node.in_doubles.end(), in[row]));
      }
    } else {
      const int64_t* in = operand.data<int64_t>();
      for (size_t row = 0; row < rows; ++row) {
        set(row, std::binary_search(node.in_ints.begin(), node.in_ints.end(), in[row]));
      }
    }
    AndValidity(validity, operand, rows);
    return Finish(std::move(out), std::move(validity), operand.constant());
  }

  Vector EvalCall(const Node& node) const {
    switch (node.function) {
      case Function::kCoalesce:
      case Function::kLeast:
      case Function::kGreatest:
        return EvalMerge(node);
      case Function::kIf:
        return EvalIf(node);
      default:
        return EvalNumericFunction(node);
    }
  }

  Vector EvalNegate(const Node& node) const {
    if (node.operand_type == DataType::kDouble) {
      return UnaryKernel<double, double>(Child(node, 0), batch_.rows, DataType::kDouble,
                                         [](double x, double& out) {
                                           out = -x;
                                           return true;
                                         });
    }
    return UnaryKernel<int64_t, int64_t>(
        Child(node, 0), batch_.rows, DataType::kInt64,
        [](int64_t x, int64_t& out) { return !__builtin_sub_overflow(int64_t{0}, x, &out); });
  }

  // The one-argument functions.
  Vector EvalNumericFunction(const Node& node) const {
    Vector in = Child(node, 0);
    size_t rows = batch_.rows;
    auto doubles = [&](auto fn) {
      return UnaryKernel<double, double>(in, rows, DataType::kDouble, [fn](double x, double& out) {
        out = fn(x);
        return std::isfinite(out);
      });
    };
    auto ints = [&](auto fn) { return UnaryKernel<int64_t, int64_t>(in, rows, node.type, fn); };
    bool floating = node.operand_type == DataType::kDouble;
    constexpr double kNull = std::numeric_limits<double>::quiet_NaN();
    switch (node.function) {
      case Function::kAbs:
        if (floating) return doubles([](double x) { return std::fabs(x); });
        return ints([](int64_t x, int64_t& out) {
          out = x < 0 && x != std::numeric_limits<int64_t>::min() ? -x : x;
          return x != std::numeric_limits<int64_t>::min();
        });
      case Function::kFloor:
        return floating ? doubles([](double x) { return std::floor(x); }) : in;
      case Function::kCeil:
        return floating ? doubles([](double x) { return std::ceil(x); }) : in;
      case Function::kRound:  // half away from zero, like DuckDB
        return floating ? doubles([](double x) { return std::round(x); }) : in;
      case Function::kLn:
        return doubles([](double x) { return x > 0 ? std::log(x) : kNull; });
      case Function::kLog10:
        return doubles([](double x) { return x > 0 ? std::log10(x) : kNull; });
      case Function::kSqrt:
        return doubles([](double x) { return x >= 0 ? std::sqrt(x) : kNull; });
      case Function::kHour:
        return ints([](Timestamp ts, int64_t& out) {
          out = (ts - FloorToHop(ts, kMicrosPerDay)) / kMicrosPerHour;
          return true;
        });
      case Function::kDayOfWeek:
        return ints([](Timestamp ts, int64_t& out) {
          int64_t days = FloorToHop(ts, kMicrosPerDay) / kMicrosPerDay;
          out = ((days % 7) + 7 + 4) % 7;  // 1970-01-01 was a Thursday (4)
          return true;
        });
      case Function::kEpochSeconds:
        return UnaryKernel<int64_t, double>(in, rows, DataType::kDouble,
                                            [](Timestamp ts, double& out) {
                                              out = static_cast<double>(ts) / kMicrosPerSecond;
                                              return true;
                                            });
      default:
        return Vector::Null(node.type);
    }
  }

  // coalesce (first non-null), least and greatest (smallest / largest non-null).
  Vector EvalMerge(const Node& node) const {
    std::vector<Vector> arguments;
    bool constant = true;
    for (size_t index = 0; index < node.children.size(); ++index) {
      arguments.push_back(Child(node, index));
      constant = constant && arguments.back().constant();
    }
    size_t rows = RowsFor(constant);
    Function function = node.function;
    auto better = [function](const auto& candidate, const auto& current) {
      return (function == Function::kLeast && candidate < current) ||
             (function == Function::kGreatest && current < candidate);
    };
    if (node.type == DataType::kString) {
      Column out(DataType::kString, 0);
      for (size_t row = 0; row < rows; ++row) {
        std::optional<std::string_view> chosen;
        for (const Vector& argument : arguments) {
          if (!ValidityOf(argument)[row]) continue;
          std::string_view value = argument.StringAt(row);
          if (!chosen || better(value, *chosen)) chosen = value;
          if (function == Function::kCoalesce) break;
        }
        chosen ? out.AppendString(*chosen) : out.AppendNull();
      }
      return Vector::Computed(std::move(out), constant);
    }
    Column out(node.type, rows);
    std::vector<uint8_t> validity(rows, 0);
    DispatchFixed(node.type, [&](auto tag) {
      using T = decltype(tag);
      T* values = MutableData<T>(out);
      for (const Vector& argument : arguments) {
        Reader<T> in = ReaderOf<T>(argument);
        Reader<uint8_t> valid = ValidityOf(argument);
        for (size_t row = 0; row < rows; ++row) {
          if (!valid[row]) continue;
          if (!validity[row] || better(in[row], values[row])) values[row] = in[row];
          validity[row] = 1;
        }
      }
    });
    return Finish(std::move(out), std::move(validity), constant);
  }

  // if(cond, then, else) is CASE WHEN: a null condition takes the else branch.
  Vector EvalIf(const Node& node) const {
    Vector condition = Eval(*node.children[0]);
    Vector then_value = Child(node, 1);
    Vector else_value = Child(node, 2);
    bool constant = condition.constant() && then_value.constant() && else_value.constant();
    size_t rows = RowsFor(constant);
    Reader<uint8_t> test = ReaderOf<uint8_t>(condition), test_valid = ValidityOf(condition);
    Reader<uint8_t> then_valid = ValidityOf(then_value), else_valid = ValidityOf(else_value);
    auto take_then = [&](size_t row) { return test_valid[row] && test[row]; };
    if (node.type == DataType::kString) {
      Column out(DataType::kString, 0);
      for (size_t row = 0; row < rows; ++row) {
        const Vector& chosen = take_then(row) ? then_value : else_value;
        ValidityOf(chosen)[row] ? out.AppendString(chosen.StringAt(row)) : out.AppendNull();
      }
      return Vector::Computed(std::move(out), constant);
    }
    Column out(node.type, rows);
    std::vector<uint8_t> validity(rows);
    DispatchFixed(node.type, [&](auto tag) {
      using T = decltype(tag);
      T* values = MutableData<T>(out);
      Reader<T> a = ReaderOf<T>(then_value), b = ReaderOf<T>(else_value);
      for (size_t row = 0; row < rows; ++row) {
        bool pick_then = take_then(row);
        values[row] = pick_then ? a[row] : b[row];
        validity[row] = pick_then ? then_valid[row] : else_valid[row];
      }
    });
    return Finish(std::move(out), std::move(validity), constant);
  }

  const Batch& batch_;
};

void CollectColumns(const Node& node, std::vector<std::string>& names) {
  if (node.kind == NodeKind::kColumn &&
      std::find(names.begin(), names.end(), node.name) == names.end()) {
    names.push_back(node.name);
  }
  for (const auto& child : node.children) CollectColumns(*child, names);
}

bool SameSchema(const std::vector<Field>& a, const std::vector<Field>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const Field& x, const Field& y) {
    return x.name == y.name && x.type == y.type;
  });
}

std::string SchemaString(const std::vector<Field>& schema) {
  std::string text;
  for (const Field& field : schema) {
    text += (text.empty() ? "" : ", ") + field.name + " " + TypeName(field.type);
  }
  return text;
}

}  // namespace

Expression::Expression() = default;
Expression::Expression(Expression&&) noexcept = default;
Expression& Expression::operator=(Expression&&) noexcept = default;
Expression::~Expression() = default;

Expression::Expression(const Expression& other)
    : root_(other.root_ ? other.root_->Clone() : nullptr),
      bound_schema_(other.bound_schema_),
      bound_(other.bound_) {}

Expression& Expression::operator=(const Expression& other) {
  if (this != &other) *this = Expression(other);
  return *this;
}

Result<Expression> Expression::Parse(std::string_view text) {
  Expression expression;
  ASSIGN_OR_RETURN(expression.root_, expr_internal::ParseTree(text));
  return expression;
}

Status Expression::Bind(const std::vector<Field>& schema) {
  bound_ = false;
  if (!root_) return FailedPrecondition("binding a moved-from expression");
  RETURN_IF_ERROR(Binder(schema).Bind(*root_));
  bound_schema_ = schema;
  bound_ = true;
  return Status::Ok();
}

table::DataType Expression::result_type() const { return root_ ? root_->type : DataType::kInt64; }

std::vector<std::string> Expression::ReferencedColumns() const {
  std::vector<std::string> names;
  if (root_) CollectColumns(*root_, names);
  return names;
}

std::string Expression::ToCanonicalString() const {
  return root_ ? expr_internal::CanonicalString(*root_) : std::string();
}

Result<Column> Expression::Evaluate(const table::Table& input) const {
  return EvaluateRange(input, 0, input.num_rows());
}

Result<Column> Expression::EvaluateRange(const table::Table& input, size_t begin,
                                         size_t end) const {
  if (!bound_) {
    return FailedPrecondition("expression '" + ToCanonicalString() + "' was not bound");
  }
  if (!SameSchema(input.fields(), bound_schema_)) {
    return InvalidArgument("expression '" + ToCanonicalString() + "' was bound to columns (" +
                           SchemaString(bound_schema_) + ") but the input has (" +
                           SchemaString(input.fields()) + ")");
  }
  if (begin > end || end > input.num_rows()) {
    return InvalidArgument("row range [" + std::to_string(begin) + ", " + std::to_string(end) +
                           ") is outside the input's " + std::to_string(input.num_rows()) +
                           " rows");
  }
  Batch batch{input, begin, end - begin};
  Column result = Evaluator(batch).Eval(*root_).ToColumn(batch.rows);
  if (result.type() != root_->type || result.size() != batch.rows) {
    return Internal("expression '" + ToCanonicalString() + "' produced " + TypeName(result.type()) +
                    " instead of " + TypeName(root_->type));
  }
  return result;
}

}  // namespace keel::features
