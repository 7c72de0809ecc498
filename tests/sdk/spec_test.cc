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
  for (const Case& c : std::vector<Case>{
           {"[]", "a strategy must be a mapping"},
           {"{" + orders + "}", "inputs is required"},
           {R"({"inputs": {}, )" + orders + "}", "inputs needs at least one input"},
           {R"({"inputs": {"c": {"interval": "1mo"}}, )" + orders + "}", "inputs.c.interval:"},
           {R"({"inputs": {"c": {"interval": "1m", "period": 0}}, )" + orders + "}",
            "inputs.c.period must be a whole number from 1"},
           {R"({"inputs": {"c": {"interval": "1m", "colour": 1}}, )" + orders + "}",
            "unknown field 'colour' in inputs.c"},
           {"{" + inputs + R"(, "nodes": {"s": {"indicator": "macd", "input": "c"}}, )" + orders +
                "}",
            "nodes.s.indicator: unknown indicator 'macd'"},
           {"{" + inputs + R"(, "nodes": {"s": {"indicator": "sma"}}, )" + orders + "}",
            "nodes.s needs exactly one of input"},
           {"{" + inputs + R"(, "nodes": {"s": {"indicator": "sma", "input": "c", "n": 1.5}}, )" +
                orders + "}",
            "nodes.s.n must be a whole number from 1"},
           {"{" + inputs + R"(, "nodes": {"s": {"indicator": "sma", "input": "d"}}, )" + orders +
                "}",
            "node 's' reads 'd', which is not a node"},
           {"{" + inputs + "}", "orders is required"},
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
