#include "qmtl/store/pg_db.h"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace qmtl::store {

void PgResultDeleter::operator()(pg_result* r) const { PQclear(r); }

namespace {

std::string trimmed(const char* msg) {
  std::string s = msg != nullptr ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class PgStatement final : public StatementImpl {
 public:
  PgStatement(PgDb& db, std::string sql, int params)
      : db_(db), sql_(std::move(sql)), params_(static_cast<size_t>(params)) {}

  Result<void> bind(int index, std::string_view text) override {
    return set(index, std::string(text));
  }
  Result<void> bind(int index, int64_t value) override { return set(index, std::to_string(value)); }
  Result<void> bind(int index, double value) override {
    if (std::isnan(value)) return set(index, "NaN");
    if (std::isinf(value)) return set(index, value > 0 ? "Infinity" : "-Infinity");
    return set(index, fmt::format("{}", value));  // shortest text that reads back exactly
  }
  Result<void> bind_null(int index) override { return set(index, std::nullopt); }

  Result<bool> step() override {
    if (!res_) {
      auto r = db_.run(sql_, params_);
      if (!r) return propagate(r);
      res_ = std::move(*r);
      row_ = -1;
    }
    ++row_;
    return row_ < PQntuples(res_.get());
  }
  void reset() override {
    res_.reset();
    for (auto& p : params_) p.reset();
  }

  std::string column_text(int col) const override {
    if (col >= PQnfields(res_.get())) return std::string();  // as SQLite answers
    return std::string(PQgetvalue(res_.get(), row_, col),
                       static_cast<size_t>(PQgetlength(res_.get(), row_, col)));
  }
  int64_t column_int(int col) const override {
    const char* p = PQgetvalue(res_.get(), row_, col);
    int64_t v = 0;
    std::from_chars(p, p + PQgetlength(res_.get(), row_, col), v);
    return v;
  }
  double column_double(int col) const override {
    return std::strtod(PQgetvalue(res_.get(), row_, col), nullptr);
  }
  bool column_is_null(int col) const override { return PQgetisnull(res_.get(), row_, col) == 1; }

 private:
  Result<void> set(int index, std::optional<std::string> v) {
    if (index < 1 || static_cast<size_t>(index) > params_.size()) {
      return make_error(ErrorCode::kInternal,
                        fmt::format("parameter {} is out of range for: {}", index, sql_));
    }
    params_[static_cast<size_t>(index - 1)] = std::move(v);
    return {};
  }

  PgDb& db_;
  const std::string sql_;
  std::vector<std::optional<std::string>> params_;
  PgResult res_;
  int row_ = -1;
};

// 64-bit FNV-1a: the advisory lock key of a schema, stable across processes.
int64_t lock_key_of(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  return static_cast<int64_t>(h);
}

}  // namespace

std::string change_channel(std::string_view schema) {
  return fmt::format("qmtl_changes_{:016x}",
                     static_cast<uint64_t>(lock_key_of(fmt::format("qmtl.changes:{}", schema))));
}

std::string to_postgres_placeholders(std::string_view sql, int& params) {
  std::string out;
  out.reserve(sql.size() + 16);
  params = 0;
  bool quoted = false;
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c == '\'') quoted = !quoted;
    if (quoted || c != '?') {
      out += c;
      continue;
    }
    size_t j = i + 1;
    while (j < sql.size() && sql[j] >= '0' && sql[j] <= '9') ++j;
    int n = 0;
    if (j > i + 1) {
      std::from_chars(sql.data() + i + 1, sql.data() + j, n);
      i = j - 1;
    } else {
      n = params + 1;  // as SQLite numbers a bare `?`: one past the highest so far
    }
    params = std::max(params, n);
    out += '$';
    out += std::to_string(n);
  }
  return out;
}

void PgConnCloser::operator()(pg_conn* c) const { PQfinish(c); }

Result<PgSession> connect_pg(std::string_view url) {
  const std::string u(url);
  PgConn conn(PQconnectdb(u.c_str()));
  if (conn == nullptr)
    return make_error(ErrorCode::kInternal, "out of memory connecting to PostgreSQL");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("cannot connect to PostgreSQL: {}; check the URL, that the "
                                  "server runs, and the password (PGPASSWORD or ~/.pgpass)",
                                  trimmed(PQerrorMessage(conn.get()))));
  }
  // Notices ("relation already exists, skipping") are not errors; keep them
  // out of the server's output.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  // Said without the URL, which may hold a password.
  std::string description = fmt::format("postgres://{}@{}:{}/{}", PQuser(conn.get()),
                                        PQhost(conn.get()), PQport(conn.get()), PQdb(conn.get()));
  PgResult schema(PQexec(conn.get(), "SELECT current_schema()"));
  if (PQresultStatus(schema.get()) != PGRES_TUPLES_OK || PQntuples(schema.get()) != 1 ||
      PQgetisnull(schema.get(), 0, 0) == 1) {
    return make_error(ErrorCode::kFailedPrecondition,
                      fmt::format("{} has no schema to create qmtl's tables in: the search_path "
                                  "names no existing schema; create it or fix the URL's options",
                                  description));
  }
  std::string schema_name = PQgetvalue(schema.get(), 0, 0);
  if (schema_name != "public") description += fmt::format(" (schema {})", schema_name);
  return PgSession{std::move(conn), std::move(schema_name), std::move(description)};
}

Result<std::unique_ptr<PgDb>> PgDb::open(std::string_view url) {
  auto session = connect_pg(url);
  if (!session) return propagate(session);
  std::unique_ptr<PgDb> db(new PgDb(session->conn.release(), std::move(session->description)));
  db->schema_ = session->schema;
  db->channel_ = change_channel(session->schema);
  db->lock_key_ = lock_key_of("qmtl.store:" + session->schema);
  return db;
}

PgDb::~PgDb() { PQfinish(conn_); }

Result<void> PgDb::ensure_connected() {
  if (PQstatus(conn_) == CONNECTION_OK) return {};
  if (in_transaction_) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("lost the connection to {} in a transaction; nothing of it "
                                  "was committed, retry",
                                  description_));
  }
  prepared_.clear();  // prepared statements die with their session
  PQreset(conn_);
  if (PQstatus(conn_) != CONNECTION_OK) {
    return make_error(ErrorCode::kUnavailable, fmt::format("cannot reach {}: {}", description_,
                                                           trimmed(PQerrorMessage(conn_))));
  }
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
  return {};
}

tl::unexpected<Error> PgDb::failure(const pg_result* res, std::string_view what) {
  const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  last_sqlstate_ = state != nullptr ? state : "";
  const std::string msg =
      trimmed(res != nullptr ? PQresultErrorMessage(res) : PQerrorMessage(conn_));
  // Class 08: connection exceptions; 40001/40P01: serialization failure and
  // deadlock; 57P0x: the server is shutting down. All are worth a retry.
  const bool transient = PQstatus(conn_) != CONNECTION_OK || last_sqlstate_.starts_with("08") ||
                         last_sqlstate_ == "40001" || last_sqlstate_ == "40P01" ||
                         last_sqlstate_.starts_with("57P0");
  return make_error(transient ? ErrorCode::kUnavailable : ErrorCode::kInternal,
                    fmt::format("database {} failed: {}", what, msg.empty() ? "no answer" : msg));
}

Result<void> PgDb::exec(std::string_view sql) {
  if (auto r = ensure_connected(); !r) return r;
  const std::string s(sql);
  PgResult res(PQexec(conn_, s.c_str()));
  const auto status = PQresultStatus(res.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    return failure(res.get(), "statement");
  last_sqlstate_.clear();
  return {};
}

Result<Statement> PgDb::prepare(std::string_view sql) {
  int params = 0;
  std::string converted = to_postgres_placeholders(sql, params);
  return Statement(std::make_unique<PgStatement>(*this, std::move(converted), params));
}

Result<PgResult> PgDb::run(const std::string& sql,
                           const std::vector<std::optional<std::string>>& params) {
  if (auto r = ensure_connected(); !r) return propagate(r);
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = fmt::format("qmtl_{}", prepared_.size() + 1);
    PgResult res(
        PQprepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(params.size()), nullptr));
    if (PQresultStatus(res.get()) != PGRES_COMMAND_OK) return failure(res.get(), "prepare");
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PgResult res(PQexecPrepared(conn_, it->second.c_str(), static_cast<int>(values.size()),
                              values.data(), nullptr, nullptr, 0));
  const auto status = PQresultStatus(res.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    return failure(res.get(), "statement");
  last_sqlstate_.clear();
  const char* n = PQcmdTuples(res.get());
  changes_ = 0;  // "" for a statement that reports no row count
  if (n != nullptr) std::from_chars(n, n + std::strlen(n), changes_);
  return res;
}

Result<void> PgDb::begin_write() {
  if (auto r = ensure_connected(); !r) return r;
  if (auto r = exec(fmt::format("BEGIN; SELECT pg_advisory_xact_lock({})", lock_key_)); !r) {
    (void)exec("ROLLBACK");
    return r;
  }
  in_transaction_ = true;
  return {};
}

Result<void> PgDb::commit() {
  in_transaction_ = false;
  PgResult res(PQexec(conn_, "COMMIT"));
  if (PQresultStatus(res.get()) != PGRES_COMMAND_OK) return failure(res.get(), "commit");
  // COMMIT of a transaction that failed earlier answers ROLLBACK, not an error.
  if (std::string_view(PQcmdStatus(res.get())) != "COMMIT") {
    return make_error(ErrorCode::kInternal,
                      "database commit failed: the transaction was rolled back");
  }
  return {};
}

// Session locks use non-negative keys, so pg_locks shows them as classid
// (high 32 bits) and objid (low 32 bits) as they are.
int64_t PgDb::session_key(std::string_view name) const {
  return lock_key_of(fmt::format("qmtl.{}:{}", schema_, name)) & 0x3fffffffffffffff;
}

Result<bool> PgDb::hold_session_lock(std::string_view name) {
  const int64_t key = session_key(name);
  auto r = run(fmt::format("SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE locktype = "
                           "'advisory' AND pid = pg_backend_pid() AND granted AND classid = {} "
                           "AND objid = {} AND objsubid = 1) THEN true ELSE "
                           "pg_try_advisory_lock({}) END",
                           key >> 32, key & 0xffffffff, key),
               {});
  if (!r) return propagate(r);
  return PQntuples(r->get()) == 1 && std::string_view(PQgetvalue(r->get(), 0, 0)) == "t";
}

Result<bool> PgDb::try_session_lock(std::string_view name) {
  const int64_t key = session_key(name);
  auto r = run(fmt::format("SELECT pg_try_advisory_lock({})", key), {});
  if (!r) return propagate(r);
  return PQntuples(r->get()) == 1 && std::string_view(PQgetvalue(r->get(), 0, 0)) == "t";
}

void PgDb::session_unlock(std::string_view name) {
  const int64_t key = session_key(name);
  (void)run(fmt::format("SELECT pg_advisory_unlock({})", key), {});
}

Result<void> PgDb::notify_change(std::string_view world) {
  auto r = run("SELECT pg_notify($1, $2)", {channel_, std::string(world)});
  if (!r) return propagate(r);
  return {};
}

void PgDb::rollback() {
  in_transaction_ = false;
  if (PQstatus(conn_) == CONNECTION_OK) PgResult(PQexec(conn_, "ROLLBACK"));
}

}  // namespace qmtl::store
