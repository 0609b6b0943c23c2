//! Per-tenant integration settings (`/api/integrations/{provider}`): a provider key, a JSON
//! configuration checked by the provider's rules, and secret fields sealed at rest and never
//! returned (only whether each is configured and its last characters).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    /// An external system a tenant connects. Only `pabx` exists today; D4Sign, FlyERP and
    /// WhatsApp reuse the same settings mechanism when they are built.
    IntegrationProvider { Pabx => "pabx" }
);

/// The state of one secret field: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecretStatus {
    pub configured: bool,
    /// The last 2 characters, as `••••a9`, when configured.
    pub masked: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "provider": "pabx", "enabled": true,
    "config": {"base_url": "https://emnuvem.meupabxip.com.br/suite/api", "usuario": "provedor", "area_code": 11,
        "csp": null, "callback_task": true, "callback_sla_minutes": 60, "auto_create_leads": false,
        "recording_retention_days": 90, "answered_min_seconds": 30, "answered_points": 5, "inbound_points": 3},
    "secrets": {"token": {"configured": true, "masked": "••••a9"}},
    "webhook_configured": true,
    "updated_at": "2026-12-08T12:00:00Z", "version": 2
}))]
pub struct IntegrationSettings {
    pub provider: IntegrationProvider,
    pub enabled: bool,
    /// The provider's non-secret configuration (defaults filled in).
    pub config: serde_json::Map<String, serde_json::Value>,
    /// Each secret field of the provider and whether it is set.
    pub secrets: BTreeMap<String, SecretStatus>,
    /// Whether a webhook token exists (`POST …/webhook-token` creates or rotates it).
    pub webhook_configured: bool,
    pub updated_at: Option<DateTime<Utc>>,
    /// 0 while nothing was saved.
    pub version: i32,
}

/// Body of `PUT /api/integrations/{provider}`. `config` replaces the whole configuration; in
/// `secrets`, a string sets the field, `null` clears it and an absent key keeps it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "enabled": true,
    "config": {"base_url": "https://emnuvem.meupabxip.com.br/suite/api", "usuario": "provedor", "area_code": 11},
    "secrets": {"token": "0f1e2d3c4b5a"}
}))]
pub struct IntegrationInput {
    pub enabled: Option<bool>,
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
    pub secrets: Option<BTreeMap<String, Option<String>>>,
}

/// The webhook address, shown once when the token is created or rotated.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "provider": "pabx",
    "path": "/api/webhooks/pabx/0193a1b2000070008000000000000002Zq3k…",
    "token": "0193a1b2000070008000000000000002Zq3k…"
}))]
pub struct WebhookToken {
    pub provider: IntegrationProvider,
    /// Append to the CRM's public base URL and configure it in the provider.
    pub path: String,
    pub token: String,
}

/// What a connection test found.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"ok": true, "detail": "3 ramais encontrados"}))]
pub struct IntegrationTest {
    pub ok: bool,
    pub detail: String,
}
