#include "qmtl/store/sql_db.h"

namespace qmtl::store {

Result<void> Statement::run() {
  for (;;) {
    auto r = step();
    if (!r) return propagate(r);
    if (!*r) return {};
  }
}

Result<Transaction> Transaction::begin(SqlDb& db) {
  if (auto r = db.begin_write(); !r) return propagate(r);
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) db_->rollback();
}

Result<void> Transaction::commit() {
  if (db_ == nullptr) return make_error(ErrorCode::kInternal, "transaction already finished");
  auto r = db_->commit();
  if (r) db_ = nullptr;
  return r;
}

}  // namespace qmtl::store
