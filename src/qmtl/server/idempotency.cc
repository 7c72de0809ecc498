#include "qmtl/server/idempotency.h"

namespace qmtl::server {

void IdempotencyCache::expire(TimePoint now) {
  while (!order_.empty() && (order_.size() > capacity_ || now - order_.front().first > ttl_)) {
    auto it = entries_.find(order_.front().second);
    // Each answered key is queued once, when it is answered.
    if (it != entries_.end() && it->second.done) {
      entries_.erase(it);
    }
    order_.pop_front();
  }
}

IdempotencyCache::Begin IdempotencyCache::begin(const std::string& key,
                                                const std::string& fingerprint) {
  const TimePoint now = clock_.now();
  std::lock_guard lock(mu_);
  expire(now);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    // Not queued for expiry yet: a request in progress is never forgotten.
    entries_.emplace(key, Entry{.fingerprint = fingerprint, .at = now});
    return {.outcome = Outcome::kNew};
  }
  if (it->second.fingerprint != fingerprint) return {.outcome = Outcome::kMismatch};
  if (!it->second.done) return {.outcome = Outcome::kInProgress};
  return {.outcome = Outcome::kReplay, .response = it->second.response};
}

void IdempotencyCache::finish(const std::string& key, const ApiResponse& response) {
  const TimePoint now = clock_.now();
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  if (response.status >= 500) {
    entries_.erase(it);
    return;
  }
  it->second.done = true;
  it->second.response = response;
  // The time to live counts from the answer.
  it->second.at = now;
  order_.emplace_back(now, key);
}

}  // namespace qmtl::server
