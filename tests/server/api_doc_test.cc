// docs/api.md and the server's route table must agree: a route the server
// serves but the document does not describe, or one the document describes
// but the server does not serve, fails here.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "qmtl/server/api.h"

namespace qmtl::server {
namespace {

std::string read_doc() {
  std::ifstream f(std::string(QMTL_SOURCE_DIR) + "/docs/api.md");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// "GET /worlds/{id}" from every code span that starts with a method and a path;
// a query ("?limit=50") or an optional part ("[?world=<id>]") is not part of it.
std::set<std::string> documented_routes(const std::string& doc) {
  std::set<std::string> out;
  static const std::regex span(R"(`(GET|POST|PUT|DELETE|PATCH) (/[^`\s\[?]*))");
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), span); it != std::sregex_iterator();
       ++it) {
    out.insert((*it)[1].str() + " " + (*it)[2].str());
  }
  return out;
}

TEST(ApiDocTest, EveryRouteIsDocumentedAndEveryDocumentedRouteIsServed) {
  const std::string doc = read_doc();
  ASSERT_FALSE(doc.empty()) << "docs/api.md is missing";
  const auto documented = documented_routes(doc);
  std::set<std::string> served;
  for (const auto& r : Api::route_names()) served.insert(r);
  ASSERT_GT(served.size(), 30u);
  for (const auto& r : served) {
    EXPECT_TRUE(documented.contains(r))
        << r << " is served but docs/api.md does not describe it (write it as `" << r << "`)";
  }
  for (const auto& r : documented) {
    EXPECT_TRUE(served.contains(r))
        << "docs/api.md describes " << r << ", which the server does not serve";
  }
}

// The role docs/api.md names right after each occurrence of the route
// ("`POST /worlds` (admin)", "(operator; admin for `Retired`)"), one per
// annotated occurrence.
std::vector<std::string> documented_roles(const std::string& doc, const std::string& route) {
  std::vector<std::string> out;
  static const std::regex span(
      R"(`(GET|POST|PUT|DELETE) (/[^`\s\[?]*)[^`]*`\s*\((viewer|operator|admin)\b)");
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), span); it != std::sregex_iterator();
       ++it) {
    if ((*it)[1].str() + " " + (*it)[2].str() == route) out.push_back((*it)[3].str());
  }
  return out;
}

TEST(ApiDocTest, EachRouteNeedsTheRoleTheDocumentNames) {
  const std::string doc = read_doc();
  ASSERT_FALSE(doc.empty()) << "docs/api.md is missing";
  for (const auto& r : Api::route_infos()) {
    const std::string name = r.method + " " + r.path;
    const auto roles = documented_roles(doc, name);
    if (!r.role) {
      EXPECT_TRUE(roles.empty()) << name << " needs no token, yet docs/api.md names a role";
      continue;
    }
    const std::string served(role_name(*r.role));
    if (roles.empty()) {
      // The document's rule: a viewer may read everything it does not mark.
      EXPECT_TRUE(r.method == "GET" && served == "viewer")
          << name << " needs " << served << "; write it in docs/api.md as `" << name << "` ("
          << served << ")";
    }
    for (const auto& role : roles) {
      EXPECT_EQ(role, served) << "docs/api.md says " << name << " needs " << role;
    }
  }
}

TEST(ApiDocTest, TheCheckerSeesRoutesTheWayTheDocumentWritesThem) {
  const auto found = documented_routes(
      "`GET /strategies[?world=<id>]` and `GET /worlds/{id}/evaluations?limit=50` and "
      "`POST /strategies/{id}/activate` (operator) and `GETTER /x` and `GET`");
  EXPECT_EQ(found, (std::set<std::string>{"GET /strategies", "GET /worlds/{id}/evaluations",
                                          "POST /strategies/{id}/activate"}));
  const std::string roles =
      "`POST /worlds/{id}/state` (operator; admin for `Retired`) and `GET /metrics` (viewer, "
      "all worlds) and `GET /worlds/{id}/audit?after=<seq>` (bad) and `POST /worlds/{id}/state` "
      "(admin)";
  EXPECT_EQ(documented_roles(roles, "POST /worlds/{id}/state"),
            (std::vector<std::string>{"operator", "admin"}));
  EXPECT_EQ(documented_roles(roles, "GET /metrics"), std::vector<std::string>{"viewer"});
  EXPECT_TRUE(documented_roles(roles, "GET /worlds/{id}/audit").empty());
}

}  // namespace
}  // namespace qmtl::server
