// HttpServer: serves an Api over HTTP/1.1 with Boost.Beast.
//
// Sockets run on `io_threads` threads with C++20 coroutines, each thread with
// its own io_context; a connection stays on one of them. Requests the Api can answer from memory
// (health, cached activation reads) are answered on the socket's thread; every other request runs
// on a pool of `worker_threads`, because Api calls block on the database. Request bodies over
// `max_body_bytes` get 413; a connection that makes no progress (no request read, no response or
// event written) for `idle_timeout` is closed. GET /worlds/{id}/events becomes a server-sent event
// stream with a heartbeat every `heartbeat`.
//
// Every request is logged on one line (method, route template, status,
// duration) unless `access_log` is off, and counted in the Api's metrics.
//
// Overload: at `max_connections` a new connection is answered 503 and closed;
// when accept() itself fails (no file descriptors, no memory) accepting pauses,
// backing off to 1 s, with one log line per 10 s, while open connections are
// served. Both are counted in /metrics.
//
// Shutdown (stop(), or SIGINT/SIGTERM with handle_signals): stop accepting,
// end event streams, let requests in flight finish (at most `shutdown_grace`),
// close idle connections, then run() returns.
//
// Thread safety: start() once; then run() on one thread; stop() from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "qmtl/core/result.h"
#include "qmtl/server/api.h"

namespace qmtl::server {

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;  // 0 = any free port; see HttpServer::port()
  size_t max_body_bytes = size_t{8} * 1024 * 1024;
  std::chrono::seconds idle_timeout{60};
  unsigned io_threads = 1;
  unsigned worker_threads = 4;
  std::chrono::milliseconds heartbeat{5000};
  std::chrono::milliseconds shutdown_grace{10'000};
  bool access_log = true;
  bool handle_signals = false;  // SIGINT/SIGTERM stop the server
  // Connections open at once (event streams included); one more is answered
  // 503 with Retry-After and closed. default_max_connections() keeps it below
  // the process's file limit, so the refusal, not a failing accept, is what a
  // client meets.
  size_t max_connections = 4096;
  // Called on the server's thread as the shutdown begins, before connections
  // are closed: what must stop before anything else (the scheduler). Must not
  // block.
  std::function<void()> on_shutdown;
};

// The file descriptor limit (RLIMIT_NOFILE) less 64 for the database, logs and
// runner pipes, at least 16: a cap that leaves accept() the descriptors it needs.
size_t default_max_connections();

class HttpServer {
 public:
  // Binds and listens. kUnavailable if the address cannot be bound (e.g. port in
  // use), with the address in the message; kInvalidArgument for bad options.
  // `api` must outlive the server.
  static Result<std::unique_ptr<HttpServer>> start(const ServerOptions& options, Api& api);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port actually bound (useful with port 0).
  uint16_t port() const;
  // Serves until stop() or, with handle_signals, SIGINT/SIGTERM; returns when
  // the shutdown has finished.
  void run();
  // Starts the graceful shutdown described above. Idempotent.
  void stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qmtl::server
