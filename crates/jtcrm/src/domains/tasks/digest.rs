//! The daily digest (opt-in per user, `PUT /api/users/me/preferences {"daily_digest": true}`):
//! at 07:00 in the company's timezone each opted-in user gets the list of their tasks due that
//! day plus the ones already overdue; users with neither get nothing.
//!
//! Two jobs:
//! - `email.digest_plan`, hourly (a self-renewing chain like the other scans): for every usable
//!   company with at least one opted-in user, enqueues that company's `email.daily_digest` for
//!   today (while it is still morning there) and for tomorrow, each at 07:00 local time, keyed
//!   `email.daily_digest:{tenant}:{date}` so one day has one job however often the planner runs;
//! - `email.daily_digest` (per company and local date): queues one email per opted-in user with
//!   the idempotency key `digest:{user_id}:{date}`, so a re-run never emails twice. A digest that
//!   could only run after noon (a long outage) is skipped as stale.

use chrono::{
    DateTime, Days, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;
use uuid::Uuid;

use super::agenda;
use super::model::task;
use super::reminders::{first_name, priority_pt, type_pt};
use crate::domains::email::{self, NewEmail, queue};
use crate::domains::users;
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::jobs::{JobCtx, JobError, NewJob, Next, Periodic, enqueue};
use jtcrm_kernel::state::AppState;

pub const PLAN_KIND: &str = "email.digest_plan";
/// The planner runs hourly.
pub const PLAN_SCHEDULE: Periodic = Periodic::every(PLAN_KIND, 3600);
pub const KIND: &str = "email.daily_digest";
pub const EMAIL_KIND: &str = "digest";
/// Local hour the digest goes out.
pub const SEND_HOUR: u32 = 7;
/// A digest not sent by this local hour is skipped.
pub const STALE_HOUR: u32 = 12;
/// Tasks listed per section; the rest are counted.
const MAX_LISTED: u64 = 30;

fn digest_key(tenant_id: Uuid, date: NaiveDate) -> String {
    format!("{KIND}:{tenant_id}:{date}")
}

/// `hour`:00 on `date` in `tz` as a UTC instant (the earlier one when ambiguous; when that local
/// time does not exist, the day's start plus `hour` hours).
fn local_at(tz: Tz, date: NaiveDate, hour: u32) -> DateTime<Utc> {
    let t = NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or(NaiveTime::MIN);
    match tz.from_local_datetime(&date.and_time(t)) {
        LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => x.with_timezone(&Utc),
        LocalResult::None => agenda::start_of_day(tz, date) + Duration::hours(i64::from(hour)),
    }
}

/// Enqueues the digest jobs of every company with opted-in users; returns how many companies.
pub async fn plan(state: &AppState) -> AppResult<u64> {
    let tenant_ids = email::digest_tenants(&state.db).await?;
    let mut planned = 0;
    for chunk in tenant_ids.chunks(500) {
        let mut rows = Vec::with_capacity(chunk.len());
        for id in chunk {
            if let Some(t) = state.tenants.get(&state.db, *id).await? {
                rows.push(t);
            }
        }
        let now = Utc::now();
        let tx = state.begin().await?;
        for t in rows {
            if !t.status.is_usable() {
                continue;
            }
            let tz = agenda::tz_of(&t.settings.timezone);
            let local_now = now.with_timezone(&tz);
            let today = local_now.date_naive();
            let mut dates = vec![];
            if local_now.hour() < STALE_HOUR {
                dates.push(today);
            }
            if let Some(tomorrow) = today.checked_add_days(Days::new(1)) {
                dates.push(tomorrow);
            }
            for date in dates {
                enqueue(
                    &*tx,
                    NewJob::new(KIND, json!({ "date": date.to_string() }))
                        .tenant(t.id)
                        .idempotency_key(digest_key(t.id, date))
                        .run_at(local_at(tz, date, SEND_HOUR)),
                )
                .await?;
            }
            planned += 1;
        }
        tx.commit().await?;
    }
    Ok(planned)
}

pub async fn run_plan(state: AppState, _ctx: JobCtx) -> Result<Next, JobError> {
    plan(&state).await?;
    Ok(Next::NextSlot)
}

fn task_line(t: &task::Model, tz: Tz, with_date: bool) -> String {
    let when = match t.due_at {
        Some(d) if with_date => d.with_timezone(&tz).format("%d/%m %H:%M").to_string(),
        Some(d) => d.with_timezone(&tz).format("%H:%M").to_string(),
        None => "--:--".into(),
    };
    let title: String = t.title.chars().take(150).collect();
    format!(
        "- {when} — {title} [{}, prioridade {}]\n",
        type_pt(&t.task_type),
        priority_pt(&t.priority)
    )
}

fn section(
    out: &mut String,
    heading: &str,
    tasks: &[task::Model],
    total: u64,
    tz: Tz,
    with_date: bool,
) {
    if total == 0 {
        return;
    }
    out.push_str(&format!("{heading} ({total}):\n"));
    for t in tasks {
        out.push_str(&task_line(t, tz, with_date));
    }
    let rest = total.saturating_sub(tasks.len() as u64);
    if rest > 0 {
        out.push_str(&format!("… e mais {rest}.\n"));
    }
    out.push('\n');
}

/// Queues the digests of `tenant_id` for the local `date`; returns how many emails were queued
/// (or found already queued). Users who opted out, are inactive, or have no task today and none
/// overdue get nothing.
pub async fn send_for(state: &AppState, tenant_id: Uuid, date: NaiveDate) -> AppResult<u64> {
    let Some(t) = state.tenants.get(&state.db, tenant_id).await? else {
        return Ok(0);
    };
    if !t.status.is_usable() {
        return Ok(0);
    }
    let tz = agenda::tz_of(&t.settings.timezone);
    let day_start = agenda::start_of_day(tz, date);
    let day_end = agenda::start_of_day(tz, date.checked_add_days(Days::new(1)).unwrap_or(date));
    let opted = email::digest_subscribers(&state.db, tenant_id).await?;
    if opted.is_empty() {
        return Ok(0);
    }
    let users = users::service::active_among(&state.db, Some(tenant_id), opted).await?;
    let mut queued = 0;
    for u in users {
        let pending = || {
            task::Entity::find()
                .filter(task::Column::TenantId.eq(tenant_id))
                .filter(task::Column::AssigneeId.eq(u.id))
                .filter(task::Column::Status.eq("pending"))
                .filter(task::Column::DeletedAt.is_null())
        };
        let today_q = pending()
            .filter(task::Column::DueSort.gte(day_start))
            .filter(task::Column::DueSort.lt(day_end));
        let overdue_q = pending().filter(task::Column::DueSort.lt(day_start));
        let today_total = today_q.clone().count(&state.db).await?;
        let overdue_total = overdue_q.clone().count(&state.db).await?;
        if today_total == 0 && overdue_total == 0 {
            continue;
        }
        let today = today_q
            .order_by_asc(task::Column::DueSort)
            .order_by_asc(task::Column::PriorityRank)
            .order_by_asc(task::Column::Id)
            .limit(MAX_LISTED)
            .all(&state.db)
            .await?;
        let overdue = overdue_q
            .order_by_asc(task::Column::DueSort)
            .order_by_asc(task::Column::PriorityRank)
            .order_by_asc(task::Column::Id)
            .limit(MAX_LISTED)
            .all(&state.db)
            .await?;
        let day = date.format("%d/%m/%Y");
        let subject = match today_total {
            0 => format!(
                "Sua agenda de {day}: nenhuma tarefa para hoje, {overdue_total} atrasada(s)"
            ),
            1 => format!("Sua agenda de {day}: 1 tarefa para hoje"),
            n => format!("Sua agenda de {day}: {n} tarefas para hoje"),
        };
        let mut body = format!(
            "Bom dia, {}!\n\nEsta é a sua agenda de {day}.\n\n",
            first_name(&u.name)
        );
        section(&mut body, "Tarefas de hoje", &today, today_total, tz, false);
        section(
            &mut body,
            "Tarefas atrasadas",
            &overdue,
            overdue_total,
            tz,
            true,
        );
        body.push_str(&format!(
            "Horários no fuso {}.\nVocê recebe este resumo porque ativou o resumo diário; desative-o nas suas preferências.\n— jtcrm\n",
            tz.name()
        ));
        let tx = state.begin().await?;
        let res = queue(
            &*tx,
            &state.settings,
            NewEmail {
                tenant_id,
                to: u.email.clone(),
                subject,
                body_text: body,
                lead_id: None,
                user_id: Some(u.id),
                kind: EMAIL_KIND,
                idempotency_key: Some(format!("digest:{}:{date}", u.id)),
                actor_id: None,
            },
        )
        .await;
        match res {
            Ok(_) => {
                tx.commit().await?;
                queued += 1;
            }
            Err(e) if e.status().is_client_error() => {
                tracing::warn!(user_id = %u.id, error = %e, "resumo diário não enviado");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(queued)
}

pub async fn run(state: AppState, ctx: JobCtx) -> Result<(), JobError> {
    let tenant_id = ctx
        .tenant_id
        .ok_or_else(|| JobError::permanent("job de resumo sem empresa"))?;
    let date = ctx
        .payload
        .get("date")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse::<NaiveDate>().ok())
        .ok_or_else(|| JobError::permanent("payload sem data válida"))?;
    if let Some(t) = state.tenants.get(&state.db, tenant_id).await? {
        let tz = agenda::tz_of(&t.settings.timezone);
        if Utc::now() >= local_at(tz, date, STALE_HOUR) {
            tracing::info!(%tenant_id, %date, "resumo diário atrasado demais; ignorado");
            return Ok(());
        }
    }
    let n = send_for(&state, tenant_id, date).await?;
    if n > 0 {
        tracing::info!(%tenant_id, %date, emails = n, "resumos diários enfileirados");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seven_am_in_sao_paulo_and_manaus() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let sp = agenda::tz_of("America/Sao_Paulo");
        assert_eq!(local_at(sp, d, 7).to_rfc3339(), "2026-11-30T10:00:00+00:00");
        let manaus = agenda::tz_of("America/Manaus");
        assert_eq!(
            local_at(manaus, d, 7).to_rfc3339(),
            "2026-11-30T11:00:00+00:00"
        );
    }
}
