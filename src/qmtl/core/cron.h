// Cron expressions in UTC: when a world's evaluation is due (policy
// `evaluation.cron`).
//
// Five fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12),
// day of week (0-7, 0 and 7 are Sunday). Each field is `*`, a number, a range
// `a-b`, a step `*/n` or `a-b/n`, or a comma-separated list of those. As in
// Vixie cron, when both day of month and day of week are restricted (neither is
// `*`), a day matches if either matches; otherwise both must.
//
// Thread safety: a CronSchedule is an immutable value.
#pragma once

#include <bitset>
#include <string>
#include <string_view>

#include "qmtl/core/result.h"
#include "qmtl/core/time.h"

namespace qmtl {

class CronSchedule {
 public:
  // kInvalidArgument naming the field and what is allowed, e.g.
  // "'61' is not a valid minute field; use *, a number 0-59, a range a-b, a
  // list or a step */n".
  static Result<CronSchedule> parse(std::string_view text);

  // The first whole minute strictly after `t` that matches. Always exists for
  // a parsed schedule except for impossible dates (e.g. "0 0 31 2 *"), which
  // give kInvalidArgument after searching eight years.
  Result<TimePoint> next_after(TimePoint t) const;

  const std::string& text() const { return text_; }

 private:
  bool day_matches(int dom, int month, int dow) const;

  std::string text_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1..31
  std::bitset<13> months_;   // 1..12
  std::bitset<7> weekdays_;  // 0..6, Sunday = 0
  bool any_day_ = false, any_weekday_ = false;
};

}  // namespace qmtl
