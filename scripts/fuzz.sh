#!/usr/bin/env bash
# Builds the libFuzzer targets (clang 14, ASan + UBSan) and runs each for N seconds
# (default 60) on a copy of its corpus in tests/fuzz/. Any crash, leak or
# sanitizer report fails the run; the reproducer is left in build/fuzz/.
#   scripts/fuzz.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
work="build/fuzz/run"
rm -rf "$work" && mkdir -p "$work/corpus"
cp tests/fuzz/policy_corpus/* "$work/corpus/"
cd "$work"
../tests/fuzz/policy_fuzz -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -print_final_stats=1 corpus 2>&1 | tail -n 12
echo "fuzz: policy_fuzz ran ${seconds}s with no crash, leak or sanitizer report"
