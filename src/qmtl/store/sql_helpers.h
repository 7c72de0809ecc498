// Internal to the store: the prepared-statement helpers the SqlStore files
// share. Not installed; include only from src/qmtl/store/*.cc.
//
// Every helper runs on the caller's connection; the caller holds SqlStore's
// mutex (and a transaction where it writes).
#pragma once

#include <fmt/format.h>

#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "qmtl/core/result.h"
#include "qmtl/core/time.h"
#include "qmtl/store/entities.h"
#include "qmtl/store/sql_db.h"

namespace qmtl::store {

// Times are stored as microseconds since the epoch.
inline int64_t to_us(TimePoint t) { return t.time_since_epoch().count(); }
inline TimePoint from_us(int64_t us) { return TimePoint(Duration(us)); }

// Binds each argument to the next parameter: strings, integers, and optionals of
// them (nullopt binds NULL).
inline Result<void> bind_one(Statement& st, int i, std::string_view v) { return st.bind(i, v); }
inline Result<void> bind_one(Statement& st, int i, const std::string& v) {
  return st.bind(i, std::string_view(v));
}
inline Result<void> bind_one(Statement& st, int i, int64_t v) { return st.bind(i, v); }
inline Result<void> bind_one(Statement& st, int i, double v) { return st.bind(i, v); }

inline Result<void> bind_one(Statement& st, int i, TimePoint v) { return st.bind(i, to_us(v)); }
template <typename T>
Result<void> bind_one(Statement& st, int i, const std::optional<T>& v) {
  return v ? bind_one(st, i, *v) : st.bind_null(i);
}

// A fill's columns (ts_us, symbol, side, qty, price, fee) from parameter `first` on.
inline Result<void> bind_fill(Statement& st, int first, const FillRecord& f) {
  if (auto r = bind_one(st, first, f.ts); !r) return r;
  if (auto r = bind_one(st, first + 1, f.symbol); !r) return r;
  if (auto r = bind_one(st, first + 2, f.side); !r) return r;
  if (auto r = st.bind(first + 3, f.qty); !r) return r;
  if (auto r = st.bind(first + 4, f.price); !r) return r;
  return st.bind(first + 5, f.fee);
}

// The same six columns as selected, from column 0.
inline FillRecord read_fill(const Statement& r) {
  return FillRecord{.ts = from_us(r.column_int(0)),
                    .symbol = r.column_text(1),
                    .side = r.column_text(2),
                    .qty = r.column_double(3),
                    .price = r.column_double(4),
                    .fee = r.column_double(5)};
}

template <typename... Args>
Result<Statement> prepared(SqlDb& db, std::string_view sql, const Args&... args) {
  auto st = db.prepare(sql);
  if (!st) return st;
  int i = 0;
  Result<void> ok;
  ((ok = ok ? bind_one(*st, ++i, args) : ok), ...);
  if (!ok) return propagate(ok);
  return st;
}

// Reads every remaining row of `st` with `read`, which returns T or Result<T>.
template <typename Read>
auto collect(Statement& st, Read read) {
  using R = std::invoke_result_t<Read, const Statement&>;
  if constexpr (requires(R r) {
                  r.has_value();
                  r.error();
                }) {
    using T = typename R::value_type;
    Result<std::vector<T>> out{std::vector<T>{}};
    for (;;) {
      auto row = st.step();
      if (!row) return Result<std::vector<T>>(propagate(row));
      if (!*row) return out;
      auto v = read(st);
      if (!v) return Result<std::vector<T>>(propagate(v));
      out->push_back(std::move(*v));
    }
  } else {
    Result<std::vector<R>> out{std::vector<R>{}};
    for (;;) {
      auto row = st.step();
      if (!row) return Result<std::vector<R>>(propagate(row));
      if (!*row) return out;
      out->push_back(read(st));
    }
  }
}

template <typename... Args>
Result<void> run_sql(SqlDb& db, std::string_view sql, const Args&... args) {
  auto st = prepared(db, sql, args...);
  if (!st) return propagate(st);
  return st->run();
}

inline std::optional<std::string> optional_text(const Statement& st, int col) {
  if (st.column_is_null(col)) return std::nullopt;
  return st.column_text(col);
}

// Runs a query with `args` and reads its first row with `read` (which returns
// T or Result<T>); nullopt when there is no row. The one shape of every
// single-row read: callers map nullopt to their own "not found" error.
template <typename R>
struct RowOf {  // what a row reader that returns R reads
  using type = R;
  static constexpr bool kFallible = false;
};
template <typename T>
struct RowOf<Result<T>> {
  using type = T;
  static constexpr bool kFallible = true;
};

template <typename Read, typename... Args>
auto query_one(SqlDb& db, std::string_view sql, Read read, const Args&... args) {
  using R = std::invoke_result_t<Read, const Statement&>;
  using T = typename RowOf<R>::type;
  constexpr bool kFallible = RowOf<R>::kFallible;
  using Out = Result<std::optional<T>>;
  auto st = prepared(db, sql, args...);
  if (!st) return Out(propagate(st));
  auto row = st->step();
  if (!row) return Out(propagate(row));
  if (!*row) return Out(std::nullopt);
  if constexpr (kFallible) {
    auto v = read(*st);
    if (!v) return Out(propagate(v));
    return Out(std::optional<T>(std::move(*v)));
  } else {
    return Out(std::optional<T>(read(*st)));
  }
}

// The value of a single-row read, or not_found() (an error) when there was
// no row.
template <typename T, typename NotFound>
Result<T> found_or(Result<std::optional<T>> r, NotFound not_found) {
  if (!r) return propagate(r);
  if (!*r) return not_found();
  return std::move(**r);
}

// The first column of the first row as an integer (queries that always
// return a row: COUNT, COALESCE(MAX(..), 0)).
template <typename... Args>
Result<int64_t> query_int(SqlDb& db, std::string_view sql, const Args&... args) {
  auto v = query_one(
      db, sql, [](const Statement& st) { return st.column_int(0); }, args...);
  if (!v) return propagate(v);
  return v->value_or(0);
}

}  // namespace qmtl::store
