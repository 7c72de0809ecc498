#include "qmtl/cli/number_check.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

namespace qmtl::cli {
namespace {

enum class Low { kInclusive, kExclusive };

// Empty when `text` is a finite number within the bounds; else what is wrong.
std::string check(const std::string& text, double lo, Low low, double hi) {
  const char* begin = text.c_str();
  char* end = nullptr;
  const double x = std::strtod(begin, &end);
  if (text.empty() || end == begin || *end != '\0')
    return fmt::format("'{}' is not a number", text);
  if (!std::isfinite(x)) return fmt::format("{} is not a finite number", text);
  const bool above = low == Low::kInclusive ? x >= lo : x > lo;
  if (above && x <= hi) return {};
  const bool unbounded = hi == std::numeric_limits<double>::max();
  if (unbounded) {
    return fmt::format("{} must be {} {}", text, low == Low::kInclusive ? "at least" : "above", lo);
  }
  return fmt::format("{} must be between {} and {}", text, lo, hi);
}

CLI::Validator validator(double lo, Low low, double hi, std::string description) {
  return {[lo, low, hi](std::string& text) { return check(text, lo, low, hi); },
          std::move(description)};
}

}  // namespace

CLI::Validator finite_in(double lo, double hi) {
  return validator(lo, Low::kInclusive, hi, fmt::format("NUMBER in [{} - {}]", lo, hi));
}

CLI::Validator finite_above(double lo) {
  return validator(lo, Low::kExclusive, std::numeric_limits<double>::max(),
                   fmt::format("NUMBER > {}", lo));
}

CLI::Validator finite_at_least(double lo) {
  return validator(lo, Low::kInclusive, std::numeric_limits<double>::max(),
                   fmt::format("NUMBER >= {}", lo));
}

}  // namespace qmtl::cli
