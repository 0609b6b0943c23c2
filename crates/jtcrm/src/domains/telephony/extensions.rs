//! Extensions (ramais): created, changed and deleted on the PABX and in the CRM together, mapped
//! to users, counted against the plan's `max_extensions` (reserved atomically in the transaction
//! that inserts the row), and synced from the PABX (extensions created there directly are
//! imported, the ones deleted there are removed).
//!
//! No transaction is held while the PABX answers: a create reserves the quota and inserts the row
//! first, then asks the PABX, and undoes both when the PABX refuses.

use chrono::Utc;
use jtcrm_integrations::pabx::{Extension as PabxExtension, ExtensionSpec, Pabx};
use jtcrm_types::dto::Page;
use jtcrm_types::dto::telephony::{Extension, ExtensionInput, ExtensionOrigin, ExtensionSync};
use jtcrm_types::{ErrorCode, FieldError};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use uuid::Uuid;

use super::calls::pabx_error;
use super::extension_dto;
use super::model::extension;
use crate::domains::users;
use jtcrm_integrations::pabx::dial::is_valid_area_code;
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Admins, Authorized};
use jtcrm_kernel::http::idempotency::Uncommitted;
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::quota::{self, Resource};
use jtcrm_kernel::state::AppState;

/// Query parameters of `GET /api/telephony/extensions`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExtensionQuery {
    pub user_id: Option<Uuid>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub include_total: Option<bool>,
}

/// Extensions by number.
pub async fn list(
    state: &AppState,
    ctx: &TenantCtx,
    q: ExtensionQuery,
) -> AppResult<Page<Extension>> {
    let limit = pagination::limit(q.limit)?;
    let mut sel = extension::Entity::find().filter(extension::Column::TenantId.eq(ctx.tenant_id));
    if let Some(u) = q.user_id {
        sel = sel.filter(extension::Column::UserId.eq(u));
    }
    let page = Keyset::asc([extension::Column::Number, extension::Column::Id])
        .paginate(&state.db, sel, q.cursor.as_deref(), limit, q.include_total)
        .await?;
    Ok(page.map(extension_dto))
}

async fn find<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<extension::Model> {
    extension::Entity::find_by_id((tenant_id, id))
        .one(conn)
        .await?
        .ok_or_else(AppError::not_found)
}

pub async fn get(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<Extension> {
    Ok(extension_dto(find(&state.db, ctx.tenant_id, id).await?))
}

fn parse_number(v: &mut Validator, raw: Option<&str>, required: bool) -> Option<String> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => {
            if required {
                v.add("number", "required", "Campo obrigatório");
            }
            None
        }
        Some(s) if (2..=6).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) => {
            Some(s.to_owned())
        }
        Some(_) => {
            v.add(
                "number",
                "invalid_extension",
                "O ramal deve ter de 2 a 6 dígitos",
            );
            None
        }
    }
}

struct Draft {
    number: String,
    name: String,
    user_id: Option<Uuid>,
    group: Option<String>,
    area_code: Option<i16>,
    record_calls: bool,
    blocked: bool,
}

impl Draft {
    fn spec(&self) -> ExtensionSpec {
        ExtensionSpec {
            number: self.number.clone(),
            name: self.name.clone(),
            group: self.group.clone(),
            area_code: self.area_code.and_then(|a| u8::try_from(a).ok()),
            external_caller_id: None,
            record_calls: self.record_calls,
            blocked: self.blocked,
        }
    }
}

fn validate(input: &ExtensionInput, cur: Option<&extension::Model>) -> AppResult<Draft> {
    let mut v = Validator::new();
    let number = match (&input.number, cur) {
        (None, Some(c)) => Some(c.number.clone()),
        (n, _) => parse_number(&mut v, n.as_deref(), true),
    };
    let name = match (&input.name, cur) {
        (None, Some(c)) => Some(c.name.clone()),
        (n, _) => v.required_text("name", n.as_deref(), 120),
    };
    let group = match (&input.group, cur) {
        (None, Some(c)) => c.group_name.clone(),
        (None, None) | (Some(None), _) => None,
        (Some(Some(g)), _) => v.optional_text("group", Some(g), 120),
    };
    let area_code = match (&input.area_code, cur) {
        (None, Some(c)) => c.area_code,
        (None, None) | (Some(None), _) => None,
        (Some(Some(a)), _) => {
            if (11..=99).contains(a) && is_valid_area_code(*a as u8) {
                Some(*a as i16)
            } else {
                v.add("area_code", "invalid_ddd", "DDD inexistente");
                None
            }
        }
    };
    v.finish()?;
    let (Some(number), Some(name)) = (number, name) else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    Ok(Draft {
        number,
        name,
        user_id: match (&input.user_id, cur) {
            (None, Some(c)) => c.user_id,
            (None, None) => None,
            (Some(u), _) => *u,
        },
        group,
        area_code,
        record_calls: input
            .record_calls
            .unwrap_or_else(|| cur.is_none_or(|c| c.record_calls)),
        blocked: input
            .blocked
            .unwrap_or_else(|| cur.is_some_and(|c| c.blocked)),
    })
}

fn number_taken() -> AppError {
    AppError::conflict(
        ErrorCode::ExtensionTaken,
        "Já existe um ramal com este número.",
    )
    .with_context(json!({"field": "number"}))
}

fn user_taken() -> AppError {
    AppError::conflict(ErrorCode::ExtensionTaken, "Este usuário já tem um ramal.")
        .with_context(json!({"field": "user_id"}))
}

fn unique_conflict(e: &sea_orm::DbErr) -> Option<AppError> {
    let v = crate::migration::unique_violation(e)?;
    if v.is(&crate::migration::UX_TELEPHONY_EXTENSIONS_NUMBER) {
        Some(number_taken())
    } else if v.is(&crate::migration::UX_TELEPHONY_EXTENSIONS_USER) {
        Some(user_taken())
    } else {
        None
    }
}

async fn check_user<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    user: Option<Uuid>,
) -> AppResult<()> {
    if let Some(u) = user
        && !users::is_active_user(conn, tenant_id, u).await?
    {
        return Err(AppError::validation(vec![FieldError::new(
            "user_id",
            "unknown_user",
            "Usuário inexistente ou inativo",
        )]));
    }
    Ok(())
}

async fn client(state: &AppState, tenant_id: Uuid) -> AppResult<std::sync::Arc<dyn Pabx>> {
    super::settings(state, tenant_id).await?.pabx_client()
}

/// Creates the extension on the PABX and in the CRM (one unit of `max_extensions`).
pub async fn create(
    state: &AppState,
    ctx: &Authorized<Admins>,
    input: ExtensionInput,
) -> AppResult<Uncommitted<Extension>> {
    let d = validate(&input, None)?;
    let pabx = client(state, ctx.tenant_id).await?;
    let now = Utc::now();
    let id = Uuid::now_v7();
    // 1. Reserve and insert (the number and the user are claimed, the quota taken).
    let txn = state.begin().await?;
    check_user(&*txn, ctx.tenant_id, d.user_id).await?;
    quota::reserve(
        &*txn,
        ctx.tenant_id,
        Resource::Extensions,
        1,
        ctx.tenant.limits.max_extensions,
    )
    .await?;
    let row = extension::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(id),
        provider_id: Set(None),
        number: Set(d.number.clone()),
        name: Set(d.name.clone()),
        user_id: Set(d.user_id),
        group_name: Set(d.group.clone()),
        area_code: Set(d.area_code),
        record_calls: Set(d.record_calls),
        blocked: Set(d.blocked),
        origin: Set(ExtensionOrigin::Crm.as_str().into()),
        synced_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        version: Set(1),
    };
    if let Err(e) = extension::Entity::insert(row)
        .exec_without_returning(&*txn)
        .await
    {
        return Err(unique_conflict(&e).unwrap_or_else(|| e.into()));
    }
    txn.commit().await?;
    // 2. The PABX; on refusal, undo.
    let created = match pabx.create_extension(&d.spec()).await {
        Ok(x) => x,
        Err(e) => {
            let txn = state.begin().await?;
            extension::Entity::delete_by_id((ctx.tenant_id, id))
                .exec(&*txn)
                .await?;
            quota::release(&*txn, ctx.tenant_id, Resource::Extensions, 1).await?;
            txn.commit().await?;
            return Err(pabx_error(e));
        }
    };
    // 3. Confirm, with the PABX's id, in the transaction the route commits.
    let txn = state.begin().await?;
    extension::Entity::update_many()
        .col_expr(
            extension::Column::ProviderId,
            Expr::value(created.provider_id.clone()),
        )
        .col_expr(extension::Column::SyncedAt, Expr::value(Utc::now()))
        .filter(extension::Column::TenantId.eq(ctx.tenant_id))
        .filter(extension::Column::Id.eq(id))
        .exec(&*txn)
        .await?;
    let m = find(&*txn, ctx.tenant_id, id).await?;
    let dto = extension_dto(m);
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create",
            "extension",
            id,
            audit::diff(&json!({}), &serde_json::to_value(&dto).unwrap_or_default()),
        ),
    )
    .await?;
    Ok(Uncommitted::new(txn, dto))
}

/// Changes the extension on the PABX, then in the CRM (`If-Match` = its version).
pub async fn update(
    state: &AppState,
    ctx: &Authorized<Admins>,
    id: Uuid,
    if_match: Option<i32>,
    input: ExtensionInput,
) -> AppResult<Extension> {
    let cur = find(&state.db, ctx.tenant_id, id).await?;
    if if_match.is_some_and(|v| v != cur.version) {
        return Err(AppError::stale_version());
    }
    let d = validate(&input, Some(&cur))?;
    check_user(&state.db, ctx.tenant_id, d.user_id).await?;
    let pabx_changed = d.number != cur.number
        || d.name != cur.name
        || d.group != cur.group_name
        || d.area_code != cur.area_code
        || d.record_calls != cur.record_calls
        || d.blocked != cur.blocked;
    if pabx_changed {
        let pabx = client(state, ctx.tenant_id).await?;
        match &cur.provider_id {
            Some(pid) => {
                pabx.update_extension(pid, &d.spec())
                    .await
                    .map_err(pabx_error)?;
            }
            None => {
                return Err(AppError::new(
                    ErrorCode::InvalidStateTransition,
                    "O ramal ainda não foi confirmado pelo PABX; sincronize os ramais.",
                ));
            }
        }
    }
    let txn = state.begin().await?;
    let res = extension::Entity::update_many()
        .col_expr(extension::Column::Number, Expr::value(d.number.clone()))
        .col_expr(extension::Column::Name, Expr::value(d.name.clone()))
        .col_expr(extension::Column::UserId, Expr::value(d.user_id))
        .col_expr(extension::Column::GroupName, Expr::value(d.group.clone()))
        .col_expr(extension::Column::AreaCode, Expr::value(d.area_code))
        .col_expr(extension::Column::RecordCalls, Expr::value(d.record_calls))
        .col_expr(extension::Column::Blocked, Expr::value(d.blocked))
        .col_expr(extension::Column::UpdatedAt, Expr::value(Utc::now()))
        .col_expr(
            extension::Column::Version,
            Expr::col(extension::Column::Version).add(1),
        )
        .filter(extension::Column::TenantId.eq(ctx.tenant_id))
        .filter(extension::Column::Id.eq(id))
        .filter(extension::Column::Version.eq(cur.version))
        .exec(&*txn)
        .await;
    match res {
        Ok(r) if r.rows_affected == 1 => {}
        Ok(_) => return Err(AppError::stale_version()),
        Err(e) => return Err(unique_conflict(&e).unwrap_or_else(|| e.into())),
    }
    let m = find(&*txn, ctx.tenant_id, id).await?;
    let dto = extension_dto(m);
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "update",
            "extension",
            id,
            audit::diff(
                &serde_json::to_value(extension_dto(cur)).unwrap_or_default(),
                &serde_json::to_value(&dto).unwrap_or_default(),
            ),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

/// Deletes the extension on the PABX and in the CRM (gives its quota unit back).
pub async fn delete(state: &AppState, ctx: &Authorized<Admins>, id: Uuid) -> AppResult<()> {
    let cur = find(&state.db, ctx.tenant_id, id).await?;
    if let Some(pid) = &cur.provider_id {
        let pabx = client(state, ctx.tenant_id).await?;
        match pabx.delete_extension(pid).await {
            Ok(()) => {}
            // Already gone on the PABX: nothing to undo there.
            Err(jtcrm_integrations::pabx::PabxError::Rejected(m)) => {
                tracing::info!(extension = %cur.number, message = %m, "pabx: extension already absent");
            }
            Err(e) => return Err(pabx_error(e)),
        }
    }
    let txn = state.begin().await?;
    let n = extension::Entity::delete_by_id((ctx.tenant_id, id))
        .exec(&*txn)
        .await?
        .rows_affected;
    if n == 1 {
        quota::release(&*txn, ctx.tenant_id, Resource::Extensions, 1).await?;
        audit::record(
            &*txn,
            audit::Entry::tenant(
                ctx,
                "delete",
                "extension",
                id,
                json!({"number": cur.number}),
            ),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Imports the PABX's extensions: new numbers are created (while the plan allows), changed ones
/// updated, CRM extensions confirmed by the PABX before and now absent there are removed.
/// Extensions created in the CRM and not yet confirmed are kept.
pub async fn sync(state: &AppState, tenant_id: Uuid) -> AppResult<ExtensionSync> {
    let pabx = client(state, tenant_id).await?;
    let remote: Vec<PabxExtension> = pabx.list_extensions().await.map_err(pabx_error)?;
    let tenant = state
        .tenants
        .get(&state.db, tenant_id)
        .await?
        .ok_or_else(AppError::not_found)?;
    let max = tenant.limits.max_extensions;
    let mut out = ExtensionSync::default();
    let now = Utc::now();
    let txn = state.begin().await?;
    let local = extension::Entity::find()
        .filter(extension::Column::TenantId.eq(tenant_id))
        .all(&*txn)
        .await?;
    for r in &remote {
        let area = r.area_code.map(i16::from);
        let name: String = r.name.chars().take(120).collect();
        match local.iter().find(|l| l.number == r.number) {
            Some(l) => {
                let changed = l.provider_id.as_deref() != Some(r.provider_id.as_str())
                    || l.name != name
                    || l.group_name != r.group
                    || l.area_code != area
                    || l.record_calls != r.record_calls
                    || l.blocked != r.blocked;
                let mut upd = extension::Entity::update_many()
                    .col_expr(extension::Column::SyncedAt, Expr::value(now))
                    .filter(extension::Column::TenantId.eq(tenant_id))
                    .filter(extension::Column::Id.eq(l.id));
                if changed {
                    upd = upd
                        .col_expr(
                            extension::Column::ProviderId,
                            Expr::value(r.provider_id.clone()),
                        )
                        .col_expr(extension::Column::Name, Expr::value(name))
                        .col_expr(extension::Column::GroupName, Expr::value(r.group.clone()))
                        .col_expr(extension::Column::AreaCode, Expr::value(area))
                        .col_expr(extension::Column::RecordCalls, Expr::value(r.record_calls))
                        .col_expr(extension::Column::Blocked, Expr::value(r.blocked))
                        .col_expr(extension::Column::UpdatedAt, Expr::value(now))
                        .col_expr(
                            extension::Column::Version,
                            Expr::col(extension::Column::Version).add(1),
                        );
                    out.updated += 1;
                }
                upd.exec(&*txn).await?;
            }
            None => {
                if r.number.len() > 10 || r.number.is_empty() {
                    continue;
                }
                if let Err(e) = quota::reserve(&*txn, tenant_id, Resource::Extensions, 1, max).await
                {
                    if e.code == ErrorCode::PlanLimitExceeded {
                        out.skipped_over_limit += 1;
                        continue;
                    }
                    return Err(e);
                }
                extension::Entity::insert(extension::ActiveModel {
                    tenant_id: Set(tenant_id),
                    id: Set(Uuid::now_v7()),
                    provider_id: Set(Some(r.provider_id.clone())),
                    number: Set(r.number.clone()),
                    name: Set(if name.is_empty() {
                        r.number.clone()
                    } else {
                        name
                    }),
                    user_id: Set(None),
                    group_name: Set(r.group.clone()),
                    area_code: Set(area),
                    record_calls: Set(r.record_calls),
                    blocked: Set(r.blocked),
                    origin: Set(ExtensionOrigin::Pabx.as_str().into()),
                    synced_at: Set(Some(now)),
                    created_at: Set(now),
                    updated_at: Set(now),
                    version: Set(1),
                })
                .exec_without_returning(&*txn)
                .await?;
                out.imported += 1;
            }
        }
    }
    for l in &local {
        let gone = l.provider_id.is_some() && !remote.iter().any(|r| r.number == l.number);
        if gone {
            extension::Entity::delete_by_id((tenant_id, l.id))
                .exec(&*txn)
                .await?;
            quota::release(&*txn, tenant_id, Resource::Extensions, 1).await?;
            out.removed += 1;
        }
    }
    txn.commit().await?;
    Ok(out)
}
