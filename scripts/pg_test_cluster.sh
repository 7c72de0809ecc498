#!/usr/bin/env bash
# Starts or stops a throw-away PostgreSQL server for the tests: a fresh cluster
# under /tmp on a free loopback port, trust auth, fsync off (test data only)
# unless QMTL_PG_DURABLE=1.
#
#   scripts/pg_test_cluster.sh start URL_FILE   # writes the server's URL to URL_FILE
#   scripts/pg_test_cluster.sh stop URL_FILE    # stops it and removes the cluster
#   QMTL_PG_DURABLE=1 scripts/pg_test_cluster.sh start URL_FILE
#                                               # fsync and synchronous commit on, as in
#                                               # production (the benchmarks, crash tests)
#   scripts/pg_test_cluster.sh crash URL_FILE   # SIGKILL to the postmaster: a crash
#   scripts/pg_test_cluster.sh restart URL_FILE # starts it again on the same port (crash
#                                               # recovery from its WAL)
#
# CTest runs these as the `pg` fixture around the postgres.* tests. As root the
# server runs as the `postgres` user (PostgreSQL refuses to run as root).
set -euo pipefail
action="${1:?start or stop}"
url_file="${2:?URL file}"
state_file="$url_file.dir"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$bin/initdb" ] || { echo "pg_test_cluster: PostgreSQL server binaries not found; run scripts/setup.sh" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop() {
  if [ -f "$state_file" ]; then
    dir="$(cat "$state_file")"
    if [ -d "$dir/data" ]; then as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
    rm -rf "$dir"
    rm -f "$state_file"
  fi
  rm -f "$url_file"
}

# The server's options; its port from the URL file when it is started again.
options() {
  local settings="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  if [ "${QMTL_PG_DURABLE:-0}" = 1 ]; then settings=""; fi
  echo "-p $1 -k $2 -c listen_addresses=127.0.0.1 -c max_connections=200 $settings"
}

case "$action" in
  stop) stop ;;
  crash)
    dir="$(cat "$state_file")"
    kill -9 "$(head -1 "$dir/data/postmaster.pid")"
    ;;
  restart)
    dir="$(cat "$state_file")"
    port="$(sed -E 's/.*:([0-9]+)\/.*/\1/' "$url_file")"
    # Its backends end once they see the postmaster gone; until then the old
    # shared memory is in use and a start fails: try again.
    for attempt in $(seq 1 50); do
      if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
          -o "$(options "$port" "$dir")" start >/dev/null 2>&1; then
        exit 0
      fi
      sleep 0.2
    done
    tail -20 "$dir/server.log" >&2 || true
    echo "pg_test_cluster: could not restart PostgreSQL" >&2
    exit 1
    ;;
  start)
    stop  # a cluster left by an interrupted run
    dir="$(mktemp -d /tmp/qmtl-pg.XXXXXX)"
    echo "$dir" >"$state_file"
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; fi
    as_pg "$bin/initdb" -D "$dir/data" -U qmtl -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
      port=$(( 20000 + RANDOM % 30000 ))
      if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
          -o "$(options "$port" "$dir")" start >/dev/null 2>&1; then
        echo "postgres://qmtl@127.0.0.1:$port/postgres" >"$url_file"
        echo "pg_test_cluster: $(cat "$url_file") in $dir"
        exit 0
      fi
    done
    cat "$dir/server.log" >&2 || true
    echo "pg_test_cluster: could not start PostgreSQL" >&2
    exit 1
    ;;
  *) echo "usage: $0 start|stop|crash|restart URL_FILE" >&2; exit 2 ;;
esac
