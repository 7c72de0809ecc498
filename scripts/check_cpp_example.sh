#!/usr/bin/env bash
# Installs the qmtl SDK from a build tree into a scratch prefix, builds
# examples/cpp_strategy against it with find_package(qmtl), and runs it on the
# example data: what a team writing strategies in C++ does.
#
#   scripts/check_cpp_example.sh BUILD_DIR
set -euo pipefail
build="${1:?usage: check_cpp_example.sh BUILD_DIR}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$root/examples/cpp_strategy" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" >/dev/null
"$work/build/breakout" "$root/examples/data/ttrc_ohlcv.csv"
# The same binary as a strategy program (docs/sdk.md): it declares itself first.
hello="$(printf 'bar 86400 1 1 1 1 1\n' | "$work/build/breakout" --serve | head -1)"
case "$hello" in
  'qmtl-strategy 1 {"id":"breakout"'*) ;;
  *) echo "breakout --serve did not declare itself: $hello" >&2; exit 1 ;;
esac
