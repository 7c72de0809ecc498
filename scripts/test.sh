#!/usr/bin/env bash
# Builds a preset (default: release) and runs all of its tests with CTest.
#   scripts/test.sh          # release build, every test
#   scripts/test.sh asan     # AddressSanitizer + UBSan build, every test
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
ctest --preset "$preset"
