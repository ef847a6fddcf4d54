#!/usr/bin/env bash
# Property-based API check with schemathesis against /openapi.json of the debug binary,
# running against real Redis, PostgreSQL and Prometheus (when installed) and the fake
# AI services (scripts/lib/local-stack.sh), loopback only, bounded. Fails on any 5xx,
# undocumented status code, response that does not match its schema, or valid data
# refused (except the state conflicts listed in scripts/schemathesis.toml).
#
# Usage: scripts/fuzz-api.sh [max-examples]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
N=${1:-100}
VENV=${VENV:-target/schemathesis-venv}
[ -x "$VENV/bin/schemathesis" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q schemathesis; }
. scripts/lib/local-stack.sh
# A notifier, so that its endpoints answer for a known name too (nobody listens on
# port 9: a test is answered 504 with the reason).
export WATCHPOST_NOTIFY__OUTBOX_DIR="$REPO/target/fuzz-notify"
export WATCHPOST_NOTIFY__WEBHOOKS='[{name = "hook", url = "http://127.0.0.1:9/", format = "json"}]'
cargo build -q --bin watchpost --example fake_ai
local_stack_start "$REPO/target/debug/watchpost" "$REPO/target/debug/examples/fake_ai"
cd "$DIR"   # schemathesis writes .hypothesis/ into the working directory
"$REPO/$VENV/bin/schemathesis" --config-file "$REPO/scripts/schemathesis.toml" \
  run "http://127.0.0.1:$PORT/openapi.json" \
  --max-examples "$N" --exclude-checks unsupported_method
