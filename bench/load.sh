#!/usr/bin/env bash
# HTTP load figures for every GET endpoint with wrk, against the release binary on a
# free loopback port, with a real Redis, PostgreSQL and Prometheus (started here in a
# temp dir; PostgreSQL and Prometheus when installed) and the fake AI services. Loopback only,
# bounded in time; prints figures, asserts nothing. wrk and watchpost share the
# machine's cores.
#
# For each endpoint: requests/s, p50 and p99 latency, and the ratio to /health in the
# same run; RSS before and after. Output is a Markdown table.
#
# Usage: bench/load.sh [seconds-per-endpoint] [connections]   (defaults: 5, 16)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}
CONNS=${2:-16}
command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install -y redis-server" >&2; exit 1; }
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

cargo build --release -q --bin watchpost --example fake_ai
DIR=$(mktemp -d)
chmod 755 "$DIR"
PORT=$(freeport); RPORT=$(freeport); PGPORT=$(freeport); AIBASE=$(( ( $(freeport) % 20000 ) + 30000 ))
PIDS=()
PG_BIN=/usr/lib/postgresql/15/bin
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  kill "${PIDS[@]}" 2>/dev/null || true
  [ -x "$PG_BIN/pg_ctl" ] && [ -d "$DIR/pg/data" ] && as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT

redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly yes --dir "$DIR" --daemonize no >/dev/null 2>&1 &
PIDS+=($!)
if [ -x "$PG_BIN/initdb" ]; then
  mkdir -p "$DIR/pg"; [ "$(id -u)" -eq 0 ] && chown postgres: "$DIR/pg"
  as_pg "$PG_BIN/initdb" -D "$DIR/pg/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
  as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/log" -o "-p $PGPORT -k $DIR/pg -c listen_addresses=127.0.0.1 -c fsync=off" -w start >/dev/null
fi
target/release/examples/fake_ai --base-port "$AIBASE" >/dev/null 2>&1 &
PIDS+=($!)
PROMPORT=$(freeport)
if command -v prometheus >/dev/null; then
  cat >"$DIR/prometheus.yml" <<EOF
global: {scrape_interval: 5s}
scrape_configs:
  - job_name: watchpost
    static_configs: [{targets: ["127.0.0.1:$PORT"]}]
  - job_name: prometheus
    static_configs: [{targets: ["127.0.0.1:$PROMPORT"]}]
EOF
  prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/promdata" \
    --web.listen-address="127.0.0.1:$PROMPORT" --log.level=warn >"$DIR/prometheus.log" 2>&1 &
  PIDS+=($!)
fi
env WATCHPOST_SERVER__BIND=127.0.0.1:$PORT \
  WATCHPOST_REDIS__URL=redis://127.0.0.1:$RPORT \
  WATCHPOST_POSTGRES__URL=postgres://postgres@127.0.0.1:$PGPORT/postgres \
  WATCHPOST_PROMETHEUS__URL=http://127.0.0.1:$PROMPORT \
  WATCHPOST_AI__YOLO26__URL=http://127.0.0.1:$AIBASE \
  WATCHPOST_AI__NEMOTRON__URL=http://127.0.0.1:$((AIBASE+1)) \
  WATCHPOST_AI__FLORENCE__URL=http://127.0.0.1:$((AIBASE+2)) \
  WATCHPOST_AI__CLIP__URL=http://127.0.0.1:$((AIBASE+3)) \
  WATCHPOST_AI__ENRICHMENT__URL=http://127.0.0.1:$((AIBASE+4)) \
  WATCHPOST_FILE_WATCHER__CAMERA_ROOT=$DIR/cameras \
  WATCHPOST_QUEUE__SPOOL_DIR=$DIR/spool \
  RUST_LOG=warn target/release/watchpost 2>"$DIR/watchpost.log" &
WP=$!
PIDS+=($WP)
until curl -sf -o /dev/null "http://127.0.0.1:$PORT/health"; do sleep 0.05; done
# Let the first probe round and the first worker ticks happen.
until curl -s "http://127.0.0.1:$PORT/api/system/health/full" | grep -q '"status"'; do sleep 0.1; done
rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$WP/status"; }
RSS_BEFORE=$(rss)

ENDPOINTS=(
  /health
  /api/system/health/live
  /ready
  /api/system/health/full
  /api/system/health/ready
  /api/system/health/websocket
  /metrics
  /openapi.json
  /api/system/supervisor
  /api/system/supervisor/status
  /api/system/supervisor/restart-history
  /api/system/pipeline
  /api/system/circuit-breakers
  /api/system/websocket/events
  /api/system/performance
  "/api/system/performance/history?time_range=15m"
  /api/system/monitoring/health
  /api/system/monitoring/targets
)
[ -n "${EXTRA_ENDPOINTS:-}" ] && ENDPOINTS+=($EXTRA_ENDPOINTS)

to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v} else if (v ~ /s$/) {sub(/s$/,"",v); print v*1000} else print v}' <<<"$1"; }
echo "wrk -t2 -c$CONNS -d${SECS}s per endpoint; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
echo
printf '| %-48s | %10s | %8s | %8s | %7s |\n' endpoint req/s "p50 ms" "p99 ms" "× /health"
printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..50})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..10})" "$(printf -- '-%.0s' {1..10})" "$(printf -- '-%.0s' {1..9})"
BASE=""
for ep in "${ENDPOINTS[@]}"; do
  out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "http://127.0.0.1:$PORT$ep")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(to_ms "$(awk '/ 50%/ {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '/ 99%/ {print $2}' <<<"$out")")
  [ -z "$BASE" ] && BASE=$rps
  ratio=$(awk -v a="$rps" -v b="$BASE" 'BEGIN {printf "%.2f", a/b}')
  non2xx=$(awk '/Non-2xx/ {print " (" $5 " non-2xx)"}' <<<"$out")
  printf '| %-48s | %10.0f | %8.3f | %8.3f | %7s |%s\n' "$ep" "$rps" "$p50" "$p99" "$ratio" "$non2xx"
done
echo
echo "RSS before: $RSS_BEFORE; after: $(rss)"
echo "series in one scrape: $(curl -s "http://127.0.0.1:$PORT/metrics" | grep -vc '^#'); bytes: $(curl -s "http://127.0.0.1:$PORT/metrics" | wc -c)"
