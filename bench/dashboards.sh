#!/usr/bin/env bash
# Dashboards benchmark on PostgreSQL (issue 16 §9): seeds a tenant with leads, deals (with their
# stage history), tasks spread over two years (`jtcrm bench seed` + `bench seed-sales`), starts
# `jtcrm serve`, and loads every dashboard endpoint over a 12-month period at c=16 with
# bench/load.py (closed loop, keep-alive). Results: bench/out/dashboards-<timestamp>/results.md;
# analysis in bench/RESULTS.md ("Dashboards").
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/dashboards.sh [options]

  --leads N        leads of the big tenant (default 1000000)
  --open N         open deals (default 150000)
  --closed N       won + lost deals (default 50000)
  --tasks N        tasks (default 2000000)
  --duration S     seconds per endpoint after a 3 s warm-up (default 20)
  --conc N         connections (default 16)
  --pg-url URL     PostgreSQL server without database (default postgres://postgres@127.0.0.1:5432
                   or $BENCH_PG_URL); the database jtcrm_bench_dash is created
  --port N         API port (default 5079)
  --skip-build     use the existing release binary
  --bin PATH       the jtcrm binary to run (implies --skip-build; say so in the results)
  --reuse          reuse the database and seed reports of the last run (--keep-db)
  --keep-db        keep the database
USAGE
}

LEADS=1000000 OPEN=150000 CLOSED=50000 TASKS=2000000 DURATION=20 CONC=16
SKIP_BUILD=0 REUSE=0 KEEP_DB=0 BIN_OVERRIDE=""
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
PORT=${BENCH_PORT:-5079}
while [[ $# -gt 0 ]]; do
  case $1 in
    --leads) LEADS=$2; shift ;;
    --open) OPEN=$2; shift ;;
    --closed) CLOSED=$2; shift ;;
    --tasks) TASKS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --conc) CONC=$2; shift ;;
    --pg-url) PG_URL=${2%/}; shift ;;
    --port) PORT=$2; shift ;;
    --skip-build) SKIP_BUILD=1 ;;
    --bin) BIN_OVERRIDE=$2; SKIP_BUILD=1; shift ;;
    --reuse) REUSE=1; KEEP_DB=1 ;;
    --keep-db) KEEP_DB=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN_OVERRIDE:-$TARGET/release/jtcrm}
DB=jtcrm_bench_dash
STATE=$BENCH_DIR/out/dashboards-state
OUT=$BENCH_DIR/out/dashboards-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT" "$STATE"
RESULTS=$OUT/results.md
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/run.log"; }

if ((!SKIP_BUILD)); then
  log "cargo build --release -p jtcrm-cli"
  (cd "$ROOT" && cargo build --release -p jtcrm-cli)
fi
[[ -x $BIN ]] || { echo "no binary at $BIN" >&2; exit 1; }

if ((REUSE)) && [[ -s $STATE/jwt_secret ]]; then
  JWT_SECRET_KEY=$(cat "$STATE/jwt_secret")
else
  JWT_SECRET_KEY=$(head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 64)
  (umask 077 && printf '%s\n' "$JWT_SECRET_KEY" >"$STATE/jwt_secret")
fi
export JWT_SECRET_KEY
export JWT_ACCESS_TOKEN_EXPIRES=24 LOG_LEVEL=${LOG_LEVEL:-warn} JTCRM_DATA_DIR=$OUT/data
unset JTCRM_SUPERADMIN_EMAIL JTCRM_SUPERADMIN_PASSWORD REDIS_URL
mkdir -p "$JTCRM_DATA_DIR"

SERVER_PID=""
cleanup() {
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  ((KEEP_DB)) || psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
}
trap cleanup EXIT

if ((!REUSE)); then
  psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null
  psql "$PG_URL/postgres" -qc "CREATE DATABASE $DB" >/dev/null
  log "seeding $LEADS leads (+ 1 × 10,000-lead tenant)"
  t0=$(date +%s)
  DATABASE_URL=$PG_URL/$DB "$BIN" bench seed --leads "$LEADS" --tenants-extra 1 \
    --leads-per-extra 10000 --out "$STATE/seed.json" >"$OUT/seed.log" 2>&1
  log "seeding $OPEN open + $CLOSED closed deals, $TASKS tasks"
  DATABASE_URL=$PG_URL/$DB "$BIN" bench seed-sales --open "$OPEN" --closed "$CLOSED" \
    --tasks "$TASKS" --agenda-tasks 50000 --timeline 100 --out "$STATE/sales.json" >"$OUT/sales.log" 2>&1
  psql "$PG_URL/$DB" -qc "VACUUM ANALYZE" >/dev/null
  log "seeded in $(($(date +%s) - t0)) s"
fi
psql "$PG_URL/$DB" -Atc "select 'leads', count(*)::text from leads union all select 'opportunities', count(*)::text from opportunities union all select 'stage history', count(*)::text from opportunity_stage_history union all select 'tasks', count(*)::text from tasks union all select 'notes', count(*)::text from notes union all select 'db size', pg_size_pretty(pg_database_size('$DB'))" | tee "$OUT/sizes.txt"

DATABASE_URL=$PG_URL/$DB "$BIN" serve --bind 127.0.0.1 --port "$PORT" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
BASE=http://127.0.0.1:$PORT
for _ in $(seq 1 120); do curl -sf "$BASE/health" >/dev/null && break; sleep 0.5; done
TOKEN=$(jq -r '.tenants[0].admin_token' "$STATE/seed.json")
SELLER=$(jq -r '.filter_owner_id' "$STATE/sales.json")
TO=$(date -u +%Y-%m-%d)
FROM=$(date -u -d "$TO - 364 days" +%Y-%m-%d)
P="from=$FROM&to=$TO"

{
  echo "# Dashboards benchmark $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "binary $BIN"
  echo
  echo "git $(cd "$ROOT" && git rev-parse --short HEAD), $(nproc) cpus, PostgreSQL $(psql "$PG_URL/postgres" -Atc 'show server_version'), c=$CONC, ${DURATION}s per endpoint, period $FROM..$TO"
  echo
  sed 's/|/: /' "$OUT/sizes.txt" | sed 's/^/- /'
  echo
  echo "| endpoint | req/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx |"
  echo "|---|---|---|---|---|---|---|"
} >"$RESULTS"
for spec in \
  "overview|/api/dashboard/overview?$P" \
  "overview_compare|/api/dashboard/overview?$P&compare=previous_period" \
  "kpis|/api/dashboard/kpis?$P" \
  "sales_funnel|/api/dashboard/sales-funnel?$P" \
  "team_performance|/api/dashboard/team-performance?$P" \
  "series_new_leads_day|/api/dashboard/series?$P&metric=new_leads&interval=day" \
  "series_won_mrr_month|/api/dashboard/series?$P&metric=won_mrr&interval=month" \
  "series_activities_week|/api/dashboard/series?$P&metric=activities&interval=week" \
  "overview_one_seller|/api/dashboard/overview?$P&owner_id=$SELLER" \
  "kpis_this_month|/api/dashboard/kpis?period=this_month"; do
  name=${spec%%|*} path=${spec#*|}
  code=$(curl -s -o "$OUT/$name.body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$BASE$path")
  [[ $code == 200 ]] || { echo "$name: HTTP $code $(head -c 300 "$OUT/$name.body")" >&2; exit 1; }
  r=$(python3 "$BENCH_DIR/load.py" "$BASE$path" "$TOKEN" -c "$CONC" -d "$DURATION")
  log "$name $r"
  jq -r --arg n "$name" '"| \($n) | \(.rps) | \(.p50_ms) | \(.p90_ms) | \(.p99_ms) | \(.max_ms) | \(.non_2xx) |"' <<<"$r" >>"$RESULTS"
done
cat "$RESULTS"
