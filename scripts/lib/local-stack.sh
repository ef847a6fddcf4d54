# Sourced by bench/load.sh and scripts/fuzz-api.sh: runs watchpost against real
# dependencies on free loopback ports in a temp dir, all stopped on exit.
#
#   local_stack_start <watchpost-binary> <fake_ai-binary>
#
# starts Redis (AOF), PostgreSQL and Prometheus (each when installed), the fake AI
# services and watchpost, waits until watchpost has answered its first full health,
# and sets DIR, PORT (watchpost), WP (its pid). Logs are in $DIR.

. "$(dirname "${BASH_SOURCE[0]}")/fake-ai.sh"
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
PG_BIN=/usr/lib/postgresql/15/bin
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PIDS=()

local_stack_stop() {
  kill "${PIDS[@]}" 2>/dev/null || true
  [ -x "$PG_BIN/pg_ctl" ] && [ -d "$DIR/pg/data" ] && as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  rm -rf "$DIR"
}

local_stack_start() {
  local bin=$1 fake_ai=$2
  command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install -y redis-server" >&2; exit 1; }
  DIR=$(mktemp -d)
  chmod 755 "$DIR"
  trap local_stack_stop EXIT
  PORT=$(freeport)
  local rport pgport promport aibase
  rport=$(freeport); pgport=$(freeport); promport=$(freeport)
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly yes --dir "$DIR" --daemonize no >/dev/null 2>&1 &
  PIDS+=($!)
  if [ -x "$PG_BIN/initdb" ]; then
    mkdir -p "$DIR/pg"; [ "$(id -u)" -eq 0 ] && chown postgres: "$DIR/pg"
    as_pg "$PG_BIN/initdb" -D "$DIR/pg/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
    as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/log" -o "-p $pgport -k $DIR/pg -c listen_addresses=127.0.0.1 -c fsync=off" -w start >/dev/null
  fi
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
    WATCHPOST_POSTGRES__URL=postgres://postgres@127.0.0.1:$pgport/postgres \
    WATCHPOST_PROMETHEUS__URL=http://127.0.0.1:$promport \
    WATCHPOST_AI__YOLO26__URL=http://127.0.0.1:$aibase \
    WATCHPOST_AI__NEMOTRON__URL=http://127.0.0.1:$((aibase+1)) \
    WATCHPOST_AI__FLORENCE__URL=http://127.0.0.1:$((aibase+2)) \
    WATCHPOST_AI__CLIP__URL=http://127.0.0.1:$((aibase+3)) \
    WATCHPOST_AI__ENRICHMENT__URL=http://127.0.0.1:$((aibase+4)) \
    WATCHPOST_FILE_WATCHER__CAMERA_ROOT=$DIR/cameras \
    WATCHPOST_QUEUE__SPOOL_DIR=$DIR/spool \
    RUST_LOG=warn "$bin" 2>"$DIR/watchpost.log" &
  WP=$!
  PIDS+=($WP)
  until curl -sf -o /dev/null "http://127.0.0.1:$PORT/health"; do sleep 0.05; done
  # Let the first probe round and the first worker ticks happen.
  until curl -s "http://127.0.0.1:$PORT/api/system/health/full" | grep -q '"status"'; do sleep 0.1; done
}
