//! Sales pipelines (Kanban): pipelines and their ordered stages, opportunities with recurring-revenue
//! lines built from the product catalog, card moves with a stable, concurrency-safe order, won/lost/
//! reopen, the stage history (also the event record for the automation engine and the timeline), the
//! board with per-stage totals, and lead conversion. See docs/pipelines.md.

pub mod board;
#[cfg(feature = "internals")]
pub mod model;
#[cfg(not(feature = "internals"))]
mod model;
pub mod opportunities;
pub mod routes;
pub mod service;
pub mod stats;

use chrono::{DateTime, Utc};
use jtcrm_types::dto::pipelines::{
    Opportunity, OpportunityItem, OpportunityStatus, Pipeline, Stage, StageKind,
};
use jtcrm_types::dto::products::Billing;
use jtcrm_types::money;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use uuid::Uuid;

use self::model::{item, opportunity, pipeline, stage};
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::quota::{self, Resource};

pub const MAX_STAGES: usize = 30;
pub const DEFAULT_PIPELINE_NAME: &str = "Funil de Vendas";

/// The stages of every new tenant's default pipeline: (name, probability, kind, color).
pub const DEFAULT_STAGES: [(&str, i32, StageKind, &str); 6] = [
    ("Prospecção", 10, StageKind::Open, "#64748B"),
    ("Qualificação", 25, StageKind::Open, "#0EA5E9"),
    ("Proposta", 50, StageKind::Open, "#F59E0B"),
    ("Negociação", 75, StageKind::Open, "#8B5CF6"),
    ("Fechado Ganho", 100, StageKind::Won, "#16A34A"),
    ("Fechado Perdido", 0, StageKind::Lost, "#DC2626"),
];

pub fn default_color(kind: StageKind) -> &'static str {
    match kind {
        StageKind::Open => "#64748B",
        StageKind::Won => "#16A34A",
        StageKind::Lost => "#DC2626",
    }
}

pub fn default_probability(kind: StageKind) -> i32 {
    match kind {
        StageKind::Won => 100,
        StageKind::Open | StageKind::Lost => 0,
    }
}

pub fn stage_kind(s: &stage::Model) -> StageKind {
    StageKind::parse(&s.kind).unwrap_or(StageKind::Open)
}

/// The status a deal takes in a stage of `kind`.
pub fn status_for(kind: StageKind) -> OpportunityStatus {
    match kind {
        StageKind::Open => OpportunityStatus::Open,
        StageKind::Won => OpportunityStatus::Won,
        StageKind::Lost => OpportunityStatus::Lost,
    }
}

pub fn stage_dto(s: &stage::Model) -> Stage {
    Stage {
        id: s.id,
        name: s.name.clone(),
        position: s.position,
        probability: s.probability,
        kind: stage_kind(s),
        color: s.color.clone(),
    }
}

pub fn pipeline_dto(p: pipeline::Model, stages: &[stage::Model]) -> Pipeline {
    Pipeline {
        id: p.id,
        name: p.name,
        is_default: p.is_default,
        stages: stages.iter().map(stage_dto).collect(),
        created_at: p.created_at,
        updated_at: p.updated_at,
        version: p.version,
    }
}

pub fn item_dto(m: item::Model) -> OpportunityItem {
    OpportunityItem {
        id: m.id,
        product_id: m.product_id,
        product_name: m.product_name,
        sku: m.sku,
        billing: Billing::parse(&m.billing).unwrap_or(Billing::Monthly),
        quantity: m.quantity,
        monthly_price_cents: m.monthly_price_cents,
        setup_price_cents: m.setup_price_cents,
        discount_percent: money::discount_percent(m.discount_bp),
        monthly_total_cents: m.monthly_total_cents,
        setup_total_cents: m.setup_total_cents,
    }
}

pub fn opportunity_dto(m: opportunity::Model, items: Option<Vec<item::Model>>) -> Opportunity {
    Opportunity {
        id: m.id,
        weighted_cents: money::weighted(m.value_cents, m.probability),
        title: m.title,
        lead_id: m.lead_id,
        pipeline_id: m.pipeline_id,
        stage_id: m.stage_id,
        owner_id: m.owner_id,
        status: OpportunityStatus::parse(&m.status).unwrap_or(OpportunityStatus::Open),
        lost_reason: m.lost_reason,
        expected_close_date: m.expected_close_date,
        probability: m.probability,
        probability_overridden: m.probability_overridden,
        term_months: m.term_months,
        value_cents: m.value_cents,
        mrr_cents: m.mrr_cents,
        setup_cents: m.setup_cents,
        tcv_cents: m.tcv_cents,
        position: m.position,
        items: items.map(|v| v.into_iter().map(item_dto).collect()),
        notes: m.notes,
        stage_entered_at: m.stage_entered_at,
        closed_at: m.closed_at,
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
    }
}

/// Inserts a pipeline with its stages (`(name, probability, kind, color)` in order).
pub async fn insert_pipeline<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    name: &str,
    is_default: bool,
    stages: &[(String, i32, StageKind, String)],
    now: DateTime<Utc>,
) -> AppResult<(pipeline::Model, Vec<stage::Model>)> {
    let p = pipeline::Entity::insert(pipeline::ActiveModel {
        tenant_id: Set(tenant_id),
        id: Set(Uuid::now_v7()),
        name: Set(name.to_string()),
        is_default: Set(is_default),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        version: Set(1),
    })
    .exec_with_returning(conn)
    .await?;
    let rows: Vec<stage::Model> = stages
        .iter()
        .enumerate()
        .map(|(i, (name, prob, kind, color))| stage::Model {
            tenant_id,
            id: Uuid::now_v7(),
            pipeline_id: p.id,
            name: name.clone(),
            position: i as i32,
            probability: *prob,
            kind: kind.as_str().to_string(),
            color: color.clone(),
            created_at: now,
            updated_at: now,
        })
        .collect();
    if !rows.is_empty() {
        stage::Entity::insert_many(rows.iter().cloned().map(stage::ActiveModel::from))
            .exec_without_returning(conn)
            .await?;
    }
    Ok((p, rows))
}

/// Tenant seeder (see `app::seeders`): the default pipeline, within the plan's `max_pipelines`.
pub fn seed_tenant<'a>(
    txn: &'a sea_orm::DatabaseTransaction,
    seed: &'a jtcrm_kernel::tenancy::NewTenantSeed,
) -> jtcrm_kernel::tenancy::BoxFuture<'a, AppResult<()>> {
    Box::pin(seed_default(txn, seed.tenant_id, seed.limits.max_pipelines))
}

/// Creates the default pt-BR pipeline of a new tenant, counted against `max_pipelines` (a plan that
/// allows no pipeline gets none). Runs in the tenant-creation transaction.
pub async fn seed_default<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    max_pipelines: Option<i64>,
) -> AppResult<()> {
    if max_pipelines.is_some_and(|m| m < 1) {
        return Ok(());
    }
    quota::reserve(conn, tenant_id, Resource::Pipelines, 1, max_pipelines).await?;
    let stages: Vec<(String, i32, StageKind, String)> = DEFAULT_STAGES
        .iter()
        .map(|(n, p, k, c)| (n.to_string(), *p, *k, c.to_string()))
        .collect();
    insert_pipeline(
        conn,
        tenant_id,
        DEFAULT_PIPELINE_NAME,
        true,
        &stages,
        Utc::now(),
    )
    .await?;
    Ok(())
}
