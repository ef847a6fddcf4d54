#!/usr/bin/env bash
# Load figure for Alertmanager's webhook (POST /api/webhooks/alerts) with wrk, against
# the release binary and real Redis and PostgreSQL (scripts/lib/local-stack.sh). The
# payload is one group of 20 firing alerts; after the first request every repeat is
# recognised as unchanged (what Alertmanager's repeat_interval sends). Loopback only;
# prints figures, asserts nothing.
#
# Usage: bench/webhook.sh [seconds] [connections]   (defaults: 5, 4)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}
CONNS=${2:-4}
command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }
. scripts/lib/local-stack.sh
cargo build --release -q --bin watchpost --example fake_ai
local_stack_start target/release/watchpost target/release/examples/fake_ai
python3 - "$DIR/payload.json" <<'PY'
import json, sys
alerts = [{
    "status": "firing",
    "labels": {"alertname": "WatchpostExporterDown", "severity": "warning", "job": f"exporter-{i}"},
    "annotations": {"summary": f"exporter {i} is down", "description": "Prometheus cannot scrape it."},
    "startsAt": "2026-12-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://prometheus:9090/graph", "fingerprint": f"{i:016x}",
} for i in range(20)]
json.dump({"version": "4", "groupKey": "{}:{alertname=\"WatchpostExporterDown\"}",
           "status": "firing", "receiver": "watchpost", "alerts": alerts,
           "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
           "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0}, open(sys.argv[1], "w"))
PY
printf 'local f = io.open("%s"); local body = f:read("*a"); f:close()\nwrk.method = "POST"; wrk.body = body; wrk.headers["Content-Type"] = "application/json"\n' \
  "$DIR/payload.json" >"$DIR/post.lua"
echo "first delivery: $(curl -s -X POST -H 'Content-Type: application/json' --data @"$DIR/payload.json" \
  "http://127.0.0.1:$PORT/api/webhooks/alerts")"
wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$DIR/post.lua" "http://127.0.0.1:$PORT/api/webhooks/alerts" |
  grep -E "Requests/sec|50%|99%|Non-2xx"
awk '/VmRSS/ {print "RSS " $2 " kB"}' "/proc/$WP/status"
