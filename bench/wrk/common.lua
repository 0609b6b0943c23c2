-- Shared by every wrk script of the leads benchmark: auth header, per-thread ids, file helpers and
-- a machine-readable summary line (BENCH_RESULT {...}) parsed by bench/run.sh.
--
-- Environment: BENCH_TOKEN (admin access token of the tenant under test).

local token = os.getenv("BENCH_TOKEN")
if token == nil or token == "" then
  error("BENCH_TOKEN is not set")
end
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Accept"] = "application/json"

local thread_count = 0
function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
end

-- Lines of a file (empty lines skipped).
function read_lines(path)
  local t = {}
  local f = io.open(path, "r")
  if f == nil then
    error("cannot open " .. tostring(path))
  end
  for line in f:lines() do
    if #line > 0 then
      t[#t + 1] = line
    end
  end
  f:close()
  if #t == 0 then
    error(path .. " is empty")
  end
  return t
end

-- Seeds math.random differently per thread and per run (call from init).
function seed_random()
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_s":%.3f,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,' ..
    '"p99_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000,
    e.connect, e.read, e.write, e.status, e.timeout))
end
