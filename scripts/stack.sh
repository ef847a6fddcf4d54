#!/usr/bin/env bash
# The whole watchpost stack on this machine, without Docker, in one command:
# Redis (AOF), PostgreSQL, Prometheus (prometheus.yml's jobs and rules/), Alertmanager,
# redis-exporter, blackbox-exporter, the fake AI services (a demo: no GPU needed) and
# watchpost itself with a demo camera folder. Everything listens on loopback, on free
# ports, in a temp dir, and stops on Ctrl-C.
#
# Usage: scripts/stack.sh           run until Ctrl-C
#        scripts/stack.sh --check   start, copy one image, wait for its event and for
#                                   every target to be up, print the timings, stop
# STACK_BIN_DIR=target/debug uses already built binaries instead of a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1
START=$(date +%s.%N)
elapsed() { python3 -c "import time;print(f'{time.time()-$START:.1f}')"; }

# 1. What is missing, from Debian's packages (as scripts/test.sh does).
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v prometheus >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v prometheus-blackbox-exporter >/dev/null || need+=(prometheus-blackbox-exporter)
command -v prometheus-redis-exporter >/dev/null || need+=(prometheus-redis-exporter)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
. "$REPO/scripts/lib/servers.sh"

if [ -n "${STACK_BIN_DIR:-}" ]; then
  BIN=$STACK_BIN_DIR
else
  cargo build --release -q --bin watchpost --example fake_ai
  BIN=target/release
fi

# mktemp -d makes it 0700: the config (with the database password), the logs and the
# spool are this user's only.
DIR=$(mktemp -d /tmp/watchpost-stack.XXXXXX)
WP=$(freeport); RP=$(freeport); PGP=$(freeport); PP=$(freeport); AP=$(freeport)
XP=$(freeport); BP=$(freeport)
stop_all() {
  trap - INT TERM EXIT
  # Ctrl-C also ends a `| tee` reading our output: a write must not kill the cleanup.
  trap '' PIPE
  { echo; echo "stopping the stack…"; } 2>/dev/null || true
  kill "${PIDS[@]}" ${IDLE_PID:-} 2>/dev/null || true
  stop_postgres
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM

# 2. The servers.
start_redis "$RP"
start_postgres "$PGP"
(umask 077; echo "127.0.0.1:$PGP:*:postgres:$PGPASSWORD" >"$DIR/pgpass")
start_fake_ai "$BIN/examples/fake_ai" "$DIR/fake_ai.log"
prometheus-redis-exporter -redis.addr="redis://127.0.0.1:$RP" -web.listen-address="127.0.0.1:$XP" \
  >"$DIR/redis-exporter.log" 2>&1 &
PIDS+=($!)
prometheus-blackbox-exporter --config.file="$REPO/deploy/blackbox.yml" \
  --web.listen-address="127.0.0.1:$BP" >"$DIR/blackbox.log" 2>&1 &
PIDS+=($!)
# deploy/alertmanager.yml with this stack's watchpost address and a fresh webhook token.
WEBHOOK_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077; printf '%s' "$WEBHOOK_TOKEN" >"$DIR/webhook_token")
sed -e "s#http://watchpost:8000#http://127.0.0.1:$WP#" -e "s#/run/secrets/webhook_token#$DIR/webhook_token#" \
  "$REPO/deploy/alertmanager.yml" >"$DIR/alertmanager.yml"
prometheus-alertmanager --config.file="$DIR/alertmanager.yml" --storage.path="$DIR/am" \
  --web.listen-address="127.0.0.1:$AP" --cluster.listen-address= --log.level=warn \
  >"$DIR/alertmanager.log" 2>&1 &
PIDS+=($!)

# prometheus.yml's jobs with this stack's loopback addresses (json-exporter has no
# Debian package: its job is left out).
cat >"$DIR/prometheus.yml" <<EOF
global:
  scrape_interval: 5s
  scrape_timeout: 4s
  evaluation_interval: 5s
rule_files:
  - $REPO/rules/*.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:$AP"]
scrape_configs:
  - job_name: watchpost
    static_configs: [{targets: ["127.0.0.1:$WP"]}]
  - job_name: prometheus
    static_configs: [{targets: ["127.0.0.1:$PP"]}]
  - job_name: redis-exporter
    static_configs: [{targets: ["127.0.0.1:$XP"]}]
  - job_name: blackbox-exporter
    static_configs: [{targets: ["127.0.0.1:$BP"]}]
  - job_name: blackbox-watchpost
    metrics_path: /probe
    params: {module: [http_2xx]}
    static_configs:
      - targets: ["http://127.0.0.1:$WP/health", "http://127.0.0.1:$WP/api/system/health/full"]
    relabel_configs: &probe
      - {source_labels: [__address__], target_label: __param_target}
      - {source_labels: [__param_target], target_label: instance}
      - {target_label: __address__, replacement: "127.0.0.1:$BP"}
  - job_name: blackbox-ai
    metrics_path: /probe
    params: {module: [http_2xx]}
    static_configs:
      - targets: $(python3 -c "print([f'http://127.0.0.1:{$AIBASE+i}/health' for i in range(5)])")
    relabel_configs: *probe
EOF
# No --web.enable-lifecycle: it would let any web page POST /-/quit to Prometheus.
prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/promdata" \
  --web.listen-address="127.0.0.1:$PP" --log.level=warn \
  >"$DIR/prometheus.log" 2>&1 &
PIDS+=($!)

# 3. watchpost, with short batch windows for the demo and the exporters that run.
mkdir -p "$DIR/cameras/Front Door"
cat >"$DIR/watchpost.toml" <<EOF
[server]
bind = "127.0.0.1:$WP"
[redis]
url = "redis://127.0.0.1:$RP"
[postgres]
url = "$PG_URL"
[prometheus]
url = "http://127.0.0.1:$PP"
[[prometheus.exporters]]
name = "redis-exporter"
endpoint = "127.0.0.1:$XP"
[[prometheus.exporters]]
name = "blackbox-exporter"
endpoint = "127.0.0.1:$BP"
[ai.yolo26]
url = "http://127.0.0.1:$AIBASE"
display_name = "YOLO26 Object Detection"
critical = true
[ai.nemotron]
url = "http://127.0.0.1:$((AIBASE+1))"
display_name = "Nemotron LLM Risk Analysis"
critical = true
[ai.florence]
url = "http://127.0.0.1:$((AIBASE+2))"
display_name = "Florence-2 Vision Language"
critical = false
[ai.clip]
url = "http://127.0.0.1:$((AIBASE+3))"
display_name = "CLIP Embedding Service"
critical = false
[ai.enrichment]
url = "http://127.0.0.1:$((AIBASE+4))"
display_name = "Enrichment Service"
critical = false
[file_watcher]
camera_root = "$DIR/cameras"
[queue]
spool_dir = "$DIR/spool"
[batch]
window_seconds = 15
idle_timeout_seconds = 5
[alerting]
alertmanager_urls = ["http://127.0.0.1:$AP"]
webhook_token = "$WEBHOOK_TOKEN"
EOF
RUST_LOG=${RUST_LOG:-info} "$BIN/watchpost" --config "$DIR/watchpost.toml" >"$DIR/watchpost.log" 2>&1 &
PIDS+=($!)
until curl -sf -o /dev/null "http://127.0.0.1:$WP/health"; do sleep 0.1; done

# A sample image (random pixels, so each copy is new content).
python3 - "$DIR/sample.png" <<'PY'
import os, struct, sys, zlib
w = h = 96
raw = b"".join(b"\x00" + os.urandom(w * 3) for _ in range(h))
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY

cat <<EOF

watchpost stack is up ($(elapsed) s), everything on loopback.

  Open the status page:  http://127.0.0.1:$WP/

  watchpost API  http://127.0.0.1:$WP/api/system/health/full   (WebSocket ws://127.0.0.1:$WP/ws)
  Prometheus     http://127.0.0.1:$PP/targets   (alerts: /alerts)
  Alertmanager   http://127.0.0.1:$AP
  redis-exporter http://127.0.0.1:$XP/metrics
  blackbox       http://127.0.0.1:$BP
  fake AI        http://127.0.0.1:$AIBASE … $((AIBASE+4))
  PostgreSQL     PGPASSFILE=$DIR/pgpass psql -h 127.0.0.1 -p $PGP -U postgres
  logs           $DIR/*.log
Not started: json-exporter and Grafana have no Debian package (use docker-compose.yml
for them); import grafana/dashboards/*.json into a Grafana of your own.

Drop an image into the camera folder, and it becomes an event within ~10 s (watch it
on the status page):
  cp $DIR/sample.png "$DIR/cameras/Front Door/"

EOF

if [ $CHECK -eq 1 ]; then
  cp "$DIR/sample.png" "$DIR/cameras/Front Door/"
  for _ in $(seq 1 600); do
    up=$(curl -s "http://127.0.0.1:$PP/api/v1/targets" | python3 -c 'import json,sys
t=json.load(sys.stdin)["data"]["activeTargets"]
print(sum(x["health"]=="up" for x in t), len(t))' 2>/dev/null || echo "0 0")
    set -- $up
    if [ "${2:-0}" -gt 0 ] && [ "$1" = "$2" ]; then echo "all $2 Prometheus targets up after $(elapsed) s"; break; fi
    sleep 0.2
  done
  for _ in $(seq 1 600); do
    n=$(psql -h 127.0.0.1 -p "$PGP" -U postgres -tAc "select count(*) from events" 2>/dev/null || echo 0)
    if [ "${n:-0}" -ge 1 ]; then echo "the copied image became an event after $(elapsed) s"; break; fi
    sleep 0.2
  done
  curl -s "http://127.0.0.1:$WP/api/system/monitoring/health" | python3 -c 'import json,sys
h=json.load(sys.stdin); print("monitoring healthy:", h["healthy"], "jobs:", [j["job"] for j in h["targets_summary"]])'
  [ "${n:-0}" -ge 1 ] && [ "$1" = "$2" ] || { echo "stack check FAILED"; tail -20 "$DIR/watchpost.log"; exit 1; }
  echo "stack check passed"
  exit 0
fi
echo "Ctrl-C (or kill $$) stops everything."
# `wait` returns as soon as a trapped signal arrives (a foreground `sleep` would hold
# the trap back until it ended, so a plain `kill` of this script did nothing for up to
# an hour).
while true; do
  sleep 3600 &
  IDLE_PID=$!
  wait "$IDLE_PID" || true
done
