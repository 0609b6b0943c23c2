//! Proposal and contract templates (one table, a `kind`): CRUD, validation at save (syntax and
//! unknown filters answer `422` with line and column), the tenant's default per kind, and the
//! defaults every new tenant starts with.

use chrono::Utc;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::proposals::{DocumentTemplate, TemplateInput, TemplateKind};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use uuid::Uuid;

use super::defaults;
use super::model::template;
use super::render;
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Authorized, Managers};
use jtcrm_kernel::http::idempotency::Uncommitted;
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store;
use jtcrm_kernel::tenancy::{BoxFuture, NewTenantSeed};

pub fn to_dto(m: template::Model) -> DocumentTemplate {
    DocumentTemplate {
        id: m.id,
        kind: TemplateKind::parse(&m.kind).unwrap_or(TemplateKind::Proposal),
        name: m.name,
        body: m.body,
        is_default: m.is_default,
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
    }
}

/// A live template of the tenant and kind; otherwise `404`.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    kind: TemplateKind,
    id: Uuid,
) -> AppResult<template::Model> {
    template::Entity::find_by_id((tenant_id, id))
        .one(conn)
        .await?
        .filter(|t| t.deleted_at.is_none() && t.kind == kind.as_str())
        .ok_or_else(AppError::not_found)
}

/// The body to render a document of `kind` with: the named template, else the tenant's default,
/// else the built-in default.
pub async fn body_for<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    kind: TemplateKind,
    id: Option<Uuid>,
) -> AppResult<String> {
    if let Some(id) = id
        && let Ok(t) = find(conn, tenant_id, kind, id).await
    {
        return Ok(t.body);
    }
    let default = template::Entity::find()
        .filter(template::Column::TenantId.eq(tenant_id))
        .filter(template::Column::Kind.eq(kind.as_str()))
        .filter(template::Column::DeletedAt.is_null())
        .filter(template::Column::IsDefault.eq(true))
        .one(conn)
        .await?;
    Ok(default
        .map(|t| t.body)
        .unwrap_or_else(|| builtin(kind).to_string()))
}

pub fn builtin(kind: TemplateKind) -> &'static str {
    match kind {
        TemplateKind::Proposal => defaults::PROPOSAL,
        TemplateKind::Contract => defaults::CONTRACT,
    }
}

struct Draft {
    name: String,
    body: String,
    is_default: bool,
}

fn validate(
    input: &TemplateInput,
    kind: TemplateKind,
    cur: Option<&template::Model>,
) -> AppResult<Draft> {
    let mut v = Validator::new();
    let name = v.required_text("name", input.name.as_deref(), 200);
    let body = match input.body.as_deref() {
        None => {
            v.add("body", "required", "Campo obrigatório");
            None
        }
        Some(b) if b.trim().is_empty() => {
            v.add("body", "required", "Campo obrigatório");
            None
        }
        Some(b) if b.chars().count() > render::MAX_TEMPLATE_CHARS => {
            v.add("body", "too_long", "Máximo de 100000 caracteres");
            None
        }
        Some(b) if b.contains('\0') => {
            v.add(
                "body",
                "invalid_value",
                "O modelo não pode conter o caractere NUL",
            );
            None
        }
        Some(b) => match render::check(b, kind) {
            Ok(()) => Some(b.to_string()),
            Err(e) => {
                v.add(&e.field, &e.code, &e.message);
                None
            }
        },
    };
    v.finish()?;
    let (Some(name), Some(body)) = (name, body) else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    Ok(Draft {
        name,
        body,
        is_default: input
            .is_default
            .unwrap_or_else(|| cur.is_some_and(|c| c.is_default)),
    })
}

async fn clear_default<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    kind: TemplateKind,
    except: Uuid,
) -> AppResult<()> {
    template::Entity::update_many()
        .col_expr(template::Column::IsDefault, Expr::value(false))
        .filter(template::Column::TenantId.eq(tenant_id))
        .filter(template::Column::Kind.eq(kind.as_str()))
        .filter(template::Column::Id.ne(except))
        .filter(template::Column::IsDefault.eq(true))
        .exec(conn)
        .await?;
    Ok(())
}

fn entity(kind: TemplateKind) -> &'static str {
    match kind {
        TemplateKind::Proposal => "proposal_template",
        TemplateKind::Contract => "contract_template",
    }
}

pub async fn create(
    state: &AppState,
    ctx: &Authorized<Managers>,
    kind: TemplateKind,
    input: TemplateInput,
) -> AppResult<Uncommitted<DocumentTemplate>> {
    let d = validate(&input, kind, None)?;
    let txn = state.begin().await?;
    let now = Utc::now();
    let id = Uuid::now_v7();
    if d.is_default {
        clear_default(&*txn, ctx.tenant_id, kind, id).await?;
    }
    let m = template::Entity::insert(template::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(id),
        kind: Set(kind.as_str().into()),
        name: Set(d.name),
        body: Set(d.body),
        is_default: Set(d.is_default),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        version: Set(1),
    })
    .exec_with_returning(&*txn)
    .await?;
    let dto = to_dto(m);
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create",
            entity(kind),
            id,
            json!({"name": dto.name, "is_default": dto.is_default}),
        ),
    )
    .await?;
    Ok(Uncommitted::new(txn, dto))
}

pub async fn get(
    state: &AppState,
    ctx: &TenantCtx,
    kind: TemplateKind,
    id: Uuid,
) -> AppResult<DocumentTemplate> {
    Ok(to_dto(find(&state.db, ctx.tenant_id, kind, id).await?))
}

pub async fn update(
    state: &AppState,
    ctx: &Authorized<Managers>,
    kind: TemplateKind,
    id: Uuid,
    if_match: Option<i32>,
    input: TemplateInput,
) -> AppResult<DocumentTemplate> {
    let txn = state.begin().await?;
    let current = find(&*txn, ctx.tenant_id, kind, id).await?;
    if if_match.is_some_and(|v| v != current.version) {
        return Err(AppError::stale_version());
    }
    let d = validate(&input, kind, Some(&current))?;
    if d.is_default {
        clear_default(&*txn, ctx.tenant_id, kind, id).await?;
    }
    let version = current.version;
    let mut am = current.into_active_model();
    am.name = Set(d.name);
    am.body = Set(d.body);
    am.is_default = Set(d.is_default);
    am.updated_at = Set(Utc::now());
    am.version = Set(version + 1);
    let m = store::optimistic_update::<template::Entity, _>(
        &*txn,
        am,
        template::Column::Version,
        version,
    )
    .await?;
    let dto = to_dto(m);
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "update",
            entity(kind),
            id,
            json!({"name": dto.name, "is_default": dto.is_default, "version": dto.version}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

/// Soft delete. Documents that named it render with the tenant's default from then on.
pub async fn delete(
    state: &AppState,
    ctx: &Authorized<Managers>,
    kind: TemplateKind,
    id: Uuid,
) -> AppResult<()> {
    let txn = state.begin().await?;
    let current = find(&*txn, ctx.tenant_id, kind, id).await?;
    store::soft_delete::<template::Entity>(txn, ctx, entity(kind), current, |am| {
        am.is_default = Set(false);
    })
    .await
}

/// Query parameters of the template lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TemplateQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub include_total: Option<bool>,
}

/// Templates of a kind by name (then id), keyset-paginated.
pub async fn list(
    state: &AppState,
    ctx: &TenantCtx,
    kind: TemplateKind,
    q: TemplateQuery,
) -> AppResult<Page<DocumentTemplate>> {
    let limit = pagination::limit(q.limit)?;
    let sel = template::Entity::find()
        .filter(template::Column::TenantId.eq(ctx.tenant_id))
        .filter(template::Column::Kind.eq(kind.as_str()))
        .filter(template::Column::DeletedAt.is_null());
    let page = Keyset::asc([template::Column::Name, template::Column::Id])
        .paginate(&state.db, sel, q.cursor.as_deref(), limit, q.include_total)
        .await?;
    Ok(page.map(to_dto))
}

/// The first template of each kind, as default, for a new tenant.
pub fn seed_tenant<'a>(
    txn: &'a sea_orm::DatabaseTransaction,
    seed: &'a NewTenantSeed,
) -> BoxFuture<'a, AppResult<()>> {
    Box::pin(async move {
        let now = Utc::now();
        for (kind, name, body) in [
            (
                TemplateKind::Proposal,
                defaults::PROPOSAL_NAME,
                defaults::PROPOSAL,
            ),
            (
                TemplateKind::Contract,
                defaults::CONTRACT_NAME,
                defaults::CONTRACT,
            ),
        ] {
            template::Entity::insert(template::ActiveModel {
                tenant_id: Set(seed.tenant_id),
                id: Set(Uuid::now_v7()),
                kind: Set(kind.as_str().into()),
                name: Set(name.into()),
                body: Set(body.into()),
                is_default: Set(true),
                created_at: Set(now),
                updated_at: Set(now),
                deleted_at: Set(None),
                version: Set(1),
            })
            .exec_without_returning(txn)
            .await?;
        }
        Ok(())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_the_save_check() {
        render::check(defaults::PROPOSAL, TemplateKind::Proposal).unwrap();
        render::check(defaults::CONTRACT, TemplateKind::Contract).unwrap();
        let out = render::render(defaults::CONTRACT, &render::sample()).unwrap();
        assert!(out.contains("mil e duzentos reais"), "{out}");
        assert!(out.contains("Roteador"));
    }
}
