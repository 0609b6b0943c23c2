//! `email.send`: delivers one stored email over SMTP.
//!
//! The job queue runs a handler at least once, so the handler itself makes delivery "at most once
//! per email" as far as a crash allows:
//!
//! 1. an email already `sent` is skipped (a re-run, a retried job, a duplicate enqueue);
//! 2. before talking to SMTP the handler takes a `sending` claim: one UPDATE that sets
//!    `status = sending`, a fresh `send_claim` token and `attempts + 1`, unless the email is `sent`;
//! 3. after the server accepted the message, one UPDATE conditional on that token sets `sent`,
//!    `sent_at` and the `Message-ID`, and writes the `email_sent` timeline entry in the same
//!    transaction. That write is retried a few times before giving up.
//!
//! The residual window: if the process dies (or the database stays unreachable) after the SMTP
//! server's final `250` and before step 3 commits, the next attempt finds a stale `sending` claim
//! and sends again. It resends rather than guessing (nothing is lost), with the same `Message-ID`
//! (derived from the email id), which lets receiving systems drop the duplicate. No other path
//! sends twice: the queue's lease guarantees one live handler per job, and the job itself is
//! unique per email (`email.send:{tenant}:{email}`).

use chrono::Utc;
use jtcrm_types::dto::email::EmailStatus;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use super::model::email;
use super::smtp::{self, Outgoing, SendError};
use jtcrm_kernel::jobs::{JobCtx, JobError};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::timeline;

pub const KIND: &str = "email.send";
/// With the default backoff (2 s doubling, capped at 1 h) this spans about 2 h 15 min of outage.
pub const MAX_ATTEMPTS: i32 = 12;
/// Timeline entry kind of a sent email.
pub const TIMELINE_KIND: &str = "email_sent";

const MAX_ERROR_CHARS: usize = 2000;

fn truncate(msg: &str) -> String {
    if msg.chars().count() <= MAX_ERROR_CHARS {
        msg.to_string()
    } else {
        let mut s: String = msg.chars().take(MAX_ERROR_CHARS - 1).collect();
        s.push('…');
        s
    }
}

/// The display name, reply-to and address the company sends as.
pub struct Identity {
    pub sender_name: String,
    pub reply_to: Option<String>,
    pub from: String,
}

pub async fn identity(
    state: &AppState,
    tenant_id: Uuid,
) -> jtcrm_kernel::error::AppResult<Identity> {
    let (name, settings) = match state.tenants.get(&state.db, tenant_id).await? {
        Some(t) => (t.name, t.settings),
        None => (String::from("jtcrm"), Default::default()),
    };
    Ok(Identity {
        sender_name: settings.email_sender_name.unwrap_or(name),
        reply_to: settings.email_reply_to,
        from: state.settings.smtp_from_address(),
    })
}

/// Records a failed attempt (only while our claim holds).
async fn record_failure(
    state: &AppState,
    tenant_id: Uuid,
    id: Uuid,
    claim: Uuid,
    status: EmailStatus,
    msg: &str,
) -> Result<(), JobError> {
    let tx = state.begin().await?;
    email::Entity::update_many()
        .col_expr(email::Column::Status, Expr::value(status.as_str()))
        .col_expr(email::Column::LastError, Expr::value(truncate(msg)))
        .col_expr(email::Column::SendClaim, Expr::value(Option::<Uuid>::None))
        .col_expr(email::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(email::Column::TenantId.eq(tenant_id))
        .filter(email::Column::Id.eq(id))
        .filter(email::Column::SendClaim.eq(claim))
        .exec(&*tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Marks the email sent and writes its timeline entry, in one transaction. `false` when our claim
/// was lost (another attempt took the email over).
async fn record_sent(
    state: &AppState,
    row: &email::Model,
    claim: Uuid,
    message_id: &str,
) -> Result<bool, JobError> {
    let now = Utc::now();
    let tx = state.begin().await?;
    let n = email::Entity::update_many()
        .col_expr(
            email::Column::Status,
            Expr::value(EmailStatus::Sent.as_str()),
        )
        .col_expr(email::Column::SentAt, Expr::value(now))
        .col_expr(email::Column::ProviderMessageId, Expr::value(message_id))
        .col_expr(
            email::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .col_expr(email::Column::SendClaim, Expr::value(Option::<Uuid>::None))
        .col_expr(email::Column::UpdatedAt, Expr::value(now))
        .filter(email::Column::TenantId.eq(row.tenant_id))
        .filter(email::Column::Id.eq(row.id))
        .filter(email::Column::SendClaim.eq(claim))
        .exec(&*tx)
        .await?
        .rows_affected;
    if n == 1
        && let Some(lead_id) = row.lead_id
    {
        timeline::record(
            &*tx,
            timeline::NewEntry {
                tenant_id: row.tenant_id,
                lead_id: Some(lead_id),
                opportunity_id: None,
                kind: TIMELINE_KIND,
                actor_id: row.actor_id,
                summary: format!("E-mail enviado para {}: {}", row.to_address, row.subject),
                data: json!({
                    "email_id": row.id, "to": row.to_address, "subject": row.subject,
                    "kind": row.kind, "message_id": message_id,
                }),
                reference: Some(("email", row.id)),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(n == 1)
}

pub async fn run(state: AppState, ctx: JobCtx) -> Result<(), JobError> {
    let tenant_id = ctx
        .tenant_id
        .ok_or_else(|| JobError::permanent("job de e-mail sem empresa"))?;
    let id = ctx
        .payload
        .get("email_id")
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| JobError::permanent("payload sem email_id"))?;
    let Some(row) = email::Entity::find_by_id((tenant_id, id))
        .one(&state.db)
        .await?
    else {
        return Err(JobError::permanent("e-mail não encontrado"));
    };
    if row.status == EmailStatus::Sent.as_str() {
        return Ok(());
    }
    if !state.settings.smtp_configured() {
        // The deployment lost its SMTP settings after the email was queued: say so on the email
        // and park the job (an admin can retry it once SMTP is configured).
        let tx = state.begin().await?;
        email::Entity::update_many()
            .col_expr(
                email::Column::Status,
                Expr::value(EmailStatus::NotConfigured.as_str()),
            )
            .col_expr(email::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(email::Column::TenantId.eq(tenant_id))
            .filter(email::Column::Id.eq(id))
            .filter(email::Column::Status.ne(EmailStatus::Sent.as_str()))
            .exec(&*tx)
            .await?;
        tx.commit().await?;
        return Err(JobError::permanent("SMTP não configurado (SMTP_SERVER)"));
    }

    // Step 2: the `sending` claim.
    let claim = Uuid::now_v7();
    let tx = state.begin().await?;
    let claimed = email::Entity::update_many()
        .col_expr(
            email::Column::Status,
            Expr::value(EmailStatus::Sending.as_str()),
        )
        .col_expr(email::Column::SendClaim, Expr::value(claim))
        .col_expr(
            email::Column::Attempts,
            Expr::col(email::Column::Attempts).add(1),
        )
        .col_expr(email::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(email::Column::TenantId.eq(tenant_id))
        .filter(email::Column::Id.eq(id))
        .filter(email::Column::Status.ne(EmailStatus::Sent.as_str()))
        .exec(&*tx)
        .await?
        .rows_affected;
    tx.commit().await?;
    if claimed == 0 {
        return Ok(()); // sent in the meantime
    }
    if row.status == EmailStatus::Sending.as_str() {
        tracing::warn!(email_id = %id,
            "retomando um envio interrompido; se o servidor já o aceitara, o destinatário recebe uma cópia com o mesmo Message-ID");
    }

    let who = identity(&state, tenant_id).await?;
    let message_id = smtp::message_id(id, &who.from);
    let result = match smtp::build_message(&Outgoing {
        from_name: &who.sender_name,
        from: &who.from,
        reply_to: who.reply_to.as_deref(),
        to: &row.to_address,
        subject: &row.subject,
        body_text: &row.body_text,
        message_id: &message_id,
    }) {
        Ok(msg) => smtp::send(&state.settings, &msg).await,
        Err(e) => Err(e),
    };

    match result {
        Ok(reply) => {
            tracing::info!(email_id = %id, kind = %row.kind, %reply, "e-mail enviado");
            // Step 3: retried, since failing here would send the email again.
            let mut wait = std::time::Duration::from_millis(200);
            for attempt in 1..=5 {
                match record_sent(&state, &row, claim, &message_id).await {
                    Ok(true) => return Ok(()),
                    Ok(false) => {
                        tracing::warn!(email_id = %id, "e-mail enviado, mas outra tentativa assumiu o envio");
                        return Ok(());
                    }
                    Err(e) if attempt < 5 => {
                        tracing::warn!(email_id = %id, error = %e, "falha ao registrar envio; tentando de novo");
                        tokio::time::sleep(wait).await;
                        wait *= 2;
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
        Err(SendError::Transient(msg)) => {
            let status = if ctx.is_last_attempt() {
                EmailStatus::Dead
            } else {
                EmailStatus::Failed
            };
            record_failure(&state, tenant_id, id, claim, status, &msg).await?;
            Err(JobError::Retry(msg))
        }
        Err(SendError::Permanent(msg)) => {
            record_failure(&state, tenant_id, id, claim, EmailStatus::Dead, &msg).await?;
            Err(JobError::Permanent(msg))
        }
    }
}
