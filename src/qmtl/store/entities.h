// The records the store keeps: worlds, policy versions, strategies, the audit
// log, performance and validation, evaluation runs and schedules, activation
// gates and the apply journal. Plain values; store.h is the interface that
// reads and writes them.
//
// Thread safety: plain structs, no shared state.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qmtl/core/result.h"
#include "qmtl/core/time.h"
#include "qmtl/lifecycle/fsm.h"
#include "qmtl/lifecycle/world_state.h"

namespace qmtl::store {

struct World {
  std::string id;
  std::string name;
  lifecycle::WorldState state = lifecycle::WorldState::kActive;
  std::optional<int64_t> policy_version;  // the current version; none until a policy is set
  TimePoint created_at;
  TimePoint updated_at;

  friend bool operator==(const World&, const World&) = default;
};

// One line of the audit log: who did what to which object, from which state to
// which, and why. `seq` is assigned by the store and strictly increasing.
struct AuditRecord {
  int64_t seq = 0;
  TimePoint at;
  std::string actor;
  std::string world_id;
  std::string entity;     // "world", "policy", "strategy"
  std::string entity_id;  // world id, policy version, strategy id
  std::string event;      // e.g. "CREATE", "PAUSE", "PROMOTE", "POLICY_ADD"
  std::optional<std::string> before;
  std::optional<std::string> after;
  std::string reason;
  std::optional<std::string> run_id;

  friend bool operator==(const AuditRecord&, const AuditRecord&) = default;
};

// An immutable policy version of a world.
struct PolicyVersion {
  std::string world_id;
  int64_t version = 0;
  std::string document;   // as submitted
  std::string canonical;  // normalised form the engine evaluates
  std::string checksum;   // sha256 of canonical
  TimePoint created_at;

  friend bool operator==(const PolicyVersion&, const PolicyVersion&) = default;
};

struct Strategy {
  std::string id;
  std::string world_id;
  lifecycle::StrategyState state = lifecycle::StrategyState::kSubmitted;
  TimePoint state_since;
  std::string spec;  // the declarative strategy, as submitted (JSON)
  TimePoint created_at;

  friend bool operator==(const Strategy&, const Strategy&) = default;
};

// One equity observation of a strategy (backtest, paper or live: same shape).
struct PerformancePoint {
  TimePoint ts;
  double equity = 0;
  friend bool operator==(const PerformancePoint&, const PerformancePoint&) = default;
};

// One hour of a strategy's points, kept beside them (performance_rollup) so a
// long history can be drawn without reading every point: how many there are,
// and the first, lowest, highest and last of them (the earliest on a tie).
struct RollupBucket {
  TimePoint start;  // a whole hour since the epoch (kRollupWidth)
  int64_t n = 0;
  PerformancePoint first, low, high, last;
};
inline constexpr Duration kRollupWidth = std::chrono::hours(1);
// The start of the hour `t` falls in (before 1970 too).
inline TimePoint rollup_start(TimePoint t) {
  const int64_t us = t.time_since_epoch().count();
  const int64_t w = kRollupWidth.count();
  return TimePoint(Duration(us - (((us % w) + w) % w)));
}

// One execution reported by a broker.
struct FillRecord {
  TimePoint ts;
  std::string symbol;
  std::string side;  // "buy" or "sell"
  double qty = 0;    // > 0
  double price = 0;  // > 0
  double fee = 0;
  friend bool operator==(const FillRecord&, const FillRecord&) = default;
};

// A strategy's records with when each was stored (Store::load_known_records);
// index i of a `*_known_at` vector belongs to record i.
struct KnownRecords {
  std::vector<PerformancePoint> points;  // oldest first
  std::vector<TimePoint> points_known_at;
  std::vector<FillRecord> fills;  // oldest first
  std::vector<TimePoint> fills_known_at;
};

// Two equities of one point are the same record when they differ by at most
// this much, relative to the larger: a runner that recomputes its history
// after a restart may differ in the last bits (100004.09999999996 against
// ...98), which is a repeat, not a conflict.
inline constexpr double kEquityRepeatTolerance = 1e-9;

// A point offered at a time that already holds another equity (beyond the
// tolerance): refused, with both values.
struct PointConflict {
  TimePoint ts;
  double stored = 0;
  double offered = 0;
  friend bool operator==(const PointConflict&, const PointConflict&) = default;
};

// What append_performance did with a batch.
struct AppendOutcome {
  size_t points_stored = 0;    // new points
  size_t points_repeated = 0;  // already stored with the same equity (within the tolerance)
  size_t fills_stored = 0;
  std::vector<PointConflict> conflicts;  // refused points, oldest first
};

// What one evaluation decided for one strategy; the hysteresis of later runs
// reads `promote_pass` and `out`.
struct EvaluationResultRow {
  std::string strategy_id;
  std::string decision;
  bool promote_pass = false;
  bool out = false;
};

struct EvaluationRunRecord {
  std::string id;  // assigned by the store: "<world>-<n>"
  std::string world_id;
  int64_t policy_version = 0;
  TimePoint started_at;
  TimePoint finished_at;
  std::string detail;  // the run as JSON (docs/api.md shape)
  std::vector<EvaluationResultRow> results;
};

// The activation gate of one strategy side in a world (docs/api.md): orders go out
// only while `active` and not `frozen`. `version` changes on every write (ETag).
struct Activation {
  std::string world_id;
  std::string strategy_id;
  std::string side;  // "long" or "short"
  bool active = false;
  double weight = 1.0;
  bool frozen = false;
  int64_t version = 0;
  TimePoint updated_at;
  std::optional<bool> manual;  // an operator's override in force: true = on, false = off
  friend bool operator==(const Activation&, const Activation&) = default;
};

// A world's evaluation schedule: when the next scheduled evaluation is due,
// and what the last one did. `spec` is the schedule the times were computed
// from ("every 1d", "cron 0 0 * * 1"); a policy with another one starts afresh.
struct ScheduleState {
  std::string world_id;
  std::string spec;
  TimePoint next_run;
  std::optional<TimePoint> last_run;       // when the last scheduled evaluation was due
  std::optional<std::string> last_run_id;  // its run (set by insert_evaluation_run)
  std::string last_error;                  // why the last scheduled evaluation failed; "" if not
  friend bool operator==(const ScheduleState&, const ScheduleState&) = default;
};

// Where a world's alerts go: a webhook URL (may embed a secret, e.g. Slack's)
// and the kinds of events that are sent ("promote", "demote", "reject",
// "failure").
struct AlertHook {
  std::string world_id;
  std::string url;
  std::vector<std::string> events;
  TimePoint updated_at;
  friend bool operator==(const AlertHook&, const AlertHook&) = default;
};

// A world's settings of one kind, as a JSON object the world service
// validated: "execution" (how the server validates and runs its strategies),
// "broker" (its live broker connection; names of secrets, never secrets).
struct WorldSetting {
  std::string world_id;
  std::string kind;
  std::string doc;
  TimePoint updated_at;
  friend bool operator==(const WorldSetting&, const WorldSetting&) = default;
};

// The validation backtest of a strategy (docs/architecture.md, state machines: Validating): its
// outcome, why, and the performance records the backtest made. Kept apart from the records of
// dry-run and live trading, which the evaluation reads: a backtest's equity over history must not
// blend into the equity a strategy earns in real time.
struct ValidationRecord {
  std::string strategy_id;
  std::string world_id;
  std::string outcome;  // "passed", "rejected" (the reject gate) or "failed" (the run)
  std::string reason;
  std::string detail;  // JSON: metrics, reject clauses, bars, time range
  TimePoint started_at;
  TimePoint finished_at;
  std::vector<PerformancePoint> points;
  std::vector<FillRecord> fills;
  friend bool operator==(const ValidationRecord&, const ValidationRecord&) = default;
};

// Where a two-phase apply of an evaluation run stands.
enum class ApplyPhase { kFrozen, kSwitched, kDone, kRolledBack };
std::string_view apply_phase_name(ApplyPhase p);

// What an apply was decided on: the world's current policy version and its
// Live strategies at the time. The caps of the policy (top_k, per_group) were
// checked against exactly this live set, so an apply switches only while the
// world still matches it (checked in the freeze and the switch transactions).
struct ApplyBasis {
  int64_t policy_version = 0;     // 0: the world had no policy
  std::vector<std::string> live;  // sorted ids
  friend bool operator==(const ApplyBasis&, const ApplyBasis&) = default;
};

struct ApplyJournalEntry {
  std::string run_id;  // the evaluation run, or "<world>-m<n>" for a manual change
  std::string world_id;
  ApplyPhase phase = ApplyPhase::kFrozen;
  std::vector<std::string> promote;  // DryRun -> Live
  std::vector<std::string> demote;   // Live -> DryRun
  TimePoint started_at;
  TimePoint updated_at;
  // "evaluation" (the decisions of run `run_id`) or "manual" (an operator's
  // promotion or demotion: the switch marks the gates as manual instead of
  // clearing the marks).
  std::string kind = "evaluation";
  // Manual promotion of one side only (an activation override): that side
  // opens, the other stays closed (marked manual off).
  std::optional<std::string> only_side;
  std::optional<ApplyBasis> basis;  // none: not checked (entries from before it existed)
  // Not stored: the queued manual change (QueuedActivation::seq) this apply
  // carries out; removed from the queue in the freeze transaction.
  std::optional<int64_t> dequeue_seq;
};

// A manual change asked for while the world was Paused, carried out when it
// resumes (in `seq` order). `action` is "gate" (set one side's gate), "promote"
// or "demote" (side unused).
struct QueuedActivation {
  int64_t seq = 0;
  std::string world_id;
  std::string strategy_id;
  std::string side;
  bool active = false;
  std::string action = "gate";
  bool forced = false;
  std::string actor;
  std::string reason;
  TimePoint at;
  friend bool operator==(const QueuedActivation&, const QueuedActivation&) = default;
};

}  // namespace qmtl::store
