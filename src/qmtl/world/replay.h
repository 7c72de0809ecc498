// Policy replay (docs/policy.md, "Trying a policy before applying it"): what a
// policy would have decided over a world's own stored history, and the live
// book it would have held.
//
// The replay walks the world's audit log in order. Each recorded evaluation run
// in the span is evaluated again at its start time, through the evaluation and
// selection code the scheduler uses, on the records stamped up to that time;
// each apply of a run applies the replayed decisions of that run instead of the
// recorded ones. Everything a policy does not decide (submissions, validations,
// manual promotions and deactivations, the world's state) happens as it was
// recorded. Before the span, the replayed path is the recorded one.
//
// Thread safety: plain values.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "qmtl/core/time.h"
#include "qmtl/store/entities.h"

namespace qmtl::world {

struct ReplayOptions {
  // A candidate policy document (YAML or JSON) used for every run; empty: the
  // policy version each run recorded, which must reproduce every decision.
  std::string policy;
  TimePoint from = TimePoint::min();   // runs started at or after
  TimePoint until = TimePoint::max();  // and at or before
  // Only this run (from and until are then ignored), with every strategy's
  // replayed decision beside the recorded one in ReplayReport::run_decisions.
  std::optional<std::string> run;
};

// One strategy of a run replayed alone (ReplayOptions::run).
struct ReplayedDecision {
  std::string strategy;
  std::string state;  // as the replay evaluated it
  std::string recorded, replayed;
  std::optional<double> score;
  std::optional<int> rank;
  std::vector<std::string> reasons;  // the replay's
};

// A run whose replayed decision for a strategy is not the recorded one.
struct ReplayDifference {
  std::string run;
  TimePoint at;
  std::string strategy;
  std::string recorded;  // PROMOTE, DEMOTE, HOLD, ... ("" when it was not evaluated then)
  std::string replayed;
  std::string why;  // the first clause whose value differs, or the replay's reasons
};

// Who was live from `at` on.
struct LiveSet {
  TimePoint at;
  std::vector<std::string> live;  // by id
  friend bool operator==(const LiveSet&, const LiveSet&) = default;
};

// A live book over the span: the strategies it held and the equity of holding
// them in equal weights (each one's recorded returns while it was live; cash,
// return 0, while none was).
struct ReplayBook {
  std::vector<LiveSet> live;                          // each change, oldest first
  std::vector<store::PerformancePoint> equity;        // starts at 1 at the span's first run
  std::map<std::string, std::optional<double>> kpis;  // as `qmtl metrics` names them
  size_t promotions = 0;
  size_t demotions = 0;
};

struct ReplayReport {
  std::string world;
  bool candidate = false;                // a candidate policy, not the recorded versions
  size_t runs = 0;                       // recorded runs replayed
  std::optional<TimePoint> from, until;  // the first and last replayed run's time
  size_t decisions = 0;                  // strategy decisions compared
  std::vector<ReplayDifference> differences;
  ReplayBook recorded;                          // what the world held
  ReplayBook replayed;                          // what the replay held
  std::vector<ReplayedDecision> run_decisions;  // with ReplayOptions::run only
};

}  // namespace qmtl::world
