#include "qmtl/metrics/correlation.h"

#include <cblas.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <memory>

namespace qmtl::metrics {
namespace {

// Centres x in place and returns its norm; 0 means it does not vary.
double centre(std::span<double> x) {
  double mean = 0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(x.size());
  double ss = 0;
  for (double& v : x) {
    v -= mean;
    ss += v * v;
  }
  const double norm = std::sqrt(ss);
  // Rounding noise of a constant series is not variation.
  return norm <= 1e-12 * std::max(std::abs(mean), 1e-300) * std::sqrt(static_cast<double>(x.size()))
             ? 0.0
             : norm;
}

}  // namespace

MetricValue correlation(const ReturnSeries& a, const ReturnSeries& b,
                        std::optional<Duration> window) {
  std::vector<double> x, y;
  std::vector<TimePoint> t;
  size_t i = 0, j = 0;
  while (i < a.ts.size() && j < b.ts.size()) {
    if (a.ts[i] < b.ts[j]) {
      ++i;
    } else if (b.ts[j] < a.ts[i]) {
      ++j;
    } else {
      t.push_back(a.ts[i]);
      x.push_back(a.r[i++]);
      y.push_back(b.r[j++]);
    }
  }
  size_t k = 0;
  if (window && !t.empty()) {
    k = static_cast<size_t>(std::upper_bound(t.begin(), t.end(), t.back() - *window) - t.begin());
  }
  std::span<double> xs = std::span(x).subspan(k), ys = std::span(y).subspan(k);
  if (xs.size() < kMinCorrelationPeriods) {
    return MetricValue::missing("fewer than 3 common periods");
  }
  const double nx = centre(xs), ny = centre(ys);
  if (nx == 0 || ny == 0) return MetricValue::missing("returns do not vary");
  double dot = 0;
  for (size_t p = 0; p < xs.size(); ++p) dot += xs[p] * ys[p];
  return MetricValue::of(std::clamp(dot / (nx * ny), -1.0, 1.0));
}

CorrelationMatrix correlation_matrix(std::span<const double> returns, size_t n, size_t t) {
  assert(returns.size() == n * t);
  CorrelationMatrix m;
  m.n_ = n;
  m.varies_.assign(n, 0);
  if (n == 0) return m;
  // Standardise each row to unit norm so that Z * Z^T is the correlation matrix.
  std::vector<double> z(returns.begin(), returns.end());
  for (size_t i = 0; i < n; ++i) {
    std::span<double> row(z.data() + i * t, t);
    const double norm = t >= kMinCorrelationPeriods ? centre(row) : 0.0;
    m.varies_[i] = norm > 0 ? 1 : 0;
    for (double& v : row) v = norm > 0 ? v / norm : 0.0;
  }
  m.upper_.assign(n * n, 0.0);
  const auto ni = static_cast<blasint>(n), ti = static_cast<blasint>(t);
  // Row-major C = Z Z^T, upper triangle: one dsyrk, half the work of a GEMM.
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, ni, ti, 1.0, z.data(), ti, 0.0,
              m.upper_.data(), ni);
  return m;
}

void use_one_blas_thread() { openblas_set_num_threads(1); }

std::vector<CorrelatedPair> correlated_pairs(std::span<const double> returns, size_t n, size_t t,
                                             double threshold) {
  assert(returns.size() == n * t);
  std::vector<CorrelatedPair> out;
  if (n < 2 || t < kMinCorrelationPeriods) return out;
  std::vector<double> z(returns.begin(), returns.end());
  std::vector<char> varies(n, 0);
  for (size_t i = 0; i < n; ++i) {
    std::span<double> row(z.data() + i * t, t);
    const double norm = centre(row);
    varies[i] = norm > 0 ? 1 : 0;
    for (double& v : row) v = norm > 0 ? v / norm : 0.0;
  }
  constexpr size_t kBlock = 256;
  // Written whole by each GEMM (beta = 0 reads nothing of it): zeroing it
  // first was a tenth of a world replay's instructions.
  const auto c = std::make_unique_for_overwrite<double[]>(std::min(kBlock, n) * n);
  for (size_t b0 = 0; b0 < n; b0 += kBlock) {
    const size_t rows = std::min(kBlock, n - b0);
    const size_t cols = n - b0;  // only columns j >= b0 can hold j > i
    // C (rows x cols) = Z[b0 .. b0+rows) * Z[b0 .. n)^T
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(rows),
                static_cast<blasint>(cols), static_cast<blasint>(t), 1.0, z.data() + b0 * t,
                static_cast<blasint>(t), z.data() + b0 * t, static_cast<blasint>(t), 0.0, c.get(),
                static_cast<blasint>(cols));
    for (size_t r = 0; r < rows; ++r) {
      const size_t i = b0 + r;
      if (!varies[i]) continue;
      for (size_t col = r + 1; col < cols; ++col) {
        const size_t j = b0 + col;
        const double v = std::clamp(c[r * cols + col], -1.0, 1.0);
        if (varies[j] && v >= threshold) out.push_back({i, j, v});
      }
    }
  }
  return out;
}

}  // namespace qmtl::metrics
