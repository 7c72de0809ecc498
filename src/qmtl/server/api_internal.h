// Helpers shared by the API's handler files. Internal to the server part.
#pragma once

#include <fmt/format.h>

#include <boost/json.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "qmtl/core/json.h"
#include "qmtl/server/api.h"
#include "qmtl/server/shapes.h"

namespace qmtl::server {

using Query = std::map<std::string, std::string, std::less<>>;

// One request on its way through the router.
struct Api::Call {
  std::vector<std::string> segs;  // decoded path segments
  Query query;
  std::string route;             // the matched template
  const Route* entry = nullptr;  // the matched route
  Principal principal;
  bool by_cookie = false;  // signed in through the console's session cookie
  // The strategy of the path, read by authorize() for kStrategyWorld routes.
  std::optional<store::Strategy> strategy;
};

inline ApiResponse json_response(int status, const boost::json::value& v) {
  return ApiResponse{.status = status, .content_type = "application/json", .body = json::dump(v)};
}

// The request body as a JSON object whose keys are all in `allowed`. An empty
// body counts as {} when `empty_ok`. (Api::dispatch has already refused a
// Content-Type other than JSON.)
Result<boost::json::object> body_object(const ApiRequest& req,
                                        std::initializer_list<std::string_view> allowed,
                                        std::string_view what, bool empty_ok = false);

// A query parameter as a whole number in [lo, hi], or `fallback` when absent.
Result<int64_t> query_int(const Query& query, std::string_view name, int64_t fallback, int64_t lo,
                          int64_t hi);

}  // namespace qmtl::server
