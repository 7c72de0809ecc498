// The web console against the real `qmtl serve`: its pages and their security
// headers, sign-in sessions by HttpOnly cookie, the refusal of cross-site
// writes, and the pages as a real headless Chromium draws them (screenshots
// under the build folder, build/<preset>/screenshots/).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "qmtl/core/http_client.h"
#include "qmtl/core/json.h"
#include "qmtl/world/world_service.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace qmtl {
namespace {

using lifecycle::StrategyEvent;

const std::string kOperator = "console-operator-0123456789";
const std::string kViewer = "console-viewer-0123456789";

// World alpha, dated on a fake clock so that its history has a shape: "up"
// and "steady" were validated by a 30-day backtest ending 40 days ago (with
// the policy's reject gate judging it), have dry-run records since, and
// "steady" was promoted to Live 10 days ago. Evaluation runs 20 and 10 days
// ago and now.
void seed(const std::string& db) {
  auto store = std::move(*store::open_store("sqlite:" + db));
  const TimePoint now = SystemClock().now();
  const auto days = [](int n) { return std::chrono::hours(24 * n); };
  FakeClock clock(now - days(70));
  world::WorldService s(*store, clock);
  ASSERT_TRUE(s.create_world({.id = "alpha", .name = "Alpha desk"}));
  ASSERT_TRUE(s.add_policy("alpha", "gates: {promote: 'return >= 0.5', demote: 'return < -0.5'}\n",
                           "setup"));
  ASSERT_TRUE(s.add_policy("alpha",
                           "gates: {promote: 'return >= 0.4', demote: 'return < -0.5', "
                           "reject: 'return < -0.9'}\n",
                           "setup"));
  const auto series = [](TimePoint from, int n, double eq) {
    std::vector<world::PerformancePoint> pts;
    for (int d = 0; d < n; ++d) {
      eq *= 1 + (d % 3 == 0 ? -0.004 : 0.003);
      pts.push_back({from + std::chrono::hours(24 * d), eq});
    }
    return pts;
  };
  for (const std::string id : {"up", "steady"}) {
    ASSERT_TRUE(s.submit_strategy({.id = id, .world = "alpha", .spec = "{}"}));
    ASSERT_TRUE(s.apply_strategy_event(id, StrategyEvent::kSubmit, "setup", ""));
  }
  clock.set(now - days(40));
  for (const std::string id : {"up", "steady"}) {
    world::BacktestOutcome backtest{.ok = true,
                                    .points = series(now - days(70), 30, 100),
                                    .initial_equity = 100,
                                    .bars = 30,
                                    .started_at = now - days(41)};
    backtest.fills.push_back(
        {.ts = now - days(60), .symbol = "BTC", .side = "buy", .qty = 1, .price = 100});
    auto v = s.finish_validation(id, backtest, "setup");
    ASSERT_TRUE(v) << v.error().message;
    ASSERT_EQ(v->outcome, "passed") << v->reason;
  }
  // The runners' records arrive day by day; the world is evaluated 20 and 10
  // days ago and now (three runs to replay), steady promoted in between.
  const auto all = series(now - days(40), 41, 100);
  size_t posted = 0;
  for (int ago : {20, 10, 0}) {
    clock.set(now - days(ago));
    const size_t upto = all.size() - static_cast<size_t>(ago);
    const std::vector<world::PerformancePoint> batch(all.begin() + static_cast<ptrdiff_t>(posted),
                                                     all.begin() + static_cast<ptrdiff_t>(upto));
    for (const std::string id : {"up", "steady"}) {
      ASSERT_TRUE(s.record_performance(id, batch, {}));
    }
    posted = upto;
    if (ago == 10) {
      ASSERT_TRUE(s.apply_strategy_event("steady", StrategyEvent::kPromote, "setup", "gates held"));
    }
    ASSERT_TRUE(s.evaluate_world("alpha", "setup"));
  }
}

class ConsoleE2eTest : public ::testing::Test {
 protected:
  void start(std::vector<std::string> args) {
    seed(dir_.file("console.db"));
    server_ = std::make_unique<testing::ServerProcess>(QMTL_BINARY, dir_.file("console.db"),
                                                       dir_.file("server.log"), args);
  }
  HttpReply call(const std::string& method, const std::string& path,
                 std::vector<std::pair<std::string, std::string>> headers = {},
                 const std::string& body = "") {
    auto r =
        http_request(server_->url(),
                     {.method = method, .path = path, .body = body, .headers = std::move(headers)});
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : HttpReply{};
  }
  // Signs in with `token`; returns the cookie to send ("qmtl_session=...").
  std::string sign_in(const std::string& token) {
    auto r = call("POST", "/ui/session", {}, json::dump(boost::json::object{{"token", token}}));
    EXPECT_EQ(r.status, 200) << r.body;
    const std::string set = r.header("Set-Cookie");
    EXPECT_NE(set.find("HttpOnly"), std::string::npos) << set;
    EXPECT_NE(set.find("SameSite=Strict"), std::string::npos) << set;
    EXPECT_NE(set.find("Path=/"), std::string::npos) << set;
    return set.substr(0, set.find(';'));
  }
  static bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ServerProcess> server_;
};

TEST_F(ConsoleE2eTest, PagesAndAssetsComeWithAStrictContentSecurityPolicy) {
  start({"--no-auth"});
  for (const char* path : {"/ui", "/ui/", "/ui/worlds/alpha", "/ui/strategies/up/anything"}) {
    auto r = call("GET", path);
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.content_type, "text/html; charset=utf-8") << path;
    EXPECT_TRUE(has(r.body, "<script src=\"/ui/assets/console.js\" defer></script>")) << path;
    const std::string csp = r.header("Content-Security-Policy");
    EXPECT_TRUE(has(csp, "default-src 'none'")) << csp;
    EXPECT_TRUE(has(csp, "script-src 'self'")) << csp;
    EXPECT_FALSE(has(csp, "unsafe-inline")) << csp;
    EXPECT_EQ(r.header("X-Frame-Options"), "DENY");
    EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
  }
  auto js = call("GET", "/ui/assets/console.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
  EXPECT_TRUE(has(js.body, "X-QMTL-Console"));
  EXPECT_EQ(call("GET", "/ui/assets/uPlot.iife.min.js").status, 200);
  EXPECT_EQ(call("GET", "/ui/assets/uPlot.min.css").content_type, "text/css; charset=utf-8");
  EXPECT_EQ(call("GET", "/ui/assets/nope.js").status, 404);
  // The page's markup has no inline script or style for the policy to allow.
  const std::string index = call("GET", "/ui/").body;
  EXPECT_FALSE(has(index, "<script>"));
  EXPECT_FALSE(has(index, "style="));
  EXPECT_FALSE(has(index, "onclick"));
  EXPECT_EQ(call("POST", "/ui/worlds").status, 405);
}

TEST_F(ConsoleE2eTest, ASessionCookieStandsForTheTokenAndCrossSiteWritesAreRefused) {
  testing::write_private_file(
      dir_.file("tokens"),
      fmt::format("ops operator token:{}\nwatcher viewer token:{}\n", kOperator, kViewer));
  start({"--token-file", dir_.file("tokens")});
  auto bad = call("POST", "/ui/session", {}, R"({"token":"not-a-token-0123456789"})");
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(bad.header("Set-Cookie"), "");
  EXPECT_EQ(call("GET", "/ui/session").status, 401);

  const std::string viewer = sign_in(kViewer);
  EXPECT_TRUE(viewer.starts_with("qmtl_session=")) << viewer;
  EXPECT_EQ(viewer.size(), std::string("qmtl_session=").size() + 64);
  auto me = call("GET", "/ui/session", {{"Cookie", viewer}});
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(json::parse(me.body)->at("role").as_string(), "viewer");
  EXPECT_EQ(call("GET", "/worlds/alpha", {{"Cookie", "a=b; " + viewer}}).status, 200);
  // A viewer's session has a viewer's rights, however the request is made.
  auto write =
      call("POST", "/worlds/alpha/evaluate", {{"Cookie", viewer}, {"X-QMTL-Console", "1"}}, "{}");
  EXPECT_EQ(write.status, 403);
  EXPECT_TRUE(has(write.body, "has role viewer")) << write.body;

  const std::string ops = sign_in(kOperator);
  // What a form or script on another site could send: the cookie, no header.
  auto forged = call("POST", "/worlds/alpha/evaluate", {{"Cookie", ops}}, R"({"apply":false})");
  EXPECT_EQ(forged.status, 403);
  EXPECT_TRUE(has(forged.body, "cross-site requests are refused")) << forged.body;
  auto runs = json::parse(call("GET", "/worlds/alpha/evaluations", {{"Cookie", ops}}).body);
  ASSERT_TRUE(runs);
  EXPECT_EQ(runs->at("runs").as_array().size(), 3u) << "the forged request changed something";
  auto real = call("POST", "/worlds/alpha/evaluate", {{"Cookie", ops}, {"X-QMTL-Console", "1"}},
                   R"({"apply":false})");
  EXPECT_EQ(real.status, 201) << real.body;

  // Signing out ends the session on the server, not only in the browser.
  auto out = call("DELETE", "/ui/session", {{"Cookie", ops}});
  EXPECT_EQ(out.status, 204);
  EXPECT_TRUE(has(out.header("Set-Cookie"), "Max-Age=0"));
  auto after = call("GET", "/worlds", {{"Cookie", ops}});
  EXPECT_EQ(after.status, 401);
  EXPECT_TRUE(has(after.body, "the console session has ended")) << after.body;
  EXPECT_EQ(call("GET", "/worlds", {{"Cookie", viewer}}).status, 200);
}

TEST_F(ConsoleE2eTest, InARealBrowserEveryPageDrawsAndFollowsChangesAndAViewerCannotWrite) {
  testing::write_private_file(
      dir_.file("tokens"),
      fmt::format("ops operator token:{}\nwatcher viewer token:{}\n", kOperator, kViewer));
  start({"--token-file", dir_.file("tokens"), "--heartbeat", "500ms", "--scheduler", "true"});
  auto runs = call("GET", "/worlds/alpha/evaluations", {{"Authorization", "Bearer " + kViewer}});
  auto run = json::parse(runs.body);
  ASSERT_TRUE(run) << runs.body;
  const std::string run_id(run->at("runs").as_array()[0].at("id").as_string());
  // The worlds page shows the next scheduled evaluation once the scheduler (polling each
  // second) has seen the world.
  bool scheduled = false;
  for (int i = 0; i < 100 && !scheduled; ++i) {
    auto sched = json::parse(
        call("GET", "/worlds/alpha/schedule", {{"Authorization", "Bearer " + kViewer}}).body);
    scheduled = sched && sched->at("scheduled").as_bool();
    if (!scheduled) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(scheduled) << "the scheduler did not schedule world alpha";
  std::filesystem::create_directories(QMTL_SCREENSHOT_DIR);
  // Selenium with Debian's chromium-driver: tests/browser/console_browser.py says what it checks.
  auto r = testing::run_process(
      {"/usr/bin/python3", std::string(QMTL_SOURCE_DIR) + "/tests/browser/console_browser.py",
       "--url", server_->url(), "--operator", kOperator, "--viewer", kViewer, "--run", run_id,
       "--shots", QMTL_SCREENSHOT_DIR},
      {{"HOME", dir_.path().string()}});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "promotion shown after")) << r.out;
  for (const char* page : {"worlds", "world", "run", "strategy", "replay", "world-viewer"}) {
    EXPECT_TRUE(
        std::filesystem::exists(fmt::format("{}/console-{}.png", QMTL_SCREENSHOT_DIR, page)))
        << page;
  }
}

}  // namespace
}  // namespace qmtl
