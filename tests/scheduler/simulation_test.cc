// Ninety simulated days of one world under the scheduler, with a fake clock and
// a real SQLite file: 20 strategies with synthetic daily returns of known drift,
// volatility and correlation, evaluated and applied every day. The exact
// sequence of promotions and demotions is asserted; it was derived
// independently by tests/scheduler/simulation_model.py from the documented
// rules. It covers min_dry_run, promote_after, demote_after, Top-3, one per
// correlation group, a manual deactivation undone (with the warning), an
// EvalOnly stretch (promotion held back, demotion applied) and a Paused stretch
// (no evaluations).
//
// The strategies (drift per day; volatility 0.0002 on a pattern):
//   a1 a2 a3  0.0040 0.0036 0.0032, one pattern: correlation 1, one group
//   b         0.0034, decaying to -0.0030 from day 56
//   c d f     0.0029 0.0026 0.0031, patterns of their own
//   e         0.0060, submitted on day 30
//   w1..w8    0.0005 (never pass the 2% gate), l1..l4 -0.0010
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>

#include "qmtl/core/json.h"
#include "qmtl/scheduler/scheduler.h"
#include "qmtl/store/store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::scheduler {
namespace {

using lifecycle::StrategyEvent;
using lifecycle::WorldState;

constexpr int kDays = 90;
constexpr double kSigma = 0.0002;

// Walsh function k of period 8: orthogonal patterns, so the groups are only
// the ones built on purpose.
double walsh(int k, int d) {
  return __builtin_popcount(static_cast<unsigned>(k & (d % 8))) % 2 ? -1 : 1;
}

// Must match simulation_model.py's noise().
double noise(int i, int d) {
  const int64_t x = (int64_t{i} * 7919 + int64_t{d} * 104729) % 1000003;
  return (x * x) % 7 < 3 ? 1.0 : -1.0;
}

struct Sim {
  std::string id;
  int first_day;
  bool walsh_pattern;
  int pattern;
  double (*drift)(int day);
};

std::vector<Sim> strategies() {
  std::vector<Sim> s = {
      {"a1", 0, true, 1, [](int) { return 0.0040; }},
      {"a2", 0, true, 1, [](int) { return 0.0036; }},
      {"a3", 0, true, 1, [](int) { return 0.0032; }},
      {"b", 0, true, 2, [](int d) { return d <= 55 ? 0.0034 : -0.0030; }},
      {"c", 0, true, 3, [](int) { return 0.0029; }},
      {"d", 0, true, 4, [](int) { return 0.0026; }},
      {"e", 30, true, 5, [](int) { return 0.0060; }},
      {"f", 0, true, 6, [](int) { return 0.0031; }},
  };
  for (int n = 1; n <= 8; ++n) {
    s.push_back({fmt::format("w{}", n), 0, false, n, [](int) { return 0.0005; }});
  }
  for (int n = 1; n <= 4; ++n) {
    s.push_back({fmt::format("l{}", n), 0, false, 10 + n, [](int) { return -0.0010; }});
  }
  return s;
}

struct Event {
  int day;
  std::string what;
  std::string strategy;
  friend bool operator==(const Event&, const Event&) = default;
};

std::ostream& operator<<(std::ostream& os, const Event& e) {
  return os << "{" << e.day << ", " << e.what << ", " << e.strategy << "}";
}

TEST(Simulation, NinetyDaysOfOneWorld) {
  testing::TempDir dir;
  auto store = std::move(*store::open_store(testing::fresh_store_url(dir, "sim.db")));
  const TimePoint t0 = *parse_timestamp("2026-01-05T00:00:00Z");
  auto day_at = [&](int d) { return t0 + std::chrono::hours(24 * d); };
  FakeClock clock(t0);
  world::WorldService service(*store, clock);
  ASSERT_TRUE(service.create_world({.id = "sim"}));
  ASSERT_TRUE(service.add_policy("sim",
                                 "evaluation: {every: 1d, min_dry_run: 14d, window: 2w}\n"
                                 "gates: {promote: 'return >= 0.02', demote: 'return < 0'}\n"
                                 "score: 'return'\n"
                                 "top_k: {k: 3}\n"
                                 "correlation: {max: 0.9, per_group: 1}\n"
                                 "hysteresis: {promote_after: 3, demote_after: 3}\n",
                                 "desk"));
  const auto sims = strategies();
  std::map<std::string, double> equity;
  auto start = [&](const Sim& s) {
    ASSERT_TRUE(service.submit_strategy({.id = s.id, .world = "sim", .spec = "{}"}));
    ASSERT_TRUE(service.apply_strategy_event(s.id, StrategyEvent::kSubmit, "desk", ""));
    ASSERT_TRUE(
        service.apply_strategy_event(s.id, StrategyEvent::kValidationPassed, "validator", ""));
    equity[s.id] = 100;
    ASSERT_TRUE(service.record_performance(s.id, {{{day_at(s.first_day), 100.0}}}, {}));
  };
  for (const auto& s : sims) {
    if (s.first_day == 0) start(s);
  }
  Scheduler sched(service, clock);
  auto first = sched.tick();
  ASSERT_TRUE(first && first->size() == 1 && first->front().kind == TickOutcome::Kind::kScheduled);

  std::map<int, std::string> run_of_day;
  for (int d = 1; d <= kDays; ++d) {
    clock.set(day_at(d));
    for (const auto& s : sims) {
      if (s.first_day == d) start(s);
      if (s.first_day >= d) continue;
      const double r =
          s.drift(d) + kSigma * (s.walsh_pattern ? walsh(s.pattern, d) : noise(s.pattern, d));
      equity[s.id] *= 1 + r;
      ASSERT_TRUE(service.record_performance(s.id, {{{day_at(d), equity[s.id]}}}, {}));
    }
    // An operator's actions, before that day's tick.
    if (d == 15) {
      ASSERT_TRUE(service.set_activation("sim", "f", "long", false, "ops", "hold f"));
    }
    const std::map<int, WorldState> world_changes = {{44, WorldState::kEvalOnly},
                                                     {49, WorldState::kActive},
                                                     {57, WorldState::kPaused},
                                                     {61, WorldState::kActive}};
    if (auto it = world_changes.find(d); it != world_changes.end()) {
      ASSERT_TRUE(service.set_world_state("sim", it->second, "ops", "simulated"));
    }
    auto outcomes = sched.tick();
    ASSERT_TRUE(outcomes) << outcomes.error().message;
    ASSERT_EQ(outcomes->size(), 1u) << "day " << d;
    const auto& o = outcomes->front();
    if (d >= 57 && d <= 60) {
      EXPECT_EQ(o.kind, TickOutcome::Kind::kSkipped) << "day " << d;
      continue;
    }
    ASSERT_EQ(o.kind, TickOutcome::Kind::kEvaluated) << "day " << d << ": " << o.message;
    EXPECT_TRUE(o.applied);
    run_of_day[d] = o.run_id;
  }

  // The promotions and demotions, from the audit log, by day.
  std::vector<Event> events;
  auto audit = service.list_audit("sim", 0, 10'000);
  ASSERT_TRUE(audit);
  for (const auto& a : *audit) {
    if (a.entity != "strategy" || (a.event != "PROMOTE" && a.event != "DEMOTE")) continue;
    events.push_back(
        {static_cast<int>((a.at - t0) / std::chrono::hours(24)), a.event, a.entity_id});
  }
  std::sort(events.begin(), events.end(), [](const Event& x, const Event& y) {
    return std::tie(x.day, x.strategy) < std::tie(y.day, y.strategy);
  });
  const std::vector<Event> expected = {
      {16, "PROMOTE", "a1"},  // min_dry_run 14d, then the gate held 3 evaluations
      {16, "PROMOTE", "b"},   // a2 and a3 score above b but correlate with a1
      {16, "PROMOTE", "f"},   // undoes the manual override (off) of day 15
      {46, "DEMOTE", "f"},    // out of the top 3 since e passed (day 44): 3 evaluations
      {49, "PROMOTE", "e"},   // selected since day 44, held back while EvalOnly
      {63, "DEMOTE", "b"},    // decaying; no evaluations while Paused (57-60)
      {63, "PROMOTE", "f"},   // back in DryRun on day 46: eligible again on day 60
  };
  EXPECT_EQ(events, expected);

  // The reasons behind them, as the runs recorded them.
  auto decision = [&](int d, const std::string& id) {
    auto run = service.get_evaluation("sim", run_of_day.at(d));
    return json::parse(run->detail)->at("strategies").at(id);
  };
  for (int d : {1, 13}) {
    const auto a1 = decision(d, "a1");
    EXPECT_EQ(a1.at("decision").as_string(), "INELIGIBLE");
    EXPECT_NE(json::dump(a1.at("reasons")).find("min_dry_run is 2w"), std::string::npos);
  }
  EXPECT_NE(json::dump(decision(15, "a1").at("reasons")).find("2 of 3 evaluations"),
            std::string::npos);
  const auto f16 = decision(16, "f");
  EXPECT_TRUE(f16.at("undoes_manual").as_bool());
  EXPECT_NE(json::dump(f16.at("reasons")).find("this promotion undoes a manual override (off)"),
            std::string::npos);
  const auto a2 = decision(16, "a2");
  EXPECT_EQ(a2.at("decision").as_string(), "HOLD");
  EXPECT_NE(json::dump(a2.at("reasons")).find("with a1"), std::string::npos);
  EXPECT_NE(json::dump(decision(16, "c").at("reasons")).find("outside top_k 3"), std::string::npos);
  for (int d = 44; d <= 48; ++d) {
    EXPECT_NE(json::dump(decision(d, "e").at("reasons")).find("world is EvalOnly"),
              std::string::npos)
        << "day " << d;
  }
  EXPECT_NE(json::dump(decision(61, "b").at("reasons")).find("out for 1 of 3 evaluations"),
            std::string::npos);
  EXPECT_EQ(run_of_day.count(57), 0u);
  EXPECT_EQ(service.list_evaluations("sim", 1000)->size(), static_cast<size_t>(kDays - 4));
  // Where everyone ends: the live set and the states.
  std::vector<std::string> live;
  const auto all = service.list_strategies("sim");
  ASSERT_TRUE(all);
  for (const auto& s : *all) {
    if (s.state == lifecycle::StrategyState::kLive) live.push_back(s.id);
  }
  EXPECT_EQ(live, (std::vector<std::string>{"a1", "e", "f"}));

  // Replaying the recorded policy over the whole span reproduces every decision
  // of every run (docs/policy.md, "Trying a policy before applying it"), on
  // either store.
  auto replay = service.replay("sim", {});
  ASSERT_TRUE(replay) << replay.error().message;
  EXPECT_EQ(replay->runs, static_cast<size_t>(kDays - 4));
  size_t decisions = 0;
  const auto runs = service.list_evaluations("sim", 1000);
  ASSERT_TRUE(runs);
  for (const auto& run : *runs) decisions += run.results.size();
  EXPECT_EQ(replay->decisions, decisions);
  for (const auto& d : replay->differences) {
    ADD_FAILURE() << d.run << " " << d.strategy << ": recorded " << d.recorded << ", replayed "
                  << d.replayed << ": " << d.why;
  }
  EXPECT_EQ(replay->replayed.live, replay->recorded.live);
  EXPECT_EQ(replay->recorded.promotions, 5u);
  EXPECT_EQ(replay->recorded.demotions, 2u);
  EXPECT_EQ(replay->replayed.promotions, 5u);
  EXPECT_EQ(replay->replayed.demotions, 2u);
  EXPECT_EQ(replay->replayed.equity, replay->recorded.equity);
  EXPECT_EQ(replay->replayed.kpis, replay->recorded.kpis);
  ASSERT_FALSE(replay->recorded.live.empty());
  EXPECT_EQ(replay->recorded.live.back().live, live);
}

}  // namespace
}  // namespace qmtl::scheduler
