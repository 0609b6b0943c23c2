use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::common::TenantStatus;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct TenantSettings {
    /// IANA timezone used for agendas and business hours.
    pub timezone: String,
    /// When true, sales and support users see records owned by colleagues too.
    pub team_visibility: bool,
    /// How new leads without an owner are assigned.
    pub lead_assignment: LeadAssignment,
    /// States (UF) the company serves; used by the default scoring rules.
    pub coverage_states: Vec<String>,
    /// Display name in the `From` of the company's emails; `null` = the company's name.
    pub email_sender_name: Option<String>,
    /// `Reply-To` of the company's emails, so answers reach the team; `null` = none.
    pub email_reply_to: Option<String>,
    /// When set, a proposal accepted by the customer moves its opportunity to this stage
    /// (a stage of the tenant; a stage that no longer exists is ignored).
    pub proposal_accept_stage_id: Option<Uuid>,
    /// When true (default), the opportunity of a contract is marked won when its last signer signs.
    pub contract_signed_wins_opportunity: bool,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            timezone: "America/Sao_Paulo".into(),
            team_visibility: false,
            lead_assignment: LeadAssignment::default(),
            coverage_states: vec![],
            email_sender_name: None,
            email_reply_to: None,
            proposal_accept_stage_id: None,
            contract_signed_wins_opportunity: true,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentMode {
    /// Leads stay unassigned.
    #[default]
    None,
    /// Rotate among active `sales` users, fairly under concurrency.
    RoundRobin,
    /// Always the same user (`user_id`).
    Fixed,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct LeadAssignment {
    pub mode: AssignmentMode,
    pub user_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-000000000002", "name": "Provedor Exemplo Ltda", "slug": "provedor-exemplo",
    "email": "contato@provedor.com.br", "cnpj": "11.222.333/0001-81", "subscription_plan": "starter",
    "status": "active", "suspended_reason": null, "settings": {"timezone": "America/Sao_Paulo", "team_visibility": false},
    "created_at": "2026-11-29T12:00:00Z", "updated_at": "2026-11-29T12:00:00Z", "version": 1
}))]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub email: String,
    /// Masked CNPJ (`11.222.333/0001-81`), numeric or alphanumeric.
    pub cnpj: Option<String>,
    pub subscription_plan: String,
    pub status: TenantStatus,
    pub suspended_reason: Option<String>,
    pub settings: TenantSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewTenantAdmin {
    pub name: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "Provedor Exemplo Ltda", "slug": "provedor-exemplo", "email": "contato@provedor.com.br",
    "cnpj": "11.222.333/0001-81", "subscription_plan": "starter",
    "admin": {"name": "Ana Admin", "email": "ana@provedor.com.br", "password": "s3nh4-forte"}
}))]
pub struct CreateTenantRequest {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub email: Option<String>,
    pub cnpj: Option<String>,
    pub subscription_plan: Option<String>,
    pub status: Option<String>,
    pub admin: Option<NewTenantAdmin>,
}

/// Any subset of fields; `cnpj: null` clears the CNPJ.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct UpdateTenantRequest {
    #[schema(pattern = r"\S", max_length = 200)]
    pub name: Option<String>,
    pub slug: Option<String>,
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    #[schema(format = "cnpj")]
    pub cnpj: Option<Option<String>>,
    pub subscription_plan: Option<String>,
    pub status: Option<String>,
    pub settings: Option<TenantSettingsInput>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct TenantSettingsInput {
    pub timezone: Option<String>,
    pub team_visibility: Option<bool>,
    pub lead_assignment: Option<LeadAssignment>,
    pub coverage_states: Option<Vec<String>>,
    /// `null` or `""` clears it.
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub email_sender_name: Option<Option<String>>,
    /// `null` or `""` clears it.
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub email_reply_to: Option<Option<String>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub proposal_accept_stage_id: Option<Option<Uuid>>,
    pub contract_signed_wins_opportunity: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SuspendRequest {
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsageItem {
    pub used: i64,
    /// `null` = unlimited.
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "tenant_id": "0193a1b2-0000-7000-8000-000000000002", "subscription_plan": "starter",
    "usage": {
        "users": {"used": 3, "limit": 5}, "leads": {"used": 120, "limit": 5000},
        "pipelines": {"used": 1, "limit": 2}, "extensions": {"used": 0, "limit": 5},
        "automations": {"used": 0, "limit": 5}, "api_requests_this_minute": {"used": 12, "limit": 300}
    }
}))]
pub struct TenantUsage {
    pub tenant_id: Uuid,
    pub subscription_plan: String,
    pub usage: std::collections::BTreeMap<String, UsageItem>,
}
