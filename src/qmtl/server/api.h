// The HTTP/JSON API (SPEC §6) as a pure function from request to response.
//
// Api knows routes, JSON shapes and error mapping but nothing about sockets, so
// it can be tested directly; HttpServer carries requests to it.
//
// Thread safety: handle() may be called from several threads at once.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "qmtl/core/result.h"
#include "qmtl/world/world_service.h"

namespace qmtl::server {

struct ApiRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // origin-form: path and optional query, e.g. "/worlds?x=1"
  std::string content_type;
  std::string body;
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// The HTTP status for an error code: 400, 404, 409, 401, 403, 503 or 500.
int http_status(ErrorCode code);

// An RFC 9457 problem+json response. `detail` tells the caller what to fix.
ApiResponse problem(int status, std::string_view detail);
ApiResponse problem(const Error& error);

class Api {
 public:
  // `worlds` must outlive the Api.
  explicit Api(world::WorldService& worlds) : worlds_(worlds) {}

  // Routes `req`. Never throws for bad input: every failure is a problem response.
  ApiResponse handle(const ApiRequest& req) const;

 private:
  ApiResponse create_world(const ApiRequest& req) const;
  ApiResponse list_worlds() const;
  ApiResponse get_world(std::string_view id) const;

  world::WorldService& worlds_;
};

}  // namespace qmtl::server
