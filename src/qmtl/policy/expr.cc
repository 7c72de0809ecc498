#include "qmtl/policy/expr.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "qmtl/core/duration.h"
#include "qmtl/core/enum_name.h"
#include "qmtl/metrics/kpi.h"

namespace qmtl::policy {

std::string_view tri_name(Tri t) {
  static constexpr std::array<std::string_view, 3> kNames{"false", "true", "missing"};
  return enum_name(t, kNames);
}

std::string MetricRef::text() const {
  return arg ? fmt::format("{}({})", name, format_duration(*arg)) : name;
}

int RefTable::intern(const MetricRef& ref) {
  for (size_t i = 0; i < refs_.size(); ++i) {
    if (refs_[i] == ref) return static_cast<int>(i);
  }
  refs_.push_back(ref);
  return static_cast<int>(refs_.size() - 1);
}

std::string_view closest_name(std::string_view word, std::span<const std::string_view> candidates) {
  auto distance = [](std::string_view a, std::string_view b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        cur[j] =
            std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      }
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  std::string_view best;
  size_t best_d = SIZE_MAX;
  for (auto c : candidates) {
    const size_t d = distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  if (best.empty() || best_d > std::max<size_t>(2, word.size() / 3)) return {};
  return best;
}

std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates) {
  const std::string_view best = closest_name(word, candidates);
  return best.empty() ? "" : fmt::format("did you mean '{}'?", best);
}

// Recursive-descent parser producing Expr nodes; errors carry the byte offset.
class ExprParser {
 public:
  ExprParser(std::string_view text, RefTable& table) : s_(text), table_(table) {}

  tl::expected<Expr, ExprError> run(ExprType want) {
    skip_ws();
    if (pos_ >= s_.size()) return fail(0, "the expression is empty");
    auto root = parse_or();
    if (!root) return tl::unexpected(root.error());
    skip_ws();
    if (pos_ < s_.size()) {
      if (peek_op() == "=") return fail(pos_, "use '==' to compare, not '='");
      if (peek_op() == "&&" || peek_op() == "||") {
        return fail(pos_, "use 'and' / 'or' instead of '&&' / '||'");
      }
      const std::string_view word = s_.substr(pos_, token_len());
      if (word == "AND" || word == "OR" || word == "NOT") {
        return fail(pos_,
                    fmt::format("keywords are lowercase: write '{}'", word == "AND"  ? "and"
                                                                      : word == "OR" ? "or"
                                                                                     : "not"));
      }
      return fail(pos_, fmt::format("unexpected '{}'", s_.substr(pos_, token_len())));
    }
    out_.root_ = root->index;
    out_.finish();
    if (root->type != want) {
      return fail(0, want == ExprType::kBool
                         ? "a gate must be a condition (e.g. 'sharpe >= 1.5'), not a number"
                         : "a score must be a number (e.g. 'sharpe + 0.1 * win_rate'), not a "
                           "condition");
    }
    return std::move(out_);
  }

 private:
  using Op = Expr::Op;
  struct Sub {
    int index;
    ExprType type;
    size_t at;  // offset where it starts
  };
  using R = tl::expected<Sub, ExprError>;

  static tl::unexpected<ExprError> fail(size_t at, std::string msg) {
    return tl::unexpected(ExprError{at, std::move(msg)});
  }

  void skip_ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  static bool ident_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  }
  static bool ident_char(char c) { return ident_start(c) || (c >= '0' && c <= '9'); }
  size_t token_len() const {
    if (pos_ >= s_.size()) return 0;
    if (!ident_char(s_[pos_])) return 1;
    size_t e = pos_;
    while (e < s_.size() && ident_char(s_[e])) ++e;
    return e - pos_;
  }
  std::string_view peek_op() const {
    for (std::string_view op : {"<=", ">=", "==", "!=", "&&", "||", "<", ">", "=", "!"}) {
      if (s_.substr(pos_).starts_with(op)) return op;
    }
    return {};
  }
  bool keyword(std::string_view kw) {
    skip_ws();
    if (!s_.substr(pos_).starts_with(kw)) return false;
    const size_t e = pos_ + kw.size();
    if (e < s_.size() && ident_char(s_[e])) return false;
    pos_ = e;
    return true;
  }
  bool symbol(char c) {
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  int add(Expr::Node n) {
    out_.nodes_.push_back(std::move(n));
    return static_cast<int>(out_.nodes_.size() - 1);
  }

  tl::expected<void, ExprError> need(const Sub& x, ExprType t, std::string_view what) {
    if (x.type == t) return {};
    return fail(x.at, t == ExprType::kBool
                          ? fmt::format("{} needs a condition here, not a number", what)
                          : fmt::format("{} needs a number here, not a condition", what));
  }

  // An n-ary chain of conditions joined by `word` ("or" / "and") into one node.
  R parse_chain(std::string_view word, Op op, R (ExprParser::*next)()) {
    auto first = (this->*next)();
    if (!first) return first;
    const std::string what = fmt::format("'{}'", word);
    std::vector<int> kids{first->index};
    while (keyword(word)) {
      if (auto ok = need(*first, ExprType::kBool, what); !ok) return tl::unexpected(ok.error());
      auto more = (this->*next)();
      if (!more) return more;
      if (auto ok = need(*more, ExprType::kBool, what); !ok) return tl::unexpected(ok.error());
      kids.push_back(more->index);
    }
    if (kids.size() == 1) return first;
    return Sub{add({.op = op, .kids = kids}), ExprType::kBool, first->at};
  }
  R parse_or() { return parse_chain("or", Op::kOr, &ExprParser::parse_and); }
  R parse_and() { return parse_chain("and", Op::kAnd, &ExprParser::parse_not); }

  R parse_not() {
    skip_ws();
    const size_t at = pos_;
    if (keyword("not")) {
      if (++depth_ > kMaxDepth) return fail(at, "the expression is nested too deeply");
      auto x = parse_not();
      --depth_;
      if (!x) return x;
      if (auto ok = need(*x, ExprType::kBool, "'not'"); !ok) return tl::unexpected(ok.error());
      return Sub{add({.op = Op::kNot, .kids = {x->index}}), ExprType::kBool, at};
    }
    return parse_compare();
  }

  R parse_compare() {
    auto lhs = parse_sum();
    if (!lhs) return lhs;
    skip_ws();
    const std::string_view op = peek_op();
    Op o;
    if (op == "<")
      o = Op::kLt;
    else if (op == "<=")
      o = Op::kLe;
    else if (op == ">")
      o = Op::kGt;
    else if (op == ">=")
      o = Op::kGe;
    else if (op == "==")
      o = Op::kEq;
    else if (op == "!=")
      o = Op::kNe;
    else if (op == "=")
      return fail(pos_, "use '==' to compare, not '='");
    else
      return lhs;
    pos_ += op.size();
    if (auto ok = need(*lhs, ExprType::kNumber, fmt::format("'{}'", op)); !ok) {
      return tl::unexpected(ok.error());
    }
    auto rhs = parse_sum();
    if (!rhs) return rhs;
    if (auto ok = need(*rhs, ExprType::kNumber, fmt::format("'{}'", op)); !ok) {
      return tl::unexpected(ok.error());
    }
    skip_ws();
    const std::string_view again = peek_op();
    if (again == "<" || again == "<=" || again == ">" || again == ">=" || again == "==" ||
        again == "!=") {
      return fail(pos_, "comparisons cannot be chained; join them with 'and'");
    }
    return Sub{add({.op = o, .kids = {lhs->index, rhs->index}}), ExprType::kBool, lhs->at};
  }

  // One left-associative level of arithmetic: next (op next)*, numbers only.
  R parse_arith(char sym_a, Op op_a, char sym_b, Op op_b, R (ExprParser::*next)()) {
    auto lhs = (this->*next)();
    if (!lhs) return lhs;
    for (;;) {
      Op o;
      if (symbol(sym_a))
        o = op_a;
      else if (symbol(sym_b))
        o = op_b;
      else
        return lhs;
      if (auto ok = need(*lhs, ExprType::kNumber, "arithmetic"); !ok)
        return tl::unexpected(ok.error());
      auto rhs = (this->*next)();
      if (!rhs) return rhs;
      if (auto ok = need(*rhs, ExprType::kNumber, "arithmetic"); !ok)
        return tl::unexpected(ok.error());
      lhs = Sub{add({.op = o, .kids = {lhs->index, rhs->index}}), ExprType::kNumber, lhs->at};
    }
  }
  R parse_sum() { return parse_arith('+', Op::kAdd, '-', Op::kSub, &ExprParser::parse_product); }
  R parse_product() { return parse_arith('*', Op::kMul, '/', Op::kDiv, &ExprParser::parse_unary); }

  R parse_unary() {
    skip_ws();
    const size_t at = pos_;
    if (symbol('-')) {
      if (++depth_ > kMaxDepth) return fail(at, "the expression is nested too deeply");
      auto x = parse_unary();
      --depth_;
      if (!x) return x;
      if (auto ok = need(*x, ExprType::kNumber, "'-'"); !ok) return tl::unexpected(ok.error());
      return Sub{add({.op = Op::kNeg, .kids = {x->index}}), ExprType::kNumber, at};
    }
    return parse_primary();
  }

  R parse_primary() {
    skip_ws();
    const size_t at = pos_;
    if (pos_ >= s_.size()) return fail(pos_, "the expression ends too early");
    const char c = s_[pos_];
    if (c == '(') {
      if (++depth_ > kMaxDepth) return fail(pos_, "the expression is nested too deeply");
      ++pos_;
      auto x = parse_or();
      --depth_;
      if (!x) return x;
      if (!symbol(')'))
        return fail(pos_, fmt::format("missing ')' for the '(' at column {}", at + 1));
      x->at = at;
      return x;
    }
    if ((c >= '0' && c <= '9') || c == '.') return parse_number();
    if (ident_start(c)) return parse_ident();
    if (c == '!') return fail(pos_, "use 'not' instead of '!'");
    return fail(pos_, fmt::format("unexpected '{}'", s_.substr(pos_, 1)));
  }

  R parse_number() {
    const size_t at = pos_;
    size_t e = pos_;
    while (e < s_.size() && ((s_[e] >= '0' && s_[e] <= '9') || s_[e] == '.')) ++e;
    if (e < s_.size() && (s_[e] == 'e' || s_[e] == 'E')) {
      size_t k = e + 1;
      if (k < s_.size() && (s_[k] == '+' || s_[k] == '-')) ++k;
      if (k < s_.size() && s_[k] >= '0' && s_[k] <= '9') {
        e = k;
        while (e < s_.size() && s_[e] >= '0' && s_[e] <= '9') ++e;
      }
    }
    const std::string num(s_.substr(at, e - at));
    char* end = nullptr;
    const double v = std::strtod(num.c_str(), &end);
    if (end != num.c_str() + num.size() || !std::isfinite(v) ||
        std::count(num.begin(), num.end(), '.') > 1) {
      return fail(at, fmt::format("'{}' is not a number", num));
    }
    pos_ = e;
    if (pos_ < s_.size() && ident_char(s_[pos_])) {
      return fail(at, fmt::format("'{}' is not a number; durations go inside a metric's "
                                  "parentheses, e.g. worst_loss(5m)",
                                  s_.substr(at, pos_ - at + token_len())));
    }
    double value = v;
    if (pos_ < s_.size() && s_[pos_] == '%') {
      ++pos_;
      value = v / 100.0;
    }
    return Sub{add({.op = Op::kNumber, .number = value}), ExprType::kNumber, at};
  }

  R parse_ident() {
    const size_t at = pos_;
    const size_t len = token_len();
    const std::string name(s_.substr(at, len));
    pos_ += len;
    if (name == "true" || name == "false") {
      return Sub{add({.op = Op::kBool, .number = name == "true" ? 1.0 : 0.0}), ExprType::kBool, at};
    }
    if (name == "AND" || name == "OR" || name == "NOT") {
      return fail(at, fmt::format("keywords are lowercase: write '{}'", name == "AND"  ? "and"
                                                                        : name == "OR" ? "or"
                                                                                       : "not"));
    }
    const auto names = metrics::metric_names();
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      const std::string hint = did_you_mean(name, names);
      return fail(at, fmt::format("unknown metric '{}'{}", name, hint.empty() ? "" : "; " + hint));
    }
    MetricRef ref{.name = name};
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '(') {
      const size_t open = pos_;
      const size_t close = s_.find(')', open);
      if (close == std::string_view::npos) return fail(open, "missing ')' after the window");
      std::string_view arg = s_.substr(open + 1, close - open - 1);
      while (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);
      while (!arg.empty() && arg.back() == ' ') arg.remove_suffix(1);
      auto d = parse_duration(arg);
      if (!d) return fail(open + 1, d.error().message);
      if (*d <= Duration::zero()) return fail(open + 1, "the window must be longer than zero");
      ref.arg = *d;
      pos_ = close + 1;
    } else if (name == "worst_loss") {
      return fail(at, "worst_loss needs a window, e.g. worst_loss(5m)");
    }
    const int slot = table_.intern(ref);
    return Sub{add({.op = Op::kMetric, .slot = slot, .metric_text = ref.text()}), ExprType::kNumber,
               at};
  }

  // Bounds the recursion so that hostile input cannot exhaust the stack.
  static constexpr int kMaxDepth = 64;
  std::string_view s_;
  RefTable& table_;
  size_t pos_ = 0;
  int depth_ = 0;
  Expr out_;
};

tl::expected<Expr, ExprError> Expr::compile(std::string_view text, ExprType want, RefTable& table) {
  return ExprParser(text, table).run(want);
}

int Expr::append(const Expr& other) {
  const int base = static_cast<int>(nodes_.size());
  for (Node n : other.nodes_) {
    for (int& k : n.kids) k += base;
    nodes_.push_back(std::move(n));
  }
  return other.root_ + base;
}

Expr Expr::all_of(std::vector<Expr> parts) {
  if (parts.size() == 1) return std::move(parts[0]);
  Expr e;
  Node n{.op = Op::kAnd};
  for (const auto& p : parts) n.kids.push_back(e.append(p));
  e.nodes_.push_back(std::move(n));
  e.root_ = static_cast<int>(e.nodes_.size() - 1);
  e.finish();
  return e;
}

Expr Expr::any_of(std::vector<Expr> parts) {
  if (parts.size() == 1) return std::move(parts[0]);
  Expr e;
  Node n{.op = Op::kOr};
  for (const auto& p : parts) n.kids.push_back(e.append(p));
  e.nodes_.push_back(std::move(n));
  e.root_ = static_cast<int>(e.nodes_.size() - 1);
  e.finish();
  return e;
}

Expr Expr::constant(bool value) {
  Expr e;
  e.nodes_.push_back({.op = Op::kBool, .number = value ? 1.0 : 0.0});
  e.root_ = 0;
  return e;
}

Expr Expr::negate(const Expr& inner) {
  Expr e;
  const int k = e.append(inner);
  e.nodes_.push_back({.op = Op::kNot, .kids = {k}});
  e.root_ = static_cast<int>(e.nodes_.size() - 1);
  e.finish();
  return e;
}

ExprType Expr::type() const {
  switch (nodes_[static_cast<size_t>(root_)].op) {
    case Op::kNumber:
    case Op::kMetric:
    case Op::kNeg:
    case Op::kAdd:
    case Op::kSub:
    case Op::kMul:
    case Op::kDiv:
      return ExprType::kNumber;
    default:
      return ExprType::kBool;
  }
}

std::optional<double> Expr::num_node(int i, std::span<const std::optional<double>> slots) const {
  const Node& n = nodes_[static_cast<size_t>(i)];
  switch (n.op) {
    case Op::kNumber:
      return n.number;
    case Op::kMetric: {
      const auto& v = slots[static_cast<size_t>(n.slot)];
      if (!v || !std::isfinite(*v)) return std::nullopt;
      return v;
    }
    case Op::kNeg: {
      auto x = num_node(n.kids[0], slots);
      if (!x) return std::nullopt;
      return -*x;
    }
    default: {
      auto a = num_node(n.kids[0], slots);
      auto b = num_node(n.kids[1], slots);
      if (!a || !b) return std::nullopt;
      double r = 0;
      switch (n.op) {
        case Op::kAdd:
          r = *a + *b;
          break;
        case Op::kSub:
          r = *a - *b;
          break;
        case Op::kMul:
          r = *a * *b;
          break;
        case Op::kDiv:
          if (*b == 0) return std::nullopt;
          r = *a / *b;
          break;
        default:
          return std::nullopt;
      }
      if (!std::isfinite(r)) return std::nullopt;
      return r;
    }
  }
}

Tri Expr::test_node(int i, std::span<const std::optional<double>> slots,
                    std::vector<ClauseResult>* clauses) const {
  const Node& n = nodes_[static_cast<size_t>(i)];
  switch (n.op) {
    case Op::kBool:
      return n.number != 0 ? Tri::kTrue : Tri::kFalse;
    case Op::kNot: {
      const Tri t = test_node(n.kids[0], slots, clauses);
      return t == Tri::kMissing ? t : (t == Tri::kTrue ? Tri::kFalse : Tri::kTrue);
    }
    case Op::kAnd:
    case Op::kOr: {
      // No short-circuit: every clause is evaluated so the explanation is complete.
      bool any_missing = false, any_true = false, any_false = false;
      for (int k : n.kids) {
        const Tri t = test_node(k, slots, clauses);
        any_missing |= t == Tri::kMissing;
        any_true |= t == Tri::kTrue;
        any_false |= t == Tri::kFalse;
      }
      if (n.op == Op::kAnd)
        return any_false ? Tri::kFalse : any_missing ? Tri::kMissing : Tri::kTrue;
      return any_true ? Tri::kTrue : any_missing ? Tri::kMissing : Tri::kFalse;
    }
    default: {
      const auto a = num_node(n.kids[0], slots);
      const auto b = num_node(n.kids[1], slots);
      Tri t = Tri::kMissing;
      if (a && b) {
        bool r = false;
        switch (n.op) {
          case Op::kLt:
            r = *a < *b;
            break;
          case Op::kLe:
            r = *a <= *b;
            break;
          case Op::kGt:
            r = *a > *b;
            break;
          case Op::kGe:
            r = *a >= *b;
            break;
          case Op::kEq:
            r = *a == *b;
            break;
          case Op::kNe:
            r = *a != *b;
            break;
          default:
            break;
        }
        t = r ? Tri::kTrue : Tri::kFalse;
      }
      if (clauses != nullptr) clauses->push_back({n.clause_text, a, t});
      return t;
    }
  }
}

Tri Expr::test(std::span<const std::optional<double>> slots,
               std::vector<ClauseResult>* clauses) const {
  if (root_ < 0) return Tri::kMissing;
  return test_node(root_, slots, clauses);
}

std::optional<double> Expr::value(std::span<const std::optional<double>> slots) const {
  if (root_ < 0) return std::nullopt;
  return num_node(root_, slots);
}

namespace {

// Binding strength, higher binds tighter.
int precedence(std::string_view op) {
  if (op == "or") return 1;
  if (op == "and") return 2;
  if (op == "not") return 3;
  if (op == "cmp") return 4;
  if (op == "+" || op == "-") return 5;
  if (op == "*" || op == "/") return 6;
  if (op == "neg") return 7;
  return 8;
}

std::string format_number(double v) { return fmt::format("{}", v); }

}  // namespace

std::string Expr::text_node(int i, int parent_prec) const {
  const Node& n = nodes_[static_cast<size_t>(i)];
  auto wrap = [&](int prec, const std::string& s) {
    return prec < parent_prec ? fmt::format("({})", s) : s;
  };
  switch (n.op) {
    case Op::kNumber:
      return format_number(n.number);
    case Op::kBool:
      return n.number != 0 ? "true" : "false";
    case Op::kMetric:
      return n.metric_text;
    case Op::kNeg:
      // fmt, not "-" + string: GCC 12 raises a false -Wrestrict on the latter.
      return wrap(precedence("neg"), fmt::format("-{}", text_node(n.kids[0], precedence("neg"))));
    case Op::kNot:
      return wrap(precedence("not"),
                  fmt::format("not {}", text_node(n.kids[0], precedence("not"))));
    case Op::kAnd:
    case Op::kOr: {
      const std::string_view word = n.op == Op::kAnd ? "and" : "or";
      const int p = precedence(word);
      std::string s;
      for (size_t k = 0; k < n.kids.size(); ++k) {
        if (k > 0) s += fmt::format(" {} ", word);
        s += text_node(n.kids[k], p + 1);
      }
      return wrap(p, s);
    }
    default: {
      std::string_view sym;
      int p = precedence("cmp");
      switch (n.op) {
        case Op::kAdd:
          sym = "+";
          p = precedence("+");
          break;
        case Op::kSub:
          sym = "-";
          p = precedence("-");
          break;
        case Op::kMul:
          sym = "*";
          p = precedence("*");
          break;
        case Op::kDiv:
          sym = "/";
          p = precedence("/");
          break;
        case Op::kLt:
          sym = "<";
          break;
        case Op::kLe:
          sym = "<=";
          break;
        case Op::kGt:
          sym = ">";
          break;
        case Op::kGe:
          sym = ">=";
          break;
        case Op::kEq:
          sym = "==";
          break;
        case Op::kNe:
          sym = "!=";
          break;
        default:
          break;
      }
      // Left-associative: the right operand of a same-precedence operator needs
      // parentheses (a - (b - c)); comparisons never chain, so both sides bind tighter.
      const bool cmp = p == precedence("cmp");
      return wrap(p, fmt::format("{} {} {}", text_node(n.kids[0], cmp ? p + 1 : p), sym,
                                 text_node(n.kids[1], p + 1)));
    }
  }
}

void Expr::finish() {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Op op = nodes_[i].op;
    if (op == Op::kLt || op == Op::kLe || op == Op::kGt || op == Op::kGe || op == Op::kEq ||
        op == Op::kNe) {
      nodes_[i].clause_text = text_node(static_cast<int>(i), 0);
    }
  }
}

std::string Expr::to_string() const { return root_ < 0 ? "" : text_node(root_, 0); }

std::vector<Expr::Bound> Expr::bounds(Op chain) const {
  std::vector<Bound> out;
  if (root_ < 0) return out;
  std::vector<int> leaves;
  const Node& r = nodes_[static_cast<size_t>(root_)];
  if (r.op == chain) {
    leaves = r.kids;
  } else {
    leaves = {root_};
  }
  for (int i : leaves) {
    const Node& n = nodes_[static_cast<size_t>(i)];
    std::string op;
    switch (n.op) {
      case Op::kLt:
        op = "<";
        break;
      case Op::kLe:
        op = "<=";
        break;
      case Op::kGt:
        op = ">";
        break;
      case Op::kGe:
        op = ">=";
        break;
      default:
        continue;
    }
    const Node& a = nodes_[static_cast<size_t>(n.kids[0])];
    const Node& b = nodes_[static_cast<size_t>(n.kids[1])];
    if (a.op == Op::kMetric && b.op == Op::kNumber) out.push_back({a.slot, op, b.number});
  }
  return out;
}

std::vector<Expr::Bound> Expr::conjunct_bounds() const { return bounds(Op::kAnd); }
std::vector<Expr::Bound> Expr::disjunct_bounds() const { return bounds(Op::kOr); }

}  // namespace qmtl::policy
