// The database the store, service and scheduler tests run on.
//
// SQLite by default. CTest runs the same suites a second time as `postgres.*`
// with QMTL_TEST_PG_URL_FILE naming a file that holds the URL of a PostgreSQL
// server started by scripts/pg_test_cluster.sh (the `pg` test fixture); then
// every fresh store is a new, empty schema on that server.
#pragma once

#include <string>
#include <string_view>

#include "tests/support/temp_dir.h"

namespace qmtl::testing {

// True in the `postgres.*` runs.
bool on_postgres();

// The URL of a fresh, empty database for one test: `sqlite:<dir>/<name>`, or a
// new schema on the test server (the URL's search_path names it). Opening the
// URL again reaches the same data. Fails the test (ADD_FAILURE) and returns ""
// when the test server cannot be reached.
std::string fresh_store_url(const TempDir& dir, std::string_view name);

}  // namespace qmtl::testing
