// Seeds a SQLite database for bench/load/console_load.sh: world "big" with N
// strategies (a third Live, a third DryRun, the rest Inactive, Rejected or
// Archived), 90 daily points each, a policy and one evaluation run, as the
// console's world page would meet them on a large desk.
//
//   console_seed <db file> <strategies>
#include <fmt/format.h>

#include <cstdlib>

#include "bench/synthetic.h"
#include "qmtl/world/world_service.h"

int main(int argc, char** argv) {
  using namespace qmtl;
  using lifecycle::StrategyEvent;
  if (argc != 3) {
    fmt::print(stderr, "usage: console_seed <db file> <strategies>\n");
    return 2;
  }
  const size_t n = std::strtoul(argv[2], nullptr, 10);
  auto store = store::open_store(fmt::format("sqlite:{}", argv[1]));
  if (!store) {
    fmt::print(stderr, "{}\n", store.error().message);
    return 1;
  }
  SystemClock clock;
  world::WorldService s(**store, clock);
  auto ok = [](const auto& r) {
    if (!r) {
      fmt::print(stderr, "{}\n", r.error().message);
      std::exit(1);
    }
  };
  ok(s.create_world({.id = "big", .name = "A large desk"}));
  ok(s.add_policy("big",
                  "gates: {promote: 'sharpe >= 1', demote: 'sharpe < 0'}\n"
                  "score: sharpe\nevaluation: {every: 1d, window: 8w}\n",
                  "bench"));
  for (size_t i = 0; i < n; ++i) {
    const std::string id = fmt::format("s{:04d}", i);
    ok(s.submit_strategy({.id = id, .world = "big", .spec = "{}"}));
    std::vector<StrategyEvent> events{StrategyEvent::kSubmit};
    switch (i % 6) {
      case 0:
      case 1:
        events.insert(events.end(), {StrategyEvent::kValidationPassed, StrategyEvent::kPromote});
        break;
      case 2:
      case 3:
        events.push_back(StrategyEvent::kValidationPassed);
        break;
      case 4:
        events.push_back(StrategyEvent::kValidationFailed);
        break;
      default:
        events.insert(events.end(), {StrategyEvent::kValidationPassed, StrategyEvent::kDeactivate});
    }
    for (auto e : events) ok(s.apply_strategy_event(id, e, "bench", "seeded"));
    std::vector<world::PerformancePoint> pts;
    double eq = 100;
    for (size_t k = 0; k < 90; ++k) {
      pts.push_back({clock.now() - std::chrono::hours(24 * static_cast<int64_t>(90 - k)), eq});
      eq *= 1 + bench::synthetic_return(i, k);
    }
    ok(s.record_performance(id, pts, {}));
  }
  ok(s.evaluate_world("big", "bench"));
  fmt::print("seeded world 'big' with {} strategies in {}\n", n, argv[1]);
  return 0;
}
