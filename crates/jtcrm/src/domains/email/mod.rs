//! Email: every email the product sends (automations, cadences, task reminders, daily digests) is
//! stored in `emails` and delivered by the `email.send` job over SMTP (lettre), so it is retried on
//! failure, never sent twice for one idempotency key, and shows in the lead's timeline once sent.
//! Without `SMTP_SERVER` emails are stored as `not_configured` and never reported as sent.
//!
//! Producers call [`queue`] inside their own transaction (outbox). See docs/email.md.

#[cfg(feature = "internals")]
pub mod model;
#[cfg(not(feature = "internals"))]
mod model;
pub mod routes;
pub mod send;
pub mod service;
pub mod smtp;

use chrono::Utc;
use jtcrm_types::dto::email::{Email, EmailStatus};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    TryInsertResult,
};
use serde_json::json;
use uuid::Uuid;

use self::model::{email, preference};
use crate::domains::{leads, users};
use jtcrm_kernel::config::Settings;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::jobs::{self, NewJob, Registry};

pub const MAX_SUBJECT_CHARS: usize = 300;
pub const MAX_BODY_CHARS: usize = 100_000;
pub const MAX_KIND_CHARS: usize = 40;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;
/// The subject of an email whose subject is blank.
pub const NO_SUBJECT: &str = "(sem assunto)";

/// An email to store and send. See [`queue`].
#[derive(Debug, Clone)]
pub struct NewEmail {
    pub tenant_id: Uuid,
    pub to: String,
    pub subject: String,
    pub body_text: String,
    /// The lead it is about: a sent email appears in that lead's timeline.
    pub lead_id: Option<Uuid>,
    /// The recipient user, if internal (reminders, digests); they can see it in `/api/emails`.
    pub user_id: Option<Uuid>,
    /// What produced it: `automation`, `cadence`, `reminder`, `digest`, …
    pub kind: &'static str,
    /// Same key (within the tenant) ⇒ same email, sent at most once.
    pub idempotency_key: Option<String>,
    /// The user who caused it; `None` for the system and automations.
    pub actor_id: Option<Uuid>,
}

/// Stores the email (status `queued`, or `not_configured` when SMTP is not set — never reported
/// as sent) and enqueues its `email.send` job on `conn`, normally the caller's transaction, so the
/// email exists if and only if the caller's change commits. Returns the email id: the existing
/// one when the idempotency key was already used (nothing is stored or sent again).
///
/// Bad input (an invalid address, a subject over 300 characters, a lead or user of another
/// tenant) answers `422` naming the field, before anything is written, so the caller's transaction
/// stays usable (also on PostgreSQL); in a job that becomes a permanent failure. A blank subject
/// becomes [`NO_SUBJECT`]; line breaks in the subject are folded into spaces.
pub async fn queue<C: ConnectionTrait>(
    conn: &C,
    state_settings: &Settings,
    e: NewEmail,
) -> AppResult<Uuid> {
    let mut v = Validator::new();
    let to = e.to.trim().to_string();
    if to.is_empty() {
        v.add("to", "required", "Campo obrigatório");
    } else if to.chars().count() > 320 || !smtp::is_valid_address(&to) {
        v.add("to", "invalid_email", "E-mail do destinatário inválido");
    }
    // Header values are single lines: a line break in a subject is a template artefact, not
    // an intent (and never a way to inject headers).
    let subject: String = e
        .subject
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    // A template whose placeholders all rendered empty still sends (docs/automations.md: a missing value never
    // fails at send time).
    let subject = if subject.is_empty() {
        NO_SUBJECT.to_string()
    } else {
        subject
    };
    if subject.chars().count() > MAX_SUBJECT_CHARS {
        v.add(
            "subject",
            "too_long",
            &format!("Máximo de {MAX_SUBJECT_CHARS} caracteres"),
        );
    }
    if e.body_text.chars().count() > MAX_BODY_CHARS {
        v.add(
            "body_text",
            "too_long",
            &format!("Máximo de {MAX_BODY_CHARS} caracteres"),
        );
    }
    if e.kind.is_empty()
        || e.kind.len() > MAX_KIND_CHARS
        || !e
            .kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
    {
        v.add("kind", "invalid_value", "Tipo de e-mail inválido");
    }
    if let Some(k) = &e.idempotency_key
        && (k.is_empty() || k.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS)
    {
        v.add(
            "idempotency_key",
            "invalid_value",
            &format!("A chave deve ter de 1 a {MAX_IDEMPOTENCY_KEY_CHARS} caracteres"),
        );
    }
    v.finish()?;

    // Links stay inside the tenant: a lead or user of another tenant is refused.
    if let Some(l) = e.lead_id
        && !leads::exists(conn, e.tenant_id, l).await?
    {
        return Err(AppError::field(
            "lead_id",
            "unknown_lead",
            "Lead inexistente",
        ));
    }
    if let Some(u) = e.user_id
        && !users::service::exists(conn, e.tenant_id, u).await?
    {
        return Err(AppError::field(
            "user_id",
            "unknown_user",
            "Usuário inexistente",
        ));
    }

    let configured = state_settings.smtp_configured();
    let status = if configured {
        EmailStatus::Queued
    } else {
        EmailStatus::NotConfigured
    };
    let now = Utc::now();
    let id = Uuid::now_v7();
    let row = email::ActiveModel {
        tenant_id: Set(e.tenant_id),
        id: Set(id),
        to_address: Set(to),
        subject: Set(subject),
        body_text: Set(e.body_text),
        kind: Set(e.kind.to_string()),
        lead_id: Set(e.lead_id),
        user_id: Set(e.user_id),
        status: Set(status.as_str().to_string()),
        attempts: Set(0),
        last_error: Set(None),
        provider_message_id: Set(None),
        idempotency_key: Set(e.idempotency_key.clone()),
        send_claim: Set(None),
        actor_id: Set(e.actor_id),
        created_at: Set(now),
        updated_at: Set(now),
        sent_at: Set(None),
    };
    match &e.idempotency_key {
        None => {
            email::Entity::insert(row)
                .exec_without_returning(conn)
                .await?;
        }
        Some(key) => {
            // ON CONFLICT DO NOTHING rather than catching the violation: on PostgreSQL a failed
            // INSERT would abort the caller's whole transaction.
            let res = email::Entity::insert(row)
                .on_conflict_do_nothing_on([email::Column::TenantId, email::Column::IdempotencyKey])
                .exec_without_returning(conn)
                .await?;
            if !matches!(res, TryInsertResult::Inserted(n) if n > 0) {
                let existing: Option<Uuid> = email::Entity::find()
                    .select_only()
                    .column(email::Column::Id)
                    .filter(email::Column::TenantId.eq(e.tenant_id))
                    .filter(email::Column::IdempotencyKey.eq(key.as_str()))
                    .into_tuple()
                    .one(conn)
                    .await?;
                return existing.ok_or_else(|| {
                    AppError::internal(anyhow::anyhow!(
                        "email idempotency key conflict without a holder"
                    ))
                });
            }
        }
    }
    if configured {
        jobs::enqueue(
            conn,
            NewJob::new(send::KIND, json!({ "email_id": id }))
                .tenant(e.tenant_id)
                .idempotency_key(format!("{}:{}:{id}", send::KIND, e.tenant_id))
                .max_attempts(send::MAX_ATTEMPTS),
        )
        .await?;
    }
    Ok(id)
}

/// Registers the e-mail jobs: sending, and the periodic reminder scan and digest planner.
pub fn register(r: &mut Registry) {
    r.register(send::KIND, send::run);
}

pub fn to_dto(m: email::Model) -> Email {
    Email {
        id: m.id,
        to: m.to_address,
        subject: m.subject,
        body_text: m.body_text,
        kind: m.kind,
        lead_id: m.lead_id,
        user_id: m.user_id,
        // Statuses are written only by this module.
        status: EmailStatus::parse(&m.status).unwrap_or(EmailStatus::Dead),
        attempts: m.attempts,
        last_error: m.last_error,
        provider_message_id: m.provider_message_id,
        created_at: m.created_at,
        sent_at: m.sent_at,
        actor_id: m.actor_id,
    }
}

/// Companies with at least one user opted in to the daily digest.
pub async fn digest_tenants<C: ConnectionTrait>(conn: &C) -> AppResult<Vec<Uuid>> {
    Ok(preference::Entity::find()
        .select_only()
        .column(preference::Column::TenantId)
        .distinct()
        .filter(preference::Column::DailyDigest.eq(true))
        .into_tuple()
        .all(conn)
        .await?)
}

/// The users of the company opted in to the daily digest.
pub async fn digest_subscribers<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
) -> AppResult<Vec<Uuid>> {
    Ok(preference::Entity::find()
        .select_only()
        .column(preference::Column::UserId)
        .filter(preference::Column::TenantId.eq(tenant_id))
        .filter(preference::Column::DailyDigest.eq(true))
        .into_tuple()
        .all(conn)
        .await?)
}
