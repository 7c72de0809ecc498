// The scheduler over a real SQLite file with a fake clock: tick alignment,
// first sight, due runs evaluated and applied, a restart after missed ticks
// (one catch-up run, none repeated), an apply interrupted by a crash, Paused,
// EvalOnly and Retired worlds, a policy whose schedule changes.
#include "qmtl/scheduler/scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "qmtl/core/json.h"
#include "qmtl/store/store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::scheduler {
namespace {

using lifecycle::StrategyEvent;
using lifecycle::WorldState;
using std::chrono::hours;
using std::chrono::minutes;
using Kind = TickOutcome::Kind;

TimePoint at(const char* iso) { return *parse_timestamp(iso); }

TEST(Schedule, EveryTicksOnMultiplesOfItsIntervalSinceTheEpoch) {
  const auto day = Schedule::every(hours(24));
  EXPECT_EQ(day.spec(), "every 1d");
  EXPECT_EQ(*day.next_after(at("2026-11-27T10:15:00Z")), at("2026-11-28T00:00:00Z"));
  EXPECT_EQ(*day.next_after(at("2026-11-28T00:00:00Z")), at("2026-11-29T00:00:00Z"));
  const auto quarter = Schedule::every(minutes(15));
  EXPECT_EQ(*quarter.next_after(at("2026-11-27T10:15:00.000001Z")), at("2026-11-27T10:30:00Z"));
  auto weekly = Schedule::cron("0 6 * * 1");
  ASSERT_TRUE(weekly);
  EXPECT_EQ(weekly->spec(), "cron 0 6 * * 1");
  EXPECT_EQ(*weekly->next_after(at("2026-11-27T10:15:00Z")), at("2026-11-30T06:00:00Z"));
  EXPECT_FALSE(Schedule::cron("0 0 * *"));
}

class SchedulerTest : public ::testing::Test {
 protected:
  SchedulerTest()
      : store_(std::move(*store::open_store(testing::fresh_store_url(dir_, "s.db")))),
        clock_(at("2026-03-01T10:00:00Z")),
        service_(*store_, clock_) {
    EXPECT_TRUE(service_.create_world({.id = "w"}));
    EXPECT_TRUE(service_.add_policy("w",
                                    "gates: {promote: 'return >= 0.01', demote: 'return < 0'}\n"
                                    "evaluation: {every: 1d, window: 2w}\n",
                                    "alice"));
    // One DryRun strategy that earns its promotion.
    EXPECT_TRUE(service_.submit_strategy({.id = "s", .world = "w", .spec = "{}"}));
    for (auto e : {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed}) {
      EXPECT_TRUE(service_.apply_strategy_event("s", e, "test", ""));
    }
    std::vector<world::PerformancePoint> pts;
    double eq = 100;
    for (int d = 30; d >= 0; --d) {
      pts.push_back({clock_.now() - hours(24 * d), eq});
      eq *= d % 2 == 0 ? 1.004 : 1.001;
    }
    EXPECT_TRUE(service_.record_performance("s", pts, {}));
  }
  std::vector<TickOutcome> tick(Scheduler& s) {
    auto r = s.tick();
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : std::vector<TickOutcome>{};
  }
  size_t runs() { return service_.list_evaluations("w", 1000)->size(); }
  std::string state(const std::string& id) {
    return std::string(lifecycle::strategy_state_name(service_.get_strategy(id)->state));
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  FakeClock clock_;
  world::WorldService service_;
};

TEST_F(SchedulerTest, FirstSightSchedulesThenDueTicksEvaluateAndApply) {
  Scheduler sched(service_, clock_);
  auto first = tick(sched);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].kind, Kind::kScheduled);
  EXPECT_EQ(first[0].next_run, at("2026-03-02T00:00:00Z"));
  EXPECT_EQ(runs(), 0u);  // never retroactively
  clock_.set(at("2026-03-01T23:59:59Z"));
  EXPECT_TRUE(tick(sched).empty());

  clock_.set(at("2026-03-02T00:00:00Z"));
  auto due = tick(sched);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].kind, Kind::kEvaluated);
  EXPECT_TRUE(due[0].applied);
  EXPECT_EQ(due[0].run_id, "w-1");
  EXPECT_EQ(due[0].next_run, at("2026-03-03T00:00:00Z"));
  EXPECT_EQ(state("s"), "Live");
  auto saved = service_.get_schedule("w");
  ASSERT_TRUE(saved && *saved);
  EXPECT_EQ((*saved)->spec, "every 1d");
  EXPECT_EQ((*saved)->last_run, at("2026-03-02T00:00:00Z"));
  EXPECT_EQ((*saved)->last_run_id, "w-1");
  EXPECT_EQ((*saved)->next_run, at("2026-03-03T00:00:00Z"));
  EXPECT_TRUE(tick(sched).empty());  // not again within the same tick
  EXPECT_EQ(runs(), 1u);
  // The audit log names the scheduler as the actor.
  auto audit = service_.list_audit("w");
  bool by_scheduler = false;
  for (const auto& a : *audit) by_scheduler |= a.event == "EVALUATE" && a.actor == "scheduler";
  EXPECT_TRUE(by_scheduler);
}

// A stopping server asks its scheduler to stop before it stops the runners:
// once request_stop() has returned, no tick starts, even with a world due.
TEST_F(SchedulerTest, NoTickStartsAfterRequestStop) {
  Scheduler sched(service_, clock_);
  std::atomic<int> reports{0};
  SchedulerThread thread(sched, std::chrono::milliseconds(10),
                         [&reports](const TickOutcome&) { ++reports; });
  for (int i = 0; i < 500 && reports == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(reports, 1);  // the first sight schedules the world
  thread.request_stop();
  // A tick under way when the stop was requested may finish (the contract),
  // and would see the clock set below: let it end first. A tick here takes
  // well under a millisecond; without this wait the test failed about once
  // in ten loaded runs.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const int before = reports;
  clock_.set(at("2026-03-02T00:00:00Z"));  // due
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(reports, before);
  EXPECT_EQ(runs(), 0u);
}

TEST_F(SchedulerTest, ARestartAfterMissedTicksRunsOnceAndRepeatsNothing) {
  {
    Scheduler sched(service_, clock_);
    tick(sched);
    clock_.set(at("2026-03-02T00:00:30Z"));
    ASSERT_EQ(tick(sched)[0].kind, Kind::kEvaluated);
  }
  // Down for three days: ticks of the 3rd, 4th and 5th are missed.
  clock_.set(at("2026-03-05T12:00:00Z"));
  Scheduler restarted(service_, clock_);
  auto caught_up = tick(restarted);
  ASSERT_EQ(caught_up.size(), 1u);
  EXPECT_EQ(caught_up[0].kind, Kind::kEvaluated);
  EXPECT_EQ(caught_up[0].next_run, at("2026-03-06T00:00:00Z"));
  EXPECT_EQ(runs(), 2u);  // one catch-up run, not three
  EXPECT_TRUE(tick(restarted).empty());
  // A restart right after a run does not repeat it.
  Scheduler again(service_, clock_);
  EXPECT_TRUE(tick(again).empty());
  EXPECT_EQ(runs(), 2u);
}

TEST_F(SchedulerTest, AnApplyInterruptedByACrashIsFinishedAfterTheRestart) {
  {
    Scheduler sched(service_, clock_);
    tick(sched);
  }
  // The scheduled evaluation committed with its schedule advance, then the
  // process died before applying it.
  auto stored = *service_.get_schedule("w");
  store::ScheduleState advance = *stored;
  advance.last_run = advance.next_run;
  advance.next_run = at("2026-03-03T00:00:00Z");
  clock_.set(at("2026-03-02T00:00:00Z"));
  auto run = service_.evaluate_world("w", "scheduler", advance);
  ASSERT_TRUE(run) << run.error().message;
  EXPECT_EQ((*service_.get_schedule("w"))->last_run_id, run->id);  // same transaction
  EXPECT_EQ(state("s"), "DryRun");

  clock_.set(at("2026-03-02T00:05:00Z"));
  Scheduler restarted(service_, clock_);
  EXPECT_TRUE(tick(restarted).empty());  // nothing new is due
  EXPECT_EQ(state("s"), "Live");         // but the run was applied
  EXPECT_EQ(runs(), 1u);
}

TEST_F(SchedulerTest, PausedSkipsEvalOnlyEvaluatesRetiredIsLeftAlone) {
  Scheduler sched(service_, clock_);
  tick(sched);
  ASSERT_TRUE(service_.set_world_state("w", WorldState::kPaused, "ops", "maintenance"));
  clock_.set(at("2026-03-02T00:00:00Z"));
  auto skipped = tick(sched);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].kind, Kind::kSkipped);
  EXPECT_EQ(skipped[0].message, "world 'w' is Paused: not evaluated");
  EXPECT_EQ(skipped[0].next_run, at("2026-03-03T00:00:00Z"));
  EXPECT_EQ(runs(), 0u);
  // Resuming does not run the skipped tick; the next one runs.
  ASSERT_TRUE(service_.set_world_state("w", WorldState::kEvalOnly, "ops", "watch only"));
  EXPECT_TRUE(tick(sched).empty());
  clock_.set(at("2026-03-03T00:00:00Z"));
  auto eval_only = tick(sched);
  ASSERT_EQ(eval_only.size(), 1u);
  EXPECT_EQ(eval_only[0].kind, Kind::kEvaluated);
  EXPECT_TRUE(eval_only[0].applied);  // nothing to promote in an EvalOnly world
  EXPECT_EQ(state("s"), "DryRun");
  const auto detail = *json::parse(service_.get_evaluation("w", eval_only[0].run_id)->detail);
  EXPECT_EQ(detail.at("strategies").at("s").at("decision").as_string(), "HOLD");
  ASSERT_TRUE(service_.set_world_state("w", WorldState::kRetired, "ops", "closed"));
  clock_.set(at("2026-03-04T00:00:00Z"));
  EXPECT_TRUE(tick(sched).empty());
  EXPECT_EQ(runs(), 1u);
}

TEST_F(SchedulerTest, ANewScheduleInThePolicyStartsAfresh) {
  Scheduler sched(service_, clock_);
  tick(sched);
  ASSERT_TRUE(service_.add_policy("w",
                                  "gates: {promote: 'return >= 0.01', demote: 'return < 0'}\n"
                                  "evaluation: {cron: '30 9 * * 1-5', window: 2w}\n",
                                  "alice"));
  auto moved = tick(sched);
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].kind, Kind::kScheduled);
  EXPECT_EQ(moved[0].next_run, at("2026-03-02T09:30:00Z"));  // 1 March 2026 is a Sunday
  EXPECT_EQ((*service_.get_schedule("w"))->spec, "cron 30 9 * * 1-5");
  clock_.set(at("2026-03-02T09:30:00Z"));
  EXPECT_EQ(tick(sched)[0].kind, Kind::kEvaluated);
  EXPECT_EQ((*service_.get_schedule("w"))->next_run, at("2026-03-03T09:30:00Z"));
}

TEST_F(SchedulerTest, AWorldWithoutAPolicyIsNotScheduled) {
  ASSERT_TRUE(service_.create_world({.id = "bare"}));
  Scheduler sched(service_, clock_);
  auto outcomes = tick(sched);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].world, "w");
  EXPECT_FALSE(*service_.get_schedule("bare"));
  auto due = sched.next_due();
  ASSERT_TRUE(due && *due);
  EXPECT_EQ(**due, at("2026-03-02T00:00:00Z"));
}

}  // namespace
}  // namespace qmtl::scheduler
