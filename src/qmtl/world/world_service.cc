#include "qmtl/world/world_service.h"

#include <fmt/format.h>

#include "qmtl/core/id.h"

namespace qmtl::world {
namespace {

// A display name is free text but one line: control characters would break tables
// and logs. UTF-8 is allowed; the length limit is in bytes.
Result<void> validate_name(std::string_view name) {
  if (name.empty()) return make_error(ErrorCode::kInvalidArgument, "world name must not be empty");
  if (name.size() > kMaxWorldNameLength) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("world name is {} bytes long; the limit is {}", name.size(),
                                  kMaxWorldNameLength));
  }
  for (char c : name) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) {
      return make_error(ErrorCode::kInvalidArgument,
                        "world name must not contain control characters such as newlines or tabs");
    }
  }
  return {};
}

}  // namespace

Result<World> WorldService::create_world(const CreateWorldRequest& req) {
  if (auto r = validate_id("world", req.id); !r) return propagate(r);
  const std::string name = req.name.value_or(req.id);
  if (auto r = validate_name(name); !r) return propagate(r);
  const TimePoint now = clock_.now();
  World w{.id = req.id,
          .name = name,
          .state = lifecycle::WorldState::kActive,
          .policy_version = std::nullopt,
          .created_at = now,
          .updated_at = now};
  if (auto r = store_.insert_world(w); !r) return propagate(r);
  return w;
}

Result<World> WorldService::get_world(std::string_view id) {
  if (auto r = validate_id("world", id); !r) return propagate(r);
  return store_.get_world(id);
}

Result<std::vector<World>> WorldService::list_worlds() { return store_.list_worlds(); }

}  // namespace qmtl::world
