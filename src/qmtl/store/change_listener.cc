#include "qmtl/store/change_listener.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "qmtl/store/pg_db.h"

namespace qmtl::store {
namespace {

class PgChangeListener final : public ChangeListener {
 public:
  PgChangeListener(std::string url, Callbacks cb) : url_(std::move(url)), cb_(std::move(cb)) {}
  ~PgChangeListener() override {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  PgChangeListener(const PgChangeListener&) = delete;
  PgChangeListener& operator=(const PgChangeListener&) = delete;

  Result<void> connect() {
    conn_.reset();
    auto session = connect_pg(url_);
    if (!session) {
      return make_error(
          ErrorCode::kUnavailable,
          fmt::format("cannot listen for changes on PostgreSQL: {}", session.error().message));
    }
    conn_ = std::move(session->conn);
    const std::string channel = change_channel(session->schema);
    PgResult listen(PQexec(conn_.get(), fmt::format("LISTEN {}", channel).c_str()));
    if (PQresultStatus(listen.get()) != PGRES_COMMAND_OK) return drop("LISTEN failed");
    return {};
  }

  void start() {
    thread_ = std::thread([this] { run(); });
  }

 private:
  tl::unexpected<Error> drop(std::string_view why) {
    std::string msg = fmt::format("cannot listen for changes on PostgreSQL: {}: {}", why,
                                  PQerrorMessage(conn_.get()));
    conn_.reset();
    return make_error(ErrorCode::kUnavailable, std::move(msg));
  }

  void sleep_for(std::chrono::milliseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (!stop_ && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  void run() {
    auto backoff = std::chrono::milliseconds(100);
    bool up = true;  // connect() succeeded before the thread started
    if (cb_.connection) cb_.connection(true);
    while (!stop_) {
      if (conn_ == nullptr) {
        if (up) {
          up = false;
          if (cb_.connection) cb_.connection(false);
        }
        if (!connect()) {
          sleep_for(backoff);
          backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
          continue;
        }
        backoff = std::chrono::milliseconds(100);
        up = true;
        if (cb_.connection) cb_.connection(true);
      }
      pollfd p{.fd = PQsocket(conn_.get()), .events = POLLIN, .revents = 0};
      if (::poll(&p, 1, 200) < 0 && errno != EINTR) {
        (void)drop("poll failed");
        continue;
      }
      if (PQconsumeInput(conn_.get()) == 0 || PQstatus(conn_.get()) != CONNECTION_OK) {
        conn_.reset();
        continue;
      }
      while (PGnotify* n = PQnotifies(conn_.get())) {
        if (cb_.changed) cb_.changed(n->extra);
        PQfreemem(n);
      }
    }
  }

  const std::string url_;
  const Callbacks cb_;
  PgConn conn_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<ChangeListener>> listen_for_changes(std::string_view url,
                                                           ChangeListener::Callbacks callbacks) {
  if (!url.starts_with("postgres://") && !url.starts_with("postgresql://")) {
    return std::unique_ptr<ChangeListener>();
  }
  auto l = std::make_unique<PgChangeListener>(std::string(url), std::move(callbacks));
  if (auto r = l->connect(); !r) return propagate(r);
  l->start();
  return std::unique_ptr<ChangeListener>(std::move(l));
}

}  // namespace qmtl::store
