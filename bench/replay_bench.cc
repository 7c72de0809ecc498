// Issue 23 target: a world of 1,000 strategies evaluated daily for a year
// (365 recorded runs, each applied by the scheduler) replayed in <= 2 s, by
// the recorded policy and by a candidate. Real SQLite file in $TMPDIR.
//
// The world is built once (the scheduler's real ticks: about a minute); each
// benchmark then times WorldService::replay alone, reads included. With
// QMTL_REPLAY_BENCH_DB=path the world is kept in that file: built there when
// it does not exist, reused when it does (for profiling the replay alone).
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <stdlib.h>

#include <filesystem>

#include "bench/synthetic.h"
#include "qmtl/metrics/correlation.h"
#include "qmtl/scheduler/scheduler.h"
#include "qmtl/store/store.h"
#include "qmtl/world/world_service.h"

namespace {

using namespace qmtl;
using std::chrono::hours;

constexpr size_t kStrategies = 1000;
constexpr int kDays = 365;
constexpr int kLookback = 35;  // points before the first run: the 4w window and a week

const char* kPolicy =
    "evaluation: {every: 1d, window: 4w}\n"
    "gates: {promote: 'return >= 0.01 and sharpe >= 1 and max_drawdown <= 0.2', "
    "demote: 'sharpe < 0.5'}\n"
    "score: 'sharpe + 0.1 * win_rate'\ntop_k: {k: 10}\n"
    "correlation: {max: 0.8, per_group: 1}\n"
    "hysteresis: {promote_after: 2, demote_after: 2}\n";

struct World {
  World() : clock(*parse_timestamp("2025-01-01T00:00:00Z")) {
    metrics::use_one_blas_thread();  // as `qmtl serve` does
    std::string path;
    if (const char* keep = getenv("QMTL_REPLAY_BENCH_DB"); keep != nullptr && *keep != 0) {
      path = keep;
    } else {
      std::string tmpl = (std::filesystem::temp_directory_path() / "qmtl-replay-XXXXXX").string();
      dir = mkdtemp(tmpl.data());
      path = dir + "/bench.db";
    }
    const bool reuse = std::filesystem::exists(path);
    store = std::move(*store::open_store("sqlite:" + path));
    svc = std::make_unique<world::WorldService>(*store, clock);
    if (!reuse) seed();
  }
  void seed() {
    const TimePoint t0 = clock.now();
    (void)svc->create_world({.id = "w"});
    (void)svc->add_policy("w", kPolicy, "bench");
    for (size_t i = 0; i < kStrategies; ++i) {
      const std::string id = fmt::format("s{}", i);
      (void)svc->submit_strategy({.id = id, .world = "w", .spec = "{}"});
      (void)svc->apply_strategy_event(id, lifecycle::StrategyEvent::kSubmit, "bench", "");
      (void)svc->apply_strategy_event(id, lifecycle::StrategyEvent::kValidationPassed, "b", "");
      // Daily points through the year, each known from its own time (as a
      // runner posting at the close would make them).
      std::vector<world::PerformancePoint> pts;
      double eq = 100;
      for (int k = -kLookback; k <= kDays; ++k) {
        pts.push_back({t0 + hours(24 * k), eq});
        eq *= 1 + bench::synthetic_return(i, static_cast<size_t>(k + kLookback));
      }
      (void)store->append_performance(id, pts, {});
    }
    scheduler::Scheduler sched(*svc, clock);
    (void)sched.tick();
    for (int d = 0; d < kDays; ++d) {
      clock.set(**sched.next_due());
      auto out = sched.tick();
      if (!out || out->empty() || out->front().kind != scheduler::TickOutcome::Kind::kEvaluated) {
        fmt::print(stderr, "the seeding tick failed on day {}\n", d);
        std::abort();
      }
    }
  }
  ~World() {
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
  std::string dir;
  FakeClock clock;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<world::WorldService> svc;
};

World& world_once() {
  static World w;
  return w;
}

void run_replay(benchmark::State& state, const world::ReplayOptions& opt) {
  auto& w = world_once();
  size_t runs = 0, differences = 0, promotions = 0;
  for (auto _ : state) {
    auto r = w.svc->replay("w", opt);
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      break;
    }
    runs = r->runs;
    differences = r->differences.size();
    promotions = r->replayed.promotions;
  }
  state.counters["runs"] = static_cast<double>(runs);
  state.counters["strategies"] = static_cast<double>(kStrategies);
  state.counters["differences"] = static_cast<double>(differences);
  state.counters["promotions"] = static_cast<double>(promotions);
}

void BM_ReplayRecorded(benchmark::State& state) { run_replay(state, {}); }
BENCHMARK(BM_ReplayRecorded)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

// Half the slots: fewer promotions, and the differences explained.
void BM_ReplayCandidate(benchmark::State& state) {
  std::string half = kPolicy;
  half.replace(half.find("k: 10"), 5, "k: 5");
  run_replay(state, {.policy = half});
}
BENCHMARK(BM_ReplayCandidate)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace
