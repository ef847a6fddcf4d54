#!/usr/bin/env bash
# Property-based API check with schemathesis against /openapi.json of the debug binary
# (no dependencies running, loopback only, bounded). Finds 5xx answers, undocumented
# status codes and responses that do not match their schema.
#
# The two start/stop cases it reports as "schema-valid request rejected" (ST202) are
# the contract's 400 answers to state conflicts ("already running", "not running").
#
# Usage: scripts/fuzz-api.sh [max-examples]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
VENV=${VENV:-target/schemathesis-venv}
[ -x "$VENV/bin/schemathesis" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q schemathesis; }
cargo build -q
DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
(cd "$DIR" && WATCHPOST_SERVER__BIND=127.0.0.1:$PORT RUST_LOG=warn exec "$OLDPWD/target/debug/watchpost") 2>"$DIR/watchpost.log" &
WP=$!
trap 'kill $WP 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"' EXIT
until curl -sf -o /dev/null "http://127.0.0.1:$PORT/health"; do sleep 0.05; done
cd "$DIR"   # schemathesis writes .hypothesis/ into the working directory
"$OLDPWD/$VENV/bin/schemathesis" run "http://127.0.0.1:$PORT/openapi.json" \
  --max-examples "$N" --exclude-checks unsupported_method
