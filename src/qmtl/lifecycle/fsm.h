// The state machines of docs/architecture.md, state machines as explicit transition tables.
//
// Each machine is a list of (from, event, to) rows; anything not listed is
// refused with an error that names the machine, the state and the event. The
// tables are the single source of truth: services call next_*() and never
// assign states directly.
//
//   Node:      Initialized -START-> PreWarmup -WARMED_UP-> Active -END_OF_DATA-> Completed
//              PreWarmup -END_OF_DATA-> Completed (finite input that never warmed up)
//              Initialized|PreWarmup|Active -FAIL-> Error
//   Strategy:  Submitted -SUBMIT-> Validating -VALIDATION_PASSED-> DryRun
//              Validating -VALIDATION_FAILED|ERROR-> Rejected
//              DryRun -PROMOTE-> Live -DEMOTE-> DryRun
//              DryRun|Live -DEACTIVATE|ERROR-> Inactive -REACTIVATE-> DryRun
//              every state but Archived -ARCHIVE-> Archived
//   World:     Active|EvalOnly|Paused -> any other of the three (ACTIVATE, EVAL_ONLY,
//              PAUSE); Active|EvalOnly|Paused -RETIRE-> Retired (terminal)
//
// Thread safety: pure functions over constant tables.
#pragma once

#include <span>
#include <string_view>

#include "qmtl/core/result.h"
#include "qmtl/lifecycle/world_state.h"

namespace qmtl::lifecycle {

enum class NodeState { kInitialized, kPreWarmup, kActive, kCompleted, kError };
enum class NodeEvent { kStart, kWarmedUp, kEndOfData, kFail };

enum class StrategyState {
  kSubmitted,
  kValidating,
  kRejected,
  kDryRun,
  kLive,
  kInactive,
  kArchived
};
enum class StrategyEvent {
  kSubmit,
  kValidationPassed,
  kValidationFailed,
  kPromote,
  kDemote,
  kDeactivate,
  kReactivate,
  kArchive,
  kError
};

enum class WorldEvent { kActivate, kEvalOnly, kPause, kRetire };

template <typename State, typename Event>
struct Transition {
  State from;
  Event event;
  State to;
};

std::span<const Transition<NodeState, NodeEvent>> node_transitions();
std::span<const Transition<StrategyState, StrategyEvent>> strategy_transitions();
std::span<const Transition<WorldState, WorldEvent>> world_transitions();

// The state after `event`, or kFailedPrecondition naming the state and event,
// e.g. "strategy event PROMOTE is not allowed in state Validating".
Result<NodeState> next_node_state(NodeState s, NodeEvent e);
Result<StrategyState> next_strategy_state(StrategyState s, StrategyEvent e);
Result<WorldState> next_world_state(WorldState s, WorldEvent e);

// Names as they appear on the wire and in the audit log.
std::string_view node_state_name(NodeState s);          // "Initialized", ...
std::string_view node_event_name(NodeEvent e);          // "START", ...
std::string_view strategy_state_name(StrategyState s);  // "DryRun", ...
std::string_view strategy_event_name(StrategyEvent e);  // "VALIDATION_PASSED", ...
std::string_view world_event_name(WorldEvent e);        // "EVAL_ONLY", ...
Result<StrategyState> parse_strategy_state(std::string_view name);
Result<StrategyEvent> parse_strategy_event(std::string_view name);

// The event that moves a world to `target` (Active -> ACTIVATE, ...).
WorldEvent world_event_for(WorldState target);

// QMTL's effective_mode for a strategy state: "validate", "paper", "live" or
// "compute-only" (orders blocked).
std::string_view effective_mode(StrategyState s);

}  // namespace qmtl::lifecycle
