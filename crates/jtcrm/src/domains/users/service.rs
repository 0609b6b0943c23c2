//! User management rules: seats, permissions (admins manage, users edit themselves), last-admin
//! protection, and session invalidation when access changes.

use chrono::Utc;
use jtcrm_types::ErrorCode;
use jtcrm_types::dto::users::{UpdateUserRequest, User};
use jtcrm_types::dto::{Page, Role};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::model::platform_admin;
use super::{NewUser, to_dto, unique_conflict, user};
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::{AdminCtx, TenantCtx, user_invalidation_key};
use jtcrm_kernel::http::guard::{Authorized, Managers};
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::quota::{self, Resource};
use jtcrm_kernel::sql;
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store;

pub async fn email_in_use<C: ConnectionTrait>(conn: &C, email: &str) -> AppResult<bool> {
    let in_users = user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .count(conn)
        .await?
        > 0;
    if in_users {
        return Ok(true);
    }
    Ok(platform_admin::Entity::find()
        .filter(platform_admin::Column::Email.eq(email))
        .count(conn)
        .await?
        > 0)
}

/// Inserts a user row (the caller reserved the seat and hashed the password).
pub async fn insert_user<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    new: &NewUser,
    password_hash: String,
) -> AppResult<user::Model> {
    if email_in_use(conn, &new.email).await? {
        return Err(super::email_taken());
    }
    let now = Utc::now();
    let row = user::ActiveModel {
        tenant_id: Set(tenant_id),
        id: Set(Uuid::now_v7()),
        name: Set(new.name.clone()),
        email: Set(new.email.clone()),
        password_hash: Set(password_hash),
        role: Set(new.role.as_str().to_string()),
        phone: Set(new.phone.clone()),
        extension: Set(new.extension.clone()),
        active: Set(true),
        last_login_at: Set(None),
        deleted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        version: Set(1),
    };
    match user::Entity::insert(row).exec_with_returning(conn).await {
        Ok(m) => Ok(m),
        Err(e) => Err(unique_conflict(&e).unwrap_or_else(|| e.into())),
    }
}

/// Which of `ids` are active, live users of the tenant (one query).
pub async fn active_users_among<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> AppResult<std::collections::HashSet<Uuid>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(user::Entity::find()
        .filter(user::Column::TenantId.eq(tenant_id))
        .filter(user::Column::Id.is_in(ids.iter().copied()))
        .filter(user::Column::Active.eq(true))
        .filter(user::Column::DeletedAt.is_null())
        .all(conn)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect())
}

/// `422 unknown_user` on `owner_id` unless `owner` is absent or an active, live user of the tenant.
pub async fn check_active_owner<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    owner: Option<Uuid>,
) -> AppResult<()> {
    if let Some(o) = owner
        && !is_active_user(conn, tenant_id, o).await?
    {
        return Err(AppError::field(
            "owner_id",
            "unknown_user",
            "Usuário responsável inexistente ou inativo",
        ));
    }
    Ok(())
}

/// Whether `user_id` is an active, live user of the tenant.
pub async fn is_active_user<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    user_id: Uuid,
) -> AppResult<bool> {
    Ok(user::Entity::find_by_id((tenant_id, user_id))
        .one(conn)
        .await?
        .is_some_and(|u| u.active && u.deleted_at.is_none()))
}

pub fn audit_created(u: &User) -> serde_json::Value {
    audit::diff(
        &serde_json::json!({}),
        &serde_json::to_value(u).unwrap_or_default(),
    )
}

/// Creates a user in the caller's tenant, within the plan's seat limit.
pub async fn create(state: &AppState, ctx: &TenantCtx, new: NewUser) -> AppResult<User> {
    let hash = state.hasher.hash(new.password.clone()).await?;
    let txn = state.begin().await?;
    quota::reserve(
        &*txn,
        ctx.tenant_id,
        Resource::Users,
        1,
        ctx.tenant.limits.max_users,
    )
    .await?;
    let created = insert_user(&*txn, ctx.tenant_id, &new, hash).await?;
    let dto = to_dto(created);
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "create", "user", dto.id, audit_created(&dto)),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Filter by role.
    pub role: Option<Role>,
    pub active: Option<bool>,
    /// Case-insensitive search in name and email.
    pub q: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub include_total: Option<bool>,
}

pub async fn list(
    state: &AppState,
    ctx: &Authorized<Managers>,
    q: UserQuery,
) -> AppResult<Page<User>> {
    let limit = pagination::limit(q.limit)?;
    let mut sel = user::Entity::find()
        .filter(user::Column::TenantId.eq(ctx.tenant_id))
        .filter(user::Column::DeletedAt.is_null());
    if let Some(r) = q.role {
        sel = sel.filter(user::Column::Role.eq(r.as_str()));
    }
    if let Some(a) = q.active {
        sel = sel.filter(user::Column::Active.eq(a));
    }
    if let Some(text) = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let pattern = sql::contains(&text.to_lowercase());
        sel = sel.filter(
            Condition::any()
                .add(Expr::expr(Func::lower(Expr::col(user::Column::Name))).like(pattern.clone()))
                .add(Expr::col(user::Column::Email).like(pattern)),
        );
    }
    let page = Keyset::asc([user::Column::Id])
        .paginate(&state.db, sel, q.cursor.as_deref(), limit, q.include_total)
        .await?;
    Ok(page.map(to_dto))
}

async fn find_row<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<user::Model> {
    user::Entity::find_by_id((tenant_id, id))
        .filter(user::Column::DeletedAt.is_null())
        .one(conn)
        .await?
        .ok_or_else(AppError::not_found)
}

pub async fn get(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<User> {
    let u = find_row(&state.db, ctx.tenant_id, id).await?;
    if id != ctx.user_id && !ctx.can_manage_all() {
        return Err(AppError::forbidden());
    }
    Ok(to_dto(u))
}

/// Voids every access token of the user issued before now and revokes its refresh tokens.
pub async fn invalidate_sessions<C: ConnectionTrait>(
    state: &AppState,
    conn: &C,
    user_id: Uuid,
) -> AppResult<()> {
    let ttl = std::cmp::max(state.settings.access_token_ttl_secs, 1) as u64;
    state
        .kv
        .set(
            &user_invalidation_key(user_id),
            Utc::now().timestamp_millis(),
            ttl,
        )
        .await
        .map_err(AppError::unavailable)?;
    jtcrm_kernel::sessions::revoke_user_tokens(conn, user_id).await
}

async fn other_active_admins<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    except: Uuid,
) -> AppResult<u64> {
    Ok(user::Entity::find()
        .filter(user::Column::TenantId.eq(tenant_id))
        .filter(user::Column::Role.eq(Role::Admin.as_str()))
        .filter(user::Column::Active.eq(true))
        .filter(user::Column::DeletedAt.is_null())
        .filter(user::Column::Id.ne(except))
        .count(conn)
        .await?)
}

fn last_admin() -> AppError {
    AppError::conflict(
        ErrorCode::LastAdmin,
        "A empresa precisa de pelo menos um administrador ativo.",
    )
}

pub async fn update(
    state: &AppState,
    ctx: &TenantCtx,
    id: Uuid,
    if_match: Option<i32>,
    req: UpdateUserRequest,
) -> AppResult<User> {
    let is_self = id == ctx.user_id;
    let mut v = Validator::new();
    let name = v.optional_text("name", req.name.as_deref(), 200);
    if req.name.is_some() && name.is_none() && v.errors.is_empty() {
        v.add("name", "required", "Campo obrigatório");
    }
    let email = req
        .email
        .as_deref()
        .and_then(|e| super::parse_email(&mut v, "email", Some(e)));
    let role = req
        .role
        .as_deref()
        .and_then(|r| super::parse_tenant_role(&mut v, "role", Some(r), None));
    let phone = req
        .phone
        .as_ref()
        .map(|p| super::parse_phone(&mut v, "phone", p.as_deref()));
    let extension = req
        .extension
        .as_ref()
        .map(|e| super::parse_extension(&mut v, "extension", e.as_deref()));
    if let Some(p) = &req.password {
        jtcrm_kernel::security::check_password_policy("password", p, &mut v);
    }
    v.finish()?;

    // Permissions before existence checks of the change itself, but after the tenant scoping.
    let current = find_row(&state.db, ctx.tenant_id, id).await?;
    if !ctx.is_admin() && (!is_self || req.role.is_some() || req.active.is_some()) {
        return Err(AppError::forbidden());
    }
    if if_match.is_some_and(|ver| ver != current.version) {
        return Err(AppError::stale_version());
    }
    let new_hash = match &req.password {
        Some(p) => {
            if is_self {
                let Some(cur) = req.current_password.clone() else {
                    return Err(AppError::field(
                        "current_password",
                        "required",
                        "Informe a senha atual",
                    ));
                };
                if !state
                    .hasher
                    .verify(cur, current.password_hash.clone())
                    .await?
                {
                    return Err(AppError::field(
                        "current_password",
                        "mismatch",
                        "Senha atual incorreta",
                    ));
                }
            }
            Some(state.hasher.hash(p.clone()).await?)
        }
        None => None,
    };

    let txn = state.begin().await?;
    let current = find_row(&*txn, ctx.tenant_id, id).await?;
    if if_match.is_some_and(|ver| ver != current.version) {
        return Err(AppError::stale_version());
    }
    let before = serde_json::to_value(to_dto(current.clone())).unwrap_or_default();
    let was_admin = current.role == Role::Admin.as_str() && current.active;
    let will_be_admin = role
        .map(|r| r == Role::Admin)
        .unwrap_or(current.role == Role::Admin.as_str())
        && req.active.unwrap_or(current.active);
    if was_admin && !will_be_admin && other_active_admins(&*txn, ctx.tenant_id, id).await? == 0 {
        return Err(last_admin());
    }
    // Re-activating takes a seat again; deactivating gives it back.
    match (current.active, req.active) {
        (false, Some(true)) => {
            quota::reserve(
                &*txn,
                ctx.tenant_id,
                Resource::Users,
                1,
                ctx.tenant.limits.max_users,
            )
            .await?
        }
        (true, Some(false)) => quota::release(&*txn, ctx.tenant_id, Resource::Users, 1).await?,
        _ => {}
    }
    if let Some(e) = &email
        && *e != current.email
        && super::service::email_in_use(&*txn, e).await?
    {
        return Err(super::email_taken());
    }
    let access_changed = role.is_some_and(|r| r.as_str() != current.role)
        || req.active.is_some_and(|a| a != current.active)
        || new_hash.is_some();
    let version = current.version;
    let mut m = current.into_active_model();
    if let Some(n) = name {
        m.name = Set(n);
    }
    if let Some(e) = email {
        m.email = Set(e);
    }
    if let Some(r) = role {
        m.role = Set(r.as_str().to_string());
    }
    if let Some(p) = phone {
        m.phone = Set(p);
    }
    if let Some(x) = extension {
        m.extension = Set(x);
    }
    if let Some(a) = req.active {
        m.active = Set(a);
    }
    if let Some(h) = new_hash.clone() {
        m.password_hash = Set(h);
    }
    m.updated_at = Set(Utc::now());
    m.version = Set(version + 1);
    let updated = match crate::domains::optimistic_update::<user::Entity, _>(
        &*txn,
        m,
        user::Column::Version,
        version,
    )
    .await
    {
        Ok(u) => u,
        Err(e) => return Err(e.db_error().and_then(unique_conflict).unwrap_or(e)),
    };
    let dto = to_dto(updated);
    let mut changes = audit::diff(&before, &serde_json::to_value(&dto).unwrap_or_default());
    if new_hash.is_some()
        && let Some(obj) = changes.as_object_mut()
    {
        obj.insert("password".into(), serde_json::json!({"changed": true}));
    }
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "update", "user", id, changes),
    )
    .await?;
    if access_changed {
        invalidate_sessions(state, &*txn, id).await?;
    }
    txn.commit()
        .await
        .map_err(|e| unique_conflict(&e).unwrap_or_else(|| e.into()))?;
    Ok(dto)
}

/// Soft-deletes a user: it can no longer log in, its seat is freed, its extension released and its
/// records keep pointing at it. The email stays reserved.
pub async fn delete(state: &AppState, ctx: &AdminCtx, id: Uuid) -> AppResult<()> {
    let txn = state.begin().await?;
    let current = find_row(&*txn, ctx.tenant_id, id).await?;
    if id == ctx.user_id {
        return Err(AppError::conflict(
            ErrorCode::CannotDeleteSelf,
            "Você não pode excluir o próprio usuário.",
        ));
    }
    if current.role == Role::Admin.as_str()
        && current.active
        && other_active_admins(&*txn, ctx.tenant_id, id).await? == 0
    {
        return Err(last_admin());
    }
    if current.active {
        quota::release(&*txn, ctx.tenant_id, Resource::Users, 1).await?;
    }
    invalidate_sessions(state, &*txn, id).await?;
    store::soft_delete::<user::Entity>(txn, ctx, "user", current, |m| {
        m.active = Set(false);
        m.extension = Set(None);
    })
    .await
}

/// The live (not deleted) user `id` of the tenant, active or not.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<Option<User>> {
    Ok(user::Entity::find_by_id((tenant_id, id))
        .one(conn)
        .await?
        .filter(|u| u.deleted_at.is_none())
        .map(super::to_dto))
}

/// The active, live user `id` of the tenant.
pub async fn find_active<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<Option<User>> {
    Ok(find(conn, tenant_id, id).await?.filter(|u| u.active))
}

/// The active, live user of the tenant with this id or (lower-case) e-mail.
pub async fn find_active_by_id_or_email<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    key: &str,
) -> AppResult<Option<User>> {
    let mut q = user::Entity::find()
        .filter(user::Column::TenantId.eq(tenant_id))
        .filter(user::Column::Active.eq(true))
        .filter(user::Column::DeletedAt.is_null());
    q = match Uuid::parse_str(key) {
        Ok(id) => q.filter(user::Column::Id.eq(id)),
        Err(_) => q.filter(user::Column::Email.eq(key)),
    };
    Ok(q.one(conn).await?.map(super::to_dto))
}

/// The active, live users of the tenant with `role`, in id order.
pub async fn active_with_role<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    role: Role,
) -> AppResult<Vec<Uuid>> {
    Ok(user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::TenantId.eq(tenant_id))
        .filter(user::Column::Role.eq(role.as_str()))
        .filter(user::Column::Active.eq(true))
        .filter(user::Column::DeletedAt.is_null())
        .order_by_asc(user::Column::Id)
        .into_tuple()
        .all(conn)
        .await?)
}

/// The active, live users among `ids`, in id order. `tenant_id = None` reads across tenants (for
/// platform scans, which check each user's `tenant_id` against the record it is about).
pub async fn active_among<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Option<Uuid>,
    ids: impl IntoIterator<Item = Uuid>,
) -> AppResult<Vec<User>> {
    let ids: Vec<Uuid> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let mut q = user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .filter(user::Column::Active.eq(true))
        .filter(user::Column::DeletedAt.is_null());
    if let Some(t) = tenant_id {
        q = q.filter(user::Column::TenantId.eq(t));
    }
    Ok(q.order_by_asc(user::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(super::to_dto)
        .collect())
}

/// The role of user `id` (deleted ones included; an unknown role reads as the least privileged,
/// `viewer`) and whether it is active and live.
pub async fn role_of<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<Option<(Role, bool)>> {
    Ok(user::Entity::find_by_id((tenant_id, id))
        .one(conn)
        .await?
        .map(|u| {
            (
                Role::parse(&u.role).unwrap_or(Role::Viewer),
                u.active && u.deleted_at.is_none(),
            )
        }))
}

/// Whether user `id` exists in the tenant (deleted ones included: links to them stay valid).
pub async fn exists<C: ConnectionTrait>(conn: &C, tenant_id: Uuid, id: Uuid) -> AppResult<bool> {
    let found: Option<Uuid> = user::Entity::find_by_id((tenant_id, id))
        .select_only()
        .column(user::Column::Id)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(found.is_some())
}
