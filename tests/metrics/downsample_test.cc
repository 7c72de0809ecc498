#include "qmtl/metrics/downsample.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace qmtl::metrics {
namespace {

std::vector<double> random_walk(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> step(0.0002, 0.01);
  std::vector<double> v(n);
  double eq = 100;
  for (auto& x : v) {
    eq *= std::exp(step(rng));
    x = eq;
  }
  return v;
}

// The deepest fall from a running peak, as a fraction of the peak.
double max_drawdown(const std::vector<double>& v) {
  double peak = v.front(), worst = 0;
  for (double x : v) {
    peak = std::max(peak, x);
    worst = std::max(worst, 1 - x / peak);
  }
  return worst;
}

TEST(DownsampleTest, ShortSeriesAreKeptWhole) {
  const std::vector<double> v = {1, 2, 3};
  EXPECT_EQ(downsample_min_max(v, 3), (std::vector<size_t>{0, 1, 2}));
  EXPECT_EQ(downsample_min_max(v, 1000), (std::vector<size_t>{0, 1, 2}));
  EXPECT_TRUE(downsample_min_max({}, 10).empty());
  EXPECT_EQ(downsample_min_max(v, 2), (std::vector<size_t>{0, 2}));
  EXPECT_EQ(downsample_min_max(v, 1), (std::vector<size_t>{0}));
}

TEST(DownsampleTest, KeepsAtMostNPointsInOrderWithEndsAndExtremes) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    const auto v = random_walk(100'003, seed);
    for (size_t n : {4u, 5u, 100u, 2000u, 2001u}) {
      const auto keep = downsample_min_max(v, n);
      ASSERT_LE(keep.size(), n);
      ASSERT_GE(keep.size(), std::min<size_t>(n, 4) - 1);
      EXPECT_EQ(keep.front(), 0u);
      EXPECT_EQ(keep.back(), v.size() - 1);
      EXPECT_TRUE(std::is_sorted(keep.begin(), keep.end()));
      EXPECT_EQ(std::adjacent_find(keep.begin(), keep.end()), keep.end()) << "an index twice";
      std::vector<double> kept;
      for (size_t i : keep) kept.push_back(v[i]);
      EXPECT_EQ(*std::min_element(kept.begin(), kept.end()), *std::min_element(v.begin(), v.end()));
      EXPECT_EQ(*std::max_element(kept.begin(), kept.end()), *std::max_element(v.begin(), v.end()));
      if (n >= 2000) {
        // Peaks and troughs of each run survive: the drawdown a chart shows is
        // within a few per cent of the true one, never far shallower.
        EXPECT_GE(max_drawdown(kept), 0.97 * max_drawdown(v)) << "seed " << seed << " n " << n;
        EXPECT_LE(max_drawdown(kept), max_drawdown(v));
      }
    }
  }
}

TEST(DownsampleTest, AOneBarCrashSurvivesAndAFlatLineStaysFlat) {
  std::vector<double> v(650'000, 100.0);
  v[333'333] = 40;  // one minute of a flash crash in five years
  const auto keep = downsample_min_max(v, 2000);
  EXPECT_LE(keep.size(), 2000u);
  EXPECT_TRUE(std::find(keep.begin(), keep.end(), 333'333u) != keep.end());
  // A flat run gives one point, not two copies of the same.
  std::vector<double> flat(10'000, 5.0);
  const auto f = downsample_min_max(flat, 100);
  EXPECT_EQ(f.size(), 51u);  // first, one per run (49), last
}

}  // namespace
}  // namespace qmtl::metrics
