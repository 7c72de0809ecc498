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
