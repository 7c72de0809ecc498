// libFuzzer target for the CSV readers: bars (sdk/feed.h) and performance
// series (metrics/csv.h), in every option the user can set.
//
// The first byte picks the reader and its options; the rest is the file. Beyond
// "no crash, no leak, no UB", it checks what a backtest relies on: bars come out
// valid (finite, consistent) in strictly increasing time, every error names the
// source and a line, and a skipped row is never also a bar.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "qmtl/metrics/csv.h"
#include "qmtl/sdk/feed.h"

namespace {

using namespace qmtl;

void check(bool ok) {
  if (!ok) std::abort();
}

size_t lines_of(std::string_view text) {
  size_t n = 1;
  for (char c : text) n += c == '\n' ? 1 : 0;
  return n;
}

void fuzz_bars(std::string_view text, uint8_t flags) {
  sdk::BarCsvOptions options;
  if (flags & 2) options.price = sdk::BarCsvOptions::Price::kAdjClose;
  if (flags & 4) options.time.utc_offset = std::chrono::minutes((flags & 8) ? 90 : -300);
  auto r = sdk::parse_bars_csv(text, "f.csv", "X", options);
  if (!r) {
    check(r.error().message.starts_with("f.csv"));
    return;
  }
  check(r->bars.size() + r->skipped <= lines_of(text));
  check(r->skipped == 0 || r->first_skipped_line >= 2);
  for (size_t i = 0; i < r->bars.size(); ++i) {
    const auto& b = r->bars[i];
    check(broker::validate_bar(b).has_value());
    check(i == 0 || r->bars[i - 1].ts < b.ts);
  }
}

void fuzz_series(std::string_view text, uint8_t flags) {
  metrics::TimeOptions options;
  if (flags & 4) options.utc_offset = std::chrono::hours(1);
  auto r = metrics::parse_series_csv(text, "f.csv", options);
  if (!r) {
    check(r.error().message.starts_with("f.csv:"));
    return;
  }
  check(r->samples.size() + r->skipped <= lines_of(text));
  for (size_t i = 0; i < r->samples.size(); ++i) {
    check(std::isfinite(r->samples[i].value));
    check(i == 0 || !(r->samples[i].ts < r->samples[i - 1].ts));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (flags & 1) {
    fuzz_series(text, flags);
  } else {
    fuzz_bars(text, flags);
  }
  return 0;
}
