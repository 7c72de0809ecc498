#include "qmtl/metrics/downsample.h"

#include <algorithm>

namespace qmtl::metrics {

std::vector<size_t> downsample_min_max(std::span<const double> values, size_t max_points) {
  const size_t n = values.size();
  std::vector<size_t> keep;
  if (n <= max_points) {
    keep.resize(n);
    for (size_t i = 0; i < n; ++i) keep[i] = i;
    return keep;
  }
  if (n == 0 || max_points == 0) return keep;
  keep.push_back(0);
  if (max_points < 4 || n == 1) {
    if (n > 1 && max_points > 1) keep.push_back(n - 1);
    return keep;
  }
  // Runs over the interior [1, n-1); run b is [1 + b*inner/runs, 1 + (b+1)*inner/runs).
  const size_t inner = n - 2;
  const size_t runs = (max_points - 2) / 2;
  keep.reserve(2 * runs + 2);
  for (size_t b = 0; b < runs; ++b) {
    const size_t lo = 1 + b * inner / runs;
    const size_t hi = 1 + (b + 1) * inner / runs;
    if (lo >= hi) continue;
    size_t min_at = lo, max_at = lo;
    for (size_t i = lo + 1; i < hi; ++i) {
      if (values[i] < values[min_at]) min_at = i;
      if (values[i] > values[max_at]) max_at = i;
    }
    if (min_at == max_at) {
      keep.push_back(min_at);
    } else {
      keep.push_back(std::min(min_at, max_at));
      keep.push_back(std::max(min_at, max_at));
    }
  }
  keep.push_back(n - 1);
  return keep;
}

}  // namespace qmtl::metrics
