// evaluate_world over a real SQLite file: stored records -> metrics -> policy ->
// a persisted, explained run; hysteresis across runs; refusals.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>

#include "qmtl/core/json.h"
#include "qmtl/world/world_service.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::world {
namespace {

using lifecycle::StrategyEvent;
using std::chrono::hours;

class EvaluationTest : public ::testing::Test {
 protected:
  EvaluationTest()
      : store_(std::move(*store::open_store(testing::fresh_store_url(dir_, "e.db")))),
        clock_(*parse_timestamp("2026-03-01T00:00:00Z")),
        service_(*store_, clock_) {
    EXPECT_TRUE(service_.create_world({.id = "desk"}));
  }

  void strategy(const std::string& id, std::vector<StrategyEvent> events) {
    ASSERT_TRUE(service_.submit_strategy({.id = id, .world = "desk", .spec = "{}"}));
    for (auto e : events) ASSERT_TRUE(service_.apply_strategy_event(id, e, "test", ""));
  }
  // 60 daily points ending now, compounding `daily` with a small alternation so
  // returns vary.
  void record(const std::string& id, double daily, int days = 60) {
    std::vector<PerformancePoint> pts;
    double eq = 100;
    for (int d = days; d >= 0; --d) {
      pts.push_back({clock_.now() - hours(24 * d), eq});
      eq *= 1 + daily + (d % 2 == 0 ? 0.002 : -0.002);
    }
    auto r = service_.record_performance(id, pts, {});
    ASSERT_TRUE(r) << r.error().message;
  }
  boost::json::value detail(const EvaluationRunRecord& run) { return *json::parse(run.detail); }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  FakeClock clock_;
  WorldService service_;
};

constexpr StrategyEvent kToDryRun[] = {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed};

TEST_F(EvaluationTest, DecidesFromStoredRecordsAndExplains) {
  ASSERT_TRUE(service_.add_policy(
      "desk",
      "gates: {promote: 'return >= 0.05 and sharpe >= 1', demote: 'return < 0'}\n"
      "evaluation: {window: 4w}\n",
      "alice"));
  strategy("good", {kToDryRun[0], kToDryRun[1]});
  strategy("flat", {kToDryRun[0], kToDryRun[1]});
  strategy("fading", {kToDryRun[0], kToDryRun[1], StrategyEvent::kPromote});
  strategy("fresh", {StrategyEvent::kSubmit});
  strategy("silent", {kToDryRun[0], kToDryRun[1]});
  record("good", 0.003);
  record("flat", 0.0);
  record("fading", -0.002);
  record("fresh", 0.001);
  auto run = service_.evaluate_world("desk", "scheduler");
  ASSERT_TRUE(run) << run.error().message;
  EXPECT_EQ(run->id, "desk-1");
  EXPECT_EQ(run->policy_version, 1);
  auto d = detail(*run);
  const auto& s = d.at("strategies");
  EXPECT_EQ(s.at("good").at("decision").as_string(), "PROMOTE");
  EXPECT_EQ(s.at("flat").at("decision").as_string(), "HOLD");
  EXPECT_EQ(s.at("fading").at("decision").as_string(), "DEMOTE");
  // Validating strategies are judged by their validation backtest, not here.
  EXPECT_EQ(s.at("fresh").at("decision").as_string(), "INELIGIBLE");
  EXPECT_NE(json::dump(s.at("fresh").at("reasons")).find("state Validating is not evaluated"),
            std::string::npos);
  EXPECT_EQ(s.at("silent").at("decision").as_string(), "INELIGIBLE");
  EXPECT_NE(json::dump(s.at("silent").at("reasons")).find("of data; the evaluation window is 4w"),
            std::string::npos);
  // Metrics are the window's: 28 daily returns of the good strategy.
  const double ret = s.at("good").at("metrics").at("return").as_double();
  EXPECT_GT(ret, 0.05);
  EXPECT_LT(ret, 0.12);
  EXPECT_EQ(s.at("good").at("clauses").at(0).at("expr").as_string(), "return >= 0.05");
  EXPECT_EQ(json::dump(d.at("live")), R"(["good"])");
  // Stored and listed; the audit log has the run.
  EXPECT_EQ(service_.get_evaluation("desk", "desk-1")->detail, run->detail);
  EXPECT_EQ(service_.list_evaluations("desk")->size(), 1u);
  EXPECT_EQ(service_.list_audit("desk")->back().event, "EVALUATE");
  EXPECT_EQ(service_.list_audit("desk")->back().run_id, "desk-1");
  // Evaluation decides; it does not apply.
  EXPECT_EQ(service_.get_strategy("good")->state, lifecycle::StrategyState::kDryRun);
}

// Correlation groups among the strategies that pass: twins with the same
// timestamps (correlated in one block) and a copy missing a day (correlated
// pair by pair) form one group that keeps its best; an unrelated strategy is
// not in it; a strategy that fails its gate is not correlated at all.
TEST_F(EvaluationTest, ManyStrategiesComputedOnSeveralThreadsKeepTheirOwnValues) {
  // 300 strategies: above the size at which the metrics are spread over
  // threads. Strategy k's drift grows with k, so each one's return must too.
  ASSERT_TRUE(service_.add_policy(
      "desk", "evaluation: {window: 4w}\ngates: {promote: 'return >= 0.02'}\nscore: return\n",
      "t"));
  constexpr int kN = 300;
  for (int k = 0; k < kN; ++k) {
    const std::string id = fmt::format("s{:03}", k);
    strategy(id, {std::begin(kToDryRun), std::end(kToDryRun)});
    record(id, 0.00001 * k, 30);
  }
  auto run = service_.evaluate_world("desk", "test");
  ASSERT_TRUE(run) << run.error().message;
  const auto d = detail(*run);
  double last = -1;
  for (int k = 0; k < kN; ++k) {
    const auto& s = d.at("strategies").at(fmt::format("s{:03}", k));
    const double r = s.at("metrics").at("return").to_number<double>();
    EXPECT_GT(r, last) << "s" << k;
    last = r;
    EXPECT_EQ(s.at("decision").as_string(), r >= 0.02 ? "PROMOTE" : "HOLD") << "s" << k;
  }
}

TEST_F(EvaluationTest, CorrelationGroupsAcrossTimestampSets) {
  ASSERT_TRUE(service_.add_policy("desk",
                                  "gates: {promote: 'return >= 0.01'}\nevaluation: {window: 4w}\n"
                                  "correlation: {max: 0.8, per_group: 1}\n",
                                  "alice"));
  for (const char* id : {"a", "b", "c", "other", "loser"}) {
    strategy(id, {kToDryRun[0], kToDryRun[1]});
  }
  record("a", 0.003);
  record("b", 0.003);
  record("loser", -0.003);
  // c: a's path without the day 10 days ago (other timestamps than a and b).
  {
    std::vector<PerformancePoint> pts;
    double eq = 100;
    for (int d = 60; d >= 0; --d) {
      if (d != 10) pts.push_back({clock_.now() - hours(24 * d), eq * 1.01});
      eq *= 1 + 0.003 + (d % 2 == 0 ? 0.002 : -0.002);
    }
    ASSERT_TRUE(service_.record_performance("c", pts, {}));
  }
  // other: rising on a pattern of its own (period 3, not 2).
  {
    std::vector<PerformancePoint> pts;
    double eq = 100;
    for (int d = 60; d >= 0; --d) {
      pts.push_back({clock_.now() - hours(24 * d), eq});
      eq *= 1 + 0.003 + (d % 3 == 0 ? 0.004 : -0.002);
    }
    ASSERT_TRUE(service_.record_performance("other", pts, {}));
  }
  auto run = service_.evaluate_world("desk", "op");
  ASSERT_TRUE(run) << run.error().message;
  const auto d = detail(*run);
  const auto& s = d.at("strategies");
  auto group = [&](const char* id) { return s.at(id).at("group"); };
  ASSERT_TRUE(group("a").is_int64()) << json::dump(s);
  EXPECT_EQ(group("b"), group("a"));
  EXPECT_EQ(group("c"), group("a"));
  EXPECT_TRUE(group("other").is_null());
  EXPECT_TRUE(group("loser").is_null());
  int promoted_in_group = 0;
  for (const char* id : {"a", "b", "c"}) {
    promoted_in_group += s.at(id).at("decision").as_string() == "PROMOTE";
  }
  EXPECT_EQ(promoted_in_group, 1) << json::dump(s);
  EXPECT_EQ(s.at("other").at("decision").as_string(), "PROMOTE");
  EXPECT_EQ(s.at("loser").at("decision").as_string(), "HOLD");
}

TEST_F(EvaluationTest, TimeHysteresisAcrossRuns) {
  ASSERT_TRUE(service_.add_policy("desk",
                                  "gates: {promote: 'sharpe >= 1'}\nevaluation: {window: 2w}\n"
                                  "hysteresis: {promote_after: 3}\n",
                                  "alice"));
  strategy("good", {kToDryRun[0], kToDryRun[1]});
  record("good", 0.003);
  for (int i = 1; i <= 3; ++i) {
    auto run = service_.evaluate_world("desk", "scheduler");
    ASSERT_TRUE(run) << run.error().message;
    const auto dec = detail(*run).at("strategies").at("good").at("decision").as_string();
    EXPECT_EQ(dec, i < 3 ? "HOLD" : "PROMOTE") << "run " << i;
    clock_.advance(hours(1));
  }
}

TEST_F(EvaluationTest, RefusedWhenPausedOrWithoutPolicy) {
  auto none = service_.evaluate_world("desk", "op");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kNotFound);
  EXPECT_NE(none.error().message.find("has no policy yet"), std::string::npos);
  ASSERT_TRUE(service_.add_policy("desk", "gates: {promote: 'sharpe >= 1'}", "alice"));
  ASSERT_TRUE(service_.set_world_state("desk", lifecycle::WorldState::kPaused, "op", ""));
  auto paused = service_.evaluate_world("desk", "op");
  ASSERT_FALSE(paused);
  EXPECT_EQ(paused.error().message, "world 'desk' is Paused: it is not evaluated");
  EXPECT_TRUE(service_.list_evaluations("desk")->empty());
}

TEST_F(EvaluationTest, EvalOnlyEvaluatesWithoutPromoting) {
  ASSERT_TRUE(service_.add_policy(
      "desk", "gates: {promote: 'sharpe >= 1'}\nevaluation: {window: 2w}", "alice"));
  strategy("good", {kToDryRun[0], kToDryRun[1]});
  record("good", 0.003);
  ASSERT_TRUE(service_.set_world_state("desk", lifecycle::WorldState::kEvalOnly, "op", ""));
  auto run = service_.evaluate_world("desk", "op");
  ASSERT_TRUE(run);
  const auto d = detail(*run);
  const auto& g = d.at("strategies").at("good");
  EXPECT_EQ(g.at("decision").as_string(), "HOLD");
  EXPECT_NE(json::dump(g.at("reasons")).find("promotion is blocked: world is EvalOnly"),
            std::string::npos);
}

TEST_F(EvaluationTest, PerformanceRecordsAreValidatedAndIdempotent) {
  strategy("s", {});
  const std::vector<PerformancePoint> pts{{clock_.now(), 100}, {clock_.now() + hours(24), 101}};
  const std::vector<FillRecord> fills{
      {.ts = clock_.now(), .symbol = "ES", .side = "buy", .qty = 1, .price = 5000}};
  ASSERT_TRUE(service_.record_performance("s", pts, fills));
  ASSERT_TRUE(service_.record_performance("s", pts, {}));  // a retry changes nothing
  EXPECT_EQ(store_->load_points("s", TimePoint{})->size(), 2u);
  EXPECT_EQ(store_->load_fills("s", TimePoint{})->size(), 1u);
  // A conflicting point is refused alone, the rest is kept, and the audit log
  // (hence the alerts) says so.
  const std::vector<PerformancePoint> changed{{clock_.now() + hours(48), 102}, {clock_.now(), 99}};
  auto conflict = service_.record_performance("s", changed, {}, "runner-7");
  ASSERT_TRUE(conflict) << conflict.error().message;
  EXPECT_EQ(conflict->points_stored, 1u);
  ASSERT_EQ(conflict->conflicts.size(), 1u);
  EXPECT_EQ(conflict->conflicts[0].stored, 100);
  EXPECT_EQ(conflict->conflicts[0].offered, 99);
  EXPECT_EQ(store_->load_points("s", TimePoint{})->size(), 3u);
  const auto log = *service_.list_audit("desk");
  EXPECT_EQ(log.back().event, "PERFORMANCE_CONFLICT");
  EXPECT_EQ(log.back().actor, "runner-7");
  EXPECT_EQ(log.back().entity_id, "s");
  EXPECT_NE(log.back().reason.find("at 2026-03-01T00:00:00Z stored 100, offered 99"),
            std::string::npos)
      << log.back().reason;
  EXPECT_EQ(service_.last_point("s")->value().equity, 102);
  const std::vector<PerformancePoint> bad{{clock_.now(), -1}};
  EXPECT_EQ(service_.record_performance("s", bad, {}).error().message,
            "points[0]: equity must be a positive number");
  const std::vector<PerformancePoint> nan{{clock_.now(), std::nan("")}};
  EXPECT_FALSE(service_.record_performance("s", nan, {}));
  const std::vector<FillRecord> bad_fill{
      {.ts = clock_.now(), .symbol = "ES", .side = "long", .qty = 1, .price = 1}};
  EXPECT_EQ(service_.record_performance("s", {}, bad_fill).error().message,
            "fills[0]: side must be buy or sell");
  EXPECT_EQ(service_.record_performance("ghost", pts, {}).error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace qmtl::world
