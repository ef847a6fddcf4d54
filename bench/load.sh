#!/usr/bin/env bash
# HTTP load figures for the monitoring API with wrk: the release binary on a free
# loopback port, with a real Redis (started here in a temp dir) and no PostgreSQL or
# AI services, 5 s per endpoint at 16 connections. Loopback only, bounded in time;
# prints figures, asserts nothing. wrk and watchpost share the machine's cores.
#
# Usage: bench/load.sh [seconds-per-endpoint]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}
command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install -y redis-server" >&2; exit 1; }
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

cargo build --release -q
DIR=$(mktemp -d)
PORT=$(freeport)
RPORT=$(freeport)
cleanup() { kill "$WP" "$RS" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT

redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" --daemonize no >/dev/null 2>&1 &
RS=$!
WATCHPOST_SERVER__BIND=127.0.0.1:$PORT \
WATCHPOST_REDIS__URL=redis://127.0.0.1:$RPORT \
WATCHPOST_POSTGRES__URL=postgres://postgres@127.0.0.1:$(freeport)/watchpost \
WATCHPOST_FILE_WATCHER__CAMERA_ROOT=$DIR/cameras \
WATCHPOST_QUEUE__SPOOL_DIR=$DIR/spool \
RUST_LOG=warn target/release/watchpost 2>"$DIR/watchpost.log" &
WP=$!
until curl -sf -o /dev/null "http://127.0.0.1:$PORT/health"; do sleep 0.05; done

printf '%-32s %12s %10s %10s\n' endpoint req/s avg p99
for ep in /health /metrics /api/system/supervisor /api/system/pipeline /api/system/circuit-breakers; do
  out=$(wrk -t2 -c16 -d"${SECS}s" --latency "http://127.0.0.1:$PORT$ep")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  avg=$(awk '/^    Latency/ {print $2}' <<<"$out")
  p99=$(awk '/ 99%/ {print $2}' <<<"$out")
  printf '%-32s %12s %10s %10s\n' "$ep" "$rps" "$avg" "$p99"
done
echo "RSS after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$WP/status)"
