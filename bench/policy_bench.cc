// Issue 4 target: 10,000 strategies x 12 metrics through gates + score +
// correlation groups (matrix given) + Top-K + hysteresis in <= 50 ms on one core.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <random>

#include "bench/synthetic.h"
#include "qmtl/policy/selection.h"

namespace {

using namespace qmtl;
using namespace qmtl::policy;

constexpr const char* kPolicy = R"(
gates:
  promote: "return >= 0.02 and sharpe >= 0.5 and trades >= 20 and worst_loss(5m) >= -0.01 and max_drawdown <= 0.3 and win_rate >= 0.45"
  demote: "return < 0 or sharpe < 0.2"
score: "sharpe + 0.1 * win_rate - 0.2 * max_drawdown + 0.05 * sortino + 0.01 * calmar - 0.1 * volatility + 0.01 * profit_factor + 0.01 * gain_to_pain + 0 * daily_pnl"
top_k: {k: 50}
correlation: {max: 0.8, per_group: 1}
hysteresis: {promote_after: 7d, demote_after: 3}
)";

struct World {
  Policy policy;
  std::vector<Candidate> candidates;
  metrics::CorrelationMatrix matrix;
};

const World& world() {
  static const World w = [] {
    World x{.policy = *parse_policy(kPolicy)};
    const size_t n = 10'000;
    const TimePoint now = *parse_timestamp("2026-03-01T00:00:00Z");
    std::mt19937_64 rng(3);
    std::uniform_real_distribution<double> u(0, 1);
    for (size_t i = 0; i < n; ++i) {
      Candidate c;
      c.id = fmt::format("s{}", i);  // ("s" + to_string trips a GCC 12 -Wrestrict false positive)
      c.state = i % 10 == 0 ? CandidateState::kLive : CandidateState::kDryRun;
      c.history = std::chrono::hours(24 * 365);
      c.dry_run_since = now - std::chrono::hours(24 * 60);
      if (c.state == CandidateState::kLive) c.live_since = now - std::chrono::hours(24 * (i % 90));
      for (const auto& ref : x.policy.refs.refs()) {
        const double r = u(rng);
        double v = r;
        if (ref.name == "return") v = r * 0.1 - 0.02;
        if (ref.name == "sharpe") v = r * 3 - 0.5;
        if (ref.name == "trades") v = std::floor(r * 100);
        if (ref.name == "worst_loss") v = -r * 0.02;
        if (ref.name == "max_drawdown") v = r * 0.4;
        c.values.push_back(i % 97 == 0 ? std::nullopt : std::optional<double>(v));  // some missing
      }
      for (int d = 7; d >= 1; --d) {
        c.past.push_back({.at = now - std::chrono::hours(24 * d),
                          .promote_pass = u(rng) < 0.9,
                          .out = u(rng) < 0.3});
      }
      x.candidates.push_back(std::move(c));
    }
    // Correlations from 252 synthetic returns, with every 10th strategy a near copy
    // of the one before so that groups form.
    const size_t t = 252;
    std::vector<double> r(n * t);
    for (size_t i = 0; i < n; ++i) {
      for (size_t k = 0; k < t; ++k) {
        r[i * t + k] = i % 10 == 9 ? r[(i - 1) * t + k] + 1e-4 * bench::synthetic_return(i, k)
                                   : bench::synthetic_return(i, k);
      }
    }
    x.matrix = metrics::correlation_matrix(r, n, t);
    return x;
  }();
  return w;
}

void BM_Select10k(benchmark::State& state) {
  const World& w = world();
  const EvalContext ctx{.now = *parse_timestamp("2026-03-01T00:00:00Z")};
  size_t live = 0, ranked = 0;
  for (auto _ : state) {
    auto s = select(w.policy, w.candidates, ctx, {.matrix = &w.matrix});
    live = s.live.size();
    ranked = static_cast<size_t>(
        std::count_if(s.results.begin(), s.results.end(),
                      [](const StrategyResult& r) { return r.rank.has_value(); }));
    benchmark::DoNotOptimize(s);
  }
  state.counters["ranked"] = static_cast<double>(ranked);
  state.counters["live"] = static_cast<double>(live);
}
BENCHMARK(BM_Select10k)->Unit(benchmark::kMillisecond);

}  // namespace
