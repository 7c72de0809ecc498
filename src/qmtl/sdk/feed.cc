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

std::vector<std::string_view> split(std::string_view line) {
  std::vector<std::string_view> cells;
  size_t start = 0;
  for (;;) {
    const auto comma = line.find(',', start);
    cells.push_back(line.substr(start, comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return cells;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

constexpr std::chrono::milliseconds kFollowPoll{20};

}  // namespace

Result<std::optional<broker::Bar>> BarCsvParser::line(std::string_view text) {
  ++line_no_;
  auto fail = [&](std::string msg) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{}:{}: {}", source_, line_no_, std::move(msg)));
  };
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  const auto cells = split(text);
  if (col_[0] < 0) {
    std::array<int, 6> col{-1, -1, -1, -1, -1, -1};
    for (size_t i = 0; i < cells.size(); ++i) {
      const auto name = lower(cells[i]);
      if (name == "date" || name == "timestamp" || name == "ts" || name == "time" ||
          name == "datetime") {
        col[0] = static_cast<int>(i);
      }
      const std::array<std::string_view, 5> fields{"open", "high", "low", "close", "volume"};
      for (size_t f = 0; f < fields.size(); ++f) {
        if (name == fields[f]) col[f + 1] = static_cast<int>(i);
      }
    }
    if (std::find(col.begin(), col.end(), -1) != col.end()) {
      return fail("the header must name a date column and open, high, low, close, volume");
    }
    col_ = col;
    return std::nullopt;
  }
  const int widest = *std::max_element(col_.begin(), col_.end());
  if (static_cast<int>(cells.size()) <= widest) {
    return fail(fmt::format("{} cells; the header has at least {}", cells.size(), widest + 1));
  }
  auto ts = metrics::parse_time_cell(cells[static_cast<size_t>(col_[0])]);
  if (!ts) return fail(ts.error().message);
  std::array<double, 5> v{};
  for (size_t f = 0; f < 5; ++f) {
    const auto cell = cells[static_cast<size_t>(col_[f + 1])];
    const auto [p, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v[f]);
    if (ec != std::errc() || p != cell.data() + cell.size()) {
      return fail(fmt::format("'{}' is not a number", cell));
    }
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

Result<std::vector<broker::Bar>> parse_bars_csv(std::string_view text, std::string_view source,
                                                const std::string& symbol) {
  BarCsvParser parser{std::string(source), symbol};
  std::vector<broker::Bar> bars;
  size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    auto bar = parser.line(text.substr(pos, end - pos));
    pos = end + 1;
    if (!bar) return propagate(bar);
    if (*bar) bars.push_back(std::move(**bar));
  }
  if (!parser.has_header()) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("{}: the file is empty", source));
  }
  return bars;
}

Result<std::vector<broker::Bar>> read_bars_csv(const std::string& path, const std::string& symbol) {
  auto text = read_file(path, "bar file");
  if (!text) return propagate(text);
  return parse_bars_csv(*text, path, symbol);
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
