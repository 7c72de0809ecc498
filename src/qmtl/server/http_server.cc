#include "qmtl/server/http_server.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
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
constexpr size_t kReplayPage = 1000;

namespace {

// One client connection. Shared by its session coroutine and the server's
// registry, so that shutdown can cancel an idle read on it safely (on its strand).
// Touched only on the connection's own I/O thread.
struct Conn {
  explicit Conn(tcp::socket s)
      : stream(std::move(s)),
        watchdog(stream.get_executor()),
        last_activity(std::chrono::steady_clock::now()) {}
  void touch() { last_activity = std::chrono::steady_clock::now(); }

  beast::tcp_stream stream;     // no per-operation timers: the watchdog handles timeouts
  asio::steady_timer watchdog;  // closes the connection after idle_timeout without progress
  std::chrono::steady_clock::time_point last_activity;
  bool busy = false;  // a request is being handled
  bool done = false;  // the session has ended
};

// Wakes an event-stream session: cancelling its timer ends the wait.
struct Waker {
  explicit Waker(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
};

// The response head as bytes; the body is written beside it in the same call.
// (Beast's serializer walks a buffer sequence per field; for the small answers
// that dominate, one string is measurably cheaper.) Header values come from the
// Api, never from the request, so they hold no CR or LF.
std::string serialize_head(const ApiResponse& r, unsigned version, bool keep_alive) {
  std::string out;
  out.reserve(192);
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(r.status);
  out += ' ';
  out += http::obsolete_reason(static_cast<http::status>(r.status));
  out += "\r\nServer: qmtl\r\n";
  if (r.status != 304) {
    out += "Content-Type: ";
    out += r.content_type;
    out += "\r\nContent-Length: ";
    out += std::to_string(r.payload().size());
    out += "\r\n";
  }
  for (const auto& [k, v] : r.headers) {
    out += k;
    out += ": ";
    out += v;
    out += "\r\n";
  }
  if (version == 10 && keep_alive) out += "Connection: keep-alive\r\n";
  if (version != 10 && !keep_alive) out += "Connection: close\r\n";
  out += "\r\n";
  return out;
}

// The access log: one line per request, to stderr, written in batches. A write
// per line would cost a system call per request (a fifth of the throughput of
// cheap requests); lines are instead buffered and flushed when 32 KiB have
// gathered, every 200 ms, and at shutdown, so at most 200 ms of lines are lost
// if the process is killed.
class AccessLog {
 public:
  void line(std::string_view method, std::string_view route, int status, double seconds) {
    const auto now =
        std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    const auto sec = std::chrono::floor<std::chrono::seconds>(now);
    // Formatting a date costs more than the rest of the line; it changes once a second.
    thread_local std::chrono::sys_seconds cached_sec{};
    thread_local std::string cached_text;
    if (sec != cached_sec) {
      cached_sec = sec;
      cached_text = fmt::format("{:%Y-%m-%d %H:%M:%S}", sec);
    }
    std::string l = fmt::format("[{}.{:03}] [access] {} {} {} {:.0f}us\n", cached_text,
                                (now - sec).count(), method, route, status, seconds * 1e6);
    std::lock_guard lock(mu_);
    buffer_ += l;
    if (buffer_.size() >= size_t{32} * 1024) flush_locked();
  }
  void flush() {
    std::lock_guard lock(mu_);
    flush_locked();
  }

 private:
  void flush_locked() {
    if (buffer_.empty()) return;
    std::fwrite(buffer_.data(), 1, buffer_.size(), stderr);
    std::fflush(stderr);
    buffer_.clear();
  }
  std::mutex mu_;
  std::string buffer_;
};

}  // namespace

struct HttpServer::Impl {
  Impl(const ServerOptions& o, Api& a) : options(o), api(a), pool(o.worker_threads) {
    // One single-threaded io_context per I/O thread: a connection lives on one
    // of them, so its coroutine, timers and wake-ups never race and need no
    // strand, and the contexts share no locks.
    for (unsigned i = 0; i < o.io_threads; ++i)
      ios.push_back(std::make_unique<asio::io_context>(1));
    acceptor = std::make_unique<tcp::acceptor>(*ios[0]);
    accept_pause = std::make_unique<asio::steady_timer>(*ios[0]);
    signals = std::make_unique<asio::signal_set>(*ios[0]);
  }

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(std::shared_ptr<Conn> conn);
  asio::awaitable<void> watch(std::shared_ptr<Conn> conn);
  void flush_access_log_periodically();
  asio::awaitable<void> event_stream(std::shared_ptr<Conn> conn, EventStreamRequest req,
                                     unsigned version);
  template <typename R, typename F>
  asio::awaitable<R> blocking(F f);
  void begin_shutdown();
  void finish_shutdown_when_idle(std::chrono::steady_clock::time_point deadline);

  ServerOptions options;
  Api& api;
  std::vector<std::unique_ptr<asio::io_context>> ios;  // ios[0] also accepts and takes signals
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<asio::steady_timer> accept_pause;  // while accept fails for lack of resources
  std::unique_ptr<asio::signal_set> signals;
  size_t next_io = 0;
  asio::thread_pool pool;
  std::atomic<bool> stopping{false};
  std::mutex conns_mu;
  std::set<std::shared_ptr<Conn>> conns;
  std::unique_ptr<asio::steady_timer> shutdown_timer;
  AccessLog access_log;
  std::unique_ptr<asio::steady_timer> access_log_timer;
};

void HttpServer::Impl::flush_access_log_periodically() {
  access_log.flush();
  if (stopping) return;
  access_log_timer->expires_after(std::chrono::milliseconds(200));
  access_log_timer->async_wait([this](const boost::system::error_code& ec) {
    if (!ec) flush_access_log_periodically();
  });
}

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
  if (auto [ec, n] = co_await http::async_write_header(stream, sr, kTuple); ec) co_return;
  conn->touch();

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
    auto last = co_await blocking<Result<int64_t>>(
        [this, &req] { return api.events().last_id(req.world); });
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
      auto [ec, n] = co_await asio::async_write(stream, asio::buffer(out), kTuple);
      out.clear();
      if (ec) break;
      conn->touch();
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
    conn->busy = false;
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, kTuple);
    conn->busy = true;
    conn->touch();
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
                         .last_event_id = std::string(req["Last-Event-ID"]),
                         .cookie = std::string(req[http::field::cookie]),
                         .console = std::string(req["X-QMTL-Console"])};
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
    if (options.access_log) access_log.line(method, resp.route, resp.status, secs);
    if (resp.stream && resp.status == 200) {
      co_await event_stream(conn, std::move(*resp.stream), version);
      break;
    }
    const std::string head = serialize_head(resp, version, keep_alive);
    const std::array<asio::const_buffer, 2> bytes{
        asio::buffer(head), asio::buffer(resp.status == 304 ? std::string_view() : resp.payload())};
    auto [wec, wn] = co_await asio::async_write(stream, bytes, kTuple);
    conn->touch();
    if (!wec && resp.status == 413) {
      // The client may still be sending the body it was refused. Closing now
      // would reset the connection and lose the answer, so read and drop the
      // rest for a little while (bounded in time and bytes) before closing.
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      std::vector<char> scratch(size_t{64} * 1024);
      for (size_t dropped = 0;
           dropped < 8 * options.max_body_bytes && std::chrono::steady_clock::now() < until;) {
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
  conn->done = true;
  conn->watchdog.cancel();
  std::lock_guard lock(conns_mu);
  conns.erase(conn);
  api.metrics().connections_open(conns.size());
}

asio::awaitable<void> HttpServer::Impl::watch(std::shared_ptr<Conn> conn) {
  // One timer per connection that wakes a few times per timeout, instead of a
  // timer armed and cancelled around every read and write.
  const auto period = std::clamp<std::chrono::steady_clock::duration>(
      options.idle_timeout / 4, std::chrono::milliseconds(100), std::chrono::seconds(5));
  while (!conn->done) {
    conn->watchdog.expires_after(period);
    co_await conn->watchdog.async_wait(kTuple);
    if (conn->done) break;
    if (std::chrono::steady_clock::now() - conn->last_activity > options.idle_timeout) {
      conn->stream.cancel();  // the session sees operation_aborted and ends
      break;
    }
  }
}

// A connection over --max-connections: its request is read (so that closing
// does not reset the connection and lose the answer) and answered 503.
asio::awaitable<void> refuse_connection(tcp::socket socket, size_t limit) {
  asio::steady_timer timer(socket.get_executor(), std::chrono::seconds(2));
  timer.async_wait([&socket](const boost::system::error_code& ec) {
    if (!ec) socket.cancel();
  });
  std::array<char, 8192> head{};
  co_await socket.async_read_some(asio::buffer(head), kTuple);
  const std::string body = fmt::format(
      R"({{"type":"urn:qmtl:error:unavailable","title":"Service Unavailable","status":503,)"
      R"("detail":"the server has {} connections open, its limit (qmtl serve --max-connections); )"
      R"(retry shortly"}})",
      limit);
  const std::string reply = fmt::format(
      "HTTP/1.1 503 Service Unavailable\r\nServer: qmtl\r\nContent-Type: "
      "application/problem+json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: "
      "{}\r\n\r\n{}",
      body.size(), body);
  co_await asio::async_write(socket, asio::buffer(reply), kTuple);
  timer.cancel();
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  socket.close(ignored);
}

asio::awaitable<void> HttpServer::Impl::accept_loop() {
  // Out of file descriptors (EMFILE, ENFILE) or memory, accept fails at once
  // for as long as no connection closes: retrying at once spun a core and
  // wrote a quarter of a million log lines a second. Pause, doubling up to 1 s;
  // log once per 10 s with a count; connections already open go on meanwhile.
  std::chrono::milliseconds backoff{0};
  uint64_t failures = 0, logged = 0;
  auto last_log = std::chrono::steady_clock::time_point{};
  for (;;) {
    auto& target = *ios[next_io++ % ios.size()];
    auto [ec, socket] = co_await acceptor->async_accept(target, kTuple);
    if (ec == asio::error::operation_aborted || !acceptor->is_open() || stopping) co_return;
    if (ec) {
      ++failures;
      api.metrics().accept_failed();
      const auto now = std::chrono::steady_clock::now();
      if (logged == 0) {
        spdlog::error(
            "cannot accept connections: {}; pausing accepts (up to 1s at a time) while open "
            "connections go on: raise the file limit (ulimit -n, LimitNOFILE) or lower "
            "--max-connections",
            ec.message());
        last_log = now;
        logged = failures;
      } else if (now - last_log >= std::chrono::seconds(10)) {
        spdlog::error("still cannot accept connections: {} ({} failed accepts in the last {}s)",
                      ec.message(), failures - logged,
                      std::chrono::duration_cast<std::chrono::seconds>(now - last_log).count());
        last_log = now;
        logged = failures;
      }
      backoff =
          std::clamp(backoff * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
      accept_pause->expires_after(backoff);
      co_await accept_pause->async_wait(kTuple);
      if (stopping) co_return;
      continue;
    }
    if (backoff.count() > 0) {
      spdlog::info("accepting connections again after {} failed accepts", failures);
      backoff = std::chrono::milliseconds(0);
      failures = logged = 0;
      last_log = {};
    }
    size_t open = 0;
    {
      std::lock_guard lock(conns_mu);
      open = conns.size();
    }
    if (open >= options.max_connections) {
      api.metrics().connection_refused();
      const auto ex = socket.get_executor();
      asio::co_spawn(ex, refuse_connection(std::move(socket), options.max_connections),
                     asio::detached);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto conn = std::make_shared<Conn>(std::move(socket));
    {
      std::lock_guard lock(conns_mu);
      conns.insert(conn);
      api.metrics().connections_open(conns.size());
    }
    asio::co_spawn(conn->stream.get_executor(), session(conn), asio::detached);
    asio::co_spawn(conn->stream.get_executor(), watch(conn), asio::detached);
  }
}

void HttpServer::Impl::begin_shutdown() {
  if (options.on_shutdown) options.on_shutdown();
  boost::system::error_code ignored;
  acceptor->close(ignored);
  accept_pause->cancel();
  signals->cancel(ignored);
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
    access_log.flush();
    for (auto& c : ios) c->stop();
    return;
  }
  shutdown_timer = std::make_unique<asio::steady_timer>(*ios[0], std::chrono::milliseconds(20));
  shutdown_timer->async_wait(
      [this, deadline](const boost::system::error_code&) { finish_shutdown_when_idle(deadline); });
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  for (auto& c : impl_->ios) c->stop();
  impl_->pool.join();
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(const ServerOptions& options, Api& api) {
  if (options.io_threads == 0 || options.worker_threads == 0) {
    return make_error(ErrorCode::kInvalidArgument, "--io-threads and --threads must be at least 1");
  }
  if (options.max_connections == 0) {
    return make_error(ErrorCode::kInvalidArgument, "--max-connections must be at least 1");
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
  impl->acceptor->open(ep.protocol(), ec);
  if (!ec) impl->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor->bind(ep, ec);
  if (!ec) impl->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("cannot listen on {}:{}: {}; choose another --port",
                                  options.address, options.port, ec.message()));
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

size_t default_max_connections() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return 4096;
  return std::max<size_t>(16, static_cast<size_t>(r.rlim_cur) > 64 ? r.rlim_cur - 64 : 16);
}

uint16_t HttpServer::port() const { return impl_->acceptor->local_endpoint().port(); }

void HttpServer::run() {
  Impl& s = *impl_;
  if (s.options.handle_signals) {
    s.signals->add(SIGINT);
    s.signals->add(SIGTERM);
    s.signals->async_wait([this](const boost::system::error_code& ec, int sig) {
      if (!ec) {
        spdlog::info("received signal {}, shutting down", sig);
        stop();
      }
    });
  }
  asio::co_spawn(*s.ios[0], s.accept_loop(), asio::detached);
  if (s.options.access_log) {
    s.access_log_timer = std::make_unique<asio::steady_timer>(*s.ios[0]);
    s.flush_access_log_periodically();
  }
  // The other contexts have no work until a connection arrives: keep them running.
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::vector<std::thread> extra;
  for (size_t i = 1; i < s.ios.size(); ++i) {
    guards.push_back(asio::make_work_guard(*s.ios[i]));
    extra.emplace_back([&s, i] { s.ios[i]->run(); });
  }
  s.ios[0]->run();
  for (auto& c : s.ios) c->stop();
  for (auto& t : extra) t.join();
  s.access_log.flush();
}

void HttpServer::stop() {
  if (impl_->stopping.exchange(true)) return;
  asio::post(*impl_->ios[0], [s = impl_.get()] { s->begin_shutdown(); });
}

}  // namespace qmtl::server
