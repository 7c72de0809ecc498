#include "qmtl/server/alerts.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "qmtl/core/file.h"
#include "qmtl/core/http_client.h"
#include "qmtl/core/json.h"
#include "qmtl/server/smtp.h"
#include "qmtl/server/telegram.h"
#include "qmtl/server/webhook.h"

namespace qmtl::server {
namespace {

// The alert kind of an audit record, or "" when it is not alerted.
std::string_view kind_of(const world::AuditRecord& a) {
  if (a.entity == "strategy") {
    if (a.event == "PROMOTE") return "promote";
    if (a.event == "DEMOTE") return "demote";
    if (a.event == "VALIDATION_FAILED") return "reject";
    if (a.event == "ERROR") return "failure";
    if (a.event == "PERFORMANCE_CONFLICT") return "failure";
  }
  if (a.entity == "apply" && a.event == "APPLY_ROLLED_BACK") return "failure";
  return "";
}

std::string text_of(const world::AuditRecord& a, std::string_view kind) {
  const std::string run = a.run_id ? fmt::format("run {}, ", *a.run_id) : "";
  const std::string why = a.reason.empty() ? "" : fmt::format(": {}", a.reason);
  if (kind == "promote") {
    return fmt::format("[qmtl] world '{}': '{}' promoted to Live ({}by {})", a.world_id,
                       a.entity_id, run, a.actor);
  }
  if (kind == "demote") {
    return fmt::format("[qmtl] world '{}': '{}' demoted to DryRun ({}by {})", a.world_id,
                       a.entity_id, run, a.actor);
  }
  if (kind == "reject") {
    return fmt::format("[qmtl] world '{}': '{}' rejected at validation{}", a.world_id, a.entity_id,
                       why);
  }
  if (a.entity == "apply") {
    return fmt::format("[qmtl] world '{}': the apply of {} was rolled back{}", a.world_id,
                       a.entity_id, why);
  }
  if (a.event == "PERFORMANCE_CONFLICT") {
    return fmt::format("[qmtl] world '{}': '{}' posted conflicting performance records{}",
                       a.world_id, a.entity_id, why);
  }
  return fmt::format("[qmtl] world '{}': '{}' failed{}", a.world_id, a.entity_id, why);
}

// An alert's one line (its subject), and its details one per line.
std::string text_of(const boost::json::object& body) {
  const auto* text = body.if_contains("text");
  return text != nullptr && text->is_string() ? std::string(text->as_string()) : "[qmtl]";
}
std::string details_of(const boost::json::object& body) {
  std::string out;
  if (const auto* d = body.if_contains("qmtl"); d != nullptr && d->is_object()) {
    for (const auto& kv : d->as_object()) {
      const std::string v =
          kv.value().is_string() ? std::string(kv.value().as_string()) : json::dump(kv.value());
      out += fmt::format("{}: {}\n", std::string_view(kv.key()), v);
    }
  }
  return out;
}

// Telegram's 429 says how long to wait; longer than this and the message is
// given up rather than holding every other world's alerts behind it.
constexpr std::chrono::seconds kLongestTelegramWait{60};

}  // namespace

AlertDispatcher::AlertDispatcher(world::WorldService& worlds, ServerMetrics& metrics,
                                 Options options, execution::DatabaseOutage* outage)
    : worlds_(worlds), metrics_(metrics), options_(std::move(options)), outage_(outage) {
  if (auto all = worlds_.list_worlds()) {
    for (const auto& w : *all) {
      if (auto seq = worlds_.last_audit_seq(w.id)) cursor_[w.id] = *seq;
    }
  }
  thread_ = std::thread([this] { run(); });
}

AlertDispatcher::~AlertDispatcher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    if (!queue_.empty()) spdlog::warn("alerts: {} not sent at shutdown", queue_.size());
  }
  cv_.notify_all();
  thread_.join();
}

void AlertDispatcher::world_changed(std::string_view world) {
  {
    std::lock_guard lock(mu_);
    dirty_.emplace(world);
  }
  cv_.notify_all();
}

void AlertDispatcher::failure(std::string_view world, std::string text) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(
        {.world = std::string(world),
         .kind = "failure",
         .body = {{"text", fmt::format("[qmtl] world '{}': {}", world, text)},
                  {"qmtl", boost::json::object{{"world", world}, {"kind", "failure"}}}}});
  }
  cv_.notify_all();
}

void AlertDispatcher::run() {
  std::unique_lock lock(mu_);
  std::set<std::string> retry;  // worlds whose audit log could not be read
  while (!stop_) {
    if (retry.empty()) {
      cv_.wait(lock, [this] { return stop_ || !dirty_.empty() || !queue_.empty(); });
    } else {
      // The database is away: read again after a backoff, not on every change.
      const auto wait = outage_ != nullptr ? outage_->backoff(std::chrono::milliseconds(500),
                                                              std::chrono::seconds(10))
                                           : std::chrono::milliseconds(500);
      cv_.wait_for(lock, wait, [this] { return stop_ || !queue_.empty(); });
      dirty_.merge(retry);
      retry.clear();
    }
    if (stop_) break;
    const std::set<std::string> dirty = std::exchange(dirty_, {});
    lock.unlock();
    for (const auto& w : dirty) {
      if (!collect(w)) retry.insert(w);
    }
    lock.lock();
    while (!queue_.empty() && !stop_) {
      Alert a = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      deliver(a);
      lock.lock();
    }
  }
}

bool AlertDispatcher::collect(const std::string& world) {
  auto hook = worlds_.get_alert_hook(world);
  auto email = worlds_.get_email_alerts(world);
  auto telegram = worlds_.get_telegram_alerts(world);
  const auto wanted = [&](std::string_view kind) {
    const auto has = [&](const std::vector<std::string>& kinds) {
      return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
    };
    return (hook && *hook && !(*hook)->url.empty() && has((*hook)->events)) ||
           (email && *email && has((*email)->events)) ||
           (telegram && *telegram && has((*telegram)->events));
  };
  int64_t& cursor = cursor_[world];
  const bool sending = !sends_ || sends_();
  for (;;) {
    auto records = worlds_.list_audit(world, cursor, 1000);
    if (!records) {
      if (outage_ != nullptr && outage_->failed("alerts", records.error())) return false;
      spdlog::error("alerts: cannot read the audit log of world '{}': {}", world,
                    records.error().message);
      return true;
    }
    if (outage_ != nullptr) outage_->succeeded();
    for (const auto& a : *records) {
      cursor = a.seq;
      const auto kind = kind_of(a);
      if (!sending || kind.empty() || !wanted(kind)) continue;
      boost::json::object detail{{"world", a.world_id},
                                 {"kind", kind},
                                 {"event", a.event},
                                 {"entity", a.entity},
                                 {"entity_id", a.entity_id},
                                 {"actor", a.actor},
                                 {"reason", a.reason},
                                 {"at", format_timestamp(a.at)},
                                 {"seq", a.seq}};
      detail["run_id"] = a.run_id ? boost::json::value(*a.run_id) : nullptr;
      std::lock_guard lock(mu_);
      queue_.push_back({.world = world,
                        .kind = std::string(kind),
                        .body = {{"text", text_of(a, kind)}, {"qmtl", std::move(detail)}}});
    }
    if (records->size() < 1000) return true;
  }
}

void AlertDispatcher::deliver(const Alert& a) {
  // Settings are read at delivery: a channel removed since is not used.
  const auto wants = [&](const std::vector<std::string>& kinds) {
    return std::find(kinds.begin(), kinds.end(), a.kind) != kinds.end();
  };
  if (auto hook = worlds_.get_alert_hook(a.world);
      hook && *hook && !(*hook)->url.empty() && wants((*hook)->events)) {
    deliver_webhook(a, (*hook)->url);
  }
  if (auto email = worlds_.get_email_alerts(a.world); email && *email && wants((*email)->events)) {
    deliver_email(a, **email);
  } else if (!email) {
    spdlog::error("alerts: the e-mail settings of world '{}' are unreadable: {}", a.world,
                  email.error().message);
  }
  if (auto tg = worlds_.get_telegram_alerts(a.world); tg && *tg && wants((*tg)->events)) {
    deliver_telegram(a, **tg);
  } else if (!tg) {
    spdlog::error("alerts: the Telegram settings of world '{}' are unreadable: {}", a.world,
                  tg.error().message);
  }
}

bool AlertDispatcher::wait_backoff(std::chrono::milliseconds backoff) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, backoff, [this] { return stop_; });
}

void AlertDispatcher::deliver_webhook(const Alert& a, const std::string& url) {
  auto address = parse_web_url(url);
  if (!address) return;
  // The URL may hold a secret: logs name the host only.
  const std::string where =
      fmt::format("{}://{}:{}", address->scheme, address->host, address->port);
  const std::string body = json::dump(a.body);
  std::chrono::milliseconds backoff = options_.first_backoff;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    auto reply = post_json(url, body, {.timeout = options_.timeout, .ca_file = options_.ca_file});
    const int status = reply ? reply->status : 0;
    if (status >= 200 && status < 300) {
      metrics_.alert(a.world, "webhook", true);
      return;
    }
    const bool permanent = (reply && reply->certificate) ||
                           (status >= 400 && status < 500 && status != 408 && status != 429);
    spdlog::warn("alerts: webhook of world '{}' at {} answered {} (attempt {} of {})", a.world,
                 where,
                 status != 0 ? fmt::format("HTTP {}", status)
                 : reply     ? fmt::format("nothing: {}", reply->error)
                             : reply.error().message,
                 attempt, options_.max_attempts);
    if (permanent) break;
    if (attempt < options_.max_attempts) {
      if (!wait_backoff(backoff)) break;
      backoff *= 2;
    }
  }
  metrics_.alert(a.world, "webhook", false);
  spdlog::error("alerts: gave up on an alert for world '{}' to {}", a.world, where);
}

void AlertDispatcher::deliver_email(const Alert& a, const world::EmailSettings& email) {
  MailMessage m{.smtp_url = email.smtp,
                .starttls = email.starttls,
                .username = email.username,
                .from = email.from,
                .to = email.to};
  // The password is read now, from where the settings say, and never logged.
  auto password = read_secret(email.password_env, email.password_file);
  if (!password) {
    metrics_.alert(a.world, "email", false);
    spdlog::error("alerts: e-mail of world '{}' not sent: {}", a.world, password.error().message);
    return;
  }
  m.password = std::move(*password);
  m.subject = text_of(a.body);
  m.body = m.subject + "\n\n" + details_of(a.body);
  m.body += "\n-- \nqmtl alerts; the evidence is in the world's audit log.\n";
  const auto now = std::chrono::system_clock::now();
  m.date =
      fmt::format("{:%a, %d %b %Y %H:%M:%S} +0000", std::chrono::floor<std::chrono::seconds>(now));
  m.message_id = fmt::format(
      "<qmtl-{}-{}@{}>", a.world,
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count(),
      email.from.substr(email.from.find('@') + 1));
  std::chrono::milliseconds backoff = options_.first_backoff;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    auto sent = send_mail(m, options_.timeout);
    if (sent) {
      metrics_.alert(a.world, "email", true);
      return;
    }
    spdlog::warn("alerts: {} (world '{}', attempt {} of {})", sent.error().message, a.world,
                 attempt, options_.max_attempts);
    if (attempt < options_.max_attempts) {
      if (!wait_backoff(backoff)) break;
      backoff *= 2;
    }
  }
  metrics_.alert(a.world, "email", false);
  spdlog::error("alerts: gave up on an e-mail alert for world '{}' to {}", a.world, email.smtp);
}

void AlertDispatcher::deliver_telegram(const Alert& a, const world::TelegramSettings& tg) {
  // The token is read now, from where the settings say; it goes only into
  // the request's path and never into a log line.
  auto token = read_secret(tg.token_env, tg.token_file, "token");
  if (!token) {
    metrics_.alert(a.world, "telegram", false);
    spdlog::error("alerts: Telegram message of world '{}' not sent: {}", a.world,
                  token.error().message);
    return;
  }
  const TelegramMessage m{.api = tg.api,
                          .token = std::move(*token),
                          .chat_id = tg.chat_id,
                          .text = text_of(a.body) + "\n\n" + details_of(a.body)};
  std::chrono::milliseconds backoff = options_.first_backoff;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    const TelegramOutcome sent =
        send_telegram(m, {.timeout = options_.timeout, .ca_file = options_.ca_file});
    if (sent.delivered) {
      metrics_.alert(a.world, "telegram", true);
      return;
    }
    spdlog::warn("alerts: Telegram ({}, chat {}) of world '{}' answered {}{} (attempt {} of {})",
                 tg.api, tg.chat_id, a.world, sent.said,
                 sent.retry_after.count() > 0
                     ? fmt::format("; asked to wait {} s", sent.retry_after.count())
                     : "",
                 attempt, options_.max_attempts);
    if (sent.permanent || sent.retry_after > kLongestTelegramWait) break;
    if (attempt < options_.max_attempts) {
      if (!wait_backoff(std::max<std::chrono::milliseconds>(backoff, sent.retry_after))) break;
      backoff *= 2;
    }
  }
  metrics_.alert(a.world, "telegram", false);
  spdlog::error("alerts: gave up on a Telegram alert for world '{}' to chat {}", a.world,
                tg.chat_id);
}

}  // namespace qmtl::server
