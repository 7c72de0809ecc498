// Reading performance series from CSV files.
//
// The header row names a timestamp column (`timestamp`, `ts`, `time`, `date` or
// `datetime`) and exactly one value column (`equity`, `pnl`, `return` or
// `returns`); other columns are ignored. Names are case-insensitive. Timestamps
// are ISO-8601 (see parse_timestamp) or epoch seconds (digits, optional fraction).
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "qmtl/metrics/series.h"

namespace qmtl::metrics {

struct CsvSeries {
  SeriesKind kind = SeriesKind::kEquity;
  std::vector<Sample> samples;
};

// Parses CSV text. `source` names it in errors ("file.csv:12: ..."). Errors are
// kInvalidArgument and name the line and column; rows out of time order are an
// error naming the row, not silently sorted.
Result<CsvSeries> parse_series_csv(std::string_view text, std::string_view source);

// Reads and parses the file at `path`. kNotFound if it cannot be opened.
Result<CsvSeries> read_series_csv(const std::string& path);

// Epoch seconds ("1709285400", "1709285400.25") or ISO-8601.
Result<TimePoint> parse_time_cell(std::string_view cell);

}  // namespace qmtl::metrics
