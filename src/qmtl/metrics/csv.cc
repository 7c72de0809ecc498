#include "qmtl/metrics/csv.h"

#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <optional>

#include "qmtl/core/file.h"

namespace qmtl::metrics {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return out;
}

std::optional<double> parse_number(std::string_view s) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  double v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// YYYYMMDD -> YYYY-MM-DD (callers check it is eight digits).
std::string iso_date(std::string_view d) {
  return fmt::format("{}-{}-{}", d.substr(0, 4), d.substr(4, 2), d.substr(6, 2));
}

constexpr std::string_view kNoZone =
    "has no time zone; give the zone it was written in (--tz UTC, --tz +01:00, --tz "
    "Europe/Berlin)";

// Epoch seconds, milliseconds or microseconds, by magnitude (csv.h).
Result<TimePoint> parse_epoch(std::string_view cell) {
  auto bad = [&] {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("'{}' is not epoch seconds, milliseconds or microseconds (nor "
                                  "an ISO-8601 time)",
                                  cell));
  };
  const bool integral = cell.find('.') == std::string_view::npos;
  double magnitude = 0;
  int64_t whole = 0;
  if (integral) {
    const auto [p, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), whole);
    if (ec != std::errc() || p != cell.data() + cell.size()) return bad();
    magnitude = std::abs(static_cast<double>(whole));
  } else {
    auto v = parse_number(cell);
    if (!v || !std::isfinite(*v)) return bad();
    magnitude = std::abs(*v);
  }
  int64_t per_second = 0;  // the unit's count per second
  if (magnitude < 1e11) {
    per_second = 1;
  } else if (magnitude < 1e14) {
    per_second = 1'000;
  } else if (magnitude < 1e17) {
    per_second = 1'000'000;
  } else {
    return bad();
  }
  // Integers convert exactly; a fraction is rounded to the microsecond.
  if (integral) return TimePoint(Duration(whole * (1'000'000 / per_second)));
  const double us = *parse_number(cell) * (1e6 / static_cast<double>(per_second));
  return TimePoint(Duration(static_cast<Duration::rep>(std::llround(us))));
}

}  // namespace

char CsvSplitter::detect(std::string_view header) {
  std::array<std::pair<char, size_t>, 3> counts{{{',', 0}, {';', 0}, {'\t', 0}}};
  bool quoted = false;
  for (char c : header) {
    if (c == '"') quoted = !quoted;
    if (quoted) continue;
    for (auto& [d, n] : counts) n += c == d ? 1 : 0;
  }
  // Ties go to the earlier: a comma, then a semicolon.
  const auto best =
      std::max_element(counts.begin(), counts.end(),
                       [](const auto& a, const auto& b) { return a.second < b.second; });
  return best->second == 0 ? ',' : best->first;
}

Result<std::span<const std::string_view>> CsvSplitter::split(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  cells_.clear();
  unescaped_.clear();
  unescaped_.reserve(line.size());  // views into it stay valid for the whole line
  const auto blank = [&](char c) { return c == ' ' || (c == '\t' && delim_ != '\t'); };
  size_t i = 0;
  for (;;) {
    while (i < line.size() && blank(line[i])) ++i;
    if (i < line.size() && line[i] == '"') {
      // Find the closing quote; "" inside is an escaped quote.
      const size_t open = i++;
      bool escaped = false, closed = false;
      for (; i < line.size(); ++i) {
        if (line[i] != '"') continue;
        if (i + 1 < line.size() && line[i + 1] == '"') {
          escaped = true;
          ++i;
          continue;
        }
        closed = true;
        break;
      }
      if (!closed) {
        return make_error(
            ErrorCode::kInvalidArgument,
            fmt::format("cell {} opens a quote that is not closed", cells_.size() + 1));
      }
      std::string_view cell = line.substr(open + 1, i - open - 1);
      if (escaped) {
        const size_t from = unescaped_.size();
        for (size_t k = 0; k < cell.size(); ++k) {
          unescaped_.push_back(cell[k]);
          if (cell[k] == '"') ++k;  // the pair's second quote
        }
        cell = std::string_view(unescaped_.data() + from, unescaped_.size() - from);
      }
      ++i;  // past the closing quote
      while (i < line.size() && blank(line[i])) ++i;
      if (i < line.size() && line[i] != delim_) {
        return make_error(
            ErrorCode::kInvalidArgument,
            fmt::format("cell {} has text after its closing quote", cells_.size() + 1));
      }
      cells_.push_back(cell);
    } else {
      size_t end = line.find(delim_, i);
      if (end == std::string_view::npos) end = line.size();
      std::string_view cell = line.substr(i, end - i);
      while (!cell.empty() && blank(cell.back())) cell.remove_suffix(1);
      cells_.push_back(cell);
      i = end;
    }
    if (i >= line.size()) break;
    ++i;  // past the delimiter
    if (i == line.size()) {
      cells_.emplace_back();  // a trailing delimiter ends with an empty cell
      break;
    }
  }
  return std::span<const std::string_view>(cells_);
}

std::string header_key(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (c == ' ' || c == '_' || c == '-' || c == '.' || c == '/' || c == '<' || c == '>') continue;
    out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  return out;
}

bool is_missing(std::string_view cell) {
  if (cell.empty()) return true;
  if (cell.size() > 4) return false;
  const std::string l = lower(cell);
  return l == "null" || l == "nan" || l == "na" || l == "n/a" || l == "-";
}

std::optional<double> parse_csv_number(std::string_view cell, char delimiter) {
  if (delimiter == ';' && cell.find(',') != std::string_view::npos &&
      cell.find('.') == std::string_view::npos && cell.size() < 64) {
    std::array<char, 64> buf{};
    std::copy(cell.begin(), cell.end(), buf.begin());
    std::replace(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(cell.size()), ',', '.');
    return parse_number(std::string_view(buf.data(), cell.size()));
  }
  return parse_number(cell);
}

Result<Duration> parse_utc_offset(std::string_view text) {
  auto bad = [&] {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("'{}' is not an offset from UTC; give UTC, +01:00, -0530 or +09", text));
  };
  if (text == "UTC" || text == "utc" || text == "Z" || text == "z") return Duration::zero();
  if (text.size() < 3 || (text[0] != '+' && text[0] != '-')) return bad();
  std::string digits;
  for (char c : text.substr(1)) {
    if (c != ':') digits.push_back(c);
  }
  if (!all_digits(digits) || (digits.size() != 2 && digits.size() != 4)) return bad();
  const int h = std::stoi(digits.substr(0, 2));
  const int m = digits.size() == 4 ? std::stoi(digits.substr(2, 2)) : 0;
  if (h > 14 || m > 59) return bad();
  const Duration d = std::chrono::hours(h) + std::chrono::minutes(m);
  return text[0] == '-' ? -d : d;
}

Result<NamedZone> NamedZone::find(std::string_view name) {
  try {
    return NamedZone(date::locate_zone(name), std::string(name));
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("'{}' is not a time zone of this system's tzdata ({}); give "
                                  "UTC, an offset such as +01:00, or a name such as Europe/Berlin",
                                  name, e.what()));
  }
}

Result<TimePoint> NamedZone::to_utc(TimePoint local) const {
  const date::local_time<Duration> wall{local.time_since_epoch()};
  const auto info = zone_->get_info(wall);
  const auto at = [&] { return format_timestamp(local).substr(0, 19); };
  switch (info.result) {
    case date::local_info::unique:
      return TimePoint(local.time_since_epoch() - info.first.offset);
    case date::local_info::nonexistent:
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("{} did not happen in {} (the clocks went forward); write the "
                                    "file's times with their offset",
                                    at(), name_));
    default:
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("{} happened twice in {} (the clocks went back); write the "
                                    "file's times with their offset",
                                    at(), name_));
  }
}

Result<TimeOptions> parse_time_zone(std::string_view text) {
  TimeOptions out;
  const bool offset_like = text == "UTC" || text == "utc" || text == "Z" || text == "z" ||
                           (!text.empty() && (text[0] == '+' || text[0] == '-'));
  if (offset_like) {
    auto off = parse_utc_offset(text);
    if (!off) return propagate(off);
    out.utc_offset = *off;
    return out;
  }
  auto zone = NamedZone::find(text);
  if (!zone) return propagate(zone);
  out.zone = std::move(*zone);
  return out;
}

namespace {

// Whether an ISO date-time names its zone (Z or an offset after the time); a
// bare date counts as naming it (midnight UTC, as parse_timestamp reads it).
bool names_zone(std::string_view t) {
  if (t.size() <= 10) return true;
  return t.find_first_of("Zz+-", 11) != std::string_view::npos;
}

// An ISO date-time: as written when it names its zone, else in the caller's
// offset, else refused.
Result<TimePoint> parse_iso(std::string_view cell, const TimeOptions& options) {
  if (names_zone(cell)) return parse_timestamp(cell);
  std::string utc;
  utc.reserve(cell.size() + 1);
  utc.append(cell).push_back('Z');
  auto t = parse_timestamp(utc);
  if (!t) return t;
  if (options.zone) return options.zone->to_utc(*t);
  if (!options.utc_offset) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("'{}' {}", cell, kNoZone));
  }
  return *t - *options.utc_offset;
}

}  // namespace

Result<TimePoint> parse_time_cell(std::string_view cell, const TimeOptions& options) {
  if (cell.size() == 8 && all_digits(cell)) return parse_timestamp(iso_date(cell));
  const bool numeric = !cell.empty() && std::all_of(cell.begin(), cell.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '.' || c == '-';
  }) && cell.find('-', 1) == std::string_view::npos;
  if (numeric) return parse_epoch(cell);
  return parse_iso(cell, options);
}

Result<TimePoint> parse_date_and_time(std::string_view date, std::string_view time,
                                      const TimeOptions& options) {
  // YYYY-MM-DDTHH:MM:SS then the time's fraction and zone, built in place:
  // a minute-bar file has millions of rows.
  std::string at;
  at.reserve(20 + time.size());
  if (date.size() == 8 && all_digits(date)) {
    at.append(date.substr(0, 4)).append("-").append(date.substr(4, 2)).append("-");
    at.append(date.substr(6, 2));
  } else {
    at.append(date);
  }
  const bool is_date = at.size() == 10 && at[4] == '-' && at[7] == '-';
  if (!is_date || !parse_timestamp(at)) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("'{}' is not a date (2024-03-01 or 20240301)", date));
  }
  at.push_back('T');
  if (all_digits(time) && (time.size() == 4 || time.size() == 6)) {  // HHMM[SS]
    at.append(time.substr(0, 2)).append(":").append(time.substr(2, 2)).append(":");
    at.append(time.size() == 6 ? time.substr(4, 2) : std::string_view("00"));
  } else if (time.size() >= 5 && (time.size() == 5 || time[5] != ':')) {
    at.append(time.substr(0, 5)).append(":00").append(time.substr(5));  // HH:MM[zone]
  } else {
    at.append(time);
  }
  auto t = parse_iso(at, options);
  if (!t) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("date '{}' and time '{}': {}", date, time, t.error().message));
  }
  return t;
}

std::optional<TimeColumns> find_time_columns(std::span<const std::string> keys) {
  auto find = [&](std::string_view k) {
    const auto it = std::find(keys.begin(), keys.end(), k);
    return it == keys.end() ? -1 : static_cast<int>(it - keys.begin());
  };
  const int date = find("date"), time = find("time");
  if (date >= 0 && time >= 0) return TimeColumns{.at = date, .time_of_day = time};
  for (std::string_view k : {"timestamp", "datetime", "date", "time", "ts"}) {
    if (const int c = find(k); c >= 0) return TimeColumns{.at = c};
  }
  return std::nullopt;
}

Result<TimePoint> row_time(std::span<const std::string_view> cells, const TimeColumns& cols,
                           const TimeOptions& options) {
  const auto at = cells[static_cast<size_t>(cols.at)];
  if (cols.time_of_day < 0) return parse_time_cell(at, options);
  return parse_date_and_time(at, cells[static_cast<size_t>(cols.time_of_day)], options);
}

Result<CsvSeries> parse_series_csv(std::string_view text, std::string_view source,
                                   const TimeOptions& options) {
  auto fail = [&](size_t line, std::string_view why) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("{}:{}: {}", source, line, why));
  };
  size_t pos = 0, line_no = 0;
  auto next_line = [&]() -> std::optional<std::string_view> {
    if (pos >= text.size()) return std::nullopt;
    const size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    return line;
  };
  auto is_blank = [](std::string_view l) {
    return l.find_first_not_of(" \t\r") == std::string_view::npos;
  };

  auto header_line = next_line();
  // A UTF-8 byte-order mark from spreadsheet exports is not part of the name.
  if (header_line && header_line->starts_with("\xEF\xBB\xBF")) header_line->remove_prefix(3);
  if (!header_line || is_blank(*header_line)) {
    return fail(1, "empty file; expected a header such as 'timestamp,equity'");
  }
  CsvSplitter splitter(CsvSplitter::detect(*header_line));
  auto header_cells = splitter.split(*header_line);
  if (!header_cells) return fail(1, header_cells.error().message);
  const std::vector<std::string> header(header_cells->begin(), header_cells->end());
  std::vector<std::string> keys;
  keys.reserve(header.size());
  for (const auto& h : header) keys.push_back(header_key(h));
  const auto time_cols = find_time_columns(keys);
  if (!time_cols) return fail(1, "no timestamp column; name one 'timestamp'");
  std::optional<size_t> value_col;
  CsvSeries out;
  for (size_t c = 0; c < keys.size(); ++c) {
    std::optional<SeriesKind> kind;
    if (keys[c] == "equity") kind = SeriesKind::kEquity;
    if (keys[c] == "pnl") kind = SeriesKind::kPnl;
    if (keys[c] == "return" || keys[c] == "returns") kind = SeriesKind::kReturn;
    if (!kind) continue;
    if (value_col) {
      return fail(1, fmt::format("columns '{}' and '{}' both hold values; keep one of equity, "
                                 "pnl or return",
                                 header[*value_col], header[c]));
    }
    value_col = c;
    out.kind = *kind;
  }
  if (!value_col) return fail(1, "no value column; name one 'equity', 'pnl' or 'return'");

  std::optional<TimePoint> prev;
  while (auto line = next_line()) {
    if (is_blank(*line)) continue;
    auto cells = splitter.split(*line);
    if (!cells) return fail(line_no, cells.error().message);
    if (cells->size() != header.size()) {
      return fail(line_no,
                  fmt::format("{} cells, but the header has {}", cells->size(), header.size()));
    }
    const auto value_cell = (*cells)[*value_col];
    const auto time_cell = (*cells)[static_cast<size_t>(time_cols->at)];
    if (is_missing(value_cell) || is_missing(time_cell)) {
      if (out.skipped++ == 0) out.first_skipped_line = line_no;
      continue;
    }
    auto ts = row_time(*cells, *time_cols, options);
    if (!ts) return fail(line_no, ts.error().message);
    if (prev && *ts < *prev) {
      return fail(line_no, fmt::format("timestamp {} is earlier than the row before ({}); sort "
                                       "the rows by time",
                                       time_cell, format_timestamp(*prev)));
    }
    prev = *ts;
    const auto v = parse_csv_number(value_cell, splitter.delimiter());
    if (!v || !std::isfinite(*v)) {
      return fail(line_no, fmt::format("'{}' in column '{}' is not a finite number", value_cell,
                                       header[*value_col]));
    }
    out.samples.push_back({*ts, *v});
  }
  return out;
}

Result<CsvSeries> read_series_csv(const std::string& path, const TimeOptions& options) {
  auto text = read_file(path, "file", kMaxDataBytes);
  if (!text) return propagate(text);
  return parse_series_csv(*text, path, options);
}

}  // namespace qmtl::metrics
