#include "qmtl/metrics/kpi.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace qmtl::metrics {
namespace {

using std::chrono::hours;

TimePoint day(int d) { return *parse_timestamp("2024-01-01T00:00:00Z") + hours(24 * (d - 1)); }

ReturnSeries equity_series(const std::vector<double>& eq, int first_day = 1) {
  std::vector<Sample> s;
  for (size_t i = 0; i < eq.size(); ++i) s.push_back({day(first_day + static_cast<int>(i)), eq[i]});
  auto r = from_samples(SeriesKind::kEquity, s);
  EXPECT_TRUE(r) << r.error().message;
  return *r;
}

double v(const MetricValue& m) {
  EXPECT_TRUE(m.present()) << m.why_missing;
  return m.value.value_or(-12345.0);
}

// Equity 100, 110, 99, 108.9, 119.79 on five consecutive days. By hand:
//   returns r = +0.10, -0.10, +0.10, +0.10      (110/100-1, 99/110-1, ...)
//   mean = 0.2 / 4 = 0.05
//   deviations 0.05, -0.15, 0.05, 0.05; squares sum 0.0025*3 + 0.0225 = 0.03
//   sd (ddof=1) = sqrt(0.03 / 3) = 0.1
//   periods per year = 252 (daily spacing)
class HandComputed : public ::testing::Test {
 protected:
  ReturnSeries s_ = equity_series({100, 110, 99, 108.9, 119.79});
  MetricsOptions opts_{.worst_loss_windows = {hours(1), hours(24), hours(48)}};
  Metrics m_ = compute_metrics(s_, opts_);
};

TEST_F(HandComputed, ReturnAndRiskRatios) {
  EXPECT_NEAR(v(m_.total_return), 119.79 / 100 - 1, 1e-12);  // 0.1979
  EXPECT_NEAR(v(m_.periods_per_year), 252, 0);
  EXPECT_NEAR(v(m_.volatility), 0.1 * std::sqrt(252.0), 1e-12);    // 1.5874...
  EXPECT_NEAR(v(m_.sharpe), 0.05 / 0.1 * std::sqrt(252.0), 1e-9);  // 7.9372...
  // downside deviation = sqrt(mean(min(r,0)^2)) = sqrt(0.01 / 4) = 0.05
  EXPECT_NEAR(v(m_.sortino), 0.05 / 0.05 * std::sqrt(252.0), 1e-9);
  EXPECT_EQ(v(m_.periods), 4);
}

TEST_F(HandComputed, DrawdownFamily) {
  EXPECT_NEAR(v(m_.max_drawdown), (110 - 99) / 110.0, 1e-12);  // 0.1
  // Below the 110 peak from day 2 until 119.79 on day 5: 3 days.
  EXPECT_NEAR(v(m_.time_under_water), 3.0, 1e-12);
  // annualised = 1.1979^(252/4) - 1; calmar = annualised / 0.1
  EXPECT_NEAR(v(m_.calmar), (std::pow(1.1979, 252.0 / 4) - 1) / 0.1, 1e-6 * v(m_.calmar));
}

TEST_F(HandComputed, PeriodStatistics) {
  EXPECT_NEAR(v(m_.win_rate), 3.0 / 4, 1e-12);
  // PnL +10, -11, +9.9, +10.89: gains 30.79, losses 11
  EXPECT_NEAR(v(m_.profit_factor), 30.79 / 11, 1e-12);
  EXPECT_NEAR(v(m_.gain_to_pain), 0.2 / 0.1, 1e-12);
  // One period per UTC day: mean daily PnL = 19.79 / 4
  EXPECT_NEAR(v(m_.daily_pnl), 19.79 / 4, 1e-12);
  EXPECT_FALSE(m_.trades.present());
  EXPECT_EQ(m_.trades.why_missing, "no fills reported");
}

TEST_F(HandComputed, WorstLossOverWindows) {
  ASSERT_EQ(m_.worst_loss.size(), 3u);
  // No two points within 1 h on daily data: missing, not a free pass.
  EXPECT_FALSE(m_.worst_loss[0].second.present());
  // Within 1 d: 110 -> 99 = -0.1 is the worst step.
  EXPECT_NEAR(v(m_.worst_loss[1].second), 99 / 110.0 - 1, 1e-12);
  EXPECT_NEAR(v(m_.worst_loss[2].second), 99 / 110.0 - 1, 1e-12);
  EXPECT_NEAR(v(*m_.get("worst_loss", hours(24))), -0.1, 1e-12);
  EXPECT_FALSE(m_.get("worst_loss", hours(5)));
}

TEST_F(HandComputed, Window) {
  // Last 2 days: periods ending after day 3 -> r = 108.9/99-1, 119.79/108.9-1 (both 0.1).
  auto w = compute_metrics(s_, {.window = hours(48)});
  EXPECT_EQ(v(w.periods), 2);
  EXPECT_NEAR(v(w.total_return), 119.79 / 99 - 1, 1e-12);  // 0.21
  EXPECT_NEAR(v(w.max_drawdown), 0, 0);
  EXPECT_FALSE(w.sharpe.present());  // two equal returns: no spread
  EXPECT_EQ(w.sharpe.why_missing, "returns do not vary");
  EXPECT_FALSE(w.calmar.present());
}

TEST_F(HandComputed, LookupByName) {
  EXPECT_EQ(m_.get("sharpe")->value, m_.sharpe.value);
  EXPECT_EQ(m_.get("return")->value, m_.total_return.value);
  EXPECT_FALSE(m_.get("sharp"));
  EXPECT_FALSE(m_.get("sharpe", hours(1)));
  for (auto name : metric_names()) {
    if (name != "worst_loss") {
      EXPECT_TRUE(m_.get(name)) << name;
    }
  }
}

TEST(Trades, CountFillsInTheWindow) {
  ReturnSeries s = equity_series({100, 101, 102, 103});
  s.fills = std::vector<Fill>{{.ts = day(1)}, {.ts = day(2)}, {.ts = day(3)}, {.ts = day(4)}};
  EXPECT_EQ(v(compute_metrics(s).trades), 4);
  // Window of 1 d: periods ending after day 3, so fills after day 3.
  EXPECT_EQ(v(compute_metrics(s, {.window = hours(24)}).trades), 1);
  s.fills = std::vector<Fill>{};
  EXPECT_EQ(v(compute_metrics(s).trades), 0);
}

TEST(Degenerate, EmptyAndOnePointAreMissingNotNaN) {
  for (const auto& s : {ReturnSeries{}, equity_series({100})}) {
    auto m = compute_metrics(s, {.worst_loss_windows = {hours(24)}});
    for (auto name : metric_names()) {
      if (name == "worst_loss" || name == "periods" || name == "trades" ||
          name == "periods_per_year") {
        continue;
      }
      auto x = m.get(name);
      ASSERT_TRUE(x);
      EXPECT_FALSE(x->present()) << name;
      EXPECT_FALSE(x->why_missing.empty()) << name;
    }
    EXPECT_EQ(v(m.periods), 0);
    EXPECT_FALSE(m.worst_loss[0].second.present());
  }
}

TEST(Degenerate, ConstantEquity) {
  auto m = compute_metrics(equity_series({100, 100, 100, 100}));
  EXPECT_EQ(v(m.total_return), 0);
  EXPECT_EQ(v(m.volatility), 0);
  EXPECT_EQ(v(m.max_drawdown), 0);
  EXPECT_EQ(v(m.time_under_water), 0);
  EXPECT_EQ(v(m.daily_pnl), 0);
  EXPECT_FALSE(m.sharpe.present());
  EXPECT_FALSE(m.sortino.present());
  EXPECT_FALSE(m.calmar.present());
  EXPECT_FALSE(m.win_rate.present());
  EXPECT_FALSE(m.profit_factor.present());
}

TEST(Degenerate, AllLosses) {
  // 100 -> 90 -> 81 -> 72.9: every return -0.1.
  auto m = compute_metrics(equity_series({100, 90, 81, 72.9}));
  EXPECT_NEAR(v(m.total_return), -0.271, 1e-12);
  EXPECT_EQ(v(m.win_rate), 0);
  EXPECT_EQ(v(m.profit_factor), 0);
  EXPECT_NEAR(v(m.gain_to_pain), -1, 1e-12);
  EXPECT_NEAR(v(m.max_drawdown), 0.271, 1e-12);
  EXPECT_NEAR(v(m.time_under_water), 3, 1e-12);  // never recovers: until the last point
  EXPECT_FALSE(m.sharpe.present());              // constant -0.1: no spread
  // sortino = mean / sqrt(mean(r^2)) * sqrt(252) = -0.1 / 0.1 * sqrt(252)
  EXPECT_NEAR(v(m.sortino), -std::sqrt(252.0), 1e-9);
  // calmar = ((0.729)^(252/3) - 1) / 0.271
  EXPECT_NEAR(v(m.calmar), (std::pow(0.729, 84.0) - 1) / 0.271, 1e-12);
}

TEST(Degenerate, GapsWidenPeriodsButNotTheAnnualisation) {
  // Daily data with a 10-day gap: the median spacing is still 1 day.
  std::vector<Sample> s{{day(1), 100}, {day(2), 101}, {day(3), 102}, {day(13), 95}, {day(14), 96}};
  auto r = from_samples(SeriesKind::kEquity, s);
  ASSERT_TRUE(r);
  auto m = compute_metrics(*r);
  EXPECT_EQ(v(m.periods_per_year), 252);
  EXPECT_NEAR(v(m.max_drawdown), (102 - 95) / 102.0, 1e-12);
  EXPECT_NEAR(v(m.time_under_water), 11, 1e-12);  // day 3 peak to day 14, not recovered
}

TEST(Properties, ScalingEquityDoesNotChangeRatios) {
  std::mt19937_64 rng(42);
  std::normal_distribution<double> ret(0.0005, 0.01);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<double> eq{1000};
    for (int i = 0; i < 300; ++i) eq.push_back(eq.back() * (1 + ret(rng)));
    std::vector<double> scaled;
    const double k = 0.001 + 1000.0 * trial;
    for (double e : eq) scaled.push_back(e * k);
    auto a = compute_metrics(equity_series(eq));
    auto b = compute_metrics(equity_series(scaled));
    for (auto name : {"sharpe", "sortino", "return", "max_drawdown", "calmar", "volatility",
                      "win_rate", "profit_factor", "gain_to_pain"}) {
      const double x = v(*a.get(name)), y = v(*b.get(name));
      EXPECT_NEAR(x, y, 1e-9 * std::max(1.0, std::abs(x))) << name;
    }
    EXPECT_NEAR(v(b.daily_pnl), k * v(a.daily_pnl), 1e-9 * std::abs(k * v(a.daily_pnl)) + 1e-12);
  }
}

TEST(Properties, AppendingANewPeakNeverIncreasesMaxDrawdown) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> ret(0.0, 0.02);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<double> eq{100};
    for (int i = 0; i < 100; ++i) eq.push_back(eq.back() * (1 + ret(rng)));
    const double before = v(compute_metrics(equity_series(eq)).max_drawdown);
    eq.push_back(*std::max_element(eq.begin(), eq.end()) * 1.01);
    const double after = v(compute_metrics(equity_series(eq)).max_drawdown);
    EXPECT_LE(after, before);
  }
}

TEST(ComputeMany, MatchesOneByOne) {
  std::vector<ReturnSeries> all;
  for (int i = 0; i < 37; ++i) {
    all.push_back(equity_series({100, 100.0 + i, 99, 101.0 + i / 2.0, 98}));
  }
  MetricsOptions o{.worst_loss_windows = {hours(48)}};
  auto many = compute_metrics_many(all, o, 3);
  ASSERT_EQ(many.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    auto one = compute_metrics(all[i], o);
    EXPECT_EQ(many[i].sharpe.value, one.sharpe.value);
    EXPECT_EQ(many[i].worst_loss[0].second.value, one.worst_loss[0].second.value);
  }
}

}  // namespace
}  // namespace qmtl::metrics
