#include "qmtl/metrics/csv.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <optional>

#include "qmtl/core/file.h"

namespace qmtl::metrics {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

std::vector<std::string_view> split(std::string_view line) {
  std::vector<std::string_view> cells;
  size_t start = 0;
  for (;;) {
    const size_t comma = line.find(',', start);
    cells.push_back(
        trim(line.substr(start, comma == std::string_view::npos ? comma : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return cells;
}

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

}  // namespace

Result<TimePoint> parse_time_cell(std::string_view cell) {
  const bool numeric = !cell.empty() && std::all_of(cell.begin(), cell.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '.' || c == '-';
  }) && cell.find('-', 1) == std::string_view::npos;
  if (numeric) {
    auto secs = parse_number(cell);
    // +-2^53 microseconds keeps every value exact; far beyond any real timestamp.
    if (!secs || !std::isfinite(*secs) || std::abs(*secs) > 9.0e9) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("invalid epoch seconds '{}'", cell));
    }
    return TimePoint(Duration(static_cast<Duration::rep>(std::llround(*secs * 1e6))));
  }
  return parse_timestamp(cell);
}

Result<CsvSeries> parse_series_csv(std::string_view text, std::string_view source) {
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

  auto header_line = next_line();
  // A UTF-8 byte-order mark from spreadsheet exports is not part of the name.
  if (header_line && header_line->starts_with("\xEF\xBB\xBF")) header_line->remove_prefix(3);
  if (!header_line || trim(*header_line).empty()) {
    return fail(1, "empty file; expected a header such as 'timestamp,equity'");
  }
  const auto header = split(*header_line);
  std::optional<size_t> time_col, value_col;
  CsvSeries out;
  constexpr std::array<std::string_view, 5> kTimeNames{"timestamp", "ts", "time", "date",
                                                       "datetime"};
  for (size_t c = 0; c < header.size(); ++c) {
    const std::string name = lower(header[c]);
    if (std::find(kTimeNames.begin(), kTimeNames.end(), name) != kTimeNames.end()) {
      if (time_col) return fail(1, "more than one timestamp column");
      time_col = c;
      continue;
    }
    std::optional<SeriesKind> kind;
    if (name == "equity") kind = SeriesKind::kEquity;
    if (name == "pnl") kind = SeriesKind::kPnl;
    if (name == "return" || name == "returns") kind = SeriesKind::kReturn;
    if (!kind) continue;
    if (value_col) {
      return fail(1, fmt::format("columns '{}' and '{}' both hold values; keep one of equity, "
                                 "pnl or return",
                                 header[*value_col], header[c]));
    }
    value_col = c;
    out.kind = *kind;
  }
  if (!time_col) return fail(1, "no timestamp column; name one 'timestamp'");
  if (!value_col) return fail(1, "no value column; name one 'equity', 'pnl' or 'return'");

  std::optional<TimePoint> prev;
  while (auto line = next_line()) {
    if (trim(*line).empty()) continue;
    const auto cells = split(*line);
    if (cells.size() != header.size()) {
      return fail(line_no,
                  fmt::format("{} cells, but the header has {}", cells.size(), header.size()));
    }
    auto ts = parse_time_cell(cells[*time_col]);
    if (!ts) return fail(line_no, ts.error().message);
    if (prev && *ts < *prev) {
      return fail(line_no, fmt::format("timestamp {} is earlier than the row before ({}); sort "
                                       "the rows by time",
                                       cells[*time_col], format_timestamp(*prev)));
    }
    prev = *ts;
    const auto v = parse_number(cells[*value_col]);
    if (!v || !std::isfinite(*v)) {
      return fail(line_no, fmt::format("'{}' in column '{}' is not a finite number",
                                       cells[*value_col], header[*value_col]));
    }
    out.samples.push_back({*ts, *v});
  }
  return out;
}

Result<CsvSeries> read_series_csv(const std::string& path) {
  auto text = read_file(path);
  if (!text) return propagate(text);
  return parse_series_csv(*text, path);
}

}  // namespace qmtl::metrics
