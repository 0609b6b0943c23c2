//! The telecom templates every new tenant starts with (and the fallback when a tenant has none).

pub const PROPOSAL_NAME: &str = "Proposta comercial — telecom";
pub const CONTRACT_NAME: &str = "Contrato de prestação de serviços — telecom";

pub const PROPOSAL: &str = r#"# Proposta Comercial {{ proposal.number }}
{{ company.name }}

## Cliente
{{ customer.company or customer.name }}
{% if customer.cnpj %}CNPJ: {{ customer.cnpj | cnpj }}
{% endif %}A/C: {{ customer.name }}
{% if customer.address %}Endereço: {{ customer.address }}
{% endif %}{% if customer.email %}E-mail: {{ customer.email }}
{% endif %}
## Objeto
Fornecimento dos serviços de telecomunicações descritos abaixo (internet dedicada, banda larga, telefonia VoIP e PABX em nuvem, conforme os itens), referentes a "{{ opportunity.title }}".

## Itens
{{ items_table }}

## Investimento
- Mensalidade total: {{ totals.mrr_cents | brl }} ({{ totals.mrr_cents | extenso }})
- Instalação (setup), pagamento único: {{ totals.setup_cents | brl }}
- Prazo de fidelização: {{ opportunity.term_months }} meses
- Valor total do contrato (TCV): {{ totals.tcv_cents | brl }}

## Condições
- Fidelização de {{ opportunity.term_months }} meses. Em caso de cancelamento antecipado, multa proporcional aos meses restantes do período de fidelização.
- SLA: disponibilidade mínima de 99,5% ao mês para links dedicados, suporte 24x7 e reparo em até 4 horas.
- Equipamentos necessários cedidos em comodato durante a vigência do contrato.
- Valores com impostos inclusos. Prazo de instalação de até 30 dias após o aceite, sujeito a viabilidade técnica.
{% if proposal.notes %}
## Observações
{{ proposal.notes }}
{% endif %}
## Validade
Esta proposta é válida até {{ proposal.valid_until | data }}.

Atenciosamente,
{{ seller.name }}{% if seller.email %} — {{ seller.email }}{% endif %}
{{ company.name }}
"#;

pub const CONTRACT: &str = r#"# Contrato de Prestação de Serviços de Telecomunicações
{{ company.name }}

## Partes
CONTRATADA: {{ company.name }}.
CONTRATANTE: {{ customer.company or customer.name }}{% if customer.cnpj %}, CNPJ {{ customer.cnpj | cnpj }}{% endif %}{% if customer.address %}, com endereço em {{ customer.address }}{% endif %}, neste ato representada por {{ customer.name }}.

## Cláusula 1 — Objeto
Prestação dos serviços de telecomunicações (internet dedicada, banda larga, telefonia VoIP e/ou PABX em nuvem) descritos abaixo.

{{ items_table }}

## Cláusula 2 — Preço
- Mensalidade: {{ totals.mrr_cents | brl }} ({{ totals.mrr_cents | extenso }}).
- Instalação (setup): {{ totals.setup_cents | brl }} ({{ totals.setup_cents | extenso }}), pagamento único.
- Valor total do contrato: {{ totals.tcv_cents | brl }} ({{ totals.tcv_cents | extenso }}).

## Cláusula 3 — Prazo e fidelização
O contrato vigora por {{ contract.term_months }} meses a partir da ativação dos serviços (fidelização de {{ contract.term_months }} meses).

## Cláusula 4 — Rescisão antecipada
{{ contract.early_termination_rule }}

## Cláusula 5 — Nível de serviço (SLA)
{{ contract.sla }}

## Cláusula 6 — Equipamentos em comodato
{% for e in contract.equipment %}- {{ e.quantity }} × {{ e.name }}
{% else %}Os equipamentos necessários à prestação dos serviços são cedidos em comodato e devem ser devolvidos ao término do contrato.
{% endfor %}
## Cláusula 7 — Foro
Fica eleito o foro da comarca do domicílio do CONTRATANTE.

{{ today }}

{{ company.name }}
{{ customer.company or customer.name }}
"#;
