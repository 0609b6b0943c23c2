-- POST /api/leads with unique data per request (e-mail from run/thread/counter; phone in the 95
-- range the seeder never uses), so the duplicate check runs and finds nothing. Env: BENCH_TOKEN,
-- BENCH_DIR. No company starts with the search scenario's prefix ("fibra"), so the write scenarios
-- leave its match count as seeded.
dofile(os.getenv("BENCH_DIR") .. "/wrk/common.lua")

wrk.method = "POST"
wrk.path = "/api/leads"
wrk.headers["Content-Type"] = "application/json"

local ddds = {11, 11, 11, 21, 21, 31, 41, 51, 61, 71, 81, 85, 19, 47, 62, 92}
local names = {"João Conceição", "Maria Antônia Araújo", "Sebastião Guimarães", "Lúcia Brandão",
  "Otávio Simões", "Íris Falcão", "Cláudia Magalhães", "Rômulo Assunção"}
local companies = {"Conecta Telecom Ltda", "Vértice Soluções ME", "Órbita Internet", "Padaria São João",
  "Clínica Saúde & Vida", "Sinal Norte Telecom", "Metalúrgica Paulista S.A.", "Escola Aurora"}
local sources = {"website", "chatbot", "whatsapp", "inbound_call", "referral"}
local run, n

function init(args)
  seed_random()
  run = string.format("%x%x", os.time(), math.random(0xfffff))
  n = 0
end

function request()
  n = n + 1
  local k = math.random(#names)
  local body = string.format(
    '{"name":"%s %d","email":"bench.%s.t%d.%d@exemplo-bench.com.br","phone":"(%d) 95%03d-%04d",' ..
    '"company":"%s","position":"Gerente de TI","source":"%s","tags":["bench","fibra"],' ..
    '"city":"São Paulo","state":"SP","cep":"01310-100"}',
    names[k], n, run, tid or 0, n, ddds[math.random(#ddds)], math.random(0, 999),
    math.random(0, 9999), companies[math.random(#companies)], sources[math.random(#sources)])
  return wrk.format(nil, nil, nil, body)
end
