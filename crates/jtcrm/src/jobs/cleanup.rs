//! `system.cleanup`: the daily housekeeping job. Deletes refresh tokens that expired more than
//! 7 days ago and `succeeded` jobs finished more than 14 days ago, in bounded batches, then
//! schedules tomorrow's run. One run per UTC day, enforced by the idempotency key
//! `system.cleanup:{date}`.

use chrono::{Days, NaiveTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use super::{JobCtx, JobError, NewJob, enqueue, model};
use crate::domains::auth::model as refresh_token;
use crate::error::AppResult;
use crate::state::AppState;

pub const KIND: &str = "system.cleanup";

/// Refresh tokens are kept this long after expiry (reuse of a just-expired token is still
/// recognised as such in the logs during that window).
pub const REFRESH_TOKEN_RETENTION_DAYS: u64 = 7;
/// Succeeded jobs are kept this long for diagnosis; failed and dead jobs are kept until retried.
pub const SUCCEEDED_JOB_RETENTION_DAYS: u64 = 14;

/// Rows per `DELETE`: small enough to hold the SQLite write lock only briefly.
const BATCH: u64 = 1000;
/// Batches per table per run, so one run is bounded; leftovers go the next day.
const MAX_BATCHES: usize = 200;

/// The run time of the daily job: 06:00 UTC = 03:00 in São Paulo, the quietest hour.
fn daily_time() -> NaiveTime {
    NaiveTime::from_hms_opt(6, 0, 0).unwrap_or(NaiveTime::MIN)
}

fn key_for(date: chrono::NaiveDate) -> String {
    format!("{KIND}:{date}")
}

/// Makes sure today's run exists (due now if it did not). Called by the worker on start and hourly,
/// so a broken daily chain heals itself.
pub async fn ensure_scheduled(state: &AppState) -> AppResult<()> {
    let today = Utc::now().date_naive();
    let tx = state.begin().await?;
    enqueue(
        &*tx,
        NewJob::new(KIND, json!({})).idempotency_key(key_for(today)),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn schedule_tomorrow(state: &AppState) -> AppResult<()> {
    let today = Utc::now().date_naive();
    let Some(tomorrow) = today.checked_add_days(Days::new(1)) else {
        return Ok(());
    };
    let tx = state.begin().await?;
    enqueue(
        &*tx,
        NewJob::new(KIND, json!({}))
            .idempotency_key(key_for(tomorrow))
            .run_at(tomorrow.and_time(daily_time()).and_utc()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn run(state: AppState, ctx: JobCtx) -> Result<(), JobError> {
    let now = Utc::now();
    let token_cutoff = now - chrono::Duration::days(REFRESH_TOKEN_RETENTION_DAYS as i64);
    let job_cutoff = now - chrono::Duration::days(SUCCEEDED_JOB_RETENTION_DAYS as i64);

    let mut tokens = 0u64;
    for _ in 0..MAX_BATCHES {
        let mut pick = Query::select();
        pick.column(refresh_token::Column::Id)
            .from(refresh_token::Entity)
            .and_where(Expr::col(refresh_token::Column::ExpiresAt).lt(token_cutoff))
            .limit(BATCH);
        let tx = state.begin().await?;
        let n = refresh_token::Entity::delete_many()
            .filter(refresh_token::Column::Id.in_subquery(pick))
            .exec(&*tx)
            .await?
            .rows_affected;
        tx.commit().await?;
        tokens += n;
        if n < BATCH {
            break;
        }
        ctx.heartbeat().await?;
    }

    let mut jobs = 0u64;
    for _ in 0..MAX_BATCHES {
        // `run_at <= finished_at`, so the (status, run_at) index bounds the scan.
        let mut pick = Query::select();
        pick.column(model::Column::Id)
            .from(model::Entity)
            .and_where(Expr::col(model::Column::Status).eq("succeeded"))
            .and_where(Expr::col(model::Column::RunAt).lt(job_cutoff))
            .and_where(Expr::col(model::Column::FinishedAt).lt(job_cutoff))
            .limit(BATCH);
        let tx = state.begin().await?;
        let n = model::Entity::delete_many()
            .filter(model::Column::Id.in_subquery(pick))
            .exec(&*tx)
            .await?
            .rows_affected;
        tx.commit().await?;
        jobs += n;
        if n < BATCH {
            break;
        }
        ctx.heartbeat().await?;
    }

    schedule_tomorrow(&state).await?;
    tracing::info!(
        refresh_tokens = tokens,
        succeeded_jobs = jobs,
        "limpeza diária concluída"
    );
    Ok(())
}
