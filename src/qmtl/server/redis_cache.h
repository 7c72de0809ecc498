// A shared cache of the activation sets the API serves, in Redis (`qmtl serve
// --redis redis://HOST:PORT[/DB]`), in front of the database.
//
// Reads that miss the server's own memory ask Redis; what Redis misses comes
// from the database and is written back. Writes always go to the database
// first; every committed change then replaces a generation token in Redis,
// which voids every entry cached under another. Tokens are random, never
// reused: a flush or a restored snapshot cannot bring an old one back. An entry is only
// written if the generation is still the one read before the database was, so
// a read that raced a change cannot store what it read. Together: once a
// change is acknowledged to its caller, no server serves the gates from
// before it.
//
// Redis down, slow, flushed or restarted is never an error for the caller:
// the read goes to the database, the cache is skipped for 500 ms, and a new
// connection bumps the generation before it is used (a Redis restored from an
// old snapshot holds entries of an old generation). A server whose connection
// fails when it bumps after a change reconnects at once (which bumps). Only a
// server that cannot reach a Redis that others can leaves a window: theirs
// close when they hear the change from the database's change feed.
//
// Thread safety: all methods are thread-safe (one connection, a mutex).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "qmtl/core/result.h"

struct redisContext;

namespace qmtl::server {

class RedisActivationCache {
 public:
  struct Entry {
    std::string body;  // the activation set as served (JSON)
    std::string etag;
  };
  // Where a read stands: the generation seen before the database was read.
  struct Ticket {
    std::string generation;
  };

  // Parses `url` (redis://HOST[:PORT][/DB]; the password, if any, comes from
  // QMTL_REDIS_PASSWORD, never the URL) and connects. kInvalidArgument for a
  // bad URL; a server that cannot be reached is not an error (reads go to the
  // database until it can). `name` separates the keys of one qmtl database
  // from another's in a shared Redis.
  static Result<std::unique_ptr<RedisActivationCache>> open(std::string_view url,
                                                            std::string_view name);
  ~RedisActivationCache();
  RedisActivationCache(const RedisActivationCache&) = delete;
  RedisActivationCache& operator=(const RedisActivationCache&) = delete;

  // The entry of `world` if Redis has a current one. On a miss, `ticket` is
  // set when Redis answered (then put() may store what the database says).
  std::optional<Entry> get(std::string_view world, std::optional<Ticket>& ticket);
  // Stores `entry` unless a change was committed since `ticket` was taken.
  void put(std::string_view world, const Ticket& ticket, const Entry& entry);
  // A change was committed: voids every entry cached before it.
  void changed();
  // Whether the last command reached Redis (for logs and tests).
  bool connected() const;

 private:
  RedisActivationCache(std::string host, int port, int db, std::string password, std::string prefix)
      : host_(std::move(host)),
        port_(port),
        db_(db),
        password_(std::move(password)),
        prefix_(std::move(prefix)) {}
  // Callers hold mu_. True when ctx_ is usable.
  bool ensure_connected();
  // A generation token no server has used before. Callers hold mu_.
  std::string new_generation();
  void drop(std::string_view why);

  const std::string host_;
  const int port_;
  const int db_;
  const std::string password_;
  const std::string prefix_;  // "qmtl:<name>:"
  mutable std::mutex mu_;
  redisContext* ctx_ = nullptr;
  std::chrono::steady_clock::time_point retry_after_{};
  bool warned_ = false;
  std::mt19937_64 rng_{std::random_device{}()};
  uint64_t bumps_ = 0;
};

}  // namespace qmtl::server
