#include "qmtl/core/cron.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <sstream>
#include <vector>

namespace qmtl {
namespace {

struct FieldSpec {
  std::string_view name;
  int lo, hi;
};
constexpr std::array<FieldSpec, 5> kFields{{{"minute", 0, 59},
                                            {"hour", 0, 23},
                                            {"day of month", 1, 31},
                                            {"month", 1, 12},
                                            {"day of week", 0, 7}}};

bool to_int(std::string_view s, int& out) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

// Sets the bits of one field; false when it is malformed or out of range.
bool parse_field(std::string_view field, const FieldSpec& spec, std::vector<bool>& bits,
                 bool& star) {
  star = field == "*";
  size_t start = 0;
  while (start <= field.size()) {
    const auto comma = field.find(',', start);
    const std::string_view item = field.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    std::string_view range = item;
    int step = 1;
    if (const auto slash = item.find('/'); slash != std::string_view::npos) {
      range = item.substr(0, slash);
      if (!to_int(item.substr(slash + 1), step) || step < 1) return false;
    }
    int a = spec.lo, b = spec.hi;
    if (range != "*") {
      const auto dash = range.find('-');
      if (!to_int(range.substr(0, dash), a)) return false;
      b = a;
      if (dash != std::string_view::npos && !to_int(range.substr(dash + 1), b)) return false;
      // "5/15" means from 5 to the end in steps of 15.
      if (dash == std::string_view::npos && item.find('/') != std::string_view::npos) b = spec.hi;
    }
    if (a < spec.lo || b > spec.hi || a > b) return false;
    for (int v = a; v <= b; v += step) bits[static_cast<size_t>(v)] = true;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return true;
}

}  // namespace

Result<CronSchedule> CronSchedule::parse(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::vector<std::string> fields;
  for (std::string f; in >> f;) fields.push_back(f);
  if (fields.size() != 5) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("a cron schedule needs 5 fields (minute hour day month weekday, "
                                  "UTC), e.g. \"0 0 * * 1\"; got {}",
                                  fields.size()));
  }
  CronSchedule c;
  c.text_ = std::string(text);
  for (size_t i = 0; i < 5; ++i) {
    std::vector<bool> bits(static_cast<size_t>(kFields[i].hi) + 1);
    bool star = false;
    if (!parse_field(fields[i], kFields[i], bits, star)) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("'{}' is not a valid {} field; use *, a number {}-{}, a range "
                                    "a-b, a list or a step */n",
                                    fields[i], kFields[i].name, kFields[i].lo, kFields[i].hi));
    }
    for (size_t v = 0; v < bits.size(); ++v) {
      if (!bits[v]) continue;
      switch (i) {
        case 0:
          c.minutes_.set(v);
          break;
        case 1:
          c.hours_.set(v);
          break;
        case 2:
          c.days_.set(v);
          break;
        case 3:
          c.months_.set(v);
          break;
        default:
          c.weekdays_.set(v % 7);  // 7 is Sunday too
      }
    }
    if (i == 2) c.any_day_ = star;
    if (i == 4) c.any_weekday_ = star;
  }
  return c;
}

bool CronSchedule::day_matches(int dom, int month, int dow) const {
  if (!months_.test(static_cast<size_t>(month))) return false;
  const bool d = days_.test(static_cast<size_t>(dom));
  const bool w = weekdays_.test(static_cast<size_t>(dow));
  if (!any_day_ && !any_weekday_) return d || w;
  return d && w;
}

Result<TimePoint> CronSchedule::next_after(TimePoint t) const {
  using namespace std::chrono;
  const auto first = floor<minutes>(t) + minutes(1);
  sys_days day = floor<days>(first);
  // Eight years cover every reachable date, 29 February included.
  for (int i = 0; i < 366 * 8; ++i, day += days(1)) {
    const year_month_day ymd{day};
    const int dow = static_cast<int>(weekday{day}.c_encoding());
    if (!day_matches(static_cast<int>(static_cast<unsigned>(ymd.day())),
                     static_cast<int>(static_cast<unsigned>(ymd.month())), dow)) {
      continue;
    }
    for (size_t h = 0; h < 24; ++h) {
      if (!hours_.test(h)) continue;
      for (size_t m = 0; m < 60; ++m) {
        if (!minutes_.test(m)) continue;
        const auto at = time_point_cast<Duration>(day + hours(static_cast<int64_t>(h)) +
                                                  minutes(static_cast<int64_t>(m)));
        if (at >= first) return at;
      }
    }
  }
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("the cron schedule \"{}\" never matches a real date", text_));
}

}  // namespace qmtl
