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

#   start_postgres <port> [extra server options]: a fresh cluster in its own temp dir
#   (PGDIR, mode 0700, owned by the server's user, which cannot enter the caller's
#   0700 $DIR). TCP connections need the password of user postgres (SCRAM; a random one,
#   never written to $DIR's logs), the Unix socket in PGDIR takes only the server's own
#   OS user. Sets PG_URL (with the password: show it only through watchpost, which
#   masks it) and exports PGPASSWORD for psql.
start_postgres() {
  local port=$1; shift
  PGDIR=$(mktemp -d /tmp/watchpost-pg.XXXXXX)
  [ "$(id -u)" -eq 0 ] && chown postgres: "$PGDIR"
  PGPASSWORD=$(python3 -c 'import secrets;print(secrets.token_hex(16))')
  export PGPASSWORD
  (umask 077; printf '%s\n' "$PGPASSWORD" >"$PGDIR/pw")
  [ "$(id -u)" -eq 0 ] && chown postgres: "$PGDIR/pw"
  as_pg "$PG_BIN/initdb" -D "$PGDIR/data" -U postgres --pwfile="$PGDIR/pw" \
    --auth-host=scram-sha-256 --auth-local=peer --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$PGDIR/pw"
  as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" \
    -o "-p $port -k $PGDIR -c listen_addresses=127.0.0.1 $*" -w start >/dev/null
  PG_URL="postgres://postgres:$PGPASSWORD@127.0.0.1:$port/postgres"
}

stop_postgres() {
  [ -n "${PGDIR:-}" ] || return 0
  [ -n "$PG_BIN" ] && [ -d "$PGDIR/data" ] && as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PGDIR"
}

#   start_fake_ai <fake_ai binary> <log file> [its options, e.g. --gpu-ms 50]
#
# Starts the five fake AI services on five consecutive loopback ports below Linux's
# ephemeral range (32768 and up), so no outgoing connection of another program can be
# holding one of them, and waits until the last one answers /health. If a port was
# taken meanwhile the fake AI exits; then other ports are tried. Sets AIBASE.
start_fake_ai() {
  local bin=$1 log=$2 pid try i
  shift 2
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
    "$bin" --base-port "$AIBASE" "$@" >"$log" 2>&1 &
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
