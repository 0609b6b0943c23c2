//! `tasks.overdue_scan`: every minute, emits `task.overdue` once per pending task whose due time has
//! passed. "Once" is a conditional update of `overdue_emitted_at` in the event's own transaction, so
//! two workers or a retried scan never emit twice; rescheduling or reopening clears the mark.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;

use super::model::task;
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::events;
use jtcrm_kernel::jobs::{JobCtx, JobError, Next, Periodic};
use jtcrm_kernel::state::AppState;

pub const KIND: &str = "tasks.overdue_scan";
/// Every minute.
pub const SCHEDULE: Periodic = Periodic::every(KIND, 60);
const BATCH: u64 = 200;
const MAX_BATCHES: usize = 50;

/// Emits the overdue events that are due now; returns how many.
pub async fn scan(state: &AppState) -> AppResult<u64> {
    let mut emitted = 0;
    for _ in 0..MAX_BATCHES {
        let now = Utc::now();
        let due: Vec<task::Model> = task::Entity::find()
            .filter(task::Column::Status.eq("pending"))
            .filter(task::Column::OverdueEmittedAt.is_null())
            .filter(task::Column::DueAt.lt(now))
            .filter(task::Column::DeletedAt.is_null())
            .order_by_asc(task::Column::DueAt)
            .limit(BATCH)
            .all(&state.db)
            .await?;
        if due.is_empty() {
            break;
        }
        let n = due.len() as u64;
        let tx = state.begin().await?;
        for t in due {
            let claimed = task::Entity::update_many()
                .col_expr(task::Column::OverdueEmittedAt, Expr::value(now))
                .filter(task::Column::TenantId.eq(t.tenant_id))
                .filter(task::Column::Id.eq(t.id))
                .filter(task::Column::OverdueEmittedAt.is_null())
                .filter(task::Column::Status.eq("pending"))
                .exec(&*tx)
                .await?
                .rows_affected;
            if claimed == 1 {
                events::emit(
                    &*tx,
                    events::Event {
                        tenant_id: t.tenant_id,
                        event_type: "task.overdue",
                        entity_type: "task",
                        entity_id: t.id,
                        actor_id: None,
                        data: json!({"due_at": t.due_at, "assignee_id": t.assignee_id, "lead_id": t.lead_id, "title": t.title}),
                    },
                )
                .await?;
                emitted += 1;
            }
        }
        tx.commit().await?;
        if n < BATCH {
            break;
        }
    }
    Ok(emitted)
}

pub async fn run(state: AppState, _ctx: JobCtx) -> Result<Next, JobError> {
    let n = scan(&state).await?;
    if n > 0 {
        tracing::info!(emitted = n, "task.overdue emitidos");
    }
    Ok(Next::NextSlot)
}
