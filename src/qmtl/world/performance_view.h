// Reading a strategy's record back: its state changes (the timeline) and its
// equity and fills by kind (validation, dry-run, live), downsampled for
// drawing. The web console, the reports and GET /strategies/{id}/performance
// read these (docs/api.md, "Performance and timeline").
//
// Thread safety: pure functions and plain values.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qmtl/core/result.h"
#include "qmtl/lifecycle/fsm.h"
#include "qmtl/store/entities.h"

namespace qmtl::world {

// Where a record comes from: the validation backtest, or the strategy's runs
// on the server while it was in dry-run or live.
enum class RecordKind { kValidation, kDryRun, kLive };
// "validation", "dryrun", "live".
std::string_view record_kind_name(RecordKind kind);
// The inverse; kInvalidArgument names the three.
Result<RecordKind> parse_record_kind(std::string_view name);

// One state change of a strategy, as the audit log recorded it.
struct StrategyTransition {
  int64_t seq = 0;  // the audit record's
  std::string strategy;
  std::optional<lifecycle::StrategyState> from;  // none for the submission
  lifecycle::StrategyState to = lifecycle::StrategyState::kSubmitted;
  TimePoint at;
  std::string event;  // SUBMIT, VALIDATION_PASSED, PROMOTE, DEMOTE, ...
  std::string actor;
  std::string reason;
  std::optional<std::string> run_id;  // the evaluation run that decided it
};

// The state changes among `audit`, in its order; records that are not a
// strategy's change of state (queued changes, hand-over reports) are skipped.
std::vector<StrategyTransition> transitions_of(std::span<const store::AuditRecord> audit);

// A span of time a strategy spent in one kind of run; `to` is nullopt while it
// goes on.
struct Period {
  RecordKind kind = RecordKind::kDryRun;
  TimePoint from;
  std::optional<TimePoint> to;
};

// The dry-run and live periods of one strategy from its transitions (oldest
// first), in time order.
std::vector<Period> run_periods(std::span<const StrategyTransition> transitions);

// The kind of a server-run record stamped `ts`: live inside a live period,
// dry-run otherwise (a record before the first period, or while inactive, is
// a paper record). `periods` as run_periods gives them.
RecordKind kind_at(std::span<const Period> periods, TimePoint ts);

struct PerformanceQuery {
  // nullopt: the records of the server's runs (dry-run and live together).
  std::optional<RecordKind> kind;
  TimePoint from = TimePoint::min();
  TimePoint to = TimePoint::max();
  size_t max_points = 2000;  // downsampled above this (metrics/downsample.h)
  size_t max_fills = 2000;   // the newest this many are returned
};

struct PerformanceView {
  std::string strategy;
  std::string world;
  std::vector<store::PerformancePoint> points;  // oldest first, downsampled
  size_t total_points = 0;                      // in range and kind, before downsampling
  std::vector<store::FillRecord> fills;         // oldest first
  size_t total_fills = 0;
  // The dry-run and live periods, after the validation backtest's span (by its
  // records' times) when kind is validation: what a chart shades.
  std::vector<Period> periods;
};

}  // namespace qmtl::world
