// FixBroker against the FIX exchange simulator over real TCP (QuickFIX on
// both sides): order to fill, partial fills, cancel, final and transient
// rejects (retried by policy), the session lost (orders refused, never sent)
// and found again, a fill sent while the connection was down arriving by
// resend and booked once, and sequence numbers surviving a restart.
#include "qmtl/broker/fix/fix_broker.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/tcp_proxy.h"
#include "tests/support/temp_dir.h"

namespace qmtl::broker {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kSecret = "s3cr3t-Pa55";

class FixBrokerTest : public ::testing::Test {
 protected:
  void start_exchange(double max_fill = 0, int throttle_first = 0) {
    fix::ExchangeConfig c;
    c.session = {.port = exchange_port_,
                 .sender_comp_id = "EXCH",
                 .target_comp_id = "QMTL",
                 .store_dir = dir_.file("exch-store"),
                 .log_path = dir_.file("exch.log"),
                 .heartbeat_s = 1,
                 .password = kSecret};
    c.paths = {{"ES", {100, 101, 102, 99, 98}}, {"NQ", {200}}};
    c.max_fill_qty = max_fill;
    c.max_order_qty = 1000;
    c.throttle_first = throttle_first;
    std::string error;
    exchange_ = fix::Exchange::start(c, &error);
    ASSERT_TRUE(exchange_) << error;
  }
  std::unique_ptr<FixBroker> connect(int port, bool wait = true) {
    FixBrokerConfig c{.port = port,
                      .sender_comp_id = "QMTL",
                      .target_comp_id = "EXCH",
                      .account = "ACC-1",
                      .password = kSecret,
                      .store_dir = dir_.file("client-store"),
                      .log_path = dir_.file("client.log"),
                      .heartbeat_s = 1,
                      .initial_cash = 100'000,
                      .retry_backoff = milliseconds(50)};
    auto b = FixBroker::connect(c, clock_);
    EXPECT_TRUE(b) << b.error().message;
    if (!b) return nullptr;
    if (wait) {
      EXPECT_TRUE((*b)->wait_logged_on(seconds(10)));
    }
    return std::move(*b);
  }
  static Order market(const std::string& symbol, Side side, double qty) {
    return {.symbol = symbol, .side = side, .qty = qty};
  }
  std::string read(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  testing::TempDir dir_;
  SystemClock clock_;
  int exchange_port_ = testing::free_port();
  std::unique_ptr<fix::Exchange> exchange_;
};

TEST_F(FixBrokerTest, MarketOrderFillsAtTheQuoteAndBooksThePosition) {
  start_exchange();
  auto b = connect(exchange_port_);
  ASSERT_TRUE(b);
  auto id = b->submit(market("ES", Side::kBuy, 10));
  ASSERT_TRUE(id) << id.error().message;
  ASSERT_TRUE(b->wait_status(*id, FixOrderStatus::kFilled, seconds(5)));
  auto fills = b->take_fills();
  ASSERT_EQ(fills.size(), 1u);
  EXPECT_EQ(fills[0].order_id, *id);
  EXPECT_EQ(fills[0].qty, 10);
  EXPECT_EQ(fills[0].price, 100);
  const auto acct = b->account();
  EXPECT_EQ(acct.positions.at("ES").qty, 10);
  EXPECT_EQ(acct.cash, 100'000 - 1000);
  EXPECT_TRUE(b->take_fills().empty());
}

TEST_F(FixBrokerTest, LargeOrdersFillInPieces) {
  start_exchange(/*max_fill=*/100);
  auto b = connect(exchange_port_);
  ASSERT_TRUE(b);
  auto id = b->submit(market("NQ", Side::kSell, 250));
  ASSERT_TRUE(id);
  ASSERT_TRUE(b->wait_status(*id, FixOrderStatus::kFilled, seconds(5)));
  auto fills = b->take_fills();
  ASSERT_EQ(fills.size(), 3u);
  EXPECT_EQ(fills[0].qty, 100);
  EXPECT_EQ(fills[1].qty, 100);
  EXPECT_EQ(fills[2].qty, 50);
  EXPECT_EQ(b->account().positions.at("NQ").qty, -250);
}

TEST_F(FixBrokerTest, ALimitRestsUntilCrossedOrCancelled) {
  start_exchange();
  auto b = connect(exchange_port_);
  ASSERT_TRUE(b);
  Order buy_below{
      .symbol = "ES", .side = Side::kBuy, .qty = 5, .type = OrderType::kLimit, .limit_price = 99};
  auto resting = b->submit(buy_below);
  auto cancelled = b->submit(buy_below);
  ASSERT_TRUE(resting && cancelled);
  ASSERT_TRUE(b->wait_status(*resting, FixOrderStatus::kNew, seconds(5)));
  ASSERT_TRUE(b->wait_status(*cancelled, FixOrderStatus::kNew, seconds(5)));
  ASSERT_TRUE(b->cancel(*cancelled));
  ASSERT_TRUE(b->wait_status(*cancelled, FixOrderStatus::kCanceled, seconds(5)));
  EXPECT_EQ(b->cancel(*cancelled).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(b->cancel("fix-999").error().code, ErrorCode::kNotFound);
  // 100 -> 101 -> 102 -> 99: crossed at 99.
  for (int i = 0; i < 3; ++i) exchange_->advance();
  ASSERT_TRUE(b->wait_status(*resting, FixOrderStatus::kFilled, seconds(5)));
  auto fills = b->take_fills();
  ASSERT_EQ(fills.size(), 1u);
  EXPECT_EQ(fills[0].price, 99);
}

TEST_F(FixBrokerTest, FinalRejectsAreRecordedAndTransientOnesRetried) {
  start_exchange(0, /*throttle_first=*/2);
  auto b = connect(exchange_port_);
  ASSERT_TRUE(b);
  // Throttled twice (transient: retried under new ClOrdIDs), then filled.
  auto retried = b->submit(market("ES", Side::kBuy, 1));
  ASSERT_TRUE(retried);
  ASSERT_TRUE(b->wait_status(*retried, FixOrderStatus::kFilled, seconds(5)));
  auto unknown = b->submit(market("ZZ", Side::kBuy, 1));
  ASSERT_TRUE(unknown);
  ASSERT_TRUE(b->wait_status(*unknown, FixOrderStatus::kRejected, seconds(5)));
  auto huge = b->submit(market("ES", Side::kBuy, 5000));
  ASSERT_TRUE(huge);
  ASSERT_TRUE(b->wait_status(*huge, FixOrderStatus::kRejected, seconds(5)));
  const auto rejects = b->rejects();
  ASSERT_EQ(rejects.size(), 4u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(rejects[i].order_id, *retried);
    EXPECT_EQ(rejects[i].reason_code, 99);
    EXPECT_TRUE(rejects[i].transient);
    EXPECT_TRUE(rejects[i].retried);
  }
  EXPECT_NE(rejects[0].cl_ord_id, rejects[1].cl_ord_id);
  EXPECT_EQ(rejects[2].order_id, *unknown);
  EXPECT_EQ(rejects[2].reason_code, 1);
  EXPECT_EQ(rejects[2].text, "unknown symbol ZZ");
  EXPECT_FALSE(rejects[2].transient);
  EXPECT_FALSE(rejects[2].retried);
  EXPECT_EQ(rejects[3].reason_code, 3);
  EXPECT_EQ(exchange_->orders_received(), 5);
}

TEST_F(FixBrokerTest, ALostSessionRefusesOrdersAndAMissedFillArrivesByResend) {
  start_exchange();
  testing::TcpProxy proxy(exchange_port_);
  auto b = connect(proxy.port());
  ASSERT_TRUE(b);
  Order limit{
      .symbol = "ES", .side = Side::kBuy, .qty = 3, .type = OrderType::kLimit, .limit_price = 99};
  auto id = b->submit(limit);
  ASSERT_TRUE(id);
  ASSERT_TRUE(b->wait_status(*id, FixOrderStatus::kNew, seconds(5)));
  // The network goes: no order may be sent while the session is down.
  proxy.cut();
  for (int i = 0; i < 200 && b->logged_on(); ++i) std::this_thread::sleep_for(milliseconds(10));
  ASSERT_FALSE(b->logged_on());
  auto refused = b->submit(market("ES", Side::kBuy, 1));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(refused.error().message.find("not logged on"), std::string::npos);
  // Meanwhile the limit fills at the exchange; its report cannot be delivered.
  for (int i = 0; i < 3; ++i) exchange_->advance();
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(b->status(*id), FixOrderStatus::kNew);
  // The network is back: the client logs on again, sees the gap and gets the
  // report by resend; it is booked once.
  proxy.restore();
  ASSERT_TRUE(b->wait_logged_on(seconds(10))) << read(dir_.file("client.log")) << "\n---\n"
                                              << read(dir_.file("exch.log"));
  ASSERT_TRUE(b->wait_status(*id, FixOrderStatus::kFilled, seconds(10)));
  auto fills = b->take_fills();
  ASSERT_EQ(fills.size(), 1u);
  EXPECT_EQ(fills[0].qty, 3);
  EXPECT_EQ(b->account().positions.at("ES").qty, 3);
  EXPECT_NE(read(dir_.file("client.log")).find("|43=Y|"), std::string::npos)
      << "no PossDupFlag=Y message: the fill did not come by resend";
}

TEST_F(FixBrokerTest, SequenceNumbersSurviveARestartAndThePasswordIsNeverLogged) {
  start_exchange();
  {
    auto b = connect(exchange_port_);
    ASSERT_TRUE(b);
    auto id = b->submit(market("ES", Side::kBuy, 1));
    ASSERT_TRUE(id && b->wait_status(*id, FixOrderStatus::kFilled, seconds(10)));
  }
  // A new broker on the same store continues the numbering; the exchange,
  // which kept its own, accepts the logon without a reset.
  auto b = connect(exchange_port_);
  ASSERT_TRUE(b);
  auto id = b->submit(market("ES", Side::kSell, 1));
  ASSERT_TRUE(id && b->wait_status(*id, FixOrderStatus::kFilled, seconds(10)));
  const std::string log = read(dir_.file("client.log"));
  EXPECT_EQ(log.find("34=1|", log.rfind("35=A|")), std::string::npos)
      << "the second logon restarted at sequence number 1";
  for (const auto* file : {"client.log", "exch.log"}) {
    const std::string text = read(dir_.file(file));
    EXPECT_EQ(text.find(kSecret), std::string::npos) << file;
    EXPECT_NE(text.find("554=***"), std::string::npos) << file;
  }
  // Nor the stores, which keep every message sent (the Logon included).
  size_t files = 0;
  for (const auto* store : {"client-store", "exch-store"}) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_.file(store))) {
      if (!e.is_regular_file()) continue;
      ++files;
      EXPECT_EQ(read(e.path().string()).find(kSecret), std::string::npos) << e.path();
    }
  }
  EXPECT_GE(files, 4u);
}

TEST_F(FixBrokerTest, ARestartedBrokerBooksAFillResentAfterItAndKeepsItsAccount) {
  start_exchange();
  std::string resting;
  {
    auto b = connect(exchange_port_);
    ASSERT_TRUE(b);
    auto filled = b->submit(market("ES", Side::kBuy, 4));
    ASSERT_TRUE(filled && b->wait_status(*filled, FixOrderStatus::kFilled, seconds(5)));
    Order limit{
        .symbol = "ES", .side = Side::kBuy, .qty = 3, .type = OrderType::kLimit, .limit_price = 99};
    auto r = b->submit(limit);
    ASSERT_TRUE(r && b->wait_status(*r, FixOrderStatus::kNew, seconds(5)));
    resting = *r;
  }
  // While no broker runs, the limit fills at the exchange (100 -> 101 -> 102 -> 99).
  for (int i = 0; i < 3; ++i) exchange_->advance();
  auto b = connect(exchange_port_);
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->wait_status(resting, FixOrderStatus::kFilled, seconds(10)))
      << read(dir_.file("client.log"));
  auto fills = b->take_fills();
  ASSERT_EQ(fills.size(), 1u);
  EXPECT_EQ(fills[0].order_id, resting);
  EXPECT_EQ(fills[0].price, 99);
  // The account holds both: the fill booked before the restart and the resent one.
  EXPECT_EQ(b->account().positions.at("ES").qty, 7);
  EXPECT_DOUBLE_EQ(b->account().cash, 100'000 - 4 * 100 - 3 * 99);
  // New orders do not reuse ids.
  auto next = b->submit(market("ES", Side::kSell, 7));
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, "fix-3");
  ASSERT_TRUE(b->wait_status(*next, FixOrderStatus::kFilled, seconds(5)));
  EXPECT_TRUE(b->account().positions.empty());
}

TEST_F(FixBrokerTest, AWrongPasswordIsRefusedAtLogon) {
  start_exchange();
  FixBrokerConfig c{.port = exchange_port_,
                    .sender_comp_id = "QMTL",
                    .target_comp_id = "EXCH",
                    .password = "wrong",
                    .store_dir = dir_.file("client-store"),
                    .heartbeat_s = 1};
  auto b = FixBroker::connect(c, clock_);
  ASSERT_TRUE(b);
  EXPECT_FALSE((*b)->wait_logged_on(milliseconds(1500)));
  EXPECT_EQ((*b)->submit(market("ES", Side::kBuy, 1)).error().code, ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace qmtl::broker
