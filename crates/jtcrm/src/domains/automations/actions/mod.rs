//! `automations.action`: runs one action of a run, records its result in the run log and schedules
//! the next one (actions run in order; `wait` delays the ones after it). Also the dry-run preview
//! and the webhook client (signed, SSRF-guarded).
//!
//! Exactly-once where it matters: `adjust_score`, `send_email` and `enroll_in_cadence` change the
//! database in the same transaction that records the result; `update_field`, `assign_owner` and
//! `move_stage` are idempotent; `create_task` goes through the tasks service and, on a retried
//! attempt, first looks for the `task.created` event its earlier attempt may have committed (events
//! carry the run and action markers of `events::CAUSE`). Webhooks are at least once, with a stable
//! `X-Jtcrm-Delivery` id for the receiver to deduplicate.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use jtcrm_types::dto::automations::{
    ActionPreview, ActionStatus, AssigneeMode, AutomationAction, Delay, EmailTo, RunStatus,
};
use jtcrm_types::dto::leads::LeadInput;
use jtcrm_types::dto::tasks::TaskInput;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use uuid::Uuid;

use super::business_hours::{self, Hours};
use super::engine::{finalize, schedule_from};
use super::model::{automation, run, run_action};
use super::templates::{clip, render};
use super::{Parsed, actor_ctx, cadences};
use crate::domains::leads::{self, assignment};
use crate::domains::pipelines::{self, board::Anchor, opportunities::Transition};
use crate::domains::{tasks, tenants, users};
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::events::{self, model as event};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Sellers, Staff};
use jtcrm_kernel::jobs::{JobCtx, JobError};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store::WriteMode;
use jtcrm_types::dto::leads::Lead;
use jtcrm_types::dto::pipelines::Opportunity;

mod dry_run;
mod execution;
mod subject;
mod webhooks;

pub use dry_run::*;
pub use execution::*;
pub use subject::*;
pub use webhooks::*;

pub const ACTION_KIND: &str = "automations.action";
const WEBHOOK_TIMEOUT: StdDuration = StdDuration::from_secs(10);
const WEBHOOK_CONNECT_TIMEOUT: StdDuration = StdDuration::from_secs(5);

#[derive(Deserialize)]
struct Payload {
    run_id: Uuid,
    position: usize,
}

/// Why an action failed; `retry` for transient causes (network, 5xx, a concurrent edit).
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub retry: bool,
}

impl Failure {
    fn fatal(msg: impl Into<String>) -> Self {
        Self {
            message: msg.into(),
            retry: false,
        }
    }
    fn transient(msg: impl Into<String>) -> Self {
        Self {
            message: msg.into(),
            retry: true,
        }
    }
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Self {
        let mut message = e.detail.clone();
        for fe in &e.errors {
            message.push_str(&format!(" {}: {}.", fe.field, fe.message));
        }
        let retry = matches!(e.code.status(), 412 | 429 | 500..);
        if let Some(src) = &e.source {
            tracing::warn!(error = %src, "ação de automação falhou");
        }
        Self { message, retry }
    }
}

impl From<sea_orm::DbErr> for Failure {
    fn from(e: sea_orm::DbErr) -> Self {
        AppError::from(e).into()
    }
}

enum Outcome {
    /// Done; the result still has to be recorded.
    Done(Value),
    /// Done and recorded in the same transaction.
    Recorded,
}

/// Where an action sits in its run, for recording its result and scheduling what follows.
pub struct Step<'a> {
    pub run: &'a run::Model,
    pub actions: &'a [AutomationAction],
    pub stop_on_error: bool,
    pub hours: &'a Hours,
    pub position: usize,
    pub attempt: i32,
}

/// Records the result of the action at `step.position` and moves the run on: the next action is
/// queued, or (after a failure with `stop_on_error`) the rest is skipped.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    step: &Step<'_>,
    outcome: Result<Value, String>,
) -> AppResult<()> {
    let now = Utc::now();
    let r = step.run;
    let pos = step.position as i32;
    // The waits that led here are over.
    let after_wait = step.actions[..step.position.min(step.actions.len())]
        .iter()
        .any(|a| matches!(a, AutomationAction::Wait { .. }));
    if after_wait {
        run_action::Entity::update_many()
            .col_expr(
                run_action::Column::Status,
                Expr::value(ActionStatus::Succeeded.as_str()),
            )
            .col_expr(run_action::Column::FinishedAt, Expr::value(now))
            .filter(run_action::Column::TenantId.eq(r.tenant_id))
            .filter(run_action::Column::RunId.eq(r.id))
            .filter(run_action::Column::Position.lt(pos))
            .filter(run_action::Column::ActionType.eq("wait"))
            .filter(run_action::Column::Status.eq(ActionStatus::Queued.as_str()))
            .exec(conn)
            .await?;
    }
    let (status, result, error) = match &outcome {
        Ok(v) => (ActionStatus::Succeeded, Some(v.clone()), None),
        Err(m) => (ActionStatus::Failed, None, Some(clip(m, 2000))),
    };
    run_action::Entity::update_many()
        .col_expr(run_action::Column::Status, Expr::value(status.as_str()))
        .col_expr(run_action::Column::Result, Expr::value(result))
        .col_expr(run_action::Column::Error, Expr::value(error))
        .col_expr(run_action::Column::Attempts, Expr::value(step.attempt))
        .col_expr(run_action::Column::FinishedAt, Expr::value(now))
        .filter(run_action::Column::TenantId.eq(r.tenant_id))
        .filter(run_action::Column::RunId.eq(r.id))
        .filter(run_action::Column::Position.eq(pos))
        .exec(conn)
        .await?;
    metrics::counter!("jtcrm_automation_actions_total", "outcome" => status.as_str()).increment(1);
    if outcome.is_err() && step.stop_on_error {
        skip_rest(
            conn,
            r,
            step.position + 1,
            "Não executada: uma ação anterior falhou e a automação para no primeiro erro (stop_on_error).",
        )
        .await?;
        return finalize(conn, r, Some(RunStatus::Stopped)).await;
    }
    schedule_from(conn, step.hours, r, step.actions, step.position + 1, now).await
}

async fn skip_rest<C: ConnectionTrait>(
    conn: &C,
    r: &run::Model,
    from: usize,
    why: &str,
) -> AppResult<()> {
    run_action::Entity::update_many()
        .col_expr(
            run_action::Column::Status,
            Expr::value(ActionStatus::Skipped.as_str()),
        )
        .col_expr(run_action::Column::Error, Expr::value(why))
        .col_expr(run_action::Column::FinishedAt, Expr::value(Utc::now()))
        .filter(run_action::Column::TenantId.eq(r.tenant_id))
        .filter(run_action::Column::RunId.eq(r.id))
        .filter(run_action::Column::Position.gte(from as i32))
        .filter(run_action::Column::Status.is_in([
            ActionStatus::Pending.as_str(),
            ActionStatus::Queued.as_str(),
        ]))
        .exec(conn)
        .await?;
    Ok(())
}

fn is_terminal(status: &str) -> bool {
    matches!(
        ActionStatus::parse(status),
        Some(ActionStatus::Succeeded | ActionStatus::Failed | ActionStatus::Skipped)
    )
}

pub fn wants_hours(actions: &[AutomationAction], from: usize) -> bool {
    actions.iter().skip(from).any(|a| {
        matches!(
            a,
            AutomationAction::Wait {
                business_hours: Some(_),
                ..
            } | AutomationAction::CreateTask {
                due_in: Some(
                    Delay { days: Some(_), .. }
                        | Delay {
                            business_hours: Some(_),
                            ..
                        }
                ),
                ..
            }
        )
    })
}

/// Handler of `automations.action`.
pub async fn run(state: AppState, job: JobCtx) -> Result<(), JobError> {
    let tenant_id = job
        .tenant_id
        .ok_or_else(|| JobError::permanent("automations.action sem tenant_id"))?;
    let p: Payload = serde_json::from_value(job.payload.clone())
        .map_err(|e| JobError::permanent(format!("payload inválido: {e}")))?;
    let Some(r) = run::Entity::find_by_id((tenant_id, p.run_id))
        .one(&state.db)
        .await?
    else {
        return Err(JobError::permanent("execução de automação não encontrada"));
    };
    let Some(row) = run_action::Entity::find_by_id((tenant_id, r.id, p.position as i32))
        .one(&state.db)
        .await?
    else {
        return Err(JobError::permanent("ação da execução não encontrada"));
    };
    if is_terminal(&row.status) || r.status != "running" {
        // Already done by an earlier delivery of this job.
        return Ok(());
    }
    let current = automation::Entity::find_by_id((tenant_id, r.automation_id))
        .one(&state.db)
        .await?
        .filter(|a| a.deleted_at.is_none() && a.active && a.version == r.automation_version);
    let Some(current) = current else {
        // Every action not done yet is closed, from the first: the waits that led here are
        // still `queued` (they are closed when the action after them runs), and a closed run
        // leaves nothing queued or pending.
        let tx = state.begin().await?;
        skip_rest(
            &*tx,
            &r,
            0,
            "Cancelada: a automação foi alterada, desativada ou excluída durante a execução.",
        )
        .await?;
        finalize(&*tx, &r, Some(RunStatus::Cancelled)).await?;
        tx.commit().await?;
        return Ok(());
    };
    let auto = Parsed::new(current);
    let Some(action) = auto.actions.get(p.position).cloned() else {
        return Err(JobError::permanent("ação inexistente na definição"));
    };
    let ctx = actor_ctx(&state, tenant_id, &[auto.model.created_by]).await;
    let hours = match &ctx {
        Ok(c) if wants_hours(&auto.actions, p.position) => {
            business_hours::load(&state.db, tenant_id, &c.tenant.settings.timezone).await?
        }
        _ => Hours::default_in(chrono_tz::America::Sao_Paulo),
    };
    let step = Step {
        run: &r,
        actions: &auto.actions,
        stop_on_error: auto.model.stop_on_error,
        hours: &hours,
        position: p.position,
        attempt: job.attempt,
    };
    let outcome = match ctx {
        Err(e) => Err(Failure::from(e)),
        Ok(ctx) => {
            let cause = cause_of(&r, p.position);
            let env = Env {
                state: &state,
                ctx,
                auto: &auto,
                step: &step,
            };
            events::CAUSE.scope(cause, env.execute(&action)).await
        }
    };
    match outcome {
        Ok(Outcome::Recorded) => Ok(()),
        Ok(Outcome::Done(v)) => {
            let tx = state.begin().await?;
            record(&*tx, &step, Ok(v)).await?;
            tx.commit().await?;
            Ok(())
        }
        Err(f) if f.retry && !job.is_last_attempt() => {
            let tx = state.begin().await?;
            run_action::Entity::update_many()
                .col_expr(run_action::Column::Attempts, Expr::value(job.attempt))
                .col_expr(
                    run_action::Column::Error,
                    Expr::value(clip(&f.message, 2000)),
                )
                .filter(run_action::Column::TenantId.eq(tenant_id))
                .filter(run_action::Column::RunId.eq(r.id))
                .filter(run_action::Column::Position.eq(p.position as i32))
                .exec(&*tx)
                .await?;
            tx.commit().await?;
            Err(JobError::Retry(f.message))
        }
        Err(f) => {
            let tx = state.begin().await?;
            record(&*tx, &step, Err(f.message)).await?;
            tx.commit().await?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(check_url("https://hooks.exemplo.com.br/crm", false).is_ok());
        assert!(
            check_url("http://203.0.113.9/x", false).is_err(),
            "documentation range"
        );
        assert!(check_url("ftp://exemplo.com/", false).is_err());
        assert!(check_url("https://user:pw@exemplo.com/", false).is_err());
        assert!(check_url("http://10.0.0.5/hook", true).is_err());
        assert!(check_url("http://192.168.1.1/", true).is_err());
        assert!(check_url("http://169.254.169.254/latest/meta-data", true).is_err());
        assert!(check_url("http://[::1]:8080/", false).is_err());
        assert!(check_url("http://[::1]:8080/", true).is_ok());
        assert!(check_url("http://127.0.0.1:9/", false).is_err());
        assert!(check_url("http://127.0.0.1:9/", true).is_ok());
        assert!(check_url("http://localhost/", false).is_err());
        assert!(check_url("http://[::ffff:10.1.2.3]/", true).is_err());
        assert!(check_url("http://100.64.0.1/", true).is_err());
        assert!(check_url("http://[fd00::1]/", true).is_err());
        assert!(ip_allowed(
            "8.8.8.8".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            false
        ));
    }

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn v7_floor_orders_before_ids_of_that_millisecond() {
        let now = Utc::now();
        let id = Uuid::now_v7();
        assert!(v7_floor(now - chrono::Duration::milliseconds(5)) < id);
        assert!(v7_floor(now + chrono::Duration::seconds(5)) > id);
    }
}
