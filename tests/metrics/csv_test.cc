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
           {"timestamp,equity\n2024-01-01,inf\n", "x.csv:2: 'inf'"},
           {"timestamp,equity\n2024-01-01\n", "x.csv:2: 1 cells, but the header has 2"},
           {"timestamp,equity\n2024-01-01T10:00:00,1\n",
            "x.csv:2: '2024-01-01T10:00:00' has no time zone; give the zone"},
           {"timestamp,equity\n99999999999999999,1\n",
            "x.csv:2: '99999999999999999' is not epoch seconds, milliseconds or microseconds"},
           {"timestamp,equity\n\"2024-01-01,1\n",
            "x.csv:2: cell 1 opens a quote that is not closed"},
           {"timestamp,equity\n\"2024-01-01\"x,1\n", "x.csv:2: cell 1 has text after its closing"},
           {"date,time,equity\n2024-01-01,25:00,1\n",
            "x.csv:2: date '2024-01-01' and time '25:00'"},
           {"date,time,equity\n2024-13-01,10:00,1\n", "x.csv:2: '2024-13-01' is not a date"},
       }) {
    auto r = parse_series_csv(c.text, "x.csv");
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message.find(c.part), std::string::npos) << r.error().message;
  }
}

TEST(Csv, RowsWithoutValuesAreSkippedAndCounted) {
  auto r = parse_series_csv(
      "timestamp,equity\n2024-01-01,1\n2024-01-02,nan\n2024-01-03,\nnull,4\n2024-01-05,N/A\n"
      "2024-01-06,2\n",
      "x.csv");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->samples.size(), 2u);
  EXPECT_EQ(r->skipped, 4u);
  EXPECT_EQ(r->first_skipped_line, 3u);
}

TEST(Csv, SemicolonsDecimalCommasAndADateWithATimeColumn) {
  auto r = parse_series_csv("Date;Time;Equity\n20240301;093000;100,5\n20240301;100000;101\n",
                            "x.csv", {.utc_offset = std::chrono::hours(1)});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->samples.size(), 2u);
  EXPECT_EQ(format_timestamp(r->samples[0].ts), "2024-03-01T08:30:00Z");
  EXPECT_EQ(r->samples[0].value, 100.5);
  // Without the offset a zone-less time is refused, not guessed.
  auto refused = parse_series_csv("Date;Time;Equity\n20240301;093000;100,5\n", "x.csv");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("x.csv:2: date '20240301' and time '093000'"),
            std::string::npos)
      << refused.error().message;
}

TEST(CsvSplitter, DetectsTheDelimiterAndUnquotes) {
  EXPECT_EQ(CsvSplitter::detect("a,b,c"), ',');
  EXPECT_EQ(CsvSplitter::detect("a;b;c"), ';');
  EXPECT_EQ(CsvSplitter::detect("a\tb\tc"), '\t');
  EXPECT_EQ(CsvSplitter::detect("\"a;b\",c"), ',');  // quoted delimiters do not count
  EXPECT_EQ(CsvSplitter::detect("single"), ',');
  CsvSplitter s(',');
  auto cells = s.split(" a , \"b, \"\"c\"\"\" ,\"\",d,\r");
  ASSERT_TRUE(cells) << cells.error().message;
  const std::vector<std::string_view> want{"a", "b, \"c\"", "", "d", ""};
  EXPECT_EQ(std::vector<std::string_view>(cells->begin(), cells->end()), want);
  CsvSplitter tabs('\t');
  auto t = tabs.split("x\t\ty ");
  ASSERT_TRUE(t);
  EXPECT_EQ(std::vector<std::string_view>(t->begin(), t->end()),
            (std::vector<std::string_view>{"x", "", "y"}));
}

TEST(CsvNames, HeaderKeysAndMissingCells) {
  EXPECT_EQ(header_key("Adj Close"), "adjclose");
  EXPECT_EQ(header_key("adj_close"), "adjclose");
  EXPECT_EQ(header_key("<DATE>"), "date");
  EXPECT_EQ(header_key("Close/Last"), "closelast");
  for (auto m : {"", "null", "NULL", "NaN", "na", "N/A", "-"}) EXPECT_TRUE(is_missing(m)) << m;
  for (auto v : {"0", "nothing", "1.5", "-1"}) EXPECT_FALSE(is_missing(v)) << v;
  EXPECT_EQ(parse_csv_number("10,5", ';'), 10.5);
  EXPECT_EQ(parse_csv_number("10,5", ','), std::nullopt);
  EXPECT_EQ(parse_csv_number("1e3", ';'), 1000.0);
}

TEST(Csv, MissingFile) {
  auto r = read_series_csv("/nonexistent/file.csv");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
}

TEST(TimeCell, EpochUnitsByMagnitudeAndEightDigitDates) {
  const auto at = [](std::string_view cell) {
    auto t = parse_time_cell(cell);
    return t ? format_timestamp(*t) : "error: " + t.error().message;
  };
  EXPECT_EQ(at("1709283600"), "2024-03-01T09:00:00Z");
  EXPECT_EQ(at("1709283600000"), "2024-03-01T09:00:00Z");
  EXPECT_EQ(at("1709283600000000"), "2024-03-01T09:00:00Z");
  EXPECT_EQ(at("1709283600123"), "2024-03-01T09:00:00.123Z");
  EXPECT_EQ(at("1709283600000.5"), "2024-03-01T09:00:00.000500Z");
  EXPECT_EQ(at("20240301"), "2024-03-01T00:00:00Z");
  EXPECT_EQ(at("20240231").substr(0, 6), "error:");
  TimeOptions tokyo{.utc_offset = std::chrono::hours(9)};
  EXPECT_EQ(format_timestamp(*parse_time_cell("2024-03-01 18:00:00", tokyo)),
            "2024-03-01T09:00:00Z");
  // A zone in the cell wins over the option.
  EXPECT_EQ(format_timestamp(*parse_time_cell("2024-03-01T09:00:00Z", tokyo)),
            "2024-03-01T09:00:00Z");
  EXPECT_EQ(format_timestamp(*parse_date_and_time("2024-03-01", "09:00:00.25Z")),
            "2024-03-01T09:00:00.250Z");
  EXPECT_EQ(format_timestamp(*parse_date_and_time("20240301", "0900", {.utc_offset = Duration{}})),
            "2024-03-01T09:00:00Z");
  EXPECT_FALSE(parse_date_and_time("20240301", "0900"));  // zone-less, no offset: refused
}

TEST(TimeCell, UtcOffsets) {
  EXPECT_EQ(*parse_utc_offset("UTC"), Duration::zero());
  EXPECT_EQ(*parse_utc_offset("+01:00"), std::chrono::hours(1));
  EXPECT_EQ(*parse_utc_offset("-0530"), -(std::chrono::hours(5) + std::chrono::minutes(30)));
  EXPECT_EQ(*parse_utc_offset("+09"), std::chrono::hours(9));
  for (auto bad : {"", "1", "+1", "+25:00", "+01:60", "Europe/Paris", "+01:00:00"}) {
    auto r = parse_utc_offset(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("give UTC, +01:00"), std::string::npos);
  }
}

// Named zones follow daylight saving; the hour the clocks skip and the hour
// they go through twice are refused rather than guessed.
TEST(TimeCell, NamedZonesFollowDaylightSaving) {
  auto berlin = parse_time_zone("Europe/Berlin");
  ASSERT_TRUE(berlin) << berlin.error().message;
  ASSERT_TRUE(berlin->zone);
  EXPECT_EQ(berlin->zone->name(), "Europe/Berlin");
  const auto utc = [&](std::string_view local) {
    auto t = parse_time_cell(local, *berlin);
    return t ? format_timestamp(*t) : t.error().message;
  };
  EXPECT_EQ(utc("2024-01-15T09:30:00"), "2024-01-15T08:30:00Z");  // CET, +01:00
  EXPECT_EQ(utc("2024-07-15T09:30:00"), "2024-07-15T07:30:00Z");  // CEST, +02:00
  EXPECT_EQ(utc("2024-03-31T01:59:00"), "2024-03-31T00:59:00Z");
  EXPECT_EQ(utc("2024-03-31T03:00:00"), "2024-03-31T01:00:00Z");
  EXPECT_EQ(utc("2024-03-31T02:30:00"),
            "2024-03-31T02:30:00 did not happen in Europe/Berlin (the clocks went forward); "
            "write the file's times with their offset");
  EXPECT_EQ(utc("2024-10-27T02:30:00"),
            "2024-10-27T02:30:00 happened twice in Europe/Berlin (the clocks went back); write "
            "the file's times with their offset");
  EXPECT_EQ(utc("2024-10-27T02:30:00+01:00"), "2024-10-27T01:30:00Z");  // an offset decides
  EXPECT_EQ(utc("2024-10-27"), "2024-10-27T00:00:00Z");  // a bare date stays a UTC day
  auto ny = parse_time_zone("America/New_York");
  ASSERT_TRUE(ny);
  EXPECT_EQ(format_timestamp(*parse_date_and_time("20240610", "093000", *ny)),
            "2024-06-10T13:30:00Z");
  // Offsets still parse as offsets; unknown names are refused with the forms.
  EXPECT_EQ(parse_time_zone("+01:00")->utc_offset, std::chrono::hours(1));
  EXPECT_FALSE(parse_time_zone("UTC")->zone);
  auto bad = parse_time_zone("Mars/Olympus");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("'Mars/Olympus' is not a time zone of this system's tzdata"),
            std::string::npos)
      << bad.error().message;
  EXPECT_FALSE(parse_time_zone("+25:00"));
}

TEST(TimeCell, EpochWithFractionAndNegative) {
  EXPECT_EQ(parse_time_cell("0.5")->time_since_epoch().count(), 500000);
  EXPECT_EQ(parse_time_cell("-86400")->time_since_epoch().count(), -86400000000LL);
  EXPECT_FALSE(parse_time_cell("1-2"));
  EXPECT_FALSE(parse_time_cell(""));
}

}  // namespace
}  // namespace qmtl::metrics
