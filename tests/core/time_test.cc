#include "qmtl/core/time.h"

#include <gtest/gtest.h>

namespace qmtl {
namespace {

using namespace std::chrono;

TimePoint at(int y, unsigned m, unsigned d, int h = 0, int mi = 0, int s = 0, int64_t us = 0) {
  return time_point_cast<Duration>(sys_days{year{y} / month{m} / day{d}}) + hours(h) + minutes(mi) +
         seconds(s) + Duration(us);
}

TEST(ParseTimestamp, AcceptsUtcForms) {
  EXPECT_EQ(*parse_timestamp("2024-03-01T09:30:00Z"), at(2024, 3, 1, 9, 30));
  EXPECT_EQ(*parse_timestamp("2024-03-01t09:30:00z"), at(2024, 3, 1, 9, 30));
  EXPECT_EQ(*parse_timestamp("2024-03-01 09:30:00Z"), at(2024, 3, 1, 9, 30));
  EXPECT_EQ(*parse_timestamp("2024-03-01"), at(2024, 3, 1));
  EXPECT_EQ(*parse_timestamp("1970-01-01T00:00:00Z"), TimePoint{});
}

TEST(ParseTimestamp, Fractions) {
  EXPECT_EQ(*parse_timestamp("2024-03-01T09:30:00.5Z"), at(2024, 3, 1, 9, 30, 0, 500000));
  EXPECT_EQ(*parse_timestamp("2024-03-01T09:30:00.123456Z"), at(2024, 3, 1, 9, 30, 0, 123456));
  // Nanoseconds are accepted and truncated to microseconds.
  EXPECT_EQ(*parse_timestamp("2024-03-01T09:30:00.123456789Z"), at(2024, 3, 1, 9, 30, 0, 123456));
  EXPECT_FALSE(parse_timestamp("2024-03-01T09:30:00.Z"));
  EXPECT_FALSE(parse_timestamp("2024-03-01T09:30:00.1234567890Z"));
}

TEST(ParseTimestamp, OffsetsConvertToUtc) {
  EXPECT_EQ(*parse_timestamp("2024-03-01T18:30:00+09:00"), at(2024, 3, 1, 9, 30));
  EXPECT_EQ(*parse_timestamp("2024-03-01T18:30:00+0900"), at(2024, 3, 1, 9, 30));
  EXPECT_EQ(*parse_timestamp("2024-02-29T23:00:00-05:00"), at(2024, 3, 1, 4, 0));
  EXPECT_EQ(*parse_timestamp("2024-03-01T00:00:00+00:00"), at(2024, 3, 1));
}

TEST(ParseTimestamp, Extremes) {
  EXPECT_EQ(*parse_timestamp("0000-01-01T00:00:00Z"), at(0, 1, 1));
  EXPECT_EQ(*parse_timestamp("9999-12-31T23:59:59.999999Z"), at(9999, 12, 31, 23, 59, 59, 999999));
  EXPECT_LT(*parse_timestamp("1969-12-31T23:59:59Z"), TimePoint{});
}

TEST(ParseTimestamp, RefusesAmbiguousOrImpossibleInput) {
  for (const char* bad : {"",
                          " ",
                          "2024",
                          "2024-3-1",
                          "2024-03-01T09:30:00",
                          "2024-03-01T09:30Z",
                          "2023-02-29",
                          "2024-13-01",
                          "2024-00-10",
                          "2024-04-31",
                          "2024-03-01T24:00:00Z",
                          "2024-03-01T09:60:00Z",
                          "2024-03-01T23:59:60Z",
                          "2024-03-01T09:30:00+25:00",
                          "2024-03-01T09:30:00+09",
                          " 2024-03-01",
                          "2024-03-01 ",
                          "2024-03-01T09:30:00Z ",
                          "2024-03-01T09:30:00ZZ",
                          "2024-03-01X09:30:00Z",
                          "２０２４-03-01",
                          "2024-03-01T09:30:00Ｚ",
                          "1709285400",
                          "2024-03-01T09:30:00 UTC",
                          "10000-01-01"}) {
    auto r = parse_timestamp(bad);
    EXPECT_FALSE(r) << "'" << bad << "' was accepted";
    if (!r) {
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
      EXPECT_NE(r.error().message.find("invalid timestamp"), std::string::npos);
    }
  }
}

TEST(ParseTimestamp, MissingZoneSaysHowToFix) {
  auto r = parse_timestamp("2024-03-01T09:30:00");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("append 'Z'"), std::string::npos);
}

TEST(FormatTimestamp, WritesUtcWithMinimalFraction) {
  EXPECT_EQ(format_timestamp(at(2024, 3, 1, 9, 30)), "2024-03-01T09:30:00Z");
  EXPECT_EQ(format_timestamp(at(2024, 3, 1, 9, 30, 5, 250000)), "2024-03-01T09:30:05.250Z");
  EXPECT_EQ(format_timestamp(at(2024, 3, 1, 9, 30, 5, 7)), "2024-03-01T09:30:05.000007Z");
  EXPECT_EQ(format_timestamp(TimePoint{}), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_timestamp(TimePoint{} - Duration(1)), "1969-12-31T23:59:59.999999Z");
}

TEST(FormatTimestamp, RoundTrips) {
  for (TimePoint t : {TimePoint{}, at(0, 1, 1), at(9999, 12, 31, 23, 59, 59, 999999),
                      at(2024, 2, 29, 12, 0, 0, 1), at(1900, 3, 1, 1, 2, 3, 4000)}) {
    auto back = parse_timestamp(format_timestamp(t));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, t);
  }
}

TEST(FakeClock, MovesOnlyWhenTold) {
  FakeClock clock(at(2024, 1, 1));
  EXPECT_EQ(clock.now(), at(2024, 1, 1));
  clock.advance(hours(25));
  EXPECT_EQ(clock.now(), at(2024, 1, 2, 1));
  clock.set(at(2030, 6, 1));
  EXPECT_EQ(clock.now(), at(2030, 6, 1));
}

TEST(ScaledClock, RunsSpeedTimesFasterFromItsStart) {
  FakeClock real(at(2026, 11, 27));
  const ScaledClock sim(at(1994, 1, 3), 86'400, real);
  EXPECT_EQ(sim.now(), at(1994, 1, 3));
  real.advance(seconds(1));
  EXPECT_EQ(sim.now(), at(1994, 1, 4));  // a day per second
  real.advance(milliseconds(250));
  EXPECT_EQ(sim.now(), at(1994, 1, 4, 6));
  // A speed below 1 would run time backwards or stop it: it is 1.
  const ScaledClock slow(at(2000, 1, 1), 0, real);
  real.advance(hours(2));
  EXPECT_EQ(slow.now(), at(2000, 1, 1, 2));
  EXPECT_EQ(slow.speed(), 1);
}

TEST(SystemClock, IsNearTheRealTime) {
  const auto sys = time_point_cast<Duration>(system_clock::now());
  EXPECT_LT(abs((SystemClock().now() - sys).count()), Duration(seconds(5)).count());
}

}  // namespace
}  // namespace qmtl
