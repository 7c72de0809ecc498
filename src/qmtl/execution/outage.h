// DatabaseOutage: one outage of the database, reported once per interval,
// however many parts of the server run into it.
//
// While the database cannot be reached, every loop of the server (scheduler,
// execution manager, alerts, event streams) fails on each attempt; logging
// each failure made a replica write hundreds of lines a second. The parts
// hand their failures here instead: the first is logged at once, then one
// line per interval with the count of failures by part, and one line when the
// database answers again. Loops ask backoff() how long to wait before their
// next attempt, so an outage also costs less work.
//
// Only kUnavailable errors count (the database cannot be reached, or lost the
// connection): anything else is the caller's to report as before.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "qmtl/core/result.h"

namespace qmtl::execution {

class DatabaseOutage {
 public:
  using SteadyClock = std::function<std::chrono::steady_clock::time_point()>;
  // `log` receives each line (default: spdlog at warning level; recovery at info).
  explicit DatabaseOutage(std::chrono::milliseconds interval = std::chrono::seconds(10),
                          SteadyClock now = {},
                          std::function<void(bool recovered, const std::string&)> log = {});

  // Whether `e` means the database cannot be reached. If so, the failure is
  // counted under `who` ("scheduler", "alerts", ...) and logged when due, and
  // the caller logs nothing of it.
  bool failed(std::string_view who, const Error& e);
  // A database operation succeeded: ends an outage (logged once).
  void succeeded();
  // Whether an outage is going on.
  bool down() const;
  // How long a loop that polls every `poll` should wait now: `poll` while the
  // database answers; while it does not, `poll` doubled per interval of the
  // outage so far, at most `max`.
  std::chrono::milliseconds backoff(std::chrono::milliseconds poll,
                                    std::chrono::milliseconds max) const;
  // Failures counted since the server started (for metrics and tests).
  uint64_t failures() const;

 private:
  void flush_locked(std::chrono::steady_clock::time_point now, bool recovered);

  const std::chrono::milliseconds interval_;
  SteadyClock now_;
  std::function<void(bool, const std::string&)> log_;
  mutable std::mutex mu_;
  bool down_ = false;
  std::chrono::steady_clock::time_point since_{}, last_log_{};
  std::map<std::string, uint64_t, std::less<>> since_log_;  // failures by part, not yet logged
  uint64_t in_outage_ = 0, total_ = 0;
  std::string last_message_;
};

}  // namespace qmtl::execution
