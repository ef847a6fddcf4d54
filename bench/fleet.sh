#!/usr/bin/env bash
# A fleet's throughput when the AI is the bottleneck: 1, 2 and 3 instances of the
# release binary, each with its own camera folder and its own fake AI box whose
# YOLO26 detects like one GPU (`--gpu-ms`, default 50 ms a picture, one at a time),
# sharing one Redis (AOF) and one PostgreSQL; loopback only. Each round writes
# `images-per-host` pictures into every host's folder (8 cameras a host) at once and
# times them from the first write until every one is detected (then waits until
# every detection is in an event, which the batches' idle timeout decides, and says
# how much later). Prints detected images per second per round and the ratio to
# one host; asserts nothing.
#
# Usage: bench/fleet.sh [images-per-host] [gpu-ms]   (defaults: 200, 50)
set -euo pipefail
cd "$(dirname "$0")/.."
PER=${1:-200}
GPU=${2:-50}
command -v redis-cli >/dev/null || { echo "redis-cli missing: apt-get install -y redis-tools" >&2; exit 1; }
. scripts/lib/servers.sh
[ -n "$PG_BIN" ] || { echo "PostgreSQL missing: apt-get install -y postgresql" >&2; exit 1; }
cargo build --release -q --bin watchpost --example fake_ai
DIR=$(mktemp -d)
cleanup() {
  kill "${PIDS[@]}" 2>/dev/null || true
  stop_postgres
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
REDIS_PORT=$(freeport)
PG_PORT=$(freeport)
start_redis "$REDIS_PORT"
start_postgres "$PG_PORT" -c fsync=off
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done

write_images() { # <root> <count> <host>
  PYTHONPATH=bench python3 - "$@" <<'PY'
import sys
from pictures import write
root, n, host = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(n):
    write(root, f"{host}cam{i % 8}", f"img{i:05d}.png")
PY
}

declare -A RATE
for N in 1 2 3; do
  DB=fleet$N
  psql "${PG_URL%/postgres}/postgres" -Atqc "CREATE DATABASE $DB" >/dev/null
  URL="${PG_URL%/postgres}/$DB"
  redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
  ROUND=()
  for i in $(seq 1 "$N"); do
    H=$DIR/r$N/h$i
    mkdir -p "$H/cameras"
    start_fake_ai target/release/examples/fake_ai "$H/fake_ai.log" --gpu-ms "$GPU"
    ROUND+=("${PIDS[-1]}")
    P=$(freeport)
    env WATCHPOST_SERVER__BIND=127.0.0.1:$P \
      WATCHPOST_QUEUE__CONSUMER_ID=h$i \
      WATCHPOST_REDIS__URL=redis://127.0.0.1:$REDIS_PORT \
      WATCHPOST_POSTGRES__URL=$URL \
      WATCHPOST_AI__YOLO26__URL=http://127.0.0.1:$AIBASE \
      WATCHPOST_AI__NEMOTRON__URL=http://127.0.0.1:$((AIBASE+1)) \
      WATCHPOST_AI__FLORENCE__URL=http://127.0.0.1:$((AIBASE+2)) \
      WATCHPOST_AI__CLIP__URL=http://127.0.0.1:$((AIBASE+3)) \
      WATCHPOST_AI__ENRICHMENT__URL=http://127.0.0.1:$((AIBASE+4)) \
      WATCHPOST_FILE_WATCHER__CAMERA_ROOT=$H/cameras \
      WATCHPOST_QUEUE__SPOOL_DIR=$H/spool \
      WATCHPOST_COVERAGE__HEARTBEAT_PATH=$H/heartbeat.json \
      WATCHPOST_CAMERAS__MAX_IMAGES_PER_MINUTE=100000 \
      RUST_LOG=warn target/release/watchpost 2>"$H/watchpost.log" &
    PIDS+=($!)
    ROUND+=($!)
    until curl -sf -o /dev/null "http://127.0.0.1:$P/health"; do sleep 0.05; done
    until curl -s "http://127.0.0.1:$P/api/system/pipeline" | grep -q '"running":true'; do sleep 0.1; done
  done
  TOTAL=$((N * PER))
  T1=$(date +%s.%N)
  for i in $(seq 1 "$N"); do write_images "$DIR/r$N/h$i/cameras" "$PER" "h$i" & done
  wait $(jobs -p | tail -n "$N") 2>/dev/null || true
  wait_for() { # <sql that answers t when done> <what>
    local waited=0
    until [ "$(psql "$URL" -Atqc "$1")" = t ]; do
      sleep 0.1
      waited=$((waited + 1))
      if [ "$waited" -ge 6000 ]; then
        echo "round $N: $2 not done after 600 s: $(psql "$URL" -Atqc "select count(distinct file_path) from detections") of $TOTAL detected" >&2
        exit 1
      fi
    done
  }
  wait_for "select count(distinct file_path) = $TOTAL from detections" "detection"
  T2=$(date +%s.%N)
  wait_for "select (select count(*) from detections) = (select coalesce(sum(cardinality(detection_ids)), 0) from events)" "events"
  T3=$(date +%s.%N)
  RATE[$N]=$(awk -v a="$T1" -v b="$T2" -v n="$TOTAL" 'BEGIN {printf "%.2f", n / (b - a)}')
  SECS=$(awk -v a="$T1" -v b="$T2" 'BEGIN {printf "%.1f", b - a}')
  EVENTS=$(awk -v a="$T2" -v b="$T3" 'BEGIN {printf "%.1f", b - a}')
  echo "hosts $N: $TOTAL images detected in $SECS s: ${RATE[$N]} images/s; every detection in an event $EVENTS s later (the batches' idle close)"
  kill "${ROUND[@]}" 2>/dev/null || true
  for p in "${ROUND[@]}"; do wait "$p" 2>/dev/null || true; done
done
echo
echo "| hosts | images/s | × 1 host |"
echo "|-------|----------|----------|"
for N in 1 2 3; do
  printf "| %5d | %8s | %8s |\n" "$N" "${RATE[$N]}" "$(awk -v a="${RATE[1]}" -v b="${RATE[$N]}" 'BEGIN {printf "%.2f", b / a}')"
done
echo "(${PER} images a host, a ${GPU} ms one-at-a-time detector per host; the ceiling is $(awk -v g="$GPU" 'BEGIN {printf "%.1f", 1000 / g}') images/s a host)"
