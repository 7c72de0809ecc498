// Key performance indicators of a ReturnSeries (docs/metrics.md; docs/metrics.md has
// every formula and the reasons for each choice).
//
// A metric is either a finite number or "missing" with a reason; it is never NaN
// or infinite. Decisions treat missing as "not proven", so a missing value can
// never pass a gate.
//
// Thread safety: pure functions; compute_metrics_many uses its own threads.
#pragma once

#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "qmtl/metrics/series.h"

namespace qmtl::metrics {

struct MetricValue {
  std::optional<double> value;   // finite when present
  std::string_view why_missing;  // static text, empty when value is present

  static MetricValue of(double v);
  static MetricValue missing(std::string_view why) { return {std::nullopt, why}; }
  bool present() const { return value.has_value(); }
};

struct MetricsOptions {
  // Only periods ending after (last timestamp - window) count. nullopt = all.
  std::optional<Duration> window;
  // Annualisation factor; inferred from the timestamps when absent.
  std::optional<double> periods_per_year;
  // Windows for worst_loss(w), e.g. {5m, 1d}.
  std::vector<Duration> worst_loss_windows;
};

struct Metrics {
  MetricValue total_return;      // compounded: E_end / E_start - 1
  MetricValue daily_pnl;         // mean PnL (money) per UTC day with data
  MetricValue volatility;        // std(r, ddof=1) * sqrt(ppy)
  MetricValue sharpe;            // mean(r) / std(r, ddof=1) * sqrt(ppy), rf = 0
  MetricValue sortino;           // mean(r) / sqrt(mean(min(r,0)^2)) * sqrt(ppy)
  MetricValue max_drawdown;      // max (peak - E) / peak, a fraction >= 0
  MetricValue calmar;            // annualised return / max_drawdown
  MetricValue trades;            // fills in the window
  MetricValue win_rate;          // periods with r > 0 / periods with r != 0
  MetricValue profit_factor;     // sum of gains / sum of losses (money)
  MetricValue gain_to_pain;      // sum(r) / |sum of negative r|
  MetricValue time_under_water;  // longest stretch below a previous peak, in days
  MetricValue periods;           // number of returns in the window
  MetricValue periods_per_year;  // the annualisation factor used
  std::vector<std::pair<Duration, MetricValue>> worst_loss;  // per requested window

  // Looks a metric up by its DSL name ("sharpe", "return", "max_drawdown", ...;
  // see metric_names()). worst_loss needs `arg`. nullopt for an unknown name or a
  // worst_loss window that was not computed.
  std::optional<MetricValue> get(std::string_view name,
                                 std::optional<Duration> arg = std::nullopt) const;
};

// Every metric name get() accepts, in display order.
std::span<const std::string_view> metric_names();

// What a metric's number counts, for tables people read ("days", "fraction"):
// docs/metrics.md has the definitions. "" for an unknown name. worst_loss(w)
// rows go by "worst_loss".
std::string_view metric_unit(std::string_view name);

// Every metric of `m` by the name people see, in display order, worst_loss
// once per computed window ("worst_loss(1d)"): the rows of `qmtl metrics`.
std::vector<std::pair<std::string, MetricValue>> metric_rows(const Metrics& m);

// Computes every metric over the options' window.
Metrics compute_metrics(const ReturnSeries& series, const MetricsOptions& options = {});

// compute_metrics for many series, spread over `threads` threads (0 = hardware).
std::vector<Metrics> compute_metrics_many(std::span<const ReturnSeries> series,
                                          const MetricsOptions& options, unsigned threads = 0);

}  // namespace qmtl::metrics
