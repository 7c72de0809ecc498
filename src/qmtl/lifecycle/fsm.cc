#include "qmtl/lifecycle/fsm.h"

#include <fmt/format.h>

#include <array>

namespace qmtl::lifecycle {
namespace {

using NS = NodeState;
using NE = NodeEvent;
using SS = StrategyState;
using SE = StrategyEvent;
using WS = WorldState;
using WE = WorldEvent;

constexpr std::array<Transition<NS, NE>, 7> kNode{{
    {NS::kInitialized, NE::kStart, NS::kPreWarmup},
    {NS::kPreWarmup, NE::kWarmedUp, NS::kActive},
    {NS::kPreWarmup, NE::kEndOfData, NS::kCompleted},
    {NS::kActive, NE::kEndOfData, NS::kCompleted},
    {NS::kInitialized, NE::kFail, NS::kError},
    {NS::kPreWarmup, NE::kFail, NS::kError},
    {NS::kActive, NE::kFail, NS::kError},
}};

constexpr std::array<Transition<SS, SE>, 17> kStrategy{{
    {SS::kSubmitted, SE::kSubmit, SS::kValidating},
    {SS::kValidating, SE::kValidationPassed, SS::kDryRun},
    {SS::kValidating, SE::kValidationFailed, SS::kRejected},
    {SS::kValidating, SE::kError, SS::kRejected},
    {SS::kDryRun, SE::kPromote, SS::kLive},
    {SS::kLive, SE::kDemote, SS::kDryRun},
    {SS::kDryRun, SE::kDeactivate, SS::kInactive},
    {SS::kLive, SE::kDeactivate, SS::kInactive},
    {SS::kDryRun, SE::kError, SS::kInactive},
    {SS::kLive, SE::kError, SS::kInactive},
    {SS::kInactive, SE::kReactivate, SS::kDryRun},
    {SS::kSubmitted, SE::kArchive, SS::kArchived},
    {SS::kValidating, SE::kArchive, SS::kArchived},
    {SS::kRejected, SE::kArchive, SS::kArchived},
    {SS::kDryRun, SE::kArchive, SS::kArchived},
    {SS::kLive, SE::kArchive, SS::kArchived},
    {SS::kInactive, SE::kArchive, SS::kArchived},
}};

constexpr std::array<Transition<WS, WE>, 9> kWorld{{
    {WS::kActive, WE::kEvalOnly, WS::kEvalOnly},
    {WS::kActive, WE::kPause, WS::kPaused},
    {WS::kActive, WE::kRetire, WS::kRetired},
    {WS::kEvalOnly, WE::kActivate, WS::kActive},
    {WS::kEvalOnly, WE::kPause, WS::kPaused},
    {WS::kEvalOnly, WE::kRetire, WS::kRetired},
    {WS::kPaused, WE::kActivate, WS::kActive},
    {WS::kPaused, WE::kEvalOnly, WS::kEvalOnly},
    {WS::kPaused, WE::kRetire, WS::kRetired},
}};

constexpr std::array<std::string_view, 5> kNodeStates{"Initialized", "PreWarmup", "Active",
                                                      "Completed", "Error"};
constexpr std::array<std::string_view, 4> kNodeEvents{"START", "WARMED_UP", "END_OF_DATA", "FAIL"};
constexpr std::array<std::string_view, 7> kStrategyStates{
    "Submitted", "Validating", "Rejected", "DryRun", "Live", "Inactive", "Archived"};
constexpr std::array<std::string_view, 9> kStrategyEvents{
    "SUBMIT",     "VALIDATION_PASSED", "VALIDATION_FAILED", "PROMOTE", "DEMOTE",
    "DEACTIVATE", "REACTIVATE",        "ARCHIVE",           "ERROR"};
constexpr std::array<std::string_view, 4> kWorldEvents{"ACTIVATE", "EVAL_ONLY", "PAUSE", "RETIRE"};

template <typename E, size_t N>
std::string_view name_of(const std::array<std::string_view, N>& names, E e) {
  return names[static_cast<size_t>(e)];
}

template <typename S, typename E, size_t N, typename SN, typename EN>
Result<S> step(const std::array<Transition<S, E>, N>& table, S s, E e, std::string_view machine,
               SN state_name, EN event_name) {
  for (const auto& t : table) {
    if (t.from == s && t.event == e) return t.to;
  }
  return make_error(
      ErrorCode::kFailedPrecondition,
      fmt::format("{} event {} is not allowed in state {}", machine, event_name(e), state_name(s)));
}

}  // namespace

std::span<const Transition<NodeState, NodeEvent>> node_transitions() { return kNode; }
std::span<const Transition<StrategyState, StrategyEvent>> strategy_transitions() {
  return kStrategy;
}
std::span<const Transition<WorldState, WorldEvent>> world_transitions() { return kWorld; }

std::string_view node_state_name(NodeState s) { return name_of(kNodeStates, s); }
std::string_view node_event_name(NodeEvent e) { return name_of(kNodeEvents, e); }
std::string_view strategy_state_name(StrategyState s) { return name_of(kStrategyStates, s); }
std::string_view strategy_event_name(StrategyEvent e) { return name_of(kStrategyEvents, e); }
std::string_view world_event_name(WorldEvent e) { return name_of(kWorldEvents, e); }

Result<NodeState> next_node_state(NodeState s, NodeEvent e) {
  return step(kNode, s, e, "node", node_state_name, node_event_name);
}
Result<StrategyState> next_strategy_state(StrategyState s, StrategyEvent e) {
  return step(kStrategy, s, e, "strategy", strategy_state_name, strategy_event_name);
}
Result<WorldState> next_world_state(WorldState s, WorldEvent e) {
  return step(kWorld, s, e, "world", world_state_name, world_event_name);
}

Result<StrategyState> parse_strategy_state(std::string_view name) {
  for (size_t i = 0; i < kStrategyStates.size(); ++i) {
    if (kStrategyStates[i] == name) return static_cast<StrategyState>(i);
  }
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("unknown strategy state '{}'; use one of {}", name,
                                fmt::join(kStrategyStates, ", ")));
}

Result<StrategyEvent> parse_strategy_event(std::string_view name) {
  for (size_t i = 0; i < kStrategyEvents.size(); ++i) {
    if (kStrategyEvents[i] == name) return static_cast<StrategyEvent>(i);
  }
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("unknown strategy event '{}'; use one of {}", name,
                                fmt::join(kStrategyEvents, ", ")));
}

WorldEvent world_event_for(WorldState target) {
  switch (target) {
    case WorldState::kActive:
      return WorldEvent::kActivate;
    case WorldState::kEvalOnly:
      return WorldEvent::kEvalOnly;
    case WorldState::kPaused:
      return WorldEvent::kPause;
    case WorldState::kRetired:
      return WorldEvent::kRetire;
  }
  return WorldEvent::kActivate;
}

std::string_view effective_mode(StrategyState s) {
  switch (s) {
    case StrategyState::kValidating:
      return "validate";
    case StrategyState::kDryRun:
      return "paper";
    case StrategyState::kLive:
      return "live";
    default:
      return "compute-only";
  }
}

}  // namespace qmtl::lifecycle
