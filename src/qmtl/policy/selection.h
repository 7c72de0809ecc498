// The selection pipeline (docs/policy.md): which strategies of a world should be live.
//
// Pure: everything it needs (metric values, states, past gate results, the clock
// reading) comes in as arguments, and the decisions come out with their reasons.
// Steps, in order, each recording its reason per strategy:
//   1. eligibility (state, min_dry_run, enough data), 2. gates (promote for
//   DryRun, demote for Live, reject for Validating), 3. score and rank,
//   4. correlation groups, 5. top-K, 6. time hysteresis within the hard caps.
//
// The caps are hard: the live set after select() never has more than top_k
// members, nor a connected component of correlation >= correlation.max with
// more than per_group members. A Live strategy waiting out its demotion
// (hysteresis) keeps its slot, so a candidate that would exceed a cap waits
// (HOLD, naming whom it waits for); Live strategies beyond a cap (a lowered
// k, correlations that rose, a forced manual promotion) are demoted at once.
//
// Fail-closed rules: a DryRun strategy is promoted only if its promote gate is
// definitely true; a Live strategy stays only while its demote gate is
// definitely false (missing data counts toward demotion); a Validating strategy
// whose reject gate is true or cannot be evaluated is rejected.
//
// Thread safety: select() is a pure function; call it from any thread.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qmtl/metrics/correlation.h"
#include "qmtl/policy/policy.h"

namespace qmtl::policy {

enum class CandidateState { kValidating, kDryRun, kLive, kOther };
enum class Decision { kPromote, kDemote, kHold, kReject, kIneligible };
std::string_view decision_name(Decision d);  // "PROMOTE", "DEMOTE", ...

// What one past evaluation recorded for a strategy (see StrategyResult::record).
struct PastEvaluation {
  TimePoint at;
  bool promote_pass = false;  // DryRun: the promote gate was true
  bool out = false;           // Live: demote triggered or not selected
};

struct Candidate {
  std::string id;
  CandidateState state = CandidateState::kDryRun;
  std::string state_name;                     // for reasons, e.g. "Inactive"
  std::vector<std::optional<double>> values;  // one per policy.refs slot
  std::optional<TimePoint> dry_run_since;     // DryRun: when it entered DryRun
  std::optional<TimePoint> live_since;        // Live: when it was promoted (tie-break)
  Duration history{0};                        // span of performance data available
  std::vector<PastEvaluation> past;           // oldest first
  std::optional<bool> manual;                 // manual override in force: true = activated
};

struct CorrelationPair {
  std::string a, b;
  double value = 0;
};

struct Correlations {
  // Either a matrix indexed like the candidates span...
  const metrics::CorrelationMatrix* matrix = nullptr;
  // ...or explicit pairs by id (symmetric; unknown pairs are uncorrelated).
  std::vector<CorrelationPair> pairs;
};

struct EvalContext {
  TimePoint now;
  bool allow_promotion = true;        // false in an EvalOnly world
  std::string promotion_blocked_why;  // e.g. "world is EvalOnly"
  // False: decisions, scores, ranks, groups and records only; no reasons and
  // no clauses (a replay asks again with them where it must explain). The
  // decisions are the same either way.
  bool explain = true;
  // With explain: when not empty, only these strategies (ids, sorted) get
  // reasons and clauses; a replay explains the decisions that differ.
  std::span<const std::string> explain_only;
};

// Whether `ctx` asks for the reasons of strategy `id`.
bool explains(const EvalContext& ctx, std::string_view id);

struct StrategyResult {
  std::string id;
  std::string gate;  // "promote", "demote", "reject" or "" when none applied
  Tri gate_result = Tri::kMissing;
  std::vector<ClauseResult> clauses;
  std::optional<double> score;
  std::optional<int> rank;   // 1-based among ranked strategies
  std::optional<int> group;  // correlation group (1-based), for groups of 2 or more
  Decision decision = Decision::kHold;
  std::vector<std::string> reasons;
  bool undoes_manual = false;
  PastEvaluation record;  // what to store for the next evaluation's hysteresis
};

struct Selection {
  std::vector<StrategyResult> results;  // in input order
  std::vector<std::string> live;        // the live set after this evaluation, by rank
};

Selection select(const Policy& policy, std::span<const Candidate> candidates,
                 const EvalContext& ctx, const Correlations& correlations = {});

// The indexes of the candidates select() ranks (eligible, gate passed, score
// present), ascending: the ones whose correlations the selection reads, besides
// the Live ones. The same decisions as select() without its reasons, and so
// much cheaper. Pure; any thread.
std::vector<size_t> competing(const Policy& policy, std::span<const Candidate> candidates,
                              const EvalContext& ctx);

// Whether candidates[newcomer] can join the live set candidates[live...]
// within the policy's caps. nullopt when it fits; otherwise why not, as the
// end of a sentence ("top_k 2 is full (a and b are Live)", "correlation 0.930
// >= 0.8 with a (Live), and a correlation group may have at most 1 Live").
// Only ids of `candidates` are read. Pure; any thread.
std::optional<std::string> cap_breach(const Policy& policy, std::span<const Candidate> candidates,
                                      std::span<const size_t> live, size_t newcomer,
                                      const Correlations& correlations = {});

}  // namespace qmtl::policy
