// WorldService::apply_run and recovery: the two-phase apply of SPEC §6.
#include <fmt/format.h>

#include "qmtl/core/id.h"
#include "qmtl/world/world_service.h"

namespace qmtl::world {
namespace {

using store::ApplyPhase;

AuditRecord apply_audit(const ApplyJournalEntry& e, std::string_view actor, TimePoint at,
                        std::string event, std::string reason) {
  return AuditRecord{.at = at,
                     .actor = std::string(actor),
                     .world_id = e.world_id,
                     .entity = "apply",
                     .entity_id = e.run_id,
                     .event = std::move(event),
                     .reason = std::move(reason),
                     .run_id = e.run_id};
}

// Releases a successful Store::claim_apply when it goes out of scope.
class ApplyClaim {
 public:
  ApplyClaim(store::Store& store, std::string_view world) : store_(store), world_(world) {}
  ~ApplyClaim() { store_.release_apply(world_); }
  ApplyClaim(const ApplyClaim&) = delete;
  ApplyClaim& operator=(const ApplyClaim&) = delete;

 private:
  store::Store& store_;
  std::string world_;
};

}  // namespace

Result<std::vector<Activation>> WorldService::list_activations(std::string_view world_id) {
  auto w = get_world(world_id);
  if (!w) return propagate(w);
  return store_.list_activations(world_id);
}

Result<WorldService::ActivationChange> WorldService::set_activation(
    std::string_view world_id, std::string_view strategy_id, std::string_view side, bool active,
    std::string_view actor, std::string_view reason, std::optional<int64_t> if_match) {
  const auto lock = lock_world(world_id);
  const Notify notify(observer_, world_id);
  if (side != "long" && side != "short") {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("side must be long or short, not '{}'", side));
  }
  if (actor.empty() || reason.size() > 1000) {
    return make_error(ErrorCode::kInvalidArgument,
                      "an actor is required and a reason is at most 1000 bytes");
  }
  auto w = writable_world(world_id);
  if (!w) return propagate(w);
  auto s = get_strategy(strategy_id);
  if (!s) return propagate(s);
  if (s->world_id != world_id) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("world '{}' has no strategy '{}'", world_id, strategy_id));
  }
  if (s->state == lifecycle::StrategyState::kArchived) {
    return make_error(ErrorCode::kFailedPrecondition,
                      fmt::format("strategy '{}' is Archived", strategy_id));
  }
  if (active && w->state == lifecycle::WorldState::kEvalOnly) {
    return make_error(
        ErrorCode::kFailedPrecondition,
        fmt::format("world '{}' is EvalOnly: gates stay closed until it is Active", world_id));
  }
  const TimePoint now = clock_.now();
  AuditRecord audit{.at = now,
                    .actor = std::string(actor),
                    .world_id = std::string(world_id),
                    .entity = "activation",
                    .entity_id = fmt::format("{}/{}", strategy_id, side),
                    .event = "ACTIVATION_SET",
                    .after = active ? "active" : "inactive",
                    .reason = std::string(reason)};
  if (w->state == lifecycle::WorldState::kPaused) {
    audit.event = "ACTIVATION_QUEUED";
    if (auto r = store_.queue_activation(world_id, strategy_id, side, active, now, audit); !r)
      return propagate(r);
    ActivationChange c{.queued = true};
    auto gates = store_.list_activations(world_id);
    if (!gates) return propagate(gates);
    for (const auto& a : *gates) {
      if (a.strategy_id == strategy_id && a.side == side) c.entry = a;
    }
    return c;
  }
  auto entry =
      store_.set_manual_activation(world_id, strategy_id, side, active, if_match, now, audit);
  if (!entry) return propagate(entry);
  return ActivationChange{.queued = false, .entry = std::move(*entry)};
}

Result<std::vector<ApplyJournalEntry>> WorldService::recover_applies(std::string_view actor) {
  auto unfinished = store_.unfinished_applies();
  if (!unfinished) return unfinished;
  std::vector<ApplyJournalEntry> recovered;
  for (const auto& e : *unfinished) {
    // An apply of this process in flight holds the world's lock: wait for it,
    // then look again (it has most likely finished).
    const auto lock = lock_world(e.world_id);
    auto r = recover_apply_locked(e.run_id, actor);
    if (!r) return propagate(r);
    if (*r) recovered.push_back(std::move(**r));
  }
  return recovered;
}

Result<std::optional<ApplyJournalEntry>> WorldService::recover_apply_locked(
    std::string_view run_id, std::string_view actor) {
  auto current = store_.get_apply(run_id);
  if (!current) return propagate(current);
  if (!*current ||
      ((*current)->phase != ApplyPhase::kFrozen && (*current)->phase != ApplyPhase::kSwitched)) {
    return std::optional<ApplyJournalEntry>();
  }
  ApplyJournalEntry e = std::move(**current);
  // Another live server still applying this world is not a crash: leave it.
  auto claimed = store_.claim_apply(e.world_id);
  if (!claimed) return propagate(claimed);
  if (!*claimed) return std::optional<ApplyJournalEntry>();
  const ApplyClaim claim(store_, e.world_id);
  const TimePoint now = clock_.now();
  // Past the switch the new states are committed: finish. Before it nothing
  // moved: roll back, which only unfreezes the gates.
  const bool switched = e.phase == ApplyPhase::kSwitched;
  const ApplyPhase final_phase = switched ? ApplyPhase::kDone : ApplyPhase::kRolledBack;
  auto r = store_.apply_finish(
      e.run_id, final_phase, now,
      apply_audit(e, actor, now, switched ? "APPLY_COMPLETED" : "APPLY_ROLLED_BACK",
                  switched ? "the switch had committed before a crash; finished on recovery"
                           : "a crash came before the switch; gates restored on recovery"));
  if (observer_ != nullptr) observer_->world_changed(e.world_id);
  if (!r) return propagate(r);
  e.phase = final_phase;
  return std::optional<ApplyJournalEntry>(std::move(e));
}

Result<ApplyJournalEntry> WorldService::apply_run(std::string_view world_id,
                                                  std::string_view run_id, std::string_view actor,
                                                  const ApplyHooks* hooks) {
  const auto lock = lock_world(world_id);
  const Notify notify(observer_, world_id);
  const auto start = std::chrono::steady_clock::now();
  bool fresh = false;
  // Servers sharing a database apply one world at a time; the journal would
  // refuse a second apply of the run anyway, but not one of another run.
  auto claimed = store_.claim_apply(world_id);
  if (!claimed) return propagate(claimed);
  if (!*claimed) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("another server is applying an evaluation of world '{}'; "
                                  "retry when it is done",
                                  world_id));
  }
  const ApplyClaim claim(store_, world_id);
  auto result = apply_run_locked(world_id, run_id, actor, hooks, fresh);
  if (observer_ != nullptr) {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    observer_->apply_finished(world_id, result ? &*result : nullptr, fresh, took.count());
  }
  return result;
}

Result<ApplyJournalEntry> WorldService::apply_run_locked(std::string_view world_id,
                                                         std::string_view run_id,
                                                         std::string_view actor,
                                                         const ApplyHooks* hooks, bool& fresh) {
  auto w = writable_world(world_id);
  if (!w) return propagate(w);
  if (w->state == lifecycle::WorldState::kPaused) {
    return make_error(
        ErrorCode::kFailedPrecondition,
        fmt::format("world '{}' is Paused: nothing is applied until it is resumed", world_id));
  }
  auto existing = store_.get_apply(run_id);
  if (!existing) return propagate(existing);
  if (*existing) {
    if ((*existing)->world_id != world_id) {
      return make_error(ErrorCode::kNotFound,
                        fmt::format("world '{}' has no evaluation run '{}'", world_id, run_id));
    }
    if ((*existing)->phase == ApplyPhase::kFrozen || (*existing)->phase == ApplyPhase::kSwitched) {
      if (auto r = recover_apply_locked(run_id, actor); !r) return propagate(r);
      auto after = store_.get_apply(run_id);
      if (!after) return propagate(after);
      fresh = (*after)->phase == ApplyPhase::kDone;
      return **after;
    }
    if ((*existing)->phase == ApplyPhase::kRolledBack) {
      return make_error(
          ErrorCode::kFailedPrecondition,
          fmt::format(
              "run '{}' was rolled back after a crash; evaluate again and apply the new run",
              run_id));
    }
    return **existing;  // Done: applying again changes nothing
  }
  auto run = store_.get_evaluation_run(world_id, run_id);
  if (!run) return propagate(run);
  ApplyJournalEntry e{
      .run_id = run->id, .world_id = std::string(world_id), .started_at = clock_.now()};
  for (const auto& r : run->results) {
    if (r.decision == "PROMOTE") e.promote.push_back(r.strategy_id);
    if (r.decision == "DEMOTE") e.demote.push_back(r.strategy_id);
  }
  if (w->state == lifecycle::WorldState::kEvalOnly && !e.promote.empty()) {
    return make_error(
        ErrorCode::kFailedPrecondition,
        fmt::format("world '{}' is EvalOnly: run '{}' would promote {}; evaluate again", world_id,
                    run_id, e.promote.front()));
  }
  auto phase = [&](std::string_view name) {
    if (hooks != nullptr && hooks->after_phase) hooks->after_phase(name);
  };
  if (auto r = store_.apply_freeze(e, apply_audit(e, actor, e.started_at, "APPLY_FREEZE",
                                                  fmt::format("{} to promote, {} to demote",
                                                              e.promote.size(), e.demote.size())));
      !r) {
    return propagate(r);
  }
  phase("frozen");
  TimePoint now = clock_.now();
  if (auto r = store_.apply_switch(run_id, now, apply_audit(e, actor, now, "", "")); !r)
    return propagate(r);
  phase("switched");
  now = clock_.now();
  if (auto r = store_.apply_finish(run_id, ApplyPhase::kDone, now,
                                   apply_audit(e, actor, now, "APPLY_DONE", ""));
      !r) {
    return propagate(r);
  }
  phase("done");
  fresh = true;
  e.phase = ApplyPhase::kDone;
  e.updated_at = now;
  return e;
}

}  // namespace qmtl::world
