#include "qmtl/core/http_client.h"

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <optional>

namespace qmtl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

using Target = ServerAddress;

}  // namespace

Result<WebUrl> parse_web_url(std::string_view url) {
  auto u = boost::urls::parse_absolute_uri(url);
  if (!u || (u->scheme() != "http" && u->scheme() != "https")) {
    return make_error(ErrorCode::kInvalidArgument,
                      "expected an http:// or https:// URL, e.g. https://hooks.example.com/T0/x");
  }
  WebUrl w{.scheme = std::string(u->scheme()), .host = std::string(u->host_address())};
  if (w.host.empty()) return make_error(ErrorCode::kInvalidArgument, "the URL has no host");
  w.port = u->has_port() ? std::string(u->port()) : (w.scheme == "https" ? "443" : "80");
  return w;
}

Result<ServerAddress> parse_server_url(std::string_view base_url) {
  auto u = boost::urls::parse_absolute_uri(base_url);
  if (!u) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("invalid server URL '{}'; expected e.g. http://127.0.0.1:8080", base_url));
  }
  if (u->scheme() != "http") {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("server URL '{}' must use http:// (put a TLS proxy in front "
                                  "for https)",
                                  base_url));
  }
  Target t;
  t.host = std::string(u->host_address());
  if (t.host.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("server URL '{}' has no host", base_url));
  }
  t.port = u->has_port() ? std::string(u->port()) : "80";
  t.path_prefix = std::string(u->encoded_path());
  while (!t.path_prefix.empty() && t.path_prefix.back() == '/') t.path_prefix.pop_back();
  return t;
}

namespace {

asio::awaitable<Result<HttpReply>> exchange(const Target& t, const HttpCall& call,
                                            std::string url_for_errors) {
  auto executor = co_await asio::this_coro::executor;
  auto unreachable = [&](const beast::error_code& ec) {
    const std::string why = ec == beast::error::timeout ? "no answer in time" : ec.message();
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("cannot reach the qmtl server at {}: {}", url_for_errors, why));
  };
  tcp::resolver resolver(executor);
  beast::tcp_stream stream(executor);
  stream.expires_after(call.timeout);
  auto [rec, endpoints] = co_await resolver.async_resolve(t.host, t.port, kTuple);
  if (rec) co_return unreachable(rec);
  auto [cec, ep] = co_await stream.async_connect(endpoints, kTuple);
  (void)ep;
  if (cec) co_return unreachable(cec);

  std::string target = t.path_prefix + call.path;
  if (target.empty()) target = "/";
  http::request<http::string_body> req{http::string_to_verb(call.method), target, 11};
  req.set(http::field::host, t.host);
  req.set(http::field::user_agent, "qmtl-cli");
  req.set(http::field::accept, "application/json, application/problem+json");
  if (!call.bearer_token.empty())
    req.set(http::field::authorization, "Bearer " + call.bearer_token);
  for (const auto& [k, v] : call.headers) req.set(k, v);
  if (!call.body.empty() || call.method == "POST" || call.method == "PUT") {
    req.set(http::field::content_type, call.content_type);
    req.body() = call.body;
  }
  req.keep_alive(false);
  req.prepare_payload();
  auto [wec, wn] = co_await http::async_write(stream, req, kTuple);
  (void)wn;
  if (wec) co_return unreachable(wec);

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(size_t{64} * 1024 * 1024);
  auto [hec, hn] = co_await http::async_read(stream, buffer, parser, kTuple);
  (void)hn;
  if (hec) co_return unreachable(hec);
  auto& res = parser.get();
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  HttpReply reply{.status = static_cast<int>(res.result_int()),
                  .content_type = std::string(res[http::field::content_type]),
                  .body = std::move(res.body())};
  for (const auto& f : res) reply.headers.emplace_back(f.name_string(), f.value());
  co_return reply;
}

}  // namespace

std::string HttpReply::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return v;
  }
  return "";
}

Result<HttpReply> http_request(std::string_view base_url, const HttpCall& call) {
  auto target = parse_server_url(base_url);
  if (!target) return propagate(target);
  if (http::string_to_verb(call.method) == http::verb::unknown) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("unknown HTTP method '{}'", call.method));
  }
  asio::io_context io;
  std::optional<Result<HttpReply>> out;
  asio::co_spawn(io, exchange(*target, call, std::string(base_url)),
                 [&out](const std::exception_ptr& e, Result<HttpReply> r) {
                   if (e) std::rethrow_exception(e);
                   out = std::move(r);
                 });
  io.run();
  return std::move(*out);
}

}  // namespace qmtl
