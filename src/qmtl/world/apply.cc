// WorldService::apply_run and recovery: the two-phase apply (docs/development.md, the store).
#include <fmt/format.h>

#include <algorithm>

#include "qmtl/core/id.h"
#include "qmtl/core/json.h"
#include "qmtl/policy/document.h"
#include "qmtl/policy/selection.h"
#include "qmtl/world/world_internal.h"
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

// The ids of the world's Live strategies, sorted (the store lists by id).
Result<std::vector<std::string>> live_ids(store::Store& store, std::string_view world_id) {
  auto all = store.list_strategies(world_id);
  if (!all) return propagate(all);
  std::vector<std::string> out;
  for (const auto& s : *all) {
    if (s.state == lifecycle::StrategyState::kLive) out.push_back(s.id);
  }
  return out;
}

// The Live set an evaluation run saw, from its detail.
std::vector<std::string> live_in_run(const EvaluationRunRecord& run) {
  std::vector<std::string> out;
  auto detail = json::parse(run.detail);
  if (!detail || !detail->is_object()) return out;
  const auto* strategies = detail->as_object().if_contains("strategies");
  if (strategies == nullptr || !strategies->is_object()) return out;
  for (const auto& kv : strategies->as_object()) {
    const auto* st = kv.value().is_object() ? kv.value().as_object().if_contains("state") : nullptr;
    if (st != nullptr && st->is_string() && st->as_string() == "Live") {
      out.emplace_back(kv.key());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Result<std::vector<Activation>> WorldService::list_activations(std::string_view world_id) {
  auto w = get_world(world_id);
  if (!w) return propagate(w);
  return store_.list_activations(world_id);
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
  // Changes queued while a world was Paused are carried out when it resumes;
  // a crash between the resume and that leaves them for here.
  auto worlds = store_.list_worlds();
  if (!worlds) return propagate(worlds);
  for (const auto& w : *worlds) {
    if (w.state == lifecycle::WorldState::kPaused || w.state == lifecycle::WorldState::kRetired) {
      continue;
    }
    auto queued = store_.list_queued_activations(w.id);
    if (!queued) return propagate(queued);
    if (queued->empty()) continue;
    const auto lock = lock_world(w.id);
    const Notify notify(observer_, w.id);
    if (auto r = drain_queue_locked(w.id); !r) return propagate(r);
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
      .run_id = run->id,
      .world_id = std::string(world_id),
      .started_at = clock_.now(),
      .basis = store::ApplyBasis{.policy_version = run->policy_version, .live = live_in_run(*run)}};
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
  const AuditRecord tmpl{.at = e.started_at, .actor = std::string(actor), .world_id = e.world_id};
  auto done = two_phase_locked(
      e, tmpl, fmt::format("{} to promote, {} to demote", e.promote.size(), e.demote.size()),
      hooks);
  if (!done) return propagate(done);
  fresh = true;
  return done;
}

Result<ApplyJournalEntry> WorldService::two_phase_locked(ApplyJournalEntry e,
                                                         const AuditRecord& tmpl,
                                                         std::string freeze_reason,
                                                         const ApplyHooks* hooks) {
  auto phase = [&](std::string_view name) {
    if (hooks != nullptr && hooks->after_phase) hooks->after_phase(name);
  };
  AuditRecord freeze = tmpl;
  freeze.at = e.started_at;
  freeze.entity = "apply";
  freeze.entity_id = e.run_id;
  freeze.event = "APPLY_FREEZE";
  freeze.reason = std::move(freeze_reason);
  freeze.run_id = e.run_id;
  auto id = store_.apply_freeze(e, freeze);
  if (!id) return propagate(id);
  e.run_id = *id;
  phase("frozen");
  TimePoint now = clock_.now();
  AuditRecord sw = tmpl;
  sw.at = now;
  sw.entity = "apply";
  sw.entity_id = e.run_id;
  sw.run_id = e.run_id;
  if (auto r = store_.apply_switch(e.run_id, now, sw); !r) {
    if (r.error().code == ErrorCode::kFailedPrecondition) {
      // The world changed between the freeze and the switch (its basis):
      // nothing moved; unfreeze now rather than at the next recovery.
      (void)store_.apply_finish(
          e.run_id, ApplyPhase::kRolledBack, now,
          apply_audit(e, tmpl.actor, now, "APPLY_ROLLED_BACK", r.error().message));
    }
    return propagate(r);
  }
  phase("switched");
  now = clock_.now();
  if (auto r = store_.apply_finish(e.run_id, ApplyPhase::kDone, now,
                                   apply_audit(e, tmpl.actor, now, "APPLY_DONE", ""));
      !r) {
    return propagate(r);
  }
  phase("done");
  e.phase = ApplyPhase::kDone;
  e.updated_at = now;
  return e;
}

Result<std::optional<std::string>> WorldService::promotion_cap_breach(
    const World& w, std::string_view strategy_id, const std::vector<std::string>& live) {
  auto parsed = parsed_policy_of(w);
  if (!parsed) return propagate(parsed);
  const policy::Policy* pol = *parsed ? (*parsed)->native() : nullptr;
  if (pol == nullptr || (!pol->top_k && !pol->correlation)) return std::optional<std::string>();
  std::vector<std::string> ids = live;
  ids.emplace_back(strategy_id);
  policy::Correlations corr;
  if (pol->correlation) {
    auto pairs =
        correlated_pairs_of(store_, ids, clock_.now(),
                            pol->correlation->window.value_or(pol->window), pol->correlation->max);
    if (!pairs) return propagate(pairs);
    corr.pairs = std::move(*pairs);
  }
  std::vector<policy::Candidate> cands(ids.size());
  std::vector<size_t> members(live.size());
  for (size_t i = 0; i < ids.size(); ++i) cands[i].id = ids[i];
  for (size_t i = 0; i < members.size(); ++i) members[i] = i;
  return policy::cap_breach(*pol, cands, members, ids.size() - 1, corr);
}

Result<std::optional<WorldService::NextEvaluation>> WorldService::next_evaluation(
    std::string_view world_id, std::string_view strategy_id) {
  const auto lock = lock_world(world_id);
  auto w = get_world(world_id);
  if (!w) return propagate(w);
  if (auto r = validate_id("strategy", strategy_id); !r) return propagate(r);
  return next_evaluation_locked(*w, strategy_id);
}

Result<std::optional<WorldService::NextEvaluation>> WorldService::next_evaluation_locked(
    const World& w, std::string_view strategy_id) {
  using R = std::optional<NextEvaluation>;
  if (w.state == lifecycle::WorldState::kPaused || w.state == lifecycle::WorldState::kRetired ||
      !w.policy_version) {
    return R();
  }
  // The scheduler evaluates at the due time the schedule holds; before the
  // scheduler first saw the world, now.
  TimePoint at = clock_.now();
  auto sched = store_.get_schedule(w.id);
  if (!sched) return propagate(sched);
  if (*sched && (*sched)->next_run > at) at = (*sched)->next_run;
  auto prepared = prepare_run_locked(w, at);
  if (!prepared) {
    // A QMTL-form policy is not evaluated by the world.
    if (prepared.error().code == ErrorCode::kFailedPrecondition) return R();
    return propagate(prepared);
  }
  const auto& results = prepared->run.results;
  for (size_t i = 0; i < results.size(); ++i) {
    if (results[i].strategy_id != strategy_id) continue;
    return R(
        NextEvaluation{.at = at, .decision = results[i].decision, .reasons = prepared->reasons[i]});
  }
  return R();
}

Result<WorldService::ManualOutcome> WorldService::manual_apply_locked(
    const World& w, const Strategy& s, bool promote, std::optional<std::string> only_side,
    const ManualChange& change, std::optional<int64_t> dequeue_seq) {
  const auto start = std::chrono::steady_clock::now();
  auto claimed = store_.claim_apply(w.id);
  if (!claimed) return propagate(claimed);
  if (!*claimed) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("another server is applying a change of world '{}'; retry "
                                  "when it is done",
                                  w.id));
  }
  const ApplyClaim claim(store_, w.id);
  auto live = live_ids(store_, w.id);
  if (!live) return propagate(live);
  // The caps are checked against the very Live set the apply's basis holds
  // (read under the claim): a change by another server in between makes the
  // apply refuse rather than go past a cap.
  std::optional<std::string> forced;
  if (promote) {
    auto breach = promotion_cap_breach(w, s.id, *live);
    if (!breach) return propagate(breach);
    if (*breach && !change.force) {
      return make_error(ErrorCode::kFailedPrecondition,
                        fmt::format("promoting '{}' would break the policy's caps: {}; demote a "
                                    "Live strategy first, or force it (recorded as forced)",
                                    s.id, **breach));
    }
    forced = std::move(*breach);
  }
  ApplyJournalEntry e{.world_id = w.id,
                      .started_at = clock_.now(),
                      .kind = "manual",
                      .only_side = only_side,
                      .basis = store::ApplyBasis{.policy_version = w.policy_version.value_or(0),
                                                 .live = std::move(*live)},
                      .dequeue_seq = dequeue_seq};
  (promote ? e.promote : e.demote).push_back(s.id);
  std::string reason = change.reason;
  if (forced) {
    reason = fmt::format("{}{}forced past the policy's caps: {}", reason,
                         reason.empty() ? "" : "; ", *forced);
  }
  const AuditRecord tmpl{
      .at = e.started_at, .actor = change.actor, .world_id = w.id, .reason = std::move(reason)};
  auto done =
      two_phase_locked(e, tmpl,
                       fmt::format("manual {} of {}{}", promote ? "promotion" : "demotion", s.id,
                                   only_side ? fmt::format(" ({} side only)", *only_side) : ""),
                       nullptr);
  if (observer_ != nullptr) {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    observer_->apply_finished(w.id, done ? &*done : nullptr, done.has_value(), took.count());
  }
  if (!done) return propagate(done);
  auto after = store_.get_strategy(s.id);
  if (!after) return propagate(after);
  const auto want = promote ? lifecycle::StrategyState::kLive : lifecycle::StrategyState::kDryRun;
  if (after->state != want) {
    return make_error(ErrorCode::kFailedPrecondition,
                      fmt::format("strategy '{}' changed while it was being {} (it is {} now); "
                                  "nothing was changed",
                                  s.id, promote ? "promoted" : "demoted",
                                  lifecycle::strategy_state_name(after->state)));
  }
  return ManualOutcome{.strategy = std::move(*after), .apply_id = done->run_id, .forced = forced};
}

Result<WorldService::ManualOutcome> WorldService::manual_change_locked(
    const World& w, Strategy s, ManualAction action, std::string_view side, bool active,
    const ManualChange& change, std::optional<int64_t> if_match, std::optional<int64_t> dequeue_seq,
    Direction* direction) {
  using lifecycle::StrategyState;
  using lifecycle::WorldState;
  const auto state_name = lifecycle::strategy_state_name(s.state);
  // The gate entry of `side` as it is now (version 0: never written).
  auto gates = store_.list_activations(w.id);
  if (!gates) return propagate(gates);
  std::optional<Activation> this_side, other_side;
  for (const auto& g : *gates) {
    if (g.strategy_id != s.id) continue;
    (g.side == side ? this_side : other_side) = g;
  }
  const auto check_if_match = [&]() -> Result<void> {
    const int64_t have = this_side ? this_side->version : 0;
    if (if_match && *if_match != have) {
      return make_error(
          ErrorCode::kVersionMismatch,
          fmt::format("activation {}/{} is at version {}, not {}; read it again and retry", s.id,
                      side, have, *if_match));
    }
    return {};
  };
  const auto promote = [&](std::optional<std::string> only) -> Result<ManualOutcome> {
    if (s.state == StrategyState::kLive) {
      return make_error(ErrorCode::kFailedPrecondition,
                        fmt::format("strategy '{}' is already Live", s.id));
    }
    if (s.state != StrategyState::kDryRun) {
      return make_error(
          ErrorCode::kFailedPrecondition,
          fmt::format(
              "strategy '{}' is {}: only a DryRun strategy can be promoted{}", s.id, state_name,
              s.state == StrategyState::kInactive
                  ? fmt::format(" (`qmtl strategy activate {}` brings it back to DryRun)", s.id)
                  : ""));
    }
    if (w.state == WorldState::kEvalOnly) {
      return make_error(ErrorCode::kFailedPrecondition,
                        fmt::format("world '{}' is EvalOnly: nothing is promoted to live", w.id));
    }
    return manual_apply_locked(w, s, true, std::move(only), change, dequeue_seq);
  };
  const auto demote = [&]() -> Result<ManualOutcome> {
    if (s.state != StrategyState::kLive) {
      return make_error(ErrorCode::kFailedPrecondition,
                        fmt::format("strategy '{}' is {}, not Live: there is nothing to demote",
                                    s.id, state_name));
    }
    return manual_apply_locked(w, s, false, std::nullopt, change, dequeue_seq);
  };
  const auto set_gate = [&]() -> Result<ManualOutcome> {
    const TimePoint now = clock_.now();
    const AuditRecord audit{.at = now,
                            .actor = change.actor,
                            .world_id = w.id,
                            .entity = "activation",
                            .entity_id = fmt::format("{}/{}", s.id, side),
                            .event = "ACTIVATION_SET",
                            .after = active ? "active" : "inactive",
                            .reason = change.reason};
    auto entry =
        store_.set_manual_activation(w.id, s.id, side, active, if_match, now, audit, dequeue_seq);
    if (!entry) return propagate(entry);
    return ManualOutcome{.strategy = s, .entry = std::move(*entry)};
  };

  Result<ManualOutcome> out = make_error(ErrorCode::kInternal, "no manual action");
  bool made_live = false, made_dry = false;  // the direction of the change
  switch (action) {
    case ManualAction::kPromote:
      out = promote(std::nullopt);
      made_live = true;
      break;
    case ManualAction::kDemote:
      out = demote();
      made_dry = true;
      break;
    case ManualAction::kGate:
      if (active && s.state == StrategyState::kDryRun) {
        // Opening a side of a DryRun strategy is the design's forced
        // activation: a promotion with that side open.
        if (auto r = check_if_match(); !r) return propagate(r);
        out = promote(std::string(side));
        made_live = true;
      } else if (active && s.state != StrategyState::kLive) {
        return make_error(ErrorCode::kFailedPrecondition,
                          fmt::format("strategy '{}' is {}: only a DryRun strategy (which this "
                                      "promotes) or a Live one has a gate to open",
                                      s.id, state_name));
      } else if (!active && s.state == StrategyState::kLive && other_side &&
                 other_side->manual == false) {
        // The last side an operator had not closed: the strategy leaves Live.
        if (auto r = check_if_match(); !r) return propagate(r);
        out = demote();
        made_dry = true;
      } else {
        if (active && w.state == WorldState::kEvalOnly) {
          return make_error(
              ErrorCode::kFailedPrecondition,
              fmt::format("world '{}' is EvalOnly: gates stay closed until it is Active", w.id));
        }
        out = set_gate();
        made_live = active;
        made_dry = !active && s.state == StrategyState::kDryRun;
      }
      break;
  }
  if (!out) return out;
  if (action == ManualAction::kGate) {
    auto gates_after = store_.list_activations(w.id);
    if (!gates_after) return propagate(gates_after);
    for (const auto& g : *gates_after) {
      if (g.strategy_id == s.id && g.side == side) out->entry = g;
    }
  }
  if (direction != nullptr) *direction = {.made_live = made_live, .made_dry = made_dry};
  return out;
}

void WorldService::forecast(ManualOutcome& out, std::string_view world_id, Direction direction) {
  auto next = next_evaluation(world_id, out.strategy.id);
  if (!next) {
    // The change stands; only its forecast is missing.
    out.warning =
        fmt::format("the next evaluation could not be forecast: {}", next.error().message);
    return;
  }
  if (!*next) return;
  NextEvaluation& n = **next;
  n.undoes = (direction.made_live && n.decision == "DEMOTE") ||
             (direction.made_dry && n.decision == "PROMOTE");
  if (n.undoes) {
    std::vector<std::string_view> why;
    for (const auto& r : n.reasons) {
      if (!r.starts_with("this demotion undoes") && !r.starts_with("this promotion undoes")) {
        why.push_back(r);
      }
    }
    out.warning = fmt::format("the next evaluation (due {}) would {} '{}' again: {}",
                              format_timestamp(n.at), n.decision == "DEMOTE" ? "demote" : "promote",
                              out.strategy.id, fmt::join(why, "; "));
  }
  out.next = std::move(n);
}

Result<WorldService::ActivationChange> WorldService::set_activation(
    std::string_view world_id, std::string_view strategy_id, std::string_view side, bool active,
    std::string_view actor, std::string_view reason, std::optional<int64_t> if_match, bool force) {
  Direction direction;
  auto out = set_activation_change(world_id, strategy_id, side, active, actor, reason, if_match,
                                   force, &direction);
  // After the change is published and the world unlocked: runners hear it
  // first, and the forecast (an evaluation) holds up nothing.
  if (out && !out->queued) forecast(*out, world_id, direction);
  return out;
}

Result<WorldService::ActivationChange> WorldService::set_activation_change(
    std::string_view world_id, std::string_view strategy_id, std::string_view side, bool active,
    std::string_view actor, std::string_view reason, std::optional<int64_t> if_match, bool force,
    Direction* direction) {
  const auto lock = lock_world(world_id);
  const Notify notify(observer_, world_id);
  if (side != "long" && side != "short") {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("side must be long or short, not '{}'", side));
  }
  if (auto r = validate_actor(actor); !r) return propagate(r);
  if (auto r = validate_text("reason", reason, kMaxReasonLength, true); !r) return propagate(r);
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
  const ManualChange change{
      .actor = std::string(actor), .reason = std::string(reason), .force = force};
  if (w->state == lifecycle::WorldState::kPaused) {
    if (active && s->state != lifecycle::StrategyState::kDryRun &&
        s->state != lifecycle::StrategyState::kLive) {
      return make_error(ErrorCode::kFailedPrecondition,
                        fmt::format("strategy '{}' is {}: only a DryRun or Live strategy has a "
                                    "gate to open",
                                    strategy_id, lifecycle::strategy_state_name(s->state)));
    }
    const TimePoint now = clock_.now();
    const store::QueuedActivation q{.world_id = std::string(world_id),
                                    .strategy_id = std::string(strategy_id),
                                    .side = std::string(side),
                                    .active = active,
                                    .action = "gate",
                                    .forced = force,
                                    .actor = std::string(actor),
                                    .reason = std::string(reason),
                                    .at = now};
    const AuditRecord audit{.at = now,
                            .actor = std::string(actor),
                            .world_id = std::string(world_id),
                            .entity = "activation",
                            .entity_id = fmt::format("{}/{}", strategy_id, side),
                            .event = "ACTIVATION_QUEUED",
                            .after = active ? "active" : "inactive",
                            .reason = std::string(reason)};
    if (auto r = store_.queue_activation(q, audit); !r) return propagate(r);
    ManualOutcome out{.queued = true, .strategy = std::move(*s)};
    auto gates = store_.list_activations(world_id);
    if (!gates) return propagate(gates);
    out.entry = Activation{.world_id = std::string(world_id),
                           .strategy_id = std::string(strategy_id),
                           .side = std::string(side)};
    for (const auto& a : *gates) {
      if (a.strategy_id == strategy_id && a.side == side) out.entry = a;
    }
    return out;
  }
  return manual_change_locked(*w, std::move(*s), ManualAction::kGate, side, active, change,
                              if_match, std::nullopt, direction);
}

namespace {

Result<void> check_manual(const WorldService::ManualChange& change) {
  if (auto r = validate_actor(change.actor); !r) return r;
  return validate_text("reason", change.reason, kMaxReasonLength, true);
}

}  // namespace

Result<WorldService::ManualOutcome> WorldService::promote_strategy(std::string_view id,
                                                                   const ManualChange& change) {
  return manual_with_forecast(id, change, true);
}

Result<WorldService::ManualOutcome> WorldService::demote_strategy(std::string_view id,
                                                                  const ManualChange& change) {
  return manual_with_forecast(id, change, false);
}

Result<WorldService::ManualOutcome> WorldService::manual_with_forecast(std::string_view id,
                                                                       const ManualChange& change,
                                                                       bool promote) {
  Direction direction;
  auto out = manual_strategy_change(id, change, promote, &direction);
  // After the change is published and the world unlocked (see set_activation).
  if (out && !out->queued) forecast(*out, out->strategy.world_id, direction);
  return out;
}

Result<WorldService::ManualOutcome> WorldService::manual_strategy_change(std::string_view id,
                                                                         const ManualChange& change,
                                                                         bool promote,
                                                                         Direction* direction) {
  if (auto r = check_manual(change); !r) return propagate(r);
  auto found = get_strategy(id);
  if (!found) return propagate(found);
  const auto lock = lock_world(found->world_id);
  const Notify notify(observer_, found->world_id);
  auto s = get_strategy(id);  // again, under the lock
  if (!s) return propagate(s);
  auto w = writable_world(s->world_id);
  if (!w) return propagate(w);
  const auto want = promote ? lifecycle::StrategyState::kDryRun : lifecycle::StrategyState::kLive;
  if (w->state == lifecycle::WorldState::kPaused) {
    if (s->state != want) {
      return make_error(
          ErrorCode::kFailedPrecondition,
          fmt::format("strategy '{}' is {}, not {}: nothing to {}", id,
                      lifecycle::strategy_state_name(s->state),
                      lifecycle::strategy_state_name(want), promote ? "promote" : "demote"));
    }
    const TimePoint now = clock_.now();
    const store::QueuedActivation q{.world_id = w->id,
                                    .strategy_id = s->id,
                                    .side = "long",  // unused by promote/demote
                                    .active = promote,
                                    .action = promote ? "promote" : "demote",
                                    .forced = change.force,
                                    .actor = change.actor,
                                    .reason = change.reason,
                                    .at = now};
    const AuditRecord audit{.at = now,
                            .actor = change.actor,
                            .world_id = w->id,
                            .entity = "strategy",
                            .entity_id = s->id,
                            .event = promote ? "PROMOTE_QUEUED" : "DEMOTE_QUEUED",
                            .reason = change.reason};
    if (auto r = store_.queue_activation(q, audit); !r) return propagate(r);
    return ManualOutcome{.queued = true, .strategy = std::move(*s)};
  }
  return manual_change_locked(*w, std::move(*s),
                              promote ? ManualAction::kPromote : ManualAction::kDemote, "", true,
                              change, std::nullopt, std::nullopt, direction);
}

Result<void> WorldService::drain_queue_locked(std::string_view world_id) {
  auto w = get_world(world_id);
  if (!w) return propagate(w);
  if (w->state == lifecycle::WorldState::kPaused || w->state == lifecycle::WorldState::kRetired) {
    return {};
  }
  auto queued = store_.list_queued_activations(world_id);
  if (!queued) return propagate(queued);
  for (const auto& q : *queued) {
    const ManualChange change{
        .actor = q.actor,
        .reason = fmt::format("queued while Paused, applied on resume: {}", q.reason),
        .force = q.forced};
    std::optional<std::string> why_not;
    const bool opens = q.action == "promote" || (q.action == "gate" && q.active);
    if (opens && w->state == lifecycle::WorldState::kEvalOnly) {
      why_not = "queued while Paused; the world became EvalOnly";
    } else {
      auto s = get_strategy(q.strategy_id);
      if (!s) return propagate(s);
      const auto action = q.action == "promote"  ? ManualAction::kPromote
                          : q.action == "demote" ? ManualAction::kDemote
                                                 : ManualAction::kGate;
      auto r = manual_change_locked(*w, std::move(*s), action, q.side, q.active, change,
                                    std::nullopt, q.seq, nullptr);
      if (!r) {
        // Carried out by another server meanwhile: nothing left to do.
        if (r.error().code == ErrorCode::kAlreadyExists) continue;
        if (r.error().code != ErrorCode::kFailedPrecondition &&
            r.error().code != ErrorCode::kVersionMismatch) {
          return propagate(r);
        }
        why_not =
            fmt::format("queued while Paused, not carried out on resume: {}", r.error().message);
      }
    }
    if (!why_not) continue;
    const bool gate = q.action == "gate";
    const AuditRecord audit{
        .at = clock_.now(),
        .actor = q.actor,
        .world_id = std::string(world_id),
        .entity = gate ? "activation" : "strategy",
        .entity_id = gate ? fmt::format("{}/{}", q.strategy_id, q.side) : q.strategy_id,
        .event = "ACTIVATION_DROPPED",
        .after = gate ? std::string(q.active ? "active" : "inactive") : q.action,
        .reason = *why_not};
    if (auto r = store_.drop_queued_activation(q.seq, audit);
        !r && r.error().code != ErrorCode::kNotFound) {
      return r;
    }
  }
  return {};
}

}  // namespace qmtl::world
