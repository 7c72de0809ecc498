// The states of a world (docs/architecture.md, state machines).
//
//   Active    evaluation, promotion and demotion run normally.
//   EvalOnly  evaluation continues; nothing is promoted; live gates are closed.
//   Paused    no evaluation, no transitions, no strategy execution.
//   Retired   read-only; all strategies archived.
//
// Thread safety: pure functions.
#pragma once

#include <string_view>

#include "qmtl/core/result.h"

namespace qmtl::lifecycle {

enum class WorldState { kActive, kEvalOnly, kPaused, kRetired };

// The wire and storage name: "Active", "EvalOnly", "Paused", "Retired".
std::string_view world_state_name(WorldState s);

// Inverse of world_state_name; exact, case-sensitive match. The error lists the
// valid names.
Result<WorldState> parse_world_state(std::string_view name);

}  // namespace qmtl::lifecycle
