#!/usr/bin/env bash
# Checks deploy/systemd/qmtl.service: systemd-analyze accepts it, and its
# ExecStart, with the paths moved into a temporary directory, starts a server
# that answers and stops cleanly on SIGTERM. Run by CTest.
# usage: scripts/check_systemd_unit.sh <qmtl binary>
set -euo pipefail
qmtl="$1"
unit="$(cd "$(dirname "$0")/../deploy/systemd" && pwd)/qmtl.service"
work="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

sed "s|/usr/local/bin/qmtl|$qmtl|" "$unit" >"$work/qmtl.service"
systemd-analyze verify "$work/qmtl.service"

# ExecStart with its continuation lines joined.
cmd="$(awk '/^ExecStart=/{s=substr($0,11); while (s ~ /\\$/) {sub(/\\$/,"",s); getline l; s=s l} print s}' \
  "$work/qmtl.service")"
mkdir -p "$work/var" "$work/etc"
echo "ops admin token:$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" >"$work/etc/tokens"
chmod 600 "$work/etc/tokens"
cmd="${cmd//\/var\/lib\/qmtl/$work/var}"
cmd="${cmd//\/etc\/qmtl/$work/etc}"
cmd="${cmd//--port 8080/--port 0}"
echo "check_systemd_unit: $cmd"
# shellcheck disable=SC2086
$cmd >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$work/out" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/err" >&2; exit 1; }
  sleep 0.1
done
url="$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/out")"
[ -n "$url" ] || { echo "the server did not start" >&2; cat "$work/err" >&2; exit 1; }
curl -fsS "$url/healthz" >/dev/null
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" -eq 0 ] || { echo "the server exited with $rc on SIGTERM" >&2; exit 1; }
echo "check_systemd_unit: ok"
