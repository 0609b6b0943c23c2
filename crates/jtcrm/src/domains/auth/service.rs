//! Token and session rules. Refresh tokens are opaque, single-use, stored hashed; presenting a spent
//! one revokes its whole family (a stolen token is useless once either party uses it).

use chrono::{Duration as ChronoDuration, Utc};
use jtcrm_types::ErrorCode;
use jtcrm_types::dto::Role;
use jtcrm_types::dto::auth::{AuthUser, LoginRequest, MeResponse, MeTenant, TokenResponse};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::model as refresh;
use crate::domains::tenants;
use crate::domains::users::{platform_admin, user};
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::{Auth, RequestMeta, deny_key, suspended};
use jtcrm_kernel::security::{random_token, sha256_hex};
use jtcrm_kernel::state::AppState;

fn bad_credentials() -> AppError {
    AppError::new(ErrorCode::InvalidCredentials, "E-mail ou senha inválidos.")
}

/// Identity found by email: a tenant user or a platform admin.
enum Account {
    User(user::Model),
    Admin(platform_admin::Model),
}

impl Account {
    fn id(&self) -> Uuid {
        match self {
            Account::User(u) => u.id,
            Account::Admin(a) => a.id,
        }
    }
    fn hash(&self) -> &str {
        match self {
            Account::User(u) => &u.password_hash,
            Account::Admin(a) => &a.password_hash,
        }
    }
    fn active(&self) -> bool {
        match self {
            Account::User(u) => u.active && u.deleted_at.is_none(),
            Account::Admin(a) => a.active,
        }
    }
    fn auth_user(&self) -> AuthUser {
        match self {
            Account::User(u) => AuthUser {
                id: u.id,
                name: u.name.clone(),
                email: u.email.clone(),
                role: Role::parse(&u.role).unwrap_or(Role::Viewer),
                tenant_id: Some(u.tenant_id),
            },
            Account::Admin(a) => AuthUser {
                id: a.id,
                name: a.name.clone(),
                email: a.email.clone(),
                role: Role::SuperAdmin,
                tenant_id: None,
            },
        }
    }
}

async fn find_account<C: ConnectionTrait>(conn: &C, email: &str) -> AppResult<Option<Account>> {
    if let Some(u) = user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .filter(user::Column::DeletedAt.is_null())
        .one(conn)
        .await?
    {
        return Ok(Some(Account::User(u)));
    }
    Ok(platform_admin::Entity::find()
        .filter(platform_admin::Column::Email.eq(email))
        .one(conn)
        .await?
        .map(Account::Admin))
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

    let account = find_account(&state.db, &email).await?;
    let ok = match &account {
        Some(a) => state.hasher.verify(password, a.hash().to_string()).await?,
        None => {
            state.hasher.dummy_verify(password).await?;
            false
        }
    };
    let account = match account {
        Some(a) if ok && a.active() => a,
        _ => {
            state
                .kv
                .hit(&fail_key, s.login_window_secs)
                .await
                .map_err(AppError::unavailable)?;
            return Err(bad_credentials());
        }
    };
    let who = account.auth_user();
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
    match &account {
        Account::User(u) => {
            user::Entity::update_many()
                .col_expr(
                    user::Column::LastLoginAt,
                    sea_orm::sea_query::Expr::value(now),
                )
                .filter(user::Column::TenantId.eq(u.tenant_id))
                .filter(user::Column::Id.eq(u.id))
                .exec(&*txn)
                .await?;
        }
        Account::Admin(a) => {
            platform_admin::Entity::update_many()
                .col_expr(
                    platform_admin::Column::LastLoginAt,
                    sea_orm::sea_query::Expr::value(now),
                )
                .filter(platform_admin::Column::Id.eq(a.id))
                .exec(&*txn)
                .await?;
        }
    }
    let tokens = issue(state, &*txn, who.clone(), None).await?;
    audit::record(
        &*txn,
        audit::Entry {
            tenant_id: who.tenant_id,
            actor_id: Some(account.id()),
            action: "login",
            entity_type: if who.tenant_id.is_some() {
                "user"
            } else {
                "platform_admin"
            },
            entity_id: account.id().to_string(),
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

pub async fn revoke_user_tokens<C: ConnectionTrait>(conn: &C, user_id: Uuid) -> AppResult<()> {
    refresh::Entity::update_many()
        .col_expr(
            refresh::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(refresh::Column::UserId.eq(user_id))
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
    let who = match row.tenant_id {
        Some(t) => {
            let u = user::Entity::find_by_id((t, row.user_id))
                .one(&*txn)
                .await?;
            match u.map(Account::User) {
                Some(a) if a.active() => a.auth_user(),
                _ => return Err(AppError::invalid_token()),
            }
        }
        None => match platform_admin::Entity::find_by_id(row.user_id)
            .one(&*txn)
            .await?
            .map(Account::Admin)
        {
            Some(a) if a.active() => a.auth_user(),
            _ => return Err(AppError::invalid_token()),
        },
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
            let u = user::Entity::find_by_id((t, c.sub))
                .filter(user::Column::DeletedAt.is_null())
                .one(&state.db)
                .await?
                .ok_or_else(AppError::invalid_token)?;
            let tenant = tenants::get(state, t).await?;
            if !tenant.status.is_usable() {
                return Err(suspended());
            }
            Ok(MeResponse {
                id: u.id,
                name: u.name,
                email: u.email,
                role: Role::parse(&u.role).unwrap_or(Role::Viewer),
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
            let a = platform_admin::Entity::find_by_id(c.sub)
                .one(&state.db)
                .await?
                .ok_or_else(AppError::invalid_token)?;
            Ok(MeResponse {
                id: a.id,
                name: a.name,
                email: a.email,
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
    let email = crate::domains::users::parse_email(&mut v, "email", Some(email));
    jtcrm_kernel::security::check_password_policy("password", password, &mut v);
    v.finish()?;
    let Some(email) = email else {
        return Err(AppError::bad_request("email"));
    };
    let hash = state.hasher.hash(password.to_string()).await?;
    let txn = state.begin().await?;
    if crate::domains::users::service::email_in_use(&*txn, &email).await? {
        return Err(crate::domains::users::email_taken());
    }
    let now = Utc::now();
    let id = Uuid::now_v7();
    platform_admin::Entity::insert(platform_admin::ActiveModel {
        id: Set(id),
        name: Set(name.to_string()),
        email: Set(email),
        password_hash: Set(hash),
        active: Set(true),
        last_login_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(&*txn)
    .await
    .map_err(|e| match crate::migration::unique_violation(&e) {
        Some(v) if v.is(&crate::migration::UX_PLATFORM_ADMINS_EMAIL) => {
            crate::domains::users::email_taken()
        }
        _ => e.into(),
    })?;
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
    use sea_orm::PaginatorTrait;
    if platform_admin::Entity::find().count(&state.db).await? > 0 {
        return Ok(None);
    }
    match create_super_admin(state, "Super Admin", email, password.expose()).await {
        Ok(_) => Ok(Some(email.clone())),
        Err(e) if e.code == ErrorCode::EmailTaken => Ok(None),
        Err(e) => Err(anyhow::anyhow!("não foi possível criar o super-admin: {e}")),
    }
}
