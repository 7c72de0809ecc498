// The end of a strategy's validation (WorldService::finish_validation) and a
// world's execution settings, over a real SQLite file: the reject gate judged
// on the backtest's own records, a failed run, no policy, a Paused world, and
// refused settings that change nothing.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>

#include "qmtl/core/json.h"
#include "qmtl/store/sql_store.h"
#include "qmtl/world/world_service.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::world {
namespace {

using lifecycle::StrategyEvent;
using lifecycle::StrategyState;
using lifecycle::WorldState;

class ValidationTest : public ::testing::Test {
 protected:
  ValidationTest()
      : store_(std::move(*store::open_store(testing::fresh_store_url(dir_, "w.db")))),
        clock_(*parse_timestamp("2026-01-05T10:00:00Z")),
        service_(*store_, clock_) {
    EXPECT_TRUE(service_.create_world({.id = "desk"}));
  }
  void policy(const std::string& text) { ASSERT_TRUE(service_.add_policy("desk", text, "alice")); }
  void validating(const std::string& id) {
    ASSERT_TRUE(service_.submit_strategy({.id = id, .world = "desk", .spec = "{}"}));
    ASSERT_TRUE(service_.apply_strategy_event(id, StrategyEvent::kSubmit, "execution", "queued"));
  }
  // Daily equity from 100'000 by the given returns, with `trades` round trips.
  static BacktestOutcome outcome(const std::vector<double>& returns, int trades) {
    BacktestOutcome o{.ok = true, .initial_equity = 100'000, .bars = returns.size()};
    double e = 100'000;
    const TimePoint t0 = *parse_timestamp("2025-01-01T00:00:00Z");
    for (size_t i = 0; i < returns.size(); ++i) {
      e *= 1 + returns[i];
      o.points.push_back({t0 + std::chrono::hours(24 * static_cast<int64_t>(i)), e});
    }
    for (int i = 0; i < trades; ++i) {
      const TimePoint t = t0 + std::chrono::hours(24 * i);
      o.fills.push_back({.ts = t, .symbol = "X", .side = "buy", .qty = 1, .price = 10});
      o.fills.push_back({.ts = t, .symbol = "X", .side = "sell", .qty = 1, .price = 11});
    }
    return o;
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  FakeClock clock_;
  WorldService service_;
};

TEST_F(ValidationTest, TheRejectGateJudgesTheBacktestsOwnRecords) {
  policy("gates: {promote: 'sharpe >= 1', reject: 'max_drawdown > 0.2 or trades < 3'}\n");
  validating("steady");
  validating("crash");
  validating("idle");
  auto steady = service_.finish_validation("steady", outcome({0.01, 0.005, 0.01, 0.002}, 5), "ex");
  ASSERT_TRUE(steady) << steady.error().message;
  EXPECT_EQ(steady->outcome, "passed");
  EXPECT_EQ(steady->reason, "validation passed: the reject gate is false");
  EXPECT_EQ(service_.get_strategy("steady")->state, StrategyState::kDryRun);
  // A 30 % fall: max_drawdown 0.3 > 0.2.
  auto crash = service_.finish_validation("crash", outcome({0.01, -0.3, 0.01}, 5), "ex");
  ASSERT_TRUE(crash);
  EXPECT_EQ(crash->outcome, "rejected");
  EXPECT_NE(crash->reason.find("max_drawdown > 0.2"), std::string::npos) << crash->reason;
  EXPECT_EQ(service_.get_strategy("crash")->state, StrategyState::kRejected);
  auto idle = service_.finish_validation("idle", outcome({0, 0, 0}, 0), "ex");
  ASSERT_TRUE(idle);
  EXPECT_EQ(idle->outcome, "rejected");
  EXPECT_NE(idle->reason.find("trades < 3"), std::string::npos) << idle->reason;

  // Stored with its records, apart from the dry-run records evaluations read.
  auto stored = service_.get_validation("crash", true);
  ASSERT_TRUE(stored && *stored);
  EXPECT_EQ((*stored)->points.size(), 3u);
  EXPECT_EQ((*stored)->fills.size(), 10u);
  EXPECT_NE((*stored)->detail.find("\"max_drawdown\":0.3"), std::string::npos) << (*stored)->detail;
  EXPECT_TRUE(store_->load_points("crash", TimePoint::min())->empty());
  auto brief = service_.get_validation("crash", false);
  EXPECT_TRUE((*brief)->points.empty());
  // The audit log says which and why, with the actor.
  auto audit = service_.list_audit("desk");
  ASSERT_TRUE(audit);
  const auto& last = audit->back();
  EXPECT_EQ(last.event, "VALIDATION_FAILED");
  EXPECT_EQ(last.actor, "ex");
  EXPECT_EQ(last.entity_id, "idle");
  EXPECT_NE(last.reason.find("trades < 3"), std::string::npos);
  // A strategy already out of Validating is not validated again.
  auto again = service_.finish_validation("steady", outcome({0.01}, 5), "ex");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kFailedPrecondition);
}

TEST_F(ValidationTest, AFailedRunRejectsAndNoPolicyOrGatePasses) {
  validating("a");
  validating("b");
  validating("c");
  BacktestOutcome failed{.ok = false, .error = "qmtl backtest ended with exit 2: bad indicator"};
  auto a = service_.finish_validation("a", failed, "ex");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->outcome, "failed");
  EXPECT_EQ(a->reason,
            "validation backtest failed: qmtl backtest ended with exit 2: bad indicator");
  EXPECT_EQ(service_.get_strategy("a")->state, StrategyState::kRejected);
  // Without a policy there is nothing to reject by.
  auto b = service_.finish_validation("b", outcome({0.01, -0.9}, 1), "ex");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->outcome, "passed");
  EXPECT_NE(b->reason.find("no native policy"), std::string::npos);
  // A run with no records at all cannot pass.
  policy("gates: {promote: 'sharpe >= 1'}\n");
  auto c = service_.finish_validation("c", BacktestOutcome{.ok = true}, "ex");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->outcome, "failed");
  EXPECT_EQ(service_.get_strategy("c")->state, StrategyState::kRejected);
}

TEST_F(ValidationTest, APausedWorldKeepsTheStrategyValidating) {
  policy("gates: {promote: 'sharpe >= 1'}\n");
  validating("s");
  ASSERT_TRUE(service_.set_world_state("desk", WorldState::kPaused, "alice", "maintenance"));
  auto r = service_.finish_validation("s", outcome({0.01, 0.01}, 1), "ex");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(service_.get_strategy("s")->state, StrategyState::kValidating);
  EXPECT_FALSE(*service_.get_validation("s", false));
  ASSERT_TRUE(service_.set_world_state("desk", WorldState::kActive, "alice", "done"));
  EXPECT_TRUE(service_.finish_validation("s", outcome({0.01, 0.01}, 1), "ex"));
  EXPECT_EQ(service_.get_strategy("s")->state, StrategyState::kDryRun);
}

TEST_F(ValidationTest, ExecutionSettingsAreValidatedAndAudited) {
  const auto history = dir_.file("h.csv");
  std::ofstream(history) << "date,open,high,low,close,volume\n";
  struct Case {
    std::string doc, message;
  };
  for (const auto& c : std::vector<Case>{
           {"[]", "must be a JSON object"},
           {"{}", "field 'history' is required"},
           {R"({"history": "h.csv"})", "must be an absolute path"},
           {R"({"history": "/nonexistent/h.csv"})", "is not a file on the server"},
           {fmt::format(R"({{"history": "{}", "window": "1y"}})", history), "'window' takes"},
           {fmt::format(R"({{"history": "{}", "live_broker": "fix:x"}})", history),
            "'live_broker' takes journal:"},
           {fmt::format(R"({{"history": "{}", "max_runners": -1}})", history),
            "'max_runners' must be between 0 and 1000"},
           {fmt::format(R"({{"history": "{}", "cash": 0}})", history),
            "'cash' must be a positive number"},
           {fmt::format(R"({{"history": "{}", "symbol": "a b"}})", history), "'symbol' takes"},
           {fmt::format(R"({{"history": "{}", "feeds": "x"}})", history), "feeds"},
           {R"({"history": "/nonexistent/{symbol}.csv"})", "is not a directory on the server"},
           {fmt::format(R"({{"history": "{}/{{symbol}}/{{symbol}}.csv"}})", dir_.path().string()),
            "{symbol} may appear once, in the file name"},
       }) {
    auto r = service_.set_execution("desk", c.doc, "alice");
    ASSERT_FALSE(r) << c.doc;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << c.doc;
    EXPECT_NE(r.error().message.find(c.message), std::string::npos)
        << c.doc << ": " << r.error().message;
  }
  EXPECT_FALSE(*service_.get_execution("desk"));
  auto set = service_.set_execution(
      "desk", fmt::format(R"({{"history": "{}", "window": "26w", "max_runners": 3}})", history),
      "alice");
  ASSERT_TRUE(set) << set.error().message;
  auto got = service_.get_execution("desk");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->history, history);
  EXPECT_EQ((*got)->window, std::chrono::hours(24 * 7 * 26));
  // One file per symbol: the directory must exist, the files are named later.
  const auto per_symbol = fmt::format(R"({{"history": "{0}/{{symbol}}.csv",
      "feed": "{0}/{{symbol}}.live.csv"}})",
                                      dir_.path().string());
  auto sym = service_.set_execution("desk", per_symbol, "alice");
  ASSERT_TRUE(sym) << sym.error().message;
  EXPECT_EQ((*service_.get_execution("desk"))->feed, dir_.path().string() + "/{symbol}.live.csv");
  EXPECT_EQ((*got)->max_runners, 3);
  EXPECT_EQ((*got)->max_validations, 2);
  // What GET shows can be sent back as it is (nulls are "not set").
  auto round = service_.set_execution("desk", json::dump(execution_settings_json(**got)), "bob");
  ASSERT_TRUE(round) << round.error().message;
  EXPECT_EQ((*round)->history, history);
  ASSERT_TRUE(service_.set_execution("desk", "", "alice"));
  EXPECT_FALSE(*service_.get_execution("desk"));
  auto audit = service_.list_audit("desk");
  std::vector<std::string> events;
  for (const auto& a : *audit) events.push_back(a.event);
  EXPECT_EQ(events, (std::vector<std::string>{"CREATE", "EXECUTION_SET", "EXECUTION_SET",
                                              "EXECUTION_SET", "EXECUTION_REMOVED"}));
}

}  // namespace
}  // namespace qmtl::world
