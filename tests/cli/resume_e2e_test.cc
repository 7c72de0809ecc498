// No performance record is lost or stored twice when a runner starts again
// (issue #20): `qmtl run` as real child processes on a growing feed, through a
// world paused and resumed, a runner SIGKILLed mid-post, and a server
// restarted under a running runner; then the stored points are compared with
// the feed bar by bar.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "qmtl/core/http_client.h"
#include "qmtl/core/json.h"
#include "qmtl/world/world_service.h"
#include "tests/support/process.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/temp_dir.h"

namespace qmtl {
namespace {

using lifecycle::StrategyEvent;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Buys after a rising bar, sells after a falling one: an order every bar.
const char* kSpec = R"({
    "inputs": {"close": {"interval": "1m"}},
    "nodes": {"r": {"indicator": "returns", "input": "close"},
              "up": {"indicator": "gt", "input": "r", "value": 0}},
    "orders": {"signal": "up", "symbol": "ZZ", "qty": 2}})";

class ResumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    {
      auto store = std::move(*store::open_store(fmt::format("sqlite:{}", dir_.file("r.db"))));
      SystemClock clock;
      world::WorldService s(*store, clock);
      ASSERT_TRUE(s.create_world({.id = "w"}));
      ASSERT_TRUE(s.submit_strategy({.id = "s", .world = "w", .spec = kSpec}));
      for (auto e : {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed}) {
        ASSERT_TRUE(s.apply_strategy_event("s", e, "setup", ""));
      }
    }
    start_server();
    testing::write_file(feed_, "date,open,high,low,close,volume\n");
    start_ = std::chrono::floor<std::chrono::minutes>(SystemClock().now()) - std::chrono::hours(6);
  }
  void start_server() {
    server_ = std::make_unique<testing::ServerProcess>(
        QMTL_BINARY, dir_.file("r.db"), dir_.file("server.log"),
        std::vector<std::string>{"--no-auth", "--heartbeat", "100ms", "--port",
                                 std::to_string(port_)});
  }
  // A runner posting three records at most per batch, every 20 ms.
  std::unique_ptr<testing::ChildProcess> runner(const std::string& name) {
    return std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{QMTL_BINARY, "-o", "json", "run", "s", "--feed", feed_, "--follow",
                                 "--post-every", "0.02", "--post-batch", "3"},
        dir_.file(name + ".log"),
        testing::EnvOverrides{{"QMTL_CONFIG", dir_.file("none.yml")},
                              {"QMTL_GATEWAY_URL", fmt::format("http://127.0.0.1:{}", port_)}});
  }
  // Appends `n` zigzag bars a minute apart after those already in the feed.
  void append(int n) {
    std::ofstream f(feed_, std::ios::app);
    for (int i = 0; i < n; ++i, ++bars_) {
      const int close = bars_ % 2 == 0 ? 100 : 101;
      f << fmt::format("{},{},{},{},{},1000\n", format_timestamp(bar_time(bars_)), close, close,
                       close, close);
    }
  }
  TimePoint bar_time(int i) const { return start_ + std::chrono::minutes(i); }
  boost::json::value get(const std::string& path) {
    auto r = http_request(fmt::format("http://127.0.0.1:{}", port_), {.path = path});
    EXPECT_TRUE(r && r->status == 200) << path;
    return r && r->status == 200 ? *json::parse(r->body) : boost::json::value();
  }
  // Waits until the server's records reach bar `i` (10 s at most).
  bool stored_up_to(int i) {
    const std::string want = format_timestamp(bar_time(i));
    for (int k = 0; k < 200; ++k) {
      auto v = get("/strategies/s/performance/last");
      const auto* p = v.is_object() ? v.as_object().if_contains("last_point") : nullptr;
      if (p != nullptr && p->is_object() && p->as_object().at("ts").as_string() == want) {
        return true;
      }
      std::this_thread::sleep_for(milliseconds(50));
    }
    return false;
  }
  // Whether the server's records go past bar `i`.
  bool beyond(int i) {
    auto v = get("/strategies/s/performance/last");
    const auto* p = v.is_object() ? v.as_object().if_contains("last_point") : nullptr;
    if (p == nullptr || !p->is_object()) return false;
    auto ts = parse_timestamp(p->as_object().at("ts").as_string());
    return ts && *ts > bar_time(i);
  }
  void set_state(const std::string& state) {
    auto r = http_request(fmt::format("http://127.0.0.1:{}", port_),
                          {.method = "POST",
                           .path = "/worlds/w/state",
                           .body = fmt::format(R"({{"state":"{}"}})", state)});
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : r.error().message);
  }
  std::string slurp(const std::string& path) const {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  testing::TempDir dir_;
  const int port_ = testing::free_port();
  const std::string feed_ = dir_.file("bars.csv");
  std::unique_ptr<testing::ServerProcess> server_;
  TimePoint start_;
  int bars_ = 0;
};

TEST_F(ResumeTest, PauseRestartAndKillLoseNoRecordAndStoreNoneTwice) {
  auto a = runner("a");
  append(20);
  ASSERT_TRUE(stored_up_to(19)) << slurp(dir_.file("a.log"));

  // Paused: orders are blocked (not even paper), so a later replay of these
  // bars, which routes them to paper, computes other equities than stored.
  set_state("Paused");
  append(10);
  ASSERT_TRUE(stored_up_to(29));
  ASSERT_TRUE(a->stop(SIGKILL, seconds(5)));  // as a runner stopped for the pause
  set_state("Active");
  auto b = runner("b");
  append(10);
  ASSERT_TRUE(stored_up_to(39)) << slurp(dir_.file("b.log"));
  EXPECT_NE(slurp(dir_.file("b.log")).find("posting resumes after it"), std::string::npos);

  // The server goes away under a running runner and comes back.
  ASSERT_EQ(server_->stop(), 0);
  append(5);
  std::this_thread::sleep_for(milliseconds(300));  // posts fail meanwhile
  start_server();
  ASSERT_TRUE(stored_up_to(44)) << slurp(dir_.file("b.log"));

  // SIGKILL while a long backlog is being posted one bar at a time: as soon
  // as its first bar is stored.
  append(100);
  for (int k = 0; k < 2000 && !beyond(44); ++k) std::this_thread::sleep_for(milliseconds(2));
  ASSERT_TRUE(b->stop(SIGKILL, seconds(5)));
  const auto partial = get("/strategies/s/performance/last");
  EXPECT_TRUE(beyond(44));
  EXPECT_FALSE(beyond(bars_ - 2)) << "the kill should land mid-backlog: " << json::dump(partial);
  auto c = runner("c");
  append(5);
  ASSERT_TRUE(stored_up_to(bars_ - 1)) << slurp(dir_.file("c.log"));
  ASSERT_EQ(c->stop(SIGTERM, seconds(10)), 0) << slurp(dir_.file("c.log"));
  std::string summary_line;
  while (auto line = c->read_line(milliseconds(100))) summary_line = *line;
  auto summary = json::parse(summary_line);
  ASSERT_TRUE(summary) << summary_line;
  EXPECT_GT(summary->at("points_already_stored").as_int64(), 0) << summary_line;
  EXPECT_EQ(summary->at("points_conflicting").as_int64(), 0) << summary_line;
  EXPECT_EQ(summary->at("records_dropped").as_int64(), 0) << summary_line;

  // Every bar of the feed has exactly its one point, and no fill was stored twice.
  auto store = std::move(*store::open_store(fmt::format("sqlite:{}", dir_.file("r.db"))));
  const auto points = *store->load_points("s", TimePoint::min());
  ASSERT_EQ(points.size(), static_cast<size_t>(bars_)) << "the kill left " << json::dump(partial);
  for (int i = 0; i < bars_; ++i) {
    EXPECT_EQ(points[static_cast<size_t>(i)].ts, bar_time(i)) << "bar " << i;
  }
  const auto fills = *store->load_fills("s", TimePoint::min());
  std::set<TimePoint> fill_times;
  for (const auto& f : fills) {
    EXPECT_TRUE(fill_times.insert(f.ts).second) << "two fills at " << format_timestamp(f.ts);
  }
  EXPECT_GT(fills.size(), 20u);
  const auto log = *store->list_audit("w", 0, 10'000);
  for (const auto& r : log) EXPECT_NE(r.event, "PERFORMANCE_CONFLICT") << r.reason;
}

// Without the resume (another writer, or a runner of an older version), a
// history posted again is accepted where it repeats the stored equities
// within the tolerance, refused only where it conflicts, and alerted.
TEST_F(ResumeTest, AnOverlapIsARepeatWithinTheToleranceAndOnlyConflictsAreRefused) {
  const std::string base = fmt::format("http://127.0.0.1:{}", port_);
  const auto post = [&](const std::string& body) {
    auto r =
        http_request(base, {.method = "POST", .path = "/strategies/s/performance", .body = body});
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : r.error().message);
    return r ? *json::parse(r->body) : boost::json::value();
  };
  const auto t = [&](int i) { return format_timestamp(bar_time(i)); };
  post(fmt::format(R"({{"points":[{{"ts":"{}","equity":100004.09999999998}},
                       {{"ts":"{}","equity":100010}}]}})",
                   t(0), t(1)));
  // The same history recomputed: the last bits differ; and one new point.
  auto again = post(fmt::format(R"({{"points":[{{"ts":"{}","equity":100004.09999999996}},
                                   {{"ts":"{}","equity":100010}},{{"ts":"{}","equity":100020}}]}})",
                                t(0), t(1), t(2)));
  EXPECT_EQ(again.at("repeated").as_int64(), 2);
  EXPECT_EQ(again.at("stored").as_int64(), 1);
  EXPECT_TRUE(again.at("conflicts").as_array().empty());
  // A real conflict: refused alone; the new point after it is kept.
  auto clash = post(fmt::format(
      R"({{"points":[{{"ts":"{}","equity":99000}},{{"ts":"{}","equity":100030}}]}})", t(1), t(3)));
  EXPECT_EQ(clash.at("stored").as_int64(), 1);
  ASSERT_EQ(clash.at("conflicts").as_array().size(), 1u);
  EXPECT_EQ(clash.at("conflicts").at(0).at("ts").as_string(), t(1));
  EXPECT_EQ(clash.at("conflicts").at(0).at("stored").to_number<double>(), 100010);
  EXPECT_EQ(get("/strategies/s/performance/last").at("last_point").at("ts").as_string(), t(3));
  const auto audit = get("/worlds/w/audit");
  const auto& last = audit.at("records").as_array().back();
  EXPECT_EQ(last.at("event").as_string(), "PERFORMANCE_CONFLICT");
  EXPECT_NE(json::dump(last).find("stored 100010, offered 99000"), std::string::npos)
      << json::dump(last);
}

}  // namespace
}  // namespace qmtl
