#!/usr/bin/env bash
# The store benchmarks (ingest, evaluation) on SQLite and on PostgreSQL in one
# run, on a throw-away local cluster with fsync on. PostgreSQL runs twice: with
# synchronous_commit on (each commit waits for its WAL flush) and off, which
# is what SQLite's WAL + synchronous=NORMAL gives (consistent after a power
# cut, the last commits may be lost).
#   bench/store_compare.sh [build/release]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build/release}"
filter='IngestPoints|EvaluateWorld'
url_file="$(mktemp -u /tmp/qmtl-bench-pg.XXXXXX)"
trap 'scripts/pg_test_cluster.sh stop "$url_file" >/dev/null' EXIT
QMTL_PG_DURABLE=1 scripts/pg_test_cluster.sh start "$url_file" >/dev/null
echo "== SQLite"
"$build/bench/world_bench" --benchmark_filter="$filter" --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true
url="$(cat "$url_file")"
version="$(psql "$url" -Atc 'SHOW server_version')"
echo "== PostgreSQL $version (loopback), synchronous_commit=on"
QMTL_BENCH_PG="$url" "$build/bench/world_bench" --benchmark_filter="$filter" \
  --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
echo "== PostgreSQL $version (loopback), synchronous_commit=off"
QMTL_BENCH_PG="$url?options=-c%20synchronous_commit%3Doff" "$build/bench/world_bench" \
  --benchmark_filter="$filter" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
