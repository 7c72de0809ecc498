#include "qmtl/metrics/series.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace qmtl::metrics {
namespace {

using std::chrono::hours;
using std::chrono::minutes;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

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

// from_values reads a column in place; it must give what from_samples gives
// on the same rows, series or error, for every kind.
TEST(FromValues, EqualsFromSamplesOnAColumnReadInPlace) {
  constexpr size_t kRows = 40, kCols = 3;
  std::vector<TimePoint> ts;
  for (size_t r = 0; r < kRows; ++r) ts.push_back(t0() + hours(24 * static_cast<int>(r)));
  // Row-major rows x columns, read down column 1 (stride kCols).
  auto frame_of = [&](auto value) {
    std::vector<double> f(kRows * kCols, -7.0);
    for (size_t r = 0; r < kRows; ++r) f[r * kCols + 1] = value(r);
    return f;
  };
  auto check = [&](SeriesKind kind, const std::vector<double>& f, const SeriesOptions& o,
                   const std::string& what) {
    SCOPED_TRACE(what);
    std::vector<Sample> samples;
    for (size_t r = 0; r < kRows; ++r) samples.push_back({ts[r], f[r * kCols + 1]});
    ReturnSeries a, b;
    const auto ra = from_samples(kind, samples, o, a);
    const auto rb = from_values(kind, ts, f.data() + 1, kCols, o, b);
    ASSERT_EQ(ra.has_value(), rb.has_value());
    if (!ra) {
      EXPECT_EQ(ra.error().message, rb.error().message);
      return;
    }
    EXPECT_EQ(a.start, b.start);
    EXPECT_EQ(a.start_equity, b.start_equity);
    EXPECT_EQ(a.ts, b.ts);
    EXPECT_EQ(a.r, b.r);  // bit for bit
    EXPECT_EQ(a.equity, b.equity);
    EXPECT_FALSE(b.fills);
  };
  const auto equity = frame_of(
      [](size_t r) { return 100.0 * (1 + 0.01 * std::sin(static_cast<double>(r) * 1.3)); });
  const auto pnl = frame_of([](size_t r) { return 3.0 * std::cos(static_cast<double>(r) * 0.7); });
  const auto ret = frame_of([](size_t r) { return 0.02 * std::sin(static_cast<double>(r) * 2.1); });
  check(SeriesKind::kEquity, equity, {}, "equity");
  check(SeriesKind::kPnl, pnl, {.initial_equity = 100}, "pnl");
  check(SeriesKind::kReturn, ret, {}, "return");
  check(SeriesKind::kReturn, ret, {.initial_equity = 50}, "return, scaled");
  // Errors: the same message (and row) either way.
  auto with = [](std::vector<double> f, size_t at, double v) {
    f[at * kCols + 1] = v;
    return f;
  };
  check(SeriesKind::kEquity, with(equity, 0, 0.0), {}, "first equity zero");
  check(SeriesKind::kEquity, with(equity, 5, -1.0), {}, "negative equity");
  check(SeriesKind::kEquity, with(equity, 0, kNaN), {}, "first value NaN");
  check(SeriesKind::kEquity, with(equity, 9, HUGE_VAL), {}, "infinite value");
  check(SeriesKind::kPnl, pnl, {}, "pnl without initial equity");
  check(SeriesKind::kPnl, with(pnl, 3, kNaN), {}, "pnl without initial equity, and a NaN");
  check(SeriesKind::kPnl, with(pnl, 3, -1000.0), {.initial_equity = 100}, "pnl to zero");
  check(SeriesKind::kReturn, with(ret, 7, -1.0), {}, "a return of -100%");
  check(SeriesKind::kEquity, equity, {.initial_equity = -5}, "bad initial equity");
  // One row, and none.
  ReturnSeries one;
  ASSERT_TRUE(
      from_values(SeriesKind::kEquity, std::span(ts).first(1), equity.data() + 1, kCols, {}, one));
  EXPECT_EQ(one.start_equity, equity[1]);
  EXPECT_TRUE(one.r.empty());
  EXPECT_TRUE(from_values(SeriesKind::kPnl, {}, nullptr, 1, {.initial_equity = 1}, one));
  EXPECT_TRUE(one.r.empty());
}

}  // namespace
}  // namespace qmtl::metrics
