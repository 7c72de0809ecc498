#include "qmtl/server/api.h"

#include <fmt/format.h>

#include <boost/url/parse.hpp>

#include "qmtl/core/json.h"

namespace qmtl::server {
namespace {

std::string_view status_title(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 503:
      return "Service Unavailable";
    default:
      return status >= 500 ? "Internal Server Error" : "Error";
  }
}

boost::json::value world_json(const world::World& w) {
  boost::json::object o;
  o["id"] = w.id;
  o["name"] = w.name;
  o["state"] = lifecycle::world_state_name(w.state);
  if (w.policy_version) {
    o["policy_version"] = *w.policy_version;
  } else {
    o["policy_version"] = nullptr;
  }
  o["created_at"] = format_timestamp(w.created_at);
  o["updated_at"] = format_timestamp(w.updated_at);
  return o;
}

ApiResponse json_response(int status, const boost::json::value& v) {
  return ApiResponse{.status = status, .content_type = "application/json", .body = json::dump(v)};
}

ApiResponse method_not_allowed(std::string_view method, std::string_view path,
                               std::string_view allow) {
  ApiResponse r = problem(405, fmt::format("{} is not allowed on {}; use {}", method, path, allow));
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

bool is_json_content_type(std::string_view ct) {
  const auto semi = ct.find(';');
  std::string_view base = ct.substr(0, semi);
  while (!base.empty() && base.back() == ' ') base.remove_suffix(1);
  return base.empty() || base == "application/json";
}

}  // namespace

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kFailedPrecondition:
      return 409;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

namespace {

ApiResponse problem_response(int status, std::string_view type, std::string_view detail) {
  boost::json::object o;
  o["type"] = type;
  o["title"] = status_title(status);
  o["status"] = status;
  o["detail"] = detail;
  return ApiResponse{
      .status = status, .content_type = "application/problem+json", .body = json::dump(o)};
}

}  // namespace

ApiResponse problem(int status, std::string_view detail) {
  return problem_response(status, "about:blank", detail);
}

ApiResponse problem(const Error& error) {
  return problem_response(http_status(error.code),
                          fmt::format("urn:qmtl:problem:{}", error_code_name(error.code)),
                          error.message);
}

ApiResponse Api::handle(const ApiRequest& req) const {
  auto url = boost::urls::parse_origin_form(req.target);
  if (!url) return problem(400, fmt::format("malformed request target '{}'", req.target));
  std::vector<std::string> segs;
  for (auto seg : url->segments()) segs.emplace_back(seg);
  // A trailing slash ("/worlds/") yields an empty last segment; treat it as absent.
  if (!segs.empty() && segs.back().empty()) segs.pop_back();
  const std::string path(url->path());
  const std::string& m = req.method;

  if (segs.size() == 1 && segs[0] == "healthz") {
    if (m != "GET") return method_not_allowed(m, path, "GET");
    return json_response(200, boost::json::object{{"status", "ok"}});
  }
  if (segs.size() == 1 && segs[0] == "worlds") {
    if (m == "GET") return list_worlds();
    if (m == "POST") return create_world(req);
    return method_not_allowed(m, path, "GET, POST");
  }
  if (segs.size() == 2 && segs[0] == "worlds") {
    if (m != "GET") return method_not_allowed(m, path, "GET");
    return get_world(segs[1]);
  }
  return problem(404, fmt::format("no route for {} {}; see docs/api.md for the routes", m, path));
}

ApiResponse Api::create_world(const ApiRequest& req) const {
  if (!is_json_content_type(req.content_type)) {
    return problem(415, fmt::format("Content-Type '{}' is not supported; send application/json",
                                    req.content_type));
  }
  auto doc = json::parse(req.body);
  if (!doc) return problem(doc.error());
  auto obj = json::as_object(*doc, "the request body");
  if (!obj) return problem(obj.error());
  if (auto r = json::check_keys(**obj, {"id", "name", "policy"}, "the world"); !r) {
    return problem(r.error());
  }
  if ((*obj)->contains("policy")) {
    return problem(
        400, "field 'policy' is not supported by this server yet; create the world without it");
  }
  auto id = json::get_string(**obj, "id");
  if (!id) return problem(id.error());
  auto name = json::get_optional_string(**obj, "name");
  if (!name) return problem(name.error());
  auto w = worlds_.create_world({.id = *id, .name = *name});
  if (!w) return problem(w.error());
  ApiResponse r = json_response(201, world_json(*w));
  r.headers.emplace_back("Location", "/worlds/" + w->id);
  return r;
}

ApiResponse Api::list_worlds() const {
  auto ws = worlds_.list_worlds();
  if (!ws) return problem(ws.error());
  boost::json::array arr;
  for (const auto& w : *ws) arr.push_back(world_json(w));
  return json_response(200, boost::json::object{{"worlds", std::move(arr)}});
}

ApiResponse Api::get_world(std::string_view id) const {
  auto w = worlds_.get_world(id);
  if (!w) return problem(w.error());
  return json_response(200, world_json(*w));
}

}  // namespace qmtl::server
