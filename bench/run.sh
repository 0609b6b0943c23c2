#!/usr/bin/env bash
# The leads benchmark, end to end: build, create the database, seed, start `jtcrm serve`, wrk
# scenarios at c=16 and c=64, export and import, pgbench on the same SQL, stop, drop. Then the same
# list/search scenarios on SQLite. See bench/README.md; results go to bench/out/<timestamp>/.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/run.sh [--quick] [options]

  --quick            small data (20k + 1×5k leads; SQLite 10k), 5 s per scenario: a few minutes
  --duration S       seconds per wrk/pgbench run (default 25, quick 5)
  --pg-url URL       PostgreSQL server, without database (default postgres://postgres@127.0.0.1:5432,
                     or $BENCH_PG_URL); the database jtcrm_bench[_quick] is created and dropped
  --redis URL        run the server with REDIS_URL (denylist/rate-limit store in Redis)
  --no-pg            skip PostgreSQL (SQLite only)
  --no-sqlite        skip the SQLite cross-check
  --skip-build       use the existing release binary
  --keep-db          keep the databases (and the server logs) for inspection
  --port N           server port (default: the first free one from 5077)
  --out DIR          output directory (default bench/out/<UTC timestamp>[-quick])
EOF
}

QUICK=0 SKIP_BUILD=0 KEEP_DB=0 RUN_PG=1 RUN_SQLITE=1 DURATION="" REDIS=""
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
PORT=${BENCH_PORT:-}
OUT=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1 ;;
    --duration) DURATION=$2; shift ;;
    --pg-url) PG_URL=${2%/}; shift ;;
    --redis) REDIS=$2; shift ;;
    --no-pg) RUN_PG=0 ;;
    --no-sqlite) RUN_SQLITE=0 ;;
    --skip-build) SKIP_BUILD=1 ;;
    --keep-db) KEEP_DB=1 ;;
    --port) PORT=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
export BENCH_DIR

if ((QUICK)); then
  LEADS=20000 EXTRA=1 PER_EXTRA=5000 IMPORT_ROWS=5000 DUR=${DURATION:-5} WARMUP=2
  SQ_LEADS=10000 SQ_EXTRA=1 SQ_PER_EXTRA=2000 DB=jtcrm_bench_quick
  OPPS=5000 CLOSED=1000 TASKS=50000 AGENDA=2500 TIMELINE=500
else
  LEADS=1000000 EXTRA=4 PER_EXTRA=100000 IMPORT_ROWS=100000 DUR=${DURATION:-25} WARMUP=5
  SQ_LEADS=1000000 SQ_EXTRA=4 SQ_PER_EXTRA=100000 DB=jtcrm_bench
  OPPS=100000 CLOSED=20000 TASKS=1000000 AGENDA=50000 TIMELINE=5000
fi
OUT=${OUT:-$BENCH_DIR/out/$(date -u +%Y%m%dT%H%M%SZ)$( ((QUICK)) && echo -quick || true)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

need() { command -v "$1" >/dev/null || { echo "missing tool: $1 ($2)" >&2; exit 1; }; }
need wrk "apt-get install wrk"
need jq "apt-get install jq"
need curl "apt-get install curl"
if ((RUN_PG)); then
  need psql "apt-get install postgresql-client"
  need pgbench "apt-get install postgresql-contrib (or postgresql-client-15)"
fi

log() { printf '\n[%s] %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$OUT/run.log" >&2; }

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release/jtcrm
if ((!SKIP_BUILD)); then
  log "cargo build --release -p jtcrm-cli"
  (cd "$ROOT" && cargo build --release -p jtcrm-cli)
fi
[[ -x $BIN ]] || { echo "no binary at $BIN (build it or set CARGO_TARGET_DIR)" >&2; exit 1; }

# One secret for the seeder (which signs the admin tokens) and the server.
JWT_SECRET_KEY=$(head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 64)
export JWT_SECRET_KEY
# Kept with the outputs so a kept database (--keep-db) can be served again with the seeded tokens.
(umask 077 && printf '%s\n' "$JWT_SECRET_KEY" >"$OUT/jwt_secret")
export JTCRM_DATA_DIR=$OUT/data
export LOG_LEVEL=${LOG_LEVEL:-warn}
export JWT_ACCESS_TOKEN_EXPIRES=24
unset JTCRM_SUPERADMIN_EMAIL JTCRM_SUPERADMIN_PASSWORD REDIS_URL
mkdir -p "$JTCRM_DATA_DIR"

{
  echo "date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host=$(hostname) cpus=$(nproc) mem=$(free -g | awk '/Mem:/{print $2}')G"
  echo "kernel=$(uname -r)"
  echo "git=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?') dirty=$(cd "$ROOT" && git status --porcelain 2>/dev/null | wc -l)"
  echo "wrk=$(wrk -v 2>&1 | head -1)"
  ((RUN_PG)) && echo "postgres=$(psql "$PG_URL/postgres" -Atc 'show server_version') shared_buffers=$(psql "$PG_URL/postgres" -Atc 'show shared_buffers')"
  echo "quick=$QUICK duration=${DUR}s leads=$LEADS extra=${EXTRA}x$PER_EXTRA sqlite=$SQ_LEADS+${SQ_EXTRA}x$SQ_PER_EXTRA import=$IMPORT_ROWS redis=${REDIS:-none}"
} > "$OUT/env.txt"
cat "$OUT/env.txt"

SERVER_PID=""
SQLITE_FILE=$OUT/sqlite/bench.db

start_server() { # database_url label
  local url=$1 label=$2
  if [[ -n $REDIS ]]; then export REDIS_URL=$REDIS REDIS_KEY_PREFIX="jtcrm-bench-$$:"; fi
  DATABASE_URL=$url "$BIN" serve --bind 127.0.0.1 --port "$PORT" >"$OUT/server-$label.log" 2>&1 &
  SERVER_PID=$!
  unset REDIS_URL
  if port_busy "$PORT"; then
    echo "port $PORT is in use by another process" >&2
    exit 1
  fi
  for _ in $(seq 1 120); do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/server-$label.log" >&2; exit 1; }
    if curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "server did not become healthy" >&2
  exit 1
}

stop_server() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

cleanup() {
  stop_server
  if ((!KEEP_DB)); then
    if ((RUN_PG)); then psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true; fi
    rm -rf "$OUT/sqlite" "$JTCRM_DATA_DIR" "$OUT/jwt_secret"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [[ -z $PORT ]]; then
  for p in $(seq 5077 5177); do
    if ! port_busy "$p"; then PORT=$p; break; fi
  done
fi
if port_busy "$PORT"; then
  echo "port $PORT is in use (--port N)" >&2
  exit 1
fi
BASE="http://127.0.0.1:$PORT"

# CPU time (clock ticks) of a process, and of the PostgreSQL backends serving database $DB: CPU per
# request is the figure that survives a noisy machine best.
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {
  local s=0 p
  for p in $(pgrep -f "^postgres: .* $DB " || true); do s=$((s + $(proc_ticks "$p"))); done
  echo "$s"
}
TICK=$(getconf CLK_TCK)

# run_wrk BACKEND SCENARIO CONCURRENCY SCRIPT URL
run_wrk() {
  local backend=$1 name=$2 c=$3 script=$4 url=$5
  local f="$OUT/wrk-$backend-$name-c$c.txt"
  wrk -t2 -c"$c" -d"${WARMUP}s" --timeout 10s -s "$BENCH_DIR/wrk/$script" "$url" >/dev/null 2>&1 || true
  local s0 p0 s1 p1 load
  s0=$(proc_ticks "$SERVER_PID") p0=$(pg_ticks)
  wrk -t2 -c"$c" -d"${DUR}s" --latency --timeout 10s -s "$BENCH_DIR/wrk/$script" "$url" >"$f" 2>&1
  s1=$(proc_ticks "$SERVER_PID") p1=$(pg_ticks)
  load=$(cut -d' ' -f1 /proc/loadavg)
  local r
  r=$(sed -n 's/^BENCH_RESULT //p' "$f")
  [[ -n $r ]] || { cat "$f" >&2; echo "wrk gave no result" >&2; exit 1; }
  jq -cn --arg b "$backend" --arg s "$name" --argjson c "$c" --argjson r "$r" \
    --argjson st "$((s1 - s0))" --argjson pt "$((p1 - p0))" --argjson tick "$TICK" --argjson load "$load" \
    '{backend:$b, scenario:$s, c:$c} + $r
     + {server_cpu_ms_per_req: ($st / $tick * 1000 / ([$r.requests, 1] | max)),
        db_cpu_ms_per_req: (if $b == "pg" and $pt >= 0 then ($pt / $tick * 1000 / ([$r.requests, 1] | max)) else null end),
        loadavg_1m: $load}' >>"$OUT/wrk.jsonl"
  jq -r '"  \(.backend) \(.scenario) c=\(.c): \(.rps) req/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, non-2xx \(.errors_status), socket errors \(.errors_connect + .errors_read + .errors_write + .errors_timeout), CPU/req server \(.server_cpu_ms_per_req * 1000 | round / 1000) ms db \((.db_cpu_ms_per_req // 0) * 1000 | round / 1000) ms, load \(.loadavg_1m)"' \
    <<<"$(tail -1 "$OUT/wrk.jsonl")" | tee -a "$OUT/run.log"
}

# read_scenarios BACKEND SEED_JSON: the read-only scenarios at c=16 and c=64
read_scenarios() {
  local backend=$1 seed=$2
  export BENCH_TOKEN BENCH_IDS BENCH_PHONES
  BENCH_TOKEN=$(jq -r '.tenants[0].admin_token' "$seed")
  BENCH_IDS=$OUT/ids-$backend.txt
  BENCH_PHONES=$OUT/phones-$backend.txt
  jq -r '.tenants[0].sample_lead_ids[]' "$seed" >"$BENCH_IDS"
  jq -r '.tenants[0].sample_phones[]' "$seed" >"$BENCH_PHONES"
  local owner prefix code
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BENCH_TOKEN" "$BASE/api/leads?limit=1")
  [[ $code == 200 ]] || { echo "GET /api/leads with the seeded token answered $code" >&2; exit 1; }
  owner=$(jq -r '.tenants[0].qualified_owner_id' "$seed")
  prefix=$(jq -r '.tenants[0].company_prefix' "$seed")
  for c in 16 64; do
    run_wrk "$backend" get_by_id "$c" get_by_id.lua "$BASE"
    run_wrk "$backend" list "$c" get.lua "$BASE/api/leads"
    run_wrk "$backend" filter "$c" get.lua "$BASE/api/leads?status=qualified&owner_id=$owner&sort=-score"
    run_wrk "$backend" search_company "$c" get.lua "$BASE/api/leads?q=$prefix"
    run_wrk "$backend" search_phone "$c" search_phone.lua "$BASE"
  done
}

# sales_scenarios BACKEND SEED_JSON SALES_JSON: pipeline board, card move, opportunity list by
# owner and stage (issue 4); the seller's agenda today/overdue and a 5,000-entry lead timeline
# (issue 5); at c=16 and c=64
sales_scenarios() {
  local backend=$1 seed=$2 sales=$3
  local admin pipeline owner stage lead agenda
  admin=$(jq -r '.tenants[0].admin_token' "$seed")
  agenda=$(jq -r '.agenda_user_token' "$sales")
  pipeline=$(jq -r '.pipeline_id' "$sales")
  owner=$(jq -r '.filter_owner_id' "$sales")
  stage=$(jq -r '.filter_stage_id' "$sales")
  lead=$(jq -r '.timeline_lead_id' "$sales")
  export BENCH_TOKEN BENCH_IDS BENCH_STAGES
  BENCH_IDS=$OUT/move-ids-$backend.txt
  BENCH_STAGES=$OUT/move-stages-$backend.txt
  jq -r '.move_sample_ids[]' "$sales" >"$BENCH_IDS"
  jq -r '.stages[] | select(.kind == "open") | .id' "$sales" >"$BENCH_STAGES"
  for c in 16 64; do
    BENCH_TOKEN=$admin
    run_wrk "$backend" board "$c" get.lua "$BASE/api/pipelines/$pipeline/board"
    run_wrk "$backend" opp_owner_stage "$c" get.lua "$BASE/api/pipelines/opportunities?owner_id=$owner&stage_id=$stage"
    run_wrk "$backend" move "$c" move.lua "$BASE"
    run_wrk "$backend" timeline "$c" get.lua "$BASE/api/leads/$lead/timeline"
    BENCH_TOKEN=$agenda
    run_wrk "$backend" agenda_today "$c" get.lua "$BASE/api/tasks?assignee_id=me&due=today"
    run_wrk "$backend" agenda_overdue "$c" get.lua "$BASE/api/tasks?assignee_id=me&due=overdue"
  done
}

# export_scenario BACKEND: GET /api/leads/export of the big tenant; time, bytes, rows, peak RSS
export_scenario() {
  local backend=$1
  log "$backend: export"
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BENCH_TOKEN" "$BASE/api/leads/export?limit=1" || true)
  if [[ $code != 200 ]]; then
    echo "  export: endpoint answered $code, skipped" | tee -a "$OUT/run.log"
    return 0
  fi
  # Reset the peak RSS of the server (Linux ≥ 4.0), then sample VmRSS while the export runs.
  echo 5 >"/proc/$SERVER_PID/clear_refs" 2>/dev/null || true
  local base_rss
  base_rss=$(awk '/VmRSS/{print $2}' "/proc/$SERVER_PID/status")
  (
    while kill -0 "$SERVER_PID" 2>/dev/null; do
      awk '/VmRSS/{print $2}' "/proc/$SERVER_PID/status" 2>/dev/null
      sleep 0.05
    done
  ) >"$OUT/export-rss-$backend.txt" &
  local sampler=$!
  local w
  w=$(curl -s -H "Authorization: Bearer $BENCH_TOKEN" "$BASE/api/leads/export" \
    -o "$OUT/export-$backend.csv" -w '%{http_code} %{size_download} %{time_total} %{time_starttransfer}')
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  local hwm max_sampled rows
  hwm=$(awk '/VmHWM/{print $2}' "/proc/$SERVER_PID/status")
  max_sampled=$(sort -n "$OUT/export-rss-$backend.txt" | tail -1)
  rows=$(($(wc -l <"$OUT/export-$backend.csv") - 1))
  read -r http bytes secs ttfb <<<"$w"
  jq -cn --arg b "$backend" --argjson http "$http" --argjson bytes "$bytes" --argjson secs "$secs" \
    --argjson ttfb "$ttfb" --argjson rows "$rows" --argjson base "$base_rss" --argjson hwm "$hwm" \
    --argjson sampled "${max_sampled:-0}" \
    '{backend:$b, http:$http, rows:$rows, bytes:$bytes, seconds:$secs, ttfb_s:$ttfb,
      rows_per_s:($rows/$secs), rss_before_kb:$base, peak_rss_kb:$hwm, max_sampled_rss_kb:$sampled}' \
    | tee -a "$OUT/export.jsonl"
  rm -f "$OUT/export-$backend.csv"
}

# import_scenario BACKEND ROWS: multipart upload, then poll until the import ends
import_scenario() {
  local backend=$1 rows=$2
  log "$backend: import of $rows rows"
  local csv=$OUT/import-$rows.csv
  "$BENCH_DIR/gen_import_csv.sh" "$rows" "$csv"
  local t0 resp id status
  t0=$(date +%s.%N)
  resp=$(curl -s -w '\n%{http_code}' -H "Authorization: Bearer $BENCH_TOKEN" \
    -F "file=@$csv;type=text/csv" -F dedupe=skip "$BASE/api/leads/import")
  if [[ $(tail -1 <<<"$resp") != 202 ]]; then
    echo "  import: endpoint answered $(tail -1 <<<"$resp"), skipped: $(head -c 300 <<<"$resp")" | tee -a "$OUT/run.log"
    return 0
  fi
  id=$(head -n -1 <<<"$resp" | jq -r .id)
  local t_upload body
  t_upload=$(date +%s.%N)
  while :; do
    body=$(curl -s -H "Authorization: Bearer $BENCH_TOKEN" "$BASE/api/leads/imports/$id")
    status=$(jq -r .status <<<"$body")
    [[ $status == completed || $status == failed ]] && break
    sleep 0.2
  done
  local t1
  t1=$(date +%s.%N)
  jq -c --arg b "$backend" --argjson t0 "$t0" --argjson tu "$t_upload" --argjson t1 "$t1" \
    '{backend:$b, status, rows_total, created, updated, skipped, error_count, failure,
      seconds:($t1-$t0), upload_seconds:($tu-$t0), rows_per_s:(.rows_done/($t1-$t0))}' <<<"$body" \
    | tee -a "$OUT/import.jsonl"
  rm -f "$csv"
}

# pgbench_scenarios SEED_JSON: the same SQL as the API, database only
pgbench_scenarios() {
  local seed=$1 url=$PG_URL/$DB
  local tenant owner prefix upper nids nphones
  tenant=$(jq -r '.tenants[0].id' "$seed")
  owner=$(jq -r '.tenants[0].qualified_owner_id' "$seed")
  prefix=$(jq -r '.tenants[0].company_prefix' "$seed")
  # The app's prefix range: [prefix, prefix with its last character + 1)
  local last next
  last=${prefix: -1}
  next=$(printf "\\$(printf '%03o' $(($(printf '%d' "'$last") + 1)))")
  upper=${prefix%?}$next
  psql "$url" -q -v ON_ERROR_STOP=1 <<SQL
DROP TABLE IF EXISTS bench_ids; DROP TABLE IF EXISTS bench_phones;
CREATE TABLE bench_ids (n int PRIMARY KEY, id uuid NOT NULL);
CREATE TABLE bench_phones (n int PRIMARY KEY, term text COLLATE "C" NOT NULL, upper_term text COLLATE "C" NOT NULL);
SQL
  awk '{print NR "\t" $0}' "$OUT/ids-pg.txt" | psql "$url" -qc "\\copy bench_ids FROM STDIN"
  # q=<phone digits>: one token, the prefix range [digits, digits with last digit + 1)
  awk '{u = substr($0, 1, length($0) - 1) sprintf("%c", substr($0, length($0)) + 49); print NR "\t" $0 "\t" u}' \
    "$OUT/phones-pg.txt" | psql "$url" -qc "\\copy bench_phones FROM STDIN"
  psql "$url" -qc "ANALYZE bench_ids; ANALYZE bench_phones"
  nids=$(wc -l <"$OUT/ids-pg.txt")
  nphones=$(wc -l <"$OUT/phones-pg.txt")
  for c in 16 64; do
    for s in get_by_id list filter search_company search_phone; do
      local f="$OUT/pgbench-$s-c$c"
      mkdir -p "$f"
      (cd "$f" && pgbench -n -M prepared -c "$c" -j 2 -T "$WARMUP" -f "$BENCH_DIR/pgbench/$s.sql" \
        -D tenant="$tenant" -D owner="$owner" -D prefix="$prefix" -D upper="$upper" \
        -D nids="$nids" -D nphones="$nphones" -D lim=51 -D one=1 -D status=qualified "$url" >/dev/null 2>&1 || true)
      (cd "$f" && pgbench -n -M prepared -c "$c" -j 2 -T "$DUR" -l -f "$BENCH_DIR/pgbench/$s.sql" \
        -D tenant="$tenant" -D owner="$owner" -D prefix="$prefix" -D upper="$upper" \
        -D nids="$nids" -D nphones="$nphones" -D lim=51 -D one=1 -D status=qualified "$url" >out.txt 2>&1) || { cat "$f/out.txt" >&2; exit 1; }
      local tps p50 p99
      tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$f/out.txt" | head -1)
      # per-transaction log: client tx_no latency_us script epoch us
      read -r p50 p99 < <(cat "$f"/pgbench_log.* | awk '{print $3}' | sort -n |
        awk '{a[NR]=$1} END {printf "%.3f %.3f\n", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}')
      rm -f "$f"/pgbench_log.*
      jq -cn --arg s "$s" --argjson c "$c" --argjson tps "$tps" --argjson p50 "$p50" --argjson p99 "$p99" \
        '{scenario:$s, c:$c, tps:$tps, p50_ms:$p50, p99_ms:$p99}' | tee -a "$OUT/pgbench.jsonl"
    done
  done
  psql "$url" -qc "DROP TABLE bench_ids; DROP TABLE bench_phones"
}

# ------------------------------------------------------------------------------------------------
if ((RUN_PG)); then
  log "PostgreSQL: database $DB"
  psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null
  psql "$PG_URL/postgres" -qc "CREATE DATABASE $DB" >/dev/null
  log "seeding $LEADS + $EXTRA × $PER_EXTRA leads"
  DATABASE_URL=$PG_URL/$DB "$BIN" bench seed --leads "$LEADS" --tenants-extra "$EXTRA" \
    --leads-per-extra "$PER_EXTRA" --out "$OUT/seed-pg.json" 2>&1 | tee "$OUT/seed-pg.log"
  psql "$PG_URL/$DB" -Atc "select pg_size_pretty(pg_database_size('$DB'))" | sed 's/^/database size: /' | tee -a "$OUT/run.log"
  start_server "$PG_URL/$DB" pg
  log "PostgreSQL: read scenarios"
  read_scenarios pg "$OUT/seed-pg.json"
  stop_server
  # pgbench on the same data as the read scenarios (before the write scenarios add leads), with
  # the server stopped so its pool does not count against max_connections.
  log "PostgreSQL: pgbench"
  pgbench_scenarios "$OUT/seed-pg.json"
  log "PostgreSQL: seeding opportunities, tasks and a long timeline in the big tenant"
  DATABASE_URL=$PG_URL/$DB "$BIN" bench seed-sales --open "$OPPS" --closed "$CLOSED" \
    --tasks "$TASKS" --agenda-tasks "$AGENDA" --timeline "$TIMELINE" \
    --out "$OUT/sales-pg.json" 2>&1 | tee "$OUT/sales-pg.log"
  start_server "$PG_URL/$DB" pg-writes
  log "PostgreSQL: pipeline, agenda and timeline scenarios"
  sales_scenarios pg "$OUT/seed-pg.json" "$OUT/sales-pg.json"
  BENCH_TOKEN=$(jq -r '.tenants[0].admin_token' "$OUT/seed-pg.json")
  export_scenario pg
  log "PostgreSQL: POST /api/leads"
  for c in 16 64; do run_wrk pg create "$c" create.lua "$BASE"; done
  import_scenario pg "$IMPORT_ROWS"
  stop_server
fi

if ((RUN_SQLITE)); then
  log "SQLite: seeding $SQ_LEADS + $SQ_EXTRA × $SQ_PER_EXTRA leads"
  mkdir -p "$(dirname "$SQLITE_FILE")"
  rm -f "$SQLITE_FILE"*
  DATABASE_URL="sqlite://$SQLITE_FILE" "$BIN" bench seed --leads "$SQ_LEADS" --tenants-extra "$SQ_EXTRA" \
    --leads-per-extra "$SQ_PER_EXTRA" --out "$OUT/seed-sqlite.json" 2>&1 | tee "$OUT/seed-sqlite.log"
  start_server "sqlite://$SQLITE_FILE" sqlite
  log "SQLite: read scenarios"
  read_scenarios sqlite "$OUT/seed-sqlite.json"
  stop_server
fi

log "summary"
{
  echo "| backend | scenario | c | req/s | p50 ms | p99 ms | non-2xx | server CPU ms/req | DB CPU ms/req | load |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  jq -r '"| \(.backend) | \(.scenario) | \(.c) | \(.rps|round) | \(.p50_ms*100|round/100) | \(.p99_ms*100|round/100) | \(.errors_status) | \(.server_cpu_ms_per_req*1000|round/1000) | \(if .db_cpu_ms_per_req then (.db_cpu_ms_per_req*1000|round/1000) else "-" end) | \(.loadavg_1m) |"' "$OUT/wrk.jsonl"
  if [[ -f $OUT/pgbench.jsonl ]]; then
    echo
    echo "| pgbench scenario | c | tps | p50 ms | p99 ms | API req/s ÷ pgbench tps |"
    echo "|---|---:|---:|---:|---:|---:|"
    while read -r line; do
      s=$(jq -r .scenario <<<"$line") c=$(jq -r .c <<<"$line")
      api=$(jq -r --arg s "$s" --argjson c "$c" 'select(.backend=="pg" and .scenario==$s and .c==$c) | .rps' "$OUT/wrk.jsonl")
      jq -r --argjson api "${api:-0}" '"| \(.scenario) | \(.c) | \(.tps|round) | \(.p50_ms) | \(.p99_ms) | \(if .tps > 0 then ($api / .tps * 100 | round / 100) else "-" end) |"' <<<"$line"
    done <"$OUT/pgbench.jsonl"
  fi
  for f in export import; do
    if [[ -f $OUT/$f.jsonl ]]; then
      echo
      echo "$f:"
      sed 's/^/    /' "$OUT/$f.jsonl"
    fi
  done
} | tee "$OUT/summary.md"
echo
echo "results in $OUT"
