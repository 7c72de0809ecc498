// Replays the response of a create request retried with the same
// Idempotency-Key, so a client that lost a response can retry safely.
//
// Entries are kept in memory for `ttl` (bounded by `capacity`, oldest dropped
// first), scoped by principal: two tokens never share keys. A key reused for a
// different request is refused; one whose first request is still running is
// reported as in progress. Server errors (5xx) are not remembered, so a retry
// runs again. Keys do not survive a restart of the server.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "qmtl/core/duration.h"
#include "qmtl/core/time.h"
#include "qmtl/server/response.h"

namespace qmtl::server {

class IdempotencyCache {
 public:
  IdempotencyCache(const Clock& clock, size_t capacity, Duration ttl)
      : clock_(clock), capacity_(capacity), ttl_(ttl) {}

  enum class Outcome { kNew, kReplay, kMismatch, kInProgress };
  struct Begin {
    Outcome outcome = Outcome::kNew;
    ApiResponse response;  // the stored response when kReplay
  };
  // Claims `key` for a request with `fingerprint` (method, target and a digest
  // of the body). After kNew the caller runs the request and calls finish().
  Begin begin(const std::string& key, const std::string& fingerprint);
  // Stores the response of a claimed key (or releases it for a 5xx).
  void finish(const std::string& key, const ApiResponse& response);

 private:
  struct Entry {
    std::string fingerprint;
    bool done = false;
    ApiResponse response;
    TimePoint at;
  };
  void expire(TimePoint now);

  const Clock& clock_;
  const size_t capacity_;
  const Duration ttl_;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;
  std::deque<std::pair<TimePoint, std::string>> order_;  // answered keys, oldest first
};

}  // namespace qmtl::server
