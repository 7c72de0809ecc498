// The brokerage models and the PaperBroker against hand-computed values.
#include "qmtl/broker/paper_broker.h"

#include <gtest/gtest.h>

namespace qmtl::broker {
namespace {

TimePoint day(int d) {
  return *parse_timestamp("2026-01-01T00:00:00Z") + std::chrono::hours(24 * d);
}

Bar bar(int d, double open, double high, double low, double close, double volume = 1e6,
        double spread = 0) {
  return Bar{.ts = day(d),
             .symbol = "X",
             .open = open,
             .high = high,
             .low = low,
             .close = close,
             .volume = volume,
             .spread = spread};
}

Order market(Side side, double qty, int d = 0) {
  return Order{.symbol = "X", .side = side, .qty = qty, .ts = day(d)};
}

TEST(FeeModels, HandComputed) {
  EXPECT_DOUBLE_EQ(fee_for(PercentFee{.rate = 0.001, .minimum = 1}, 100, 50, false), 5.0);
  EXPECT_DOUBLE_EQ(fee_for(PercentFee{.rate = 0.001, .minimum = 1}, 10, 50, false), 1.0);
  const PerShareFee ibkr{.per_unit = 0.005, .minimum = 1, .max_rate = 0.01};
  EXPECT_DOUBLE_EQ(fee_for(ibkr, 1000, 50, false), 5.0);   // 1000 * 0.005
  EXPECT_DOUBLE_EQ(fee_for(ibkr, 100, 50, false), 1.0);    // the minimum
  EXPECT_DOUBLE_EQ(fee_for(ibkr, 1000, 0.1, false), 1.0);  // capped at 1 % of 100
  const MakerTakerFee mt{.maker_rate = -0.0001, .taker_rate = 0.0004};
  EXPECT_DOUBLE_EQ(fee_for(mt, 10, 100, true), -0.1);  // a rebate
  EXPECT_DOUBLE_EQ(fee_for(mt, 10, 100, false), 0.4);
}

TEST(SlippageModels, AlwaysAgainstTheTrader) {
  const Bar b = bar(1, 100, 101, 99, 100, 10'000, 0.2);
  EXPECT_DOUBLE_EQ(slipped_price(FixedBps{.bps = 10}, Side::kBuy, 100, 5, b), 100.1);
  EXPECT_DOUBLE_EQ(slipped_price(FixedBps{.bps = 10}, Side::kSell, 100, 5, b), 99.9);
  EXPECT_DOUBLE_EQ(slipped_price(SpreadSlippage{.default_bps = 50}, Side::kBuy, 100, 5, b), 100.1);
  Bar no_quote = b;
  no_quote.spread = 0;
  EXPECT_DOUBLE_EQ(slipped_price(SpreadSlippage{.default_bps = 50}, Side::kSell, 100, 5, no_quote),
                   99.5);
  // 1,000 of 10,000 traded: impact 0.1 * 0.1^2 = 0.1 % of the price.
  EXPECT_DOUBLE_EQ(slipped_price(VolumeShareSlippage{.impact = 0.1}, Side::kBuy, 100, 1000, b),
                   100.1);
  EXPECT_DOUBLE_EQ(slipped_price(VolumeShareSlippage{.impact = 0.1}, Side::kSell, 100, 1000, b),
                   99.9);
}

TEST(PaperBroker, MarketOrdersFillAtTheNextOpenAndBookCashAndPnl) {
  PaperBroker b(
      {.fee = PercentFee{.rate = 0.001}, .slippage = FixedBps{.bps = 10}, .volume_limit = 0},
      10'000);
  ASSERT_TRUE(b.submit(market(Side::kBuy, 10, 0)));
  // A bar at the decision's own time does not fill it: no look-ahead.
  ASSERT_TRUE(b.on_bar(bar(0, 90, 91, 89, 90)));
  EXPECT_TRUE(b.take_fills().empty());
  ASSERT_TRUE(b.on_bar(bar(1, 100, 105, 99, 104)));
  auto fills = b.take_fills();
  ASSERT_EQ(fills.size(), 1u);
  EXPECT_DOUBLE_EQ(fills[0].price, 100.1);  // open + 10 bps
  EXPECT_DOUBLE_EQ(fills[0].fee, 1.001);    // 0.1 % of 1,001
  auto a = b.account();
  EXPECT_DOUBLE_EQ(a.cash, 10'000 - 1001 - 1.001);
  EXPECT_DOUBLE_EQ(a.positions.at("X").qty, 10);
  EXPECT_DOUBLE_EQ(a.positions.at("X").avg_price, 100.1);
  EXPECT_DOUBLE_EQ(a.unrealised_pnl(), 10 * (104 - 100.1));  // marked to the close
  EXPECT_DOUBLE_EQ(a.equity(), a.cash + 10 * 104);

  ASSERT_TRUE(b.submit(market(Side::kSell, 10, 1)));
  ASSERT_TRUE(b.on_bar(bar(2, 110, 111, 108, 109)));
  a = b.account();
  EXPECT_TRUE(a.positions.empty());
  EXPECT_DOUBLE_EQ(a.realised_pnl, 10 * (109.89 - 100.1));  // sold at 110 - 10 bps
  EXPECT_NEAR(a.fees, 1.001 + 1.0989, 1e-12);
  EXPECT_NEAR(a.equity(), 10'000 + a.realised_pnl - a.fees, 1e-9);
}

TEST(PaperBroker, ShortsAndFlipsUseAverageCost) {
  // Margin enough for the accounting to be the point.
  PaperBroker b({.volume_limit = 0, .leverage = 100}, 1000);
  ASSERT_TRUE(b.submit(market(Side::kSell, 5)));
  ASSERT_TRUE(b.on_bar(bar(1, 100, 100, 100, 100)));
  ASSERT_TRUE(b.submit(market(Side::kSell, 5, 1)));
  ASSERT_TRUE(b.on_bar(bar(2, 110, 110, 110, 110)));
  EXPECT_DOUBLE_EQ(b.account().positions.at("X").qty, -10);
  EXPECT_DOUBLE_EQ(b.account().positions.at("X").avg_price, 105);
  // Buy 15: closes the short of 10 at 90 (gain 150) and opens 5 long at 90.
  ASSERT_TRUE(b.submit(market(Side::kBuy, 15, 2)));
  ASSERT_TRUE(b.on_bar(bar(3, 90, 95, 90, 95)));
  const auto a = b.account();
  EXPECT_DOUBLE_EQ(a.realised_pnl, 150);
  EXPECT_DOUBLE_EQ(a.positions.at("X").qty, 5);
  EXPECT_DOUBLE_EQ(a.positions.at("X").avg_price, 90);
  EXPECT_DOUBLE_EQ(a.unrealised_pnl(), 25);
  EXPECT_DOUBLE_EQ(a.cash, 1000 + 500 + 550 - 1350);
  EXPECT_DOUBLE_EQ(a.equity(), 1175);
}

// Issue 24: a paper account never goes below zero cash without margin. A fill
// beyond buying power is refused with the figures, and the account is as it
// was; reducing a position always goes through.
TEST(PaperBroker, OrdersBeyondBuyingPowerAreRefusedWithTheReason) {
  PaperBroker cash_account({.fee = PercentFee{.rate = 0.001}, .volume_limit = 0}, 1000);
  auto id = cash_account.submit(market(Side::kBuy, 20));  // 2,000 of X at 100
  ASSERT_TRUE(id);
  ASSERT_TRUE(cash_account.on_bar(bar(1, 100, 100, 100, 100)));
  EXPECT_TRUE(cash_account.take_fills().empty());
  EXPECT_EQ(cash_account.open_orders(), 0u);
  auto rejects = cash_account.take_rejects();
  ASSERT_EQ(rejects.size(), 1u);
  EXPECT_EQ(rejects[0].order_id, *id);
  EXPECT_EQ(rejects[0].symbol, "X");
  EXPECT_EQ(rejects[0].side, Side::kBuy);
  EXPECT_EQ(rejects[0].qty, 20);
  EXPECT_EQ(rejects[0].ts, day(1));
  EXPECT_EQ(rejects[0].reason,
            "beyond buying power: buying 20 X at 100.0000 (fee 2.00) would take gross exposure to "
            "2000.00 against equity 998.00 x leverage 1 = 998.00");
  EXPECT_DOUBLE_EQ(cash_account.account().cash, 1000);
  EXPECT_TRUE(cash_account.take_rejects().empty());  // taken once

  // Within cash (fee included), then beyond what is left, then a sale.
  ASSERT_TRUE(cash_account.submit(market(Side::kBuy, 9, 1)));
  ASSERT_TRUE(cash_account.on_bar(bar(2, 100, 100, 100, 100)));
  EXPECT_EQ(cash_account.take_fills().size(), 1u);
  EXPECT_DOUBLE_EQ(cash_account.account().cash, 1000 - 900 - 0.9);
  ASSERT_TRUE(cash_account.submit(market(Side::kBuy, 1, 2)));
  ASSERT_TRUE(cash_account.on_bar(bar(3, 100, 100, 100, 100)));
  EXPECT_EQ(cash_account.take_rejects().size(), 1u);  // 99.1 of cash does not buy 100 + fee
  ASSERT_TRUE(cash_account.submit(market(Side::kSell, 9, 3)));
  ASSERT_TRUE(cash_account.on_bar(bar(4, 50, 50, 50, 50)));  // reducing: always
  EXPECT_EQ(cash_account.take_fills().size(), 1u);
  EXPECT_GE(cash_account.account().cash, 0);
  EXPECT_TRUE(cash_account.account().positions.empty());

  // Margin when configured: leverage 2 buys the 2,000 with 1,000 of equity.
  PaperBroker margin({.volume_limit = 0, .leverage = 2}, 1000);
  ASSERT_TRUE(margin.submit(market(Side::kBuy, 20)));
  ASSERT_TRUE(margin.on_bar(bar(1, 100, 100, 100, 100)));
  EXPECT_EQ(margin.take_fills().size(), 1u);
  EXPECT_DOUBLE_EQ(margin.account().cash, -1000);
  // Shorts count too: 5 short at 100 against 1,000 is fine, 11 more is not.
  PaperBroker shorts({.volume_limit = 0}, 1000);
  ASSERT_TRUE(shorts.submit(market(Side::kSell, 5)));
  ASSERT_TRUE(shorts.on_bar(bar(1, 100, 100, 100, 100)));
  EXPECT_EQ(shorts.take_fills().size(), 1u);
  ASSERT_TRUE(shorts.submit(market(Side::kSell, 11, 1)));
  ASSERT_TRUE(shorts.on_bar(bar(2, 100, 100, 100, 100)));
  EXPECT_EQ(shorts.take_rejects().size(), 1u);
  EXPECT_DOUBLE_EQ(shorts.account().positions.at("X").qty, -5);
  // Turning the short of 5 into a long of 5 is a new position: checked. After
  // the price doubled the account cannot carry it (equity 500, long 1,000).
  ASSERT_TRUE(shorts.on_bar(bar(3, 150, 150, 150, 150)));  // equity 1,500 - 750 = 750
  ASSERT_TRUE(shorts.submit(market(Side::kBuy, 10, 3)));
  ASSERT_TRUE(shorts.on_bar(bar(4, 200, 200, 200, 200)));
  EXPECT_EQ(shorts.take_rejects().size(), 1u);
  EXPECT_DOUBLE_EQ(shorts.account().positions.at("X").qty, -5);
}

TEST(PaperBroker, LimitOrdersFillOnlyThroughTheirPriceAndNeverWorse) {
  PaperBroker b({.fee = MakerTakerFee{.maker_rate = 0, .taker_rate = 0.001},
                 .slippage = FixedBps{.bps = 50},
                 .volume_limit = 0},
                10'000);
  auto id = b.submit({.symbol = "X",
                      .side = Side::kBuy,
                      .qty = 1,
                      .type = OrderType::kLimit,
                      .limit_price = 95,
                      .ts = day(0)});
  ASSERT_TRUE(id);
  ASSERT_TRUE(b.on_bar(bar(1, 100, 101, 96, 97)));  // never reached 95
  EXPECT_TRUE(b.take_fills().empty());
  ASSERT_TRUE(b.on_bar(bar(2, 97, 98, 94, 96)));  // traded through: filled at the limit, maker
  auto f = b.take_fills();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_DOUBLE_EQ(f[0].price, 95);  // slippage may not make it worse than the limit
  EXPECT_TRUE(f[0].maker);
  EXPECT_DOUBLE_EQ(f[0].fee, 0);
  // A sell limit the bar opens beyond fills at the (better) open, as a taker.
  ASSERT_TRUE(b.submit({.symbol = "X",
                        .side = Side::kSell,
                        .qty = 1,
                        .type = OrderType::kLimit,
                        .limit_price = 100,
                        .ts = day(2)}));
  ASSERT_TRUE(b.on_bar(bar(3, 105, 106, 104, 105)));
  f = b.take_fills();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_DOUBLE_EQ(f[0].price, 105 * (1 - 0.005));
  EXPECT_FALSE(f[0].maker);
  EXPECT_DOUBLE_EQ(f[0].fee, 0.001 * f[0].price);
  EXPECT_FALSE(b.cancel(*id));  // filled: no longer open
}

TEST(PaperBroker, StopOrdersTriggerThenFillLikeMarketOrders) {
  PaperBroker b({.volume_limit = 0}, 10'000);
  ASSERT_TRUE(b.submit({.symbol = "X",
                        .side = Side::kSell,
                        .qty = 2,
                        .type = OrderType::kStop,
                        .stop_price = 90,
                        .ts = day(0)}));
  ASSERT_TRUE(b.on_bar(bar(1, 100, 101, 91, 95)));
  EXPECT_TRUE(b.take_fills().empty());
  ASSERT_TRUE(b.on_bar(bar(2, 95, 96, 89, 90)));  // traded through 90: filled at the stop
  auto f = b.take_fills();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_DOUBLE_EQ(f[0].price, 90);
  ASSERT_TRUE(b.submit({.symbol = "X",
                        .side = Side::kBuy,
                        .qty = 1,
                        .type = OrderType::kStop,
                        .stop_price = 100,
                        .ts = day(2)}));
  ASSERT_TRUE(b.on_bar(bar(3, 104, 106, 103, 105)));  // gapped above the stop: the open
  f = b.take_fills();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_DOUBLE_EQ(f[0].price, 104);
}

TEST(PaperBroker, PartialFillsAgainstBarVolumeAndCancelOfTheRest) {
  PaperBroker b({.volume_limit = 0.1}, 1e6);
  auto id = b.submit(market(Side::kBuy, 250));
  ASSERT_TRUE(id);
  ASSERT_TRUE(b.on_bar(bar(1, 10, 10, 10, 10, 1000)));  // 10 % of 1,000 = 100
  ASSERT_TRUE(b.on_bar(bar(2, 11, 11, 11, 11, 0)));     // no volume, no fill
  ASSERT_TRUE(b.on_bar(bar(3, 12, 12, 12, 12, 1000)));
  auto f = b.take_fills();
  ASSERT_EQ(f.size(), 2u);
  EXPECT_DOUBLE_EQ(f[0].qty, 100);
  EXPECT_DOUBLE_EQ(f[1].qty, 100);
  EXPECT_DOUBLE_EQ(b.account().positions.at("X").avg_price, 11);
  EXPECT_EQ(b.open_orders(), 1u);
  ASSERT_TRUE(b.cancel(*id));
  ASSERT_TRUE(b.on_bar(bar(4, 12, 12, 12, 12, 1000)));
  EXPECT_TRUE(b.take_fills().empty());
  EXPECT_DOUBLE_EQ(b.account().positions.at("X").qty, 200);
  EXPECT_EQ(b.cancel("paper-99").error().code, ErrorCode::kNotFound);
}

TEST(PaperBroker, BadOrdersAndBarsAreRefusedAndChangeNothing) {
  PaperBroker b({}, 100);
  EXPECT_FALSE(b.submit(market(Side::kBuy, 0)));
  EXPECT_FALSE(b.submit(market(Side::kBuy, -1)));
  EXPECT_FALSE(b.submit({.symbol = "", .qty = 1}));
  auto limit = b.submit({.symbol = "X", .qty = 1, .type = OrderType::kLimit});
  ASSERT_FALSE(limit);
  EXPECT_NE(limit.error().message.find("positive limit price"), std::string::npos);
  EXPECT_FALSE(b.submit({.symbol = "X", .qty = 1, .type = OrderType::kStop, .stop_price = -1}));
  ASSERT_TRUE(b.submit(market(Side::kBuy, 1)));
  auto bad = b.on_bar(bar(1, 10, 9, 8, 10));  // high below the open
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("inconsistent"), std::string::npos);
  EXPECT_EQ(b.open_orders(), 1u);
  EXPECT_DOUBLE_EQ(b.account().cash, 100);
}

}  // namespace
}  // namespace qmtl::broker
