//! Outgoing emails (stored, sent by the job queue over SMTP), the SMTP status of the deployment and
//! the per-user email preferences (daily digest opt-in).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Where an email is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmailStatus {
    /// Stored, waiting for the worker.
    Queued,
    /// A worker is talking to the SMTP server right now.
    Sending,
    /// Accepted by the SMTP server.
    Sent,
    /// The last attempt failed with a transient error; it will be retried.
    Failed,
    /// Rejected permanently (5xx) or out of attempts; `last_error` says why.
    Dead,
    /// SMTP is not configured on this deployment: the email was stored and never sent.
    NotConfigured,
}

impl EmailStatus {
    pub const ALL: &'static [EmailStatus] = &[
        EmailStatus::Queued,
        EmailStatus::Sending,
        EmailStatus::Sent,
        EmailStatus::Failed,
        EmailStatus::Dead,
        EmailStatus::NotConfigured,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EmailStatus::Queued => "queued",
            EmailStatus::Sending => "sending",
            EmailStatus::Sent => "sent",
            EmailStatus::Failed => "failed",
            EmailStatus::Dead => "dead",
            EmailStatus::NotConfigured => "not_configured",
        }
    }

    pub fn parse(s: &str) -> Option<EmailStatus> {
        Self::ALL.iter().copied().find(|x| x.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-000000000050", "to": "joao@cliente.com.br",
    "subject": "Lembrete: Ligar para o João", "body_text": "Olá, Ana!\n\nVocê pediu um lembrete…",
    "kind": "reminder", "lead_id": null, "user_id": "0193a1b2-0000-7000-8000-000000000003",
    "status": "sent", "attempts": 1, "last_error": null,
    "provider_message_id": "<0193a1b2-0000-7000-8000-000000000050@crm.jttelecom.com.br>",
    "created_at": "2026-11-29T12:00:00Z", "sent_at": "2026-11-29T12:00:02Z", "actor_id": null
}))]
pub struct Email {
    pub id: Uuid,
    pub to: String,
    pub subject: String,
    pub body_text: String,
    /// What produced it: `automation`, `cadence`, `reminder`, `digest`, …
    pub kind: String,
    pub lead_id: Option<Uuid>,
    /// The recipient user, for internal emails (reminders, digests).
    pub user_id: Option<Uuid>,
    pub status: EmailStatus,
    /// SMTP attempts made so far.
    pub attempts: i32,
    pub last_error: Option<String>,
    /// The `Message-ID` header of the sent message.
    pub provider_message_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// Who caused it (a user, or `null` for the system and automations).
    pub actor_id: Option<Uuid>,
}

/// Whether this deployment can send email, and as whom it sends for the caller's company.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "smtp_configured": true, "from": "no-reply@crm.jttelecom.com.br",
    "sender_name": "Provedor Exemplo", "reply_to": "vendas@provedor.com.br",
    "detail": "E-mails são enviados por SMTP."
}))]
pub struct EmailStatusInfo {
    /// `false`: emails are stored with status `not_configured` and never sent.
    pub smtp_configured: bool,
    /// The envelope and `From` address (`SMTP_FROM`).
    pub from: String,
    /// The display name in `From` (the company's `email_sender_name`, else its name).
    pub sender_name: String,
    pub reply_to: Option<String>,
    /// A sentence for the UI.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"daily_digest": true}))]
pub struct UserPreferences {
    /// Receive every morning (07:00 in the company's timezone) the list of the day's tasks.
    pub daily_digest: bool,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"daily_digest": true}))]
pub struct UserPreferencesInput {
    pub daily_digest: bool,
}
