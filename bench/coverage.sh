#!/usr/bin/env bash
# How fast coverage answers from a long history: 100 cameras × 90 days of spans
# generated in PostgreSQL (each camera offline 8 times a day for 10 minutes, frozen
# once a day; detection down twice a day, analysis down once a day, watchpost down
# once a week; each dependency down twice a day), then
#   GET /api/system/coverage?camera=cam042&from=<90 days ago>   (one camera, 90 days)
#   GET /api/system/coverage                                   (every camera, 24 h)
#   GET /api/system/availability?window=7d and ?window=90d
# each asked RUNS times (default 30) in a row with curl; prints p50 and p95 of the
# answer time. Release binary, real PostgreSQL, loopback; asserts nothing.
#
# Usage: bench/coverage.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-30}
. scripts/lib/local-stack.sh
cargo build --release -q --bin watchpost --example fake_ai
local_stack_start target/release/watchpost target/release/examples/fake_ai
pg() { psql "postgres://postgres@127.0.0.1:$PG_PORT/postgres" -Atqc "$1"; }
until [ "$(pg "select to_regclass('coverage_spans') is not null and exists (select 1 from coverage_history)")" = t ]; do sleep 0.2; done
pg "
insert into cameras (id, folder_name, created_at, last_seen_at)
  select format('cam%s', lpad(i::text, 3, '0')), format('cam%s', lpad(i::text, 3, '0')),
         now() - interval '91 days', now()
  from generate_series(0, 99) i on conflict do nothing;
update coverage_history set since = now() - interval '91 days';
insert into coverage_spans (id, subject_kind, subject, cause, detail, started_at, ended_at)
  select format('c%s-%s-%s', c, d, k), 'camera', format('cam%s', lpad(c::text, 3, '0')),
         case when k = 8 then 'camera_frozen' else 'camera_offline' end, 'generated',
         now() - make_interval(days => d) + make_interval(mins => k * 170 + c % 60),
         now() - make_interval(days => d) + make_interval(mins => k * 170 + c % 60 + 10)
  from generate_series(0, 99) c, generate_series(1, 90) d, generate_series(0, 8) k;
insert into coverage_spans (id, subject_kind, subject, cause, detail, started_at, ended_at)
  select format('p%s-%s', d, k), 'pipeline', '',
         (array['detection_down', 'detection_down', 'analysis_down'])[k + 1], 'generated',
         now() - make_interval(days => d) + make_interval(hours => k * 7 + 1),
         now() - make_interval(days => d) + make_interval(hours => k * 7 + 1, mins => 5)
  from generate_series(1, 90) d, generate_series(0, 2) k;
insert into coverage_spans (id, subject_kind, subject, cause, detail, started_at, ended_at)
  select format('w%s', d), 'pipeline', '', 'watchpost_down', 'generated',
         now() - make_interval(days => d) + interval '3 hours',
         now() - make_interval(days => d) + interval '3 hours 2 minutes'
  from generate_series(1, 90, 7) d;
insert into coverage_spans (id, subject_kind, subject, cause, detail, started_at, ended_at)
  select format('d%s-%s-%s', n, d, k), 'dependency', n, 'dependency_down', 'generated',
         now() - make_interval(days => d) + make_interval(hours => k * 11 + 2),
         now() - make_interval(days => d) + make_interval(hours => k * 11 + 2, mins => 3)
  from unnest(array['postgres', 'redis', 'yolo26', 'nemotron', 'florence', 'clip', 'enrichment']) n,
       generate_series(1, 90) d, generate_series(0, 1) k;
analyze coverage_spans;"
echo "spans stored: $(pg "select count(*) from coverage_spans"), table and indexes: $(pg "select pg_size_pretty(pg_total_relation_size('coverage_spans'))")"
FROM=$(date -u -d '-90 days +1 minute' +%Y-%m-%dT%H:%M:%SZ)
base=http://127.0.0.1:$PORT
measure() {
  local name=$1 url=$2
  curl -sf -o /dev/null "$url" || { echo "$name: request failed" >&2; return 1; }
  for _ in $(seq "$RUNS"); do curl -s -o /dev/null -w '%{time_total}\n' "$url"; done |
    sort -n | awk -v n="$name" '{a[NR] = $1 * 1000} END {printf "%-44s p50 %7.1f ms   p95 %7.1f ms\n", n, a[int(NR * 0.5 + 0.5)], a[int(NR * 0.95 + 0.5)]}'
}
measure "coverage, one camera, 90 days" "$base/api/system/coverage?camera=cam042&from=$FROM"
measure "coverage, 100 cameras, 24 h" "$base/api/system/coverage"
measure "availability, 7d" "$base/api/system/availability?window=7d"
measure "availability, 90d" "$base/api/system/availability?window=90d"
