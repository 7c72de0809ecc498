// Backtest throughput of the strategy DAG: an SMA crossover (fast SMA, slow SMA,
// crossover: three indicators) and a mix of the richer nodes over a synthetic
// random walk of bars; and the bar reader's speed.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "qmtl/sdk/dag.h"
#include "qmtl/sdk/feed.h"
#include "qmtl/sdk/program.h"
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

// One-minute bars over a random walk of closes generated beforehand (as the
// DAG benchmark above does), each bar built as it is read: the timed loop is
// the backtest's, not the random number generator's, and the bars never all
// sit in memory.
std::vector<double> random_walk(size_t n) {
  std::vector<double> closes(n);
  std::mt19937_64 rng(42);
  std::normal_distribution<double> step(0, 1);
  double p = 1000;
  for (auto& x : closes) x = p = std::max(1.0, p + step(rng));
  return closes;
}

class RandomWalkFeed final : public qmtl::sdk::BarFeed {
 public:
  explicit RandomWalkFeed(const std::vector<double>& closes,
                          qmtl::Duration step = std::chrono::minutes(1))
      : closes_(closes), step_(step) {}
  qmtl::Result<qmtl::sdk::FeedItem> next(std::chrono::milliseconds) override {
    using Kind = qmtl::sdk::FeedItem::Kind;
    if (i_ == closes_.size()) return qmtl::sdk::FeedItem{.kind = Kind::kEnd};
    const double open = i_ == 0 ? closes_[0] : closes_[i_ - 1];
    const double close = closes_[i_++];
    bar_.ts += step_;
    bar_.open = open;
    bar_.close = close;
    bar_.high = std::max(open, close) + 0.5;
    bar_.low = std::max(0.5, std::min(open, close) - 0.5);
    bar_.volume = 1e6;
    return qmtl::sdk::FeedItem{.kind = Kind::kBar, .bar = &bar_};
  }
  std::optional<size_t> size_hint() const override { return closes_.size() - i_; }

 private:
  const std::vector<double>& closes_;
  qmtl::Duration step_;
  size_t i_ = 0;
  qmtl::broker::Bar bar_{.ts = *qmtl::parse_timestamp("2020-01-01T00:00:00Z"), .symbol = "X"};
};

// One backtest of `spec` over `closes` through Runner::offline; false (and the
// benchmark skipped with the reason) when it fails. Adds its node updates.
bool backtest_once(benchmark::State& state, const char* spec, const std::vector<double>& closes,
                   const qmtl::sdk::OfflineOptions& options, uint64_t& updates) {
  auto strategy = qmtl::sdk::parse_strategy(boost::json::parse(spec));
  if (!strategy) {
    state.SkipWithError(strategy.error().message.c_str());
    return false;
  }
  RandomWalkFeed feed(closes);
  auto r = qmtl::sdk::Runner::offline(std::move(*strategy), feed, options);
  if (!r) {
    state.SkipWithError(r.error().message.c_str());
    return false;
  }
  updates += r->node_updates;
  benchmark::DoNotOptimize(r->account.cash);
  return true;
}

void report_rates(benchmark::State& state, uint64_t updates, size_t bars) {
  state.counters["node_updates_per_s"] =
      benchmark::Counter(static_cast<double>(updates), benchmark::Counter::kIsRate);
  state.SetItemsProcessed(static_cast<int64_t>(bars) * state.iterations());
}

// The whole backtest path: the feed, the PaperBroker (fills, marks, equity per
// bar), the DAG and the order rule, as `qmtl backtest` runs it. Arg 1: 1 keeps
// the equity curve in memory (16 bytes a bar), 0 streams it to a sink that
// tracks the drawdown, as a long backtest would.
void BM_BacktestSmaCrossover(benchmark::State& state) {
  const auto closes = random_walk(static_cast<size_t>(state.range(0)));
  const bool keep = state.range(1) != 0;
  uint64_t updates = 0;
  for (auto _ : state) {
    double peak = 0, drawdown = 0;
    qmtl::sdk::OfflineOptions options;
    if (!keep) {
      options.on_point = [&](const qmtl::sdk::EquityPoint& p) {
        peak = std::max(peak, p.equity);
        drawdown = std::max(drawdown, 1 - p.equity / peak);
      };
    }
    if (!backtest_once(state, R"({
        "inputs": {"close": {"interval": "1m"}},
        "nodes": {"fast": {"indicator": "sma", "input": "close", "n": 10},
                  "slow": {"indicator": "sma", "input": "close", "n": 30},
                  "cross": {"indicator": "crossover", "inputs": ["fast", "slow"]}},
        "orders": {"signal": "cross", "symbol": "X", "qty": 10}})",
                       closes, options, updates)) {
      return;
    }
    benchmark::DoNotOptimize(drawdown);
  }
  report_rates(state, updates, closes.size());
}
BENCHMARK(BM_BacktestSmaCrossover)
    ->ArgsProduct({{1'000'000, 10'000'000}, {1, 0}})
    ->ArgNames({"bars", "keep_points"})
    ->Unit(benchmark::kMillisecond);

// The same path with the nodes of issue 24: RSI, Bollinger, ATR, MACD,
// stochastic, comparisons against constants and series, and an `and` of three
// conditions; the orders follow the MACD histogram's crosses of 0. Ten derived
// nodes per bar, reading high, low and close.
void BM_BacktestIndicatorMix(benchmark::State& state) {
  const auto closes = random_walk(static_cast<size_t>(state.range(0)));
  uint64_t updates = 0;
  qmtl::sdk::OfflineOptions options;
  options.on_point = [](const qmtl::sdk::EquityPoint& p) { benchmark::DoNotOptimize(p); };
  for (auto _ : state) {
    if (!backtest_once(state, R"({
        "inputs": {"close": {"interval": "1m"}, "high": {"interval": "1m"},
                   "low": {"interval": "1m"}},
        "nodes": {
          "rsi": {"indicator": "rsi", "input": "close", "n": 14},
          "oversold": {"indicator": "lt", "input": "rsi", "value": 30},
          "band": {"indicator": "bollinger", "input": "close", "n": 20, "output": "lower"},
          "below": {"indicator": "lt", "inputs": ["close", "band"]},
          "atr": {"indicator": "atr", "inputs": ["high", "low", "close"], "n": 14},
          "calm": {"indicator": "lt", "input": "atr", "value": 5},
          "entry": {"indicator": "and", "inputs": ["oversold", "below", "calm"]},
          "k": {"indicator": "stochastic", "inputs": ["high", "low", "close"], "n": 14,
                "output": "k"},
          "hist": {"indicator": "macd", "input": "close", "output": "histogram"},
          "turn": {"indicator": "crossover", "input": "hist", "value": 0}},
        "orders": {"signal": "turn", "symbol": "X", "qty": 10}})",
                       closes, options, updates))
      return;
  }
  report_rates(state, updates, closes.size());
}
BENCHMARK(BM_BacktestIndicatorMix)->Arg(1'000'000)->ArgName("bars")->Unit(benchmark::kMillisecond);

#ifdef QMTL_BREAKOUT_PROGRAM
// A strategy program (sdk/program.h): the C++ example `breakout --serve` over
// daily bars, each bar a round trip on a socket to the child process. Per bar
// it costs the round trip; compare BM_BacktestSmaCrossover's in-process bars.
void BM_BacktestProgram(benchmark::State& state) {
  const auto closes = random_walk(static_cast<size_t>(state.range(0)));
  auto spec =
      qmtl::sdk::program_spec({QMTL_BREAKOUT_PROGRAM, "--serve", "X"}, std::chrono::seconds(5));
  if (!spec) {
    state.SkipWithError(spec.error().message.c_str());
    return;
  }
  for (auto _ : state) {
    auto strategy = qmtl::sdk::load_strategy(*spec);
    if (!strategy) {
      state.SkipWithError(strategy.error().message.c_str());
      return;
    }
    RandomWalkFeed feed(closes, std::chrono::hours(24));
    auto r = qmtl::sdk::Runner::offline(std::move(*strategy), feed, {});
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(r->account.cash);
  }
  state.SetItemsProcessed(static_cast<int64_t>(closes.size()) * state.iterations());
}
BENCHMARK(BM_BacktestProgram)->Arg(100'000)->ArgName("bars")->Unit(benchmark::kMillisecond);
#endif

// Reading bars from CSV text (the floor: the reader before dialects; issue 24):
// Arg 0 plain ISO times with a zone, 1 a Yahoo-style file (Datetime, Adj Close,
// quoted header), 2 ';' with decimal commas and a date and a time column.
std::string bars_csv(size_t rows, int dialect) {
  std::string out;
  out.reserve(rows * 64);
  const char* headers[] = {"timestamp,open,high,low,close,volume\n",
                           "\"Datetime\",\"Open\",\"High\",\"Low\",\"Close\",\"Adj Close\","
                           "\"Volume\"\n",
                           "Date;Time;Open;High;Low;Close;Volume\n"};
  out += headers[dialect];
  const auto t0 = std::chrono::sys_days(std::chrono::year(2020) / 1 / 1);
  double px = 100;
  for (size_t i = 0; i < rows; ++i) {
    const auto t = std::chrono::floor<std::chrono::seconds>(t0 + std::chrono::minutes(i));
    const auto day = std::chrono::floor<std::chrono::days>(t);
    const std::chrono::year_month_day ymd(day);
    const std::chrono::hh_mm_ss hms(t - day);
    const int y = static_cast<int>(ymd.year());
    const unsigned mo = static_cast<unsigned>(ymd.month()), d = static_cast<unsigned>(ymd.day());
    const auto h = hms.hours().count(), mi = hms.minutes().count();
    px += (i % 7 < 3 ? 0.25 : -0.125);
    char line[160];
    int n = 0;
    if (dialect == 0) {
      n = std::snprintf(line, sizeof line,
                        "%04d-%02u-%02uT%02ld:%02ld:00Z,%.2f,%.2f,%.2f,%.2f,%zu\n", y, mo, d,
                        static_cast<long>(h), static_cast<long>(mi), px, px + 1, px - 1, px + 0.5,
                        1000 + i % 100);
    } else if (dialect == 1) {
      n = std::snprintf(line, sizeof line,
                        "%04d-%02u-%02u %02ld:%02ld:00+00:00,%.2f,%.2f,%.2f,%.2f,%.2f,%zu\n", y, mo,
                        d, static_cast<long>(h), static_cast<long>(mi), px, px + 1, px - 1,
                        px + 0.5, px + 0.5, 1000 + i % 100);
    } else {
      n = std::snprintf(line, sizeof line, "%04d%02u%02u;%02ld%02ld00;%.2f;%.2f;%.2f;%.2f;%zu\n", y,
                        mo, d, static_cast<long>(h), static_cast<long>(mi), px, px + 1, px - 1,
                        px + 0.5, 1000 + i % 100);
      for (int k = 0; k < n; ++k) line[k] = line[k] == '.' ? ',' : line[k];
    }
    out.append(line, static_cast<size_t>(n));
  }
  return out;
}

// Before issue 24 the reader gave the bars alone (the floor is measured with
// this same file on the older tree).
const auto bar_count = [](const auto& r) {
  if constexpr (requires { r.bars; }) {
    return r.bars.size();
  } else {
    return r.size();
  }
};

void BM_ParseBarsCsv(benchmark::State& state) {
  const auto text = bars_csv(1'000'000, static_cast<int>(state.range(0)));
  qmtl::sdk::BarCsvOptions options;
  options.time.utc_offset = qmtl::Duration::zero();  // the date and time columns have no zone
  size_t rows = 0;
  for (auto _ : state) {
    auto r = qmtl::sdk::parse_bars_csv(text, "bench.csv", "X", options);
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      return;
    }
    rows += bar_count(*r);
  }
  state.counters["rows_per_s"] =
      benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ParseBarsCsv)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

}  // namespace
