// The strategy DAG: exact warm-up, node states, buckets (duplicates, gaps,
// order), validation errors and failures.
#include "qmtl/sdk/dag.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

namespace qmtl::sdk {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

const TimePoint t0 = *parse_timestamp("2026-01-05T09:00:00Z");

struct Out {
  std::string node;
  TimePoint ts;
  double value;
};

class DagTest : public ::testing::Test {
 protected:
  void record() {
    dag_.on_output([this](std::string_view n, TimePoint ts, double v) {
      out_.push_back({std::string(n), ts, v});
    });
  }
  std::vector<Out> of(const std::string& node) const {
    std::vector<Out> r;
    for (const auto& o : out_) {
      if (o.node == node) r.push_back(o);
    }
    return r;
  }
  Dag dag_;
  std::vector<Out> out_;
};

TEST_F(DagTest, SixtySecondsTimesThirtyEmitsNothingForTheFirstThirtyBuckets) {
  dag_.input("price", seconds(60), 30);
  ASSERT_TRUE(dag_.build());
  record();
  EXPECT_EQ(dag_.state("price"), NodeState::kInitialized);
  for (int m = 0; m < 30; ++m) {
    // Two values per minute: the later one is the bucket's.
    ASSERT_TRUE(dag_.push("price", t0 + minutes(m), 100 + m));
    ASSERT_TRUE(dag_.push("price", t0 + minutes(m) + seconds(30), 200 + m));
    EXPECT_EQ(dag_.state("price"), NodeState::kPreWarmup) << m;
  }
  EXPECT_TRUE(out_.empty());
  // The 31st bucket begins: bucket 30 (09:29) closes and is the first output.
  ASSERT_TRUE(dag_.push("price", t0 + minutes(30), 300));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].ts, t0 + minutes(29));
  EXPECT_EQ(out_[0].value, 229);
  EXPECT_EQ(dag_.state("price"), NodeState::kActive);
  dag_.finish();
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[1].ts, t0 + minutes(30));
  EXPECT_EQ(dag_.state("price"), NodeState::kCompleted);
}

TEST_F(DagTest, OutOfOrderValuesAreRefusedAndGapsAreNotFilled) {
  dag_.input("p", seconds(60), 1);
  ASSERT_TRUE(dag_.build());
  record();
  ASSERT_TRUE(dag_.push("p", t0 + minutes(5), 1));
  auto old = dag_.push("p", t0 + minutes(4), 2);
  ASSERT_FALSE(old);
  EXPECT_NE(old.error().message.find("older than the open bucket"), std::string::npos);
  EXPECT_FALSE(dag_.push("p", t0 + minutes(6), std::nan("")));
  EXPECT_FALSE(dag_.push("nope", t0, 1));
  ASSERT_TRUE(dag_.push("p", t0 + minutes(9), 3));  // 6, 7, 8 missing
  dag_.finish();
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[0].ts, t0 + minutes(5));
  EXPECT_EQ(out_[0].value, 1);  // the refused values changed nothing
  EXPECT_EQ(out_[1].ts, t0 + minutes(9));
}

TEST_F(DagTest, IndicatorsAndComputeNodesWarmUpInTurn) {
  dag_.input("close", minutes(1), 1);
  dag_.indicator("fast", IndicatorKind::kSma, {"close"}, 2);
  dag_.indicator("slow", IndicatorKind::kSma, {"close"}, 3);
  dag_.indicator("cross", IndicatorKind::kCrossover, {"fast", "slow"});
  dag_.compute("spread", {"fast", "slow"}, 2, [](const std::vector<WindowView>& w) {
    // Latest fast minus the slow of the bucket before.
    return std::optional<double>(w[0][0] - w[1][1]);
  });
  ASSERT_TRUE(dag_.build());
  record();
  const std::vector<double> closes = {10, 9, 8, 9, 12, 13};
  for (size_t i = 0; i < closes.size(); ++i) {
    ASSERT_TRUE(dag_.push("close", t0 + minutes(static_cast<int>(i)), closes[i]));
    if (i == 3) {  // buckets 0-2 closed: slow has its first value, cross only its first pair
      EXPECT_EQ(dag_.state("slow"), NodeState::kActive);
      EXPECT_EQ(dag_.state("cross"), NodeState::kPreWarmup);
      EXPECT_EQ(dag_.state("spread"), NodeState::kPreWarmup);
    }
  }
  dag_.finish();
  // fast: 9.5 8.5 8.5 10.5 12.5 from bucket 1; slow: 9 8.667 9.667 11.333 from bucket 2.
  const auto fast = of("fast");
  ASSERT_EQ(fast.size(), 5u);
  EXPECT_EQ(fast[0].ts, t0 + minutes(1));
  EXPECT_DOUBLE_EQ(fast[4].value, 12.5);
  const auto slow = of("slow");
  ASSERT_EQ(slow.size(), 4u);
  EXPECT_EQ(slow[0].ts, t0 + minutes(2));
  // cross from the 2nd aligned pair (bucket 3): fast 8.5 < slow 8.667 after 8.5 < 9 -> 0;
  // bucket 4: 10.5 > 9.667 -> +1; bucket 5: 12.5 > 11.333 -> 0.
  const auto cross = of("cross");
  ASSERT_EQ(cross.size(), 3u);
  EXPECT_EQ(cross[0].value, 0);
  EXPECT_EQ(cross[1].value, 1);
  EXPECT_EQ(cross[1].ts, t0 + minutes(4));
  EXPECT_EQ(cross[2].value, 0);
  // spread needs two values of each: from bucket 3: 8.5 - 9 = -0.5.
  const auto spread = of("spread");
  ASSERT_EQ(spread.size(), 3u);
  EXPECT_DOUBLE_EQ(spread[0].value, -0.5);
  // fast and slow see all 6 buckets, cross and spread the 4 where both are defined.
  EXPECT_EQ(dag_.updates(), 6u + 6u + 4u + 4u);
}

TEST_F(DagTest, AFailingNodeStopsAndFlagsTheStrategy) {
  dag_.input("x", seconds(1), 1);
  dag_.compute("inverse", {"x"}, 1,
               [](const std::vector<WindowView>& w) { return std::optional<double>(1 / w[0][0]); });
  dag_.compute("boom", {"x"}, 1, [](const std::vector<WindowView>& w) -> std::optional<double> {
    if (w[0][0] > 5) throw std::runtime_error("too big");
    return std::nullopt;
  });
  ASSERT_TRUE(dag_.build());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(dag_.push("x", t0 + seconds(i), 2 - i));
  EXPECT_EQ(dag_.state("inverse"), NodeState::kActive);  // 1/2 and 1/1 so far
  ASSERT_TRUE(dag_.push("x", t0 + seconds(5), 9));       // closes the bucket of 0: 1/0
  EXPECT_EQ(dag_.state("inverse"), NodeState::kError);
  ASSERT_TRUE(dag_.failure());
  EXPECT_NE(dag_.failure()->message.find("node 'inverse': computed inf"), std::string::npos);
  ASSERT_TRUE(dag_.push("x", t0 + seconds(6), 1));  // closes the bucket of 9: boom throws
  EXPECT_EQ(dag_.state("boom"), NodeState::kError);
  dag_.finish();
  EXPECT_EQ(dag_.state("inverse"), NodeState::kError);  // stays failed
  EXPECT_EQ(dag_.state("x"), NodeState::kCompleted);
}

// Nodes reading several inputs compute once per bucket that all of them have,
// whichever input closes it last, and wait across a gap in one of them.
TEST_F(DagTest, SeveralInputsComputeOncePerCommonBucket) {
  dag_.input("bid", minutes(1), 1);
  dag_.input("ask", minutes(1), 1);
  dag_.compute("mid", {"bid", "ask"}, 1, [](const std::vector<WindowView>& w) {
    return std::optional<double>((w[0][0] + w[1][0]) / 2);
  });
  // Reads one node twice, and an input together with a node derived from it.
  dag_.compute("twice", {"mid", "mid"}, 1, [](const std::vector<WindowView>& w) {
    return std::optional<double>(w[0][0] + w[1][0]);
  });
  dag_.compute("gap", {"bid", "mid"}, 1, [](const std::vector<WindowView>& w) {
    return std::optional<double>(w[0][0] - w[1][0]);
  });
  ASSERT_TRUE(dag_.build());
  record();
  const auto bid = *dag_.find_input("bid");
  const auto ask = *dag_.find_input("ask");
  // Minute 0: both; minute 1: bid only (ask has a gap); minute 2: both.
  ASSERT_TRUE(dag_.push(bid, t0, 10));
  ASSERT_TRUE(dag_.push(ask, t0, 12));
  ASSERT_TRUE(dag_.push(bid, t0 + minutes(1), 20));  // closes bid's minute 0: mid waits
  EXPECT_TRUE(of("mid").empty());
  EXPECT_EQ(dag_.state("mid"), NodeState::kPreWarmup);
  ASSERT_TRUE(dag_.push(ask, t0 + minutes(2), 30));  // closes ask's minute 0: mid computes
  ASSERT_EQ(of("mid").size(), 1u);
  EXPECT_EQ(of("mid")[0].value, 11);
  ASSERT_TRUE(dag_.push(bid, t0 + minutes(2), 40));  // bid's minute 1: no ask for it
  ASSERT_EQ(of("mid").size(), 1u);
  dag_.close_buckets();  // both close minute 2 in one call
  const auto mid = of("mid");
  ASSERT_EQ(mid.size(), 2u);
  EXPECT_EQ(mid[1].ts, t0 + minutes(2));
  EXPECT_EQ(mid[1].value, 35);
  const auto twice = of("twice");
  ASSERT_EQ(twice.size(), 2u);
  EXPECT_EQ(twice[0].value, 22);
  EXPECT_EQ(twice[1].value, 70);
  const auto gap = of("gap");
  ASSERT_EQ(gap.size(), 2u);
  EXPECT_EQ(gap[0].value, -1);
  EXPECT_EQ(gap[1].value, 5);
  // mid, twice and gap computed minutes 0 and 2 once each.
  EXPECT_EQ(dag_.updates(), 6u);
  // A declaration after build() undoes it until build() runs again.
  dag_.input("last", minutes(1), 1);
  EXPECT_EQ(dag_.push(bid, t0 + minutes(3), 1).error().code, ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(dag_.build());
  EXPECT_TRUE(dag_.push(bid, t0 + minutes(3), 1));
}

// The order node hears its signal through subscribe(); inputs resolved once
// feed the same buckets as inputs named each time.
TEST(DagHandles, SubscribersAndInputIds) {
  Dag dag;
  dag.input("close", minutes(1), 1);
  dag.indicator("sma", IndicatorKind::kSma, {"close"}, 2);
  ASSERT_TRUE(dag.build());
  std::vector<double> heard;
  ASSERT_TRUE(dag.subscribe("sma", [&](TimePoint, double v) { heard.push_back(v); }));
  EXPECT_EQ(dag.subscribe("nope", [](TimePoint, double) {}).error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(dag.find_input("sma"));  // not an input
  EXPECT_FALSE(dag.find_input("nope"));
  const auto close = dag.find_input("close");
  ASSERT_TRUE(close);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(dag.push(*close, t0 + minutes(i), 10.0 + i));
    dag.close_buckets();
  }
  EXPECT_EQ(heard, (std::vector<double>{10.5, 11.5}));
  EXPECT_EQ(dag.push(*close, t0, 1).error().message,
            "input 'close': the bucket of 2026-01-05T09:00:00Z is already closed");
  EXPECT_EQ(dag.push(Dag::InputId{1}, t0 + minutes(5), 1).error().message,
            "not an input node of this Dag");
  EXPECT_EQ(dag.push(Dag::InputId{99}, t0 + minutes(5), 1).error().code,
            ErrorCode::kInvalidArgument);
}

// Conditions composed of comparisons and logic: "RSI-like value below 30 and
// close above its average and volume up", with an `and` of three inputs (the
// path for any number of inputs) and a constant operand.
TEST(DagOperators, ConditionsComposeAndADivisionByZeroFailsTheNode) {
  Dag dag;
  dag.input("close", minutes(1), 1);
  dag.input("volume", minutes(1), 1);
  dag.indicator("low", IndicatorKind::kLt, {"close"}, IndicatorParams{.value = 30});
  dag.indicator("avg", IndicatorKind::kSma, {"close"}, 2);
  dag.indicator("above", IndicatorKind::kGt, {"close", "avg"});
  dag.indicator("busy", IndicatorKind::kGe, {"volume"}, IndicatorParams{.value = 100});
  dag.indicator("all", IndicatorKind::kAnd, {"low", "above", "busy"});
  dag.indicator("none", IndicatorKind::kNot, {"all"});
  dag.indicator("per_share", IndicatorKind::kDiv, {"close", "volume"});
  auto built = dag.build();
  ASSERT_TRUE(built) << built.error().message;
  std::vector<std::pair<std::string, double>> seen;
  dag.on_output([&](std::string_view node, TimePoint, double v) {
    if (node == "all" || node == "none") seen.emplace_back(node, v);
  });
  const auto bar = [&](int i, double close, double volume) {
    ASSERT_TRUE(dag.push("close", t0 + minutes(i), close));
    ASSERT_TRUE(dag.push("volume", t0 + minutes(i), volume));
    dag.close_buckets();
  };
  bar(0, 20, 500);  // avg not warm: `above`, and so `all`, wait
  bar(1, 25, 500);  // 25 > 22.5, < 30, volume 500: all true
  bar(2, 24, 500);  // 24 < 24.5: not above
  bar(3, 29, 50);   // above, low, but quiet
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, double>>{
                      {"all", 1}, {"none", 0}, {"all", 0}, {"none", 1}, {"all", 0}, {"none", 1}}));
  EXPECT_FALSE(dag.failure());
  bar(4, 29, 0);  // close / volume = inf
  ASSERT_TRUE(dag.failure());
  EXPECT_EQ(dag.failure()->message.rfind("node 'per_share': computed inf", 0), 0u)
      << dag.failure()->message;
  EXPECT_EQ(dag.state("per_share"), NodeState::kError);
  EXPECT_EQ(dag.state("all"), NodeState::kActive);  // other branches go on
}

TEST(DagValidation, NamesTheProblem) {
  struct Case {
    std::function<void(Dag&)> declare;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {[](Dag& d) {
              d.input("a", seconds(1), 1);
              d.input("a", seconds(1), 1);
            },
            "node name 'a' is used twice"},
           {[](Dag& d) { d.indicator("s", IndicatorKind::kSma, {"ghost"}, 3); },
            "node 's' reads 'ghost', which is not a node"},
           {[](Dag& d) {
              d.input("a", seconds(1), 1);
              d.indicator("x", IndicatorKind::kCrossover, {"a"});
            },
            "node 'x' takes 2 inputs (or 1 and a value), not 1"},
           {[](Dag& d) {
              d.input("a", seconds(1), 1);
              d.indicator("s", IndicatorKind::kRollingStd, {"a"}, 1);
            },
            "rolling_std needs n >= 2"},
           {[](Dag& d) { d.input("a", seconds(0), 1); }, "interval must be positive"},
           {[](Dag& d) { d.input("a", seconds(1), 0); }, "period must be at least 1"},
           {[](Dag& d) {
              d.compute("b", {"c"}, 1, nullptr);
              d.compute("c", {"b"}, 1, nullptr);
            },
            "the nodes form a cycle: b -> c -> b"},
           {[](Dag& d) {
              d.input("m1", minutes(1), 1);
              d.input("m5", minutes(5), 1);
              d.compute("both", {"m1", "m5"}, 1, nullptr);
            },
            "node 'both' mixes inputs of different intervals: 'm1' every 1m and 'm5' every 5m"},
       }) {
    Dag d;
    c.declare(d);
    auto r = d.build();
    ASSERT_FALSE(r) << c.message;
    EXPECT_NE(r.error().message.find(c.message), std::string::npos) << r.error().message;
  }
  Dag unbuilt;
  unbuilt.input("a", seconds(1), 1);
  EXPECT_EQ(unbuilt.push("a", t0, 1).error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(parse_indicator("kama").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(*parse_indicator("rolling_std"), IndicatorKind::kRollingStd);
}

}  // namespace
}  // namespace qmtl::sdk
