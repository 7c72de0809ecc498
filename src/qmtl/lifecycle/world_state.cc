#include "qmtl/lifecycle/world_state.h"

#include <fmt/format.h>

#include <array>

namespace qmtl::lifecycle {
namespace {

constexpr std::array<std::pair<WorldState, std::string_view>, 4> kNames{{
    {WorldState::kActive, "Active"},
    {WorldState::kEvalOnly, "EvalOnly"},
    {WorldState::kPaused, "Paused"},
    {WorldState::kRetired, "Retired"},
}};

}  // namespace

std::string_view world_state_name(WorldState s) {
  for (const auto& [state, name] : kNames) {
    if (state == s) return name;
  }
  return "Active";  // unreachable: every enumerator is in kNames
}

Result<WorldState> parse_world_state(std::string_view name) {
  for (const auto& [state, n] : kNames) {
    if (n == name) return state;
  }
  return make_error(
      ErrorCode::kInvalidArgument,
      fmt::format("unknown world state '{}'; use Active, EvalOnly, Paused or Retired", name));
}

}  // namespace qmtl::lifecycle
