// ServerMetrics::families() is the one list of what the server exports: every
// family it names appears in /metrics once it has a series, nothing else does,
// and the Grafana dashboard and the alert rules use only those.
#include "qmtl/server/metrics.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "qmtl/core/json.h"
#include "qmtl/store/store.h"
#include "qmtl/world/world_service.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::server {
namespace {

using lifecycle::StrategyEvent;

std::string read_source(const std::string& rel) {
  std::ifstream f(std::string(QMTL_SOURCE_DIR) + "/" + rel);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::set<std::string> family_names() {
  std::set<std::string> out;
  for (const auto& f : ServerMetrics::families()) out.insert(std::string(f.name));
  return out;
}

// A qmtl_* name used in a PromQL expression, reduced to its family: the
// _bucket/_count/_sum series belong to a histogram.
std::string family_of(const std::string& series) {
  for (const auto& f : ServerMetrics::families()) {
    if (series == f.name) return series;
    if (f.type == "histogram") {
      for (const char* suffix : {"_bucket", "_count", "_sum"}) {
        if (series == std::string(f.name) + suffix) return std::string(f.name);
      }
    }
  }
  return series;
}

std::set<std::string> qmtl_names_in(const std::string& text) {
  std::set<std::string> out;
  static const std::regex name(R"(\bqmtl_[a-z_]+)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), name); it != std::sregex_iterator();
       ++it) {
    out.insert(family_of(it->str()));
  }
  return out;
}

TEST(ServerMetricsTest, EveryFamilyAppearsOnceItHasASeriesAndNothingElse) {
  testing::TempDir dir;
  auto store = store::open_store(testing::fresh_store_url(dir, "m.db"));
  ASSERT_TRUE(store);
  FakeClock clock(*parse_timestamp("2026-03-02T00:00:00Z"));
  world::WorldService worlds(**store, clock);
  ASSERT_TRUE(worlds.create_world({.id = "w"}));
  ASSERT_TRUE(worlds.add_policy("w", "gates: {promote: 'periods >= 1'}\nevaluation: {every: 1h}\n",
                                "test"));
  ASSERT_TRUE(worlds.submit_strategy({.id = "s", .world = "w", .spec = "{}"}));
  for (auto e : {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed}) {
    ASSERT_TRUE(worlds.apply_strategy_event("s", e, "test", ""));
  }
  clock.advance(std::chrono::hours(3));
  const store::ScheduleState sched{.world_id = "w",
                                   .spec = "every 1h",
                                   .next_run = clock.now() + std::chrono::hours(1),
                                   .last_run = clock.now()};
  ASSERT_TRUE(worlds.put_schedule(sched));
  ASSERT_TRUE(worlds.evaluate_world("w", "test"));

  ServerMetrics m(worlds, clock);
  m.request("GET", "/worlds", 200, 0.001);
  m.evaluation("w", 0.01, true);
  const store::ApplyJournalEntry done{.run_id = "w-1", .world_id = "w"};
  m.apply("w", &done, true, 0.01);
  m.apply("w", nullptr, true, 0.01);
  m.events_sent(3);
  m.alert("w", "webhook", true);
  m.validation("w", "passed");
  m.runner_started("w", false);
  m.runner_exited("w");
  auto text = m.render(2);
  ASSERT_TRUE(text) << text.error().message;

  std::set<std::string> typed;
  std::istringstream lines(*text);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("# TYPE ")) continue;
    std::istringstream words(line.substr(7));
    std::string name, type;
    words >> name >> type;
    typed.insert(name);
    bool listed = false;
    for (const auto& f : ServerMetrics::families()) {
      if (f.name == name) {
        listed = true;
        EXPECT_EQ(f.type, type) << name;
      }
    }
    EXPECT_TRUE(listed) << name << " is exported but not in ServerMetrics::families()";
  }
  EXPECT_EQ(typed, family_names());
  // The DryRun strategy entered DryRun three hours ago on this clock.
  EXPECT_NE(text->find("qmtl_dry_run_age_max_seconds{world=\"w\"} 10800\n"), std::string::npos)
      << *text;
  EXPECT_NE(text->find("qmtl_world_evaluation_period_seconds{world=\"w\"} 3600\n"),
            std::string::npos);
}

TEST(ServerMetricsTest, TheDashboardUsesOnlyExportedMetricsAndShowsWhatOperatorsNeed) {
  const std::string text = read_source("deploy/grafana/qmtl.json");
  auto doc = json::parse(text);
  ASSERT_TRUE(doc) << "deploy/grafana/qmtl.json is not JSON";
  const auto& panels = doc->at("panels").as_array();
  ASSERT_FALSE(panels.empty());
  std::set<std::string> used, titles;
  for (const auto& p : panels) {
    titles.insert(std::string(p.at("title").as_string()));
    const auto& targets = p.at("targets").as_array();
    ASSERT_FALSE(targets.empty()) << p.at("title").as_string();
    for (const auto& t : targets) {
      const std::string expr(t.at("expr").as_string());
      const auto names = qmtl_names_in(expr);
      used.insert(names.begin(), names.end());
    }
  }
  const auto exported = family_names();
  for (const auto& n : used) {
    EXPECT_TRUE(exported.contains(n))
        << "the dashboard queries " << n << ", which the server does not export";
  }
  // docs/operations.md / issue #11: what the dashboard must show.
  for (const char* family :
       {"qmtl_strategies", "qmtl_promotions_total", "qmtl_demotions_total",
        "qmtl_dry_run_age_max_seconds", "qmtl_evaluation_duration_seconds",
        "qmtl_apply_duration_seconds", "qmtl_gates", "qmtl_apply_failures_total",
        "qmtl_world_last_evaluation_timestamp_seconds"}) {
    EXPECT_TRUE(used.contains(family)) << "no panel shows " << family;
  }
  // The world variable is built from a metric the server exports, too.
  const std::string worlds(
      doc->at("templating").at("list").as_array()[1].at("definition").as_string());
  for (const auto& n : qmtl_names_in(worlds)) EXPECT_TRUE(exported.contains(n)) << n;
}

TEST(ServerMetricsTest, TheAlertRulesUseOnlyExportedMetrics) {
  std::string rules;  // without comment lines, which name files
  std::istringstream lines(read_source("deploy/prometheus/qmtl_rules.yml"));
  for (std::string line; std::getline(lines, line);) {
    if (line.find_first_not_of(' ') != std::string::npos &&
        line[line.find_first_not_of(' ')] == '#') {
      continue;
    }
    rules += line + '\n';
  }
  ASSERT_FALSE(rules.empty());
  const auto used = qmtl_names_in(rules);
  EXPECT_GE(used.size(), 6u);
  const auto exported = family_names();
  for (const auto& n : used) {
    EXPECT_TRUE(exported.contains(n))
        << "an alert rule uses " << n << ", which the server does not export";
  }
}

}  // namespace
}  // namespace qmtl::server
