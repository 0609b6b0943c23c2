-- GET of the URL given to wrk (list, filter and search scenarios). Env: BENCH_TOKEN, BENCH_DIR.
dofile(os.getenv("BENCH_DIR") .. "/wrk/common.lua")
