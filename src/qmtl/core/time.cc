#include "qmtl/core/time.h"

#include <fmt/format.h>

#include <cstdint>
#include <cstdio>

namespace qmtl {
namespace {

// A tiny cursor over the input; every failure names the input and the position
// so that a user can find the bad character in a long CSV cell.
class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool done() const { return pos_ >= s_.size(); }
  size_t pos() const { return pos_; }
  char peek() const { return done() ? '\0' : s_[pos_]; }
  void skip() { ++pos_; }
  // Reads exactly n ASCII digits; false if any is missing or not a digit.
  bool digits(int n, int& out) {
    int v = 0;
    for (int i = 0; i < n; ++i) {
      if (done() || s_[pos_] < '0' || s_[pos_] > '9') return false;
      v = v * 10 + (s_[pos_] - '0');
      ++pos_;
    }
    out = v;
    return true;
  }
  bool expect(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

constexpr std::string_view kForm = "use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.ffffff]Z";

tl::unexpected<Error> bad(std::string_view text, std::string_view why) {
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("invalid timestamp '{}': {}", text, why));
}

}  // namespace

Result<TimePoint> parse_timestamp(std::string_view text) {
  using namespace std::chrono;
  if (text.empty()) return bad(text, fmt::format("empty; {}", kForm));
  Cursor c(text);
  int y = 0, mo = 0, d = 0;
  if (!c.digits(4, y) || !c.expect('-') || !c.digits(2, mo) || !c.expect('-') || !c.digits(2, d)) {
    return bad(text, fmt::format("expected a date at character {}; {}", c.pos() + 1, kForm));
  }
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return bad(text, "no such calendar date");
  TimePoint t = time_point_cast<Duration>(sys_days{ymd});
  if (c.done()) return t;

  const char sep = c.peek();
  if (sep != 'T' && sep != 't' && sep != ' ') {
    return bad(text, fmt::format("unexpected '{}' after the date; {}", sep, kForm));
  }
  c.skip();
  int h = 0, mi = 0, s = 0;
  if (!c.digits(2, h) || !c.expect(':') || !c.digits(2, mi) || !c.expect(':') || !c.digits(2, s)) {
    return bad(text, fmt::format("expected HH:MM:SS at character {}", c.pos() + 1));
  }
  if (h > 23 || mi > 59) return bad(text, "hour must be 00-23 and minute 00-59");
  if (s > 59) return bad(text, "second must be 00-59 (leap seconds are not representable)");
  t += hours(h) + minutes(mi) + seconds(s);

  if (c.peek() == '.' || c.peek() == ',') {
    c.skip();
    int64_t micros = 0;
    int n = 0;
    while (!c.done() && c.peek() >= '0' && c.peek() <= '9') {
      if (n < 6) micros = micros * 10 + (c.peek() - '0');
      ++n;
      c.skip();
    }
    if (n == 0 || n > 9) return bad(text, "the fraction of a second needs 1 to 9 digits");
    for (int i = n; i < 6; ++i) micros *= 10;
    t += Duration(micros);
  }

  if (c.done()) {
    return bad(text, "no time zone; append 'Z' for UTC or an offset such as +09:00");
  }
  if (c.peek() == 'Z' || c.peek() == 'z') {
    c.skip();
  } else if (c.peek() == '+' || c.peek() == '-') {
    const bool east = c.peek() == '+';
    c.skip();
    int oh = 0, om = 0;
    if (!c.digits(2, oh)) return bad(text, "the offset must look like +09:00");
    c.expect(':');
    if (!c.digits(2, om) || oh > 23 || om > 59) {
      return bad(text, "the offset must look like +09:00");
    }
    const Duration offset = hours(oh) + minutes(om);
    t = east ? t - offset : t + offset;
  } else {
    return bad(text, fmt::format("unexpected '{}' at character {}; the zone must be Z or +hh:mm",
                                 c.peek(), c.pos() + 1));
  }
  if (!c.done()) {
    return bad(text, fmt::format("unexpected trailing text at character {}", c.pos() + 1));
  }
  return t;
}

std::string format_timestamp(TimePoint t) {
  using namespace std::chrono;
  const sys_days day_start = floor<days>(t);
  const year_month_day ymd{day_start};
  const hh_mm_ss<Duration> tod{t - day_start};
  const auto micros = static_cast<long long>(tod.subseconds().count());
  std::string frac;
  if (micros != 0) {
    frac =
        micros % 1000 == 0 ? fmt::format(".{:03}", micros / 1000) : fmt::format(".{:06}", micros);
  }
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                     tod.hours().count(), tod.minutes().count(), tod.seconds().count(), frac);
}

TimePoint SystemClock::now() const {
  return std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
}

}  // namespace qmtl
