// JournalBroker: a live broker that writes every order it takes to a file, one
// JSON object per line, for an external executor to pick up (or for an
// operator to wire a strategy end to end before a real broker connection is
// configured). It reports no fills and keeps no account: what happens to the
// orders is outside qmtl.
//
// Each line: {"id", "ts", "symbol", "side", "qty", "type", "limit_price"?,
// "stop_price"?}, flushed before submit() returns.
//
// Thread safety: submit and cancel may be called from any thread.
#pragma once

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "qmtl/broker/broker.h"

namespace qmtl::broker {

class JournalBroker final : public Broker {
 public:
  // Appends to `path` (created if missing). kUnavailable when it cannot be opened.
  static Result<std::unique_ptr<JournalBroker>> open(const std::string& path);
  ~JournalBroker() override;
  JournalBroker(const JournalBroker&) = delete;
  JournalBroker& operator=(const JournalBroker&) = delete;

  // kInvalidArgument for a malformed order; kUnavailable when the line cannot
  // be written (the order is then not taken).
  Result<std::string> submit(const Order& order) override;
  // Writes a {"cancel": id} line; kNotFound for an id it never gave.
  Result<void> cancel(std::string_view order_id) override;
  std::vector<Fill> take_fills() override { return {}; }
  Account account() const override { return {}; }

 private:
  JournalBroker(std::FILE* f, std::string path) : file_(f), path_(std::move(path)) {}
  Result<void> write_line(const std::string& line);

  std::mutex mu_;
  std::FILE* file_;
  std::string path_;
  uint64_t next_id_ = 1;
};

}  // namespace qmtl::broker
