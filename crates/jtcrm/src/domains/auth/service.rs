//! Token and session rules. Refresh tokens are opaque, single-use, stored hashed; presenting a spent
//! one revokes its whole family (a stolen token is useless once either party uses it).

use chrono::{Duration as ChronoDuration, Utc};
use jtcrm_types::ErrorCode;
use jtcrm_types::dto::Role;
use jtcrm_types::dto::auth::{AuthUser, LoginRequest, MeResponse, MeTenant, TokenResponse};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::domains::tenants;
use crate::domains::users::{self, accounts};
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::{Auth, RequestMeta, deny_key, suspended};
use jtcrm_kernel::security::{random_token, sha256_hex};
use jtcrm_kernel::sessions::refresh_token as refresh;
use jtcrm_kernel::state::AppState;

fn bad_credentials() -> AppError {
    AppError::new(ErrorCode::InvalidCredentials, "E-mail ou senha inválidos.")
}

/// Inserts a new refresh token (in `family`, or a new family) and signs an access token for it.
async fn issue<C: ConnectionTrait>(
    state: &AppState,
    conn: &C,
    who: AuthUser,
    family: Option<Uuid>,
) -> AppResult<TokenResponse> {
    let family_id = family.unwrap_or_else(Uuid::now_v7);
    let token = format!("rt_{}", random_token(32));
    let now = Utc::now();
    let row = refresh::ActiveModel {
        id: Set(Uuid::now_v7()),
        token_hash: Set(sha256_hex(&token)),
        family_id: Set(family_id),
        user_id: Set(who.id),
        tenant_id: Set(who.tenant_id),
        expires_at: Set(now + ChronoDuration::seconds(state.settings.refresh_token_ttl_secs)),
        used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(now),
    };
    refresh::Entity::insert(row)
        .exec_without_returning(conn)
        .await?;
    let (access, claims) = state
        .jwt
        .issue(who.id, who.tenant_id, who.role.as_str(), family_id)?;
    Ok(TokenResponse {
        access_token: access,
        refresh_token: token,
        token_type: "Bearer".into(),
        expires_in: claims.exp - claims.iat,
        user: who,
    })
}

async fn tenant_usable(state: &AppState, tenant_id: Option<Uuid>) -> AppResult<()> {
    let Some(t) = tenant_id else { return Ok(()) };
    match state.tenants.get(&state.db, t).await? {
        Some(snap) if snap.status.is_usable() => Ok(()),
        Some(_) => Err(suspended()),
        None => Err(AppError::invalid_token()),
    }
}

fn login_ip_key(ip: &str) -> String {
    format!("login:ip:{ip}")
}

fn login_fail_key(email: &str) -> String {
    format!("login:fail:{}", sha256_hex(email))
}

pub async fn login(
    state: &AppState,
    meta: &RequestMeta,
    requested_slug: Option<String>,
    req: LoginRequest,
) -> AppResult<TokenResponse> {
    let mut v = Validator::new();
    let email = v
        .required_text("email", req.email.as_deref(), 254)
        .map(|e| e.to_lowercase());
    let password = match req.password.as_deref() {
        None | Some("") => {
            v.add("password", "required", "Campo obrigatório");
            None
        }
        Some(p) if p.len() > jtcrm_kernel::security::MAX_PASSWORD_LEN * 4 => {
            v.add("password", "too_long", "Senha muito longa");
            None
        }
        Some(p) => Some(p.to_string()),
    };
    v.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(bad_credentials());
    };

    let s = &state.settings;
    if let Some(ip) = &meta.ip {
        let (n, ttl) = state
            .kv
            .hit(&login_ip_key(ip), s.login_window_secs)
            .await
            .map_err(AppError::unavailable)?;
        if n > s.login_max_attempts_per_ip {
            return Err(AppError::rate_limited(ttl));
        }
    }
    let fail_key = login_fail_key(&email);
    let failures = state
        .kv
        .count(&fail_key)
        .await
        .map_err(AppError::unavailable)?;
    if failures >= s.login_max_failures_per_account {
        return Err(AppError::rate_limited(s.login_window_secs));
    }

    let account = accounts::by_email(&state.db, &email).await?;
    let ok = match &account {
        Some(a) => {
            state
                .hasher
                .verify(password, a.password_hash.clone())
                .await?
        }
        None => {
            state.hasher.dummy_verify(password).await?;
            false
        }
    };
    let account = match account {
        Some(a) if ok && a.active => a,
        _ => {
            state
                .kv
                .hit(&fail_key, s.login_window_secs)
                .await
                .map_err(AppError::unavailable)?;
            return Err(bad_credentials());
        }
    };
    let who = account.user;
    tenant_usable(state, who.tenant_id).await?;
    if let Some(slug) = requested_slug {
        let id = state.tenants.id_for_slug(&state.db, &slug).await?;
        if id.is_none() || id != who.tenant_id {
            return Err(AppError::new(
                ErrorCode::TenantMismatch,
                "Este usuário não pertence à empresa indicada.",
            ));
        }
    }
    state
        .kv
        .delete(&fail_key)
        .await
        .map_err(AppError::unavailable)?;

    let txn = state.begin().await?;
    let now = Utc::now();
    accounts::record_login(&*txn, &who, now).await?;
    let tokens = issue(state, &*txn, who.clone(), None).await?;
    audit::record(
        &*txn,
        audit::Entry {
            tenant_id: who.tenant_id,
            actor_id: Some(who.id),
            action: "login",
            entity_type: if who.tenant_id.is_some() {
                "user"
            } else {
                "platform_admin"
            },
            entity_id: who.id.to_string(),
            changes: serde_json::json!({}),
            meta,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(tokens)
}

async fn revoke_family<C: ConnectionTrait>(conn: &C, family_id: Uuid) -> AppResult<()> {
    refresh::Entity::update_many()
        .col_expr(
            refresh::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(refresh::Column::FamilyId.eq(family_id))
        .filter(refresh::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn refresh(state: &AppState, token: Option<String>) -> AppResult<TokenResponse> {
    let Some(token) = token
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
    else {
        return Err(AppError::field(
            "refresh_token",
            "required",
            "Campo obrigatório",
        ));
    };
    if token.len() > 200 {
        return Err(AppError::invalid_token());
    }
    let hash = sha256_hex(&token);
    let Some(row) = refresh::Entity::find()
        .filter(refresh::Column::TokenHash.eq(hash))
        .one(&state.db)
        .await?
    else {
        return Err(AppError::invalid_token());
    };
    if row.revoked_at.is_some() {
        return Err(AppError::invalid_token());
    }
    if row.used_at.is_some() {
        // Reuse of a spent token: someone holds a copy. Kill the whole family.
        revoke_family(&state.db, row.family_id).await?;
        tracing::warn!(family = %row.family_id, user = %row.user_id, "refresh token reuse detected; family revoked");
        return Err(AppError::invalid_token());
    }
    if row.expires_at <= Utc::now() {
        return Err(AppError::invalid_token());
    }
    let txn = state.begin().await?;
    // Single use, even under concurrent refreshes: only one UPDATE can flip used_at.
    let flipped = refresh::Entity::update_many()
        .col_expr(
            refresh::Column::UsedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(refresh::Column::Id.eq(row.id))
        .filter(refresh::Column::UsedAt.is_null())
        .filter(refresh::Column::RevokedAt.is_null())
        .exec(&*txn)
        .await?
        .rows_affected;
    if flipped != 1 {
        revoke_family(&*txn, row.family_id).await?;
        txn.commit().await?;
        return Err(AppError::invalid_token());
    }
    let who = match accounts::by_id(&*txn, row.tenant_id, row.user_id).await? {
        Some(a) if a.active => a.user,
        _ => return Err(AppError::invalid_token()),
    };
    tenant_usable(state, who.tenant_id).await?;
    let tokens = issue(state, &*txn, who, Some(row.family_id)).await?;
    txn.commit().await?;
    Ok(tokens)
}

pub async fn logout(state: &AppState, auth: &Auth, extra_refresh: Option<String>) -> AppResult<()> {
    let c = &auth.claims;
    let txn = state.begin().await?;
    revoke_family(&*txn, c.sid).await?;
    if let Some(t) = extra_refresh.filter(|t| !t.is_empty() && t.len() <= 200)
        && let Some(row) = refresh::Entity::find()
            .filter(refresh::Column::TokenHash.eq(sha256_hex(&t)))
            .one(&*txn)
            .await?
        && row.user_id == c.sub
    {
        revoke_family(&*txn, row.family_id).await?;
    }
    txn.commit().await?;
    let ttl = (c.exp - Utc::now().timestamp()).max(1) as u64;
    state
        .kv
        .set(&deny_key(c.jti), 1, ttl)
        .await
        .map_err(AppError::unavailable)?;
    Ok(())
}

pub async fn me(state: &AppState, auth: &Auth) -> AppResult<MeResponse> {
    let c = &auth.claims;
    match c.tenant_id {
        Some(t) => {
            let u = accounts::by_id(&state.db, Some(t), c.sub)
                .await?
                .ok_or_else(AppError::invalid_token)?;
            let tenant = tenants::get(state, t).await?;
            if !tenant.status.is_usable() {
                return Err(suspended());
            }
            Ok(MeResponse {
                id: u.user.id,
                name: u.user.name,
                email: u.user.email,
                role: u.user.role,
                tenant_id: Some(t),
                phone: u.phone,
                extension: u.extension,
                tenant: Some(MeTenant {
                    id: tenant.id,
                    name: tenant.name,
                    slug: tenant.slug,
                    subscription_plan: tenant.subscription_plan,
                    status: tenant.status,
                }),
            })
        }
        None => {
            let a = accounts::by_id(&state.db, None, c.sub)
                .await?
                .ok_or_else(AppError::invalid_token)?;
            Ok(MeResponse {
                id: a.user.id,
                name: a.user.name,
                email: a.user.email,
                role: Role::SuperAdmin,
                tenant_id: None,
                phone: None,
                extension: None,
                tenant: None,
            })
        }
    }
}

/// Creates a platform super-admin. Fails with `409 email_taken` if the email is used anywhere.
pub async fn create_super_admin(
    state: &AppState,
    name: &str,
    email: &str,
    password: &str,
) -> AppResult<Uuid> {
    let mut v = Validator::new();
    let email = users::parse_email(&mut v, "email", Some(email));
    jtcrm_kernel::security::check_password_policy("password", password, &mut v);
    v.finish()?;
    let Some(email) = email else {
        return Err(AppError::bad_request("email"));
    };
    let hash = state.hasher.hash(password.to_string()).await?;
    let txn = state.begin().await?;
    let id = accounts::insert_platform_admin(&*txn, name, email, hash).await?;
    txn.commit().await?;
    Ok(id)
}

/// At startup: creates the super-admin from the environment when the platform has none.
pub async fn ensure_super_admin(state: &AppState) -> anyhow::Result<Option<String>> {
    let (Some(email), Some(password)) = (
        &state.settings.superadmin_email,
        &state.settings.superadmin_password,
    ) else {
        return Ok(None);
    };
    let admins = accounts::platform_admin_count(&state.db)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if admins > 0 {
        return Ok(None);
    }
    match create_super_admin(state, "Super Admin", email, password.expose()).await {
        Ok(_) => Ok(Some(email.clone())),
        Err(e) if e.code == ErrorCode::EmailTaken => Ok(None),
        Err(e) => Err(anyhow::anyhow!("não foi possível criar o super-admin: {e}")),
    }
}
