-- POST /api/pipelines/opportunities/{id}/move: a random open card (one per line in BENCH_IDS) to a
-- random open stage (BENCH_STAGES), to the top of the column. Env: BENCH_TOKEN, BENCH_DIR,
-- BENCH_IDS, BENCH_STAGES.
dofile(os.getenv("BENCH_DIR") .. "/wrk/common.lua")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local ids, stages

function init(args)
  seed_random()
  ids = read_lines(os.getenv("BENCH_IDS"))
  stages = read_lines(os.getenv("BENCH_STAGES"))
end

function request()
  local id = ids[math.random(#ids)]
  local stage = stages[math.random(#stages)]
  return wrk.format("POST", "/api/pipelines/opportunities/" .. id .. "/move", nil,
    '{"stage_id":"' .. stage .. '"}')
end
