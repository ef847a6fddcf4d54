#!/usr/bin/env bash
# HTTP load figures for every GET endpoint with wrk, against the release binary on a
# free loopback port, with a real Redis, PostgreSQL and Prometheus (started here in a
# temp dir; PostgreSQL and Prometheus when installed) and the fake AI services. Loopback only,
# bounded in time; prints figures, asserts nothing. wrk and watchpost share the
# machine's cores.
#
# For each endpoint: requests/s, p50 and p99 latency, and the ratio to a /health run
# made just before it; RSS before and after. 64 cameras are registered first (one image each).
# Output is a Markdown table.
#
# Usage: bench/load.sh [seconds-per-endpoint] [connections]   (defaults: 5, 16)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}
CONNS=${2:-16}
command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }
. scripts/lib/local-stack.sh

cargo build --release -q --bin watchpost --example fake_ai
local_stack_start target/release/watchpost target/release/examples/fake_ai
rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$WP/status"; }
# 64 cameras (the default limit), one image each, so /api/system/cameras lists them all.
python3 - "$DIR/cameras" <<'PY'
import os, sys
for i in range(64):
    d = os.path.join(sys.argv[1], f"cam{i:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "first.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + os.urandom(12000))
PY
cameras() { curl -s "http://127.0.0.1:$PORT/api/system/cameras" | python3 -c 'import json, sys; print(json.load(sys.stdin)["count"])'; }
until [ "$(cameras)" = 64 ]; do sleep 0.2; done
RSS_BEFORE=$(rss)

# Every GET route without a path parameter, from the service's own OpenAPI document
# (so a new endpoint is measured without editing this list); /health first, as the base.
mapfile -t ENDPOINTS < <(curl -s "http://127.0.0.1:$PORT/openapi.json" | python3 -c '
import json, sys
paths = json.load(sys.stdin)["paths"]
eps = [p for p, item in paths.items() if "get" in item and "{" not in p and p != "/ws"]
print("\n".join(sorted(eps, key=lambda p: (p != "/health", p))))')
[ -n "${EXTRA_ENDPOINTS:-}" ] && ENDPOINTS+=($EXTRA_ENDPOINTS)
# ONLY="/api/system/circuit-breakers /api/system/health/full": just these (and /health).
[ -n "${ONLY:-}" ] && ENDPOINTS=(/health $ONLY)

to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v} else if (v ~ /s$/) {sub(/s$/,"",v); print v*1000} else print v}' <<<"$1"; }
echo "wrk -t2 -c$CONNS -d${SECS}s per endpoint; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
echo
printf '| %-48s | %10s | %8s | %8s | %7s |\n' endpoint req/s "p50 ms" "p99 ms" "× /health"
printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..50})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..10})" "$(printf -- '-%.0s' {1..10})" "$(printf -- '-%.0s' {1..9})"
# The ratio is to a /health run made just before each endpoint: the machine's pace
# drifts over a run (other work, CPU frequency), and a ratio to one /health measured
# minutes earlier carries that drift.
health_rps() { wrk -t2 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$PORT/health" | awk '/Requests\/sec/ {print $2}'; }
for ep in "${ENDPOINTS[@]}"; do
  if [ "$ep" = /health ]; then BASE=""; else BASE=$(health_rps); fi
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
