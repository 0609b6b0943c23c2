-- GET /api/leads?q=<phone digits>, rotating over real phones (national digits, one per line in
-- BENCH_PHONES); a third of them typed with the usual mask. Env: BENCH_TOKEN, BENCH_DIR, BENCH_PHONES.
dofile(os.getenv("BENCH_DIR") .. "/wrk/common.lua")

local phones, i

function init(args)
  seed_random()
  phones = read_lines(os.getenv("BENCH_PHONES"))
  i = math.random(#phones)
end

function request()
  i = i % #phones + 1
  local p = phones[i]
  local q = p
  if i % 3 == 0 then
    -- "(11) 98765-4321" url-encoded
    q = "%28" .. p:sub(1, 2) .. "%29%20" .. p:sub(3, #p - 4) .. "-" .. p:sub(#p - 3)
  end
  return wrk.format("GET", "/api/leads?q=" .. q)
end
