#include <fmt/format.h>

#include "qmtl/store/sql_helpers.h"
#include "qmtl/store/sql_store.h"

namespace qmtl::store {

namespace {

constexpr std::string_view kWorldColumns =
    "id, name, state, policy_version, created_at_us, updated_at_us";

Result<World> read_world(const Statement& st) {
  auto state = lifecycle::parse_world_state(st.column_text(2));
  if (!state) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("world '{}' has a corrupt state in the database: {}",
                                  st.column_text(0), state.error().message));
  }
  World w;
  w.id = st.column_text(0);
  w.name = st.column_text(1);
  w.state = *state;
  if (!st.column_is_null(3)) w.policy_version = st.column_int(3);
  w.created_at = from_us(st.column_int(4));
  w.updated_at = from_us(st.column_int(5));
  return w;
}

constexpr std::string_view kStrategyColumns =
    "id, world_id, state, state_since_us, spec, created_at_us";

Result<Strategy> read_strategy(const Statement& st) {
  auto state = lifecycle::parse_strategy_state(st.column_text(2));
  if (!state) {
    return make_error(
        ErrorCode::kInternal,
        fmt::format("strategy '{}' has a corrupt state in the database", st.column_text(0)));
  }
  return Strategy{.id = st.column_text(0),
                  .world_id = st.column_text(1),
                  .state = *state,
                  .state_since = from_us(st.column_int(3)),
                  .spec = st.column_text(4),
                  .created_at = from_us(st.column_int(5))};
}

constexpr std::string_view kPolicyColumns =
    "world_id, version, document, canonical, checksum, created_at_us";

PolicyVersion read_policy(const Statement& st) {
  return PolicyVersion{.world_id = st.column_text(0),
                       .version = st.column_int(1),
                       .document = st.column_text(2),
                       .canonical = st.column_text(3),
                       .checksum = st.column_text(4),
                       .created_at = from_us(st.column_int(5))};
}

tl::unexpected<Error> world_not_found(std::string_view id) {
  return make_error(
      ErrorCode::kNotFound,
      fmt::format("world '{}' does not exist; `qmtl world list` shows the worlds", id));
}

}  // namespace

Result<void> SqlStore::insert_world(const World& w, const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  auto r = run_sql(
      db_, fmt::format("INSERT INTO worlds ({}) VALUES (?, ?, ?, ?, ?, ?)", kWorldColumns), w.id,
      w.name, lifecycle::world_state_name(w.state), w.policy_version, w.created_at, w.updated_at);
  if (!r) {
    if (db_.last_error_is_unique_violation()) {
      return make_error(ErrorCode::kAlreadyExists,
                        fmt::format("world '{}' already exists; choose another id", w.id));
    }
    return r;
  }
  if (auto a = append_audit(audit); !a) return a;
  return tx->commit();
}

Result<World> SqlStore::get_world_locked(std::string_view id) {
  return found_or(query_one(db_, fmt::format("SELECT {} FROM worlds WHERE id = ?", kWorldColumns),
                            read_world, id),
                  [&] { return world_not_found(id); });
}

Result<World> SqlStore::get_world(std::string_view id) {
  std::lock_guard lock(mu_);
  return get_world_locked(id);
}

Result<std::vector<World>> SqlStore::list_worlds() {
  std::lock_guard lock(mu_);
  auto st = db_.prepare(fmt::format("SELECT {} FROM worlds ORDER BY id", kWorldColumns));
  if (!st) return propagate(st);
  return collect(*st, read_world);
}

Result<void> SqlStore::set_world_state(std::string_view id, lifecycle::WorldState expected,
                                       lifecycle::WorldState next, TimePoint at,
                                       const AuditRecord& audit, bool archive_strategies) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  auto w = get_world_locked(id);
  if (!w) return propagate(w);
  if (w->state != expected) {
    return make_error(
        ErrorCode::kFailedPrecondition,
        fmt::format("world '{}' changed concurrently: it is {} now, not {}; retry", id,
                    lifecycle::world_state_name(w->state), lifecycle::world_state_name(expected)));
  }
  if (auto r = run_sql(db_, "UPDATE worlds SET state = ?, updated_at_us = ? WHERE id = ?",
                       lifecycle::world_state_name(next), at, id);
      !r) {
    return r;
  }
  if (auto r = append_audit(audit); !r) return r;
  // Live gates are open only in an Active world: EvalOnly closes them (no live
  // trading while only evaluating), Paused closes them (no execution), and going
  // back to Active reopens them.
  {
    auto live = prepared(
        db_, "SELECT id FROM strategies WHERE world_id = ? AND state = 'Live' ORDER BY id", id);
    if (!live) return propagate(live);
    std::vector<std::string> ids;
    for (;;) {
      auto row = live->step();
      if (!row) return propagate(row);
      if (!*row) break;
      ids.push_back(live->column_text(0));
    }
    if (auto r = set_gates(id, ids, next == lifecycle::WorldState::kActive, std::nullopt, at); !r)
      return r;
    // A side closed by hand stays closed.
    if (auto r =
            run_sql(db_, "UPDATE activations SET active = 0 WHERE world_id = ? AND manual = 0", id);
        !r) {
      return r;
    }
  }
  if (next == lifecycle::WorldState::kRetired) {
    if (auto r = drop_all_queued_locked(id, next, at, audit); !r) return r;
  }
  if (archive_strategies) {
    auto st =
        prepared(db_,
                 fmt::format("SELECT {} FROM strategies WHERE world_id = ? AND state != 'Archived' "
                             "ORDER BY id",
                             kStrategyColumns),
                 id);
    if (!st) return propagate(st);
    auto open = collect(*st, read_strategy);
    if (!open) return propagate(open);
    for (const Strategy& s : *open) {
      const auto archived = lifecycle::StrategyState::kArchived;
      if (auto r = run_sql(db_, "UPDATE strategies SET state = ?, state_since_us = ? WHERE id = ?",
                           lifecycle::strategy_state_name(archived), at, s.id);
          !r) {
        return r;
      }
      if (auto r = append_history(s.id, s.state, archived, "ARCHIVE", at); !r) return r;
      if (s.state == lifecycle::StrategyState::kLive) {
        if (auto r = set_gates(id, {s.id}, false, std::nullopt, at); !r) return r;
      }
      AuditRecord a = audit;
      a.entity = "strategy";
      a.entity_id = s.id;
      a.event = "ARCHIVE";
      a.before = std::string(lifecycle::strategy_state_name(s.state));
      a.after = std::string(lifecycle::strategy_state_name(archived));
      if (auto r = append_audit(a); !r) return r;
    }
  }
  return tx->commit();
}

Result<PolicyVersion> SqlStore::add_policy_version(std::string_view world_id,
                                                   std::string_view document,
                                                   std::string_view canonical,
                                                   std::string_view checksum, TimePoint at,
                                                   const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto w = get_world_locked(world_id); !w) return propagate(w);
  auto max = prepared(
      db_, "SELECT COALESCE(MAX(version), 0) FROM policy_versions WHERE world_id = ?", world_id);
  if (!max) return propagate(max);
  if (auto r = max->step(); !r) return propagate(r);
  PolicyVersion v{.world_id = std::string(world_id),
                  .version = max->column_int(0) + 1,
                  .document = std::string(document),
                  .canonical = std::string(canonical),
                  .checksum = std::string(checksum),
                  .created_at = at};
  if (auto r = run_sql(
          db_,
          fmt::format("INSERT INTO policy_versions ({}) VALUES (?, ?, ?, ?, ?, ?)", kPolicyColumns),
          v.world_id, v.version, v.document, v.canonical, v.checksum, v.created_at);
      !r) {
    return propagate(r);
  }
  if (auto r = run_sql(db_, "UPDATE worlds SET policy_version = ?, updated_at_us = ? WHERE id = ?",
                       v.version, at, world_id);
      !r) {
    return propagate(r);
  }
  AuditRecord a = audit;
  a.entity_id = std::to_string(v.version);
  if (auto r = append_audit(a); !r) return propagate(r);
  if (auto r = tx->commit(); !r) return propagate(r);
  return v;
}

Result<void> SqlStore::set_current_policy(std::string_view world_id, int64_t version, TimePoint at,
                                          const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto w = get_world_locked(world_id); !w) return propagate(w);
  auto exists = prepared(db_, "SELECT 1 FROM policy_versions WHERE world_id = ? AND version = ?",
                         world_id, version);
  if (!exists) return propagate(exists);
  auto row = exists->step();
  if (!row) return propagate(row);
  if (!*row) {
    return make_error(
        ErrorCode::kNotFound,
        fmt::format("world '{}' has no policy version {}; `qmtl world policy history {}` "
                    "lists them",
                    world_id, version, world_id));
  }
  if (auto r = run_sql(db_, "UPDATE worlds SET policy_version = ?, updated_at_us = ? WHERE id = ?",
                       version, at, world_id);
      !r) {
    return r;
  }
  if (auto r = append_audit(audit); !r) return r;
  return tx->commit();
}

Result<PolicyVersion> SqlStore::get_policy_version(std::string_view world_id, int64_t version) {
  std::lock_guard lock(mu_);
  return found_or(
      query_one(db_,
                fmt::format("SELECT {} FROM policy_versions WHERE world_id = ? AND version = ?",
                            kPolicyColumns),
                read_policy, world_id, version),
      [&]() -> Result<PolicyVersion> {
        if (auto w = get_world_locked(world_id); !w) return propagate(w);
        return make_error(ErrorCode::kNotFound,
                          fmt::format("world '{}' has no policy version {}", world_id, version));
      });
}

Result<std::vector<PolicyVersion>> SqlStore::list_policy_versions(std::string_view world_id) {
  std::lock_guard lock(mu_);
  if (auto w = get_world_locked(world_id); !w) return propagate(w);
  auto st =
      prepared(db_,
               fmt::format("SELECT {} FROM policy_versions WHERE world_id = ? ORDER BY version",
                           kPolicyColumns),
               world_id);
  if (!st) return propagate(st);
  return collect(*st, read_policy);
}

Result<void> SqlStore::insert_strategy(const Strategy& s, const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto w = get_world_locked(s.world_id); !w) return propagate(w);
  auto r = run_sql(
      db_, fmt::format("INSERT INTO strategies ({}) VALUES (?, ?, ?, ?, ?, ?)", kStrategyColumns),
      s.id, s.world_id, lifecycle::strategy_state_name(s.state), s.state_since, s.spec,
      s.created_at);
  if (!r) {
    if (db_.last_error_is_unique_violation()) {
      return make_error(
          ErrorCode::kAlreadyExists,
          fmt::format("strategy '{}' already exists; strategy ids are unique across worlds", s.id));
    }
    return r;
  }
  if (auto h = append_history(s.id, std::nullopt, s.state, audit.event, s.state_since); !h)
    return h;
  if (auto a = append_audit(audit); !a) return a;
  return tx->commit();
}

Result<Strategy> SqlStore::get_strategy(std::string_view id) {
  std::lock_guard lock(mu_);
  return found_or(
      query_one(db_, fmt::format("SELECT {} FROM strategies WHERE id = ?", kStrategyColumns),
                read_strategy, id),
      [&] {
        return make_error(
            ErrorCode::kNotFound,
            fmt::format("strategy '{}' does not exist; `qmtl strategy list --world <world>` shows "
                        "a world's strategies",
                        id));
      });
}

Result<std::vector<Strategy>> SqlStore::list_strategies(std::string_view world_id) {
  std::lock_guard lock(mu_);
  if (auto w = get_world_locked(world_id); !w) return propagate(w);
  auto st = prepared(
      db_,
      fmt::format("SELECT {} FROM strategies WHERE world_id = ? ORDER BY id", kStrategyColumns),
      world_id);
  if (!st) return propagate(st);
  return collect(*st, read_strategy);
}

Result<void> SqlStore::transition_strategy(std::string_view id, lifecycle::StrategyState expected,
                                           lifecycle::StrategyState next, TimePoint at,
                                           const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto r = transition_strategy_locked(id, expected, next, at, audit); !r) return r;
  return tx->commit();
}

Result<void> SqlStore::transition_strategy_locked(std::string_view id,
                                                  lifecycle::StrategyState expected,
                                                  lifecycle::StrategyState next, TimePoint at,
                                                  const AuditRecord& audit) {
  auto st = prepared(
      db_, "UPDATE strategies SET state = ?, state_since_us = ? WHERE id = ? AND state = ?",
      lifecycle::strategy_state_name(next), at, id, lifecycle::strategy_state_name(expected));
  if (!st) return propagate(st);
  if (auto r = st->run(); !r) return r;
  if (db_.changes() != 1) {
    return make_error(
        ErrorCode::kFailedPrecondition,
        fmt::format("strategy '{}' is no longer {} (changed concurrently or absent); retry", id,
                    lifecycle::strategy_state_name(expected)));
  }
  if (auto r = append_history(id, expected, next, audit.event, at); !r) return r;
  if (auto r = append_audit(audit); !r) return r;
  // The gate follows the state: open exactly while Live (frozen flags stay as they are).
  if (expected == lifecycle::StrategyState::kLive || next == lifecycle::StrategyState::kLive) {
    auto world =
        prepared(db_,
                 "SELECT s.world_id, w.state FROM strategies s JOIN worlds w ON w.id = s.world_id "
                 "WHERE s.id = ?",
                 id);
    if (!world) return propagate(world);
    if (auto row = world->step(); !row) return propagate(row);
    const bool open = next == lifecycle::StrategyState::kLive && world->column_text(1) == "Active";
    if (auto r = set_gates(world->column_text(0), {std::string(id)}, open, std::nullopt, at); !r)
      return r;
    if (expected == lifecycle::StrategyState::kLive) {
      // Manual marks belong to a Live strategy's gates; they end with it.
      if (auto r = run_sql(db_, "UPDATE activations SET manual = NULL WHERE strategy_id = ?", id);
          !r) {
        return r;
      }
    }
  }
  return {};
}

Result<std::optional<AlertHook>> SqlStore::get_alert_hook(std::string_view world_id) {
  std::lock_guard lock(mu_);
  auto st = prepared(
      db_, "SELECT world_id, url, events, updated_at_us FROM alert_hooks WHERE world_id = ?",
      world_id);
  if (!st) return propagate(st);
  auto row = st->step();
  if (!row) return propagate(row);
  if (!*row) return std::optional<AlertHook>();
  AlertHook h{.world_id = st->column_text(0),
              .url = st->column_text(1),
              .updated_at = from_us(st->column_int(3))};
  const std::string events = st->column_text(2);
  size_t start = 0;
  while (start < events.size()) {
    const auto comma = events.find(',', start);
    h.events.push_back(events.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return std::optional<AlertHook>(std::move(h));
}

Result<void> SqlStore::put_alert_hook(const AlertHook& hook, const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto w = get_world_locked(hook.world_id); !w) return propagate(w);
  if (hook.url.empty()) {
    if (auto r = run_sql(db_, "DELETE FROM alert_hooks WHERE world_id = ?", hook.world_id); !r) {
      return r;
    }
  } else {
    std::string events;
    for (const auto& e : hook.events) {
      if (!events.empty()) events += ',';
      events += e;
    }
    if (auto r = run_sql(db_,
                         "INSERT INTO alert_hooks (world_id, url, events, updated_at_us) VALUES "
                         "(?, ?, ?, ?) ON CONFLICT (world_id) DO UPDATE SET url = excluded.url, "
                         "events = excluded.events, updated_at_us = excluded.updated_at_us",
                         hook.world_id, hook.url, events, hook.updated_at);
        !r) {
      return r;
    }
  }
  if (auto r = append_audit(audit); !r) return r;
  return tx->commit();
}

Result<std::optional<WorldSetting>> SqlStore::get_world_setting(std::string_view world_id,
                                                                std::string_view kind) {
  std::lock_guard lock(mu_);
  return query_one(
      db_,
      "SELECT world_id, kind, doc, updated_at_us FROM world_settings WHERE "
      "world_id = ? AND kind = ?",
      [](const Statement& st) {
        return WorldSetting{.world_id = st.column_text(0),
                            .kind = st.column_text(1),
                            .doc = st.column_text(2),
                            .updated_at = from_us(st.column_int(3))};
      },
      world_id, kind);
}

Result<void> SqlStore::put_world_setting(const WorldSetting& setting, const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto w = get_world_locked(setting.world_id); !w) return propagate(w);
  if (setting.doc.empty()) {
    if (auto r = run_sql(db_, "DELETE FROM world_settings WHERE world_id = ? AND kind = ?",
                         setting.world_id, setting.kind);
        !r) {
      return r;
    }
  } else if (auto r = run_sql(db_,
                              "INSERT INTO world_settings (world_id, kind, doc, updated_at_us) "
                              "VALUES (?, ?, ?, ?) ON CONFLICT (world_id, kind) DO UPDATE SET "
                              "doc = excluded.doc, updated_at_us = excluded.updated_at_us",
                              setting.world_id, setting.kind, setting.doc, setting.updated_at);
             !r) {
    return r;
  }
  if (auto r = append_audit(audit); !r) return r;
  return tx->commit();
}

}  // namespace qmtl::store
