// Pearson correlation of strategies' period returns.
//
// Pairwise: the two series are aligned on their common period-end timestamps.
// Bulk: N series already aligned on T common periods, computed as one symmetric
// rank-T update (BLAS dsyrk), which is what makes 10,000 x 10,000 feasible.
//
// Thread safety: pure functions. correlation_matrix may use several BLAS threads.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "qmtl/metrics/kpi.h"
#include "qmtl/metrics/series.h"

namespace qmtl::metrics {

// Fewer common periods than this gives a missing correlation.
inline constexpr size_t kMinCorrelationPeriods = 3;

// Correlation of the returns of `a` and `b` over the periods both report,
// restricted to those ending after (latest common timestamp - window) if given.
// Missing with fewer than kMinCorrelationPeriods common periods or when either
// side does not vary.
MetricValue correlation(const ReturnSeries& a, const ReturnSeries& b,
                        std::optional<Duration> window = std::nullopt);

class CorrelationMatrix {
 public:
  CorrelationMatrix() = default;
  size_t size() const { return n_; }
  // Correlation of series i and j; nullopt when either does not vary. (i, i) is 1
  // for a varying series.
  // Inline: the selection pipeline calls it for every pair of ranked strategies.
  std::optional<double> at(size_t i, size_t j) const {
    assert(i < n_ && j < n_);
    if (!varies_[i] || !varies_[j]) return std::nullopt;
    if (i > j) std::swap(i, j);
    return std::clamp(upper_[i * n_ + j], -1.0, 1.0);
  }

 private:
  friend CorrelationMatrix correlation_matrix(std::span<const double>, size_t, size_t);
  size_t n_ = 0;
  std::vector<double> upper_;  // row-major n x n; only i <= j is filled
  std::vector<char> varies_;
};

// `returns` holds n series of t aligned returns each, row-major (series i is
// returns[i*t .. i*t+t)). Requires returns.size() == n * t.
CorrelationMatrix correlation_matrix(std::span<const double> returns, size_t n, size_t t);

// Makes every later BLAS product (correlation_matrix, correlated_pairs) run on
// the calling thread. For processes whose products are many and small (a
// server's evaluations and replays: strategies x days in a window): between
// products OpenBLAS's threads busy-wait and take the cores that the caller's
// own threads need (a world replay took 1.2-1.4 s with them held to one
// thread, 1.6-2.1 s without). Process-wide, like OpenBLAS's setting it
// changes: call at start, before any thread uses BLAS. Not thread-safe.
void use_one_blas_thread();

// The pairs (i < j) of the n aligned series (as for correlation_matrix) whose
// correlation is at least `threshold`, computed in blocks of rows (GEMM) so that
// memory stays O(n * block) instead of n x n: what a correlation limit needs
// from thousands of strategies. Series that do not vary pair with nothing.
struct CorrelatedPair {
  size_t i, j;
  double value;
};
std::vector<CorrelatedPair> correlated_pairs(std::span<const double> returns, size_t n, size_t t,
                                             double threshold);

}  // namespace qmtl::metrics
