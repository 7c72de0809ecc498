// EventStream: a client of GET /worlds/{id}/events (server-sent events), for the
// runner that follows its world's activation decisions.
//
// open() connects and reads the response head; next() returns events one at a
// time with a timeout, so the caller can tell silence (no event, no heartbeat:
// its decisions are going stale) from a broken stream (kUnavailable: it must
// treat itself as disconnected and reopen with last_event_id()).
//
// Thread safety: not thread-safe; one thread reads a stream.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "qmtl/core/result.h"

namespace qmtl::sdk {

struct ServerEvent {
  std::string id;    // "" for events without an id (heartbeats)
  std::string type;  // "snapshot", "activation", "world", "heartbeat", ...
  std::string data;  // JSON
};

class EventStream {
 public:
  struct Options {
    std::string base_url;  // e.g. http://127.0.0.1:8080
    std::string token;     // bearer token; empty = none
    std::string world;
    std::string strategy;                      // only its events (and world-wide ones)
    std::optional<std::string> last_event_id;  // resume after this id
    std::chrono::milliseconds timeout{5000};   // for the connection and the response head
  };

  // kUnavailable when the server cannot be reached or does not answer in time;
  // for a refused request, the server's problem detail with the code of its
  // status (401 kUnauthenticated, 403 kPermissionDenied, 404 kNotFound, 400
  // kInvalidArgument).
  static Result<std::unique_ptr<EventStream>> open(const Options& options);
  ~EventStream();
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  // The next event; nullopt if none arrived within `timeout`; kUnavailable when
  // the stream has ended or broken.
  Result<std::optional<ServerEvent>> next(std::chrono::milliseconds timeout);
  // The id of the last event with an id, for reopening after a break.
  const std::optional<std::string>& last_event_id() const { return last_id_; }

 private:
  EventStream() = default;
  // Reads more bytes within `deadline`; false on timeout; error when the stream ended.
  Result<bool> fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string buffer_;
  std::optional<std::string> last_id_;
};

}  // namespace qmtl::sdk
