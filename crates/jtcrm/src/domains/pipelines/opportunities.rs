//! Opportunities (deals): CRUD with lines built from the product catalog, list with filters, sort and
//! keyset pagination, moves between and within stages, won/lost/reopen, the stage history, and the
//! conversion of a lead into a deal. Every change runs in one transaction with its history entry
//! (the durable event record) and its audit entry.

use chrono::{DateTime, NaiveDate, Utc};
use jtcrm_types::dto::leads::LeadStatus;
use jtcrm_types::dto::pipelines::{
    ConvertLeadRequest, Opportunity, OpportunityInput, OpportunityItemInput, OpportunityStatus,
    StageChange, StageEvent, StageKind,
};
use jtcrm_types::dto::products::Billing;
use jtcrm_types::dto::{Page, Role};
use jtcrm_types::{ErrorCode, FieldError};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Select,
};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use uuid::Uuid;

use super::board::{self, Anchor};
use super::model::{history, item, opportunity, stage};
use super::service::{
    default_pipeline, find_pipeline, find_stage_ref, first_open, not_found_in_body, stages_of,
};
use super::{money, opportunity_dto, stage_kind, status_for};
use crate::domains::leads::{self, LeadDraft};
use crate::domains::products::{self, model::product};
use crate::domains::timeline;
use crate::domains::users;
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::events;
use jtcrm_kernel::http::extract::{TenantCtx, query_bool, query_pairs};
use jtcrm_kernel::http::guard::{Authorized, Sellers};
use jtcrm_kernel::http::idempotency::{self, IdempotencyKey};
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::sql;
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store::{self, WriteMode};
use jtcrm_kernel::visibility::{sees_all, visible_to};

pub const DEFAULT_TERM_MONTHS: i32 = 12;

fn can_reassign(ctx: &TenantCtx) -> bool {
    matches!(ctx.role, Role::Admin | Role::Manager)
}

/// A live deal of the tenant that the caller may see; otherwise `404`.
pub async fn find_visible<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    id: Uuid,
    lock: bool,
) -> AppResult<opportunity::Model> {
    let mut q = opportunity::Entity::find_by_id((ctx.tenant_id, id));
    if lock {
        q = q.lock_exclusive();
    }
    q.one(conn)
        .await?
        .filter(|m| m.deleted_at.is_none() && visible_to(ctx, m.owner_id))
        .ok_or_else(AppError::not_found)
}

async fn items_of<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<Vec<item::Model>> {
    Ok(item::Entity::find()
        .filter(item::Column::TenantId.eq(tenant_id))
        .filter(item::Column::OpportunityId.eq(id))
        .order_by_asc(item::Column::Position)
        .all(conn)
        .await?)
}

// ---------- lines and totals ----------

/// A validated line with its totals.
#[derive(Debug, Clone)]
pub struct Line {
    id: Uuid,
    product_id: Uuid,
    product_name: String,
    sku: String,
    billing: Billing,
    quantity: i32,
    monthly_price_cents: i64,
    setup_price_cents: i64,
    discount_bp: i32,
    monthly_total: i128,
    setup_total: i128,
}

impl Line {
    fn from_model(m: &item::Model) -> Line {
        Line {
            id: m.id,
            product_id: m.product_id,
            product_name: m.product_name.clone(),
            sku: m.sku.clone(),
            billing: Billing::parse(&m.billing).unwrap_or(Billing::Monthly),
            quantity: m.quantity,
            monthly_price_cents: m.monthly_price_cents,
            setup_price_cents: m.setup_price_cents,
            discount_bp: m.discount_bp,
            monthly_total: i128::from(m.monthly_total_cents),
            setup_total: i128::from(m.setup_total_cents),
        }
    }
}

fn unit_price(v: &mut Validator, field: &str, value: i64) -> i64 {
    if (0..=money::MAX_UNIT_PRICE_CENTS).contains(&value) {
        value
    } else {
        v.add(
            field,
            "out_of_range",
            "Valor em centavos entre 0 e 10000000000",
        );
        0
    }
}

/// Validates the lines of a body against the catalog and the deal's current lines. Unknown (or
/// another tenant's) products answer `404`; inactive products may stay on a deal that already has
/// them but not be added.
pub async fn resolve_lines<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    v: &mut Validator,
    inputs: &[OpportunityItemInput],
    existing: &[item::Model],
) -> AppResult<Vec<Line>> {
    if inputs.len() > money::MAX_ITEMS {
        v.add("items", "too_many", "No máximo 100 itens por oportunidade");
        return Ok(vec![]);
    }
    let mut wanted: Vec<Uuid> = vec![];
    for (i, it) in inputs.iter().enumerate() {
        let base = it.id.and_then(|id| existing.iter().find(|e| e.id == id));
        if it.id.is_some() && base.is_none() {
            v.add(
                &format!("items[{i}].id"),
                "unknown_item",
                "Item inexistente nesta oportunidade",
            );
        }
        match it.product_id.or(base.map(|b| b.product_id)) {
            Some(p) => wanted.push(p),
            None => v.add(
                &format!("items[{i}].product_id"),
                "required",
                "Campo obrigatório",
            ),
        }
    }
    let catalog = products::find_many(conn, tenant_id, &wanted).await?;
    let mut out = vec![];
    for (i, it) in inputs.iter().enumerate() {
        let f = |name: &str| format!("items[{i}].{name}");
        let Some(pid) = it.product_id.or(it
            .id
            .and_then(|id| existing.iter().find(|e| e.id == id))
            .map(|b| b.product_id))
        else {
            continue;
        };
        // The line this input continues: by id, else the deal's first line with the same product.
        let base = it
            .id
            .and_then(|id| existing.iter().find(|e| e.id == id))
            .filter(|b| b.product_id == pid);
        let on_deal = existing.iter().any(|e| e.product_id == pid);
        let prod: Option<&product::Model> = catalog.iter().find(|p| p.id == pid);
        let (name, sku, billing, def_monthly, def_setup) = match (prod, base) {
            (Some(p), _) => {
                if !p.active && !on_deal {
                    v.add(
                        &f("product_id"),
                        "inactive_product",
                        "Produto inativo não pode ser adicionado",
                    );
                }
                (
                    p.name.clone(),
                    p.sku.clone(),
                    Billing::parse(&p.billing).unwrap_or(Billing::Monthly),
                    base.map(|b| b.monthly_price_cents)
                        .unwrap_or(p.monthly_price_cents),
                    base.map(|b| b.setup_price_cents)
                        .unwrap_or(p.setup_price_cents),
                )
            }
            // A deleted product stays on the deals that have it, with its snapshot.
            (None, _) if on_deal => {
                let e = base
                    .or_else(|| existing.iter().find(|e| e.product_id == pid))
                    .map(Line::from_model);
                let Some(e) = e else { continue };
                (
                    e.product_name,
                    e.sku,
                    e.billing,
                    e.monthly_price_cents,
                    e.setup_price_cents,
                )
            }
            (None, _) => return Err(not_found_in_body(&f("product_id"))),
        };
        let quantity = match it.quantity.or(base.map(|b| b.quantity)) {
            None => 1,
            Some(q) if (1..=money::MAX_QUANTITY).contains(&q) => q,
            Some(_) => {
                v.add(&f("quantity"), "out_of_range", "Quantidade de 1 a 100000");
                1
            }
        };
        let monthly = unit_price(
            v,
            &f("monthly_price_cents"),
            it.monthly_price_cents.unwrap_or(def_monthly),
        );
        let setup = unit_price(
            v,
            &f("setup_price_cents"),
            it.setup_price_cents.unwrap_or(def_setup),
        );
        if billing == Billing::OneTime && monthly != 0 {
            v.add(
                &f("monthly_price_cents"),
                "not_allowed",
                "Produto de cobrança única: a mensalidade deve ser 0",
            );
        }
        let discount_bp = match it.discount_percent {
            None => base.map(|b| b.discount_bp).unwrap_or(0),
            Some(d) => money::discount_bp(d).unwrap_or_else(|| {
                v.add(
                    &f("discount_percent"),
                    "out_of_range",
                    "Desconto de 0 a 100 com até duas casas decimais",
                );
                0
            }),
        };
        out.push(Line {
            id: base.map(|b| b.id).unwrap_or_else(Uuid::now_v7),
            product_id: pid,
            product_name: name,
            sku,
            billing,
            quantity,
            monthly_price_cents: monthly,
            setup_price_cents: setup,
            discount_bp,
            monthly_total: money::line_total(quantity, monthly, discount_bp),
            setup_total: money::line_total(quantity, setup, discount_bp),
        });
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amounts {
    value: i64,
    mrr: i64,
    setup: i64,
    tcv: i64,
}

/// Deal totals: from the lines when there are any (`value = tcv`), else the one-off `value`.
fn amounts(
    v: &mut Validator,
    lines: &[Line],
    term: i32,
    value_in: Option<i64>,
    value_default: i64,
) -> Amounts {
    if lines.is_empty() {
        let value = match value_in {
            None => value_default,
            Some(x) if (0..=money::MAX_DEAL_CENTS).contains(&x) => x,
            Some(_) => {
                v.add(
                    "value_cents",
                    "out_of_range",
                    "Valor em centavos entre 0 e 100000000000",
                );
                0
            }
        };
        return Amounts {
            value,
            mrr: 0,
            setup: 0,
            tcv: value,
        };
    }
    let pairs: Vec<(i128, i128)> = lines
        .iter()
        .map(|l| (l.monthly_total, l.setup_total))
        .collect();
    match money::deal_totals(&pairs, term) {
        None => {
            v.add(
                "items",
                "too_large",
                "O valor total do contrato passa de R$ 1 bilhão",
            );
            Amounts {
                value: 0,
                mrr: 0,
                setup: 0,
                tcv: 0,
            }
        }
        Some(t) => {
            if value_in.is_some_and(|x| x != t.tcv_cents) {
                v.add(
                    "value_cents",
                    "computed",
                    "Com itens, o valor é calculado (mrr × prazo + setup); não informe value_cents",
                );
            }
            Amounts {
                value: t.tcv_cents,
                mrr: t.mrr_cents,
                setup: t.setup_cents,
                tcv: t.tcv_cents,
            }
        }
    }
}

async fn write_lines<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    opp_id: Uuid,
    lines: &[Line],
    replace: bool,
) -> AppResult<Vec<item::Model>> {
    if replace {
        item::Entity::delete_many()
            .filter(item::Column::TenantId.eq(tenant_id))
            .filter(item::Column::OpportunityId.eq(opp_id))
            .exec(conn)
            .await?;
    }
    let rows: Vec<item::Model> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| item::Model {
            tenant_id,
            id: l.id,
            opportunity_id: opp_id,
            position: i as i32,
            product_id: l.product_id,
            product_name: l.product_name.clone(),
            sku: l.sku.clone(),
            billing: l.billing.as_str().to_string(),
            quantity: l.quantity,
            monthly_price_cents: l.monthly_price_cents,
            setup_price_cents: l.setup_price_cents,
            discount_bp: l.discount_bp,
            monthly_total_cents: i64::try_from(l.monthly_total).unwrap_or(i64::MAX),
            setup_total_cents: i64::try_from(l.setup_total).unwrap_or(i64::MAX),
        })
        .collect();
    if !rows.is_empty() {
        item::Entity::insert_many(rows.iter().cloned().map(item::ActiveModel::from))
            .exec_without_returning(conn)
            .await?;
    }
    Ok(rows)
}

// ---------- history ----------

#[allow(clippy::too_many_arguments)]
async fn record_history<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    opp: &opportunity::Model,
    from: Option<(&stage::Model, DateTime<Utc>)>,
    from_status: Option<&str>,
    to: &stage::Model,
    event: StageEvent,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let stage_changed = from.is_some_and(|(f, _)| f.id != to.id);
    history::Entity::insert(history::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(Uuid::now_v7()),
        opportunity_id: Set(opp.id),
        pipeline_id: Set(to.pipeline_id),
        event: Set(event.as_str().to_string()),
        from_stage_id: Set(from.map(|(f, _)| f.id)),
        from_stage_name: Set(from.map(|(f, _)| f.name.clone())),
        to_stage_id: Set(to.id),
        to_stage_name: Set(to.name.clone()),
        from_status: Set(from_status.map(str::to_string)),
        to_status: Set(opp.status.clone()),
        lost_reason: Set(opp.lost_reason.clone()),
        seconds_in_from_stage: Set(from
            .filter(|_| stage_changed)
            .map(|(_, entered)| Ord::max((now - entered).num_seconds(), 0))),
        actor_id: Set(Some(ctx.user_id)),
        created_at: Set(now),
    })
    .exec_without_returning(conn)
    .await?;
    let from_entered = from.map(|(f, entered)| (f, Ord::max((now - entered).num_seconds(), 0)));
    publish(conn, ctx, opp, from_entered, from_status, to, event).await
}

/// `R$ 1.234,56`.
pub fn brl(cents: i64) -> String {
    let neg = cents < 0;
    let c = cents.unsigned_abs();
    let int = (c / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(ch);
    }
    format!("{}R$ {grouped},{:02}", if neg { "-" } else { "" }, c % 100)
}

fn emit_event<'a>(
    ctx: &TenantCtx,
    event_type: &'a str,
    entity_type: &'a str,
    entity_id: Uuid,
    data: Value,
) -> events::Event<'a> {
    events::Event {
        tenant_id: ctx.tenant_id,
        event_type,
        entity_type,
        entity_id,
        actor_id: Some(ctx.user_id),
        data,
    }
}

fn timeline_entry<'a>(
    ctx: &TenantCtx,
    opp: &opportunity::Model,
    kind: &'a str,
    summary: String,
    data: Value,
) -> timeline::NewEntry<'a> {
    timeline::NewEntry {
        tenant_id: ctx.tenant_id,
        lead_id: opp.lead_id,
        opportunity_id: Some(opp.id),
        kind,
        actor_id: Some(ctx.user_id),
        summary,
        data,
        reference: None,
    }
}

/// Domain events (`opportunity.created`, `.stage_changed`, `.won`, `.lost`, `.updated` for a
/// reopening) for the automation engine and timeline entries for the deal's and its lead's feed,
/// in the transaction of the change.
async fn publish<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    opp: &opportunity::Model,
    from: Option<(&stage::Model, i64)>,
    from_status: Option<&str>,
    to: &stage::Model,
    event: StageEvent,
) -> AppResult<()> {
    let side = |st: &stage::Model, status: Option<&str>| json!({"stage_id": st.id, "stage_name": st.name, "pipeline_id": st.pipeline_id, "status": status});
    let Some((from_stage, seconds)) = from else {
        let after = serde_json::to_value(opportunity_dto(opp.clone(), None)).unwrap_or_default();
        events::emit(
            conn,
            emit_event(
                ctx,
                "opportunity.created",
                "opportunity",
                opp.id,
                json!({"after": after}),
            ),
        )
        .await?;
        timeline::record(
            conn,
            timeline_entry(
                ctx,
                opp,
                "opportunity_created",
                format!("Oportunidade criada: {} ({})", opp.title, to.name),
                json!({"stage_id": to.id, "stage_name": to.name, "value_cents": opp.value_cents}),
            ),
        )
        .await?;
        return Ok(());
    };
    if from_stage.id != to.id {
        let data = json!({
            "before": side(from_stage, from_status),
            "after": side(to, Some(&opp.status)),
            "seconds_in_from_stage": seconds,
        });
        events::emit(
            conn,
            emit_event(
                ctx,
                "opportunity.stage_changed",
                "opportunity",
                opp.id,
                data.clone(),
            ),
        )
        .await?;
        timeline::record(
            conn,
            timeline_entry(
                ctx,
                opp,
                timeline::kinds::OPPORTUNITY_STAGE_CHANGED,
                format!("Etapa alterada de {} para {}", from_stage.name, to.name),
                data,
            ),
        )
        .await?;
    }
    let status = json!({
        "before": {"status": from_status},
        "after": {"status": opp.status, "lost_reason": opp.lost_reason, "stage_id": to.id,
                  "value_cents": opp.value_cents, "mrr_cents": opp.mrr_cents, "tcv_cents": opp.tcv_cents},
    });
    let (event_type, kind, summary) = match event {
        StageEvent::Won => (
            "opportunity.won",
            timeline::kinds::OPPORTUNITY_WON,
            format!(
                "Oportunidade ganha: {} ({})",
                opp.title,
                brl(opp.value_cents)
            ),
        ),
        StageEvent::Lost => (
            "opportunity.lost",
            timeline::kinds::OPPORTUNITY_LOST,
            format!(
                "Oportunidade perdida: {} ({})",
                opp.title,
                opp.lost_reason.as_deref().unwrap_or("sem motivo")
            ),
        ),
        StageEvent::Reopened => (
            "opportunity.updated",
            "opportunity_reopened",
            format!("Oportunidade reaberta: {}", opp.title),
        ),
        StageEvent::Created | StageEvent::StageChanged => return Ok(()),
    };
    events::emit(
        conn,
        emit_event(ctx, event_type, "opportunity", opp.id, status.clone()),
    )
    .await?;
    timeline::record(conn, timeline_entry(ctx, opp, kind, summary, status)).await?;
    Ok(())
}

pub async fn history(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<Vec<StageChange>> {
    find_visible(&state.db, ctx, id, false).await?;
    let rows = history::Entity::find()
        .filter(history::Column::TenantId.eq(ctx.tenant_id))
        .filter(history::Column::OpportunityId.eq(id))
        .order_by_asc(history::Column::Id)
        .all(&state.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| StageChange {
            id: r.id,
            event: StageEvent::parse(&r.event).unwrap_or(StageEvent::StageChanged),
            from_stage_id: r.from_stage_id,
            from_stage_name: r.from_stage_name,
            to_stage_id: r.to_stage_id,
            to_stage_name: r.to_stage_name,
            from_status: r.from_status.as_deref().and_then(OpportunityStatus::parse),
            to_status: OpportunityStatus::parse(&r.to_status).unwrap_or(OpportunityStatus::Open),
            lost_reason: r.lost_reason,
            seconds_in_from_stage: r.seconds_in_from_stage,
            actor_id: r.actor_id,
            at: r.created_at,
        })
        .collect())
}

// ---------- create ----------

/// The stage a new deal goes to: `stage_id`, else the first open stage of `pipeline_id`, else of
/// the default pipeline.
async fn target_stage<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    pipeline_id: Option<Uuid>,
    stage_id: Option<Uuid>,
) -> AppResult<stage::Model> {
    if let Some(s) = stage_id {
        let st = find_stage_ref(conn, tenant_id, s, "stage_id").await?;
        if let Some(p) = pipeline_id
            && p != st.pipeline_id
        {
            find_pipeline(conn, tenant_id, p)
                .await
                .map_err(|_| not_found_in_body("pipeline_id"))?;
            return Err(AppError::field(
                "stage_id",
                "other_pipeline",
                "A etapa não pertence ao pipeline informado",
            ));
        }
        return Ok(st);
    }
    let p = match pipeline_id {
        Some(p) => find_pipeline(conn, tenant_id, p)
            .await
            .map_err(|_| not_found_in_body("pipeline_id"))?,
        None => default_pipeline(conn, tenant_id).await?.ok_or_else(|| {
            AppError::field(
                "pipeline_id",
                "required",
                "A empresa não tem pipeline: crie um ou informe pipeline_id",
            )
        })?,
    };
    let stages = stages_of(conn, tenant_id, p.id).await?;
    first_open(&stages).cloned().ok_or_else(|| {
        AppError::field(
            "pipeline_id",
            "no_open_stage",
            "O pipeline não tem etapa aberta",
        )
    })
}

async fn check_owner<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    owner: Option<Uuid>,
    current: Option<Option<Uuid>>,
) -> AppResult<()> {
    // A new deal belongs to its creator unless a manager says otherwise; an existing one keeps
    // its owner unless a manager changes it.
    let changed = match current {
        None => owner != Some(ctx.user_id),
        Some(cur) => owner != cur,
    };
    if !changed {
        return Ok(());
    }
    if !can_reassign(ctx) {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "Apenas gestores atribuem oportunidades a outros usuários.",
        ));
    }
    users::check_active_owner(conn, ctx.tenant_id, owner).await
}

fn parse_status(v: &mut Validator, s: &Option<String>) -> Option<OpportunityStatus> {
    let s = s.as_deref()?;
    let st = OpportunityStatus::parse(s.trim());
    if st.is_none() {
        v.add("status", "invalid_status", "Use open, won ou lost");
    }
    st
}

fn status_change_refused() -> AppError {
    AppError::field(
        "status",
        "use_actions",
        "Mude o status por /move, /won, /lost ou /reopen",
    )
}

/// Everything a new deal needs, validated.
struct NewDeal {
    title: String,
    lead_id: Option<Uuid>,
    owner_id: Option<Uuid>,
    stage: stage::Model,
    lost_reason: Option<String>,
    expected_close_date: Option<NaiveDate>,
    probability: Option<i32>,
    term_months: i32,
    amounts: Amounts,
    lines: Vec<Line>,
    notes: Option<String>,
}

/// Inserts a deal at the top of its stage (under the stage's lock) with its lines and its first
/// history entry.
async fn insert_deal<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    d: NewDeal,
) -> AppResult<(opportunity::Model, Vec<item::Model>)> {
    let id = Uuid::now_v7();
    let rows = board::lock_stages(conn, ctx.tenant_id, &[d.stage.id]).await?;
    let stage = board::locked(&rows, d.stage.id, "stage_id")?;
    let position = board::place(conn, ctx, stage.id, id, Anchor::Top).await?;
    let d = NewDeal { stage, ..d };
    let status = status_for(stage_kind(&d.stage));
    let now = Utc::now();
    let m = opportunity::Entity::insert(opportunity::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(id),
        pipeline_id: Set(d.stage.pipeline_id),
        stage_id: Set(d.stage.id),
        lead_id: Set(d.lead_id),
        owner_id: Set(d.owner_id),
        title_sort: Set(title_sort(&d.title)),
        title: Set(d.title),
        status: Set(status.as_str().to_string()),
        lost_reason: Set(if status == OpportunityStatus::Lost {
            d.lost_reason
        } else {
            None
        }),
        expected_close_date: Set(d.expected_close_date),
        probability: Set(d.probability.unwrap_or(d.stage.probability)),
        probability_overridden: Set(d.probability.is_some()),
        term_months: Set(d.term_months),
        value_cents: Set(d.amounts.value),
        mrr_cents: Set(d.amounts.mrr),
        setup_cents: Set(d.amounts.setup),
        tcv_cents: Set(d.amounts.tcv),
        position: Set(position),
        notes: Set(d.notes),
        stage_entered_at: Set(now),
        closed_at: Set((status != OpportunityStatus::Open).then_some(now)),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        version: Set(1),
    })
    .exec_with_returning(conn)
    .await?;
    let items = write_lines(conn, ctx.tenant_id, id, &d.lines, false).await?;
    record_history(
        conn,
        ctx,
        &m,
        None,
        None,
        &d.stage,
        StageEvent::Created,
        now,
    )
    .await?;
    Ok((m, items))
}

fn title_sort(title: &str) -> String {
    jtcrm_types::br::fold_for_search(title)
        .chars()
        .take(200)
        .collect()
}

fn check_lost_reason(
    v: &mut Validator,
    status: OpportunityStatus,
    reason: &Option<String>,
    field: &str,
) {
    match status {
        OpportunityStatus::Lost if reason.is_none() => {
            v.add(field, "required", "Informe o motivo da perda")
        }
        OpportunityStatus::Open | OpportunityStatus::Won if reason.is_some() => v.add(
            field,
            "not_allowed",
            "Motivo de perda só em oportunidades perdidas",
        ),
        _ => {}
    }
}

fn term(v: &mut Validator, t: Option<i32>, default: i32) -> i32 {
    match t {
        None => default,
        Some(t) if (1..=money::MAX_TERM_MONTHS).contains(&t) => t,
        Some(_) => {
            v.add("term_months", "out_of_range", "Prazo de 1 a 600 meses");
            default
        }
    }
}

fn probability(v: &mut Validator, p: Option<i32>) -> Option<i32> {
    match p {
        Some(p) if !(0..=100).contains(&p) => {
            v.add("probability", "out_of_range", "Probabilidade de 0 a 100");
            None
        }
        other => other,
    }
}

pub async fn create(
    state: &AppState,
    ctx: &Authorized<Sellers>,
    input: OpportunityInput,
    idem: Option<IdempotencyKey>,
) -> AppResult<(u16, Value)> {
    if let Some(k) = &idem
        && let Some(r) = idempotency::lookup(&state.db, ctx.tenant_id, k).await?
    {
        return Ok((r.status, r.body));
    }
    let mut v = Validator::new();
    let title = match &input.title {
        Some(Some(t)) => v.required_text("title", Some(t), 200),
        _ => v.required_text("title", None, 200),
    };
    let status_in = parse_status(&mut v, &input.status);
    let lost_reason =
        WriteMode::Create.optional_text(&mut v, "lost_reason", &input.lost_reason, None, 500);
    let notes = WriteMode::Create.optional_text(&mut v, "notes", &input.notes, None, 20_000);
    let prob = probability(&mut v, input.probability.flatten());
    let term_months = term(&mut v, input.term_months, DEFAULT_TERM_MONTHS);
    let owner_id = match input.owner_id {
        None => Some(ctx.user_id),
        Some(o) => o,
    };
    let txn = state.begin().await?;
    let stage = target_stage(&*txn, ctx.tenant_id, input.pipeline_id, input.stage_id).await?;
    let status = status_for(stage_kind(&stage));
    if status_in.is_some_and(|s| s != status) {
        return Err(status_change_refused());
    }
    check_lost_reason(&mut v, status, &lost_reason, "lost_reason");
    let lead_id = input.lead_id.flatten();
    if let Some(l) = lead_id {
        leads::service::find_visible(&*txn, ctx, l, false)
            .await
            .map_err(|_| not_found_in_body("lead_id"))?;
    }
    let lines = resolve_lines(
        &*txn,
        ctx.tenant_id,
        &mut v,
        input.items.as_deref().unwrap_or(&[]),
        &[],
    )
    .await?;
    let amounts = amounts(&mut v, &lines, term_months, input.value_cents, 0);
    v.finish()?;
    let Some(title) = title else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    check_owner(&*txn, ctx, owner_id, None).await?;
    let (m, items) = insert_deal(
        &*txn,
        ctx,
        NewDeal {
            title,
            lead_id,
            owner_id,
            stage,
            lost_reason,
            expected_close_date: input.expected_close_date.flatten(),
            probability: prob,
            term_months,
            amounts,
            lines,
            notes,
        },
    )
    .await?;
    let id = m.id;
    let body = serde_json::to_value(opportunity_dto(m, Some(items))).map_err(AppError::internal)?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create",
            "opportunity",
            id,
            audit::diff(&json!({}), &body),
        ),
    )
    .await?;
    idempotency::commit(state, txn, ctx, idem.as_ref(), 201, body).await
}

pub async fn get(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<Opportunity> {
    let m = find_visible(&state.db, ctx, id, false).await?;
    let items = items_of(&state.db, ctx.tenant_id, id).await?;
    Ok(opportunity_dto(m, Some(items)))
}

// ---------- update ----------

pub async fn update(
    state: &AppState,
    ctx: &Authorized<Sellers>,
    id: Uuid,
    if_match: Option<i32>,
    input: OpportunityInput,
    mode: WriteMode,
) -> AppResult<Opportunity> {
    let txn = state.begin().await?;
    let mut current = find_visible(&*txn, ctx, id, false).await?;
    if if_match.is_some_and(|v| v != current.version) {
        return Err(AppError::stale_version());
    }
    // A new stage or pipeline is a move: take the stage locks first, then re-read the deal.
    let target = match (input.stage_id, input.pipeline_id) {
        (Some(s), p) if s != current.stage_id || p.is_some_and(|p| p != current.pipeline_id) => {
            Some(target_stage(&*txn, ctx.tenant_id, p, Some(s)).await?)
        }
        (None, Some(p)) if p != current.pipeline_id => {
            Some(target_stage(&*txn, ctx.tenant_id, Some(p), None).await?)
        }
        _ => None,
    };
    let target = match target {
        Some(t) => {
            let rows = board::lock_stages(&*txn, ctx.tenant_id, &[current.stage_id, t.id]).await?;
            current = find_visible(&*txn, ctx, id, true).await?;
            if if_match.is_some_and(|v| v != current.version) {
                return Err(AppError::stale_version());
            }
            Some(board::locked(&rows, t.id, "stage_id")?)
        }
        None => None,
    };
    let from_stage = super::service::find_stage(&*txn, ctx.tenant_id, current.stage_id).await?;
    let to_stage = target.clone().unwrap_or_else(|| from_stage.clone());
    let existing = items_of(&*txn, ctx.tenant_id, id).await?;
    let before = serde_json::to_value(opportunity_dto(current.clone(), Some(existing.clone())))
        .unwrap_or_default();

    let mut v = Validator::new();
    let title = match (&input.title, mode) {
        (None, WriteMode::Patch) => Some(current.title.clone()),
        (Some(Some(t)), _) => v.required_text("title", Some(t), 200),
        _ => v.required_text("title", None, 200),
    };
    let cur_status = OpportunityStatus::parse(&current.status).unwrap_or(OpportunityStatus::Open);
    let status = if target.is_some() {
        status_for(stage_kind(&to_stage))
    } else {
        cur_status
    };
    if parse_status(&mut v, &input.status).is_some_and(|s| s != status) {
        return Err(status_change_refused());
    }
    // A deal that stays lost keeps its reason unless one is sent.
    let lost_reason = match &input.lost_reason {
        None if status == OpportunityStatus::Lost && cur_status == OpportunityStatus::Lost => {
            current.lost_reason.clone()
        }
        None | Some(None) => None,
        Some(Some(s)) => v.optional_text("lost_reason", Some(s), 500),
    };
    check_lost_reason(&mut v, status, &lost_reason, "lost_reason");
    let notes = mode.optional_text(
        &mut v,
        "notes",
        &input.notes,
        current.notes.as_ref(),
        20_000,
    );
    let lead_id = match input.lead_id {
        None if mode == WriteMode::Patch => current.lead_id,
        None => None,
        Some(l) => l,
    };
    if let Some(l) = lead_id
        && Some(l) != current.lead_id
    {
        leads::service::find_visible(&*txn, ctx, l, false)
            .await
            .map_err(|_| not_found_in_body("lead_id"))?;
    }
    let owner_id = match input.owner_id {
        None => current.owner_id,
        Some(o) => o,
    };
    let expected_close_date = match input.expected_close_date {
        None if mode == WriteMode::Patch => current.expected_close_date,
        None => None,
        Some(d) => d,
    };
    // Probability: an explicit value overrides the stage's, unless it merely echoes the current,
    // stage-given one (a fetched deal sent back).
    let prob_override = match input.probability {
        None if mode == WriteMode::Patch => current
            .probability_overridden
            .then_some(current.probability),
        None | Some(None) => None,
        Some(Some(p)) => probability(&mut v, Some(p))
            .filter(|p| current.probability_overridden || *p != current.probability),
    };
    let term_months = term(&mut v, input.term_months, current.term_months);
    let lines = match (&input.items, mode) {
        (Some(list), _) => resolve_lines(&*txn, ctx.tenant_id, &mut v, list, &existing).await?,
        (None, WriteMode::Patch) => existing.iter().map(Line::from_model).collect(),
        (None, _) => vec![],
    };
    let value_default = if existing.is_empty() {
        current.value_cents
    } else {
        0
    };
    let amounts = amounts(
        &mut v,
        &lines,
        term_months,
        input.value_cents,
        value_default,
    );
    v.finish()?;
    let Some(title) = title else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    check_owner(&*txn, ctx, owner_id, Some(current.owner_id)).await?;

    let now = Utc::now();
    let stage_changed = to_stage.id != current.stage_id;
    let position = if stage_changed {
        board::place(&*txn, ctx, to_stage.id, id, Anchor::Top).await?
    } else {
        current.position
    };
    let version = current.version;
    let from_entered = current.stage_entered_at;
    let mut am = current.clone().into_active_model();
    am.title_sort = Set(title_sort(&title));
    am.title = Set(title);
    am.lead_id = Set(lead_id);
    am.owner_id = Set(owner_id);
    am.pipeline_id = Set(to_stage.pipeline_id);
    am.stage_id = Set(to_stage.id);
    am.position = Set(position);
    am.status = Set(status.as_str().to_string());
    am.lost_reason = Set(lost_reason);
    am.expected_close_date = Set(expected_close_date);
    am.probability = Set(prob_override.unwrap_or(to_stage.probability));
    am.probability_overridden = Set(prob_override.is_some());
    am.term_months = Set(term_months);
    am.value_cents = Set(amounts.value);
    am.mrr_cents = Set(amounts.mrr);
    am.setup_cents = Set(amounts.setup);
    am.tcv_cents = Set(amounts.tcv);
    am.notes = Set(notes);
    if stage_changed {
        am.stage_entered_at = Set(now);
    }
    if status != cur_status {
        am.closed_at = Set((status != OpportunityStatus::Open).then_some(now));
    }
    am.updated_at = Set(now);
    am.version = Set(version + 1);
    let updated = crate::domains::optimistic_update::<opportunity::Entity, _>(
        &*txn,
        am,
        opportunity::Column::Version,
        version,
    )
    .await?;
    let items = if input.items.is_some() || mode == WriteMode::Replace {
        write_lines(&*txn, ctx.tenant_id, id, &lines, true).await?
    } else {
        existing
    };
    if stage_changed || status != cur_status {
        record_history(
            &*txn,
            ctx,
            &updated,
            Some((&from_stage, from_entered)),
            Some(cur_status.as_str()),
            &to_stage,
            event_for(cur_status, status),
            now,
        )
        .await?;
    }
    let dto = opportunity_dto(updated, Some(items));
    let after = serde_json::to_value(&dto).unwrap_or_default();
    let changes = audit::diff(&before, &after);
    emit_updated(&*txn, ctx, id, &changes).await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "update", "opportunity", id, changes),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

/// `opportunity.updated` with the changed fields, except those a stage or status event reports.
async fn emit_updated<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    id: Uuid,
    changes: &Value,
) -> AppResult<()> {
    const OWN_EVENTS: &[&str] = &[
        "stage_id",
        "pipeline_id",
        "status",
        "lost_reason",
        "position",
        "stage_entered_at",
        "closed_at",
    ];
    let (mut before, mut after) = (serde_json::Map::new(), serde_json::Map::new());
    if let Value::Object(m) = changes {
        for (k, v) in m.iter().filter(|(k, _)| !OWN_EVENTS.contains(&k.as_str())) {
            before.insert(k.clone(), v.get("from").cloned().unwrap_or(Value::Null));
            after.insert(k.clone(), v.get("to").cloned().unwrap_or(Value::Null));
        }
    }
    if after.is_empty() {
        return Ok(());
    }
    events::emit(
        conn,
        emit_event(
            ctx,
            "opportunity.updated",
            "opportunity",
            id,
            json!({"before": before, "after": after}),
        ),
    )
    .await?;
    Ok(())
}

fn event_for(from: OpportunityStatus, to: OpportunityStatus) -> StageEvent {
    if from == to {
        return StageEvent::StageChanged;
    }
    match to {
        OpportunityStatus::Won => StageEvent::Won,
        OpportunityStatus::Lost => StageEvent::Lost,
        OpportunityStatus::Open => StageEvent::Reopened,
    }
}

/// Soft delete: the deal leaves lists and the board; its history stays.
pub async fn delete(state: &AppState, ctx: &Authorized<Sellers>, id: Uuid) -> AppResult<()> {
    let txn = state.begin().await?;
    let current = find_visible(&*txn, ctx, id, false).await?;
    store::soft_delete::<opportunity::Entity>(txn, ctx, "opportunity", current, |_| {}).await
}

// ---------- moves, won, lost, reopen ----------

#[derive(Debug, Clone)]
pub enum Transition {
    Move {
        stage_id: Option<Uuid>,
        anchor: Anchor,
        lost_reason: Option<String>,
    },
    Won,
    Lost(String),
    Reopen,
}

impl Transition {
    fn action(&self) -> &'static str {
        match self {
            Transition::Move { .. } => "move",
            Transition::Won => "won",
            Transition::Lost(_) => "lost",
            Transition::Reopen => "reopen",
        }
    }
}

fn already(status: &str) -> AppError {
    AppError::new(
        ErrorCode::InvalidStateTransition,
        format!("A oportunidade já está com status '{status}'."),
    )
    .with_context(json!({"status": status}))
}

/// The stage a transition goes to, from the deal as last read.
async fn transition_target<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    opp: &opportunity::Model,
    tr: &Transition,
) -> AppResult<stage::Model> {
    let t = ctx.tenant_id;
    if let Transition::Move { stage_id, .. } = tr {
        return find_stage_ref(conn, t, stage_id.unwrap_or(opp.stage_id), "stage_id").await;
    }
    let stages = stages_of(conn, t, opp.pipeline_id).await?;
    let current = stages.iter().find(|s| s.id == opp.stage_id);
    let pick = match tr {
        Transition::Won => stages.iter().find(|s| stage_kind(s) == StageKind::Won),
        Transition::Lost(_) => stages.iter().find(|s| stage_kind(s) == StageKind::Lost),
        _ => {
            // Back to the open stage the deal was closed from, if it still exists.
            let last_close = history::Entity::find()
                .filter(history::Column::TenantId.eq(t))
                .filter(history::Column::OpportunityId.eq(opp.id))
                .filter(history::Column::FromStatus.eq("open"))
                .filter(history::Column::ToStatus.ne("open"))
                .order_by_desc(history::Column::Id)
                .one(conn)
                .await?;
            let back = last_close
                .and_then(|h| h.from_stage_id)
                .and_then(|sid| stages.iter().find(|s| s.id == sid))
                .filter(|s| stage_kind(s) == StageKind::Open);
            back.or(current.filter(|s| stage_kind(s) == StageKind::Open))
                .or_else(|| first_open(&stages))
        }
    };
    pick.or(current).cloned().ok_or_else(AppError::not_found)
}

/// Moves, wins, loses or reopens a deal under the locks of its old and new stage.
pub async fn transition(
    state: &AppState,
    ctx: &Authorized<Sellers>,
    id: Uuid,
    tr: Transition,
) -> AppResult<Opportunity> {
    if let Transition::Move { anchor, .. } = &tr
        && matches!(anchor, Anchor::Before(x) | Anchor::After(x) if *x == id)
    {
        let field = if matches!(anchor, Anchor::Before(_)) {
            "before_id"
        } else {
            "after_id"
        };
        return Err(AppError::field(
            field,
            "same_card",
            "Use outro cartão como referência",
        ));
    }
    let txn = state.begin().await?;
    let first = find_visible(&*txn, ctx, id, false).await?;
    let target = transition_target(&*txn, ctx, &first, &tr).await?;
    let rows = board::lock_stages(&*txn, ctx.tenant_id, &[first.stage_id, target.id]).await?;
    let target = board::locked(&rows, target.id, "stage_id")?;
    // Fresh, locked: a concurrent change of this deal either finished before or waits for us.
    let current = find_visible(&*txn, ctx, id, true).await?;
    let cur_status = OpportunityStatus::parse(&current.status).unwrap_or(OpportunityStatus::Open);
    if current.stage_id != first.stage_id && !matches!(tr, Transition::Move { .. }) {
        // Moved by someone else between our read and our lock; its target may differ now. Taking
        // more stage locks out of order could deadlock, so the client retries.
        return Err(AppError::new(
            ErrorCode::ConcurrentUpdate,
            "A oportunidade acabou de ser movida por outra pessoa; tente novamente.",
        ));
    }
    let status = match &tr {
        Transition::Won if cur_status == OpportunityStatus::Won => return Err(already("won")),
        Transition::Lost(_) if cur_status == OpportunityStatus::Lost => {
            return Err(already("lost"));
        }
        Transition::Reopen if cur_status == OpportunityStatus::Open => {
            return Err(already("open"));
        }
        Transition::Won => OpportunityStatus::Won,
        Transition::Lost(_) => OpportunityStatus::Lost,
        Transition::Reopen => OpportunityStatus::Open,
        Transition::Move { .. } => status_for(stage_kind(&target)),
    };
    let lost_reason = match (&tr, status) {
        (Transition::Lost(r), _) => Some(r.clone()),
        (
            Transition::Move {
                lost_reason: Some(r),
                ..
            },
            OpportunityStatus::Lost,
        ) => Some(r.clone()),
        (_, OpportunityStatus::Lost) => current.lost_reason.clone(),
        _ => None,
    };
    if status == OpportunityStatus::Lost && lost_reason.is_none() {
        return Err(AppError::field(
            "lost_reason",
            "required",
            "Informe o motivo da perda para mover para uma etapa de perda",
        ));
    }
    let stage_changed = target.id != current.stage_id;
    let position = match &tr {
        Transition::Move { anchor, .. } => board::place(&*txn, ctx, target.id, id, *anchor).await?,
        _ if stage_changed => board::place(&*txn, ctx, target.id, id, Anchor::Top).await?,
        _ => current.position,
    };
    if !stage_changed && status == cur_status && position == current.position {
        let items = items_of(&*txn, ctx.tenant_id, id).await?;
        return Ok(opportunity_dto(current, Some(items)));
    }
    let from_stage = super::service::find_stage(&*txn, ctx.tenant_id, current.stage_id).await?;
    let now = Utc::now();
    let version = current.version;
    let from_entered = current.stage_entered_at;
    let before = json!({"stage_id": current.stage_id, "status": current.status, "position": current.position});
    let mut am = current.clone().into_active_model();
    am.pipeline_id = Set(target.pipeline_id);
    am.stage_id = Set(target.id);
    am.position = Set(position);
    am.status = Set(status.as_str().to_string());
    am.lost_reason = Set(lost_reason);
    if stage_changed {
        am.stage_entered_at = Set(now);
        if !current.probability_overridden {
            am.probability = Set(target.probability);
        }
    }
    if status != cur_status {
        am.closed_at = Set((status != OpportunityStatus::Open).then_some(now));
    }
    am.updated_at = Set(now);
    am.version = Set(version + 1);
    let updated = crate::domains::optimistic_update::<opportunity::Entity, _>(
        &*txn,
        am,
        opportunity::Column::Version,
        version,
    )
    .await?;
    if stage_changed || status != cur_status {
        record_history(
            &*txn,
            ctx,
            &updated,
            Some((&from_stage, from_entered)),
            Some(cur_status.as_str()),
            &target,
            event_for(cur_status, status),
            now,
        )
        .await?;
    }
    let after = json!({"stage_id": updated.stage_id, "status": updated.status, "position": updated.position});
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            tr.action(),
            "opportunity",
            id,
            audit::diff(&before, &after),
        ),
    )
    .await?;
    let items = items_of(&*txn, ctx.tenant_id, id).await?;
    txn.commit().await?;
    Ok(opportunity_dto(updated, Some(items)))
}

// ---------- lead conversion ----------

/// Creates a deal from a lead in the pipeline's first open stage and marks the lead `converted`, in
/// one transaction. A lead converts once (`409`).
pub async fn convert_lead(
    state: &AppState,
    ctx: &Authorized<Sellers>,
    lead_id: Uuid,
    req: ConvertLeadRequest,
    idem: Option<IdempotencyKey>,
) -> AppResult<(u16, Value)> {
    if let Some(k) = &idem
        && let Some(r) = idempotency::lookup(&state.db, ctx.tenant_id, k).await?
    {
        return Ok((r.status, r.body));
    }
    let mut v = Validator::new();
    let title_in = v.optional_text("title", req.title.as_deref(), 200);
    let notes = v.optional_text("notes", req.notes.as_deref(), 20_000);
    let term_months = term(&mut v, req.term_months, DEFAULT_TERM_MONTHS);
    let scorer = leads::service::load_scorer(&state.db, ctx).await?;
    let txn = state.begin().await?;
    let lead = leads::service::find_visible(&*txn, ctx, lead_id, false).await?;
    if lead.status == LeadStatus::Converted.as_str() {
        return Err(already_converted(&*txn, ctx, lead_id).await);
    }
    let stage = target_stage(&*txn, ctx.tenant_id, req.pipeline_id, None).await?;
    let lines = resolve_lines(
        &*txn,
        ctx.tenant_id,
        &mut v,
        req.items.as_deref().unwrap_or(&[]),
        &[],
    )
    .await?;
    let amounts = amounts(&mut v, &lines, term_months, req.value_cents, 0);
    v.finish()?;
    let title = title_in.unwrap_or_else(|| {
        lead.company
            .clone()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| lead.name.clone())
    });
    let owner_id = lead.owner_id.or(Some(ctx.user_id));
    let (m, items) = insert_deal(
        &*txn,
        ctx,
        NewDeal {
            title,
            lead_id: Some(lead_id),
            owner_id,
            stage,
            lost_reason: None,
            expected_close_date: req.expected_close_date,
            probability: None,
            term_months,
            amounts,
            lines,
            notes,
        },
    )
    .await?;
    let mut draft = LeadDraft::from_model(&lead);
    let old_status = draft.status;
    draft.status = LeadStatus::Converted;
    if let Err(e) = leads::service::save_draft(&*txn, ctx, lead, &draft, &scorer).await {
        // A concurrent conversion updated the lead first.
        return Err(if e.code == ErrorCode::PreconditionFailed {
            drop(txn);
            already_converted(&state.db, ctx, lead_id).await
        } else {
            e
        });
    }
    let opp_id = m.id;
    events::emit(
        &*txn,
        emit_event(
            ctx,
            "lead.converted",
            "lead",
            lead_id,
            json!({"before": {"status": old_status.as_str()},
                   "after": {"status": "converted", "opportunity_id": opp_id}}),
        ),
    )
    .await?;
    timeline::record(
        &*txn,
        timeline::NewEntry {
            tenant_id: ctx.tenant_id,
            lead_id: Some(lead_id),
            opportunity_id: Some(opp_id),
            kind: timeline::kinds::LEAD_CONVERTED,
            actor_id: Some(ctx.user_id),
            summary: format!("Lead convertido em oportunidade: {}", m.title),
            data: json!({"opportunity_id": opp_id, "stage_id": m.stage_id, "value_cents": m.value_cents}),
            reference: None,
        },
    )
    .await?;
    let body = serde_json::to_value(opportunity_dto(m, Some(items))).map_err(AppError::internal)?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create",
            "opportunity",
            opp_id,
            audit::diff(&json!({}), &body),
        ),
    )
    .await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "convert",
            "lead",
            lead_id,
            json!({
                "status": {"from": old_status.as_str(), "to": "converted"},
                "opportunity_id": {"from": null, "to": opp_id}
            }),
        ),
    )
    .await?;
    idempotency::commit(state, txn, ctx, idem.as_ref(), 201, body).await
}

async fn already_converted<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    lead_id: Uuid,
) -> AppError {
    let existing: Option<Uuid> = opportunity::Entity::find()
        .select_only()
        .column(opportunity::Column::Id)
        .filter(opportunity::Column::TenantId.eq(ctx.tenant_id))
        .filter(opportunity::Column::LeadId.eq(lead_id))
        .order_by_asc(opportunity::Column::Id)
        .into_tuple()
        .one(conn)
        .await
        .ok()
        .flatten();
    AppError::new(ErrorCode::AlreadyConverted, "Este lead já foi convertido.")
        .with_context(json!({"opportunity_id": existing}))
}

// ---------- list ----------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    CreatedAt,
    UpdatedAt,
    Title,
    Value,
    Mrr,
    Tcv,
    Position,
}

impl SortKey {
    fn as_str(self) -> &'static str {
        match self {
            SortKey::CreatedAt => "created_at",
            SortKey::UpdatedAt => "updated_at",
            SortKey::Title => "title",
            SortKey::Value => "value_cents",
            SortKey::Mrr => "mrr_cents",
            SortKey::Tcv => "tcv_cents",
            SortKey::Position => "position",
        }
    }
    fn parse(s: &str) -> Option<SortKey> {
        Some(match s {
            "created_at" => SortKey::CreatedAt,
            "updated_at" => SortKey::UpdatedAt,
            "title" => SortKey::Title,
            "value_cents" => SortKey::Value,
            "mrr_cents" => SortKey::Mrr,
            "tcv_cents" => SortKey::Tcv,
            "position" => SortKey::Position,
            _ => return None,
        })
    }
    fn column(self) -> opportunity::Column {
        match self {
            SortKey::CreatedAt => opportunity::Column::CreatedAt,
            SortKey::UpdatedAt => opportunity::Column::UpdatedAt,
            SortKey::Title => opportunity::Column::TitleSort,
            SortKey::Value => opportunity::Column::ValueCents,
            SortKey::Mrr => opportunity::Column::MrrCents,
            SortKey::Tcv => opportunity::Column::TcvCents,
            SortKey::Position => opportunity::Column::Position,
        }
    }
    /// The list order of this sort, and its cursor: `(sort, value, id)`.
    pub fn keyset(self, descending: bool) -> Keyset<opportunity::Entity> {
        Keyset::new([self.column(), opportunity::Column::Id], descending).tagged(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum OwnerFilter {
    Any,
    Unassigned,
    Is(Uuid),
}

#[derive(Debug, Clone)]
pub struct OppQuery {
    pub pipeline_id: Option<Uuid>,
    pub stage_id: Option<Uuid>,
    pub owner: OwnerFilter,
    pub status: Vec<OpportunityStatus>,
    pub lead_id: Option<Uuid>,
    pub close_from: Option<NaiveDate>,
    pub close_to: Option<NaiveDate>,
    pub value_min: Option<i64>,
    pub value_max: Option<i64>,
    pub q: Option<String>,
    pub sort: SortKey,
    pub descending: bool,
    pub limit: u64,
    pub cursor: Option<String>,
    pub include_total: bool,
}

/// Query parameters of `GET /api/pipelines/opportunities`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct OppQueryDoc {
    pub pipeline_id: Option<Uuid>,
    pub stage_id: Option<Uuid>,
    /// A user id, `me`, or `none` (unassigned).
    pub owner_id: Option<String>,
    /// `open`, `won`, `lost`, or several separated by commas.
    pub status: Option<String>,
    pub lead_id: Option<Uuid>,
    /// Expected close date from (inclusive), `YYYY-MM-DD`.
    pub close_from: Option<NaiveDate>,
    /// Expected close date to (inclusive), `YYYY-MM-DD`.
    pub close_to: Option<NaiveDate>,
    /// Minimum `value_cents`.
    pub value_min: Option<i64>,
    /// Maximum `value_cents`.
    pub value_max: Option<i64>,
    /// Case- and accent-insensitive search in the title.
    pub q: Option<String>,
    /// `created_at`, `updated_at`, `title`, `value_cents`, `mrr_cents`, `tcv_cents` or `position`
    /// (stage order, with `stage_id`); prefix `-` for descending. Default `-created_at`.
    pub sort: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub include_total: Option<bool>,
}

fn bad(field: &str, msg: &str) -> AppError {
    AppError::validation(vec![FieldError::new(field, "invalid_value", msg)])
}

fn parse_uuid(field: &str, v: &str) -> AppResult<Uuid> {
    Uuid::parse_str(v).map_err(|_| bad(field, "Identificador inválido"))
}

fn parse_date(field: &str, v: &str) -> AppResult<NaiveDate> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| bad(field, "Use uma data AAAA-MM-DD"))
}

impl OppQuery {
    pub fn parse(raw: &str, ctx: &TenantCtx) -> AppResult<OppQuery> {
        let mut q = OppQuery {
            pipeline_id: None,
            stage_id: None,
            owner: OwnerFilter::Any,
            status: vec![],
            lead_id: None,
            close_from: None,
            close_to: None,
            value_min: None,
            value_max: None,
            q: None,
            sort: SortKey::CreatedAt,
            descending: true,
            limit: pagination::DEFAULT_LIMIT,
            cursor: None,
            include_total: false,
        };
        for (k, v) in query_pairs(raw)? {
            let v = v.trim().to_string();
            match k.as_str() {
                "pipeline_id" => q.pipeline_id = Some(parse_uuid("pipeline_id", &v)?),
                "stage_id" => q.stage_id = Some(parse_uuid("stage_id", &v)?),
                "lead_id" => q.lead_id = Some(parse_uuid("lead_id", &v)?),
                "owner_id" => {
                    q.owner = match v.as_str() {
                        "me" => OwnerFilter::Is(ctx.user_id),
                        "none" => OwnerFilter::Unassigned,
                        s => OwnerFilter::Is(
                            Uuid::parse_str(s)
                                .map_err(|_| bad("owner_id", "Use um id, me ou none"))?,
                        ),
                    }
                }
                "status" => {
                    for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        q.status.push(
                            OpportunityStatus::parse(s)
                                .ok_or_else(|| bad("status", "Use open, won ou lost"))?,
                        );
                    }
                }
                "close_from" => q.close_from = Some(parse_date("close_from", &v)?),
                "close_to" => q.close_to = Some(parse_date("close_to", &v)?),
                "value_min" => {
                    q.value_min = Some(
                        v.parse()
                            .map_err(|_| bad("value_min", "Inteiro (centavos)"))?,
                    )
                }
                "value_max" => {
                    q.value_max = Some(
                        v.parse()
                            .map_err(|_| bad("value_max", "Inteiro (centavos)"))?,
                    )
                }
                "q" => {
                    if v.chars().count() > 100 {
                        return Err(bad("q", "Busca com no máximo 100 caracteres"));
                    }
                    q.q = Some(v)
                }
                "sort" => {
                    let (desc, key) = match v.strip_prefix('-') {
                        Some(k) => (true, k),
                        None => (false, v.as_str()),
                    };
                    q.sort = SortKey::parse(key).ok_or_else(|| {
                        bad(
                            "sort",
                            "Use created_at, updated_at, title, value_cents, mrr_cents, tcv_cents ou position",
                        )
                    })?;
                    q.descending = desc;
                }
                "limit" => {
                    q.limit = pagination::limit(Some(
                        v.parse().map_err(|_| bad("limit", "Número de 1 a 200"))?,
                    ))?
                }
                "cursor" => q.cursor = Some(v),
                "include_total" => q.include_total = query_bool("include_total", &v)?,
                _ => {}
            }
        }
        if let (Some(a), Some(b)) = (q.value_min, q.value_max)
            && a > b
        {
            return Err(bad("value_min", "value_min maior que value_max"));
        }
        if let (Some(a), Some(b)) = (q.close_from, q.close_to)
            && a > b
        {
            return Err(bad("close_from", "close_from depois de close_to"));
        }
        Ok(q)
    }
}

fn filtered(ctx: &TenantCtx, q: &OppQuery) -> Select<opportunity::Entity> {
    let mut sel = opportunity::Entity::find()
        .filter(opportunity::Column::TenantId.eq(ctx.tenant_id))
        .filter(opportunity::Column::DeletedAt.is_null());
    if !sees_all(ctx) {
        sel = sel.filter(opportunity::Column::OwnerId.eq(ctx.user_id));
    }
    match &q.owner {
        OwnerFilter::Any => {}
        OwnerFilter::Unassigned => sel = sel.filter(opportunity::Column::OwnerId.is_null()),
        OwnerFilter::Is(id) => sel = sel.filter(opportunity::Column::OwnerId.eq(*id)),
    }
    if let Some(p) = q.pipeline_id {
        sel = sel.filter(opportunity::Column::PipelineId.eq(p));
    }
    if let Some(s) = q.stage_id {
        sel = sel.filter(opportunity::Column::StageId.eq(s));
    }
    if let Some(l) = q.lead_id {
        sel = sel.filter(opportunity::Column::LeadId.eq(l));
    }
    if !q.status.is_empty() {
        sel = sel.filter(opportunity::Column::Status.is_in(q.status.iter().map(|s| s.as_str())));
    }
    if let Some(d) = q.close_from {
        sel = sel.filter(opportunity::Column::ExpectedCloseDate.gte(d));
    }
    if let Some(d) = q.close_to {
        sel = sel.filter(opportunity::Column::ExpectedCloseDate.lte(d));
    }
    if let Some(v) = q.value_min {
        sel = sel.filter(opportunity::Column::ValueCents.gte(v));
    }
    if let Some(v) = q.value_max {
        sel = sel.filter(opportunity::Column::ValueCents.lte(v));
    }
    if let Some(text) = &q.q {
        // Every word must appear in the folded title.
        let folded = jtcrm_types::br::fold_for_search(text);
        for word in folded.split_whitespace().take(6) {
            sel = sel.filter(Expr::col(opportunity::Column::TitleSort).like(sql::contains(word)));
        }
    }
    sel
}

pub async fn list(state: &AppState, ctx: &TenantCtx, q: &OppQuery) -> AppResult<Page<Opportunity>> {
    let page = q
        .sort
        .keyset(q.descending)
        .paginate(
            &state.db,
            filtered(ctx, q),
            q.cursor.as_deref(),
            q.limit,
            q.include_total,
        )
        .await?;
    Ok(page.map(|m| opportunity_dto(m, None)))
}
