// Performance series: the one shape every metric is computed from.
//
// Backtests, dry-run and live trading all report a time-stamped series of equity,
// PnL or period returns. Each is converted once into a ReturnSeries: period
// returns r_i over (t_{i-1}, t_i], the equity after each period, and the equity
// and time before the first period. Metrics then never care where data came from.
//
// Thread safety: ReturnSeries is a plain value; the functions are pure.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qmtl/core/result.h"
#include "qmtl/core/time.h"

namespace qmtl::metrics {

enum class SeriesKind { kEquity, kPnl, kReturn };

// "equity", "pnl" or "return".
std::string_view series_kind_name(SeriesKind kind);

struct Sample {
  TimePoint ts;
  double value = 0;
};

// A fill (execution) reported by a broker. Only `ts` is used by the metrics so
// far (trade count); the rest is carried for round-trip analysis.
struct Fill {
  TimePoint ts;
  std::string symbol;
  double qty = 0;  // signed: + buy, - sell
  double price = 0;
  double fee = 0;
};

struct ReturnSeries {
  TimePoint start;                         // time of start_equity (see from_samples)
  double start_equity = 1.0;               // equity before the first period, > 0
  std::vector<TimePoint> ts;               // period end times, strictly increasing
  std::vector<double> r;                   // period returns, each > -1
  std::vector<double> equity;              // equity after each period, each > 0
  std::optional<std::vector<Fill>> fills;  // sorted by ts; nullopt = not reported

  size_t size() const { return r.size(); }
};

struct SeriesOptions {
  // Money before the first PnL row. Required for kPnl (returns need a base);
  // for kReturn it scales the equity curve (default 1).
  std::optional<double> initial_equity;
};

// Builds a ReturnSeries from samples in time order.
//   kEquity: the first sample is the starting equity; returns start at the second.
//   kPnl:    each sample is the PnL of the period ending at its time.
//   kReturn: each sample is the return of the period ending at its time.
// For kPnl and kReturn the time before the first period is taken as the first
// timestamp minus the median spacing (the first timestamp itself for one row).
//
// Duplicate timestamps are merged: equity keeps the last value, PnL is summed,
// returns are compounded. Errors (kInvalidArgument, naming the 1-based sample
// index): timestamps out of order, a non-finite value, equity <= 0, a return
// <= -100%, PnL that takes equity to <= 0, kPnl without initial_equity.
Result<ReturnSeries> from_samples(SeriesKind kind, std::span<const Sample> samples,
                                  const SeriesOptions& options = {});
// The same into `out`, whose vectors keep their capacity: building many series
// one after another reuses one allocation (and its pages). On error `out` is
// unspecified.
Result<void> from_samples(SeriesKind kind, std::span<const Sample> samples,
                          const SeriesOptions& options, ReturnSeries& out);

// from_samples over a column of values[i * stride] at ts[i] (an array's
// column read in place, no samples built): the same series and errors as
// from_samples on those samples. Requires ts strictly increasing (with
// duplicates or out of order, use from_samples, which merges or refuses
// them); a NaN is not finite, so a column with gaps is an error here (the
// caller drops those rows and calls from_samples). On error `out` is
// unspecified.
Result<void> from_values(SeriesKind kind, std::span<const TimePoint> ts, const double* values,
                         std::ptrdiff_t stride, const SeriesOptions& options, ReturnSeries& out);

// Periods per year implied by the median spacing d of the timestamps (of an
// even number of gaps, the mean of the middle two):
//   d < 20 h: 252 * (1 d / d)  (intraday bars over 252 trading days)
//   20 h <= d < 4 d: 252 (daily; weekends and holidays widen some gaps)
//   4 d <= d < 10 d: 52;   10 d <= d < 20 d: 26;   20 d <= d < 45 d: 12
//   45 d <= d < 120 d: 4;  otherwise 1.
// nullopt for fewer than two timestamps.
std::optional<double> infer_periods_per_year(std::span<const TimePoint> ts);

}  // namespace qmtl::metrics
