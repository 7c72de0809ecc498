#include "qmtl/broker/journal_broker.h"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <system_error>

#include "qmtl/core/json.h"

namespace qmtl::broker {

Result<std::unique_ptr<JournalBroker>> JournalBroker::open(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "ae");
  if (f == nullptr) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("cannot open order journal '{}': {}", path,
                                  std::generic_category().message(errno)));
  }
  return std::unique_ptr<JournalBroker>(new JournalBroker(f, path));
}

JournalBroker::~JournalBroker() { std::fclose(file_); }

Result<void> JournalBroker::write_line(const std::string& line) {
  if (std::fputs(line.c_str(), file_) < 0 || std::fputc('\n', file_) == EOF ||
      std::fflush(file_) != 0) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("cannot write order journal '{}': {}", path_,
                                  std::generic_category().message(errno)));
  }
  return {};
}

Result<std::string> JournalBroker::submit(const Order& order) {
  if (auto r = validate_order(order); !r) return propagate(r);
  std::lock_guard lock(mu_);
  const std::string id = fmt::format("j-{}", next_id_);
  boost::json::object o{{"id", id},
                        {"ts", format_timestamp(order.ts)},
                        {"symbol", order.symbol},
                        {"side", side_name(order.side)},
                        {"qty", order.qty},
                        {"type", order_type_name(order.type)}};
  if (order.type == OrderType::kLimit) o["limit_price"] = order.limit_price;
  if (order.type == OrderType::kStop) o["stop_price"] = order.stop_price;
  if (auto r = write_line(json::dump(o)); !r) return propagate(r);
  ++next_id_;
  return id;
}

Result<void> JournalBroker::cancel(std::string_view order_id) {
  std::lock_guard lock(mu_);
  uint64_t n = 0;
  const bool ours = order_id.starts_with("j-") &&
                    std::from_chars(order_id.data() + 2, order_id.data() + order_id.size(), n).ec ==
                        std::errc() &&
                    n >= 1 && n < next_id_;
  if (!ours) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("order '{}' was not placed through this journal", order_id));
  }
  return write_line(json::dump(boost::json::object{{"cancel", order_id}}));
}

}  // namespace qmtl::broker
