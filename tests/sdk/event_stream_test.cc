// The runner's event-stream client against the real server binary: the
// snapshot, a live change, resuming after a break with Last-Event-ID, the
// server going away, and refusals.
#include "qmtl/sdk/event_stream.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "qmtl/core/http_client.h"
#include "qmtl/core/json.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace qmtl::sdk {
namespace {

using std::chrono::milliseconds;

class EventStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<testing::ServerProcess>(
        QMTL_BINARY, dir_.file("s.db"), dir_.file("server.log"),
        std::vector<std::string>{"--no-auth", "--heartbeat", "200ms", "--activation-ttl", "2s"});
    call("POST", "/worlds", R"({"id":"w"})");
    call("POST", "/strategies", R"({"id":"s1","world":"w","spec":{}})");
  }
  int call(const std::string& method, const std::string& path, const std::string& body) {
    auto r = http_request(server_->url(), {.method = method, .path = path, .body = body});
    EXPECT_TRUE(r) << r.error().message;
    return r ? r->status : 0;
  }
  // The next event that is not a heartbeat.
  static std::optional<ServerEvent> next_real(EventStream& s) {
    for (int i = 0; i < 50; ++i) {
      auto e = s.next(milliseconds(2000));
      if (!e || !*e) return std::nullopt;
      if ((*e)->type != "heartbeat") return **e;
    }
    return std::nullopt;
  }
  testing::TempDir dir_;
  std::unique_ptr<testing::ServerProcess> server_;
};

TEST_F(EventStreamTest, SnapshotChangesResumeAndTheServerGoingAway) {
  auto s = EventStream::open({.base_url = server_->url(), .world = "w", .strategy = "s1"});
  ASSERT_TRUE(s) << s.error().message;
  auto snap = next_real(**s);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->type, "snapshot");
  EXPECT_EQ((*s)->last_event_id(), snap->id);
  // s1 is only Submitted: its gate can be closed by hand (recorded), not opened.
  ASSERT_EQ(
      call("PUT", "/worlds/w/activation", R"({"strategy":"s1","side":"long","active":false})"),
      200);
  auto change = next_real(**s);
  ASSERT_TRUE(change);
  EXPECT_EQ(change->type, "activation");
  EXPECT_FALSE(json::parse(change->data)
                   ->at("activation")
                   .at("entries")
                   .as_array()[0]
                   .at("active")
                   .as_bool());
  EXPECT_EQ(json::parse(change->data)->at("event").as_string(), "ACTIVATION_SET");
  // Heartbeats keep a quiet stream alive: silence is not an error.
  auto hb = (*s)->next(milliseconds(2000));
  ASSERT_TRUE(hb && *hb);
  EXPECT_EQ((**hb).type, "heartbeat");

  // Resume after a break: what happened since the last id comes first.
  const auto resume_after = (*s)->last_event_id();
  s->reset();
  ASSERT_EQ(
      call("PUT", "/worlds/w/activation", R"({"strategy":"s1","side":"short","active":false})"),
      200);
  auto again = EventStream::open(
      {.base_url = server_->url(), .world = "w", .strategy = "s1", .last_event_id = resume_after});
  ASSERT_TRUE(again) << again.error().message;
  auto missed = next_real(**again);
  ASSERT_TRUE(missed);
  EXPECT_EQ(missed->type, "activation");
  EXPECT_GT(std::stoll(missed->id), std::stoll(*resume_after));
  EXPECT_EQ(next_real(**again)->type, "snapshot");

  // The server goes away: the stream reports it, it does not just fall silent.
  ASSERT_EQ(server_->stop(), 0);
  auto last = (*again)->next(milliseconds(3000));
  for (int i = 0; i < 100 && last && *last; ++i) last = (*again)->next(milliseconds(3000));
  ASSERT_FALSE(last);
  EXPECT_EQ(last.error().code, ErrorCode::kUnavailable);
  auto gone = EventStream::open({.base_url = server_->url(), .world = "w"});
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(gone.error().message.find("cannot reach the qmtl server at"), std::string::npos);
}

TEST_F(EventStreamTest, RefusalsCarryTheServersReason) {
  auto missing = EventStream::open({.base_url = server_->url(), .world = "nope"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find("world 'nope' does not exist"), std::string::npos)
      << missing.error().message;
  auto bad_id = EventStream::open(
      {.base_url = server_->url(), .world = "w", .last_event_id = std::string("x")});
  ASSERT_FALSE(bad_id);
  EXPECT_EQ(bad_id.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(EventStream::open({.base_url = "ftp://x", .world = "w"}).error().code,
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace qmtl::sdk
