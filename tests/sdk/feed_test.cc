// Bar feeds: the CSV parser line by line, a file followed as it grows (lines
// written a piece at a time), a file that shrinks, a pipe, and errors that end
// the feed.
#include "qmtl/sdk/feed.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "tests/support/temp_dir.h"

namespace qmtl::sdk {
namespace {

using std::chrono::milliseconds;
using Kind = FeedItem::Kind;

void append(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::app);
  f << text;
}

TEST(BarCsvParser, HeaderThenBarsWithErrorsNamingTheLine) {
  BarCsvParser p("feed", "X");
  ASSERT_TRUE(p.line(""));
  auto header = p.line("Date,Open,High,Low,Close,Volume,Note\r");
  ASSERT_TRUE(header);
  EXPECT_FALSE(*header);
  auto bar = p.line("2026-01-02,10,11,9,10.5,100,x");
  ASSERT_TRUE(bar && *bar);
  EXPECT_EQ((*bar)->symbol, "X");
  EXPECT_DOUBLE_EQ((*bar)->close, 10.5);
  EXPECT_EQ(p.line("2026-01-02,10,11,9,10.5,100,x").error().message,
            "feed:4: rows must be in increasing time order");
  EXPECT_EQ(p.line("2026-01-03,10,11,9").error().message,
            "feed:5: 4 cells; the header has at least 6");
  EXPECT_EQ(p.line("2026-01-03,10,11,9,abc,1").error().message, "feed:6: 'abc' is not a number");
  EXPECT_TRUE(p.line("2026-01-03,10,11,9,10,1"));  // earlier errors changed nothing

  BarCsvParser q("other", "X");
  EXPECT_EQ(q.line("date,open,high,low,close").error().message,
            "other:1: the header must name a date column and open, high, low, close, volume");
}

// The same four hourly bars written the ways data vendors and spreadsheets
// write them (tests/sdk/data/dialects): each loads to identical bars.
TEST(BarCsvDialects, EveryFixtureLoadsToTheSameBars) {
  const std::string dir = QMTL_SOURCE_DIR "/tests/sdk/data/dialects/";
  auto want = read_bars_csv(dir + "plain.csv", "X");
  ASSERT_TRUE(want) << want.error().message;
  ASSERT_EQ(want->bars.size(), 4u);
  EXPECT_EQ(format_timestamp(want->bars.front().ts), "2024-03-01T09:00:00Z");
  struct Case {
    std::string file;
    size_t skipped = 0, first_skipped = 0;
    bool zone_less = false;  // needs the offset it was written in
  };
  for (const Case& c : std::vector<Case>{{"semicolon_decimal_comma.csv"},
                                         {"tab_quoted_header.tsv"},
                                         {"yahoo_with_null_rows.csv", 2, 3},
                                         {"epoch_milliseconds.csv"},
                                         {"stooq_date_time.csv", 0, 0, true},
                                         {"quoted_date_and_time.csv", 0, 0, true}}) {
    BarCsvOptions options;
    if (c.zone_less) {
      auto refused = read_bars_csv(dir + c.file, "X");
      ASSERT_FALSE(refused) << c.file;
      EXPECT_NE(refused.error().message.find(c.file + ":2: date '"), std::string::npos)
          << refused.error().message;
      EXPECT_NE(refused.error().message.find("has no time zone"), std::string::npos);
      options.time.utc_offset = Duration::zero();
    }
    auto got = read_bars_csv(dir + c.file, "X", options);
    ASSERT_TRUE(got) << c.file << ": " << got.error().message;
    EXPECT_EQ(got->skipped, c.skipped) << c.file;
    EXPECT_EQ(got->first_skipped_line, c.first_skipped) << c.file;
    ASSERT_EQ(got->bars.size(), want->bars.size()) << c.file;
    for (size_t i = 0; i < got->bars.size(); ++i) {
      const auto &a = got->bars[i], &b = want->bars[i];
      EXPECT_EQ(a.ts, b.ts) << c.file << " bar " << i;
      EXPECT_EQ(std::vector<double>({a.open, a.high, a.low, a.close, a.volume}),
                std::vector<double>({b.open, b.high, b.low, b.close, b.volume}))
          << c.file << " bar " << i;
    }
  }
}

TEST(BarCsvParser, AdjustedCloseScalesTheBar) {
  const std::string text =
      "Date,Open,High,Low,Close,Adj Close,Volume\n2024-03-01,10,12,8,10,5,100\n"
      "2024-03-04,null,null,null,null,null,null\n2024-03-05,10,11,9,10,10,100\n";
  auto adj = parse_bars_csv(text, "y.csv", "X", {.price = BarCsvOptions::Price::kAdjClose});
  ASSERT_TRUE(adj) << adj.error().message;
  ASSERT_EQ(adj->bars.size(), 2u);
  EXPECT_EQ(adj->skipped, 1u);
  const auto& b = adj->bars[0];
  EXPECT_EQ(std::vector<double>({b.open, b.high, b.low, b.close, b.volume}),
            std::vector<double>({5, 6, 4, 5, 100}));
  auto raw = parse_bars_csv(text, "y.csv", "X");
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->bars[0].close, 10);
  auto no_column = parse_bars_csv("date,open,high,low,close,volume\n", "z.csv", "X",
                                  {.price = BarCsvOptions::Price::kAdjClose});
  ASSERT_FALSE(no_column);
  EXPECT_EQ(no_column.error().message,
            "z.csv:1: the price is adj_close but the header has no 'Adj Close' column");
  EXPECT_EQ(parse_price_column("Adj Close"), BarCsvOptions::Price::kAdjClose);
  EXPECT_EQ(parse_price_column("adj_close"), BarCsvOptions::Price::kAdjClose);
  EXPECT_FALSE(parse_price_column("open"));
}

TEST(CsvBarFeed, FollowsAGrowingFileAndReadsOnlyCompleteLines) {
  testing::TempDir dir;
  const auto path = dir.file("bars.csv");
  append(path, "date,open,high,low,close,volume\n2026-01-01T00:00:00Z,1,1,1,1,1\n");
  auto feed = CsvBarFeed::open_file(path, "X", /*follow=*/true);
  ASSERT_TRUE(feed) << feed.error().message;
  auto a = (*feed)->next(milliseconds(100));
  ASSERT_TRUE(a);
  ASSERT_EQ(a->kind, Kind::kBar);
  EXPECT_EQ(a->bar->ts, *parse_timestamp("2026-01-01T00:00:00Z"));
  // At the end of a followed file: idle, not the end.
  auto idle = (*feed)->next(milliseconds(50));
  ASSERT_TRUE(idle);
  EXPECT_EQ(idle->kind, Kind::kIdle);
  // Half a line is not a bar yet.
  append(path, "2026-01-01T00:01:00Z,2,2,");
  EXPECT_EQ((*feed)->next(milliseconds(50))->kind, Kind::kIdle);
  append(path, "2,2,7\n");
  auto b = (*feed)->next(milliseconds(500));
  ASSERT_TRUE(b);
  ASSERT_EQ(b->kind, Kind::kBar);
  EXPECT_DOUBLE_EQ(b->bar->volume, 7);
  // A file rewritten under the reader is an error, and stays one.
  std::ofstream(path, std::ios::trunc) << "date\n";
  auto shrunk = (*feed)->next(milliseconds(100));
  ASSERT_FALSE(shrunk);
  EXPECT_NE(shrunk.error().message.find("shrank"), std::string::npos);
  EXPECT_FALSE((*feed)->next(milliseconds(10)));
}

TEST(CsvBarFeed, BarsAlreadyInAFollowedFileAreMarkedReplayed) {
  testing::TempDir dir;
  const auto path = dir.file("bars.csv");
  append(path,
         "date,open,high,low,close,volume\n2026-01-01T00:00:00Z,1,1,1,1,1\n"
         "2026-01-01T00:01:00Z,1,1,1,1,1\n");
  auto feed = CsvBarFeed::open_file(path, "X", /*follow=*/true);
  ASSERT_TRUE(feed) << feed.error().message;
  for (int i = 0; i < 2; ++i) {
    auto a = (*feed)->next(milliseconds(100));
    ASSERT_TRUE(a && a->kind == Kind::kBar);
    EXPECT_TRUE(a->replayed) << i;
  }
  EXPECT_EQ((*feed)->next(milliseconds(30))->kind, Kind::kIdle);
  append(path, "2026-01-01T00:02:00Z,1,1,1,1,1\n");
  auto fresh = (*feed)->next(milliseconds(500));
  ASSERT_TRUE(fresh && fresh->kind == Kind::kBar);
  EXPECT_FALSE(fresh->replayed);
  // A file read once through is the whole feed as given: nothing is "replayed".
  auto once = CsvBarFeed::open_file(path, "X", /*follow=*/false);
  ASSERT_TRUE(once);
  auto first = (*once)->next(milliseconds(100));
  ASSERT_TRUE(first && first->kind == Kind::kBar);
  EXPECT_FALSE(first->replayed);
}

TEST(CsvBarFeed, AFileNotFollowedEndsAndItsLastLineNeedsNoNewline) {
  testing::TempDir dir;
  const auto path = dir.file("bars.csv");
  append(path, "ts,open,high,low,close,volume\n2026-01-01,1,1,1,1,1\n2026-01-02,1,1,1,1,2");
  auto feed = CsvBarFeed::open_file(path, "X", false);
  ASSERT_TRUE(feed);
  EXPECT_EQ((*feed)->next(milliseconds(10))->kind, Kind::kBar);
  auto last = (*feed)->next(milliseconds(10));
  ASSERT_EQ(last->kind, Kind::kBar);
  EXPECT_DOUBLE_EQ(last->bar->volume, 2);
  EXPECT_EQ((*feed)->next(milliseconds(10))->kind, Kind::kEnd);
  EXPECT_EQ((*feed)->next(milliseconds(10))->kind, Kind::kEnd);

  auto missing = CsvBarFeed::open_file(dir.file("nope.csv"), "X", false);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST(CsvBarFeed, ReadsAPipeUntilItCloses) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  auto feed = CsvBarFeed::from_fd(fds[0], "X");
  EXPECT_EQ(feed->next(milliseconds(20))->kind, Kind::kIdle);
  const std::string text = "date,open,high,low,close,volume\n2026-01-01,1,1,1,1,1\n";
  ASSERT_EQ(::write(fds[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  EXPECT_EQ(feed->next(milliseconds(500))->kind, Kind::kBar);
  const std::string bad = "2026-01-02,1,1,1,-1,1\n";
  ASSERT_EQ(::write(fds[1], bad.data(), bad.size()), static_cast<ssize_t>(bad.size()));
  ::close(fds[1]);
  auto err = feed->next(milliseconds(500));
  ASSERT_FALSE(err);
  EXPECT_EQ(err.error().message.rfind("stdin:3: ", 0), 0u) << err.error().message;
  ::close(fds[0]);
}

}  // namespace
}  // namespace qmtl::sdk
