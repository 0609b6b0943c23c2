//! `system.cleanup`: the kernel's daily housekeeping job. Deletes `succeeded` jobs finished more
//! than 14 days ago, in bounded batches. A periodic chain (see [`super::periodic`]): one run per
//! UTC day at 06:00 (03:00 in São Paulo, the quietest hour). Domains register their own daily
//! housekeeping (e.g. `auth.cleanup` for expired refresh tokens).

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};

use super::{JobCtx, JobError, Next, Periodic, model};
use crate::state::AppState;

pub const KIND: &str = "system.cleanup";
pub const SCHEDULE: Periodic = Periodic::daily_at(KIND, 6, 0);

/// Succeeded jobs are kept this long for diagnosis; failed and dead jobs are kept until retried.
pub const SUCCEEDED_JOB_RETENTION_DAYS: u64 = 14;

/// Rows per `DELETE`: small enough to hold the SQLite write lock only briefly.
pub const BATCH: u64 = 1000;
/// Batches per table per run, so one run is bounded; leftovers go the next day.
pub const MAX_BATCHES: usize = 200;

pub async fn run(state: AppState, ctx: JobCtx) -> Result<Next, JobError> {
    let now = chrono::Utc::now();
    let job_cutoff = now - chrono::Duration::days(SUCCEEDED_JOB_RETENTION_DAYS as i64);

    // `run_at <= finished_at`, so the (status, run_at) index bounds the scan.
    let jobs = delete_in_batches::<model::Entity>(
        &state,
        &ctx,
        model::Column::Id,
        Condition::all()
            .add(Expr::col(model::Column::Status).eq("succeeded"))
            .add(Expr::col(model::Column::RunAt).lt(job_cutoff))
            .add(Expr::col(model::Column::FinishedAt).lt(job_cutoff)),
    )
    .await?;
    tracing::info!(succeeded_jobs = jobs, "limpeza diária concluída");
    Ok(Next::NextSlot)
}

/// Deletes the rows of `E` that match `cond`, `BATCH` ids per transaction and at most
/// `MAX_BATCHES` transactions (leftovers go to the next run), heartbeating the job in between.
/// Returns how many rows went. For every housekeeping job, the kernel's and the domains'.
pub async fn delete_in_batches<E: EntityTrait>(
    state: &AppState,
    ctx: &JobCtx,
    id_col: E::Column,
    cond: Condition,
) -> Result<u64, JobError> {
    let mut deleted = 0u64;
    for _ in 0..MAX_BATCHES {
        let mut pick = Query::select();
        pick.column(id_col)
            .from(E::default())
            .cond_where(cond.clone())
            .limit(BATCH);
        let tx = state.begin().await?;
        let n = E::delete_many()
            .filter(id_col.in_subquery(pick))
            .exec(&*tx)
            .await?
            .rows_affected;
        tx.commit().await?;
        deleted += n;
        if n < BATCH {
            break;
        }
        ctx.heartbeat().await?;
    }
    Ok(deleted)
}
