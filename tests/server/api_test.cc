#include "qmtl/server/api.h"

#include <gtest/gtest.h>

#include "qmtl/core/json.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::server {
namespace {

class ApiTest : public ::testing::Test {
 protected:
  ApiTest()
      : store_(std::move(*store::open_store(testing::fresh_store_url(dir_, "api.db")))),
        clock_(*parse_timestamp("2026-02-01T00:00:00Z")),
        worlds_(*store_, clock_),
        api_(worlds_, clock_) {}

  ApiResponse call(std::string method, std::string target, std::string body = "",
                   std::string content_type = "application/json") {
    return api_.handle({.method = std::move(method),
                        .target = std::move(target),
                        .content_type = std::move(content_type),
                        .body = std::move(body)});
  }
  // The problem+json `detail` of a failed response (and checks its shape).
  std::string detail(const ApiResponse& r) {
    EXPECT_EQ(r.content_type, "application/problem+json");
    auto doc = json::parse(r.body);
    EXPECT_TRUE(doc);
    const auto& o = doc->get_object();
    EXPECT_EQ(o.at("status").as_int64(), r.status);
    EXPECT_TRUE(o.at("title").is_string());
    EXPECT_TRUE(o.at("type").is_string());
    return std::string(o.at("detail").as_string());
  }
  size_t world_count() {
    auto r = call("GET", "/worlds");
    return json::parse(r.body)->at("worlds").as_array().size();
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  FakeClock clock_;
  world::WorldService worlds_;
  Api api_;
};

TEST_F(ApiTest, CreateGetList) {
  auto created = call("POST", "/worlds", R"({"id":"demo","name":"Demo desk"})");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.body,
            R"({"id":"demo","name":"Demo desk","state":"Active","policy_version":null,)"
            R"("created_at":"2026-02-01T00:00:00Z","updated_at":"2026-02-01T00:00:00Z"})");
  ASSERT_EQ(created.headers.size(), 1u);
  EXPECT_EQ(created.headers[0], (std::pair<std::string, std::string>{"Location", "/worlds/demo"}));

  // Reads add the evidence lists show: the policy in brief, the last evaluation.
  const std::string with_evidence =
      created.body.substr(0, created.body.size() - 1) + R"(,"policy":null,"last_evaluation":null})";
  auto got = call("GET", "/worlds/demo");
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, with_evidence);
  EXPECT_EQ(call("GET", "/worlds/demo/").status, 200);

  auto list = call("GET", "/worlds?limit=10");
  EXPECT_EQ(list.status, 200);
  EXPECT_EQ(list.body, "{\"worlds\":[" + with_evidence + "]}");
}

TEST_F(ApiTest, Healthz) {
  auto r = call("GET", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"status":"ok","time":"2026-02-01T00:00:00Z","clock":"system"})");
}

TEST_F(ApiTest, BadInputIsA4xxProblemAndChangesNothing) {
  struct Case {
    std::string body;
    std::string content_type;
    int status;
    std::string detail_part;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"id":"Bad Id"})", "application/json", 400, "invalid world id 'Bad Id'"},
           {R"({"id":)", "application/json", 400, "malformed JSON"},
           {"", "application/json", 400, "malformed JSON"},
           {"[]", "application/json", 400, "must be a JSON object"},
           {R"({"name":"x"})", "application/json", 400, "field 'id' is required"},
           {R"({"id":42})", "application/json", 400, "field 'id' must be a string"},
           {R"({"id":"a","colour":"red"})", "application/json", 400, "unknown field 'colour'"},
           {R"({"id":"a","name":null})", "application/json", 400, "field 'name' must be a string"},
           {R"({"id":"a","policy":42})", "application/json", 400,
            "field 'policy' must be a policy document"},
           {R"({"id":"a","policy":"gates: {promote: 'sharpe >'}"})", "application/json", 400,
            "policy"},
           {R"({"id":"a"})", "text/plain", 415, "send application/json"},
       }) {
    auto r = call("POST", "/worlds", c.body, c.content_type);
    EXPECT_EQ(r.status, c.status) << c.body;
    EXPECT_NE(detail(r).find(c.detail_part), std::string::npos) << detail(r);
  }
  EXPECT_EQ(world_count(), 0u);
}

TEST_F(ApiTest, DuplicateIs409) {
  ASSERT_EQ(call("POST", "/worlds", R"({"id":"demo"})").status, 201);
  auto r = call("POST", "/worlds", R"({"id":"demo","name":"other"})");
  EXPECT_EQ(r.status, 409);
  EXPECT_NE(detail(r).find("already exists"), std::string::npos);
  EXPECT_NE(r.body.find("urn:qmtl:problem:already_exists"), std::string::npos);
  EXPECT_EQ(world_count(), 1u);
}

TEST_F(ApiTest, UnknownRoutesAndMethods) {
  auto r = call("GET", "/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(detail(r).find("no route for GET /nope"), std::string::npos);
  EXPECT_EQ(call("GET", "/worlds/demo/unknown/deep").status, 404);
  auto missing = call("GET", "/worlds/absent");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(detail(missing).find("world 'absent' does not exist"), std::string::npos);
  auto del = call("DELETE", "/worlds");
  EXPECT_EQ(del.status, 405);
  ASSERT_EQ(del.headers.size(), 1u);
  EXPECT_EQ(del.headers[0].second, "GET, POST");
  EXPECT_EQ(call("POST", "/healthz").status, 405);
  EXPECT_EQ(call("GET", "/worlds/Bad%20Id").status, 400);
}

}  // namespace
}  // namespace qmtl::server
