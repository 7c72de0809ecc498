#include "qmtl/core/duration.h"

#include <gtest/gtest.h>

namespace qmtl {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(ParseDuration, AcceptsEveryUnit) {
  EXPECT_EQ(*parse_duration("250us"), Duration(250));
  EXPECT_EQ(*parse_duration("500ms"), milliseconds(500));
  EXPECT_EQ(*parse_duration("30s"), seconds(30));
  EXPECT_EQ(*parse_duration("5m"), minutes(5));
  EXPECT_EQ(*parse_duration("1h"), hours(1));
  EXPECT_EQ(*parse_duration("1d"), hours(24));
  EXPECT_EQ(*parse_duration("4w"), hours(24 * 28));
}

TEST(ParseDuration, ZeroIsAValidDuration) {
  EXPECT_EQ(*parse_duration("0s"), Duration::zero());
  EXPECT_EQ(*parse_duration("0w"), Duration::zero());
  EXPECT_EQ(*parse_duration("000m"), Duration::zero());
}

TEST(ParseDuration, RefusesMonthsAndYearsSuggestingDays) {
  auto mo = parse_duration("6mo");
  ASSERT_FALSE(mo);
  EXPECT_EQ(mo.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(mo.error().message.find("months"), std::string::npos);
  EXPECT_NE(mo.error().message.find("180d"), std::string::npos);
  auto y = parse_duration("1y");
  ASSERT_FALSE(y);
  EXPECT_NE(y.error().message.find("365d"), std::string::npos);
  EXPECT_FALSE(parse_duration("2M"));
}

TEST(ParseDuration, RefusesOverflowInsteadOfWrapping) {
  // 2^63 - 1 microseconds is about 15,250 weeks... times a million.
  EXPECT_TRUE(parse_duration("9223372036854775807us"));
  auto digits = parse_duration("9223372036854775808us");
  ASSERT_FALSE(digits);
  EXPECT_NE(digits.error().message.find("too large"), std::string::npos);
  auto scaled = parse_duration("15250285w");  // fits as a number, not as microseconds
  ASSERT_FALSE(scaled);
  EXPECT_NE(scaled.error().message.find("too large"), std::string::npos);
  EXPECT_FALSE(parse_duration("99999999999999999999999999s"));
}

TEST(ParseDuration, RefusesMalformedText) {
  for (const char* bad : {"",    " ",    "5",    "m",     "-5m",       "+5m",  "5 m",   " 5m",
                          "5m ", "1.5h", "1,5h", "5min",  "5 minutes", "5mm",  "1h30m", "5M5",
                          "５m", "5ｍ",  "5µs",  "0x10s", "5S",        "\t5m", "5m\n"}) {
    auto r = parse_duration(bad);
    EXPECT_FALSE(r) << "'" << bad << "' was accepted";
    if (!r) {
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
      EXPECT_NE(r.error().message.find("invalid duration"), std::string::npos);
    }
  }
}

TEST(ParseDuration, FractionMessageSuggestsSmallerUnit) {
  auto r = parse_duration("1.5h");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("90m"), std::string::npos);
}

TEST(FormatDuration, UsesLargestExactUnit) {
  EXPECT_EQ(format_duration(Duration::zero()), "0s");
  EXPECT_EQ(format_duration(hours(24 * 28)), "4w");
  EXPECT_EQ(format_duration(hours(24 * 3)), "3d");
  EXPECT_EQ(format_duration(minutes(90)), "90m");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(Duration(7)), "7us");
  EXPECT_EQ(format_duration(-minutes(5)), "-5m");
}

TEST(FormatDuration, RoundTripsThroughParse) {
  for (int64_t us : {int64_t{0}, int64_t{1}, int64_t{999}, int64_t{1000}, int64_t{60'000'000},
                     int64_t{86'400'000'000}, int64_t{604'800'000'000} * 3, int64_t{123456789},
                     std::numeric_limits<int64_t>::max()}) {
    const Duration d(us);
    auto back = parse_duration(format_duration(d));
    ASSERT_TRUE(back) << format_duration(d) << ": " << back.error().message;
    EXPECT_EQ(*back, d);
  }
}

}  // namespace
}  // namespace qmtl
