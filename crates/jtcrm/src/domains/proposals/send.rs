//! Sending a proposal (freeze the revision, a new link, the e-mail, the event) and revoking
//! its link.

use chrono::Utc;
use jtcrm_types::dto::proposals::{Proposal, ProposalStatus, SendProposalRequest, SentProposal};
use sea_orm::{ActiveValue::Set, EntityTrait, IntoActiveModel};
use serde_json::json;
use uuid::Uuid;

use super::documents::render_current;
use super::model::{proposal, version};
use super::render;
use super::service::{
    check_email, effective_status, end_of_day, find_visible, frozen, invalid_state, items_of,
    kinds, to_dto,
};
use crate::domains::email;
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::events;
use jtcrm_kernel::http::guard::{Authorized, Sellers};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store;
use jtcrm_kernel::timeline;

/// A new public token: the tenant id (32 hex digits) followed by 32 random bytes (base64url), so
/// the lookup is `(tenant_id, sha256)`. Only the hash is stored.
pub fn new_token(tenant_id: Uuid) -> String {
    format!(
        "{}{}",
        tenant_id.simple(),
        jtcrm_kernel::security::random_token(32)
    )
}

pub async fn send(
    state: &AppState,
    ctx: &Authorized<Sellers>,
    id: Uuid,
    base_url: &str,
    input: SendProposalRequest,
) -> AppResult<SentProposal> {
    let now = Utc::now();
    let mut v = Validator::new();
    let to = input
        .to
        .as_deref()
        .and_then(|e| check_email(&mut v, "to", e));
    let message = v.optional_text("message", input.message.as_deref(), 5_000);
    v.finish()?;
    let txn = state.begin().await?;
    let current = find_visible(&*txn, ctx, id).await?;
    let status = effective_status(&current, now);
    if !matches!(
        status,
        ProposalStatus::Draft | ProposalStatus::Sent | ProposalStatus::Viewed
    ) {
        return Err(invalid_state(status, "enviar a proposta"));
    }
    let Some(to) = to.or_else(|| current.recipient_email.clone()) else {
        return Err(AppError::field(
            "to",
            "required",
            "Informe o e-mail do cliente (o lead não tem e-mail)",
        ));
    };
    if current.items == serde_json::Value::Array(vec![]) {
        return Err(AppError::field(
            "items",
            "required",
            "A proposta não tem itens",
        ));
    }
    // Freeze this revision (a re-send of the same revision keeps the first frozen text).
    let content = match frozen(&*txn, ctx.tenant_id, id, current.revision).await? {
        Some(v) => v.content,
        None => {
            let content = render_current(&*txn, &ctx.tenant.name, &current).await?;
            version::Entity::insert(version::ActiveModel {
                tenant_id: Set(ctx.tenant_id),
                proposal_id: Set(id),
                revision: Set(current.revision),
                snapshot: Set(
                    serde_json::to_value(to_dto(current.clone())).map_err(AppError::internal)?
                ),
                content_sha256: Set(render::document_sha256(
                    &content,
                    &items_of(&current),
                    &render::Totals {
                        mrr_cents: current.mrr_cents,
                        setup_cents: current.setup_cents,
                        tcv_cents: current.tcv_cents,
                    },
                )),
                content: Set(content.clone()),
                sent_at: Set(now),
            })
            .exec_without_returning(&*txn)
            .await?;
            content
        }
    };
    let _ = content;
    let token = new_token(ctx.tenant_id);
    let url = format!("{}/p/{token}", base_url.trim_end_matches('/'));
    let ver = current.version;
    let number = current.number.clone();
    let valid_until = current.valid_until;
    let lead_id = current.lead_id;
    let opp_id = current.opportunity_id;
    let revision = current.revision;
    let mut am = current.into_active_model();
    if status == ProposalStatus::Draft {
        am.status = Set(ProposalStatus::Sent.as_str().into());
    }
    am.sent_at = Set(Some(now));
    am.recipient_email = Set(Some(to.clone()));
    am.link_token_hash = Set(Some(jtcrm_kernel::security::sha256_hex(&token)));
    am.link_expires_at = Set(Some(end_of_day(valid_until)));
    am.link_revoked_at = Set(None);
    am.updated_at = Set(now);
    am.version = Set(ver + 1);
    let m =
        store::optimistic_update::<proposal::Entity, _>(&*txn, am, proposal::Column::Version, ver)
            .await?;
    let company = ctx.tenant.name.clone();
    let mut body = String::new();
    if let Some(msg) = &message {
        body.push_str(msg);
        body.push_str("\n\n");
    }
    body.push_str(&format!(
        "{company} enviou a proposta comercial {number} para você.\n\n\
         Veja a proposta, baixe o PDF e aceite ou recuse neste link:\n{url}\n\n\
         A proposta é válida até {}.\n",
        render::date_br(valid_until)
    ));
    let email_id = email::queue(
        &*txn,
        &state.settings,
        email::NewEmail {
            tenant_id: ctx.tenant_id,
            to: to.clone(),
            subject: format!("Proposta {number} — {company}"),
            body_text: body,
            lead_id,
            user_id: None,
            kind: "proposal",
            idempotency_key: None,
            actor_id: Some(ctx.user_id),
        },
    )
    .await?;
    let data = json!({"proposal_id": id, "number": number, "revision": revision, "to": to});
    events::emit(
        &*txn,
        events::Event {
            tenant_id: ctx.tenant_id,
            event_type: "proposal.sent",
            entity_type: "opportunity",
            entity_id: opp_id,
            actor_id: Some(ctx.user_id),
            data: data.clone(),
        },
    )
    .await?;
    timeline::record(
        &*txn,
        timeline::NewEntry {
            tenant_id: ctx.tenant_id,
            lead_id,
            opportunity_id: Some(opp_id),
            kind: kinds::SENT,
            actor_id: Some(ctx.user_id),
            summary: format!("Proposta {number} enviada para {to}"),
            data: data.clone(),
            reference: Some(("proposal", id)),
        },
    )
    .await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "send", "proposal", id, data),
    )
    .await?;
    txn.commit().await?;
    Ok(SentProposal {
        proposal: to_dto(m),
        public_url: url,
        email_id,
    })
}

/// Revokes the customer's link (a new `send` issues a new one).
pub async fn revoke_link(
    state: &AppState,
    ctx: &Authorized<Sellers>,
    id: Uuid,
) -> AppResult<Proposal> {
    let txn = state.begin().await?;
    let current = find_visible(&*txn, ctx, id).await?;
    let ver = current.version;
    let mut am = current.into_active_model();
    am.link_revoked_at = Set(Some(Utc::now()));
    am.updated_at = Set(Utc::now());
    am.version = Set(ver + 1);
    let m =
        store::optimistic_update::<proposal::Entity, _>(&*txn, am, proposal::Column::Version, ver)
            .await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "revoke_link", "proposal", id, json!({})),
    )
    .await?;
    txn.commit().await?;
    Ok(to_dto(m))
}
