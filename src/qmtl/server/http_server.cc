#include "qmtl/server/http_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <exception>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace qmtl::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr auto kWriteTimeout = std::chrono::seconds(30);
constexpr size_t kReplayPage = 1000;

namespace {

// One client connection. Shared by its session coroutine and the server's
// registry, so that shutdown can cancel an idle read on it safely (on its strand).
struct Conn {
  explicit Conn(tcp::socket s) : stream(std::move(s)) {}
  beast::tcp_stream stream;
  bool busy = false;  // a request is being handled; touched only on the strand
};

// Wakes an event-stream session: cancelling its timer ends the wait.
struct Waker {
  explicit Waker(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
};

http::response<http::string_body> to_beast(const ApiResponse& r, unsigned version,
                                           bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "qmtl");
  if (r.status != 304) res.set(http::field::content_type, r.content_type);
  for (const auto& [k, v] : r.headers) res.set(k, v);
  res.body() = r.body;
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

}  // namespace

struct HttpServer::Impl {
  Impl(const ServerOptions& o, Api& a)
      : options(o), api(a), acceptor(io), signals(io), pool(o.worker_threads) {}

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(std::shared_ptr<Conn> conn);
  asio::awaitable<void> event_stream(std::shared_ptr<Conn> conn, EventStreamRequest req,
                                     unsigned version);
  template <typename R, typename F>
  asio::awaitable<R> blocking(F f);
  void begin_shutdown();
  void finish_shutdown_when_idle(std::chrono::steady_clock::time_point deadline);

  ServerOptions options;
  Api& api;
  asio::io_context io;
  tcp::acceptor acceptor;
  asio::signal_set signals;
  asio::thread_pool pool;
  std::atomic<bool> stopping{false};
  std::mutex conns_mu;
  std::set<std::shared_ptr<Conn>> conns;
  std::unique_ptr<asio::steady_timer> shutdown_timer;
};

// Runs `f` (which may block) on the worker pool and resumes the calling
// coroutine on its own executor with the result. Plain lambdas, not coroutine
// lambdas: GCC 12 miscompiles lambda coroutines with captures. `f` lives in this
// frame, which stays suspended until the pool has finished with it.
template <typename R, typename F>
asio::awaitable<R> HttpServer::Impl::blocking(F f) {
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(R)>(
      [this, &f](auto handler) {
        asio::post(pool, [&f, handler = std::move(handler)]() mutable {
          R r = f();
          auto ex = asio::get_associated_executor(handler);
          asio::post(ex, [h = std::move(handler), r = std::move(r)]() mutable {
            std::move(h)(std::move(r));
          });
        });
      },
      asio::use_awaitable);
}

asio::awaitable<void> HttpServer::Impl::event_stream(std::shared_ptr<Conn> conn,
                                                     EventStreamRequest req, unsigned version) {
  auto& stream = conn->stream;
  http::response<http::empty_body> head{http::status::ok, version};
  head.set(http::field::server, "qmtl");
  head.set(http::field::content_type, "text/event-stream");
  head.set(http::field::cache_control, "no-cache");
  head.set("X-Accel-Buffering", "no");  // proxies must not buffer the stream
  head.keep_alive(false);               // the body ends when the connection does
  http::response_serializer<http::empty_body> sr{head};
  stream.expires_after(kWriteTimeout);
  if (auto [ec, n] = co_await http::async_write_header(stream, sr, kTuple); ec) co_return;

  auto waker = std::make_shared<Waker>(co_await asio::this_coro::executor);
  std::weak_ptr<Waker> weak = waker;
  auto ex = co_await asio::this_coro::executor;
  auto wake = [weak, ex] {
    asio::post(ex, [weak] {
      if (auto w = weak.lock()) w->timer.cancel();
    });
  };
  EventHub& hub = api.events();
  // Subscribe before reading the replay and the snapshot, so nothing committed
  // in between is lost; duplicates are dropped by id below.
  int64_t cursor = 0;
  if (req.after_seq) {
    cursor = *req.after_seq;
  } else {
    auto last = co_await blocking<Result<int64_t>>([this, &req] {
      return api.events().snapshot(req.world, req.strategy).map([](auto e) { return e.id; });
    });
    if (!last) co_return;
    cursor = *last;
  }
  auto sub = hub.subscribe(req.world, cursor, req.strategy, wake);
  std::string out;
  int64_t last_sent = req.after_seq.value_or(0);
  if (req.after_seq) {
    for (;;) {
      auto page = co_await blocking<Result<std::vector<StreamEvent>>>([this, &req, last_sent] {
        return api.events().replay(req.world, last_sent, req.strategy, kReplayPage);
      });
      if (!page) break;
      for (const auto& e : *page) {
        out += format_sse(e);
        last_sent = e.id;
      }
      api.metrics().events_sent(page->size());
      if (page->size() < kReplayPage) break;
    }
  }
  auto snap = co_await blocking<Result<StreamEvent>>(
      [this, &req] { return api.events().snapshot(req.world, req.strategy); });
  if (snap) {
    snap->id = std::max(snap->id, last_sent);
    last_sent = snap->id;
    out += format_sse(*snap);
    api.metrics().events_sent(1);
  }
  while (!stopping && !sub->closed()) {
    for (auto& e : sub->take()) {
      if (e.id <= last_sent) continue;
      last_sent = e.id;
      out += format_sse(e);
      api.metrics().events_sent(1);
    }
    if (!out.empty()) {
      stream.expires_after(kWriteTimeout);
      auto [ec, n] = co_await asio::async_write(stream, asio::buffer(out), kTuple);
      out.clear();
      if (ec) break;
      continue;  // more may have arrived while writing
    }
    waker->timer.expires_after(options.heartbeat);
    auto [ec] = co_await waker->timer.async_wait(kTuple);
    if (!ec) out = format_sse(hub.heartbeat(api.clock().now(), last_sent));
  }
  hub.unsubscribe(sub);
}

asio::awaitable<void> HttpServer::Impl::session(std::shared_ptr<Conn> conn) {
  auto& stream = conn->stream;
  beast::flat_buffer buffer;
  for (;;) {
    if (stopping) break;
    http::request_parser<http::string_body> parser;
    parser.body_limit(options.max_body_bytes);
    parser.header_limit(64 * 1024);
    stream.expires_after(options.idle_timeout);
    conn->busy = false;
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, kTuple);
    conn->busy = true;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      break;
    }
    const auto start = std::chrono::steady_clock::now();
    ApiResponse resp;
    bool keep_alive = false;
    unsigned version = 11;
    std::string method = "-";
    if (ec == http::error::body_limit) {
      resp = problem(413, fmt::format("request body exceeds {} bytes; send a smaller document",
                                      options.max_body_bytes));
    } else if (ec) {
      resp = problem(400, fmt::format("malformed HTTP request: {}", ec.message()));
    } else {
      auto& req = parser.get();
      version = req.version();
      keep_alive = req.keep_alive() && !stopping;
      method = std::string(req.method_string());
      ApiRequest api_req{.method = method,
                         .target = std::string(req.target()),
                         .content_type = std::string(req[http::field::content_type]),
                         .body = std::move(req.body()),
                         .authorization = std::string(req[http::field::authorization]),
                         .if_match = std::string(req[http::field::if_match]),
                         .if_none_match = std::string(req[http::field::if_none_match]),
                         .idempotency_key = std::string(req["Idempotency-Key"]),
                         .last_event_id = std::string(req["Last-Event-ID"])};
      if (auto fast = api.try_handle_fast(api_req)) {
        resp = std::move(*fast);
      } else {
        resp = co_await blocking<ApiResponse>([this, &api_req] {
          try {
            return api.handle(api_req);
          } catch (const std::exception& e) {
            spdlog::error("unhandled exception in {} {}: {}", api_req.method, api_req.target,
                          e.what());
            return problem(500, "internal error; the server log has the details");
          }
        });
      }
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    api.metrics().request(method, resp.route, resp.status, secs);
    if (options.access_log) {
      spdlog::info("{} {} {} {:.0f}us", method, resp.route, resp.status, secs * 1e6);
    }
    if (resp.stream && resp.status == 200) {
      co_await event_stream(conn, std::move(*resp.stream), version);
      break;
    }
    auto res = to_beast(resp, version, keep_alive);
    stream.expires_after(kWriteTimeout);
    auto [wec, wn] = co_await http::async_write(stream, res, kTuple);
    if (!wec && resp.status == 413) {
      // The client may still be sending the body it was refused. Closing now
      // would reset the connection and lose the answer, so read and drop the
      // rest for a little while (bounded in time and bytes) before closing.
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      stream.expires_after(std::chrono::seconds(2));
      std::vector<char> scratch(64 * 1024);
      for (size_t dropped = 0; dropped < 8 * options.max_body_bytes;) {
        auto [rec, rn] = co_await stream.async_read_some(asio::buffer(scratch), kTuple);
        if (rec) break;
        dropped += rn;
      }
      break;
    }
    if (wec || !keep_alive) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  std::lock_guard lock(conns_mu);
  conns.erase(conn);
}

asio::awaitable<void> HttpServer::Impl::accept_loop() {
  for (;;) {
    // Each connection gets its own strand: its coroutine, timers and wake-ups
    // never run concurrently, whichever I/O thread picks them up.
    auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(io), kTuple);
    if (ec == asio::error::operation_aborted || !acceptor.is_open() || stopping) co_return;
    if (ec) {
      spdlog::warn("accept failed: {}", ec.message());
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto conn = std::make_shared<Conn>(std::move(socket));
    {
      std::lock_guard lock(conns_mu);
      conns.insert(conn);
    }
    asio::co_spawn(conn->stream.get_executor(), session(conn), asio::detached);
  }
}

void HttpServer::Impl::begin_shutdown() {
  boost::system::error_code ignored;
  acceptor.close(ignored);
  signals.cancel(ignored);
  api.events().close_all();
  std::vector<std::shared_ptr<Conn>> open;
  {
    std::lock_guard lock(conns_mu);
    open.assign(conns.begin(), conns.end());
  }
  for (auto& c : open) {
    // On the connection's strand: an idle read is cancelled; a busy one finishes
    // its response and then sees `stopping`.
    asio::post(c->stream.get_executor(), [c] {
      if (!c->busy) c->stream.cancel();
    });
  }
  finish_shutdown_when_idle(std::chrono::steady_clock::now() + options.shutdown_grace);
}

void HttpServer::Impl::finish_shutdown_when_idle(std::chrono::steady_clock::time_point deadline) {
  size_t left = 0;
  {
    std::lock_guard lock(conns_mu);
    left = conns.size();
  }
  if (left == 0 || std::chrono::steady_clock::now() >= deadline) {
    if (left > 0) spdlog::warn("shutdown: closing {} connections still busy", left);
    io.stop();
    return;
  }
  shutdown_timer = std::make_unique<asio::steady_timer>(io, std::chrono::milliseconds(20));
  shutdown_timer->async_wait(
      [this, deadline](const boost::system::error_code&) { finish_shutdown_when_idle(deadline); });
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  impl_->io.stop();
  impl_->pool.join();
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(const ServerOptions& options, Api& api) {
  if (options.io_threads == 0 || options.worker_threads == 0) {
    return make_error(ErrorCode::kInvalidArgument, "--io-threads and --threads must be at least 1");
  }
  if (options.heartbeat.count() <= 0 ||
      options.heartbeat >= std::chrono::seconds(api.activation_ttl_s())) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("the event heartbeat ({} ms) must be positive and shorter than "
                                  "the activation TTL ({} s), or runners would see every "
                                  "decision go stale",
                                  options.heartbeat.count(), api.activation_ttl_s()));
  }
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
  std::vector<std::thread> extra;
  for (unsigned i = 1; i < s.options.io_threads; ++i) extra.emplace_back([&s] { s.io.run(); });
  s.io.run();
  for (auto& t : extra) t.join();
}

void HttpServer::stop() {
  if (impl_->stopping.exchange(true)) return;
  asio::post(impl_->io, [s = impl_.get()] { s->begin_shutdown(); });
}

}  // namespace qmtl::server
