#include "qmtl/cli/cli.h"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>

#include "qmtl/cli/http_client.h"
#include "qmtl/cli/metrics_command.h"
#include "qmtl/cli/policy_command.h"
#include "qmtl/cli/table.h"
#include "qmtl/core/duration.h"
#include "qmtl/core/id.h"
#include "qmtl/core/json.h"
#include "qmtl/core/time.h"
#include "qmtl/server/http_server.h"
#include "qmtl/store/store.h"
#include "qmtl/world/world_service.h"

namespace qmtl::cli {
namespace {

constexpr std::string_view kDefaultGateway = "http://127.0.0.1:8080";

struct Globals {
  std::string gateway_url{kDefaultGateway};
  std::string output = "table";
  std::string token;  // --token or QMTL_TOKEN
};

// A command's failure: the exit code and the one line to print.
struct Failure {
  int exit_code;
  std::string message;
};

template <typename T>
using CliResult = tl::expected<T, Failure>;

// Calls the server and decodes a JSON answer. Non-2xx answers become a Failure
// carrying the problem's `detail`, so the user sees the server's reason verbatim.
CliResult<boost::json::value> call_server(const Globals& g, HttpCall call) {
  if (call.bearer_token.empty()) call.bearer_token = g.token;
  auto reply = http_request(g.gateway_url, call);
  if (!reply) {
    const int code = reply.error().code == ErrorCode::kUnavailable ? kExitUnreachable : kExitUsage;
    return tl::unexpected(Failure{code, reply.error().message});
  }
  auto doc = json::parse(reply->body);
  if (reply->status < 200 || reply->status > 299) {
    std::string detail = fmt::format("HTTP {}", reply->status);
    if (doc && doc->is_object()) {
      if (const auto* d = doc->get_object().if_contains("detail"); d && d->is_string()) {
        detail = fmt::format("{} (HTTP {})", std::string_view(d->get_string()), reply->status);
      }
    }
    return tl::unexpected(Failure{kExitRefused, detail});
  }
  if (!doc) {
    return tl::unexpected(Failure{
        kExitRefused, fmt::format("the server at {} sent a response that is not JSON; is it a "
                                  "qmtl server?",
                                  g.gateway_url)});
  }
  return std::move(*doc);
}

std::string str_field(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return std::string(v->get_string());
  return boost::json::serialize(*v);
}

// Whole seconds are enough for people; JSON output keeps the full precision.
std::string display_time(const std::string& iso) {
  auto t = parse_timestamp(iso);
  if (!t) return iso;
  return format_timestamp(std::chrono::floor<std::chrono::seconds>(*t));
}

void print_worlds_table(const boost::json::array& worlds, std::ostream& out) {
  if (worlds.empty()) {
    out << "no worlds yet; create one with `qmtl world create <id>`\n";
    return;
  }
  Table t({"ID", "NAME", "STATE", "POLICY", "CREATED"});
  for (const auto& w : worlds) {
    if (!w.is_object()) continue;
    const auto& o = w.get_object();
    t.add_row({str_field(o, "id"), str_field(o, "name"), str_field(o, "state"),
               str_field(o, "policy_version"), display_time(str_field(o, "created_at"))});
  }
  t.print(out);
}

void print_json(const boost::json::value& v, std::ostream& out) { out << json::dump(v) << '\n'; }

int report(const CliResult<boost::json::value>& r, std::ostream& err) {
  err << "qmtl: " << r.error().message << '\n';
  return r.error().exit_code;
}

int world_create(const Globals& g, const std::string& id, const std::optional<std::string>& name,
                 std::ostream& out, std::ostream& err) {
  boost::json::object body{{"id", id}};
  if (name) body["name"] = *name;
  auto r = call_server(g, {.method = "POST", .path = "/worlds", .body = json::dump(body)});
  if (!r) return report(r, err);
  if (g.output == "json") {
    print_json(*r, out);
  } else {
    out << fmt::format("created world '{}'\n", id);
  }
  return kExitOk;
}

int world_list(const Globals& g, std::ostream& out, std::ostream& err) {
  auto r = call_server(g, {.method = "GET", .path = "/worlds"});
  if (!r) return report(r, err);
  if (g.output == "json") {
    print_json(*r, out);
    return kExitOk;
  }
  const auto* worlds = r->is_object() ? r->get_object().if_contains("worlds") : nullptr;
  if (worlds == nullptr || !worlds->is_array()) {
    err << "qmtl: the server's world list has an unexpected shape\n";
    return kExitRefused;
  }
  print_worlds_table(worlds->get_array(), out);
  return kExitOk;
}

int world_status(const Globals& g, const std::string& id, std::ostream& out, std::ostream& err) {
  // Refuse a bad id here so it never becomes a different URL path.
  if (auto v = validate_id("world", id); !v) {
    err << "qmtl: " << v.error().message << '\n';
    return kExitUsage;
  }
  auto r = call_server(g, {.method = "GET", .path = "/worlds/" + id});
  if (!r) return report(r, err);
  if (g.output == "json") {
    print_json(*r, out);
    return kExitOk;
  }
  print_worlds_table(boost::json::array{*r}, out);
  return kExitOk;
}

struct ServeOptions {
  std::string db = "sqlite:qmtl.db";
  std::string address = "127.0.0.1";
  uint16_t port = 8080;
  std::string log_level = "info";
  std::string token_file;
  bool no_auth = false;
  unsigned threads = 4;
  unsigned io_threads = 1;
  std::string heartbeat = "5s";
  std::string activation_ttl = "15s";
  bool access_log = true;
};

bool is_loopback(const std::string& address) {
  return address == "127.0.0.1" || address == "::1" || address == "localhost" ||
         address.starts_with("127.");
}

// The token table from --token-file and QMTL_API_TOKENS; an error when there is
// none and --no-auth was not given: the server never starts open by accident.
Result<std::optional<server::TokenTable>> load_tokens(const ServeOptions& o) {
  server::TokenTable tokens;
  if (!o.token_file.empty()) {
    auto t = server::TokenTable::load_file(o.token_file);
    if (!t) return propagate(t);
    tokens = std::move(*t);
  }
  if (const char* env = std::getenv("QMTL_API_TOKENS"); env != nullptr && *env != '\0') {
    auto t = server::TokenTable::parse(env, "QMTL_API_TOKENS");
    if (!t) return propagate(t);
    if (auto r = tokens.merge(*t); !r) return propagate(r);
  }
  if (o.no_auth) {
    if (!tokens.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--no-auth was given together with tokens; choose one");
    }
    if (!is_loopback(o.address)) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("--no-auth is for local use only and refuses address {}; "
                                    "bind 127.0.0.1 or configure tokens",
                                    o.address));
    }
    return std::optional<server::TokenTable>{};
  }
  if (tokens.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "no API tokens: pass --token-file FILE or set QMTL_API_TOKENS (see "
                      "docs/api.md), or --no-auth for local use");
  }
  return std::optional<server::TokenTable>(std::move(tokens));
}

int serve(const ServeOptions& o, std::ostream& out, std::ostream& err) {
  // Logs go to stderr so stdout carries only the one "listening" line that
  // scripts and tests wait for.
  auto logger = spdlog::stderr_color_mt("qmtl");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(o.log_level));

  auto tokens = load_tokens(o);
  if (!tokens) {
    err << "qmtl: " << tokens.error().message << '\n';
    return kExitUsage;
  }
  auto heartbeat = parse_duration(o.heartbeat);
  auto ttl = parse_duration(o.activation_ttl);
  if (!heartbeat || !ttl || ttl->count() < 1'000'000) {
    err << "qmtl: --heartbeat and --activation-ttl take durations such as 5s; the TTL is at "
           "least 1s\n";
    return kExitUsage;
  }
  auto store = store::open_store(o.db);
  if (!store) {
    err << "qmtl: " << store.error().message << '\n';
    return kExitRefused;
  }
  SystemClock clock;
  world::WorldService worlds(**store, clock);
  if (auto r = worlds.recover_applies(); !r) {
    err << "qmtl: recovering interrupted applies failed: " << r.error().message << '\n';
    return kExitRefused;
  } else if (!r->empty()) {
    spdlog::warn("recovered {} apply(s) interrupted by a crash; see the audit log", r->size());
  }
  server::Api api(
      worlds, clock,
      {.tokens = *tokens ? &**tokens : nullptr,
       .activation_ttl_s = std::chrono::duration_cast<std::chrono::seconds>(*ttl).count()});
  auto srv = server::HttpServer::start(
      {.address = o.address,
       .port = o.port,
       .io_threads = o.io_threads,
       .worker_threads = o.threads,
       .heartbeat = std::chrono::duration_cast<std::chrono::milliseconds>(*heartbeat),
       .access_log = o.access_log,
       .handle_signals = true},
      api);
  if (!srv) {
    err << "qmtl: " << srv.error().message << '\n';
    return kExitRefused;
  }
  out << fmt::format("qmtl serve: listening on http://{}:{} (db {})", o.address, (*srv)->port(),
                     (*store)->describe())
      << std::endl;
  if (*tokens) {
    spdlog::info("authentication on: {} token(s)", (*tokens)->size());
  } else {
    spdlog::warn("authentication is OFF (--no-auth): anyone who can connect to {}:{} is admin",
                 o.address, (*srv)->port());
  }
  (*srv)->run();
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app{"qmtl: decide, by policy and with evidence, which strategies may trade", "qmtl"};
  app.require_subcommand(1);
  app.fallthrough();
  Globals g;
  app.add_option("--gateway-url", g.gateway_url, "qmtl server URL")
      ->envname("QMTL_GATEWAY_URL")
      ->default_str(std::string(kDefaultGateway));
  app.add_option("--token", g.token, "API token (prefer the QMTL_TOKEN variable)")
      ->envname("QMTL_TOKEN");
  app.add_option("--output,-o", g.output, "output format")
      ->check(CLI::IsMember({"table", "json"}))
      ->default_str("table");

  int rc = kExitOk;

  auto* world = app.add_subcommand("world", "manage worlds")->require_subcommand(1);
  auto* create = world->add_subcommand(
      "create", "create a world\n  e.g. qmtl world create demo --name \"Demo desk\"");
  std::string create_id;
  std::optional<std::string> create_name;
  create->add_option("world", create_id, "world id (lowercase slug)")->required();
  create->add_option("--name", create_name, "display name (default: the id)");
  create->callback([&] { rc = world_create(g, create_id, create_name, out, err); });

  auto* list = world->add_subcommand("list", "list worlds\n  e.g. qmtl world list --output json");
  list->callback([&] { rc = world_list(g, out, err); });

  auto* status = world->add_subcommand("status", "show one world\n  e.g. qmtl world status demo");
  std::string status_id;
  status->add_option("world", status_id, "world id")->required();
  status->callback([&] { rc = world_status(g, status_id, out, err); });

  MetricsCommandOptions mo;
  auto* metrics_cmd =
      app.add_subcommand("metrics",
                         "every KPI of equity/PnL/return CSV files, and their correlation\n"
                         "  e.g. qmtl metrics a.csv b.csv --window 4w --worst-loss 1d,1w");
  metrics_cmd
      ->add_option("files", mo.files,
                   "CSV files with a timestamp column and one of "
                   "equity, pnl or return")
      ->required()
      ->check(CLI::ExistingFile);
  metrics_cmd->add_option("--window", mo.window, "also compute over the last W (e.g. 4w)");
  metrics_cmd->add_option("--periods-per-year", mo.periods_per_year,
                          "annualisation factor (default: inferred from the timestamps)");
  metrics_cmd->add_option("--initial-equity", mo.initial_equity,
                          "equity before the first row (required for pnl files)");
  metrics_cmd->add_option("--worst-loss", mo.worst_loss, "windows for worst_loss(w)")
      ->delimiter(',')
      ->default_str("1d");
  metrics_cmd->callback([&] {
    mo.json = g.output == "json";
    rc = run_metrics_command(mo, out, err);
  });

  auto* policy_cmd =
      app.add_subcommand("policy", "check and try out policy files")->require_subcommand(1);
  std::string check_path;
  auto* check = policy_cmd->add_subcommand(
      "check", "validate a policy file\n  e.g. qmtl policy check examples/policies/design.yml");
  check->add_option("policy", check_path, "policy file (YAML or JSON)")->required();
  check->callback([&] { rc = run_policy_check(check_path, g.output == "json", out, err); });

  PolicyEvalOptions pe;
  auto* eval = policy_cmd->add_subcommand(
      "eval",
      "run the selection on given metrics\n"
      "  e.g. qmtl policy eval policy.yml --metrics metrics.json --previous a,b --output json");
  eval->add_option("policy", pe.policy, "policy file (YAML or JSON)")->required();
  eval->add_option("--metrics", pe.metrics, "JSON {\"<strategy>\": {\"<metric>\": number}}")
      ->required();
  eval->add_option("--previous", pe.previous, "strategies live before this evaluation")
      ->delimiter(',');
  eval->add_option("--correlations", pe.correlations, "JSON [{\"a\", \"b\", \"value\"}]");
  eval->add_option("--history", pe.history,
                   "JSON {\"<strategy>\": [{\"at\", \"promote_pass\", \"out\"}]} for hysteresis");
  eval->add_option("--now", pe.now, "evaluation time, ISO-8601 (default: now)");
  eval->add_option("--stage", pe.stage, "QMTL policies: stage that picks the validation profile");
  eval->callback([&] {
    pe.json = g.output == "json";
    rc = run_policy_eval(pe, out, err);
  });

  ServeOptions so;
  auto* serve_cmd = app.add_subcommand(
      "serve", "run the qmtl server\n  e.g. qmtl serve --db sqlite:qmtl.db --port 8080");
  serve_cmd->add_option("--db", so.db, "database URL: sqlite:PATH")->default_str(so.db);
  serve_cmd->add_option("--address", so.address, "listen address")->default_str(so.address);
  serve_cmd->add_option("--port", so.port, "listen port (0 = any free port)")->default_str("8080");
  serve_cmd->add_option("--log-level", so.log_level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->default_str("info");
  serve_cmd->add_option("--token-file", so.token_file,
                        "API tokens, one per line: <name> <role> sha256:<hex>|token:<secret> "
                        "[worlds=a,b] (also QMTL_API_TOKENS)");
  serve_cmd->add_flag("--no-auth", so.no_auth,
                      "serve without authentication: everyone is admin (loopback only)");
  serve_cmd->add_option("--threads", so.threads, "worker threads for database work")
      ->default_str("4")
      ->check(CLI::Range(1, 256));
  serve_cmd->add_option("--io-threads", so.io_threads, "threads that run the sockets")
      ->default_str("1")
      ->check(CLI::Range(1, 64));
  serve_cmd->add_option("--heartbeat", so.heartbeat, "event stream heartbeat interval")
      ->default_str(so.heartbeat);
  serve_cmd
      ->add_option("--activation-ttl", so.activation_ttl,
                   "how long runners may trust a gate without hearing from the server")
      ->default_str(so.activation_ttl);
  serve_cmd->add_option("--access-log", so.access_log, "log one line per request (true/false)")
      ->default_str("true");
  serve_cmd->callback([&] { rc = serve(so, out, err); });

  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return kExitOk;
  } catch (const CLI::CallForAllHelp&) {
    out << app.help("", CLI::AppFormatMode::All);
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    err << "qmtl: " << e.what() << "; run `qmtl --help` for usage\n";
    return kExitUsage;
  }
  return rc;
}

}  // namespace qmtl::cli
