// Backtest throughput of the strategy DAG: an SMA crossover (fast SMA, slow SMA,
// crossover: three indicators) over a synthetic random walk of bars.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "qmtl/sdk/dag.h"
#include "qmtl/sdk/runner.h"

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

// One-minute bars of a random walk, generated as they are read: a backtest of
// any length without holding its bars.
class RandomWalkFeed final : public qmtl::sdk::BarFeed {
 public:
  explicit RandomWalkFeed(size_t bars) : left_(bars) {}
  qmtl::Result<qmtl::sdk::FeedItem> next(std::chrono::milliseconds) override {
    using Kind = qmtl::sdk::FeedItem::Kind;
    if (left_ == 0) return qmtl::sdk::FeedItem{.kind = Kind::kEnd};
    --left_;
    const double open = price_;
    // A uniform step in [-1, 1): cheap, so the feed costs little of the time.
    price_ = std::max(1.0, price_ + static_cast<double>(rng_() >> 11) * 0x1p-52 - 1.0);
    item_.kind = Kind::kBar;
    item_.bar.ts += std::chrono::minutes(1);
    item_.bar.open = open;
    item_.bar.close = price_;
    item_.bar.high = std::max(open, price_) + 0.5;
    item_.bar.low = std::max(0.5, std::min(open, price_) - 0.5);
    item_.bar.volume = 1e6;
    return item_;
  }
  std::optional<size_t> size_hint() const override { return left_; }

 private:
  size_t left_;
  double price_ = 1000;
  std::mt19937_64 rng_{42};
  qmtl::sdk::FeedItem item_{
      .bar = {.ts = *qmtl::parse_timestamp("2020-01-01T00:00:00Z"), .symbol = "X"}};
};

// The whole backtest path: the feed, the PaperBroker (fills, marks, equity per
// bar), the DAG and the order rule, as `qmtl backtest` runs it.
void BM_BacktestSmaCrossover(benchmark::State& state) {
  const auto bars = static_cast<size_t>(state.range(0));
  uint64_t updates = 0;
  for (auto _ : state) {
    auto spec = boost::json::parse(R"({
        "inputs": {"close": {"interval": "1m"}},
        "nodes": {"fast": {"indicator": "sma", "input": "close", "n": 10},
                  "slow": {"indicator": "sma", "input": "close", "n": 30},
                  "cross": {"indicator": "crossover", "inputs": ["fast", "slow"]}},
        "orders": {"signal": "cross", "symbol": "X", "qty": 10}})");
    auto strategy = qmtl::sdk::parse_strategy(spec);
    RandomWalkFeed feed(bars);
    auto r = qmtl::sdk::Runner::offline(std::move(*strategy), feed, {});
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      return;
    }
    updates += r->node_updates;
    benchmark::DoNotOptimize(r->account.cash);
  }
  state.counters["node_updates_per_s"] =
      benchmark::Counter(static_cast<double>(updates), benchmark::Counter::kIsRate);
  state.SetItemsProcessed(static_cast<int64_t>(bars) * state.iterations());
}
BENCHMARK(BM_BacktestSmaCrossover)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond);

}  // namespace
