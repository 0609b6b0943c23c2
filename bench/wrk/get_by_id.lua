-- GET /api/leads/{id}, rotating over real lead ids (one per line in BENCH_IDS), each thread
-- starting at a different random offset. Env: BENCH_TOKEN, BENCH_DIR, BENCH_IDS.
dofile(os.getenv("BENCH_DIR") .. "/wrk/common.lua")

local ids, i

function init(args)
  seed_random()
  ids = read_lines(os.getenv("BENCH_IDS"))
  i = math.random(#ids)
end

function request()
  i = i % #ids + 1
  return wrk.format("GET", "/api/leads/" .. ids[i])
end
