# Sourced by the load scripts: `start_server DIR ARGS...` starts the release
# build's `qmtl serve ARGS...` on a free port with its output in DIR, waits
# until it listens and sets $url; the server is stopped and DIR removed on exit.
qmtl="$PWD/build/release/apps/qmtl/qmtl"
[ -x "$qmtl" ] || { echo "$0: $qmtl is missing; run scripts/setup.sh" >&2; exit 1; }
server_pid=""
server_dir=""
stop_server() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -n "$server_dir" ] && rm -rf "$server_dir"
}
trap stop_server EXIT
start_server() {
  server_dir="$1"
  shift
  "$qmtl" serve --port 0 "$@" >"$server_dir/out" 2>"$server_dir/server.log" &
  server_pid=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$server_dir/out" 2>/dev/null && break; sleep 0.1; done
  url="$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$server_dir/out")"
  [ -n "$url" ] || { cat "$server_dir/server.log" >&2; exit 1; }
}
