// Nodes that combine values rather than summarize a window: comparisons,
// boolean logic and arithmetic, so a declarative strategy can say "RSI below
// 30" or "close above the upper band and volume above its average"
// (docs/sdk.md). Each takes its operands as they are emitted for the same
// bucket; the second operand may be a constant (`value` in a strategy file).
//
//   gt ge lt le    1 when a > b (>=, <, <=), else 0
//   and or         1 when every (any) operand is non-zero, else 0; 2 or more
//   not            1 when a is 0, else 0
//   add sub mul div  a + b, a - b, a * b, a / b; a division by 0 is not a
//                  number and fails the node (docs/sdk.md, node states)
//
// Every one emits from its operands' first common bucket: no warm-up of its own.
//
// Thread safety: plain values; one instance per thread.
#pragma once

#include <optional>
#include <span>

namespace qmtl::sdk {

enum class CompareOp { kGt, kGe, kLt, kLe };

class Compare {
 public:
  explicit Compare(CompareOp op, double level = 0) : op_(op), level_(level) {}
  std::optional<double> update(double a) const { return update(a, level_); }
  std::optional<double> update(double a, double b) const {
    switch (op_) {
      case CompareOp::kGt:
        return a > b ? 1.0 : 0.0;
      case CompareOp::kGe:
        return a >= b ? 1.0 : 0.0;
      case CompareOp::kLt:
        return a < b ? 1.0 : 0.0;
      case CompareOp::kLe:
        return a <= b ? 1.0 : 0.0;
    }
    return std::nullopt;
  }

 private:
  CompareOp op_;
  double level_;
};

enum class ArithOp { kAdd, kSub, kMul, kDiv };

class Arith {
 public:
  explicit Arith(ArithOp op, double operand = 0) : op_(op), operand_(operand) {}
  std::optional<double> update(double a) const { return update(a, operand_); }
  std::optional<double> update(double a, double b) const {
    switch (op_) {
      case ArithOp::kAdd:
        return a + b;
      case ArithOp::kSub:
        return a - b;
      case ArithOp::kMul:
        return a * b;
      case ArithOp::kDiv:
        return a / b;
    }
    return std::nullopt;
  }

 private:
  ArithOp op_;
  double operand_;
};

class Logic {
 public:
  // all: `and`; otherwise `or`.
  explicit Logic(bool all) : all_(all) {}
  std::optional<double> update(double a, double b) const {
    const bool out = all_ ? (a != 0 && b != 0) : (a != 0 || b != 0);
    return out ? 1.0 : 0.0;
  }
  std::optional<double> update(std::span<const double> xs) const {
    bool out = all_;
    for (double x : xs) out = all_ ? (out && x != 0) : (out || x != 0);
    return out ? 1.0 : 0.0;
  }

 private:
  bool all_;
};

class Not {
 public:
  std::optional<double> update(double a) const { return a == 0 ? 1.0 : 0.0; }
};

}  // namespace qmtl::sdk
