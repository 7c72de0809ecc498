#include "qmtl/metrics/series.h"

#include <gtest/gtest.h>

namespace qmtl::metrics {
namespace {

using std::chrono::hours;
using std::chrono::minutes;

TimePoint t0() { return *parse_timestamp("2024-01-01T00:00:00Z"); }

TEST(FromSamples, EquityStartsAtTheFirstSample) {
  std::vector<Sample> s{{t0(), 100}, {t0() + hours(24), 110}, {t0() + hours(48), 99}};
  auto r = from_samples(SeriesKind::kEquity, s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->start, t0());
  EXPECT_EQ(r->start_equity, 100);
  ASSERT_EQ(r->size(), 2u);
  EXPECT_NEAR(r->r[0], 0.1, 1e-15);
  EXPECT_NEAR(r->r[1], -0.1, 1e-15);
  EXPECT_EQ(r->equity[1], 99);
}

TEST(FromSamples, PnlNeedsInitialEquity) {
  std::vector<Sample> s{{t0(), 10}, {t0() + hours(24), -5}};
  auto missing = from_samples(SeriesKind::kPnl, s);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("--initial-equity"), std::string::npos);
  auto r = from_samples(SeriesKind::kPnl, s, {.initial_equity = 100});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 2u);
  EXPECT_NEAR(r->r[0], 0.10, 1e-15);        // 10 / 100
  EXPECT_NEAR(r->r[1], -5.0 / 110, 1e-15);  // -5 / 110
  EXPECT_EQ(r->start, t0() - hours(24));    // one median spacing before the first row
}

TEST(FromSamples, ReturnsCompound) {
  std::vector<Sample> s{{t0(), 0.1}, {t0() + minutes(5), -0.5}, {t0() + minutes(10), 1.0}};
  auto r = from_samples(SeriesKind::kReturn, s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->start_equity, 1);
  EXPECT_NEAR(r->equity.back(), 1.1 * 0.5 * 2.0, 1e-15);
  EXPECT_EQ(r->start, t0() - minutes(5));
}

TEST(FromSamples, DuplicateTimestampsMergeByKind) {
  std::vector<Sample> s{{t0(), 100}, {t0() + hours(1), 50}, {t0() + hours(1), 120}};
  EXPECT_EQ(from_samples(SeriesKind::kEquity, s)->equity, std::vector<double>{120});
  auto pnl = from_samples(SeriesKind::kPnl, s, {.initial_equity = 1000});
  EXPECT_EQ(pnl->equity, (std::vector<double>{1100, 1270}));
  std::vector<Sample> rs{{t0(), 0.1}, {t0(), 0.1}};
  EXPECT_NEAR(from_samples(SeriesKind::kReturn, rs)->r[0], 0.21, 1e-15);
}

TEST(FromSamples, RefusesBadSamplesNamingTheRow) {
  const auto nan = std::numeric_limits<double>::quiet_NaN();
  struct Case {
    SeriesKind kind;
    std::vector<Sample> s;
    std::string part;
  };
  for (const Case& c : std::vector<Case>{
           {SeriesKind::kEquity, {{t0(), 1}, {t0() - hours(1), 2}}, "sample 2: timestamp"},
           {SeriesKind::kEquity, {{t0(), 1}, {t0() + hours(1), nan}}, "sample 2: value is not"},
           {SeriesKind::kEquity, {{t0(), 0}}, "sample 1: equity must be positive"},
           {SeriesKind::kEquity, {{t0(), 5}, {t0() + hours(1), -1}}, "sample 2: equity must"},
           {SeriesKind::kReturn, {{t0(), -1.0}}, "sample 1: a return of -100%"},
           {SeriesKind::kPnl, {{t0(), -100}}, "sample 1: the PnL takes equity to zero"},
       }) {
    auto r = from_samples(
        c.kind, c.s,
        {.initial_equity = c.kind == SeriesKind::kPnl ? std::optional<double>(100) : std::nullopt});
    ASSERT_FALSE(r) << c.part;
    EXPECT_NE(r.error().message.find(c.part), std::string::npos) << r.error().message;
  }
}

TEST(InferPeriodsPerYear, FromMedianSpacing) {
  auto every = [](Duration d, int n) {
    std::vector<TimePoint> ts;
    for (int i = 0; i < n; ++i) ts.push_back(t0() + d * i);
    return infer_periods_per_year(ts);
  };
  EXPECT_EQ(every(hours(24), 10), 252);
  EXPECT_EQ(every(hours(24 * 7), 10), 52);
  EXPECT_EQ(every(hours(24 * 30), 10), 12);
  EXPECT_EQ(every(hours(24 * 91), 10), 4);
  EXPECT_EQ(every(hours(24 * 365), 10), 1);
  EXPECT_EQ(every(hours(1), 10), 252 * 24);
  EXPECT_EQ(every(minutes(5), 10), 252 * 288);
  EXPECT_FALSE(every(hours(24), 1));
  // Weekday series: gaps of 1 and 3 days; the median is 1 day.
  std::vector<TimePoint> weekdays;
  for (int w = 0; w < 4; ++w) {
    for (int d = 0; d < 5; ++d) weekdays.push_back(t0() + hours(24 * (7 * w + d)));
  }
  EXPECT_EQ(infer_periods_per_year(weekdays), 252);
  // A short daily file with two long gaps (1, 1, 6, 6 days): the median of an
  // even count is the mean of the middle two, 3.5 days: daily. The upper one
  // alone (6 days) read it as weekly.
  const std::vector<TimePoint> gapped{t0(), t0() + hours(24), t0() + hours(48),
                                      t0() + hours(24 * 8), t0() + hours(24 * 14)};
  EXPECT_EQ(infer_periods_per_year(gapped), 252);
  // And the pnl series' T_0 moves back by that median.
  std::vector<Sample> pnl;
  for (const auto t : gapped) pnl.push_back({t, 1.0});
  auto series = from_samples(SeriesKind::kPnl, pnl, {.initial_equity = 100});
  ASSERT_TRUE(series) << series.error().message;
  EXPECT_EQ(series->start, t0() - hours(84));
}

}  // namespace
}  // namespace qmtl::metrics
