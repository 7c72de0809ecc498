// WorldPolicy: the typed model of a world's promotion policy (docs/policy.md), its
// YAML/JSON parser and its canonical printer.
//
// Parse errors name the source, line and column ("policy.yml:4:12: ...") and say
// what to fix. Unknown keys are errors. Thread safety: a parsed Policy is
// immutable and may be shared across threads.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "qmtl/core/result.h"
#include "qmtl/core/time.h"
#include "qmtl/policy/expr.h"

namespace qmtl::policy {

// "after 7d" or "after 3 consecutive evaluations". Zero means immediately.
struct Holding {
  std::variant<Duration, int> value = 0;
  friend bool operator==(const Holding&, const Holding&) = default;
};

enum class OnPromote { kFlat, kCarry };
enum class OnDemote { kFlatten, kKeep };

struct Policy {
  std::string description;

  // evaluation:
  std::optional<Duration> every = std::chrono::hours(24);  // exactly one of every/cron
  std::optional<std::string> cron;                         // 5 fields, UTC
  Duration min_dry_run{0};
  Duration window = std::chrono::hours(24 * 28);

  // gates: promote is required; demote defaults to `not promote`.
  Expr promote;
  Expr demote;
  bool demote_is_default = true;
  std::optional<Expr> reject;

  Expr score;  // default: sharpe
  std::optional<int> top_k;

  struct Correlation {
    double max = 1.0;
    int per_group = 1;
    std::optional<Duration> window;  // default: evaluation.window
    friend bool operator==(const Correlation&, const Correlation&) = default;
  };
  std::optional<Correlation> correlation;

  Holding promote_after{.value = Duration{0}};  // default: immediately
  Holding demote_after{.value = 1};             // default: at the first failing evaluation

  OnPromote on_promote = OnPromote::kFlat;
  OnDemote on_demote = OnDemote::kFlatten;

  // Every metric any expression reads, by slot.
  RefTable refs;

  friend bool operator==(const Policy& a, const Policy& b);
};

// Parses a policy document (YAML, or JSON which is read as YAML). `source` names
// it in error messages (a file name, or "policy" for an API body).
Result<Policy> parse_policy(std::string_view text, std::string_view source = "policy");

// Reads and parses a policy file; kNotFound if it cannot be opened.
Result<Policy> read_policy_file(const std::string& path);

// A holding period as the canonical form writes it: "7d", or "3" (evaluations).
std::string holding_text(const Holding& h);

// The canonical YAML form: every key explicit, expressions normalised.
// parse_policy(print_policy(p)) == p.
std::string print_policy(const Policy& p);

}  // namespace qmtl::policy
