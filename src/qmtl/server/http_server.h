// HttpServer: serves an Api over HTTP/1.1 with Boost.Beast.
//
// Networking runs on one I/O thread with C++20 coroutines; each request is handed
// to a worker pool, because Api calls block on the database. Request bodies over
// `max_body_bytes` get 413; idle connections are closed after `idle_timeout`.
//
// Thread safety: start() once; then run() on one thread; stop() from any thread
// (or a signal when handle_signals is set) makes run() return.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "qmtl/core/result.h"
#include "qmtl/server/api.h"

namespace qmtl::server {

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;  // 0 = any free port; see HttpServer::port()
  size_t max_body_bytes = 8 * 1024 * 1024;
  std::chrono::seconds idle_timeout{60};
  unsigned worker_threads = 4;
  bool handle_signals = false;  // SIGINT/SIGTERM make run() return
};

class HttpServer {
 public:
  // Binds and listens. kUnavailable if the address cannot be bound (e.g. port in
  // use), with the address in the message. `api` must outlive the server.
  static Result<std::unique_ptr<HttpServer>> start(const ServerOptions& options, const Api& api);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port actually bound (useful with port 0).
  uint16_t port() const;
  // Serves until stop() or, with handle_signals, SIGINT/SIGTERM.
  void run();
  // Stops accepting, closes connections and makes run() return. Idempotent.
  void stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qmtl::server
