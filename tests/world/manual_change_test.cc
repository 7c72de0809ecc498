// Manual promotion and demotion, and gate overrides as state-machine events
// (issue #20): through the two-phase apply, audited, within the caps unless
// forced, refused in EvalOnly, queued in Paused; and the forecast of the next
// evaluation, which must predict exactly what that evaluation does.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <random>

#include "qmtl/core/json.h"
#include "qmtl/world/world_service.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::world {
namespace {

using lifecycle::StrategyEvent;
using lifecycle::StrategyState;
using lifecycle::WorldState;
using std::chrono::hours;

Duration days(int n) { return hours(24 * n); }

class ManualChangeTest : public ::testing::Test {
 protected:
  ManualChangeTest()
      : store_(std::move(*store::open_store(testing::fresh_store_url(dir_, "manual.db")))),
        clock_(*parse_timestamp("2026-03-01T00:00:00Z")),
        service_(*store_, clock_) {}

  void world(const std::string& id, const std::string& policy) {
    ASSERT_TRUE(service_.create_world({.id = id}));
    auto p = service_.add_policy(id, policy, "alice");
    ASSERT_TRUE(p) << p.error().message;
  }
  // A DryRun strategy with 20 daily points ending now, compounding `daily`
  // plus noise of its own, or the noise of `like` (a correlation near 1).
  void strategy(const std::string& world, const std::string& id, double daily,
                const std::string& like = "") {
    ASSERT_TRUE(service_.submit_strategy({.id = id, .world = world, .spec = "{}"}));
    for (auto e : {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed}) {
      ASSERT_TRUE(service_.apply_strategy_event(id, e, "setup", ""));
    }
    std::mt19937 rng(static_cast<unsigned>(std::hash<std::string>{}(like.empty() ? id : like)));
    std::normal_distribution<double> noise(0, 0.002);
    std::vector<PerformancePoint> pts;
    double eq = 100;
    for (int d = 20; d >= 0; --d) {
      pts.push_back({clock_.now() - days(d), eq});
      eq *= 1 + daily + noise(rng);
    }
    ASSERT_TRUE(service_.record_performance(id, pts, {}));
  }
  StrategyState state(const std::string& id) { return service_.get_strategy(id)->state; }
  const Activation gate(const std::string& world, const std::string& id, const std::string& side) {
    const auto all = *service_.list_activations(world);
    for (const auto& a : all) {
      if (a.strategy_id == id && a.side == side) return a;
    }
    ADD_FAILURE() << "no gate " << id << "/" << side;
    return {};
  }
  std::vector<AuditRecord> audit(const std::string& world) { return *service_.list_audit(world); }
  static WorldService::ManualChange by(const std::string& reason, bool force = false) {
    return {.actor = "ops", .reason = reason, .force = force};
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  FakeClock clock_;
  WorldService service_;
};

constexpr const char* kPolicy =
    "gates: {promote: 'return >= 0.01', demote: 'return < 0'}\n"
    "evaluation: {every: 1d, window: 2w}\n";

TEST_F(ManualChangeTest, PromoteAndDemoteByHandGoThroughTheTwoPhaseApply) {
  world("w", kPolicy);
  strategy("w", "a", 0.002);
  auto up = service_.promote_strategy("a", by("desk head's call"));
  ASSERT_TRUE(up) << up.error().message;
  EXPECT_FALSE(up->queued);
  EXPECT_EQ(up->strategy.state, StrategyState::kLive);
  EXPECT_EQ(up->apply_id, "w-m1");
  auto entry = store_->get_apply("w-m1");
  ASSERT_TRUE(entry && *entry);
  EXPECT_EQ((*entry)->kind, "manual");
  EXPECT_EQ((*entry)->phase, store::ApplyPhase::kDone);
  EXPECT_EQ((*entry)->promote, std::vector<std::string>{"a"});
  std::vector<std::string> events;
  for (const auto& r : audit("w")) {
    if (r.run_id == "w-m1") events.push_back(r.event);
    if (r.event == "PROMOTE") {
      EXPECT_EQ(r.actor, "ops");
      EXPECT_EQ(r.reason, "desk head's call");
    }
  }
  EXPECT_EQ(events,
            (std::vector<std::string>{"APPLY_FREEZE", "PROMOTE", "APPLY_SWITCH", "APPLY_DONE"}));
  for (const char* side : {"long", "short"}) {
    EXPECT_TRUE(gate("w", "a", side).active);
    EXPECT_FALSE(gate("w", "a", side).frozen);
    EXPECT_EQ(gate("w", "a", side).manual, true);
  }
  auto down = service_.demote_strategy("a", by("risk review"));
  ASSERT_TRUE(down) << down.error().message;
  EXPECT_EQ(state("a"), StrategyState::kDryRun);
  EXPECT_EQ(down->apply_id, "w-m2");
  for (const char* side : {"long", "short"}) {
    EXPECT_FALSE(gate("w", "a", side).active);
    EXPECT_EQ(gate("w", "a", side).manual, false);
  }
  // Not DryRun / not Live: refused, naming what to do.
  EXPECT_NE(service_.demote_strategy("a", by("x")).error().message.find("is DryRun, not Live"),
            std::string::npos);
  ASSERT_TRUE(service_.apply_strategy_event("a", StrategyEvent::kDeactivate, "ops", ""));
  auto inactive = service_.promote_strategy("a", by("x"));
  ASSERT_FALSE(inactive);
  EXPECT_NE(inactive.error().message.find("`qmtl strategy activate a` brings it back to DryRun"),
            std::string::npos)
      << inactive.error().message;
  ASSERT_TRUE(service_.apply_strategy_event("a", StrategyEvent::kReactivate, "ops", ""));
  auto activate = service_.apply_strategy_event("a", StrategyEvent::kReactivate, "ops", "");
  ASSERT_FALSE(activate);
  EXPECT_NE(activate.error().message.find("to trade it live use `qmtl strategy promote a`"),
            std::string::npos)
      << activate.error().message;
}

TEST_F(ManualChangeTest, APromotionBeyondACapIsRefusedUnlessForced) {
  world("w", std::string(kPolicy) +
                 "top_k: {k: 1}\ncorrelation: {max: 0.8, per_group: 1}\n"
                 "hysteresis: {demote_after: 3}\n");
  strategy("w", "a", 0.002);
  strategy("w", "b", 0.001);
  strategy("w", "twin", 0.002, "a");  // returns like a's: correlation near 1
  ASSERT_TRUE(service_.promote_strategy("a", by("first")));
  const auto audit_before = audit("w").size();
  auto full = service_.promote_strategy("b", by("second"));
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(full.error().message.find("promoting 'b' would break the policy's caps: top_k 1 is "
                                      "full (a is Live); demote a Live strategy first, or force "
                                      "it"),
            std::string::npos)
      << full.error().message;
  EXPECT_EQ(state("b"), StrategyState::kDryRun);
  EXPECT_EQ(audit("w").size(), audit_before);  // nothing written

  auto forced = service_.promote_strategy("b", by("second", true));
  ASSERT_TRUE(forced) << forced.error().message;
  EXPECT_EQ(forced->forced, "top_k 1 is full (a is Live)");
  bool recorded = false;
  for (const auto& r : audit("w")) {
    recorded |= r.event == "PROMOTE" && r.entity_id == "b" &&
                r.reason == "second; forced past the policy's caps: top_k 1 is full (a is Live)";
  }
  EXPECT_TRUE(recorded);
  // The forecast says the next evaluation brings the world back within k at
  // once: hysteresis (demote_after 3) does not wait out a cap.
  ASSERT_TRUE(forced->next);
  EXPECT_EQ(forced->next->decision, "DEMOTE");
  ASSERT_TRUE(forced->warning);
  EXPECT_NE(forced->warning->find("demoted now: top_k 1 is full (a is Live)"), std::string::npos)
      << *forced->warning;
  ASSERT_TRUE(service_.demote_strategy("b", by("back within k")));

  // A strategy correlated with a Live one: the correlation group's cap.
  world("v", std::string(kPolicy) + "correlation: {max: 0.8, per_group: 1}\n");
  strategy("v", "p", 0.002);
  strategy("v", "p-twin", 0.002, "p");
  strategy("v", "q", -0.001);
  ASSERT_TRUE(service_.promote_strategy("p", by("first")));
  auto grouped = service_.promote_strategy("p-twin", by("second"));
  ASSERT_FALSE(grouped);
  EXPECT_NE(grouped.error().message.find(">= 0.8 with p (Live), and a correlation group may have "
                                         "at most 1 Live"),
            std::string::npos)
      << grouped.error().message;
  EXPECT_TRUE(service_.promote_strategy("q", by("uncorrelated")));
}

TEST_F(ManualChangeTest, EvalOnlyRefusesAndPausedQueuesUntilResume) {
  world("w", std::string(kPolicy) + "top_k: {k: 1}\n");
  strategy("w", "a", 0.002);
  strategy("w", "b", 0.001);
  ASSERT_TRUE(service_.set_world_state("w", WorldState::kEvalOnly, "ops", ""));
  auto refused = service_.promote_strategy("a", by("x"));
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("EvalOnly: nothing is promoted"), std::string::npos);

  ASSERT_TRUE(service_.set_world_state("w", WorldState::kPaused, "ops", ""));
  auto queued = service_.promote_strategy("a", by("after the outage"));
  ASSERT_TRUE(queued) << queued.error().message;
  EXPECT_TRUE(queued->queued);
  EXPECT_EQ(state("a"), StrategyState::kDryRun);
  auto second = service_.promote_strategy("b", by("also"));  // will not fit: k is 1
  ASSERT_TRUE(second && second->queued);
  EXPECT_EQ(store_->list_queued_activations("w")->size(), 2u);
  ASSERT_TRUE(service_.set_world_state("w", WorldState::kActive, "ops", "resolved"));
  EXPECT_EQ(state("a"), StrategyState::kLive);
  EXPECT_EQ(state("b"), StrategyState::kDryRun);
  EXPECT_TRUE(store_->list_queued_activations("w")->empty());
  std::map<std::string, std::string> last;  // strategy -> its last queue-related record
  for (const auto& r : audit("w")) {
    if (r.event.find("QUEUED") != std::string::npos || r.event == "ACTIVATION_DROPPED" ||
        r.event == "PROMOTE") {
      last[r.entity_id] = r.event + ": " + r.reason;
    }
  }
  EXPECT_EQ(last["a"], "PROMOTE: queued while Paused, applied on resume: after the outage");
  EXPECT_NE(last["b"].find("ACTIVATION_DROPPED: queued while Paused, not carried out on resume: "
                           "promoting 'b' would break the policy's caps: top_k 1 is full"),
            std::string::npos)
      << last["b"];

  // Resuming into EvalOnly drops queued promotions.
  ASSERT_TRUE(service_.set_world_state("w", WorldState::kPaused, "ops", ""));
  ASSERT_TRUE(service_.demote_strategy("a", by("queued demotion")));
  ASSERT_TRUE(service_.set_activation("w", "b", "long", true, "ops", "queued opening"));
  ASSERT_TRUE(service_.set_world_state("w", WorldState::kEvalOnly, "ops", ""));
  EXPECT_EQ(state("a"), StrategyState::kDryRun);  // demotions still happen
  EXPECT_EQ(state("b"), StrategyState::kDryRun);
  EXPECT_EQ(audit("w").back().event, "ACTIVATION_DROPPED");
  EXPECT_EQ(audit("w").back().reason, "queued while Paused; the world became EvalOnly");
}

TEST_F(ManualChangeTest, GateOverridesAreStateMachineEvents) {
  world("w", kPolicy);
  strategy("w", "a", 0.002);
  strategy("w", "idle", 0.002);
  // Opening a side of a DryRun strategy promotes it, that side only.
  auto open = service_.set_activation("w", "a", "long", true, "ops", "go");
  ASSERT_TRUE(open) << open.error().message;
  EXPECT_EQ(open->strategy.state, StrategyState::kLive);
  ASSERT_TRUE(open->entry);
  EXPECT_TRUE(open->entry->active);
  EXPECT_EQ(open->apply_id, "w-m1");
  EXPECT_FALSE(gate("w", "a", "short").active);
  EXPECT_EQ(gate("w", "a", "short").manual, false);
  // The short side stays closed through world state changes...
  ASSERT_TRUE(service_.set_world_state("w", WorldState::kEvalOnly, "ops", ""));
  ASSERT_TRUE(service_.set_world_state("w", WorldState::kActive, "ops", ""));
  EXPECT_TRUE(gate("w", "a", "long").active);
  EXPECT_FALSE(gate("w", "a", "short").active);
  // ... until opened by hand; closing one side keeps it Live.
  ASSERT_TRUE(service_.set_activation("w", "a", "short", true, "ops", ""));
  EXPECT_TRUE(gate("w", "a", "short").active);
  ASSERT_TRUE(service_.set_activation("w", "a", "short", false, "ops", "no shorts"));
  EXPECT_EQ(state("a"), StrategyState::kLive);
  // Closing the last side an operator had not closed demotes it.
  auto last = service_.set_activation("w", "a", "long", false, "ops", "stop");
  ASSERT_TRUE(last) << last.error().message;
  EXPECT_EQ(last->strategy.state, StrategyState::kDryRun);
  EXPECT_EQ(last->apply_id, "w-m2");
  bool demoted = false;
  for (const auto& r : audit("w")) demoted |= r.event == "DEMOTE" && r.reason == "stop";
  EXPECT_TRUE(demoted);
  // Opening a gate of a strategy that is neither DryRun nor Live is refused.
  ASSERT_TRUE(service_.apply_strategy_event("idle", StrategyEvent::kDeactivate, "ops", ""));
  auto refused = service_.set_activation("w", "idle", "long", true, "ops", "");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("is Inactive: only a DryRun strategy"), std::string::npos);
  EXPECT_TRUE(service_.set_activation("w", "idle", "long", false, "ops", "recorded"));
}

// What a manual change's answer says the next evaluation will decide, and the
// warning it gives, against what that evaluation then decides: for each case
// a fresh world, the change, the clock moved to the due time, the evaluation.
struct ForecastCase {
  std::string name;
  std::string policy_extra;  // appended to the base policy
  double daily;              // the strategy's drift
  std::string action;        // promote, demote, close-one, open-dry, close-last
  bool warned;               // the next evaluation reverses the change
};

class ForecastTest : public ManualChangeTest, public ::testing::WithParamInterface<ForecastCase> {};

TEST_P(ForecastTest, TheWarningPredictsTheNextEvaluationExactly) {
  const ForecastCase& c = GetParam();
  world("w", c.policy_extra.starts_with("evaluation:")
                 ? "gates: {promote: 'return >= 0.01', demote: 'return < 0'}\n" + c.policy_extra
                 : std::string(kPolicy) + c.policy_extra);
  strategy("w", "s", c.daily);
  // The scheduler's next due time: the forecast is made for it.
  ASSERT_TRUE(service_.put_schedule(
      {.world_id = "w", .spec = "every 1d", .next_run = clock_.now() + days(1)}));
  const bool start_live = c.action != "promote" && c.action != "open-dry";
  if (start_live) {
    ASSERT_TRUE(service_.promote_strategy("s", by("setup")));
  }
  Result<WorldService::ManualOutcome> out = make_error(ErrorCode::kInternal, "no action");
  if (c.action == "promote") out = service_.promote_strategy("s", by("by hand"));
  if (c.action == "demote") out = service_.demote_strategy("s", by("by hand"));
  if (c.action == "open-dry") out = service_.set_activation("w", "s", "long", true, "ops", "");
  if (c.action == "close-one") out = service_.set_activation("w", "s", "long", false, "ops", "");
  if (c.action == "close-last") {
    ASSERT_TRUE(service_.set_activation("w", "s", "short", false, "ops", ""));
    out = service_.set_activation("w", "s", "long", false, "ops", "");
  }
  ASSERT_TRUE(out) << out.error().message;
  ASSERT_TRUE(out->next);
  EXPECT_EQ(out->next->at, clock_.now() + days(1));
  EXPECT_EQ(out->warning.has_value(), c.warned) << out->warning.value_or("(no warning)");
  EXPECT_EQ(out->next->undoes, c.warned);

  clock_.set(out->next->at);
  auto run = service_.evaluate_world("w", "scheduler");
  ASSERT_TRUE(run) << run.error().message;
  ASSERT_EQ(run->results.size(), 1u);
  EXPECT_EQ(run->results[0].decision, out->next->decision);
  const auto reasons = json::parse(run->detail)->at("strategies").at("s").at("reasons");
  std::vector<std::string> actual;
  for (const auto& r : reasons.as_array()) actual.emplace_back(r.as_string());
  EXPECT_EQ(actual, out->next->reasons);
}

INSTANTIATE_TEST_SUITE_P(Cases, ForecastTest,
                         ::testing::Values(
                             // A failing strategy promoted by hand is demoted at once...
                             ForecastCase{"PromoteFailing", "", -0.002, "promote", true},
                             // ... unless the demotion waits out its hysteresis (the old warning
                             // said it would be undone; the next runs kept it).
                             ForecastCase{"PromoteFailingWithHysteresis",
                                          "hysteresis: {demote_after: 3}\n", -0.002, "promote",
                                          false},
                             ForecastCase{"PromoteGood", "", 0.002, "promote", false},
                             // A good strategy demoted by hand is promoted again...
                             ForecastCase{"DemoteGood", "", 0.002, "demote", true},
                             // ... unless min_dry_run keeps it out; at the due time, 1d has passed.
                             ForecastCase{"DemoteGoodMinDryRun2d",
                                          "evaluation: {every: 1d, window: 2w, "
                                          "min_dry_run: 2d}\n",
                                          0.002, "demote", false},
                             ForecastCase{"DemoteGoodMinDryRun1d",
                                          "evaluation: {every: 1d, window: 2w, "
                                          "min_dry_run: 1d}\n",
                                          0.002, "demote", true},
                             ForecastCase{"DemoteFailing", "", -0.002, "demote", false},
                             ForecastCase{"OpenADryRunSide", "", 0.002, "open-dry", false},
                             ForecastCase{"OpenADryRunSideFailing", "", -0.002, "open-dry", true},
                             // Closing one side of a Live strategy: no evaluation reopens it.
                             ForecastCase{"CloseOneSide", "", 0.002, "close-one", false},
                             ForecastCase{"CloseTheLastSide", "", 0.002, "close-last", true}),
                         [](const auto& p) { return p.param.name; });

}  // namespace
}  // namespace qmtl::world
