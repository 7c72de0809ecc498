// The order rule: signals set target positions, sized as the rule says, and
// exits at the close; each case is worked by hand in its comments.
#include "qmtl/sdk/order_rule.h"

#include <gtest/gtest.h>

#include "qmtl/core/json.h"
#include "qmtl/sdk/spec.h"

namespace qmtl::sdk {
namespace {

using broker::Side;

// A book that fills every order at once at the close, so each decision sees
// the previous one done.
struct Book {
  OrderPlanner planner;
  double position = 0, avg = 0, cash = 10'000;

  // The bar closes at `close`; `signal` is the signal's value if it emitted.
  // Returns the signed units ordered (0: none) and the reason.
  std::pair<double, std::string> bar(double close, std::optional<double> signal) {
    if (signal) planner.on_signal(*signal);
    const BookView view{.position = position, .avg_price = avg, .equity = cash + position * close};
    auto order = planner.decide(close, view);
    if (!order) return {0, ""};
    const double units = order->side == Side::kBuy ? order->qty : -order->qty;
    if (position == 0 || (position > 0) == (units > 0)) {
      avg = (avg * std::abs(position) + close * std::abs(units)) / std::abs(position + units);
    }
    cash -= units * close;
    position += units;
    if (position == 0) avg = 0;
    return {units, std::string(order->reason)};
  }
};

OrderRule rule(SignalKind kind) {
  OrderRule r{.signal = "s", .symbol = "X", .qty = 10};
  r.signal_kind = kind;
  return r;
}

TEST(OrderPlanner, AConditionHoldsItsPositionInsteadOfTradingEveryBar) {
  Book b{OrderPlanner(rule(SignalKind::kCondition))};
  EXPECT_EQ(b.bar(100, 1).first, 10);  // true: long 10
  EXPECT_EQ(b.bar(101, 1).first, 0);   // still true: nothing
  EXPECT_EQ(b.bar(102, std::nullopt).first, 0);
  EXPECT_EQ(b.bar(99, 0).first, -10);  // false: flat
  EXPECT_EQ(b.bar(98, 0).first, 0);
  // Settled, no new direction, nothing to watch: a runner may skip the bar.
  EXPECT_TRUE(b.planner.quiet());
  b.planner.on_signal(0);  // the same as before
  EXPECT_TRUE(b.planner.quiet());
  b.planner.on_signal(1);
  EXPECT_FALSE(b.planner.quiet());
  EXPECT_EQ(b.bar(98, std::nullopt).first, 10);
  EXPECT_FALSE(b.planner.quiet());  // the order was placed: look at the book next bar
  EXPECT_EQ(b.bar(98, std::nullopt).first, 0);
  EXPECT_TRUE(b.planner.quiet());
}

TEST(OrderPlanner, EventsGoLongAndFlatOrShortBySide) {
  Book longs{OrderPlanner(rule(SignalKind::kEvent))};
  EXPECT_EQ(longs.bar(100, -1).first, 0);  // long only: a sale from flat is no order
  EXPECT_EQ(longs.bar(100, 0).first, 0);   // 0 is "no change"
  EXPECT_EQ(longs.bar(100, 1).first, 10);
  EXPECT_EQ(longs.bar(100, 0).first, 0);
  EXPECT_EQ(longs.bar(100, -1).first, -10);
  auto both = rule(SignalKind::kEvent);
  both.sides = Sides::kLongShort;
  Book b{OrderPlanner(both)};
  EXPECT_EQ(b.bar(100, -1).first, -10);
  EXPECT_EQ(b.bar(100, 1).first, 20);  // short 10 -> long 10
  EXPECT_EQ(b.position, 10);
}

TEST(OrderPlanner, FractionIsSizedOnEntryAndWeightRebalancesBeyondItsBand) {
  auto half = rule(SignalKind::kCondition);
  half.sizing = Sizing::kFraction;
  half.fraction = 0.5;
  Book f{OrderPlanner(half)};
  EXPECT_EQ(f.bar(30, 1).first, 166);  // 5,000 / 30 = 166.67 -> 166 whole units
  EXPECT_EQ(f.bar(60, 1).first, 0);    // the price doubled: the size stays
  EXPECT_EQ(f.bar(60, 0).first, -166);

  auto weight = rule(SignalKind::kNumeric);
  weight.sizing = Sizing::kWeight;
  weight.weight = 0.8;
  Book w{OrderPlanner(weight)};
  EXPECT_EQ(w.bar(100, 0.5).first, 50);    // 0.5 of 10,000 at 100
  EXPECT_EQ(w.bar(100, 0.51).first, 0);    // 1 unit off = 1 % of equity: within the 2 % band
  EXPECT_EQ(w.bar(100, 0.6).first, 10);    // 10 units off: rebalance
  EXPECT_EQ(w.bar(100, 3.0).first, 20);    // capped at 0.8: 80 units
  EXPECT_EQ(w.bar(100, -1.0).first, -80);  // long only: a negative weight is flat
}

TEST(OrderPlanner, StopsExitAtTheCloseAndWaitForTheSignalToLeave) {
  auto stopped = rule(SignalKind::kCondition);
  stopped.stop_loss = 0.05;
  stopped.take_profit = 0.10;
  Book b{OrderPlanner(stopped)};
  EXPECT_EQ(b.bar(100, 1).first, 10);  // entry at 100: stop 95, target 110
  EXPECT_EQ(b.bar(96, 1).first, 0);
  EXPECT_FALSE(b.planner.quiet());  // a position with stops is watched every bar
  EXPECT_EQ(b.bar(95, 1), (std::pair<double, std::string>{-10, "stop_loss"}));
  EXPECT_EQ(b.bar(97, 1).first, 0);    // the condition is still true: no re-entry
  EXPECT_EQ(b.bar(97, 0).first, 0);    // it left
  EXPECT_EQ(b.bar(100, 1).first, 10);  // and came back: a new entry at 100
  EXPECT_EQ(b.bar(110, 1), (std::pair<double, std::string>{-10, "take_profit"}));

  auto trailing = rule(SignalKind::kEvent);
  trailing.sides = Sides::kLongShort;
  trailing.trailing_stop = 0.1;
  Book t{OrderPlanner(trailing)};
  EXPECT_EQ(t.bar(100, -1).first, -10);  // short at 100: the lowest close is tracked
  EXPECT_EQ(t.bar(80, std::nullopt).first, 0);
  EXPECT_EQ(t.bar(87, std::nullopt).first, 0);  // 80 * 1.1 = 88 not reached
  EXPECT_EQ(t.bar(88, std::nullopt), (std::pair<double, std::string>{10, "trailing_stop"}));
  EXPECT_EQ(t.bar(90, std::nullopt).first, 0);  // no new event: stays flat
  EXPECT_EQ(t.bar(90, 1).first, 10);            // the next event enters the other way
}

TEST(OrderPlanner, ARefusedOrderIsNotRetriedUntilTheSignalTurns) {
  Book b{OrderPlanner(rule(SignalKind::kCondition))};
  b.planner.on_signal(1);
  ASSERT_TRUE(b.planner.decide(100, {.equity = 10'000}));  // buy 10 ... refused by the broker
  b.planner.resync({.equity = 10'000});
  EXPECT_EQ(b.bar(100, 1).first, 0);  // not again while the signal holds
  EXPECT_EQ(b.bar(100, 0).first, 0);
  EXPECT_EQ(b.bar(100, 1).first, 10);
}

// The language refuses a signal whose values its sizing would misread, naming
// the node (an RSI fed to a qty rule bought on every bar before issue 24).
TEST(OrderRuleSpec, ASignalThatDoesNotSuitItsSizingIsRefused) {
  const auto parse = [](const std::string& orders) {
    return parse_strategy(*json::parse(
        R"({"inputs": {"close": {"interval": "1d"}}, "nodes": {
             "rsi": {"indicator": "rsi", "input": "close", "n": 14},
             "low": {"indicator": "lt", "input": "rsi", "value": 30},
             "cross": {"indicator": "crossover", "input": "rsi", "value": 50}},
           "orders": )" +
        orders + "}"));
  };
  struct Case {
    std::string orders, error;
  };
  for (const auto& c : std::vector<Case>{
           {R"({"signal": "rsi", "symbol": "X", "qty": 1})",
            "orders.signal 'rsi' is a rsi node: its values are levels, not a direction to trade"},
           {R"({"signal": "close", "symbol": "X", "fraction": 0.5})",
            "orders.signal 'close' is an input: its values are levels"},
           {R"({"signal": "cross", "symbol": "X", "weight": 1})",
            "orders.signal 'cross' is a crossover node: its +1/-1 are events"},
           {R"({"signal": "low", "symbol": "X"})", "orders needs exactly one sizing"},
           {R"({"signal": "low", "symbol": "X", "qty": 1, "fraction": 0.5})",
            "orders needs exactly one sizing"},
           {R"({"signal": "low", "symbol": "X", "fraction": 11})",
            "orders.fraction must be a number above 0 and at most 10"},
           {R"({"signal": "low", "symbol": "X", "qty": 1, "band": 0.1})",
            "orders.band applies to weight sizing only"},
           {R"({"signal": "low", "symbol": "X", "qty": 1, "side": "short"})",
            "orders.side must be long_only or long_short, not 'short'"},
           {R"({"signal": "low", "symbol": "X", "qty": 1, "stop_loss": 1.5})",
            "orders.stop_loss must be a number above 0 and at most 0.99"},
           {R"({"signal": "low", "symbol": "X", "qty": 1, "lot": 0})",
            "orders.lot must be a positive number"},
       }) {
    auto s = parse(c.orders);
    ASSERT_FALSE(s) << c.orders;
    EXPECT_NE(s.error().message.find(c.error), std::string::npos) << s.error().message;
  }
  auto ok = parse(
      R"({"signal": "low", "symbol": "X", "fraction": 0.5, "side": "long_short",
          "stop_loss": 0.05, "take_profit": 0.2, "trailing_stop": 0.1, "lot": 0.5})");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->orders.signal_kind, SignalKind::kCondition);
  EXPECT_EQ(ok->orders.sizing, Sizing::kFraction);
  EXPECT_EQ(ok->orders.sides, Sides::kLongShort);
  EXPECT_EQ(ok->orders.trailing_stop, 0.1);
  EXPECT_EQ(ok->orders.lot, 0.5);
  auto weighted = parse(R"({"signal": "rsi", "symbol": "X", "weight": 1, "band": 0.05})");
  ASSERT_TRUE(weighted) << weighted.error().message;
  EXPECT_EQ(weighted->orders.signal_kind, SignalKind::kNumeric);
}

}  // namespace
}  // namespace qmtl::sdk
