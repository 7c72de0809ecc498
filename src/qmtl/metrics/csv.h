// Reading delimited text as spreadsheets and data vendors write it, and
// performance series from it.
//
// Dialects: the delimiter is ',', ';' or a tab, detected from the header line
// (the one that occurs most outside quotes); a cell may be quoted ("1,5"; ""
// is a quote inside quotes); spaces around a cell are dropped; a UTF-8
// byte-order mark before the header and a '\r' before each newline are
// ignored; with ';' a decimal comma is read as a point. Header names are
// matched by header_key(): without regard to case, spaces, '_', '-', '.', '/'
// and Stooq's angle brackets ("Adj Close", "adj_close" and "<ADJ CLOSE>" are
// one name).
//
// Times (parse_time_cell): ISO-8601 (see parse_timestamp); epoch seconds,
// milliseconds or microseconds, told apart by magnitude (below 1e11 seconds,
// below 1e14 milliseconds, below 1e17 microseconds: each covers dates up to
// the year 5138); eight digits are a date (YYYYMMDD, as Stooq writes it). A
// date column and a time-of-day column (HH:MM, HH:MM:SS[.f] or HHMMSS) make
// one time (parse_date_and_time). A date-time without a zone is refused
// unless the caller gives the offset it was written in: a guess would shift
// every bar.
//
// Series files: the header row names a timestamp column (`timestamp`, `ts`,
// `time`, `date` or `datetime`, or `date` plus `time`) and exactly one value
// column (`equity`, `pnl`, `return` or `returns`); other columns are ignored.
// Rows whose time or value cell is missing (empty, null, NaN, N/A) are skipped
// and counted.
//
// Thread safety: pure functions; a CsvSplitter is used by one thread.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qmtl/metrics/series.h"

namespace date {
class time_zone;  // date/tz.h (Debian's libhowardhinnant-date-dev), kept out of this header
}  // namespace date

namespace qmtl::metrics {

// Splits lines of one file into cells.
class CsvSplitter {
 public:
  // The delimiter of a header line: the one of ',', ';' and tab that occurs
  // most often outside quotes; ',' when none does.
  static char detect(std::string_view header);

  explicit CsvSplitter(char delimiter = ',') : delim_(delimiter) {}
  char delimiter() const { return delim_; }

  // The cells of `line` (without its newline), trimmed and unquoted. The views
  // are valid until the next call. kInvalidArgument when a quote is not closed
  // (the message says which cell).
  Result<std::span<const std::string_view>> split(std::string_view line);

 private:
  char delim_;
  std::vector<std::string_view> cells_;
  std::string unescaped_;  // cells that held "" escapes, rebuilt; never reallocated mid-line
};

// A header name as matched: lower case, without spaces, '_', '-', '.', '/',
// '<' and '>'. "Adj Close" -> "adjclose", "<DATE>" -> "date".
std::string header_key(std::string_view name);

// Whether a cell holds no value: empty, "null", "nan", "na", "n/a" or "-"
// (any case). Rows with such cells where a value is needed are skipped.
bool is_missing(std::string_view cell);

// A number cell: decimal, optionally signed or in exponent form. In a file
// delimited by ';' a decimal comma ("10,5") is read as a decimal point, as
// spreadsheets in most of Europe write it. nullopt when it is not a number.
std::optional<double> parse_csv_number(std::string_view cell, char delimiter);

// An IANA time zone from the system's tzdata ("Europe/Berlin",
// "America/New_York"): the offset of its wall-clock times follows daylight
// saving. Thread safety: immutable once found; share freely.
class NamedZone {
 public:
  // kInvalidArgument naming the zone when tzdata does not know it.
  static Result<NamedZone> find(std::string_view name);
  // The UTC time of wall-clock time `local` (a TimePoint read as if UTC).
  // kInvalidArgument for a time the clocks skipped (spring forward) or went
  // through twice (fall back): a guess would misplace the bar by an hour.
  Result<TimePoint> to_utc(TimePoint local) const;
  const std::string& name() const { return name_; }

 private:
  NamedZone(const date::time_zone* zone, std::string name) : zone_(zone), name_(std::move(name)) {}
  const date::time_zone* zone_;  // owned by tzdata's database, which lives as long as the process
  std::string name_;
};

struct TimeOptions {
  // The offset from UTC that date-times without a zone were written in
  // (zero for UTC). Without it (or `zone`) such a time is an error.
  std::optional<Duration> utc_offset;
  // Or the named zone they were written in; used when set.
  std::optional<NamedZone> zone;
};

// A --tz value: "UTC", an offset ("+01:00", "-0530") or an IANA zone name
// ("Europe/Berlin"). kInvalidArgument naming the accepted forms.
Result<TimeOptions> parse_time_zone(std::string_view text);

// One time cell: see the file comment.
Result<TimePoint> parse_time_cell(std::string_view cell, const TimeOptions& options = {});

// A date cell (ISO date or YYYYMMDD) and a time-of-day cell (HH:MM,
// HH:MM:SS[.fraction] or HHMMSS, optionally with a zone: Z, +01:00).
Result<TimePoint> parse_date_and_time(std::string_view date, std::string_view time,
                                      const TimeOptions& options = {});

// "+01:00", "-0530", "UTC" or "Z": an offset from UTC for TimeOptions.
// kInvalidArgument naming the accepted forms.
Result<Duration> parse_utc_offset(std::string_view text);

// The time columns of a header of keys (header_key): `at` the column holding
// the time or the date; `time_of_day` a separate time column, or -1. nullopt
// when there is none. Names: timestamp, datetime, date, time, ts; a `date`
// and a `time` column together are one time.
struct TimeColumns {
  int at = -1;
  int time_of_day = -1;
};
std::optional<TimeColumns> find_time_columns(std::span<const std::string> keys);

// The time of a row whose cells are `cells`, from `cols`.
Result<TimePoint> row_time(std::span<const std::string_view> cells, const TimeColumns& cols,
                           const TimeOptions& options);

struct CsvSeries {
  SeriesKind kind = SeriesKind::kEquity;
  std::vector<Sample> samples;
  size_t skipped = 0;             // rows without a time or value
  size_t first_skipped_line = 0;  // the first of them, 1-based; 0 when none
};

// Parses CSV text. `source` names it in errors ("file.csv:12: ..."). Errors are
// kInvalidArgument and name the line and column; rows out of time order are an
// error naming the row, not silently sorted.
Result<CsvSeries> parse_series_csv(std::string_view text, std::string_view source,
                                   const TimeOptions& options = {});

// Reads and parses the file at `path`. kNotFound if it cannot be opened.
Result<CsvSeries> read_series_csv(const std::string& path, const TimeOptions& options = {});

}  // namespace qmtl::metrics
