#!/usr/bin/env bash
# Issue 22 target: the console's world page of 1,000 strategies renders in <= 1 s.
# Seeds a SQLite file (build/release/bench/console_seed), starts `qmtl serve
# --no-auth` on it and times the page in headless Chromium with Selenium
# (bench/load/console_load.py): exits non-zero when the median misses.
#
#   bench/load/console_load.sh [strategies, default 1000] [loads, default 10]
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-1000}"
runs="${2:-10}"
seed="$PWD/build/release/bench/console_seed"
[ -x "$seed" ] || { echo "console_load: $seed is missing; run scripts/setup.sh" >&2; exit 1; }
. bench/load/serve.sh
dir="$(mktemp -d)"
"$seed" "$dir/console.db" "$n"
start_server "$dir" --db "sqlite:$dir/console.db" --no-auth --execution false --scheduler false
/usr/bin/python3 bench/load/console_load.py "$url" big "$n" "$runs"
