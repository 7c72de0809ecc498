// The routing of a live run's orders: live, paper, blocked, and the one path
// where no live broker is configured.
#include "qmtl/sdk/order_router.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <deque>

namespace qmtl::sdk {
namespace {

using broker::Side;
using std::chrono::seconds;

// The live broker (the outside world a runner reaches): takes or refuses
// orders as scripted, and reports the fills and rejects it is given.
class ScriptedBroker final : public broker::Broker {
 public:
  Result<std::string> submit(const broker::Order& o) override {
    if (!refusals.empty()) {
      auto e = refusals.front();
      refusals.pop_front();
      return tl::unexpected(e);
    }
    taken.push_back(o);
    return fmt::format("live-{}", taken.size());
  }
  Result<void> cancel(std::string_view) override { return {}; }
  std::vector<broker::Fill> take_fills() override { return std::exchange(fills, {}); }
  std::vector<broker::OrderReject> take_rejects() override { return std::exchange(rejects, {}); }
  broker::Account account() const override { return {}; }

  std::deque<Error> refusals;
  std::vector<broker::Order> taken;
  std::vector<broker::Fill> fills;
  std::vector<broker::OrderReject> rejects;
};

class OrderRouterTest : public ::testing::Test {
 protected:
  OrderRouterTest() : clock_(*parse_timestamp("2026-03-02T10:00:00Z")), gate_(clock_) {}

  void decide(const std::string& state, bool active = true) {
    gate_.set_world_state("Active");
    gate_.set_strategy_state(state);
    gate_.set_connected(true);
    gate_.set_entry(Side::kBuy, {.active = active, .ttl = seconds(15)});
    gate_.set_entry(Side::kSell, {.active = active, .ttl = seconds(15)});
  }
  broker::Order buy(double qty = 1) {
    return {.symbol = "ZZ", .side = Side::kBuy, .qty = qty, .ts = clock_.now()};
  }
  broker::Bar bar() {
    // The next bar: a market order fills at the open of the bar after it.
    return {.ts = clock_.now() + std::chrono::minutes(1),
            .symbol = "ZZ",
            .open = 10,
            .high = 11,
            .low = 9,
            .close = 10,
            .volume = 1e6};
  }

  FakeClock clock_;
  OrderGate gate_;
  broker::PaperBroker paper_{broker::BrokerageModel{}, 1000};
  ScriptedBroker live_;
};

TEST_F(OrderRouterTest, BeforeAnyDecisionEverythingIsBlocked) {
  OrderRouter router(gate_, paper_, &live_);
  const OrderRecord r = router.route(buy(), false);
  EXPECT_EQ(r.route, Route::kBlocked);
  EXPECT_FALSE(r.reason.empty());
  EXPECT_TRUE(live_.taken.empty());
  EXPECT_EQ(paper_.open_orders(), 0u);
}

TEST_F(OrderRouterTest, DryRunGoesToPaperOnly) {
  decide("DryRun");
  OrderRouter router(gate_, paper_, &live_);
  const OrderRecord r = router.route(buy(2), false);
  EXPECT_EQ(r.route, Route::kPaper);
  EXPECT_TRUE(r.reason.empty());
  EXPECT_FALSE(r.order_id.empty());
  EXPECT_TRUE(live_.taken.empty());
  ASSERT_TRUE(paper_.on_bar(bar()));
  const auto fills = router.take_fills();
  ASSERT_EQ(fills.size(), 1u);  // the paper fill is the strategy's record
  EXPECT_EQ(fills[0].qty, 2);
}

TEST_F(OrderRouterTest, LiveGoesToTheBrokerWithAPaperCopyKeptOutOfTheFills) {
  decide("Live");
  OrderRouter router(gate_, paper_, &live_);
  const OrderRecord r = router.route(buy(3), false);
  EXPECT_EQ(r.route, Route::kLive);
  EXPECT_EQ(r.order_id, "live-1");
  ASSERT_EQ(live_.taken.size(), 1u);
  EXPECT_EQ(live_.taken[0].qty, 3);
  EXPECT_EQ(paper_.open_orders(), 1u);  // the paper book follows the live one
  ASSERT_TRUE(paper_.on_bar(bar()));
  EXPECT_EQ(paper_.account().positions.at("ZZ").qty, 3);
  live_.fills.push_back({.ts = clock_.now(), .order_id = "live-1", .symbol = "ZZ", .qty = 3});
  const auto fills = router.take_fills();
  ASSERT_EQ(fills.size(), 1u);  // the live fill; the paper copy's is not reported
  EXPECT_EQ(fills[0].order_id, "live-1");
}

TEST_F(OrderRouterTest, AReplayedBarNeverGoesLive) {
  decide("Live");
  OrderRouter router(gate_, paper_, &live_);
  const OrderRecord r = router.route(buy(), true);
  EXPECT_EQ(r.route, Route::kPaper);
  EXPECT_NE(r.reason.find("replayed bar"), std::string::npos) << r.reason;
  EXPECT_TRUE(live_.taken.empty());
  EXPECT_EQ(paper_.open_orders(), 1u);
}

TEST_F(OrderRouterTest, LiveWithoutALiveBrokerIsBlockedNotPaper) {
  decide("Live");
  OrderRouter router(gate_, paper_, nullptr);
  const OrderRecord r = router.route(buy(), false);
  EXPECT_EQ(r.route, Route::kBlocked);
  EXPECT_EQ(r.reason, "the live broker did not take it: no live broker is configured");
  EXPECT_EQ(paper_.open_orders(), 0u);
  EXPECT_EQ(router.consecutive_rejects(), 0);  // a missing broker is not a reject
  EXPECT_EQ(router.submit_live(buy()).error().code, ErrorCode::kFailedPrecondition);
}

TEST_F(OrderRouterTest, RefusalsAreBlockedAndCountedUntilALiveFill) {
  decide("Live");
  OrderRouter router(gate_, paper_, &live_);
  live_.refusals = {Error{ErrorCode::kInvalidArgument, "qty too small"},
                    Error{ErrorCode::kUnavailable, "disconnected"},
                    Error{ErrorCode::kFailedPrecondition, "account locked"}};
  for (int i = 0; i < 3; ++i) {
    const OrderRecord r = router.route(buy(), false);
    EXPECT_EQ(r.route, Route::kBlocked);
    EXPECT_TRUE(r.order_id.empty());
  }
  EXPECT_EQ(paper_.open_orders(), 0u);         // a refused live order has no paper copy
  EXPECT_EQ(router.consecutive_rejects(), 2);  // unreachable is not a reject
  EXPECT_EQ(router.last_reject(), "account locked");
  live_.rejects.push_back({.order_id = "live-7", .reason = "price out of band"});
  EXPECT_EQ(router.consecutive_rejects(), 3);
  EXPECT_EQ(router.last_reject(), "live-7: price out of band");

  EXPECT_EQ(router.route(buy(), false).route, Route::kLive);
  live_.fills.push_back({.ts = clock_.now(), .order_id = "live-1", .symbol = "ZZ", .qty = 1});
  EXPECT_EQ(router.take_fills().size(), 1u);
  EXPECT_EQ(router.consecutive_rejects(), 0);
}

TEST_F(OrderRouterTest, AClosedOrFrozenGateBlocksALiveStrategy) {
  decide("Live", /*active=*/false);
  OrderRouter router(gate_, paper_, &live_);
  EXPECT_EQ(router.route(buy(), false).route, Route::kBlocked);
  gate_.set_entry(Side::kBuy, {.active = true, .frozen = true, .ttl = seconds(15)});
  EXPECT_EQ(router.route(buy(), false).route, Route::kBlocked);
  EXPECT_TRUE(live_.taken.empty());
  EXPECT_EQ(paper_.open_orders(), 0u);
}

TEST_F(OrderRouterTest, APaperOrderThatCannotBePlacedEndsTheRun) {
  decide("DryRun");
  OrderRouter router(gate_, paper_, &live_);
  const OrderRecord r = router.route(buy(-1), false);
  EXPECT_EQ(r.route, Route::kPaper);
  EXPECT_TRUE(r.order_id.empty());
  ASSERT_TRUE(router.paper_error());
  EXPECT_EQ(router.paper_error()->code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace qmtl::sdk
