// WorldService: the operations on worlds that the API and the scheduler call.
//
// The service validates every input before it reaches the store, stamps times from
// the injected clock, and maps each operation to one store transaction, so a
// refused request changes nothing.
//
// Thread safety: safe to call from several threads at once (the store serialises).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qmtl/core/result.h"
#include "qmtl/core/time.h"
#include "qmtl/store/store.h"

namespace qmtl::world {

using store::World;

inline constexpr size_t kMaxWorldNameLength = 200;

struct CreateWorldRequest {
  std::string id;
  std::optional<std::string> name;  // defaults to the id
};

class WorldService {
 public:
  // `store` and `clock` must outlive the service.
  WorldService(store::Store& store, const Clock& clock) : store_(store), clock_(clock) {}

  // Creates a world in state Active with no policy. Errors: kInvalidArgument for a
  // bad id or name, kAlreadyExists if the id is taken.
  Result<World> create_world(const CreateWorldRequest& req);
  // kNotFound if absent; kInvalidArgument if `id` is not a valid id at all.
  Result<World> get_world(std::string_view id);
  // All worlds ordered by id.
  Result<std::vector<World>> list_worlds();

 private:
  store::Store& store_;
  const Clock& clock_;
};

}  // namespace qmtl::world
