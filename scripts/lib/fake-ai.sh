# Sourced by scripts/stack.sh and scripts/lib/local-stack.sh.
#
#   start_fake_ai <fake_ai binary> <log file>
#
# Starts the five fake AI services on five consecutive loopback ports below Linux's
# ephemeral range (32768 and up), so no outgoing connection of another program can be
# holding one of them, and waits until the last one answers /health. If a port was
# taken meanwhile the fake AI exits; then other ports are tried. Sets AIBASE and
# appends the pid to PIDS.
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
