#!/usr/bin/env bash
# What one image costs, end to end: Redis commands (INFO commandstats), PostgreSQL
# transactions (pg_stat_database) and watchpost CPU (/proc/<pid>/stat), per image while
# 600 images on 4 cameras go through the whole pipeline (detection, batches, analysis,
# events), and per second while nothing arrives. Release binary, real Redis (AOF) and
# PostgreSQL, the fake AI services (scripts/lib/local-stack.sh); loopback only;
# prints figures, asserts nothing. The probes of this script are left out of the counts
# (Redis's INFO, and two transactions per psql call: its connection and its query).
#
# "Idle" is the steady state: it is measured after a warm-up (start-up work: the
# migrations' check, the first recovery pass, PostgreSQL's first autovacuum visit of
# the new tables), over a window long enough to average the periodic work.
#
# Usage: bench/pipeline-cost.sh [images] [idle-seconds] [warm-up-seconds]
#        (defaults: 600, 60, 30)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-600}
IDLE=${2:-60}
WARMUP=${3:-30}
command -v redis-cli >/dev/null || { echo "redis-cli missing: apt-get install -y redis-tools" >&2; exit 1; }
. scripts/lib/local-stack.sh
cargo build --release -q --bin watchpost --example fake_ai
# A burst of 150 images per camera is what this measures, not a flooding camera.
export WATCHPOST_CAMERAS__MAX_IMAGES_PER_MINUTE=100000
local_stack_start target/release/watchpost target/release/examples/fake_ai
TICK=$(getconf CLK_TCK)
PSQL_CALLS=0
redis_calls() {
  redis-cli -p "$REDIS_PORT" INFO commandstats |
    awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" {s += $3} END {print s + 0}'
}
pg() { PSQL_CALLS=$((PSQL_CALLS + 1)); psql "$PG_URL" -Atqc "$1"; }
pg_xacts() { pg "select xact_commit + xact_rollback from pg_stat_database where datname = current_database()"; }
cpu_ms() { awk -v t="$TICK" '{print ($14 + $15) * 1000 / t}' "/proc/$WP/stat"; }
snapshot() { sleep 1.5; R=$(redis_calls); P=$(pg_xacts); P0=$PSQL_CALLS; C=$(cpu_ms); }

# Idle: nothing arrives (the probes, sampler and workers run at their intervals).
sleep "$WARMUP"
snapshot; R1=$R; P1=$P; Q1=$P0; C1=$C; T1=$(date +%s.%N)
sleep "$IDLE"
snapshot; T2=$(date +%s.%N)
SECS=$(awk -v a="$T1" -v b="$T2" 'BEGIN {print b - a}')
IDLE_R=$(awk -v a="$R1" -v b="$R" -v s="$SECS" 'BEGIN {printf "%.1f", (b - a) / s}')
IDLE_P=$(awk -v a="$P1" -v b="$P" -v q="$((2 * (P0 - Q1)))" -v s="$SECS" 'BEGIN {printf "%.2f", (b - a - q) / s}')
IDLE_C=$(awk -v a="$C1" -v b="$C" -v s="$SECS" 'BEGIN {printf "%.1f", (b - a) / s}')
# PostgreSQL's own transactions (autovacuum and the like), with watchpost stopped
# (SIGSTOP) for as long: what is left of the idle figure is watchpost's.
snapshot; P1=$P; Q1=$P0; T1=$(date +%s.%N)
kill -STOP "$WP"
sleep "$IDLE"
kill -CONT "$WP"
snapshot; T2=$(date +%s.%N)
SECS=$(awk -v a="$T1" -v b="$T2" 'BEGIN {print b - a}')
BASE_P=$(awk -v a="$P1" -v b="$P" -v q="$((2 * (P0 - Q1)))" -v s="$SECS" 'BEGIN {printf "%.2f", (b - a - q) / s}')

# Load: N images on 4 cameras, written as fast as Python writes them.
snapshot; R1=$R; P1=$P; Q1=$P0; C1=$C; T1=$(date +%s.%N)
PYTHONPATH=bench python3 - "$DIR/cameras" "$N" <<'PY'
import sys
from pictures import write
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    write(root, f"cam{i % 4}", f"img{i:05d}.png")
PY
# Done: every image detected and every detection in an event.
WAITED=0
until [ "$(pg "select (select count(distinct file_path) from detections) = $N and
                     (select count(*) from detections) = (select coalesce(sum(cardinality(detection_ids)), 0) from events)")" = t ]; do
  sleep 0.5
  WAITED=$((WAITED + 1))
  if [ "$WAITED" -ge 600 ]; then
    echo "not done after 300 s: $(pg "select count(distinct file_path) || ' images detected, ' || count(*) || ' detections' from detections"), $(pg "select coalesce(sum(cardinality(detection_ids)), 0) || ' in events' from events")" >&2
    tail -5 "$DIR/watchpost.log" >&2
    exit 1
  fi
done
T2=$(date +%s.%N)
snapshot
SECS=$(awk -v a="$T1" -v b="$T2" 'BEGIN {print b - a}')
echo "$N images on 4 cameras in ${SECS%.*} s; idle measured over $IDLE s"
echo
echo "| per | Redis commands | PostgreSQL transactions | watchpost CPU |"
echo "|---|---|---|---|"
awk -v a="$R1" -v b="$R" -v p1="$P1" -v p2="$P" -v q="$((2 * (P0 - Q1)))" -v c1="$C1" -v c2="$C" -v n="$N" \
  'BEGIN {printf "| image | %.1f | %.2f | %.2f ms |\n", (b - a) / n, (p2 - p1 - q) / n, (c2 - c1) / n}'
echo "| idle second | $IDLE_R | $IDLE_P ($BASE_P with watchpost stopped) | $IDLE_C ms |"
echo
echo "Redis commands since it started, most called first:"
redis-cli -p "$REDIS_PORT" INFO commandstats | awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" {sub("cmdstat_", "", $1); print $3, $1}' | sort -rn | head -12
