#!/usr/bin/env bash
# GET /worlds/{id}/activation of a server on a shared PostgreSQL database
# (docs/performance.md, issue #12): such a server keeps no activation cache of
# its own, so each read goes to Redis (--redis) or to the database. Starts a
# throw-away PostgreSQL cluster and redis-server, one `qmtl serve` without and
# one with --redis, a world of 20 strategies with gates, and runs wrk on each.
#
#   bench/load/shared_activation_load.sh [seconds per wrk run, default 10]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-10}"
qmtl="$PWD/build/release/apps/qmtl/qmtl"
[ -x "$qmtl" ] || { echo "shared_activation_load: build first (scripts/setup.sh)" >&2; exit 1; }
dir="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/pg_test_cluster.sh stop "$dir/pg.url" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
QMTL_PG_DURABLE=1 scripts/pg_test_cluster.sh start "$dir/pg.url" >/dev/null
db="$(cat "$dir/pg.url")"
redis_port=$(( 20000 + RANDOM % 30000 ))
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$dir/redis.log" 2>&1 &
pids+=($!)
serve() {  # name, extra args...
  local name="$1"; shift
  "$qmtl" serve --db "$db" --port 0 --no-auth --execution false --access-log false \
    --io-threads 2 --threads 2 "$@" >"$dir/$name.out" 2>"$dir/$name.log" &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q "listening on" "$dir/$name.out" 2>/dev/null && break; sleep 0.1; done
  sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$dir/$name.out"
}
plain="$(serve plain)"
cached="$(serve cached --redis "redis://127.0.0.1:$redis_port")"
json=(-H "Content-Type: application/json")
curl -sf "${json[@]}" -d '{"id":"w"}' "$plain/worlds" >/dev/null
for i in $(seq 1 20); do
  curl -sf "${json[@]}" -d "{\"id\":\"s$i\",\"world\":\"w\",\"spec\":{\"nodes\":[]}}" \
    "$plain/strategies" >/dev/null
  curl -sf -X PUT "${json[@]}" -d "{\"strategy\":\"s$i\",\"side\":\"long\",\"active\":true}" \
    "$plain/worlds/w/activation" >/dev/null
done
for target in "database:$plain" "redis:$cached"; do
  name="${target%%:*}"; url="${target#*:}"
  curl -sf "$url/worlds/w/activation" >/dev/null
  out="$(wrk -t2 -c32 -d"${secs}s" --latency "$url/worlds/w/activation")"
  rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
  p99="$(echo "$out" | awk '$1 == "99%" {print $2}')"
  echo "GET /worlds/{id}/activation, shared PostgreSQL, reads from $name: $rps req/s, p99 $p99"
done
