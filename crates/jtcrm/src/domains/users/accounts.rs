//! Accounts as `auth` sees them: a tenant user or a platform super-admin, with the password hash
//! and whether it may log in. `auth` owns tokens and sessions; the rows it authenticates against
//! belong to this domain, and this is the only way other domains read or touch them.

use chrono::{DateTime, Utc};
use jtcrm_types::dto::Role;
use jtcrm_types::dto::auth::AuthUser;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
};
use uuid::Uuid;

use super::model::{platform_admin, user};
use jtcrm_kernel::error::AppResult;

/// A login identity.
pub struct Account {
    pub user: AuthUser,
    pub password_hash: String,
    /// Active and not deleted.
    pub active: bool,
    pub phone: Option<String>,
    pub extension: Option<String>,
}

fn of_user(u: user::Model) -> Account {
    Account {
        active: u.active && u.deleted_at.is_none(),
        user: AuthUser {
            id: u.id,
            name: u.name,
            email: u.email,
            role: Role::parse(&u.role).unwrap_or(Role::Viewer),
            tenant_id: Some(u.tenant_id),
        },
        password_hash: u.password_hash,
        phone: u.phone,
        extension: u.extension,
    }
}

fn of_admin(a: platform_admin::Model) -> Account {
    Account {
        active: a.active,
        user: AuthUser {
            id: a.id,
            name: a.name,
            email: a.email,
            role: Role::SuperAdmin,
            tenant_id: None,
        },
        password_hash: a.password_hash,
        phone: None,
        extension: None,
    }
}

/// The live account with this (normalised) e-mail: a tenant user first, else a platform admin.
pub async fn by_email<C: ConnectionTrait>(conn: &C, email: &str) -> AppResult<Option<Account>> {
    if let Some(u) = user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .filter(user::Column::DeletedAt.is_null())
        .one(conn)
        .await?
    {
        return Ok(Some(of_user(u)));
    }
    Ok(platform_admin::Entity::find()
        .filter(platform_admin::Column::Email.eq(email))
        .one(conn)
        .await?
        .map(of_admin))
}

/// The account `id` of `tenant_id` (`None`: a platform admin). Deleted users are absent.
pub async fn by_id<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Option<Uuid>,
    id: Uuid,
) -> AppResult<Option<Account>> {
    Ok(match tenant_id {
        Some(t) => user::Entity::find_by_id((t, id))
            .filter(user::Column::DeletedAt.is_null())
            .one(conn)
            .await?
            .map(of_user),
        None => platform_admin::Entity::find_by_id(id)
            .one(conn)
            .await?
            .map(of_admin),
    })
}

/// Stamps `last_login_at` of the account.
pub async fn record_login<C: ConnectionTrait>(
    conn: &C,
    who: &AuthUser,
    at: DateTime<Utc>,
) -> AppResult<()> {
    match who.tenant_id {
        Some(t) => {
            user::Entity::update_many()
                .col_expr(user::Column::LastLoginAt, Expr::value(at))
                .filter(user::Column::TenantId.eq(t))
                .filter(user::Column::Id.eq(who.id))
                .exec(conn)
                .await?;
        }
        None => {
            platform_admin::Entity::update_many()
                .col_expr(platform_admin::Column::LastLoginAt, Expr::value(at))
                .filter(platform_admin::Column::Id.eq(who.id))
                .exec(conn)
                .await?;
        }
    }
    Ok(())
}

/// How many platform admins exist.
pub async fn platform_admin_count<C: ConnectionTrait>(conn: &C) -> AppResult<u64> {
    Ok(platform_admin::Entity::find().count(conn).await?)
}

/// Inserts a platform admin (the caller validated the e-mail and hashed the password). Fails with
/// `409 email_taken` when the e-mail is used anywhere.
pub async fn insert_platform_admin<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    email: String,
    password_hash: String,
) -> AppResult<Uuid> {
    if super::service::email_in_use(conn, &email).await? {
        return Err(super::email_taken());
    }
    let now = Utc::now();
    let id = Uuid::now_v7();
    platform_admin::Entity::insert(platform_admin::ActiveModel {
        id: Set(id),
        name: Set(name.to_string()),
        email: Set(email),
        password_hash: Set(password_hash),
        active: Set(true),
        last_login_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(conn)
    .await
    .map_err(|e| match crate::migration::unique_violation(&e) {
        Some(v) if v.is(&crate::migration::UX_PLATFORM_ADMINS_EMAIL) => super::email_taken(),
        _ => e.into(),
    })?;
    Ok(id)
}
