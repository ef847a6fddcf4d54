#!/usr/bin/env bash
# Memory over time: the release binary on real Redis (AOF) and PostgreSQL and the fake
# AI services (scripts/lib/local-stack.sh), fed N images a second over 16 cameras for
# M minutes, with /metrics, /api/system/health/full and /api/system/cameras read every
# 5 s and the performance sampler at 0.5 s. Every 15 s it samples watchpost's RSS,
# descriptors and threads and the sizes of its in-memory structures (the
# `watchpost_memory_entries{structure}` gauges), prints them as a table, and at the
# end the RSS slope over the last third (least squares) and whether every image was
# detected. Asserts nothing; loopback only.
#
# Usage: bench/soak.sh [minutes] [images-per-second]   (defaults: 20, 10)
#   SOAK_HEAPTRACK=1 runs watchpost under heaptrack (apt: heaptrack); its recording is
#   kept in bench/out/ and summarised at the end (peak and leaked bytes, top
#   allocators).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-20}
RATE=${2:-10}
command -v redis-cli >/dev/null || { echo "redis-cli missing: apt-get install -y redis-tools" >&2; exit 1; }
. scripts/lib/local-stack.sh
cargo build --release -q --bin watchpost --example fake_ai
export WATCHPOST_CAMERAS__MAX_IMAGES_PER_MINUTE=100000
export WATCHPOST_PERFORMANCE__SAMPLE_INTERVAL_SECONDS=0.5
BIN=target/release/watchpost
OUT=bench/out
mkdir -p "$OUT"
if [ "${SOAK_HEAPTRACK:-0}" = 1 ]; then
  command -v heaptrack >/dev/null || { echo "heaptrack missing: apt-get install -y heaptrack" >&2; exit 1; }
  WRAP=$(mktemp /tmp/soak-wrap.XXXXXX)
  # heaptrack runs the program as its child: exec so that the pid is the program's.
  printf '#!/bin/sh\nexec heaptrack -r -o %s/heaptrack.watchpost %s "$@"\n' \
    "$PWD/$OUT" "$PWD/$BIN" >"$WRAP"
  chmod +x "$WRAP"
  BIN=$WRAP
fi
local_stack_start "$BIN" target/release/examples/fake_ai
# Under heaptrack the program is a child of the recorder: follow the real process.
REAL=$WP
for _ in $(seq 50); do
  child=$(pgrep -P "$WP" -f 'target/release/watchpost' | head -1 || true)
  [ -n "$child" ] && REAL=$child && break
  grep -q 'target/release/watchpost' "/proc/$WP/cmdline" 2>/dev/null && break
  sleep 0.1
done
BASE=http://127.0.0.1:$PORT
pg() { psql "$PG_URL" -Atqc "$1"; }

# The writer: RATE images a second, round-robin over 16 cameras, for MINUTES.
PYTHONPATH=bench python3 - "$DIR/cameras" "$RATE" "$MINUTES" >"$DIR/written" <<'PY' &
import sys, time
from pictures import write
root, rate, minutes = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
start, i = time.time(), 0
while time.time() - start < minutes * 60:
    write(root, f"cam{i % 16:02d}", f"img{i:07d}.png")
    i += 1
    time.sleep(max(0.0, start + i / rate - time.time()))
print(i)
PY
WRITER=$!
# The readers: what a dashboard and a status page read.
( while kill -0 "$WRITER" 2>/dev/null; do
    for p in /metrics /api/system/health/full /api/system/cameras; do
      curl -s -o /dev/null "$BASE$p" || true
    done
    sleep 5
  done ) &
READERS=$!

TABLE="$OUT/soak-$(date +%Y%m%d-%H%M%S).tsv"
STRUCTS=$(curl -s "$BASE/metrics" | sed -n 's/^watchpost_memory_entries{structure="\([a-z_]*\)"}.*/\1/p' | tr '\n' ' ')
printf 'seconds\trss_kib\tfds\tthreads' >"$TABLE"
for s in $STRUCTS; do printf '\t%s' "$s" >>"$TABLE"; done
printf '\n' >>"$TABLE"
T0=$(date +%s)
sample() {
  local m rss fds thr
  m=$(curl -s "$BASE/metrics")
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$REAL/status")
  fds=$(ls "/proc/$REAL/fd" | wc -l)
  thr=$(awk '/^Threads:/ {print $2}' "/proc/$REAL/status")
  printf '%s\t%s\t%s\t%s' "$(($(date +%s) - T0))" "$rss" "$fds" "$thr" >>"$TABLE"
  for s in $STRUCTS; do
    printf '\t%s' "$(printf '%s\n' "$m" | awk -v s="watchpost_memory_entries{structure=\"$s\"}" '$1 == s {print $2}')" >>"$TABLE"
  done
  printf '\n' >>"$TABLE"
  tail -1 "$TABLE"
}
head -1 "$TABLE"
while kill -0 "$WRITER" 2>/dev/null; do
  sample
  sleep 15
done
WRITTEN=$(cat "$DIR/written")
# Done: every image detected (at most 5 minutes more).
for _ in $(seq 600); do
  [ "$(pg "select count(distinct file_path) from detections")" -ge "$WRITTEN" ] && break
  sleep 0.5
done
sample
kill "$READERS" 2>/dev/null || true
DETECTED=$(pg "select count(distinct file_path) from detections")
CPU_MS=$(awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / t}' "/proc/$REAL/stat")
EVENTS=$(pg "select count(*) from events")
echo
echo "$WRITTEN images written, $DETECTED detected, $EVENTS events; table in $TABLE"
awk -v c="$CPU_MS" -v n="$WRITTEN" 'BEGIN {printf "watchpost CPU: %.0f s in all, %.2f ms per image (idle work and the readers included)\n", c / 1000, c / n}'
# RSS slope over the last third, KiB a minute (least squares), and its growth.
awk -F'\t' 'NR > 1 {t[NR] = $1; r[NR] = $2; n = NR}
  END {
    from = int(2 + (n - 1) * 2 / 3); k = 0
    for (i = from; i <= n; i++) { k++; sx += t[i]; sy += r[i]; sxx += t[i] * t[i]; sxy += t[i] * r[i] }
    slope = (k * sxy - sx * sy) / (k * sxx - sx * sx)
    printf "RSS: %d KiB at the start, %d KiB at the end; over the last third (%d samples, %.0f min): %.1f KiB a minute, %.2f MiB in all\n",
      r[2], r[n], k, (t[n] - t[from]) / 60, slope * 60, slope * (t[n] - t[from]) / 1024
  }' "$TABLE"
if [ "${SOAK_HEAPTRACK:-0}" = 1 ]; then
  kill -INT "$REAL" 2>/dev/null || true
  sleep 3
  REC=$(ls -t "$OUT"/heaptrack.watchpost*.zst "$OUT"/heaptrack.watchpost*.gz 2>/dev/null | head -1)
  if [ -n "$REC" ]; then
    heaptrack_print -f "$REC" --print-peaks 1 --print-leaks 1 --print-allocators 1 \
      --peak-limit 8 --leak-limit 8 --allocators-limit 0 --print-histogram 0 \
      --print-temporary 0 --print-flamegraph 0 2>/dev/null >"$OUT/heaptrack-summary.txt" || true
    grep -E '^(peak heap memory consumption|peak RSS|total memory leaked|calls to allocation functions)' "$OUT/heaptrack-summary.txt" || true
    echo "heaptrack summary in $OUT/heaptrack-summary.txt"
  fi
fi
