#include "qmtl/metrics/correlation.h"

#include <gtest/gtest.h>

#include <random>

namespace qmtl::metrics {
namespace {

using std::chrono::hours;

TimePoint day(int d) { return *parse_timestamp("2024-01-01T00:00:00Z") + hours(24 * d); }

ReturnSeries returns_at(const std::vector<int>& days, const std::vector<double>& r) {
  std::vector<Sample> s;
  for (size_t i = 0; i < r.size(); ++i) s.push_back({day(days[i]), r[i]});
  return *from_samples(SeriesKind::kReturn, s);
}

TEST(Correlation, HandComputed) {
  // x = 1,2,3 ; y = 1,3,2. Centred: dx = -1,0,1 ; dy = -1,1,0.
  // sum(dx*dy) = 1 ; |dx| = |dy| = sqrt(2) ; rho = 1 / 2 = 0.5
  auto a = returns_at({1, 2, 3}, {0.01, 0.02, 0.03});
  auto b = returns_at({1, 2, 3}, {0.01, 0.03, 0.02});
  EXPECT_NEAR(*correlation(a, b).value, 0.5, 1e-12);
  EXPECT_NEAR(*correlation(a, a).value, 1.0, 1e-12);
  auto c = returns_at({1, 2, 3}, {0.03, 0.02, 0.01});
  EXPECT_NEAR(*correlation(a, c).value, -1.0, 1e-12);
}

TEST(Correlation, AlignsOnCommonTimestamps) {
  // b has an extra day 9 and lacks day 2; common days 1, 3, 4, 5.
  auto a = returns_at({1, 2, 3, 4, 5}, {0.01, 0.5, 0.02, 0.03, 0.04});
  auto b = returns_at({1, 3, 4, 5, 9}, {0.02, 0.04, 0.06, 0.08, -0.9});
  EXPECT_NEAR(*correlation(a, b).value, 1.0, 1e-12);
  // Window: the last 2 days of common data (days 4 and 5) -> too few periods.
  auto w = correlation(a, b, hours(48));
  EXPECT_FALSE(w.present());
  EXPECT_EQ(w.why_missing, "fewer than 3 common periods");
}

TEST(Correlation, DegenerateIsMissing) {
  auto a = returns_at({1, 2, 3}, {0.01, 0.01, 0.01});
  auto b = returns_at({1, 2, 3}, {0.01, 0.02, 0.03});
  EXPECT_EQ(correlation(a, b).why_missing, "returns do not vary");
  EXPECT_FALSE(
      correlation(returns_at({1, 2}, {0.1, 0.2}), returns_at({1, 2}, {0.1, 0.3})).present());
  EXPECT_FALSE(
      correlation(returns_at({1, 2, 3}, {0.1, 0.2, 0.3}), returns_at({4, 5, 6}, {0.1, 0.2, 0.3}))
          .present());
}

TEST(CorrelationMatrix, MatchesPairwise) {
  const size_t n = 12, t = 40;
  std::mt19937_64 rng(1);
  std::normal_distribution<double> d(0, 0.01);
  std::vector<double> data(n * t);
  for (auto& x : data) x = d(rng);
  for (size_t k = 0; k < t; ++k) data[3 * t + k] = 2 * data[k] + 0.001;  // 3 tracks 0
  for (size_t k = 0; k < t; ++k) data[5 * t + k] = 0.002;                // 5 is flat
  auto m = correlation_matrix(data, n, t);
  ASSERT_EQ(m.size(), n);
  std::vector<int> days(t);
  for (size_t k = 0; k < t; ++k) days[k] = static_cast<int>(k);
  for (size_t i = 0; i < n; ++i) {
    auto si = returns_at(days, std::vector<double>(data.begin() + static_cast<long>(i * t),
                                                   data.begin() + static_cast<long>((i + 1) * t)));
    for (size_t j = 0; j < n; ++j) {
      auto sj =
          returns_at(days, std::vector<double>(data.begin() + static_cast<long>(j * t),
                                               data.begin() + static_cast<long>((j + 1) * t)));
      auto pair = correlation(si, sj);
      ASSERT_EQ(m.at(i, j).has_value(), pair.present()) << i << "," << j;
      if (pair.present()) {
        EXPECT_NEAR(*m.at(i, j), *pair.value, 1e-10);
      }
    }
  }
  EXPECT_NEAR(*m.at(0, 3), 1.0, 1e-12);
  EXPECT_NEAR(*m.at(3, 0), 1.0, 1e-12);
  EXPECT_FALSE(m.at(5, 5));
  EXPECT_FALSE(m.at(0, 5));
}

// The blocked pairs are exactly the matrix's pairs at or above the threshold,
// across block boundaries (256 rows), with flat series pairing with nothing.
TEST(CorrelatedPairs, MatchTheMatrixAboveTheThreshold) {
  const size_t n = 600, t = 30;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> d(0, 0.01);
  std::vector<double> data(n * t);
  for (auto& x : data) x = d(rng);
  // Clusters that straddle blocks: 10 + 300 + 590 follow 10; 255, 256, 257 follow 255.
  for (size_t i : {size_t{300}, size_t{590}}) {
    for (size_t k = 0; k < t; ++k) data[i * t + k] = data[10 * t + k] * 1.5 + d(rng) * 0.1;
  }
  for (size_t i : {size_t{256}, size_t{257}}) {
    for (size_t k = 0; k < t; ++k) data[i * t + k] = data[255 * t + k] - d(rng) * 0.1;
  }
  for (size_t k = 0; k < t; ++k) data[400 * t + k] = 0.001;  // flat
  const double threshold = 0.8;
  const auto pairs = correlated_pairs(data, n, t, threshold);
  const auto m = correlation_matrix(data, n, t);
  size_t expected = 0;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      const auto v = m.at(i, j);
      if (v && *v >= threshold) ++expected;
    }
  }
  ASSERT_EQ(pairs.size(), expected);
  EXPECT_GE(expected, 6u);  // the two clusters at least
  for (const auto& p : pairs) {
    ASSERT_LT(p.i, p.j);
    EXPECT_NEAR(p.value, *m.at(p.i, p.j), 1e-12);
    EXPECT_NE(p.i, 400u);
    EXPECT_NE(p.j, 400u);
  }
  const std::vector<double> short_rows{0.1, 0.2, 0.3, 0.1};  // two series of two periods
  EXPECT_TRUE(correlated_pairs(short_rows, 2, 2, 0.5).empty());
  EXPECT_TRUE(correlated_pairs({}, 0, 0, 0.5).empty());
}

TEST(CorrelationMatrix, EmptyAndTooShort) {
  EXPECT_EQ(correlation_matrix({}, 0, 0).size(), 0u);
  std::vector<double> two{0.1, 0.2, 0.3, 0.1};
  auto m = correlation_matrix(two, 2, 2);
  EXPECT_FALSE(m.at(0, 1));
}

}  // namespace
}  // namespace qmtl::metrics
