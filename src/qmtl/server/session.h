// Sign-in sessions of the web console (docs/console.md). A session stands for
// a bearer token's principal behind an HttpOnly, SameSite=Strict cookie, so
// the token itself never sits in a URL or in the browser's storage.
//
// Thread safety: every method may be called from several threads at once.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "qmtl/core/time.h"
#include "qmtl/server/auth.h"

namespace qmtl::server {

inline constexpr std::string_view kSessionCookie = "qmtl_session";

class SessionTable {
 public:
  // Sessions end `idle` after their last use; at most `capacity` live at once
  // (the oldest used gives way). `clock` must outlive the table.
  SessionTable(const Clock& clock, Duration idle, size_t capacity)
      : clock_(clock), idle_(idle), capacity_(capacity) {}

  // A new session for `p`: 256 random bits as 64 hex digits.
  std::string open(Principal p);
  // The principal of a live session (and its idle time starts again), or nullopt.
  std::optional<Principal> find(std::string_view id);
  void close(std::string_view id);
  Duration idle() const { return idle_; }

 private:
  struct Entry {
    Principal principal;
    TimePoint last_used;
  };
  const Clock& clock_;
  const Duration idle_;
  const size_t capacity_;
  std::mutex mu_;
  std::map<std::string, Entry, std::less<>> sessions_;
};

// The value of cookie `name` in a Cookie header ("a=1; qmtl_session=ab"), or "".
std::string_view cookie_value(std::string_view header, std::string_view name);

}  // namespace qmtl::server
