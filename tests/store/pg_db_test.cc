// The PostgreSQL connection: placeholders, the two migration lists, and (in
// the postgres.* run, on the test server) reconnection, secrets and writers
// of one database in several processes.
#include "qmtl/store/pg_db.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "qmtl/store/sql_store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::store {
namespace {

TEST(PgPlaceholders, NumbersBareAndExplicitPlaceholdersAsSqliteDoes) {
  int n = 0;
  EXPECT_EQ(to_postgres_placeholders("SELECT 1", n), "SELECT 1");
  EXPECT_EQ(n, 0);
  EXPECT_EQ(to_postgres_placeholders("UPDATE t SET a = ?, b = ? WHERE c = ?", n),
            "UPDATE t SET a = $1, b = $2 WHERE c = $3");
  EXPECT_EQ(n, 3);
  EXPECT_EQ(to_postgres_placeholders("VALUES (?1, ?2, ?1, ?12)", n), "VALUES ($1, $2, $1, $12)");
  EXPECT_EQ(n, 12);
  EXPECT_EQ(to_postgres_placeholders("VALUES (?3, ?)", n), "VALUES ($3, $4)");
  EXPECT_EQ(n, 4);
  EXPECT_EQ(to_postgres_placeholders("SELECT '?', 'it''s ?1' WHERE x = ?", n),
            "SELECT '?', 'it''s ?1' WHERE x = $1");
  EXPECT_EQ(n, 1);
}

TEST(PgMigrations, SameVersionsAndDescriptionsAsSqlite) {
  const auto a = sqlite_migrations();
  const auto b = postgres_migrations();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].version, static_cast<int>(i + 1));
    EXPECT_EQ(a[i].version, b[i].version);
    EXPECT_EQ(a[i].description, b[i].description);
  }
}

class PostgresTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(testing::on_postgres()); }
  testing::TempDir dir_;
};

World world(const std::string& id) {
  const TimePoint t{Duration(1'700'000'000'000'000)};
  return World{.id = id, .name = id, .created_at = t, .updated_at = t};
}
AuditRecord audit(const std::string& w, const std::string& event) {
  return AuditRecord{.at = TimePoint{Duration(1)},
                     .actor = "t",
                     .world_id = w,
                     .entity = "world",
                     .entity_id = w,
                     .event = event};
}

TEST_F(PostgresTest, ReconnectsAfterTheServerDropsTheConnection) {
  const std::string url = testing::fresh_store_url(dir_, "");
  auto s = open_store(url);
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_TRUE((*s)->insert_world(world("a"), audit("a", "CREATE")));
  // Another session ends the store's session, as a server restart or a
  // network cut would (application_name is the test's schema).
  auto admin = open_sql_db(url);
  ASSERT_TRUE(admin);
  const std::string schema = url.substr(url.rfind('=') + 1);
  ASSERT_TRUE((*admin)->exec(
      fmt::format("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> "
                  "pg_backend_pid() AND application_name = '{}'",
                  schema)));
  // The first call after the cut may fail (kUnavailable) but never answers
  // wrongly; the store reconnects and goes on.
  auto first = (*s)->get_world("a");
  if (!first) {
    EXPECT_EQ(first.error().code, ErrorCode::kUnavailable) << first.error().message;
  }
  auto again = (*s)->get_world("a");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->id, "a");
  ASSERT_TRUE((*s)->insert_world(world("b"), audit("b", "CREATE")));
  EXPECT_EQ((*s)->list_worlds()->size(), 2u);
}

TEST_F(PostgresTest, UnreachableServerIsAClearErrorWithoutThePassword) {
  auto s = open_store("postgres://qmtl:s3cret-pw@127.0.0.1:1/qmtl?connect_timeout=2");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(s.error().message.find("cannot connect to PostgreSQL"), std::string::npos);
  EXPECT_EQ(s.error().message.find("s3cret-pw"), std::string::npos) << s.error().message;
}

TEST_F(PostgresTest, DescribeNamesServerAndSchemaButNoPassword) {
  const std::string url = testing::fresh_store_url(dir_, "");
  auto s = open_store(url);
  ASSERT_TRUE(s);
  const std::string d = (*s)->describe();
  EXPECT_TRUE(d.starts_with("postgres://qmtl@127.0.0.1:")) << d;
  EXPECT_NE(d.find("(schema t_"), std::string::npos) << d;
}

TEST_F(PostgresTest, MissingSchemaIsRefusedWithAHint) {
  std::string url = testing::fresh_store_url(dir_, "");
  url = url.substr(0, url.find('?')) + "?options=-c%20search_path%3Dno_such_schema";
  auto s = open_store(url);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(s.error().message.find("search_path"), std::string::npos);
}

// Several stores on one schema (as replicas are): writers take turns, audit
// sequence numbers stay unique and increasing, and every write lands once.
TEST_F(PostgresTest, ConcurrentStoresOnOneDatabaseSerialiseTheirWrites) {
  const std::string url = testing::fresh_store_url(dir_, "");
  {
    auto s = open_store(url);
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->insert_world(world("w"), audit("w", "CREATE")));
  }
  constexpr int kStores = 4;
  constexpr int kWrites = 50;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < kStores; ++i) {
    threads.emplace_back([&, i] {
      auto s = open_store(url);  // each opens (and migrates) at the same time
      if (!s) {
        ++failures;
        return;
      }
      for (int k = 0; k < kWrites; ++k) {
        if (!(*s)->insert_audit(audit("w", fmt::format("NOTE-{}-{}", i, k)))) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto s = open_store(url);
  ASSERT_TRUE(s);
  auto log = (*s)->list_audit("w", 0, 1000);
  ASSERT_TRUE(log);
  ASSERT_EQ(log->size(), 1u + kStores * kWrites);
  std::set<std::string> events;
  for (size_t i = 1; i < log->size(); ++i) {
    EXPECT_LT((*log)[i - 1].seq, (*log)[i].seq);
    events.insert((*log)[i].event);
  }
  EXPECT_EQ(events.size(), static_cast<size_t>(kStores * kWrites));
  EXPECT_EQ(*(*s)->schema_version(), static_cast<int>(postgres_migrations().size()));
}

}  // namespace
}  // namespace qmtl::store
