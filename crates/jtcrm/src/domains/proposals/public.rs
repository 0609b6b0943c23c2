//! The customer's link: unauthenticated, rate-limited per IP. A token is the tenant id (32 hex
//! digits) followed by 32 random bytes (base64url); only its SHA-256 is stored. A wrong, expired
//! or revoked token, a deleted proposal or a suspended tenant all answer the same `404`.

use chrono::Utc;
use jtcrm_types::ErrorCode;
use jtcrm_types::br::Cpf;
use jtcrm_types::dto::Role;
use jtcrm_types::dto::proposals::{
    AcceptProposalRequest, ProposalStatus, PublicProposal, RejectProposalRequest,
};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use super::model::proposal;
use super::render::{self, Totals};
use super::service::{effective_status, frozen, items_of, kinds, today};
use crate::domains::pipelines;
use crate::domains::pipelines::board::Anchor;
use crate::domains::pipelines::opportunities::Transition;
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::events;
use jtcrm_kernel::http::extract::{RequestMeta, TenantCtx};
use jtcrm_kernel::http::guard::Sellers;
use jtcrm_kernel::security::sha256_hex;
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::tenancy::TenantSnapshot;
use jtcrm_kernel::timeline;

/// Requests per minute one IP may make to the public endpoints.
pub const MAX_PER_MINUTE: u64 = 60;

/// Who is on the other end.
#[derive(Debug, Clone, Default)]
pub struct Visitor {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// `429` past [`MAX_PER_MINUTE`] requests of this IP in the current minute.
pub async fn throttle(state: &AppState, ip: Option<&str>) -> AppResult<()> {
    let minute = Utc::now().timestamp() / 60;
    let key = format!("rl:pub:{}:{minute}", ip.unwrap_or("-"));
    let (count, ttl) = state
        .kv
        .hit(&key, 60)
        .await
        .map_err(AppError::unavailable)?;
    if count > MAX_PER_MINUTE {
        return Err(AppError::rate_limited(ttl));
    }
    Ok(())
}

/// The live link's tenant and proposal; `404` for anything else.
async fn resolve(state: &AppState, token: &str) -> AppResult<(TenantSnapshot, proposal::Model)> {
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
    // The token names its company: from here on this request sees that company's rows only
    // (row-level security's tenant path; the link is unauthenticated, so no `TenantCtx` did it).
    jtcrm_kernel::db::enter_tenant(tenant_id);
    let now = Utc::now();
    let m = proposal::Entity::find()
        .filter(proposal::Column::TenantId.eq(tenant_id))
        .filter(proposal::Column::LinkTokenHash.eq(sha256_hex(token)))
        .one(&state.db)
        .await?
        .filter(|m| {
            m.deleted_at.is_none()
                && m.link_revoked_at.is_none()
                && m.link_expires_at.is_some_and(|e| e > now)
        })
        .ok_or_else(nf)?;
    Ok((tenant, m))
}

/// What the customer sees: the frozen text of the sent revision.
pub struct Opened {
    pub company: String,
    pub proposal: PublicProposal,
}

async fn public_view(
    state: &AppState,
    tenant: &TenantSnapshot,
    m: &proposal::Model,
) -> AppResult<Opened> {
    let v = frozen(&state.db, m.tenant_id, m.id, m.revision)
        .await?
        .ok_or_else(AppError::not_found)?;
    Ok(Opened {
        company: tenant.name.clone(),
        proposal: PublicProposal {
            number: m.number.clone(),
            company: tenant.name.clone(),
            title: m.title.clone(),
            status: effective_status(m, Utc::now()),
            valid_until: m.valid_until,
            items: items_of(m),
            mrr_cents: m.mrr_cents,
            setup_cents: m.setup_cents,
            tcv_cents: m.tcv_cents,
            term_months: m.term_months,
            content: v.content,
            content_sha256: v.content_sha256,
        },
    })
}

fn clip(s: Option<&str>, n: usize) -> Option<String> {
    s.map(|s| s.chars().take(n).collect())
}

fn system_meta() -> RequestMeta {
    RequestMeta {
        request_id: jtcrm_kernel::error::current_request_id(),
        ip: None,
    }
}

/// Opens the link: the first opening of a sent proposal marks it `viewed` (once, also under
/// concurrent openings) with IP, user agent and time, and emits `proposal.viewed`.
pub async fn open(state: &AppState, token: &str, who: &Visitor) -> AppResult<Opened> {
    let (tenant, mut m) = resolve(state, token).await?;
    let now = Utc::now();
    if m.viewed_at.is_none() && effective_status(&m, now) == ProposalStatus::Sent {
        let txn = state.begin().await?;
        let res = proposal::Entity::update_many()
            .col_expr(
                proposal::Column::Status,
                Expr::value(ProposalStatus::Viewed.as_str()),
            )
            .col_expr(proposal::Column::ViewedAt, Expr::value(now))
            .col_expr(
                proposal::Column::ViewedIp,
                Expr::value(clip(who.ip.as_deref(), 64)),
            )
            .col_expr(
                proposal::Column::ViewedUserAgent,
                Expr::value(clip(who.user_agent.as_deref(), 500)),
            )
            .col_expr(proposal::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                proposal::Column::Version,
                Expr::col(proposal::Column::Version).add(1),
            )
            .filter(proposal::Column::TenantId.eq(m.tenant_id))
            .filter(proposal::Column::Id.eq(m.id))
            .filter(proposal::Column::ViewedAt.is_null())
            .filter(proposal::Column::Status.eq(ProposalStatus::Sent.as_str()))
            .exec(&*txn)
            .await?;
        if res.rows_affected == 1 {
            let data = json!({
                "proposal_id": m.id, "number": m.number, "revision": m.revision,
                "ip": who.ip, "user_agent": clip(who.user_agent.as_deref(), 500)
            });
            events::emit(
                &*txn,
                events::Event {
                    tenant_id: m.tenant_id,
                    event_type: "proposal.viewed",
                    entity_type: "opportunity",
                    entity_id: m.opportunity_id,
                    actor_id: None,
                    data: data.clone(),
                },
            )
            .await?;
            timeline::record(
                &*txn,
                timeline::NewEntry {
                    tenant_id: m.tenant_id,
                    lead_id: m.lead_id,
                    opportunity_id: Some(m.opportunity_id),
                    kind: kinds::VIEWED,
                    actor_id: None,
                    summary: format!("Proposta {} visualizada pelo cliente", m.number),
                    data,
                    reference: Some(("proposal", m.id)),
                },
            )
            .await?;
            m.status = ProposalStatus::Viewed.as_str().into();
            m.viewed_at = Some(now);
        }
        txn.commit().await?;
    }
    public_view(state, &tenant, &m).await
}

/// The PDF of the link's frozen document.
pub async fn pdf(state: &AppState, token: &str) -> AppResult<(String, Vec<u8>)> {
    let (tenant, m) = resolve(state, token).await?;
    let o = public_view(state, &tenant, &m).await?;
    let p = o.proposal;
    let bytes = super::pdf::render_async(
        tenant.name.clone(),
        crate::domains::files::logo(state, tenant.id).await?,
        p.number.clone(),
        p.content,
        p.items,
        Totals {
            mrr_cents: p.mrr_cents,
            setup_cents: p.setup_cents,
            tcv_cents: p.tcv_cents,
        },
    )
    .await?;
    Ok((p.number, bytes))
}

enum Decision {
    Accept { name: String, cpf: String },
    Reject { reason: String },
}

async fn decide(state: &AppState, token: &str, who: &Visitor, d: Decision) -> AppResult<Opened> {
    let (tenant, m) = resolve(state, token).await?;
    let now = Utc::now();
    let opened = public_view(state, &tenant, &m).await?;
    let status = effective_status(&m, now);
    if !matches!(status, ProposalStatus::Sent | ProposalStatus::Viewed) {
        return Err(AppError::new(
            ErrorCode::InvalidStateTransition,
            format!("Esta proposta já está com status '{}'.", status.as_str()),
        )
        .with_context(json!({"status": status.as_str()})));
    }
    let (new_status, event, kind, summary) = match &d {
        Decision::Accept { name, .. } => (
            ProposalStatus::Accepted,
            "proposal.accepted",
            kinds::ACCEPTED,
            format!("Proposta {} aceita por {name}", m.number),
        ),
        Decision::Reject { .. } => (
            ProposalStatus::Rejected,
            "proposal.rejected",
            kinds::REJECTED,
            format!("Proposta {} recusada pelo cliente", m.number),
        ),
    };
    let (name, cpf, reason) = match &d {
        Decision::Accept { name, cpf } => (Some(name.clone()), Some(cpf.clone()), None),
        Decision::Reject { reason } => (None, None, Some(reason.clone())),
    };
    let sha = opened.proposal.content_sha256.clone();
    let txn = state.begin().await?;
    let res = proposal::Entity::update_many()
        .col_expr(proposal::Column::Status, Expr::value(new_status.as_str()))
        .col_expr(proposal::Column::DecidedAt, Expr::value(now))
        .col_expr(proposal::Column::DecisionName, Expr::value(name.clone()))
        .col_expr(proposal::Column::DecisionCpf, Expr::value(cpf.clone()))
        .col_expr(
            proposal::Column::DecisionReason,
            Expr::value(reason.clone()),
        )
        .col_expr(
            proposal::Column::DecisionIp,
            Expr::value(clip(who.ip.as_deref(), 64)),
        )
        .col_expr(
            proposal::Column::DecisionUserAgent,
            Expr::value(clip(who.user_agent.as_deref(), 500)),
        )
        .col_expr(proposal::Column::DecisionSha256, Expr::value(sha.clone()))
        .col_expr(proposal::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            proposal::Column::Version,
            Expr::col(proposal::Column::Version).add(1),
        )
        .filter(proposal::Column::TenantId.eq(m.tenant_id))
        .filter(proposal::Column::Id.eq(m.id))
        .filter(proposal::Column::Revision.eq(m.revision))
        .filter(proposal::Column::LinkRevokedAt.is_null())
        .filter(proposal::Column::Status.is_in([
            ProposalStatus::Sent.as_str(),
            ProposalStatus::Viewed.as_str(),
        ]))
        .filter(proposal::Column::ValidUntil.gte(today(now)))
        .exec(&*txn)
        .await?;
    if res.rows_affected != 1 {
        return Err(AppError::new(
            ErrorCode::InvalidStateTransition,
            "Esta proposta já foi respondida ou alterada.",
        ));
    }
    let data = json!({
        "proposal_id": m.id, "number": m.number, "revision": m.revision,
        "name": name, "cpf": cpf, "reason": reason, "ip": who.ip,
        "user_agent": clip(who.user_agent.as_deref(), 500), "document_sha256": sha,
    });
    events::emit(
        &*txn,
        events::Event {
            tenant_id: m.tenant_id,
            event_type: event,
            entity_type: "opportunity",
            entity_id: m.opportunity_id,
            actor_id: None,
            data: data.clone(),
        },
    )
    .await?;
    timeline::record(
        &*txn,
        timeline::NewEntry {
            tenant_id: m.tenant_id,
            lead_id: m.lead_id,
            opportunity_id: Some(m.opportunity_id),
            kind,
            actor_id: None,
            summary,
            data: data.clone(),
            reference: Some(("proposal", m.id)),
        },
    )
    .await?;
    let meta = RequestMeta {
        request_id: jtcrm_kernel::error::current_request_id(),
        ip: who.ip.clone(),
    };
    audit::record(
        &*txn,
        audit::Entry {
            tenant_id: Some(m.tenant_id),
            actor_id: None,
            action: if new_status == ProposalStatus::Accepted {
                "accept"
            } else {
                "reject"
            },
            entity_type: "proposal",
            entity_id: m.id.to_string(),
            changes: data,
            meta: &meta,
        },
    )
    .await?;
    txn.commit().await?;

    if new_status == ProposalStatus::Accepted {
        advance_opportunity(state, &tenant, &m).await;
    }
    let (tenant, m) = match resolve(state, token).await {
        Ok(x) => x,
        Err(_) => (tenant, m),
    };
    public_view(state, &tenant, &m).await
}

/// Moves the deal to the tenant's `proposal_accept_stage_id`, acting as the proposal's owner
/// (with the rights of an admin, as automations do). A failure is logged, never undoes the
/// acceptance.
async fn advance_opportunity(state: &AppState, tenant: &TenantSnapshot, m: &proposal::Model) {
    let Some(stage_id) = tenant.settings.proposal_accept_stage_id else {
        return;
    };
    let ctx = TenantCtx {
        tenant: tenant.clone(),
        tenant_id: tenant.id,
        user_id: m.owner_id.unwrap_or(Uuid::nil()),
        role: Role::Admin,
        meta: system_meta(),
    };
    let Ok(granted) = ctx.grant::<Sellers>() else {
        return;
    };
    if let Err(e) = pipelines::opportunities::transition(
        state,
        &granted,
        m.opportunity_id,
        Transition::Move {
            stage_id: Some(stage_id),
            anchor: Anchor::Top,
            lost_reason: Some(format!("Proposta {} aceita", m.number)),
        },
    )
    .await
    {
        tracing::warn!(proposal_id = %m.id, error = %e, "não foi possível mover a oportunidade após o aceite");
    }
}

pub async fn accept(
    state: &AppState,
    token: &str,
    who: &Visitor,
    input: AcceptProposalRequest,
) -> AppResult<Opened> {
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
    resolve(state, token).await?;
    v.finish()?;
    let (Some(name), Some(cpf)) = (name, cpf) else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    decide(state, token, who, Decision::Accept { name, cpf }).await
}

pub async fn reject(
    state: &AppState,
    token: &str,
    who: &Visitor,
    input: RejectProposalRequest,
) -> AppResult<Opened> {
    let mut v = Validator::new();
    let reason = v.required_text("reason", input.reason.as_deref(), 2_000);
    resolve(state, token).await?;
    v.finish()?;
    let Some(reason) = reason else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    decide(state, token, who, Decision::Reject { reason }).await
}

/// A status line in pt-BR for the page.
pub fn status_pt(s: ProposalStatus) -> &'static str {
    match s {
        ProposalStatus::Draft => "Rascunho",
        ProposalStatus::Sent => "Enviada",
        ProposalStatus::Viewed => "Visualizada",
        ProposalStatus::Accepted => "Aceita",
        ProposalStatus::Rejected => "Recusada",
        ProposalStatus::Expired => "Expirada",
    }
}

/// The page: the document, a PDF link, and (while open) the accept and reject forms.
pub fn page(o: &Opened, token: &str, notice: Option<&str>) -> String {
    let p = &o.proposal;
    let body = render::html_body(
        &p.content,
        &p.items,
        &Totals {
            mrr_cents: p.mrr_cents,
            setup_cents: p.setup_cents,
            tcv_cents: p.tcv_cents,
        },
    );
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let open = matches!(p.status, ProposalStatus::Sent | ProposalStatus::Viewed);
    let forms = if open {
        format!(
            r#"<section class="act"><h2>Aceitar a proposta</h2>
<form method="post" action="/p/{t}/accept">
<label>Nome completo<input name="name" required maxlength="200" autocomplete="name"></label>
<label>CPF<input name="cpf" required inputmode="numeric" maxlength="14" placeholder="000.000.000-00"></label>
<button type="submit">Aceitar proposta</button></form>
<details><summary>Recusar a proposta</summary>
<form method="post" action="/p/{t}/reject">
<label>Motivo<textarea name="reason" required maxlength="2000"></textarea></label>
<button type="submit" class="sec">Recusar</button></form></details></section>"#,
            t = esc(token)
        )
    } else {
        String::new()
    };
    let notice = notice
        .map(|n| format!("<p class=\"notice\">{}</p>", esc(n)))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="pt-BR"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Proposta {num} — {company}</title>
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
button.sec{{background:#9b1c1c}}
.act{{background:#fff;border-radius:8px;padding:20px;margin-top:16px}}
label{{display:block;margin:.5em 0}} input,textarea{{display:block;width:100%;box-sizing:border-box;padding:8px;font-size:1rem;border:1px solid #cbd2d9;border-radius:6px}}
.notice{{background:#e3f9e5;border-radius:6px;padding:10px}}
</style></head>
<body><main>
<header><strong>{company}</strong><span class="badge">{status}</span><a class="pdf" href="/p/{t}/pdf">Baixar PDF</a></header>
{notice}
<article class="doc">
{body}</article>
{forms}
<p><small>Documento {num} · SHA-256 {sha}</small></p>
</main></body></html>
"#,
        num = esc(&p.number),
        company = esc(&o.company),
        status = status_pt(p.status),
        t = esc(token),
        sha = esc(&p.content_sha256),
    )
}
