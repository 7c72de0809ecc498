#include "qmtl/server/http_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <exception>
#include <utility>

namespace qmtl::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

struct HttpServer::Impl {
  Impl(const ServerOptions& o, const Api& a)
      : options(o), api(a), acceptor(io), signals(io), pool(o.worker_threads) {}

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(tcp::socket socket);
  asio::awaitable<ApiResponse> dispatch(ApiRequest req);

  ServerOptions options;
  const Api& api;
  asio::io_context io;
  tcp::acceptor acceptor;
  asio::signal_set signals;
  asio::thread_pool pool;
  std::atomic<bool> stopped{false};
};

namespace {

http::response<http::string_body> to_beast(const ApiResponse& r, unsigned version,
                                           bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "qmtl");
  res.set(http::field::content_type, r.content_type);
  for (const auto& [k, v] : r.headers) res.set(k, v);
  res.body() = r.body;
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

}  // namespace

asio::awaitable<ApiResponse> HttpServer::Impl::dispatch(ApiRequest req) {
  // Run the blocking handler on the worker pool and resume this coroutine on its
  // own executor with the result. (Plain lambdas, not coroutine lambdas: GCC 12
  // miscompiles lambda coroutines with captures.) `req` lives in this frame,
  // which stays suspended until the handler has finished with it.
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(ApiResponse)>(
      [this, &req](auto handler) {
        asio::post(pool, [this, &req, handler = std::move(handler)]() mutable {
          ApiResponse resp;
          try {
            resp = api.handle(req);
          } catch (const std::exception& e) {
            spdlog::error("unhandled exception in {} {}: {}", req.method, req.target, e.what());
            resp = problem(500, "internal error; the server log has the details");
          }
          auto ex = asio::get_associated_executor(handler);
          asio::post(ex, [h = std::move(handler), r = std::move(resp)]() mutable {
            std::move(h)(std::move(r));
          });
        });
      },
      asio::use_awaitable);
}

asio::awaitable<void> HttpServer::Impl::session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(options.max_body_bytes);
    parser.header_limit(64 * 1024);
    stream.expires_after(options.idle_timeout);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, kTuple);
    (void)n;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      break;
    }
    ApiResponse resp;
    bool keep_alive = false;
    unsigned version = 11;
    if (ec == http::error::body_limit) {
      resp = problem(413, fmt::format("request body exceeds {} bytes; send a smaller document",
                                      options.max_body_bytes));
    } else if (ec) {
      resp = problem(400, fmt::format("malformed HTTP request: {}", ec.message()));
    } else {
      auto& req = parser.get();
      version = req.version();
      keep_alive = req.keep_alive();
      const auto start = std::chrono::steady_clock::now();
      ApiRequest api_req{.method = std::string(req.method_string()),
                         .target = std::string(req.target()),
                         .content_type = std::string(req[http::field::content_type]),
                         .body = std::move(req.body())};
      std::string method = api_req.method, target = api_req.target;
      resp = co_await dispatch(std::move(api_req));
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
      spdlog::info("{} {} -> {} ({} us)", method, target, resp.status, us);
    }
    auto res = to_beast(resp, version, keep_alive);
    stream.expires_after(options.idle_timeout);
    auto [wec, wn] = co_await http::async_write(stream, res, kTuple);
    (void)wn;
    if (wec || !keep_alive) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> HttpServer::Impl::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kTuple);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      spdlog::warn("accept failed: {}", ec.message());
      continue;
    }
    asio::co_spawn(io, session(std::move(socket)), asio::detached);
  }
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  stop();
  impl_->pool.join();
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(const ServerOptions& options,
                                                      const Api& api) {
  auto impl = std::make_unique<Impl>(options, api);
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(options.address, ec);
  if (ec) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("invalid listen address '{}': {}",
                                                               options.address, ec.message()));
  }
  const tcp::endpoint ep(addr, options.port);
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("cannot listen on {}:{}: {}; choose another --port",
                                  options.address, options.port, ec.message()));
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

uint16_t HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

void HttpServer::run() {
  Impl& s = *impl_;
  if (s.options.handle_signals) {
    s.signals.add(SIGINT);
    s.signals.add(SIGTERM);
    s.signals.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (!ec) {
        spdlog::info("received signal {}, shutting down", sig);
        stop();
      }
    });
  }
  asio::co_spawn(s.io, s.accept_loop(), asio::detached);
  s.io.run();
}

void HttpServer::stop() {
  if (impl_->stopped.exchange(true)) return;
  asio::post(impl_->io, [s = impl_.get()] {
    boost::system::error_code ignored;
    s->acceptor.close(ignored);
    s->signals.cancel(ignored);
    s->io.stop();
  });
}

}  // namespace qmtl::server
