// Reading a strategy's record back (issue #22): the timeline of state changes
// and its equity by kind, downsampled, from the real store.
#include "qmtl/world/performance_view.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "qmtl/world/world_service.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::world {
namespace {

using lifecycle::StrategyEvent;
using lifecycle::StrategyState;
using std::chrono::hours;

Duration days(int n) { return hours(24 * n); }

TEST(PerformanceViewTest, TransitionsAreTheAuditRecordsThatChangeAState) {
  const TimePoint t = *parse_timestamp("2026-01-01T00:00:00Z");
  const std::vector<store::AuditRecord> audit = {
      {.seq = 1,
       .at = t,
       .entity = "strategy",
       .entity_id = "s",
       .event = "SUBMIT",
       .after = "Submitted"},
      {.seq = 2,
       .at = t,
       .entity = "world",
       .entity_id = "w",
       .event = "PAUSE",
       .before = "Active",
       .after = "Paused"},
      {.seq = 3, .at = t, .entity = "strategy", .entity_id = "s", .event = "PROMOTE_QUEUED"},
      {.seq = 4,
       .at = t,
       .entity = "strategy",
       .entity_id = "s",
       .event = "HANDOVER",
       .before = "PROMOTE",
       .after = "live"},
      {.seq = 5,
       .at = t + days(1),
       .actor = "apply",
       .entity = "strategy",
       .entity_id = "s",
       .event = "PROMOTE",
       .before = "DryRun",
       .after = "Live",
       .reason = "gates",
       .run_id = "w-1"},
  };
  const auto tr = transitions_of(audit);
  ASSERT_EQ(tr.size(), 2u);
  EXPECT_EQ(tr[0].seq, 1);
  EXPECT_FALSE(tr[0].from);
  EXPECT_EQ(tr[0].to, StrategyState::kSubmitted);
  EXPECT_EQ(tr[1].from, StrategyState::kDryRun);
  EXPECT_EQ(tr[1].to, StrategyState::kLive);
  EXPECT_EQ(tr[1].run_id, "w-1");
  EXPECT_EQ(tr[1].reason, "gates");
  EXPECT_EQ(tr[1].actor, "apply");
}

TEST(PerformanceViewTest, PeriodsAndTheKindOfARecordByItsTime) {
  const TimePoint t = *parse_timestamp("2026-01-01T00:00:00Z");
  auto at = [&](int d, StrategyState to) {
    return StrategyTransition{.to = to, .at = t + days(d)};
  };
  const std::vector<StrategyTransition> tr = {
      at(0, StrategyState::kValidating), at(1, StrategyState::kDryRun),
      at(5, StrategyState::kLive),       at(9, StrategyState::kDryRun),
      at(12, StrategyState::kInactive),  at(20, StrategyState::kDryRun)};
  const auto p = run_periods(tr);
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0].kind, RecordKind::kDryRun);
  EXPECT_EQ(p[0].from, t + days(1));
  EXPECT_EQ(p[0].to, t + days(5));
  EXPECT_EQ(p[1].kind, RecordKind::kLive);
  EXPECT_EQ(p[1].to, t + days(9));
  EXPECT_EQ(p[2].to, t + days(12));  // ended by the move to Inactive
  EXPECT_FALSE(p[3].to);
  EXPECT_EQ(kind_at(p, t), RecordKind::kDryRun);  // before any period
  EXPECT_EQ(kind_at(p, t + days(5)), RecordKind::kLive);
  EXPECT_EQ(kind_at(p, t + days(9) - hours(1)), RecordKind::kLive);
  EXPECT_EQ(kind_at(p, t + days(9)), RecordKind::kDryRun);
  EXPECT_EQ(kind_at(p, t + days(15)), RecordKind::kDryRun);
  EXPECT_EQ(record_kind_name(RecordKind::kDryRun), "dryrun");
  EXPECT_EQ(*parse_record_kind("live"), RecordKind::kLive);
  auto bad = parse_record_kind("paper");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("validation, dryrun, live"), std::string::npos);
}

class PerformanceReadbackTest : public ::testing::Test {
 protected:
  PerformanceReadbackTest()
      : store_(std::move(*store::open_store(testing::fresh_store_url(dir_, "read.db")))),
        clock_(*parse_timestamp("2026-03-01T00:00:00Z")),
        service_(*store_, clock_) {}

  // Daily points from the clock's now for `n` days, then the clock moves on.
  void run_days(const std::string& id, int n) {
    std::vector<PerformancePoint> pts;
    for (int d = 0; d < n; ++d) {
      pts.push_back({clock_.now() + days(d), equity_});
      equity_ *= d % 3 == 2 ? 0.99 : 1.01;
    }
    ASSERT_TRUE(service_.record_performance(id, pts, {}));
    clock_.advance(days(n));
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  FakeClock clock_;
  WorldService service_;
  double equity_ = 100;
};

TEST_F(PerformanceReadbackTest, ValidationDryRunAndLiveRecordsComeBackApartWithTheirPeriods) {
  ASSERT_TRUE(service_.create_world({.id = "w"}));
  ASSERT_TRUE(service_.add_policy("w", "gates: {promote: 'return >= 0', demote: 'return < -1'}\n",
                                  "alice"));
  ASSERT_TRUE(service_.submit_strategy({.id = "s", .world = "w", .spec = "{}"}));
  ASSERT_TRUE(service_.apply_strategy_event("s", StrategyEvent::kSubmit, "execution", ""));
  BacktestOutcome backtest{.ok = true, .initial_equity = 100, .bars = 30};
  for (int d = 0; d < 30; ++d) {
    backtest.points.push_back({*parse_timestamp("2025-01-01T00:00:00Z") + days(d), 100.0 + d});
  }
  backtest.fills.push_back(
      {.ts = backtest.points[3].ts, .symbol = "X", .side = "buy", .qty = 1, .price = 10});
  ASSERT_TRUE(service_.finish_validation("s", backtest, "execution"));
  const TimePoint dry_from = clock_.now();
  run_days("s", 10);
  const TimePoint live_from = clock_.now();
  ASSERT_TRUE(service_.promote_strategy("s", {.actor = "ops", .reason = "ready"}));
  run_days("s", 5);
  const TimePoint live_to = clock_.now();
  ASSERT_TRUE(service_.demote_strategy("s", {.actor = "ops", .reason = "enough"}));
  run_days("s", 3);

  auto all = service_.performance("s", {});
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(all->world, "w");
  EXPECT_EQ(all->total_points, 18u);
  EXPECT_EQ(all->points.size(), 18u);
  ASSERT_EQ(all->periods.size(), 3u);
  EXPECT_EQ(all->periods[0].kind, RecordKind::kDryRun);
  EXPECT_EQ(all->periods[0].from, dry_from);
  EXPECT_EQ(all->periods[1].kind, RecordKind::kLive);
  EXPECT_EQ(all->periods[1].from, live_from);
  EXPECT_EQ(all->periods[1].to, live_to);
  EXPECT_FALSE(all->periods[2].to);

  auto live = service_.performance("s", {.kind = RecordKind::kLive});
  ASSERT_TRUE(live);
  ASSERT_EQ(live->points.size(), 5u);
  EXPECT_EQ(live->points.front().ts, live_from);
  auto dry = service_.performance("s", {.kind = RecordKind::kDryRun});
  ASSERT_TRUE(dry);
  EXPECT_EQ(dry->points.size(), 13u);

  auto val = service_.performance("s", {.kind = RecordKind::kValidation});
  ASSERT_TRUE(val);
  EXPECT_EQ(val->points.size(), 30u);
  EXPECT_EQ(val->points.back().equity, 129.0);
  ASSERT_EQ(val->fills.size(), 1u);
  ASSERT_EQ(val->periods.size(), 4u);
  EXPECT_EQ(val->periods[0].kind, RecordKind::kValidation);
  EXPECT_EQ(val->periods[0].to, backtest.points.back().ts);

  // A window and a budget of points.
  auto window = service_.performance("s", {.kind = RecordKind::kValidation,
                                           .from = backtest.points[10].ts,
                                           .to = backtest.points[19].ts,
                                           .max_points = 4});
  ASSERT_TRUE(window);
  EXPECT_EQ(window->total_points, 10u);
  // The first, the one run's low and high, the last.
  ASSERT_EQ(window->points.size(), 4u);
  EXPECT_EQ(window->points[0].equity, 110.0);
  EXPECT_EQ(window->points[1].equity, 111.0);
  EXPECT_EQ(window->points[2].equity, 118.0);
  EXPECT_EQ(window->points[3].equity, 119.0);
  EXPECT_EQ(window->total_fills, 0u);

  auto backwards = service_.performance("s", {.from = live_to, .to = live_from});
  ASSERT_FALSE(backwards);
  EXPECT_EQ(backwards.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(service_.performance("nope", {}).error().code, ErrorCode::kNotFound);
}

TEST_F(PerformanceReadbackTest, LongHistoriesAreDrawnFromHourlyRollupsWithoutLosingAPoint) {
  ASSERT_TRUE(service_.create_world({.id = "w"}));
  ASSERT_TRUE(service_.submit_strategy({.id = "m", .world = "w", .spec = "{}"}));
  for (auto e : {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed}) {
    ASSERT_TRUE(service_.apply_strategy_event("m", e, "setup", ""));
  }
  // Three days of minute points; live from 30 hours and 17 minutes in to 50 hours and 3 minutes.
  const TimePoint t0 = clock_.now();
  std::mt19937 rng(11);
  std::normal_distribution<double> step(0, 0.002);
  std::vector<PerformancePoint> all;
  double eq = 100;
  for (int m = 0; m < 3 * 24 * 60; ++m) {
    all.push_back({t0 + std::chrono::minutes(m), eq});
    eq *= std::exp(step(rng));
  }
  all[1234].equity = 1;    // a crash inside an hour
  all[2500].equity = 500;  // a spike
  ASSERT_TRUE(service_.record_performance("m", all, {}));
  const TimePoint live_from = t0 + hours(30) + std::chrono::minutes(17);
  const TimePoint live_to = t0 + hours(50) + std::chrono::minutes(3);
  clock_.set(live_from);
  ASSERT_TRUE(service_.promote_strategy("m", {.actor = "ops", .reason = "x"}));
  clock_.set(live_to);
  ASSERT_TRUE(service_.demote_strategy("m", {.actor = "ops", .reason = "y"}));

  std::map<TimePoint, double> stored;
  for (const auto& p : all) stored[p.ts] = p.equity;
  struct Case {
    std::optional<RecordKind> kind;
    TimePoint from, to;
  };
  const TimePoint far = TimePoint::max();
  for (const Case& c : std::vector<Case>{{std::nullopt, TimePoint::min(), far},
                                         {RecordKind::kLive, TimePoint::min(), far},
                                         {RecordKind::kDryRun, TimePoint::min(), far},
                                         {std::nullopt, t0 + std::chrono::minutes(95),
                                          t0 + hours(60) + std::chrono::seconds(30)}}) {
    std::vector<PerformancePoint> want;
    for (const auto& p : all) {
      const bool live = p.ts >= live_from && p.ts < live_to;
      if (p.ts < c.from || p.ts > c.to) continue;
      if (c.kind && (*c.kind == RecordKind::kLive) != live) continue;
      want.push_back(p);
    }
    const auto v =
        service_.performance("m", {.kind = c.kind, .from = c.from, .to = c.to, .max_points = 200});
    ASSERT_TRUE(v) << v.error().message;
    const std::string what = c.kind ? std::string(record_kind_name(*c.kind)) : "runs";
    EXPECT_EQ(v->total_points, want.size()) << what;
    ASSERT_LE(v->points.size(), 200u) << what;
    ASSERT_GE(v->points.size(), 100u) << what;
    EXPECT_EQ(v->points.front(), want.front()) << what;
    EXPECT_EQ(v->points.back(), want.back()) << what;
    auto by_equity = [](const auto& x, const auto& y) { return x.equity < y.equity; };
    EXPECT_EQ(std::min_element(v->points.begin(), v->points.end(), by_equity)->equity,
              std::min_element(want.begin(), want.end(), by_equity)->equity)
        << what;
    EXPECT_EQ(std::max_element(v->points.begin(), v->points.end(), by_equity)->equity,
              std::max_element(want.begin(), want.end(), by_equity)->equity)
        << what;
    for (size_t i = 0; i < v->points.size(); ++i) {
      const auto& p = v->points[i];
      ASSERT_TRUE(stored.contains(p.ts)) << what;
      EXPECT_EQ(stored[p.ts], p.equity) << what << " " << format_timestamp(p.ts);
      if (i > 0) {
        EXPECT_LT(v->points[i - 1].ts, p.ts) << what;
      }
    }
  }
}

TEST_F(PerformanceReadbackTest, TheTimelineHasEveryStateChangeOfEveryStrategyInOrder) {
  ASSERT_TRUE(service_.create_world({.id = "w"}));
  ASSERT_TRUE(service_.create_world({.id = "other"}));
  for (const char* id : {"a", "b"}) {
    ASSERT_TRUE(service_.submit_strategy({.id = id, .world = "w", .spec = "{}"}));
  }
  ASSERT_TRUE(service_.submit_strategy({.id = "c", .world = "other", .spec = "{}"}));
  clock_.advance(hours(1));
  ASSERT_TRUE(service_.apply_strategy_event("a", StrategyEvent::kSubmit, "execution", "queued"));
  ASSERT_TRUE(
      service_.apply_strategy_event("a", StrategyEvent::kValidationPassed, "execution", "passed"));
  ASSERT_TRUE(service_.apply_strategy_event("b", StrategyEvent::kArchive, "ops", "not needed"));

  auto tl = service_.timeline("w");
  ASSERT_TRUE(tl) << tl.error().message;
  ASSERT_EQ(tl->size(), 5u);
  EXPECT_EQ((*tl)[0].strategy, "a");
  EXPECT_FALSE((*tl)[0].from);
  EXPECT_EQ((*tl)[2].to, StrategyState::kValidating);
  EXPECT_EQ((*tl)[2].at, *parse_timestamp("2026-03-01T01:00:00Z"));
  EXPECT_EQ((*tl)[3].from, StrategyState::kValidating);
  EXPECT_EQ((*tl)[3].to, StrategyState::kDryRun);
  EXPECT_EQ((*tl)[4].strategy, "b");
  EXPECT_EQ((*tl)[4].to, StrategyState::kArchived);
  EXPECT_EQ((*tl)[4].reason, "not needed");
  for (size_t i = 1; i < tl->size(); ++i) EXPECT_LT((*tl)[i - 1].seq, (*tl)[i].seq);

  auto one = service_.timeline("w", "a");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->size(), 3u);
  EXPECT_EQ(service_.timeline("w", "c").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(service_.timeline("nope").error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace qmtl::world
