//! `format=csv`: what Excel in Brazil opens as is — UTF-8 with a byte-order mark, `;` between
//! fields, CRLF line ends, decimal comma, money in reais (`1234,56`), fields quoted when needed.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use jtcrm_types::dto::dashboards::{Report, SalesFunnel, Series, SeriesMetric, TeamPerformance};
use serde::Serialize;

use super::service::numbers;
use jtcrm_kernel::error::AppResult;

/// `1234,56` (cents to reais).
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{},{:02}", c / 100, c % 100)
}

/// A number with a decimal comma (integers without decimals).
pub fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}").replace('.', ",")
    }
}

fn opt(x: Option<f64>) -> String {
    x.map(num).unwrap_or_default()
}

/// User-typed text (names, reasons): a leading `=`, `+`, `-` or `@` is quoted with `'` so that a
/// spreadsheet does not run it as a formula.
pub fn text(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

fn field(s: &str) -> String {
    if s.contains([';', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn document(rows: &[Vec<String>]) -> String {
    let mut out = String::from("\u{FEFF}");
    for r in rows {
        let line: Vec<String> = r.iter().map(|c| field(c)).collect();
        out.push_str(&line.join(";"));
        out.push_str("\r\n");
    }
    out
}

pub fn response(name: &str, rows: &[Vec<String>]) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        document(rows),
    )
        .into_response()
}

fn value_of(key: &str, x: f64) -> String {
    if key.ends_with("_cents") || key.contains("_cents.") {
        money(x.round() as i64)
    } else {
        num(x)
    }
}

fn label(key: &str) -> String {
    if let Some(k) = key.strip_suffix("_cents") {
        format!("{k} (R$)")
    } else {
        key.replace("_cents.", " (R$).")
    }
}

/// One row per number: indicator, value and, when compared, the previous value and the change.
pub fn report<T: Serialize>(r: &Report<T>, extra: Vec<Vec<String>>) -> AppResult<Vec<Vec<String>>> {
    let cur = numbers(&r.current)?;
    let prev = r.previous.as_ref().map(numbers).transpose()?;
    let mut rows = vec![vec![
        "período".to_string(),
        r.period.from.to_string(),
        r.period.to.to_string(),
    ]];
    let mut head = vec!["indicador".to_string(), "valor".to_string()];
    if prev.is_some() {
        head.extend(["valor anterior", "variação", "variação relativa"].map(String::from));
    }
    rows.push(head);
    for (k, v) in &cur {
        let mut row = vec![label(k), value_of(k, *v)];
        if let Some(p) = &prev {
            let before = p.get(k).copied();
            row.push(before.map(|b| value_of(k, b)).unwrap_or_default());
            let ch = r.change.as_ref().and_then(|c| c.get(k));
            row.push(ch.map(|c| value_of(k, c.absolute)).unwrap_or_default());
            row.push(opt(ch.and_then(|c| c.relative)));
        }
        rows.push(row);
    }
    rows.extend(extra);
    Ok(rows)
}

pub fn funnel(f: &SalesFunnel) -> Vec<Vec<String>> {
    let mut rows = vec![
        vec![
            "período".to_string(),
            f.period.from.to_string(),
            f.period.to.to_string(),
        ],
        vec!["pipeline".to_string(), text(&f.pipeline_name)],
        [
            "etapa",
            "tipo",
            "cartões",
            "valor (R$)",
            "MRR (R$)",
            "ponderado (R$)",
            "alcançaram",
            "conversão para a próxima",
            "dias na etapa (média)",
            "dias na etapa (mediana)",
            "dias na etapa (p90)",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for s in &f.stages {
        rows.push(vec![
            text(&s.name),
            s.kind.clone(),
            s.cards.to_string(),
            money(s.value_cents),
            money(s.mrr_cents),
            money(s.weighted_cents),
            s.reached.map(|x| x.to_string()).unwrap_or_default(),
            opt(s.conversion_to_next),
            opt(s.days_in_stage.average),
            opt(s.days_in_stage.median),
            opt(s.days_in_stage.p90),
        ]);
    }
    rows.push(vec![]);
    rows.push(
        [
            "origem",
            "leads",
            "com oportunidade",
            "ganhos",
            "lead → oportunidade",
            "oportunidade → ganho",
            "lead → ganho",
        ]
        .map(String::from)
        .to_vec(),
    );
    let line = |name: &str, l: &jtcrm_types::dto::dashboards::LeadFunnel| {
        vec![
            name.to_string(),
            l.leads.to_string(),
            l.with_opportunity.to_string(),
            l.won.to_string(),
            opt(l.lead_to_opportunity),
            opt(l.opportunity_to_won),
            opt(l.lead_to_won),
        ]
    };
    for s in &f.by_source {
        rows.push(line(&text(&s.source), &s.funnel));
    }
    rows.push(line("total", &f.leads));
    rows
}

pub fn team(t: &TeamPerformance) -> Vec<Vec<String>> {
    let mut rows = vec![
        vec![
            "período".to_string(),
            t.period.from.to_string(),
            t.period.to.to_string(),
        ],
        [
            "usuário",
            "papel",
            "leads",
            "leads contatados",
            "tarefas concluídas",
            "tarefas atrasadas",
            "ganhos",
            "perdidos",
            "novo MRR (R$)",
            "meta de MRR (R$)",
            "atingimento de MRR",
            "meta de negócios",
            "atingimento de negócios",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for u in &t.users {
        rows.push(vec![
            text(&u.name),
            u.role.clone(),
            u.leads_owned.to_string(),
            u.leads_contacted.to_string(),
            u.tasks_done.to_string(),
            u.tasks_overdue.to_string(),
            u.deals_won.to_string(),
            u.deals_lost.to_string(),
            money(u.new_mrr_cents),
            u.quota.mrr_target_cents.map(money).unwrap_or_default(),
            opt(u.quota.mrr_attainment),
            opt(u.quota.deals_target),
            opt(u.quota.deals_attainment),
        ]);
    }
    rows
}

pub fn series(s: &Series) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "início".to_string(),
        match s.metric {
            SeriesMetric::WonMrr => "MRR ganho (R$)".to_string(),
            m => m.as_str().to_string(),
        },
    ]];
    for p in &s.points {
        rows.push(vec![
            p.start.format("%d/%m/%Y").to_string(),
            match s.metric {
                SeriesMetric::WonMrr => money(p.value),
                _ => p.value.to_string(),
            },
        ]);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brazilian_excel_format() {
        assert_eq!(money(123456), "1234,56");
        assert_eq!(money(-5), "-0,05");
        assert_eq!(num(0.3333), "0,3333");
        assert_eq!(num(7.0), "7");
        assert_eq!(text("=HYPERLINK()"), "'=HYPERLINK()");
        let doc = document(&[
            vec!["a;b".to_string(), "x\"y".to_string()],
            vec!["1".to_string()],
        ]);
        assert_eq!(doc, "\u{FEFF}\"a;b\";\"x\"\"y\"\r\n1\r\n");
    }
}
