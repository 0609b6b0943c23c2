//! Monthly sales quotas per seller (`GET/PUT /api/quotas`) and the share of them a report period
//! covers.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Datelike, Months, NaiveDate, Utc};
use jtcrm_types::dto::dashboards::{Quota, QuotaInput, QuotaMonth};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;
use uuid::Uuid;

use super::model::quota;
use super::period::Period;
use super::sql::{is_pg, rows};
use crate::domains::{tasks, users};
use jtcrm_kernel::audit;
use jtcrm_kernel::db::Db;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Authorized, Managers};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::visibility::sees_all;

/// Most quotas one `PUT` may set.
pub const MAX_ITEMS: usize = 500;
const MAX_MRR_CENTS: i64 = 100_000_000_000;
const MAX_DEALS: i64 = 1_000_000;

fn month_start(m: &str) -> Option<NaiveDate> {
    if m.len() != 7 {
        return None;
    }
    NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d")
        .ok()
        .filter(|d| (2000..=2100).contains(&d.year()))
}

fn month_key(d: NaiveDate) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

fn current_month(ctx: &TenantCtx) -> String {
    let tz = tasks::agenda::tz_of(&ctx.tenant.settings.timezone);
    month_key(Utc::now().with_timezone(&tz).date_naive())
}

fn parse_month(raw: Option<&str>, ctx: &TenantCtx) -> AppResult<String> {
    match raw.map(str::trim) {
        None => Ok(current_month(ctx)),
        Some(m) => month_start(m).map(month_key).ok_or_else(|| {
            AppError::field("month", "invalid_value", "Use um mês no formato AAAA-MM")
        }),
    }
}

async fn month_of(
    db: &Db,
    tenant_id: Uuid,
    month: &str,
    only: Option<Uuid>,
) -> AppResult<QuotaMonth> {
    let mut q = quota::Entity::find()
        .filter(quota::Column::TenantId.eq(tenant_id))
        .filter(quota::Column::Month.eq(month));
    if let Some(u) = only {
        q = q.filter(quota::Column::UserId.eq(u));
    }
    let items = q
        .order_by_asc(quota::Column::UserId)
        .all(db)
        .await?
        .into_iter()
        .map(|m| Quota {
            user_id: m.user_id,
            mrr_cents: m.mrr_cents,
            deals: m.deals,
        })
        .collect();
    Ok(QuotaMonth {
        month: month.to_string(),
        items,
    })
}

/// The month's quotas: everyone's for who sees the whole team, one's own otherwise.
pub async fn get(state: &AppState, ctx: &TenantCtx, month: Option<&str>) -> AppResult<QuotaMonth> {
    let month = parse_month(month, ctx)?;
    let only = (!sees_all(ctx)).then_some(ctx.user_id);
    month_of(&state.db, ctx.tenant_id, &month, only).await
}

/// Sets the month's quotas of the users listed (both targets `null`: removes the quota).
pub async fn put(
    state: &AppState,
    ctx: &Authorized<Managers>,
    input: QuotaInput,
) -> AppResult<QuotaMonth> {
    let mut v = Validator::default();
    let month = match input.month.as_deref().map(str::trim) {
        None | Some("") => {
            v.add("month", "required", "Informe o mês (AAAA-MM)");
            None
        }
        Some(m) => match month_start(m) {
            Some(d) => Some(month_key(d)),
            None => {
                v.add("month", "invalid_value", "Use um mês no formato AAAA-MM");
                None
            }
        },
    };
    let items = input.items.unwrap_or_default();
    if items.is_empty() || items.len() > MAX_ITEMS {
        v.add("items", "invalid_length", "Informe de 1 a 500 metas");
    }
    let mut seen = HashSet::new();
    let mut parsed = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let f = |n: &str| format!("items[{i}].{n}");
        let Some(user_id) = it.user_id else {
            v.add(&f("user_id"), "required", "Informe o usuário");
            continue;
        };
        if !seen.insert(user_id) {
            v.add(&f("user_id"), "duplicate", "Usuário repetido");
        }
        if it
            .mrr_cents
            .is_some_and(|x| !(0..=MAX_MRR_CENTS).contains(&x))
        {
            v.add(
                &f("mrr_cents"),
                "out_of_range",
                "Use um valor entre 0 e 100000000000",
            );
        }
        if it.deals.is_some_and(|x| !(0..=MAX_DEALS).contains(&x)) {
            v.add(
                &f("deals"),
                "out_of_range",
                "Use um número entre 0 e 1000000",
            );
        }
        parsed.push((i, user_id, it.mrr_cents, it.deals));
    }
    let db = &state.db;
    if !parsed.is_empty() {
        let ids: Vec<Uuid> = parsed.iter().map(|p| p.1).collect();
        let mut known = HashSet::new();
        for r in rows(
            db,
            users::stats::active_users(is_pg(db), ctx.tenant_id, Some(&ids)),
        )
        .await?
        {
            known.insert(super::sql::col::<Uuid>(&r, 0)?);
        }
        for (i, id, _, _) in &parsed {
            if !known.contains(id) {
                v.add(
                    &format!("items[{i}].user_id"),
                    "unknown_user",
                    "Usuário ativo não encontrado nesta empresa",
                );
            }
        }
    }
    v.finish()?;
    let Some(month) = month else {
        return Err(AppError::field("month", "required", "Informe o mês"));
    };
    let txn = state.begin().await?;
    let now = Utc::now();
    for (_, user_id, mrr, deals) in &parsed {
        if mrr.is_none() && deals.is_none() {
            quota::Entity::delete_many()
                .filter(quota::Column::TenantId.eq(ctx.tenant_id))
                .filter(quota::Column::Month.eq(&month))
                .filter(quota::Column::UserId.eq(*user_id))
                .exec(&*txn)
                .await?;
            continue;
        }
        quota::Entity::insert(quota::ActiveModel {
            tenant_id: Set(ctx.tenant_id),
            month: Set(month.clone()),
            user_id: Set(*user_id),
            mrr_cents: Set(*mrr),
            deals: Set(*deals),
            updated_by: Set(Some(ctx.user_id)),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([
                quota::Column::TenantId,
                quota::Column::Month,
                quota::Column::UserId,
            ])
            .update_columns([
                quota::Column::MrrCents,
                quota::Column::Deals,
                quota::Column::UpdatedBy,
                quota::Column::UpdatedAt,
            ])
            .to_owned(),
        )
        .exec_without_returning(&*txn)
        .await?;
    }
    let changes: Vec<_> = parsed
        .iter()
        .map(|(_, u, m, d)| json!({"user_id": u, "mrr_cents": m, "deals": d}))
        .collect();
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "update",
            "sales_quota",
            &month,
            json!({ "items": changes }),
        ),
    )
    .await?;
    txn.commit().await?;
    month_of(db, ctx.tenant_id, &month, None).await
}

/// Per user, the period's targets `(mrr_cents, deals)`: each month's quota times the share of
/// that month's days inside the period (a whole month counts fully).
pub async fn targets(
    db: &Db,
    tenant_id: Uuid,
    period: &Period,
    users: &[Uuid],
) -> AppResult<HashMap<Uuid, (Option<f64>, Option<f64>)>> {
    let mut shares: BTreeMap<String, f64> = BTreeMap::new();
    let mut m = period.from.with_day(1).unwrap_or(period.from);
    while m <= period.to {
        let next = m.checked_add_months(Months::new(1)).unwrap_or(m);
        let in_month = (next - m).num_days() as f64;
        let lo = Ord::max(m, period.from);
        let hi = Ord::min(next, period.to.succ_opt().unwrap_or(period.to));
        shares.insert(month_key(m), (hi - lo).num_days() as f64 / in_month);
        if next == m {
            break;
        }
        m = next;
    }
    let mut out: HashMap<Uuid, (Option<f64>, Option<f64>)> = HashMap::new();
    if users.is_empty() {
        return Ok(out);
    }
    let found = quota::Entity::find()
        .filter(quota::Column::TenantId.eq(tenant_id))
        .filter(quota::Column::Month.is_in(shares.keys().cloned()))
        .filter(quota::Column::UserId.is_in(users.iter().copied()))
        .all(db)
        .await?;
    for q in found {
        let share = shares.get(&q.month).copied().unwrap_or(0.0);
        let e = out.entry(q.user_id).or_insert((None, None));
        if let Some(x) = q.mrr_cents {
            e.0 = Some(e.0.unwrap_or(0.0) + x as f64 * share);
        }
        if let Some(x) = q.deals {
            e.1 = Some(e.1.unwrap_or(0.0) + x as f64 * share);
        }
    }
    Ok(out)
}
