// Every route of the table against tokens of each role and a token limited to
// another world: what dispatch() checks before any handler runs.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "qmtl/core/json.h"
#include "qmtl/server/api.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::server {
namespace {

constexpr const char* kViewer = "viewer-secret-0123456789";
constexpr const char* kOperator = "operator-secret-0123456789";
constexpr const char* kAdmin = "admin-secret-0123456789";
constexpr const char* kBetaAdmin = "beta-admin-secret-0123456789";

TokenTable tokens() {
  auto t = TokenTable::parse(fmt::format("watcher viewer token:{}\n"
                                         "ops operator token:{}\n"
                                         "root admin token:{}\n"
                                         "beta-root admin token:{} worlds=beta\n",
                                         kViewer, kOperator, kAdmin, kBetaAdmin),
                             "tokens");
  EXPECT_TRUE(t) << t.error().message;
  return std::move(*t);
}

class ApiRoutesTest : public ::testing::Test {
 protected:
  ApiRoutesTest()
      : tokens_(tokens()),
        store_(std::move(*store::open_store(testing::fresh_store_url(dir_, "routes.db")))),
        clock_(*parse_timestamp("2026-02-01T00:00:00Z")),
        worlds_(*store_, clock_),
        api_(worlds_, clock_, {.tokens = &tokens_, .alerts = false}) {
    for (const char* w : {"alpha", "beta"}) {
      EXPECT_TRUE(worlds_.create_world({.id = w, .actor = "setup"}));
    }
    EXPECT_TRUE(worlds_.submit_strategy({.id = "s1", .world = "alpha", .spec = "{}"}));
  }

  ApiResponse call(const std::string& method, const std::string& target, const char* token,
                   std::string body = "") {
    if (body.empty() && (method == "POST" || method == "PUT")) body = "{}";
    return api_.handle({.method = method,
                        .target = target,
                        .content_type = "application/json",
                        .body = std::move(body),
                        .authorization = fmt::format("Bearer {}", token)});
  }
  static std::string detail(const ApiResponse& r) {
    auto doc = json::parse(r.body);
    return doc && doc->is_object() && doc->as_object().contains("detail")
               ? std::string(doc->at("detail").as_string())
               : r.body;
  }
  // The route's template with world alpha, strategy s1 and harmless other ids.
  static std::string target(const Api::RouteInfo& r) {
    std::string t = r.path;
    const std::string id = t.starts_with("/strategies/") ? "s1" : "alpha";
    for (const auto& [from, to] : {std::pair<std::string, std::string>{"{id}", id},
                                   {"{version}", "1"},
                                   {"{run}", "no-such-run"}}) {
      if (auto at = t.find(from); at != std::string::npos) t.replace(at, from.size(), to);
    }
    return t;
  }

  testing::TempDir dir_;
  TokenTable tokens_;
  std::unique_ptr<store::Store> store_;
  FakeClock clock_;
  world::WorldService worlds_;
  Api api_;
};

TEST_F(ApiRoutesTest, EveryRouteRefusesEachRoleBelowItsOwnBeforeTheHandlerRuns) {
  const std::vector<std::pair<Role, const char*>> ranks = {
      {Role::kViewer, kViewer}, {Role::kOperator, kOperator}, {Role::kAdmin, kAdmin}};
  const auto before = worlds_.get_strategy("s1");
  ASSERT_TRUE(before);
  const auto audit_before = worlds_.list_audit("alpha", 0, 10'000);
  ASSERT_TRUE(audit_before);
  size_t refused = 0;
  for (const auto& r : Api::route_infos()) {
    if (!r.role) continue;
    const std::string t = target(r);
    for (const auto& [role, token] : ranks) {
      if (role >= *r.role) continue;
      auto resp = call(r.method, t, token);
      EXPECT_EQ(resp.status, 403) << r.method << " " << t << ": " << resp.body;
      EXPECT_NE(detail(resp).find(fmt::format("this needs {} or higher", role_name(*r.role))),
                std::string::npos)
          << r.method << " " << t << ": " << detail(resp);
      ++refused;
    }
  }
  EXPECT_GT(refused, 30u);
  // Nothing a refused caller sent changed anything.
  auto s = worlds_.get_strategy("s1");
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, *before);
  auto w = worlds_.get_world("alpha");
  ASSERT_TRUE(w);
  EXPECT_FALSE(w->policy_version);
  EXPECT_EQ(worlds_.list_audit("alpha", 0, 10'000)->size(), audit_before->size());
  // The role itself gets past the check (the handler may still refuse the request).
  for (const auto& r : Api::route_infos()) {
    if (!r.role || r.method != "GET" || r.path.ends_with("/events")) continue;
    const char* token = ranks[static_cast<size_t>(*r.role)].second;
    auto resp = call(r.method, target(r), token);
    EXPECT_NE(resp.status, 403) << r.method << " " << r.path << ": " << resp.body;
    EXPECT_NE(resp.status, 401) << r.method << " " << r.path;
  }
}

TEST_F(ApiRoutesTest, RetiringAWorldNeedsAnAdminThoughOtherStateChangesNeedAnOperator) {
  auto retire = call("POST", "/worlds/beta/state", kOperator, R"({"state":"Retired"})");
  EXPECT_EQ(retire.status, 403);
  EXPECT_NE(detail(retire).find("this needs admin or higher"), std::string::npos);
  EXPECT_EQ(worlds_.get_world("beta")->state, lifecycle::WorldState::kActive);
  // A body that does not parse needs only the route's role, and then is a 400.
  EXPECT_EQ(call("POST", "/worlds/beta/state", kOperator, "{not json").status, 400);
  EXPECT_EQ(call("POST", "/worlds/beta/state", kOperator, R"({"state":"Paused"})").status, 200);
  EXPECT_EQ(call("POST", "/worlds/beta/state", kAdmin, R"({"state":"Retired"})").status, 200);
}

TEST_F(ApiRoutesTest, ATokenForOneWorldReachesNoOtherWorldThroughAnyRoute) {
  size_t refused = 0;
  for (const auto& r : Api::route_infos()) {
    if (!r.role || r.path.find("{id}") == std::string::npos) continue;
    auto resp = call(r.method, target(r), kBetaAdmin);
    EXPECT_EQ(resp.status, 403) << r.method << " " << r.path << ": " << resp.body;
    EXPECT_NE(detail(resp).find("may not access world 'alpha'"), std::string::npos)
        << r.method << " " << r.path << ": " << detail(resp);
    ++refused;
  }
  EXPECT_GT(refused, 30u);
  // Routes whose world is in the body or query, or that list worlds.
  for (const auto& [method, path, body] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"POST", "/worlds", R"({"id":"alpha"})"},
           {"POST", "/strategies", R"({"id":"s2","world":"alpha","spec":{}})"},
           {"GET", "/strategies?world=alpha", ""},
           {"GET", "/metrics", ""}}) {
    auto resp = call(method, path, kBetaAdmin, body);
    EXPECT_EQ(resp.status, 403) << method << " " << path << ": " << resp.body;
  }
  auto list = json::parse(call("GET", "/worlds", kBetaAdmin).body);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->at("worlds").as_array().size(), 1u);
  EXPECT_EQ(list->at("worlds").as_array()[0].at("id").as_string(), "beta");
  auto strategies = json::parse(call("GET", "/strategies", kBetaAdmin).body);
  ASSERT_TRUE(strategies);
  EXPECT_TRUE(strategies->at("strategies").as_array().empty());
  EXPECT_FALSE(worlds_.get_strategy("s2"));
}

TEST_F(ApiRoutesTest, AnUnknownStrategyIsA404OnlyForACallerWithTheRole) {
  EXPECT_EQ(call("POST", "/strategies/nope/promote", kViewer, R"({"reason":"x"})").status, 403);
  auto missing = call("POST", "/strategies/nope/promote", kOperator, R"({"reason":"x"})");
  EXPECT_EQ(missing.status, 404) << missing.body;
}

}  // namespace
}  // namespace qmtl::server
