// Offline evaluation: a policy run on metrics given as JSON documents, with
// no world or store behind it. `qmtl policy check|eval` and the Python
// package's qmtl.policy both use it, so their answers are the same.
//
// Thread safety: pure functions.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "qmtl/core/result.h"
#include "qmtl/core/time.h"
#include "qmtl/policy/document.h"
#include "qmtl/policy/selection.h"

namespace qmtl::policy {

// What a policy document is and reads.
struct PolicySummary {
  std::string form;                      // "native" or "qmtl"
  std::vector<std::string> metrics;      // the metrics it reads, in first-use order
  std::optional<std::string> canonical;  // a native policy printed canonically
};
PolicySummary summarize_policy(const PolicyDocument& doc);
// {"valid": true, "form", "metrics": [...], "canonical"?}: `qmtl policy check --output json`.
boost::json::object policy_summary_json(const PolicySummary& s);

struct OfflineInputs {
  // {"<strategy>": {"<metric>": number | null}} (QMTL form: nested objects too).
  boost::json::value metrics;
  std::vector<std::string> previous;  // live before this evaluation
  // [{"a", "b", "value"}]; nullopt: none.
  std::optional<boost::json::value> correlations;
  // {"<strategy>": [{"at", "promote_pass", "out"}]}, native policies only.
  std::optional<boost::json::value> history;
  TimePoint now;                     // the evaluation's time
  std::optional<std::string> stage;  // QMTL policies: picks the validation profile
  // How errors name each input ("metrics.json: 'a' must map metric names to numbers").
  std::string metrics_name = "metrics";
  std::string correlations_name = "correlations";
  std::string history_name = "history";
  std::string previous_name = "previous";
};

struct OfflineResult {
  std::vector<std::string> selected;  // live after this evaluation
  std::vector<StrategyResult> results;
  std::optional<std::string> profile;  // QMTL: the validation profile used
};

// Runs the selection pipeline of either form on the inputs. kInvalidArgument
// naming the input and what to fix: a malformed document, an id in `previous`
// that has no metrics, `history` with a QMTL policy, `stage` with a native one.
// The file has no timestamps: every strategy counts as eligible by time.
Result<OfflineResult> evaluate_offline(const PolicyDocument& doc, const OfflineInputs& in);

// {"selected": [...], "strategies": {"<id>": {"gate", "clauses", "score",
// "rank", "group", "decision", "reasons", "undoes_manual"}}, "profile"?}:
// `qmtl policy eval --output json`.
boost::json::object offline_result_json(const OfflineResult& r);

}  // namespace qmtl::policy
