// FixBroker: the Broker interface over a FIX 4.4 session (QuickFIX, through
// the C++14 engine in fix_engine.h).
//
// submit() sends a NewOrderSingle and returns the broker-side order id
// ("fix-<n>"); orders and fills are journaled in the store directory
// (qmtl-orders.jsonl), so a broker restarted on it books a report the other
// side resends after the restart, and its account is what it holds; the id stays the same when a
// transiently rejected order is sent again under a new ClOrdID. ExecutionReports become fills
// (deduplicated by ExecID, so a resend after a reconnect is not booked twice), order states and
// reject records. While the session is not logged on, submit() refuses with kUnavailable: the
// runner then blocks the order (it never fails open).
//
// Reject policy (docs/brokers.md): a reject is transient when OrdRejReason is
// 2 (exchange closed) or 99 (other) with a Text beginning "throttled"; such an
// order is sent again after retry_backoff, doubling, at most max_retries
// times. Every other reject is final. Each reject is recorded with its reason
// and whether it was retried.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "qmtl/broker/broker.h"
#include "qmtl/broker/fix/fix_engine.h"
#include "qmtl/core/result.h"
#include "qmtl/core/time.h"

namespace qmtl::broker {

struct FixBrokerConfig {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string sender_comp_id;
  std::string target_comp_id;
  std::string account;
  std::string username;
  std::string password;   // the secret itself, resolved by load_fix_config
  std::string store_dir;  // sequence numbers and sent messages
  std::string log_path;   // session log (the password is never written)
  int heartbeat_s = 30;
  double initial_cash = 0;  // the account's cash before any fill
  int max_retries = 3;
  std::chrono::milliseconds retry_backoff{200};
};

// Reads a broker file (YAML):
//   host: 127.0.0.1
//   port: 9878
//   sender_comp_id: QMTL
//   target_comp_id: EXCH
//   account: ACC-1
//   username: desk          # optional
//   password_env: FIX_PASS  # or password_file: /etc/qmtl/fix.secret
//   store_dir: /var/lib/qmtl/fix   # default: <file>.store
//   log: /var/log/qmtl/fix.log     # the session log; default none
//   heartbeat: 30s
// The password is read from the named variable or file, never from the YAML
// itself. kInvalidArgument names the field; no message ever contains the
// password.
Result<FixBrokerConfig> load_fix_config(const std::string& path);

// A reject from the broker, as recorded.
struct RejectRecord {
  std::string order_id;   // FixBroker's id
  std::string cl_ord_id;  // the ClOrdID that was rejected
  int reason_code = -1;   // OrdRejReason (103), -1 when absent
  std::string text;       // the broker's Text (58)
  bool transient = false;
  bool retried = false;  // sent again under a new ClOrdID
};

enum class FixOrderStatus { kPendingNew, kNew, kPartiallyFilled, kFilled, kCanceled, kRejected };
std::string_view fix_order_status_name(FixOrderStatus s);

class FixBroker final : public Broker, private fix::ClientListener {
 public:
  // Starts the session (it connects and logs on in the background, and
  // reconnects by itself). kInvalidArgument for a refused configuration.
  static Result<std::unique_ptr<FixBroker>> connect(FixBrokerConfig config, const Clock& clock);
  ~FixBroker() override;

  // Waits until the session is logged on; false after `timeout`.
  bool wait_logged_on(std::chrono::milliseconds timeout);
  bool logged_on() const;

  Result<std::string> submit(const Order& order) override;
  Result<void> cancel(std::string_view order_id) override;
  std::vector<Fill> take_fills() override;
  std::vector<OrderReject> take_rejects() override;
  Account account() const override;

  // The order's status, or nullopt for an unknown id.
  std::optional<FixOrderStatus> status(std::string_view order_id) const;
  // Waits until `pred` holds for the order's status; false after `timeout`.
  bool wait_status(std::string_view order_id, FixOrderStatus want,
                   std::chrono::milliseconds timeout);
  std::vector<RejectRecord> rejects() const;

 private:
  FixBroker(FixBrokerConfig config, const Clock& clock);
  struct OrderState;
  // ClientListener (QuickFIX's thread)
  void on_logon() override;
  void on_logout() override;
  void on_exec(const fix::ExecReport& r) override;
  void on_cancel_reject(const fix::CancelReject& r) override;
  void retry_loop(std::stop_token stop);
  // A new ClOrdID for the order, registered; the message to send.
  fix::NewOrder prepare_locked(OrderState& o);
  Result<void> load_journal();
  void journal(const boost::json::object& line);
  std::string journal_path() const;

  const FixBrokerConfig config_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<fix::Client> client_;
  std::string id_prefix_;  // makes ClOrdIDs unique across restarts
  uint64_t next_order_ = 0, next_cl_ = 0;
  std::map<std::string, std::unique_ptr<OrderState>, std::less<>> orders_;  // by order id
  std::map<std::string, std::string, std::less<>> by_cl_ord_id_;            // -> order id
  std::set<std::string, std::less<>> exec_ids_;
  std::vector<Fill> fills_;
  Account account_;
  std::vector<RejectRecord> rejects_;
  std::vector<OrderReject> final_rejects_;  // not yet taken
  struct Retry {
    std::chrono::steady_clock::time_point due;
    std::string order_id;
  };
  std::deque<Retry> retries_;
  std::mutex journal_mu_;
  std::unique_ptr<std::ofstream> journal_;  // store_dir/qmtl-orders.jsonl
  std::jthread retry_thread_;
};

}  // namespace qmtl::broker
