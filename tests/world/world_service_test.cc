#include "qmtl/world/world_service.h"

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::world {
namespace {

class WorldServiceTest : public ::testing::Test {
 protected:
  WorldServiceTest()
      : store_(std::move(*store::open_store(testing::fresh_store_url(dir_, "w.db")))),
        clock_(*parse_timestamp("2026-01-05T10:00:00Z")),
        service_(*store_, clock_) {}

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  FakeClock clock_;
  WorldService service_;
};

TEST_F(WorldServiceTest, CreateStampsTheClockAndDefaultsTheName) {
  auto w = service_.create_world({.id = "demo"});
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ(w->name, "demo");
  EXPECT_EQ(w->state, lifecycle::WorldState::kActive);
  EXPECT_FALSE(w->policy_version);
  EXPECT_EQ(format_timestamp(w->created_at), "2026-01-05T10:00:00Z");
  EXPECT_EQ(w->updated_at, w->created_at);
  EXPECT_EQ(*service_.get_world("demo"), *w);
}

TEST_F(WorldServiceTest, InvalidInputChangesNothing) {
  EXPECT_EQ(service_.create_world({.id = "Bad Id"}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(service_.create_world({.id = "ok", .name = ""}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(service_.create_world({.id = "ok", .name = "two\nlines"}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(service_.create_world({.id = "ok", .name = std::string(201, 'n')}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_TRUE(service_.list_worlds()->empty());
}

TEST_F(WorldServiceTest, EachPolicyVersionIsParsedOnceAndShared) {
  ASSERT_TRUE(service_.create_world({.id = "demo"}));
  auto none = service_.parsed_policy("demo");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(*service_.parsed_policy_of(*service_.get_world("demo")));

  ASSERT_TRUE(
      service_.add_policy("demo", "gates: {promote: 'sharpe > 1'}\ntop_k: {k: 2}", "alice"));
  auto v1 = service_.parsed_policy("demo");
  ASSERT_TRUE(v1) << v1.error().message;
  EXPECT_EQ(v1->version, 1);
  ASSERT_NE(v1->native(), nullptr);
  EXPECT_EQ(v1->native()->top_k, 2);
  // The same immutable object for every caller of the same version.
  EXPECT_EQ(service_.parsed_policy("demo", 1)->document.get(), v1->document.get());
  EXPECT_EQ((*service_.parsed_policy_of(*service_.get_world("demo")))->document.get(),
            v1->document.get());

  ASSERT_TRUE(service_.add_policy("demo", "top_k: {metric: sharpe, k: 3}", "alice"));
  auto v2 = service_.parsed_policy("demo");
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->version, 2);
  EXPECT_EQ(v2->native(), nullptr);  // QMTL form
  EXPECT_EQ(std::get<policy::QmtlPolicy>(*v2->document).top_k->k, 3);
  EXPECT_EQ(service_.parsed_policy("demo", 1)->document.get(), v1->document.get());
  EXPECT_EQ(service_.parsed_policy("demo", 9).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(service_.parsed_policy("nowhere").error().code, ErrorCode::kNotFound);
}

TEST_F(WorldServiceTest, UnicodeNamesAreKept) {
  auto w = service_.create_world({.id = "kr", .name = "한국 데스크 🚀"});
  ASSERT_TRUE(w);
  EXPECT_EQ(service_.get_world("kr")->name, "한국 데스크 🚀");
}

TEST_F(WorldServiceTest, DuplicateKeepsTheOriginal) {
  ASSERT_TRUE(service_.create_world({.id = "demo", .name = "first"}));
  clock_.advance(std::chrono::hours(1));
  auto again = service_.create_world({.id = "demo", .name = "second"});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(service_.get_world("demo")->name, "first");
}

TEST_F(WorldServiceTest, GetValidatesTheIdBeforeLookingItUp) {
  EXPECT_EQ(service_.get_world("../etc").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(service_.get_world("absent").error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace qmtl::world
