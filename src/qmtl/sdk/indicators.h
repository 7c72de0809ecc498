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
//                 from the 2nd pair (b may be a constant level)
//   RollingMax(n) / RollingMin(n)  the largest / smallest of the last n; from
//                 the n-th
//   Roc(n)        x_t / x_{t-n} - 1, or log(x_t / x_{t-n}) when `log`; from
//                 the (n + 1)-th
//   Bollinger(n, k)  middle = SMA(n); upper/lower = middle +/- k * sd, sd the
//                 population deviation (ddof = 0, as TTR's BBands) unless
//                 `sample`; pct_b = (x - lower) / (upper - lower), missing
//                 when sd = 0; n >= 2; from the n-th
//   Atr(n)        true range max(h, c_prev) - min(l, c_prev) from the 2nd bar,
//                 Wilder-smoothed: the mean of the first n true ranges, then
//                 atr += (tr - atr) / n; from the (n + 1)-th bar
//   Macd(f, s, g) line = EMA(f) - EMA(s) (100 (EMA(f) / EMA(s) - 1) when
//                 `percent`), from the s-th; signal = EMA(g) of the line,
//                 from the (s + g - 1)-th; histogram = line - signal
//   Stochastic(n, g)  %K = 100 (c - lowest low) / (highest high - lowest low)
//                 over n bars, from the n-th, missing when the range is 0;
//                 %D = SMA(g) of %K
//   Donchian(n)   upper = highest high, lower = lowest low over n bars,
//                 middle = their mean; from the n-th
//   Vwap(n)       sum(price * volume) / sum(volume) over the last n (sums
//                 compensated); missing when the volume sum is 0
//
// Thread safety: plain values; one instance per thread.
#pragma once

#include <algorithm>
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

// The sum of the last n values, compensated (Neumaier's variant of Kahan
// summation, as pandas' rolling mean is): the value that enters and the one
// that leaves are added separately, and the rounding error of each addition is
// carried. Two averages that are equal in exact arithmetic then compare equal,
// where a plain running sum let rounding decide a crossover (the example SMA
// crossover on ttrc bought a day early).
class RollingSum {
 public:
  explicit RollingSum(size_t n) : ring_(n), resum_every_(kResumEvery * n) {}
  // Adds x (the oldest value leaves once n are held); returns the sum of the
  // values held. Inline: through Sma it is the hottest call of a backtest.
  double update(double x) {
    const double old = ring_.push_or_zero(x);
    add(x);
    add(-old);
    if (++since_resum_ >= resum_every_) resum();
    return sum_ + comp_;
  }
  bool full() const { return ring_.full(); }

 private:
  void add(double v) {
    const double t = sum_ + v;
    comp_ += std::abs(sum_) >= std::abs(v) ? (sum_ - t) + v : (v - t) + sum_;
    sum_ = t;
  }
  void resum();
  Ring ring_;
  size_t resum_every_;
  double sum_ = 0, comp_ = 0;  // the sum is sum_ + comp_
  size_t since_resum_ = 0;
};

class Sma {
 public:
  explicit Sma(size_t n) : sum_(n), n_(static_cast<double>(n)) {}
  std::optional<double> update(double x) {
    const double s = sum_.update(x);
    if (!sum_.full()) return std::nullopt;
    return s / n_;
  }

 private:
  RollingSum sum_;
  double n_;
};

class Ema {
 public:
  explicit Ema(size_t n) : Ema(n, 2.0 / (static_cast<double>(n) + 1)) {}
  std::optional<double> update(double x);

 protected:
  // Seeded with the mean of the first n values, then value += alpha (x - value).
  Ema(size_t n, double alpha) : n_(n), alpha_(alpha) {}

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
  Crossover() = default;
  // Crosses of a against a constant level.
  explicit Crossover(double level) : level_(level) {}
  std::optional<double> update(double a) { return update(a, level_); }
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
  double level_ = 0;
  std::optional<std::pair<double, double>> prev_;
};

// The largest (kMax) or smallest value of the last n: a monotonic queue of the
// values that can still be the extreme, O(1) amortized per update, held in a
// ring of n (no allocation after construction).
template <bool kMax>
class RollingExtreme {
 public:
  explicit RollingExtreme(size_t n) : n_(n), seq_(n), val_(n) {}
  std::optional<double> update(double x) {
    const size_t t = count_++;
    if (size_ > 0 && seq_[head_] + n_ <= t) {  // left the window
      head_ = head_ + 1 == n_ ? 0 : head_ + 1;
      --size_;
    }
    // An older value that x equals or beats can never be the extreme again.
    while (size_ > 0 && (kMax ? val_[back()] <= x : val_[back()] >= x)) --size_;
    const size_t at = head_ + size_ < n_ ? head_ + size_ : head_ + size_ - n_;
    seq_[at] = t;
    val_[at] = x;
    ++size_;
    if (count_ < n_) return std::nullopt;
    return val_[head_];
  }

 private:
  size_t back() const {
    return head_ + size_ - 1 < n_ ? head_ + size_ - 1 : head_ + size_ - 1 - n_;
  }
  size_t n_;
  std::vector<size_t> seq_;
  std::vector<double> val_;
  size_t head_ = 0, size_ = 0, count_ = 0;
};
using RollingMax = RollingExtreme<true>;
using RollingMin = RollingExtreme<false>;

class Roc {
 public:
  Roc(size_t n, bool log) : ring_(n), log_(log) {}
  std::optional<double> update(double x) {
    const auto old = ring_.push(x);
    if (!old) return std::nullopt;
    return log_ ? std::log(x / *old) : x / *old - 1;
  }

 private:
  Ring ring_;
  bool log_;
};

// Wilder's smoothing: the mean of the first n values, then v += (x - v) / n
// (an EMA whose alpha is 1 / n, as TTR's EMA with wilder = TRUE).
class Wilder : public Ema {
 public:
  explicit Wilder(size_t n) : Ema(n, 1.0 / static_cast<double>(n)) {}
};

// Which line of an indicator that draws several a node emits.
enum class Line { kMain, kUpper, kMiddle, kLower, kPctB, kSignal, kHistogram, kD };

class Bollinger {
 public:
  Bollinger(size_t n, double k, bool sample, Line line);
  std::optional<double> update(double x);

 private:
  RollingStd std_;
  double k_;
  double scale_;  // sample -> population deviation: sqrt((n - 1) / n), or 1
  Line line_;
};

class Atr {
 public:
  explicit Atr(size_t n) : avg_(n) {}
  std::optional<double> update(double high, double low, double close) {
    std::optional<double> out;
    if (seen_) out = avg_.update(std::max(high, prev_close_) - std::min(low, prev_close_));
    seen_ = true;
    prev_close_ = close;
    return out;
  }

 private:
  Wilder avg_;
  bool seen_ = false;
  double prev_close_ = 0;
};

class Macd {
 public:
  Macd(size_t fast, size_t slow, size_t signal, bool percent, Line line)
      : fast_(fast), slow_(slow), signal_(signal), percent_(percent), line_(line) {}
  std::optional<double> update(double x);

 private:
  Ema fast_, slow_, signal_;
  bool percent_;
  Line line_;
};

class Stochastic {
 public:
  Stochastic(size_t n, size_t signal, Line line) : high_(n), low_(n), d_(signal), line_(line) {}
  std::optional<double> update(double high, double low, double close);

 private:
  RollingMax high_;
  RollingMin low_;
  Sma d_;
  Line line_;
};

class Donchian {
 public:
  Donchian(size_t n, Line line) : high_(n), low_(n), line_(line) {}
  std::optional<double> update(double high, double low) {
    const auto h = high_.update(high);
    const auto l = low_.update(low);
    if (!h || !l) return std::nullopt;
    return line_ == Line::kUpper ? *h : line_ == Line::kLower ? *l : (*h + *l) / 2;
  }

 private:
  RollingMax high_;
  RollingMin low_;
  Line line_;
};

class Vwap {
 public:
  explicit Vwap(size_t n) : pv_(n), v_(n) {}
  std::optional<double> update(double price, double volume) {
    const double pv = pv_.update(price * volume);
    const double v = v_.update(volume);
    if (!v_.full() || v == 0) return std::nullopt;
    return pv / v;
  }

 private:
  RollingSum pv_, v_;
};

}  // namespace qmtl::sdk
