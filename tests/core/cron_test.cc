// Cron schedules: parsing errors and the next due time, case by case
// (expression, after, expected), including the day-of-month / day-of-week rule
// and leap days.
#include "qmtl/core/cron.h"

#include <gtest/gtest.h>

namespace qmtl {
namespace {

TimePoint at(const char* iso) { return *parse_timestamp(iso); }

TEST(CronSchedule, NextAfter) {
  struct Case {
    const char* expr;
    const char* after;
    const char* next;
  };
  const std::vector<Case> cases = {
      {"* * * * *", "2026-11-27T10:15:30Z", "2026-11-27T10:16:00Z"},
      {"* * * * *", "2026-11-27T10:15:00Z", "2026-11-27T10:16:00Z"},  // strictly after
      {"0 0 * * *", "2026-11-27T10:15:00Z", "2026-11-28T00:00:00Z"},
      {"0 0 * * *", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"},
      {"*/15 9-17 * * *", "2026-11-27T17:50:00Z", "2026-11-28T09:00:00Z"},
      {"*/15 9-17 * * *", "2026-11-27T09:01:00Z", "2026-11-27T09:15:00Z"},
      {"5/20 * * * *", "2026-11-27T10:26:00Z", "2026-11-27T10:45:00Z"},
      {"0 0 * * 1", "2026-11-27T00:00:00Z", "2026-11-30T00:00:00Z"},  // Friday -> Monday
      {"0 0 * * 0", "2026-11-27T00:00:00Z", "2026-11-29T00:00:00Z"},  // Sunday as 0
      {"0 0 * * 7", "2026-11-27T00:00:00Z", "2026-11-29T00:00:00Z"},  // and as 7
      {"0 0 * * 1-5", "2026-11-27T12:00:00Z", "2026-11-30T00:00:00Z"},
      // Both days restricted: either matches (the 1st, or a Monday).
      {"0 0 1 * 1", "2026-11-27T12:00:00Z", "2026-11-30T00:00:00Z"},
      {"0 0 1 * 1", "2026-11-30T12:00:00Z", "2026-12-01T00:00:00Z"},
      {"30 6 1,15 * *", "2026-11-15T06:30:00Z", "2026-12-01T06:30:00Z"},
      {"0 12 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T12:00:00Z"},  // leap day
      {"0 0 1 1 *", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z"},
  };
  for (const auto& c : cases) {
    auto s = CronSchedule::parse(c.expr);
    ASSERT_TRUE(s) << c.expr << ": " << s.error().message;
    auto next = s->next_after(at(c.after));
    ASSERT_TRUE(next) << c.expr;
    EXPECT_EQ(format_timestamp(*next), c.next) << c.expr << " after " << c.after;
  }
}

TEST(CronSchedule, RefusesWhatItCannotRead) {
  const std::vector<std::pair<const char*, const char*>> bad = {
      {"0 0 * *",
       "a cron schedule needs 5 fields (minute hour day month weekday, UTC), e.g. "
       "\"0 0 * * 1\"; got 4"},
      {"60 * * * *",
       "'60' is not a valid minute field; use *, a number 0-59, a range a-b, a "
       "list or a step */n"},
      {"0 24 * * *", "'24' is not a valid hour field"},
      {"0 0 0 * *", "'0' is not a valid day of month field"},
      {"0 0 * 13 *", "'13' is not a valid month field"},
      {"0 0 * * 8", "'8' is not a valid day of week field"},
      {"0 0 * JAN *", "'JAN' is not a valid month field"},
      {"*/0 * * * *", "'*/0' is not a valid minute field"},
      {"5-1 * * * *", "'5-1' is not a valid minute field"},
      {"1,,2 * * * *", "'1,,2' is not a valid minute field"},
  };
  for (const auto& [expr, message] : bad) {
    auto s = CronSchedule::parse(expr);
    ASSERT_FALSE(s) << expr;
    EXPECT_EQ(s.error().message.rfind(message, 0), 0u) << s.error().message;
  }
  auto never = CronSchedule::parse("0 0 31 2 *");
  ASSERT_TRUE(never);
  EXPECT_EQ(never->next_after(at("2026-01-01T00:00:00Z")).error().message,
            "the cron schedule \"0 0 31 2 *\" never matches a real date");
}

}  // namespace
}  // namespace qmtl
