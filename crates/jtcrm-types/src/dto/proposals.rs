//! Document templates (proposals and contracts) and commercial proposals: numbering, statuses,
//! versions, the customer's public link and its acceptance evidence. Money in integer BRL cents.
//! See docs/proposals.md.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

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
    /// What a template produces.
    TemplateKind { Proposal => "proposal", Contract => "contract" }
);

string_enum!(
    /// `draft` → `sent` → `viewed` → `accepted` | `rejected` | `expired`. A sent or viewed proposal
    /// whose `valid_until` has passed reads as `expired`.
    ProposalStatus {
        Draft => "draft", Sent => "sent", Viewed => "viewed", Accepted => "accepted",
        Rejected => "rejected", Expired => "expired",
    }
);

/// A proposal or contract template (minijinja text; see docs/proposals.md for the variables and
/// the pt-BR filters).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-000000000090", "kind": "proposal", "name": "Proposta padrão",
    "body": "# Proposta {{ proposal.number }}\n\nCliente: {{ customer.name }}\n\n{{ items_table }}\n\nTotal mensal: {{ totals.mrr_cents | brl }}",
    "is_default": true, "created_at": "2026-12-07T12:00:00Z", "updated_at": "2026-12-07T12:00:00Z", "version": 1
}))]
pub struct DocumentTemplate {
    pub id: Uuid,
    pub kind: TemplateKind,
    pub name: String,
    pub body: String,
    /// The template used when a document names none.
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

/// Body of `POST` and `PUT` on `/api/proposals/templates` and `/api/contracts/templates`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Proposta link dedicado", "body": "# Proposta {{ proposal.number }}\n\n{{ items_table }}", "is_default": false}))]
pub struct TemplateInput {
    /// 1–200 characters.
    pub name: Option<String>,
    /// minijinja text, up to 100 000 characters. Syntax errors and unknown filters answer `422`
    /// naming the line and column.
    pub body: Option<String>,
    pub is_default: Option<bool>,
}

/// A line of a proposal (copied from the opportunity, then editable).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ProposalItem {
    pub product_id: Option<Uuid>,
    pub name: String,
    pub sku: Option<String>,
    pub quantity: i32,
    pub monthly_price_cents: i64,
    pub setup_price_cents: i64,
    /// 0–100 with up to two decimals.
    pub discount_percent: f64,
    pub monthly_total_cents: i64,
    pub setup_total_cents: i64,
}

/// A line to write.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ProposalItemInput {
    pub product_id: Option<Uuid>,
    /// Required, 1–200 characters.
    pub name: Option<String>,
    pub sku: Option<String>,
    /// 1–100000; default 1.
    pub quantity: Option<i32>,
    pub monthly_price_cents: Option<i64>,
    pub setup_price_cents: Option<i64>,
    /// 0–100, at most two decimals; default 0.
    pub discount_percent: Option<f64>,
}

/// What the customer recorded when accepting or rejecting through the public link.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProposalDecision {
    /// Name typed by the customer (acceptance only).
    pub name: Option<String>,
    /// CPF typed by the customer, masked (acceptance only).
    pub cpf: Option<String>,
    /// Reason given (rejection only).
    pub reason: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub at: DateTime<Utc>,
    /// SHA-256 (hex) of the rendered document the customer saw.
    pub document_sha256: Option<String>,
}

/// The first opening of the public link.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProposalView {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-0000000000a0", "number": "PROP-2026-0001", "title": "FibraNet — Link 100 Mbps",
    "opportunity_id": "0193a1b2-0000-7000-8000-000000000060", "lead_id": "0193a1b2-0000-7000-8000-000000000010",
    "owner_id": "0193a1b2-0000-7000-8000-000000000003", "template_id": null, "status": "draft",
    "valid_until": "2026-12-31", "term_months": 24, "items": [], "mrr_cents": 216000, "setup_cents": 90000,
    "tcv_cents": 5274000, "notes": null, "revision": 1, "recipient_email": "joao@fibranet.com.br",
    "sent_at": null, "viewed": null, "decision": null, "link_expires_at": null, "link_revoked": false,
    "created_at": "2026-12-07T12:00:00Z", "updated_at": "2026-12-07T12:00:00Z", "version": 1
}))]
pub struct Proposal {
    pub id: Uuid,
    /// `PROP-{year}-{seq:04}`, per tenant and year, without gaps.
    pub number: String,
    pub title: String,
    pub opportunity_id: Uuid,
    pub lead_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    /// `null` = the tenant's default proposal template.
    pub template_id: Option<Uuid>,
    pub status: ProposalStatus,
    pub valid_until: NaiveDate,
    pub term_months: i32,
    pub items: Vec<ProposalItem>,
    pub mrr_cents: i64,
    pub setup_cents: i64,
    /// `mrr_cents × term_months + setup_cents`.
    pub tcv_cents: i64,
    pub notes: Option<String>,
    /// The document version being edited or last sent (1, 2, …); a change after sending opens the next.
    pub revision: i32,
    /// Where the link is e-mailed (default: the lead's e-mail).
    pub recipient_email: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub viewed: Option<ProposalView>,
    /// Acceptance or rejection evidence.
    pub decision: Option<ProposalDecision>,
    pub link_expires_at: Option<DateTime<Utc>>,
    pub link_revoked: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

/// Body of `POST /api/proposals`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"opportunity_id": "0193a1b2-0000-7000-8000-000000000060", "valid_until": "2026-12-31"}))]
pub struct ProposalCreate {
    /// Required: the items, term and customer are copied from it.
    pub opportunity_id: Option<Uuid>,
    /// A proposal template of the tenant; default: the tenant's default.
    pub template_id: Option<Uuid>,
    /// Default: 15 days from today.
    pub valid_until: Option<NaiveDate>,
    pub title: Option<String>,
    pub recipient_email: Option<String>,
    pub notes: Option<String>,
}

/// Body of `PUT` (all editable fields; absent optional ones are cleared) and `PATCH` (absent keys
/// kept) on `/api/proposals/{id}`. Editing a sent or viewed proposal opens a new revision, back in
/// `draft`, and revokes the customer's link.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"valid_until": "2027-01-15", "items": [{"name": "Link Dedicado 100 Mbps", "quantity": 1, "monthly_price_cents": 120000, "setup_price_cents": 50000}]}))]
pub struct ProposalUpdate {
    pub title: Option<String>,
    pub template_id: Option<Uuid>,
    pub valid_until: Option<NaiveDate>,
    /// 1–600.
    pub term_months: Option<i32>,
    pub items: Option<Vec<ProposalItemInput>>,
    pub notes: Option<String>,
    pub recipient_email: Option<String>,
    /// Accepted only when equal to the current status (so a fetched proposal can be sent back).
    pub status: Option<ProposalStatus>,
}

/// Body of `POST /api/proposals/{id}/send` (optional).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct SendProposalRequest {
    /// Default: the proposal's `recipient_email`, else the lead's e-mail.
    pub to: Option<String>,
    /// Extra text at the top of the e-mail.
    pub message: Option<String>,
}

/// Answer of `POST /api/proposals/{id}/send`: the public link is shown only here (only its hash
/// is stored).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SentProposal {
    pub proposal: Proposal,
    pub public_url: String,
    pub email_id: Uuid,
}

/// A frozen sent version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProposalVersion {
    pub revision: i32,
    pub sent_at: DateTime<Utc>,
    pub valid_until: NaiveDate,
    pub term_months: i32,
    pub items: Vec<ProposalItem>,
    pub mrr_cents: i64,
    pub setup_cents: i64,
    pub tcv_cents: i64,
    /// The rendered document (structured text).
    pub content: String,
    /// SHA-256 (hex) of `content`.
    pub content_sha256: String,
}

/// What the customer's public endpoint shows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicProposal {
    pub number: String,
    pub company: String,
    pub title: String,
    pub status: ProposalStatus,
    pub valid_until: NaiveDate,
    pub items: Vec<ProposalItem>,
    pub mrr_cents: i64,
    pub setup_cents: i64,
    pub tcv_cents: i64,
    pub term_months: i32,
    pub content: String,
    pub content_sha256: String,
}

/// Body of the customer's acceptance.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"name": "João da Silva", "cpf": "529.982.247-25"}))]
pub struct AcceptProposalRequest {
    pub name: Option<String>,
    pub cpf: Option<String>,
}

/// Body of the customer's rejection.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"reason": "Preço acima do orçamento"}))]
pub struct RejectProposalRequest {
    pub reason: Option<String>,
}
