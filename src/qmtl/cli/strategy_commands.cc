// `qmtl strategy ...`: submit strategies to worlds and drive their lifecycle.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <optional>

#include "qmtl/cli/client.h"
#include "qmtl/cli/table.h"
#include "qmtl/core/file.h"
#include "qmtl/core/json.h"
#include "qmtl/sdk/program.h"

namespace qmtl::cli {
namespace {

// The KPIs shown beside each strategy: these, when the policy reads them;
// otherwise the first three metrics the last evaluation computed.
constexpr std::array<std::string_view, 4> kKeyKpis{"return", "sharpe", "max_drawdown", "trades"};

const boost::json::object* evaluation_of(const boost::json::object& s) {
  const auto* e = s.if_contains("evaluation");
  return e != nullptr && e->is_object() ? &e->get_object() : nullptr;
}

void print_strategies(const boost::json::array& list, std::ostream& out) {
  // The KPI columns: the key ones any strategy's evaluation has, in order.
  std::vector<std::string> kpis;
  std::vector<std::string> others;
  for (const auto& x : list) {
    const auto* ev = evaluation_of(x.as_object());
    const auto* metrics = ev != nullptr ? ev->if_contains("metrics") : nullptr;
    if (metrics == nullptr || !metrics->is_object()) continue;
    for (const auto& m : metrics->get_object()) {
      const std::string key(m.key());
      const bool key_kpi = std::find(kKeyKpis.begin(), kKeyKpis.end(), key) != kKeyKpis.end();
      auto& into = key_kpi ? kpis : others;
      if (std::find(into.begin(), into.end(), key) == into.end()) into.push_back(key);
    }
  }
  std::sort(kpis.begin(), kpis.end(), [](const std::string& a, const std::string& b) {
    return std::find(kKeyKpis.begin(), kKeyKpis.end(), a) <
           std::find(kKeyKpis.begin(), kKeyKpis.end(), b);
  });
  if (kpis.empty()) {
    kpis.assign(others.begin(), others.begin() + std::min<ptrdiff_t>(3, std::ssize(others)));
  }
  std::vector<std::string> header{"STRATEGY", "WORLD", "STATE", "FOR", "MODE"};
  const bool evidence = std::any_of(list.begin(), list.end(), [](const auto& x) {
    return evaluation_of(x.as_object()) != nullptr;
  });
  if (evidence) {
    header.insert(header.end(), {"DECISION", "RANK", "SCORE"});
    for (const auto& k : kpis) {
      std::string h = k;
      for (char& c : h) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      header.push_back(h);
    }
  }
  Table t(header);
  const TimePoint now = SystemClock().now();
  for (const auto& x : list) {
    const auto& o = x.as_object();
    std::vector<std::string> row{str_field(o, "id"), str_field(o, "world"), str_field(o, "state"),
                                 display_age(str_field(o, "state_since"), now),
                                 str_field(o, "effective_mode")};
    if (evidence) {
      const auto* ev = evaluation_of(o);
      if (ev == nullptr) {
        row.insert(row.end(), 3 + kpis.size(), "-");
      } else {
        row.push_back(str_field(*ev, "decision"));
        row.push_back(str_field(*ev, "rank"));
        row.push_back(display_number(ev->if_contains("score")));
        const auto* m = ev->if_contains("metrics");
        for (const auto& k : kpis) {
          row.push_back(m != nullptr && m->is_object()
                            ? display_number(m->as_object().if_contains(k))
                            : std::string("-"));
        }
      }
    }
    t.add_row(row);
  }
  t.print(out);
}

struct SubmitOptions {
  StrategySource source;
  std::string world;
  std::optional<std::string> id;
};

// The spec to submit and its id: --id, else the spec's own "id", else the file
// name without extension. A usage error names the file or program.
CliResult<std::pair<boost::json::object, std::string>> submission(const SubmitOptions& o) {
  auto spec = strategy_source(o.source);
  if (!spec) return tl::unexpected(spec.error());
  // The server stores any JSON object; what the runner cannot build is refused
  // here (a program's spec was loaded by strategy_source).
  if (o.source.command.empty()) {
    if (auto s = sdk::load_strategy(*spec); !s) {
      return tl::unexpected(
          Failure{kExitUsage, fmt::format("{}: {}", o.source.file, s.error().message)});
    }
  }
  std::string id = o.id.value_or("");
  if (id.empty()) {
    const auto* v = spec->if_contains("id");
    id = v != nullptr && v->is_string() ? std::string(v->get_string())
                                        : std::filesystem::path(o.source.file).stem().string();
  }
  return std::pair{std::move(*spec), std::move(id)};
}

int strategy_submit(const Globals& g, const SubmitOptions& o, std::ostream& out,
                    std::ostream& err) {
  if (auto c = check_id("world", o.world); !c) return report(c.error(), err);
  auto s = submission(o);
  if (!s) return report(s.error(), err);
  auto& [spec, id] = *s;
  if (auto c = check_id("strategy", id); !c) return report(c.error(), err);
  auto r = call_server(
      g, {.method = "POST",
          .path = "/strategies",
          .body = json::dump(boost::json::object{{"id", id}, {"world", o.world}, {"spec", spec}})});
  if (!r) return report(r.error(), err);
  if (g.json()) {
    print_json(*r, out);
  } else {
    out << fmt::format("submitted strategy '{}' to world '{}' (state {})\n", id, o.world,
                       str_field(r->as_object(), "state"));
  }
  return kExitOk;
}

int strategy_list(const Globals& g, const std::optional<std::string>& world, std::ostream& out,
                  std::ostream& err) {
  std::string path = "/strategies";
  if (world) {
    if (auto c = check_id("world", *world); !c) return report(c.error(), err);
    path += "?world=" + *world;
  }
  int rc = kExitOk;
  auto r = answer_for_table(g, {.method = "GET", .path = path}, out, err, rc);
  if (!r) return rc;
  const auto& list = array_at(*r, "strategies");
  if (list.empty()) {
    out << "no strategies; submit one with `qmtl strategy submit <file> --world <world>`\n";
    return kExitOk;
  }
  print_strategies(list, out);
  return kExitOk;
}

int strategy_status(const Globals& g, const std::string& id, std::ostream& out, std::ostream& err) {
  if (auto c = check_id("strategy", id); !c) return report(c.error(), err);
  int rc = kExitOk;
  auto r = answer_for_table(g, {.method = "GET", .path = "/strategies/" + id}, out, err, rc);
  if (!r) return rc;
  print_strategies(boost::json::array{*r}, out);
  return kExitOk;
}

// The validation backtest's outcome, reason and the metrics the reject gate read.
int strategy_validation(const Globals& g, const std::string& id, std::ostream& out,
                        std::ostream& err) {
  if (auto c = check_id("strategy", id); !c) return report(c.error(), err);
  int rc = kExitOk;
  auto r =
      answer_for_table(g, {.path = fmt::format("/strategies/{}/validation", id)}, out, err, rc);
  if (!r) return rc;
  const auto& o = r->as_object();
  const auto& detail = object_at(*r, "detail");
  out << fmt::format("strategy '{}' validation {} at {}: {}\n", id, str_field(o, "outcome"),
                     display_time(str_field(o, "finished_at")), str_field(o, "reason"));
  if (detail.contains("bars")) {
    out << fmt::format("{} bars, {} .. {}, {} fills\n", display_number(detail.if_contains("bars")),
                       display_time(str_field(detail, "from")),
                       display_time(str_field(detail, "to")),
                       display_number(detail.if_contains("fills")));
  }
  if (const auto* m = detail.if_contains("metrics"); m != nullptr && m->is_object()) {
    Table t({"METRIC", "VALUE"});
    for (const auto& kv : m->as_object()) {
      t.add_row({std::string(kv.key()), display_number(&kv.value())});
    }
    t.print(out);
  }
  return kExitOk;
}

int strategy_event(const Globals& g, const std::string& verb, const std::string& id,
                   const std::string& reason, std::ostream& out, std::ostream& err) {
  if (auto c = check_id("strategy", id); !c) return report(c.error(), err);
  auto r = call_server(g, {.method = "POST",
                           .path = fmt::format("/strategies/{}/{}", id, verb),
                           .body = json::dump(boost::json::object{{"reason", reason}})});
  if (!r) return report(r.error(), err);
  if (g.json()) {
    print_json(*r, out);
  } else {
    out << fmt::format("strategy '{}' is now {}\n", id, str_field(r->as_object(), "state"));
  }
  return kExitOk;
}

// promote / demote: a manual change through the FSM and the two-phase apply.
int strategy_manual(const Globals& g, const std::string& verb, const std::string& id,
                    const std::string& reason, bool force, std::ostream& out, std::ostream& err) {
  if (auto c = check_id("strategy", id); !c) return report(c.error(), err);
  boost::json::object body{{"reason", reason}};
  if (force) body["force"] = true;
  auto r = call_server(g, {.method = "POST",
                           .path = fmt::format("/strategies/{}/{}", id, verb),
                           .body = json::dump(body)});
  if (!r) return report(r.error(), err);
  const auto& o = r->as_object();
  std::string summary;
  if (const auto* q = o.if_contains("queued"); q != nullptr && q->is_bool() && q->get_bool()) {
    summary = fmt::format("queued: the world is Paused; '{}' is {}d when it resumes", id, verb);
  } else {
    summary = fmt::format("strategy '{}' is now {} ({})", id,
                          str_field(object_at(*r, "strategy"), "state"), str_field(o, "apply_id"));
  }
  print_manual_outcome(g, *r, summary, out, err);
  return kExitOk;
}

}  // namespace

void add_strategy_commands(CLI::App& app, const Globals& g, int& rc, std::ostream& out,
                           std::ostream& err) {
  auto* strategy = app.add_subcommand("strategy", "manage strategies")->require_subcommand(1);
  struct Opts {
    std::string world, id, reason;
    std::optional<std::string> world_filter;
  };
  auto o = std::make_shared<Opts>();
  auto so = std::make_shared<SubmitOptions>();
  auto* submit = strategy->add_subcommand(
      "submit",
      "submit a strategy to a world: a declarative file (YAML or JSON), or a program that "
      "speaks the runner's protocol (docs/sdk.md)\n"
      "  e.g. qmtl strategy submit sma_cross.yml --world demo\n"
      "       qmtl strategy submit --command \"/srv/qmtl/strategies/sma_cross 10 30\" --world "
      "demo");
  submit->add_option("strategy", so->source.file, "strategy file")->check(CLI::ExistingFile);
  submit->add_option("--command", so->source.command,
                     "a strategy program and its arguments; the server must run programs from "
                     "its directory (qmtl serve --strategy-programs DIR)");
  submit
      ->add_option("--timeout", so->source.timeout,
                   "with --command: how long the program may take to declare itself and to "
                   "answer each bar")
      ->default_str(so->source.timeout);
  submit->add_option("--world", so->world, "world id")->required();
  submit->add_option("--id", so->id, "strategy id (default: the strategy's own id or file name)");
  submit->callback([=, &g, &rc, &out, &err] { rc = strategy_submit(g, *so, out, err); });
  auto* list =
      strategy->add_subcommand("list",
                               "list strategies, with how long each has been in its state\n"
                               "  e.g. qmtl strategy list --world demo");
  list->add_option("--world", o->world_filter, "only this world");
  list->callback([=, &g, &rc, &out, &err] { rc = strategy_list(g, o->world_filter, out, err); });
  auto* status = strategy->add_subcommand(
      "status", "show one strategy\n  e.g. qmtl strategy status s1 --output json");
  status->add_option("id", o->id, "strategy id")->required();
  status->callback([=, &g, &rc, &out, &err] { rc = strategy_status(g, o->id, out, err); });
  auto* validation =
      strategy->add_subcommand("validation",
                               "show a strategy's validation backtest: outcome, reason, metrics\n"
                               "  e.g. qmtl strategy validation s1");
  validation->add_option("id", o->id, "strategy id")->required();
  validation->callback([=, &g, &rc, &out, &err] { rc = strategy_validation(g, o->id, out, err); });
  auto force = std::make_shared<bool>(false);
  for (const auto& [verb, help] : std::vector<std::pair<std::string, std::string>>{
           {"promote",
            "move a DryRun strategy to Live by hand (the design's `strategy activate`); refused "
            "beyond top_k or a correlation group's per_group unless --force"},
           {"demote", "move a Live strategy back to DryRun (paper) by hand"}}) {
    auto* cmd = strategy->add_subcommand(
        verb, fmt::format("{}\n  e.g. qmtl strategy {} s1 --reason \"...\"", help, verb));
    cmd->add_option("id", o->id, "strategy id")->required();
    cmd->add_option("--reason", o->reason, "why (required; recorded in the audit log)")->required();
    if (verb == "promote") {
      cmd->add_flag("--force", *force,
                    "promote even beyond the policy's caps (recorded as forced)");
    }
    cmd->callback([=, &g, &rc, &out, &err, v = verb] {
      rc = strategy_manual(g, v, o->id, o->reason, *force, out, err);
    });
  }
  for (const auto& [verb, help] : std::vector<std::pair<std::string, std::string>>{
           {"activate", "bring an Inactive strategy back to DryRun (see promote for Live)"},
           {"deactivate", "stop a DryRun or Live strategy (Inactive)"},
           {"archive", "retire a strategy for good"}}) {
    auto* cmd = strategy->add_subcommand(
        verb, fmt::format("{}\n  e.g. qmtl strategy {} s1 --reason \"...\"", help, verb));
    cmd->add_option("id", o->id, "strategy id")->required();
    cmd->add_option("--reason", o->reason, "why (recorded in the audit log)");
    cmd->callback([=, &g, &rc, &out, &err, v = verb] {
      rc = strategy_event(g, v, o->id, o->reason, out, err);
    });
  }
}

}  // namespace qmtl::cli
