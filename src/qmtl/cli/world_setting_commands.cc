// `qmtl world alerts|broker|execution`: where a world's alerts go, its live
// broker and how the server runs its strategies (docs/cli.md).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <optional>

#include "qmtl/cli/client.h"
#include "qmtl/cli/number_check.h"
#include "qmtl/cli/table.h"
#include "qmtl/core/duration.h"
#include "qmtl/core/file.h"
#include "qmtl/core/json.h"
#include "qmtl/policy/document.h"

namespace qmtl::cli {
namespace {

struct AlertsOptions {
  std::string id;
  std::optional<std::string> webhook;
  std::vector<std::string> events;
  std::optional<std::string> email, telegram;  // files of settings
  bool no_email = false, no_telegram = false;
};

// GET, PUT (from a YAML/JSON file) or DELETE one kind of alert settings
// (email, telegram); the settings as the server shows them, or null.
CliResult<boost::json::value> alert_channel(const Globals& g, const std::string& id,
                                            std::string_view key,
                                            const std::optional<std::string>& file, bool remove,
                                            std::string_view what) {
  const std::string path = fmt::format("/worlds/{}/alerts/{}", id, key);
  CliResult<boost::json::value> r;
  if (file) {
    auto doc = read_mapping_file(*file, fmt::format("{} file", what),
                                 fmt::format("{} alert settings", what));
    if (!doc) return tl::unexpected(doc.error());
    r = call_server(g, {.method = "PUT", .path = path, .body = json::dump(*doc)});
  } else if (remove) {
    r = call_server(g, {.method = "DELETE", .path = path});
  } else {
    r = call_server(g, {.path = path});
  }
  if (!r) return r;
  return r->as_object().at(key);
}

int alerts(const Globals& g, const AlertsOptions& o, std::ostream& out, std::ostream& err) {
  const std::string& id = o.id;
  if (auto c = check_id("world", id); !c) return report(c.error(), err);
  if (!o.webhook && !o.events.empty()) {
    return report(
        {kExitUsage, "--events goes with --webhook (e-mail and Telegram kinds are in their files)"},
        err);
  }
  if (o.email && o.no_email) return report({kExitUsage, "--email and --no-email conflict"}, err);
  if (o.telegram && o.no_telegram) {
    return report({kExitUsage, "--telegram and --no-telegram conflict"}, err);
  }
  CliResult<boost::json::value> r;
  if (o.webhook) {
    boost::json::array kinds;
    for (const auto& e : o.events) kinds.emplace_back(e);
    boost::json::object body{{"webhook", *o.webhook}};
    if (!kinds.empty()) body["events"] = std::move(kinds);
    r = call_server(
        g,
        {.method = "PUT", .path = fmt::format("/worlds/{}/alerts", id), .body = json::dump(body)});
  } else {
    r = call_server(g, {.method = "GET", .path = fmt::format("/worlds/{}/alerts", id)});
  }
  if (!r) return report(r.error(), err);
  auto e = alert_channel(g, id, "email", o.email, o.no_email, "e-mail");
  if (!e) return report(e.error(), err);
  auto t = alert_channel(g, id, "telegram", o.telegram, o.no_telegram, "Telegram");
  if (!t) return report(t.error(), err);
  boost::json::object all = r->as_object();
  all["email"] = std::move(*e);
  all["telegram"] = std::move(*t);
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
  if (all.at("telegram").is_null()) {
    out << fmt::format("world '{}' sends no alerts to Telegram\n", id);
  } else {
    const auto& m = all.at("telegram").as_object();
    out << fmt::format("world '{}' sends alerts to Telegram chat {} via {} ({}); {}\n", id,
                       str_field(m, "chat_id"), str_field(m, "api"), kinds_of(m),
                       str_field(m, "credentials"));
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

}  // namespace

// world alerts, broker, execution and audit.
void add_world_setting_commands(CLI::App* world, const Globals& g, int& rc, std::ostream& out,
                                std::ostream& err) {
  auto al = std::make_shared<AlertsOptions>();
  auto* alerts_cmd = world->add_subcommand(
      "alerts",
      "show or set where a world's alerts go (promote, demote, reject, failure)\n"
      "  e.g. qmtl world alerts demo --webhook http://relay:8099/hooks/desk --events "
      "promote,demote --email mail.yml --telegram telegram.yml");
  alerts_cmd->add_option("world", al->id, "world id")->required();
  alerts_cmd->add_option("--webhook", al->webhook,
                         "http(s):// URL that receives Slack-compatible JSON; \"\" removes it");
  alerts_cmd->add_option("--events", al->events, "kinds to send (default: all)")
      ->delimiter(',')
      ->check(CLI::IsMember({"promote", "demote", "reject", "failure"}));
  alerts_cmd
      ->add_option("--email", al->email,
                   "YAML/JSON file of e-mail settings: smtp, from, to, username, password_env, "
                   "events (docs/api.md#alerts)")
      ->check(CLI::ExistingFile);
  alerts_cmd->add_flag("--no-email", al->no_email, "stop mailing alerts");
  alerts_cmd
      ->add_option("--telegram", al->telegram,
                   "YAML/JSON file of Telegram settings: chat_id, token_env or token_file, "
                   "events (docs/api.md#alerts)")
      ->check(CLI::ExistingFile);
  alerts_cmd->add_flag("--no-telegram", al->no_telegram, "stop sending alerts to Telegram");
  alerts_cmd->callback([=, &g, &rc, &out, &err] { rc = alerts(g, *al, out, err); });

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
  exec_cmd->add_option("--cash", ex->cash, "starting cash of backtests and paper books")
      ->check(finite_above(0));
  exec_cmd->add_option("--max-runners", ex->max_runners, "runners at once in the world");
  exec_cmd->add_option("--max-validations", ex->max_validations,
                       "validation backtests at once in the world");
  exec_cmd->add_flag("--clear", ex->clear, "remove the settings: the server stops running them");
  exec_cmd->callback([=, &g, &rc, &out, &err] { rc = execution(g, *ex, out, err); });
}

}  // namespace qmtl::cli
