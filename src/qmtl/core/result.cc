#include "qmtl/core/result.h"

#include "qmtl/core/enum_name.h"

namespace qmtl {

std::string_view error_code_name(ErrorCode code) {
  // In ErrorCode's declaration order.
  static constexpr std::array<std::string_view, 9> kNames{
      "invalid_argument",    "not_found",        "already_exists",
      "failed_precondition", "version_mismatch", "unauthenticated",
      "permission_denied",   "unavailable",      "internal"};
  return enum_name(code, kNames);
}

}  // namespace qmtl
