#include "qmtl/scheduler/scheduler.h"

#include <fmt/format.h>

#include "qmtl/core/duration.h"
#include "qmtl/core/enum_name.h"
#include "qmtl/policy/document.h"

namespace qmtl::scheduler {

namespace {
constexpr std::string_view kActor = "scheduler";
}  // namespace

Schedule Schedule::every(Duration d) {
  Schedule s;
  s.spec_ = fmt::format("every {}", format_duration(d));
  s.when_ = d;
  return s;
}

Result<Schedule> Schedule::cron(std::string_view text) {
  auto c = CronSchedule::parse(text);
  if (!c) return propagate(c);
  Schedule s;
  s.spec_ = fmt::format("cron {}", c->text());
  s.when_ = std::move(*c);
  return s;
}

Result<Schedule> Schedule::from_policy(const policy::Policy& p) {
  if (p.cron) return cron(*p.cron);
  if (p.every && *p.every > Duration::zero()) return every(*p.every);
  return make_error(ErrorCode::kInvalidArgument,
                    "the policy has neither evaluation.every nor evaluation.cron");
}

Result<TimePoint> Schedule::next_after(TimePoint t) const {
  if (const auto* d = std::get_if<Duration>(&when_)) {
    // The next multiple of d since the epoch: ticks do not depend on when the
    // server started.
    const auto since = t.time_since_epoch();
    return TimePoint((since / *d + 1) * *d);
  }
  return std::get<CronSchedule>(when_).next_after(t);
}

std::string_view tick_kind_name(TickOutcome::Kind k) {
  static constexpr std::array<std::string_view, 5> kNames{"scheduled", "evaluated", "skipped",
                                                          "failed", "leadership"};
  return enum_name(k, kNames);
}

Result<std::vector<TickOutcome>> Scheduler::tick() {
  std::vector<TickOutcome> out;
  auto lead = worlds_.lead_scheduler();
  if (!lead) return propagate(lead);
  {
    std::lock_guard lock(mu_);
    if (*lead != leading_) {
      // A server that leads from its first pass has nothing to announce.
      if (leading_.has_value() || !*lead) {
        out.push_back({.kind = TickOutcome::Kind::kLeadership,
                       .message = *lead ? "this server now leads the scheduler"
                                        : "another server leads the scheduler; standing by"});
      }
      leading_ = *lead;
      *leading_flag_ = *lead;
      // A new leader looks at every world's last apply again.
      checked_.clear();
    }
  }
  if (!*lead) return out;
  {
    // Applies a stopped server left half done (its session ended with it):
    // the leader finishes or rolls them back within one pass.
    auto recovered = worlds_.recover_applies(kActor);
    if (!recovered) return propagate(recovered);
    for (const auto& e : *recovered) {
      out.push_back(
          {.world = e.world_id,
           .kind = TickOutcome::Kind::kLeadership,
           .run_id = e.run_id,
           .message = fmt::format("recovered the apply of {} left by a stopped server: {}",
                                  e.run_id, store::apply_phase_name(e.phase))});
    }
  }
  auto worlds = worlds_.list_worlds();
  if (!worlds) return propagate(worlds);
  const TimePoint now = clock_.now();
  for (const auto& w : *worlds) {
    auto o = tick_world(w, now);
    if (!o) {
      // The world's own state could not be read or written: report, go on.
      out.push_back({.world = w.id,
                     .kind = TickOutcome::Kind::kFailed,
                     .message = o.error().message,
                     .error = o.error().code});
      continue;
    }
    if (*o) out.push_back(std::move(**o));
  }
  return out;
}

Result<std::optional<TimePoint>> Scheduler::next_due() {
  auto worlds = worlds_.list_worlds();
  if (!worlds) return propagate(worlds);
  std::optional<TimePoint> earliest;
  for (const auto& w : *worlds) {
    auto s = worlds_.get_schedule(w.id);
    if (!s) return propagate(s);
    if (*s && (!earliest || (*s)->next_run < *earliest)) earliest = (*s)->next_run;
  }
  return earliest;
}

Result<std::optional<TickOutcome>> Scheduler::tick_world(const world::World& w, TimePoint now) {
  using Kind = TickOutcome::Kind;
  if (!w.policy_version || w.state == lifecycle::WorldState::kRetired) return std::nullopt;
  // Policy versions never change, so a version's schedule is parsed once.
  std::optional<std::optional<Schedule>> cached;
  {
    std::lock_guard lock(mu_);
    if (auto it = schedules_.find(w.id);
        it != schedules_.end() && it->second.first == *w.policy_version) {
      cached = it->second.second;
    }
  }
  if (!cached) {
    auto policy = worlds_.parsed_policy(w.id, *w.policy_version);
    if (!policy) return propagate(policy);
    std::optional<Schedule> parsed;  // none: QMTL-form policies are not world-evaluated
    if (const auto* pol = policy->native()) {
      auto sch = Schedule::from_policy(*pol);
      if (!sch) return propagate(sch);
      parsed = std::move(*sch);
    }
    std::lock_guard lock(mu_);
    schedules_[w.id] = {policy->version, parsed};
    cached = std::move(parsed);
  }
  if (!*cached) return std::nullopt;
  const Schedule* schedule = &**cached;

  auto stored = worlds_.get_schedule(w.id);
  if (!stored) return propagate(stored);
  if (!*stored || (*stored)->spec != schedule->spec()) {
    auto next = schedule->next_after(now);
    if (!next) return propagate(next);
    store::ScheduleState s{.world_id = w.id, .spec = schedule->spec(), .next_run = *next};
    if (*stored) {
      s.last_run = (*stored)->last_run;
      s.last_run_id = (*stored)->last_run_id;
    }
    if (auto r = worlds_.put_schedule(s); !r) return propagate(r);
    return TickOutcome{.world = w.id, .kind = Kind::kScheduled, .next_run = *next};
  }
  store::ScheduleState state = **stored;

  // Once per world after start: a scheduled run whose apply a crash
  // interrupted, still the world's latest, is applied now (apply is idempotent
  // by run id).
  bool first_look = false;
  {
    std::lock_guard lock(mu_);
    first_look = checked_.insert(w.id).second;
  }
  if (first_look && state.last_run_id && w.state != lifecycle::WorldState::kPaused) {
    auto latest = worlds_.list_evaluations(w.id, 1);
    if (latest && !latest->empty() && latest->front().id == *state.last_run_id) {
      (void)worlds_.apply_run(w.id, *state.last_run_id, kActor);
    }
  }
  if (now < state.next_run) return std::nullopt;

  auto next = schedule->next_after(now);
  if (!next) return propagate(next);
  if (w.state == lifecycle::WorldState::kPaused) {
    state.next_run = *next;
    if (auto r = worlds_.put_schedule(state); !r) return propagate(r);
    return TickOutcome{.world = w.id,
                       .kind = Kind::kSkipped,
                       .next_run = *next,
                       .message = fmt::format("world '{}' is Paused: not evaluated", w.id)};
  }

  store::ScheduleState advance = state;
  advance.last_run = state.next_run;
  advance.next_run = *next;
  advance.last_error.clear();
  auto run = worlds_.evaluate_world(w.id, kActor, advance);
  if (!run && run.error().code == ErrorCode::kVersionMismatch) {
    // Another server evaluated this due time first: nothing to repeat or record.
    return TickOutcome{
        .world = w.id, .kind = Kind::kSkipped, .next_run = *next, .message = run.error().message};
  }
  if (!run) {
    // Not retried every poll: the next tick tries again; the error is kept.
    state.next_run = *next;
    state.last_error = run.error().message;
    if (auto r = worlds_.put_schedule(state); !r) return propagate(r);
    return TickOutcome{.world = w.id,
                       .kind = Kind::kFailed,
                       .next_run = *next,
                       .message = fmt::format("evaluation failed: {}", run.error().message),
                       .error = run.error().code};
  }
  // In an EvalOnly world the evaluation promotes nothing, so applying it can
  // only demote: a decaying Live strategy still goes back to DryRun.
  TickOutcome o{.world = w.id, .kind = Kind::kEvaluated, .run_id = run->id, .next_run = *next};
  auto applied = worlds_.apply_run(w.id, run->id, kActor);
  if (!applied) {
    advance.last_run_id = run->id;
    advance.last_error = fmt::format("apply of {} failed: {}", run->id, applied.error().message);
    if (auto r = worlds_.put_schedule(advance); !r) return propagate(r);
    o.kind = Kind::kFailed;
    o.message = advance.last_error;
    o.error = applied.error().code;
    return o;
  }
  o.applied = true;
  return o;
}

namespace {
constexpr std::chrono::milliseconds kMaxFailureWait{30'000};
}  // namespace

SchedulerThread::SchedulerThread(Scheduler& scheduler, std::chrono::milliseconds poll,
                                 std::function<void(const TickOutcome&)> report)
    : scheduler_(scheduler), poll_(poll), report_(std::move(report)) {
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    std::chrono::milliseconds wait = poll_;
    while (!stop_) {
      lock.unlock();
      auto outcomes = scheduler_.tick();
      if (outcomes && report_) {
        for (const auto& o : *outcomes) report_(o);
      } else if (!outcomes && report_) {
        report_({.kind = TickOutcome::Kind::kFailed,
                 .message = outcomes.error().message,
                 .error = outcomes.error().code});
      }
      wait = outcomes ? poll_ : std::min<std::chrono::milliseconds>(wait * 2, kMaxFailureWait);
      lock.lock();
      cv_.wait_for(lock, wait, [this] { return stop_; });
    }
  });
}

void SchedulerThread::request_stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

SchedulerThread::~SchedulerThread() {
  request_stop();
  thread_.join();
}

}  // namespace qmtl::scheduler
