// POST /worlds/{id}/replay through the API: the answer's shape, its options,
// and bad requests refused with a message (and nothing written).
#include <gtest/gtest.h>

#include "qmtl/core/json.h"
#include "qmtl/server/api.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::server {
namespace {

using lifecycle::StrategyEvent;

class ApiReplayTest : public ::testing::Test {
 protected:
  ApiReplayTest()
      : store_(std::move(*store::open_store(testing::fresh_store_url(dir_, "replay.db")))),
        clock_(t0_),
        worlds_(*store_, clock_),
        api_(worlds_, clock_) {}

  // Ten daily runs (days 5 to 14), each applied: "up" (0.5 % a day) is
  // promoted once it has a week of records (return 3.6 % >= 2 %).
  void SetUp() override {
    ASSERT_TRUE(worlds_.create_world({.id = "w"}));
    ASSERT_TRUE(worlds_.add_policy(
        "w",
        "evaluation: {window: 1w}\ngates: {promote: 'return >= 0.02', demote: 'return < 0'}\n"
        "score: return\n",
        "desk"));
    for (const std::string id : {"up", "flat"}) {
      ASSERT_TRUE(worlds_.submit_strategy({.id = id, .world = "w", .spec = "{}"}));
      ASSERT_TRUE(worlds_.apply_strategy_event(id, StrategyEvent::kSubmit, "desk", ""));
      ASSERT_TRUE(worlds_.apply_strategy_event(id, StrategyEvent::kValidationPassed, "v", ""));
    }
    double up = 100, flat = 100;
    for (int d = 0; d <= 14; ++d) {
      clock_.set(day(d));
      ASSERT_TRUE(worlds_.record_performance("up", {{{day(d), up}}}, {}));
      ASSERT_TRUE(worlds_.record_performance("flat", {{{day(d), flat}}}, {}));
      up *= 1.005;
      flat *= 1.0001;
      if (d < 5) continue;
      auto run = worlds_.evaluate_world("w", "scheduler");
      ASSERT_TRUE(run) << run.error().message;
      ASSERT_TRUE(worlds_.apply_run("w", run->id, "scheduler"));
    }
  }
  static TimePoint day(int d) { return t0_ + std::chrono::hours(24 * d); }
  ApiResponse post(const std::string& body) {
    return api_.handle({.method = "POST",
                        .target = "/worlds/w/replay",
                        .content_type = "application/json",
                        .body = body});
  }
  boost::json::object ok(const std::string& body) {
    auto r = post(body);
    EXPECT_EQ(r.status, 200) << r.body;
    auto doc = json::parse(r.body);
    EXPECT_TRUE(doc && doc->is_object()) << r.body;
    return doc && doc->is_object() ? doc->as_object() : boost::json::object{};
  }

  static inline const TimePoint t0_ = *parse_timestamp("2026-02-02T00:00:00Z");
  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  FakeClock clock_;
  world::WorldService worlds_;
  Api api_;
};

TEST_F(ApiReplayTest, TheRecordedPolicyMatchesEveryDecisionAndACandidateSaysWhereItDiffers) {
  auto recorded = ok("");
  EXPECT_EQ(recorded.at("policy").as_string(), "recorded");
  EXPECT_EQ(recorded.at("runs").as_int64(), 10);
  EXPECT_EQ(recorded.at("decisions").as_int64(), 20);
  EXPECT_EQ(recorded.at("matching").as_int64(), 20);
  EXPECT_TRUE(recorded.at("differences").as_array().empty());
  EXPECT_EQ(recorded.at("from").as_string(), "2026-02-07T00:00:00Z");
  EXPECT_EQ(recorded.at("until").as_string(), "2026-02-16T00:00:00Z");
  const auto& book = recorded.at("recorded").as_object();
  EXPECT_EQ(book.at("promotions").as_int64(), 1);
  EXPECT_EQ(json::dump(book.at("live")), json::dump(recorded.at("candidate").at("live")));
  EXPECT_TRUE(book.at("kpis").as_object().contains("sharpe"));

  auto strict = ok(
      R"({"policy":"evaluation: {window: 1w}\ngates: {promote: 'return >= 0.5', demote: 'return < 0'}\nscore: return\n","max_points":3,"max_differences":5})");
  EXPECT_EQ(strict.at("policy").as_string(), "candidate");
  ASSERT_EQ(strict.at("total_differences").as_int64(), 1);
  const auto& d = strict.at("differences").as_array()[0].as_object();
  EXPECT_EQ(d.at("strategy").as_string(), "up");
  EXPECT_EQ(d.at("recorded").as_string(), "PROMOTE");
  EXPECT_EQ(d.at("replayed").as_string(), "HOLD");
  EXPECT_NE(std::string(d.at("why").as_string()).find("return >= 0.5"), std::string::npos);
  EXPECT_EQ(strict.at("candidate").at("promotions").as_int64(), 0);
  EXPECT_LE(strict.at("candidate").at("equity").as_array().size(), 3u);
  EXPECT_GT(strict.at("candidate").at("total_points").as_int64(), 3);
  EXPECT_EQ(
      ok(R"({"policy":"evaluation: {window: 1w}\ngates: {promote: 'return >= 0.5'}\n","max_differences":0})")
          .at("differences")
          .as_array()
          .size(),
      0u);
}

TEST_F(ApiReplayTest, ASpanAndOneRunAlone) {
  auto span = ok(R"({"from":"2026-02-10T00:00:00Z","until":"2026-02-12T00:00:00Z"})");
  EXPECT_EQ(span.at("runs").as_int64(), 3);
  clock_.set(day(15));
  EXPECT_EQ(ok(R"({"since":"2d"})").at("runs").as_int64(), 2);  // days 13 and 14
  auto one = ok(R"({"run":"w-3"})");
  EXPECT_EQ(one.at("runs").as_int64(), 1);
  const auto& rows = one.at("run_decisions").as_array();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at("strategy").as_string(), "flat");
  EXPECT_EQ(rows[0].at("recorded").as_string(), rows[0].at("replayed").as_string());
  EXPECT_FALSE(rows[1].at("reasons").as_array().empty());
}

TEST_F(ApiReplayTest, BadRequestsAre4xxWithAMessageAndWriteNothing) {
  const auto before = worlds_.list_audit("w", 0, 100000)->size();
  struct Case {
    std::string body;
    int status;
    std::string says;
  };
  for (const auto& c : std::vector<Case>{
           {R"({"policy":"gates: {promote: 'return >>= 1'}"})", 400, "candidate policy"},
           {R"({"policy":""})", 400, "omit it"},
           {R"({"policy":7})", 400, "policy"},
           {R"({"since":"2d","from":"2026-02-10T00:00:00Z"})", 400, "not both"},
           {R"({"since":"soon"})", 400, "positive duration"},
           {R"({"from":"yesterday"})", 400, "2026-01-05T00:00:00Z"},
           {R"({"from":"2026-02-12T00:00:00Z","until":"2026-02-10T00:00:00Z"})", 400, "after"},
           {R"({"run":"w-3","from":"2026-02-10T00:00:00Z"})", 400, "alone"},
           {R"({"run":"w-99"})", 404, "no evaluation run 'w-99'"},
           {R"({"max_points":1})", 400, "max_points"},
           {R"({"unknown":1})", 400, "unknown"},
           {"[1]", 400, "object"},
       }) {
    auto r = post(c.body);
    EXPECT_EQ(r.status, c.status) << c.body << ": " << r.body;
    EXPECT_NE(r.body.find(c.says), std::string::npos) << c.body << ": " << r.body;
  }
  auto missing = api_.handle({.method = "POST",
                              .target = "/worlds/nope/replay",
                              .content_type = "application/json",
                              .body = "{}"});
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(worlds_.list_audit("w", 0, 100000)->size(), before);
}

}  // namespace
}  // namespace qmtl::server
