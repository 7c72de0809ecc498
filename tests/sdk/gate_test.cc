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

TEST(OrderGate, APausedOrRetiredWorldStopsEvenPaper) {
  FakeClock clock(*parse_timestamp("2026-01-01T00:00:00Z"));
  OrderGate gate(clock);
  gate.set_strategy_state("DryRun");
  gate.set_connected(true);
  gate.set_entry(Side::kBuy, {.active = true});
  for (const char* state : {"Active", "EvalOnly"}) {
    gate.set_world_state(state);
    EXPECT_EQ(gate.route(Side::kBuy).route, Route::kPaper) << state;
  }
  for (const char* state : {"Paused", "Retired"}) {
    gate.set_world_state(state);
    const auto d = gate.route(Side::kBuy);
    EXPECT_EQ(d.route, Route::kBlocked) << state;
    EXPECT_EQ(d.reason, fmt::format("the world is {}", state));
  }
  gate.set_strategy_state("Live");
  EXPECT_EQ(gate.route(Side::kBuy).reason, "the world is Retired");
  gate.set_world_state("Active");
  EXPECT_EQ(gate.route(Side::kBuy).route, Route::kLive);
  EXPECT_EQ(gate.blocked(), 3u);
}

// The long gate governs long exposure and the short gate short exposure,
// whatever the order's side; an order through zero needs both.
TEST(OrderGate, RoutesByTheExposureAnOrderChanges) {
  FakeClock clock(*parse_timestamp("2026-01-01T00:00:00Z"));
  OrderGate gate(clock);
  gate.set_strategy_state("Live");
  gate.set_connected(true);
  gate.set_entry(Side::kBuy, {.active = true});    // long open
  gate.set_entry(Side::kSell, {.active = false});  // short closed
  struct Case {
    double position;
    Side side;
    double qty;
    Route want;
  };
  const std::vector<Case> cases = {
      {0, Side::kBuy, 5, Route::kLive},      // opens a long
      {5, Side::kBuy, 5, Route::kLive},      // adds to it
      {5, Side::kSell, 5, Route::kLive},     // closes it: long side only
      {5, Side::kSell, 3, Route::kLive},     // reduces it
      {0, Side::kSell, 5, Route::kBlocked},  // opens a short
      {-5, Side::kBuy, 5, Route::kBlocked},  // covers a short: short side
      {5, Side::kSell, 8, Route::kBlocked},  // long to short: both sides
      {-5, Side::kBuy, 8, Route::kBlocked},  // short to long: both sides
  };
  for (const auto& c : cases) {
    const auto d = gate.route_order(c.position, c.side, c.qty);
    EXPECT_EQ(d.route, c.want) << c.position << " " << broker::side_name(c.side) << " " << c.qty;
    if (c.want == Route::kBlocked) {
      EXPECT_EQ(d.reason, "the gate is closed");
    }
  }
  EXPECT_EQ(gate.blocked(), 4u);
  gate.set_entry(Side::kSell, {.active = true});
  EXPECT_EQ(gate.route_order(5, Side::kSell, 8).route, Route::kLive);
  gate.set_entry(Side::kBuy, {.active = true, .frozen = true});
  EXPECT_NE(gate.route_order(-5, Side::kBuy, 8).reason.find("frozen"), std::string::npos);
  EXPECT_EQ(gate.route_order(-5, Side::kBuy, 5).route, Route::kLive);
  // A new snapshot replaces both entries.
  gate.reset_entries();
  EXPECT_EQ(gate.route_order(0, Side::kBuy, 1).reason, "no activation entry for this side");
  const auto v = gate.view();
  EXPECT_EQ(v.strategy_state, "Live");
  EXPECT_FALSE(v.entries[0]);
  EXPECT_TRUE(v.connected);
}

}  // namespace
}  // namespace qmtl::sdk
