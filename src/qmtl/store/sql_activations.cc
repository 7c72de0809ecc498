#include <fmt/format.h>

#include <algorithm>

#include "qmtl/core/enum_name.h"
#include "qmtl/store/sql_helpers.h"
#include "qmtl/store/sql_store.h"

namespace qmtl::store {

std::string_view apply_phase_name(ApplyPhase p) {
  static constexpr std::array<std::string_view, 4> kNames{"Frozen", "Switched", "Done",
                                                          "RolledBack"};
  return enum_name(p, kNames);
}

namespace {

std::string join_ids(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) {
    if (!out.empty()) out += '\n';
    out += id;
  }
  return out;
}

std::vector<std::string> split_ids(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    out.push_back(text.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}

std::optional<ApplyPhase> parse_phase(std::string_view name) {
  for (auto p :
       {ApplyPhase::kFrozen, ApplyPhase::kSwitched, ApplyPhase::kDone, ApplyPhase::kRolledBack}) {
    if (apply_phase_name(p) == name) return p;
  }
  return std::nullopt;
}

constexpr std::string_view kJournalColumns =
    "run_id, world_id, phase, promote, demote, started_at_us, updated_at_us, kind, only_side, "
    "basis_policy, basis_live";

ApplyJournalEntry read_journal(const Statement& st) {
  ApplyJournalEntry e{.run_id = st.column_text(0),
                      .world_id = st.column_text(1),
                      .phase = parse_phase(st.column_text(2)).value_or(ApplyPhase::kFrozen),
                      .promote = split_ids(st.column_text(3)),
                      .demote = split_ids(st.column_text(4)),
                      .started_at = from_us(st.column_int(5)),
                      .updated_at = from_us(st.column_int(6)),
                      .kind = st.column_text(7),
                      .only_side = optional_text(st, 8)};
  if (!st.column_is_null(9)) {
    e.basis = ApplyBasis{.policy_version = st.column_int(9),
                         .live = split_ids(optional_text(st, 10).value_or(""))};
  }
  return e;
}

}  // namespace

namespace {

constexpr std::string_view kActivationColumns =
    "world_id, strategy_id, side, active, weight, frozen, version, updated_at_us, manual";

Activation read_activation(const Statement& r) {
  Activation a{.world_id = r.column_text(0),
               .strategy_id = r.column_text(1),
               .side = r.column_text(2),
               .active = r.column_int(3) != 0,
               .weight = r.column_double(4),
               .frozen = r.column_int(5) != 0,
               .version = r.column_int(6),
               .updated_at = from_us(r.column_int(7))};
  if (!r.column_is_null(8)) a.manual = r.column_int(8) != 0;
  return a;
}

constexpr std::string_view kUpsertManual =
    "INSERT INTO activations (world_id, strategy_id, side, active, weight, frozen, version, "
    "updated_at_us, "
    "manual) VALUES (?1, ?2, ?3, ?4, 1.0, 0, 1, ?5, ?4) ON CONFLICT (world_id, strategy_id, side) "
    "DO UPDATE "
    "SET active = ?4, manual = ?4, version = activations.version + 1, updated_at_us = ?5";

}  // namespace

Result<std::vector<Activation>> SqlStore::list_activations(std::string_view world_id) {
  std::lock_guard lock(mu_);
  auto st = prepared(
      db_,
      fmt::format("SELECT {} FROM activations WHERE world_id = ? ORDER BY strategy_id, side",
                  kActivationColumns),
      world_id);
  if (!st) return propagate(st);
  return collect(*st, read_activation);
}

Result<std::optional<Activation>> SqlStore::get_activation_locked(std::string_view world_id,
                                                                  std::string_view strategy_id,
                                                                  std::string_view side) {
  return query_one(
      db_,
      fmt::format("SELECT {} FROM activations WHERE world_id = ? AND strategy_id = ? AND side = ?",
                  kActivationColumns),
      read_activation, world_id, strategy_id, side);
}

Result<Activation> SqlStore::set_manual_activation(std::string_view world_id,
                                                   std::string_view strategy_id,
                                                   std::string_view side, bool active,
                                                   std::optional<int64_t> expected_version,
                                                   TimePoint at, const AuditRecord& audit,
                                                   std::optional<int64_t> dequeue_seq) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  auto belongs = prepared(db_, "SELECT 1 FROM strategies WHERE id = ? AND world_id = ?",
                          strategy_id, world_id);
  if (!belongs) return propagate(belongs);
  auto found = belongs->step();
  if (!found) return propagate(found);
  if (!*found) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("world '{}' has no strategy '{}'", world_id, strategy_id));
  }
  auto current = get_activation_locked(world_id, strategy_id, side);
  if (!current) return propagate(current);
  const int64_t have = *current ? (*current)->version : 0;
  if (expected_version && *expected_version != have) {
    return make_error(
        ErrorCode::kVersionMismatch,
        fmt::format("activation {}/{} is at version {}, not {}; read it again and retry",
                    strategy_id, side, have, *expected_version));
  }
  if (auto r =
          run_sql(db_, kUpsertManual, world_id, strategy_id, side, int64_t{active ? 1 : 0}, at);
      !r) {
    return propagate(r);
  }
  if (auto r = append_audit(audit); !r) return propagate(r);
  if (auto r = dequeue_locked(dequeue_seq); !r) return propagate(r);
  auto after = get_activation_locked(world_id, strategy_id, side);
  if (!after) return propagate(after);
  if (auto r = tx->commit(); !r) return propagate(r);
  return **after;
}

Result<void> SqlStore::queue_activation(const QueuedActivation& q, const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto r = run_sql(db_,
                       "INSERT INTO pending_activations (world_id, strategy_id, side, active, "
                       "actor, reason, at_us, action, forced) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       q.world_id, q.strategy_id, q.side, int64_t{q.active ? 1 : 0}, q.actor,
                       q.reason, q.at, q.action, int64_t{q.forced ? 1 : 0});
      !r) {
    return r;
  }
  if (auto r = append_audit(audit); !r) return r;
  return tx->commit();
}

namespace {

constexpr std::string_view kQueuedColumns =
    "seq, world_id, strategy_id, side, active, action, forced, actor, reason, at_us";

QueuedActivation read_queued(const Statement& r) {
  return QueuedActivation{.seq = r.column_int(0),
                          .world_id = r.column_text(1),
                          .strategy_id = r.column_text(2),
                          .side = r.column_text(3),
                          .active = r.column_int(4) != 0,
                          .action = r.column_text(5),
                          .forced = r.column_int(6) != 0,
                          .actor = r.column_text(7),
                          .reason = r.column_text(8),
                          .at = from_us(r.column_int(9))};
}

}  // namespace

Result<void> SqlStore::dequeue_locked(std::optional<int64_t> seq) {
  if (!seq) return {};
  if (auto r = run_sql(db_, "DELETE FROM pending_activations WHERE seq = ?", *seq); !r) return r;
  if (db_.changes() != 1) {
    return make_error(ErrorCode::kAlreadyExists,
                      fmt::format("queued change {} was carried out already", *seq));
  }
  return {};
}

Result<std::vector<QueuedActivation>> SqlStore::queued_locked(std::string_view world_id) {
  auto st =
      prepared(db_,
               fmt::format("SELECT {} FROM pending_activations WHERE world_id = ? ORDER BY seq",
                           kQueuedColumns),
               world_id);
  if (!st) return propagate(st);
  return collect(*st, read_queued);
}

Result<std::vector<QueuedActivation>> SqlStore::list_queued_activations(std::string_view world_id) {
  std::lock_guard lock(mu_);
  return queued_locked(world_id);
}

Result<void> SqlStore::drop_queued_activation(int64_t seq, const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto r = run_sql(db_, "DELETE FROM pending_activations WHERE seq = ?", seq); !r) return r;
  if (db_.changes() != 1) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("queued change {} is not queued any more", seq));
  }
  if (auto r = append_audit(audit); !r) return r;
  return tx->commit();
}

Result<void> SqlStore::drop_all_queued_locked(std::string_view world_id, lifecycle::WorldState next,
                                              TimePoint at, const AuditRecord& audit) {
  auto queued = queued_locked(world_id);
  if (!queued) return propagate(queued);
  for (const auto& q : *queued) {
    AuditRecord a = audit;
    a.at = at;
    a.entity = q.action == "gate" ? "activation" : "strategy";
    a.entity_id = q.action == "gate" ? fmt::format("{}/{}", q.strategy_id, q.side) : q.strategy_id;
    a.actor = q.actor;
    a.event = "ACTIVATION_DROPPED";
    a.before = std::nullopt;
    a.after = q.action == "gate" ? (q.active ? "active" : "inactive") : q.action;
    a.reason =
        fmt::format("queued while Paused; the world became {}", lifecycle::world_state_name(next));
    if (auto r = append_audit(a); !r) return r;
  }
  return run_sql(db_, "DELETE FROM pending_activations WHERE world_id = ?", world_id);
}

Result<void> SqlStore::set_gates(std::string_view world_id,
                                 const std::vector<std::string>& strategies,
                                 std::optional<bool> active, std::optional<bool> frozen,
                                 TimePoint at) {
  auto st = prepared(
      db_,
      "INSERT INTO activations (world_id, strategy_id, side, active, weight, frozen, version, "
      "updated_at_us) VALUES (?1, ?2, ?3, COALESCE(?4, 0), 1.0, COALESCE(?5, 0), 1, ?6) "
      "ON CONFLICT (world_id, strategy_id, side) DO UPDATE SET "
      "active = COALESCE(?4, activations.active), frozen = COALESCE(?5, activations.frozen), "
      "version = activations.version + 1, updated_at_us = ?6");
  if (!st) return propagate(st);
  for (const auto& id : strategies) {
    for (std::string_view side : {"long", "short"}) {
      st->reset();
      std::optional<int64_t> a, f;
      if (active) a = *active ? 1 : 0;
      if (frozen) f = *frozen ? 1 : 0;
      if (auto r = bind_one(*st, 1, world_id); !r) return r;
      if (auto r = bind_one(*st, 2, id); !r) return r;
      if (auto r = bind_one(*st, 3, side); !r) return r;
      if (auto r = bind_one(*st, 4, a); !r) return r;
      if (auto r = bind_one(*st, 5, f); !r) return r;
      if (auto r = bind_one(*st, 6, at); !r) return r;
      if (auto r = st->run(); !r) return r;
    }
  }
  return {};
}

Result<std::optional<ApplyJournalEntry>> SqlStore::get_apply_locked(std::string_view run_id) {
  return query_one(db_,
                   fmt::format("SELECT {} FROM apply_journal WHERE run_id = ?", kJournalColumns),
                   read_journal, run_id);
}

Result<std::optional<ApplyJournalEntry>> SqlStore::get_apply(std::string_view run_id) {
  std::lock_guard lock(mu_);
  return get_apply_locked(run_id);
}

Result<std::vector<ApplyJournalEntry>> SqlStore::unfinished_applies() {
  std::lock_guard lock(mu_);
  auto st = db_.prepare(fmt::format(
      "SELECT {} FROM apply_journal WHERE phase IN ('Frozen', 'Switched') ORDER BY started_at_us",
      kJournalColumns));
  if (!st) return propagate(st);
  return collect(*st, read_journal);
}

Result<void> SqlStore::check_basis_locked(const ApplyJournalEntry& e) {
  if (!e.basis) return {};
  auto w = get_world_locked(e.world_id);
  if (!w) return propagate(w);
  const std::string what = e.kind == "manual" ? std::string("the change was checked")
                                              : fmt::format("run '{}' was evaluated", e.run_id);
  if (w->policy_version.value_or(0) != e.basis->policy_version) {
    return make_error(
        ErrorCode::kFailedPrecondition,
        fmt::format("world '{}' changed since {}: policy version {} is current, "
                    "not {}; {}",
                    e.world_id, what, w->policy_version.value_or(0), e.basis->policy_version,
                    e.kind == "manual" ? "retry" : "evaluate again and apply that run"));
  }
  auto st =
      prepared(db_, "SELECT id FROM strategies WHERE world_id = ? AND state = 'Live' ORDER BY id",
               e.world_id);
  if (!st) return propagate(st);
  auto live = collect(*st, [](const Statement& r) { return r.column_text(0); });
  if (!live) return propagate(live);
  std::vector<std::string> expected = e.basis->live;
  std::sort(expected.begin(), expected.end());
  if (*live != expected) {
    const auto list = [](const std::vector<std::string>& ids) {
      return ids.empty() ? std::string("none") : fmt::format("{}", fmt::join(ids, ", "));
    };
    return make_error(
        ErrorCode::kFailedPrecondition,
        fmt::format("world '{}' changed since {}: the Live strategies are {} now, not {}; {}",
                    e.world_id, what, list(*live), list(expected),
                    e.kind == "manual" ? "retry" : "evaluate again and apply that run"));
  }
  return {};
}

Result<std::string> SqlStore::apply_freeze(const ApplyJournalEntry& e, const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  std::string run_id = e.run_id;
  if (run_id.empty()) {
    if (e.kind != "manual") {
      return make_error(ErrorCode::kInvalidArgument, "an evaluation apply needs its run id");
    }
    auto n = prepared(db_,
                      "SELECT COUNT(*) + 1 FROM apply_journal WHERE world_id = ? AND kind = "
                      "'manual'",
                      e.world_id);
    if (!n) return propagate(n);
    if (auto r = n->step(); !r) return propagate(r);
    run_id = fmt::format("{}-m{}", e.world_id, n->column_int(0));
  }
  auto existing = get_apply_locked(run_id);
  if (!existing) return propagate(existing);
  if (*existing) {
    return make_error(ErrorCode::kAlreadyExists,
                      fmt::format("run '{}' is already in the apply journal ({})", run_id,
                                  apply_phase_name((*existing)->phase)));
  }
  if (auto r = check_basis_locked(e); !r) return propagate(r);
  std::optional<int64_t> basis_policy;
  std::optional<std::string> basis_live;
  if (e.basis) {
    basis_policy = e.basis->policy_version;
    basis_live = join_ids(e.basis->live);
  }
  if (auto r = run_sql(db_,
                       fmt::format("INSERT INTO apply_journal ({}) VALUES (?, ?, 'Frozen', ?, ?, "
                                   "?, ?, ?, ?, ?, ?)",
                                   kJournalColumns),
                       run_id, e.world_id, join_ids(e.promote), join_ids(e.demote), e.started_at,
                       e.started_at, e.kind, e.only_side, basis_policy, basis_live);
      !r) {
    return propagate(r);
  }
  std::vector<std::string> all = e.promote;
  all.insert(all.end(), e.demote.begin(), e.demote.end());
  if (auto r = set_gates(e.world_id, all, std::nullopt, true, e.started_at); !r)
    return propagate(r);
  if (auto r = dequeue_locked(e.dequeue_seq); !r) return propagate(r);
  AuditRecord a = audit;
  a.entity_id = run_id;
  a.run_id = run_id;
  if (auto r = append_audit(a); !r) return propagate(r);
  if (auto r = tx->commit(); !r) return propagate(r);
  return run_id;
}

Result<void> SqlStore::apply_switch(std::string_view run_id, TimePoint at,
                                    const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  auto e = get_apply_locked(run_id);
  if (!e) return propagate(e);
  if (!*e || (*e)->phase != ApplyPhase::kFrozen) {
    return make_error(ErrorCode::kFailedPrecondition,
                      fmt::format("run '{}' is not frozen for apply", run_id));
  }
  const ApplyJournalEntry& j = **e;
  if (auto r = check_basis_locked(j); !r) return r;
  const bool manual = j.kind == "manual";
  using lifecycle::StrategyState;
  auto move = [&](const std::string& id, StrategyState from, StrategyState to,
                  std::string_view event, bool gate_open) -> Result<void> {
    auto st = prepared(
        db_, "UPDATE strategies SET state = ?, state_since_us = ? WHERE id = ? AND state = ?",
        lifecycle::strategy_state_name(to), at, id, lifecycle::strategy_state_name(from));
    if (!st) return propagate(st);
    if (auto r = st->run(); !r) return r;
    AuditRecord a = audit;
    a.entity = "strategy";
    a.entity_id = id;
    if (db_.changes() != 1) {
      // Someone changed the strategy after the evaluation: do not act on stale data.
      a.event = fmt::format("{}_SKIPPED", event);
      a.reason = fmt::format("not {} any more when the run was applied",
                             lifecycle::strategy_state_name(from));
      return append_audit(a);
    }
    if (auto r = append_history(id, from, to, event, at); !r) return r;
    a.event = std::string(event);
    a.before = std::string(lifecycle::strategy_state_name(from));
    a.after = std::string(lifecycle::strategy_state_name(to));
    if (auto r = append_audit(a); !r) return r;
    if (auto r = set_gates(j.world_id, {id}, gate_open, true, at); !r) return r;
    if (!manual) {
      // The policy took over again; the override was reported by the evaluation.
      return run_sql(db_,
                     "UPDATE activations SET manual = NULL WHERE world_id = ? AND strategy_id = ?",
                     j.world_id, id);
    }
    // An operator's change: its marks say so, and a side left out of a
    // one-sided promotion stays closed (manual off) until opened by hand.
    if (auto r =
            run_sql(db_, "UPDATE activations SET manual = ? WHERE world_id = ? AND strategy_id = ?",
                    int64_t{gate_open ? 1 : 0}, j.world_id, id);
        !r) {
      return r;
    }
    if (gate_open && j.only_side) {
      return run_sql(db_,
                     "UPDATE activations SET active = 0, manual = 0 WHERE world_id = ? AND "
                     "strategy_id = ? AND side <> ?",
                     j.world_id, id, *j.only_side);
    }
    return {};
  };
  // Closing first: within the transaction nothing is seen half-done, and the
  // order keeps every intermediate state within the caps as well.
  for (const auto& id : j.demote) {
    if (auto r = move(id, StrategyState::kLive, StrategyState::kDryRun, "DEMOTE", false); !r)
      return r;
  }
  for (const auto& id : j.promote) {
    if (auto r = move(id, StrategyState::kDryRun, StrategyState::kLive, "PROMOTE", true); !r)
      return r;
  }
  if (auto r = run_sql(
          db_, "UPDATE apply_journal SET phase = 'Switched', updated_at_us = ? WHERE run_id = ?",
          at, run_id);
      !r) {
    return r;
  }
  AuditRecord a = audit;
  a.event = "APPLY_SWITCH";
  if (auto r = append_audit(a); !r) return r;
  return tx->commit();
}

Result<void> SqlStore::apply_finish(std::string_view run_id, ApplyPhase final_phase, TimePoint at,
                                    const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  auto e = get_apply_locked(run_id);
  if (!e) return propagate(e);
  if (!*e)
    return make_error(ErrorCode::kNotFound,
                      fmt::format("run '{}' is not in the apply journal", run_id));
  const ApplyJournalEntry& j = **e;
  const bool ok = (final_phase == ApplyPhase::kDone && j.phase == ApplyPhase::kSwitched) ||
                  (final_phase == ApplyPhase::kRolledBack && j.phase == ApplyPhase::kFrozen);
  if (!ok) {
    return make_error(ErrorCode::kFailedPrecondition,
                      fmt::format("run '{}' cannot go from {} to {}", run_id,
                                  apply_phase_name(j.phase), apply_phase_name(final_phase)));
  }
  std::vector<std::string> all = j.promote;
  all.insert(all.end(), j.demote.begin(), j.demote.end());
  if (auto r = set_gates(j.world_id, all, std::nullopt, false, at); !r) return r;
  if (auto r =
          run_sql(db_, "UPDATE apply_journal SET phase = ?, updated_at_us = ? WHERE run_id = ?",
                  apply_phase_name(final_phase), at, run_id);
      !r) {
    return r;
  }
  if (auto r = append_audit(audit); !r) return r;
  return tx->commit();
}

}  // namespace qmtl::store
