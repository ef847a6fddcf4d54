# Sourced by bench/load.sh and scripts/fuzz-api.sh: runs watchpost against real
# dependencies on free loopback ports in a temp dir, all stopped on exit.
#
#   local_stack_start <watchpost-binary> <fake_ai-binary>
#
# starts Redis (AOF), PostgreSQL and Prometheus (each when installed), the fake AI
# services and watchpost, waits until watchpost has answered its first full health,
# and sets DIR, PORT (watchpost), WP (its pid), REDIS_PORT and PG_PORT. Logs are in
# $DIR.

. "$(dirname "${BASH_SOURCE[0]}")/servers.sh"

local_stack_stop() {
  kill "${PIDS[@]}" 2>/dev/null || true
  stop_postgres
  wait 2>/dev/null || true
  rm -rf "$DIR"
}

local_stack_start() {
  local bin=$1 fake_ai=$2
  command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install -y redis-server" >&2; exit 1; }
  DIR=$(mktemp -d)
  trap local_stack_stop EXIT
  PORT=$(freeport)
  local promport aibase
  # REDIS_PORT and PG_PORT stay set for the caller (bench/pipeline-cost.sh reads both).
  REDIS_PORT=$(freeport); PG_PORT=$(freeport); promport=$(freeport)
  local rport=$REDIS_PORT pgport=$PG_PORT
  start_redis "$rport"
  [ -n "$PG_BIN" ] && start_postgres "$pgport" -c fsync=off
  start_fake_ai "$fake_ai" "$DIR/fake_ai.log"
  aibase=$AIBASE
  if command -v prometheus >/dev/null; then
    cat >"$DIR/prometheus.yml" <<EOF
global: {scrape_interval: 5s}
scrape_configs:
  - job_name: watchpost
    static_configs: [{targets: ["127.0.0.1:$PORT"]}]
  - job_name: prometheus
    static_configs: [{targets: ["127.0.0.1:$promport"]}]
EOF
    prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/promdata" \
      --web.listen-address="127.0.0.1:$promport" --log.level=warn >"$DIR/prometheus.log" 2>&1 &
    PIDS+=($!)
    until curl -sf -o /dev/null "http://127.0.0.1:$promport/-/ready"; do sleep 0.1; done
  fi
  env WATCHPOST_SERVER__BIND=127.0.0.1:$PORT \
    WATCHPOST_REDIS__URL=redis://127.0.0.1:$rport \
    WATCHPOST_POSTGRES__URL=${PG_URL:-postgres://postgres@127.0.0.1:$pgport/postgres} \
    WATCHPOST_PROMETHEUS__URL=http://127.0.0.1:$promport \
    WATCHPOST_AI__YOLO26__URL=http://127.0.0.1:$aibase \
    WATCHPOST_AI__NEMOTRON__URL=http://127.0.0.1:$((aibase+1)) \
    WATCHPOST_AI__FLORENCE__URL=http://127.0.0.1:$((aibase+2)) \
    WATCHPOST_AI__CLIP__URL=http://127.0.0.1:$((aibase+3)) \
    WATCHPOST_AI__ENRICHMENT__URL=http://127.0.0.1:$((aibase+4)) \
    WATCHPOST_FILE_WATCHER__CAMERA_ROOT=$DIR/cameras \
    WATCHPOST_QUEUE__SPOOL_DIR=$DIR/spool \
    WATCHPOST_COVERAGE__HEARTBEAT_PATH=$DIR/heartbeat.json \
    RUST_LOG=warn "$bin" 2>"$DIR/watchpost.log" &
  WP=$!
  PIDS+=($WP)
  until curl -sf -o /dev/null "http://127.0.0.1:$PORT/health"; do sleep 0.05; done
  # Let the first probe round and the first worker ticks happen.
  until curl -s "http://127.0.0.1:$PORT/api/system/health/full" | grep -q '"status"'; do sleep 0.1; done
}
