#include "qmtl/lifecycle/world_state.h"

#include <gtest/gtest.h>

namespace qmtl::lifecycle {
namespace {

TEST(WorldState, NamesRoundTrip) {
  for (auto s :
       {WorldState::kActive, WorldState::kEvalOnly, WorldState::kPaused, WorldState::kRetired}) {
    EXPECT_EQ(*parse_world_state(world_state_name(s)), s);
  }
  EXPECT_EQ(world_state_name(WorldState::kEvalOnly), "EvalOnly");
}

TEST(WorldState, UnknownNameListsTheValidOnes) {
  auto r = parse_world_state("active");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("Active, EvalOnly, Paused or Retired"), std::string::npos);
  EXPECT_FALSE(parse_world_state(""));
}

}  // namespace
}  // namespace qmtl::lifecycle
