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
namespace {

std::string content_type_for(const std::string& path) {
  return path.ends_with(".json") ? "application/json" : "application/yaml";
}

// Checks a policy file locally first, so the error names the file with line and
// column rather than a server round trip's "policy:3:5".
CliResult<std::string> read_policy(const std::string& path) {
  auto text = read_file(path, "policy file");
  if (!text) return tl::unexpected(Failure{kExitUsage, text.error().message});
  if (auto doc = policy::parse_policy_document(*text, path); !doc) {
    return tl::unexpected(Failure{kExitUsage, doc.error().message});
  }
  return std::move(*text);
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

int alerts(const Globals& g, const std::string& id, const std::optional<std::string>& webhook,
           const std::vector<std::string>& events, const std::optional<std::string>& email_file,
           bool no_email, std::ostream& out, std::ostream& err) {
  if (auto c = check_id("world", id); !c) return report(c.error(), err);
  if (!webhook && !events.empty()) {
    return report({kExitUsage, "--events goes with --webhook (e-mail kinds are in its file)"}, err);
  }
  if (email_file && no_email) return report({kExitUsage, "--email and --no-email conflict"}, err);
  CliResult<boost::json::value> r;
  if (webhook) {
    boost::json::array kinds;
    for (const auto& e : events) kinds.emplace_back(e);
    boost::json::object body{{"webhook", *webhook}};
    if (!kinds.empty()) body["events"] = std::move(kinds);
    r = call_server(
        g,
        {.method = "PUT", .path = fmt::format("/worlds/{}/alerts", id), .body = json::dump(body)});
  } else {
    r = call_server(g, {.method = "GET", .path = fmt::format("/worlds/{}/alerts", id)});
  }
  if (!r) return report(r.error(), err);
  const std::string email_path = fmt::format("/worlds/{}/alerts/email", id);
  CliResult<boost::json::value> e;
  if (email_file) {
    auto doc = read_mapping_file(*email_file, "e-mail file", "e-mail alert settings");
    if (!doc) return report(doc.error(), err);
    e = call_server(g, {.method = "PUT", .path = email_path, .body = json::dump(*doc)});
  } else if (no_email) {
    e = call_server(g, {.method = "DELETE", .path = email_path});
  } else {
    e = call_server(g, {.path = email_path});
  }
  if (!e) return report(e.error(), err);
  boost::json::object all = r->as_object();
  all["email"] = e->as_object().at("email");
  if (g.json()) {
    print_json(all, out);
    return kExitOk;
  }
  const auto kinds_of = [](const boost::json::value& v) {
    std::string kinds;
    for (const auto& k : array_at(v, "events")) {
      kinds += fmt::format("{}{}", kinds.empty() ? "" : ", ", std::string_view(k.as_string()));
    }
    return kinds;
  };
  if (all.at("webhook").is_null()) {
    out << fmt::format("world '{}' posts no alerts to a webhook\n", id);
  } else {
    out << fmt::format("world '{}' alerts {} ({})\n", id, str_field(all, "webhook"), kinds_of(*r));
  }
  if (all.at("email").is_null()) {
    out << fmt::format("world '{}' mails no alerts\n", id);
  } else {
    const auto& m = all.at("email");
    std::string to;
    for (const auto& a : array_at(m, "to")) {
      to += fmt::format("{}{}", to.empty() ? "" : ", ", std::string_view(a.as_string()));
    }
    out << fmt::format("world '{}' mails {} via {} ({}); credentials {}\n", id, to,
                       str_field(m.as_object(), "smtp"), kinds_of(m),
                       str_field(m.as_object(), "credentials"));
  }
  return kExitOk;
}

struct ExecutionOptions {
  std::string id;
  std::optional<std::string> history, window, feed, live_broker, symbol;
  std::optional<double> cash;
  std::optional<int> max_runners, max_validations;
  bool clear = false;
};

// Without options: the settings and the runners. With --history (and the
// rest): sets them, paths made absolute here since the server has its own
// working directory.
int execution(const Globals& g, const ExecutionOptions& o, std::ostream& out, std::ostream& err) {
  if (auto c = check_id("world", o.id); !c) return report(c.error(), err);
  const bool setting = o.history || o.window || o.feed || o.live_broker || o.symbol || o.cash ||
                       o.max_runners || o.max_validations;
  if (setting && !o.history) {
    return report({kExitUsage, "--history is required when setting the execution settings"}, err);
  }
  if (setting && o.clear) return report({kExitUsage, "--clear goes alone"}, err);
  const std::string path = fmt::format("/worlds/{}/execution", o.id);
  if (o.clear || setting) {
    HttpCall call{.method = o.clear ? "DELETE" : "PUT", .path = path};
    if (setting) {
      auto absolute = [](const std::string& p) {
        return std::filesystem::absolute(p).lexically_normal().string();
      };
      boost::json::object body{{"history", absolute(*o.history)}};
      if (o.window) body["window"] = *o.window;
      if (o.feed) body["feed"] = absolute(*o.feed);
      if (o.live_broker) {
        body["live_broker"] = o.live_broker->starts_with("journal:")
                                  ? "journal:" + absolute(o.live_broker->substr(8))
                                  : *o.live_broker;
      }
      if (o.symbol) body["symbol"] = *o.symbol;
      if (o.cash) body["cash"] = *o.cash;
      if (o.max_runners) body["max_runners"] = *o.max_runners;
      if (o.max_validations) body["max_validations"] = *o.max_validations;
      call.body = json::dump(body);
    }
    auto r = call_server(g, call);
    if (!r) return report(r.error(), err);
    if (g.json()) {
      print_json(*r, out);
      return kExitOk;
    }
    out << (o.clear ? fmt::format("world '{}' has no execution settings: the server runs none of "
                                  "its strategies\n",
                                  o.id)
                    : fmt::format("world '{}' execution settings saved\n", o.id));
    return kExitOk;
  }
  int rc = kExitOk;
  auto r = answer_for_table(g, {.path = path}, out, err, rc);
  if (!r) return rc;
  const auto& settings = r->as_object().at("settings");
  if (settings.is_null()) {
    out << fmt::format(
        "world '{}' has no execution settings: the server runs none of its "
        "strategies (set them with --history ...)\n",
        o.id);
  } else {
    const auto& st = settings.as_object();
    out << fmt::format(
        "world '{}': validation on {} (window {}), runners on {}, live broker {}, at most {} "
        "runners and {} validations\n",
        o.id, str_field(st, "history"), str_field(st, "window"), str_field(st, "feed"),
        str_field(st, "live_broker"), display_number(st.if_contains("max_runners")),
        display_number(st.if_contains("max_validations")));
  }
  if (!r->as_object().at("manager").as_bool()) {
    out << "the server runs with --execution false: nothing is validated or run\n";
  }
  Table t({"STRATEGY", "JOB", "STATE", "PID", "RESTARTS", "LAST EXIT", "NOTE"});
  for (const auto& v : array_at(*r, "validations")) {
    const auto& x = v.as_object();
    t.add_row({str_field(x, "strategy"), "validation", str_field(x, "state"),
               display_number(x.if_contains("pid")), "-", "-", ""});
  }
  for (const auto& v : array_at(*r, "runners")) {
    const auto& x = v.as_object();
    t.add_row({str_field(x, "strategy"), "runner", str_field(x, "state"),
               display_number(x.if_contains("pid")), display_number(x.if_contains("restarts")),
               str_field(x, "last_exit"), x.contains("why") ? str_field(x, "why") : ""});
  }
  t.print(out);
  return kExitOk;
}

// `world broker set|show|clear`: the world's live broker, secrets by name only.
int broker(const Globals& g, const std::string& verb, const std::string& id,
           const std::string& file, std::ostream& out, std::ostream& err) {
  if (auto c = check_id("world", id); !c) return report(c.error(), err);
  HttpCall call{.path = fmt::format("/worlds/{}/broker", id)};
  if (verb == "set") {
    auto doc = read_mapping_file(file, "broker file", "a broker configuration");
    if (!doc) return report(doc.error(), err);
    call.method = "PUT";
    call.body = json::dump(*doc);
  } else if (verb == "clear") {
    call.method = "DELETE";
  }
  int rc = kExitOk;
  auto r = answer_for_table(g, call, out, err, rc);
  if (!r) return rc;
  const auto& b = r->as_object().at("broker");
  if (b.is_null()) {
    out << fmt::format(
        "world '{}' has no live broker: live orders are blocked or go to the "
        "execution settings' journal\n",
        id);
    return kExitOk;
  }
  Table t({"SETTING", "VALUE"});
  for (const auto& kv : b.as_object()) {
    if (kv.key() == "password_env" || kv.key() == "password_file") continue;
    t.add_row({std::string(kv.key()), kv.value().is_string() ? std::string(kv.value().as_string())
                                                             : display_number(&kv.value())});
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
                                            "  e.g. qmtl world evaluations demo --run demo-3");
  evaluations->add_option("world", ev->id, "world id")->required();
  evaluations->add_option("--run", ev->run, "explain this run strategy by strategy");
  evaluations->callback(
      [=, &g, &rc, &out, &err] { rc = world_evaluations(g, ev->id, ev->run, out, err); });

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

// world alerts, broker, execution and audit.
void add_world_setting_commands(CLI::App* world, const Globals& g, int& rc, std::ostream& out,
                                std::ostream& err) {
  struct Alerts {
    std::string id;
    std::optional<std::string> webhook;
    std::vector<std::string> events;
    std::optional<std::string> email;
    bool no_email = false;
  };
  auto al = std::make_shared<Alerts>();
  auto* alerts_cmd = world->add_subcommand(
      "alerts",
      "show or set where a world's alerts go (promote, demote, reject, failure)\n"
      "  e.g. qmtl world alerts demo --webhook http://relay:8099/hooks/desk --events "
      "promote,demote --email mail.yml");
  alerts_cmd->add_option("world", al->id, "world id")->required();
  alerts_cmd->add_option("--webhook", al->webhook,
                         "http:// URL that receives Slack-compatible JSON; \"\" removes it");
  alerts_cmd->add_option("--events", al->events, "kinds to send (default: all)")
      ->delimiter(',')
      ->check(CLI::IsMember({"promote", "demote", "reject", "failure"}));
  alerts_cmd
      ->add_option("--email", al->email,
                   "YAML/JSON file of e-mail settings: smtp, from, to, username, password_env, "
                   "events (docs/api.md#alerts)")
      ->check(CLI::ExistingFile);
  alerts_cmd->add_flag("--no-email", al->no_email, "stop mailing alerts");
  alerts_cmd->callback([=, &g, &rc, &out, &err] {
    rc = alerts(g, al->id, al->webhook, al->events, al->email, al->no_email, out, err);
  });

  struct BrokerCmd {
    std::string id, file;
  };
  auto bk = std::make_shared<BrokerCmd>();
  auto* broker_cmd = world->add_subcommand(
      "broker", "a world's live broker (FIX), secrets by reference only (docs/brokers.md)");
  broker_cmd->require_subcommand(1);
  auto* bset = broker_cmd->add_subcommand(
      "set",
      "set it from a YAML file (admin)\n  e.g. qmtl world broker set demo --config broker.yml");
  bset->add_option("world", bk->id, "world id")->required();
  bset->add_option("--config", bk->file, "broker file: host, port, comp ids, password_env, ...")
      ->required()
      ->check(CLI::ExistingFile);
  bset->callback([=, &g, &rc, &out, &err] { rc = broker(g, "set", bk->id, bk->file, out, err); });
  auto* bshow = broker_cmd->add_subcommand("show", "show it\n  e.g. qmtl world broker show demo");
  bshow->add_option("world", bk->id, "world id")->required();
  bshow->callback([=, &g, &rc, &out, &err] { rc = broker(g, "show", bk->id, "", out, err); });
  auto* bclear = broker_cmd->add_subcommand("clear", "remove it (admin)");
  bclear->add_option("world", bk->id, "world id")->required();
  bclear->callback([=, &g, &rc, &out, &err] { rc = broker(g, "clear", bk->id, "", out, err); });

  auto ex = std::make_shared<ExecutionOptions>();
  auto* exec_cmd = world->add_subcommand(
      "execution",
      "show or set how the server validates and runs a world's strategies (docs/execution.md)\n"
      "  e.g. qmtl world execution demo --history data/hist.csv --window 26w --feed "
      "data/live.csv --live-broker journal:orders-{strategy}.jsonl");
  exec_cmd->add_option("world", ex->id, "world id")->required();
  exec_cmd->add_option("--history", ex->history, "OHLCV CSV the validation backtests run on");
  exec_cmd->add_option("--window", ex->window, "backtest only the last W of it (e.g. 26w)");
  exec_cmd->add_option("--feed", ex->feed, "OHLCV CSV the runners follow");
  exec_cmd->add_option("--live-broker", ex->live_broker,
                       "journal:FILE ({strategy} becomes the strategy id)");
  exec_cmd->add_option("--symbol", ex->symbol, "symbol of the bars (default: each strategy's)");
  exec_cmd->add_option("--cash", ex->cash, "starting cash of backtests and paper books");
  exec_cmd->add_option("--max-runners", ex->max_runners, "runners at once in the world");
  exec_cmd->add_option("--max-validations", ex->max_validations,
                       "validation backtests at once in the world");
  exec_cmd->add_flag("--clear", ex->clear, "remove the settings: the server stops running them");
  exec_cmd->callback([=, &g, &rc, &out, &err] { rc = execution(g, *ex, out, err); });

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

}  // namespace

void add_world_commands(CLI::App& app, const Globals& g, int& rc, std::ostream& out,
                        std::ostream& err) {
  auto* world = app.add_subcommand("world", "manage worlds")->require_subcommand(1);
  add_world_basic_commands(world, g, rc, out, err);
  add_world_policy_commands(world, g, rc, out, err);
  add_world_evaluation_commands(world, g, rc, out, err);
  add_world_setting_commands(world, g, rc, out, err);
}

}  // namespace qmtl::cli
