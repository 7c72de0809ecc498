// The scheduler inside the real server: a world whose policy says every 1s is
// evaluated and applied by the server on its own, GET /worlds/{id}/schedule
// shows it, and --scheduler false leaves worlds alone.
#include <gtest/gtest.h>

#include <thread>

#include "qmtl/core/http_client.h"
#include "qmtl/core/json.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace qmtl {
namespace {

using std::chrono::milliseconds;

class SchedulerE2eTest : public ::testing::Test {
 protected:
  void start(const std::string& scheduler) {
    server_ = std::make_unique<testing::ServerProcess>(
        QMTL_BINARY, dir_.file("s.db"), dir_.file("server.log"),
        std::vector<std::string>{"--no-auth", "--scheduler", scheduler, "--scheduler-poll",
                                 "50ms"});
  }
  boost::json::value get(const std::string& path) {
    auto r = http_request(server_->url(), {.path = path});
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : r.error().message);
    auto v = r ? json::parse(r->body) : Result<boost::json::value>(boost::json::value());
    return v ? *v : boost::json::value();
  }
  int post(const std::string& path, const std::string& body, const std::string& type) {
    auto r = http_request(server_->url(),
                          {.method = "POST", .path = path, .body = body, .content_type = type});
    EXPECT_TRUE(r) << r.error().message;
    return r ? r->status : 0;
  }
  void world_with_policy(const std::string& every) {
    ASSERT_EQ(post("/worlds", R"({"id":"w"})", "application/json"), 201);
    ASSERT_EQ(post("/worlds/w/policy",
                   "gates: {promote: 'return >= 0.01'}\nevaluation: {every: " + every + "}\n",
                   "application/yaml"),
              201);
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ServerProcess> server_;
};

TEST_F(SchedulerE2eTest, TheServerEvaluatesAWorldOnItsSchedule) {
  start("true");
  world_with_policy("1s");
  // First sight within 50 ms, the first tick within a second, so a run within ~2 s.
  std::string last_run_id;
  for (int i = 0; i < 60 && last_run_id.empty(); ++i) {
    std::this_thread::sleep_for(milliseconds(100));
    auto s = get("/worlds/w/schedule");
    if (s.at("scheduled").as_bool() && s.at("last_run_id").is_string()) {
      last_run_id = std::string(s.at("last_run_id").as_string());
      EXPECT_EQ(s.at("spec").as_string(), "every 1s");
      EXPECT_TRUE(s.at("last_error").is_null());
    }
  }
  ASSERT_FALSE(last_run_id.empty()) << "no scheduled run";
  auto audit = get("/worlds/w/audit").at("records").as_array();
  bool by_scheduler = false;
  for (const auto& a : audit) {
    by_scheduler |=
        a.at("event").as_string() == "EVALUATE" && a.at("actor").as_string() == "scheduler";
  }
  EXPECT_TRUE(by_scheduler);
  // `qmtl world status` says when the next evaluation is.
  auto status = testing::run_process(
      {QMTL_BINARY, "world", "status", "w"},
      {{"QMTL_GATEWAY_URL", server_->url()}, {"QMTL_CONFIG", dir_.file("none.yml")}});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("next evaluation "), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("(every 1s); last scheduled run w-"), std::string::npos) << status.out;
  // Prometheus sees the period and the last run, for the "no evaluation for two
  // periods" alert (deploy/prometheus/qmtl_rules.yml).
  auto metrics = http_request(server_->url(), {.path = "/metrics"});
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("qmtl_world_evaluation_period_seconds{world=\"w\"} 1\n"),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("qmtl_world_last_evaluation_timestamp_seconds{world=\"w\"} "),
            std::string::npos);
  auto unknown = http_request(server_->url(), {.path = "/worlds/nope/schedule"});
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
}

TEST_F(SchedulerE2eTest, SchedulerOffLeavesWorldsAlone) {
  start("false");
  world_with_policy("1s");
  std::this_thread::sleep_for(milliseconds(1500));
  auto s = get("/worlds/w/schedule");
  EXPECT_FALSE(s.at("scheduled").as_bool());
  EXPECT_TRUE(get("/worlds/w/evaluations").at("runs").as_array().empty());
}

}  // namespace
}  // namespace qmtl
