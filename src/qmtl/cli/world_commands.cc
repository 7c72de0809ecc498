// `qmtl world ...`: worlds, their policies, evaluations, activations and audit.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <optional>

#include "qmtl/cli/client.h"
#include "qmtl/cli/table.h"
#include "qmtl/core/duration.h"
#include "qmtl/core/file.h"
#include "qmtl/core/json.h"
#include "qmtl/policy/document.h"

namespace qmtl::cli {

CliResult<std::string> read_policy(const std::string& path) {
  auto text = read_file(path, "policy file");
  if (!text) return tl::unexpected(Failure{kExitUsage, text.error().message});
  if (auto doc = policy::parse_policy_document(*text, path); !doc) {
    return tl::unexpected(Failure{kExitUsage, doc.error().message});
  }
  return std::move(*text);
}

namespace {

std::string content_type_for(const std::string& path) {
  return path.ends_with(".json") ? "application/json" : "application/yaml";
}

int world_create(const Globals& g, const std::string& id, const std::optional<std::string>& name,
                 const std::optional<std::string>& policy_file, std::ostream& out,
                 std::ostream& err) {
  boost::json::object body{{"id", id}};
  if (name) body["name"] = *name;
  if (policy_file) {
    auto text = read_policy(*policy_file);
    if (!text) return report(text.error(), err);
    body["policy"] = *text;
  }
  auto r = call_server(g, {.method = "POST", .path = "/worlds", .body = json::dump(body)});
  if (!r) return report(r.error(), err);
  if (g.json()) {
    print_json(*r, out);
  } else {
    out << fmt::format(
        "created world '{}'{}\n", id,
        policy_file ? fmt::format(" with policy version 1 from {}", *policy_file) : "");
  }
  return kExitOk;
}

int world_list(const Globals& g, std::ostream& out, std::ostream& err) {
  int rc = kExitOk;
  auto r = answer_for_table(g, {.method = "GET", .path = "/worlds"}, out, err, rc);
  if (!r) return rc;
  print_worlds_table(array_at(*r, "worlds"), out);
  return kExitOk;
}

int world_status(const Globals& g, const std::string& id, const std::optional<std::string>& set,
                 const std::string& reason, std::ostream& out, std::ostream& err) {
  if (auto c = check_id("world", id); !c) return report(c.error(), err);
  CliResult<boost::json::value> w;
  if (set) {
    w = call_server(g,
                    {.method = "POST",
                     .path = fmt::format("/worlds/{}/state", id),
                     .body = json::dump(boost::json::object{{"state", *set}, {"reason", reason}})});
    if (!w) return report(w.error(), err);
  }
  // The world with its evidence (policy in brief, last evaluation).
  w = call_server(g, {.method = "GET", .path = "/worlds/" + id});
  if (!w) return report(w.error(), err);
  auto s = call_server(g, {.method = "GET", .path = fmt::format("/strategies?world={}", id)});
  if (!s) return report(s.error(), err);
  if (g.json()) {
    boost::json::object o = w->as_object();
    o["strategies"] = array_at(*s, "strategies");
    print_json(o, out);
    return kExitOk;
  }
  print_worlds_table(boost::json::array{*w}, out);
  // When the scheduler evaluates it next (absent on servers before the scheduler).
  if (auto sch = call_server(g, {.method = "GET", .path = fmt::format("/worlds/{}/schedule", id)});
      sch && sch->is_object() && sch->as_object().contains("next_run")) {
    const auto& o = sch->as_object();
    out << fmt::format(
        "\nnext evaluation {} ({}); last scheduled run {}{}\n",
        display_time(str_field(o, "next_run")), str_field(o, "spec"), str_field(o, "last_run_id"),
        o.at("last_error").is_string() ? fmt::format(" failed: {}", str_field(o, "last_error"))
                                       : "");
  }
  const auto& list = array_at(*s, "strategies");
  if (list.empty()) {
    out << "\nno strategies; submit one with `qmtl strategy submit <file> --world " << id << "`\n";
    return kExitOk;
  }
  out << '\n';
  Table t({"STRATEGY", "STATE", "FOR", "MODE"});
  const TimePoint now = SystemClock().now();
  for (const auto& x : list) {
    const auto& o = x.as_object();
    t.add_row({str_field(o, "id"), str_field(o, "state"),
               display_age(str_field(o, "state_since"), now), str_field(o, "effective_mode")});
  }
  t.print(out);
  return kExitOk;
}

int policy_set(const Globals& g, const std::string& id, const std::string& file, std::ostream& out,
               std::ostream& err) {
  if (auto c = check_id("world", id); !c) return report(c.error(), err);
  auto text = read_policy(file);
  if (!text) return report(text.error(), err);
  auto r = call_server(g, {.method = "POST",
                           .path = fmt::format("/worlds/{}/policy", id),
                           .body = *text,
                           .content_type = content_type_for(file)});
  if (!r) return report(r.error(), err);
  if (g.json()) {
    print_json(*r, out);
  } else {
    const auto& o = r->as_object();
    out << fmt::format("world '{}' now uses policy version {} (sha256 {})\n", id,
                       str_field(o, "version"), str_field(o, "checksum").substr(0, 12));
  }
  return kExitOk;
}

int policy_show(const Globals& g, const std::string& id, std::optional<int64_t> version,
                std::ostream& out, std::ostream& err) {
  if (auto c = check_id("world", id); !c) return report(c.error(), err);
  const std::string path = version ? fmt::format("/worlds/{}/policies/{}", id, *version)
                                   : fmt::format("/worlds/{}/policy", id);
  int rc = kExitOk;
  auto r = answer_for_table(g, {.method = "GET", .path = path}, out, err, rc);
  if (!r) return rc;
  const auto& o = r->as_object();
  out << fmt::format("# world {}, policy version {}{}, created {}\n", id, str_field(o, "version"),
                     o.at("current").as_bool() ? " (current)" : "",
                     display_time(str_field(o, "created_at")));
  std::string doc = str_field(o, "document");
  out << doc << (doc.ends_with('\n') ? "" : "\n");
  return kExitOk;
}

int policy_history(const Globals& g, const std::string& id, std::ostream& out, std::ostream& err) {
  if (auto c = check_id("world", id); !c) return report(c.error(), err);
  int rc = kExitOk;
  auto r = answer_for_table(g, {.method = "GET", .path = fmt::format("/worlds/{}/policies", id)},
                            out, err, rc);
  if (!r) return rc;
  const auto& versions = array_at(*r, "versions");
  if (versions.empty()) {
    out << fmt::format(
        "world '{}' has no policy yet; set one with `qmtl world policy set {} "
        "--policy-file policy.yml`\n",
        id, id);
    return kExitOk;
  }
  Table t({"VERSION", "CURRENT", "CREATED", "SHA256"});
  for (const auto& v : versions) {
    const auto& o = v.as_object();
    t.add_row({str_field(o, "version"), o.at("current").as_bool() ? "*" : "",
               display_time(str_field(o, "created_at")), str_field(o, "checksum").substr(0, 12)});
  }
  t.print(out);
  return kExitOk;
}

int policy_rollback(const Globals& g, const std::string& id, int64_t version,
                    const std::string& reason, std::ostream& out, std::ostream& err) {
  if (auto c = check_id("world", id); !c) return report(c.error(), err);
  auto r = call_server(
      g, {.method = "POST",
          .path = fmt::format("/worlds/{}/policy/current", id),
          .body = json::dump(boost::json::object{{"version", version}, {"reason", reason}})});
  if (!r) return report(r.error(), err);
  if (g.json()) {
    print_json(*r, out);
  } else {
    out << fmt::format("world '{}' now uses policy version {}\n", id, version);
  }
  return kExitOk;
}

// One row per strategy of a run: what was decided and why.
void print_run(const boost::json::value& run, std::ostream& out) {
  const auto& strategies = object_at(run, "strategies");
  Table t({"STRATEGY", "STATE", "DECISION", "SCORE", "RANK", "GROUP", "REASONS"});
  for (const auto& kv : strategies) {
    const auto& s = kv.value();
    std::string reasons;
    for (const auto& r : array_at(s, "reasons")) {
      if (!reasons.empty()) reasons += "; ";
      reasons += r.is_string() ? std::string(r.get_string()) : json::dump(r);
    }
    const auto& o = s.as_object();
    t.add_row({std::string(kv.key()), str_field(o, "state"), str_field(o, "decision"),
               display_number(o.if_contains("score")), str_field(o, "rank"), str_field(o, "group"),
               reasons});
  }
  t.print(out);
}

int world_evaluate(const Globals& g, const std::string& id, bool dry_run, std::ostream& out,
                   std::ostream& err) {
  if (auto c = check_id("world", id); !c) return report(c.error(), err);
  int rc = kExitOk;
  auto r = answer_for_table(g,
                            {.method = "POST",
                             .path = fmt::format("/worlds/{}/evaluate", id),
                             .body = json::dump(boost::json::object{{"apply", !dry_run}})},
                            out, err, rc);
  if (!r) return rc;
  const auto& o = r->as_object();
  out << fmt::format("evaluation {} of world '{}' (policy version {})\n", str_field(o, "id"), id,
                     str_field(o, "policy_version"));
  print_run(*r, out);
  std::vector<std::string> promote, demote;
  for (const auto& kv : object_at(*r, "strategies")) {
    const auto decision = str_field(kv.value().as_object(), "decision");
    if (decision == "PROMOTE") promote.emplace_back(kv.key());
    if (decision == "DEMOTE") demote.emplace_back(kv.key());
  }
  const std::string p = promote.empty() ? "none" : fmt::format("{}", fmt::join(promote, ", "));
  const std::string d = demote.empty() ? "none" : fmt::format("{}", fmt::join(demote, ", "));
  if (dry_run) {
    out << fmt::format("dry run, nothing applied: would promote {}; would demote {}\n", p, d);
  } else {
    out << fmt::format("applied: promoted {}; demoted {}\n", p, d);
  }
  return kExitOk;
}

int world_evaluations(const Globals& g, const std::string& id,
                      const std::optional<std::string>& run, std::ostream& out, std::ostream& err) {
  if (auto c = check_id("world", id); !c) return report(c.error(), err);
  if (run) {
    int rc = kExitOk;
    auto r = answer_for_table(
        g, {.method = "GET", .path = fmt::format("/worlds/{}/evaluations/{}", id, *run)}, out, err,
        rc);
    if (!r) return rc;
    const auto& o = r->as_object();
    out << fmt::format("evaluation {} of world '{}' at {} (policy version {})\n", *run, id,
                       display_time(str_field(o, "started_at")), str_field(o, "policy_version"));
    print_run(*r, out);
    // Each clause with its value, so the reasons can be checked by hand.
    for (const auto& kv : object_at(*r, "strategies")) {
      const auto& clauses = array_at(kv.value(), "clauses");
      const auto& metrics = object_at(kv.value(), "metrics");
      if (clauses.empty() && metrics.empty()) continue;
      out << fmt::format("\n{} ({} gate):\n", std::string_view(kv.key()),
                         str_field(kv.value().as_object(), "gate"));
      if (!metrics.empty()) {
        std::vector<std::string> parts;
        for (const auto& m : metrics) {
          parts.push_back(
              fmt::format("{} {}", std::string_view(m.key()), display_number(&m.value())));
        }
        out << fmt::format("  metrics: {}\n", fmt::join(parts, ", "));
      }
      if (clauses.empty()) continue;
      Table t({"  CLAUSE", "VALUE", "PASS"});
      for (const auto& c : clauses) {
        const auto& co = c.as_object();
        t.add_row({"  " + str_field(co, "expr"), display_number(co.if_contains("value")),
                   str_field(co, "pass")});
      }
      t.print(out);
    }
    return kExitOk;
  }
  int rc = kExitOk;
  auto r = answer_for_table(g, {.method = "GET", .path = fmt::format("/worlds/{}/evaluations", id)},
                            out, err, rc);
  if (!r) return rc;
  const auto& runs = array_at(*r, "runs");
  if (runs.empty()) {
    out << fmt::format("world '{}' has not been evaluated yet; run `qmtl world evaluate {}`\n", id,
                       id);
    return kExitOk;
  }
  Table t({"RUN", "STARTED", "POLICY", "PROMOTE", "DEMOTE", "HOLD", "OTHER"});
  for (const auto& x : runs) {
    int promote = 0, demote = 0, hold = 0, other = 0;
    for (const auto& kv : object_at(x, "decisions")) {
      const auto d = kv.value().is_string() ? std::string(kv.value().get_string()) : "";
      (d == "PROMOTE" ? promote : d == "DEMOTE" ? demote : d == "HOLD" ? hold : other)++;
    }
    const auto& o = x.as_object();
    t.add_row({str_field(o, "id"), display_time(str_field(o, "started_at")),
               str_field(o, "policy_version"), std::to_string(promote), std::to_string(demote),
               std::to_string(hold), std::to_string(other)});
  }
  t.print(out);
  return kExitOk;
}

int activation_set(const Globals& g, const std::string& id, const std::string& strategy,
                   const std::string& side, bool active, bool force, const std::string& reason,
                   std::ostream& out, std::ostream& err) {
  if (auto c = check_id("world", id); !c) return report(c.error(), err);
  boost::json::object body{
      {"strategy", strategy}, {"side", side}, {"active", active}, {"reason", reason}};
  if (force) body["force"] = true;
  auto r = call_server(g, {.method = "PUT",
                           .path = fmt::format("/worlds/{}/activation", id),
                           .body = json::dump(body)});
  if (!r) return report(r.error(), err);
  const auto& o = r->as_object();
  const bool queued = o.at("queued").as_bool();
  std::string summary =
      fmt::format("{} {}/{} in world '{}'", active ? "opened" : "closed", strategy, side, id);
  if (queued) {
    summary += " (queued: the world is Paused; carried out on resume)";
  } else if (const auto* a = o.if_contains("apply_id"); a != nullptr && a->is_string()) {
    // The override was an FSM event: say which.
    summary += fmt::format("; strategy '{}' is now {} ({})", strategy,
                           str_field(object_at(*r, "strategy"), "state"),
                           std::string_view(a->get_string()));
  }
  print_manual_outcome(g, *r, summary, out, err);
  return kExitOk;
}

int world_audit(const Globals& g, const std::string& id, const std::optional<std::string>& since,
                std::ostream& out, std::ostream& err) {
  if (auto c = check_id("world", id); !c) return report(c.error(), err);
  std::optional<TimePoint> from;
  if (since) {
    // An ISO time, or a duration back from now ("2d").
    if (auto t = parse_timestamp(*since)) {
      from = *t;
    } else if (auto d = parse_duration(*since)) {
      from = SystemClock().now() - *d;
    } else {
      return report({kExitUsage, fmt::format("--since takes a time (2026-01-31T00:00:00Z) or a "
                                             "duration back from now (2d), not '{}'",
                                             *since)},
                    err);
    }
  }
  boost::json::array records;
  int64_t after = 0;
  for (;;) {
    auto r = call_server(
        g,
        {.method = "GET", .path = fmt::format("/worlds/{}/audit?after={}&limit=10000", id, after)});
    if (!r) return report(r.error(), err);
    const auto& page = array_at(*r, "records");
    for (const auto& a : page) {
      auto at = parse_timestamp(str_field(a.as_object(), "at"));
      if (!from || (at && *at >= *from)) records.push_back(a);
    }
    if (page.size() < 10000) break;
    after = r->as_object().at("next_after").as_int64();
  }
  if (g.json()) {
    print_json(boost::json::object{{"world", id}, {"records", std::move(records)}}, out);
    return kExitOk;
  }
  Table t({"SEQ", "AT", "ACTOR", "EVENT", "ENTITY", "CHANGE", "RUN", "REASON"});
  for (const auto& a : records) {
    const auto& o = a.as_object();
    const std::string before = str_field(o, "before"), after_s = str_field(o, "after");
    std::string change =
        before == "-" && after_s == "-" ? "" : fmt::format("{} -> {}", before, after_s);
    std::string entity = str_field(o, "entity");
    if (const auto e = str_field(o, "entity_id"); !e.empty() && e != "-") entity += " " + e;
    t.add_row({str_field(o, "seq"), display_time(str_field(o, "at")), str_field(o, "actor"),
               str_field(o, "event"), entity, change, str_field(o, "run_id"),
               str_field(o, "reason")});
  }
  t.print(out);
  return kExitOk;
}

// world create, list and status.
void add_world_basic_commands(CLI::App* world, const Globals& g, int& rc, std::ostream& out,
                              std::ostream& err) {
  struct Create {
    std::string id;
    std::optional<std::string> name, policy_file;
  };
  auto create_opts = std::make_shared<Create>();
  auto* create = world->add_subcommand(
      "create",
      "create a world\n  e.g. qmtl world create demo --name \"Demo desk\" --policy-file "
      "examples/policies/design.yml");
  create->add_option("world", create_opts->id, "world id (lowercase slug)")->required();
  create->add_option("--name", create_opts->name, "display name (default: the id)");
  create->add_option("--policy-file", create_opts->policy_file, "first policy (YAML or JSON)");
  create->callback([=, &g, &rc, &out, &err] {
    rc = world_create(g, create_opts->id, create_opts->name, create_opts->policy_file, out, err);
  });

  auto* list = world->add_subcommand("list", "list worlds\n  e.g. qmtl world list --output json");
  list->callback([&] { rc = world_list(g, out, err); });

  struct Status {
    std::string id;
    std::optional<std::string> set;
    std::string reason;
  };
  auto st = std::make_shared<Status>();
  auto* status = world->add_subcommand(
      "status",
      "show a world and its strategies, or change its state\n"
      "  e.g. qmtl world status demo --set Paused --reason \"exchange outage\"");
  status->add_option("world", st->id, "world id")->required();
  status->add_option("--set", st->set, "new state")
      ->check(CLI::IsMember({"Active", "EvalOnly", "Paused", "Retired"}));
  status->add_option("--reason", st->reason, "why (recorded in the audit log)");
  status->callback(
      [=, &g, &rc, &out, &err] { rc = world_status(g, st->id, st->set, st->reason, out, err); });
}

// world policy set, show, history and rollback.
void add_world_policy_commands(CLI::App* world, const Globals& g, int& rc, std::ostream& out,
                               std::ostream& err) {
  auto* policy =
      world->add_subcommand("policy", "a world's policy versions")->require_subcommand(1);
  struct Policy {
    std::string id, file, reason;
    std::optional<int64_t> version;
  };
  auto po = std::make_shared<Policy>();
  auto* set = policy->add_subcommand(
      "set",
      "add a policy version and make it current\n"
      "  e.g. qmtl world policy set demo --policy-file examples/policies/design.yml");
  set->add_option("world", po->id, "world id")->required();
  set->add_option("--policy-file", po->file, "policy (YAML or JSON)")->required();
  set->callback([=, &g, &rc, &out, &err] { rc = policy_set(g, po->id, po->file, out, err); });
  auto* show = policy->add_subcommand(
      "show",
      "print the current (or a given) policy version\n  e.g. qmtl world policy show demo "
      "--version 1");
  show->add_option("world", po->id, "world id")->required();
  show->add_option("--version", po->version, "version (default: the current one)");
  show->callback([=, &g, &rc, &out, &err] { rc = policy_show(g, po->id, po->version, out, err); });
  auto* history = policy->add_subcommand(
      "history", "list the policy versions\n  e.g. qmtl world policy history demo");
  history->add_option("world", po->id, "world id")->required();
  history->callback([=, &g, &rc, &out, &err] { rc = policy_history(g, po->id, out, err); });
  auto* rollback = policy->add_subcommand(
      "rollback",
      "make an earlier version current again\n"
      "  e.g. qmtl world policy rollback demo --version 1 --reason \"v2 too strict\"");
  rollback->add_option("world", po->id, "world id")->required();
  rollback->add_option("--version", po->version, "version to make current")->required();
  rollback->add_option("--reason", po->reason, "why (recorded in the audit log)");
  rollback->callback([=, &g, &rc, &out, &err] {
    rc = policy_rollback(g, po->id, po->version.value_or(0), po->reason, out, err);
  });
}

// world evaluate, evaluations and activation.
void add_world_evaluation_commands(CLI::App* world, const Globals& g, int& rc, std::ostream& out,
                                   std::ostream& err) {
  struct Eval {
    std::string id;
    bool dry_run = false;
    bool replay = false;
    std::optional<std::string> run;
  };
  auto ev = std::make_shared<Eval>();
  auto* evaluate = world->add_subcommand("evaluate",
                                         "evaluate the world now and apply the decisions\n"
                                         "  e.g. qmtl world evaluate demo --dry-run");
  evaluate->add_option("world", ev->id, "world id")->required();
  evaluate->add_flag("--dry-run", ev->dry_run, "show what would change without applying it");
  evaluate->callback(
      [=, &g, &rc, &out, &err] { rc = world_evaluate(g, ev->id, ev->dry_run, out, err); });
  auto* evaluations = world->add_subcommand("evaluations",
                                            "list evaluation runs, or explain one\n"
                                            "  e.g. qmtl world evaluations demo --run demo-3 "
                                            "[--replay]");
  evaluations->add_option("world", ev->id, "world id")->required();
  evaluations->add_option("--run", ev->run, "explain this run strategy by strategy");
  evaluations->add_flag("--replay", ev->replay,
                        "with --run: evaluate the run again from its stored inputs and show it "
                        "beside what was recorded");
  evaluations->callback([=, &g, &rc, &out, &err] {
    if (ev->replay && !ev->run) {
      rc = report({kExitUsage, "--replay needs --run RUN"}, err);
    } else if (ev->replay) {
      rc = check_id("world", ev->id) ? print_run_replay(g, ev->id, *ev->run, out, err)
                                     : report(check_id("world", ev->id).error(), err);
    } else {
      rc = world_evaluations(g, ev->id, ev->run, out, err);
    }
  });

  struct Act {
    std::string id, strategy, side, reason;
    bool active = false;
    bool force = false;
  };
  auto act = std::make_shared<Act>();
  auto* activation =
      world->add_subcommand("activation", "manual gate overrides")->require_subcommand(1);
  auto* aset = activation->add_subcommand(
      "set",
      "open or close one strategy side's gate by hand: opening a side of a DryRun strategy\n"
      "promotes it (that side only), closing the last open side of a Live one demotes it\n"
      "  e.g. qmtl world activation set demo --strategy s1 --side long --active false");
  aset->add_option("world", act->id, "world id")->required();
  aset->add_option("--strategy", act->strategy, "strategy id")->required();
  aset->add_option("--side", act->side, "long or short")
      ->required()
      ->check(CLI::IsMember({"long", "short"}));
  aset->add_option("--active", act->active, "true opens the gate, false closes it")->required();
  aset->add_option("--reason", act->reason, "why (recorded in the audit log)");
  aset->add_flag("--force", act->force,
                 "promote even beyond the policy's caps (recorded as forced)");
  aset->callback([=, &g, &rc, &out, &err] {
    rc = activation_set(g, act->id, act->strategy, act->side, act->active, act->force, act->reason,
                        out, err);
  });
}

}  // namespace

void add_world_commands(CLI::App& app, const Globals& g, int& rc, std::ostream& out,
                        std::ostream& err) {
  auto* world = app.add_subcommand("world", "manage worlds")->require_subcommand(1);
  add_world_basic_commands(world, g, rc, out, err);
  add_world_policy_commands(world, g, rc, out, err);
  add_world_evaluation_commands(world, g, rc, out, err);
  add_world_setting_commands(world, g, rc, out, err);
  add_world_report_command(world, g, rc, out, err);
  add_world_replay_command(world, g, rc, out, err);

  struct Audit {
    std::string id;
    std::optional<std::string> since;
  };
  auto au = std::make_shared<Audit>();
  auto* audit = world->add_subcommand(
      "audit", "who changed what, when and why\n  e.g. qmtl world audit demo --since 2d");
  audit->add_option("world", au->id, "world id")->required();
  audit->add_option("--since", au->since, "a time (ISO-8601) or a duration back from now");
  audit->callback([=, &g, &rc, &out, &err] { rc = world_audit(g, au->id, au->since, out, err); });
}

}  // namespace qmtl::cli
