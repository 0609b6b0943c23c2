//! Sales pipelines (Kanban), their stages, opportunities with recurring-revenue items, the board and
//! the stage history. Money is integer BRL cents; see docs/pipelines.md for the rounding rule.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::products::Billing;

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
    /// `open` stages hold deals in progress; moving a deal into a `won` or `lost` stage closes it.
    StageKind { Open => "open", Won => "won", Lost => "lost" }
);

string_enum!(
    OpportunityStatus { Open => "open", Won => "won", Lost => "lost" }
);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "0193a1b2-0000-7000-8000-000000000051", "name": "Proposta", "position": 2,
    "probability": 50, "kind": "open", "color": "#F59E0B"}))]
pub struct Stage {
    pub id: Uuid,
    pub name: String,
    /// 0-based order within the pipeline.
    pub position: i32,
    /// 0–100: the default probability of the deals in this stage.
    pub probability: i32,
    pub kind: StageKind,
    /// `#RRGGBB`.
    pub color: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-000000000050", "name": "Funil de Vendas", "is_default": true,
    "stages": [
        {"id": "0193a1b2-0000-7000-8000-000000000051", "name": "Prospecção", "position": 0, "probability": 10, "kind": "open", "color": "#64748B"},
        {"id": "0193a1b2-0000-7000-8000-000000000056", "name": "Fechado Ganho", "position": 4, "probability": 100, "kind": "won", "color": "#16A34A"}
    ],
    "created_at": "2026-11-29T12:00:00Z", "updated_at": "2026-11-29T12:00:00Z", "version": 1
}))]
pub struct Pipeline {
    pub id: Uuid,
    pub name: String,
    /// The pipeline used when a lead is converted or a deal created without `pipeline_id`.
    pub is_default: bool,
    /// In order.
    pub stages: Vec<Stage>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

/// Body of `POST /api/pipelines` and `PUT /api/pipelines/{id}`. `stages` is accepted on creation
/// only (default: the pt-BR stages of the default pipeline); afterwards use the stage endpoints.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Corporativo", "stages": [
    {"name": "Contato", "probability": 10}, {"name": "Proposta", "probability": 50},
    {"name": "Ganho", "kind": "won"}, {"name": "Perdido", "kind": "lost"}]}))]
pub struct PipelineInput {
    /// Required (not blank) on create and on update, at most 120 characters.
    #[schema(required = true, value_type = String, pattern = r"\S", max_length = 120)]
    pub name: Option<String>,
    /// `true` makes this the tenant's default pipeline (the previous default stops being it).
    pub is_default: Option<bool>,
    pub stages: Option<Vec<StageInput>>,
}

/// A stage to create or change. On change, absent keys are kept.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Visita técnica", "probability": 40, "kind": "open", "color": "#0EA5E9", "position": 2}))]
pub struct StageInput {
    /// Required on create (not blank), at most 80 characters.
    #[schema(pattern = r"\S", max_length = 80)]
    pub name: Option<String>,
    /// 0–100; default 100 for `won`, 0 for `lost`, 0 for `open`.
    #[schema(minimum = 0, maximum = 100)]
    pub probability: Option<i32>,
    /// `open` (default), `won` or `lost`.
    #[schema(value_type = Option<StageKind>)]
    pub kind: Option<String>,
    /// `#RRGGBB`; default by kind.
    #[schema(pattern = r"^\s*#[0-9A-Fa-f]{6}\s*$")]
    pub color: Option<String>,
    /// 0-based index to insert at (or move to); default: the end (beyond the end is the end).
    #[schema(minimum = 0)]
    pub position: Option<i32>,
}

/// Body of `PUT /api/pipelines/{id}/stages`: every stage id of the pipeline, in the new order.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct StageOrder {
    /// Every stage id of the pipeline, each once.
    #[schema(required = true, nullable = false, min_items = 1)]
    pub stage_ids: Option<Vec<Uuid>>,
}

/// One line of a deal.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-000000000061", "product_id": "0193a1b2-0000-7000-8000-000000000040",
    "product_name": "Link Dedicado 100 Mbps", "sku": "LD-100", "billing": "monthly", "quantity": 2,
    "monthly_price_cents": 120000, "setup_price_cents": 50000, "discount_percent": 10.0,
    "monthly_total_cents": 216000, "setup_total_cents": 90000
}))]
pub struct OpportunityItem {
    pub id: Uuid,
    pub product_id: Uuid,
    /// Name, SKU and billing of the product when the line was written.
    pub product_name: String,
    pub sku: String,
    pub billing: Billing,
    pub quantity: i32,
    /// Unit prices (BRL cents): the product's unless overridden.
    pub monthly_price_cents: i64,
    pub setup_price_cents: i64,
    /// 0–100 with up to two decimals, applied to both unit prices of the line.
    pub discount_percent: f64,
    /// `round_half_up(quantity × monthly_price_cents × (100 − discount_percent) / 100)`.
    pub monthly_total_cents: i64,
    /// `round_half_up(quantity × setup_price_cents × (100 − discount_percent) / 100)`.
    pub setup_total_cents: i64,
}

/// A line to write. With `id` of an existing line, absent keys keep that line's values; otherwise
/// prices default from the product (which must be active).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"product_id": "0193a1b2-0000-7000-8000-000000000040", "quantity": 2, "discount_percent": 10}))]
pub struct OpportunityItemInput {
    pub id: Option<Uuid>,
    pub product_id: Option<Uuid>,
    /// 1–100000; default 1.
    pub quantity: Option<i32>,
    pub monthly_price_cents: Option<i64>,
    pub setup_price_cents: Option<i64>,
    /// 0–100, at most two decimals; default 0.
    pub discount_percent: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-000000000060", "title": "FibraNet — Link 100 Mbps",
    "lead_id": "0193a1b2-0000-7000-8000-000000000010", "pipeline_id": "0193a1b2-0000-7000-8000-000000000050",
    "stage_id": "0193a1b2-0000-7000-8000-000000000053", "owner_id": "0193a1b2-0000-7000-8000-000000000003",
    "status": "open", "lost_reason": null, "expected_close_date": "2026-12-20", "probability": 50,
    "probability_overridden": false, "term_months": 24, "value_cents": 5274000, "mrr_cents": 216000,
    "setup_cents": 90000, "tcv_cents": 5274000, "weighted_cents": 2637000, "position": 65536,
    "notes": null, "stage_entered_at": "2026-11-29T12:00:00Z", "closed_at": null,
    "created_at": "2026-11-29T12:00:00Z", "updated_at": "2026-11-29T12:00:00Z", "version": 3
}))]
pub struct Opportunity {
    pub id: Uuid,
    pub title: String,
    pub lead_id: Option<Uuid>,
    pub pipeline_id: Uuid,
    pub stage_id: Uuid,
    pub owner_id: Option<Uuid>,
    pub status: OpportunityStatus,
    /// Set while `status` is `lost`.
    pub lost_reason: Option<String>,
    pub expected_close_date: Option<NaiveDate>,
    /// 0–100: the stage's probability unless overridden.
    pub probability: i32,
    pub probability_overridden: bool,
    /// Contract term in months (multiplies MRR in the TCV).
    pub term_months: i32,
    /// The deal's value: `tcv_cents` when it has items, the one-off amount given otherwise.
    pub value_cents: i64,
    /// Monthly recurring revenue: sum of the lines' monthly totals.
    pub mrr_cents: i64,
    /// One-off revenue: sum of the lines' setup totals.
    pub setup_cents: i64,
    /// Total contract value: `mrr_cents × term_months + setup_cents` (or `value_cents` without items).
    pub tcv_cents: i64,
    /// `round_half_up(value_cents × probability / 100)`.
    pub weighted_cents: i64,
    /// Order within the stage (ascending); opaque, only relative order matters.
    pub position: i64,
    /// The lines; present on single-deal responses, omitted in lists and on the board.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<OpportunityItem>>,
    pub notes: Option<String>,
    pub stage_entered_at: DateTime<Utc>,
    /// When the deal was won or lost.
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

/// Body of `POST /api/pipelines/opportunities`, `PUT` and `PATCH /api/pipelines/opportunities/{id}`.
/// On `PATCH`, absent keys are kept and `null` clears; on `PUT`, absent optional keys are cleared.
/// Changing `stage_id` moves the deal to the end of that stage (see `/move` for precise placement).
/// `status` cannot be changed here (use `/move`, `/won`, `/lost`, `/reopen`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "title": "FibraNet — Link 100 Mbps", "lead_id": "0193a1b2-0000-7000-8000-000000000010",
    "pipeline_id": "0193a1b2-0000-7000-8000-000000000050", "term_months": 24,
    "expected_close_date": "2026-12-20",
    "items": [{"product_id": "0193a1b2-0000-7000-8000-000000000040", "quantity": 2, "discount_percent": 10}]
}))]
pub struct OpportunityInput {
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub lead_id: Option<Option<Uuid>>,
    /// Default: the stage's pipeline, else the default pipeline.
    pub pipeline_id: Option<Uuid>,
    /// Default: the pipeline's first open stage.
    pub stage_id: Option<Uuid>,
    /// Default: the caller. Only admins and managers give deals to someone else.
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub owner_id: Option<Option<Uuid>>,
    /// Accepted only when equal to the current status (so a fetched deal can be sent back).
    #[schema(value_type = Option<OpportunityStatus>)]
    pub status: Option<String>,
    /// Required when `stage_id` names a `lost` stage; editable while the deal is lost.
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub lost_reason: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub expected_close_date: Option<Option<NaiveDate>>,
    /// 0–100 overrides the stage's probability; `null` goes back to the stage's.
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    #[schema(minimum = 0, maximum = 100)]
    pub probability: Option<Option<i32>>,
    /// 1–600; default 12.
    #[schema(minimum = 1, maximum = 600)]
    pub term_months: Option<i32>,
    /// The one-off value of a deal without items (ignored when equal to the computed TCV).
    #[schema(minimum = 0, maximum = 100_000_000_000_i64)]
    pub value_cents: Option<i64>,
    /// The full list of lines (replaces the current lines).
    pub items: Option<Vec<OpportunityItemInput>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub notes: Option<Option<String>>,
}

/// Body of `POST /api/pipelines/opportunities/{id}/move`. Without `before_id`/`after_id` the card
/// goes to the end of the stage.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"stage_id": "0193a1b2-0000-7000-8000-000000000053", "before_id": "0193a1b2-0000-7000-8000-000000000070"}))]
pub struct MoveRequest {
    /// Target stage (same pipeline or another one of the tenant).
    pub stage_id: Option<Uuid>,
    /// Place the card just above this card of the target stage.
    pub before_id: Option<Uuid>,
    /// Place the card just below this card of the target stage.
    pub after_id: Option<Uuid>,
    /// Required when the target stage is a `lost` stage.
    pub lost_reason: Option<String>,
}

/// Body of `POST /api/pipelines/opportunities/{id}/lost`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"reason": "Preço acima do concorrente"}))]
pub struct LostRequest {
    /// Not blank, at most 500 characters.
    #[schema(required = true, value_type = String, pattern = r"\S", max_length = 500)]
    pub reason: Option<String>,
}

/// Body of `POST /api/leads/{id}/convert` (optional).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"pipeline_id": "0193a1b2-0000-7000-8000-000000000050", "title": "FibraNet — Link 100 Mbps",
    "term_months": 24, "items": [{"product_id": "0193a1b2-0000-7000-8000-000000000040", "quantity": 1}]}))]
pub struct ConvertLeadRequest {
    /// Default: the tenant's default pipeline.
    pub pipeline_id: Option<Uuid>,
    /// Default: the lead's company, else its name.
    pub title: Option<String>,
    pub items: Option<Vec<OpportunityItemInput>>,
    pub term_months: Option<i32>,
    #[schema(minimum = 0, maximum = 100_000_000_000_i64)]
    pub value_cents: Option<i64>,
    pub expected_close_date: Option<NaiveDate>,
    pub notes: Option<String>,
}

string_enum!(
    /// What a history entry records: `created` (first stage), `stage_changed` (moved between
    /// stages, status unchanged), `won`, `lost`, `reopened` (status changed, with or without a
    /// stage change).
    StageEvent {
        Created => "created", StageChanged => "stage_changed", Won => "won", Lost => "lost",
        Reopened => "reopened",
    }
);

/// One stage or status change of a deal.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StageChange {
    pub id: Uuid,
    pub event: StageEvent,
    pub from_stage_id: Option<Uuid>,
    pub from_stage_name: Option<String>,
    pub to_stage_id: Uuid,
    pub to_stage_name: String,
    pub from_status: Option<OpportunityStatus>,
    pub to_status: OpportunityStatus,
    pub lost_reason: Option<String>,
    /// Time spent in the `from` stage before this change (seconds).
    pub seconds_in_from_stage: Option<i64>,
    pub actor_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// One column of the board.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BoardStage {
    pub id: Uuid,
    pub name: String,
    pub kind: StageKind,
    pub position: i32,
    pub probability: i32,
    pub color: String,
    /// Deals in the stage (visible to the caller).
    pub count: u64,
    pub value_cents: i64,
    pub mrr_cents: i64,
    pub tcv_cents: i64,
    /// `round_half_up(Σ value_cents × probability / 100)` over the stage's deals.
    pub weighted_cents: i64,
    /// The first cards in stage order.
    pub cards: Vec<Opportunity>,
    /// Continue with `GET /api/pipelines/opportunities?stage_id={id}&sort=position&cursor=…`.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Board {
    pub pipeline_id: Uuid,
    pub name: String,
    pub stages: Vec<BoardStage>,
}
