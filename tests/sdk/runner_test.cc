// Runner::offline over bars in memory and over a feed: the same result, the
// feed's errors, inputs that are not bar fields.
#include "qmtl/sdk/runner.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace qmtl::sdk {
namespace {

const char* kCsv =
    "date,open,high,low,close,volume\n"
    "2026-01-05,10,10,10,10,1000\n"
    "2026-01-06,9,9,9,9,1000\n"
    "2026-01-07,8,8,8,8,1000\n"
    "2026-01-08,9,9,9,9,1000\n"
    "2026-01-09,12,12,12,12,1000\n"
    "2026-01-12,12.5,13,12.5,13,1000\n";

Strategy crossover(const char* input = "close") {
  auto s = parse_strategy(boost::json::parse(fmt::format(R"({{
      "inputs": {{"{}": {{"interval": "1d"}}}},
      "nodes": {{"fast": {{"indicator": "sma", "input": "{}", "n": 2}},
                "slow": {{"indicator": "sma", "input": "{}", "n": 3}},
                "cross": {{"indicator": "crossover", "inputs": ["fast", "slow"]}}}},
      "orders": {{"signal": "cross", "symbol": "X", "qty": 10}}}})",
                                                         input, input, input)));
  EXPECT_TRUE(s) << s.error().message;
  return std::move(*s);
}

TEST(RunnerOffline, BarsInMemoryAndAFeedGiveTheSameBacktest) {
  auto bars = parse_bars_csv(kCsv, "bars", "X");
  ASSERT_TRUE(bars);
  auto a = Runner::offline(crossover(), bars->bars, {.initial_cash = 1000});
  ASSERT_TRUE(a) << a.error().message;
  testing::TempDir dir;
  const auto path = testing::write_file(dir.file("bars.csv"), kCsv);
  auto feed = CsvBarFeed::open_file(path, "X", false);
  ASSERT_TRUE(feed);
  auto b = Runner::offline(crossover(), **feed, {.initial_cash = 1000});
  ASSERT_TRUE(b) << b.error().message;
  // The hand-computed trade of the CLI test: one buy of 10 at 12.5, marked at 13.
  EXPECT_EQ(a->orders, 1u);
  ASSERT_EQ(a->fills.size(), 1u);
  EXPECT_DOUBLE_EQ(a->fills[0].price, 12.5);
  EXPECT_DOUBLE_EQ(a->account.equity(), 1005);
  ASSERT_EQ(a->points.size(), b->points.size());
  for (size_t i = 0; i < a->points.size(); ++i) {
    EXPECT_EQ(a->points[i].ts, b->points[i].ts);
    EXPECT_DOUBLE_EQ(a->points[i].equity, b->points[i].equity);
  }
  EXPECT_EQ(a->node_updates, b->node_updates);
  EXPECT_EQ(b->fills.size(), 1u);
}

TEST(RunnerOffline, FeedErrorsAndNonBarInputsEndIt) {
  testing::TempDir dir;
  const auto path = testing::write_file(
      dir.file("bad.csv"), std::string(kCsv) + "2026-01-13,1,1,1,1,1\n2026-01-13,1,1,1,1,1\n");
  auto feed = CsvBarFeed::open_file(path, "X", false);
  ASSERT_TRUE(feed);
  auto r = Runner::offline(crossover(), **feed, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, path + ":9: rows must be in increasing time order");

  auto bars = parse_bars_csv(kCsv, "bars", "X");
  auto odd = Runner::offline(crossover("price"), bars->bars, {});
  ASSERT_FALSE(odd);
  EXPECT_EQ(odd.error().message,
            "input 'price' is not a bar field; a runner feeds open, high, low, close and volume");
}

}  // namespace
}  // namespace qmtl::sdk
