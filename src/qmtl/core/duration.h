// Durations written the way operators write them: 500ms, 30s, 5m, 1h, 1d, 4w.
//
// A duration is one non-negative whole number followed by one unit:
//   us (microseconds), ms, s, m (minutes), h, d (24 h), w (7 d).
// Months and years are refused because their length varies; the message suggests
// days instead. Parsing is strict: no whitespace, no sign, no fraction.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "qmtl/core/result.h"
#include "qmtl/core/time.h"

namespace qmtl {

// Parses `text` into a Duration. "0s" is valid (zero); a value that does not fit
// in 64-bit microseconds is an error, never a wrapped number.
Result<Duration> parse_duration(std::string_view text);

// Writes `d` with the largest unit that represents it exactly: 4w, 90m, 1500ms.
// parse_duration(format_duration(d)) == d for every d >= 0. Negative durations
// are written with a leading '-' (for display only; parse refuses them).
std::string format_duration(Duration d);

}  // namespace qmtl
