#!/usr/bin/env bash
# The main job on the embedded default: starts `qmtl serve` on a local SQLite file
# in the background, creates the demo world through the CLI and lists the worlds.
# The server keeps running; the script prints how to stop it. Running it again
# reuses the running server and the existing world.
#
# Environment: QMTL_DEMO_PORT (default 8080), QMTL_DEMO_DIR (default .qmtl-demo).
set -euo pipefail
cd "$(dirname "$0")/.."

qmtl="$PWD/build/release/apps/qmtl/qmtl"
dir="${QMTL_DEMO_DIR:-$PWD/.qmtl-demo}"
port="${QMTL_DEMO_PORT:-8080}"
url="http://127.0.0.1:$port"
export QMTL_GATEWAY_URL="$url"
mkdir -p "$dir"

# An admin token for this demo, made once and kept (owner-only) beside the database.
tokens="$dir/tokens"
if [ ! -f "$tokens" ]; then
  (umask 077; echo "demo-admin admin token:$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" >"$tokens")
fi
export QMTL_TOKEN="$(awk '{sub("token:", "", $3); print $3}' "$tokens")"

if [ ! -x "$qmtl" ]; then
  echo "demo: $qmtl is missing; run scripts/setup.sh first" >&2
  exit 1
fi

pidfile="$dir/server.pid"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && "$qmtl" world list >/dev/null 2>&1; then
  echo "demo: qmtl serve is already running (pid $(cat "$pidfile")) at $url"
else
  "$qmtl" serve --db "sqlite:$dir/qmtl.db" --port "$port" --token-file "$tokens" \
    >"$dir/server.out" 2>"$dir/server.log" &
  echo $! >"$pidfile"
  for _ in $(seq 1 100); do
    grep -q "listening on" "$dir/server.out" 2>/dev/null && break
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "demo: qmtl serve failed to start:" >&2
      cat "$dir/server.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  cat "$dir/server.out"
fi

if "$qmtl" world status demo >/dev/null 2>&1; then
  echo "demo: world 'demo' already exists"
else
  "$qmtl" world create demo --name "Demo world"
fi
"$qmtl" world list

cat <<MSG

The server is running (pid $(cat "$pidfile")) at $url with its database in $dir/qmtl.db.
Try:   export QMTL_GATEWAY_URL=$url QMTL_TOKEN=\$(awk '{sub("token:", "", \$3); print \$3}' $tokens)
       $qmtl world list --output json
       curl -H "Authorization: Bearer \$QMTL_TOKEN" $url/worlds/demo/events   # live events
Stop:  kill $(cat "$pidfile")
MSG
