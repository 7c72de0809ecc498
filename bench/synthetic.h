// Deterministic synthetic returns shared by the C++ benchmarks and the Python peer
// (bench/metrics_peer.py computes the same formula), so both time the same data.
#pragma once

#include <cmath>
#include <cstddef>

namespace qmtl::bench {

// Daily return of series i at period k: a hash of (i, k) mapped to a uniform
// value with mean 0.0004 and standard deviation 0.01.
inline double synthetic_return(size_t i, size_t k) {
  const double h =
      std::sin(static_cast<double>(i) * 12.9898 + static_cast<double>(k) * 78.233) * 43758.5453;
  const double u = h - std::floor(h);  // uniform in [0, 1)
  return 0.0004 + 0.01 * std::sqrt(12.0) * (u - 0.5);
}

}  // namespace qmtl::bench
