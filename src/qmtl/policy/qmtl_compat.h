// QMTL-form policies, evaluated with QMTL's semantics (docs/policy.md has the
// mapping).
//
//   thresholds: {<key>: {metric, min, max}}   inclusive bounds, all must hold
//   top_k: {metric, k}                        stable sort descending, ties keep
//                                             input order, missing sorts last
//   correlation: {max}                        greedy over the ranked order: keep
//                                             a candidate if |corr| <= max with
//                                             every kept one; unknown pair = 0
//   hysteresis: {metric, enter, exit}         previously active stays while
//                                             value >= exit; new needs >= enter
//   selection: {thresholds, top_k, correlation, hysteresis}   same, nested
//   validation_profiles / default_profile_by_stage            thresholds by stage
//   validation: {on_error, on_missing_metric}
//
// Differences from QMTL's engine, on purpose: NaN is missing (QMTL lets NaN pass
// every bound because NaN < min is false), and on_missing_metric is honoured
// (QMTL's selection ignores it and always fails a missing metric).
//
// Thread safety: an evaluated QmtlPolicy is immutable; evaluate_qmtl is pure.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "qmtl/core/result.h"
#include "qmtl/policy/selection.h"

namespace qmtl::policy {

struct QmtlThreshold {
  std::string key;
  std::string metric;
  std::optional<double> min, max;
  friend bool operator==(const QmtlThreshold&, const QmtlThreshold&) = default;
};

struct QmtlPolicy {
  std::vector<QmtlThreshold> thresholds;  // merged: top-level keys win over selection's
  struct TopK {
    std::string metric;
    int k = 1;
  };
  std::optional<TopK> top_k;
  std::optional<double> correlation_max;
  struct Hysteresis {
    std::string metric;
    double enter = 0, exit = 0;
  };
  std::optional<Hysteresis> hysteresis;
  // Profile name -> the thresholds it adds (QMTL's fixed field -> metric
  // mapping), in file order.
  std::vector<std::pair<std::string, std::vector<QmtlThreshold>>> profiles;
  std::vector<std::pair<std::string, std::string>> default_profile_by_stage;  // in file order
  enum class OnMissing { kFail, kWarn, kIgnore } on_missing = OnMissing::kFail;
};

// True if the document uses QMTL's form (thresholds, selection, validation
// profiles, or top_k / hysteresis with a `metric`). False for anything that does
// not parse; parse_policy then reports the error.
bool looks_like_qmtl(std::string_view text);

// Parses a QMTL-form policy. Errors name line and column, like parse_policy;
// mixing in native keys (gates, score, evaluation, position) is an error.
Result<QmtlPolicy> parse_qmtl_policy(std::string_view text, std::string_view source = "policy");

struct QmtlInput {
  // Strategies in input order, each with its metrics by name.
  std::vector<std::pair<std::string, std::map<std::string, double, std::less<>>>> metrics;
  std::vector<std::string> previous;  // active before this evaluation
  std::vector<CorrelationPair> correlations;
  std::optional<std::string> stage;  // picks the validation profile (see docs/policy.md)
};

struct QmtlResult {
  std::vector<std::string> selected;       // in QMTL's output order
  std::optional<std::string> profile;      // the validation profile applied
  std::vector<StrategyResult> strategies;  // in input order; decisions vs previous
};

QmtlResult evaluate_qmtl(const QmtlPolicy& policy, const QmtlInput& input);

}  // namespace qmtl::policy
