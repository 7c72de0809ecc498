// `qmtl world report`: one HTML file with a world's promotion timeline, the
// equity of its live strategies and its state changes (docs/reports.md).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <map>

#include "qmtl/cli/client.h"
#include "qmtl/report/html_report.h"

namespace qmtl::cli {
namespace {

constexpr size_t kMaxTransitionRows = 1000;

std::string text_of(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::optional<TimePoint> time_of(const boost::json::object& o, std::string_view key) {
  auto t = parse_timestamp(text_of(o, key));
  return t ? std::optional(*t) : std::nullopt;
}

// A lane per strategy, in the order the strategies first changed state.
std::vector<report::Lane> lanes_of(const boost::json::array& transitions) {
  std::vector<report::Lane> lanes;
  std::map<std::string, size_t> at;
  for (const auto& v : transitions) {
    const auto& t = v.as_object();
    const auto when = time_of(t, "at");
    if (!when) continue;
    const std::string id = text_of(t, "strategy");
    auto [it, fresh] = at.try_emplace(id, lanes.size());
    if (fresh) lanes.push_back({.strategy = id});
    lanes[it->second].states.emplace_back(*when, text_of(t, "to"));
  }
  return lanes;
}

report::Table transitions_table(const boost::json::array& transitions) {
  report::Table t{.title = "State changes (newest first)",
                  .header = {"AT", "STRATEGY", "FROM", "TO", "EVENT", "RUN", "ACTOR", "REASON"}};
  for (auto it = transitions.rbegin(); it != transitions.rend(); ++it) {
    if (t.rows.size() == kMaxTransitionRows) break;
    const auto& o = it->as_object();
    t.rows.push_back({display_time(text_of(o, "at")), text_of(o, "strategy"), str_field(o, "from"),
                      text_of(o, "to"), text_of(o, "event"), str_field(o, "run_id"),
                      text_of(o, "actor"), text_of(o, "reason")});
  }
  return t;
}

CliResult<report::Report> world_report(const Globals& g, const std::string& id) {
  if (auto r = check_id("world", id); !r) return tl::unexpected(r.error());
  auto w = call_server(g, {.path = "/worlds/" + id});
  if (!w) return tl::unexpected(w.error());
  auto strategies = call_server(g, {.path = "/strategies?world=" + id});
  if (!strategies) return tl::unexpected(strategies.error());
  auto timeline = call_server(g, {.path = fmt::format("/worlds/{}/timeline", id)});
  if (!timeline) return tl::unexpected(timeline.error());
  const auto& world = w->as_object();
  const auto& list = array_at(*strategies, "strategies");
  const auto& transitions = array_at(*timeline, "transitions");

  report::Report r{
      .title = fmt::format("World {}", id),
      .subtitle = fmt::format("{}; state {}, policy version {}, {} strategies; made {}",
                              text_of(world, "name"), text_of(world, "state"),
                              display_number(world.if_contains("policy_version")), list.size(),
                              display_time(format_timestamp(SystemClock().now()))),
      .equity_title = "Equity of the live strategies (their dry-run and live records)",
      .drawdown = false};
  report::Table table{.title = "Strategies", .header = {"STRATEGY", "STATE", "SINCE"}};
  for (const auto& v : list) {
    const auto& s = v.as_object();
    const std::string sid = text_of(s, "id");
    table.rows.push_back({sid, text_of(s, "state"), display_time(text_of(s, "state_since"))});
    if (text_of(s, "state") != "Live") continue;
    auto perf = call_server(g, {.path = fmt::format("/strategies/{}/performance", sid)});
    if (!perf) return tl::unexpected(perf.error());
    report::Series line{.name = sid};
    for (const auto& p : array_at(*perf, "points")) {
      const auto& o = p.as_object();
      const auto ts = time_of(o, "ts");
      const auto* eq = o.if_contains("equity");
      if (ts && eq != nullptr && eq->is_number())
        line.points.push_back({*ts, eq->to_number<double>()});
    }
    if (!line.points.empty()) r.equity.push_back(std::move(line));
  }
  r.timeline = lanes_of(transitions);
  r.tables.push_back(std::move(table));
  r.tables.push_back(transitions_table(transitions));
  return r;
}

int write_world_report(const Globals& g, const std::string& id, const std::string& path,
                       std::ostream& out, std::ostream& err) {
  auto r = world_report(g, id);
  if (!r) return report(r.error(), err);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << report::render_html(*r);
  f.close();
  if (!f) return report({kExitUsage, fmt::format("cannot write the report to {}", path)}, err);
  out << fmt::format("wrote {} ({} strategies, {} live, {} lanes)\n", path,
                     r->tables.front().rows.size(), r->equity.size(), r->timeline.size());
  return kExitOk;
}

}  // namespace

void add_world_report_command(CLI::App* world, const Globals& g, int& rc, std::ostream& out,
                              std::ostream& err) {
  struct Options {
    std::string id, path;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = world->add_subcommand(
      "report",
      "write one HTML file: the promotion timeline, live equity and state changes\n"
      "  e.g. qmtl world report demo --out demo.html");
  cmd->add_option("world", o->id, "world id")->required();
  cmd->add_option("--out", o->path, "the HTML file to write")->required();
  cmd->callback([=, &g, &rc, &out, &err] { rc = write_world_report(g, o->id, o->path, out, err); });
}

}  // namespace qmtl::cli
