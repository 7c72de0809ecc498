// `qmtl world replay` (docs/policy.md, "Trying a policy before applying it")
// and `qmtl world evaluations <world> --run R --replay`: POST
// /worlds/{id}/replay, shown as the two books' KPIs side by side and the
// decisions that differ.
#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "qmtl/cli/client.h"
#include "qmtl/cli/table.h"
#include "qmtl/core/json.h"

namespace qmtl::cli {
namespace {

// At most this many differing decisions in the table; JSON has them all (up to
// the server's max_differences).
constexpr size_t kShownDifferences = 50;

// The KPIs worth comparing at a glance, in this order.
constexpr std::array<std::string_view, 8> kKpis = {"return",           "sharpe", "sortino",
                                                   "max_drawdown",     "calmar", "volatility",
                                                   "time_under_water", "periods"};

std::string ids_of(const boost::json::value& live) {
  const auto& a = live.as_array();
  if (a.empty()) return "none";
  std::vector<std::string> ids;
  for (const auto& x : a) ids.emplace_back(x.as_string());
  return fmt::format("{}", fmt::join(ids, ", "));
}

std::string live_at_end(const boost::json::value& book) {
  const auto& live = array_at(book, "live");
  return live.empty() ? "none" : ids_of(live.back().as_object().at("live"));
}

void print_books(const boost::json::value& r, std::ostream& out) {
  const auto& rec = r.as_object().at("recorded");
  const auto& cand = r.as_object().at("candidate");
  Table t({"", "RECORDED", "REPLAYED"});
  t.add_row({"promotions", str_field(rec.as_object(), "promotions"),
             str_field(cand.as_object(), "promotions")});
  t.add_row({"demotions", str_field(rec.as_object(), "demotions"),
             str_field(cand.as_object(), "demotions")});
  for (auto k : kKpis) {
    const auto* a = object_at(rec, "kpis").if_contains(k);
    const auto* b = object_at(cand, "kpis").if_contains(k);
    if (a == nullptr && b == nullptr) continue;
    t.add_row({std::string(k), display_number(a), display_number(b)});
  }
  t.add_row({"live at the end", live_at_end(rec), live_at_end(cand)});
  t.print(out);
}

void print_differences(const boost::json::value& r, std::ostream& out) {
  const auto& diffs = array_at(r, "differences");
  const auto total = r.as_object().at("total_differences").to_number<size_t>();
  if (total == 0) return;
  out << '\n';
  Table t({"RUN", "AT", "STRATEGY", "RECORDED", "REPLAYED", "WHY"});
  for (size_t i = 0; i < diffs.size() && i < kShownDifferences; ++i) {
    const auto& d = diffs[i].as_object();
    t.add_row({str_field(d, "run"), display_time(str_field(d, "at")), str_field(d, "strategy"),
               str_field(d, "recorded"), str_field(d, "replayed"), str_field(d, "why")});
  }
  t.print(out);
  if (total > kShownDifferences) {
    out << fmt::format("... and {} more (--output json lists up to 1000)\n",
                       total - kShownDifferences);
  }
}

struct ReplayArgs {
  std::string world;
  std::optional<std::string> policy_file, since, from, until;
};

int world_replay(const Globals& g, const ReplayArgs& a, std::ostream& out, std::ostream& err) {
  if (auto c = check_id("world", a.world); !c) return report(c.error(), err);
  if (a.since && a.from) return report({kExitUsage, "give --since or --from, not both"}, err);
  boost::json::object body;
  if (a.policy_file) {
    auto text = read_policy(*a.policy_file);
    if (!text) return report(text.error(), err);
    body["policy"] = *text;
  }
  for (auto [key, v] :
       {std::pair{"since", &a.since}, std::pair{"from", &a.from}, std::pair{"until", &a.until}}) {
    if (*v) body[key] = **v;
  }
  int rc = kExitOk;
  auto r = answer_for_table(g,
                            {.method = "POST",
                             .path = fmt::format("/worlds/{}/replay", a.world),
                             .body = json::dump(body),
                             .timeout = std::chrono::minutes(10)},
                            out, err, rc);
  if (!r) return rc;
  const auto& o = r->as_object();
  const auto runs = o.at("runs").to_number<size_t>();
  const std::string by =
      a.policy_file ? *a.policy_file : std::string("the recorded policy versions");
  if (runs == 0) {
    out << fmt::format("world '{}' has no evaluation run in that span: nothing to replay\n",
                       a.world);
    return kExitOk;
  }
  out << fmt::format(
      "replay of world '{}' by {}: {} runs from {} to {}; {} decisions, {} as recorded, {} "
      "differ\n\n",
      a.world, by, runs, display_time(str_field(o, "from")), display_time(str_field(o, "until")),
      str_field(o, "decisions"), str_field(o, "matching"), str_field(o, "total_differences"));
  print_books(*r, out);
  print_differences(*r, out);
  return kExitOk;
}

}  // namespace

int print_run_replay(const Globals& g, const std::string& world, const std::string& run,
                     std::ostream& out, std::ostream& err) {
  int rc = kExitOk;
  auto r = answer_for_table(g,
                            {.method = "POST",
                             .path = fmt::format("/worlds/{}/replay", world),
                             .body = json::dump(boost::json::object{{"run", run}}),
                             .timeout = std::chrono::minutes(1)},
                            out, err, rc);
  if (!r) return rc;
  out << fmt::format(
      "run {} of world '{}' re-evaluated from its stored inputs: {} of {} decisions as "
      "recorded\n",
      run, world, str_field(r->as_object(), "matching"), str_field(r->as_object(), "decisions"));
  Table t({"STRATEGY", "STATE", "RECORDED", "REPLAYED", "SCORE", "RANK", "", "REPLAY'S REASONS"});
  for (const auto& v : array_at(*r, "run_decisions")) {
    const auto& d = v.as_object();
    std::vector<std::string> reasons;
    for (const auto& x : array_at(v, "reasons")) reasons.emplace_back(x.as_string());
    const bool same = str_field(d, "recorded") == str_field(d, "replayed");
    t.add_row({str_field(d, "strategy"), str_field(d, "state"), str_field(d, "recorded"),
               str_field(d, "replayed"), display_number(d.if_contains("score")),
               str_field(d, "rank"), same ? "" : "DIFFERS",
               fmt::format("{}", fmt::join(reasons, "; "))});
  }
  t.print(out);
  return kExitOk;
}

void add_world_replay_command(CLI::App* world, const Globals& g, int& rc, std::ostream& out,
                              std::ostream& err) {
  auto a = std::make_shared<ReplayArgs>();
  auto* replay = world->add_subcommand(
      "replay",
      "what a policy would have decided over the world's own recorded runs, and the live\n"
      "book it would have held; changes nothing\n"
      "  e.g. qmtl world replay demo --policy candidate.yml --since 90d");
  replay->add_option("world", a->world, "world id")->required();
  replay->add_option("--policy", a->policy_file,
                     "candidate policy file (YAML or JSON); without it the recorded versions are "
                     "replayed, which must reproduce every decision");
  replay->add_option("--since", a->since, "replay the runs of this long back, e.g. 90d");
  replay->add_option("--from", a->from, "replay the runs started at or after this time");
  replay->add_option("--until", a->until, "and at or before this time");
  replay->callback([=, &g, &rc, &out, &err] { rc = world_replay(g, *a, out, err); });
}

}  // namespace qmtl::cli
