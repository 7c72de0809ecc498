// The order gate over every combination of strategy state, open/closed,
// frozen, fresh/stale and connected/disconnected: it routes live only when all
// of them say so, and never fails open.
#include "qmtl/sdk/gate.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace qmtl::sdk {
namespace {

using broker::Side;
using std::chrono::seconds;

TEST(OrderGate, EveryCombination) {
  const std::vector<std::optional<std::string>> states = {std::nullopt, "DryRun",   "Live",
                                                          "Inactive",   "Archived", "Validating"};
  int live = 0, paper = 0, blocked = 0;
  for (const auto& state : states) {
    for (bool active : {false, true}) {
      for (bool frozen : {false, true}) {
        for (bool stale : {false, true}) {
          for (bool connected : {false, true}) {
            FakeClock clock(*parse_timestamp("2026-01-01T00:00:00Z"));
            OrderGate gate(clock);
            if (state) gate.set_strategy_state(*state);
            gate.set_entry(Side::kBuy, {.active = active, .frozen = frozen, .ttl = seconds(10)});
            gate.set_connected(connected);
            clock.advance(stale ? seconds(11) : seconds(10));
            const auto d = gate.route(Side::kBuy);
            const std::string what =
                fmt::format("state {} active {} frozen {} stale {} connected {}",
                            state.value_or("none"), active, frozen, stale, connected);
            const bool may_live = state == "Live" && active && !frozen && !stale && connected;
            const bool may_paper = state == "DryRun" && !frozen;
            if (may_live) {
              EXPECT_EQ(d.route, Route::kLive) << what;
              ++live;
            } else if (may_paper) {
              EXPECT_EQ(d.route, Route::kPaper) << what;
              ++paper;
            } else {
              EXPECT_EQ(d.route, Route::kBlocked) << what;
              EXPECT_FALSE(d.reason.empty()) << what;
              EXPECT_EQ(gate.blocked(), 1u) << what;
              ++blocked;
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(live, 1);           // exactly one combination opens the live route
  EXPECT_EQ(paper, 2 * 2 * 2);  // DryRun, not frozen: any active/stale/connected
  EXPECT_EQ(blocked, 6 * 16 - 1 - 8);
}

TEST(OrderGate, GoesStaleExactlyAfterTheTtlAndRecoversOnNews) {
  FakeClock clock(*parse_timestamp("2026-01-01T00:00:00Z"));
  OrderGate gate(clock);
  EXPECT_EQ(gate.route(Side::kBuy).reason, "no decision from the world yet");
  gate.set_strategy_state("Live");
  gate.set_connected(true);
  gate.set_entry(Side::kBuy, {.active = true, .ttl = seconds(15)});
  EXPECT_EQ(gate.route(Side::kBuy).route, Route::kLive);
  EXPECT_EQ(gate.route(Side::kSell).reason, "no activation entry for this side");
  clock.advance(seconds(15));
  EXPECT_EQ(gate.route(Side::kBuy).route, Route::kLive);
  clock.advance(std::chrono::microseconds(1));
  const auto stale = gate.route(Side::kBuy);
  EXPECT_EQ(stale.route, Route::kBlocked);
  EXPECT_NE(stale.reason.find("the decision is stale"), std::string::npos);
  gate.heard();  // a heartbeat
  EXPECT_EQ(gate.route(Side::kBuy).route, Route::kLive);
  gate.set_connected(false);  // the stream dropped: blocked at once, not after the TTL
  EXPECT_EQ(gate.route(Side::kBuy).reason, "disconnected from the server");
  gate.set_connected(true);
  gate.set_entry(Side::kBuy, {.active = true, .frozen = true, .ttl = seconds(15)});
  EXPECT_NE(gate.route(Side::kBuy).reason.find("frozen"), std::string::npos);
  gate.set_entry(Side::kBuy, {.active = false, .ttl = seconds(15)});
  EXPECT_EQ(gate.route(Side::kBuy).reason, "the gate is closed");
  gate.set_strategy_state("DryRun");
  EXPECT_EQ(gate.route(Side::kBuy).route, Route::kPaper);
  EXPECT_EQ(gate.blocked(), 6u);
}

}  // namespace
}  // namespace qmtl::sdk
