// A small blocking HTTP/1.1 client: how the CLI and the runner reach the server, and
// how the server reaches webhooks.
//
// One request per call, on a fresh connection, with a deadline covering connect,
// write and read. Only http:// URLs are supported.
//
// Thread safety: calls are independent and may run concurrently.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qmtl/core/result.h"

namespace qmtl {

struct HttpReply {
  int status = 0;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // every response header

  // The first header called `name` (case-insensitive), or "".
  std::string header(std::string_view name) const;
};

struct HttpCall {
  std::string method = "GET";
  std::string path = "/";  // appended to the base URL's path
  std::string body;
  std::string content_type = "application/json";
  std::string bearer_token;                                  // sent as Authorization when non-empty
  std::vector<std::pair<std::string, std::string>> headers;  // extra request headers
  std::chrono::milliseconds timeout{10'000};
};

// A server base URL taken apart: only http:// is supported.
struct ServerAddress {
  std::string host;
  std::string port;
  std::string path_prefix;  // without a trailing slash
};
// kInvalidArgument for a malformed URL or another scheme, saying what to write.
Result<ServerAddress> parse_server_url(std::string_view base_url);

// An outbound URL for libcurl (alert webhooks): http:// or https://, a host,
// the port (default 80 or 443). kInvalidArgument for anything else, saying
// what to write. The path is not kept: it may be a secret (a Slack webhook's).
struct WebUrl {
  std::string scheme;  // "http" or "https"
  std::string host;
  std::string port;
};
Result<WebUrl> parse_web_url(std::string_view url);

// Sends `call` to the server at `base_url` (e.g. "http://127.0.0.1:8080").
// Any HTTP status is a successful reply. Errors: kInvalidArgument for a bad URL;
// kUnavailable when the server cannot be reached or does not answer in time,
// naming the URL that was tried.
Result<HttpReply> http_request(std::string_view base_url, const HttpCall& call);

}  // namespace qmtl
