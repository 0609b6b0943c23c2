//! Card order and the board.
//!
//! **Order.** Each card has an `i64` `position` in its stage; cards are shown by `(position, id)`.
//! New cards and moves without a neighbour go to the top (`min − GAP`); a move `before`/`after` a
//! card takes the midpoint between that card and its neighbour. When two neighbours are adjacent
//! integers the stage is renumbered (`GAP, 2·GAP, …`) and the midpoint taken again; with
//! `GAP = 2³²` that takes 32 drops into the same slot.
//!
//! **Concurrency.** Every write that changes the cards of a stage (create, move in, move out,
//! reorder, renumber, stage removal) first locks the stage rows involved, in id order, with
//! `SELECT … FOR UPDATE` on PostgreSQL (SQLite serialises write transactions in process, see
//! `AppState::begin`). Neighbours are read after the lock, so two concurrent moves into one stage
//! run one after the other and can neither pick the same position nor lose a card; renumbering
//! updates carry `stage_id = …` so they never touch a card that has just left the stage.
//!
//! **Board.** The per-stage sums (count, Σ value, Σ MRR, Σ TCV, Σ value × probability) come from
//! `pipeline_stage_totals`, kept by triggers (migration 000008), and every stage's first cards
//! from one statement: a `UNION ALL` of one top-N range per stage on `ix_opportunities_stage_pos`
//! (or `ix_opportunities_owner_stage_pos` for a seller who sees only their own deals), so the board
//! costs three round trips whatever the number of stages.

use std::collections::HashMap;

use jtcrm_types::ErrorCode;
use jtcrm_types::dto::pipelines::{Board, BoardStage};
use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait, Query, SelectStatement, UnionType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    Select,
};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::model::{opportunity, stage, stage_totals};
use super::opportunities::SortKey;
use super::service::{find_pipeline, not_found_in_body, stages_of};
use super::{opportunity_dto, stage_kind};
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::visibility::{sees_all, visible_to};
use jtcrm_types::money;

pub const GAP: i64 = 1 << 32;
pub const DEFAULT_CARDS: u64 = 20;
pub const MAX_CARDS: u64 = 200;

/// Locks the given stage rows (deduplicated, in id order) until the end of the transaction and
/// returns them as they are now (a stage removed meanwhile is absent).
pub async fn lock_stages<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> AppResult<Vec<stage::Model>> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids.dedup();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(s) = stage::Entity::find_by_id((tenant_id, id))
            .lock_exclusive()
            .one(conn)
            .await?
        {
            out.push(s);
        }
    }
    Ok(out)
}

/// The locked, current row of stage `id` among `rows`; `404` naming `field` when it is gone.
pub fn locked(rows: &[stage::Model], id: Uuid, field: &str) -> AppResult<stage::Model> {
    rows.iter()
        .find(|s| s.id == id)
        .cloned()
        .ok_or_else(|| super::service::not_found_in_body(field))
}

fn live_in_stage(tenant_id: Uuid, stage_id: Uuid) -> Select<opportunity::Entity> {
    opportunity::Entity::find()
        .filter(opportunity::Column::TenantId.eq(tenant_id))
        .filter(opportunity::Column::StageId.eq(stage_id))
        .filter(opportunity::Column::DeletedAt.is_null())
}

/// `(min, max)` position in a stage (live cards, or all with `include_deleted`).
pub async fn bounds<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    stage_id: Uuid,
    include_deleted: bool,
) -> AppResult<(Option<i64>, Option<i64>)> {
    let mut q = opportunity::Entity::find()
        .select_only()
        .column_as(Expr::col(opportunity::Column::Position).min(), "lo")
        .column_as(Expr::col(opportunity::Column::Position).max(), "hi")
        .filter(opportunity::Column::TenantId.eq(tenant_id))
        .filter(opportunity::Column::StageId.eq(stage_id));
    if !include_deleted {
        q = q.filter(opportunity::Column::DeletedAt.is_null());
    }
    let r: Option<(Option<i64>, Option<i64>)> = q.into_tuple().one(conn).await?;
    Ok(r.unwrap_or((None, None)))
}

/// Where a card goes in its stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Top,
    /// Just above this card.
    Before(Uuid),
    /// Just below this card.
    After(Uuid),
}

/// The position for `moving` in `stage_id` at `anchor`. The caller holds the stage's lock.
pub async fn place<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    stage_id: Uuid,
    moving: Uuid,
    anchor: Anchor,
) -> AppResult<i64> {
    let t = ctx.tenant_id;
    let (field, anchor_id, before) = match anchor {
        Anchor::Top => {
            let lo: Option<i64> = live_in_stage(t, stage_id)
                .filter(opportunity::Column::Id.ne(moving))
                .select_only()
                .column_as(Expr::col(opportunity::Column::Position).min(), "lo")
                .into_tuple::<Option<i64>>()
                .one(conn)
                .await?
                .flatten();
            return match lo {
                None => Ok(0),
                Some(lo) => match lo.checked_sub(GAP) {
                    Some(p) => Ok(p),
                    None => {
                        renumber(conn, t, stage_id, moving).await?;
                        Ok(0)
                    }
                },
            };
        }
        Anchor::Before(id) => ("before_id", id, true),
        Anchor::After(id) => ("after_id", id, false),
    };
    if anchor_id == moving {
        return Err(AppError::field(
            field,
            "same_card",
            "Use outro cartão como referência",
        ));
    }
    for _ in 0..2 {
        let a = opportunity::Entity::find_by_id((t, anchor_id))
            .one(conn)
            .await?
            .filter(|a| a.deleted_at.is_none() && visible_to(ctx, a.owner_id))
            .ok_or_else(|| not_found_in_body(field))?;
        if a.stage_id != stage_id {
            return Err(AppError::field(
                field,
                "not_in_stage",
                "O cartão de referência não está na etapa de destino",
            ));
        }
        let key = Expr::tuple([
            Expr::col((opportunity::Entity, opportunity::Column::Position)),
            Expr::col((opportunity::Entity, opportunity::Column::Id)),
        ]);
        let here = Expr::tuple([Expr::val(a.position), Expr::val(a.id)]);
        let neighbour = live_in_stage(t, stage_id).filter(opportunity::Column::Id.ne(moving));
        let neighbour = if before {
            neighbour
                .filter(key.lt(here))
                .order_by_desc(opportunity::Column::Position)
                .order_by_desc(opportunity::Column::Id)
        } else {
            neighbour
                .filter(key.gt(here))
                .order_by_asc(opportunity::Column::Position)
                .order_by_asc(opportunity::Column::Id)
        };
        let n: Option<i64> = neighbour
            .select_only()
            .column(opportunity::Column::Position)
            .into_tuple()
            .one(conn)
            .await?;
        let candidate = match n {
            None if before => a.position.checked_sub(GAP),
            None => a.position.checked_add(GAP),
            Some(n) => {
                let (lo, hi) = if before {
                    (n, a.position)
                } else {
                    (a.position, n)
                };
                // Widen before halving: hi − lo may not fit in i64.
                let gap = i128::from(hi) - i128::from(lo);
                (gap >= 2).then(|| (i128::from(lo) + gap / 2) as i64)
            }
        };
        if let Some(p) = candidate {
            return Ok(p);
        }
        renumber(conn, t, stage_id, moving).await?;
    }
    Err(AppError::internal(anyhow::anyhow!(
        "no position found in stage {stage_id} after renumbering"
    )))
}

/// Rewrites the positions of a stage's live cards (except `moving`) as `GAP, 2·GAP, …` in their
/// current order. The caller holds the stage's lock.
pub async fn renumber<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    stage_id: Uuid,
    moving: Uuid,
) -> AppResult<()> {
    let ids: Vec<Uuid> = live_in_stage(tenant_id, stage_id)
        .filter(opportunity::Column::Id.ne(moving))
        .select_only()
        .column(opportunity::Column::Id)
        .order_by_asc(opportunity::Column::Position)
        .order_by_asc(opportunity::Column::Id)
        .into_tuple()
        .all(conn)
        .await?;
    tracing::info!(%tenant_id, %stage_id, cards = ids.len(), "renumbering stage");
    for (c, chunk) in ids.chunks(500).enumerate() {
        let Some(first) = chunk.first() else { continue };
        let mut case = Expr::case(
            opportunity::Column::Id.eq(*first),
            Expr::val(((c * 500 + 1) as i64) * GAP),
        );
        for (i, id) in chunk.iter().enumerate().skip(1) {
            case = case.case(
                opportunity::Column::Id.eq(*id),
                Expr::val(((c * 500 + i + 1) as i64) * GAP),
            );
        }
        let case = case.finally(Expr::col(opportunity::Column::Position));
        opportunity::Entity::update_many()
            .col_expr(opportunity::Column::Position, case.into())
            .filter(opportunity::Column::TenantId.eq(tenant_id))
            .filter(opportunity::Column::StageId.eq(stage_id))
            .filter(opportunity::Column::Id.is_in(chunk.iter().copied()))
            .exec(conn)
            .await?;
    }
    Ok(())
}

#[derive(Debug, Default)]
struct StageTotals {
    n: i64,
    value_cents: i64,
    mrr_cents: i64,
    tcv_cents: i64,
    weighted_x100: i64,
}

/// Query parameters of `GET /api/pipelines/{id}/board`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BoardQuery {
    /// Cards per stage, 1–200 (default 20).
    pub limit: Option<u64>,
    /// Only deals of this owner (`me` or a user id).
    pub owner_id: Option<String>,
}

/// The first `n` live cards of each stage (by position, id), in one statement:
/// `SELECT * FROM (top n of stage 1) s0 UNION ALL SELECT * FROM (top n of stage 2) s1 …`. Each
/// branch is its own index range, so the cost does not grow with the deals in the pipeline.
async fn first_cards<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    stages: &[stage::Model],
    owner: Option<Uuid>,
    n: u64,
) -> AppResult<HashMap<Uuid, Vec<opportunity::Model>>> {
    let branch = |i: usize, stage_id: Uuid| -> SelectStatement {
        let mut q = live_in_stage(tenant_id, stage_id);
        if let Some(o) = owner {
            q = q.filter(opportunity::Column::OwnerId.eq(o));
        }
        let inner = q
            .order_by_asc(opportunity::Column::Position)
            .order_by_asc(opportunity::Column::Id)
            .limit(n)
            .into_query();
        Query::select()
            .column(Asterisk)
            .from_subquery(inner, Alias::new(format!("s{i}")))
            .to_owned()
    };
    let mut out: HashMap<Uuid, Vec<opportunity::Model>> = HashMap::with_capacity(stages.len());
    let Some(first) = stages.first() else {
        return Ok(out);
    };
    let mut stmt = branch(0, first.id);
    for (i, s) in stages.iter().enumerate().skip(1) {
        stmt.union(UnionType::All, branch(i, s.id));
    }
    let rows = opportunity::Entity::find()
        .from_raw_sql(conn.get_database_backend().build(&stmt))
        .all(conn)
        .await?;
    for r in rows {
        out.entry(r.stage_id).or_default().push(r);
    }
    // UNION ALL keeps each branch's rows together but promises no order: sort each stage's few.
    for v in out.values_mut() {
        v.sort_by_key(|m| (m.position, m.id));
    }
    Ok(out)
}

pub async fn board(
    state: &AppState,
    ctx: &TenantCtx,
    pipeline_id: Uuid,
    q: BoardQuery,
) -> AppResult<Board> {
    let limit = match q.limit {
        None => DEFAULT_CARDS,
        Some(n) if (1..=MAX_CARDS).contains(&n) => n,
        Some(_) => {
            return Err(AppError::field(
                "limit",
                "out_of_range",
                "limit deve estar entre 1 e 200",
            ));
        }
    };
    let owner = match q.owner_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("me") => Some(ctx.user_id),
        Some(s) => Some(Uuid::parse_str(s).map_err(|_| {
            AppError::field("owner_id", "invalid_value", "Use um id de usuário ou me")
        })?),
    };
    let t = ctx.tenant_id;
    let p = find_pipeline(&state.db, t, pipeline_id).await?;
    let stages = stages_of(&state.db, t, pipeline_id).await?;
    // A seller without team visibility sees only their own deals, totals included.
    let owner = if sees_all(ctx) {
        owner
    } else if owner.is_some_and(|o| o != ctx.user_id) {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "Você vê apenas as suas oportunidades.",
        ));
    } else {
        Some(ctx.user_id)
    };
    // Sums kept per (stage, owner) by triggers (migration 000008): a few dozen rows, whatever
    // the number of deals.
    let mut agg = stage_totals::Entity::find()
        .filter(stage_totals::Column::TenantId.eq(t))
        .filter(stage_totals::Column::PipelineId.eq(pipeline_id));
    if let Some(o) = owner {
        agg = agg.filter(stage_totals::Column::OwnerKey.eq(o));
    }
    let mut totals: HashMap<Uuid, StageTotals> = HashMap::new();
    for r in agg.all(&state.db).await? {
        let x = totals.entry(r.stage_id).or_default();
        x.n += r.n;
        x.value_cents += r.value_cents;
        x.mrr_cents += r.mrr_cents;
        x.tcv_cents += r.tcv_cents;
        x.weighted_x100 += r.weighted_x100;
    }
    // Each stage's cards come from one UNION ALL branch (see `first_cards`), not from `paginate`;
    // their cursor is the one the list continues with (`sort=position`).
    let mut cards = first_cards(&state.db, t, &stages, owner, limit + 1).await?;
    let keyset = SortKey::Position.keyset(false);
    let mut out = Vec::with_capacity(stages.len());
    for s in &stages {
        let (rows, next_cursor) = keyset.finish(cards.remove(&s.id).unwrap_or_default(), limit);
        let tot = totals.get(&s.id);
        out.push(BoardStage {
            id: s.id,
            name: s.name.clone(),
            kind: stage_kind(s),
            position: s.position,
            probability: s.probability,
            color: s.color.clone(),
            count: tot.map(|x| Ord::max(x.n, 0) as u64).unwrap_or(0),
            value_cents: tot.map(|x| x.value_cents).unwrap_or(0),
            mrr_cents: tot.map(|x| x.mrr_cents).unwrap_or(0),
            tcv_cents: tot.map(|x| x.tcv_cents).unwrap_or(0),
            weighted_cents: tot
                .map(|x| money::weighted_from_sum(i128::from(x.weighted_x100)))
                .unwrap_or(0),
            cards: rows.into_iter().map(|m| opportunity_dto(m, None)).collect(),
            next_cursor,
        });
    }
    Ok(Board {
        pipeline_id: p.id,
        name: p.name,
        stages: out,
    })
}
