// Built-in indicators as incremental state machines: one update per new value,
// O(1) each, no allocation after construction, so a backtest can push millions
// of bars through a strategy per second.
//
// update() returns the indicator's value once it has seen enough input (its
// warm-up) and std::nullopt before that, or when the value is undefined (a
// z-score of a constant window). Inputs must be finite; callers (the DAG)
// refuse the rest before they get here.
//
// Definitions (docs/sdk.md):
//   Returns       x_t / x_{t-1} - 1; from the 2nd value
//   Sma(n)        mean of the last n values (a compensated sum); from the n-th
//   Ema(n)        alpha = 2 / (n + 1), seeded with the SMA of the first n
//                 values; from the n-th
//   Rsi(n)        Wilder: average gain and loss over n changes (first as a
//                 simple mean, then smoothed by (n - 1) / n); 100 - 100 / (1 + RS);
//                 100 when there were no losses, 50 when nothing moved; from
//                 the (n + 1)-th value
//   RollingStd(n) sample standard deviation (ddof = 1) of the last n; n >= 2;
//                 0 exactly when the window's values are all equal
//   ZScore(n)     (x - mean) / std over the last n values including x
//   Crossover     +1 when a moves from <= b to > b, -1 from >= b to < b, else 0;
//                 from the 2nd pair
//
// Thread safety: plain values; one instance per thread.
#pragma once

#include <cmath>
#include <cstddef>
#include <optional>
#include <vector>

namespace qmtl::sdk {

// The last n values, oldest overwritten first.
class Ring {
 public:
  explicit Ring(size_t n) : data_(n), cap_(n) {}
  // Adds x; returns the value it replaced, if the ring was full.
  std::optional<double> push(double x) {
    const bool was_full = full();
    const double out = push_or_zero(x);
    return was_full ? std::optional<double>(out) : std::nullopt;
  }
  // Adds x; returns the value it replaced, or 0 while the ring was not full.
  // (A plain double: an optional built and read back at once stalls store
  // forwarding in the hottest loop.)
  double push_or_zero(double x) {
    double out = 0;
    if (size_ == cap_) {
      out = data_[head_];
    } else {
      ++size_;
    }
    data_[head_] = x;
    head_ = head_ + 1 == cap_ ? 0 : head_ + 1;
    return out;
  }
  // The i-th value held (any order); i < size().
  double at(size_t i) const { return data_[i]; }
  bool full() const { return size_ == cap_; }
  size_t size() const { return size_; }
  size_t capacity() const { return cap_; }

 private:
  std::vector<double> data_;
  size_t cap_;  // data_.size(), kept apart: read on every push
  size_t head_ = 0;
  size_t size_ = 0;
};

class Returns {
 public:
  std::optional<double> update(double x) {
    std::optional<double> r;
    if (prev_) r = x / *prev_ - 1;
    prev_ = x;
    return r;
  }

 private:
  std::optional<double> prev_;
};

// Running sums drift by rounding over millions of updates; they are summed
// again from the window this often (in window lengths), which keeps updates O(1)
// on average.
inline constexpr size_t kResumEvery = 64;

// The window's sum is compensated (Neumaier's variant of Kahan summation, as
// pandas' rolling mean is): the value that enters and the one that leaves are
// added separately, and the rounding error of each addition is carried. Two
// averages that are equal in exact arithmetic then compare equal, where a
// plain running sum let rounding decide a crossover (the example SMA crossover
// on ttrc bought a day early).
class Sma {
 public:
  explicit Sma(size_t n) : ring_(n), n_(static_cast<double>(n)), resum_every_(kResumEvery * n) {}
  // Inline: it is the hottest call of a backtest.
  std::optional<double> update(double x) {
    const double old = ring_.push_or_zero(x);
    add(x);
    add(-old);
    if (++since_resum_ >= resum_every_) resum();
    if (!ring_.full()) return std::nullopt;
    return (sum_ + comp_) / n_;
  }

 private:
  void add(double v) {
    const double t = sum_ + v;
    comp_ += std::abs(sum_) >= std::abs(v) ? (sum_ - t) + v : (v - t) + sum_;
    sum_ = t;
  }
  void resum();
  Ring ring_;
  double n_;
  size_t resum_every_;
  double sum_ = 0, comp_ = 0;  // the sum is sum_ + comp_
  size_t since_resum_ = 0;
};

class Ema {
 public:
  explicit Ema(size_t n) : n_(n), alpha_(2.0 / (static_cast<double>(n) + 1)) {}
  std::optional<double> update(double x);

 private:
  size_t n_;
  double alpha_;
  size_t seen_ = 0;
  double value_ = 0;  // the running sum until the n-th value, then the EMA
};

class Rsi {
 public:
  explicit Rsi(size_t n) : n_(n) {}
  std::optional<double> update(double x);

 private:
  size_t n_;
  std::optional<double> prev_;
  size_t changes_ = 0;
  double gain_ = 0, loss_ = 0;
};

// The window's mean and sum of squared deviations (M2) are updated as values
// enter and leave (Welford's update, extended to a sliding window), on the
// values less an anchor (the window's mean when last recomputed), so the
// deviation stays exact far from zero and from the first value seen: a price
// that climbed from 1 to 10,000 and then moves in cents has a deviation of
// cents, not 0. Mean and M2 are recomputed from the window (two passes, which
// also moves the anchor) every kResumEvery windows and whenever M2 falls below
// a thousandth of its peak since (its rounding error is relative to that
// peak). A window whose values are all equal is known to be so exactly (the
// run of equal values is counted), never by a rounding threshold.
class RollingStd {
 public:
  explicit RollingStd(size_t n) : ring_(n) {}
  std::optional<double> update(double x);
  // The mean of the window after the latest update (valid once full).
  double mean() const { return anchor_ + mean_d_; }

 private:
  void recompute();
  Ring ring_;  // the values as given
  double anchor_ = 0;
  double mean_d_ = 0, m2_ = 0;  // of value - anchor
  double m2_peak_ = 0;          // the largest M2 since the last recompute
  double last_ = 0;
  size_t equal_run_ = 0;  // how many of the latest values equal the latest one
  size_t since_resum_ = 0;
};

class ZScore {
 public:
  explicit ZScore(size_t n) : std_(n) {}
  std::optional<double> update(double x) {
    auto s = std_.update(x);
    if (!s || *s == 0) return std::nullopt;
    return (x - std_.mean()) / *s;
  }

 private:
  RollingStd std_;
};

class Crossover {
 public:
  std::optional<double> update(double a, double b) {
    std::optional<double> out;
    if (prev_) {
      const auto [pa, pb] = *prev_;
      out = (pa <= pb && a > b) ? 1.0 : (pa >= pb && a < b) ? -1.0 : 0.0;
    }
    prev_ = std::pair{a, b};
    return out;
  }

 private:
  std::optional<std::pair<double, double>> prev_;
};

}  // namespace qmtl::sdk
