// AlertDispatcher: a world's promotions, demotions, rejections and failures,
// posted to the world's webhook (docs/api.md, alerts) as Slack-compatible JSON, mailed
// to the world's e-mail recipients (SMTP through libcurl; the subject is the
// text, the body adds the details) and sent to its Telegram chat (telegram.h;
// the text, then the details):
//
//   {"text": "[qmtl] world 'desk': 'mom-1' promoted to Live (run desk-12, by scheduler)",
//    "qmtl": {"world", "kind", "event", "entity", "entity_id", "run_id", "actor",
//             "reason", "at", "seq"}}
//
// It reads the world's audit log after the last record it handled (the
// records are the evidence; nothing is alerted that did not commit), in order,
// on a thread of its own, so a slow webhook never slows an operation. Each
// alert is tried `max_attempts` times with doubling backoff (Telegram's 429
// waits as long as it asks, up to a minute); a 4xx answer other than 408 and
// 429 is not retried, nor is an https certificate that does not verify (webhook.h: the system's
// authorities, or Options::ca_file). Records committed while the server was down are not alerted
// (the cursor starts at the newest record).
//
// Kinds: promote (PROMOTE), demote (DEMOTE), reject (VALIDATION_FAILED),
// failure (a strategy's ERROR, an apply rolled back, and failures reported
// through failure(), e.g. a scheduled evaluation that could not run).
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "qmtl/execution/outage.h"
#include "qmtl/server/metrics.h"
#include "qmtl/world/world_service.h"

namespace qmtl::server {

class AlertDispatcher {
 public:
  struct Options {
    int max_attempts = 5;
    std::chrono::milliseconds first_backoff{500};
    std::chrono::milliseconds timeout{5000};  // per attempt
    // PEM bundle that https webhooks' certificates are checked against
    // instead of the system's authorities (`qmtl serve --alert-ca-file`).
    std::string ca_file;
  };
  // `worlds`, `metrics` and `outage` (if not null) must outlive the dispatcher.
  // While the database cannot be reached, audit logs are read again after a
  // backoff rather than on every change, and the failures go to `outage`.
  AlertDispatcher(world::WorldService& worlds, ServerMetrics& metrics, Options options,
                  execution::DatabaseOutage* outage = nullptr);
  ~AlertDispatcher();  // stops after the alert in flight; the rest are dropped (logged)
  AlertDispatcher(const AlertDispatcher&) = delete;
  AlertDispatcher& operator=(const AlertDispatcher&) = delete;

  // The world's audit log grew: look for alerts. Cheap; never blocks on I/O.
  void world_changed(std::string_view world);
  // A failure that is not in the audit log (e.g. a scheduled evaluation).
  void failure(std::string_view world, std::string text);
  // Several servers on one database: each reads every world's audit log, and
  // only the one for which `sends` answers true (the scheduler leader) sends,
  // so an alert goes out once. Unset: this server sends everything. Call
  // before the first world_changed.
  void set_sender(std::function<bool()> sends) { sends_ = std::move(sends); }

 private:
  struct Alert {
    std::string world;
    std::string kind;
    boost::json::object body;
  };
  void run();
  // Queues the alerts of the world's new audit records; false when the log
  // could not be read because the database is away (to try again later).
  bool collect(const std::string& world);
  std::function<bool()> sends_;
  void deliver(const Alert& a);
  void deliver_webhook(const Alert& a, const std::string& url);
  void deliver_email(const Alert& a, const world::EmailSettings& email);
  void deliver_telegram(const Alert& a, const world::TelegramSettings& tg);
  // Waits `backoff` unless the dispatcher is stopping (then false).
  bool wait_backoff(std::chrono::milliseconds backoff);

  world::WorldService& worlds_;
  ServerMetrics& metrics_;
  Options options_;
  execution::DatabaseOutage* outage_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::set<std::string> dirty_;
  std::deque<Alert> queue_;
  // Last audit seq handled per world; set before the thread starts, then the
  // thread's alone. A world created later starts at 0.
  std::map<std::string, int64_t> cursor_;
  std::thread thread_;
};

}  // namespace qmtl::server
