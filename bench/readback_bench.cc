// Issue 22 target: a strategy with five years of minute points (about 650,000)
// answers its performance read-back with max_points=2000 in <= 50 ms and
// <= 200 KB. Measured here as the server does it (the store read, the kind
// filter, the downsampling and the JSON answer) on a real SQLite file in
// $TMPDIR; bench/load/readback_load.sh times the same over HTTP.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <stdlib.h>

#include <filesystem>

#include "bench/synthetic.h"
#include "qmtl/core/json.h"
#include "qmtl/server/shapes.h"
#include "qmtl/world/world_service.h"

namespace {

using namespace qmtl;

struct Seeded {
  explicit Seeded(size_t minutes) : clock(*parse_timestamp("2021-01-01T00:00:00Z")) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "qmtl-bench-XXXXXX").string();
    dir = mkdtemp(tmpl.data());
    store = std::move(*store::open_store("sqlite:" + dir + "/readback.db"));
    svc = std::make_unique<world::WorldService>(*store, clock);
    (void)svc->create_world({.id = "w"});
    (void)svc->submit_strategy({.id = "s", .world = "w", .spec = "{}"});
    (void)svc->apply_strategy_event("s", lifecycle::StrategyEvent::kSubmit, "bench", "");
    (void)svc->apply_strategy_event("s", lifecycle::StrategyEvent::kValidationPassed, "bench", "");
    std::vector<world::PerformancePoint> batch;
    double eq = 100'000;
    for (size_t k = 0; k < minutes; ++k) {
      batch.push_back({clock.now() + std::chrono::minutes(static_cast<int64_t>(k)), eq});
      eq *= 1 + bench::synthetic_return(7, k) / 20;
      if (batch.size() == 10'000 || k + 1 == minutes) {
        if (!svc->record_performance("s", batch, {})) std::abort();
        batch.clear();
      }
    }
  }
  ~Seeded() { std::filesystem::remove_all(dir); }
  std::string dir;
  FakeClock clock;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<world::WorldService> svc;
};

void BM_PerformanceReadback(benchmark::State& state) {
  static Seeded seeded(650'000);
  const auto max_points = static_cast<size_t>(state.range(0));
  size_t bytes = 0;
  for (auto _ : state) {
    auto v = seeded.svc->performance("s", {.max_points = max_points});
    if (!v) {
      state.SkipWithError(v.error().message.c_str());
      break;
    }
    const std::string body = json::dump(server::performance_view_json(*v, std::nullopt));
    bytes = body.size();
    benchmark::DoNotOptimize(body.data());
  }
  state.counters["answer_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_PerformanceReadback)
    ->Arg(2000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

}  // namespace
