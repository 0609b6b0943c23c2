//! `auth.cleanup`: daily, deletes refresh tokens that expired more than 7 days ago, in bounded
//! batches (the kernel's `delete_in_batches`). One run per UTC day at 06:05.

use chrono::Utc;
use jtcrm_kernel::jobs::cleanup::delete_in_batches;
use jtcrm_kernel::jobs::{JobCtx, JobError, Next, Periodic};
use jtcrm_kernel::state::AppState;
use sea_orm::Condition;
use sea_orm::sea_query::{Expr, ExprTrait};

use jtcrm_kernel::sessions::refresh_token;

pub const KIND: &str = "auth.cleanup";
pub const SCHEDULE: Periodic = Periodic::daily_at(KIND, 6, 5);

/// Refresh tokens are kept this long after expiry (reuse of a just-expired token is still
/// recognised as such in the logs during that window).
pub const REFRESH_TOKEN_RETENTION_DAYS: i64 = 7;

pub async fn cleanup(state: AppState, ctx: JobCtx) -> Result<Next, JobError> {
    let cutoff = Utc::now() - chrono::Duration::days(REFRESH_TOKEN_RETENTION_DAYS);
    let n = delete_in_batches::<refresh_token::Entity>(
        &state,
        &ctx,
        refresh_token::Column::Id,
        Condition::all().add(Expr::col(refresh_token::Column::ExpiresAt).lt(cutoff)),
    )
    .await?;
    tracing::info!(
        refresh_tokens = n,
        "tokens de atualização expirados removidos"
    );
    Ok(Next::NextSlot)
}
