// `qmtl policy check` and `qmtl policy eval`: offline work on policy files.
//
// Thread safety: not reentrant with respect to the streams it is given.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace qmtl::cli {

// Exit 0 and a one-line summary if the policy is valid, else 1 and the error
// with file:line:column.
int run_policy_check(const std::string& path, bool json, std::ostream& out, std::ostream& err);

struct PolicyEvalOptions {
  std::string policy;
  std::string metrics;                      // {"<id>": {"<metric>": number|null}}
  std::vector<std::string> previous;        // ids live before this evaluation
  std::optional<std::string> correlations;  // [{"a", "b", "value"}]
  std::optional<std::string> history;       // {"<id>": [{"at", "promote_pass", "out"}]}
  std::optional<std::string> now;           // ISO-8601; default: the system clock
  std::optional<std::string> stage;         // QMTL policies: picks the validation profile
  bool json = false;
};

// Runs the selection pipeline (native or QMTL form) on the given inputs. Exit 0 with the decisions;
// 1 when an input file is refused (naming the file and the problem).
int run_policy_eval(const PolicyEvalOptions& options, std::ostream& out, std::ostream& err);

}  // namespace qmtl::cli
