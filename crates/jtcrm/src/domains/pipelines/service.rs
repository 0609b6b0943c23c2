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
use serde_json::{Value, json};
use uuid::Uuid;

use super::model::{history, opportunity, pipeline, stage};
use super::{
    DEFAULT_STAGES, MAX_STAGES, board, default_color, default_probability, insert_pipeline,
    pipeline_dto, stage_dto, stage_kind,
};
use crate::domains::tenants::limits::{self, Resource};
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Authorized, Managers};
use jtcrm_kernel::http::idempotency::{self, IdempotencyKey};
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store;

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
    idem: Option<IdempotencyKey>,
) -> AppResult<(u16, Value)> {
    if let Some(k) = &idem
        && let Some(r) = idempotency::lookup(&state.db, ctx.tenant_id, k).await?
    {
        return Ok((r.status, r.body));
    }
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
                .filter_map(|(i, s)| validate_stage(&mut v, &format!("stages[{i}]."), s, None))
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
    limits::reserve(
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
    let body =
        serde_json::to_value(pipeline_dto(p.clone(), &stage_rows)).map_err(AppError::internal)?;
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
    idempotency::commit(state, txn, ctx, idem.as_ref(), 201, body).await
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
    limits::release(&*txn, ctx.tenant_id, Resource::Pipelines, 1).await?;
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

// ---------- stages ----------

pub async fn list_stages(
    state: &AppState,
    ctx: &TenantCtx,
    pipeline_id: Uuid,
) -> AppResult<Vec<Stage>> {
    find_pipeline(&state.db, ctx.tenant_id, pipeline_id).await?;
    Ok(stages_of(&state.db, ctx.tenant_id, pipeline_id)
        .await?
        .iter()
        .map(stage_dto)
        .collect())
}

/// Writes `order` (stage ids) as positions 0..n.
async fn write_positions<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    stages: &[stage::Model],
    order: &[Uuid],
) -> AppResult<()> {
    let now = Utc::now();
    for (i, id) in order.iter().enumerate() {
        if stages.iter().any(|s| s.id == *id && s.position != i as i32) {
            stage::Entity::update_many()
                .col_expr(stage::Column::Position, Expr::val(i as i32))
                .col_expr(stage::Column::UpdatedAt, Expr::val(now))
                .filter(stage::Column::TenantId.eq(tenant_id))
                .filter(stage::Column::Id.eq(*id))
                .exec(conn)
                .await?;
        }
    }
    Ok(())
}

fn clamp_position(v: &mut Validator, p: Option<i32>, len: usize) -> usize {
    match p {
        None => len,
        Some(p) if p < 0 => {
            v.add("position", "out_of_range", "Posição a partir de 0");
            len
        }
        Some(p) => (p as usize).min(len),
    }
}

pub async fn create_stage(
    state: &AppState,
    ctx: &Authorized<Managers>,
    pipeline_id: Uuid,
    input: StageInput,
) -> AppResult<Stage> {
    let mut v = Validator::new();
    let s = validate_stage(&mut v, "", &input, None);
    let txn = state.begin().await?;
    lock_pipeline(&*txn, ctx.tenant_id, pipeline_id).await?;
    let stages = stages_of(&*txn, ctx.tenant_id, pipeline_id).await?;
    let at = clamp_position(&mut v, input.position, stages.len());
    if stages.len() >= MAX_STAGES {
        v.add(
            "pipeline",
            "too_many_stages",
            "No máximo 30 etapas por pipeline",
        );
    }
    v.finish()?;
    let Some((name, probability, kind, color)) = s else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    let now = Utc::now();
    let row = stage::Entity::insert(stage::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(Uuid::now_v7()),
        pipeline_id: Set(pipeline_id),
        name: Set(name),
        position: Set(at as i32),
        probability: Set(probability),
        kind: Set(kind.as_str().to_string()),
        color: Set(color),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_with_returning(&*txn)
    .await?;
    let mut order: Vec<Uuid> = stages.iter().map(|s| s.id).collect();
    order.insert(at, row.id);
    write_positions(&*txn, ctx.tenant_id, &stages, &order).await?;
    let dto = stage_dto(&row);
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create_stage",
            "pipeline",
            pipeline_id,
            json!({"stage": serde_json::to_value(&dto).unwrap_or_default()}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

/// Renames, recolours, changes the probability or kind of a stage, or moves it to `position`.
/// A new probability reaches every deal of the stage that does not override it. The kind of a
/// stage that holds deals cannot change (their status would no longer match it).
pub async fn update_stage(
    state: &AppState,
    ctx: &Authorized<Managers>,
    pipeline_id: Uuid,
    stage_id: Uuid,
    input: StageInput,
) -> AppResult<Stage> {
    let txn = state.begin().await?;
    lock_pipeline(&*txn, ctx.tenant_id, pipeline_id).await?;
    let stages = stages_of(&*txn, ctx.tenant_id, pipeline_id).await?;
    let Some(current) = stages.iter().find(|s| s.id == stage_id).cloned() else {
        return Err(AppError::not_found());
    };
    let mut v = Validator::new();
    let s = validate_stage(&mut v, "", &input, Some(&current));
    let at = input
        .position
        .map(|p| clamp_position(&mut v, Some(p), stages.len() - 1));
    v.finish()?;
    let Some((name, probability, kind, color)) = s else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    let old_kind = stage_kind(&current);
    if kind != old_kind {
        let n = live_deals_in(&*txn, ctx.tenant_id, opportunity::Column::StageId, stage_id).await?;
        if n > 0 {
            return Err(AppError::new(
                ErrorCode::StageNotEmpty,
                format!("A etapa tem {n} oportunidade(s); mova-as antes de mudar o tipo."),
            )
            .with_context(json!({"field": "kind", "opportunities": n})));
        }
        if old_kind == StageKind::Open
            && stages
                .iter()
                .filter(|s| stage_kind(s) == StageKind::Open)
                .count()
                == 1
        {
            return Err(AppError::field(
                "kind",
                "last_open_stage",
                "O pipeline precisa de ao menos uma etapa aberta",
            ));
        }
    }
    let before = serde_json::to_value(stage_dto(&current)).unwrap_or_default();
    let mut am = current.clone().into_active_model();
    am.name = Set(name);
    am.probability = Set(probability);
    am.kind = Set(kind.as_str().to_string());
    am.color = Set(color);
    am.updated_at = Set(Utc::now());
    let mut updated = am.update(&*txn).await?;
    if probability != current.probability {
        opportunity::Entity::update_many()
            .col_expr(opportunity::Column::Probability, Expr::val(probability))
            .filter(opportunity::Column::TenantId.eq(ctx.tenant_id))
            .filter(opportunity::Column::StageId.eq(stage_id))
            .filter(opportunity::Column::ProbabilityOverridden.eq(false))
            .exec(&*txn)
            .await?;
    }
    if let Some(at) = at {
        let mut order: Vec<Uuid> = stages
            .iter()
            .map(|s| s.id)
            .filter(|i| *i != stage_id)
            .collect();
        order.insert(at, stage_id);
        write_positions(&*txn, ctx.tenant_id, &stages, &order).await?;
        updated.position = at as i32;
    }
    let dto = stage_dto(&updated);
    let after = serde_json::to_value(&dto).unwrap_or_default();
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "update_stage",
            "pipeline",
            pipeline_id,
            json!({"stage_id": stage_id, "changes": audit::diff(&before, &after)}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

/// Puts the stages in the order given (every stage id of the pipeline, once).
pub async fn reorder_stages(
    state: &AppState,
    ctx: &Authorized<Managers>,
    pipeline_id: Uuid,
    ids: Option<Vec<Uuid>>,
) -> AppResult<Vec<Stage>> {
    let Some(ids) = ids else {
        return Err(AppError::field(
            "stage_ids",
            "required",
            "Campo obrigatório",
        ));
    };
    let txn = state.begin().await?;
    lock_pipeline(&*txn, ctx.tenant_id, pipeline_id).await?;
    let stages = stages_of(&*txn, ctx.tenant_id, pipeline_id).await?;
    if ids.iter().any(|id| !stages.iter().any(|s| s.id == *id)) {
        return Err(not_found_in_body("stage_ids"));
    }
    let mut seen = std::collections::HashSet::new();
    if ids.len() != stages.len() || !ids.iter().all(|id| seen.insert(*id)) {
        return Err(AppError::field(
            "stage_ids",
            "not_a_permutation",
            "Informe cada etapa do pipeline exatamente uma vez",
        ));
    }
    let before: Vec<Uuid> = stages.iter().map(|s| s.id).collect();
    write_positions(&*txn, ctx.tenant_id, &stages, &ids).await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "reorder_stages",
            "pipeline",
            pipeline_id,
            json!({"stage_ids": {"from": before, "to": ids}}),
        ),
    )
    .await?;
    let out = stages_of(&*txn, ctx.tenant_id, pipeline_id).await?;
    txn.commit().await?;
    Ok(out.iter().map(stage_dto).collect())
}

/// Removes a stage. Its deals (if any) go to `move_to`, a stage of the same pipeline and kind,
/// after that stage's cards and in their current order, each with a history entry. The last open
/// stage of a pipeline cannot be removed.
pub async fn delete_stage(
    state: &AppState,
    ctx: &Authorized<Managers>,
    pipeline_id: Uuid,
    stage_id: Uuid,
    move_to: Option<Uuid>,
) -> AppResult<()> {
    let txn = state.begin().await?;
    lock_pipeline(&*txn, ctx.tenant_id, pipeline_id).await?;
    let stages = stages_of(&*txn, ctx.tenant_id, pipeline_id).await?;
    let Some(current) = stages.iter().find(|s| s.id == stage_id).cloned() else {
        return Err(AppError::not_found());
    };
    let kind = stage_kind(&current);
    if kind == StageKind::Open
        && stages
            .iter()
            .filter(|s| stage_kind(s) == StageKind::Open)
            .count()
            == 1
    {
        return Err(AppError::field(
            "stage_id",
            "last_open_stage",
            "O pipeline precisa de ao menos uma etapa aberta",
        ));
    }
    let live = live_deals_in(&*txn, ctx.tenant_id, opportunity::Column::StageId, stage_id).await?;
    let any = opportunity::Entity::find()
        .filter(opportunity::Column::TenantId.eq(ctx.tenant_id))
        .filter(opportunity::Column::StageId.eq(stage_id))
        .count(&*txn)
        .await?;
    let target = match move_to {
        Some(t) => {
            let Some(target) = stages.iter().find(|s| s.id == t).cloned() else {
                // Another pipeline's stage is a 422; a stage that does not exist (for this tenant) a 404.
                find_stage_ref(&*txn, ctx.tenant_id, t, "move_to").await?;
                return Err(AppError::field(
                    "move_to",
                    "other_pipeline",
                    "A etapa de destino deve ser do mesmo pipeline",
                ));
            };
            if target.id == stage_id {
                return Err(AppError::field(
                    "move_to",
                    "same_stage",
                    "A etapa de destino deve ser outra",
                ));
            }
            if stage_kind(&target) != kind {
                return Err(AppError::field(
                    "move_to",
                    "kind_mismatch",
                    "A etapa de destino deve ser do mesmo tipo (aberta, ganha ou perdida)",
                ));
            }
            Some(target)
        }
        None if live > 0 => {
            return Err(AppError::validation(vec![jtcrm_types::FieldError::new(
                "move_to",
                "required",
                format!("A etapa tem {live} oportunidade(s): informe a etapa de destino (move_to)"),
            )]));
        }
        // Only deleted deals remain: they follow the first other stage of the same kind.
        None if any > 0 => stages
            .iter()
            .find(|s| s.id != stage_id && stage_kind(s) == kind)
            .or_else(|| stages.iter().find(|s| s.id != stage_id))
            .cloned(),
        None => None,
    };
    let mut moved = 0u64;
    if let Some(target) = &target
        && any > 0
    {
        board::lock_stages(&*txn, ctx.tenant_id, &[stage_id, target.id]).await?;
        moved = move_all(&*txn, ctx, &current, target).await?;
    }
    stage::Entity::delete_by_id((ctx.tenant_id, stage_id))
        .exec(&*txn)
        .await?;
    let order: Vec<Uuid> = stages
        .iter()
        .map(|s| s.id)
        .filter(|i| *i != stage_id)
        .collect();
    write_positions(&*txn, ctx.tenant_id, &stages, &order).await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "delete_stage", "pipeline", pipeline_id, json!({"stage": stage_dto(&current), "move_to": target.as_ref().map(|t| t.id), "moved": moved})),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Moves every deal of `from` (deleted ones too) after the cards of `to`, keeping their order;
/// writes a history entry for each live one. Returns how many live deals moved.
async fn move_all<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    from: &stage::Model,
    to: &stage::Model,
) -> AppResult<u64> {
    let t = ctx.tenant_id;
    let (from_min, _) = board::bounds(conn, t, from.id, false).await?;
    let (_, to_max) = board::bounds(conn, t, to.id, false).await?;
    let offset = match (from_min, to_max) {
        (Some(fmin), Some(tmax)) => tmax.saturating_add(board::GAP).saturating_sub(fmin),
        _ => 0,
    };
    let now = Utc::now();
    // Live deals first (their history needs the time spent in `from`).
    let live: Vec<(Uuid, chrono::DateTime<Utc>, String)> = opportunity::Entity::find()
        .select_only()
        .column(opportunity::Column::Id)
        .column(opportunity::Column::StageEnteredAt)
        .column(opportunity::Column::Status)
        .filter(opportunity::Column::TenantId.eq(t))
        .filter(opportunity::Column::StageId.eq(from.id))
        .filter(opportunity::Column::DeletedAt.is_null())
        .into_tuple()
        .all(conn)
        .await?;
    opportunity::Entity::update_many()
        .col_expr(opportunity::Column::StageId, Expr::val(to.id))
        .col_expr(
            opportunity::Column::Position,
            Expr::col(opportunity::Column::Position).add(offset),
        )
        .col_expr(opportunity::Column::StageEnteredAt, Expr::val(now))
        .filter(opportunity::Column::TenantId.eq(t))
        .filter(opportunity::Column::StageId.eq(from.id))
        .exec(conn)
        .await?;
    opportunity::Entity::update_many()
        .col_expr(opportunity::Column::Probability, Expr::val(to.probability))
        .filter(opportunity::Column::TenantId.eq(t))
        .filter(opportunity::Column::StageId.eq(to.id))
        .filter(opportunity::Column::ProbabilityOverridden.eq(false))
        .exec(conn)
        .await?;
    for chunk in live.chunks(500) {
        let rows: Vec<history::ActiveModel> = chunk
            .iter()
            .map(|(id, entered, status)| history::ActiveModel {
                tenant_id: Set(t),
                id: Set(Uuid::now_v7()),
                opportunity_id: Set(*id),
                pipeline_id: Set(to.pipeline_id),
                event: Set("stage_changed".into()),
                from_stage_id: Set(Some(from.id)),
                from_stage_name: Set(Some(from.name.clone())),
                to_stage_id: Set(to.id),
                to_stage_name: Set(to.name.clone()),
                from_status: Set(Some(status.clone())),
                to_status: Set(status.clone()),
                lost_reason: Set(None),
                seconds_in_from_stage: Set(Some(Ord::max((now - *entered).num_seconds(), 0))),
                actor_id: Set(Some(ctx.user_id)),
                created_at: Set(now),
            })
            .collect();
        history::Entity::insert_many(rows)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(live.len() as u64)
}
