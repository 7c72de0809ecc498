// The policy expression language: gates (boolean) and scores (numeric).
//
//   expr    := or
//   or      := and ('or' and)*
//   and     := not ('and' not)*
//   not     := 'not' not | compare
//   compare := sum [('<' | '<=' | '>' | '>=' | '==' | '!=') sum]
//   sum     := product (('+' | '-') product)*
//   product := unary (('*' | '/') unary)*
//   unary   := '-' unary | primary
//   primary := NUMBER ['%'] | 'true' | 'false' | METRIC ['(' DURATION ')'] | '(' expr ')'
//
// METRIC is a name from metrics::metric_names(); `worst_loss(5m)` takes its loss
// window, every other metric an optional lookback (`sharpe(4w)`). `5%` is 0.05.
//
// Values may be missing. Arithmetic on a missing value (or division by zero) is
// missing; a comparison with a missing operand is kMissing; `not`, `and` and `or`
// follow three-valued logic (false and missing = false, true or missing = true).
// A gate passes only when it is kTrue: missing is never a pass.
//
// Thread safety: a compiled Expr is immutable; evaluate from any number of threads.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qmtl/core/result.h"
#include "qmtl/core/time.h"

namespace qmtl::policy {

enum class Tri : uint8_t { kFalse, kTrue, kMissing };
std::string_view tri_name(Tri t);  // "false", "true", "missing"

// A metric an expression reads: a name and the argument given in parentheses.
struct MetricRef {
  std::string name;
  std::optional<Duration> arg;
  std::string text() const;  // "sharpe" or "worst_loss(5m)"
  friend bool operator==(const MetricRef&, const MetricRef&) = default;
};

// Interns the metric references of all expressions of one policy, so each
// strategy's values are computed once and read by slot index.
class RefTable {
 public:
  int intern(const MetricRef& ref);
  const std::vector<MetricRef>& refs() const { return refs_; }
  size_t size() const { return refs_.size(); }

 private:
  std::vector<MetricRef> refs_;
};

// One comparison of a gate, as evaluated for one strategy.
struct ClauseResult {
  std::string expr;             // canonical text, e.g. "sharpe >= 1.5"
  std::optional<double> value;  // the left-hand side's value
  Tri pass = Tri::kMissing;
};

// A compile error: where in the expression text, and what to fix.
struct ExprError {
  size_t offset = 0;  // 0-based byte offset into the expression
  std::string message;
};

enum class ExprType : uint8_t { kBool, kNumber };

class Expr {
 public:
  Expr() = default;

  // Compiles `text` and checks it has type `want`. Metric references are interned
  // in `table`.
  static tl::expected<Expr, ExprError> compile(std::string_view text, ExprType want,
                                               RefTable& table);
  // The structured forms {and: [...]} and {or: [...]}; parts must be boolean.
  static Expr all_of(std::vector<Expr> parts);
  static Expr any_of(std::vector<Expr> parts);
  static Expr constant(bool value);
  // not e (e must be boolean).
  static Expr negate(const Expr& e);

  bool empty() const { return nodes_.empty(); }
  ExprType type() const;

  // Evaluates a boolean expression. `slots` holds a value per RefTable slot. When
  // `clauses` is given, every comparison's result is appended to it.
  Tri test(std::span<const std::optional<double>> slots,
           std::vector<ClauseResult>* clauses = nullptr) const;
  // Evaluates a numeric expression; nullopt when missing.
  std::optional<double> value(std::span<const std::optional<double>> slots) const;

  // Canonical text with minimal parentheses; compile(to_string()) gives an
  // equivalent expression.
  std::string to_string() const;

  // For static analysis (policy checks): if this is `metric OP constant` (or a
  // conjunction / disjunction of such), the comparisons; empty otherwise.
  struct Bound {
    int slot;
    std::string op;  // "<", "<=", ">", ">="
    double constant;
  };
  std::vector<Bound> conjunct_bounds() const;  // top-level 'and' chain
  std::vector<Bound> disjunct_bounds() const;  // top-level 'or' chain

  friend bool operator==(const Expr& a, const Expr& b) { return a.to_string() == b.to_string(); }

 private:
  enum class Op : uint8_t {
    kNumber,
    kBool,
    kMetric,
    kNeg,
    kAdd,
    kSub,
    kMul,
    kDiv,
    kLt,
    kLe,
    kGt,
    kGe,
    kEq,
    kNe,
    kNot,
    kAnd,
    kOr
  };
  struct Node {
    Op op;
    double number = 0;
    int slot = -1;
    std::string metric_text;  // for kMetric: the reference as written canonically
    std::vector<int> kids;
    std::string clause_text;  // for comparisons: canonical text, made once by finish()
  };
  friend class ExprParser;

  Tri test_node(int n, std::span<const std::optional<double>> slots,
                std::vector<ClauseResult>* clauses) const;
  std::optional<double> num_node(int n, std::span<const std::optional<double>> slots) const;
  std::string text_node(int n, int parent_prec) const;
  int append(const Expr& other);  // copies other's nodes, returns its root index
  // Precomputes what evaluation reports, so evaluating formats nothing.
  void finish();
  std::vector<Bound> bounds(Op chain) const;

  std::vector<Node> nodes_;
  int root_ = -1;
};

// The candidate nearest `word` (edit distance at most 2, or a third of its
// length), or "" when none is near: for "did you mean" hints.
std::string_view closest_name(std::string_view word, std::span<const std::string_view> candidates);
// "did you mean 'sharpe'?" for a near miss among `candidates`, else "".
std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates);

}  // namespace qmtl::policy
