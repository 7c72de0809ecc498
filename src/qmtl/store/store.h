// The repository interface behind WorldService, and the factory that opens one
// from a URL.
//
// Every method is one transaction: it either applies completely or leaves the
// store as it was. The store checks referential and uniqueness rules; semantic
// validation (ids, states, policies) is the service's job.
//
// Thread safety: implementations are safe to call from several threads at once.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qmtl/core/result.h"
#include "qmtl/core/time.h"
#include "qmtl/lifecycle/world_state.h"

namespace qmtl::store {

struct World {
  std::string id;
  std::string name;
  lifecycle::WorldState state = lifecycle::WorldState::kActive;
  std::optional<int64_t> policy_version;  // none until a policy is set
  TimePoint created_at;
  TimePoint updated_at;

  friend bool operator==(const World&, const World&) = default;
};

class Store {
 public:
  virtual ~Store() = default;

  // Inserts a new world. kAlreadyExists if the id is taken; nothing changes then.
  virtual Result<void> insert_world(const World& world) = 0;
  // kNotFound if there is no world `id`.
  virtual Result<World> get_world(std::string_view id) = 0;
  // All worlds ordered by id.
  virtual Result<std::vector<World>> list_worlds() = 0;

  // The schema version the store is at (the highest applied migration).
  virtual Result<int> schema_version() = 0;
  // A short description for logs, e.g. "sqlite:/var/lib/qmtl/qmtl.db".
  virtual std::string describe() const = 0;
};

// Opens the store named by `url` and brings its schema up to date:
//   sqlite:PATH        embedded SQLite file (created if missing)
//   sqlite::memory:    private in-memory database (tests)
// A database whose schema is newer than this build is refused, not touched.
Result<std::unique_ptr<Store>> open_store(std::string_view url);

}  // namespace qmtl::store
