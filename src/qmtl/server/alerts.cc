#include "qmtl/server/alerts.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "qmtl/core/http_client.h"
#include "qmtl/core/json.h"

namespace qmtl::server {
namespace {

// The alert kind of an audit record, or "" when it is not alerted.
std::string_view kind_of(const world::AuditRecord& a) {
  if (a.entity == "strategy") {
    if (a.event == "PROMOTE") return "promote";
    if (a.event == "DEMOTE") return "demote";
    if (a.event == "VALIDATION_FAILED") return "reject";
    if (a.event == "ERROR") return "failure";
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
  return fmt::format("[qmtl] world '{}': '{}' failed{}", a.world_id, a.entity_id, why);
}

}  // namespace

AlertDispatcher::AlertDispatcher(world::WorldService& worlds, ServerMetrics& metrics,
                                 Options options)
    : worlds_(worlds), metrics_(metrics), options_(options) {
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
         .body = {{"text", fmt::format("[qmtl] world '{}': {}", world, text)},
                  {"qmtl", boost::json::object{{"world", world}, {"kind", "failure"}}}}});
  }
  cv_.notify_all();
}

void AlertDispatcher::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait(lock, [this] { return stop_ || !dirty_.empty() || !queue_.empty(); });
    if (stop_) break;
    const std::set<std::string> dirty = std::exchange(dirty_, {});
    lock.unlock();
    for (const auto& w : dirty) collect(w);
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

void AlertDispatcher::collect(const std::string& world) {
  auto hook = worlds_.get_alert_hook(world);
  int64_t& cursor = cursor_[world];
  for (;;) {
    auto records = worlds_.list_audit(world, cursor, 1000);
    if (!records) {
      spdlog::error("alerts: cannot read the audit log of world '{}': {}", world,
                    records.error().message);
      return;
    }
    for (const auto& a : *records) {
      cursor = a.seq;
      const auto kind = kind_of(a);
      if (kind.empty() || !hook || !*hook) continue;
      const auto& kinds = (*hook)->events;
      if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) continue;
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
      queue_.push_back(
          {.world = world, .body = {{"text", text_of(a, kind)}, {"qmtl", std::move(detail)}}});
    }
    if (records->size() < 1000) return;
  }
}

void AlertDispatcher::deliver(const Alert& a) {
  auto hook = worlds_.get_alert_hook(a.world);
  if (!hook || !*hook) return;  // removed since
  const std::string url = (*hook)->url;
  auto address = parse_server_url(url);
  if (!address) return;
  // The URL may hold a secret: logs name the host only.
  const std::string where = fmt::format("{}:{}", address->host, address->port);
  const std::string body = json::dump(a.body);
  std::chrono::milliseconds backoff = options_.first_backoff;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    // The whole URL goes to the client as its base; the path is in it.
    auto reply = http_request(
        url, {.method = "POST", .path = "", .body = body, .timeout = options_.timeout});
    if (reply && reply->status >= 200 && reply->status < 300) {
      metrics_.alert(a.world, true);
      return;
    }
    const bool permanent = reply && reply->status >= 400 && reply->status < 500 &&
                           reply->status != 408 && reply->status != 429;
    spdlog::warn("alerts: webhook of world '{}' at {} answered {} (attempt {} of {})", a.world,
                 where, reply ? fmt::format("HTTP {}", reply->status) : "nothing", attempt,
                 options_.max_attempts);
    if (permanent) break;
    if (attempt < options_.max_attempts) {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, backoff, [this] { return stop_; })) break;
      backoff *= 2;
    }
  }
  metrics_.alert(a.world, false);
  spdlog::error("alerts: gave up on an alert for world '{}' to {}", a.world, where);
}

}  // namespace qmtl::server
