// Top-K and correlation limits are hard caps (issue #20): at no moment does a
// world have more Live strategies than top_k, nor more than per_group Live in
// one correlation group — checked after every apply and at each of its phases,
// over random worlds and random metric paths, on both stores.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <random>
#include <set>

#include "qmtl/core/json.h"
#include "qmtl/metrics/correlation.h"
#include "qmtl/policy/document.h"
#include "qmtl/world/world_service.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::world {
namespace {

using lifecycle::StrategyEvent;
using lifecycle::StrategyState;
using std::chrono::hours;

Duration days(int n) { return hours(24 * n); }

class CapsTest : public ::testing::Test {
 protected:
  CapsTest()
      : store_(std::move(*store::open_store(testing::fresh_store_url(dir_, "caps.db")))),
        clock_(*parse_timestamp("2026-03-01T00:00:00Z")),
        service_(*store_, clock_) {}

  void add_strategy(const std::string& world, const std::string& id) {
    ASSERT_TRUE(service_.submit_strategy({.id = id, .world = world, .spec = "{}"}));
    for (auto e : {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed}) {
      ASSERT_TRUE(service_.apply_strategy_event(id, e, "setup", ""));
    }
  }
  // Daily points from `returns`, the last one now.
  void record(const std::string& id, const std::vector<double>& returns, double start = 100) {
    std::vector<PerformancePoint> pts;
    double eq = start;
    const auto n = static_cast<int>(returns.size());
    pts.push_back({clock_.now() - days(n), eq});
    for (int i = 0; i < n; ++i) {
      eq *= 1 + returns[static_cast<size_t>(i)];
      pts.push_back({clock_.now() - days(n - 1 - i), eq});
    }
    auto r = service_.record_performance(id, pts, {});
    ASSERT_TRUE(r) << r.error().message;
  }
  std::vector<std::string> live(const std::string& world) {
    std::vector<std::string> out;
    const auto all = *service_.list_strategies(world);  // by value: the loop must not dangle
    for (const auto& s : all) {
      if (s.state == StrategyState::kLive) out.push_back(s.id);
    }
    return out;
  }
  std::map<std::string, StrategyState> states(const std::string& world) {
    std::map<std::string, StrategyState> out;
    const auto all = *service_.list_strategies(world);
    for (const auto& s : all) out[s.id] = s.state;
    return out;
  }
  policy::Policy current_policy(const std::string& world) {
    auto pv = service_.get_policy(world, std::nullopt);
    EXPECT_TRUE(pv);
    return std::get<policy::Policy>(*policy::parse_policy_document(pv->canonical));
  }

  // The caps, checked independently of the selection: the Live set's size,
  // and the connected components of correlation >= max among the Live
  // strategies (each pair correlated from the stored records over the
  // correlation window, as metrics::correlation defines it). With `joined`,
  // only the components holding one of those strategies: correlations move
  // with the data, so two strategies Live together can become correlated
  // between evaluations; what must never happen is that a promotion joins a
  // group that is full, and the next evaluation's switch ends such a breach.
  void expect_within_caps(const std::string& world, const std::string& when,
                          const std::set<std::string>* joined = nullptr) {
    const auto pol = current_policy(world);
    const auto ids = live(world);
    if (pol.top_k) {
      EXPECT_LE(ids.size(), static_cast<size_t>(*pol.top_k))
          << when << ": " << fmt::format("{}", fmt::join(ids, ", "));
    }
    if (!pol.correlation) return;
    const Duration window = pol.correlation->window.value_or(pol.window);
    std::vector<metrics::ReturnSeries> series;
    for (const auto& id : ids) {
      auto pts = store_->load_points(id, clock_.now() - window - days(7));
      std::vector<metrics::Sample> samples;
      for (const auto& p : *pts) samples.push_back({p.ts, p.equity});
      auto built = metrics::from_samples(metrics::SeriesKind::kEquity, samples);
      series.push_back(built ? std::move(*built) : metrics::ReturnSeries{});
    }
    std::vector<size_t> group(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) group[i] = i;
    const auto find = [&](size_t x) {
      while (group[x] != x) x = group[x];
      return x;
    };
    for (size_t i = 0; i < ids.size(); ++i) {
      for (size_t j = i + 1; j < ids.size(); ++j) {
        const auto c = metrics::correlation(series[i], series[j], window);
        if (c.present() && *c.value >= pol.correlation->max) group[find(j)] = find(i);
      }
    }
    std::map<size_t, std::vector<std::string>> members;
    for (size_t i = 0; i < ids.size(); ++i) members[find(i)].push_back(ids[i]);
    for (const auto& [root, m] : members) {
      if (joined != nullptr &&
          std::none_of(m.begin(), m.end(), [&](const auto& id) { return joined->contains(id); })) {
        continue;
      }
      EXPECT_LE(m.size(), static_cast<size_t>(pol.correlation->per_group))
          << when << ": correlated Live strategies " << fmt::format("{}", fmt::join(m, ", "));
    }
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  FakeClock clock_;
  WorldService service_;
};

// The defect as found: with top_k 1, a Live strategy waiting out its
// demotion and its better replacement were Live together.
TEST_F(CapsTest, ReplacementWaitsForTheDemotionToComplete) {
  ASSERT_TRUE(service_.create_world({.id = "w"}));
  ASSERT_TRUE(service_.add_policy("w",
                                  "gates: {promote: 'return >= 0.01', demote: 'return < 0'}\n"
                                  "evaluation: {every: 1d, window: 1w}\ntop_k: {k: 1}\n"
                                  "hysteresis: {demote_after: 3}\n",
                                  "alice"));
  add_strategy("w", "old");
  add_strategy("w", "new");
  ASSERT_TRUE(service_.promote_strategy("old", {.actor = "setup", .reason = "incumbent"}));
  // Returns alternate around their drift, so Sharpe (the score) exists.
  const auto path = [](double drift) {
    std::vector<double> r;
    for (int i = 0; i < 10; ++i) r.push_back(drift + (i % 2 == 0 ? 0.001 : -0.001));
    return r;
  };
  record("old", path(-0.002));
  record("new", path(0.004));
  double old_eq = 100 * std::pow(0.998, 10), new_eq = 100 * std::pow(1.004, 10);
  for (int day = 0; day < 4; ++day) {
    clock_.advance(days(1));
    old_eq *= day % 2 == 0 ? 0.997 : 0.999;
    new_eq *= day % 2 == 0 ? 1.005 : 1.003;
    ASSERT_TRUE(service_.record_performance("old", {{{clock_.now(), old_eq}}}, {}));
    ASSERT_TRUE(service_.record_performance("new", {{{clock_.now(), new_eq}}}, {}));
    auto run = service_.evaluate_world("w", "scheduler");
    ASSERT_TRUE(run) << run.error().message;
    const auto d = *json::parse(run->detail);
    const auto& reasons = json::dump(d.at("strategies").at("new").at("reasons"));
    if (day < 2) {
      EXPECT_EQ(d.at("strategies").at("new").at("decision").as_string(), "HOLD") << day;
      EXPECT_NE(reasons.find("waiting for a slot: old stays Live until its demotion completes"),
                std::string::npos)
          << reasons;
    } else if (day == 2) {
      EXPECT_EQ(d.at("strategies").at("old").at("decision").as_string(), "DEMOTE");
      EXPECT_EQ(d.at("strategies").at("new").at("decision").as_string(), "PROMOTE");
    }
    const WorldService::ApplyHooks hooks{.after_phase = [&](std::string_view phase) {
      expect_within_caps("w", fmt::format("day {} after {}", day, phase));
    }};
    ASSERT_TRUE(service_.apply_run("w", run->id, "scheduler", &hooks));
    expect_within_caps("w", fmt::format("day {}", day));
  }
  EXPECT_EQ(live("w"), std::vector<std::string>{"new"});
}

// Random worlds: k, per_group and the hysteresis drawn at random, strategies
// whose returns switch regime at random and clones (correlation near 1) among
// them; a policy that lowers k now and then; manual promotions attempted on
// the way. Every apply phase and every outcome stays within the caps.
TEST_F(CapsTest, RandomWorldsAndMetricPathsNeverExceedTheCaps) {
  // QMTL_CAPS_SEED explores other worlds: for s in $(seq 100); do QMTL_CAPS_SEED=$s ...
  const char* seed = std::getenv("QMTL_CAPS_SEED");
  std::mt19937_64 rng(seed != nullptr ? std::stoull(seed) : testing::on_postgres() ? 7 : 20);
  std::normal_distribution<double> noise(0, 0.004);
  std::uniform_real_distribution<double> u(0, 1);
  int waited = 0, demoted_now = 0, refused_by_caps = 0, phases = 0;
  const int worlds = 5, evaluations = 24, n = 6;
  for (int w = 0; w < worlds; ++w) {
    const std::string world = fmt::format("w{}", w);
    ASSERT_TRUE(service_.create_world({.id = world}));
    int k = 2 + static_cast<int>(rng() % 2);
    const int per_group = 1 + static_cast<int>(rng() % 2);
    const auto policy_text = [&](int top_k) {
      return fmt::format(
          "gates: {{promote: 'return >= 0.005', demote: 'return < -0.005'}}\n"
          "evaluation: {{every: 1d, window: 1w}}\ntop_k: {{k: {}}}\n"
          "correlation: {{max: 0.8, per_group: {}}}\n"
          "hysteresis: {{demote_after: {}, promote_after: {}}}\n",
          top_k, per_group, 1 + rng() % 3, 1 + rng() % 2);
    };
    ASSERT_TRUE(service_.add_policy(world, policy_text(k), "alice"));
    std::vector<std::string> ids;
    std::vector<int> parent(n, -1);  // a clone follows its parent's returns
    for (int i = 0; i < n; ++i) {
      ids.push_back(fmt::format("{}-s{}", world, i));
      add_strategy(world, ids.back());
      if (i >= 2 && u(rng) < 0.4) {
        parent[static_cast<size_t>(i)] = static_cast<int>(rng() % static_cast<uint64_t>(i));
      }
    }
    std::vector<double> drift(n, 0), equity(n, 100);
    std::vector<std::vector<double>> history(n);
    const auto step = [&] {
      std::vector<double> r(n);
      for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
        if (u(rng) < 0.2) drift[i] = (static_cast<double>(rng() % 3) - 1) * 0.006;
        r[i] = parent[i] >= 0 ? r[static_cast<size_t>(parent[i])] + noise(rng) * 0.05
                              : drift[i] + noise(rng);
      }
      return r;
    };
    // A week of history before the first evaluation.
    const TimePoint t0 = clock_.now();
    for (int d = 0; d < 8; ++d) {
      const auto r = step();
      std::vector<std::vector<PerformancePoint>> pts(n);
      for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
        equity[i] *= 1 + r[i];
        ASSERT_TRUE(service_.record_performance(ids[i], {{{t0 + days(d), equity[i]}}}, {}));
      }
    }
    clock_.set(t0 + days(7));
    for (int e = 0; e < evaluations; ++e) {
      clock_.advance(days(1));
      const auto r = step();
      for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
        equity[i] *= 1 + r[i];
        ASSERT_TRUE(service_.record_performance(ids[i], {{{clock_.now(), equity[i]}}}, {}));
      }
      // A stricter policy takes effect at its first evaluation, which demotes
      // any excess at once: until that switch, the Live set was set by the old one.
      bool lowered = false;
      if (e == evaluations / 2 && k > 1) {
        k -= 1;
        ASSERT_TRUE(service_.add_policy(world, policy_text(k), "alice"));
        lowered = true;
      }
      if (u(rng) < 0.3) {
        // An operator tries a manual promotion, without force.
        const std::string& id = ids[rng() % ids.size()];
        if (states(world).at(id) == StrategyState::kDryRun) {
          auto m = service_.promote_strategy(id, {.actor = "ops", .reason = "try"});
          if (!m && m.error().message.find("would break the policy's caps") != std::string::npos) {
            ++refused_by_caps;
          }
          const std::set<std::string> joined{id};
          if (!lowered) expect_within_caps(world, "after a manual promotion", &joined);
        }
      }
      auto run = service_.evaluate_world(world, "scheduler");
      ASSERT_TRUE(run) << run.error().message;
      const auto d = *json::parse(run->detail);
      for (const auto& kv : d.at("strategies").as_object()) {
        const auto reasons = json::dump(kv.value().at("reasons"));
        waited += reasons.find("waiting for a slot") != std::string::npos ? 1 : 0;
        demoted_now += reasons.find("demoted now") != std::string::npos ? 1 : 0;
      }
      // Frozen: nothing has moved yet (the world as the data left it); after
      // the switch, everything holds.
      const std::set<std::string> nobody;
      const WorldService::ApplyHooks hooks{.after_phase = [&](std::string_view phase) {
        ++phases;
        if (lowered && phase == "frozen") return;
        expect_within_caps(world, fmt::format("evaluation {} after {}", e, phase),
                           phase == "frozen" ? &nobody : nullptr);
      }};
      auto applied = service_.apply_run(world, run->id, "scheduler", &hooks);
      ASSERT_TRUE(applied) << applied.error().message;
      expect_within_caps(world, fmt::format("evaluation {}", e));
      if (HasFailure()) return;
    }
  }
  // The interesting paths were taken, not just the easy ones.
  EXPECT_GT(waited, 0);
  EXPECT_GT(demoted_now, 0);
  EXPECT_GT(phases, 100);
  RecordProperty("waited", waited);
  RecordProperty("demoted_now", demoted_now);
  RecordProperty("refused_by_caps", refused_by_caps);
}

// An apply switches only on the basis its run was evaluated on.
TEST_F(CapsTest, AStaleRunIsNotApplied) {
  ASSERT_TRUE(service_.create_world({.id = "w"}));
  ASSERT_TRUE(service_.add_policy("w",
                                  "gates: {promote: 'return >= 0.01', demote: 'return < 0'}\n"
                                  "evaluation: {every: 1d, window: 1w}\ntop_k: {k: 1}\n",
                                  "alice"));
  add_strategy("w", "a");
  add_strategy("w", "b");
  record("a", std::vector<double>(10, 0.004));
  record("b", std::vector<double>(10, 0.003));
  auto run = service_.evaluate_world("w", "scheduler");
  ASSERT_TRUE(run);
  // Meanwhile an operator promotes b by hand: the run (promote a) is stale.
  ASSERT_TRUE(service_.promote_strategy("b", {.actor = "ops", .reason = "by hand"}));
  const auto audit_size = service_.list_audit("w")->size();
  auto stale = service_.apply_run("w", run->id, "scheduler");
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(stale.error().message.find("the Live strategies are b now, not none; evaluate again"),
            std::string::npos)
      << stale.error().message;
  EXPECT_EQ(live("w"), std::vector<std::string>{"b"});
  EXPECT_EQ(service_.list_audit("w")->size(), audit_size);  // nothing written

  // A policy change between the freeze and the switch: rolled back there.
  ASSERT_TRUE(service_.demote_strategy("b", {.actor = "ops", .reason = "undo"}));
  auto fresh = service_.evaluate_world("w", "scheduler");
  ASSERT_TRUE(fresh);
  const WorldService::ApplyHooks hooks{.after_phase = [&](std::string_view phase) {
    if (phase != "frozen") return;
    const std::string doc = "gates: {promote: 'return >= 0.5'}\n";
    ASSERT_TRUE(store_->add_policy_version("w", doc, doc, "x", clock_.now(),
                                           {.at = clock_.now(),
                                            .actor = "bob",
                                            .world_id = "w",
                                            .entity = "policy",
                                            .event = "POLICY_ADD"}));
  }};
  auto torn = service_.apply_run("w", fresh->id, "scheduler", &hooks);
  ASSERT_FALSE(torn);
  EXPECT_NE(torn.error().message.find("policy version 2 is current, not 1"), std::string::npos)
      << torn.error().message;
  EXPECT_TRUE(live("w").empty());
  EXPECT_EQ(service_.list_audit("w")->back().event, "APPLY_ROLLED_BACK");
  const auto gates = *service_.list_activations("w");
  for (const auto& a : gates) EXPECT_FALSE(a.frozen) << a.strategy_id;
  EXPECT_TRUE(store_->unfinished_applies()->empty());
}

}  // namespace
}  // namespace qmtl::world
