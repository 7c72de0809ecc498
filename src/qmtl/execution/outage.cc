#include "qmtl/execution/outage.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace qmtl::execution {
namespace {

// Driver messages span lines ("...\n\tIs the server running..."): one line.
std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
  }
  s.erase(std::unique(s.begin(), s.end(), [](char a, char b) { return a == ' ' && b == ' '; }),
          s.end());
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string seconds_text(std::chrono::steady_clock::duration d) {
  return fmt::format("{:.1f} s", std::chrono::duration<double>(d).count());
}

}  // namespace

DatabaseOutage::DatabaseOutage(std::chrono::milliseconds interval, SteadyClock now,
                               std::function<void(bool, const std::string&)> log)
    : interval_(interval),
      now_(now ? std::move(now) : SteadyClock([] { return std::chrono::steady_clock::now(); })),
      log_(log ? std::move(log) : [](bool recovered, const std::string& line) {
        if (recovered) {
          spdlog::info("{}", line);
        } else {
          spdlog::warn("{}", line);
        }
      }) {}

bool DatabaseOutage::failed(std::string_view who, const Error& e) {
  if (e.code != ErrorCode::kUnavailable) return false;
  const auto now = now_();
  std::lock_guard lock(mu_);
  ++total_;
  ++in_outage_;
  last_message_ = one_line(e.message);
  auto it = since_log_.find(who);
  if (it == since_log_.end()) it = since_log_.emplace(std::string(who), 0).first;
  ++it->second;
  if (!down_) {
    down_ = true;
    since_ = now;
    last_log_ = now;
    since_log_.clear();
    log_(false, fmt::format("the database cannot be reached ({}: {}); operations fail until it "
                            "is back; this is logged once per {} s with a count",
                            who, last_message_,
                            std::chrono::duration_cast<std::chrono::seconds>(interval_).count()));
    return true;
  }
  if (now - last_log_ >= interval_) flush_locked(now, false);
  return true;
}

void DatabaseOutage::flush_locked(std::chrono::steady_clock::time_point now, bool recovered) {
  uint64_t n = 0;
  std::string parts;
  for (const auto& [who, count] : since_log_) {
    n += count;
    parts += fmt::format("{}{} {}", parts.empty() ? "" : ", ", who, count);
  }
  if (recovered) {
    log_(true, fmt::format("the database answers again after {} ({} operations failed meanwhile)",
                           seconds_text(now - since_), in_outage_));
  } else {
    log_(false, fmt::format("the database still cannot be reached after {}: {} operations failed "
                            "in the last {} ({}); last error: {}",
                            seconds_text(now - since_), n, seconds_text(now - last_log_), parts,
                            last_message_));
  }
  last_log_ = now;
  since_log_.clear();
}

void DatabaseOutage::succeeded() {
  std::lock_guard lock(mu_);
  if (!down_) return;
  flush_locked(now_(), true);
  down_ = false;
  in_outage_ = 0;
}

bool DatabaseOutage::down() const {
  std::lock_guard lock(mu_);
  return down_;
}

std::chrono::milliseconds DatabaseOutage::backoff(std::chrono::milliseconds poll,
                                                  std::chrono::milliseconds max) const {
  std::lock_guard lock(mu_);
  if (!down_) return poll;
  const auto intervals = (now_() - since_) / interval_;
  auto wait = poll;
  for (int64_t i = 0; i <= intervals && wait < max; ++i) wait *= 2;
  return std::min(wait, max);
}

uint64_t DatabaseOutage::failures() const {
  std::lock_guard lock(mu_);
  return total_;
}

}  // namespace qmtl::execution
