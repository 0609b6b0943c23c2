#!/usr/bin/env bash
# Re-runs chosen read scenarios against a database kept by `bench/run.sh --keep-db` (after a code
# change, without seeding again): starts `jtcrm serve` on it with the run's JWT secret, runs wrk at
# c=16 and c=64, prints the same line per scenario as run.sh and appends to OUT/rerun.jsonl.
#
#   bench/rerun.sh bench/out/<run> search_company list         # PostgreSQL database jtcrm_bench
#   bench/rerun.sh --sqlite bench/out/<run> search_company
#
# BENCH_DB names the PostgreSQL database (default jtcrm_bench; a --quick run keeps jtcrm_bench_quick).
# Scenarios: get_by_id list filter search_company search_phone board opp_owner_stage timeline
# agenda_today agenda_overdue (the last five need the run's sales-pg.json).
set -euo pipefail

BACKEND=pg
if [[ ${1:-} == --sqlite ]]; then BACKEND=sqlite; shift; fi
OUT=$(cd "${1:?usage: bench/rerun.sh [--sqlite] RUN_DIR SCENARIO...}" && pwd)
shift
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
export BENCH_DIR
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/jtcrm
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
DUR=${DUR:-20} WARMUP=${WARMUP:-5} PORT=${BENCH_PORT:-5087}
JWT_SECRET_KEY=$(cat "$OUT/jwt_secret")
export JWT_SECRET_KEY JTCRM_DATA_DIR=$OUT/data LOG_LEVEL=${LOG_LEVEL:-warn} JWT_ACCESS_TOKEN_EXPIRES=24
if [[ $BACKEND == pg ]]; then
  DB_URL=$PG_URL/${BENCH_DB:-jtcrm_bench} SEED=$OUT/seed-pg.json
else
  DB_URL=sqlite://$OUT/sqlite/bench.db SEED=$OUT/seed-sqlite.json
fi
SALES=$OUT/sales-$BACKEND.json

DATABASE_URL=$DB_URL "$BIN" serve --bind 127.0.0.1 --port "$PORT" >"$OUT/server-rerun.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.5
done
BASE=http://127.0.0.1:$PORT

export BENCH_TOKEN BENCH_IDS BENCH_PHONES BENCH_STAGES
ADMIN=$(jq -r '.tenants[0].admin_token' "$SEED")
BENCH_IDS=$OUT/ids-$BACKEND.txt BENCH_PHONES=$OUT/phones-$BACKEND.txt
[[ -f $BENCH_IDS ]] || jq -r '.tenants[0].sample_lead_ids[]' "$SEED" >"$BENCH_IDS"
[[ -f $BENCH_PHONES ]] || jq -r '.tenants[0].sample_phones[]' "$SEED" >"$BENCH_PHONES"
OWNER=$(jq -r '.tenants[0].qualified_owner_id' "$SEED")
PREFIX=$(jq -r '.tenants[0].company_prefix' "$SEED")

run() { # name c script url
  local f=$OUT/rerun-$BACKEND-$1-c$2.txt
  wrk -t2 -c"$2" -d"${WARMUP}s" --timeout 10s -s "$BENCH_DIR/wrk/$3" "$4" >/dev/null 2>&1 || true
  wrk -t2 -c"$2" -d"${DUR}s" --latency --timeout 10s -s "$BENCH_DIR/wrk/$3" "$4" >"$f" 2>&1
  local r
  r=$(sed -n 's/^BENCH_RESULT //p' "$f")
  jq -cn --arg b "$BACKEND" --arg s "$1" --argjson c "$2" --argjson r "$r" '{backend:$b, scenario:$s, c:$c} + $r' \
    | tee -a "$OUT/rerun.jsonl" | jq -r '"  \(.backend) \(.scenario) c=\(.c): \(.rps) req/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, non-2xx \(.errors_status)"'
}

for s in "$@"; do
  for c in 16 64; do
    BENCH_TOKEN=$ADMIN
    case $s in
      get_by_id) run "$s" "$c" get_by_id.lua "$BASE" ;;
      list) run "$s" "$c" get.lua "$BASE/api/leads" ;;
      filter) run "$s" "$c" get.lua "$BASE/api/leads?status=qualified&owner_id=$OWNER&sort=-score" ;;
      search_company) run "$s" "$c" get.lua "$BASE/api/leads?q=$PREFIX" ;;
      search_phone) run "$s" "$c" search_phone.lua "$BASE" ;;
      board) run "$s" "$c" get.lua "$BASE/api/pipelines/$(jq -r .pipeline_id "$SALES")/board" ;;
      opp_owner_stage)
        run "$s" "$c" get.lua "$BASE/api/pipelines/opportunities?owner_id=$(jq -r .filter_owner_id "$SALES")&stage_id=$(jq -r .filter_stage_id "$SALES")" ;;
      timeline) run "$s" "$c" get.lua "$BASE/api/leads/$(jq -r .timeline_lead_id "$SALES")/timeline" ;;
      agenda_today | agenda_overdue)
        BENCH_TOKEN=$(jq -r .agenda_user_token "$SALES")
        run "$s" "$c" get.lua "$BASE/api/tasks?assignee_id=me&due=${s#agenda_}" ;;
      *) echo "unknown scenario: $s" >&2; exit 2 ;;
    esac
  done
done
