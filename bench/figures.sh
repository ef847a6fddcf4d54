#!/usr/bin/env bash
# The figures of the scenarios the integration tests run: tests check outcomes only
# (nothing lost, the right answer, a clean exit), and the scenarios that are worth a
# number print it as `FIGURE <name> <value> <unit>`. This runs them with the release
# build of the tests, one at a time (so they do not share the two cores), and prints a
# Markdown table. Real Redis, PostgreSQL, Prometheus and Chromium as in the suite
# (scripts/test.sh installs them); loopback only, bounded; asserts nothing of its own.
#
# Usage: bench/figures.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIOS=(
  hostile::sigterm_ends_the_process_within_the_grace_period_with_work_in_flight
  hostile::a_sparse_file_above_the_limit_is_refused_unread
  live::full_health_follows_the_contract_rules
  monitoring::the_monitoring_endpoints_follow_prometheus_and_fall_back_to_direct_probes
  notify::ntfy_and_alertmanager_webhooks_hear_of_an_alert_at_once_and_of_its_end
  pipeline::postgres_outage_delays_work_and_loses_nothing
  security::clients_that_never_read_are_closed_and_never_exceed_max_clients
)
cargo test --release --test integration --no-run -q 2>/dev/null
echo "| scenario | figure | value |"
echo "|---|---|---|"
for s in "${SCENARIOS[@]}"; do
  cargo test --release -q --test integration -- --exact "$s" --nocapture --test-threads 1 2>&1 \
    | awk -v s="${s%%::*}" '/^FIGURE / {printf "| %s | %s | %s %s |\n", s, $2, $3, $4}'
done
