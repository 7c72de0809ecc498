#include "qmtl/server/redis_cache.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdlib>
#include <vector>

namespace qmtl::server {
namespace {

constexpr auto kTimeout = std::chrono::milliseconds(200);
constexpr auto kRetry = std::chrono::milliseconds(500);
constexpr int kEntryTtlMs = 60'000;

// Stores `entry` only while the generation is the one the reader saw.
constexpr std::string_view kPutScript =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) return 1 end return 0";

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

timeval to_timeval(std::chrono::milliseconds d) {
  return timeval{.tv_sec = static_cast<time_t>(d.count() / 1000),
                 .tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000)};
}

Reply command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return Reply(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
}

bool is_error(const Reply& r) { return !r || r->type == REDIS_REPLY_ERROR; }

std::string text_of(const redisReply* r) {
  if (r == nullptr || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) return "";
  return std::string(r->str, r->len);
}

}  // namespace

Result<std::unique_ptr<RedisActivationCache>> RedisActivationCache::open(std::string_view url,
                                                                         std::string_view name) {
  constexpr std::string_view kScheme = "redis://";
  const auto bad = [&](std::string_view why) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("--redis '{}': {}; use redis://HOST[:PORT][/DB] (the password "
                                  "goes in QMTL_REDIS_PASSWORD)",
                                  url, why));
  };
  if (!url.starts_with(kScheme)) return bad("not a redis:// URL");
  std::string_view rest = url.substr(kScheme.size());
  if (rest.find('@') != std::string_view::npos) return bad("a password does not belong in the URL");
  int db = 0;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    const std::string_view d = rest.substr(slash + 1);
    if (!d.empty()) {
      auto [p, ec] = std::from_chars(d.data(), d.data() + d.size(), db);
      if (ec != std::errc() || p != d.data() + d.size() || db < 0)
        return bad("bad database number");
    }
    rest = rest.substr(0, slash);
  }
  int port = 6379;
  std::string host(rest);
  if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    const std::string_view p = rest.substr(colon + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc() || end != p.data() + p.size() || port <= 0 || port > 65535) {
      return bad("bad port");
    }
    host = std::string(rest.substr(0, colon));
  }
  if (host.empty()) return bad("no host");
  const char* pw = std::getenv("QMTL_REDIS_PASSWORD");
  std::unique_ptr<RedisActivationCache> cache(new RedisActivationCache(
      std::move(host), port, db, pw != nullptr ? pw : "", fmt::format("qmtl:{}:", name)));
  {
    std::lock_guard lock(cache->mu_);
    if (!cache->ensure_connected()) {
      spdlog::warn("redis {}:{} is not reachable yet: activation reads go to the database",
                   cache->host_, cache->port_);
    }
  }
  return cache;
}

std::string RedisActivationCache::new_generation() {
  return fmt::format("{:016x}{:016x}", rng_(), ++bumps_);
}

RedisActivationCache::~RedisActivationCache() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

void RedisActivationCache::drop(std::string_view why) {
  if (!warned_) {
    spdlog::warn("redis {}:{}: {}; activation reads go to the database until it is back", host_,
                 port_, why);
    warned_ = true;
  }
  if (ctx_ != nullptr) redisFree(ctx_);
  ctx_ = nullptr;
  retry_after_ = std::chrono::steady_clock::now() + kRetry;
}

bool RedisActivationCache::ensure_connected() {
  if (ctx_ != nullptr) return true;
  if (std::chrono::steady_clock::now() < retry_after_) return false;
  ctx_ = redisConnectWithTimeout(host_.c_str(), port_, to_timeval(kTimeout));
  if (ctx_ == nullptr || ctx_->err != 0) {
    drop(ctx_ != nullptr ? ctx_->errstr : "cannot connect");
    return false;
  }
  redisSetTimeout(ctx_, to_timeval(kTimeout));
  if (!password_.empty() && is_error(command(ctx_, {"AUTH", password_}))) {
    drop("AUTH failed");
    return false;
  }
  if (db_ != 0 && is_error(command(ctx_, {"SELECT", std::to_string(db_)}))) {
    drop("SELECT failed");
    return false;
  }
  // Whatever this Redis holds may predate changes this server did not see it
  // hear (a restart from a snapshot, a failed bump): void it all first.
  if (is_error(command(ctx_, {"SET", prefix_ + "gen", new_generation()}))) {
    drop("cannot bump the generation");
    return false;
  }
  if (warned_) spdlog::info("redis {}:{} is back; activation reads use it again", host_, port_);
  warned_ = false;
  return true;
}

std::optional<RedisActivationCache::Entry> RedisActivationCache::get(
    std::string_view world, std::optional<Ticket>& ticket) {
  ticket.reset();
  std::lock_guard lock(mu_);
  if (!ensure_connected()) return std::nullopt;
  Reply r = command(ctx_, {"MGET", prefix_ + "gen", fmt::format("{}act:{}", prefix_, world)});
  if (is_error(r) || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
    drop(ctx_ != nullptr && ctx_->err != 0 ? ctx_->errstr : "unexpected MGET answer");
    return std::nullopt;
  }
  const std::string gen = text_of(r->element[0]);
  if (gen.empty()) {
    // Flushed since this connection set one: set a new one (if no other
    // server has) and cache nothing under the old.
    if (is_error(command(ctx_, {"SET", prefix_ + "gen", new_generation(), "NX"}))) {
      drop("cannot set the generation");
    }
    return std::nullopt;
  }
  ticket = Ticket{gen};
  // "<generation>\n<etag>\n<body>"
  const redisReply* e = r->element[1];
  if (e->type != REDIS_REPLY_STRING) return std::nullopt;
  const std::string_view v(e->str, e->len);
  const auto a = v.find('\n');
  if (a == std::string_view::npos || v.substr(0, a) != gen) return std::nullopt;
  const auto b = v.find('\n', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  return Entry{.body = std::string(v.substr(b + 1)),
               .etag = std::string(v.substr(a + 1, b - a - 1))};
}

void RedisActivationCache::put(std::string_view world, const Ticket& ticket, const Entry& entry) {
  std::lock_guard lock(mu_);
  if (ctx_ == nullptr) return;  // the ticket is from a connection that is gone
  Reply r = command(ctx_, {"EVAL", std::string(kPutScript), "2", prefix_ + "gen",
                           fmt::format("{}act:{}", prefix_, world), ticket.generation,
                           fmt::format("{}\n{}\n{}", ticket.generation, entry.etag, entry.body),
                           std::to_string(kEntryTtlMs)});
  if (is_error(r)) drop(ctx_ != nullptr && ctx_->err != 0 ? ctx_->errstr : "EVAL failed");
}

void RedisActivationCache::changed() {
  std::lock_guard lock(mu_);
  if (ctx_ != nullptr && !is_error(command(ctx_, {"SET", prefix_ + "gen", new_generation()}))) {
    return;
  }
  // The connection is gone (Redis restarted, say) or was: a change must not
  // wait for the next read to bump the generation, or another server that
  // reconnected first would serve what it cached before the change. A new
  // connection bumps it; try one now, whatever the retry pacing says.
  if (ctx_ != nullptr) drop(ctx_->err != 0 ? ctx_->errstr : "cannot bump the generation");
  retry_after_ = {};
  (void)ensure_connected();
}

bool RedisActivationCache::connected() const {
  std::lock_guard lock(mu_);
  return ctx_ != nullptr;
}

}  // namespace qmtl::server
