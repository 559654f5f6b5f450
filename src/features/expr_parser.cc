#include "features/expr_parser.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <system_error>
#include <utility>

namespace keel::features {

using NodePtr = std::unique_ptr<Expression::Node>;

std::unique_ptr<Expression::Node> Expression::Node::Clone() const {
  auto copy = std::make_unique<Node>();
  copy->kind = kind;
  copy->op = op;
  copy->negated = negated;
  copy->literal = literal;
  copy->in_list = in_list;
  copy->name = name;
  copy->position = position;
  copy->height = height;
  copy->type = type;
  copy->untyped_null = untyped_null;
  copy->operand_type = operand_type;
  copy->column_index = column_index;
  copy->function = function;
  copy->in_ints = in_ints;
  copy->in_doubles = in_doubles;
  copy->in_strings = in_strings;
  copy->in_list_has_null = in_list_has_null;
  copy->children.reserve(children.size());
  for (const NodePtr& child : children) copy->children.push_back(child->Clone());
  return copy;
}

namespace expr_internal {
namespace {

std::string ToLower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

bool IsReservedWord(std::string_view lower) {
  static constexpr std::string_view kKeywords[] = {"and",  "or", "not",  "is",
                                                   "null", "in", "true", "false"};
  return std::find(std::begin(kKeywords), std::end(kKeywords), lower) != std::end(kKeywords);
}

bool IsIdentifierStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentifierChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

enum class TokenKind : uint8_t { kEnd, kNumber, kString, kIdentifier, kQuotedIdentifier, kSymbol };

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::string text;         // symbol, number or identifier as written; decoded string/quoted name
  size_t offset = 0;        // byte offset in the input
  bool is_integer = false;  // kNumber without '.' or exponent
};

// Splits the text into tokens; positions in messages are 1-based characters
// (UTF-8 code points), not bytes.
class Tokenizer {
 public:
  explicit Tokenizer(std::string_view text) : text_(text) {}

  Result<std::vector<Token>> Run() {
    std::vector<Token> tokens;
    while (true) {
      while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
      if (pos_ == text_.size()) break;
      Token token;
      token.offset = pos_;
      char c = text_[pos_];
      if (IsDigit(c) || (c == '.' && pos_ + 1 < text_.size() && IsDigit(text_[pos_ + 1]))) {
        RETURN_IF_ERROR(ReadNumber(token));
      } else if (IsIdentifierStart(c)) {
        token.kind = TokenKind::kIdentifier;
        while (pos_ < text_.size() && IsIdentifierChar(text_[pos_])) ++pos_;
        token.text = std::string(text_.substr(token.offset, pos_ - token.offset));
      } else if (c == '\'' || c == '"') {
        token.kind = c == '\'' ? TokenKind::kString : TokenKind::kQuotedIdentifier;
        RETURN_IF_ERROR(ReadQuoted(c, token));
      } else {
        RETURN_IF_ERROR(ReadSymbol(token));
      }
      tokens.push_back(std::move(token));
    }
    Token end;
    end.offset = text_.size();
    tokens.push_back(std::move(end));
    return tokens;
  }

 private:
  Status Error(size_t offset, std::string_view message) const {
    return InvalidArgument("at " + std::to_string(CharacterPosition(text_, offset)) + ": " +
                           std::string(message));
  }

  Status ReadNumber(Token& token) {
    token.kind = TokenKind::kNumber;
    token.is_integer = true;
    while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '.') {
      token.is_integer = false;
      ++pos_;
      while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      size_t exponent = pos_ + 1;
      if (exponent < text_.size() && (text_[exponent] == '+' || text_[exponent] == '-')) {
        ++exponent;
      }
      if (exponent >= text_.size() || !IsDigit(text_[exponent])) {
        return Error(exponent, "expected digits in the exponent of a number");
      }
      token.is_integer = false;
      pos_ = exponent;
      while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
    }
    token.text = std::string(text_.substr(token.offset, pos_ - token.offset));
    return Status::Ok();
  }

  // A 'string' or "identifier"; a doubled quote inside stands for one quote.
  Status ReadQuoted(char quote, Token& token) {
    ++pos_;
    while (true) {
      if (pos_ >= text_.size()) {
        return Error(token.offset, quote == '\'' ? "unterminated string literal"
                                                 : "unterminated quoted identifier");
      }
      if (text_[pos_] == quote) {
        if (pos_ + 1 < text_.size() && text_[pos_ + 1] == quote) {
          token.text += quote;
          pos_ += 2;
          continue;
        }
        ++pos_;
        break;
      }
      token.text += text_[pos_++];
    }
    if (quote == '"' && token.text.empty()) return Error(token.offset, "empty quoted identifier");
    return Status::Ok();
  }

  Status ReadSymbol(Token& token) {
    static constexpr std::string_view kTwoChar[] = {"==", "!=", "<>", "<=", ">="};
    static constexpr std::string_view kOneChar = "=<>+-*/%(),";
    std::string_view rest = text_.substr(pos_);
    token.kind = TokenKind::kSymbol;
    for (std::string_view symbol : kTwoChar) {
      if (rest.substr(0, 2) == symbol) {
        token.text = std::string(symbol);
        pos_ += 2;
        return Status::Ok();
      }
    }
    if (kOneChar.find(rest[0]) != std::string_view::npos) {
      token.text = std::string(1, rest[0]);
      ++pos_;
      return Status::Ok();
    }
    return Error(pos_, "unexpected character '" + std::string(1, rest[0]) + "'");
  }

  std::string_view text_;
  size_t pos_ = 0;
};

class Parser {
 public:
  Parser(std::string_view text, std::vector<Token> tokens)
      : text_(text), tokens_(std::move(tokens)) {}

  Result<NodePtr> ParseAll() {
    ASSIGN_OR_RETURN(NodePtr root, ParseOr());
    if (Peek().kind != TokenKind::kEnd) return Expected("an operator or end of input");
    return root;
  }

 private:
  const Token& Peek(size_t ahead = 0) const {
    return tokens_[std::min(next_ + ahead, tokens_.size() - 1)];
  }
  const Token& Take() { return tokens_[std::min(next_++, tokens_.size() - 1)]; }
  size_t Position(const Token& token) const { return CharacterPosition(text_, token.offset); }

  bool IsSymbol(std::string_view symbol, size_t ahead = 0) const {
    return Peek(ahead).kind == TokenKind::kSymbol && Peek(ahead).text == symbol;
  }
  bool IsKeyword(std::string_view keyword, size_t ahead = 0) const {
    return Peek(ahead).kind == TokenKind::kIdentifier && ToLower(Peek(ahead).text) == keyword;
  }

  std::string Describe(const Token& token) const {
    switch (token.kind) {
      case TokenKind::kEnd:
        return "end of input";
      case TokenKind::kString:
        return "string '" + token.text + "'";
      case TokenKind::kQuotedIdentifier:
        return "\"" + token.text + "\"";
      default:
        return "'" + token.text + "'";
    }
  }

  Status Expected(std::string_view what) const {
    return InvalidArgument("at " + std::to_string(Position(Peek())) + ": expected " +
                           std::string(what) + ", found " + Describe(Peek()));
  }

  Status TooDeep() const {
    return InvalidArgument("at " + std::to_string(Position(Peek())) +
                           ": expression nested too deeply (more than " +
                           std::to_string(kMaxExpressionHeight) + " levels)");
  }

  Status ExpectSymbol(std::string_view symbol) {
    if (!IsSymbol(symbol)) return Expected("'" + std::string(symbol) + "'");
    ++next_;
    return Status::Ok();
  }

  NodePtr NewNode(NodeKind kind, size_t position) {
    auto node = std::make_unique<Expression::Node>();
    node->kind = kind;
    node->position = position;
    return node;
  }

  // Appends `child` to `node` and checks the height limit.
  Status Adopt(Expression::Node& node, NodePtr child) {
    node.height = std::max(node.height, child->height + 1);
    node.children.push_back(std::move(child));
    if (node.height > kMaxExpressionHeight) {
      return InvalidArgument("at " + std::to_string(node.position) +
                             ": expression nested too deeply (more than " +
                             std::to_string(kMaxExpressionHeight) + " levels)");
    }
    return Status::Ok();
  }

  Result<NodePtr> Binary(BinaryOp op, size_t position, NodePtr left, NodePtr right) {
    NodePtr node = NewNode(NodeKind::kBinary, position);
    node->op = op;
    RETURN_IF_ERROR(Adopt(*node, std::move(left)));
    RETURN_IF_ERROR(Adopt(*node, std::move(right)));
    return node;
  }

  Result<NodePtr> ParseOr() {
    ASSIGN_OR_RETURN(NodePtr left, ParseAnd());
    while (IsKeyword("or")) {
      size_t position = Position(Take());
      ASSIGN_OR_RETURN(NodePtr right, ParseAnd());
      ASSIGN_OR_RETURN(left, Binary(BinaryOp::kOr, position, std::move(left), std::move(right)));
    }
    return left;
  }

  Result<NodePtr> ParseAnd() {
    ASSIGN_OR_RETURN(NodePtr left, ParseNot());
    while (IsKeyword("and")) {
      size_t position = Position(Take());
      ASSIGN_OR_RETURN(NodePtr right, ParseNot());
      ASSIGN_OR_RETURN(left, Binary(BinaryOp::kAnd, position, std::move(left), std::move(right)));
    }
    return left;
  }

  Result<NodePtr> ParseNot() {
    if (!IsKeyword("not")) return ParseComparison();
    NodePtr node = NewNode(NodeKind::kNot, Position(Take()));
    if (++depth_ > kMaxExpressionHeight) return TooDeep();
    ASSIGN_OR_RETURN(NodePtr operand, ParseNot());
    --depth_;
    RETURN_IF_ERROR(Adopt(*node, std::move(operand)));
    return node;
  }

  Result<NodePtr> ParseComparison() {
    ASSIGN_OR_RETURN(NodePtr left, ParseAdditive());
    static constexpr std::pair<std::string_view, BinaryOp> kComparisons[] = {
        {"=", BinaryOp::kEqual},     {"==", BinaryOp::kEqual},       {"!=", BinaryOp::kNotEqual},
        {"<>", BinaryOp::kNotEqual}, {"<", BinaryOp::kLess},         {"<=", BinaryOp::kLessEqual},
        {">", BinaryOp::kGreater},   {">=", BinaryOp::kGreaterEqual}};
    for (const auto& [symbol, op] : kComparisons) {
      if (!IsSymbol(symbol)) continue;
      size_t position = Position(Take());
      ASSIGN_OR_RETURN(NodePtr right, ParseAdditive());
      return Binary(op, position, std::move(left), std::move(right));
    }
    if (IsKeyword("is")) {
      NodePtr node = NewNode(NodeKind::kIsNull, Position(Take()));
      if (IsKeyword("not")) {
        ++next_;
        node->negated = true;
      }
      if (!IsKeyword("null")) return Expected("'null'");
      ++next_;
      RETURN_IF_ERROR(Adopt(*node, std::move(left)));
      return node;
    }
    if (IsKeyword("in") || (IsKeyword("not") && IsKeyword("in", 1))) {
      NodePtr node = NewNode(NodeKind::kIn, Position(Peek()));
      node->negated = IsKeyword("not");
      next_ += node->negated ? 2 : 1;
      RETURN_IF_ERROR(ParseInList(*node));
      RETURN_IF_ERROR(Adopt(*node, std::move(left)));
      return node;
    }
    if (IsKeyword("not")) {
      ++next_;
      return Expected("'in'");
    }
    return left;
  }

  Status ParseInList(Expression::Node& node) {
    RETURN_IF_ERROR(ExpectSymbol("("));
    while (true) {
      ASSIGN_OR_RETURN(Literal literal, ParseLiteral());
      node.in_list.push_back(std::move(literal));
      if (IsSymbol(")")) break;
      if (!IsSymbol(",")) return Expected("',' or ')'");
      ++next_;
    }
    ++next_;
    return Status::Ok();
  }

  // A literal inside "in (...)": a number (optionally negative), a string, true, false or null.
  Result<Literal> ParseLiteral() {
    Literal literal;
    const Token& token = Peek();
    if (token.kind == TokenKind::kString) {
      literal.kind = Literal::Kind::kString;
      literal.string_value = Take().text;
      return literal;
    }
    if (IsKeyword("true") || IsKeyword("false")) {
      literal.kind = Literal::Kind::kBool;
      literal.bool_value = IsKeyword("true");
      ++next_;
      return literal;
    }
    if (IsKeyword("null")) {
      ++next_;
      return literal;
    }
    bool negative = IsSymbol("-") && Peek(1).kind == TokenKind::kNumber;
    if (Peek(negative ? 1 : 0).kind != TokenKind::kNumber) {
      return Expected("a literal (number, 'string', true, false or null)");
    }
    if (negative) ++next_;
    return NumberLiteral(Take(), negative);
  }

  Result<Literal> NumberLiteral(const Token& token, bool negative) {
    std::string text = (negative ? "-" : "") + token.text;
    const char* end = text.data() + text.size();
    Literal literal;
    if (token.is_integer) {
      literal.kind = Literal::Kind::kInt64;
      auto [ptr, error] = std::from_chars(text.data(), end, literal.int_value);
      if (error == std::errc() && ptr == end) return literal;
      // Too large for int64: like DuckDB, fall back to a non-integer number.
    }
    literal.kind = Literal::Kind::kDouble;
    auto [ptr, error] = std::from_chars(text.data(), end, literal.double_value);
    if (error != std::errc() || ptr != end || !std::isfinite(literal.double_value)) {
      return InvalidArgument("at " + std::to_string(Position(token)) + ": number '" + token.text +
                             "' is out of range");
    }
    return literal;
  }

  Result<NodePtr> ParseAdditive() {
    ASSIGN_OR_RETURN(NodePtr left, ParseMultiplicative());
    while (IsSymbol("+") || IsSymbol("-")) {
      BinaryOp op = Peek().text == "+" ? BinaryOp::kAdd : BinaryOp::kSubtract;
      size_t position = Position(Take());
      ASSIGN_OR_RETURN(NodePtr right, ParseMultiplicative());
      ASSIGN_OR_RETURN(left, Binary(op, position, std::move(left), std::move(right)));
    }
    return left;
  }

  Result<NodePtr> ParseMultiplicative() {
    ASSIGN_OR_RETURN(NodePtr left, ParseUnary());
    while (IsSymbol("*") || IsSymbol("/") || IsSymbol("%")) {
      const std::string& symbol = Peek().text;
      BinaryOp op = symbol == "*"   ? BinaryOp::kMultiply
                    : symbol == "/" ? BinaryOp::kDivide
                                    : BinaryOp::kModulo;
      size_t position = Position(Take());
      ASSIGN_OR_RETURN(NodePtr right, ParseUnary());
      ASSIGN_OR_RETURN(left, Binary(op, position, std::move(left), std::move(right)));
    }
    return left;
  }

  // "-" directly before a number is part of the literal (so that
  // -9223372036854775808 is an int64); before a literal it is folded into it,
  // so `-5`, `- 5` and `-(5)` are the same tree.
  Result<NodePtr> ParseUnary() {
    if (!IsSymbol("-")) return ParsePrimary();
    size_t position = Position(Take());
    if (Peek().kind == TokenKind::kNumber) {
      NodePtr node = NewNode(NodeKind::kLiteral, position);
      ASSIGN_OR_RETURN(node->literal, NumberLiteral(Take(), /*negative=*/true));
      return node;
    }
    if (++depth_ > kMaxExpressionHeight) return TooDeep();
    ASSIGN_OR_RETURN(NodePtr operand, ParseUnary());
    --depth_;
    if (operand->kind == NodeKind::kLiteral) {
      Literal& literal = operand->literal;
      if (literal.kind == Literal::Kind::kDouble) {
        literal.double_value = -literal.double_value;
        return operand;
      }
      if (literal.kind == Literal::Kind::kInt64 &&
          literal.int_value != std::numeric_limits<int64_t>::min()) {
        literal.int_value = -literal.int_value;
        return operand;
      }
    }
    NodePtr node = NewNode(NodeKind::kNegate, position);
    RETURN_IF_ERROR(Adopt(*node, std::move(operand)));
    return node;
  }

  Result<NodePtr> ParsePrimary() {
    const Token& token = Peek();
    size_t position = Position(token);
    if (token.kind == TokenKind::kNumber) {
      NodePtr node = NewNode(NodeKind::kLiteral, position);
      ASSIGN_OR_RETURN(node->literal, NumberLiteral(Take(), /*negative=*/false));
      return node;
    }
    if (token.kind == TokenKind::kString || IsKeyword("true") || IsKeyword("false") ||
        IsKeyword("null")) {
      NodePtr node = NewNode(NodeKind::kLiteral, position);
      ASSIGN_OR_RETURN(node->literal, ParseLiteral());
      return node;
    }
    if (IsSymbol("(")) {
      ++next_;
      if (++depth_ > kMaxExpressionHeight) return TooDeep();
      ASSIGN_OR_RETURN(NodePtr inner, ParseOr());
      --depth_;
      RETURN_IF_ERROR(ExpectSymbol(")"));
      return inner;
    }
    if (token.kind == TokenKind::kQuotedIdentifier ||
        (token.kind == TokenKind::kIdentifier && !IsReservedWord(ToLower(token.text)))) {
      if (token.kind == TokenKind::kIdentifier && IsSymbol("(", 1)) return ParseCall();
      NodePtr node = NewNode(NodeKind::kColumn, position);
      node->name = Take().text;
      return node;
    }
    return Expected("an expression");
  }

  Result<NodePtr> ParseCall() {
    NodePtr node = NewNode(NodeKind::kCall, Position(Peek()));
    node->name = ToLower(Take().text);
    ++next_;  // "("
    if (IsSymbol(")")) {
      ++next_;
      return node;
    }
    if (++depth_ > kMaxExpressionHeight) return TooDeep();
    while (true) {
      ASSIGN_OR_RETURN(NodePtr argument, ParseOr());
      RETURN_IF_ERROR(Adopt(*node, std::move(argument)));
      if (IsSymbol(")")) break;
      if (!IsSymbol(",")) return Expected("',' or ')'");
      ++next_;
    }
    --depth_;
    ++next_;
    return node;
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  size_t next_ = 0;
  uint32_t depth_ = 0;  // recursion depth of the parser itself
};

std::string QuoteIdentifierIfNeeded(const std::string& name) {
  bool plain = !name.empty() && IsIdentifierStart(name[0]) &&
               std::all_of(name.begin(), name.end(), IsIdentifierChar) &&
               !IsReservedWord(ToLower(name));
  if (plain) return name;
  std::string quoted = "\"";
  for (char c : name) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string LiteralString(const Literal& literal) {
  switch (literal.kind) {
    case Literal::Kind::kNull:
      return "null";
    case Literal::Kind::kBool:
      return literal.bool_value ? "true" : "false";
    case Literal::Kind::kInt64:
      return std::to_string(literal.int_value);
    case Literal::Kind::kDouble: {
      // Shortest round-trip spelling; ".0" keeps it a double when re-parsed.
      char buffer[64];
      auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), literal.double_value);
      std::string text(buffer, error == std::errc() ? end : buffer);
      if (text.find_first_of(".e") == std::string::npos) text += ".0";
      return text;
    }
    case Literal::Kind::kString: {
      std::string quoted = "'";
      for (char c : literal.string_value)
        quoted += c == '\'' ? std::string("''") : std::string(1, c);
      return quoted + "'";
    }
  }
  return "null";
}

}  // namespace

size_t CharacterPosition(std::string_view text, size_t byte_offset) {
  size_t position = 1;
  for (size_t i = 0; i < byte_offset && i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++position;
  }
  return position;
}

Result<std::unique_ptr<Expression::Node>> ParseTree(std::string_view text) {
  ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenizer(text).Run());
  return Parser(text, std::move(tokens)).ParseAll();
}

std::string_view BinaryOpSymbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAnd:
      return "and";
    case BinaryOp::kOr:
      return "or";
    case BinaryOp::kEqual:
      return "=";
    case BinaryOp::kNotEqual:
      return "!=";
    case BinaryOp::kLess:
      return "<";
    case BinaryOp::kLessEqual:
      return "<=";
    case BinaryOp::kGreater:
      return ">";
    case BinaryOp::kGreaterEqual:
      return ">=";
    case BinaryOp::kAdd:
      return "+";
    case BinaryOp::kSubtract:
      return "-";
    case BinaryOp::kMultiply:
      return "*";
    case BinaryOp::kDivide:
      return "/";
    case BinaryOp::kModulo:
      return "%";
  }
  return "?";
}

std::string CanonicalString(const Expression::Node& node) {
  switch (node.kind) {
    case NodeKind::kLiteral:
      return LiteralString(node.literal);
    case NodeKind::kColumn:
      return QuoteIdentifierIfNeeded(node.name);
    case NodeKind::kNegate:
      return "(-" + CanonicalString(*node.children[0]) + ")";
    case NodeKind::kNot:
      return "(not " + CanonicalString(*node.children[0]) + ")";
    case NodeKind::kBinary:
      return "(" + CanonicalString(*node.children[0]) + " " + std::string(BinaryOpSymbol(node.op)) +
             " " + CanonicalString(*node.children[1]) + ")";
    case NodeKind::kIsNull:
      return "(" + CanonicalString(*node.children[0]) +
             (node.negated ? " is not null)" : " is null)");
    case NodeKind::kIn: {
      std::string text =
          "(" + CanonicalString(*node.children[0]) + (node.negated ? " not in (" : " in (");
      for (size_t i = 0; i < node.in_list.size(); ++i) {
        text += (i > 0 ? ", " : "") + LiteralString(node.in_list[i]);
      }
      return text + "))";
    }
    case NodeKind::kCall: {
      std::string text = node.name + "(";
      for (size_t i = 0; i < node.children.size(); ++i) {
        text += (i > 0 ? ", " : "") + CanonicalString(*node.children[i]);
      }
      return text + ")";
    }
  }
  return "";
}

}  // namespace expr_internal
}  // namespace keel::features
