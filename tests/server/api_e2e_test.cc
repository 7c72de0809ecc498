// The HTTP API end to end: the real `qmtl serve` binary with a token file, real
// sockets, every route with its success, error classes, roles, ETags,
// idempotency keys, the event stream and the Prometheus endpoint.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <sstream>

#include "qmtl/core/http_client.h"
#include "qmtl/core/json.h"
#include "qmtl/core/sha256.h"
#include "qmtl/world/world_service.h"
#include "tests/support/process.h"
#include "tests/support/sse_client.h"
#include "tests/support/temp_dir.h"

namespace qmtl {
namespace {

using lifecycle::StrategyEvent;
using qmtl::HttpReply;
using std::chrono::milliseconds;

const std::string kAdmin = "admin-secret-0123456789";
const std::string kOperator = "operator-secret-0123456789";
const std::string kViewer = "viewer-secret-0123456789";
const std::string kAlphaOnly = "alpha-operator-0123456789";

const char* kPolicy =
    "gates: {promote: 'return >= 0.03', demote: 'return < 0'}\nevaluation: {window: 2w}\n";

class ApiE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed();
    // The operator's secret is stored only as its digest.
    testing::write_private_file(dir_.file("tokens"),
                                fmt::format("# name role secret [worlds]\n"
                                            "admin     admin    token:{}\n"
                                            "ops       operator sha256:{}\n"
                                            "watcher   viewer   token:{}\n"
                                            "alpha-ops operator token:{} worlds=alpha\n",
                                            kAdmin, sha256_hex(kOperator), kViewer, kAlphaOnly));
    server_ = std::make_unique<testing::ServerProcess>(
        QMTL_BINARY, dir_.file("api.db"), dir_.file("server.log"),
        std::vector<std::string>{"--token-file", dir_.file("tokens"), "--heartbeat", "200ms",
                                 "--activation-ttl", "2s"});
  }

  // Worlds alpha (strategies up, down, steady; down and steady Live) and beta,
  // made through the service on the same SQLite file before the server starts:
  // passing validation is not an API operation.
  void seed() {
    auto store = std::move(*store::open_store(fmt::format("sqlite:{}", dir_.file("api.db"))));
    SystemClock clock;
    world::WorldService s(*store, clock);
    ASSERT_TRUE(s.create_world({.id = "alpha"}));
    ASSERT_TRUE(s.create_world({.id = "beta"}));
    const std::vector<std::pair<std::string, std::vector<StrategyEvent>>> strategies = {
        {"up", {StrategyEvent::kValidationPassed}},
        {"down", {StrategyEvent::kValidationPassed, StrategyEvent::kPromote}},
        {"steady", {StrategyEvent::kValidationPassed, StrategyEvent::kPromote}},
    };
    for (const auto& [id, events] : strategies) {
      ASSERT_TRUE(s.submit_strategy({.id = id, .world = "alpha", .spec = "{}"}));
      ASSERT_TRUE(s.apply_strategy_event(id, StrategyEvent::kSubmit, "setup", ""));
      for (auto e : events) ASSERT_TRUE(s.apply_strategy_event(id, e, "setup", ""));
    }
  }

  HttpReply call(const std::string& method, const std::string& path, const std::string& token,
                 const std::string& body = "",
                 std::vector<std::pair<std::string, std::string>> headers = {},
                 const std::string& content_type = "application/json") {
    auto r = http_request(server_->url(), {.method = method,
                                           .path = path,
                                           .body = body,
                                           .content_type = content_type,
                                           .bearer_token = token,
                                           .headers = std::move(headers)});
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : HttpReply{};
  }
  static boost::json::value body(const HttpReply& r) {
    auto doc = json::parse(r.body);
    EXPECT_TRUE(doc) << r.body;
    return doc ? *doc : boost::json::value();
  }
  // The problem `detail`, after checking the problem+json shape.
  static std::string detail(const HttpReply& r) {
    EXPECT_EQ(r.content_type, "application/problem+json") << r.body;
    auto doc = json::parse(r.body);
    if (!doc || !doc->is_object()) return "";
    EXPECT_EQ(doc->at("status").as_int64(), r.status);
    return std::string(doc->at("detail").as_string());
  }
  std::string log() const {
    std::ifstream f(dir_.file("server.log"));
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  // Daily equity for 30 days growing by `daily`, posted through the API.
  void post_performance(const std::string& id, double daily) {
    boost::json::array points;
    double eq = 100;
    const auto now =
        std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
    for (int d = 30; d >= 0; --d) {
      points.push_back(
          {{"ts", format_timestamp(now - std::chrono::hours(24 * d))}, {"equity", eq}});
      eq *= 1 + daily + (d % 2 == 0 ? 0.001 : -0.001);
    }
    auto r = call("POST", fmt::format("/strategies/{}/performance", id), kOperator,
                  json::dump(boost::json::object{{"points", points}}));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(body(r).at("points").as_int64(), 31);
  }
  // Sets the policy, posts the records and evaluates; returns the run id.
  std::string evaluated() {
    EXPECT_EQ(call("POST", "/worlds/alpha/policy", kAdmin, kPolicy, {}, "application/yaml").status,
              201);
    post_performance("up", 0.003);
    post_performance("down", -0.003);
    post_performance("steady", 0.003);
    auto run = call("POST", "/worlds/alpha/evaluate", kOperator);
    EXPECT_EQ(run.status, 201) << run.body;
    return std::string(body(run).at("id").as_string());
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ServerProcess> server_;
};

TEST_F(ApiE2eTest, EveryRouteNeedsAValidTokenExceptHealth) {
  EXPECT_EQ(call("GET", "/healthz", "").status, 200);
  auto none = call("GET", "/worlds", "");
  EXPECT_EQ(none.status, 401);
  EXPECT_NE(detail(none).find("send 'Authorization: Bearer <token>'"), std::string::npos);
  EXPECT_EQ(none.header("WWW-Authenticate"), "Bearer realm=\"qmtl\"");
  auto wrong = call("GET", "/worlds", "not-a-token-at-all-12345");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_NE(detail(wrong).find("the bearer token is not valid"), std::string::npos);
  auto basic = call("GET", "/worlds", "", "", {{"Authorization", "Basic YWxhZGRpbg=="}});
  EXPECT_EQ(basic.status, 401);
  for (const auto& [method, path] :
       std::vector<std::pair<std::string, std::string>>{{"GET", "/metrics"},
                                                        {"POST", "/worlds"},
                                                        {"GET", "/worlds/alpha/events"},
                                                        {"PUT", "/worlds/alpha/activation"},
                                                        {"GET", "/strategies"},
                                                        {"POST", "/strategies/up/performance"}}) {
    EXPECT_EQ(call(method, path, "").status, 401) << method << " " << path;
  }
  // The hashed operator token works like a plain one.
  EXPECT_EQ(call("GET", "/worlds", kOperator).status, 200);
}

TEST_F(ApiE2eTest, EachRoleMayDoWhatItsRankAllowsAndNoMore) {
  // viewer: reads only.
  EXPECT_EQ(call("GET", "/worlds/alpha", kViewer).status, 200);
  EXPECT_EQ(call("GET", "/strategies?world=alpha", kViewer).status, 200);
  auto v = call("PUT", "/worlds/alpha/activation", kViewer,
                R"({"strategy":"up","side":"long","active":true})");
  EXPECT_EQ(v.status, 403);
  EXPECT_NE(detail(v).find("token 'watcher' has role viewer; this needs operator or higher"),
            std::string::npos);
  EXPECT_EQ(call("POST", "/strategies/up/deactivate", kViewer).status, 403);
  // operator: runs worlds, but neither creates them, nor sets policies, nor retires.
  auto o = call("POST", "/worlds", kOperator, R"({"id":"gamma"})");
  EXPECT_EQ(o.status, 403);
  EXPECT_NE(detail(o).find("this needs admin"), std::string::npos);
  EXPECT_EQ(call("POST", "/worlds/alpha/policy", kOperator, kPolicy, {}, "application/yaml").status,
            403);
  EXPECT_EQ(call("POST", "/worlds/beta/state", kOperator, R"({"state":"Retired"})").status, 403);
  auto paused = call("POST", "/worlds/beta/state", kOperator, R"({"state":"Paused","reason":"x"})");
  EXPECT_EQ(paused.status, 200) << paused.body;
  EXPECT_EQ(body(paused).at("state").as_string(), "Paused");
  // admin: everything.
  EXPECT_EQ(call("POST", "/worlds", kAdmin, R"({"id":"gamma"})").status, 201);
  EXPECT_EQ(call("POST", "/worlds/gamma/state", kAdmin, R"({"state":"Retired"})").status, 200);
  // A token limited to alpha sees and touches alpha only.
  auto list = body(call("GET", "/worlds", kAlphaOnly));
  ASSERT_EQ(list.at("worlds").as_array().size(), 1u);
  EXPECT_EQ(list.at("worlds").as_array()[0].at("id").as_string(), "alpha");
  auto beta = call("GET", "/worlds/beta", kAlphaOnly);
  EXPECT_EQ(beta.status, 403);
  EXPECT_NE(detail(beta).find("token 'alpha-ops' may not access world 'beta'"), std::string::npos);
  EXPECT_EQ(call("GET", "/strategies/up", kAlphaOnly).status, 200);
  EXPECT_EQ(call("GET", "/metrics", kAlphaOnly).status, 403);
  EXPECT_EQ(call("GET", "/metrics", kViewer).status, 200);
  // The audit log names the token that made each change.
  auto audit = body(call("GET", "/worlds/beta/audit", kViewer)).at("records").as_array();
  EXPECT_EQ(audit.back().at("actor").as_string(), "ops");
  // Secrets never reach the log.
  const std::string server_log = log();
  for (const auto& secret : {kAdmin, kOperator, kViewer, kAlphaOnly}) {
    EXPECT_EQ(server_log.find(secret), std::string::npos);
  }
}

TEST_F(ApiE2eTest, PolicyVersionsWithETagsAndRollback) {
  auto first = call("POST", "/worlds/alpha/policy", kAdmin, kPolicy, {}, "application/yaml");
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(body(first).at("version").as_int64(), 1);
  EXPECT_EQ(body(first).at("checksum").as_string().size(), 64u);
  EXPECT_EQ(first.header("ETag"), "\"1\"");
  EXPECT_EQ(first.header("Location"), "/worlds/alpha/policies/1");
  // A writer that read "no policy yet" loses to the one that set it.
  auto stale = call("POST", "/worlds/alpha/policy", kAdmin, kPolicy, {{"If-Match", "\"0\""}},
                    "application/yaml");
  EXPECT_EQ(stale.status, 412);
  EXPECT_NE(detail(stale).find("is at policy version 1, not 0"), std::string::npos);
  auto second = call("POST", "/worlds/alpha/policy", kAdmin,
                     R"({"gates":{"promote":"sharpe >= 1"}})", {{"If-Match", "\"1\""}});
  ASSERT_EQ(second.status, 201) << second.body;
  auto versions = body(call("GET", "/worlds/alpha/policies", kViewer));
  EXPECT_EQ(versions.at("current").as_int64(), 2);
  EXPECT_EQ(versions.at("versions").as_array().size(), 2u);
  auto v1 = call("GET", "/worlds/alpha/policies/1", kViewer);
  EXPECT_EQ(body(v1).at("document").as_string(), kPolicy);
  EXPECT_FALSE(body(v1).at("current").as_bool());
  auto current = call("GET", "/worlds/alpha/policy", kViewer);
  EXPECT_EQ(current.header("ETag"), "\"2\"");
  EXPECT_EQ(call("GET", "/worlds/alpha/policies/9", kViewer).status, 404);
  EXPECT_EQ(call("GET", "/worlds/alpha/policies/x", kViewer).status, 400);
  EXPECT_EQ(call("GET", "/worlds/beta/policy", kViewer).status, 404);
  // Rollback, guarded the same way.
  EXPECT_EQ(call("POST", "/worlds/alpha/policy/current", kAdmin, R"({"version":1})",
                 {{"If-Match", "\"1\""}})
                .status,
            412);
  auto back = call("POST", "/worlds/alpha/policy/current", kAdmin,
                   R"({"version":1,"reason":"v2 too strict"})", {{"If-Match", "\"2\""}});
  ASSERT_EQ(back.status, 200) << back.body;
  EXPECT_EQ(body(back).at("policy_version").as_int64(), 1);
  EXPECT_EQ(call("POST", "/worlds/alpha/policy/current", kAdmin, R"({"version":7})").status, 404);
  // Bad documents name line and column and change nothing.
  auto bad = call("POST", "/worlds/alpha/policy", kAdmin, "gates:\n  promote: 'sharpe >'\n", {},
                  "application/yaml");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(detail(bad).find("policy:2:"), std::string::npos) << detail(bad);
  EXPECT_EQ(call("POST", "/worlds/alpha/policy", kAdmin, kPolicy, {}, "text/plain").status, 415);
  EXPECT_EQ(body(call("GET", "/worlds/alpha/policies", kViewer)).at("versions").as_array().size(),
            2u);
}

TEST_F(ApiE2eTest, EvaluateApplyActivationAndAuditOverHttp) {
  const std::string run = evaluated();
  auto runs = body(call("GET", "/worlds/alpha/evaluations", kViewer)).at("runs").as_array();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].at("decisions").at("up").as_string(), "PROMOTE");
  EXPECT_EQ(runs[0].at("decisions").at("down").as_string(), "DEMOTE");
  auto detail_run = body(call("GET", fmt::format("/worlds/alpha/evaluations/{}", run), kViewer));
  EXPECT_EQ(detail_run.at("id").as_string(), run);
  EXPECT_TRUE(detail_run.at("strategies").at("up").at("clauses").is_array());
  EXPECT_EQ(call("GET", "/worlds/alpha/evaluations/nope", kViewer).status, 404);

  auto applied = call("POST", "/worlds/alpha/apply", kOperator,
                      json::dump(boost::json::object{{"run_id", run}}));
  ASSERT_EQ(applied.status, 200) << applied.body;
  EXPECT_EQ(body(applied).at("phase").as_string(), "Done");
  EXPECT_EQ(body(applied).at("promote").as_array()[0].as_string(), "up");
  EXPECT_EQ(body(call("GET", "/strategies/up", kViewer)).at("state").as_string(), "Live");
  EXPECT_EQ(body(call("GET", "/strategies/down", kViewer)).at("state").as_string(), "DryRun");

  // Activation set with ETag, conditional GET, and an optimistic PUT.
  auto act = call("GET", "/worlds/alpha/activation", kViewer);
  ASSERT_EQ(act.status, 200);
  const std::string tag = act.header("ETag");
  EXPECT_FALSE(tag.empty());
  EXPECT_EQ(call("GET", "/worlds/alpha/activation", kViewer, "", {{"If-None-Match", tag}}).status,
            304);
  int64_t up_long = -1;
  const auto act_body = body(act);  // a named value: a range-for over a temporary would dangle
  for (const auto& e : act_body.at("entries").as_array()) {
    if (e.at("strategy") == "up" && e.at("side") == "long") {
      EXPECT_TRUE(e.at("active").as_bool());
      EXPECT_EQ(e.at("ttl_s").as_int64(), 2);
      up_long = e.at("version").as_int64();
    }
  }
  ASSERT_GT(up_long, 0);
  const std::string put = R"({"strategy":"up","side":"long","active":false,"reason":"risk"})";
  auto stale = call("PUT", "/worlds/alpha/activation", kOperator, put,
                    {{"If-Match", fmt::format("\"{}\"", up_long - 1)}});
  EXPECT_EQ(stale.status, 412);
  EXPECT_NE(detail(stale).find("read it again and retry"), std::string::npos);
  auto ok = call("PUT", "/worlds/alpha/activation", kOperator, put,
                 {{"If-Match", fmt::format("\"{}\"", up_long)}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_FALSE(body(ok).at("entry").at("active").as_bool());
  EXPECT_EQ(ok.header("ETag"), fmt::format("\"{}\"", up_long + 1));
  // The cached set was dropped by the change: the next read shows it.
  auto after = call("GET", "/worlds/alpha/activation", kViewer, "", {{"If-None-Match", tag}});
  EXPECT_EQ(after.status, 200);
  EXPECT_NE(after.header("ETag"), tag);
  EXPECT_EQ(call("PUT", "/worlds/alpha/activation", kOperator,
                 R"({"strategy":"up","side":"sideways","active":true})")
                .status,
            400);
  EXPECT_EQ(call("PUT", "/worlds/alpha/activation", kOperator,
                 R"({"strategy":"up","side":"long","active":"yes"})")
                .status,
            400);

  // Strategy transitions: conflicts are 409 with the reason.
  auto conflict = call("POST", "/strategies/up/activate", kOperator);
  EXPECT_EQ(conflict.status, 409);
  EXPECT_NE(detail(conflict).find("Live"), std::string::npos) << detail(conflict);
  auto off = call("POST", "/strategies/down/deactivate", kOperator, R"({"reason":"decayed"})");
  ASSERT_EQ(off.status, 200) << off.body;
  EXPECT_EQ(body(off).at("state").as_string(), "Inactive");
  EXPECT_EQ(body(call("POST", "/strategies/down/activate", kOperator)).at("state").as_string(),
            "DryRun");
  EXPECT_EQ(body(call("POST", "/strategies/down/archive", kOperator)).at("state").as_string(),
            "Archived");
  EXPECT_EQ(call("POST", "/strategies/nope/archive", kOperator).status, 404);

  // The audit log tells the story, pageable by seq.
  auto audit = body(call("GET", "/worlds/alpha/audit", kViewer));
  bool promoted = false;
  for (const auto& a : audit.at("records").as_array()) {
    if (a.at("event") == "PROMOTE" && a.at("entity_id") == "up") {
      promoted = a.at("run_id").as_string() == run;
    }
  }
  EXPECT_TRUE(promoted);
  const int64_t next = audit.at("next_after").as_int64();
  EXPECT_TRUE(body(call("GET", fmt::format("/worlds/alpha/audit?after={}", next), kViewer))
                  .at("records")
                  .as_array()
                  .empty());
  EXPECT_EQ(call("GET", "/worlds/alpha/audit?limit=0", kViewer).status, 400);
  // A state the world machine refuses is a conflict.
  EXPECT_EQ(call("POST", "/worlds/alpha/state", kOperator, R"({"state":"Active"})").status, 409);
  EXPECT_EQ(call("POST", "/worlds/alpha/state", kOperator, R"({"state":"Sleeping"})").status, 400);
  // In a Paused world a manual activation is queued (202) and nothing else moves.
  ASSERT_EQ(call("POST", "/worlds/alpha/state", kOperator, R"({"state":"Paused"})").status, 200);
  auto queued = call("PUT", "/worlds/alpha/activation", kOperator,
                     R"({"strategy":"steady","side":"long","active":false})");
  EXPECT_EQ(queued.status, 202) << queued.body;
  EXPECT_TRUE(body(queued).at("queued").as_bool());
  EXPECT_EQ(call("POST", "/strategies/steady/deactivate", kOperator).status, 409);
  EXPECT_EQ(call("POST", "/worlds/alpha/evaluate", kOperator).status, 409);
}

TEST_F(ApiE2eTest, IdempotencyKeysReplayCreatesOnce) {
  const std::string s = R"({"id":"fresh","world":"alpha","spec":{"nodes":[]}})";
  auto a = call("POST", "/strategies", kOperator, s, {{"Idempotency-Key", "k-1"}});
  ASSERT_EQ(a.status, 201) << a.body;
  EXPECT_EQ(a.header("Location"), "/strategies/fresh");
  auto b = call("POST", "/strategies", kOperator, s, {{"Idempotency-Key", "k-1"}});
  EXPECT_EQ(b.status, 201);
  EXPECT_EQ(b.body, a.body);
  EXPECT_EQ(b.header("Idempotent-Replayed"), "true");
  auto other = call("POST", "/strategies", kOperator,
                    R"({"id":"fresh2","world":"alpha","spec":{}})", {{"Idempotency-Key", "k-1"}});
  EXPECT_EQ(other.status, 422);
  EXPECT_NE(detail(other).find("was used for a different request"), std::string::npos);
  // Without a key, the retry is a conflict: the id is taken.
  EXPECT_EQ(call("POST", "/strategies", kOperator, s).status, 409);
  // Keys are per token: the admin's k-1 is a new request.
  EXPECT_EQ(call("POST", "/strategies", kAdmin, s, {{"Idempotency-Key", "k-1"}}).status, 409);
  EXPECT_EQ(call("POST", "/strategies", kOperator, s, {{"Idempotency-Key", "bad key"}}).status,
            400);

  ASSERT_EQ(call("POST", "/worlds/alpha/policy", kAdmin, kPolicy, {}, "application/yaml").status,
            201);
  auto e1 = call("POST", "/worlds/alpha/evaluate", kOperator, "", {{"Idempotency-Key", "ev-1"}});
  auto e2 = call("POST", "/worlds/alpha/evaluate", kOperator, "", {{"Idempotency-Key", "ev-1"}});
  ASSERT_EQ(e1.status, 201) << e1.body;
  EXPECT_EQ(body(e1).at("id"), body(e2).at("id"));
  EXPECT_EQ(body(call("GET", "/worlds/alpha/evaluations", kViewer)).at("runs").as_array().size(),
            1u);
  // Evaluate and apply in one call.
  auto both = call("POST", "/worlds/alpha/evaluate", kOperator, R"({"apply":true})");
  ASSERT_EQ(both.status, 201) << both.body;
  EXPECT_EQ(body(both).at("apply").at("phase").as_string(), "Done");
}

TEST_F(ApiE2eTest, BadRequestsGetTheRightStatusAndChangeNothing) {
  struct Case {
    std::string method, path, body;
    int status;
    std::string detail_part;
  };
  for (
      const Case& c : std::vector<Case>{
          {"POST", "/worlds", R"({"id":)", 400, "malformed JSON"},
          {"POST", "/worlds", R"({"id":7})", 400, "field 'id' must be a string"},
          {"POST", "/strategies", R"({"id":"s","world":"alpha","spec":"x"})", 400,
           "field 'spec' must be an object"},
          {"POST", "/strategies", R"({"id":"s","world":"nope","spec":{}})", 404, "nope"},
          {"POST", "/strategies", R"({"id":"up","world":"alpha","spec":{}})", 409, "up"},
          {"POST", "/strategies/up/performance",
           R"({"points":[{"ts":"2026-01-01T00:00:00Z","equity":1},{"ts":"2026-01-02T00:00:00Z","equity":"x"}]})",
           400, "points[1]: field 'equity' must be a number"},
          {"POST", "/strategies/up/performance", R"({"points":[{"ts":"yesterday","equity":1}]})",
           400, "points[0]:"},
          {"POST", "/strategies/up/performance",
           R"({"fills":[{"ts":"2026-01-01T00:00:00Z","symbol":"X","side":"buy","qty":1}]})", 400,
           "fills[0]: field 'price' is required"},
          {"POST", "/strategies/up/performance", R"({})", 400, "no 'points' and no 'fills'"},
          {"POST", "/strategies/ghost/performance", R"({"points":[]})", 404, "ghost"},
          {"POST", "/worlds/alpha/apply", R"({"run_id":"alpha-99"})", 404, "alpha-99"},
          {"POST", "/worlds/alpha/evaluate", R"({"apply":1})", 400,
           "field 'apply' must be true or false"},
          {"POST", "/worlds/alpha/evaluate", "", 404, "no policy"},
          {"GET", "/worlds/nope/activation", "", 404, "nope"},
          {"GET", "/worlds/nope/events", "", 404, "nope"},
          {"GET", "/strategies?world=nope", "", 404, "nope"},
          {"DELETE", "/worlds/alpha", "", 405, "use GET"},
          {"GET", "/worlds/alpha/evaluations?limit=5000", "", 400, "limit"},
          {"GET", "/nowhere", "", 404, "no route for GET /nowhere"},
      }) {
    auto r = call(c.method, c.path, kAdmin, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << " " << r.body;
    EXPECT_NE(detail(r).find(c.detail_part), std::string::npos)
        << c.path << ": " << detail(r) << " lacks " << c.detail_part;
  }
  auto big = call("POST", "/worlds", kAdmin,
                  fmt::format(R"({{"id":"big","name":"{}"}})", std::string(9 * 1024 * 1024, 'x')));
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(call("POST", "/worlds", kAdmin, R"({"id":"x"})", {}, "text/plain").status, 415);
  // Nothing above changed anything.
  EXPECT_EQ(body(call("GET", "/worlds", kAdmin)).at("worlds").as_array().size(), 2u);
  EXPECT_EQ(body(call("GET", "/strategies", kAdmin)).at("strategies").as_array().size(), 3u);
  EXPECT_TRUE(body(call("GET", "/worlds/alpha/evaluations", kAdmin)).at("runs").as_array().empty());
}

TEST_F(ApiE2eTest, EventStreamPushesChangesAndResumesWithLastEventId) {
  testing::SseClient a(server_->url(), "/worlds/alpha/events",
                       {{"Authorization", fmt::format("Bearer {}", kViewer)}});
  ASSERT_EQ(a.status(), 200) << a.head();
  EXPECT_NE(a.head().find("text/event-stream"), std::string::npos);
  auto snap = a.next(milliseconds(5000));
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->type, "snapshot");
  const int64_t snap_id = std::stoll(snap->id);
  EXPECT_EQ(json::parse(snap->data)->at("world").at("state").as_string(), "Active");

  // A change reaches the connected client, with a larger id and the new gate.
  ASSERT_EQ(call("PUT", "/worlds/alpha/activation", kOperator,
                 R"({"strategy":"down","side":"long","active":false,"reason":"by hand"})")
                .status,
            200);
  auto ev = a.next_non_heartbeat(milliseconds(5000));
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->type, "activation");
  const int64_t first_id = std::stoll(ev->id);
  EXPECT_GT(first_id, snap_id);
  auto data = *json::parse(ev->data);
  EXPECT_EQ(data.at("event").as_string(), "ACTIVATION_SET");
  EXPECT_EQ(data.at("actor").as_string(), "ops");
  const auto& entries = data.at("activation").at("entries").as_array();
  ASSERT_FALSE(entries.empty());
  for (const auto& e : entries) EXPECT_EQ(e.at("strategy").as_string(), "down");

  // Heartbeats keep arriving (every 200 ms here) and carry no id.
  auto hb = a.next(milliseconds(2000));
  ASSERT_TRUE(hb);
  EXPECT_EQ(hb->type, "heartbeat");
  EXPECT_TRUE(hb->id.empty());

  // Changes made while a client is away are replayed after its Last-Event-ID,
  // in order, before a fresh snapshot.
  ASSERT_EQ(call("POST", "/worlds/alpha/state", kOperator, R"({"state":"EvalOnly"})").status, 200);
  ASSERT_EQ(call("POST", "/worlds/alpha/state", kOperator, R"({"state":"Active"})").status, 200);
  testing::SseClient b(server_->url(), "/worlds/alpha/events",
                       {{"Authorization", fmt::format("Bearer {}", kViewer)},
                        {"Last-Event-ID", std::to_string(first_id)}});
  std::vector<testing::SseEvent> got;
  for (int i = 0; i < 3; ++i) {
    auto e = b.next_non_heartbeat(milliseconds(5000));
    ASSERT_TRUE(e);
    got.push_back(*e);
  }
  EXPECT_EQ(got[0].type, "world");
  EXPECT_EQ(json::parse(got[0].data)->at("after").as_string(), "EvalOnly");
  EXPECT_EQ(got[1].type, "world");
  EXPECT_EQ(json::parse(got[1].data)->at("after").as_string(), "Active");
  EXPECT_EQ(got[2].type, "snapshot");
  EXPECT_GT(std::stoll(got[0].id), first_id);
  EXPECT_GT(std::stoll(got[1].id), std::stoll(got[0].id));
  EXPECT_GE(std::stoll(got[2].id), std::stoll(got[1].id));
  // The first client got the same events live.
  auto live1 = a.next_non_heartbeat(milliseconds(5000));
  auto live2 = a.next_non_heartbeat(milliseconds(5000));
  ASSERT_TRUE(live1 && live2);
  EXPECT_EQ(live1->id, got[0].id);
  EXPECT_EQ(live2->id, got[1].id);

  // A stream filtered to one strategy skips the others' events.
  testing::SseClient only(server_->url(), "/worlds/alpha/events?strategy=steady",
                          {{"Authorization", fmt::format("Bearer {}", kViewer)}});
  ASSERT_EQ(only.next(milliseconds(5000))->type, "snapshot");
  ASSERT_EQ(call("PUT", "/worlds/alpha/activation", kOperator,
                 R"({"strategy":"up","side":"short","active":true})")
                .status,
            200);
  ASSERT_EQ(call("PUT", "/worlds/alpha/activation", kOperator,
                 R"({"strategy":"steady","side":"short","active":true})")
                .status,
            200);
  // The promotion of up (opening a side of a DryRun strategy) sends only its
  // world-wide apply events here; then steady's gate.
  std::optional<testing::SseEvent> mine;
  for (int i = 0; i < 10; ++i) {
    mine = only.next_non_heartbeat(milliseconds(5000));
    ASSERT_TRUE(mine);
    const auto d = *json::parse(mine->data);
    ASSERT_NE(d.at("entity_id").as_string(), "up") << mine->data;
    if (mine->type != "apply") break;
  }
  EXPECT_EQ(json::parse(mine->data)->at("entity_id").as_string(), "steady/short");

  // Errors are ordinary responses, not streams.
  testing::SseClient anon(server_->url(), "/worlds/alpha/events", {});
  EXPECT_EQ(anon.status(), 401);
  testing::SseClient bad(
      server_->url(), "/worlds/alpha/events",
      {{"Authorization", fmt::format("Bearer {}", kViewer)}, {"Last-Event-ID", "abc"}});
  EXPECT_EQ(bad.status(), 400);

  // SIGTERM ends open streams and the server exits cleanly.
  EXPECT_EQ(server_->stop(), 0);
  for (int i = 0; i < 1000 && a.next(milliseconds(3000)); ++i) {
  }  // what was already sent
  EXPECT_TRUE(a.ended());
  EXPECT_NE(log().find("GET /worlds/{id}/events 200"), std::string::npos);
}

TEST_F(ApiE2eTest, MetricsAreValidPrometheusText) {
  const std::string run = evaluated();
  ASSERT_EQ(call("POST", "/worlds/alpha/apply", kOperator,
                 json::dump(boost::json::object{{"run_id", run}}))
                .status,
            200);
  testing::SseClient stream(server_->url(), "/worlds/alpha/events",
                            {{"Authorization", fmt::format("Bearer {}", kViewer)}});
  ASSERT_TRUE(stream.next(milliseconds(5000)));
  auto m = call("GET", "/metrics", kViewer);
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.content_type, "text/plain; version=0.0.4; charset=utf-8");
  for (const char* line : {
           "qmtl_strategies{state=\"Live\",world=\"alpha\"} 2",
           "qmtl_strategies{state=\"DryRun\",world=\"alpha\"} 1",
           "qmtl_promotions_total{world=\"alpha\"} 1",
           "qmtl_demotions_total{world=\"alpha\"} 1",
           "qmtl_applies_total{world=\"alpha\"} 1",
           "qmtl_evaluations_total{outcome=\"ok\",world=\"alpha\"} 1",
           "qmtl_evaluation_duration_seconds_count{world=\"alpha\"} 1",
           "qmtl_apply_duration_seconds_count{world=\"alpha\"} 1",
           "qmtl_event_streams_open 1",
           "qmtl_worlds{state=\"Active\"} 2",
           "qmtl_gates{state=\"open\",world=\"alpha\"}",
           "qmtl_http_requests_total{code=\"201\",method=\"POST\",route=\"/worlds/{id}/evaluate\"} "
           "1",
           "qmtl_http_request_duration_seconds_bucket{route=\"/worlds/{id}/evaluate\",le=",
       }) {
    EXPECT_NE(m.body.find(line), std::string::npos) << line << "\n" << m.body;
  }
  // The evaluation just run, in Unix seconds; the DryRun strategy's age.
  const auto gauge = [&](std::string_view name) -> std::optional<double> {
    const auto at = m.body.find(fmt::format("\n{} ", name));
    if (at == std::string::npos) return std::nullopt;
    return std::strtod(m.body.c_str() + at + name.size() + 2, nullptr);
  };
  const auto last = gauge("qmtl_world_last_evaluation_timestamp_seconds{world=\"alpha\"}");
  ASSERT_TRUE(last) << m.body;
  EXPECT_NEAR(*last, static_cast<double>(std::time(nullptr)), 60);
  const auto dry = gauge("qmtl_dry_run_age_max_seconds{world=\"alpha\"}");
  ASSERT_TRUE(dry) << m.body;
  EXPECT_GE(*dry, 0);
  EXPECT_LT(*dry, 600);
  const std::string path = testing::write_file(dir_.file("metrics.txt"), m.body);
  auto check =
      testing::run_process({"/bin/sh", "-c", fmt::format("{} check metrics < {}", PROMTOOL, path)});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  // A failed apply is counted.
  ASSERT_EQ(call("POST", "/worlds/alpha/state", kOperator, R"({"state":"Paused"})").status, 200);
  EXPECT_EQ(call("POST", "/worlds/alpha/apply", kOperator, R"({"run_id":"alpha-1"})").status, 409);
  EXPECT_NE(
      call("GET", "/metrics", kViewer).body.find("qmtl_apply_failures_total{world=\"alpha\"} 1"),
      std::string::npos);
}

}  // namespace
}  // namespace qmtl
