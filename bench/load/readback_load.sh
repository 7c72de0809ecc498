#!/usr/bin/env bash
# Issue 22 target over HTTP: GET /strategies/{id}/performance?max_points=2000 on a
# strategy with five years of minute points (650,000 by default) answers in
# <= 50 ms and <= 200 KB. Starts its own `qmtl serve` (release build) on a
# temporary SQLite file, posts the points through the API in batches of
# 10,000, then times 50 read-backs with curl (time to the last byte) and prints
# p50, p90, max and the answer's size; exits non-zero if p50 or the size
# misses its target.
#
#   bench/load/readback_load.sh [points, default 650000]
set -euo pipefail
cd "$(dirname "$0")/../.."
points="${1:-650000}"
. bench/load/serve.sh
dir="$(mktemp -d)"
start_server "$dir" --db "sqlite:$dir/readback.db" --no-auth --execution false --scheduler false
json=(-H "Content-Type: application/json")

curl -sf "${json[@]}" -d '{"id":"bench"}' "$url/worlds" >/dev/null
curl -sf "${json[@]}" -d '{"id":"minute","world":"bench","spec":{"inputs":{"close":{"interval":"1m"}},"nodes":{"r":{"indicator":"returns","input":"close"}},"orders":{"signal":"r","symbol":"X","qty":1}}}' \
  "$url/strategies" >/dev/null
python3 - "$points" "$dir" <<'PY'
import json, math, sys, datetime
n, out = int(sys.argv[1]), sys.argv[2]
t0 = datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc)
eq, batch, k = 100000.0, [], 0
for i in range(n):
    ts = (t0 + datetime.timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
    batch.append({"ts": ts, "equity": round(eq, 4)})
    eq *= 1 + 0.0004 * math.sin(i / 977.0) + 0.0003 * math.sin(i / 31.0)
    if len(batch) == 10000 or i == n - 1:
        with open(f"{out}/batch{k:04d}.json", "w") as f:
            json.dump({"points": batch}, f)
        batch, k = [], k + 1
PY
start=$(date +%s.%N)
for f in "$dir"/batch*.json; do
  curl -sf "${json[@]}" --data-binary "@$f" "$url/strategies/minute/performance" >/dev/null
done
echo "posted $points points in $(echo "$(date +%s.%N) - $start" | bc) s"

target="$url/strategies/minute/performance?max_points=2000"
curl -sf "$target" -o "$dir/answer.json"
bytes=$(stat -c %s "$dir/answer.json")
total=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["total_points"], len(d["points"]))' "$dir/answer.json")
for _ in $(seq 1 50); do curl -sf -o /dev/null -w '%{time_total}\n' "$target"; done | sort -n >"$dir/times"
p50=$(sed -n '25p' "$dir/times"); p90=$(sed -n '45p' "$dir/times"); max=$(tail -1 "$dir/times")
ms() { echo "$1 * 1000" | bc -l | xargs printf '%.1f'; }
echo "read-back of $total (total, returned) points: p50 $(ms "$p50") ms, p90 $(ms "$p90") ms, max $(ms "$max") ms, $bytes bytes"
status=0
[ "$(echo "$p50 <= 0.050" | bc)" = 1 ] || { echo "MISSED: p50 > 50 ms"; status=1; }
[ "$bytes" -le 204800 ] || { echo "MISSED: answer > 200 KB"; status=1; }
exit $status
