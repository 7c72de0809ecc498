#include "qmtl/sdk/feed.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <system_error>
#include <thread>

#include "qmtl/core/file.h"
#include "qmtl/metrics/csv.h"

namespace qmtl::sdk {
namespace {

constexpr std::chrono::milliseconds kFollowPoll{20};

}  // namespace

Result<BarCsvOptions::Price> parse_price_column(std::string_view name) {
  const std::string k = metrics::header_key(name);
  if (k == "close") return BarCsvOptions::Price::kClose;
  if (k == "adjclose") return BarCsvOptions::Price::kAdjClose;
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("price '{}' is not close or adj_close", name));
}

Result<void> BarCsvParser::header(std::string_view text) {
  splitter_ = metrics::CsvSplitter(metrics::CsvSplitter::detect(text));
  auto cells = splitter_.split(text);
  if (!cells) return propagate(cells);
  std::vector<std::string> keys;
  keys.reserve(cells->size());
  for (auto c : *cells) keys.push_back(metrics::header_key(c));
  auto find = [&](std::initializer_list<std::string_view> names) {
    for (auto n : names) {
      if (auto it = std::find(keys.begin(), keys.end(), n); it != keys.end()) {
        return static_cast<int>(it - keys.begin());
      }
    }
    return -1;
  };
  Columns c;
  const auto time = metrics::find_time_columns(keys);
  c.ohlcv = {find({"open"}), find({"high"}), find({"low"}), find({"close"}),
             find({"volume", "vol"})};
  c.adj_close = find({"adjclose"});
  if (!time || std::find(c.ohlcv.begin(), c.ohlcv.end(), -1) != c.ohlcv.end()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the header must name a date column and open, high, low, close, volume");
  }
  if (options_.price == BarCsvOptions::Price::kAdjClose && c.adj_close < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the price is adj_close but the header has no 'Adj Close' column");
  }
  c.time = *time;
  c.widest = std::max({*std::max_element(c.ohlcv.begin(), c.ohlcv.end()), c.adj_close, c.time.at,
                       c.time.time_of_day});
  cols_ = c;
  return {};
}

Result<std::optional<broker::Bar>> BarCsvParser::line(std::string_view text) {
  ++line_no_;
  auto fail = [&](std::string_view msg) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{}:{}: {}", source_, line_no_, msg));
  };
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  if (text.find_first_not_of(" \t") == std::string_view::npos) return std::nullopt;
  if (!cols_) {
    // A UTF-8 byte-order mark from spreadsheet exports is not part of the name.
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    if (auto h = header(text); !h) return fail(h.error().message);
    return std::nullopt;
  }
  auto split = splitter_.split(text);
  if (!split) return fail(split.error().message);
  const auto cells = *split;
  const Columns& c = *cols_;
  if (static_cast<int>(cells.size()) <= c.widest) {
    return fail(fmt::format("{} cells; the header has at least {}", cells.size(), c.widest + 1));
  }
  const auto cell = [&](int col) { return cells[static_cast<size_t>(col)]; };
  bool missing =
      metrics::is_missing(cell(c.time.at)) ||
      (c.time.time_of_day >= 0 && metrics::is_missing(cell(c.time.time_of_day))) ||
      (options_.price == BarCsvOptions::Price::kAdjClose && metrics::is_missing(cell(c.adj_close)));
  for (int col : c.ohlcv) missing = missing || metrics::is_missing(cell(col));
  if (missing) {
    if (skipped_++ == 0) first_skipped_ = line_no_;
    return std::nullopt;
  }
  auto ts = metrics::row_time(cells, c.time, options_.time);
  if (!ts) return fail(ts.error().message);
  const auto number = [&](int col) -> Result<double> {
    const auto x = cell(col);
    const auto v = metrics::parse_csv_number(x, splitter_.delimiter());
    if (!v) return make_error(ErrorCode::kInvalidArgument, fmt::format("'{}' is not a number", x));
    return *v;
  };
  std::array<double, 5> v{};
  for (size_t f = 0; f < 5; ++f) {
    auto x = number(c.ohlcv[f]);
    if (!x) return fail(x.error().message);
    v[f] = *x;
  }
  if (options_.price == BarCsvOptions::Price::kAdjClose) {
    auto adj = number(c.adj_close);
    if (!adj) return fail(adj.error().message);
    if (!(v[3] > 0) || !(*adj > 0)) return fail("close and adj close must be positive");
    const double k = *adj / v[3];
    for (size_t f = 0; f < 3; ++f) v[f] *= k;
    v[3] = *adj;  // exactly the file's adjusted close, not close * k rounded
  }
  broker::Bar bar{.ts = *ts,
                  .symbol = symbol_,
                  .open = v[0],
                  .high = v[1],
                  .low = v[2],
                  .close = v[3],
                  .volume = v[4]};
  if (auto r = broker::validate_bar(bar); !r) return fail(r.error().message);
  if (last_ts_ && !(*last_ts_ < bar.ts)) return fail("rows must be in increasing time order");
  last_ts_ = bar.ts;
  return bar;
}

Result<BarFile> parse_bars_csv(std::string_view text, std::string_view source,
                               const std::string& symbol, const BarCsvOptions& options) {
  BarCsvParser parser{std::string(source), symbol, options};
  BarFile out;
  size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    auto bar = parser.line(text.substr(pos, end - pos));
    pos = end + 1;
    if (!bar) return propagate(bar);
    if (*bar) out.bars.push_back(std::move(**bar));
  }
  if (!parser.has_header()) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("{}: the file is empty", source));
  }
  out.skipped = parser.skipped();
  out.first_skipped_line = parser.first_skipped_line();
  return out;
}

Result<BarFile> read_bars_csv(const std::string& path, const std::string& symbol,
                              const BarCsvOptions& options) {
  auto text = read_file(path, "bar file", kMaxDataBytes);
  if (!text) return propagate(text);
  return parse_bars_csv(*text, path, symbol, options);
}

CsvBarFeed::CsvBarFeed(int fd, bool owns, bool follow, bool is_file, std::string source,
                       const std::string& symbol)
    : fd_(fd),
      owns_(owns),
      follow_(follow),
      is_file_(is_file),
      parser_(std::move(source), symbol) {}

CsvBarFeed::~CsvBarFeed() {
  if (owns_ && fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<CsvBarFeed>> CsvBarFeed::open_file(const std::string& path,
                                                          const std::string& symbol, bool follow) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(ErrorCode::kNotFound, fmt::format("cannot open bar feed '{}': {}", path,
                                                        std::generic_category().message(errno)));
  }
  std::unique_ptr<CsvBarFeed> feed(new CsvBarFeed(fd, true, follow, true, path, symbol));
  // What is in a followed file now is history (see FeedItem::replayed).
  struct stat st {};
  if (follow && ::fstat(fd, &st) == 0) feed->history_bytes_ = static_cast<uint64_t>(st.st_size);
  return feed;
}

std::unique_ptr<CsvBarFeed> CsvBarFeed::from_fd(int fd, const std::string& symbol,
                                                std::string source) {
  return std::unique_ptr<CsvBarFeed>(
      new CsvBarFeed(fd, false, false, false, std::move(source), symbol));
}

Result<std::optional<size_t>> CsvBarFeed::read_some(std::chrono::milliseconds wait) {
  if (!is_file_) {
    pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, wait.count())));
    if (ready < 0 && errno != EINTR) {
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("{}: poll failed: {}", parser_.source(),
                                    std::generic_category().message(errno)));
    }
    if (ready <= 0) return std::optional<size_t>();
  } else if (follow_) {
    struct stat st {};
    if (::fstat(fd_, &st) == 0 && static_cast<uint64_t>(st.st_size) < offset_) {
      return make_error(ErrorCode::kFailedPrecondition,
                        fmt::format("{}: the file shrank from {} to {} bytes while being followed; "
                                    "append to a feed file, do not rewrite it",
                                    parser_.source(), offset_, st.st_size));
    }
  }
  char buf[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("{}: read failed: {}", parser_.source(),
                                    std::generic_category().message(errno)));
    }
    offset_ += static_cast<uint64_t>(n);
    pending_.append(buf, static_cast<size_t>(n));
    return std::optional<size_t>(static_cast<size_t>(n));
  }
}

Result<FeedItem> CsvBarFeed::next(std::chrono::milliseconds timeout) {
  if (failed_) return tl::unexpected(*failed_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto fail = [this](Error e) -> Result<FeedItem> {
    failed_ = e;
    return tl::unexpected(std::move(e));
  };
  for (;;) {
    // A complete line first.
    while (true) {
      const auto nl = pending_.find('\n');
      if (nl == std::string::npos) break;
      auto bar = parser_.line(std::string_view(pending_).substr(0, nl));
      pending_.erase(0, nl + 1);
      consumed_ += nl + 1;
      if (!bar) return fail(bar.error());
      if (*bar) {
        current_ = std::move(**bar);
        return FeedItem{.kind = FeedItem::Kind::kBar,
                        .bar = &current_,
                        .replayed = consumed_ <= history_bytes_};
      }
    }
    if (ended_) {
      // The last line may lack its newline.
      if (!pending_.empty()) {
        std::string last = std::move(pending_);
        pending_.clear();
        auto bar = parser_.line(last);
        if (!bar) return fail(bar.error());
        if (*bar) {
          current_ = std::move(**bar);
          return FeedItem{.kind = FeedItem::Kind::kBar, .bar = &current_};
        }
      }
      return FeedItem{.kind = FeedItem::Kind::kEnd};
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto n = read_some(std::max(left, std::chrono::milliseconds(0)));
    if (!n) return fail(n.error());
    if (!*n) return FeedItem{};  // nothing within the timeout
    if (**n > 0) continue;
    if (!follow_) {
      ended_ = true;
      continue;
    }
    // Following a file at its end: wait for it to grow.
    if (left <= std::chrono::milliseconds(0)) return FeedItem{};
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(left, kFollowPoll));
  }
}

}  // namespace qmtl::sdk
