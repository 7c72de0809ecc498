// Bar feeds: where a running strategy's bars come from.
//
// BarFeed is the interface a live runner reads; CsvBarFeed reads OHLCV CSV from
// a file (optionally following it as it grows, like `tail -f`) or from a file
// descriptor such as standard input. A market-data adapter implements the same
// interface.
//
// CSV (the dialects of metrics/csv.h: ',', ';' or tab, quotes, any case): a
// header naming the time (`date`, `datetime`, `timestamp`, `time`, `ts`, or a
// `date` and a `time` column) and `open`, `high`, `low`, `close`, `volume`
// (or `vol`), optionally `adj close`; other columns are ignored. Then one bar
// per line in increasing time order. Times are ISO-8601, epoch seconds,
// milliseconds or microseconds, or YYYYMMDD dates. A row whose time or any
// price or volume is missing (empty, null, NaN, N/A: Yahoo writes such rows
// for holidays) is skipped and counted, never read as zero. Errors name the
// source and line. A line is read only once it is complete (ends with a
// newline), so a writer may append bars a piece at a time.
//
// Thread safety: a feed is read by one thread.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qmtl/broker/order.h"
#include "qmtl/core/result.h"
#include "qmtl/metrics/csv.h"

namespace qmtl::sdk {

struct BarCsvOptions {
  // Which price the bars trade at. kAdjClose scales each bar's open, high, low
  // and close by adj_close / close (dividends and splits, as Yahoo adjusts);
  // the file must then have an `adj close` column.
  enum class Price { kClose, kAdjClose };
  Price price = Price::kClose;
  metrics::TimeOptions time;  // the offset of date-times written without a zone
};

// "close" or "adj_close" (also "adjclose", "adj close"); kInvalidArgument else.
Result<BarCsvOptions::Price> parse_price_column(std::string_view name);

// Turns CSV lines into bars: the first non-empty line is the header.
class BarCsvParser {
 public:
  BarCsvParser(std::string source, std::string symbol, BarCsvOptions options = {})
      : source_(std::move(source)), symbol_(std::move(symbol)), options_(std::move(options)) {}
  // One line without its newline. A bar; nullopt for the header, a blank line
  // or a row with missing values (counted by skipped()); or kInvalidArgument
  // naming source:line (the parser is unchanged then except for the line count).
  Result<std::optional<broker::Bar>> line(std::string_view text);
  bool has_header() const { return cols_.has_value(); }
  size_t line_number() const { return line_no_; }
  const std::string& source() const { return source_; }
  // Rows skipped for missing values, and the first of them (1-based; 0: none).
  size_t skipped() const { return skipped_; }
  size_t first_skipped_line() const { return first_skipped_; }

 private:
  struct Columns {
    metrics::TimeColumns time;
    std::array<int, 5> ohlcv{};  // open, high, low, close, volume
    int adj_close = -1;
    int widest = 0;
  };
  Result<void> header(std::string_view text);

  std::string source_;
  std::string symbol_;
  BarCsvOptions options_;
  metrics::CsvSplitter splitter_;
  size_t line_no_ = 0;
  std::optional<Columns> cols_;
  std::optional<TimePoint> last_ts_;
  size_t skipped_ = 0, first_skipped_ = 0;
};

// The bars of a CSV file and the rows skipped for missing values.
struct BarFile {
  std::vector<broker::Bar> bars;
  size_t skipped = 0;
  size_t first_skipped_line = 0;  // 1-based; 0 when none was skipped
};

// All bars of a CSV text (see above). kInvalidArgument for an empty text, a bad
// header or row, or rows out of order.
Result<BarFile> parse_bars_csv(std::string_view text, std::string_view source,
                               const std::string& symbol, const BarCsvOptions& options = {});
Result<BarFile> read_bars_csv(const std::string& path, const std::string& symbol,
                              const BarCsvOptions& options = {});

// What next() read. The bar is the feed's own, valid until the next call to
// next() (no copy per bar: a backtest reads millions).
struct FeedItem {
  enum class Kind { kBar, kIdle, kEnd };
  Kind kind = Kind::kIdle;           // kIdle: nothing arrived in time; kEnd: no more bars ever
  const broker::Bar* bar = nullptr;  // for kBar
  // The bar was already in a followed file when the feed was opened: history the
  // runner replays to warm up and rebuild its paper book after a restart, never
  // a reason to send an order to a real broker now.
  bool replayed = false;
};

class BarFeed {
 public:
  virtual ~BarFeed() = default;
  // The next bar, waiting at most `timeout`. Errors (a malformed line, an
  // unreadable source) end the feed: later calls return the same error.
  virtual Result<FeedItem> next(std::chrono::milliseconds timeout) = 0;
  // How many bars are left, when the feed knows (a backtest reserves for them).
  virtual std::optional<size_t> size_hint() const { return std::nullopt; }
};

class CsvBarFeed final : public BarFeed {
 public:
  // Reads the file at `path`. With `follow`, the end of the file is not the end
  // of the feed: new lines are read as they are appended (checked every 20 ms),
  // and a file that shrinks (truncated or replaced) is an error; the bars that
  // were in the file when it was opened are marked `replayed`. kNotFound when the
  // file cannot be opened.
  static Result<std::unique_ptr<CsvBarFeed>> open_file(const std::string& path,
                                                       const std::string& symbol, bool follow);
  // Reads `fd` (e.g. 0 for standard input) until it ends; does not close it.
  static std::unique_ptr<CsvBarFeed> from_fd(int fd, const std::string& symbol,
                                             std::string source = "stdin");
  ~CsvBarFeed() override;
  CsvBarFeed(const CsvBarFeed&) = delete;
  CsvBarFeed& operator=(const CsvBarFeed&) = delete;

  Result<FeedItem> next(std::chrono::milliseconds timeout) override;

 private:
  CsvBarFeed(int fd, bool owns, bool follow, bool is_file, std::string source,
             const std::string& symbol);
  // Reads what is available within `wait`: the number of bytes read, 0 at the
  // end, nullopt when a pipe had nothing in time.
  Result<std::optional<size_t>> read_some(std::chrono::milliseconds wait);

  int fd_;
  bool owns_;
  bool follow_;
  bool is_file_;
  uint64_t offset_ = 0;
  BarCsvParser parser_;
  std::string pending_;  // bytes after the last complete line
  broker::Bar current_;  // the bar next() returned last
  std::optional<Error> failed_;
  bool ended_ = false;
  uint64_t consumed_ = 0;       // bytes of the complete lines read so far
  uint64_t history_bytes_ = 0;  // a followed file's size when it was opened
};

}  // namespace qmtl::sdk
