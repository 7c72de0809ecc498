// Each indicator against values computed by hand (see docs/sdk.md for the
// definitions), its exact warm-up, and its long-run drift.
#include "qmtl/sdk/indicators.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>

#include "qmtl/sdk/feed.h"
#include "qmtl/sdk/operators.h"

namespace qmtl::sdk {
namespace {

template <typename Indicator>
std::vector<std::optional<double>> run(Indicator ind, const std::vector<double>& xs) {
  std::vector<std::optional<double>> out;
  for (double x : xs) out.push_back(ind.update(x));
  return out;
}

void expect_series(const std::vector<std::optional<double>>& got,
                   const std::vector<std::optional<double>>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].has_value(), want[i].has_value()) << "at " << i;
    if (want[i]) {
      EXPECT_NEAR(*got[i], *want[i], 1e-12) << "at " << i;
    }
  }
}

constexpr std::nullopt_t no = std::nullopt;

TEST(Indicators, Returns) { expect_series(run(Returns{}, {100, 110, 99}), {no, 0.1, -0.1}); }

TEST(Indicators, SmaStartsAtTheNthValue) {
  expect_series(run(Sma(3), {1, 2, 3, 4, 5}), {no, no, 2, 3, 4});
  expect_series(run(Sma(1), {7, 8}), {7, 8});
}

TEST(Indicators, EmaIsSeededWithTheSma) {
  // alpha = 2 / (3 + 1) = 0.5; seed = (1 + 2 + 3) / 3 = 2.
  expect_series(run(Ema(3), {1, 2, 3, 4, 5}), {no, no, 2, 3, 4});
  // alpha = 0.4: 10 -> (12 + 10) / ... seed (10 + 12 + 14 + 16) / 4 = 13, then 13 + 0.4 * (8 - 13)
  // = 11.
  expect_series(run(Ema(4), {10, 12, 14, 16, 8}), {no, no, no, 13, 11});
}

TEST(Indicators, RsiUsesWilderSmoothing) {
  // Changes +1 +1 -1: gain 2/3, loss 1/3, RS 2 -> 66.67; then +2: gain (4/3 + 2) / 3 = 10/9,
  // loss (2/3) / 3 = 2/9, RS 5 -> 83.33.
  expect_series(run(Rsi(3), {10, 11, 12, 11, 13}),
                {no, no, no, 100.0 - 100.0 / 3, 100.0 - 100.0 / 6});
  expect_series(run(Rsi(2), {1, 2, 3}), {no, no, 100});
  expect_series(run(Rsi(2), {5, 5, 5}), {no, no, 50});
  expect_series(run(Rsi(2), {3, 2, 1}), {no, no, 0});
}

TEST(Indicators, RollingStdIsTheSampleStandardDeviation) {
  expect_series(run(RollingStd(3), {1, 2, 3, 4}), {no, no, 1, 1});
  auto s = run(RollingStd(8), {2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_NEAR(*s.back(), std::sqrt(32.0 / 7), 1e-12);
  expect_series(run(RollingStd(2), {1e9, 1e9 + 1}), {no, std::sqrt(0.5)});
  expect_series(run(RollingStd(1), {1, 2}), {no, no});  // undefined for one value
}

// A price that climbed from 1 to 10,000 and then moves in cents: the
// deviation is cents, to 1e-9 of the exact (two-pass, long double) value; a
// window of equal values is 0 (z-score missing) exactly.
TEST(Indicators, RollingStdStaysExactFarFromTheFirstValue) {
  constexpr size_t kN = 20;
  RollingStd sd(kN);
  ZScore z(kN);
  std::vector<double> xs;
  for (int i = 1; i <= 10'000; ++i) xs.push_back(i);
  for (int k = 0; k < 2'000; ++k) xs.push_back(10'000 + 0.01 * ((k * 7) % 5));
  for (int k = 0; k < 2 * static_cast<int>(kN); ++k) xs.push_back(10'000.05);
  size_t checked = 0, zero = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const auto s = sd.update(xs[i]);
    const auto zs = z.update(xs[i]);
    if (i + 1 < kN) continue;
    long double mean = 0, var = 0;
    for (size_t k = i + 1 - kN; k <= i; ++k) mean += xs[k];
    mean /= kN;
    for (size_t k = i + 1 - kN; k <= i; ++k) var += (xs[k] - mean) * (xs[k] - mean);
    const auto exact = static_cast<double>(std::sqrt(var / (kN - 1)));
    ASSERT_TRUE(s.has_value()) << i;
    if (exact == 0) {
      ASSERT_EQ(*s, 0.0) << i;
      ASSERT_FALSE(zs.has_value()) << i;
      ++zero;
      continue;
    }
    ASSERT_NEAR(*s, exact, 1e-9 * exact) << "at " << i << " (x = " << xs[i] << ")";
    ASSERT_TRUE(zs.has_value()) << i;
    const double want_z = static_cast<double>((xs[i] - mean) / std::sqrt(var / (kN - 1)));
    ASSERT_NEAR(*zs, want_z, 1e-7 * std::max(1.0, std::fabs(want_z))) << i;
    ++checked;
  }
  EXPECT_GT(checked, 11'000u);
  EXPECT_GT(zero, kN - 1);  // the flat tail
}

TEST(Indicators, ZScoreIsMissingForAConstantWindow) {
  expect_series(run(ZScore(3), {1, 2, 3, 3, 3, 3}),
                {no, no, 1, (3 - 8.0 / 3) / std::sqrt(1.0 / 3), no, no});
}

TEST(Indicators, CrossoverAgainstALevel) {
  Crossover c(30);
  EXPECT_FALSE(c.update(35));
  EXPECT_EQ(c.update(29), -1);
  EXPECT_EQ(c.update(30), 0);
  EXPECT_EQ(c.update(31), 1);
}

// Three-argument updates (high, low, close), one bar per row.
template <typename Indicator>
std::vector<std::optional<double>> run3(Indicator ind,
                                        const std::vector<std::array<double, 3>>& hlc) {
  std::vector<std::optional<double>> out;
  for (const auto& b : hlc) out.push_back(ind.update(b[0], b[1], b[2]));
  return out;
}

TEST(Indicators, RollingExtremesKeepTheWindowsLargestAndSmallest) {
  const std::vector<double> xs{3, 1, 4, 1, 5, 9, 2, 6, 5, 3};
  expect_series(run(RollingMax(3), xs), {no, no, 4, 4, 5, 9, 9, 9, 6, 6});
  expect_series(run(RollingMin(3), xs), {no, no, 1, 1, 1, 1, 2, 2, 2, 3});
  expect_series(run(RollingMax(1), {2, 1}), {2, 1});
  // Against a brute-force window on a long random walk with ties.
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int> step(-2, 2);
  RollingMax hi(17);
  RollingMin lo(17);
  std::vector<double> seen;
  double x = 0;
  for (int i = 0; i < 20'000; ++i) {
    x += step(rng);
    seen.push_back(x);
    const auto h = hi.update(x), l = lo.update(x);
    if (seen.size() < 17) {
      ASSERT_FALSE(h);
      continue;
    }
    const auto from = seen.end() - 17;
    ASSERT_EQ(*h, *std::max_element(from, seen.end())) << i;
    ASSERT_EQ(*l, *std::min_element(from, seen.end())) << i;
  }
}

TEST(Indicators, RocIsTheChangeOverNValues) {
  expect_series(run(Roc(2, false), {100, 110, 121, 99}), {no, no, 0.21, 99.0 / 110 - 1});
  expect_series(run(Roc(1, true), {100, 110}), {no, std::log(1.1)});
}

TEST(Indicators, BollingerUsesThePopulationDeviationUnlessAskedForTheSample) {
  // 1, 2, 3: mean 2, population sd sqrt(2/3), sample sd 1.
  const double pop = std::sqrt(2.0 / 3);
  expect_series(run(Bollinger(3, 2, false, Line::kUpper), {1, 2, 3}), {no, no, 2 + 2 * pop});
  expect_series(run(Bollinger(3, 2, false, Line::kLower), {1, 2, 3}), {no, no, 2 - 2 * pop});
  expect_series(run(Bollinger(3, 2, false, Line::kMiddle), {1, 2, 3, 7}), {no, no, 2, 4});
  expect_series(run(Bollinger(3, 1, true, Line::kUpper), {1, 2, 3}), {no, no, 3});
  // %B: where x sits between the bands; undefined when they meet.
  expect_series(
      run(Bollinger(3, 1, true, Line::kPctB), {1, 2, 3, 3, 3, 3}),
      {no, no, 1, (3 - (8.0 / 3 - std::sqrt(1.0 / 3))) / (2 * std::sqrt(1.0 / 3)), no, no});
}

TEST(Indicators, AtrIsWildersAverageOfTheTrueRange) {
  // True ranges from the 2nd bar: max(h, c_prev) - min(l, c_prev).
  //   bar 2: max(12, 10) - min(9, 10) = 3;  bar 3: max(11, 11) - min(10, 11) = 1
  //   bar 4: max(15, 10.5) - min(14, 10.5) = 4.5 (a gap up)
  // n = 2: first (3 + 1) / 2 = 2, then 2 + (4.5 - 2) / 2 = 3.25.
  expect_series(run3(Atr(2), {{{10, 9, 10}}, {{12, 9, 11}}, {{11, 10, 10.5}}, {{15, 14, 15}}}),
                {no, no, 2, 3.25});
}

TEST(Indicators, MacdLinesFollowTheirEmas) {
  // fast 2 (alpha 2/3), slow 3 (alpha 1/2), signal 2 (alpha 2/3).
  // x: 1 2 3 5 | fast: -, 1.5, 2.5, 4.1667 | slow: -, -, 2, 3.5
  // line: bar 3: 0.5; bar 4: 25/6 - 3.5 = 2/3 | signal: bar 4: (0.5 + 2/3) / 2
  const std::vector<double> xs{1, 2, 3, 5};
  expect_series(run(Macd(2, 3, 2, false, Line::kMain), xs), {no, no, 0.5, 2.0 / 3});
  expect_series(run(Macd(2, 3, 2, false, Line::kSignal), xs), {no, no, no, 7.0 / 12});
  expect_series(run(Macd(2, 3, 2, false, Line::kHistogram), xs), {no, no, no, 2.0 / 3 - 7.0 / 12});
  expect_series(run(Macd(2, 3, 2, true, Line::kMain), xs), {no, no, 25, 100 * (25.0 / 21 - 1)});
}

TEST(Indicators, StochasticPlacesTheCloseInTheRange) {
  // n = 2: %K = 100 (c - lowest low) / (highest high - lowest low);
  // %D = SMA(2) of %K.
  const std::vector<std::array<double, 3>> hlc{
      {{10, 8, 9}}, {{12, 9, 11}}, {{11, 10, 10}}, {{10, 10, 10}}, {{10, 10, 10}}};
  // bar 2: (11 - 8) / (12 - 8) = 75; bar 3: (10 - 9) / (12 - 9) = 33.3;
  // bar 4: (10 - 10) / 1 = 0; bar 5: range 0 -> missing.
  expect_series(run3(Stochastic(2, 2, Line::kMain), hlc), {no, 75, 100.0 / 3, 0, no});
  expect_series(run3(Stochastic(2, 2, Line::kD), hlc),
                {no, no, (75 + 100.0 / 3) / 2, 50.0 / 3, no});
}

TEST(Indicators, DonchianAndVwap) {
  Donchian upper(2, Line::kUpper), middle(2, Line::kMiddle), lower(2, Line::kLower);
  EXPECT_FALSE(upper.update(5, 1));
  EXPECT_EQ(upper.update(4, 2), 5);
  EXPECT_EQ(upper.update(3, 0.5), 4);
  (void)middle.update(5, 1);
  EXPECT_EQ(middle.update(4, 2), 3);
  (void)lower.update(5, 1);
  EXPECT_EQ(lower.update(4, 2), 1);
  Vwap v(2);
  EXPECT_FALSE(v.update(10, 100));
  EXPECT_EQ(v.update(20, 300), (10.0 * 100 + 20 * 300) / 400);
  EXPECT_EQ(v.update(30, 0),
            20);                  // 20 * 300 / 300
  EXPECT_FALSE(v.update(40, 0));  // no volume in the
                                  // window: no price
}

TEST(Operators, CompareLogicAndArithmetic) {
  EXPECT_EQ(Compare(CompareOp::kLt, 30).update(29.9), 1);
  EXPECT_EQ(Compare(CompareOp::kLt, 30).update(30), 0);
  EXPECT_EQ(Compare(CompareOp::kLe, 30).update(30), 1);
  EXPECT_EQ(Compare(CompareOp::kGt).update(2, 1), 1);
  EXPECT_EQ(Compare(CompareOp::kGe).update(1, 2), 0);
  EXPECT_EQ(Logic(true).update(1, 0), 0);
  EXPECT_EQ(Logic(false).update(1, 0), 1);
  const std::vector<double> xs{1, -2, 0.5};
  EXPECT_EQ(Logic(true).update(std::span<const double>(xs)), 1);
  const std::vector<double> ys{0, 0, 3};
  EXPECT_EQ(Logic(true).update(std::span<const double>(ys)), 0);
  EXPECT_EQ(Logic(false).update(std::span<const double>(ys)), 1);
  EXPECT_EQ(Not{}.update(0), 1);
  EXPECT_EQ(Not{}.update(-1), 0);
  EXPECT_EQ(Arith(ArithOp::kSub).update(5, 7), -2);
  EXPECT_EQ(Arith(ArithOp::kDiv, 4).update(2), 0.5);
  EXPECT_EQ(Arith(ArithOp::kMul, -1).update(3), -3);
  EXPECT_TRUE(std::isinf(*Arith(ArithOp::kDiv)
                              .update(1,
                                      0)));  // the Dag
                                             // fails such
                                             // a node
}

TEST(Indicators, CrossoverSignsTheCross) {
  Crossover c;
  EXPECT_FALSE(c.update(1, 2));
  EXPECT_EQ(c.update(2, 2),
            0);  // touching is not
                 // crossing
  EXPECT_EQ(c.update(3, 2),
            1);  // from <= to >
  EXPECT_EQ(c.update(4, 2),
            0);  // still above
  EXPECT_EQ(c.update(2, 2), 0);
  EXPECT_EQ(c.update(1, 2),
            -1);  // from >= to <
}

// The example SMA crossover on real
// data: every cross of SMA(10) over
// SMA(30) is where exact arithmetic
// puts it. The closes have two
// decimals, so the exact comparison
// is of integer sums of cents (fast
// * 30 against slow * 10). With a
// plain running sum, rounding made
// one pair equal in exact
// arithmetic compare greater, and
// the strategy bought on 1988-08-01
// instead of 08-02.
TEST(Indicators, SmaCrossesWhereExactArithmeticDoes) {
  auto file = read_bars_csv(QMTL_SOURCE_DIR
                            "/examples/data/"
                            "ttrc_ohlcv.csv",
                            "TTRC");
  ASSERT_TRUE(file) << file.error().message;
  const auto& bars = file->bars;
  Sma fast(10), slow(30);
  Crossover cross;
  std::vector<int64_t> cents;
  int64_t fast_sum = 0, slow_sum = 0;
  std::optional<std::pair<int64_t, int64_t>> prev;  // fast * 30, slow * 10
  size_t crosses = 0;
  bool saw_equal_pair = false;
  for (size_t i = 0; i < bars.size(); ++i) {
    cents.push_back(std::llround(bars[i].close * 100));
    fast_sum += cents[i] - (i >= 10 ? cents[i - 10] : 0);
    slow_sum += cents[i] - (i >= 30 ? cents[i - 30] : 0);
    const auto f = fast.update(bars[i].close), s = slow.update(bars[i].close);
    if (!f || !s) continue;
    const auto got = cross.update(*f, *s);
    const std::pair<int64_t, int64_t> now{fast_sum * 30, slow_sum * 10};
    saw_equal_pair = saw_equal_pair || now.first == now.second;
    // Whether the doubles compare
    // as the exact values do, every
    // bar.
    ASSERT_EQ(*f > *s, now.first > now.second) << "bar " << i;
    ASSERT_EQ(*f < *s, now.first < now.second) << "bar " << i;
    if (prev) {
      const auto [pa, pb] = *prev;
      const double want = (pa <= pb && now.first > now.second)   ? 1
                          : (pa >= pb && now.first < now.second) ? -1
                                                                 : 0;
      ASSERT_EQ(got, want) << "bar " << i << " " << format_timestamp(bars[i].ts);
      crosses += want != 0 ? 1 : 0;
    }
    prev = now;
  }
  EXPECT_EQ(crosses, 216u);
  EXPECT_TRUE(saw_equal_pair);  // the case
                                // that
                                // rounding
                                // used to
                                // decide
}

TEST(Indicators, RunningSumsDoNotDriftOverMillionsOfUpdates) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> step(0, 1);
  Sma sma(50);
  RollingStd sd(50);
  std::vector<double> window;
  double price = 1e4;
  for (int i = 0; i < 2'000'000; ++i) {
    price += step(rng);
    auto m = sma.update(price);
    auto s = sd.update(price);
    window.push_back(price);
    if (window.size() > 50) window.erase(window.begin());
    if (i % 100'000 == 99'999) {
      double mean = 0;
      for (double x : window) mean += x;
      mean /= 50;
      double var = 0;
      for (double x : window) var += (x - mean) * (x - mean);
      ASSERT_NEAR(*m, mean, 1e-9 * std::fabs(mean));
      ASSERT_NEAR(*s, std::sqrt(var / 49), 1e-6);
    }
  }
}

}  // namespace
}  // namespace qmtl::sdk
