// DatabaseOutage on a fake steady clock: the first failure is logged, then one
// line per interval with the count by part, one when the database is back;
// other errors are not its business; loops back off while it lasts.
#include "qmtl/execution/outage.h"

#include <gtest/gtest.h>

#include <vector>

namespace qmtl::execution {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(DatabaseOutage, LogsOncePerIntervalWithCountsAndTheRecovery) {
  std::chrono::steady_clock::time_point now{};
  std::vector<std::pair<bool, std::string>> lines;
  DatabaseOutage o(
      seconds(10), [&] { return now; },
      [&](bool recovered, const std::string& l) { lines.emplace_back(recovered, l); });
  const Error down{ErrorCode::kUnavailable, "cannot reach postgres://x: refused\n\tIs it running?"};
  EXPECT_FALSE(o.down());
  EXPECT_EQ(o.backoff(milliseconds(500), seconds(10)), milliseconds(500));
  // Not an outage: the caller reports it as before.
  EXPECT_FALSE(o.failed("alerts", Error{ErrorCode::kFailedPrecondition, "no"}));
  EXPECT_TRUE(lines.empty());

  EXPECT_TRUE(o.failed("execution", down));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].second,
            "the database cannot be reached (execution: cannot reach postgres://x: refused Is it "
            "running?); operations fail until it is back; this is logged once per 10 s with a "
            "count");
  for (int i = 0; i < 300; ++i) {
    now += milliseconds(30);  // 9 s of failures from three parts
    EXPECT_TRUE(o.failed(i % 3 == 0 ? "alerts" : i % 3 == 1 ? "execution" : "scheduler", down));
  }
  EXPECT_EQ(lines.size(), 1u);  // quiet within the interval
  EXPECT_TRUE(o.down());
  EXPECT_EQ(o.backoff(milliseconds(500), seconds(10)), seconds(1));
  now += seconds(2);
  EXPECT_TRUE(o.failed("alerts", down));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1].second,
            "the database still cannot be reached after 11.0 s: 301 operations failed in the last "
            "11.0 s (alerts 101, execution 100, scheduler 100); last error: cannot reach "
            "postgres://x: refused Is it running?");
  EXPECT_FALSE(lines[1].first);
  now += seconds(30);  // loops back off further the longer it lasts, to the cap
  EXPECT_EQ(o.backoff(milliseconds(500), seconds(20)), seconds(16));  // 4 intervals in
  EXPECT_EQ(o.backoff(milliseconds(500), seconds(10)), seconds(10));
  o.succeeded();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_TRUE(lines[2].first);
  EXPECT_EQ(lines[2].second,
            "the database answers again after 41.0 s (302 operations failed meanwhile)");
  EXPECT_FALSE(o.down());
  o.succeeded();  // nothing more to say
  EXPECT_EQ(lines.size(), 3u);
  EXPECT_EQ(o.failures(), 302u);
  // A new outage starts its own count.
  EXPECT_TRUE(o.failed("scheduler", down));
  EXPECT_EQ(lines.size(), 4u);
}

}  // namespace
}  // namespace qmtl::execution
