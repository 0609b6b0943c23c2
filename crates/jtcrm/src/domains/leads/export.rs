//! CSV export of leads for Excel pt-BR: the list's filters and visibility, `;` separator, UTF-8 BOM,
//! formatted values, streamed page by page (keyset) through a bounded channel in constant memory.

use std::collections::HashSet;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use jtcrm_types::br::{Cep, Cnpj, Phone, fold_for_search};
use jtcrm_types::dto::leads::{CustomFieldDef, CustomFieldType, LeadSource, LeadStatus};
use sea_orm::{ConnectionTrait, QuerySelect};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::fields;
use super::model::lead;
use super::search::{self, LeadQuery};
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::http::extract::{TenantCtx, query_pairs};
use jtcrm_kernel::state::AppState;

/// The list's paging parameters, which the export ignores.
const PAGING: [&str; 3] = ["limit", "cursor", "include_total"];

/// Query parameters of `GET /api/leads/export`: the list's filters without its paging.
pub struct ExportQueryDoc;

impl utoipa::IntoParams for ExportQueryDoc {
    fn into_params(
        parameter_in_provider: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        <search::LeadQueryDoc as utoipa::IntoParams>::into_params(parameter_in_provider)
            .into_iter()
            .filter(|p| !PAGING.contains(&p.name.as_str()))
            .collect()
    }
}

/// Leads read per keyset page.
pub const PAGE_SIZE: u64 = 1000;
/// Chunks (one page each) buffered between the reader task and the client.
const CHANNEL_CHUNKS: usize = 4;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The fixed columns, in order; custom fields follow, one column each.
pub const HEADERS: [&str; 16] = [
    "Nome",
    "E-mail",
    "Telefone",
    "Empresa",
    "CNPJ",
    "Cargo",
    "Origem",
    "Status",
    "Responsável",
    "Tags",
    "CEP",
    "Cidade",
    "UF",
    "Pontuação",
    "Criado em",
    "Atualizado em",
];

/// pt-BR label of a source, as exported (the import accepts labels and codes).
pub fn source_label(s: LeadSource) -> &'static str {
    match s {
        LeadSource::Website => "Site",
        LeadSource::Referral => "Indicação",
        LeadSource::ColdCall => "Prospecção ativa",
        LeadSource::InboundCall => "Ligação recebida",
        LeadSource::Chatbot => "Chatbot",
        LeadSource::Whatsapp => "WhatsApp",
        LeadSource::Event => "Evento",
        LeadSource::Import => "Importação",
        LeadSource::Partner => "Parceiro",
        LeadSource::Other => "Outro",
    }
}

/// pt-BR label of a status, as exported (the import accepts labels and codes).
pub fn status_label(s: LeadStatus) -> &'static str {
    match s {
        LeadStatus::New => "Novo",
        LeadStatus::Contacted => "Contatado",
        LeadStatus::Qualified => "Qualificado",
        LeadStatus::Unqualified => "Desqualificado",
        LeadStatus::Converted => "Convertido",
        LeadStatus::Lost => "Perdido",
    }
}

/// A source given by code (`inbound_call`) or pt-BR label (`Ligação recebida`), any case or accents.
pub fn parse_source(s: &str) -> Option<LeadSource> {
    let folded = fold_for_search(s.trim());
    LeadSource::ALL
        .iter()
        .copied()
        .find(|x| x.as_str() == folded || fold_for_search(source_label(*x)) == folded)
        .or(match folded.as_str() {
            "indicacao de cliente" => Some(LeadSource::Referral),
            "website" | "formulario" | "formulario do site" => Some(LeadSource::Website),
            "telefone" | "ligacao" => Some(LeadSource::InboundCall),
            "importacao csv" | "planilha" => Some(LeadSource::Import),
            _ => None,
        })
}

/// A status given by code (`qualified`) or pt-BR label (`Qualificado`), any case or accents.
pub fn parse_status(s: &str) -> Option<LeadStatus> {
    let folded = fold_for_search(s.trim());
    LeadStatus::ALL
        .iter()
        .copied()
        .find(|x| x.as_str() == folded || fold_for_search(status_label(*x)) == folded)
        .or(match folded.as_str() {
            "contactado" | "em contato" => Some(LeadStatus::Contacted),
            "nao qualificado" => Some(LeadStatus::Unqualified),
            "ganho" => Some(LeadStatus::Converted),
            _ => None,
        })
}

/// Spreadsheets run cells starting with `=`, `+`, `-` or `@` as formulas (CSV injection): such free
/// text is exported behind a `'`, which the import strips again.
pub fn defuse(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// The column headers of the custom fields: the label, or `cf.<key>` when the label is taken.
pub fn custom_headers(defs: &[CustomFieldDef]) -> Vec<String> {
    let mut taken: HashSet<String> = HEADERS.iter().map(|h| fold_for_search(h)).collect();
    let mut out = vec![];
    for d in defs {
        let folded = fold_for_search(d.label.trim());
        let h = if folded.is_empty() || taken.contains(&folded) || folded.starts_with("cf.") {
            format!("cf.{}", d.key)
        } else {
            d.label.trim().to_string()
        };
        taken.insert(fold_for_search(&h));
        out.push(h);
    }
    out
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn custom_value(def: &CustomFieldDef, v: Option<&Value>) -> String {
    match (def.field_type, v) {
        (_, None | Some(Value::Null)) => String::new(),
        (CustomFieldType::Number, Some(Value::Number(n))) => n.to_string().replace('.', ","),
        (CustomFieldType::Boolean, Some(Value::Bool(b))) => {
            if *b { "sim" } else { "não" }.to_string()
        }
        (CustomFieldType::Date, Some(Value::String(s))) => fields::parse_date(s)
            .map(|d| d.format("%d/%m/%Y").to_string())
            .unwrap_or_else(|| s.clone()),
        (_, Some(Value::String(s))) => defuse(s),
        (_, Some(other)) => other.to_string(),
    }
}

fn tags_cell(tags: &Value) -> String {
    let list: Vec<String> = serde_json::from_value(tags.clone()).unwrap_or_default();
    // Tags are split on `|` when the cell has one, otherwise on `,`.
    let sep = if list.iter().any(|t| t.contains(',')) {
        " | "
    } else {
        ", "
    };
    defuse(&list.join(sep))
}

/// One CSV record of a lead.
fn record(m: &lead::Model, defs: &[CustomFieldDef]) -> Vec<String> {
    let opt = |s: &Option<String>| s.as_deref().map(defuse).unwrap_or_default();
    let mut r = vec![
        defuse(&m.name),
        m.email.clone().map(|e| defuse(&e)).unwrap_or_default(),
        m.phone
            .as_deref()
            .map(|p| {
                Phone::parse(p)
                    .map(|p| p.masked())
                    .unwrap_or_else(|_| defuse(p))
            })
            .unwrap_or_default(),
        opt(&m.company),
        m.cnpj
            .as_deref()
            .map(|c| {
                Cnpj::parse(c)
                    .map(|c| c.masked())
                    .unwrap_or_else(|_| c.to_string())
            })
            .unwrap_or_default(),
        opt(&m.position),
        LeadSource::parse(&m.source)
            .map(source_label)
            .unwrap_or("Outro")
            .to_string(),
        LeadStatus::parse(&m.status)
            .map(status_label)
            .unwrap_or("Novo")
            .to_string(),
        m.owner_id.map(|o| o.to_string()).unwrap_or_default(),
        tags_cell(&m.tags),
        m.cep
            .as_deref()
            .map(|c| {
                Cep::parse(c)
                    .map(|c| c.masked())
                    .unwrap_or_else(|_| c.to_string())
            })
            .unwrap_or_default(),
        opt(&m.city),
        m.state.clone().unwrap_or_default(),
        m.score.to_string(),
        time(m.created_at),
        time(m.updated_at),
    ];
    for d in defs {
        r.push(custom_value(d, m.custom_fields.get(&d.key)));
    }
    r
}

fn writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .delimiter(b';')
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(64 * 1024))
}

fn encode<I, T>(w: &mut csv::Writer<Vec<u8>>, rec: I) -> AppResult<()>
where
    I: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    w.write_record(rec).map_err(AppError::internal)
}

fn take(w: csv::Writer<Vec<u8>>) -> AppResult<Bytes> {
    w.into_inner()
        .map(Bytes::from)
        .map_err(|e| AppError::internal(anyhow::anyhow!("csv: {e}")))
}

/// The header chunk: BOM and column names.
fn head(defs: &[CustomFieldDef]) -> AppResult<Bytes> {
    let mut w = writer();
    let mut cols: Vec<String> = HEADERS.iter().map(|s| s.to_string()).collect();
    cols.extend(custom_headers(defs));
    encode(&mut w, &cols)?;
    let body = take(w)?;
    let mut out = Vec::with_capacity(BOM.len() + body.len());
    out.extend_from_slice(BOM);
    out.extend_from_slice(&body);
    Ok(Bytes::from(out))
}

fn page_chunk(rows: &[lead::Model], defs: &[CustomFieldDef]) -> AppResult<Bytes> {
    let mut w = writer();
    for m in rows {
        encode(&mut w, record(m, defs))?;
    }
    take(w)
}

async fn fetch<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    q: &LeadQuery,
) -> AppResult<Vec<lead::Model>> {
    let sel = search::filtered(ctx, q, conn.get_database_backend());
    Ok(search::ordered(sel, q)?.limit(PAGE_SIZE).all(conn).await?)
}

/// `GET /api/leads/export`: parses the filters, reads the first page (so that bad filters and a
/// database outage still get a problem+json answer), then streams the rest from a task.
pub async fn stream(state: AppState, ctx: TenantCtx, raw: &str) -> AppResult<Response> {
    let defs = fields::list_defs(&state.db, ctx.tenant_id).await?;
    // Paging is ours: the list's `limit`, `cursor` and `include_total` do not apply (and are not
    // documented for the export, see `ExportQueryDoc`).
    let pairs: Vec<(String, String)> = query_pairs(raw)?
        .into_iter()
        .filter(|(k, _)| !PAGING.contains(&k.as_str()))
        .collect();
    let has_sort = pairs.iter().any(|(k, _)| k == "sort");
    let raw: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let mut q = LeadQuery::parse(&raw, &ctx, &defs)?;
    if !has_sort {
        // Oldest first: a stable order that new leads only extend.
        q.descending = false;
    }
    let first = fetch(&state.db, &ctx, &q).await?;
    let head = head(&defs)?;
    let first_chunk = page_chunk(&first, &defs)?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHANNEL_CHUNKS);
    // The pages after the first are read by a spawned task, which does not inherit the request's
    // database scope: it gets the tenant path explicitly (jtcrm_kernel::db).
    let tenant_id = ctx.tenant_id;
    tokio::spawn(jtcrm_kernel::db::tenant(tenant_id, async move {
        let mut rows = first;
        let mut chunk = first_chunk;
        if tx.send(Ok(head)).await.is_err() {
            return;
        }
        loop {
            let done = (rows.len() as u64) < PAGE_SIZE;
            if !chunk.is_empty() && tx.send(Ok(chunk)).await.is_err() {
                // The client went away.
                return;
            }
            let Some(last) = rows.last() else { return };
            if done {
                return;
            }
            q.cursor = Some(search::page_cursor(q.sort, last));
            let next = fetch(&state.db, &ctx, &q)
                .await
                .and_then(|r| page_chunk(&r, &defs).map(|c| (r, c)));
            match next {
                Ok((r, c)) => {
                    rows = r;
                    chunk = c;
                }
                Err(e) => {
                    tracing::error!(tenant_id = %ctx.tenant_id, error = %e, source = ?e.source, "lead export aborted");
                    // Aborts the chunked body, so the client sees a truncated download, not a short file.
                    let _ = tx.send(Err(std::io::Error::other("export aborted"))).await;
                    return;
                }
            }
        }
    }));
    let filename = format!("leads-{}.csv", Utc::now().format("%Y%m%d"));
    let mut res = Response::new(Body::from_stream(ReceiverStream::new(rx)));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        for s in LeadSource::ALL {
            assert_eq!(parse_source(source_label(*s)), Some(*s));
            assert_eq!(parse_source(s.as_str()), Some(*s));
        }
        for s in LeadStatus::ALL {
            assert_eq!(parse_status(status_label(*s)), Some(*s));
            assert_eq!(parse_status(&s.as_str().to_uppercase()), Some(*s));
        }
        assert_eq!(parse_status("QUALIFICADO"), Some(LeadStatus::Qualified));
        assert_eq!(parse_source("indicacao"), Some(LeadSource::Referral));
    }

    #[test]
    fn formulas_are_defused() {
        assert_eq!(defuse("=SOMA(A1)"), "'=SOMA(A1)");
        assert_eq!(defuse("@x"), "'@x");
        assert_eq!(defuse("Ana"), "Ana");
    }
}
