#!/usr/bin/env bash
# Automation throughput on PostgreSQL (issue 6 §9): N `lead.created` events, one active automation
# with one `create_task` action, drained by 1 and then 2 `jtcrm worker` processes (actions/s); then
# the delay from event to task at a steady rate of leads created through the API. See
# bench/README.md and bench/RESULTS.md; raw results go to bench/out/automations-<timestamp>/.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/automations.sh [options]

  --events N         events seeded per run (default 100000)
  --workers "1 2"    worker counts to measure (default "1 2"), one fresh database each
  --concurrency N    jobs per worker (JTCRM_WORKER_CONCURRENCY, default 8)
  --rate N           leads per second for the delay measurement (default 20)
  --seconds N        duration of the delay measurement (default 15)
  --pg-url URL       PostgreSQL server without database (default postgres://postgres@127.0.0.1:5432,
                     or $BENCH_PG_URL); the database jtcrm_bench_auto is created and dropped
  --port N           API port (default 5078)
  --skip-build       use the existing release binary
  --keep-db          keep the last database
  --log-slow MS      log statements slower than MS ms in the PostgreSQL server log
EOF
}

EVENTS=100000 WORKERS="1 2" CONC=8 RATE=20 SECONDS_LAT=15 SKIP_BUILD=0 KEEP_DB=0 LOG_SLOW=""
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
PORT=${BENCH_PORT:-5078}
while [[ $# -gt 0 ]]; do
  case $1 in
    --events) EVENTS=$2; shift ;;
    --workers) WORKERS=$2; shift ;;
    --concurrency) CONC=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --seconds) SECONDS_LAT=$2; shift ;;
    --pg-url) PG_URL=${2%/}; shift ;;
    --port) PORT=$2; shift ;;
    --skip-build) SKIP_BUILD=1 ;;
    --keep-db) KEEP_DB=1 ;;
    --log-slow) LOG_SLOW=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/jtcrm
DB=jtcrm_bench_auto
DB_URL=$PG_URL/$DB
OUT=$BENCH_DIR/out/automations-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
RESULTS=$OUT/results.md

export JTCRM_SUPERADMIN_EMAIL=bench-root@jtcrm.test
export JTCRM_SUPERADMIN_PASSWORD=bench-root-$RANDOM$RANDOM
export JWT_SECRET_KEY=bench-$(date +%s%N)-$RANDOM$RANDOM$RANDOM
export LOG_LEVEL=${LOG_LEVEL:-warn}

PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do
    [[ -n $p ]] && kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]:-}"; do
    [[ -n $p ]] && wait "$p" 2>/dev/null || true
  done
  PIDS=()
}
trap 'cleanup; ((KEEP_DB)) || drop_db' EXIT

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 "$PG_URL/postgres" "$@"; }
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$DB_URL" -c "$1"; }
drop_db() { psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true; }
now_ms() { date +%s%3N; }

if ((!SKIP_BUILD)); then
  (cd "$ROOT" && cargo build --release -p jtcrm-cli)
fi

start_server() {
  DATABASE_URL=$DB_URL JTCRM_RUN_WORKER=false "$BIN" serve --port "$PORT" --bind 127.0.0.1 \
    >"$OUT/server.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  echo "server did not start" >&2
  tail -n 30 "$OUT/server.log" >&2
  exit 1
}

api() { # method path token [json]
  local args=(-sf -X "$1" "http://127.0.0.1:$PORT$2" -H "content-type: application/json")
  [[ -n ${3:-} ]] && args+=(-H "authorization: Bearer $3")
  [[ -n ${4:-} ]] && args+=(-d "$4")
  curl "${args[@]}"
}

start_workers() { # count
  for i in $(seq 1 "$1"); do
    DATABASE_URL=$DB_URL JTCRM_WORKER_CONCURRENCY=$CONC JTCRM_WORKER_POLL_MS=100 \
      JTCRM_DB_MAX_CONNECTIONS=$((CONC + 4)) "$BIN" worker >"$OUT/worker-$1-$i.log" 2>&1 &
    PIDS+=($!)
  done
}

{
  echo "# Automation benchmark $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "- events: $EVENTS lead.created, one automation with one create_task action"
  echo "- workers: $WORKERS (each JTCRM_WORKER_CONCURRENCY=$CONC, JTCRM_WORKER_POLL_MS=100)"
  echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo);" \
    "PostgreSQL $(psql -X -t -A "$PG_URL/postgres" -c 'show server_version')"
  echo
  echo "| workers | events | dispatch done (s) | tasks done (s) | actions/s | delay p50 (ms) | p95 (ms) | max (ms) |"
  echo "|---|---|---|---|---|---|---|---|"
} >"$RESULTS"

for W in $WORKERS; do
  echo "== $W worker(s): fresh database, seed $EVENTS events"
  drop_db
  psql_admin -c "CREATE DATABASE $DB" >/dev/null
  [[ -n $LOG_SLOW ]] && psql_admin -c "ALTER DATABASE $DB SET log_min_duration_statement = $LOG_SLOW" >/dev/null
  DATABASE_URL=$DB_URL "$BIN" migrate >/dev/null
  start_server
  ROOT_TOKEN=$(api POST /api/auth/login "" \
    "{\"email\":\"$JTCRM_SUPERADMIN_EMAIL\",\"password\":\"$JTCRM_SUPERADMIN_PASSWORD\"}" | jq -r .access_token)
  SLUG=bench-auto-$RANDOM
  TENANT=$(api POST /api/super-admin/tenants "$ROOT_TOKEN" \
    "{\"name\":\"Bench Automações\",\"slug\":\"$SLUG\",\"email\":\"contato@$SLUG.com.br\",\"subscription_plan\":\"enterprise\",
      \"admin\":{\"name\":\"Admin\",\"email\":\"admin@$SLUG.com.br\",\"password\":\"bench-admin-1\"}}" | jq -r .id)
  ADMIN=$(api POST /api/auth/login "" "{\"email\":\"admin@$SLUG.com.br\",\"password\":\"bench-admin-1\"}" | jq -r .access_token)
  ADMIN_ID=$(api GET /api/auth/me "$ADMIN" | jq -r '.id // .user.id')
  api POST /api/automations "$ADMIN" \
    '{"name":"Novo lead → ligação","trigger":{"event":"lead.created"},
      "actions":[{"type":"create_task","task_type":"call","title":"Ligar para {{lead.name}}"}]}' >/dev/null
  # Leads and their events straight into the tables (what POST /api/leads writes, minus the
  # search index, audit and timeline, which the automation does not read).
  q "INSERT INTO leads (tenant_id, id, name, name_sort, source, status, owner_id, tags, custom_fields,
        score, signal_points, created_at, updated_at, version)
     SELECT '$TENANT', gen_random_uuid(), 'Lead ' || g, 'lead ' || g, 'other', 'new', '$ADMIN_ID',
        '[]'::jsonb, '{}'::jsonb, 0, 0, now(), now(), 1
     FROM generate_series(1, $EVENTS) g" >/dev/null
  q "INSERT INTO domain_events (tenant_id, id, event_type, entity_type, entity_id, actor_id, data, created_at)
     SELECT tenant_id, gen_random_uuid(), 'lead.created', 'lead', id, '$ADMIN_ID', '{}'::jsonb, now()
     FROM leads WHERE tenant_id = '$TENANT'" >/dev/null
  q "ANALYZE" >/dev/null
  T0=$(now_ms)
  start_workers "$W"
  DISPATCHED="" 
  # Poll once a second: the polling queries share the two cores with what is measured, and the
  # rate is computed from the tasks' own timestamps, not from when the poll saw them.
  while :; do
    sleep 1
    if [[ -z $DISPATCHED ]] && [[ $(q "SELECT count(*) FROM domain_events WHERE event_type = 'lead.created' AND processed_at IS NULL") == 0 ]]; then
      DISPATCHED=$(( $(now_ms) - T0 ))
    fi
    DONE=$(q "SELECT count(*) FROM tasks WHERE tenant_id = '$TENANT'")
    if ((DONE >= EVENTS)); then break; fi
    if (( $(now_ms) - T0 > 3600000 )); then echo "timeout: $DONE tasks" >&2; break; fi
  done
  T1=$(( $(now_ms) - T0 ))
  RATE_S=$(q "SELECT round($DONE / GREATEST(extract(epoch FROM max(created_at) - min(created_at)), 0.001))
              FROM tasks WHERE tenant_id = '$TENANT'")
  DUPES=$(q "SELECT count(*) - count(DISTINCT lead_id) FROM tasks WHERE tenant_id = '$TENANT'")
  echo "   $DONE tasks in $T1 ms (dispatch done at ${DISPATCHED:-?} ms), $RATE_S actions/s, duplicates: $DUPES"
  # Steady load through the API: the delay from the lead.created event to its task.
  echo "== $W worker(s): $RATE leads/s for $SECONDS_LAT s through POST /api/leads"
  MARK=$(q "SELECT now()")
  N=$((RATE * SECONDS_LAT))
  for i in $(seq 1 "$N"); do
    api POST /api/leads "$ADMIN" "{\"name\":\"Latência $i\"}" >/dev/null &
    sleep "$(awk "BEGIN {print 1/$RATE}")"
  done
  wait_tasks=$(( $(now_ms) + 60000 ))
  while (( $(q "SELECT count(*) FROM tasks t JOIN leads l ON l.tenant_id = t.tenant_id AND l.id = t.lead_id
                 WHERE t.tenant_id = '$TENANT' AND l.created_at >= '$MARK'") < N )); do
    (( $(now_ms) > wait_tasks )) && break
    sleep 0.5
  done
  LAT=$(q "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY d)) || '|' ||
                  round(percentile_cont(0.95) WITHIN GROUP (ORDER BY d)) || '|' || round(max(d))
           FROM (SELECT extract(epoch FROM t.created_at - e.created_at) * 1000 AS d
                 FROM domain_events e JOIN tasks t ON t.tenant_id = e.tenant_id AND t.lead_id = e.entity_id
                 WHERE e.tenant_id = '$TENANT' AND e.event_type = 'lead.created' AND e.created_at >= '$MARK') x")
  echo "   delay p50|p95|max (ms): $LAT"
  echo "| $W | $EVENTS | $(awk "BEGIN {printf \"%.1f\", ${DISPATCHED:-0}/1000}") | $(awk "BEGIN {printf \"%.1f\", $T1/1000}") | $RATE_S | ${LAT//|/ | } |" >>"$RESULTS"
  q "SELECT kind, status, count(*) FROM jobs GROUP BY 1, 2 ORDER BY 1, 2" >"$OUT/jobs-$W.txt"
  cleanup
done

echo
cat "$RESULTS"
echo "(raw logs in $OUT)"
