#include "qmtl/broker/fix/fix_broker.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "qmtl/core/duration.h"
#include "qmtl/core/enum_name.h"
#include "qmtl/core/file.h"

namespace qmtl::broker {

struct FixBroker::OrderState {
  std::string id;
  Order order;
  std::string cl_ord_id;  // the current one
  FixOrderStatus status = FixOrderStatus::kPendingNew;
  double cum_qty = 0;
  int retries = 0;
  std::string last_reason;
};

std::string_view fix_order_status_name(FixOrderStatus s) {
  static constexpr std::array<std::string_view, 6> kNames{
      "PendingNew", "New", "PartiallyFilled", "Filled", "Canceled", "Rejected"};
  return enum_name(s, kNames);
}

namespace {

tl::unexpected<Error> bad(const std::string& path, std::string msg) {
  return make_error(ErrorCode::kInvalidArgument, fmt::format("{}: {}", path, msg));
}

// The transient rejects (see the header): worth sending again after a pause.
bool transient_reject(int code, std::string_view text) {
  return code == 2 || (code == 99 && text.starts_with("throttled"));
}

}  // namespace

Result<FixBrokerConfig> load_fix_config(const std::string& path) {
  auto text = read_file(path, "broker file");
  if (!text) return propagate(text);
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    return bad(path,
               fmt::format("line {}, column {}: {}", e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (!root.IsMap()) return bad(path, "must be a mapping of host, port, sender_comp_id, ...");
  static constexpr std::string_view kKeys[] = {
      "host",         "port",          "sender_comp_id", "target_comp_id", "account", "username",
      "password_env", "password_file", "store_dir",      "heartbeat",      "cash",    "log"};
  FixBrokerConfig c;
  try {
    for (const auto& kv : root) {
      const auto key = kv.first.as<std::string>();
      if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys)) {
        return bad(path, fmt::format("unknown key '{}' (a password goes in password_env or "
                                     "password_file, never in this file)",
                                     key));
      }
    }
    auto str = [&](const char* key, bool required) -> Result<std::string> {
      const auto n = root[key];
      if (!n) {
        if (required) return bad(path, fmt::format("'{}' is required", key));
        return std::string();
      }
      if (!n.IsScalar()) return bad(path, fmt::format("'{}' must be a string", key));
      return n.as<std::string>();
    };
    auto host = str("host", false);
    if (!host) return propagate(host);
    if (!host->empty()) c.host = *host;
    const auto port = root["port"];
    if (!port) return bad(path, "'port' is required");
    int p = 0;
    if (!YAML::convert<int>::decode(port, p) || p < 1 || p > 65535) {
      return bad(path, "'port' must be a number from 1 to 65535");
    }
    c.port = p;
    for (auto [key, out] : {std::pair{"sender_comp_id", &c.sender_comp_id},
                            std::pair{"target_comp_id", &c.target_comp_id}}) {
      auto v = str(key, true);
      if (!v) return propagate(v);
      *out = *v;
    }
    auto account = str("account", false);
    if (!account) return propagate(account);
    c.account = *account;
    auto username = str("username", false);
    if (!username) return propagate(username);
    c.username = *username;
    auto env = str("password_env", false);
    if (!env) return propagate(env);
    auto file = str("password_file", false);
    if (!file) return propagate(file);
    if (!env->empty() && !file->empty()) {
      return bad(path, "give password_env or password_file, not both");
    }
    auto secret = read_secret(*env, *file);
    if (!secret) return bad(path, secret.error().message);
    c.password = std::move(*secret);
    auto store = str("store_dir", false);
    if (!store) return propagate(store);
    c.store_dir = store->empty() ? path + ".store" : *store;
    auto log = str("log", false);
    if (!log) return propagate(log);
    c.log_path = *log;
    auto hb = str("heartbeat", false);
    if (!hb) return propagate(hb);
    if (!hb->empty()) {
      auto d = parse_duration(*hb);
      if (!d || *d < std::chrono::seconds(1)) {
        return bad(path, "'heartbeat' takes a duration of at least 1s, such as 30s");
      }
      c.heartbeat_s =
          static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(*d).count());
    }
    if (const auto cash = root["cash"]) {
      double v = 0;
      if (!YAML::convert<double>::decode(cash, v) || v < 0) {
        return bad(path, "'cash' must be a number >= 0");
      }
      c.initial_cash = v;
    }
  } catch (const YAML::Exception& e) {
    return bad(path, e.msg);
  }
  return c;
}

FixBroker::FixBroker(FixBrokerConfig config, const Clock& clock)
    : config_(std::move(config)), clock_(clock) {
  account_.cash = config_.initial_cash;
  id_prefix_ =
      fmt::format("{}-{}", config_.sender_comp_id, clock_.now().time_since_epoch().count() / 1000);
}

Result<std::unique_ptr<FixBroker>> FixBroker::connect(FixBrokerConfig config, const Clock& clock) {
  if (config.port <= 0 || config.sender_comp_id.empty() || config.target_comp_id.empty() ||
      config.store_dir.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "a FIX broker needs a port, sender and target comp ids and a store "
                      "directory");
  }
  std::unique_ptr<FixBroker> b(new FixBroker(std::move(config), clock));
  if (auto r = b->load_journal(); !r) return propagate(r);
  fix::SessionConfig s{.host = b->config_.host,
                       .port = b->config_.port,
                       .sender_comp_id = b->config_.sender_comp_id,
                       .target_comp_id = b->config_.target_comp_id,
                       .store_dir = b->config_.store_dir,
                       .log_path = b->config_.log_path,
                       .heartbeat_s = b->config_.heartbeat_s,
                       .username = b->config_.username,
                       .password = b->config_.password};
  std::string error;
  b->client_ = fix::Client::start(s, b.get(), &error);
  if (!b->client_) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("the FIX session to {}:{} cannot start: {}", b->config_.host,
                                  b->config_.port, error));
  }
  b->retry_thread_ = std::jthread([p = b.get()](std::stop_token st) { p->retry_loop(st); });
  return b;
}

FixBroker::~FixBroker() {
  retry_thread_.request_stop();
  cv_.notify_all();
  if (retry_thread_.joinable()) retry_thread_.join();
  if (client_) client_->stop();
}

bool FixBroker::logged_on() const { return client_ && client_->logged_on(); }

bool FixBroker::wait_logged_on(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return client_->logged_on(); });
}

fix::NewOrder FixBroker::prepare_locked(OrderState& o) {
  o.cl_ord_id = fmt::format("{}-{}", id_prefix_, ++next_cl_);
  by_cl_ord_id_[o.cl_ord_id] = o.id;
  o.status = FixOrderStatus::kPendingNew;
  return {.cl_ord_id = o.cl_ord_id,
          .symbol = o.order.symbol,
          .account = config_.account,
          .side = o.order.side == Side::kBuy ? '1' : '2',
          .qty = o.order.qty,
          .ord_type = o.order.type == OrderType::kMarket  ? '1'
                      : o.order.type == OrderType::kLimit ? '2'
                                                          : '3',
          .price = o.order.limit_price,
          .stop_px = o.order.stop_price};
}

// The engine is called without mu_ held: its session thread may be inside
// on_exec waiting for mu_ while holding the session's own lock.
Result<std::string> FixBroker::submit(const Order& order) {
  if (auto r = validate_order(order); !r) return propagate(r);
  fix::NewOrder n;
  std::string id;
  {
    std::lock_guard lock(mu_);
    auto o = std::make_unique<OrderState>();
    o->id = fmt::format("fix-{}", ++next_order_);
    o->order = order;
    n = prepare_locked(*o);
    id = o->id;
    orders_.emplace(id, std::move(o));
  }
  // Journaled before it is sent: a fill must always find its order, after a
  // restart too.
  journal({{"order", id},
           {"cl_ord_id", n.cl_ord_id},
           {"symbol", order.symbol},
           {"side", side_name(order.side)},
           {"qty", order.qty},
           {"type", order_type_name(order.type)}});
  std::string error;
  if (!client_->send_new_order(n, &error)) {
    journal({{"unsent", id}});
    std::lock_guard lock(mu_);
    orders_.erase(id);
    by_cl_ord_id_.erase(n.cl_ord_id);
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("FIX broker {}:{}: {}", config_.host, config_.port, error));
  }
  return id;
}

Result<void> FixBroker::cancel(std::string_view order_id) {
  std::string cl, orig, symbol;
  char side = '1';
  double qty = 0;
  {
    std::lock_guard lock(mu_);
    auto it = orders_.find(order_id);
    if (it == orders_.end()) {
      return make_error(ErrorCode::kNotFound, fmt::format("no FIX order '{}'", order_id));
    }
    OrderState& o = *it->second;
    if (o.status == FixOrderStatus::kFilled || o.status == FixOrderStatus::kCanceled ||
        o.status == FixOrderStatus::kRejected) {
      return make_error(ErrorCode::kNotFound,
                        fmt::format("FIX order '{}' is {}: nothing to cancel", order_id,
                                    fix_order_status_name(o.status)));
    }
    cl = fmt::format("{}-{}", id_prefix_, ++next_cl_);
    by_cl_ord_id_[cl] = o.id;
    orig = o.cl_ord_id;
    symbol = o.order.symbol;
    side = o.order.side == Side::kBuy ? '1' : '2';
    qty = o.order.qty;
  }
  std::string error;
  if (!client_->send_cancel(cl, orig, symbol, side, qty, &error)) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("FIX broker {}:{}: {}", config_.host, config_.port, error));
  }
  return {};
}

std::vector<Fill> FixBroker::take_fills() {
  std::lock_guard lock(mu_);
  return std::exchange(fills_, {});
}

Account FixBroker::account() const {
  std::lock_guard lock(mu_);
  return account_;
}

std::optional<FixOrderStatus> FixBroker::status(std::string_view order_id) const {
  std::lock_guard lock(mu_);
  auto it = orders_.find(order_id);
  if (it == orders_.end()) return std::nullopt;
  return it->second->status;
}

bool FixBroker::wait_status(std::string_view order_id, FixOrderStatus want,
                            std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    auto it = orders_.find(order_id);
    return it != orders_.end() && it->second->status == want;
  });
}

std::vector<OrderReject> FixBroker::take_rejects() {
  std::lock_guard lock(mu_);
  return std::exchange(final_rejects_, {});
}

std::vector<RejectRecord> FixBroker::rejects() const {
  std::lock_guard lock(mu_);
  return rejects_;
}

void FixBroker::on_logon() {
  { std::lock_guard lock(mu_); }
  cv_.notify_all();
}

void FixBroker::on_logout() { cv_.notify_all(); }

void FixBroker::on_exec(const fix::ExecReport& r) {
  {
    std::lock_guard lock(mu_);
    // A resend after a reconnect repeats reports already booked.
    if (!r.exec_id.empty() && !exec_ids_.insert(r.exec_id).second) return;
    auto ref = by_cl_ord_id_.find(r.cl_ord_id);
    if (ref == by_cl_ord_id_.end()) return;  // not ours (another session's order)
    auto it = orders_.find(ref->second);
    if (it == orders_.end()) return;
    OrderState& o = *it->second;
    switch (r.exec_type) {
      case '0':
        if (o.status == FixOrderStatus::kPendingNew) o.status = FixOrderStatus::kNew;
        break;
      case 'F':
      case '1':
      case '2':
        if (r.last_qty > 0) {
          Fill f{.ts = clock_.now(),
                 .order_id = o.id,
                 .symbol = o.order.symbol,
                 .side = o.order.side,
                 .qty = r.last_qty,
                 .price = r.last_px};
          book_fill(account_, f);
          journal({{"fill", o.id},
                   {"exec_id", r.exec_id},
                   {"ts", format_timestamp(f.ts)},
                   {"qty", f.qty},
                   {"price", f.price}});
          fills_.push_back(std::move(f));
          o.cum_qty += r.last_qty;
        }
        o.status = r.ord_status == '2' || o.cum_qty >= o.order.qty
                       ? FixOrderStatus::kFilled
                       : FixOrderStatus::kPartiallyFilled;
        break;
      case '4':
        o.status = FixOrderStatus::kCanceled;
        break;
      case '8': {
        RejectRecord rec{.order_id = o.id,
                         .cl_ord_id = r.cl_ord_id,
                         .reason_code = r.ord_rej_reason,
                         .text = r.text,
                         .transient = transient_reject(r.ord_rej_reason, r.text)};
        o.last_reason = r.text;
        if (rec.transient && o.retries < config_.max_retries) {
          rec.retried = true;
          const auto delay = config_.retry_backoff * (1 << o.retries);
          ++o.retries;
          retries_.push_back({std::chrono::steady_clock::now() + delay, o.id});
        } else {
          o.status = FixOrderStatus::kRejected;
          final_rejects_.push_back({.order_id = o.id,
                                    .reason = r.text.empty()
                                                  ? fmt::format("OrdRejReason {}", r.ord_rej_reason)
                                                  : r.text});
        }
        rejects_.push_back(std::move(rec));
        break;
      }
      default:
        break;
    }
  }
  cv_.notify_all();
}

void FixBroker::on_cancel_reject(const fix::CancelReject& r) {
  std::lock_guard lock(mu_);
  auto ref = by_cl_ord_id_.find(r.orig_cl_ord_id);
  if (ref != by_cl_ord_id_.end()) {
    if (auto it = orders_.find(ref->second); it != orders_.end()) {
      it->second->last_reason = r.text;
    }
  }
}

void FixBroker::retry_loop(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::pair<std::string, fix::NewOrder>> due;
    for (auto it = retries_.begin(); it != retries_.end();) {
      if (it->due > now) {
        ++it;
        continue;
      }
      if (auto o = orders_.find(it->order_id); o != orders_.end()) {
        due.emplace_back(o->first, prepare_locked(*o->second));
        journal({{"retry", o->first}, {"cl_ord_id", due.back().second.cl_ord_id}});
      }
      it = retries_.erase(it);
    }
    if (!due.empty()) {
      lock.unlock();
      std::vector<std::pair<std::string, std::string>> failed;
      for (const auto& [id, n] : due) {
        std::string error;
        if (!client_->send_new_order(n, &error)) failed.emplace_back(id, error);
      }
      lock.lock();
      for (const auto& [id, error] : failed) {
        if (auto o = orders_.find(id); o != orders_.end()) {
          o->second->status = FixOrderStatus::kRejected;
          o->second->last_reason = error;
        }
      }
      cv_.notify_all();
    }
    cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
}

std::string FixBroker::journal_path() const {
  return (std::filesystem::path(config_.store_dir) / "qmtl-orders.jsonl").string();
}

void FixBroker::journal(const boost::json::object& line) {
  // Callers may hold mu_; the file has its own lock.
  std::lock_guard lock(journal_mu_);
  if (!journal_) return;
  *journal_ << boost::json::serialize(line) << '\n';
  journal_->flush();
}

// Orders and fills of earlier runs on this store: a report resent after a
// restart then finds its order, a fill seen before is not booked twice, and
// the account is what the broker holds.
Result<void> FixBroker::load_journal() {
  std::error_code ec;
  std::filesystem::create_directories(config_.store_dir, ec);
  if (ec) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("cannot create {}: {}", config_.store_dir, ec.message()));
  }
  const std::string path = journal_path();
  if (std::filesystem::exists(path)) {
    std::ifstream in(path);
    size_t n = 0;
    for (std::string line; std::getline(in, line);) {
      ++n;
      if (line.empty()) continue;
      boost::system::error_code jec;
      auto v = boost::json::parse(line, jec);
      if (jec || !v.is_object()) {
        // A line cut by a crash mid-write can only be the last one.
        if (in.peek() == EOF) break;
        return make_error(ErrorCode::kInternal, fmt::format("{}:{}: not a journal line", path, n));
      }
      const auto& o = v.as_object();
      auto str = [&](std::string_view k) {
        const auto* x = o.if_contains(k);
        return x != nullptr && x->is_string() ? std::string(x->as_string()) : std::string();
      };
      auto num = [&](std::string_view k) {
        const auto* x = o.if_contains(k);
        return x != nullptr && x->is_number() ? x->to_number<double>() : 0.0;
      };
      if (o.contains("order")) {
        auto st = std::make_unique<OrderState>();
        st->id = str("order");
        st->cl_ord_id = str("cl_ord_id");
        st->order.symbol = str("symbol");
        st->order.side = str("side") == "sell" ? Side::kSell : Side::kBuy;
        st->order.qty = num("qty");
        st->status = FixOrderStatus::kNew;
        by_cl_ord_id_[st->cl_ord_id] = st->id;
        if (const auto d = st->id.rfind('-'); d != std::string::npos) {
          next_order_ = std::max<uint64_t>(next_order_, std::stoull(st->id.substr(d + 1)));
        }
        orders_[st->id] = std::move(st);
      } else if (o.contains("unsent")) {
        orders_.erase(str("unsent"));
      } else if (o.contains("retry")) {
        by_cl_ord_id_[str("cl_ord_id")] = str("retry");
        if (auto it = orders_.find(str("retry")); it != orders_.end()) {
          it->second->cl_ord_id = str("cl_ord_id");
        }
      } else if (o.contains("fill")) {
        exec_ids_.insert(str("exec_id"));
        auto it = orders_.find(str("fill"));
        if (it == orders_.end()) continue;
        Fill f{.order_id = it->first,
               .symbol = it->second->order.symbol,
               .side = it->second->order.side,
               .qty = num("qty"),
               .price = num("price")};
        if (auto ts = parse_timestamp(str("ts"))) f.ts = *ts;
        book_fill(account_, f);
        it->second->cum_qty += f.qty;
        if (it->second->cum_qty >= it->second->order.qty) {
          it->second->status = FixOrderStatus::kFilled;
        }
      }
    }
  }
  journal_ = std::make_unique<std::ofstream>(path, std::ios::app);
  if (!*journal_) {
    return make_error(ErrorCode::kUnavailable, fmt::format("cannot write {}", path));
  }
  return {};
}

}  // namespace qmtl::broker
