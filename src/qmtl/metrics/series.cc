#include "qmtl/metrics/series.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <functional>

#include "qmtl/core/enum_name.h"

namespace qmtl::metrics {
namespace {

tl::unexpected<Error> bad_sample(size_t index, std::string_view why) {
  return make_error(ErrorCode::kInvalidArgument, fmt::format("sample {}: {}", index + 1, why));
}

// The median of the gaps; of an even number, the mean of the middle two (the
// upper one alone read a short daily file with two long gaps as weekly).
Duration median_spacing(std::span<const TimePoint> ts) {
  std::vector<Duration::rep> gaps;
  gaps.reserve(ts.size());
  for (size_t i = 1; i < ts.size(); ++i) gaps.push_back((ts[i] - ts[i - 1]).count());
  if (gaps.empty()) return Duration::zero();
  auto mid = gaps.begin() + static_cast<std::ptrdiff_t>(gaps.size() / 2);
  std::nth_element(gaps.begin(), mid, gaps.end());
  if (gaps.size() % 2 == 1) return Duration(*mid);
  const auto lower = *std::max_element(gaps.begin(), mid);
  return Duration(lower + (*mid - lower) / 2);
}

constexpr std::string_view kNotFinite = "value is not a finite number";

void reset(ReturnSeries& out) {
  out.start = TimePoint{};
  out.start_equity = 1.0;
  out.ts.clear();
  out.r.clear();
  out.equity.clear();
  out.fills.reset();
}

Result<void> check_options(SeriesKind kind, const SeriesOptions& options) {
  if (kind == SeriesKind::kPnl && !options.initial_equity) {
    return make_error(ErrorCode::kInvalidArgument,
                      "PnL samples need an initial equity to turn into returns; give it "
                      "(e.g. --initial-equity 100000)");
  }
  if (options.initial_equity &&
      !(*options.initial_equity > 0 && std::isfinite(*options.initial_equity))) {
    return make_error(ErrorCode::kInvalidArgument, "the initial equity must be a positive number");
  }
  return {};
}

// The series of `size` rows with strictly increasing times ts_at(i) and
// values value_at(i) (options checked), into `out` (reset). A value that is
// not finite is an error naming its row.
template <typename TsAt, typename ValueAt>
Result<void> convert(SeriesKind kind, size_t size, TsAt ts_at, ValueAt value_at,
                     const SeriesOptions& options, ReturnSeries& out) {
  if (size == 0) return {};
  size_t first = 0;
  if (kind == SeriesKind::kEquity) {
    const double v0 = value_at(0);
    if (!std::isfinite(v0)) return bad_sample(0, kNotFinite);
    if (v0 <= 0) return bad_sample(0, "equity must be positive");
    out.start = ts_at(0);
    out.start_equity = v0;
    first = 1;
  } else {
    std::vector<TimePoint> times;
    times.reserve(size);
    for (size_t i = 0; i < size; ++i) times.push_back(ts_at(i));
    out.start = times[0] - median_spacing(times);
    out.start_equity = options.initial_equity.value_or(1.0);
  }

  const size_t n = size - first;
  out.ts.resize(n);
  out.r.resize(n);
  out.equity.resize(n);
  double prev = out.start_equity;
  for (size_t i = first; i < size; ++i) {
    const double v = value_at(i);
    if (!std::isfinite(v)) return bad_sample(i, kNotFinite);
    double eq = 0;
    switch (kind) {
      case SeriesKind::kEquity:
        if (v <= 0) return bad_sample(i, "equity must be positive");
        eq = v;
        break;
      case SeriesKind::kPnl:
        eq = prev + v;
        if (eq <= 0) {
          return bad_sample(i, "the PnL takes equity to zero or below; check the initial equity");
        }
        break;
      case SeriesKind::kReturn:
        if (v <= -1.0) return bad_sample(i, "a return of -100% or worse");
        eq = prev * (1.0 + v);
        break;
    }
    out.ts[i - first] = ts_at(i);
    out.r[i - first] = kind == SeriesKind::kReturn ? v : eq / prev - 1.0;
    out.equity[i - first] = eq;
    prev = eq;
  }
  return {};
}

}  // namespace

std::string_view series_kind_name(SeriesKind kind) {
  static constexpr std::array<std::string_view, 3> kNames{"equity", "pnl", "return"};
  return enum_name(kind, kNames);
}

Result<ReturnSeries> from_samples(SeriesKind kind, std::span<const Sample> samples,
                                  const SeriesOptions& options) {
  ReturnSeries out;
  if (auto r = from_samples(kind, samples, options, out); !r) return propagate(r);
  return out;
}

Result<void> from_samples(SeriesKind kind, std::span<const Sample> samples,
                          const SeriesOptions& options, ReturnSeries& out) {
  reset(out);
  // Check order and finiteness; merge duplicates (in a copy, only when there
  // are any), so the conversion below sees strictly increasing times.
  bool duplicates = false;
  for (size_t i = 0; i < samples.size(); ++i) {
    const Sample& s = samples[i];
    if (!std::isfinite(s.value)) return bad_sample(i, kNotFinite);
    if (i > 0 && s.ts < samples[i - 1].ts) {
      return bad_sample(i,
                        fmt::format("timestamp {} is earlier than the previous one ({}); "
                                    "sort the rows by time",
                                    format_timestamp(s.ts), format_timestamp(samples[i - 1].ts)));
    }
    duplicates = duplicates || (i > 0 && s.ts == samples[i - 1].ts);
  }
  std::vector<Sample> merged;
  if (duplicates) {
    merged.reserve(samples.size());
    for (size_t i = 0; i < samples.size(); ++i) {
      const Sample& s = samples[i];
      if (merged.empty() || s.ts != merged.back().ts) {
        merged.push_back(s);
        continue;
      }
      double& v = merged.back().value;
      switch (kind) {
        case SeriesKind::kEquity:
          v = s.value;
          break;
        case SeriesKind::kPnl:
          v += s.value;
          break;
        case SeriesKind::kReturn:
          if (s.value <= -1.0 || v <= -1.0) return bad_sample(i, "a return of -100% or worse");
          v = (1.0 + v) * (1.0 + s.value) - 1.0;
          break;
      }
    }
  }
  const std::span<const Sample> rows = duplicates ? std::span<const Sample>(merged) : samples;
  if (auto r = check_options(kind, options); !r) return r;
  return convert(
      kind, rows.size(), [&](size_t i) { return rows[i].ts; },
      [&](size_t i) { return rows[i].value; }, options, out);
}

Result<void> from_values(SeriesKind kind, std::span<const TimePoint> ts, const double* values,
                         std::ptrdiff_t stride, const SeriesOptions& options, ReturnSeries& out) {
  assert(std::adjacent_find(ts.begin(), ts.end(), std::greater_equal<>()) == ts.end());
  reset(out);
  const auto value_at = [&](size_t i) { return values[static_cast<std::ptrdiff_t>(i) * stride]; };
  if (auto r = check_options(kind, options); !r) {
    // As from_samples, which checks the values first.
    for (size_t i = 0; i < ts.size(); ++i) {
      if (!std::isfinite(value_at(i))) return bad_sample(i, kNotFinite);
    }
    return r;
  }
  return convert(
      kind, ts.size(), [&](size_t i) { return ts[i]; }, value_at, options, out);
}

std::optional<double> infer_periods_per_year(std::span<const TimePoint> ts) {
  if (ts.size() < 2) return std::nullopt;
  using std::chrono::hours;
  const Duration d = median_spacing(ts);
  if (d <= Duration::zero()) return std::nullopt;
  const Duration day = hours(24);
  if (d < hours(20)) {
    return 252.0 * static_cast<double>(day.count()) / static_cast<double>(d.count());
  }
  if (d < 4 * day) return 252.0;
  if (d < 10 * day) return 52.0;
  if (d < 20 * day) return 26.0;
  if (d < 45 * day) return 12.0;
  if (d < 120 * day) return 4.0;
  return 1.0;
}

}  // namespace qmtl::metrics
