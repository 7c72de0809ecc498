#!/usr/bin/env bash
# Load benchmark of the HTTP API on this machine (SPEC §6 targets, issue #6):
#   1. GET /worlds/{id}/activation            target >= 50,000 req/s, p99 <= 5 ms
#   2. POST /strategies/{id}/performance      target >= 200,000 points/s
#   3. activation change -> event received    target p99 <= 10 ms
# Starts its own `qmtl serve` (release build) on a temporary SQLite file with a
# token file, seeds a world of 20 strategies, runs wrk, prints one line per
# figure and exits non-zero if a target is missed.
#
#   bench/load/api_load.sh [seconds per wrk run, default 10]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-10}"
qmtl="$PWD/build/release/apps/qmtl/qmtl"
latency="$PWD/build/release/bench/event_latency"
flip="$PWD/build/release/bench/gate_flip"
for f in "$qmtl" "$latency" "$flip"; do
  [ -x "$f" ] || { echo "api_load: $f is missing; run scripts/setup.sh" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "api_load: wrk is missing; run scripts/setup.sh" >&2; exit 1; }

dir="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
token="load-admin-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
echo "bench admin token:$token" >"$dir/tokens"
"$qmtl" serve --db "sqlite:$dir/load.db" --port 0 --token-file "$dir/tokens" \
  --io-threads "${QMTL_IO_THREADS:-2}" --threads "${QMTL_THREADS:-2}" \
  --access-log "${QMTL_ACCESS_LOG:-true}" --log-level "${QMTL_LOG_LEVEL:-info}" \
  >"$dir/out" 2>"$dir/server.log" &
server_pid=$!
for _ in $(seq 1 100); do grep -q "listening on" "$dir/out" 2>/dev/null && break; sleep 0.1; done
url="$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$dir/out")"
[ -n "$url" ] || { cat "$dir/server.log" >&2; exit 1; }
auth=(-H "Authorization: Bearer $token" -H "Content-Type: application/json")

# Twenty Live strategies with open gates: validated by the server's execution
# manager on the example history (no feed: no runners), then promoted by hand
# (the world has no policy, so no caps), which opens both sides of each.
curl -sf "${auth[@]}" -d '{"id":"bench"}' "$url/worlds" >/dev/null
curl -sf "${auth[@]}" -X PUT -d "{\"history\":\"$PWD/examples/data/ttrc_ohlcv.csv\",\"window\":\"52w\",\"max_validations\":4}" \
  "$url/worlds/bench/execution" >/dev/null
spec="$(python3 -c 'import json,sys; print(json.dumps({"inputs": {"close": {"interval": "1d"}}, "nodes": {"r": {"indicator": "returns", "input": "close"}}, "orders": {"signal": "r", "symbol": "TTRC", "qty": 1}}))')"
for i in $(seq 0 19); do
  curl -sf "${auth[@]}" -d "{\"id\":\"s$i\",\"world\":\"bench\",\"spec\":$spec}" "$url/strategies" >/dev/null
done
for i in $(seq 0 19); do
  for _ in $(seq 1 300); do
    curl -sf "${auth[@]}" "$url/strategies/s$i" | grep -q '"state":"DryRun"' && break
    sleep 0.1
  done
  curl -sf "${auth[@]}" -d '{"reason":"load benchmark"}' "$url/strategies/s$i/promote" >/dev/null
done

status=0
check() {  # name value op target
  if awk -v v="$2" -v t="$4" "BEGIN { exit !(v $3 t) }"; then
    echo "  ok    $1: $2 (target $3 $4)"
  else
    echo "  MISS  $1: $2 (target $3 $4)"; status=1
  fi
}
to_ms() {  # wrk latency like 1.23ms / 850.00us / 1.20s -> ms
  awk '{ v=$1; if (v ~ /us$/) { sub(/us$/, "", v); print v/1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v } else { sub(/s$/, "", v); print v*1000 } }'
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
# QMTL_PERF=FILE records a perf profile of the server during the GET run.
[ -n "${QMTL_PERF:-}" ] && (sleep 2; perf record -g -p "$server_pid" -o "$QMTL_PERF" -- sleep 3 >/dev/null 2>&1) &
wrk -t2 -c"${QMTL_CONNECTIONS:-32}" -d"${secs}s" --latency -H "Authorization: Bearer $token" \
  "$url/worlds/bench/activation" >"$dir/wrk_get.txt"
rps="$(awk '/^Requests\/sec/ {print $2}' "$dir/wrk_get.txt")"
p99="$(awk '$1 == "99%" {print $2}' "$dir/wrk_get.txt" | to_ms)"
errors="$(awk '/Non-2xx/ {print $5}' "$dir/wrk_get.txt")"
echo "GET /worlds/{id}/activation (wrk -t2 -c${QMTL_CONNECTIONS:-32} ${secs}s):"
check "requests/s" "$rps" ">=" 50000
check "p99 ms" "$p99" "<=" 5
check "non-2xx responses" "${errors:-0}" "==" 0

# Peer: nginx (when installed) serving the same activation bytes as a static
# file with the same wrk command: the ceiling of this machine for this response.
if command -v nginx >/dev/null; then
  mkdir -p "$dir/nginx/html"
  curl -sf -H "Authorization: Bearer $token" "$url/worlds/bench/activation" >"$dir/nginx/html/activation"
  cat >"$dir/nginx/nginx.conf" <<NGINX
worker_processes 2;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log;
events { worker_connections 1024; }
http { access_log off; default_type application/json;
  server { listen 127.0.0.1:${QMTL_NGINX_PORT:-18090}; root $dir/nginx/html; keepalive_requests 1000000; } }
NGINX
  if nginx -c "$dir/nginx/nginx.conf" -p "$dir/nginx" 2>/dev/null; then
    sleep 0.3
    wrk -t2 -c"${QMTL_CONNECTIONS:-32}" -d"${secs}s" --latency \
      "http://127.0.0.1:${QMTL_NGINX_PORT:-18090}/activation" >"$dir/wrk_nginx.txt"
    nginx -c "$dir/nginx/nginx.conf" -p "$dir/nginx" -s stop 2>/dev/null || true
    nrps="$(awk '/^Requests\/sec/ {print $2}' "$dir/wrk_nginx.txt")"
    np99="$(awk '$1 == "99%" {print $2}' "$dir/wrk_nginx.txt" | to_ms)"
    echo "  peer  nginx static file, same bytes: $nrps req/s, p99 $np99 ms; qmtl/nginx = $(awk -v a="$rps" -v b="$nrps" 'BEGIN { printf "%.2f", a / b }')"
  fi
fi

QMTL_TOKEN="$token" QMTL_BATCH="${QMTL_BATCH:-10000}" wrk -t1 -c4 -d"${secs}s" \
  -s bench/load/performance.lua "$url" >"$dir/wrk_post.txt" 2>"$dir/wrk_post.err" || true
prps="$(awk '/^Requests\/sec/ {print $2}' "$dir/wrk_post.txt")"
perrors="$(awk '/Non-2xx/ {print $5}' "$dir/wrk_post.txt")"
points="$(awk -v r="$prps" -v b="${QMTL_BATCH:-10000}" 'BEGIN { printf "%d", r * b }')"
echo "POST /strategies/{id}/performance (batches of ${QMTL_BATCH:-10000} points, 4 connections):"
check "points/s" "$points" ">=" 200000
check "non-2xx responses" "${perrors:-0}" "==" 0
[ -s "$dir/wrk_post.err" ] && head -3 "$dir/wrk_post.err"

echo "activation change -> event received (1000 changes, one client):"
line="$("$latency" "$url" "$token" bench s0 1000)"
echo "  $line"
ep99="$(sed -n 's/.*p99=\([0-9.]*\)ms.*/\1/p' <<<"$line")"
check "p99 ms" "$ep99" "<=" 10

echo "activation change -> gate flip in a connected runner (1000 changes):"
line="$("$flip" "$url" "$token" bench s1 1000)"
echo "  $line"
fp99="$(sed -n 's/.*p99=\([0-9.]*\)ms.*/\1/p' <<<"$line")"
check "p99 ms" "$fp99" "<=" 20
exit $status
