// Issue 5 targets: ingest >= 200,000 performance points/s in batches, and
// evaluate a world of 1,000 strategies with one year of daily points each (read
// from SQLite, metrics, policy, persist the run) in <= 1 s. Real SQLite file in
// $TMPDIR, WAL, synchronous=NORMAL: the embedded default.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>

#include "bench/synthetic.h"
#include "qmtl/scheduler/scheduler.h"
#include "qmtl/store/sql_store.h"
#include "qmtl/world/world_service.h"

namespace {

using namespace qmtl;
using std::chrono::hours;

// SQLite in a temporary directory, or with QMTL_BENCH_PG=postgres://... a
// fresh schema on that server (bench/store_compare.sh runs both).
struct Db {
  Db() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "qmtl-bench-XXXXXX").string();
    dir = mkdtemp(tmpl.data());
    std::string url = "sqlite:" + dir + "/bench.db";
    if (const char* pg = std::getenv("QMTL_BENCH_PG"); pg != nullptr && *pg != '\0') {
      static int n = 0;
      const std::string schema = fmt::format("bench_{}_{}", getpid(), ++n);
      auto admin = store::open_sql_db(pg);
      if (!admin || !(*admin)->exec(fmt::format("CREATE SCHEMA {}", schema))) std::abort();
      // pg may carry options already (e.g. synchronous_commit).
      const std::string base(pg);
      const auto opt = base.find("options=");
      url = opt == std::string::npos ? fmt::format("{}?options=-c%20search_path%3D{}", base, schema)
                                     : fmt::format("{}%20-c%20search_path%3D{}", base, schema);
    }
    auto s = store::open_store(url);
    if (!s) {
      fmt::print(stderr, "{}\n", s.error().message);
      std::abort();
    }
    store = std::move(*s);
  }
  ~Db() { std::filesystem::remove_all(dir); }
  std::string dir;
  std::unique_ptr<store::Store> store;
};

// World "w" gets n DryRun strategies with a year of daily points each, ending now.
void seed_dry_run_strategies(world::WorldService& svc, const Clock& clock, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const std::string id = fmt::format("s{}", i);
    (void)svc.submit_strategy({.id = id, .world = "w", .spec = "{}"});
    (void)svc.apply_strategy_event(id, lifecycle::StrategyEvent::kSubmit, "bench", "");
    (void)svc.apply_strategy_event(id, lifecycle::StrategyEvent::kValidationPassed, "bench", "");
    std::vector<world::PerformancePoint> pts;
    double eq = 100;
    for (size_t k = 0; k <= 365; ++k) {
      pts.push_back({clock.now() - hours(24 * static_cast<int64_t>(365 - k)), eq});
      eq *= 1 + bench::synthetic_return(i, k);
    }
    (void)svc.record_performance(id, pts, {});
  }
}

void BM_IngestPoints(benchmark::State& state) {
  const auto batch = static_cast<size_t>(state.range(0));
  Db db;
  FakeClock clock(*parse_timestamp("2026-01-01T00:00:00Z"));
  world::WorldService svc(*db.store, clock);
  (void)svc.create_world({.id = "w"});
  (void)svc.submit_strategy({.id = "s", .world = "w", .spec = "{}"});
  TimePoint t = clock.now();
  std::vector<world::PerformancePoint> pts(batch);
  size_t total = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < batch; ++i) {
      t += std::chrono::seconds(1);
      pts[i] = {t, 100.0 + static_cast<double>(i % 97)};
    }
    if (!svc.record_performance("s", pts, {})) state.SkipWithError("ingest failed");
    total += batch;
  }
  state.counters["points/s"] =
      benchmark::Counter(static_cast<double>(total), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_IngestPoints)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_EvaluateWorld(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  Db db;
  FakeClock clock(*parse_timestamp("2026-01-01T00:00:00Z"));
  world::WorldService svc(*db.store, clock);
  (void)svc.create_world({.id = "w"});
  (void)svc.add_policy("w",
                       "evaluation: {window: 4w}\n"
                       "gates: {promote: 'return >= 0.01 and sharpe >= 1 and max_drawdown <= 0.2', "
                       "demote: 'sharpe < 0.5'}\n"
                       "score: 'sharpe + 0.1 * win_rate'\ntop_k: {k: 10}\n"
                       "hysteresis: {promote_after: 2, demote_after: 2}\n",
                       "bench");
  seed_dry_run_strategies(svc, clock, n);
  size_t runs = 0;
  for (auto _ : state) {
    auto run = svc.evaluate_world("w", "bench");
    if (!run) state.SkipWithError(run.error().message.c_str());
    clock.advance(std::chrono::minutes(1));
    ++runs;
  }
  state.counters["strategies"] = static_cast<double>(n);
}
BENCHMARK(BM_EvaluateWorld)->Arg(1000)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);

// Issue 9: a world of N DryRun strategies with a year of daily points each,
// evaluated and applied end to end by the scheduler at a due tick (read,
// metrics, gates, Top-K with correlation groups, persist the run with the
// schedule, two-phase apply of the promotions), target <= 2 s for 10,000.
void BM_ScheduledTick(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  Db db;
  FakeClock clock(*parse_timestamp("2026-01-01T00:00:00Z"));
  world::WorldService svc(*db.store, clock);
  (void)svc.create_world({.id = "w"});
  (void)svc.add_policy("w",
                       "evaluation: {every: 1d, window: 4w}\n"
                       "gates: {promote: 'return >= 0.01 and sharpe >= 1 and max_drawdown <= 0.2', "
                       "demote: 'sharpe < 0.5'}\n"
                       "score: 'sharpe + 0.1 * win_rate'\ntop_k: {k: 10}\n"
                       "correlation: {max: 0.8, per_group: 1}\n",
                       "bench");
  seed_dry_run_strategies(svc, clock, n);
  scheduler::Scheduler sched(svc, clock);
  (void)sched.tick();  // first sight: the next midnight
  size_t promoted = 0;
  for (auto _ : state) {
    state.PauseTiming();
    clock.set(**sched.next_due());
    state.ResumeTiming();
    auto out = sched.tick();
    if (!out || out->size() != 1 || out->front().kind != scheduler::TickOutcome::Kind::kEvaluated) {
      state.SkipWithError(out && !out->empty() ? out->front().message.c_str() : "no run");
      break;
    }
    state.PauseTiming();
    auto applied = svc.list_strategies("w");
    promoted = 0;
    for (const auto& s : *applied) promoted += s.state == lifecycle::StrategyState::kLive;
    state.ResumeTiming();
  }
  state.counters["strategies"] = static_cast<double>(n);
  state.counters["live"] = static_cast<double>(promoted);
}
BENCHMARK(BM_ScheduledTick)
    ->Arg(1000)
    ->Arg(10000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

}  // namespace
