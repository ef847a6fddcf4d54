#!/usr/bin/env bash
# The flood of received alerts, on the release binary with real Redis and PostgreSQL
# (scripts/lib/local-stack.sh): 30 webhook notifications of 1,000 distinct firing
# alerts each. Prints each answer's status and time, the refusals counted, watchpost's
# RSS and CPU, and /health's time (median of 200) before and after. Loopback only;
# prints figures, asserts nothing.
#
# Usage: bench/webhook-flood.sh [notifications] [alerts-per-notification]   (30, 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
POSTS=${1:-30}
PER=${2:-1000}
. scripts/lib/local-stack.sh
cargo build --release -q --bin watchpost --example fake_ai
local_stack_start target/release/watchpost target/release/examples/fake_ai
url="http://127.0.0.1:$PORT"
health_ms() {
  for _ in $(seq 200); do curl -s -o /dev/null -w '%{time_total}\n' "$url/health"; done |
    sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int(NR/2)+1]*1000}'
}
rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$WP/status"; }
cpu() { awk '{print $14+$15}' "/proc/$WP/stat"; }
echo "before: RSS $(rss) MiB, /health median $(health_ms) ms"
for n in $(seq 0 $((POSTS - 1))); do
  python3 - "$DIR/p.json" "$n" "$PER" <<'PY'
import json, sys
path, n, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
alerts = [{
    "status": "firing",
    "labels": {"alertname": "Flood", "severity": "warning", "n": str(i)},
    "annotations": {"summary": f"flood {i}", "description": "one of many"},
    "startsAt": "2026-12-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "", "fingerprint": f"{i:016x}",
} for i in range(n * per, (n + 1) * per)]
json.dump({"version": "4", "groupKey": f"{{}}:{{n=\"{n}\"}}", "status": "firing",
           "receiver": "watchpost", "alerts": alerts, "truncatedAlerts": 0}, open(path, "w"))
PY
  curl -s -o /dev/null -w "notification $n: %{http_code} in %{time_total} s\n" \
    -H 'Content-Type: application/json' --data @"$DIR/p.json" "$url/api/webhooks/alerts"
done
t0=$(cpu); sleep 10; t1=$(cpu)
echo "after: RSS $(rss) MiB, /health median $(health_ms) ms, CPU over the next 10 s $(awk -v t="$((t1 - t0))" 'BEGIN {printf "%.1f", t / 10}')% of a core"
curl -s "$url/metrics" | grep '^watchpost_alertmanager_webhook_alerts_total'
