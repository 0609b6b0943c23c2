//! Contracts: made from an accepted proposal or an opportunity, with the loyalty term
//! (fidelização), the early-termination fee rule, the SLA and the equipment on loan (comodato);
//! frozen when sent (PDF bytes and SHA-256), signed by every signer through a provider
//! (`email_link`; D4Sign plugs into the same interface) or recorded as signed outside the system,
//! then activated or cancelled. Money in integer BRL cents. See docs/contracts.md.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::proposals::{ProposalItem, ProposalItemInput};

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
    /// `draft` → `sent` → `partially_signed` → `signed` → `active` → `cancelled` | `expired`.
    /// A sent contract whose signing deadline passed unsigned, and an active contract past the end
    /// of its term, read as `expired`.
    ContractStatus {
        Draft => "draft", Sent => "sent", PartiallySigned => "partially_signed",
        Signed => "signed", Active => "active", Cancelled => "cancelled", Expired => "expired",
    }
);

string_enum!(
    /// How signatures are collected. `email_link`: each signer gets a link, reviews the PDF and
    /// signs by typing name and CPF. (`d4sign` arrives with the e-signature integration.)
    SignatureProvider { EmailLink => "email_link" }
);

string_enum!(
    /// How a signature was made: through the provider's link, or outside the system (in person,
    /// on paper) and recorded by an admin or manager with an evidence file.
    SignatureMethod { EmailLink => "email_link", External => "external" }
);

string_enum!(
    SignerStatus { Pending => "pending", Signed => "signed" }
);

/// A piece of equipment lent to the customer for the contract's term (comodato).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Equipment {
    pub name: String,
    pub quantity: i32,
    pub serial: Option<String>,
}

/// Equipment to write.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct EquipmentInput {
    /// Required, 1–200 characters.
    pub name: Option<String>,
    /// 1–10000; default 1.
    pub quantity: Option<i32>,
    pub serial: Option<String>,
}

/// Evidence of one signature.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignatureEvidence {
    pub method: SignatureMethod,
    /// Name typed by the signer (or recorded by the admin).
    pub name: String,
    /// CPF, masked.
    pub cpf: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub at: DateTime<Utc>,
    /// SHA-256 (hex) of the frozen PDF that was signed.
    pub document_sha256: String,
    /// The uploaded evidence (external signatures): download it at
    /// `/api/contracts/{id}/signers/{signer_id}/evidence`.
    pub evidence_file_id: Option<Uuid>,
    /// Who recorded an external signature.
    pub recorded_by: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Signer {
    pub id: Uuid,
    pub name: String,
    pub email: Option<String>,
    /// When set, the signer must type this CPF to sign.
    pub cpf: Option<String>,
    /// 1, 2, … (display order).
    pub position: i32,
    pub status: SignerStatus,
    pub signature: Option<SignatureEvidence>,
}

/// A signer to write.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct SignerInput {
    /// Required, 1–200 characters.
    pub name: Option<String>,
    /// Required to send by `email_link`.
    pub email: Option<String>,
    /// Optional; when given, a valid CPF the signer must type to sign.
    pub cpf: Option<String>,
}

/// The fee when the customer cancels before the loyalty term ends:
/// `percent_of_remaining`% of the monthly fees left until the term's end
/// (`round(mrr_cents × months_left × percent / 100)`, months counted as whole calendar months
/// elapsed since `start_date`; see docs/contracts.md).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct EarlyTerminationRule {
    /// 0–100; default 30.
    pub percent_of_remaining: i32,
}

impl Default for EarlyTerminationRule {
    fn default() -> Self {
        Self {
            percent_of_remaining: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-0000000000c0", "number": "CTR-2026-0001", "title": "FibraNet — Link 100 Mbps",
    "proposal_id": "0193a1b2-0000-7000-8000-0000000000a0", "opportunity_id": "0193a1b2-0000-7000-8000-000000000060",
    "lead_id": "0193a1b2-0000-7000-8000-000000000010", "owner_id": "0193a1b2-0000-7000-8000-000000000003",
    "template_id": null, "status": "draft", "items": [], "mrr_cents": 216000, "setup_cents": 90000, "tcv_cents": 5274000,
    "term_months": 24, "start_date": null, "end_date": null, "early_termination": {"percent_of_remaining": 30},
    "sla": "Disponibilidade mínima de 99,5%", "equipment": [{"name": "Roteador", "quantity": 1, "serial": null}],
    "signers": [], "provider": "email_link", "revision": 1, "generated_content": null, "document_sha256": null,
    "sent_at": null, "signed_at": null, "activated_at": null, "cancelled_at": null, "cancel_reason": null,
    "termination_fee_cents": null, "created_at": "2026-12-07T12:00:00Z", "updated_at": "2026-12-07T12:00:00Z", "version": 1
}))]
pub struct Contract {
    pub id: Uuid,
    /// `CTR-{year}-{seq:04}`, per tenant and year, without gaps.
    pub number: String,
    pub title: String,
    pub proposal_id: Option<Uuid>,
    pub opportunity_id: Uuid,
    pub lead_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    /// `null` = the tenant's default contract template.
    pub template_id: Option<Uuid>,
    pub status: ContractStatus,
    pub items: Vec<ProposalItem>,
    pub mrr_cents: i64,
    pub setup_cents: i64,
    /// `mrr_cents × term_months + setup_cents`.
    pub tcv_cents: i64,
    /// The loyalty term (fidelização), in months.
    pub term_months: i32,
    pub start_date: Option<NaiveDate>,
    /// The last day of the term (`start_date + term_months − 1 day`).
    pub end_date: Option<NaiveDate>,
    pub early_termination: EarlyTerminationRule,
    pub sla: String,
    pub equipment: Vec<Equipment>,
    pub signers: Vec<Signer>,
    pub provider: SignatureProvider,
    /// The document version (1, 2, …); a change after sending opens the next.
    pub revision: i32,
    /// The rendered document of the current revision (frozen once sent).
    pub generated_content: Option<String>,
    /// SHA-256 (hex) of the frozen PDF of the current revision (`null` while a draft).
    pub document_sha256: Option<String>,
    /// Unsigned signers' links stop working after this.
    pub signature_deadline: Option<NaiveDate>,
    pub sent_at: Option<DateTime<Utc>>,
    pub signed_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    /// Computed when a signed or active contract is cancelled.
    pub termination_fee_cents: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

/// Body of `POST /api/contracts`: from an accepted proposal (`proposal_id`) or an opportunity
/// (`opportunity_id`); exactly one of them.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"proposal_id": "0193a1b2-0000-7000-8000-0000000000a0", "start_date": "2027-01-01", "equipment": [{"name": "Roteador Wi-Fi 6", "quantity": 1}]}))]
pub struct ContractCreate {
    pub proposal_id: Option<Uuid>,
    pub opportunity_id: Option<Uuid>,
    /// A contract template of the tenant; default: the tenant's default.
    pub template_id: Option<Uuid>,
    pub title: Option<String>,
    pub start_date: Option<NaiveDate>,
    /// 1–600; default: the proposal's or opportunity's term.
    pub term_months: Option<i32>,
    pub early_termination: Option<EarlyTerminationRule>,
    /// Default: the standard telecom SLA clause.
    pub sla: Option<String>,
    /// Up to 100.
    pub equipment: Option<Vec<EquipmentInput>>,
    /// Up to 10. Default: the customer who accepted the proposal, else the lead (name, e-mail).
    pub signers: Option<Vec<SignerInput>>,
}

/// Body of `PUT /api/contracts/{id}` (all editable fields; absent optional ones cleared).
/// Changing a sent or partially signed contract opens a new revision in `draft`: earlier
/// signatures and links are void, the sent revision stays readable under `/versions`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"title": "FibraNet — Link 100 Mbps", "term_months": 24, "items": [{"name": "Link Dedicado 100 Mbps", "quantity": 1, "monthly_price_cents": 120000, "setup_price_cents": 50000}], "sla": "99,5%", "equipment": [], "signers": [{"name": "João da Silva", "email": "joao@fibranet.com.br"}], "early_termination": {"percent_of_remaining": 30}}))]
pub struct ContractUpdate {
    pub title: Option<String>,
    pub template_id: Option<Uuid>,
    pub start_date: Option<NaiveDate>,
    pub term_months: Option<i32>,
    pub items: Option<Vec<ProposalItemInput>>,
    pub early_termination: Option<EarlyTerminationRule>,
    pub sla: Option<String>,
    pub equipment: Option<Vec<EquipmentInput>>,
    pub signers: Option<Vec<SignerInput>>,
}

/// Body of `POST /api/contracts/{id}/send` (optional).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct SendContractRequest {
    /// Default `email_link`.
    pub provider: Option<SignatureProvider>,
    /// Days the signers have to sign (1–90; default 30).
    pub deadline_days: Option<i32>,
    /// Extra text at the top of the e-mails.
    pub message: Option<String>,
}

/// One signer's link, shown only in the answer of `send` (only its hash is stored).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignerLink {
    pub signer_id: Uuid,
    pub email: Option<String>,
    pub url: String,
    pub email_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SentContract {
    pub contract: Contract,
    pub links: Vec<SignerLink>,
}

/// Body of `POST /api/contracts/{id}/activate` (optional).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ActivateContractRequest {
    /// The day the services start (default: the contract's `start_date`, else today).
    pub start_date: Option<NaiveDate>,
}

/// Body of `POST /api/contracts/{id}/cancel`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"reason": "Mudança de endereço sem viabilidade", "effective_date": "2027-06-15"}))]
pub struct CancelContractRequest {
    /// Required, 1–2000 characters.
    pub reason: Option<String>,
    /// The day the cancellation takes effect (default today; not before the start date).
    pub effective_date: Option<NaiveDate>,
}

/// The early-termination fee of a contract on a given day.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TerminationFee {
    pub effective_date: NaiveDate,
    pub term_months: i32,
    /// Whole calendar months from `start_date` to `effective_date`.
    pub months_elapsed: i32,
    pub months_remaining: i32,
    pub mrr_cents: i64,
    pub percent_of_remaining: i32,
    pub fee_cents: i64,
}

/// A frozen sent revision.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContractVersion {
    pub revision: i32,
    pub sent_at: DateTime<Utc>,
    pub content: String,
    /// SHA-256 (hex) of the frozen PDF (download it with `/versions/{n}/pdf`).
    pub document_sha256: String,
    pub pdf_size_bytes: i64,
}

/// What a signer's public endpoint shows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicContract {
    pub number: String,
    pub company: String,
    pub title: String,
    pub status: ContractStatus,
    pub signer_name: String,
    pub signer_status: SignerStatus,
    pub items: Vec<ProposalItem>,
    pub mrr_cents: i64,
    pub setup_cents: i64,
    pub tcv_cents: i64,
    pub term_months: i32,
    pub content: String,
    pub document_sha256: String,
}

/// Body of a signer's signature through the link.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"name": "João da Silva", "cpf": "529.982.247-25"}))]
pub struct SignContractRequest {
    pub name: Option<String>,
    pub cpf: Option<String>,
}

/// A tenant file's metadata.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileInfo {
    pub id: Uuid,
    pub kind: String,
    pub name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}
