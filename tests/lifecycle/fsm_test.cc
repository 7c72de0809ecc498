#include "qmtl/lifecycle/fsm.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>

namespace qmtl::lifecycle {
namespace {

// Every (state, event) pair of every machine against an expectation written out
// here independently of the tables: a row per state, a column per event, "-" for
// a refused event.

TEST(StrategyFsm, EveryStateEventPair) {
  const std::vector<std::string> events{
      "SUBMIT",     "VALIDATION_PASSED", "VALIDATION_FAILED", "PROMOTE", "DEMOTE",
      "DEACTIVATE", "REACTIVATE",        "ARCHIVE",           "ERROR"};
  const std::map<std::string, std::vector<std::string>> expect{
      //              SUBMIT        V_PASSED  V_FAILED    PROMOTE DEMOTE    DEACTIVATE  REACTIVATE
      //              ARCHIVE     ERROR
      {"Submitted", {"Validating", "-", "-", "-", "-", "-", "-", "Archived", "-"}},
      {"Validating", {"-", "DryRun", "Rejected", "-", "-", "-", "-", "Archived", "Rejected"}},
      {"Rejected", {"-", "-", "-", "-", "-", "-", "-", "Archived", "-"}},
      {"DryRun", {"-", "-", "-", "Live", "-", "Inactive", "-", "Archived", "Inactive"}},
      {"Live", {"-", "-", "-", "-", "DryRun", "Inactive", "-", "Archived", "Inactive"}},
      {"Inactive", {"-", "-", "-", "-", "-", "-", "DryRun", "Archived", "-"}},
      {"Archived", {"-", "-", "-", "-", "-", "-", "-", "-", "-"}},
  };
  int checked = 0;
  for (const auto& [state_name, row] : expect) {
    const StrategyState s = *parse_strategy_state(state_name);
    for (size_t e = 0; e < events.size(); ++e) {
      const StrategyEvent ev = *parse_strategy_event(events[e]);
      auto r = next_strategy_state(s, ev);
      if (row[e] == "-") {
        ASSERT_FALSE(r) << state_name << " x " << events[e];
        EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
        EXPECT_EQ(r.error().message,
                  "strategy event " + events[e] + " is not allowed in state " + state_name);
      } else {
        ASSERT_TRUE(r) << state_name << " x " << events[e] << ": " << r.error().message;
        EXPECT_EQ(strategy_state_name(*r), row[e]) << state_name << " x " << events[e];
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 7 * 9);
}

TEST(NodeFsm, EveryStateEventPair) {
  const std::vector<NodeEvent> events{NodeEvent::kStart, NodeEvent::kWarmedUp,
                                      NodeEvent::kEndOfData, NodeEvent::kFail};
  const std::vector<std::pair<NodeState, std::vector<std::string>>> expect{
      //                          START        WARMED_UP  END_OF_DATA  FAIL
      {NodeState::kInitialized, {"PreWarmup", "-", "-", "Error"}},
      {NodeState::kPreWarmup, {"-", "Active", "Completed", "Error"}},
      {NodeState::kActive, {"-", "-", "Completed", "Error"}},
      {NodeState::kCompleted, {"-", "-", "-", "-"}},
      {NodeState::kError, {"-", "-", "-", "-"}},
  };
  for (const auto& [s, row] : expect) {
    for (size_t e = 0; e < events.size(); ++e) {
      auto r = next_node_state(s, events[e]);
      if (row[e] == "-") {
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().message, fmt::format("node event {} is not allowed in state {}",
                                                 node_event_name(events[e]), node_state_name(s)));
      } else {
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(node_state_name(*r), row[e]);
      }
    }
  }
}

TEST(WorldFsm, EveryStateEventPair) {
  const std::vector<WorldEvent> events{WorldEvent::kActivate, WorldEvent::kEvalOnly,
                                       WorldEvent::kPause, WorldEvent::kRetire};
  const std::vector<std::pair<WorldState, std::vector<std::string>>> expect{
      //                       ACTIVATE  EVAL_ONLY   PAUSE     RETIRE
      {WorldState::kActive, {"-", "EvalOnly", "Paused", "Retired"}},
      {WorldState::kEvalOnly, {"Active", "-", "Paused", "Retired"}},
      {WorldState::kPaused, {"Active", "EvalOnly", "-", "Retired"}},
      {WorldState::kRetired, {"-", "-", "-", "-"}},
  };
  for (const auto& [s, row] : expect) {
    for (size_t e = 0; e < events.size(); ++e) {
      auto r = next_world_state(s, events[e]);
      if (row[e] == "-") {
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().message, fmt::format("world event {} is not allowed in state {}",
                                                 world_event_name(events[e]), world_state_name(s)));
      } else {
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(world_state_name(*r), row[e]);
      }
    }
  }
  EXPECT_EQ(world_event_for(WorldState::kPaused), WorldEvent::kPause);
  EXPECT_EQ(*next_world_state(WorldState::kActive, world_event_for(WorldState::kEvalOnly)),
            WorldState::kEvalOnly);
}

TEST(StrategyFsm, EffectiveModeFollowsQmtl) {
  EXPECT_EQ(effective_mode(StrategyState::kValidating), "validate");
  EXPECT_EQ(effective_mode(StrategyState::kDryRun), "paper");
  EXPECT_EQ(effective_mode(StrategyState::kLive), "live");
  for (auto s : {StrategyState::kSubmitted, StrategyState::kRejected, StrategyState::kInactive,
                 StrategyState::kArchived}) {
    EXPECT_EQ(effective_mode(s), "compute-only");  // orders blocked
  }
}

TEST(StrategyFsm, NamesParseBack) {
  EXPECT_EQ(*parse_strategy_state("DryRun"), StrategyState::kDryRun);
  EXPECT_NE(parse_strategy_state("dryrun").error().message.find("use one of Submitted, Validating"),
            std::string::npos);
  EXPECT_FALSE(parse_strategy_event("promote"));
  // The table has no duplicate (state, event) rows: determinism.
  const auto t = strategy_transitions();
  for (size_t i = 0; i < t.size(); ++i) {
    for (size_t j = i + 1; j < t.size(); ++j) {
      EXPECT_FALSE(t[i].from == t[j].from && t[i].event == t[j].event) << i << " " << j;
    }
  }
}

}  // namespace
}  // namespace qmtl::lifecycle
