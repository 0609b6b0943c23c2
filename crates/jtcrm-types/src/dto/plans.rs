use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Numeric limits of a plan; `null` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanLimits {
    pub max_users: Option<i64>,
    pub max_leads: Option<i64>,
    pub max_pipelines: Option<i64>,
    pub max_extensions: Option<i64>,
    pub max_automations: Option<i64>,
    pub api_rate_per_minute: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanFeatures {
    pub telephony: bool,
    pub chatbot: bool,
    pub e_signature: bool,
    pub erp_sync: bool,
    pub whatsapp: bool,
    pub api_access: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "code": "starter", "name": "Starter", "price_cents": 19900, "active": true,
    "limits": {"max_users": 5, "max_leads": 5000, "max_pipelines": 2, "max_extensions": 5, "max_automations": 5, "api_rate_per_minute": 300},
    "features": {"telephony": true, "chatbot": false, "e_signature": false, "erp_sync": false, "whatsapp": false, "api_access": true},
    "created_at": "2026-11-29T12:00:00Z", "updated_at": "2026-11-29T12:00:00Z", "version": 1
}))]
pub struct Plan {
    pub code: String,
    pub name: String,
    /// Monthly price in BRL cents.
    pub price_cents: i64,
    pub active: bool,
    pub limits: PlanLimits,
    pub features: PlanFeatures,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

/// Body of `POST /api/super-admin/plans` (all fields) and `PUT …/plans/{code}` (any subset).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({
    "code": "isp-plus", "name": "ISP Plus", "price_cents": 49900,
    "limits": {"max_users": 20, "max_leads": 50000, "max_pipelines": 5, "max_extensions": 20, "max_automations": 20, "api_rate_per_minute": 600},
    "features": {"telephony": true, "chatbot": true, "e_signature": true, "erp_sync": false, "whatsapp": false, "api_access": true}
}))]
pub struct PlanInput {
    pub code: Option<String>,
    pub name: Option<String>,
    pub price_cents: Option<i64>,
    pub active: Option<bool>,
    pub limits: Option<PlanLimitsInput>,
    pub features: Option<PlanFeaturesInput>,
}

/// Each key present is set (a `null` makes the limit unlimited); absent keys are left as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct PlanLimitsInput {
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub max_users: Option<Option<i64>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub max_leads: Option<Option<i64>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub max_pipelines: Option<Option<i64>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub max_extensions: Option<Option<i64>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub max_automations: Option<Option<i64>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub api_rate_per_minute: Option<Option<i64>>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct PlanFeaturesInput {
    pub telephony: Option<bool>,
    pub chatbot: Option<bool>,
    pub e_signature: Option<bool>,
    pub erp_sync: Option<bool>,
    pub whatsapp: Option<bool>,
    pub api_access: Option<bool>,
}

/// Distinguishes an absent key (`None`) from an explicit `null` (`Some(None)`).
pub fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Deserialize::deserialize(de).map(Some)
}
