#include "qmtl/policy/document.h"

#include <utility>

#include "qmtl/core/file.h"

namespace qmtl::policy {

Result<PolicyDocument> parse_policy_document(std::string_view text, std::string_view source) {
  if (looks_like_qmtl(text)) {
    auto q = parse_qmtl_policy(text, source);
    if (!q) return propagate(q);
    return PolicyDocument(std::move(*q));
  }
  auto p = parse_policy(text, source);
  if (!p) return propagate(p);
  return PolicyDocument(std::move(*p));
}

Result<PolicyDocument> read_policy_document(const std::string& path) {
  auto text = read_file(path, "policy file");
  if (!text) return propagate(text);
  return parse_policy_document(*text, path);
}

}  // namespace qmtl::policy
