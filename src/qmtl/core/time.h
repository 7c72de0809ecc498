// UTC time points, ISO-8601 text, and an injectable clock.
//
// qmtl keeps every instant as microseconds since the Unix epoch in UTC. Text is
// ISO-8601: parse accepts an explicit zone (Z or +hh:mm) or a bare date; format
// always writes UTC with a trailing Z.
//
// Thread safety: the free functions are pure. SystemClock is stateless; FakeClock
// is safe to read and advance from several threads.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <string_view>

#include "qmtl/core/result.h"

namespace qmtl {

using Duration = std::chrono::microseconds;
using TimePoint = std::chrono::sys_time<Duration>;

// Parses an ISO-8601 instant. Accepted forms:
//   2024-03-01                      (midnight UTC)
//   2024-03-01T09:30:00Z            ('t' or one space may replace 'T', 'z' for 'Z')
//   2024-03-01T09:30:00.123456Z     (1 to 9 fraction digits; below 1 us is truncated)
//   2024-03-01T18:30:00+09:00       (offset converted to UTC; +0900 also accepted)
// Years 0000-9999. A date-time without a zone is refused rather than guessed, and
// so is any surrounding whitespace, a leap second (60) and an impossible date
// such as 2023-02-29. The error message quotes the input and says what to change.
Result<TimePoint> parse_timestamp(std::string_view text);

// Formats as 2024-03-01T09:30:00Z, adding .mmm or .uuuuuu only when the instant
// has a sub-second part. parse_timestamp(format_timestamp(t)) == t for every t
// in years 0000-9999.
std::string format_timestamp(TimePoint t);

// A source of the current time. Inject it wherever behaviour depends on "now" so
// that tests can use FakeClock.
class Clock {
 public:
  virtual ~Clock() = default;
  // Current UTC time. Must be safe to call from any thread.
  virtual TimePoint now() const = 0;
};

// The operating system's real-time clock.
class SystemClock final : public Clock {
 public:
  TimePoint now() const override;
};

// A clock that moves only when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start) : now_(start.time_since_epoch().count()) {}
  TimePoint now() const override { return TimePoint(Duration(now_.load())); }
  void set(TimePoint t) { now_.store(t.time_since_epoch().count()); }
  void advance(Duration d) { now_.fetch_add(d.count()); }

 private:
  std::atomic<Duration::rep> now_;
};

// Simulated time for demonstrations (`qmtl serve --demo --clock-speed N`):
// starts at `start` and runs `speed` times as fast as `real` (at least 1).
// Everything that reads "now" from it — schedules, dry-run durations, hysteresis,
// evaluation windows — sees the simulated time. Never for real money: an
// operator's "1 day" passes in seconds. Thread-safe; `real` must outlive it.
class ScaledClock final : public Clock {
 public:
  ScaledClock(TimePoint start, double speed, const Clock& real)
      : start_(start), speed_(speed < 1 ? 1 : speed), real_(real), real_start_(real.now()) {}
  TimePoint now() const override {
    const auto elapsed = std::chrono::duration<double, Duration::period>(real_.now() - real_start_);
    return start_ + Duration(static_cast<Duration::rep>(elapsed.count() * speed_));
  }
  double speed() const { return speed_; }

 private:
  const TimePoint start_;
  const double speed_;
  const Clock& real_;
  const TimePoint real_start_;
};

}  // namespace qmtl
