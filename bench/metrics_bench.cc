// docs/metrics.md / issue 3 targets on the 2-core machine:
//   all KPIs for 10,000 series x 2,520 daily points  <= 0.5 s
//   10,000 x 10,000 correlation matrix over 252 points <= 2 s
// bench/metrics_peer.py times numpy/pandas on the same synthetic data.
#include <benchmark/benchmark.h>

#include <chrono>
#include <thread>

#include "bench/synthetic.h"
#include "qmtl/metrics/correlation.h"
#include "qmtl/metrics/kpi.h"

namespace {

using namespace qmtl;

std::vector<metrics::ReturnSeries> make_series(size_t n, size_t t) {
  std::vector<metrics::ReturnSeries> out(n);
  const TimePoint start = *parse_timestamp("2000-01-03T00:00:00Z");
  for (size_t i = 0; i < n; ++i) {
    std::vector<metrics::Sample> samples;
    samples.reserve(t + 1);
    double eq = 100.0;
    samples.push_back({start, eq});
    for (size_t k = 0; k < t; ++k) {
      eq *= 1.0 + bench::synthetic_return(i, k);
      samples.push_back({start + std::chrono::hours(24 * static_cast<int64_t>(k + 1)), eq});
    }
    out[i] = *metrics::from_samples(metrics::SeriesKind::kEquity, samples);
  }
  return out;
}

void BM_AllKpis(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0)), t = static_cast<size_t>(state.range(1));
  const auto series = make_series(n, t);
  const metrics::MetricsOptions opts{.worst_loss_windows = {std::chrono::hours(24 * 5)}};
  for (auto _ : state) {
    auto m = metrics::compute_metrics_many(series, opts, 2);
    benchmark::DoNotOptimize(m.data());
  }
  state.counters["points/s"] =
      benchmark::Counter(static_cast<double>(n * t), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_AllKpis)
    ->Args({1000, 2520})
    ->Args({10000, 2520})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

void BM_CorrelationMatrix(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0)), t = static_cast<size_t>(state.range(1));
  std::vector<double> data(n * t);
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < t; ++k) data[i * t + k] = bench::synthetic_return(i, k);
  }
  for (auto _ : state) {
    auto m = metrics::correlation_matrix(data, n, t);
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_CorrelationMatrix)
    ->Args({1000, 252})
    ->Args({10000, 252})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

}  // namespace
