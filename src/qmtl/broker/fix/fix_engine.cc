// Compiled as C++14 (see fix_engine.h): the only file that sees QuickFIX.
#include "qmtl/broker/fix/fix_engine.h"

#include <quickfix/Application.h>
#include <quickfix/FileStore.h>
#include <quickfix/Log.h>
#include <quickfix/Session.h>
#include <quickfix/SessionSettings.h>
#include <quickfix/SocketAcceptor.h>
#include <quickfix/SocketInitiator.h>
#include <quickfix/fix44/ExecutionReport.h>
#include <quickfix/fix44/NewOrderSingle.h>
#include <quickfix/fix44/OrderCancelReject.h>
#include <quickfix/fix44/OrderCancelRequest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

namespace qmtl {
namespace fix {
namespace {

// The password never reaches a log: tag 554's value is replaced.
std::string redact(std::string msg) {
  const std::string tag = "554=";
  size_t at = 0;
  while ((at = msg.find(tag, at)) != std::string::npos) {
    if (at != 0 && msg[at - 1] != '\001') {
      at += tag.size();
      continue;
    }
    const size_t end = msg.find('\001', at);
    msg.replace(at + tag.size(),
                end == std::string::npos ? std::string::npos : end - at - tag.size(), "***");
    at += tag.size() + 3;
  }
  return msg;
}

struct LogFile {
  std::ofstream out;
  std::mutex mu;  // sessions and the engine's threads write to one file
};

// A session log in one file, messages with SOH shown as |.
class RedactingLog : public FIX::Log {
 public:
  explicit RedactingLog(std::shared_ptr<LogFile> out) : out_(std::move(out)) {}
  void clear() override {}
  void backup() override {}
  void onIncoming(const std::string& m) override { write("in ", m); }
  void onOutgoing(const std::string& m) override { write("out", m); }
  void onEvent(const std::string& e) override { write("evt", e); }

 private:
  void write(const char* kind, const std::string& text) {
    if (!out_) return;
    std::string line = redact(text);
    for (char& c : line) {
      if (c == '\001') c = '|';
    }
    std::lock_guard<std::mutex> lock(out_->mu);
    out_->out << kind << ' ' << line << '\n';
    out_->out.flush();
  }
  std::shared_ptr<LogFile> out_;
};

class RedactingLogFactory : public FIX::LogFactory {
 public:
  explicit RedactingLogFactory(const std::string& path) {
    if (!path.empty()) {
      out_ = std::make_shared<LogFile>();
      out_->out.open(path, std::ios::app);
    }
  }
  FIX::Log* create() override { return new RedactingLog(out_); }
  FIX::Log* create(const FIX::SessionID&) override { return new RedactingLog(out_); }
  void destroy(FIX::Log* log) override { delete log; }

 private:
  std::shared_ptr<LogFile> out_;
};

// QuickFIX keeps every message it sends, the Logon with its password
// included, for resends; this store keeps them with tag 554 as ***. (Admin
// messages are never resent, so nothing is lost.)
class RedactingStore : public FIX::MessageStore {
 public:
  explicit RedactingStore(FIX::MessageStore* inner) : inner_(inner) {}
  FIX::MessageStore* inner() { return inner_; }
  bool set(int n, const std::string& m) throw(FIX::IOException) override {
    return inner_->set(n, m.find("554=") == std::string::npos ? m : redact(m));
  }
  void get(int b, int e, std::vector<std::string>& out) const throw(FIX::IOException) override {
    inner_->get(b, e, out);
  }
  int getNextSenderMsgSeqNum() const throw(FIX::IOException) override {
    return inner_->getNextSenderMsgSeqNum();
  }
  int getNextTargetMsgSeqNum() const throw(FIX::IOException) override {
    return inner_->getNextTargetMsgSeqNum();
  }
  void setNextSenderMsgSeqNum(int n) throw(FIX::IOException) override {
    inner_->setNextSenderMsgSeqNum(n);
  }
  void setNextTargetMsgSeqNum(int n) throw(FIX::IOException) override {
    inner_->setNextTargetMsgSeqNum(n);
  }
  void incrNextSenderMsgSeqNum() throw(FIX::IOException) override {
    inner_->incrNextSenderMsgSeqNum();
  }
  void incrNextTargetMsgSeqNum() throw(FIX::IOException) override {
    inner_->incrNextTargetMsgSeqNum();
  }
  FIX::UtcTimeStamp getCreationTime() const throw(FIX::IOException) override {
    return inner_->getCreationTime();
  }
  void reset() throw(FIX::IOException) override { inner_->reset(); }
  void refresh() throw(FIX::IOException) override { inner_->refresh(); }

 private:
  FIX::MessageStore* inner_;
};

class RedactingStoreFactory : public FIX::MessageStoreFactory {
 public:
  explicit RedactingStoreFactory(const FIX::SessionSettings& s) : files_(s) {}
  FIX::MessageStore* create(const FIX::SessionID& id) override {
    return new RedactingStore(files_.create(id));
  }
  void destroy(FIX::MessageStore* store) override {
    auto* r = static_cast<RedactingStore*>(store);
    files_.destroy(r->inner());
    delete r;
  }

 private:
  FIX::FileStoreFactory files_;
};

void make_dirs(const std::string& path) {
  std::string partial;
  std::stringstream ss(path);
  std::string piece;
  if (!path.empty() && path[0] == '/') partial = "/";
  while (std::getline(ss, piece, '/')) {
    if (piece.empty()) continue;
    partial += piece + "/";
    ::mkdir(partial.c_str(), 0750);
  }
}

FIX::SessionSettings settings_for(const SessionConfig& c, bool initiator, FIX::SessionID* id) {
  make_dirs(c.store_dir);
  FIX::SessionSettings s;
  FIX::Dictionary d;
  d.setString("ConnectionType", initiator ? "initiator" : "acceptor");
  d.setString("StartTime", "00:00:00");
  d.setString("EndTime", "00:00:00");
  d.setString("UseDataDictionary", "N");
  d.setString("FileStorePath", c.store_dir);
  d.setString("PersistMessages", "Y");
  d.setString("ResetOnLogon", "N");
  d.setString("ResetOnLogout", "N");
  d.setString("ResetOnDisconnect", "N");
  d.setString("SocketNodelay", "Y");
  d.setString("SocketReuseAddress", "Y");
  d.setInt("HeartBtInt", c.heartbeat_s);
  if (initiator) {
    d.setString("SocketConnectHost", c.host);
    d.setInt("SocketConnectPort", c.port);
    d.setInt("ReconnectInterval", c.reconnect_s);
  } else {
    d.setInt("SocketAcceptPort", c.port);
  }
  *id = FIX::SessionID("FIX.4.4", c.sender_comp_id, c.target_comp_id);
  // Some settings (ReconnectInterval) are read from the defaults only.
  s.set(d);
  s.set(*id, d);
  return s;
}

std::string field_or(const FIX::FieldMap& m, int tag, const std::string& fallback = "") {
  return m.isSetField(tag) ? m.getField(tag) : fallback;
}

double number_or(const FIX::FieldMap& m, int tag) {
  if (!m.isSetField(tag)) return 0;
  return std::strtod(m.getField(tag).c_str(), nullptr);
}

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------- client

class ClientImpl : public Client, public FIX::Application {
 public:
  ClientImpl(const SessionConfig& c, ClientListener* l) : config_(c), listener_(l) {}
  ~ClientImpl() override { stop(); }

  bool open(std::string* error) {
    try {
      settings_ = settings_for(config_, true, &id_);
      store_.reset(new RedactingStoreFactory(settings_));
      logs_.reset(new RedactingLogFactory(config_.log_path));
      initiator_.reset(new FIX::SocketInitiator(*this, *store_, settings_, *logs_));
      initiator_->start();
      return true;
    } catch (const std::exception& e) {
      if (error != nullptr) *error = redact(e.what());
      return false;
    }
  }

  bool logged_on() const override { return logged_on_.load(); }

  bool send_new_order(const NewOrder& o, std::string* error) override {
    FIX44::NewOrderSingle m(FIX::ClOrdID(o.cl_ord_id), FIX::Side(o.side), FIX::TransactTime(),
                            FIX::OrdType(o.ord_type));
    m.set(FIX::Symbol(o.symbol));
    m.set(FIX::OrderQty(o.qty));
    if (!o.account.empty()) m.set(FIX::Account(o.account));
    if (o.ord_type == '2') m.set(FIX::Price(o.price));
    if (o.ord_type == '3') m.set(FIX::StopPx(o.stop_px));
    m.set(FIX::TimeInForce('0'));
    return send(m, error);
  }

  bool send_cancel(const std::string& cl_ord_id, const std::string& orig, const std::string& symbol,
                   char side, double qty, std::string* error) override {
    FIX44::OrderCancelRequest m{FIX::OrigClOrdID(orig), FIX::ClOrdID(cl_ord_id), FIX::Side(side),
                                FIX::TransactTime()};
    m.set(FIX::Symbol(symbol));
    m.set(FIX::OrderQty(qty));
    return send(m, error);
  }

  void stop() override {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (initiator_) {
      try {
        initiator_->stop();
      } catch (...) {
      }
      initiator_.reset();
    }
    logged_on_ = false;
  }

  // FIX::Application
  void onCreate(const FIX::SessionID&) override {}
  void onLogon(const FIX::SessionID&) override {
    logged_on_ = true;
    listener_->on_logon();
  }
  void onLogout(const FIX::SessionID&) override {
    const bool was = logged_on_.exchange(false);
    if (was) listener_->on_logout();
  }
  void toAdmin(FIX::Message& m, const FIX::SessionID&) override {
    if (m.getHeader().getField(FIX::FIELD::MsgType) == "A") {
      if (!config_.username.empty()) m.setField(553, config_.username);
      if (!config_.password.empty()) m.setField(554, config_.password);
    }
  }
  void toApp(FIX::Message&, const FIX::SessionID&) throw(FIX::DoNotSend) override {}
  void fromAdmin(const FIX::Message&,
                 const FIX::SessionID&) throw(FIX::FieldNotFound, FIX::IncorrectDataFormat,
                                              FIX::IncorrectTagValue, FIX::RejectLogon) override {}
  void fromApp(const FIX::Message& m,
               const FIX::SessionID&) throw(FIX::FieldNotFound, FIX::IncorrectDataFormat,
                                            FIX::IncorrectTagValue,
                                            FIX::UnsupportedMessageType) override {
    const std::string type = m.getHeader().getField(FIX::FIELD::MsgType);
    const bool dup = field_or(m.getHeader(), FIX::FIELD::PossDupFlag) == "Y";
    if (type == "8") {
      ExecReport r;
      r.cl_ord_id = field_or(m, FIX::FIELD::ClOrdID);
      r.orig_cl_ord_id = field_or(m, FIX::FIELD::OrigClOrdID);
      r.order_id = field_or(m, FIX::FIELD::OrderID);
      r.exec_id = field_or(m, FIX::FIELD::ExecID);
      r.symbol = field_or(m, FIX::FIELD::Symbol);
      r.exec_type = field_or(m, FIX::FIELD::ExecType, "0")[0];
      r.ord_status = field_or(m, FIX::FIELD::OrdStatus, "0")[0];
      r.side = field_or(m, FIX::FIELD::Side, "1")[0];
      r.last_qty = number_or(m, FIX::FIELD::LastQty);
      r.last_px = number_or(m, FIX::FIELD::LastPx);
      r.cum_qty = number_or(m, FIX::FIELD::CumQty);
      r.leaves_qty = number_or(m, FIX::FIELD::LeavesQty);
      if (m.isSetField(FIX::FIELD::OrdRejReason)) {
        r.ord_rej_reason = std::stoi(m.getField(FIX::FIELD::OrdRejReason));
      }
      r.text = field_or(m, FIX::FIELD::Text);
      r.poss_dup = dup;
      r.transact_time_us = now_us();
      listener_->on_exec(r);
    } else if (type == "9") {
      CancelReject r;
      r.cl_ord_id = field_or(m, FIX::FIELD::ClOrdID);
      r.orig_cl_ord_id = field_or(m, FIX::FIELD::OrigClOrdID);
      r.text = field_or(m, FIX::FIELD::Text);
      listener_->on_cancel_reject(r);
    }
  }

 private:
  bool send(FIX::Message& m, std::string* error) {
    if (!logged_on_) {
      if (error != nullptr) *error = "the FIX session is not logged on";
      return false;
    }
    try {
      if (FIX::Session::sendToTarget(m, id_)) return true;
      if (error != nullptr) *error = "the FIX session did not take the message";
    } catch (const std::exception& e) {
      if (error != nullptr) *error = redact(e.what());
    }
    return false;
  }

  SessionConfig config_;
  ClientListener* listener_;
  FIX::SessionID id_;
  FIX::SessionSettings settings_;
  std::unique_ptr<RedactingStoreFactory> store_;
  std::unique_ptr<RedactingLogFactory> logs_;
  std::unique_ptr<FIX::SocketInitiator> initiator_;
  std::atomic<bool> logged_on_{false};
  std::mutex stop_mu_;
};

// -------------------------------------------------------------- exchange

class ExchangeImpl : public Exchange, public FIX::Application {
 public:
  explicit ExchangeImpl(const ExchangeConfig& c) : config_(c) {
    for (const auto& p : c.paths) {
      if (!p.prices.empty()) paths_[p.symbol] = Track{p.prices, 0};
    }
    epoch_ = std::to_string(now_us() / 1000);
  }
  ~ExchangeImpl() override { stop(); }

  bool open(std::string* error) {
    try {
      settings_ = settings_for(config_.session, false, &id_);
      for (const auto& target : config_.more_targets) {
        FIX::Dictionary d = settings_.get(id_);
        d.setString("TargetCompID", target);
        settings_.set(FIX::SessionID("FIX.4.4", config_.session.sender_comp_id, target), d);
      }
      store_.reset(new RedactingStoreFactory(settings_));
      logs_.reset(new RedactingLogFactory(config_.session.log_path));
      acceptor_.reset(new FIX::SocketAcceptor(*this, *store_, settings_, *logs_));
      acceptor_->start();
      return true;
    } catch (const std::exception& e) {
      if (error != nullptr) *error = redact(e.what());
      return false;
    }
  }

  void advance() override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& kv : paths_) {
      if (kv.second.at + 1 < kv.second.prices.size()) ++kv.second.at;
    }
    match_all();
  }
  double price(const std::string& symbol) const override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = paths_.find(symbol);
    return it == paths_.end() ? 0 : it->second.prices[it->second.at];
  }
  bool client_logged_on() const override { return logged_on_.load(); }
  int orders_received() const override { return received_.load(); }
  void stop() override {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (acceptor_) {
      try {
        // A simulator need not wait for logouts (QuickFIX waits in whole seconds).
        acceptor_->stop(true);
      } catch (...) {
      }
      acceptor_.reset();
    }
  }

  // FIX::Application
  void onCreate(const FIX::SessionID&) override {}
  void onLogon(const FIX::SessionID&) override { logged_on_ = true; }
  void onLogout(const FIX::SessionID&) override { logged_on_ = false; }
  void toAdmin(FIX::Message&, const FIX::SessionID&) override {}
  void toApp(FIX::Message&, const FIX::SessionID&) throw(FIX::DoNotSend) override {}
  void fromAdmin(const FIX::Message& m,
                 const FIX::SessionID&) throw(FIX::FieldNotFound, FIX::IncorrectDataFormat,
                                              FIX::IncorrectTagValue, FIX::RejectLogon) override {
    if (m.getHeader().getField(FIX::FIELD::MsgType) != "A") return;
    if (!config_.session.password.empty() && field_or(m, 554) != config_.session.password) {
      throw FIX::RejectLogon("invalid credentials");
    }
  }
  void fromApp(const FIX::Message& m,
               const FIX::SessionID& session) throw(FIX::FieldNotFound, FIX::IncorrectDataFormat,
                                                    FIX::IncorrectTagValue,
                                                    FIX::UnsupportedMessageType) override {
    const std::string type = m.getHeader().getField(FIX::FIELD::MsgType);
    std::lock_guard<std::mutex> lock(mu_);
    if (type == "D") {
      on_new_order(m, session);
    } else if (type == "F") {
      on_cancel(m, session);
    } else {
      throw FIX::UnsupportedMessageType();
    }
  }

 private:
  struct Track {
    std::vector<double> prices;
    size_t at = 0;
  };
  struct Resting {
    std::string cl_ord_id, order_id, symbol;
    char side = '1', ord_type = '1';
    double qty = 0, cum = 0, price = 0, stop_px = 0;
    bool triggered = false;
    FIX::SessionID session;  // the client's, for its reports
  };

  void on_new_order(const FIX::Message& m, const FIX::SessionID& session) {
    ++received_;
    Resting o;
    o.session = session;
    o.cl_ord_id = field_or(m, FIX::FIELD::ClOrdID);
    o.symbol = field_or(m, FIX::FIELD::Symbol);
    o.side = field_or(m, FIX::FIELD::Side, "1")[0];
    o.ord_type = field_or(m, FIX::FIELD::OrdType, "1")[0];
    o.qty = number_or(m, FIX::FIELD::OrderQty);
    o.price = number_or(m, FIX::FIELD::Price);
    o.stop_px = number_or(m, FIX::FIELD::StopPx);
    o.order_id = "O" + epoch_ + "-" + std::to_string(++order_seq_);
    if (received_.load() <= config_.throttle_first) {
      return reject(o, 99, "throttled: too many orders, retry");
    }
    if (paths_.find(o.symbol) == paths_.end()) return reject(o, 1, "unknown symbol " + o.symbol);
    if (o.qty <= 0) return reject(o, 13, "order quantity must be positive");
    if (o.qty > config_.max_order_qty) return reject(o, 3, "order exceeds the quantity limit");
    report(o, '0', '0', 0, 0, "");
    open_[o.cl_ord_id] = o;
    match(open_[o.cl_ord_id]);
    if (open_[o.cl_ord_id].cum >= o.qty) open_.erase(o.cl_ord_id);
  }

  void on_cancel(const FIX::Message& m, const FIX::SessionID& session) {
    const std::string orig = field_or(m, FIX::FIELD::OrigClOrdID);
    const std::string cl = field_or(m, FIX::FIELD::ClOrdID);
    auto it = open_.find(orig);
    if (it == open_.end()) {
      FIX44::OrderCancelReject r(FIX::OrderID("NONE"), FIX::ClOrdID(cl), FIX::OrigClOrdID(orig),
                                 FIX::OrdStatus('8'), FIX::CxlRejResponseTo('1'));
      r.set(FIX::Text("unknown order: not open"));
      FIX::Session::sendToTarget(r, session);
      return;
    }
    Resting o = it->second;
    open_.erase(it);
    FIX44::ExecutionReport r(FIX::OrderID(o.order_id), FIX::ExecID(next_exec_id()),
                             FIX::ExecType('4'), FIX::OrdStatus('4'), FIX::Side(o.side),
                             FIX::LeavesQty(0), FIX::CumQty(o.cum), FIX::AvgPx(0));
    r.set(FIX::ClOrdID(cl));
    r.set(FIX::OrigClOrdID(o.cl_ord_id));
    r.set(FIX::Symbol(o.symbol));
    FIX::Session::sendToTarget(r, o.session);
  }

  void reject(const Resting& o, int reason, const std::string& text) {
    FIX44::ExecutionReport r(FIX::OrderID(o.order_id), FIX::ExecID(next_exec_id()),
                             FIX::ExecType('8'), FIX::OrdStatus('8'), FIX::Side(o.side),
                             FIX::LeavesQty(0), FIX::CumQty(0), FIX::AvgPx(0));
    r.set(FIX::ClOrdID(o.cl_ord_id));
    r.set(FIX::Symbol(o.symbol));
    r.set(FIX::OrdRejReason(reason));
    r.set(FIX::Text(text));
    FIX::Session::sendToTarget(r, o.session);
  }

  void report(const Resting& o, char exec_type, char status, double last_qty, double last_px,
              const std::string& text) {
    FIX44::ExecutionReport r(FIX::OrderID(o.order_id), FIX::ExecID(next_exec_id()),
                             FIX::ExecType(exec_type), FIX::OrdStatus(status), FIX::Side(o.side),
                             FIX::LeavesQty(o.qty - o.cum), FIX::CumQty(o.cum),
                             FIX::AvgPx(last_px));
    r.set(FIX::ClOrdID(o.cl_ord_id));
    r.set(FIX::Symbol(o.symbol));
    r.set(FIX::OrderQty(o.qty));
    if (last_qty > 0) {
      r.set(FIX::LastQty(last_qty));
      r.set(FIX::LastPx(last_px));
    }
    if (!text.empty()) r.set(FIX::Text(text));
    FIX::Session::sendToTarget(r, o.session);
  }

  // Fills what the current quote allows, in pieces of at most max_fill_qty.
  void match(Resting& o) {
    const Track& t = paths_[o.symbol];
    const double px = t.prices[t.at];
    const bool buy = o.side == '1';
    if (o.ord_type == '3' && !o.triggered) {
      if (buy ? px < o.stop_px : px > o.stop_px) return;
      o.triggered = true;
    }
    if (o.ord_type == '2' && (buy ? px > o.price : px < o.price)) return;
    while (o.cum < o.qty) {
      double q = o.qty - o.cum;
      if (config_.max_fill_qty > 0 && q > config_.max_fill_qty) q = config_.max_fill_qty;
      o.cum += q;
      report(o, 'F', o.cum >= o.qty ? '2' : '1', q, px, "");
    }
  }

  void match_all() {
    for (auto it = open_.begin(); it != open_.end();) {
      match(it->second);
      if (it->second.cum >= it->second.qty) {
        it = open_.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::string next_exec_id() { return "E" + epoch_ + "-" + std::to_string(++exec_seq_); }

  ExchangeConfig config_;
  FIX::SessionID id_;
  FIX::SessionSettings settings_;
  std::unique_ptr<RedactingStoreFactory> store_;
  std::unique_ptr<RedactingLogFactory> logs_;
  std::unique_ptr<FIX::SocketAcceptor> acceptor_;
  mutable std::mutex mu_;
  std::map<std::string, Track> paths_;
  std::map<std::string, Resting> open_;  // by ClOrdID
  std::string epoch_;
  long order_seq_ = 0, exec_seq_ = 0;
  std::atomic<int> received_{0};
  std::atomic<bool> logged_on_{false};
  std::mutex stop_mu_;
};

}  // namespace

std::unique_ptr<Client> Client::start(const SessionConfig& config, ClientListener* listener,
                                      std::string* error) {
  std::unique_ptr<ClientImpl> c(new ClientImpl(config, listener));
  if (!c->open(error)) return nullptr;
  return std::unique_ptr<Client>(c.release());
}

std::unique_ptr<Exchange> Exchange::start(const ExchangeConfig& config, std::string* error) {
  std::unique_ptr<ExchangeImpl> e(new ExchangeImpl(config));
  if (!e->open(error)) return nullptr;
  return std::unique_ptr<Exchange>(e.release());
}

}  // namespace fix
}  // namespace qmtl
