//! Telephony on the tenant's cloud PABX: extensions, click-to-call, the call log and caller
//! lookup (`/api/telephony/…`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::leads::{LeadSource, LeadStatus};

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $s),+ } }
            pub fn parse(s: &str) -> Option<$name> { match s { $($s => Some($name::$variant),)+ _ => None } }
        }
    };
}

string_enum!(
    /// As seen from the tenant's PABX.
    CallDirection { Inbound => "inbound", Outbound => "outbound", Internal => "internal" }
);

string_enum!(
    /// How a call ended (from the PABX's call record).
    CallOutcome {
        Answered => "answered", NoAnswer => "no_answer", Busy => "busy", Failed => "failed",
        Canceled => "canceled",
    }
);

string_enum!(
    /// `dialing`: placed by click-to-call, nothing heard back yet; `ended`: the PABX reported the
    /// end (webhook), its call record is awaited; `completed`: the call record was read (outcome,
    /// durations, recordings); `failed`: the PABX refused to place the call.
    CallStatus { Dialing => "dialing", Ended => "ended", Completed => "completed", Failed => "failed" }
);

string_enum!(
    /// Where the CRM first learned of the call.
    CallSource { ClickToCall => "click_to_call", Webhook => "webhook", History => "history" }
);

string_enum!(
    /// `crm`: created through the API; `pabx`: imported by the sync from the PABX.
    ExtensionOrigin { Crm => "crm", Pabx => "pabx" }
);

string_enum!(
    /// `pending`: to be copied; `stored`: in the CRM's storage; `failed`: the copy gave up;
    /// `deleted`: removed after the retention period.
    RecordingStatus { Pending => "pending", Stored => "stored", Failed => "failed", Deleted => "deleted" }
);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-000000000071", "provider_id": "12", "number": "1001", "name": "Maria Vendas",
    "user_id": "0193a1b2-0000-7000-8000-000000000003", "group": "Comercial", "area_code": 11,
    "record_calls": true, "blocked": false, "origin": "crm", "synced_at": "2026-12-08T12:00:00Z",
    "created_at": "2026-12-08T12:00:00Z", "updated_at": "2026-12-08T12:00:00Z", "version": 1
}))]
pub struct Extension {
    pub id: Uuid,
    /// The PABX's id (`ramal_id`); `null` until the PABX confirmed it.
    pub provider_id: Option<String>,
    /// What is dialled, 2 to 6 digits.
    pub number: String,
    pub name: String,
    /// The CRM user who uses this extension (click-to-call rings it).
    pub user_id: Option<Uuid>,
    pub group: Option<String>,
    /// The extension's own DDD (decides local vs long-distance dialling).
    pub area_code: Option<i32>,
    pub record_calls: bool,
    pub blocked: bool,
    pub origin: ExtensionOrigin,
    pub synced_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

/// Body of `POST /api/telephony/extensions` (all of `number`, `name`) and `PUT …/{id}` (any
/// subset; `user_id: null` unmaps the user).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"number": "1001", "name": "Maria Vendas", "user_id": "0193a1b2-0000-7000-8000-000000000003", "group": "Comercial", "area_code": 11, "record_calls": true}))]
pub struct ExtensionInput {
    pub number: Option<String>,
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub user_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub group: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub area_code: Option<Option<i32>>,
    pub record_calls: Option<bool>,
    pub blocked: Option<bool>,
}

/// What an extension sync did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"imported": 2, "updated": 1, "removed": 0, "skipped_over_limit": 0}))]
pub struct ExtensionSync {
    /// Extensions found on the PABX and created in the CRM.
    pub imported: u32,
    /// CRM extensions whose PABX fields changed.
    pub updated: u32,
    /// CRM extensions no longer on the PABX, removed.
    pub removed: u32,
    /// PABX extensions not imported because the plan's `max_extensions` was reached.
    pub skipped_over_limit: u32,
}

/// Body of `POST /api/telephony/call`: a lead (its phone is dialled) or a phone number.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"lead_id": "0193a1b2-0000-7000-8000-000000000010"}))]
pub struct ClickToCallRequest {
    pub lead_id: Option<Uuid>,
    /// Any Brazilian format or E.164; normalised to E.164.
    pub phone: Option<String>,
    /// The extension number to ring first; default: the caller's own extension.
    pub extension: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CallRecording {
    pub id: Uuid,
    pub position: i32,
    pub status: RecordingStatus,
    pub size_bytes: Option<i64>,
    pub content_type: Option<String>,
    /// `GET` it (authenticated) to stream the audio while `status` is `stored`.
    pub url: String,
    pub delete_after: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-000000000081", "provider_call_id": "1000001", "direction": "outbound",
    "status": "completed", "outcome": "answered", "source": "click_to_call",
    "from_number": "1001", "to_number": "987654321", "counterpart": "+5511987654321", "extension": "1001",
    "user_id": "0193a1b2-0000-7000-8000-000000000003", "lead_id": "0193a1b2-0000-7000-8000-000000000010",
    "opportunity_id": null, "started_at": "2026-12-08T12:00:00Z", "duration_s": 47, "talk_s": 42, "wait_s": 0,
    "sip_code": 200, "hangup_reason": "Origem desligou", "contact_name": null, "transcription": null, "summary": null,
    "recordings": [], "callback_task_id": null, "error": null,
    "created_at": "2026-12-08T12:00:00Z", "updated_at": "2026-12-08T12:01:00Z", "version": 2
}))]
pub struct Call {
    pub id: Uuid,
    pub provider_call_id: Option<String>,
    pub direction: CallDirection,
    pub status: CallStatus,
    /// Known once `completed`.
    pub outcome: Option<CallOutcome>,
    pub source: CallSource,
    /// As the PABX wrote them.
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    /// The outside party in E.164 (the caller of an inbound call, the callee of an outbound one).
    pub counterpart: Option<String>,
    pub extension: Option<String>,
    pub user_id: Option<Uuid>,
    pub lead_id: Option<Uuid>,
    pub opportunity_id: Option<Uuid>,
    pub started_at: DateTime<Utc>,
    /// Ringing included.
    pub duration_s: i32,
    /// Conversation time.
    pub talk_s: i32,
    pub wait_s: i32,
    pub sip_code: Option<i32>,
    pub hangup_reason: Option<String>,
    pub contact_name: Option<String>,
    /// The PABX's transcription and summary, when it provides them.
    pub transcription: Option<String>,
    pub summary: Option<String>,
    pub recordings: Vec<CallRecording>,
    /// The follow-up task created for a missed inbound call.
    pub callback_task_id: Option<Uuid>,
    /// Why the PABX refused to place the call (`status` `failed`).
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

/// A lead whose phone matches the number.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LeadMatch {
    pub id: Uuid,
    pub name: String,
    pub company: Option<String>,
    pub phone: Option<String>,
    pub status: LeadStatus,
    pub owner_id: Option<Uuid>,
    pub score: i32,
}

/// What to prefill when no lead matches.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LeadSuggestion {
    pub name: String,
    pub phone: String,
    pub source: LeadSource,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "number": "(11) 98765-4321", "e164": "+5511987654321",
    "leads": [{"id": "0193a1b2-0000-7000-8000-000000000010", "name": "João da Silva", "company": "FibraNet",
        "phone": "+5511987654321", "status": "new", "owner_id": null, "score": 40}],
    "suggestion": null
}))]
pub struct CallerLookup {
    pub number: String,
    pub e164: String,
    /// Every lead the caller may see whose phone is this number (most recent first).
    pub leads: Vec<LeadMatch>,
    /// When nothing matches: a new lead to offer (source `inbound_call`).
    pub suggestion: Option<LeadSuggestion>,
}

/// Answer to a call event pushed by the PABX.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"call_id": "0193a1b2-0000-7000-8000-000000000081", "provider_call_id": "1000001"}))]
pub struct CallEventAccepted {
    pub call_id: Uuid,
    pub provider_call_id: String,
}
