// The request and response values the API works on, independent of sockets.
//
// Thread safety: plain values.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qmtl/core/result.h"

namespace qmtl::server {

struct ApiRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // origin-form: path and optional query, e.g. "/worlds?x=1"
  std::string content_type;
  std::string body;
  std::string authorization;    // the Authorization header, as sent
  std::string if_match;         // If-Match
  std::string if_none_match;    // If-None-Match
  std::string idempotency_key;  // Idempotency-Key
  std::string last_event_id;    // Last-Event-ID (event streams)
  std::string cookie;           // Cookie (the console's session)
  std::string console;          // X-QMTL-Console: set by the console's own requests
};

// Asks the HTTP layer to turn the connection into a server-sent event stream of
// world `world` once the response head is written.
struct EventStreamRequest {
  std::string world;
  std::optional<int64_t> after_seq;  // Last-Event-ID: replay what came after it
  std::string strategy;              // only this strategy's events ("" = all)
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // When set, the body is this shared, immutable text instead of `body`: cached
  // answers are sent without copying them per request.
  std::shared_ptr<const std::string> shared_body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  // The body actually sent.
  const std::string& payload() const { return shared_body ? *shared_body : body; }
  // The route template that matched, e.g. "/worlds/{id}", for logs and metrics;
  // "unmatched" when none did.
  std::string route = "unmatched";
  std::optional<EventStreamRequest> stream;
};

// The HTTP status for an error code: 400, 404, 409, 412, 401, 403, 503 or 500.
int http_status(ErrorCode code);

// An RFC 9457 problem+json response. `detail` tells the caller what to fix.
ApiResponse problem(int status, std::string_view detail);
ApiResponse problem(const Error& error);

}  // namespace qmtl::server
