// Declarative strategies: the example file's JSON form builds and trades its
// signal; every malformed field is refused with its path.
#include "qmtl/sdk/spec.h"

#include <gtest/gtest.h>

#include "qmtl/core/json.h"

namespace qmtl::sdk {
namespace {

// examples/strategies/sma_cross.yml as the CLI sends it (YAML -> JSON).
const char* kSmaCross = R"({"id": "sma-cross",
  "inputs": {"close": {"interval": "1d", "period": 1}},
  "nodes": {"fast": {"indicator": "sma", "input": "close", "n": 2},
            "slow": {"indicator": "sma", "input": "close", "n": 3},
            "cross": {"indicator": "crossover", "inputs": ["fast", "slow"]}},
  "orders": {"signal": "cross", "symbol": "DAX", "qty": 10}})";

TEST(Strategy, BuildsTheDagAndNamesTheSignal) {
  auto s = parse_strategy(*json::parse(kSmaCross));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->id, "sma-cross");
  EXPECT_EQ(s->orders.signal, "cross");
  EXPECT_EQ(s->orders.symbol, "DAX");
  EXPECT_EQ(s->orders.qty, 10);
  const auto t0 = *parse_timestamp("2026-01-05T00:00:00Z");
  for (int d = 0; d < 6; ++d) {
    ASSERT_TRUE(s->dag.push("close", t0 + std::chrono::hours(24 * d),
                            std::vector<double>{10, 9, 8, 9, 12, 13}[static_cast<size_t>(d)]));
  }
  s->dag.finish();
  ASSERT_TRUE(s->dag.latest("cross"));
  EXPECT_EQ(s->dag.state("cross"), NodeState::kCompleted);
}

TEST(Strategy, MalformedFieldsAreRefusedWithTheirPath) {
  struct Case {
    std::string spec;
    std::string message;
  };
  const std::string inputs = R"("inputs": {"c": {"interval": "1m"}})";
  const std::string orders = R"("orders": {"signal": "c", "symbol": "X", "qty": 1})";
  // A strategy whose one node `s` has the given fields.
  const auto node = [&](const std::string& fields) {
    return "{" + inputs + R"(, "nodes": {"s": {)" + fields + "}}, " + orders + "}";
  };
  for (
      const Case& c : std::vector<Case>{
          {"[]", "a strategy must be a mapping"},
          {"{" + orders + "}", "inputs is required"},
          {R"({"inputs": {}, )" + orders + "}", "inputs needs at least one input"},
          {R"({"inputs": {"c": {"interval": "1mo"}}, )" + orders + "}", "inputs.c.interval:"},
          {R"({"inputs": {"c": {"interval": "1m", "period": 0}}, )" + orders + "}",
           "inputs.c.period must be a whole number from 1"},
          {R"({"inputs": {"c": {"interval": "1m", "colour": 1}}, )" + orders + "}",
           "unknown field 'colour' in inputs.c"},
          {"{" + inputs + R"(, "nodes": {"s": {"indicator": "kama", "input": "c"}}, )" + orders +
               "}",
           "nodes.s.indicator: unknown indicator 'kama'"},
          {"{" + inputs + R"(, "nodes": {"s": {"indicator": "sma"}}, )" + orders + "}",
           "nodes.s needs exactly one of input"},
          {"{" + inputs + R"(, "nodes": {"s": {"indicator": "sma", "input": "c", "n": 1.5}}, )" +
               orders + "}",
           "nodes.s.n must be a whole number from 1"},
          {"{" + inputs + R"(, "nodes": {"s": {"indicator": "sma", "input": "d"}}, )" + orders +
               "}",
           "node 's' reads 'd', which is not a node"},
          {"{" + inputs + "}", "orders is required"},
          // Parameters belong to their indicators and are checked by value.
          {node(R"("indicator": "sma", "input": "c", "k": 2)"),
           "nodes.s.k does not apply to sma (its parameters: n)"},
          {node(R"("indicator": "not", "input": "c", "value": 1)"),
           "nodes.s.value does not apply to not (its parameters: none)"},
          {node(R"("indicator": "bollinger", "input": "c", "output": "upper")"),
           "nodes.s.n is required: the window of bollinger"},
          {node(R"("indicator": "bollinger", "input": "c", "n": 20)"),
           "node 's': bollinger needs output: one of upper, middle, lower, pct_b"},
          {node(R"("indicator": "bollinger", "input": "c", "n": 20, "output": "top")"),
           "one of upper, middle, lower, pct_b (not 'top')"},
          {node(R"("indicator": "bollinger", "input": "c", "n": 1, "output": "upper")"),
           "node 's': bollinger needs n >= 2"},
          {node(R"("indicator": "bollinger", "input": "c", "n": 5, "k": -1, "output": "upper")"),
           "nodes.s.k must be a positive number"},
          {node(
               R"("indicator": "bollinger", "input": "c", "n": 5, "sample": 1, "output": "upper")"),
           "nodes.s.sample must be true or false"},
          {node(R"("indicator": "macd", "input": "c", "fast": 26, "slow": 12, "output": "macd")"),
           "macd's fast (26) must be shorter than its slow (12)"},
          {node(R"("indicator": "macd", "input": "c", "signal": 0, "output": "macd")"),
           "nodes.s.signal must be a whole number from 1"},
          {node(R"("indicator": "sma", "input": "c", "n": 3, "output": "upper")"),
           "nodes.s.output does not apply to sma"},
          {node(R"("indicator": "gt", "input": "c")"),
           "node 's' takes 2 inputs (or 1 and a value), not 1"},
          {node(R"("indicator": "gt", "inputs": ["c", "c"], "value": 3)"),
           "node 's': gt with a value takes 1 input, not 2"},
          {node(R"("indicator": "lt", "input": "c", "value": "low")"),
           "nodes.s.value must be a number"},
          {node(R"("indicator": "atr", "input": "c", "n": 14)"), "node 's' takes 3 inputs, not 1"},
          {node(R"("indicator": "and", "input": "c")"), "node 's' takes 2 to 64 inputs, not 1"},
          {"{" + inputs + R"(, "orders": {"signal": "c", "symbol": "X", "qty": 0}})",
           "orders.qty must be a positive number"},
          {"{" + inputs + R"(, "orders": {"signal": "zz", "symbol": "X", "qty": 1}})",
           "orders.signal 'zz' is not a node"},
      }) {
    auto doc = json::parse(c.spec);
    ASSERT_TRUE(doc) << c.spec;
    auto s = parse_strategy(*doc);
    ASSERT_FALSE(s) << c.spec;
    EXPECT_NE(s.error().message.find(c.message), std::string::npos) << s.error().message;
  }
}

}  // namespace
}  // namespace qmtl::sdk
