// ExecutionManager: the part of `qmtl serve` that runs strategies (issue #9).
//
// For every world with execution settings (WorldService::set_execution):
//  - a Submitted strategy is queued for validation (SUBMIT -> Validating);
//  - a Validating strategy gets a validation job: `qmtl backtest` as a child
//    process over the settings' history window, at most max_validations at a
//    time per world; its records and exit go to WorldService::finish_validation,
//    which rejects it (failed run, reject gate) or moves it to DryRun;
//  - a DryRun or Live strategy gets a runner: `qmtl run` as a child process on
//    the live feed, at most max_runners per world. A runner that ends is
//    started again after a backoff (1 s doubling to 60 s; back to 1 s after it
//    ran for a minute); one that ends crash_limit times in a row fails its
//    strategy (ERROR: Inactive, alerted). A strategy that leaves DryRun/Live (archived, rejected,
//    deactivated, its world retired or paused) has its runner stopped: SIGTERM,
//    then SIGKILL after a grace period.
// Strategies in worlds without settings are left as they are. Children log to
// files under the work directory (<strategy>.validation.log, <strategy>.runner.log).
// State lives in the store (strategy states), so a restarted server picks up
// where it was: Validating strategies are validated again, runners started.
//
// Thread safety: start()/stop() from one thread; status() and wake() from any.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "qmtl/core/child_process.h"
#include "qmtl/core/time.h"
#include "qmtl/execution/outage.h"
#include "qmtl/world/world_service.h"

namespace qmtl::execution {

// What the manager counts, for the server's metrics (ServerMetrics implements
// it). Called from the manager's thread; implementations must be thread-safe.
class ExecutionMetrics {
 public:
  virtual ~ExecutionMetrics() = default;
  // A validation backtest ended: "passed", "rejected" or "failed".
  virtual void validation(std::string_view world, std::string_view outcome) = 0;
  // A runner started (a restart after it ended, or not).
  virtual void runner_started(std::string_view world, bool restart) = 0;
  // A runner ended that should have kept running.
  virtual void runner_exited(std::string_view world) = 0;
};

struct ExecutionOptions {
  std::string qmtl_binary;   // the qmtl executable children run
  std::string gateway_url;   // how runners reach this server, e.g. http://127.0.0.1:8080
  std::string work_dir;      // spec files, backtest records, child logs (created)
  std::string runner_token;  // given to children as QMTL_TOKEN; "" = none (--no-auth)
  // Why a world's runners could not reach this server (with auth on: no
  // runner token, one the server does not know, a viewer's, or one kept from
  // that world), or "" when they can. Such runners are not started: each would
  // fail at its first request, be restarted, and after crash_limit exits fail
  // its strategy (DryRun/Live -> Inactive) for a setting of the server. They
  // wait instead, and status() says why. Unset: they can.
  std::function<std::string(std::string_view world)> runners_blocked;
  // Where strategy programs may be (canonical; `qmtl serve --strategy-programs`),
  // passed to every child; "" = programs are refused.
  std::string strategy_programs;
  std::chrono::milliseconds poll{500};
  std::chrono::milliseconds restart_min{1000};
  std::chrono::milliseconds restart_max{60'000};
  std::chrono::milliseconds stable_after{60'000};  // a run this long resets the backoff
  // A runner that ends this many times in a row (none running stable_after)
  // fails its strategy: the ERROR event (DryRun/Live -> Inactive, alerted)
  // instead of restarting it forever. 0: never.
  int crash_limit = 5;
  std::chrono::milliseconds stop_grace{5000};
  std::chrono::seconds validation_timeout{600};
  // How often runners post performance records (`qmtl run --post-every`); a
  // demo on a fast simulated clock needs them sooner than real time does.
  std::chrono::milliseconds runner_post_every{1000};
  // Several servers on one database: runs strategies only while this answers
  // true (the scheduler leader), and stops its runners when it turns false, so
  // each strategy runs once. Unset: always.
  std::function<bool()> active;
  // Where failures to reach the database go (logged once per interval); while
  // it is away the manager polls with a growing backoff and ignores wakes.
  // Null: each failure is logged.
  DatabaseOutage* outage = nullptr;
};

class ExecutionManager {
 public:
  // `worlds`, `clock` and `metrics` (if not null) must outlive the manager.
  // `clock` stamps the times shown in status(); restart backoffs and timeouts
  // are real time (they pace processes, not simulated trading).
  ExecutionManager(world::WorldService& worlds, const Clock& clock, ExecutionMetrics* metrics,
                   ExecutionOptions options);
  // Stops (see stop()).
  ~ExecutionManager();
  ExecutionManager(const ExecutionManager&) = delete;
  ExecutionManager& operator=(const ExecutionManager&) = delete;

  // Creates the work directory and starts the manager's thread. kUnavailable if
  // the directory cannot be created.
  Result<void> start();
  // Ends the thread: validation jobs are killed (they run again after a
  // restart), runners get SIGTERM and, after the grace period, SIGKILL.
  void stop();
  // Look now rather than at the next poll (after a change to a world).
  void wake();

  // The world's validation jobs and runners for GET /worlds/{id}/execution:
  // {"validations": [...], "runners": [...]}.
  boost::json::object status(std::string_view world_id) const;

 private:
  struct Job;
  struct Runner;
  using SteadyTime = std::chrono::steady_clock::time_point;

  void loop();
  void tick();
  // Strategies that should have a runner, with their specs.
  using Wanted = std::map<std::string, const std::string*, std::less<>>;
  void tick_world(const world::World& w, SteadyTime now);
  void tick_runners(const world::World& w, const world::ExecutionSettings* settings, bool executing,
                    const world::BrokerSettings* broker, const Wanted& wanted, SteadyTime now);
  void reap(SteadyTime now);
  void finish_job(Job& job);
  void start_job(const world::Strategy& s, const world::ExecutionSettings& settings,
                 SteadyTime now);
  void start_runner(Runner& r, const world::ExecutionSettings& settings,
                    const world::BrokerSettings* broker, SteadyTime now);
  void stop_runner(Runner& r, SteadyTime now, std::string why);
  std::string path_for(std::string_view strategy, std::string_view what) const;
  // `--strategy-programs` for children: the directory, or "none".
  std::string programs_option() const;

  world::WorldService& worlds_;
  const Clock& clock_;
  ExecutionMetrics* metrics_;
  const ExecutionOptions options_;

  // wake() is called from WorldObserver callbacks, which may run inside tick()
  // on the manager's own thread: it takes only wake_mu_, never mu_.
  std::mutex wake_mu_;  // guards stop_ and woken_
  std::condition_variable cv_;
  bool stop_ = false;
  bool woken_ = false;
  mutable std::mutex mu_;                                          // guards jobs_ and runners_
  std::map<std::string, std::unique_ptr<Job>, std::less<>> jobs_;  // by strategy
  std::map<std::string, std::unique_ptr<Runner>, std::less<>> runners_;  // by strategy
  std::map<std::string, std::string, std::less<>> settings_errors_;      // last logged, by world
  std::map<std::string, std::string, std::less<>> blocked_logged_;       // last logged, by world
  std::thread thread_;
};

}  // namespace qmtl::execution
