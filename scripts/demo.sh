#!/usr/bin/env bash
# The main job on the embedded default: `qmtl demo` (docs/demo.md). It starts
# `qmtl serve` on a SQLite file in .qmtl-demo/ with a simulated clock, the FIX
# exchange simulator, a world with the demo policy and six example strategies on
# real daily market data, and prints their lifecycle for about a minute:
# validation, dry run, promotions, demotions and why. Ctrl-C stops it cleanly.
#
#   scripts/demo.sh                       # the default: 1994-01-03 to 1994-09-01, 4 days a second
#   scripts/demo.sh --speed 864000        # faster (10 simulated days a second)
#   QMTL_DEMO_DIR=/tmp/d scripts/demo.sh  # elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."

qmtl="$PWD/build/release/apps/qmtl/qmtl"
if [ ! -x "$qmtl" ]; then
  echo "demo: $qmtl is missing; run scripts/setup.sh first" >&2
  exit 1
fi
exec "$qmtl" demo --dir "${QMTL_DEMO_DIR:-$PWD/.qmtl-demo}" --examples "$PWD/examples" "$@"
