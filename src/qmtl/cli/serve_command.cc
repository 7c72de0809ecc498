// `qmtl serve`: the HTTP server on a store.
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>

#include "qmtl/cli/client.h"
#include "qmtl/cli/number_check.h"
#include "qmtl/core/duration.h"
#include "qmtl/core/sha256.h"
#include "qmtl/execution/manager.h"
#include "qmtl/metrics/correlation.h"
#include "qmtl/scheduler/scheduler.h"
#include "qmtl/server/auth.h"
#include "qmtl/server/http_server.h"
#include "qmtl/server/redis_cache.h"
#include "qmtl/store/change_listener.h"
#include "qmtl/store/store.h"
#include "qmtl/world/world_service.h"

namespace qmtl::cli {
namespace {

struct ServeOptions {
  std::string db = "sqlite:qmtl.db";
  std::string address = "127.0.0.1";
  uint16_t port = 8080;
  std::string log_level = "info";
  std::string token_file;
  bool no_auth = false;
  unsigned threads = 4;
  unsigned io_threads = 1;
  std::optional<size_t> max_connections;  // default: server::default_max_connections()
  std::string heartbeat = "5s";
  std::string activation_ttl = "15s";
  bool access_log = true;
  bool scheduler = true;
  std::string scheduler_poll = "1s";
  bool execution = true;
  std::string exec_dir;               // default: next to the database file
  std::string qmtl_binary;            // default: this executable
  std::string runner_backoff = "1s";  // the first restart delay of a runner that ended
  int runner_crash_limit = 5;         // ends in a row before its strategy fails (0: never)
  bool demo = false;                  // allows a simulated clock
  double clock_speed = 0;             // > 0: simulated time, this many times real time
  std::string clock_start;            // where simulated time starts (default: now)
  std::string redis;                  // redis://HOST[:PORT][/DB]: the shared activation cache
  std::string strategy_programs;      // the directory strategy programs must be in; "": none
  std::string alert_ca_file;          // PEM: https alert certificates are checked against it
};

// Where children's files go when --exec-dir is not given: beside the SQLite
// file, so one database has one set of logs.
std::string default_exec_dir(const std::string& db) {
  if (db.starts_with("sqlite:") && db != "sqlite::memory:") return db.substr(7) + ".exec";
  return (std::filesystem::temp_directory_path() / fmt::format("qmtl-exec-{}", ::getpid()))
      .string();
}

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

// The durations of `qmtl serve`'s options, checked; nullopt (after saying
// what to fix on `err`) for a usage error.
struct ServeDurations {
  Duration poll, heartbeat, ttl, runner_backoff;
};
std::optional<ServeDurations> parse_serve_durations(const ServeOptions& o, std::ostream& err) {
  auto poll = parse_duration(o.scheduler_poll);
  if (!poll || poll->count() < 10'000) {
    err << "qmtl: --scheduler-poll takes a duration of at least 10ms, such as 1s\n";
    return std::nullopt;
  }
  auto heartbeat = parse_duration(o.heartbeat);
  auto ttl = parse_duration(o.activation_ttl);
  if (!heartbeat || !ttl || ttl->count() < 1'000'000) {
    err << "qmtl: --heartbeat and --activation-ttl take durations such as 5s; the TTL is at "
           "least 1s\n";
    return std::nullopt;
  }
  auto runner_backoff = parse_duration(o.runner_backoff);
  if (!runner_backoff || runner_backoff->count() < 10'000) {
    err << "qmtl: --runner-backoff takes a duration of at least 10ms, such as 1s\n";
    return std::nullopt;
  }
  // Simulated time only in demo mode: a server whose "1 day" passes in seconds
  // must never be mistaken for one that decides about real money.
  if (!o.demo && (o.clock_speed != 0 || !o.clock_start.empty())) {
    err << "qmtl: --clock-speed and --clock-start are for demonstrations only; add --demo\n";
    return std::nullopt;
  }
  if (o.demo && !(o.clock_speed >= 1 && o.clock_speed <= 1e9)) {
    err << "qmtl: --demo needs --clock-speed N, from 1 to 1e9 (86400 = a day per second)\n";
    return std::nullopt;
  }
  return ServeDurations{*poll, *heartbeat, *ttl, *runner_backoff};
}

// Logs what one scheduler step did; a failed evaluation also alerts. While
// the database is away its failures go to `outage`, which logs once per interval.
void report_tick(server::AlertDispatcher* alerts, execution::DatabaseOutage& outage,
                 const scheduler::TickOutcome& t) {
  const auto next = format_timestamp(std::chrono::floor<std::chrono::seconds>(t.next_run));
  if (t.kind == scheduler::TickOutcome::Kind::kFailed && t.error &&
      outage.failed("scheduler", Error{*t.error, t.message})) {
    return;  // the database is away: logged once per interval by the outage
  }
  if (t.kind != scheduler::TickOutcome::Kind::kFailed) outage.succeeded();
  switch (t.kind) {
    case scheduler::TickOutcome::Kind::kScheduled:
      spdlog::info("scheduler: world '{}' next evaluation at {}", t.world, next);
      break;
    case scheduler::TickOutcome::Kind::kEvaluated:
      spdlog::info("scheduler: world '{}' evaluated ({}{}); next at {}", t.world, t.run_id,
                   t.applied ? ", applied" : "", next);
      break;
    case scheduler::TickOutcome::Kind::kSkipped:
      spdlog::info("scheduler: {}; next at {}", t.message, next);
      break;
    case scheduler::TickOutcome::Kind::kLeadership:
      spdlog::warn("scheduler: {}", t.message);
      break;
    case scheduler::TickOutcome::Kind::kFailed:
      spdlog::error("scheduler: world '{}': {}", t.world, t.message);
      if (alerts != nullptr && !t.world.empty()) {
        alerts->failure(t.world, fmt::format("scheduled evaluation: {}", t.message));
      }
      break;
  }
}

// Why runners given `token` could not work in a world of a server with
// `tokens`, or "": they post records (operator role) to their world.
std::function<std::string(std::string_view)> runner_token_check(const server::TokenTable& tokens,
                                                                const std::string& token) {
  std::optional<server::Principal> principal;
  if (!token.empty()) principal = tokens.find(token);
  return [set = !token.empty(), principal](std::string_view world) -> std::string {
    std::string why;
    if (!set) {
      why = "QMTL_RUNNER_TOKEN is not set, so a runner could not authenticate";
    } else if (!principal) {
      why = "QMTL_RUNNER_TOKEN is not one of this server's tokens";
    } else if (!principal->has_role(server::Role::kOperator)) {
      why = fmt::format("QMTL_RUNNER_TOKEN is {}'s, a {}: runners need the operator role",
                        principal->name, server::role_name(principal->role));
    } else if (!principal->may_access(world)) {
      why = fmt::format("QMTL_RUNNER_TOKEN is {}'s, which may not touch world '{}'",
                        principal->name, world);
    }
    return why.empty() ? why
                       : fmt::format(
                             "{}; set QMTL_RUNNER_TOKEN to a token with the operator "
                             "role for it and restart qmtl serve",
                             why);
  };
}

// Starts the execution manager, which validates submitted strategies and
// runs the others as child processes reaching this server on `port`.
Result<std::unique_ptr<execution::ExecutionManager>> start_execution(
    const ServeOptions& o, world::WorldService& worlds, const Clock& clock, server::Api& api,
    uint16_t port, const server::TokenTable* tokens, Duration runner_backoff,
    const std::function<bool()>& leads) {
  std::string binary = o.qmtl_binary;
  if (binary.empty()) {
    std::error_code ec;
    binary = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  }
  const char* env_token = std::getenv("QMTL_RUNNER_TOKEN");
  const std::string token = env_token != nullptr ? env_token : "";
  std::function<std::string(std::string_view)> blocked;
  if (tokens != nullptr) {
    blocked = runner_token_check(*tokens, token);
    if (token.empty()) {
      spdlog::warn(
          "QMTL_RUNNER_TOKEN is not set: no runner will be started (DryRun and Live strategies "
          "wait, validations still run; `qmtl world execution` says why); set it to a token "
          "with the operator role and restart (docs/execution.md)");
    }
  }
  const std::string host =
      o.address == "0.0.0.0" || o.address == "::" ? std::string("127.0.0.1") : o.address;
  auto exec = std::make_unique<execution::ExecutionManager>(
      worlds, clock, &api.metrics(),
      execution::ExecutionOptions{
          .qmtl_binary = binary,
          .gateway_url = fmt::format("http://{}:{}", host, port),
          .work_dir = o.exec_dir.empty() ? default_exec_dir(o.db) : o.exec_dir,
          .runner_token = token,
          .runners_blocked = std::move(blocked),
          .strategy_programs = o.strategy_programs,
          // On a simulated clock a second is days: runners post ten times as often.
          .restart_min = std::chrono::duration_cast<std::chrono::milliseconds>(runner_backoff),
          .crash_limit = o.runner_crash_limit,
          .runner_post_every = std::chrono::milliseconds(o.demo ? 100 : 1000),
          .active = leads,
          .outage = &api.outage()});
  if (auto r = exec->start(); !r) return propagate(r);
  return exec;
}

// The start-up lines: where it listens (stdout, which scripts wait for),
// and warnings for a simulated clock or authentication off.
void announce(const ServeOptions& o, server::HttpServer& srv, store::Store& store,
              const Clock* demo_clock, std::optional<size_t> tokens, std::ostream& out) {
  out << fmt::format("qmtl serve: listening on http://{}:{} (db {})", o.address, srv.port(),
                     store.describe())
      << std::endl;
  if (demo_clock != nullptr) {
    spdlog::warn("DEMO: simulated clock from {} at {}x real time; not for real money",
                 format_timestamp(demo_clock->now()), o.clock_speed);
  }
  if (tokens) {
    spdlog::info("authentication on: {} token(s)", *tokens);
  } else {
    spdlog::warn("authentication is OFF (--no-auth): anyone who can connect to {}:{} is admin",
                 o.address, srv.port());
  }
}

// Logs go to stderr so stdout carries only the one "listening" line that
// scripts and tests wait for.
void log_to_stderr(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("qmtl");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

// The --redis activation cache, or null without the option. One namespace per
// database, so qmtl installations may share a Redis.
CliResult<std::unique_ptr<server::RedisActivationCache>> open_redis(const ServeOptions& o,
                                                                    store::Store& store) {
  if (o.redis.empty()) return std::unique_ptr<server::RedisActivationCache>();
  auto r = server::RedisActivationCache::open(o.redis, sha256_hex(store.describe()).substr(0, 16));
  if (!r) return tl::unexpected(Failure{kExitUsage, r.error().message});
  return std::move(*r);
}

// After the HTTP server has stopped: the scheduler (asked to stop when the
// shutdown began; this waits for a tick under way), then the runners, so that
// no transition is applied with no runner left to hand positions over.
void stop_in_order(std::unique_ptr<scheduler::SchedulerThread>& sched_thread, server::Api& api,
                   std::unique_ptr<execution::ExecutionManager>& exec) {
  if (sched_thread) {
    sched_thread.reset();
    spdlog::info("scheduler stopped: nothing is evaluated or applied from here on");
  }
  api.set_execution_manager(nullptr);
  if (exec) {
    spdlog::info("stopping the runners and validations");
    exec.reset();
  }
  spdlog::info("stopped");
}

// Several servers may share a PostgreSQL database: the changes the others
// commit, heard by `api` (null for SQLite, which serves one server per file).
auto listen_for_others(const std::string& db, server::Api& api) {
  return store::listen_for_changes(
      db, {.changed = [&api](std::string_view w) { api.changed_elsewhere(w); },
           .connection =
               [&api](bool up) {
                 if (!up) spdlog::warn("lost the change feed of the database; reconnecting");
                 api.set_change_feed(up);
               }});
}

int serve(const ServeOptions& o, std::ostream& out, std::ostream& err) {
  log_to_stderr(o.log_level);
  // Evaluations and replays make many small products on the server's own
  // threads; OpenBLAS's would only spin beside them (correlation.h).
  metrics::use_one_blas_thread();
  auto tokens = load_tokens(o);
  if (!tokens) {
    err << "qmtl: " << tokens.error().message << '\n';
    return kExitUsage;
  }
  const auto durations = parse_serve_durations(o, err);
  if (!durations) return kExitUsage;
  const auto& [poll, heartbeat, ttl, runner_backoff] = *durations;
  SystemClock system_clock;
  std::optional<ScaledClock> demo_clock;
  if (o.demo) {
    auto start = o.clock_start.empty() ? Result<TimePoint>(system_clock.now())
                                       : parse_timestamp(o.clock_start);
    if (!start) {
      err << "qmtl: --clock-start: " << start.error().message << '\n';
      return kExitUsage;
    }
    demo_clock.emplace(*start, o.clock_speed, system_clock);
  }
  const Clock& clock = demo_clock ? static_cast<const Clock&>(*demo_clock) : system_clock;
  auto store = store::open_store(o.db);
  if (!store) {
    err << "qmtl: " << store.error().message << '\n';
    return kExitRefused;
  }
  world::WorldService worlds(**store, clock);
  if (auto r = worlds.recover_applies(); !r) {
    err << "qmtl: recovering interrupted applies failed: " << r.error().message << '\n';
    return kExitRefused;
  } else if (!r->empty()) {
    spdlog::warn("recovered {} apply(s) interrupted by a crash; see the audit log", r->size());
  }
  auto redis = open_redis(o, **store);
  if (!redis) return report(redis.error(), err);
  server::Api api(
      worlds, clock,
      {.tokens = *tokens ? &**tokens : nullptr,
       .activation_ttl_s = std::chrono::duration_cast<std::chrono::seconds>(ttl).count(),
       .simulated_clock_speed = o.demo ? o.clock_speed : 0,
       .redis = redis->get(),
       .shared_store = (*store)->shared(),
       .strategy_programs = o.strategy_programs,
       .alert_options = {.ca_file = o.alert_ca_file}});
  auto listener = listen_for_others(o.db, api);
  if (!listener) {
    err << "qmtl: " << listener.error().message << '\n';
    return kExitRefused;
  }
  const bool shared_db = *listener != nullptr;
  // Stopped first when the server stops (SIGTERM, or the demo's end): a world
  // evaluated while the runners are being stopped could demote a Live
  // strategy with no runner left to hand its position over.
  std::unique_ptr<scheduler::Scheduler> sched;  // declared first: outlives its thread
  std::unique_ptr<scheduler::SchedulerThread> sched_thread;
  auto srv = server::HttpServer::start(
      {.address = o.address,
       .port = o.port,
       .io_threads = o.io_threads,
       .worker_threads = o.threads,
       .heartbeat = std::chrono::duration_cast<std::chrono::milliseconds>(heartbeat),
       .access_log = o.access_log,
       .handle_signals = true,
       .max_connections = o.max_connections.value_or(server::default_max_connections()),
       .on_shutdown =
           [&sched_thread] {
             if (sched_thread) sched_thread->request_stop();
           }},
      api);
  if (!srv) {
    err << "qmtl: " << srv.error().message << '\n';
    return kExitRefused;
  }
  announce(o, **srv, **store, demo_clock ? &clock : nullptr,
           *tokens ? std::optional((*tokens)->size()) : std::nullopt, out);
  // The scheduler evaluates and applies each world on its policy's schedule.
  if (o.scheduler) {
    sched = std::make_unique<scheduler::Scheduler>(worlds, clock);
    sched_thread = std::make_unique<scheduler::SchedulerThread>(
        *sched, std::chrono::duration_cast<std::chrono::milliseconds>(poll),
        [alerts = api.alerts(), outage = &api.outage()](const scheduler::TickOutcome& t) {
          report_tick(alerts, *outage, t);
        });
  } else {
    spdlog::warn("the scheduler is off (--scheduler false): worlds are evaluated only on request");
  }
  // On a shared database the scheduler leader also sends the alerts and runs
  // the strategies, so each happens once; a server without a scheduler never
  // leads.
  std::function<bool()> leads;
  if (shared_db) {
    leads = [flag = sched ? sched->leading_flag() : nullptr] { return flag && *flag; };
    if (api.alerts() != nullptr) api.alerts()->set_sender(leads);
  }
  // The execution manager validates submitted strategies and runs the others.
  std::unique_ptr<execution::ExecutionManager> exec;
  if (o.execution) {
    auto started = start_execution(o, worlds, clock, api, (*srv)->port(),
                                   *tokens ? &**tokens : nullptr, runner_backoff, leads);
    if (!started) {
      err << "qmtl: " << started.error().message << '\n';
      return kExitRefused;
    }
    exec = std::move(*started);
    api.set_execution_manager(exec.get());
  }
  (*srv)->run();
  stop_in_order(sched_thread, api, exec);
  return kExitOk;
}

}  // namespace

void add_serve_command(CLI::App& app, int& rc, std::ostream& out, std::ostream& err) {
  auto so = std::make_shared<ServeOptions>();
  auto* serve_cmd = app.add_subcommand(
      "serve", "run the qmtl server\n  e.g. qmtl serve --db sqlite:qmtl.db --token-file tokens");
  serve_cmd
      ->add_option("--db", so->db,
                   "database URL: sqlite:PATH or postgres://USER@HOST:PORT/DATABASE")
      ->default_str(so->db);
  serve_cmd->add_option("--redis", so->redis,
                        "shared activation cache: redis://HOST[:PORT][/DB] (password in "
                        "QMTL_REDIS_PASSWORD)");
  serve_cmd
      ->add_option("--alert-ca-file", so->alert_ca_file,
                   "PEM file of the authorities https alert webhooks are checked against "
                   "(default: the system's)")
      ->check(CLI::ExistingFile);
  serve_cmd->add_option("--address", so->address, "listen address")->default_str(so->address);
  serve_cmd->add_option("--port", so->port, "listen port (0 = any free port)")->default_str("8080");
  serve_cmd->add_option("--log-level", so->log_level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->default_str("info");
  serve_cmd->add_option("--token-file", so->token_file,
                        "API tokens, one per line: <name> <role> sha256:<hex>|token:<secret> "
                        "[worlds=a,b] (also QMTL_API_TOKENS)");
  serve_cmd->add_flag("--no-auth", so->no_auth,
                      "serve without authentication: everyone is admin (loopback only)");
  serve_cmd->add_option("--threads", so->threads, "worker threads for database work")
      ->default_str("4")
      ->check(CLI::Range(1, 256));
  serve_cmd
      ->add_option("--max-connections", so->max_connections,
                   "connections open at once; one more is answered 503 (default: the file "
                   "limit, ulimit -n, less 64)")
      ->check(CLI::Range(size_t{1}, size_t{1'000'000}));
  serve_cmd->add_option("--io-threads", so->io_threads, "threads that run the sockets")
      ->default_str("1")
      ->check(CLI::Range(1, 64));
  serve_cmd
      ->add_option("--scheduler", so->scheduler,
                   "evaluate and apply each world on its policy's schedule (true/false)")
      ->default_str("true");
  serve_cmd
      ->add_option("--scheduler-poll", so->scheduler_poll,
                   "how often the scheduler looks for due worlds")
      ->default_str("1s");
  serve_cmd
      ->add_option("--execution", so->execution,
                   "validate submitted strategies and run DryRun/Live ones as child processes, "
                   "in worlds with execution settings (true/false)")
      ->default_str("true");
  serve_cmd
      ->add_option("--runner-backoff", so->runner_backoff,
                   "first delay before a runner that ended is started again (doubling to 60s)")
      ->default_str(so->runner_backoff);
  serve_cmd
      ->add_option("--runner-crash-limit", so->runner_crash_limit,
                   "a runner ending this many times in a row fails its strategy (ERROR: "
                   "Inactive, alerted); 0 = never")
      ->default_str("5")
      ->check(CLI::Range(0, 1000));
  serve_cmd->add_option("--exec-dir", so->exec_dir,
                        "where strategy files and child logs go (default: <db file>.exec)");
  serve_cmd->add_option("--strategy-programs", so->strategy_programs,
                        "accept and run strategy programs from this directory only (qmtl "
                        "strategy submit --command); without it programs are refused");
  serve_cmd->add_option("--qmtl-binary", so->qmtl_binary,
                        "the qmtl executable children run (default: this one)");
  serve_cmd->add_option("--heartbeat", so->heartbeat, "event stream heartbeat interval")
      ->default_str(so->heartbeat);
  serve_cmd
      ->add_option("--activation-ttl", so->activation_ttl,
                   "how long runners may trust a gate without hearing from the server")
      ->default_str(so->activation_ttl);
  serve_cmd->add_flag(
      "--demo", so->demo,
      "demonstration mode: allows the simulated clock below (never for real money)");
  serve_cmd
      ->add_option("--clock-speed", so->clock_speed,
                   "with --demo: simulated time runs N times real time (86400 = a day per second)")
      ->check(finite_in(1.0, 1e9));
  serve_cmd->add_option("--clock-start", so->clock_start,
                        "with --demo: where simulated time starts, e.g. 1994-01-03 (default: now)");
  serve_cmd->add_option("--access-log", so->access_log, "log one line per request (true/false)")
      ->default_str("true");
  serve_cmd->callback([so, &rc, &out, &err] {
    if (!so->strategy_programs.empty()) {
      auto dir = programs_dir_option(so->strategy_programs);
      if (!dir) {
        rc = report(dir.error(), err);
        return;
      }
      so->strategy_programs = dir->value_or("");
    }
    rc = serve(*so, out, err);
  });
}

}  // namespace qmtl::cli
