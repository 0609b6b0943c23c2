//! Pipelines and stages: create (counted against `max_pipelines`), rename, default pipeline, soft
//! delete; stages added, changed, reordered and removed (moving their deals to a target stage).
//! Every change to a pipeline's stages first takes the pipeline's row (`version + 1`), so concurrent
//! configuration changes of one pipeline are serialised on both backends.

use chrono::Utc;
use jtcrm_types::ErrorCode;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::pipelines::{Pipeline, PipelineInput, Stage, StageInput, StageKind};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use serde_json::json;
use uuid::Uuid;

use super::model::{history, opportunity, pipeline, stage};
use super::{
    DEFAULT_STAGES, MAX_STAGES, board, default_color, default_probability, insert_pipeline,
    pipeline_dto, stage_dto, stage_kind,
};
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Authorized, Managers};
use jtcrm_kernel::http::idempotency::Uncommitted;
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::quota::{self, Resource};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store;

mod stages;

pub use stages::*;

/// A live pipeline of the tenant; otherwise `404`.
pub async fn find_pipeline<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<pipeline::Model> {
    pipeline::Entity::find_by_id((tenant_id, id))
        .one(conn)
        .await?
        .filter(|p| p.deleted_at.is_none())
        .ok_or_else(AppError::not_found)
}

/// The stages of a pipeline, in order.
pub async fn stages_of<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    pipeline_id: Uuid,
) -> AppResult<Vec<stage::Model>> {
    Ok(stage::Entity::find()
        .filter(stage::Column::TenantId.eq(tenant_id))
        .filter(stage::Column::PipelineId.eq(pipeline_id))
        .order_by_asc(stage::Column::Position)
        .order_by_asc(stage::Column::Id)
        .all(conn)
        .await?)
}

/// A stage of a live pipeline of the tenant; otherwise `404`.
/// The name of the tenant's stage `id`, if it exists.
pub async fn stage_name<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<Option<String>> {
    Ok(stage::Entity::find_by_id((tenant_id, id))
        .one(conn)
        .await?
        .map(|s| s.name))
}

pub async fn find_stage<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<stage::Model> {
    let s = stage::Entity::find_by_id((tenant_id, id))
        .one(conn)
        .await?
        .ok_or_else(AppError::not_found)?;
    find_pipeline(conn, tenant_id, s.pipeline_id).await?;
    Ok(s)
}

/// `404` naming the body field that referenced a missing (or another tenant's) record.
pub fn not_found_in_body(field: &str) -> AppError {
    AppError::new(
        ErrorCode::NotFound,
        format!("Registro referenciado em '{field}' não encontrado."),
    )
    .with_context(json!({"field": field}))
}

/// Like [`find_stage`], with a `404` that names `field`.
pub async fn find_stage_ref<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
    field: &str,
) -> AppResult<stage::Model> {
    find_stage(conn, tenant_id, id).await.map_err(|e| {
        if e.code == ErrorCode::NotFound {
            not_found_in_body(field)
        } else {
            e
        }
    })
}

/// The first `open` stage of a pipeline.
pub fn first_open(stages: &[stage::Model]) -> Option<&stage::Model> {
    stages.iter().find(|s| stage_kind(s) == StageKind::Open)
}

/// Takes the pipeline's row for the rest of the transaction (bumping its version: its stages are
/// part of its representation). `404` when gone.
async fn lock_pipeline<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<pipeline::Model> {
    let res = pipeline::Entity::update_many()
        .col_expr(
            pipeline::Column::Version,
            Expr::col(pipeline::Column::Version).add(1),
        )
        .col_expr(pipeline::Column::UpdatedAt, Expr::val(Utc::now()))
        .filter(pipeline::Column::TenantId.eq(tenant_id))
        .filter(pipeline::Column::Id.eq(id))
        .filter(pipeline::Column::DeletedAt.is_null())
        .exec(conn)
        .await?;
    if res.rows_affected == 0 {
        return Err(AppError::not_found());
    }
    find_pipeline(conn, tenant_id, id).await
}

fn valid_color(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|x| x.is_ascii_hexdigit())
}

/// A validated stage: (name, probability, kind, color). `cur` supplies absent keys on change.
fn validate_stage(
    v: &mut Validator,
    prefix: &str,
    input: &StageInput,
    cur: Option<&stage::Model>,
) -> Option<(String, i32, StageKind, String)> {
    let f = |name: &str| format!("{prefix}{name}");
    let name = match (&input.name, cur) {
        (None, Some(c)) => Some(c.name.clone()),
        (n, _) => v.required_text(&f("name"), n.as_deref(), 80),
    };
    let kind = match (&input.kind, cur) {
        (None, Some(c)) => stage_kind(c),
        (None, None) => StageKind::Open,
        (Some(k), _) => StageKind::parse(k.trim()).unwrap_or_else(|| {
            v.add(&f("kind"), "invalid_kind", "Use open, won ou lost");
            StageKind::Open
        }),
    };
    let probability = match (input.probability, cur) {
        (Some(p), _) if (0..=100).contains(&p) => p,
        (Some(_), _) => {
            v.add(
                &f("probability"),
                "out_of_range",
                "Probabilidade de 0 a 100",
            );
            0
        }
        (None, Some(c)) if input.kind.is_none() => c.probability,
        (None, _) => default_probability(kind),
    };
    let color = match (&input.color, cur) {
        (Some(c), _) if valid_color(c.trim()) => c.trim().to_ascii_uppercase(),
        (Some(_), _) => {
            v.add(&f("color"), "invalid_color", "Use uma cor #RRGGBB");
            default_color(kind).to_string()
        }
        (None, Some(c)) => c.color.clone(),
        (None, None) => default_color(kind).to_string(),
    };
    Some((name?, probability, kind, color))
}

async fn live_deals_in<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    col: opportunity::Column,
    id: Uuid,
) -> AppResult<u64> {
    Ok(opportunity::Entity::find()
        .filter(opportunity::Column::TenantId.eq(tenant_id))
        .filter(col.eq(id))
        .filter(opportunity::Column::DeletedAt.is_null())
        .count(conn)
        .await?)
}

async fn unset_default<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    except: Uuid,
) -> AppResult<()> {
    pipeline::Entity::update_many()
        .col_expr(pipeline::Column::IsDefault, Expr::val(false))
        .filter(pipeline::Column::TenantId.eq(tenant_id))
        .filter(pipeline::Column::IsDefault.eq(true))
        .filter(pipeline::Column::Id.ne(except))
        .exec(conn)
        .await?;
    Ok(())
}

async fn has_default<C: ConnectionTrait>(conn: &C, tenant_id: Uuid) -> AppResult<bool> {
    Ok(pipeline::Entity::find()
        .filter(pipeline::Column::TenantId.eq(tenant_id))
        .filter(pipeline::Column::IsDefault.eq(true))
        .filter(pipeline::Column::DeletedAt.is_null())
        .count(conn)
        .await?
        > 0)
}

/// The tenant's default pipeline (or its oldest live one).
pub async fn default_pipeline<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
) -> AppResult<Option<pipeline::Model>> {
    Ok(default_first(tenant_id).one(conn).await?)
}

/// The live pipelines of the tenant, the default first, then the oldest.
fn default_first(tenant_id: Uuid) -> Select<pipeline::Entity> {
    pipeline::Entity::find()
        .filter(pipeline::Column::TenantId.eq(tenant_id))
        .filter(pipeline::Column::DeletedAt.is_null())
        .order_by_desc(pipeline::Column::IsDefault)
        .order_by_asc(pipeline::Column::Id)
}

// ---------- pipelines ----------

pub async fn list(
    state: &AppState,
    ctx: &TenantCtx,
    limit: Option<u64>,
    cursor: Option<&str>,
    include_total: bool,
) -> AppResult<Page<Pipeline>> {
    let limit = pagination::limit(limit)?;
    let sel = pipeline::Entity::find()
        .filter(pipeline::Column::TenantId.eq(ctx.tenant_id))
        .filter(pipeline::Column::DeletedAt.is_null());
    let page = Keyset::asc([pipeline::Column::Id])
        .paginate(&state.db, sel, cursor, limit, include_total)
        .await?;
    let ids: Vec<Uuid> = page.items.iter().map(|p| p.id).collect();
    let stages = if ids.is_empty() {
        vec![]
    } else {
        stage::Entity::find()
            .filter(stage::Column::TenantId.eq(ctx.tenant_id))
            .filter(stage::Column::PipelineId.is_in(ids))
            .order_by_asc(stage::Column::Position)
            .order_by_asc(stage::Column::Id)
            .all(&state.db)
            .await?
    };
    Ok(page.map(|p| {
        let mine: Vec<stage::Model> = stages
            .iter()
            .filter(|s| s.pipeline_id == p.id)
            .cloned()
            .collect();
        pipeline_dto(p, &mine)
    }))
}

pub async fn get(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<Pipeline> {
    let p = find_pipeline(&state.db, ctx.tenant_id, id).await?;
    let stages = stages_of(&state.db, ctx.tenant_id, id).await?;
    Ok(pipeline_dto(p, &stages))
}

pub async fn create(
    state: &AppState,
    ctx: &Authorized<Managers>,
    input: PipelineInput,
) -> AppResult<Uncommitted<Pipeline>> {
    let mut v = Validator::new();
    let name = v.required_text("name", input.name.as_deref(), 120);
    let stages: Vec<(String, i32, StageKind, String)> = match &input.stages {
        None => DEFAULT_STAGES
            .iter()
            .map(|(n, p, k, c)| (n.to_string(), *p, *k, c.to_string()))
            .collect(),
        Some(list) => {
            if list.is_empty() || list.len() > MAX_STAGES {
                v.add("stages", "invalid_length", "De 1 a 30 etapas");
            }
            let out: Vec<_> = list
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    // The list order is the stage order; a position, if given, is still checked
                    // like on the stage endpoints.
                    if s.position.is_some_and(|p| p < 0) {
                        v.add(
                            &format!("stages[{i}].position"),
                            "out_of_range",
                            "Posição a partir de 0",
                        );
                    }
                    validate_stage(&mut v, &format!("stages[{i}]."), s, None)
                })
                .collect();
            if !list.is_empty() && !out.iter().any(|s| s.2 == StageKind::Open) {
                v.add(
                    "stages",
                    "no_open_stage",
                    "O pipeline precisa de ao menos uma etapa aberta",
                );
            }
            out
        }
    };
    v.finish()?;
    let Some(name) = name else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    let txn = state.begin().await?;
    quota::reserve(
        &*txn,
        ctx.tenant_id,
        Resource::Pipelines,
        1,
        ctx.tenant.limits.max_pipelines,
    )
    .await?;
    let is_default = input.is_default == Some(true) || !has_default(&*txn, ctx.tenant_id).await?;
    let (p, stage_rows) =
        insert_pipeline(&*txn, ctx.tenant_id, &name, is_default, &stages, Utc::now()).await?;
    if is_default {
        unset_default(&*txn, ctx.tenant_id, p.id).await?;
    }
    let dto = pipeline_dto(p.clone(), &stage_rows);
    let body = serde_json::to_value(&dto).map_err(AppError::internal)?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create",
            "pipeline",
            p.id,
            audit::diff(&json!({}), &body),
        ),
    )
    .await?;
    Ok(Uncommitted::new(txn, dto))
}

/// Renames the pipeline and/or makes it the default. Stages change through the stage endpoints.
pub async fn update(
    state: &AppState,
    ctx: &Authorized<Managers>,
    id: Uuid,
    if_match: Option<i32>,
    input: PipelineInput,
) -> AppResult<Pipeline> {
    let mut v = Validator::new();
    let name = v.required_text("name", input.name.as_deref(), 120);
    if input.stages.is_some() {
        v.add(
            "stages",
            "not_allowed",
            "Altere etapas por /api/pipelines/{id}/stages",
        );
    }
    v.finish()?;
    let Some(name) = name else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    let txn = state.begin().await?;
    let current = find_pipeline(&*txn, ctx.tenant_id, id).await?;
    if if_match.is_some_and(|v| v != current.version) {
        return Err(AppError::stale_version());
    }
    let make_default = match input.is_default {
        Some(true) => true,
        Some(false) if current.is_default => {
            return Err(AppError::field(
                "is_default",
                "required_default",
                "Defina outro pipeline como padrão em vez de desmarcar este",
            ));
        }
        _ => current.is_default,
    };
    let stages = stages_of(&*txn, ctx.tenant_id, id).await?;
    let before = serde_json::to_value(pipeline_dto(current.clone(), &stages)).unwrap_or_default();
    let version = current.version;
    let mut am = current.into_active_model();
    am.name = Set(name);
    am.is_default = Set(make_default);
    am.updated_at = Set(Utc::now());
    am.version = Set(version + 1);
    let updated = crate::domains::optimistic_update::<pipeline::Entity, _>(
        &*txn,
        am,
        pipeline::Column::Version,
        version,
    )
    .await?;
    if make_default {
        unset_default(&*txn, ctx.tenant_id, id).await?;
    }
    let dto = pipeline_dto(updated, &stages);
    let after = serde_json::to_value(&dto).unwrap_or_default();
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "update", "pipeline", id, audit::diff(&before, &after)),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

/// Soft delete. Refused (`409`) while the pipeline holds deals; frees a `max_pipelines` slot. When
/// the default pipeline goes, the oldest remaining one becomes the default.
pub async fn delete(state: &AppState, ctx: &Authorized<Managers>, id: Uuid) -> AppResult<()> {
    let txn = state.begin().await?;
    let current = lock_pipeline(&*txn, ctx.tenant_id, id).await?;
    let n = live_deals_in(&*txn, ctx.tenant_id, opportunity::Column::PipelineId, id).await?;
    if n > 0 {
        return Err(AppError::new(
            ErrorCode::PipelineNotEmpty,
            format!("O pipeline tem {n} oportunidade(s); mova-as ou exclua-as antes."),
        )
        .with_context(json!({"opportunities": n})));
    }
    quota::release(&*txn, ctx.tenant_id, Resource::Pipelines, 1).await?;
    if current.is_default
        && let Some(next) = default_first(ctx.tenant_id)
            .filter(pipeline::Column::Id.ne(id))
            .one(&*txn)
            .await?
    {
        let mut am = next.into_active_model();
        am.is_default = Set(true);
        am.update(&*txn).await?;
    }
    store::soft_delete::<pipeline::Entity>(txn, ctx, "pipeline", current, |am| {
        am.is_default = Set(false);
    })
    .await
}
