// GET /openapi.json against the route table: every route served is described
// (with a summary, its path parameters and its role), nothing else is, and
// the document is served without a token.
#include "qmtl/server/api.h"

#include <gtest/gtest.h>

#include <set>

#include "qmtl/core/json.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::server {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string openapi_path(std::string path) {
  if (auto at = path.find("{*}"); at != std::string::npos) path.replace(at, 3, "{asset}");
  return path;
}

TEST(ApiOpenApiTest, EveryRouteIsDescribedAndNothingElse) {
  const auto doc = Api::openapi();
  EXPECT_EQ(doc.at("openapi"), "3.1.0");
  const auto& paths = doc.at("paths").as_object();
  std::set<std::string> served;
  for (const auto& r : Api::route_infos()) {
    const std::string path = openapi_path(r.path);
    const std::string method = lower(r.method);
    served.insert(method + " " + path);
    const auto* item = paths.if_contains(path);
    ASSERT_NE(item, nullptr) << r.method << " " << r.path << " is not in /openapi.json";
    const auto* op = item->as_object().if_contains(method);
    ASSERT_NE(op, nullptr) << r.method << " " << r.path << " is not in /openapi.json";
    const auto& o = op->as_object();
    const auto summary = Api::route_summary(r.method + " " + r.path);
    ASSERT_TRUE(summary) << r.method << " " << r.path
                         << " has no summary: add it to kOperations in server/api_openapi.cc";
    EXPECT_EQ(o.at("summary").as_string(), *summary);
    EXPECT_FALSE(summary->empty());
    // Its role, or no security at all for a public route.
    if (r.role) {
      EXPECT_EQ(o.at("x-qmtl-role").as_string(), role_name(*r.role)) << r.path;
      EXPECT_FALSE(o.contains("security")) << r.path;
    } else {
      EXPECT_TRUE(o.at("security").as_array().empty()) << r.path;
    }
    // One path parameter per {name}.
    size_t braces = 0;
    for (char c : path) braces += c == '{' ? 1u : 0u;
    const auto* params = o.if_contains("parameters");
    EXPECT_EQ(params != nullptr ? params->as_array().size() : 0u, braces) << path;
    EXPECT_TRUE(o.at("responses").as_object().contains("default")) << path;
  }
  size_t described = 0;
  for (const auto& [path, item] : paths) {
    for (const auto& [method, op] : item.as_object()) {
      ++described;
      EXPECT_TRUE(served.contains(std::string(method) + " " + std::string(path)))
          << method << " " << std::string(path) << " is described but not served";
    }
  }
  EXPECT_EQ(described, served.size());
  EXPECT_GT(described, 50u);
}

TEST(ApiOpenApiTest, TheDocumentIsServedWithoutAToken) {
  testing::TempDir dir;
  auto store = std::move(*store::open_store(testing::fresh_store_url(dir, "openapi.db")));
  FakeClock clock(*parse_timestamp("2026-02-01T00:00:00Z"));
  world::WorldService worlds(*store, clock);
  const TokenTable tokens;
  Api api(worlds, clock, {.tokens = &tokens, .alerts = false});
  auto r = api.handle({.method = "GET", .target = "/openapi.json"});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, json::dump(Api::openapi()));
  // Other routes still need one.
  EXPECT_EQ(api.handle({.method = "GET", .target = "/worlds"}).status, 401);
}

}  // namespace
}  // namespace qmtl::server
