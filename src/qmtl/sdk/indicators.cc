#include "qmtl/sdk/indicators.h"

#include <algorithm>
#include <cmath>

namespace qmtl::sdk {
void RollingSum::resum() {
  since_resum_ = 0;
  sum_ = comp_ = 0;
  for (size_t i = 0; i < ring_.size(); ++i) add(ring_.at(i));
}

std::optional<double> Ema::update(double x) {
  ++seen_;
  if (seen_ < n_) {
    value_ += x;
    return std::nullopt;
  }
  if (seen_ == n_) {
    value_ = (value_ + x) / static_cast<double>(n_);
  } else {
    value_ += alpha_ * (x - value_);
  }
  return value_;
}

std::optional<double> Rsi::update(double x) {
  if (!prev_) {
    prev_ = x;
    return std::nullopt;
  }
  const double change = x - *prev_;
  prev_ = x;
  const double g = std::max(change, 0.0), l = std::max(-change, 0.0);
  const auto n = static_cast<double>(n_);
  ++changes_;
  if (changes_ < n_) {
    gain_ += g;
    loss_ += l;
    return std::nullopt;
  }
  if (changes_ == n_) {
    gain_ = (gain_ + g) / n;
    loss_ = (loss_ + l) / n;
  } else {
    gain_ = (gain_ * (n - 1) + g) / n;
    loss_ = (loss_ * (n - 1) + l) / n;
  }
  if (loss_ == 0) return gain_ == 0 ? 50.0 : 100.0;
  return 100.0 - 100.0 / (1.0 + gain_ / loss_);
}

void RollingStd::recompute() {
  since_resum_ = 0;
  const auto n = static_cast<double>(ring_.size());
  double sum = 0;
  for (size_t i = 0; i < ring_.size(); ++i) sum += ring_.at(i);
  anchor_ = sum / n;
  double dsum = 0;
  for (size_t i = 0; i < ring_.size(); ++i) dsum += ring_.at(i) - anchor_;
  mean_d_ = dsum / n;
  m2_ = 0;
  for (size_t i = 0; i < ring_.size(); ++i) {
    const double d = ring_.at(i) - anchor_ - mean_d_;
    m2_ += d * d;
  }
  m2_peak_ = m2_;
}

std::optional<double> RollingStd::update(double x) {
  if (ring_.capacity() < 2) return std::nullopt;
  equal_run_ = equal_run_ > 0 && x == last_ ? equal_run_ + 1 : 1;
  last_ = x;
  if (ring_.size() == 0) anchor_ = x;
  const bool was_full = ring_.full();
  const double old = ring_.push_or_zero(x);
  const auto n = static_cast<double>(ring_.size());
  const double d = x - anchor_;
  if (!was_full) {
    // Growing: Welford's update.
    const double delta = d - mean_d_;
    mean_d_ += delta / n;
    m2_ += delta * (d - mean_d_);
  } else {
    // Sliding: d replaces od; the mean moves by (d - od) / n and M2 by
    // (d - od) * (d - new mean + od - old mean).
    const double od = old - anchor_;
    const double prev = mean_d_;
    mean_d_ += (d - od) / n;
    m2_ += (d - od) * (d - mean_d_ + od - prev);
  }
  // M2's rounding error is relative to the largest M2 since the last
  // recompute: when the deviation collapses (a climb that turns flat), three
  // lost digits are reason enough to recompute the window exactly.
  m2_peak_ = std::max(m2_peak_, m2_);
  if (++since_resum_ >= kResumEvery * ring_.capacity() || m2_ < 1e-3 * m2_peak_) recompute();
  if (!ring_.full()) return std::nullopt;
  if (equal_run_ >= ring_.size()) {
    // Exactly: every value in the window is x.
    anchor_ = x;
    mean_d_ = m2_ = m2_peak_ = 0;
    return 0.0;
  }
  return std::sqrt(std::max(m2_, 0.0) / (n - 1));
}

Bollinger::Bollinger(size_t n, double k, bool sample, Line line)
    : std_(n),
      k_(k),
      scale_(sample ? 1.0 : std::sqrt(static_cast<double>(n - 1) / static_cast<double>(n))),
      line_(line) {}

std::optional<double> Bollinger::update(double x) {
  const auto sd_sample = std_.update(x);
  if (!sd_sample) return std::nullopt;
  const double mid = std_.mean();
  const double width = k_ * *sd_sample * scale_;
  switch (line_) {
    case Line::kUpper:
      return mid + width;
    case Line::kLower:
      return mid - width;
    case Line::kPctB: {
      if (width == 0) return std::nullopt;
      const double lower = mid - width;
      return (x - lower) / (mid + width - lower);
    }
    default:
      return mid;
  }
}

std::optional<double> Macd::update(double x) {
  const auto f = fast_.update(x);
  const auto s = slow_.update(x);
  if (!f || !s) return std::nullopt;
  const double line = percent_ ? 100 * (*f / *s - 1) : *f - *s;
  if (line_ == Line::kMain) return line;
  const auto signal = signal_.update(line);
  if (!signal) return std::nullopt;
  return line_ == Line::kSignal ? *signal : line - *signal;
}

std::optional<double> Stochastic::update(double high, double low, double close) {
  const auto hh = high_.update(high);
  const auto ll = low_.update(low);
  if (!hh || !ll || *hh == *ll) return std::nullopt;
  const double k = 100 * (close - *ll) / (*hh - *ll);
  if (line_ != Line::kD) return k;
  return d_.update(k);
}

}  // namespace qmtl::sdk
