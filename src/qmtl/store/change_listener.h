// Hears the changes other servers commit to a shared database.
//
// Several `qmtl serve` replicas on one PostgreSQL database each keep caches and
// event streams of their own; every write transaction that audits a change of
// a world also NOTIFYs its id (SqlDb::notify_change), and a ChangeListener in
// each server LISTENs and reports it, so a gate closed on one replica reaches
// the clients of all of them.
//
// Thread safety: the callbacks run on the listener's own thread, one at a time;
// they must be thread-safe with respect to the rest of the server and quick.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "qmtl/core/result.h"

namespace qmtl::store {

class ChangeListener {
 public:
  struct Callbacks {
    // A world changed (on any server, this one included).
    std::function<void(std::string_view world)> changed;
    // The listener's connection went up (true) or down (false). Changes made
    // while it was down were not heard: on true, treat every world as changed.
    std::function<void(bool up)> connection;
  };
  virtual ~ChangeListener() = default;  // stops listening; no callback runs after it
};

// Starts listening on the database `url` names (see open_store). Returns null
// for SQLite, which serves one server per file and has nothing to hear. The
// listener reconnects by itself (100 ms doubling to 2 s between attempts); the
// first connection is made before it returns, so an unreachable server is an
// error here.
Result<std::unique_ptr<ChangeListener>> listen_for_changes(std::string_view url,
                                                           ChangeListener::Callbacks callbacks);

}  // namespace qmtl::store
