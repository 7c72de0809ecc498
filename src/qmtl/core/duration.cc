#include "qmtl/core/duration.h"

#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <limits>
#include <utility>

namespace qmtl {
namespace {

struct Unit {
  std::string_view suffix;
  int64_t micros;
};

// Largest first: format_duration picks the first that divides exactly.
constexpr std::array<Unit, 7> kUnits{{{"w", 7LL * 86'400'000'000LL},
                                      {"d", 86'400'000'000LL},
                                      {"h", 3'600'000'000LL},
                                      {"m", 60'000'000LL},
                                      {"s", 1'000'000LL},
                                      {"ms", 1'000LL},
                                      {"us", 1LL}}};

constexpr std::string_view kHelp =
    "write a whole number and a unit: us, ms, s, m, h, d or w (e.g. 30s, 5m, 4w)";

tl::unexpected<Error> bad(std::string_view text, std::string_view why) {
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("invalid duration '{}': {}", text, why));
}

}  // namespace

Result<Duration> parse_duration(std::string_view text) {
  if (text.empty()) return bad(text, fmt::format("empty; {}", kHelp));
  size_t i = 0;
  int64_t value = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    const int digit = text[i] - '0';
    if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) {
      return bad(text, "the number is too large");
    }
    value = value * 10 + digit;
    ++i;
  }
  if (i == 0) {
    if (text[0] == '-') return bad(text, "durations cannot be negative");
    return bad(text, fmt::format("it must start with a number; {}", kHelp));
  }
  if (i < text.size() && (text[i] == '.' || text[i] == ',')) {
    return bad(text, "fractions are not allowed; use a smaller unit (e.g. 90m instead of 1.5h)");
  }
  const std::string_view suffix = text.substr(i);
  if (suffix.empty()) return bad(text, fmt::format("missing unit; {}", kHelp));
  if (suffix == "mo" || suffix == "M" || suffix == "month" || suffix == "months") {
    return bad(text, fmt::format("months vary in length; use days instead, e.g. {}d",
                                 value > 0 && value < 1'000'000 ? value * 30 : 30));
  }
  if (suffix == "y" || suffix == "Y" || suffix == "year" || suffix == "years") {
    return bad(text, fmt::format("years vary in length; use days instead, e.g. {}d",
                                 value > 0 && value < 1'000'000 ? value * 365 : 365));
  }
  for (const Unit& u : kUnits) {
    if (suffix != u.suffix) continue;
    if (value > std::numeric_limits<int64_t>::max() / u.micros) {
      return bad(text, "too large to represent");
    }
    return Duration(value * u.micros);
  }
  return bad(text, fmt::format("unknown unit '{}'; {}", suffix, kHelp));
}

std::string format_duration(Duration d) {
  int64_t v = d.count();
  if (v == 0) return "0s";
  std::string sign;
  if (v < 0) {
    sign = "-";
    // The most negative value has no positive counterpart; show it in microseconds.
    if (v == std::numeric_limits<int64_t>::min()) return fmt::format("{}us", v);
    v = -v;
  }
  for (const Unit& u : kUnits) {
    if (v % u.micros == 0) return fmt::format("{}{}{}", sign, v / u.micros, u.suffix);
  }
  return fmt::format("{}{}us", sign, v);  // unreachable: every value divides by 1 us
}

}  // namespace qmtl
