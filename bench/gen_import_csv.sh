#!/usr/bin/env bash
# Writes a pt-BR CSV of N leads for the import scenario (Excel style: `;`, UTF-8 with accents).
# Every row is unique against the seeded data and the POST scenario: e-mails under
# importacao-bench.com.br, phones (99) 95xxx-xxxx (the seeder's mobiles are 9[6-9]…, the POST
# scenario never uses DDD 99), CNPJs of branch 0099. So with dedupe=skip every row is created and
# the dedupe lookups still run. No company starts with "fibra" (the search scenario's prefix).
# Usage: gen_import_csv.sh N OUT.csv
set -euo pipefail
n=${1:?usage: gen_import_csv.sh N OUT.csv}
out=${2:?usage: gen_import_csv.sh N OUT.csv}
LC_ALL=C awk -v n="$n" '
function dv(s, w,   i, sum, r) {
  sum = 0
  for (i = 1; i <= length(s); i++) sum += substr(s, i, 1) * w[i]
  r = sum % 11
  return r < 2 ? 0 : 11 - r
}
BEGIN {
  srand(20261129)
  split("5 4 3 2 9 8 7 6 5 4 3 2", w1, " ")
  split("6 5 4 3 2 9 8 7 6 5 4 3 2", w2, " ")
  nf = split("João José Antônio Francisco Conceição Sebastião Flávio Vinícius Otávio André Maria Ana Márcia Patrícia Letícia Júlia Cláudia Sônia Tânia Ângela Mônica Lúcia Débora Heloísa Íris", first, " ")
  ns = split("Silva Santos Oliveira Souza Gonçalves Araújo Magalhães Brandão Simões Guimarães Falcão Assunção Romão Leão Aragão Ávila Évora Batista Queiroz Peixoto", sur, " ")
  nc = split("Conecta|Vértice|Órbita|Aurora|Horizonte|Cerrado|Planalto|Litoral|Ágil|Ômega|Sinal Norte|Estrela", core, "|")
  nk = split("Telecom|Internet|Soluções|Comércio|Logística|Informática|Construções|Farmácia|Clínica|Transportes|Têxtil|Ótica", sector, "|")
  np = split("Diretor de TI|Gerente de Compras|Sócio|CEO|Analista de TI|Proprietário|Comprador|Gerente Comercial", pos, "|")
  nsrc = split("Site|Indicação|Prospecção ativa|Ligação recebida|WhatsApp|Evento|Parceiro", src, "|")
  nst = split("Novo|Contatado|Qualificado|Desqualificado|Perdido", st, "|")
  ntg = split("fibra|link-dedicado|pme|corporativo|telefonia-ip|renovação", tg, "|")
  ncity = split("São Paulo;SP;01310|Rio de Janeiro;RJ;20010|Belo Horizonte;MG;30110|Curitiba;PR;80010|Porto Alegre;RS;90010|Salvador;BA;40010|Recife;PE;50010|Fortaleza;CE;60010|Brasília;DF;70040|Goiânia;GO;74003|Manaus;AM;69005|Belém;PA;66010", city, "|")
  print "Nome;E-mail;Telefone;Empresa;CNPJ;Cargo;Origem;Status;Tags;CEP;Cidade;UF"
  for (i = 1; i <= n; i++) {
    name = first[int(rand() * nf) + 1] " " sur[int(rand() * ns) + 1]
    email = (rand() < 0.7) ? sprintf("imp%d.%d@importacao-bench.com.br", i, int(rand() * 1000)) : ""
    phone = sprintf("(99) 95%03d-%04d", int(i / 10000) % 1000, i % 10000)
    company = (rand() < 0.7) ? core[int(rand() * nc) + 1] " " sector[int(rand() * nk) + 1] " Ltda" : ""
    cnpj = ""
    if (rand() < 0.3) {
      base = sprintf("%08d0099", i)
      d1 = dv(base, w1); base2 = base d1; d2 = dv(base2, w2)
      c = base2 d2
      cnpj = substr(c, 1, 2) "." substr(c, 3, 3) "." substr(c, 6, 3) "/" substr(c, 9, 4) "-" substr(c, 13, 2)
    }
    p = (company != "" && rand() < 0.6) ? pos[int(rand() * np) + 1] : ""
    s = src[int(rand() * nsrc) + 1]
    t = st[int(rand() * nst) + 1]
    tags = (rand() < 0.5) ? tg[int(rand() * ntg) + 1] : ""
    split(city[int(rand() * ncity) + 1], c3, ";")
    cep = sprintf("%s-%03d", c3[3], int(rand() * 1000))
    if (company ~ /;/) company = "\"" company "\""
    print name ";" email ";" phone ";" company ";" cnpj ";" p ";" s ";" t ";" tags ";" cep ";" c3[1] ";" c3[2]
  }
}' > "$out"
