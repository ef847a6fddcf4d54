# Sourced by scripts/stack.sh and scripts/lib/local-stack.sh: the servers both start,
# each on loopback, in the caller's $DIR, its pid appended to PIDS (PostgreSQL is
# stopped with stop_postgres).

freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# The newest installed PostgreSQL (empty when there is none).
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PIDS=()

#   start_redis <port>: Redis with AOF in $DIR, log in $DIR/redis.log.
start_redis() {
  redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly yes --dir "$DIR" \
    --daemonize no --logfile "$DIR/redis.log" &
  PIDS+=($!)
}

#   start_postgres <port> [extra server options]: a fresh cluster in $DIR/pg, trust auth
#   for user postgres.
start_postgres() {
  local port=$1; shift
  mkdir -p "$DIR/pg"; [ "$(id -u)" -eq 0 ] && chown postgres: "$DIR/pg"
  as_pg "$PG_BIN/initdb" -D "$DIR/pg/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
  as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/log" \
    -o "-p $port -k $DIR/pg -c listen_addresses=127.0.0.1 $*" -w start >/dev/null
}

stop_postgres() {
  [ -n "$PG_BIN" ] && [ -d "$DIR/pg/data" ] && as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -m fast -w stop >/dev/null 2>&1 || true
}

#   start_fake_ai <fake_ai binary> <log file>
#
# Starts the five fake AI services on five consecutive loopback ports below Linux's
# ephemeral range (32768 and up), so no outgoing connection of another program can be
# holding one of them, and waits until the last one answers /health. If a port was
# taken meanwhile the fake AI exits; then other ports are tried. Sets AIBASE.
start_fake_ai() {
  local bin=$1 log=$2 pid try i
  for try in 1 2 3 4 5; do
    AIBASE=$(python3 -c '
import random, socket
for _ in range(500):
    base = random.randrange(20000, 32768 - 5)
    socks = []
    try:
        for p in range(base, base + 5):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            socks.append(s)
        print(base)
        break
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
')
    "$bin" --base-port "$AIBASE" >"$log" 2>&1 &
    pid=$!
    for i in $(seq 1 200); do
      kill -0 "$pid" 2>/dev/null || break
      if curl -sf -o /dev/null "http://127.0.0.1:$((AIBASE + 4))/health"; then
        PIDS+=("$pid")
        return 0
      fi
      sleep 0.05
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "fake AI could not listen on $AIBASE-$((AIBASE + 4)) (attempt $try); trying other ports" >&2
  done
  echo "the fake AI services could not start; see $log" >&2
  return 1
}
