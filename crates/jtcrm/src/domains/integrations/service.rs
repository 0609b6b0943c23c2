//! Integration settings: read (secrets masked), replace (secrets sealed), webhook tokens, and the
//! loaders other domains use (decrypted settings, tenants with a provider enabled, sync state).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jtcrm_types::ErrorCode;
use jtcrm_types::dto::integrations::{
    IntegrationInput, IntegrationProvider, IntegrationSettings, IntegrationTest, SecretStatus,
    WebhookToken,
};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::model::setting;
use super::pabx;
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Admins, Authorized};
use jtcrm_kernel::secrets::SecretBox;
use jtcrm_kernel::security::sha256_hex;
use jtcrm_kernel::state::AppState;

/// The secret fields of a provider.
pub fn secret_fields(p: IntegrationProvider) -> &'static [&'static str] {
    match p {
        IntegrationProvider::Pabx => pabx::SECRET_FIELDS,
    }
}

/// The plan feature a provider needs, `403 feature_not_in_plan` when the plan lacks it.
pub fn require_feature(ctx: &TenantCtx, p: IntegrationProvider) -> AppResult<()> {
    let on = match p {
        IntegrationProvider::Pabx => ctx.tenant.features.telephony,
    };
    if on {
        Ok(())
    } else {
        Err(AppError::new(
            ErrorCode::FeatureNotInPlan,
            "A telefonia não está incluída no plano da empresa.",
        )
        .with_context(json!({"feature": "telephony"})))
    }
}

/// Reads the `{provider}` path segment; an unknown provider is `404`.
pub fn parse_provider(s: &str) -> AppResult<IntegrationProvider> {
    IntegrationProvider::parse(s).ok_or_else(AppError::not_found)
}

fn as_map(v: &Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    }
}

fn mask(plain: &str) -> String {
    let tail: String = plain
        .chars()
        .rev()
        .take(2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("••••{tail}")
}

fn normalise_config(p: IntegrationProvider, c: &Map<String, Value>) -> Map<String, Value> {
    match p {
        IntegrationProvider::Pabx => pabx::PabxSettings::from_config(c).to_config(),
    }
}

fn to_dto(
    secrets: &SecretBox,
    p: IntegrationProvider,
    m: Option<&setting::Model>,
) -> IntegrationSettings {
    let sealed = m.map(|m| as_map(&m.secrets)).unwrap_or_default();
    let mut out = BTreeMap::new();
    for f in secret_fields(p) {
        let status = match sealed.get(*f).and_then(Value::as_str) {
            Some(s) => SecretStatus {
                configured: true,
                masked: secrets.open(s).ok().map(|plain| mask(&plain)),
            },
            None => SecretStatus {
                configured: false,
                masked: None,
            },
        };
        out.insert((*f).to_string(), status);
    }
    IntegrationSettings {
        provider: p,
        enabled: m.is_some_and(|m| m.enabled),
        config: normalise_config(p, &m.map(|m| as_map(&m.config)).unwrap_or_default()),
        secrets: out,
        webhook_configured: m.is_some_and(|m| m.webhook_token_hash.is_some()),
        updated_at: m.map(|m| m.updated_at),
        version: m.map(|m| m.version).unwrap_or(0),
    }
}

async fn find<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    p: IntegrationProvider,
) -> AppResult<Option<setting::Model>> {
    Ok(
        setting::Entity::find_by_id((tenant_id, p.as_str().to_string()))
            .one(conn)
            .await?,
    )
}

pub async fn get(
    state: &AppState,
    ctx: &Authorized<Admins>,
    p: IntegrationProvider,
) -> AppResult<IntegrationSettings> {
    let m = find(&state.db, ctx.tenant_id, p).await?;
    Ok(to_dto(&state.secrets, p, m.as_ref()))
}

/// Replaces the settings of `p` (see [`IntegrationInput`]); `If-Match` is the current version
/// (0 before the first save).
pub async fn put(
    state: &AppState,
    ctx: &Authorized<Admins>,
    p: IntegrationProvider,
    if_match: Option<i32>,
    input: IntegrationInput,
) -> AppResult<IntegrationSettings> {
    let txn = state.begin().await?;
    let cur = find(&*txn, ctx.tenant_id, p).await?;
    let version = cur.as_ref().map(|m| m.version).unwrap_or(0);
    if if_match.is_some_and(|v| v != version) {
        return Err(AppError::stale_version());
    }
    let enabled = input
        .enabled
        .unwrap_or_else(|| cur.as_ref().is_some_and(|m| m.enabled));
    let mut v = Validator::new();
    let config = match (&input.config, &cur) {
        (Some(c), _) => match p {
            IntegrationProvider::Pabx => pabx::validate(&mut v, c, enabled),
        },
        (None, Some(m)) => {
            let c = as_map(&m.config);
            match p {
                IntegrationProvider::Pabx => pabx::validate(&mut v, &c, enabled),
            }
        }
        (None, None) => match p {
            IntegrationProvider::Pabx => pabx::validate(&mut v, &Map::new(), enabled),
        },
    };
    let mut sealed = cur.as_ref().map(|m| as_map(&m.secrets)).unwrap_or_default();
    let mut changed_secrets = Vec::new();
    for (k, val) in input.secrets.clone().unwrap_or_default() {
        let field = format!("secrets.{k}");
        if !secret_fields(p).contains(&k.as_str()) {
            v.add(&field, "unknown_field", "Campo desconhecido");
            continue;
        }
        match val.as_deref().map(str::trim) {
            None | Some("") => {
                sealed.remove(&k);
            }
            Some(s) if s.chars().count() > 500 => {
                v.add(&field, "too_long", "Máximo de 500 caracteres");
                continue;
            }
            Some(s) => {
                sealed.insert(k.clone(), Value::String(state.secrets.seal(s)?));
            }
        }
        changed_secrets.push(k);
    }
    if enabled {
        for f in secret_fields(p) {
            if !sealed.contains_key(*f) {
                v.add(&format!("secrets.{f}"), "required", "Campo obrigatório");
            }
        }
    }
    v.finish()?;
    let now = Utc::now();
    let before = to_dto(&state.secrets, p, cur.as_ref());
    match &cur {
        Some(_) => {
            let res = setting::Entity::update_many()
                .col_expr(setting::Column::Enabled, Expr::value(enabled))
                .col_expr(setting::Column::Config, Expr::value(Value::Object(config)))
                .col_expr(setting::Column::Secrets, Expr::value(Value::Object(sealed)))
                .col_expr(setting::Column::UpdatedAt, Expr::value(now))
                .col_expr(
                    setting::Column::Version,
                    Expr::col(setting::Column::Version).add(1),
                )
                .filter(setting::Column::TenantId.eq(ctx.tenant_id))
                .filter(setting::Column::Provider.eq(p.as_str()))
                .filter(setting::Column::Version.eq(version))
                .exec(&*txn)
                .await?;
            if res.rows_affected != 1 {
                return Err(AppError::stale_version());
            }
        }
        None => {
            setting::Entity::insert(setting::ActiveModel {
                tenant_id: Set(ctx.tenant_id),
                provider: Set(p.as_str().to_string()),
                enabled: Set(enabled),
                config: Set(Value::Object(config)),
                secrets: Set(Value::Object(sealed)),
                webhook_token_hash: Set(None),
                sync_state: Set(json!({})),
                created_at: Set(now),
                updated_at: Set(now),
                version: Set(1),
            })
            .exec_without_returning(&*txn)
            .await
            .map_err(|e| {
                if jtcrm_kernel::error::is_unique_violation(&e) {
                    AppError::stale_version()
                } else {
                    e.into()
                }
            })?;
        }
    }
    let m = find(&*txn, ctx.tenant_id, p).await?;
    let after = to_dto(&state.secrets, p, m.as_ref());
    // Secret values never reach the audit log: only which fields changed.
    let mut changes = audit::diff(
        &json!({"enabled": before.enabled, "config": before.config}),
        &json!({"enabled": after.enabled, "config": after.config}),
    );
    if let Some(c) = changes.as_object_mut()
        && !changed_secrets.is_empty()
    {
        c.insert("secrets_changed".into(), json!(changed_secrets));
    }
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "update", "integration", p.as_str(), changes),
    )
    .await?;
    txn.commit().await?;
    Ok(after)
}

/// Creates or rotates the webhook token of `p`: the tenant id (32 hex digits) followed by 32
/// random bytes (base64url); only its SHA-256 is stored, so it is shown this once.
pub async fn rotate_webhook_token(
    state: &AppState,
    ctx: &Authorized<Admins>,
    p: IntegrationProvider,
) -> AppResult<WebhookToken> {
    let random: [u8; 32] = rand::random();
    let token = format!(
        "{}{}",
        ctx.tenant_id.simple(),
        URL_SAFE_NO_PAD.encode(random)
    );
    let hash = sha256_hex(&token);
    let now = Utc::now();
    let txn = state.begin().await?;
    let updated = setting::Entity::update_many()
        .col_expr(setting::Column::WebhookTokenHash, Expr::value(hash.clone()))
        .col_expr(setting::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            setting::Column::Version,
            Expr::col(setting::Column::Version).add(1),
        )
        .filter(setting::Column::TenantId.eq(ctx.tenant_id))
        .filter(setting::Column::Provider.eq(p.as_str()))
        .exec(&*txn)
        .await?
        .rows_affected;
    if updated == 0 {
        setting::Entity::insert(setting::ActiveModel {
            tenant_id: Set(ctx.tenant_id),
            provider: Set(p.as_str().to_string()),
            enabled: Set(false),
            config: Set(json!({})),
            secrets: Set(json!({})),
            webhook_token_hash: Set(Some(hash)),
            sync_state: Set(json!({})),
            created_at: Set(now),
            updated_at: Set(now),
            version: Set(1),
        })
        .exec_without_returning(&*txn)
        .await?;
    }
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "rotate_webhook_token",
            "integration",
            p.as_str(),
            json!({}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(WebhookToken {
        provider: p,
        path: format!("/api/webhooks/{}/{token}", p.as_str()),
        token,
    })
}

/// Checks the connection with the saved settings (PABX: lists the extensions).
pub async fn test(
    state: &AppState,
    ctx: &Authorized<Admins>,
    p: IntegrationProvider,
) -> AppResult<IntegrationTest> {
    let loaded = load(&state.db, &state.secrets, ctx.tenant_id, p)
        .await?
        .ok_or_else(not_configured)?;
    match p {
        IntegrationProvider::Pabx => {
            let client = loaded.pabx_client()?;
            match client.list_extensions().await {
                Ok(exts) => Ok(IntegrationTest {
                    ok: true,
                    detail: format!("{} ramais encontrados", exts.len()),
                }),
                Err(e) => Ok(IntegrationTest {
                    ok: false,
                    detail: e.to_string(),
                }),
            }
        }
    }
}

pub fn not_configured() -> AppError {
    AppError::new(
        ErrorCode::IntegrationNotConfigured,
        "A integração com o PABX não está configurada. Um administrador deve configurá-la em /api/integrations/pabx.",
    )
}

/// A tenant's settings of one provider, secrets opened.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub tenant_id: Uuid,
    pub enabled: bool,
    pub config: Map<String, Value>,
    pub secrets: BTreeMap<String, String>,
    pub sync_state: Map<String, Value>,
}

impl Loaded {
    pub fn pabx(&self) -> pabx::PabxSettings {
        pabx::PabxSettings::from_config(&self.config)
    }

    /// The PABX client; `409 integration_not_configured` when disabled or incomplete.
    pub fn pabx_client(&self) -> AppResult<std::sync::Arc<dyn jtcrm_integrations::pabx::Pabx>> {
        let token = self.secrets.get("token").ok_or_else(not_configured)?;
        let s = self.pabx();
        if s.base_url.is_empty() || s.usuario.is_empty() {
            return Err(not_configured());
        }
        s.client(token).map_err(|e| {
            AppError::new(
                ErrorCode::IntegrationNotConfigured,
                format!("Configuração do PABX inválida: {e}"),
            )
        })
    }
}

/// The settings of `p` for `tenant_id`, whether enabled or not; `None` when never saved. A
/// secret that cannot be opened (key rotated away) is left out.
pub async fn load<C: ConnectionTrait>(
    conn: &C,
    secrets: &SecretBox,
    tenant_id: Uuid,
    p: IntegrationProvider,
) -> AppResult<Option<Loaded>> {
    let Some(m) = find(conn, tenant_id, p).await? else {
        return Ok(None);
    };
    let mut open = BTreeMap::new();
    for (k, v) in as_map(&m.secrets) {
        if let Some(s) = v.as_str() {
            match secrets.open(s) {
                Ok(plain) => {
                    open.insert(k, plain);
                }
                Err(e) => {
                    tracing::warn!(tenant_id = %tenant_id, field = %k, error = %e.detail, "integration secret unreadable")
                }
            }
        }
    }
    Ok(Some(Loaded {
        tenant_id,
        enabled: m.enabled,
        config: as_map(&m.config),
        secrets: open,
        sync_state: as_map(&m.sync_state),
    }))
}

/// The non-secret configuration of `p` when enabled (no secret is opened: for read paths that
/// only need a setting, e.g. the DDD).
pub async fn enabled_config<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    p: IntegrationProvider,
) -> AppResult<Option<Map<String, Value>>> {
    Ok(find(conn, tenant_id, p)
        .await?
        .filter(|m| m.enabled)
        .map(|m| as_map(&m.config)))
}

/// [`load`], only when enabled.
pub async fn load_enabled<C: ConnectionTrait>(
    conn: &C,
    secrets: &SecretBox,
    tenant_id: Uuid,
    p: IntegrationProvider,
) -> AppResult<Option<Loaded>> {
    Ok(load(conn, secrets, tenant_id, p)
        .await?
        .filter(|l| l.enabled))
}

/// Tenants with `p` enabled (a platform scan for periodic jobs).
pub async fn enabled_tenants<C: ConnectionTrait>(
    conn: &C,
    p: IntegrationProvider,
) -> AppResult<Vec<Uuid>> {
    Ok(setting::Entity::find()
        .select_only()
        .column(setting::Column::TenantId)
        .filter(setting::Column::Provider.eq(p.as_str()))
        .filter(setting::Column::Enabled.eq(true))
        .into_tuple()
        .all(conn)
        .await?)
}

/// Replaces the sync state of `p` (what a provider's jobs remember between runs).
pub async fn save_sync_state<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    p: IntegrationProvider,
    sync_state: Map<String, Value>,
) -> AppResult<()> {
    setting::Entity::update_many()
        .col_expr(
            setting::Column::SyncState,
            Expr::value(Value::Object(sync_state)),
        )
        .filter(setting::Column::TenantId.eq(tenant_id))
        .filter(setting::Column::Provider.eq(p.as_str()))
        .exec(conn)
        .await?;
    Ok(())
}

/// The tenant a webhook token belongs to, when the token is the current one of an enabled
/// integration of a usable tenant; enters that tenant's database scope. Anything else is `None`
/// (answered `404`, like any unknown link).
pub async fn resolve_webhook(
    state: &AppState,
    p: IntegrationProvider,
    token: &str,
) -> AppResult<Option<Uuid>> {
    if token.len() != 32 + 43 || !token.is_ascii() {
        return Ok(None);
    }
    let Ok(tenant_id) = Uuid::try_parse(&token[..32]) else {
        return Ok(None);
    };
    let Some(tenant) = state.tenants.get(&state.db, tenant_id).await? else {
        return Ok(None);
    };
    if !tenant.status.is_usable() {
        return Ok(None);
    }
    jtcrm_kernel::db::enter_tenant(tenant_id);
    let m = find(&state.db, tenant_id, p).await?;
    let ok = m.is_some_and(|m| {
        m.enabled && m.webhook_token_hash.as_deref() == Some(sha256_hex(token).as_str())
    });
    Ok(ok.then_some(tenant_id))
}
