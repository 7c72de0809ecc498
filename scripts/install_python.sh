#!/usr/bin/env bash
# Installs the qmtl Python package (python/, docs/python.md) into .venv, a
# virtual environment that sees Debian's numpy and pandas: no network, the C++
# extension taken from a CMake build (default build/release).
#   scripts/install_python.sh [BUILD_DIR]
#   .venv/bin/python -c "import qmtl"
set -euo pipefail
cd "$(dirname "$0")/.."
build="$(cd "${1:-build/release}" && pwd)"
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
QMTL_BUILD_DIR="$build" .venv/bin/pip install --no-build-isolation --no-index --no-deps \
  --quiet --disable-pip-version-check ./python
# Notebooks run in the venv: its own "python3" kernel (found before the
# system's), so `import qmtl` works in Jupyter and nbconvert started from it.
if .venv/bin/python -c "import ipykernel" 2>/dev/null; then
  .venv/bin/python -Xfrozen_modules=off -m ipykernel install --sys-prefix --name python3 >/dev/null
fi
