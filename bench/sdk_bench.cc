// Backtest throughput of the strategy DAG: an SMA crossover (fast SMA, slow SMA,
// crossover: three indicators) over a synthetic random walk of bars.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "qmtl/sdk/dag.h"

namespace {

using qmtl::sdk::Dag;
using qmtl::sdk::IndicatorKind;

void BM_SmaCrossover(benchmark::State& state) {
  const auto bars = static_cast<size_t>(state.range(0));
  std::vector<double> prices(bars);
  std::mt19937_64 rng(42);
  std::normal_distribution<double> step(0, 1);
  double p = 1000;
  for (auto& x : prices) x = (p += step(rng));
  const auto t0 = *qmtl::parse_timestamp("2020-01-01T00:00:00Z");
  uint64_t updates = 0;
  for (auto _ : state) {
    Dag dag;
    dag.input("close", std::chrono::minutes(1), 1);
    dag.indicator("fast", IndicatorKind::kSma, {"close"}, 10);
    dag.indicator("slow", IndicatorKind::kSma, {"close"}, 30);
    dag.indicator("cross", IndicatorKind::kCrossover, {"fast", "slow"});
    if (!dag.build()) state.SkipWithError("build failed");
    for (size_t i = 0; i < bars; ++i) {
      (void)dag.push("close", t0 + std::chrono::minutes(i), prices[i]);
    }
    dag.finish();
    updates += dag.updates();
  }
  state.counters["node_updates_per_s"] =
      benchmark::Counter(static_cast<double>(updates), benchmark::Counter::kIsRate);
  state.SetItemsProcessed(static_cast<int64_t>(bars) * state.iterations());
}
BENCHMARK(BM_SmaCrossover)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond);

}  // namespace
