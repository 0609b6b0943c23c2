//! Templates → documents. A template is minijinja text with pt-BR filters; its output is
//! structured text (one block per line: `# ` title, `## ` section, `- ` bullet, `[[itens]]` the
//! items table, a blank line a paragraph break), which the HTML page and the PDF both lay out, so
//! the customer's page, the PDF and the hash of the acceptance evidence all come from one text.

use chrono::{DateTime, NaiveDate, Utc};
use jtcrm_types::FieldError;
use jtcrm_types::br::{Cnpj, Cpf};
use jtcrm_types::dto::proposals::{ProposalItem, TemplateKind};
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::words;

/// The marker line the `items_table` variable renders to.
pub const ITEMS_MARKER: &str = "[[itens]]";
/// Template size limit (characters).
pub const MAX_TEMPLATE_CHARS: usize = 100_000;
/// Bound on a template's work (minijinja fuel): loops over the items are cheap; a runaway loop is not.
const FUEL: u64 = 2_000_000;

/// Our filters: (name, what it does). Aliases in English for those who prefer them.
pub const FILTERS: &[&str] = &[
    "brl", "money", "cnpj", "cpf", "data", "date", "extenso", "in_words",
];

/// minijinja's built-in filters (the `builtins` feature), accepted at save.
const BUILTIN_FILTERS: &[&str] = &[
    "safe",
    "escape",
    "e",
    "upper",
    "lower",
    "title",
    "capitalize",
    "replace",
    "length",
    "count",
    "dictsort",
    "items",
    "reverse",
    "trim",
    "join",
    "default",
    "d",
    "round",
    "abs",
    "first",
    "last",
    "min",
    "max",
    "sort",
    "list",
    "bool",
    "float",
    "int",
    "batch",
    "slice",
    "indent",
    "select",
    "reject",
    "selectattr",
    "rejectattr",
    "map",
    "unique",
    "groupby",
    "chain",
    "zip",
    "attr",
    "string",
    "sum",
    "pprint",
    "split",
    "lines",
    "format",
    "tojson",
    "urlencode",
    "truncate",
    "wordcount",
    "center",
    "striptags",
    "wordwrap",
];

/// `R$ 1.234,56` from integer cents.
pub fn money(cents: i64) -> String {
    let neg = cents < 0;
    let c = cents.unsigned_abs();
    let int = (c / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(ch);
    }
    format!("{}R$ {grouped},{:02}", if neg { "-" } else { "" }, c % 100)
}

/// `dd/mm/aaaa`.
pub fn date_br(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

fn cents_of(v: &Value) -> Option<i64> {
    if let Ok(n) = i64::try_from(v.clone()) {
        return Some(n);
    }
    v.as_str().and_then(|s| s.trim().parse::<i64>().ok())
}

fn f_money(v: Value) -> String {
    cents_of(&v).map(money).unwrap_or_else(|| v.to_string())
}

fn f_words(v: Value) -> String {
    cents_of(&v)
        .map(words::brl)
        .unwrap_or_else(|| v.to_string())
}

fn f_cnpj(v: Value) -> String {
    let s = v.to_string();
    Cnpj::parse(&s).map(|c| c.masked()).unwrap_or(s)
}

fn f_cpf(v: Value) -> String {
    let s = v.to_string();
    Cpf::parse(&s).map(|c| c.masked()).unwrap_or(s)
}

fn f_date(v: Value) -> String {
    let s = v.to_string();
    if let Ok(d) = NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
        return date_br(d);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
        let local = t.with_timezone(&chrono_tz::America::Sao_Paulo);
        return local.format("%d/%m/%Y").to_string();
    }
    s
}

/// The environment every template renders in: lenient undefined values (a missing value renders
/// empty, never fails when a customer opens the document), no autoescape (the output is text;
/// the HTML page escapes it), bounded work.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(50);
    env.set_keep_trailing_newline(true);
    env.add_filter("brl", f_money);
    env.add_filter("money", f_money);
    env.add_filter("extenso", f_words);
    env.add_filter("in_words", f_words);
    env.add_filter("cnpj", f_cnpj);
    env.add_filter("cpf", f_cpf);
    env.add_filter("data", f_date);
    env.add_filter("date", f_date);
    env
}

// ---------- the data a document is rendered from ----------

#[derive(Debug, Clone, Serialize, Default)]
pub struct Company {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Customer {
    pub name: String,
    pub company: Option<String>,
    pub cnpj: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// "São Paulo/SP, CEP 01310-100", from what the lead has.
    pub address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub cep: Option<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct OpportunityData {
    pub id: String,
    pub title: String,
    pub term_months: i32,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ProposalData {
    pub number: String,
    pub title: String,
    pub valid_until: String,
    pub created_at: String,
    pub revision: i32,
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Totals {
    pub mrr_cents: i64,
    pub setup_cents: i64,
    pub tcv_cents: i64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Seller {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Equipment {
    pub name: String,
    pub quantity: i32,
}

/// Contract terms (contract templates; proposals get sensible defaults from the term).
#[derive(Debug, Clone, Serialize, Default)]
pub struct ContractData {
    /// `CTR-2026-0001` (empty in proposals).
    pub number: String,
    /// `dd/mm/aaaa`, when known.
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    /// The percentage of the remaining monthly fees due on early termination.
    pub early_termination_percent: i32,
    pub term_months: i32,
    /// The early-termination fee rule, in words.
    pub early_termination_rule: String,
    pub sla: String,
    pub equipment: Vec<Equipment>,
}

/// Everything a template sees. `items_table` renders to [`ITEMS_MARKER`].
#[derive(Debug, Clone, Serialize, Default)]
pub struct DocData {
    pub company: Company,
    pub customer: Customer,
    /// Same as `customer` (the spec calls them leads).
    pub lead: Customer,
    pub opportunity: OpportunityData,
    pub proposal: ProposalData,
    pub items: Vec<ProposalItem>,
    pub totals: Totals,
    pub validity: String,
    pub valid_until: String,
    pub seller: Seller,
    pub contract: ContractData,
    pub items_table: &'static str,
    pub today: String,
}

pub const DEFAULT_EARLY_TERMINATION_RULE: &str = "Em caso de rescisão antecipada por iniciativa do \
     CONTRATANTE antes do fim do período de fidelização, será devida multa proporcional ao número \
     de meses restantes, calculada sobre o valor do benefício concedido (isenção de instalação e \
     descontos), limitada a 30% das mensalidades restantes.";
pub const DEFAULT_SLA: &str = "Disponibilidade mensal mínima de 99,5% para links dedicados, com \
     atendimento 24x7 e prazo de reparo de até 4 horas; para banda larga, VoIP e PABX, prazo de \
     reparo de até 24 horas. Descumprimento gera desconto proporcional na mensalidade seguinte.";

/// Sample data: templates are test-rendered with it when saved.
pub fn sample() -> DocData {
    let items = vec![ProposalItem {
        product_id: None,
        name: "Link Dedicado 100 Mbps".into(),
        sku: Some("LD-100".into()),
        quantity: 1,
        monthly_price_cents: 120_000,
        setup_price_cents: 50_000,
        discount_percent: 0.0,
        monthly_total_cents: 120_000,
        setup_total_cents: 50_000,
    }];
    let customer = Customer {
        name: "João da Silva".into(),
        company: Some("FibraNet Telecom".into()),
        cnpj: Some("11.222.333/0001-81".into()),
        email: Some("joao@example.com".into()),
        phone: Some("+5511987654321".into()),
        address: Some("São Paulo/SP, CEP 01310-100".into()),
        city: Some("São Paulo".into()),
        state: Some("SP".into()),
        cep: Some("01310-100".into()),
    };
    DocData {
        company: Company {
            name: "Empresa Exemplo".into(),
        },
        lead: customer.clone(),
        customer,
        opportunity: OpportunityData {
            id: "0".into(),
            title: "Link dedicado".into(),
            term_months: 24,
        },
        proposal: ProposalData {
            number: "PROP-2026-0001".into(),
            title: "Link dedicado".into(),
            valid_until: "2026-12-31".into(),
            created_at: "2026-12-01".into(),
            revision: 1,
            notes: None,
        },
        items,
        totals: Totals {
            mrr_cents: 120_000,
            setup_cents: 50_000,
            tcv_cents: 2_930_000,
        },
        validity: "31/12/2026".into(),
        valid_until: "2026-12-31".into(),
        seller: Seller {
            name: "Maria Vendas".into(),
            email: Some("maria@example.com".into()),
            phone: None,
        },
        contract: ContractData {
            term_months: 24,
            early_termination_rule: DEFAULT_EARLY_TERMINATION_RULE.into(),
            sla: DEFAULT_SLA.into(),
            equipment: vec![Equipment {
                name: "Roteador".into(),
                quantity: 1,
            }],
            number: "CTR-2026-0001".into(),
            start_date: Some("01/01/2027".into()),
            end_date: Some("31/12/2028".into()),
            early_termination_percent: 30,
        },
        items_table: ITEMS_MARKER,
        today: "01/12/2026".into(),
    }
}

// ---------- validation ----------

/// 1-based (line, column) of a byte offset.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// Filter names used in the template's tags (`{{ … | name }}`, `{% filter name %}`), with their
/// byte offsets. String literals are skipped.
fn used_filters(src: &str) -> Vec<(String, usize)> {
    let b = src.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i + 1 < b.len() {
        let open = &b[i..i + 2];
        if open != b"{{" && open != b"{%" {
            i += 1;
            continue;
        }
        let close: &[u8] = if open == b"{{" { b"}}" } else { b"%}" };
        let is_stmt = open == b"{%";
        i += 2;
        let start = i;
        let mut quote: Option<u8> = None;
        let mut expect_filter_name = false;
        let mut first_word = true;
        while i < b.len() {
            let c = b[i];
            if let Some(q) = quote {
                if c == b'\\' {
                    i += 2;
                    continue;
                }
                if c == q {
                    quote = None;
                }
                i += 1;
                continue;
            }
            if i + 1 < b.len() && &b[i..i + 2] == close {
                i += 2;
                break;
            }
            if c == b'"' || c == b'\'' {
                quote = Some(c);
                i += 1;
                continue;
            }
            if c == b'|' {
                expect_filter_name = true;
                i += 1;
                continue;
            }
            if c.is_ascii_alphabetic() || c == b'_' {
                let s = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let word = &src[s..i];
                if expect_filter_name {
                    out.push((word.to_string(), s));
                    expect_filter_name = false;
                } else if is_stmt && first_word && word == "filter" {
                    expect_filter_name = true;
                }
                if s >= start {
                    first_word = false;
                }
                continue;
            }
            if !c.is_ascii_whitespace() && c != b'-' && c != b'+' {
                expect_filter_name = false;
                first_word = false;
            }
            i += 1;
        }
    }
    out
}

fn template_error(src: &str, e: &minijinja::Error, code: &str) -> FieldError {
    let (line, col) = match e.range() {
        Some(r) => line_col(src, r.start),
        None => (e.line().unwrap_or(1), 1),
    };
    let detail = e
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| e.kind().to_string());
    FieldError::new(
        "body",
        code,
        format!("Erro no modelo na linha {line}, coluna {col}: {detail}"),
    )
}

/// Checks a template when it is saved: syntax (line and column), unknown filters (line and
/// column), and a test render with [`sample`] data. `Err` carries the field errors for `422`.
pub fn check(src: &str, kind: TemplateKind) -> Result<(), FieldError> {
    let env = environment();
    let tmpl = env
        .template_from_str(src)
        .map_err(|e| template_error(src, &e, "template_syntax"))?;
    for (name, at) in used_filters(src) {
        if !FILTERS.contains(&name.as_str()) && !BUILTIN_FILTERS.contains(&name.as_str()) {
            let (line, col) = line_col(src, at);
            return Err(FieldError::new(
                "body",
                "unknown_filter",
                format!(
                    "Erro no modelo na linha {line}, coluna {col}: filtro desconhecido '{name}' \
                     (disponíveis: {})",
                    FILTERS.join(", ")
                ),
            ));
        }
    }
    let _ = kind;
    tmpl.render(sample())
        .map(|_| ())
        .map_err(|e| template_error(src, &e, "template_error"))
}

/// Renders a stored template. A template that passed [`check`] renders; should it still fail (a
/// value of an unexpected type), the error is logged and the caller falls back to the default.
pub fn render(src: &str, data: &DocData) -> Result<String, minijinja::Error> {
    let env = environment();
    let out = env.render_str(src, data)?;
    Ok(normalize(&out))
}

/// Trims trailing spaces and collapses runs of blank lines (templates full of `{% %}` tags leave them).
fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank = 0;
    for line in s.lines() {
        let l = line.trim_end();
        if l.trim().is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
            out.push('\n');
        } else {
            blank = 0;
            out.push_str(l);
            out.push('\n');
        }
    }
    out.trim_matches('\n').to_string() + "\n"
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The document as plain text with the items table written out (tab-separated rows and the
/// totals): what the SHA-256 of the evidence covers, so the hash binds the prices too.
pub fn plain_text(content: &str, items: &[ProposalItem], totals: &Totals) -> String {
    let mut out = String::with_capacity(content.len() + items.len() * 80);
    for line in content.lines() {
        if line.trim() == ITEMS_MARKER {
            out.push_str(&ITEM_HEADERS.join("\t"));
            out.push('\n');
            for it in items {
                out.push_str(&item_row(it).join("\t"));
                out.push('\n');
            }
            out.push_str(&format!(
                "Totais\t\t\t{}\t{}\n",
                money(totals.mrr_cents),
                money(totals.setup_cents)
            ));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// SHA-256 (hex) of [`plain_text`].
pub fn document_sha256(content: &str, items: &[ProposalItem], totals: &Totals) -> String {
    sha256_hex(&plain_text(content, items, totals))
}

// ---------- blocks ----------

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Title(String),
    Heading(String),
    Para(String),
    Bullet(String),
    Items,
    Gap,
}

pub fn blocks(text: &str) -> Vec<Block> {
    let mut out = vec![];
    for line in text.lines() {
        let t = line.trim();
        let b = if t.is_empty() {
            Block::Gap
        } else if t == ITEMS_MARKER {
            Block::Items
        } else if let Some(h) = t.strip_prefix("## ") {
            Block::Heading(h.trim().to_string())
        } else if let Some(h) = t.strip_prefix("# ") {
            Block::Title(h.trim().to_string())
        } else if let Some(h) = t.strip_prefix("- ").or_else(|| t.strip_prefix("* ")) {
            Block::Bullet(h.trim().to_string())
        } else {
            Block::Para(t.to_string())
        };
        if b == Block::Gap && matches!(out.last(), None | Some(Block::Gap)) {
            continue;
        }
        out.push(b);
    }
    out
}

/// The columns of the items table: header and cell text.
pub fn item_row(it: &ProposalItem) -> [String; 5] {
    let mut name = it.name.clone();
    if it.discount_percent > 0.0 {
        name.push_str(&format!(" (desc. {}%)", fmt_percent(it.discount_percent)));
    }
    [
        name,
        it.quantity.to_string(),
        money(it.monthly_price_cents),
        money(it.monthly_total_cents),
        money(it.setup_total_cents),
    ]
}

pub const ITEM_HEADERS: [&str; 5] = ["Item", "Qtd.", "Mensal unit.", "Mensal total", "Instalação"];

fn fmt_percent(p: f64) -> String {
    let s = format!("{p:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.replace('.', ",")
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The document as HTML fragments (escaped).
pub fn html_body(text: &str, items: &[ProposalItem], totals: &Totals) -> String {
    let mut o = String::new();
    for b in blocks(text) {
        match b {
            Block::Title(t) => o.push_str(&format!("<h1>{}</h1>\n", esc(&t))),
            Block::Heading(t) => o.push_str(&format!("<h2>{}</h2>\n", esc(&t))),
            Block::Para(t) => o.push_str(&format!("<p>{}</p>\n", esc(&t))),
            Block::Bullet(t) => o.push_str(&format!("<p class=\"li\">• {}</p>\n", esc(&t))),
            Block::Gap => {}
            Block::Items => {
                o.push_str("<div class=\"tw\"><table><thead><tr>");
                for h in ITEM_HEADERS {
                    o.push_str(&format!("<th>{}</th>", esc(h)));
                }
                o.push_str("</tr></thead><tbody>");
                for it in items {
                    o.push_str("<tr>");
                    for (i, c) in item_row(it).iter().enumerate() {
                        let cls = if i == 0 { "" } else { " class=\"n\"" };
                        o.push_str(&format!("<td{cls}>{}</td>", esc(c)));
                    }
                    o.push_str("</tr>");
                }
                o.push_str(&format!(
                    "</tbody><tfoot><tr><td colspan=\"3\">Totais</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr></tfoot></table></div>\n",
                    esc(&money(totals.mrr_cents)),
                    esc(&money(totals.setup_cents))
                ));
            }
        }
    }
    o
}

/// Today's date in the tenant's time zone, `dd/mm/aaaa`.
pub fn today_br(now: DateTime<Utc>) -> String {
    now.with_timezone(&chrono_tz::America::Sao_Paulo)
        .format("%d/%m/%Y")
        .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn money_format() {
        assert_eq!(money(0), "R$ 0,00");
        assert_eq!(money(5), "R$ 0,05");
        assert_eq!(money(123_456), "R$ 1.234,56");
        assert_eq!(money(100_000_000), "R$ 1.000.000,00");
        assert_eq!(money(-150), "-R$ 1,50");
    }

    #[test]
    fn filters_render() {
        let env = environment();
        let out = env
            .render_str(
                "{{ 123456 | brl }}|{{ '11222333000181' | cnpj }}|{{ '52998224725' | cpf }}|{{ '2026-12-31' | data }}|{{ 100 | extenso }}",
                (),
            )
            .unwrap();
        assert_eq!(
            out,
            "R$ 1.234,56|11.222.333/0001-81|529.982.247-25|31/12/2026|um real"
        );
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = check(
            "linha 1\nlinha 2 {{ customer.name \n",
            TemplateKind::Proposal,
        )
        .unwrap_err();
        assert_eq!(e.code, "template_syntax");
        assert!(e.message.contains("linha 2"), "{}", e.message);
    }

    #[test]
    fn unknown_filter_is_named_with_position() {
        let e = check(
            "ok\n  {{ totals.mrr_cents | dinheiro }}",
            TemplateKind::Proposal,
        )
        .unwrap_err();
        assert_eq!(e.code, "unknown_filter");
        assert!(e.message.contains("linha 2, coluna 25"), "{}", e.message);
        assert!(e.message.contains("dinheiro"));
        // In a branch never taken, too.
        let e = check(
            "{% if false %}{{ x | nope }}{% endif %}",
            TemplateKind::Proposal,
        )
        .unwrap_err();
        assert_eq!(e.code, "unknown_filter");
        // Filters inside strings are not filters.
        check(
            "{{ 'a | b' }} {{ x | default('y') | upper }}",
            TemplateKind::Proposal,
        )
        .unwrap();
        check("{% filter upper %}x{% endfilter %}", TemplateKind::Proposal).unwrap();
        assert!(check("{% filter nope %}x{% endfilter %}", TemplateKind::Proposal).is_err());
    }

    #[test]
    fn blocks_parse() {
        let b = blocks("# T\n\n\n## S\ntexto\n- a\n[[itens]]\n");
        assert_eq!(
            b,
            vec![
                Block::Title("T".into()),
                Block::Gap,
                Block::Heading("S".into()),
                Block::Para("texto".into()),
                Block::Bullet("a".into()),
                Block::Items
            ]
        );
    }
}
