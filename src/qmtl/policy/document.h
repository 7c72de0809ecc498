// PolicyDocument: a world's policy in whichever form it is written — the
// native WorldPolicy (policy.h) or QMTL's form (qmtl_compat.h) — and the one
// parser every consumer uses for stored or submitted policy text.
//
// Thread safety: a parsed document is immutable and may be shared across
// threads (WorldService hands out one shared copy per world and version).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "qmtl/core/result.h"
#include "qmtl/policy/policy.h"
#include "qmtl/policy/qmtl_compat.h"

namespace qmtl::policy {

// Either form of policy document.
using PolicyDocument = std::variant<Policy, QmtlPolicy>;

// Parses a document in whichever form it is written (looks_like_qmtl decides).
// Errors name `source`, line and column and say what to fix.
Result<PolicyDocument> parse_policy_document(std::string_view text,
                                             std::string_view source = "policy");
// Reads and parses a policy file of either form; kNotFound if it cannot be opened.
Result<PolicyDocument> read_policy_document(const std::string& path);

// The native policy of a document, or null for a QMTL-form one (which worlds
// do not evaluate on a schedule, and which has no position hand-over policy).
inline const Policy* native_policy(const PolicyDocument& doc) { return std::get_if<Policy>(&doc); }

}  // namespace qmtl::policy
