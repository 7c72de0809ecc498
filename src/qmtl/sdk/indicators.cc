#include "qmtl/sdk/indicators.h"

#include <algorithm>
#include <cmath>

namespace qmtl::sdk {
void Sma::resum() {
  since_resum_ = 0;
  sum_ = 0;
  for (size_t i = 0; i < ring_.size(); ++i) sum_ += ring_.at(i);
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

std::optional<double> RollingStd::update(double x) {
  if (ring_.capacity() < 2) return std::nullopt;
  if (!shifted_) {
    shift_ = x;
    shifted_ = true;
  }
  const double d = x - shift_;
  if (const auto old = ring_.push(d)) {
    sum_ -= *old;
    sumsq_ -= *old * *old;
  }
  sum_ += d;
  sumsq_ += d * d;
  if (++since_resum_ >= kResumEvery * ring_.capacity()) {
    since_resum_ = 0;
    sum_ = sumsq_ = 0;
    for (size_t i = 0; i < ring_.size(); ++i) {
      sum_ += ring_.at(i);
      sumsq_ += ring_.at(i) * ring_.at(i);
    }
  }
  if (!ring_.full()) return std::nullopt;
  const auto n = static_cast<double>(ring_.size());
  const double var = (sumsq_ - sum_ * sum_ / n) / (n - 1);
  // A constant window can leave a rounding residue; below this it is zero.
  if (var <= 1e-12 * (sumsq_ / n)) return 0.0;
  return std::sqrt(var);
}

}  // namespace qmtl::sdk
