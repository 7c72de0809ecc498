// EventHub: the server-sent event streams of GET /worlds/{id}/events.
//
// Events are the world's audit records: the event id is the record's seq, so ids
// grow monotonically, survive restarts, and a client that reconnects with
// Last-Event-ID gets exactly what it missed by reading the audit log again. Each
// event carries the activation entries it affects as they are when it is sent,
// so a runner can act on any event alone. publish() is called after a change has
// committed; it reads what the audit log gained and queues it for the world's
// subscribers.
//
// A subscriber that falls more than `max_queue` events behind is cut off (its
// stream ends and it reconnects with Last-Event-ID) so that one slow client
// cannot hold memory or slow the others.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "qmtl/execution/outage.h"
#include "qmtl/world/world_service.h"

namespace qmtl::server {

struct StreamEvent {
  int64_t id = 0;        // audit seq; 0 for heartbeats
  std::string type;      // "world", "policy", "strategy", "activation", "evaluation", ...
  std::string strategy;  // the strategy it concerns, "" for world-wide events
  std::string data;      // one line of JSON
};

// The event in text/event-stream framing ("id:", "event:", "data:", blank line).
std::string format_sse(const StreamEvent& e);

class EventHub {
 public:
  class Subscriber {
   public:
    // Takes the events queued so far.
    std::vector<StreamEvent> take();
    // The stream must end: the server is stopping, or the client fell behind.
    bool closed() const { return closed_.load(); }

   private:
    friend class EventHub;
    std::string world_;
    std::string strategy_;
    std::function<void()> wake_;
    std::mutex mu_;
    std::deque<StreamEvent> queue_;
    int64_t cursor_ = 0;  // the highest seq queued (guarded by the hub's mutex)
    std::atomic<bool> closed_{false};
  };

  // `worlds` must outlive the hub. `ttl_s` goes into every activation entry.
  // `outage` (if not null) hears that the database cannot be reached.
  EventHub(world::WorldService& worlds, int64_t ttl_s, size_t max_queue = 10'000,
           execution::DatabaseOutage* outage = nullptr)
      : worlds_(worlds), ttl_s_(ttl_s), max_queue_(max_queue), outage_(outage) {}

  // Registers a stream of `world` that receives the events after `after_seq`
  // (only those of `strategy` and world-wide ones when it is not empty).
  // `wake` is called, from any thread, whenever events are queued or the
  // subscriber is closed; it must not block.
  std::shared_ptr<Subscriber> subscribe(const std::string& world, int64_t after_seq,
                                        const std::string& strategy, std::function<void()> wake);
  void unsubscribe(const std::shared_ptr<Subscriber>& s);

  // Queues what the world's audit log gained since its subscribers' cursors.
  void publish(std::string_view world);

  // The events after `after_seq` straight from the audit log (a reconnect's
  // replay), at most `limit`.
  Result<std::vector<StreamEvent>> replay(const std::string& world, int64_t after_seq,
                                          const std::string& strategy, size_t limit);
  // A "snapshot" event: the world and its activation set now, and with a
  // `strategy` filter that strategy's {"id", "state", "state_since"} (null if
  // it is not in the world), so a runner learns everything its gate needs from
  // one event; its id is the world's newest audit seq.
  Result<StreamEvent> snapshot(const std::string& world, const std::string& strategy);
  // The world's newest event id (its newest audit seq; 0 if none).
  Result<int64_t> last_id(const std::string& world) { return worlds_.last_audit_seq(world); }
  // A "heartbeat" event (no id) saying the stream is alive as of `now`.
  StreamEvent heartbeat(TimePoint now, int64_t last_id) const;

  // Closes every stream (shutdown); later subscriptions are closed at once.
  void close_all();
  size_t open_streams() const;

 private:
  Result<std::vector<StreamEvent>> read_events(const std::string& world, int64_t after_seq,
                                               size_t limit);

  world::WorldService& worlds_;
  const int64_t ttl_s_;
  const size_t max_queue_;
  execution::DatabaseOutage* const outage_;
  mutable std::mutex mu_;
  bool closing_ = false;
  std::map<std::string, std::vector<std::shared_ptr<Subscriber>>, std::less<>> subs_;
};

}  // namespace qmtl::server
