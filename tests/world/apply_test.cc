// Two-phase apply: the happy path, idempotency by run id, and crash recovery
// with a real child process SIGKILLed at each phase and inside a transaction.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "qmtl/core/json.h"
#include "qmtl/world/world_service.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::world {
namespace {

using lifecycle::StrategyEvent;
using lifecycle::StrategyState;
using std::chrono::hours;

class ApplyTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void open() {
    service_.reset();
    store_ = std::move(*store::open_store(url_));
    service_ = std::make_unique<WorldService>(*store_, clock_);
  }
  void close() {
    service_.reset();
    store_.reset();
  }

  // A world where `up` should be promoted and `down` demoted; returns the run id.
  std::string evaluated_world() {
    EXPECT_TRUE(service_->create_world({.id = "w"}));
    EXPECT_TRUE(service_->add_policy(
        "w", "gates: {promote: 'return >= 0.03', demote: 'return < 0'}\nevaluation: {window: 2w}",
        "alice"));
    add("up", 0.003, {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed});
    add("down", -0.003,
        {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed, StrategyEvent::kPromote});
    add("steady", 0.003,
        {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed, StrategyEvent::kPromote});
    auto run = service_->evaluate_world("w", "scheduler");
    EXPECT_TRUE(run) << run.error().message;
    return run->id;
  }
  void add(const std::string& id, double daily, std::vector<StrategyEvent> events) {
    ASSERT_TRUE(service_->submit_strategy({.id = id, .world = "w", .spec = "{}"}));
    for (auto e : events) ASSERT_TRUE(service_->apply_strategy_event(id, e, "setup", ""));
    std::vector<PerformancePoint> pts;
    double eq = 100;
    for (int d = 30; d >= 0; --d) {
      pts.push_back({clock_.now() - hours(24 * d), eq});
      eq *= 1 + daily + (d % 2 == 0 ? 0.001 : -0.001);
    }
    ASSERT_TRUE(service_->record_performance(id, pts, {}));
  }
  // By value: a range-for over *result() would dangle.
  std::vector<Strategy> strategies() { return *service_->list_strategies("w"); }
  std::vector<Activation> activations() { return *service_->list_activations("w"); }
  std::vector<AuditRecord> audit() { return *service_->list_audit("w"); }

  std::map<std::string, StrategyState> states() {
    std::map<std::string, StrategyState> out;
    for (const auto& s : strategies()) out[s.id] = s.state;
    return out;
  }
  // The invariants a crash must never break.
  void expect_consistent() {
    const auto st = states();
    for (const auto& a : activations()) {
      EXPECT_FALSE(a.frozen) << a.strategy_id << " left frozen";
      EXPECT_EQ(a.active, st.at(a.strategy_id) == StrategyState::kLive)
          << a.strategy_id << " " << a.side;
    }
    EXPECT_TRUE(store_->unfinished_applies()->empty());
    std::multiset<std::string> moves;
    for (const auto& r : audit()) {
      if (r.run_id && (r.event == "PROMOTE" || r.event == "DEMOTE"))
        moves.insert(r.event + ":" + r.entity_id);
    }
    for (const auto& m : moves) EXPECT_EQ(moves.count(m), 1u) << "duplicate audit record " << m;
  }

  testing::TempDir dir_;
  const std::string url_ = testing::fresh_store_url(dir_, "a.db");
  FakeClock clock_{*parse_timestamp("2026-03-01T00:00:00Z")};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<WorldService> service_;
};

TEST_F(ApplyTest, AppliesDecisionsAndIsIdempotentByRunId) {
  const std::string run = evaluated_world();
  auto first = service_->apply_run("w", run, "scheduler");
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->promote, std::vector<std::string>{"up"});
  EXPECT_EQ(first->demote, std::vector<std::string>{"down"});
  EXPECT_EQ(states(), (std::map<std::string, StrategyState>{{"down", StrategyState::kDryRun},
                                                            {"steady", StrategyState::kLive},
                                                            {"up", StrategyState::kLive}}));
  expect_consistent();
  const auto audit_before = service_->list_audit("w")->size();
  auto again = service_->apply_run("w", run, "scheduler");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->phase, store::ApplyPhase::kDone);
  EXPECT_EQ(service_->list_audit("w")->size(), audit_before);  // nothing new happened
  std::vector<std::string> events;
  for (const auto& r : audit()) {
    if (r.run_id == run) events.push_back(r.event);
  }
  // Demotions before promotions: the apply closes before it opens.
  EXPECT_EQ(events, (std::vector<std::string>{"EVALUATE", "APPLY_FREEZE", "DEMOTE", "PROMOTE",
                                              "APPLY_SWITCH", "APPLY_DONE"}));
}

TEST_F(ApplyTest, GatesFollowManualEventsAndRetirement) {
  evaluated_world();
  // Manual promotions in the setup opened the gates of down and steady.
  size_t open = 0;
  for (const auto& a : activations()) open += a.active ? 1 : 0;
  EXPECT_EQ(open, 4u);  // two strategies x two sides
  expect_consistent();
  ASSERT_TRUE(service_->apply_strategy_event("steady", StrategyEvent::kDemote, "op", "manual"));
  expect_consistent();
  // EvalOnly and Paused close the live gates; Active reopens them.
  for (auto state : {lifecycle::WorldState::kEvalOnly, lifecycle::WorldState::kPaused}) {
    ASSERT_TRUE(service_->set_world_state("w", state, "op", ""));
    for (const auto& a : activations()) EXPECT_FALSE(a.active) << a.strategy_id;
    ASSERT_TRUE(service_->set_world_state("w", lifecycle::WorldState::kActive, "op", ""));
    expect_consistent();
    EXPECT_TRUE(activations().front().active);  // down (Live) is open again
  }
  ASSERT_TRUE(service_->set_world_state("w", lifecycle::WorldState::kRetired, "op", "closing"));
  for (const auto& a : activations()) EXPECT_FALSE(a.active) << a.strategy_id;
  for (const auto& a : activations()) EXPECT_GT(a.version, 1) << "every write bumps the version";
}

const Activation& gate(const std::vector<Activation>& all, const std::string& id,
                       const std::string& side) {
  for (const auto& a : all) {
    if (a.strategy_id == id && a.side == side) return a;
  }
  throw std::runtime_error("no gate " + id + "/" + side);
}

TEST_F(ApplyTest, ManualOverrideIsRecordedReportedAndClearedByApply) {
  evaluated_world();
  const int64_t v = gate(activations(), "down", "long").version;
  auto stale = service_->set_activation("w", "down", "long", true, "op", "keep", v - 1);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::kVersionMismatch);
  EXPECT_NE(stale.error().message.find("read it again and retry"), std::string::npos);
  auto set = service_->set_activation("w", "down", "long", true, "op", "keep it running", v);
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_FALSE(set->queued);
  EXPECT_TRUE(set->entry->active);
  EXPECT_EQ(set->entry->manual, true);
  EXPECT_EQ(set->entry->version, v + 1);
  EXPECT_EQ(audit().back().event, "ACTIVATION_SET");
  EXPECT_EQ(audit().back().reason, "keep it running");
  // The next evaluation would demote it, and says that this undoes the override.
  clock_.advance(hours(1));
  auto run = service_->evaluate_world("w", "scheduler");
  ASSERT_TRUE(run);
  const auto d = *json::parse(run->detail);
  EXPECT_TRUE(d.at("strategies").at("down").at("undoes_manual").as_bool());
  EXPECT_NE(
      json::dump(d.at("strategies").at("down").at("reasons")).find("undoes a manual override"),
      std::string::npos);
  ASSERT_TRUE(service_->apply_run("w", run->id, "scheduler"));
  EXPECT_FALSE(gate(activations(), "down", "long").manual);  // the policy took over
  EXPECT_FALSE(gate(activations(), "down", "long").active);
}

TEST_F(ApplyTest, ManualOffSurvivesWorldStateChanges) {
  evaluated_world();
  ASSERT_TRUE(service_->set_activation("w", "steady", "long", false, "op", "risk limit"));
  ASSERT_TRUE(service_->set_world_state("w", lifecycle::WorldState::kEvalOnly, "op", ""));
  ASSERT_TRUE(service_->set_world_state("w", lifecycle::WorldState::kActive, "op", ""));
  EXPECT_FALSE(gate(activations(), "steady", "long").active);
  EXPECT_TRUE(gate(activations(), "steady", "short").active);
}

TEST_F(ApplyTest, PausedWorldQueuesManualActivationsUntilResume) {
  evaluated_world();
  ASSERT_TRUE(service_->set_world_state("w", lifecycle::WorldState::kPaused, "op", ""));
  auto q = service_->set_activation("w", "up", "long", true, "op", "start early");
  ASSERT_TRUE(q) << q.error().message;
  EXPECT_TRUE(q->queued);
  for (const auto& a : activations()) EXPECT_FALSE(a.strategy_id == "up" && a.active);
  ASSERT_TRUE(service_->set_world_state("w", lifecycle::WorldState::kActive, "op", "resume"));
  // Opening a side of a DryRun strategy promotes it, with that side only.
  EXPECT_EQ(states().at("up"), StrategyState::kLive);
  EXPECT_TRUE(gate(activations(), "up", "long").active);
  EXPECT_EQ(gate(activations(), "up", "long").manual, true);
  EXPECT_FALSE(gate(activations(), "up", "short").active);
  EXPECT_EQ(gate(activations(), "up", "short").manual, false);
  std::vector<std::string> events;
  for (const auto& r : audit()) {
    if (r.entity == "activation" ||
        (r.entity == "strategy" && r.entity_id == "up" && r.event.starts_with("PROMOTE"))) {
      events.push_back(r.event);
      if (r.event == "PROMOTE") {
        EXPECT_EQ(r.reason, "queued while Paused, applied on resume: start early");
        EXPECT_EQ(r.actor, "op");
      }
    }
  }
  EXPECT_EQ(events, (std::vector<std::string>{"ACTIVATION_QUEUED", "PROMOTE"}));
  EXPECT_TRUE(store_->list_queued_activations("w")->empty());
  // Queued openings are dropped when the world resumes into EvalOnly.
  ASSERT_TRUE(service_->set_world_state("w", lifecycle::WorldState::kPaused, "op", ""));
  ASSERT_TRUE(service_->set_activation("w", "down", "short", true, "op", ""));
  ASSERT_TRUE(service_->set_world_state("w", lifecycle::WorldState::kEvalOnly, "op", ""));
  EXPECT_EQ(audit().back().event, "ACTIVATION_DROPPED");
  EXPECT_FALSE(gate(activations(), "down", "short").active);
}

TEST_F(ApplyTest, ManualActivationRefusals) {
  evaluated_world();
  const auto before = activations();
  const auto marks = [&] {
    std::vector<std::optional<bool>> out;
    for (const auto& a : activations()) out.push_back(a.manual);
    return out;
  };
  const auto marks_before = marks();
  EXPECT_EQ(service_->set_activation("w", "up", "both", true, "op", "").error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(service_->set_activation("w", "ghost", "long", true, "op", "").error().code,
            ErrorCode::kNotFound);
  ASSERT_TRUE(service_->apply_strategy_event("up", StrategyEvent::kArchive, "op", ""));
  EXPECT_EQ(service_->set_activation("w", "up", "long", true, "op", "").error().code,
            ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(service_->set_world_state("w", lifecycle::WorldState::kEvalOnly, "op", ""));
  auto r = service_->set_activation("w", "steady", "long", true, "op", "");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("EvalOnly: gates stay closed"), std::string::npos);
  EXPECT_EQ(marks(), marks_before);
  EXPECT_EQ(activations().size(), before.size());
}

TEST_F(ApplyTest, ConcurrentAppliesOfOneRunApplyOnce) {
  const std::string run = evaluated_world();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (service_->apply_run("w", run, "scheduler")) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 4);  // the later ones find the run Done
  size_t freezes = 0;
  for (const auto& r : audit()) freezes += r.event == "APPLY_FREEZE" && r.run_id == run ? 1U : 0U;
  EXPECT_EQ(freezes, 1u);
  expect_consistent();
}

TEST_F(ApplyTest, StaleDecisionsAreSkippedNotForced) {
  const std::string run = evaluated_world();
  ASSERT_TRUE(
      service_->apply_strategy_event("up", StrategyEvent::kDeactivate, "op", "manual stop"));
  ASSERT_TRUE(service_->apply_run("w", run, "scheduler"));
  EXPECT_EQ(states().at("up"), StrategyState::kInactive);
  bool skipped = false;
  for (const auto& r : audit()) skipped |= r.event == "PROMOTE_SKIPPED" && r.entity_id == "up";
  EXPECT_TRUE(skipped);
  expect_consistent();
}

TEST_F(ApplyTest, RefusedWhenPausedAndUnknownRun) {
  const std::string run = evaluated_world();
  EXPECT_EQ(service_->apply_run("w", "w-99", "op").error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(service_->set_world_state("w", lifecycle::WorldState::kPaused, "op", ""));
  auto r = service_->apply_run("w", run, "op");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("is Paused"), std::string::npos);
  EXPECT_EQ(states().at("up"), StrategyState::kDryRun);
}

class CrashTest : public ApplyTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(CrashTest, RecoveryLeavesAConsistentWorld) {
  const std::string run = evaluated_world();
  const auto before = states();
  close();
  auto child = testing::run_process({APPLY_CRASH_HELPER, url_, "w", run, GetParam()});
  ASSERT_EQ(child.exit_code, 128 + 9) << child.err;  // SIGKILL
  open();
  auto recovered = service_->recover_applies();
  ASSERT_TRUE(recovered) << recovered.error().message;
  const auto after = states();
  if (GetParam() == "in-transaction") {
    // The torn transaction never happened.
    EXPECT_TRUE(recovered->empty());
    EXPECT_EQ(after, before);
    for (const auto& r : audit()) EXPECT_NE(r.reason, "torn");
    // ... and the run can still be applied.
    ASSERT_TRUE(service_->apply_run("w", run, "scheduler"));
    EXPECT_EQ(states().at("up"), StrategyState::kLive);
  } else if (GetParam() == "frozen") {
    ASSERT_EQ(recovered->size(), 1u);
    EXPECT_EQ((*recovered)[0].phase, store::ApplyPhase::kRolledBack);
    EXPECT_EQ(after, before);
    EXPECT_EQ(service_->list_audit("w")->back().event, "APPLY_ROLLED_BACK");
    auto again = service_->apply_run("w", run, "scheduler");
    ASSERT_FALSE(again);
    EXPECT_NE(again.error().message.find("was rolled back"), std::string::npos);
  } else if (GetParam() == "switched") {
    ASSERT_EQ(recovered->size(), 1u);
    EXPECT_EQ((*recovered)[0].phase, store::ApplyPhase::kDone);
    EXPECT_EQ(after.at("up"), StrategyState::kLive);
    EXPECT_EQ(after.at("down"), StrategyState::kDryRun);
    EXPECT_EQ(service_->list_audit("w")->back().event, "APPLY_COMPLETED");
    EXPECT_EQ(service_->apply_run("w", run, "scheduler")->phase, store::ApplyPhase::kDone);
  } else {  // done: nothing to recover
    EXPECT_TRUE(recovered->empty());
    EXPECT_EQ(after.at("up"), StrategyState::kLive);
  }
  expect_consistent();
}

INSTANTIATE_TEST_SUITE_P(Phases, CrashTest,
                         ::testing::Values("in-transaction", "frozen", "switched", "done"),
                         [](const auto& p) {
                           return p.param == "in-transaction" ? std::string("in_transaction")
                                                              : std::string(p.param);
                         });

}  // namespace
}  // namespace qmtl::world
