// What only the SQLite backend does: files, ":memory:", URLs.
#include <gtest/gtest.h>

#include "qmtl/store/sql_store.h"
#include "qmtl/store/sqlite_db.h"
#include "tests/support/temp_dir.h"

namespace qmtl::store {
namespace {

TEST(SqliteStore, UrlNamesTheFile) {
  testing::TempDir dir;
  auto s = open_store("sqlite:" + dir.file("qmtl.db"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ((*s)->describe(), "sqlite:" + dir.file("qmtl.db"));
  EXPECT_TRUE(std::filesystem::exists(dir.file("qmtl.db")));
  auto mem = open_store("sqlite::memory:");
  ASSERT_TRUE(mem);
  EXPECT_EQ(*(*mem)->schema_version(), static_cast<int>(sqlite_migrations().size()));
}

TEST(SqliteOpenStore, RefusesUnknownOrIncompleteUrls) {
  for (const char* url : {"", "sqlite:", "mysql://x", "qmtl.db", "postgre://localhost/qmtl"}) {
    auto s = open_store(url);
    ASSERT_FALSE(s) << url;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument) << url;
  }
}

TEST(SqliteOpenStore, UnwritableLocationIsAClearError) {
  auto s = open_store("sqlite:/nonexistent-dir/qmtl.db");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("/nonexistent-dir/qmtl.db"), std::string::npos);
}

}  // namespace
}  // namespace qmtl::store

namespace qmtl::store {
namespace {

// docs/operations.md, "Durability": a change acknowledged to a client is in
// the WAL and synced before the commit returns (synchronous = FULL), so it
// survives power loss, not only a crash of the process (NORMAL syncs at
// checkpoints only). Each connection sets it; this reads it back from one.
TEST(SqliteDurability, CommitsAreSyncedBeforeTheyReturn) {
  testing::TempDir dir;
  auto db = SqliteDb::open(dir.file("d.db"));
  ASSERT_TRUE(db) << db.error().message;
  auto sync = (*db)->prepare("PRAGMA synchronous");
  ASSERT_TRUE(sync) << sync.error().message;
  ASSERT_TRUE(*sync->step());
  EXPECT_EQ(sync->column_int(0), 2) << "2 is FULL";
  auto mode = (*db)->prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode);
  ASSERT_TRUE(*mode->step());
  EXPECT_EQ(mode->column_text(0), "wal");
}

}  // namespace
}  // namespace qmtl::store
