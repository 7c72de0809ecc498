#include "qmtl/execution/manager.h"

#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "qmtl/core/duration.h"
#include "qmtl/core/file.h"
#include "qmtl/core/json.h"
#include "qmtl/world/performance_records.h"

namespace qmtl::execution {

using lifecycle::StrategyState;
using lifecycle::WorldState;

namespace {

constexpr std::string_view kActor = "execution";

// The last non-empty line of a child's log: usually the one error it printed.
std::string last_line(const std::string& path) {
  std::ifstream f(path);
  std::string line, last;
  while (std::getline(f, line)) {
    if (!line.empty()) last = line;
  }
  if (last.starts_with("qmtl: ")) last.erase(0, 6);
  if (last.size() > 500) last.resize(500);
  return last;
}

std::string iso(TimePoint t) {
  return format_timestamp(std::chrono::floor<std::chrono::seconds>(t));
}

}  // namespace

struct ExecutionManager::Job {
  std::string strategy, world;
  ChildProcess proc;
  SteadyTime started;
  TimePoint started_wall;
  double cash = 0;
  bool timed_out = false;
  // A finished run whose result the world refused for now (it is Paused).
  std::optional<world::BacktestOutcome> pending;
};

struct ExecutionManager::Runner {
  enum class State { kRunning, kRestarting, kWaiting, kStopping };
  std::string strategy, world;
  std::string symbol;  // the strategy's orders.symbol, for {symbol} in the feed path
  State state = State::kWaiting;
  std::optional<ChildProcess> proc;
  SteadyTime started{}, next_start{}, stop_deadline{};
  TimePoint started_wall{};
  int starts = 0;
  int consecutive_failures = 0;
  std::string last_exit;
  std::string why;  // of kWaiting or kStopping
};

namespace {

// The symbol a strategy spec trades (orders.symbol); "" when it names none.
std::string symbol_of(const std::string& spec) {
  auto doc = json::parse(spec);
  if (!doc || !doc->is_object()) return {};
  const auto* orders = doc->as_object().if_contains("orders");
  if (orders == nullptr || !orders->is_object()) return {};
  const auto* symbol = orders->as_object().if_contains("symbol");
  return symbol != nullptr && symbol->is_string() ? std::string(symbol->as_string()) : "";
}

// A settings path with {symbol} replaced: one history or feed file per symbol.
std::string per_symbol(std::string path, const std::string& symbol) {
  for (size_t at; (at = path.find("{symbol}")) != std::string::npos;) {
    path.replace(at, 8, symbol);
  }
  return path;
}

std::string_view runner_state_name(int s) {
  static constexpr std::string_view kNames[] = {"running", "restarting", "waiting", "stopping"};
  return kNames[s];
}

}  // namespace

ExecutionManager::ExecutionManager(world::WorldService& worlds, const Clock& clock,
                                   ExecutionMetrics* metrics, ExecutionOptions options)
    : worlds_(worlds), clock_(clock), metrics_(metrics), options_(std::move(options)) {}

ExecutionManager::~ExecutionManager() { stop(); }

Result<void> ExecutionManager::start() {
  std::error_code ec;
  std::filesystem::create_directories(options_.work_dir, ec);
  if (ec) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("cannot create the execution directory {}: {}", options_.work_dir,
                                  ec.message()));
  }
  thread_ = std::thread([this] { loop(); });
  return {};
}

void ExecutionManager::wake() {
  {
    std::lock_guard lock(wake_mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void ExecutionManager::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(wake_mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ExecutionManager::loop() {
  {
    std::unique_lock wait(wake_mu_);
    while (!stop_) {
      woken_ = false;
      wait.unlock();
      tick();
      wait.lock();
      if (options_.outage != nullptr && options_.outage->down()) {
        // Every change notification while the database is away would only
        // fail again: wait out the backoff instead.
        cv_.wait_for(wait, options_.outage->backoff(options_.poll, std::chrono::seconds(10)),
                     [this] { return stop_; });
      } else {
        cv_.wait_for(wait, options_.poll, [this] { return stop_ || woken_; });
      }
    }
  }
  // Children end with this thread (their parent-death signal): end them in order.
  std::unique_lock lock(mu_);
  jobs_.clear();  // killed; Validating strategies are validated again next time
  for (auto& [id, r] : runners_) {
    if (r->proc) r->proc->signal(SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + options_.stop_grace;
  for (auto& [id, r] : runners_) {
    while (r->proc && !r->proc->poll() && std::chrono::steady_clock::now() < deadline) {
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      lock.lock();
    }
  }
  runners_.clear();  // SIGKILL to any left
}

void ExecutionManager::tick() {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  reap(now);
  if (options_.active && !options_.active()) {
    for (auto& [id, r] : runners_) stop_runner(*r, now, "another server leads");
    return;
  }
  auto worlds = worlds_.list_worlds();
  if (!worlds) {
    if (options_.outage == nullptr || !options_.outage->failed("execution", worlds.error())) {
      spdlog::error("execution: cannot list worlds: {}", worlds.error().message);
    }
    return;
  }
  if (options_.outage != nullptr) options_.outage->succeeded();
  std::set<std::string, std::less<>> seen;
  for (const auto& w : *worlds) {
    seen.insert(w.id);
    tick_world(w, now);
  }
  for (auto& [id, r] : runners_) {
    if (!seen.contains(r->world)) stop_runner(*r, now, "its world is gone");
  }
}

void ExecutionManager::reap(SteadyTime now) {
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    Job& job = *it->second;
    if (!job.pending && !job.proc.poll() && now - job.started > options_.validation_timeout) {
      job.timed_out = true;
      job.proc.signal(SIGKILL);
    }
    if (job.pending || job.proc.poll()) {
      finish_job(job);
      if (!job.pending) {
        it = jobs_.erase(it);
        continue;
      }
    }
    ++it;
  }
  for (auto it = runners_.begin(); it != runners_.end();) {
    Runner& r = *it->second;
    if (r.proc) {
      if (auto st = r.proc->poll()) {
        r.last_exit = ChildProcess::describe(*st);
        r.proc.reset();
        if (r.state == Runner::State::kStopping) {
          spdlog::info("execution: runner of '{}' stopped ({})", r.strategy, r.last_exit);
          it = runners_.erase(it);
          continue;
        }
        // It should still be running: start it again after a backoff that
        // grows while it keeps dying and starts afresh once it ran for a while.
        if (now - r.started >= options_.stable_after) r.consecutive_failures = 0;
        ++r.consecutive_failures;
        if (metrics_ != nullptr) metrics_->runner_exited(r.world);
        if (options_.crash_limit > 0 && r.consecutive_failures >= options_.crash_limit) {
          // A crash loop: the strategy fails (ERROR) rather than restarting
          // forever; the world takes it out of trading and alerts.
          const std::string why = fmt::format(
              "its runner ended {} times in a row without running {} s (last: {}); see {}",
              r.consecutive_failures,
              std::chrono::duration_cast<std::chrono::seconds>(options_.stable_after).count(),
              r.last_exit, path_for(r.strategy, "runner.log"));
          auto failed = worlds_.apply_strategy_event(r.strategy, lifecycle::StrategyEvent::kError,
                                                     kActor, why);
          if (failed) {
            spdlog::error("execution: strategy '{}' failed: {}", r.strategy, why);
            it = runners_.erase(it);
            continue;
          }
          spdlog::warn("execution: strategy '{}' could not be failed ({}); restarting its runner",
                       r.strategy, failed.error().message);
        }
        auto delay = options_.restart_min;
        for (int i = 1; i < r.consecutive_failures && delay < options_.restart_max; ++i) delay *= 2;
        delay = std::min(delay, options_.restart_max);
        r.state = Runner::State::kRestarting;
        r.next_start = now + delay;
        spdlog::warn("execution: runner of '{}' ended ({}); restarting in {} ms; see {}",
                     r.strategy, r.last_exit, delay.count(), path_for(r.strategy, "runner.log"));
      } else if (r.state == Runner::State::kStopping && now >= r.stop_deadline) {
        r.proc->signal(SIGKILL);
      }
    } else if (r.state == Runner::State::kStopping) {
      it = runners_.erase(it);
      continue;
    }
    ++it;
  }
}

void ExecutionManager::tick_world(const world::World& w, SteadyTime now) {
  std::optional<world::ExecutionSettings> settings;
  if (auto s = worlds_.get_execution(w.id); !s) {
    // Once per distinct error, not once per poll.
    if (auto& last = settings_errors_[w.id]; last != s.error().message) {
      last = s.error().message;
      spdlog::error("execution: world '{}': {}", w.id, last);
    }
  } else {
    settings_errors_.erase(w.id);
    settings = std::move(*s);
  }
  const bool executing =
      settings && (w.state == WorldState::kActive || w.state == WorldState::kEvalOnly);
  std::optional<world::BrokerSettings> broker;
  if (executing) {
    if (auto b = worlds_.get_broker(w.id); !b) {
      spdlog::error("execution: world '{}': {}", w.id, b.error().message);
    } else {
      broker = std::move(*b);
    }
  }
  std::set<std::string, std::less<>> validating;
  // Strategies that should have a runner, with their specs.
  Wanted wanted;
  std::vector<world::Strategy> strategies;
  if (executing) {
    auto list = worlds_.list_strategies(w.id);
    if (!list) {
      spdlog::error("execution: world '{}': {}", w.id, list.error().message);
      return;
    }
    strategies = std::move(*list);
  }
  int jobs_running = 0;
  for (const auto& [id, j] : jobs_) {
    if (j->world == w.id) ++jobs_running;
  }
  for (const auto& s : strategies) {
    if (s.state == StrategyState::kSubmitted) {
      auto r = worlds_.apply_strategy_event(s.id, lifecycle::StrategyEvent::kSubmit, kActor,
                                            "queued for validation");
      if (!r) {
        spdlog::error("execution: strategy '{}': {}", s.id, r.error().message);
        continue;
      }
      wake();  // validate it at once rather than at the next poll
    } else if (s.state == StrategyState::kValidating) {
      validating.insert(s.id);
      if (!jobs_.contains(s.id) && jobs_running < settings->max_validations) {
        start_job(s, *settings, now);
        ++jobs_running;
      }
    } else if ((s.state == StrategyState::kDryRun || s.state == StrategyState::kLive) &&
               !settings->feed.empty()) {
      wanted.emplace(s.id, &s.spec);
    }
  }
  // A job whose strategy is no longer Validating (archived meanwhile, or the
  // world's settings removed) has nothing to report to.
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    if (it->second->world == w.id && !validating.contains(it->first) && executing &&
        !it->second->pending) {
      spdlog::info("execution: validation of '{}' abandoned: it is no longer Validating",
                   it->first);
      it = jobs_.erase(it);
    } else {
      ++it;
    }
  }
  tick_runners(w, settings ? &*settings : nullptr, executing, broker ? &*broker : nullptr, wanted,
               now);
}

// Runners: stop the unwanted, start the wanted within the world's limit.
void ExecutionManager::tick_runners(const world::World& w, const world::ExecutionSettings* settings,
                                    bool executing, const world::BrokerSettings* broker,
                                    const Wanted& wanted, SteadyTime now) {
  int slots = 0;
  for (auto& [id, r] : runners_) {
    if (r->world != w.id) continue;
    if (!wanted.contains(id)) {
      stop_runner(*r, now,
                  !settings ? "the world has no execution settings"
                  : !executing
                      ? fmt::format("the world is {}", lifecycle::world_state_name(w.state))
                  : settings->feed.empty() ? "the world's settings have no feed"
                                           : "the strategy is neither DryRun nor Live");
    } else if (r->state == Runner::State::kRunning || r->state == Runner::State::kRestarting) {
      ++slots;
    }
  }
  // Runners that could not reach the server wait (ExecutionOptions::runners_blocked).
  std::string blocked;
  if (options_.runners_blocked && !wanted.empty()) blocked = options_.runners_blocked(w.id);
  if (auto& last = blocked_logged_[w.id]; last != blocked) {
    last = blocked;
    if (!blocked.empty()) {
      spdlog::warn("execution: world '{}': no runner is started: {}", w.id, blocked);
    }
  }
  for (const auto& [id, spec] : wanted) {
    auto it = runners_.find(id);
    if (it == runners_.end()) {
      auto r = std::make_unique<Runner>();
      r->strategy = id;
      r->world = w.id;
      r->symbol = symbol_of(*spec);  // parsed once, when its runner is made
      it = runners_.emplace(id, std::move(r)).first;
    }
    Runner& r = *it->second;
    if (r.state == Runner::State::kStopping) continue;  // started again once it is gone
    if (!blocked.empty() &&
        (r.state == Runner::State::kWaiting || r.state == Runner::State::kRestarting)) {
      r.state = Runner::State::kWaiting;
      r.why = blocked;
      continue;
    }
    if (r.state == Runner::State::kWaiting) {
      if (slots >= settings->max_runners) {
        r.why = fmt::format("max_runners {} reached in world '{}'", settings->max_runners, w.id);
        continue;
      }
      ++slots;
      start_runner(r, *settings, broker, now);
    } else if (r.state == Runner::State::kRestarting && now >= r.next_start) {
      start_runner(r, *settings, broker, now);
    }
  }
}

std::string ExecutionManager::programs_option() const {
  return options_.strategy_programs.empty() ? "none" : options_.strategy_programs;
}

std::string ExecutionManager::path_for(std::string_view strategy, std::string_view what) const {
  return (std::filesystem::path(options_.work_dir) / fmt::format("{}.{}", strategy, what)).string();
}

void ExecutionManager::start_job(const world::Strategy& s, const world::ExecutionSettings& settings,
                                 SteadyTime now) {
  const std::string spec = path_for(s.id, "strategy.json");
  const std::string records = path_for(s.id, "validation.records.json");
  const std::string out = path_for(s.id, "validation.out");
  const std::string log = path_for(s.id, "validation.log");
  std::error_code ec;
  for (const auto& p : {records, out, log}) std::filesystem::remove(p, ec);
  if (auto r = write_file_atomically(spec, s.spec); !r) {
    spdlog::error("execution: cannot write {}: {}", spec, r.error().message);
    return;
  }
  std::vector<std::string> argv{options_.qmtl_binary,
                                "--output",
                                "json",
                                "backtest",
                                spec,
                                "--data",
                                per_symbol(settings.history, symbol_of(s.spec)),
                                "--records",
                                records,
                                "--cash",
                                fmt::format("{}", settings.cash),
                                "--strategy-programs",
                                programs_option()};
  if (settings.window) {
    argv.push_back("--window");
    argv.push_back(format_duration(*settings.window));
  }
  if (!settings.symbol.empty()) {
    argv.push_back("--symbol");
    argv.push_back(settings.symbol);
  }
  auto child =
      ChildProcess::spawn({.argv = std::move(argv), .stdout_path = out, .stderr_path = log});
  if (!child) {
    spdlog::error("execution: cannot start the validation of '{}': {}", s.id,
                  child.error().message);
    return;
  }
  spdlog::info("execution: validating '{}' (pid {}) on {}", s.id, child->pid(),
               per_symbol(settings.history, symbol_of(s.spec)));
  jobs_.emplace(s.id, std::make_unique<Job>(Job{.strategy = s.id,
                                                .world = s.world_id,
                                                .proc = std::move(*child),
                                                .started = now,
                                                .started_wall = clock_.now(),
                                                .cash = settings.cash}));
}

void ExecutionManager::finish_job(Job& job) {
  if (!job.pending) {
    world::BacktestOutcome o{.initial_equity = job.cash, .started_at = job.started_wall};
    const int status = *job.proc.poll();
    const std::string records_path = path_for(job.strategy, "validation.records.json");
    if (job.timed_out) {
      o.error = fmt::format("it ran longer than {} s and was stopped",
                            options_.validation_timeout.count());
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      const std::string why = last_line(path_for(job.strategy, "validation.log"));
      o.error = fmt::format("qmtl backtest ended with {}{}{}", ChildProcess::describe(status),
                            why.empty() ? "" : ": ", why);
    } else {
      auto text = read_file(records_path, "backtest records", kMaxDataBytes);
      auto doc = text ? json::parse(*text) : Result<boost::json::value>(propagate(text));
      auto obj = doc ? json::as_object(*doc, "the backtest records")
                     : Result<const boost::json::object*>(propagate(doc));
      auto recs = obj ? world::parse_performance_records(**obj)
                      : Result<world::PerformanceRecords>(propagate(obj));
      if (!recs) {
        o.error = fmt::format("its records are unreadable: {}", recs.error().message);
      } else {
        o.ok = true;
        o.points = std::move(recs->points);
        o.fills = std::move(recs->fills);
        if (auto summary = read_file(path_for(job.strategy, "validation.out"))) {
          if (auto v = json::parse(*summary); v && v->is_object()) {
            if (const auto* bars = v->as_object().if_contains("bars"); bars && bars->is_int64()) {
              o.bars = static_cast<size_t>(bars->as_int64());
            }
          }
        }
      }
    }
    job.pending = std::move(o);
  }
  auto v = worlds_.finish_validation(job.strategy, *job.pending, kActor);
  if (!v) {
    auto w = worlds_.get_world(job.world);
    if (w && w->state == WorldState::kPaused) return;  // kept for when it resumes
    spdlog::warn("execution: the validation of '{}' was not recorded: {}", job.strategy,
                 v.error().message);
    job.pending.reset();
    return;
  }
  job.pending.reset();
  if (metrics_ != nullptr) metrics_->validation(job.world, v->outcome);
  spdlog::info("execution: strategy '{}': {}", job.strategy, v->reason);
  wake();  // start its runner without waiting for the next poll
}

void ExecutionManager::start_runner(Runner& r, const world::ExecutionSettings& settings,
                                    const world::BrokerSettings* broker, SteadyTime now) {
  std::vector<std::string> argv{
      options_.qmtl_binary,
      "--gateway-url",
      options_.gateway_url,
      "run",
      r.strategy,
      "--feed",
      per_symbol(settings.feed, r.symbol),
      "--follow",
      "--cash",
      fmt::format("{}", settings.cash),
      "--post-every",
      fmt::format("{}", std::chrono::duration<double>(options_.runner_post_every).count()),
      "--strategy-programs",
      programs_option()};
  auto per_strategy = [&r](std::string text) {
    for (size_t at; (at = text.find("{strategy}")) != std::string::npos;) {
      text.replace(at, 10, r.strategy);
    }
    return text;
  };
  if (broker != nullptr) {
    // The world's FIX broker, one session per runner. The file names where the
    // password is, never the password: the runner reads it from its
    // environment (inherited from the server) or the file.
    std::string yml = fmt::format(
        "host: {}\nport: {}\nsender_comp_id: {}\ntarget_comp_id: {}\nstore_dir: {}\n"
        "log: {}\nheartbeat: {}s\n",
        broker->host, broker->port, per_strategy(broker->sender_comp_id),
        per_strategy(broker->target_comp_id), path_for(r.strategy, "fix-store"),
        path_for(r.strategy, "fix.log"), broker->heartbeat_s);
    if (!broker->account.empty()) yml += fmt::format("account: {}\n", broker->account);
    if (!broker->username.empty()) yml += fmt::format("username: {}\n", broker->username);
    if (!broker->password_env.empty())
      yml += fmt::format("password_env: {}\n", broker->password_env);
    if (!broker->password_file.empty()) {
      yml += fmt::format("password_file: {}\n", broker->password_file);
    }
    const std::string file = path_for(r.strategy, "broker.yml");
    if (auto w = write_file_atomically(file, yml); !w) {
      spdlog::error("execution: cannot write {}: {}", file, w.error().message);
      return;
    }
    argv.push_back("--live-broker");
    argv.push_back("fix:" + file);
  } else if (!settings.live_broker.empty()) {
    // One journal per strategy when the path asks for it.
    argv.push_back("--live-broker");
    argv.push_back(per_strategy(settings.live_broker));
  }
  if (!settings.symbol.empty()) {
    argv.push_back("--symbol");
    argv.push_back(settings.symbol);
  }
  ChildSpec spec{.argv = std::move(argv),
                 .stdout_path = path_for(r.strategy, "runner.log"),
                 .stderr_path = path_for(r.strategy, "runner.log")};
  if (!options_.runner_token.empty()) spec.env.emplace_back("QMTL_TOKEN", options_.runner_token);
  auto child = ChildProcess::spawn(spec);
  const bool restart = r.starts > 0;
  if (!child) {
    r.state = Runner::State::kRestarting;
    r.next_start = now + options_.restart_max;
    r.last_exit = child.error().message;
    spdlog::error("execution: cannot start the runner of '{}': {}", r.strategy,
                  child.error().message);
    return;
  }
  r.proc = std::move(*child);
  r.state = Runner::State::kRunning;
  r.started = now;
  r.started_wall = clock_.now();
  r.why.clear();
  ++r.starts;
  if (metrics_ != nullptr) metrics_->runner_started(r.world, restart);
  spdlog::info("execution: runner of '{}' {} (pid {})", r.strategy,
               restart ? "restarted" : "started", r.proc->pid());
}

void ExecutionManager::stop_runner(Runner& r, SteadyTime now, std::string why) {
  if (r.state == Runner::State::kStopping) return;
  r.why = std::move(why);
  if (!r.proc) {
    r.state = Runner::State::kStopping;  // nothing running: dropped at the next reap
    return;
  }
  spdlog::info("execution: stopping the runner of '{}': {}", r.strategy, r.why);
  r.proc->signal(SIGTERM);
  r.state = Runner::State::kStopping;
  r.stop_deadline = now + options_.stop_grace;
}

boost::json::object ExecutionManager::status(std::string_view world_id) const {
  std::lock_guard lock(mu_);
  boost::json::array validations, runners;
  for (const auto& [id, j] : jobs_) {
    if (j->world != world_id) continue;
    validations.push_back({{"strategy", id},
                           {"pid", j->proc.pid()},
                           {"started_at", iso(j->started_wall)},
                           {"state", j->pending ? "waiting for the world to resume" : "running"}});
  }
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [id, r] : runners_) {
    if (r->world != world_id) continue;
    boost::json::object o{{"strategy", id},
                          {"state", runner_state_name(static_cast<int>(r->state))},
                          {"pid", r->proc && r->proc->running() ? boost::json::value(r->proc->pid())
                                                                : boost::json::value(nullptr)},
                          {"starts", r->starts},
                          {"restarts", std::max(0, r->starts - 1)},
                          {"last_exit", r->last_exit.empty() ? boost::json::value(nullptr)
                                                             : boost::json::value(r->last_exit)},
                          {"started_at", r->starts > 0 ? boost::json::value(iso(r->started_wall))
                                                       : boost::json::value(nullptr)}};
    if (r->state == Runner::State::kRestarting) {
      o["restart_in_ms"] = std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(r->next_start - now).count());
    }
    if (!r->why.empty()) o["why"] = r->why;
    runners.push_back(std::move(o));
  }
  return {{"validations", std::move(validations)}, {"runners", std::move(runners)}};
}

}  // namespace qmtl::execution
