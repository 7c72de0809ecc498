#!/usr/bin/env bash
# Checks deploy/prometheus with promtool: the scrape config (with a stand-in
# token file, since the real one lives on the Prometheus host), the alert rules,
# and their unit tests. Run by CTest; usage: scripts/check_prometheus.sh [promtool]
set -euo pipefail
promtool="${1:-promtool}"
here="$(cd "$(dirname "$0")/../deploy/prometheus" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here"/prometheus.yml "$here"/qmtl_rules.yml "$here"/qmtl_rules_test.yml "$work"/
touch "$work/qmtl.token"
sed -i "s|/etc/prometheus/qmtl.token|$work/qmtl.token|" "$work/prometheus.yml"
"$promtool" check config "$work/prometheus.yml"
"$promtool" check rules "$work/qmtl_rules.yml"
(cd "$work" && "$promtool" test rules qmtl_rules_test.yml)
