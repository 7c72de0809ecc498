#include "qmtl/policy/expr.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace qmtl::policy {
namespace {

using std::chrono::minutes;

// Compiles `text` and evaluates it with metric values given by reference text.
class ExprTest : public ::testing::Test {
 protected:
  Expr compile(std::string_view text, ExprType type = ExprType::kBool) {
    auto e = Expr::compile(text, type, table_);
    EXPECT_TRUE(e) << text << ": " << (e ? "" : e.error().message);
    return e ? *e : Expr{};
  }
  std::vector<std::optional<double>> slots(const std::map<std::string, std::optional<double>>& v) {
    std::vector<std::optional<double>> out(table_.size());
    for (size_t i = 0; i < table_.size(); ++i) {
      auto it = v.find(table_.refs()[i].text());
      if (it != v.end()) out[i] = it->second;
    }
    return out;
  }
  Tri test(std::string_view text, const std::map<std::string, std::optional<double>>& v) {
    Expr e = compile(text);
    return e.test(slots(v));
  }
  std::optional<double> num(std::string_view text,
                            const std::map<std::string, std::optional<double>>& v = {}) {
    Expr e = compile(text, ExprType::kNumber);
    return e.value(slots(v));
  }
  ExprError error(std::string_view text, ExprType type = ExprType::kBool) {
    auto e = Expr::compile(text, type, table_);
    EXPECT_FALSE(e) << text;
    return e ? ExprError{} : e.error();
  }
  RefTable table_;
};

TEST_F(ExprTest, ArithmeticAndPrecedence) {
  EXPECT_EQ(num("1 + 2 * 3"), 7);
  EXPECT_EQ(num("(1 + 2) * 3"), 9);
  EXPECT_EQ(num("10 - 4 - 3"), 3);  // left-associative
  EXPECT_EQ(num("12 / 3 / 2"), 2);
  EXPECT_EQ(num("-2 * -3"), 6);
  EXPECT_EQ(num("--2"), 2);
  EXPECT_EQ(num("5%"), 0.05);
  EXPECT_EQ(num("1.5e2"), 150);
  EXPECT_EQ(num("sharpe + 0.1 * win_rate - 0.2 * max_drawdown",
                {{"sharpe", 2.0}, {"win_rate", 0.5}, {"max_drawdown", 0.1}}),
            2.0 + 0.05 - 0.02);
}

TEST_F(ExprTest, EveryComparison) {
  const std::map<std::string, std::optional<double>> v{{"sharpe", 1.5}};
  EXPECT_EQ(test("sharpe < 1.5", v), Tri::kFalse);
  EXPECT_EQ(test("sharpe <= 1.5", v), Tri::kTrue);
  EXPECT_EQ(test("sharpe > 1.5", v), Tri::kFalse);
  EXPECT_EQ(test("sharpe >= 1.5", v), Tri::kTrue);
  EXPECT_EQ(test("sharpe == 1.5", v), Tri::kTrue);
  EXPECT_EQ(test("sharpe != 1.5", v), Tri::kFalse);
}

TEST_F(ExprTest, LogicPrecedenceNotAndOr) {
  // not binds tighter than and, and tighter than or.
  EXPECT_EQ(test("true or false and false", {}), Tri::kTrue);  // true or (false and false)
  EXPECT_EQ(test("(true or false) and false", {}), Tri::kFalse);
  EXPECT_EQ(test("not false and false", {}), Tri::kFalse);  // (not false) and false
  EXPECT_EQ(test("not (false and false)", {}), Tri::kTrue);
  EXPECT_EQ(test("not not true", {}), Tri::kTrue);
  EXPECT_EQ(test("1 + 1 > 1 and 2 * 2 == 4", {}), Tri::kTrue);
}

TEST_F(ExprTest, MissingIsNeverAPass) {
  const std::map<std::string, std::optional<double>> v{{"sharpe", std::nullopt}, {"trades", 30.0}};
  EXPECT_EQ(test("sharpe >= 1", v), Tri::kMissing);
  EXPECT_EQ(test("sharpe < 1", v), Tri::kMissing);
  EXPECT_EQ(test("not (sharpe < 1)", v), Tri::kMissing);  // not missing stays missing
  EXPECT_EQ(test("sharpe >= 1 and trades >= 20", v), Tri::kMissing);
  EXPECT_EQ(test("sharpe >= 1 and trades >= 50", v), Tri::kFalse);  // false and missing
  EXPECT_EQ(test("sharpe >= 1 or trades >= 20", v), Tri::kTrue);    // true or missing
  EXPECT_EQ(test("sharpe >= 1 or trades >= 50", v), Tri::kMissing);
  EXPECT_EQ(test("sharpe * 0 == 0", v), Tri::kMissing);  // arithmetic propagates
  EXPECT_EQ(test("trades / 0 > 1", v), Tri::kMissing);   // division by zero
  const double nan = std::nan("");
  EXPECT_EQ(test("sharpe >= 1", {{"sharpe", nan}}), Tri::kMissing);  // NaN is missing
  EXPECT_EQ(test("sharpe != 1", {{"sharpe", nan}}), Tri::kMissing);
  EXPECT_FALSE(num("sharpe + 1", {{"sharpe", nan}}));
}

TEST_F(ExprTest, MetricFunctionsInternRefs) {
  Expr e =
      compile("return(2w) >= 5% and sharpe(4w) >= 1.5 and worst_loss(5m) >= -0.5% and sharpe > 0");
  ASSERT_EQ(table_.size(), 4u);
  EXPECT_EQ(table_.refs()[0].text(), "return(2w)");
  EXPECT_EQ(table_.refs()[1].text(), "sharpe(4w)");
  EXPECT_EQ(table_.refs()[2].text(), "worst_loss(5m)");
  EXPECT_EQ(table_.refs()[2].arg, minutes(5));
  EXPECT_EQ(table_.refs()[3].text(), "sharpe");
  compile("sharpe(4w) > 1");  // same ref, same slot
  EXPECT_EQ(table_.size(), 4u);
  std::vector<ClauseResult> clauses;
  const auto v = slots(
      {{"return(2w)", 0.06}, {"sharpe(4w)", 1.4}, {"worst_loss(5m)", -0.001}, {"sharpe", 1.0}});
  EXPECT_EQ(e.test(v, &clauses), Tri::kFalse);
  ASSERT_EQ(clauses.size(), 4u);
  EXPECT_EQ(clauses[0].expr, "return(2w) >= 0.05");
  EXPECT_EQ(clauses[0].value, 0.06);
  EXPECT_EQ(clauses[0].pass, Tri::kTrue);
  EXPECT_EQ(clauses[1].expr, "sharpe(4w) >= 1.5");
  EXPECT_EQ(clauses[1].pass, Tri::kFalse);
  EXPECT_EQ(clauses[2].expr, "worst_loss(5m) >= -0.005");
}

TEST_F(ExprTest, CanonicalTextRoundTrips) {
  for (const char* text :
       {"sharpe >= 1.5 and (trades >= 20 or win_rate > 0.6)", "not (sharpe < 1 or return < 0)",
        "sharpe - (volatility - 1) > 0", "(sharpe + 1) * 2 / (3 - max_drawdown) >= -1",
        "-(sharpe) < 5%", "true", "not not false", "sharpe(4w) > sharpe(1w)"}) {
    Expr e = compile(text);
    auto again = Expr::compile(e.to_string(), ExprType::kBool, table_);
    ASSERT_TRUE(again) << e.to_string();
    EXPECT_EQ(again->to_string(), e.to_string());
  }
  EXPECT_EQ(compile("((sharpe)) >= (1.5)").to_string(), "sharpe >= 1.5");
  EXPECT_EQ(compile("sharpe - (1 - 2) > 0").to_string(), "sharpe - (1 - 2) > 0");
  EXPECT_EQ(compile("-(sharpe) < 5%").to_string(), "-sharpe < 0.05");
  EXPECT_EQ(compile("sharpe - 1 - 2 > 0").to_string(), "sharpe - 1 - 2 > 0");
}

TEST_F(ExprTest, StructuredForms) {
  auto a = compile("sharpe >= 1");
  auto b = compile("trades >= 20");
  auto c = compile("return > 0");
  Expr nested = Expr::all_of({a, Expr::any_of({b, c})});
  EXPECT_EQ(nested.to_string(), "sharpe >= 1 and (trades >= 20 or return > 0)");
  EXPECT_EQ(nested.test(slots({{"sharpe", 2.0}, {"trades", 5.0}, {"return", 0.1}})), Tri::kTrue);
  EXPECT_EQ(nested.test(slots({{"sharpe", 2.0}, {"trades", 5.0}, {"return", -0.1}})), Tri::kFalse);
  EXPECT_EQ(Expr::negate(a).to_string(), "not sharpe >= 1");
  EXPECT_EQ(Expr::negate(a).test(slots({{"sharpe", std::nullopt}})), Tri::kMissing);
}

TEST_F(ExprTest, ErrorsSayWhereAndWhat) {
  struct Case {
    std::string text;
    size_t offset;
    std::string part;
    ExprType type = ExprType::kBool;
  };
  for (const Case& c : std::vector<Case>{
           {"", 0, "the expression is empty"},
           {"sharp >= 1", 0, "unknown metric 'sharp'; did you mean 'sharpe'?"},
           {"sharpe >= 1 and tardes > 2", 16, "did you mean 'trades'?"},
           {"frobnicate > 1", 0, "unknown metric 'frobnicate'"},
           {"sharpe = 1", 7, "use '==' to compare"},
           {"sharpe >= 1 && trades > 2", 12, "use 'and' / 'or'"},
           {"!true", 0, "use 'not'"},
           {"sharpe >= 1 AND trades > 2", 12, "keywords are lowercase"},
           {"1 < sharpe < 2", 11, "cannot be chained"},
           {"(sharpe > 1", 11, "missing ')'"},
           {"sharpe > 1)", 10, "unexpected ')'"},
           {"worst_loss > 1", 0, "worst_loss needs a window"},
           {"worst_loss(6mo) > 1", 11, "months vary in length"},
           {"worst_loss(0s) > 1", 11, "longer than zero"},
           {"sharpe(4w > 1", 6, "missing ')' after the window"},
           {"sharpe > 5m", 9, "durations go inside a metric's parentheses"},
           {"sharpe > 1..2", 9, "'1..2' is not a number"},
           {"sharpe", 0, "a gate must be a condition"},
           {"sharpe > 1", 0, "a score must be a number", ExprType::kNumber},
           {"sharpe and true", 0, "'and' needs a condition"},
           {"not sharpe", 4, "'not' needs a condition"},
           {"(sharpe > 1) + 2 > 0", 0, "arithmetic needs a number"},
           {"sharpe > true", 9, "'>' needs a number"},
           {"sharpe >", 8, "ends too early"},
           {"sharpe > @", 9, "unexpected '@'"},
       }) {
    const ExprError e = error(c.text, c.type);
    EXPECT_NE(e.message.find(c.part), std::string::npos) << c.text << " -> " << e.message;
    EXPECT_EQ(e.offset, c.offset) << c.text << " -> " << e.message;
  }
}

TEST(DidYouMean, NearMissesOnly) {
  const std::vector<std::string_view> names{"sharpe", "sortino", "trades"};
  EXPECT_EQ(did_you_mean("sharp", names), "did you mean 'sharpe'?");
  EXPECT_EQ(did_you_mean("sortion", names), "did you mean 'sortino'?");
  EXPECT_EQ(did_you_mean("zzzzzzzz", names), "");
}

}  // namespace
}  // namespace qmtl::policy
