#include "qmtl/server/session.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <random>
#include <stdexcept>

namespace qmtl::server {
namespace {

std::string random_id() {
  // The kernel's generator: a session id is as good as a bearer token.
  std::array<unsigned char, 32> bytes{};
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  urandom.read(reinterpret_cast<char*>(bytes.data()), bytes.size());
  if (!urandom) throw std::runtime_error("cannot read /dev/urandom for a session id");
  std::string out;
  out.reserve(64);
  for (unsigned char b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

}  // namespace

std::string SessionTable::open(Principal p) {
  std::string id = random_id();
  const TimePoint now = clock_.now();
  std::lock_guard lock(mu_);
  std::erase_if(sessions_, [&](const auto& kv) { return now - kv.second.last_used > idle_; });
  if (sessions_.size() >= capacity_ && !sessions_.empty()) {
    auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](auto& a, auto& b) {
      return a.second.last_used < b.second.last_used;
    });
    sessions_.erase(oldest);
  }
  sessions_.emplace(id, Entry{.principal = std::move(p), .last_used = now});
  return id;
}

std::optional<Principal> SessionTable::find(std::string_view id) {
  const TimePoint now = clock_.now();
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  if (now - it->second.last_used > idle_) {
    sessions_.erase(it);
    return std::nullopt;
  }
  it->second.last_used = now;
  return it->second.principal;
}

void SessionTable::close(std::string_view id) {
  std::lock_guard lock(mu_);
  if (auto it = sessions_.find(id); it != sessions_.end()) sessions_.erase(it);
}

std::string_view cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const auto semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
  }
  return {};
}

}  // namespace qmtl::server
