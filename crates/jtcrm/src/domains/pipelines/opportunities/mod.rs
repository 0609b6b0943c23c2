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
use super::{opportunity_dto, stage_kind, status_for};
use crate::domains::leads::{self, LeadDraft};
use crate::domains::products;
use crate::domains::users;
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::events;
use jtcrm_kernel::http::extract::{TenantCtx, query_bool, query_pairs};
use jtcrm_kernel::http::guard::{Authorized, Sellers};
use jtcrm_kernel::http::idempotency::Uncommitted;
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::sql;
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store::{self, WriteMode};
use jtcrm_kernel::timeline;
use jtcrm_kernel::visibility::{sees_all, visible_to};
use jtcrm_types::dto::products::Product;
use jtcrm_types::money;

mod convert;
mod create;
mod list;
mod queries;
mod transition;
mod update;

pub use convert::*;
pub use create::*;
pub use list::*;
pub use queries::*;
pub use transition::*;
pub use update::*;

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
        let prod: Option<&Product> = catalog.iter().find(|p| p.id == pid);
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
                    p.billing,
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
