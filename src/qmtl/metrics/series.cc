#include "qmtl/metrics/series.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

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
  out.start = TimePoint{};
  out.start_equity = 1.0;
  out.ts.clear();
  out.r.clear();
  out.equity.clear();
  out.fills.reset();
  // Check order and finiteness; merge duplicates (in a copy, only when there
  // are any), so the conversion below sees strictly increasing times.
  bool duplicates = false;
  for (size_t i = 0; i < samples.size(); ++i) {
    const Sample& s = samples[i];
    if (!std::isfinite(s.value)) return bad_sample(i, "value is not a finite number");
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

  if (kind == SeriesKind::kPnl && !options.initial_equity) {
    return make_error(ErrorCode::kInvalidArgument,
                      "PnL samples need an initial equity to turn into returns; give it "
                      "(e.g. --initial-equity 100000)");
  }
  if (options.initial_equity &&
      !(*options.initial_equity > 0 && std::isfinite(*options.initial_equity))) {
    return make_error(ErrorCode::kInvalidArgument, "the initial equity must be a positive number");
  }
  if (rows.empty()) return {};

  size_t first = 0;
  if (kind == SeriesKind::kEquity) {
    if (rows[0].value <= 0) return bad_sample(0, "equity must be positive");
    out.start = rows[0].ts;
    out.start_equity = rows[0].value;
    first = 1;
  } else {
    std::vector<TimePoint> times;
    times.reserve(rows.size());
    for (const auto& s : rows) times.push_back(s.ts);
    out.start = rows[0].ts - median_spacing(times);
    out.start_equity = options.initial_equity.value_or(1.0);
  }

  const size_t n = rows.size() - first;
  out.ts.reserve(n);
  out.r.reserve(n);
  out.equity.reserve(n);
  double prev = out.start_equity;
  for (size_t i = first; i < rows.size(); ++i) {
    const double v = rows[i].value;
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
    out.ts.push_back(rows[i].ts);
    out.r.push_back(kind == SeriesKind::kReturn ? v : eq / prev - 1.0);
    out.equity.push_back(eq);
    prev = eq;
  }
  return {};
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
