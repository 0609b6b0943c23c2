#!/usr/bin/env bash
# The cost of row-level security (issue 11, docs/tenancy.md): one PostgreSQL database seeded with a
# big tenant (100k leads by default) and one other tenant, then GET one lead and the first list
# page with wrk, with the server's pool
#   - "off": JTCRM_DB_RLS=off (benchmark-only switch: the pool stays on the connecting role, the
#     superuser, which bypasses RLS, and no scope is written on checkout: the cost before RLS), and
#   - "on":  the default (SET ROLE jtcrm_app; set_config of the scope on every checkout; the
#     tenant policy evaluated by every query),
# alternating off/on ROUNDS times in one run so both see the same machine. Results in
# bench/out/rls-<timestamp>/ (wrk.jsonl, summary.md); copy summary.md into bench/RESULTS.md.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/rls.sh [--leads N] [--duration S] [--rounds R] [--skip-build] [--pg-url URL] [--port N]
  --leads N      leads of the measured tenant (default 100000); a second tenant gets N/10
  --duration S   seconds per wrk run (default 10; 3 s warm-up before each)
  --rounds R     off/on alternations (default 2)
EOF
}

LEADS=100000 DUR=10 ROUNDS=2 SKIP_BUILD=0 PORT=""
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
while [[ $# -gt 0 ]]; do
  case $1 in
    --leads) LEADS=$2; shift ;;
    --duration) DUR=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --skip-build) SKIP_BUILD=1 ;;
    --pg-url) PG_URL=${2%/}; shift ;;
    --port) PORT=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
export BENCH_DIR
for t in wrk jq curl psql; do command -v $t >/dev/null || { echo "missing tool: $t" >&2; exit 1; }; done
OUT=$BENCH_DIR/out/rls-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
DB=jtcrm_bench_rls
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release/jtcrm
if ((!SKIP_BUILD)); then (cd "$ROOT" && cargo build --release -p jtcrm-cli); fi
[[ -x $BIN ]] || { echo "no binary at $BIN" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$OUT/run.log" >&2; }

JWT_SECRET_KEY=$(head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 64)
export JWT_SECRET_KEY JWT_ACCESS_TOKEN_EXPIRES=24 LOG_LEVEL=${LOG_LEVEL:-warn}
export JTCRM_DATA_DIR=$OUT/data
unset JTCRM_SUPERADMIN_EMAIL JTCRM_SUPERADMIN_PASSWORD REDIS_URL JTCRM_DB_RLS
mkdir -p "$JTCRM_DATA_DIR"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [[ -z $PORT ]]; then
  for p in $(seq 5277 5377); do if ! port_busy "$p"; then PORT=$p; break; fi; done
fi
BASE="http://127.0.0.1:$PORT"
SERVER_PID=""
stop_server() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() {
  stop_server
  psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  rm -rf "$JTCRM_DATA_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_server() { # rls=on|off
  JTCRM_DB_RLS=$1 DATABASE_URL=$PG_URL/$DB "$BIN" serve --bind 127.0.0.1 --port "$PORT" \
    >"$OUT/server-$1.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 120); do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/server-$1.log" >&2; exit 1; }
    curl -fs "$BASE/health" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "server did not become healthy" >&2; exit 1
}

{
  echo "date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ) host=$(hostname) cpus=$(nproc)"
  echo "git=$(cd "$ROOT" && git rev-parse --short HEAD) postgres=$(psql "$PG_URL/postgres" -Atc 'show server_version')"
  echo "leads=$LEADS other_tenant=$((LEADS / 10)) duration=${DUR}s rounds=$ROUNDS wrk -t2"
} | tee "$OUT/env.txt"

log "database $DB: seeding $LEADS leads (+ $((LEADS / 10)) in another tenant)"
psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null
psql "$PG_URL/postgres" -qc "CREATE DATABASE $DB" >/dev/null
DATABASE_URL=$PG_URL/$DB "$BIN" bench seed --leads "$LEADS" --tenants-extra 1 \
  --leads-per-extra "$((LEADS / 10))" --out "$OUT/seed.json" >"$OUT/seed.log" 2>&1
export BENCH_TOKEN BENCH_IDS=$OUT/ids.txt
BENCH_TOKEN=$(jq -r '.tenants[0].admin_token' "$OUT/seed.json")
jq -r '.tenants[0].sample_lead_ids[]' "$OUT/seed.json" >"$BENCH_IDS"

run_wrk() { # mode round scenario c script url
  local mode=$1 round=$2 name=$3 c=$4 script=$5 url=$6 f
  f="$OUT/wrk-$mode-$round-$name-c$c.txt"
  wrk -t2 -c"$c" -d3s --timeout 10s -s "$BENCH_DIR/wrk/$script" "$url" >/dev/null 2>&1 || true
  wrk -t2 -c"$c" -d"${DUR}s" --latency --timeout 10s -s "$BENCH_DIR/wrk/$script" "$url" >"$f" 2>&1
  local r
  r=$(sed -n 's/^BENCH_RESULT //p' "$f")
  [[ -n $r ]] || { cat "$f" >&2; exit 1; }
  jq -cn --arg m "$mode" --argjson round "$round" --arg s "$name" --argjson c "$c" --argjson r "$r" \
    '{rls:$m, round:$round, scenario:$s, c:$c} + $r' | tee -a "$OUT/wrk.jsonl"
}

for round in $(seq 1 "$ROUNDS"); do
  for mode in off on; do
    log "round $round, RLS $mode"
    start_server "$mode"
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BENCH_TOKEN" "$BASE/api/leads?limit=1")
    [[ $code == 200 ]] || { echo "GET /api/leads answered $code" >&2; exit 1; }
    for c in 16 64; do
      run_wrk "$mode" "$round" get_by_id "$c" get_by_id.lua "$BASE"
      run_wrk "$mode" "$round" list "$c" get.lua "$BASE/api/leads"
    done
    stop_server
  done
done

# Summary: per scenario and concurrency, the mean over rounds of req/s, p50 and p99.
jq -rs '
  group_by([.scenario, .c]) | map(
    . as $g |
    def m(mode; k): ([$g[] | select(.rls == mode) | .[k]] | add / length * 10 | round / 10);
    "| \($g[0].scenario) | \($g[0].c) | \(m("off"; "rps")) | \(m("on"; "rps")) | \(((m("on"; "rps") / m("off"; "rps") - 1) * 1000 | round) / 10) % | \(m("off"; "p50_ms")) / \(m("off"; "p99_ms")) | \(m("on"; "p50_ms")) / \(m("on"; "p99_ms")) | \([$g[] | .errors_status] | add) |"
  ) | (["| scenario | c | req/s RLS off | req/s RLS on | change | p50 / p99 ms off | p50 / p99 ms on | non-2xx |",
        "|---|---|---|---|---|---|---|---|"] + .) | .[]' "$OUT/wrk.jsonl" | tee "$OUT/summary.md"
log "done: $OUT"
