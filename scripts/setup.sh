#!/usr/bin/env bash
# Installs every Debian (bookworm) package that qmtl's build, tests and benchmarks
# need, then configures and builds the given CMake presets (default: release);
# after the release build, installs the Python package into .venv (docs/python.md).
# Idempotent: packages already installed are not touched, and apt-get update runs
# only when something is missing.
#
#   scripts/setup.sh            # install + build release
#   scripts/setup.sh asan       # install + build the sanitizer preset
#   scripts/setup.sh --no-build # install only
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsqlite3-dev sqlite3 libpq-dev postgresql libhiredis-dev redis-server
  libcli11-dev libspdlog-dev libfmt-dev libexpected-dev libhowardhinnant-date-dev tzdata
  libopenblas-dev libyaml-cpp-dev prometheus-cpp-dev libquickfix-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-pandas python3-numpy r-cran-ttr
  python3-dev python3-venv python3-setuptools python3-wheel python3-pytest pybind11-dev
  prometheus wrk systemd curl libcurl4-openssl-dev libssl-dev openssl zsh fish
  clang-14 libclang-rt-14-dev clang-tidy-14 clang-format-14 python3
  chromium chromium-driver python3-selenium
)
# npm installs the pinned front-end libraries (web/); Debian's when the machine has none.
if ! command -v npm >/dev/null; then PACKAGES+=(nodejs npm); fi

# The notebook's packages (examples/notebooks): installed one at a time, as
# apt cannot resolve them in one transaction with the rest on bookworm.
NOTEBOOK_PACKAGES=(python3-matplotlib python3-ipykernel jupyter-nbconvert)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=() notebook_missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
for p in "${NOTEBOOK_PACKAGES[@]}"; do installed "$p" || notebook_missing+=("$p"); done
if ((${#missing[@]} + ${#notebook_missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
  $sudo apt-get update -qq
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  for p in "${notebook_missing[@]}"; do
    echo "setup: installing $p"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$p"
  done
fi

# The front-end libraries that reports embed at build time, exactly as
# web/package-lock.json pins them; again only when the lock changed.
if [ ! -f web/node_modules/.package-lock.json ] ||
   [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi

presets=("$@")
if ((${#presets[@]} == 0)); then presets=(release); fi
for preset in "${presets[@]}"; do
  [ "$preset" = "--no-build" ] && exit 0
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  # The Python package (.venv), from the build that has its extension.
  if [ "$preset" = release ]; then scripts/install_python.sh build/release; fi
done
