// A minimal server-sent-events client over a real socket, for tests: opens
// GET <path> with the given headers and reads events one at a time.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace qmtl::testing {

struct SseEvent {
  std::string id;  // "" when the event had no id (heartbeats)
  std::string type;
  std::string data;
};

class SseClient {
 public:
  // Connects to `base_url` (http://host:port) and sends the request; throws
  // std::runtime_error if the connection cannot be made.
  SseClient(const std::string& base_url, const std::string& path,
            const std::vector<std::pair<std::string, std::string>>& headers);
  ~SseClient();
  SseClient(const SseClient&) = delete;
  SseClient& operator=(const SseClient&) = delete;

  // The response status and head, read on first use.
  int status();
  const std::string& head();
  // The next event, or nullopt if none arrives within `timeout` or the stream ended.
  std::optional<SseEvent> next(std::chrono::milliseconds timeout);
  // The next event that is not a heartbeat.
  std::optional<SseEvent> next_non_heartbeat(std::chrono::milliseconds timeout);
  // True once the server has closed the stream.
  bool ended() const { return ended_; }

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);
  bool read_head(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string buf_;
  std::string head_;
  int status_ = 0;
  bool ended_ = false;
};

}  // namespace qmtl::testing
