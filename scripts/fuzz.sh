#!/usr/bin/env bash
# Builds the libFuzzer targets (clang 14, ASan + UBSan) and runs the policy fuzzer
# for N seconds (default 60) and the CSV fuzzer for N/2, each on a copy of its
# corpus. Any crash, leak or sanitizer report fails the run; the reproducer is
# left in build/fuzz/.
#   scripts/fuzz.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
work="build/fuzz/run"
rm -rf "$work" && mkdir -p "$work/corpus" "$work/csv_corpus"
cp tests/fuzz/policy_corpus/* "$work/corpus/"
# The CSV seeds: each dialect fixture behind each first byte the target reads
# (bars or a series, close or adj_close, with or without an offset).
for f in tests/sdk/data/dialects/* examples/data/dax_equity.csv; do
  for flag in 00 01 02 04 05 06; do
    { printf "\x$flag"; head -c 2000 "$f"; } > "$work/csv_corpus/$flag-$(basename "$f")"
  done
done
cd "$work"
../tests/fuzz/policy_fuzz -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -print_final_stats=1 corpus 2>&1 | tail -n 12
echo "fuzz: policy_fuzz ran ${seconds}s with no crash, leak or sanitizer report"
half=$(( (seconds + 1) / 2 ))
../tests/fuzz/csv_fuzz -max_total_time="$half" -max_len=4096 -timeout=10 \
  -print_final_stats=1 csv_corpus 2>&1 | tail -n 12
echo "fuzz: csv_fuzz ran ${half}s with no crash, leak or sanitizer report"
