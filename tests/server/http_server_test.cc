#include "qmtl/server/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "qmtl/core/http_client.h"
#include "qmtl/core/json.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::server {
namespace {

// The real HTTP stack over loopback sockets, in-process so the sanitizers see it.
class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(*store::open_store(testing::fresh_store_url(dir_, "http.db")));
    worlds_ = std::make_unique<world::WorldService>(*store_, clock_);
    api_ = std::make_unique<Api>(*worlds_, clock_);
    ServerOptions o{.address = "127.0.0.1", .port = 0, .max_body_bytes = 1024};
    auto s = HttpServer::start(o, *api_);
    ASSERT_TRUE(s) << s.error().message;
    server_ = std::move(*s);
    url_ = "http://127.0.0.1:" + std::to_string(server_->port());
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  testing::TempDir dir_;
  SystemClock clock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<world::WorldService> worlds_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  std::string url_;
};

TEST_F(HttpServerTest, ServesTheApiOverSockets) {
  auto created =
      http_request(url_, {.method = "POST", .path = "/worlds", .body = R"({"id":"demo"})"});
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_EQ(created->status, 201);
  EXPECT_EQ(created->content_type, "application/json");
  auto list = http_request(url_, {.method = "GET", .path = "/worlds"});
  ASSERT_TRUE(list);
  EXPECT_EQ(json::parse(list->body)->at("worlds").as_array().size(), 1u);
}

TEST_F(HttpServerTest, OversizedBodyIs413AndCreatesNothing) {
  const std::string big = R"({"id":"big","name":")" + std::string(2000, 'x') + "\"}";
  auto r = http_request(url_, {.method = "POST", .path = "/worlds", .body = big});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->content_type, "application/problem+json");
  EXPECT_NE(r->body.find("exceeds 1024 bytes"), std::string::npos);
  auto list = http_request(url_, {.method = "GET", .path = "/worlds"});
  EXPECT_EQ(json::parse(list->body)->at("worlds").as_array().size(), 0u);
}

TEST_F(HttpServerTest, ConcurrentCreatesOfOneIdYieldExactlyOneWinner) {
  std::vector<std::thread> threads;
  std::atomic<int> created{0}, conflicts{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto r =
          http_request(url_, {.method = "POST", .path = "/worlds", .body = R"({"id":"race"})"});
      if (r && r->status == 201) ++created;
      if (r && r->status == 409) ++conflicts;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(conflicts.load(), 7);
}

TEST(HttpServer, PortInUseIsAClearError) {
  testing::TempDir dir;
  auto store = std::move(*store::open_store(testing::fresh_store_url(dir, "x.db")));
  SystemClock clock;
  world::WorldService worlds(*store, clock);
  Api api(worlds, clock);
  auto first = HttpServer::start({.port = 0}, api);
  ASSERT_TRUE(first);
  auto second = HttpServer::start({.port = (*first)->port()}, api);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(second.error().message.find("choose another --port"), std::string::npos);
}

TEST(HttpClient, UnreachableServerNamesTheUrl) {
  // Bind-and-release gives a port that nothing listens on.
  testing::TempDir dir;
  auto store = std::move(*store::open_store(testing::fresh_store_url(dir, "x.db")));
  SystemClock clock;
  world::WorldService worlds(*store, clock);
  Api api(worlds, clock);
  uint16_t port = 0;
  {
    auto s = HttpServer::start({.port = 0}, api);
    ASSERT_TRUE(s);
    port = (*s)->port();
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  auto r = http_request(url, {.method = "GET", .path = "/healthz"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find(url), std::string::npos);
}

TEST(HttpServer, IdleConnectionsAreClosedAndHeartbeatMustBeShorterThanTheTtl) {
  testing::TempDir dir;
  auto store = std::move(*store::open_store(testing::fresh_store_url(dir, "x.db")));
  SystemClock clock;
  world::WorldService worlds(*store, clock);
  Api api(worlds, clock, {.activation_ttl_s = 2});
  auto slow = HttpServer::start({.port = 0, .heartbeat = std::chrono::seconds(2)}, api);
  ASSERT_FALSE(slow);
  EXPECT_NE(slow.error().message.find("shorter than the activation TTL"), std::string::npos);

  auto s = HttpServer::start(
      {.port = 0, .idle_timeout = std::chrono::seconds(1), .heartbeat = std::chrono::seconds(1)},
      api);
  ASSERT_TRUE(s) << s.error().message;
  std::thread t([&] { (*s)->run(); });
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((*s)->port());
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  // Say nothing: the server must hang up after the idle timeout, not hold the
  // connection forever.
  const auto start = std::chrono::steady_clock::now();
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  char c = 0;
  EXPECT_EQ(::recv(fd, &c, 1, 0), 0);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(900));
  EXPECT_LT(waited, std::chrono::milliseconds(4000));
  ::close(fd);
  (*s)->stop();
  t.join();
}

TEST(HttpClient, RefusesBadUrls) {
  for (const char* url : {"", "127.0.0.1:8080", "https://127.0.0.1", "ftp://x", "http://"}) {
    auto r = http_request(url, {});
    ASSERT_FALSE(r) << url;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << url;
  }
}

}  // namespace
}  // namespace qmtl::server
