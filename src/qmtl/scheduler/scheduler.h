// The evaluation scheduler: each world is evaluated and its decisions applied
// on the schedule of its current policy (docs/policy.md `evaluation.every` /
// `evaluation.cron`, UTC), with nobody at the keyboard.
//
// Ticks: `every: d` is due at each multiple of d since the Unix epoch (UTC), so
// `every: 1d` runs at midnight and `every: 1h` on the hour, whenever the server
// started; `cron:` at each matching minute. When the scheduler first sees a
// world (or its policy's schedule changes) it schedules the next tick after
// now; it never runs one retroactively on first sight.
//
// Persistence: the next due time is stored per world, and a scheduled run and
// the advance of the schedule commit in one transaction, so a restart neither
// repeats a tick nor skips one: ticks missed while the server was down are
// caught up by one run at start-up (not one per missed tick). An evaluation
// whose apply was interrupted is applied on the next tick (apply is idempotent).
//
// World states: Active and EvalOnly worlds are evaluated and the decisions
// applied (an EvalOnly world's evaluation promotes nothing, so only demotions
// happen there); Paused and Retired worlds are not evaluated: their due ticks
// are skipped, not queued.
//
// Thread safety: tick() may be called from any thread; the WorldService lock
// makes one evaluation per world at a time, including manual ones.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "qmtl/core/cron.h"
#include "qmtl/core/result.h"
#include "qmtl/core/time.h"
#include "qmtl/policy/policy.h"
#include "qmtl/world/world_service.h"

namespace qmtl::scheduler {

// A policy's evaluation schedule.
class Schedule {
 public:
  // From the policy's `every` or `cron` (kInvalidArgument for neither or a bad cron).
  static Result<Schedule> from_policy(const policy::Policy& p);
  static Schedule every(Duration d);
  static Result<Schedule> cron(std::string_view text);

  // "every 1d" or "cron 0 0 * * 1": what the stored times were computed from.
  const std::string& spec() const { return spec_; }
  // The first tick strictly after `t`.
  Result<TimePoint> next_after(TimePoint t) const;

 private:
  std::string spec_;
  std::variant<Duration, CronSchedule> when_;
};

// What a tick did for one world.
struct TickOutcome {
  enum class Kind {
    kScheduled,   // first sight or a new schedule: next run set, nothing run
    kEvaluated,   // evaluated and applied
    kSkipped,     // due, but the world is Paused or Retired
    kFailed,      // the evaluation or the apply failed (message says why)
    kLeadership,  // this server took or lost the scheduler leadership (message says which)
  };
  std::string world;
  Kind kind = Kind::kScheduled;
  std::string run_id;              // kEvaluated
  bool applied = false;            // kEvaluated: decisions applied
  TimePoint next_run;              // when the world is due next
  std::string message;             // kSkipped / kFailed: why
  std::optional<ErrorCode> error;  // kFailed: the error's code (kUnavailable: the database)
};
std::string_view tick_kind_name(TickOutcome::Kind k);  // "scheduled", "evaluated", ...

class Scheduler {
 public:
  // `worlds` and `clock` must outlive the scheduler.
  Scheduler(world::WorldService& worlds, const Clock& clock) : worlds_(worlds), clock_(clock) {}

  // Does whatever is due at clock.now() in every world that has a native
  // policy, in world id order; returns one outcome per world it touched. A
  // world's failure is reported in its outcome and does not stop the others;
  // the call fails only when the worlds cannot be listed.
  //
  // Several servers on one database: only the leader (Store::lead_scheduler)
  // ticks; the others return nothing. A server that takes the leadership first
  // recovers the applies a dead leader left (reported as kLeadership), and a
  // tick another server already evaluated is skipped, not repeated (the store
  // refuses a second run for one due time).
  Result<std::vector<TickOutcome>> tick();

  // Whether the last tick found this server leading (false before the first).
  // Thread-safe.
  bool leading() const { return *leading_flag_; }
  // The same, as a flag that outlives the scheduler (for threads that may ask
  // after it is gone, e.g. an alert sender during shutdown).
  std::shared_ptr<const std::atomic<bool>> leading_flag() const { return leading_flag_; }

  // The earliest next run over all scheduled worlds, if any (to sleep until).
  Result<std::optional<TimePoint>> next_due();

 private:
  Result<std::optional<TickOutcome>> tick_world(const world::World& w, TimePoint now);

  world::WorldService& worlds_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::set<std::string, std::less<>> checked_;  // worlds whose last apply was checked
  std::optional<bool> leading_;                 // none before the first pass
  std::shared_ptr<std::atomic<bool>> leading_flag_ = std::make_shared<std::atomic<bool>>(false);
  // By world: the policy version last seen and its schedule (none: QMTL form).
  std::map<std::string, std::pair<int64_t, std::optional<Schedule>>, std::less<>> schedules_;
};

// Runs Scheduler::tick() on its own thread: at each due time, and at least
// every `poll` (policies and world states change between ticks). Reports each
// outcome to `report`.
// Ticks every `poll` on its own thread and reports each outcome; while whole
// ticks fail (the worlds cannot even be listed: the database is away), it
// waits twice as long after each failure, up to 30 s.
class SchedulerThread {
 public:
  SchedulerThread(Scheduler& scheduler, std::chrono::milliseconds poll,
                  std::function<void(const TickOutcome&)> report);
  ~SchedulerThread();  // stops and joins
  SchedulerThread(const SchedulerThread&) = delete;
  SchedulerThread& operator=(const SchedulerThread&) = delete;

  // No tick starts after this returns (one under way finishes); does not
  // wait. A server stopping calls it first, so that nothing is evaluated or
  // applied while its runners, which hand positions over, are being stopped.
  // Thread-safe.
  void request_stop();

 private:
  Scheduler& scheduler_;
  std::chrono::milliseconds poll_;
  std::function<void(const TickOutcome&)> report_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace qmtl::scheduler
