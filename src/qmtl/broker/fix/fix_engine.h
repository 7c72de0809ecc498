// The FIX 4.4 engine behind FixBroker and qmtl-exchange-sim, over QuickFIX.
//
// QuickFIX's headers do not compile as C++17 or later (dynamic exception
// specifications), so this part is its own C++14 library and this header
// speaks only plain C++14 types: nothing of QuickFIX crosses it. Errors are
// reported as false plus a message, never as exceptions.
//
// Sequence numbers and sent messages are kept in `store_dir` (QuickFIX's
// FileStore), so a restarted side resumes its numbering and can resend what
// the other missed. The session log in `log_path` never contains the logon
// password (tag 554 is written as ***).
//
// Thread safety: Client and Exchange methods may be called from any thread;
// listener callbacks arrive on QuickFIX's session thread and must not block.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace qmtl {
namespace fix {

struct SessionConfig {
  std::string host = "127.0.0.1";  // initiator: where the broker listens
  int port = 0;                    // initiator: its port; acceptor: the port to listen on
  std::string sender_comp_id;
  std::string target_comp_id;
  std::string store_dir;  // FileStore directory (created)
  std::string log_path;   // session log file; "" = none
  int heartbeat_s = 30;
  int reconnect_s = 1;
  std::string username;  // Logon tag 553 (initiator)
  std::string password;  // Logon tag 554 (initiator); the acceptor's expected one
};

// What the client asks for. side: '1' buy, '2' sell; ord_type: '1' market,
// '2' limit, '3' stop.
struct NewOrder {
  std::string cl_ord_id;
  std::string symbol;
  std::string account;
  char side = '1';
  double qty = 0;
  char ord_type = '1';
  double price = 0;    // limit
  double stop_px = 0;  // stop
};

// One ExecutionReport. exec_type: '0' new, 'F' trade (partial or full fill),
// '4' canceled, '8' rejected; ord_status '0' new, '1' partially filled, '2'
// filled, '4' canceled, '8' rejected.
struct ExecReport {
  std::string cl_ord_id;
  std::string orig_cl_ord_id;
  std::string order_id;
  std::string exec_id;
  std::string symbol;
  char exec_type = '0';
  char ord_status = '0';
  char side = '1';
  double last_qty = 0;
  double last_px = 0;
  double cum_qty = 0;
  double leaves_qty = 0;
  int ord_rej_reason = -1;  // tag 103 when present
  std::string text;
  bool poss_dup = false;  // a resend of a message sent before
  int64_t transact_time_us = 0;
};

struct CancelReject {
  std::string cl_ord_id;
  std::string orig_cl_ord_id;
  std::string text;
};

class ClientListener {
 public:
  virtual ~ClientListener() {}
  virtual void on_logon() = 0;
  virtual void on_logout() = 0;
  virtual void on_exec(const ExecReport& r) = 0;
  virtual void on_cancel_reject(const CancelReject& r) = 0;
};

// A FIX initiator: one session to a broker, reconnecting by itself.
class Client {
 public:
  virtual ~Client() {}
  // Creates and starts the session; null with `error` set when the
  // configuration is refused. `listener` must outlive the client.
  static std::unique_ptr<Client> start(const SessionConfig& config, ClientListener* listener,
                                       std::string* error);
  virtual bool logged_on() const = 0;
  // false with `error` when the session is not logged on or the message
  // cannot be sent.
  virtual bool send_new_order(const NewOrder& o, std::string* error) = 0;
  virtual bool send_cancel(const std::string& cl_ord_id, const std::string& orig_cl_ord_id,
                           const std::string& symbol, char side, double qty,
                           std::string* error) = 0;
  // Logs out and disconnects (also on destruction).
  virtual void stop() = 0;
};

// The exchange simulator: a FIX acceptor that fills orders against a quoted
// price path (docs/brokers.md). Deterministic: fills come from the current
// quote of the symbol; the quote moves only through set_price/advance.
struct ExchangeConfig {
  SessionConfig session;  // port = listen port
  // Further clients (TargetCompIDs) it accepts beside session.target_comp_id.
  std::vector<std::string> more_targets;
  // A symbol's price path; advance() moves each symbol to its next price (the
  // last one stays).
  struct Path {
    std::string symbol;
    std::vector<double> prices;
  };
  std::vector<Path> paths;
  double max_fill_qty = 0;     // > 0: a fill is at most this much (partial fills)
  double max_order_qty = 1e6;  // larger orders are rejected (103=3)
  int throttle_first = 0;      // reject the first N orders as throttled (103=99, transient)
};

class Exchange {
 public:
  virtual ~Exchange() {}
  static std::unique_ptr<Exchange> start(const ExchangeConfig& config, std::string* error);
  // Moves every symbol one step along its path, filling what it crosses.
  virtual void advance() = 0;
  virtual double price(const std::string& symbol) const = 0;
  virtual bool client_logged_on() const = 0;
  virtual int orders_received() const = 0;
  virtual void stop() = 0;
};

}  // namespace fix
}  // namespace qmtl
