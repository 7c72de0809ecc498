#include "qmtl/metrics/kpi.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <thread>

#include "qmtl/core/duration.h"

namespace qmtl::metrics {
namespace {

constexpr std::array<std::string_view, 15> kNames{
    "return",       "daily_pnl",        "volatility", "sharpe",           "sortino",
    "max_drawdown", "calmar",           "trades",     "win_rate",         "profit_factor",
    "gain_to_pain", "time_under_water", "periods",    "periods_per_year", "worst_loss"};

constexpr double kUsPerDay = 86'400'000'000.0;

// A contiguous slice of a series plus the point before it: times T_0..T_n and
// equity E_0..E_n, where T_0/E_0 are the start and r has n entries.
struct View {
  TimePoint start;
  double start_equity;
  std::span<const TimePoint> ts;
  std::span<const double> r;
  std::span<const double> equity;

  size_t n() const { return r.size(); }
  TimePoint t(size_t i) const { return i == 0 ? start : ts[i - 1]; }
  double e(size_t i) const { return i == 0 ? start_equity : equity[i - 1]; }
};

View make_view(const ReturnSeries& s, std::optional<Duration> window) {
  size_t k = 0;
  if (window && !s.ts.empty()) {
    const TimePoint from = s.ts.back() - *window;
    k = static_cast<size_t>(std::upper_bound(s.ts.begin(), s.ts.end(), from) - s.ts.begin());
  }
  View v{.start = k == 0 ? s.start : s.ts[k - 1],
         .start_equity = k == 0 ? s.start_equity : s.equity[k - 1],
         .ts = std::span(s.ts).subspan(k),
         .r = std::span(s.r).subspan(k),
         .equity = std::span(s.equity).subspan(k)};
  return v;
}

int64_t utc_day(TimePoint t) {
  const int64_t us = t.time_since_epoch().count();
  const int64_t per_day = 86'400'000'000LL;
  return us >= 0 ? us / per_day : -((-us + per_day - 1) / per_day);
}

// Worst compounded return between any two points at most `w` apart, via a
// monotonic queue of the running maximum equity in the trailing window. The
// queue lives in one vector (indices only ever move forward), which is several
// times faster than std::deque on this hot path.
MetricValue worst_loss(const View& v, Duration w) {
  std::vector<size_t> q(v.n() + 1);
  size_t head = 0, tail = 0;  // live entries are q[head, tail), equity decreasing
  double worst = 0;
  bool any_pair = false;
  for (size_t j = 0; j <= v.n(); ++j) {
    const TimePoint tj = v.t(j);
    const double ej = v.e(j);
    while (head < tail && tj - v.t(q[head]) > w) ++head;
    if (head < tail) {
      any_pair = true;
      worst = std::min(worst, ej / v.e(q[head]) - 1.0);
    }
    while (head < tail && v.e(q[tail - 1]) <= ej) --tail;
    q[tail++] = j;
  }
  if (!any_pair) return MetricValue::missing("no two points within the window; data too coarse");
  return MetricValue::of(worst);
}

}  // namespace

MetricValue MetricValue::of(double v) {
  if (!std::isfinite(v)) return missing("not a finite number");
  return {v, {}};
}

std::span<const std::string_view> metric_names() { return kNames; }

std::optional<MetricValue> Metrics::get(std::string_view name, std::optional<Duration> arg) const {
  if (name == "worst_loss") {
    if (!arg) return std::nullopt;
    for (const auto& [w, value] : worst_loss) {
      if (w == *arg) return value;
    }
    return std::nullopt;
  }
  if (arg) return std::nullopt;
  const std::array<const MetricValue*, 14> values{
      &total_return, &daily_pnl,        &volatility, &sharpe,          &sortino,
      &max_drawdown, &calmar,           &trades,     &win_rate,        &profit_factor,
      &gain_to_pain, &time_under_water, &periods,    &periods_per_year};
  for (size_t i = 0; i < values.size(); ++i) {
    if (kNames[i] == name) return *values[i];
  }
  return std::nullopt;
}

namespace {

// Sums of one pass over the returns: for the ratios, drawdown, time under
// water and daily PnL.
struct OnePass {
  double sum = 0, down_sq = 0, neg_sum = 0, gains = 0, losses = 0;
  size_t wins = 0, nonzero = 0;
  double max_dd = 0;
  Duration longest_under{0};
  double days_total = 0;
  size_t days = 0;
  double shifted_sum = 0, shifted_sq = 0;
};

OnePass one_pass(const View& v) {
  const size_t n = v.n();
  OnePass o;
  double peak = v.start_equity;
  TimePoint peak_t = v.start;
  bool under = false;
  double day_sum = 0;
  // Periods are grouped by UTC day; the day is recomputed only when a timestamp
  // crosses the current day's end, not divided out for every point.
  constexpr int64_t kDayUs = 86'400'000'000LL;
  int64_t day_end = (utc_day(v.ts[0]) + 1) * kDayUs;
  // Variance from sums shifted by the first return: one pass, and stable because
  // returns stay close to each other.
  const double shift = v.r[0];
  double prev_eq = v.start_equity;
  for (size_t i = 0; i < n; ++i) {
    const double r = v.r[i];
    const double eq = v.equity[i];
    o.sum += r;
    o.shifted_sum += r - shift;
    o.shifted_sq += (r - shift) * (r - shift);
    if (r < 0) {
      o.down_sq += r * r;
      o.neg_sum += r;
    }
    if (r != 0) ++o.nonzero;
    if (r > 0) ++o.wins;
    const double pnl = eq - prev_eq;
    if (pnl > 0) o.gains += pnl;
    if (pnl < 0) o.losses -= pnl;
    prev_eq = eq;

    if (const int64_t us = v.ts[i].time_since_epoch().count(); us >= day_end) {
      o.days_total += day_sum;
      ++o.days;
      day_sum = 0;
      day_end = (utc_day(v.ts[i]) + 1) * kDayUs;
    }
    day_sum += pnl;

    if (eq >= peak) {
      if (under) o.longest_under = std::max(o.longest_under, v.ts[i] - peak_t);
      under = false;
      peak = eq;
      peak_t = v.ts[i];
    } else {
      under = true;
      o.max_dd = std::max(o.max_dd, (peak - eq) / peak);
    }
  }
  o.days_total += day_sum;
  ++o.days;
  if (under) o.longest_under = std::max(o.longest_under, v.ts[n - 1] - peak_t);

  return o;
}

}  // namespace

Metrics compute_metrics(const ReturnSeries& series, const MetricsOptions& options) {
  Metrics m;
  const View v = make_view(series, options.window);
  const size_t n = v.n();
  m.periods = MetricValue::of(static_cast<double>(n));

  // Trades come from fills, independent of the returns.
  if (series.fills) {
    const TimePoint from = v.start;
    const bool whole = !options.window;
    const auto count = std::count_if(series.fills->begin(), series.fills->end(),
                                     [&](const Fill& f) { return whole || f.ts > from; });
    m.trades = MetricValue::of(static_cast<double>(count));
  } else {
    m.trades = MetricValue::missing("no fills reported");
  }

  std::optional<double> ppy = options.periods_per_year;
  if (!ppy) ppy = infer_periods_per_year(series.ts);
  m.periods_per_year = ppy ? MetricValue::of(*ppy)
                           : MetricValue::missing("fewer than two timestamps to infer it from");

  for (Duration w : options.worst_loss_windows) m.worst_loss.emplace_back(w, worst_loss(v, w));

  if (n == 0) {
    constexpr std::string_view kNone = "no returns in the window";
    for (MetricValue* x :
         {&m.total_return, &m.daily_pnl, &m.volatility, &m.sharpe, &m.sortino, &m.max_drawdown,
          &m.calmar, &m.win_rate, &m.profit_factor, &m.gain_to_pain, &m.time_under_water}) {
      *x = MetricValue::missing(kNone);
    }
    return m;
  }

  const OnePass s = one_pass(v);
  const double total = v.equity[n - 1] / v.start_equity - 1.0;
  m.total_return = MetricValue::of(total);
  m.daily_pnl = MetricValue::of(s.days_total / static_cast<double>(s.days));
  m.max_drawdown = MetricValue::of(s.max_dd);
  m.time_under_water = MetricValue::of(static_cast<double>(s.longest_under.count()) / kUsPerDay);
  m.win_rate = s.nonzero > 0
                   ? MetricValue::of(static_cast<double>(s.wins) / static_cast<double>(s.nonzero))
                   : MetricValue::missing("no period with a gain or a loss");
  m.profit_factor =
      s.losses > 0 ? MetricValue::of(s.gains / s.losses) : MetricValue::missing("no losing period");
  m.gain_to_pain = s.neg_sum < 0 ? MetricValue::of(s.sum / -s.neg_sum)
                                 : MetricValue::missing("no losing period");

  const double mean = s.sum / static_cast<double>(n);
  if (n < 2) {
    constexpr std::string_view kOne = "needs at least two returns";
    m.volatility = m.sharpe = m.sortino = MetricValue::missing(kOne);
  } else {
    const double nd = static_cast<double>(n);
    const double ss = std::max(0.0, s.shifted_sq - s.shifted_sum * s.shifted_sum / nd);
    const double sd = std::sqrt(ss / static_cast<double>(n - 1));
    const double ann = ppy ? std::sqrt(*ppy) : 0;
    if (!ppy) {
      m.volatility = m.sharpe = m.sortino =
          MetricValue::missing("periods per year unknown; give it explicitly");
    } else {
      m.volatility = MetricValue::of(sd * ann);
      // A spread below rounding noise of the mean is no spread: the ratio would be
      // an artefact, so it is missing rather than huge.
      const bool flat = sd <= 1e-12 * std::max(std::abs(mean), 1e-300) || sd == 0;
      m.sharpe =
          flat ? MetricValue::missing("returns do not vary") : MetricValue::of(mean / sd * ann);
      const double dd = std::sqrt(s.down_sq / static_cast<double>(n));
      m.sortino =
          dd > 0 ? MetricValue::of(mean / dd * ann) : MetricValue::missing("no losing period");
    }
  }
  if (!ppy) {
    m.calmar = MetricValue::missing("periods per year unknown; give it explicitly");
  } else if (s.max_dd <= 0) {
    m.calmar = MetricValue::missing("no drawdown");
  } else {
    const double annual = std::pow(1.0 + total, *ppy / static_cast<double>(n)) - 1.0;
    m.calmar = MetricValue::of(annual / s.max_dd);
  }
  return m;
}

std::vector<Metrics> compute_metrics_many(std::span<const ReturnSeries> series,
                                          const MetricsOptions& options, unsigned threads) {
  std::vector<Metrics> out(series.size());
  if (threads == 0) threads = std::max(1U, std::thread::hardware_concurrency());
  threads = static_cast<unsigned>(std::min<size_t>(threads, std::max<size_t>(series.size(), 1)));
  const size_t chunk = (series.size() + threads - 1) / threads;
  {
    std::vector<std::jthread> pool;
    for (unsigned t = 0; t < threads; ++t) {
      const size_t lo = t * chunk, hi = std::min(series.size(), lo + chunk);
      pool.emplace_back([&, lo, hi] {
        for (size_t i = lo; i < hi; ++i) out[i] = compute_metrics(series[i], options);
      });
    }
  }  // joins
  return out;
}

std::string_view metric_unit(std::string_view name) {
  if (name.starts_with("worst_loss")) return "fraction (-0.05 = -5%)";
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 14> kUnits{{
      {"return", "fraction (0.05 = 5%)"},
      {"daily_pnl", "money per day"},
      {"volatility", "annualised"},
      {"sharpe", "annualised"},
      {"sortino", "annualised"},
      {"max_drawdown", "fraction of the peak"},
      {"calmar", "ratio"},
      {"trades", "fills"},
      {"win_rate", "fraction of periods"},
      {"profit_factor", "ratio"},
      {"gain_to_pain", "ratio"},
      {"time_under_water", "days"},
      {"periods", "periods"},
      {"periods_per_year", "periods a year"},
  }};
  for (const auto& [n, unit] : kUnits) {
    if (n == name) return unit;
  }
  return "";
}

std::vector<std::pair<std::string, MetricValue>> metric_rows(const Metrics& m) {
  std::vector<std::pair<std::string, MetricValue>> out;
  for (auto name : metric_names()) {
    if (name == "worst_loss") {
      for (const auto& [w, v] : m.worst_loss) {
        out.emplace_back(fmt::format("worst_loss({})", format_duration(w)), v);
      }
      continue;
    }
    out.emplace_back(std::string(name), *m.get(name));
  }
  return out;
}

}  // namespace qmtl::metrics
