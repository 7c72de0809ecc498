#include "qmtl/metrics/csv.h"

#include <gtest/gtest.h>

namespace qmtl::metrics {
namespace {

TEST(Csv, ReadsIsoAndEpochTimestamps) {
  auto r = parse_series_csv(
      "timestamp,equity,note\n"
      "2024-01-01T00:00:00Z,100,a\n"
      "1704153600,101.5,b\n"  // 2024-01-02T00:00:00Z
      "\n"
      "2024-01-03, 99 ,c\r\n",
      "x.csv");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->kind, SeriesKind::kEquity);
  ASSERT_EQ(r->samples.size(), 3u);
  EXPECT_EQ(format_timestamp(r->samples[1].ts), "2024-01-02T00:00:00Z");
  EXPECT_EQ(r->samples[1].value, 101.5);
  EXPECT_EQ(r->samples[2].value, 99);
}

TEST(Csv, HeaderNamesAreCaseInsensitiveWithAliases) {
  auto r = parse_series_csv(
      "\xEF\xBB\xBF"
      "Date,PnL\n2024-01-01,5\n",
      "x.csv");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->kind, SeriesKind::kPnl);
  EXPECT_EQ(parse_series_csv("ts,returns\n1,0.01\n", "x")->kind, SeriesKind::kReturn);
}

TEST(Csv, ErrorsNameFileLineAndFix) {
  struct Case {
    std::string text;
    std::string part;
  };
  for (const Case& c : std::vector<Case>{
           {"", "x.csv:1: empty file"},
           {"timestamp,price\n", "x.csv:1: no value column"},
           {"when,equity\n", "x.csv:1: no timestamp column"},
           {"timestamp,equity,pnl\n", "x.csv:1: columns 'equity' and 'pnl' both hold values"},
           {"timestamp,equity\n2024-01-02,1\n2024-01-01,2\n",
            "x.csv:3: timestamp 2024-01-01 is earlier"},
           {"timestamp,equity\n2024-01-01,abc\n",
            "x.csv:2: 'abc' in column 'equity' is not a finite"},
           {"timestamp,equity\n2024-01-01,nan\n", "x.csv:2: 'nan'"},
           {"timestamp,equity\n2024-01-01,inf\n", "x.csv:2: 'inf'"},
           {"timestamp,equity\n2024-01-01,\n", "x.csv:2: '' in column"},
           {"timestamp,equity\n2024-01-01\n", "x.csv:2: 1 cells, but the header has 2"},
           {"timestamp,equity\n2024-01-01T10:00:00,1\n", "x.csv:2: invalid timestamp"},
           {"timestamp,equity\n99999999999,1\n", "x.csv:2: invalid epoch seconds"},
       }) {
    auto r = parse_series_csv(c.text, "x.csv");
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message.find(c.part), std::string::npos) << r.error().message;
  }
}

TEST(Csv, MissingFile) {
  auto r = read_series_csv("/nonexistent/file.csv");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
}

TEST(TimeCell, EpochWithFractionAndNegative) {
  EXPECT_EQ(parse_time_cell("0.5")->time_since_epoch().count(), 500000);
  EXPECT_EQ(parse_time_cell("-86400")->time_since_epoch().count(), -86400000000LL);
  EXPECT_FALSE(parse_time_cell("1-2"));
  EXPECT_FALSE(parse_time_cell(""));
}

}  // namespace
}  // namespace qmtl::metrics
