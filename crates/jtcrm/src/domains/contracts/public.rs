//! A signer's link (`email_link` provider): unauthenticated, rate-limited per IP like the proposal
//! link. The token names its tenant; only its SHA-256 is stored. A wrong, expired or used token,
//! a deleted, changed or cancelled contract, or a suspended tenant all answer the same `404`.

use chrono::Utc;
use jtcrm_types::br::Cpf;
use jtcrm_types::dto::contracts::{
    ContractStatus, PublicContract, SignContractRequest, SignatureMethod, SignerStatus,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::model::{contract, signer};
use super::service::{effective_status, items_of};
use super::signing::{self, Evidence};
use crate::domains::files;
use crate::domains::proposals::public::Visitor;
use crate::domains::proposals::render::{self, Totals};
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::RequestMeta;
use jtcrm_kernel::security::sha256_hex;
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::tenancy::TenantSnapshot;

struct Link {
    tenant: TenantSnapshot,
    contract: contract::Model,
    signer: signer::Model,
}

/// The live link's tenant, contract and signer; `404` for anything else. A signed signer's link
/// keeps working read-only until it expires (to download what they signed).
async fn resolve(state: &AppState, token: &str) -> AppResult<Link> {
    let nf = AppError::not_found;
    if token.len() != 32 + 43 || !token.is_ascii() {
        return Err(nf());
    }
    let tenant_id = Uuid::try_parse(&token[..32]).map_err(|_| nf())?;
    let tenant = state
        .tenants
        .get(&state.db, tenant_id)
        .await?
        .filter(|t| t.status.is_usable())
        .ok_or_else(nf)?;
    // The token names its company: row-level security's tenant path for this request.
    jtcrm_kernel::db::enter_tenant(tenant_id);
    let s = signer::Entity::find()
        .filter(signer::Column::TenantId.eq(tenant_id))
        .filter(signer::Column::LinkTokenHash.eq(sha256_hex(token)))
        .one(&state.db)
        .await?
        .ok_or_else(nf)?;
    let c = contract::Entity::find_by_id((tenant_id, s.contract_id))
        .one(&state.db)
        .await?
        .filter(|c| c.deleted_at.is_none() && c.pdf_file_id.is_some())
        .ok_or_else(nf)?;
    let now = Utc::now();
    let live = match SignerStatus::parse(&s.status) {
        Some(SignerStatus::Pending) => {
            s.link_expires_at.is_some_and(|e| e > now)
                && matches!(
                    effective_status(&c, now),
                    ContractStatus::Sent | ContractStatus::PartiallySigned
                )
        }
        // Signed: read-only while the contract is not withdrawn.
        _ => effective_status(&c, now) != ContractStatus::Cancelled,
    };
    if !live {
        return Err(nf());
    }
    Ok(Link {
        tenant,
        contract: c,
        signer: s,
    })
}

fn view(l: &Link) -> PublicContract {
    let c = &l.contract;
    PublicContract {
        number: c.number.clone(),
        company: l.tenant.name.clone(),
        title: c.title.clone(),
        status: effective_status(c, Utc::now()),
        signer_name: l.signer.name.clone(),
        signer_status: SignerStatus::parse(&l.signer.status).unwrap_or(SignerStatus::Pending),
        items: items_of(c),
        mrr_cents: c.mrr_cents,
        setup_cents: c.setup_cents,
        tcv_cents: c.tcv_cents,
        term_months: c.term_months,
        content: c.generated_content.clone().unwrap_or_default(),
        document_sha256: c.document_sha256.clone().unwrap_or_default(),
    }
}

pub async fn open(state: &AppState, token: &str) -> AppResult<PublicContract> {
    Ok(view(&resolve(state, token).await?))
}

/// The frozen PDF the signer signs (the exact bytes whose SHA-256 is on the contract).
pub async fn pdf(state: &AppState, token: &str) -> AppResult<(String, Vec<u8>)> {
    let l = resolve(state, token).await?;
    let fid = l.contract.pdf_file_id.ok_or_else(AppError::not_found)?;
    let (_, bytes) = files::read(state, l.tenant.id, fid).await?;
    Ok((l.contract.number, bytes))
}

/// Signs: the signer types name and CPF (validated; when the contract names the signer's CPF, it
/// must match). Records the evidence and completes the contract when this was the last signer.
pub async fn sign(
    state: &AppState,
    token: &str,
    who: &Visitor,
    input: SignContractRequest,
) -> AppResult<PublicContract> {
    let mut v = Validator::new();
    let name = v.required_text("name", input.name.as_deref(), 200);
    let cpf = match input
        .cpf
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => {
            v.add("cpf", "required", "Campo obrigatório");
            None
        }
        Some(c) => match Cpf::parse(c) {
            Ok(c) => Some(c.masked()),
            Err(e) => {
                v.add("cpf", e.code(), e.message_pt());
                None
            }
        },
    };
    // Resolve first: a bad token is 404 whatever the body.
    let l = resolve(state, token).await?;
    if let (Some(expected), Some(given)) = (&l.signer.cpf, &cpf)
        && expected != given
    {
        v.add(
            "cpf",
            "cpf_mismatch",
            "O CPF não corresponde ao do signatário deste contrato",
        );
    }
    v.finish()?;
    let (Some(name), Some(cpf)) = (name, cpf) else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    if l.signer.status != SignerStatus::Pending.as_str() {
        return Err(AppError::new(
            jtcrm_types::ErrorCode::InvalidStateTransition,
            "Você já assinou este contrato.",
        ));
    }
    let meta = RequestMeta {
        request_id: jtcrm_kernel::error::current_request_id(),
        ip: who.ip.clone(),
    };
    let txn = state.begin().await?;
    let signed = signing::record_signature(
        &txn,
        &l.contract,
        &l.signer,
        Evidence {
            method: SignatureMethod::EmailLink,
            name,
            cpf: Some(cpf),
            ip: who.ip.clone(),
            user_agent: who
                .user_agent
                .as_deref()
                .map(|u| u.chars().take(500).collect()),
            at: Utc::now(),
            evidence_file_id: None,
            recorded_by: None,
        },
        &meta,
    )
    .await?;
    txn.commit().await?;
    if signed.completed {
        signing::win_opportunity(state, &l.tenant, &signed.contract).await;
    }
    let l = resolve(state, token).await?;
    Ok(view(&l))
}

pub fn status_pt(s: ContractStatus) -> &'static str {
    match s {
        ContractStatus::Draft => "Rascunho",
        ContractStatus::Sent => "Aguardando assinaturas",
        ContractStatus::PartiallySigned => "Parcialmente assinado",
        ContractStatus::Signed => "Assinado",
        ContractStatus::Active => "Ativo",
        ContractStatus::Cancelled => "Cancelado",
        ContractStatus::Expired => "Expirado",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The signer's page: the document, the PDF link and (while pending) the signature form.
pub fn page(c: &PublicContract, token: &str, notice: Option<&str>) -> String {
    let body = render::html_body(
        &c.content,
        &c.items,
        &Totals {
            mrr_cents: c.mrr_cents,
            setup_cents: c.setup_cents,
            tcv_cents: c.tcv_cents,
        },
    );
    let form = if c.signer_status == SignerStatus::Pending {
        format!(
            r#"<section class="act"><h2>Assinar o contrato</h2>
<p>Ao assinar, você declara que leu o documento acima (PDF com SHA-256 {sha}) e concorda com ele.</p>
<form method="post" action="/c/{t}/sign">
<label>Nome completo<input name="name" required maxlength="200" autocomplete="name" value="{name}"></label>
<label>CPF<input name="cpf" required inputmode="numeric" maxlength="14" placeholder="000.000.000-00"></label>
<button type="submit">Assinar contrato</button></form></section>"#,
            t = esc(token),
            sha = esc(&c.document_sha256),
            name = esc(&c.signer_name),
        )
    } else {
        "<p class=\"notice\">Você já assinou este contrato.</p>".to_string()
    };
    let notice = notice
        .map(|n| format!("<p class=\"notice\">{}</p>", esc(n)))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="pt-BR"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Contrato {num} — {company}</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1f2933;line-height:1.5}}
main{{max-width:820px;margin:0 auto;padding:16px}}
.doc{{background:#fff;border-radius:8px;padding:20px;box-shadow:0 1px 3px rgba(0,0,0,.1)}}
header{{display:flex;justify-content:space-between;align-items:center;flex-wrap:wrap;gap:8px;margin-bottom:12px}}
h1{{font-size:1.4rem;margin:.2em 0}} h2{{font-size:1.1rem;margin:1.2em 0 .3em}}
p{{margin:.25em 0}} p.li{{padding-left:1em}}
.tw{{overflow-x:auto}} table{{border-collapse:collapse;width:100%;font-size:.9rem;margin:.5em 0}}
th,td{{border-bottom:1px solid #e4e7eb;padding:6px;text-align:left}} th{{background:#f0f2f5}}
td.n{{text-align:right;white-space:nowrap}} tfoot td{{font-weight:bold}}
.badge{{background:#e4e7eb;border-radius:12px;padding:2px 10px;font-size:.85rem}}
a.pdf,button{{display:inline-block;background:#0b5cad;color:#fff;border:0;border-radius:6px;padding:10px 16px;font-size:1rem;text-decoration:none;cursor:pointer}}
.act{{background:#fff;border-radius:8px;padding:20px;margin-top:16px}}
label{{display:block;margin:.5em 0}} input{{display:block;width:100%;box-sizing:border-box;padding:8px;font-size:1rem;border:1px solid #cbd2d9;border-radius:6px}}
.notice{{background:#e3f9e5;border-radius:6px;padding:10px}}
</style></head>
<body><main>
<header><strong>{company}</strong><span class="badge">{status}</span><a class="pdf" href="/c/{t}/pdf">Baixar PDF</a></header>
{notice}
<article class="doc">
{body}</article>
{form}
<p><small>Contrato {num} · signatário: {signer} · SHA-256 do PDF {sha}</small></p>
</main></body></html>
"#,
        num = esc(&c.number),
        company = esc(&c.company),
        status = status_pt(c.status),
        t = esc(token),
        signer = esc(&c.signer_name),
        sha = esc(&c.document_sha256),
    )
}
