#include "qmtl/server/idempotency.h"

#include <gtest/gtest.h>

namespace qmtl::server {
namespace {

using Outcome = IdempotencyCache::Outcome;

class IdempotencyTest : public ::testing::Test {
 protected:
  FakeClock clock_{*parse_timestamp("2026-02-01T00:00:00Z")};
  IdempotencyCache cache_{clock_, 3, std::chrono::hours(24)};
  static ApiResponse created(std::string body) {
    return ApiResponse{.status = 201, .body = std::move(body)};
  }
};

TEST_F(IdempotencyTest, ReplaysTheFirstAnswerAndRefusesOtherRequests) {
  EXPECT_EQ(cache_.begin("k", "POST /x 1").outcome, Outcome::kNew);
  EXPECT_EQ(cache_.begin("k", "POST /x 1").outcome, Outcome::kInProgress);
  cache_.finish("k", created("one"));
  auto again = cache_.begin("k", "POST /x 1");
  EXPECT_EQ(again.outcome, Outcome::kReplay);
  EXPECT_EQ(again.response.status, 201);
  EXPECT_EQ(again.response.body, "one");
  EXPECT_EQ(cache_.begin("k", "POST /x 2").outcome, Outcome::kMismatch);
}

TEST_F(IdempotencyTest, ServerErrorsAreNotRemembered) {
  ASSERT_EQ(cache_.begin("k", "f").outcome, Outcome::kNew);
  cache_.finish("k", ApiResponse{.status = 503});
  EXPECT_EQ(cache_.begin("k", "f").outcome, Outcome::kNew);
}

TEST_F(IdempotencyTest, KeysExpireAfterTheirTimeToLiveAndBeyondCapacity) {
  ASSERT_EQ(cache_.begin("old", "f").outcome, Outcome::kNew);
  cache_.finish("old", created("x"));
  clock_.advance(std::chrono::hours(23));
  EXPECT_EQ(cache_.begin("old", "f").outcome, Outcome::kReplay);
  clock_.advance(std::chrono::hours(2));
  EXPECT_EQ(cache_.begin("old", "f").outcome, Outcome::kNew);
  cache_.finish("old", created("y"));
  for (const char* k : {"a", "b", "c", "d"}) {
    ASSERT_EQ(cache_.begin(k, "f").outcome, Outcome::kNew);
    cache_.finish(k, created(k));
  }
  // Capacity 3: the oldest answers were dropped, the newest kept.
  EXPECT_EQ(cache_.begin("old", "f").outcome, Outcome::kNew);
  EXPECT_EQ(cache_.begin("d", "f").outcome, Outcome::kReplay);
}

}  // namespace
}  // namespace qmtl::server
