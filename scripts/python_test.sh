#!/usr/bin/env bash
# The Python package's tests (python/tests) against the CLI of the same build:
# reinstalls the package from BUILD_DIR first, so they always test this build.
#   scripts/python_test.sh BUILD_DIR QMTL_BINARY [pytest args...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:?usage: python_test.sh BUILD_DIR QMTL_BINARY}"
binary="${2:?usage: python_test.sh BUILD_DIR QMTL_BINARY}"
shift 2
"$root/scripts/install_python.sh" "$build"
cd "$root"
QMTL_BINARY="$binary" .venv/bin/python -m pytest -q -p no:cacheprovider python/tests "$@"
