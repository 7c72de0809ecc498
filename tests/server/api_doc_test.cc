// docs/api.md and the server's route table must agree: a route the server
// serves but the document does not describe, or one the document describes
// but the server does not serve, fails here.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

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

TEST(ApiDocTest, TheCheckerSeesRoutesTheWayTheDocumentWritesThem) {
  const auto found = documented_routes(
      "`GET /strategies[?world=<id>]` and `GET /worlds/{id}/evaluations?limit=50` and "
      "`POST /strategies/{id}/activate` (operator) and `GETTER /x` and `GET`");
  EXPECT_EQ(found, (std::set<std::string>{"GET /strategies", "GET /worlds/{id}/evaluations",
                                          "POST /strategies/{id}/activate"}));
}

}  // namespace
}  // namespace qmtl::server
