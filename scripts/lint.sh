#!/usr/bin/env bash
# The static checks CI runs: clang-format (the repository's .clang-format) over
# every C++ file git tracks, the layering of the parts, and clang-tidy (the
# repository's .clang-tidy, warnings are errors) over src/. clang-tidy reads
# the compile commands of a configured build (default: build/release).
#   scripts/lint.sh               # after scripts/setup.sh
#   scripts/lint.sh build/asan    # with another build's compile commands
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build/release}"
if [ ! -f "$build/compile_commands.json" ]; then
  echo "lint: $build/compile_commands.json is missing; run scripts/setup.sh first" >&2
  exit 2
fi
echo "lint: clang-format"
cf=$(command -v clang-format-14 || command -v clang-format)
git ls-files '*.cc' '*.h' | xargs "$cf" --dry-run -Werror
echo "lint: layering"
python3 scripts/check_layering.py src
echo "lint: clang-tidy over src/"
run-clang-tidy-14 -p "$build" -quiet -j"$(nproc)" "$PWD/src/" \
  > "$build/clang-tidy.log" 2>&1 || {
  grep -E "(error|warning):" "$build/clang-tidy.log" | sort -u
  echo "lint: clang-tidy failed (whole output: $build/clang-tidy.log)" >&2
  exit 1
}
echo "lint: clean"
