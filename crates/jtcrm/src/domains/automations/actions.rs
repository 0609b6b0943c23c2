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
use crate::domains::leads::model::lead;
use crate::domains::leads::{self, assignment, scoring};
use crate::domains::pipelines::model::{opportunity, stage};
use crate::domains::pipelines::{self, board::Anchor, opportunities::Transition};
use crate::domains::tasks;
use crate::domains::tasks::model::task;
use crate::domains::tenants::model::tenant;
use crate::domains::users::{self, user};
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::events::{self, model as event};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Sellers, Staff};
use jtcrm_kernel::jobs::{JobCtx, JobError};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store::WriteMode;

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

// ---------- the subject of a run ----------

/// What a run acts on: the entity, the lead behind it, and the placeholder context.
pub struct Subject {
    pub lead: Option<lead::Model>,
    pub opportunity: Option<opportunity::Model>,
    pub entity: Value,
    pub template: Value,
}

async fn user_json<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Option<Uuid>,
) -> AppResult<Value> {
    let Some(id) = id else {
        return Ok(Value::Null);
    };
    Ok(user::Entity::find_by_id((tenant_id, id))
        .one(conn)
        .await?
        .map(|u| json!({"id": u.id, "name": u.name, "email": u.email, "phone": u.phone}))
        .unwrap_or(Value::Null))
}

/// Loads the entity a run acts on and builds the placeholder context (`lead`, `task`,
/// `opportunity`, `automation` = `source`, the automation or cadence, and with `people` also
/// `owner` and `company`, which cost a query each).
pub async fn load_subject<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    source: (Uuid, &str),
    entity_type: &str,
    entity_id: Uuid,
    people: bool,
) -> AppResult<Subject> {
    let mut lead_id = None;
    let mut opportunity = None;
    let mut template = Map::new();
    let entity = match entity_type {
        "lead" => {
            lead_id = Some(entity_id);
            Value::Null
        }
        "task" => match task::Entity::find_by_id((tenant_id, entity_id))
            .one(conn)
            .await?
        {
            Some(t) => {
                lead_id = t.lead_id;
                let v = serde_json::to_value(tasks::to_dto(t)).unwrap_or_default();
                template.insert("task".into(), v.clone());
                v
            }
            None => Value::Null,
        },
        "opportunity" => match opportunity::Entity::find_by_id((tenant_id, entity_id))
            .one(conn)
            .await?
        {
            Some(o) => {
                lead_id = o.lead_id;
                let v = serde_json::to_value(pipelines::opportunity_dto(o.clone(), None))
                    .unwrap_or_default();
                template.insert("opportunity".into(), v.clone());
                opportunity = Some(o);
                v
            }
            None => Value::Null,
        },
        _ => Value::Null,
    };
    let lead = match lead_id {
        Some(id) => lead::Entity::find_by_id((tenant_id, id))
            .one(conn)
            .await?
            .filter(|l| l.deleted_at.is_none()),
        None => None,
    };
    let entity = if entity_type == "lead" {
        lead.clone()
            .map(|l| serde_json::to_value(leads::to_dto(l)).unwrap_or_default())
            .unwrap_or(Value::Null)
    } else {
        entity
    };
    if let Some(l) = &lead {
        template.insert(
            "lead".into(),
            serde_json::to_value(leads::to_dto(l.clone())).unwrap_or_default(),
        );
        if people {
            template.insert(
                "owner".into(),
                user_json(conn, tenant_id, l.owner_id).await?,
            );
        }
    }
    if people {
        let company = tenant::Entity::find_by_id(tenant_id)
            .one(conn)
            .await?
            .map(|t| json!({"name": t.name}))
            .unwrap_or(Value::Null);
        template.insert("company".into(), company);
    }
    template.insert(
        "automation".into(),
        json!({"id": source.0, "name": source.1}),
    );
    Ok(Subject {
        lead,
        opportunity,
        entity,
        template: Value::Object(template),
    })
}

/// The task a `create_task` action makes for lead `lead_id` (`None` for another action): title
/// and description rendered from `template` (an empty title becomes "Tarefa da automação …"),
/// due `due_in` from now.
pub fn task_input(
    action: &AutomationAction,
    template: &Value,
    hours: &Hours,
    automation_name: &str,
    assignee_id: Uuid,
    lead_id: Uuid,
) -> Option<TaskInput> {
    let AutomationAction::CreateTask {
        task_type,
        title,
        description,
        priority,
        due_in,
        ..
    } = action
    else {
        return None;
    };
    let mut t = clip(render(title.as_deref().unwrap_or(""), template).trim(), 200);
    if t.is_empty() {
        t = clip(&format!("Tarefa da automação {automation_name}"), 200);
    }
    let due_at = due_in.as_ref().map(|d| due_after(hours, Utc::now(), d));
    Some(TaskInput {
        title: Some(t),
        description: Some(
            description
                .as_deref()
                .map(|d| clip(&render(d, template), 20_000))
                .filter(|d| !d.trim().is_empty()),
        ),
        task_type: task_type.clone(),
        priority: priority.clone(),
        due_at: Some(due_at),
        remind_at: None,
        assignee_id: Some(assignee_id),
        lead_id: Some(Some(lead_id)),
        opportunity_id: None,
    })
}

/// The `events::CAUSE` markers of the changes action `position` of run `r` makes: they name the
/// automation in events and audit entries and carry the depth that stops loops.
pub fn cause_of(r: &run::Model, position: usize) -> Map<String, Value> {
    let mut cause = Map::new();
    cause.insert("automation_id".into(), json!(r.automation_id));
    cause.insert("automation_run_id".into(), json!(r.id));
    cause.insert("automation_action".into(), json!(position));
    cause.insert("automation_depth".into(), json!(r.depth));
    cause
}

/// The placeholder context of a run on lead `l` without people (`lead` and `automation`), as
/// [`load_subject`] builds it.
pub fn lead_template(l: &lead::Model, source: (Uuid, &str)) -> Value {
    json!({
        "lead": serde_json::to_value(leads::to_dto(l.clone())).unwrap_or_default(),
        "automation": {"id": source.0, "name": source.1},
    })
}

/// When something `delay` after `now` is due: `days` and `business_hours` land inside business
/// hours, `hours` and `minutes` are plain elapsed time.
pub fn due_after(hours: &Hours, now: DateTime<Utc>, d: &Delay) -> DateTime<Utc> {
    let t = hours.after(now, d);
    if d.days.is_some() || d.business_hours.is_some() {
        hours.next_open(t)
    } else {
        t
    }
}

/// The newest open opportunity of a lead.
async fn open_opportunity_of<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    lead_id: Uuid,
) -> AppResult<Option<opportunity::Model>> {
    Ok(opportunity::Entity::find()
        .filter(opportunity::Column::TenantId.eq(tenant_id))
        .filter(opportunity::Column::LeadId.eq(lead_id))
        .filter(opportunity::Column::Status.eq("open"))
        .filter(opportunity::Column::DeletedAt.is_null())
        .order_by_desc(opportunity::Column::UpdatedAt)
        .one(conn)
        .await?)
}

/// The id of the entity of a `event_type` event that carries `marker_key = marker` and
/// `position_key = position` in its data, emitted after `since` (how a retried action finds what
/// its crashed attempt already committed).
pub async fn find_marked_event<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    event_type: &str,
    since: DateTime<Utc>,
    marker: (&str, Uuid),
    position: (&str, i64),
) -> AppResult<Option<Uuid>> {
    let rows = event::Entity::find()
        .filter(event::Column::TenantId.eq(tenant_id))
        .filter(event::Column::Id.gte(v7_floor(since)))
        .filter(event::Column::EventType.eq(event_type))
        .order_by_asc(event::Column::Id)
        .limit(5000)
        .all(conn)
        .await?;
    let want = marker.1.to_string();
    Ok(rows
        .into_iter()
        .find(|e| {
            e.data.get(marker.0).and_then(Value::as_str) == Some(want.as_str())
                && e.data.get(position.0).and_then(Value::as_i64) == Some(position.1)
        })
        .map(|e| e.entity_id))
}

/// The smallest UUID v7 of the millisecond of `t`.
fn v7_floor(t: DateTime<Utc>) -> Uuid {
    let ms = (t.timestamp_millis().max(0) as u64).to_be_bytes();
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms[2..8]);
    b[6] = 0x70;
    b[8] = 0x80;
    Uuid::from_bytes(b)
}

// ---------- execution ----------

/// Whether the action's texts name the owner or the company.
pub fn uses_people(a: &AutomationAction) -> bool {
    match a {
        AutomationAction::CreateTask {
            title, description, ..
        } => super::templates::mentions_people(&[title.as_deref(), description.as_deref()]),
        AutomationAction::SendEmail { subject, body, .. } => {
            super::templates::mentions_people(&[subject.as_deref(), body.as_deref()])
        }
        _ => false,
    }
}

struct Env<'a> {
    state: &'a AppState,
    ctx: TenantCtx,
    auto: &'a Parsed,
    step: &'a Step<'a>,
}

impl Env<'_> {
    fn tenant(&self) -> Uuid {
        self.ctx.tenant_id
    }

    async fn execute(&self, action: &AutomationAction) -> Result<Outcome, Failure> {
        let r = self.step.run;
        let s = load_subject(
            &self.state.db,
            self.tenant(),
            (self.auto.model.id, &self.auto.model.name),
            &r.entity_type,
            r.entity_id,
            uses_people(action),
        )
        .await?;
        let need_lead = || {
            s.lead.clone().ok_or_else(|| {
                Failure::fatal("Esta ação precisa de um lead, e o registro não tem lead (ou ele foi excluído).")
            })
        };
        match action {
            AutomationAction::CreateTask {
                assignee, user_id, ..
            } => {
                let l = need_lead()?;
                if self.step.attempt > 1
                    && let Some(id) = find_marked_event(
                        &self.state.db,
                        self.tenant(),
                        "task.created",
                        r.created_at,
                        ("automation_run_id", r.id),
                        ("automation_action", self.step.position as i64),
                    )
                    .await?
                {
                    return Ok(Outcome::Done(json!({"task_id": id, "recovered": true})));
                }
                let assignee_id = self
                    .assignee(assignee.unwrap_or(AssigneeMode::Owner), *user_id, &l)
                    .await?;
                let input = task_input(
                    action,
                    &s.template,
                    self.step.hours,
                    &self.auto.model.name,
                    assignee_id,
                    l.id,
                )
                .ok_or_else(|| Failure::fatal("Ação não é create_task."))?;
                let due_at = input.due_at.flatten();
                let task =
                    tasks::service::create(self.state, &self.ctx.grant::<Staff>()?, input).await?;
                Ok(Outcome::Done(
                    json!({"task_id": task.id, "assignee_id": assignee_id, "due_at": due_at}),
                ))
            }
            AutomationAction::SendEmail {
                to,
                address,
                subject,
                body,
            } => {
                let l = need_lead()?;
                let (to_addr, user_id) = match to.unwrap_or(EmailTo::Lead) {
                    EmailTo::Lead => (
                        l.email
                            .clone()
                            .ok_or_else(|| Failure::fatal("O lead não tem e-mail."))?,
                        None,
                    ),
                    EmailTo::Owner => {
                        let owner = l
                            .owner_id
                            .ok_or_else(|| Failure::fatal("O lead não tem responsável."))?;
                        let u = user::Entity::find_by_id((self.tenant(), owner))
                            .one(&self.state.db)
                            .await?
                            .ok_or_else(|| Failure::fatal("Responsável do lead não encontrado."))?;
                        (u.email, Some(owner))
                    }
                    EmailTo::Address => (
                        address
                            .clone()
                            .ok_or_else(|| Failure::fatal("Endereço não configurado."))?,
                        None,
                    ),
                };
                let mut subj = clip(
                    render(subject.as_deref().unwrap_or(""), &s.template).trim(),
                    300,
                );
                if subj.is_empty() {
                    subj = clip(&self.auto.model.name, 300);
                }
                let text = render(body.as_deref().unwrap_or(""), &s.template);
                let tx = self.state.begin().await?;
                let email_id = crate::domains::email::queue(
                    &*tx,
                    &self.state.settings,
                    crate::domains::email::NewEmail {
                        tenant_id: self.tenant(),
                        to: to_addr.clone(),
                        subject: subj,
                        body_text: text,
                        lead_id: Some(l.id),
                        user_id,
                        kind: "automation",
                        idempotency_key: Some(format!("auto:{}:{}", r.id, self.step.position)),
                        actor_id: None,
                    },
                )
                .await?;
                record(
                    &*tx,
                    self.step,
                    Ok(json!({"email_id": email_id, "to": to_addr})),
                )
                .await?;
                tx.commit().await?;
                Ok(Outcome::Recorded)
            }
            AutomationAction::AssignOwner { assignee, user_id } => {
                let l = need_lead()?;
                let target = self
                    .assignee(assignee.unwrap_or(AssigneeMode::RoundRobin), *user_id, &l)
                    .await?;
                if l.owner_id == Some(target) {
                    return Ok(Outcome::Done(
                        json!({"owner_id": target, "unchanged": true}),
                    ));
                }
                leads::service::assign(self.state, &self.ctx, l.id, Some(target)).await?;
                Ok(Outcome::Done(
                    json!({"owner_id": target, "previous_owner_id": l.owner_id}),
                ))
            }
            AutomationAction::UpdateField {
                status,
                add_tags,
                remove_tags,
                custom_fields,
            } => {
                let l = need_lead()?;
                let mut input = LeadInput::default();
                if let Some(st) = status {
                    input.status = Some(Some(st.clone()));
                }
                if add_tags.is_some() || remove_tags.is_some() {
                    let mut tags: Vec<String> =
                        serde_json::from_value(l.tags.clone()).unwrap_or_default();
                    for t in add_tags.iter().flatten() {
                        if !tags.contains(t) {
                            tags.push(t.clone());
                        }
                    }
                    if let Some(rm) = remove_tags {
                        tags.retain(|t| !rm.contains(t));
                    }
                    input.tags = Some(Some(tags));
                }
                if let Some(cf) = custom_fields {
                    input.custom_fields = Some(Some(cf.clone()));
                }
                let updated = leads::service::update(
                    self.state,
                    &self.ctx.grant::<Staff>()?,
                    l.id,
                    None,
                    input,
                    WriteMode::Patch,
                    true,
                )
                .await?;
                Ok(Outcome::Done(json!({
                    "status": updated.status, "tags": updated.tags, "custom_fields": updated.custom_fields
                })))
            }
            AutomationAction::AdjustScore { points } => {
                let l = need_lead()?;
                let points = points.unwrap_or(0);
                let tx = self.state.begin().await?;
                let before = lead::Entity::find_by_id((self.tenant(), l.id))
                    .one(&*tx)
                    .await?
                    .map_or(l.score, |m| m.score);
                let scorer = leads::service::load_scorer(&*tx, &self.ctx).await?;
                let after =
                    scoring::add_signal_points(&*tx, self.tenant(), l.id, points, &scorer).await?;
                if after != before {
                    let data = json!({"before": {"score": before}, "after": {"score": after}});
                    leads::service::emit(&*tx, &self.ctx, "lead.score_changed", l.id, data).await?;
                }
                audit::record(
                    &*tx,
                    audit::Entry {
                        tenant_id: Some(self.tenant()),
                        actor_id: Some(self.ctx.user_id),
                        action: "adjust_score",
                        entity_type: "lead",
                        entity_id: l.id.to_string(),
                        changes: json!({"score": {"from": before, "to": after}, "signal_points": points}),
                        meta: &self.ctx.meta,
                    },
                )
                .await?;
                record(
                    &*tx,
                    self.step,
                    Ok(json!({"points": points, "score": after})),
                )
                .await?;
                tx.commit().await?;
                Ok(Outcome::Recorded)
            }
            AutomationAction::MoveStage { stage_id } => {
                let stage_id = stage_id.ok_or_else(|| Failure::fatal("Etapa não configurada."))?;
                let opp = match &s.opportunity {
                    Some(o) => o.clone(),
                    None => {
                        let l = need_lead()?;
                        open_opportunity_of(&self.state.db, self.tenant(), l.id)
                            .await?
                            .ok_or_else(|| Failure::fatal("O lead não tem oportunidade aberta."))?
                    }
                };
                if opp.stage_id == stage_id {
                    return Ok(Outcome::Done(
                        json!({"opportunity_id": opp.id, "stage_id": stage_id, "unchanged": true}),
                    ));
                }
                let moved = pipelines::opportunities::transition(
                    self.state,
                    &self.ctx.grant::<Sellers>()?,
                    opp.id,
                    Transition::Move {
                        stage_id: Some(stage_id),
                        anchor: Anchor::Top,
                        lost_reason: Some(format!("Automação: {}", self.auto.model.name)),
                    },
                )
                .await?;
                Ok(Outcome::Done(json!({
                    "opportunity_id": opp.id, "stage_id": moved.stage_id, "status": moved.status
                })))
            }
            AutomationAction::EnrollInCadence { cadence_id } => {
                let l = need_lead()?;
                let cadence_id =
                    cadence_id.ok_or_else(|| Failure::fatal("Cadência não configurada."))?;
                let tx = self.state.begin().await?;
                let res =
                    cadences::enroll_one(&*tx, self.state, &self.ctx, cadence_id, l.id, r.depth)
                        .await?;
                let result = match res {
                    Some(e) => json!({"cadence_id": cadence_id, "enrollment_id": e}),
                    None => json!({"cadence_id": cadence_id, "already_enrolled": true}),
                };
                record(&*tx, self.step, Ok(result)).await?;
                tx.commit().await?;
                Ok(Outcome::Recorded)
            }
            AutomationAction::Webhook { url, secret } => {
                let url = url
                    .as_deref()
                    .ok_or_else(|| Failure::fatal("URL não configurada."))?;
                let secret = secret
                    .as_deref()
                    .ok_or_else(|| Failure::fatal("Segredo não configurado."))?;
                let secret = self
                    .state
                    .secrets
                    .open(secret)
                    .map_err(|e| Failure::fatal(e.detail))?;
                let secret = secret.as_str();
                let ev = match r.event_id {
                    Some(id) => event::Entity::find_by_id((self.tenant(), id))
                        .one(&self.state.db)
                        .await?
                        .map(|e| {
                            json!({"id": e.id, "type": e.event_type, "entity_type": e.entity_type,
                                   "entity_id": e.entity_id, "actor_id": e.actor_id, "data": e.data,
                                   "created_at": e.created_at})
                        }),
                    None => None,
                };
                let delivery = format!("{}:{}", r.id, self.step.position);
                let body = json!({
                    "delivery_id": delivery,
                    "automation": {"id": self.auto.model.id, "name": self.auto.model.name},
                    "run_id": r.id,
                    "event": ev,
                    "entity_type": r.entity_type,
                    "entity_id": r.entity_id,
                    "entity": s.entity,
                    "lead": s.template.get("lead").cloned().unwrap_or(Value::Null),
                    "sent_at": Utc::now(),
                });
                let bytes = serde_json::to_vec(&body)
                    .map_err(|e| Failure::fatal(format!("corpo inválido: {e}")))?;
                let status = send_webhook(
                    url,
                    secret,
                    &delivery,
                    r.event_type.as_deref().unwrap_or("manual"),
                    bytes,
                    self.state.settings.webhook_allow_loopback,
                )
                .await?;
                Ok(Outcome::Done(json!({"status": status})))
            }
            AutomationAction::Wait { .. } => Ok(Outcome::Done(json!({}))),
        }
    }

    /// The user a task or lead goes to.
    async fn assignee(
        &self,
        mode: AssigneeMode,
        user_id: Option<Uuid>,
        l: &lead::Model,
    ) -> Result<Uuid, Failure> {
        match mode {
            AssigneeMode::Owner => Ok(l.owner_id.unwrap_or(self.ctx.user_id)),
            AssigneeMode::User => {
                let u = user_id.ok_or_else(|| Failure::fatal("Usuário não configurado."))?;
                if users::is_active_user(&self.state.db, self.tenant(), u).await? {
                    Ok(u)
                } else {
                    Err(Failure::fatal(
                        "O usuário configurado está inativo ou foi excluído.",
                    ))
                }
            }
            AssigneeMode::RoundRobin => {
                let tx = self.state.begin().await?;
                let next = assignment::round_robin(&*tx, self.tenant()).await?;
                tx.commit().await?;
                next.ok_or_else(|| Failure::fatal("Nenhum vendedor ativo para o rodízio."))
            }
        }
    }
}

// ---------- webhooks ----------

fn ipv4_allowed(ip: std::net::Ipv4Addr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xC0) == 64)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] & 0xFE) == 18)
        || o[0] >= 240)
}

/// Public addresses only; loopback when the deployment allows it (tests, development).
pub fn ip_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => ipv4_allowed(v4, allow_loopback),
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                return allow_loopback;
            }
            if let Some(v4) = v6.to_ipv4_mapped() {
                return ipv4_allowed(v4, allow_loopback);
            }
            let s = v6.segments();
            !(v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xFE00) == 0xFC00
                || (s[0] & 0xFFC0) == 0xFE80
                || (s[0] == 0x2001 && s[1] == 0x0DB8)
                || (s[0] == 0x0064 && s[1] == 0xFF9B))
        }
    }
}

/// The address of a URL host written as an IP (`[::1]` included).
fn host_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Checks a webhook URL: `http`/`https`, no credentials, and no private, link-local or (unless
/// allowed) loopback host. Names are resolved and checked again at send time.
pub fn check_url(raw: &str, allow_loopback: bool) -> Result<reqwest::Url, &'static str> {
    if raw.len() > 2000 {
        return Err("URL longa demais (máximo 2000 caracteres)");
    }
    let url = reqwest::Url::parse(raw).map_err(|_| "URL inválida")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("Use uma URL http ou https");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("Não inclua usuário e senha na URL");
    }
    let host = url.host_str().ok_or("URL sem host")?;
    match host_ip(host) {
        Some(ip) if !ip_allowed(ip, allow_loopback) => {
            return Err("Endereços privados ou locais não são permitidos");
        }
        Some(_) => {}
        None => {
            let d = host.trim_end_matches('.').to_ascii_lowercase();
            if !allow_loopback && (d == "localhost" || d.ends_with(".localhost")) {
                return Err("Endereços privados ou locais não são permitidos");
            }
        }
    }
    Ok(url)
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC accepts keys of any length; this branch cannot happen.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs `body` to `raw_url`, signed, with timeouts and no redirects, to the addresses checked
/// here (pinned, so a DNS answer cannot change between the check and the connection).
async fn send_webhook(
    raw_url: &str,
    secret: &str,
    delivery: &str,
    event_type: &str,
    body: Vec<u8>,
    allow_loopback: bool,
) -> Result<u16, Failure> {
    let url = check_url(raw_url, allow_loopback).map_err(Failure::fatal)?;
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(WEBHOOK_TIMEOUT)
        .connect_timeout(WEBHOOK_CONNECT_TIMEOUT)
        .no_proxy()
        .user_agent(concat!("jtcrm-webhooks/", env!("CARGO_PKG_VERSION")));
    if let Some(host) = url.host_str().filter(|h| host_ip(h).is_none()) {
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| Failure::transient(format!("não foi possível resolver {host}: {e}")))?
            .collect();
        if addrs.is_empty() {
            return Err(Failure::transient(format!("{host} não tem endereço")));
        }
        if addrs.iter().any(|a| !ip_allowed(a.ip(), allow_loopback)) {
            return Err(Failure::fatal(
                "O destino do webhook resolve para um endereço privado ou local.",
            ));
        }
        builder = builder.resolve_to_addrs(host, &addrs);
    }
    let client = builder
        .build()
        .map_err(|e| Failure::transient(format!("cliente HTTP: {e}")))?;
    let sig = signature(secret, &body);
    let res = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Jtcrm-Signature", sig)
        .header("X-Jtcrm-Delivery", delivery)
        .header("X-Jtcrm-Event", event_type)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            let what = if e.is_timeout() {
                "tempo esgotado"
            } else if e.is_connect() {
                "falha de conexão"
            } else {
                "falha na requisição"
            };
            Failure::transient(format!("webhook: {what}"))
        })?;
    let status = res.status().as_u16();
    match status {
        200..=299 => Ok(status),
        408 | 425 | 429 | 500..=599 => Err(Failure::transient(format!(
            "o destino respondeu HTTP {status}"
        ))),
        _ => Err(Failure::fatal(format!("o destino respondeu HTTP {status}"))),
    }
}

// ---------- dry run ----------

async fn user_name<C: ConnectionTrait>(conn: &C, tenant_id: Uuid, id: Uuid) -> AppResult<String> {
    Ok(user::Entity::find_by_id((tenant_id, id))
        .one(conn)
        .await?
        .map(|u| u.name)
        .unwrap_or_else(|| id.to_string()))
}

/// What each action would do on `entity_id`, without doing it (no writes, not even the
/// round-robin counter).
pub async fn preview(
    state: &AppState,
    p: &Parsed,
    entity_type: &str,
    entity_id: Uuid,
    hours: &Hours,
) -> AppResult<Vec<ActionPreview>> {
    let db = &state.db;
    let t = p.model.tenant_id;
    let s = load_subject(
        db,
        t,
        (p.model.id, &p.model.name),
        entity_type,
        entity_id,
        true,
    )
    .await?;
    let ctx = actor_ctx(state, t, &[p.model.created_by]).await?;
    let lead = s.lead.as_ref();
    let no_lead = "Falharia: o registro não tem lead.".to_string();
    let mut at = Utc::now();
    let mut out = vec![];
    for (i, a) in p.actions.iter().enumerate() {
        let (summary, details) = match a {
            AutomationAction::CreateTask {
                task_type,
                title,
                priority,
                due_in,
                assignee,
                user_id,
                ..
            } => {
                let title = clip(
                    render(title.as_deref().unwrap_or(""), &s.template).trim(),
                    200,
                );
                let due = due_in.as_ref().map(|d| due_after(hours, at, d));
                let who = match (assignee.unwrap_or(AssigneeMode::Owner), lead) {
                    (AssigneeMode::Owner, Some(l)) => Some(l.owner_id.unwrap_or(ctx.user_id)),
                    (AssigneeMode::User, _) => *user_id,
                    _ => None,
                };
                let who_name = match (assignee.unwrap_or(AssigneeMode::Owner), who) {
                    (AssigneeMode::RoundRobin, _) => "o próximo vendedor do rodízio".to_string(),
                    (_, Some(u)) => user_name(db, t, u).await?,
                    (_, None) => "—".to_string(),
                };
                let summary = if lead.is_none() {
                    no_lead.clone()
                } else {
                    format!("Criar a tarefa \"{title}\" para {who_name}")
                };
                (
                    summary,
                    json!({"title": title, "task_type": task_type, "priority": priority,
                           "due_at": due, "assignee_id": who, "lead_id": lead.map(|l| l.id)}),
                )
            }
            AutomationAction::SendEmail {
                to,
                address,
                subject,
                body,
            } => {
                let recipient = match (to.unwrap_or(EmailTo::Lead), lead) {
                    (EmailTo::Lead, Some(l)) => l.email.clone(),
                    (EmailTo::Owner, _) => s
                        .template
                        .pointer("/owner/email")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    (EmailTo::Address, _) => address.clone(),
                    _ => None,
                };
                let subject = render(subject.as_deref().unwrap_or(""), &s.template);
                let summary = match &recipient {
                    Some(r) => format!("Enviar o e-mail \"{subject}\" para {r}"),
                    None => "Falharia: não há destinatário (sem e-mail ou sem responsável).".into(),
                };
                (
                    summary,
                    json!({"to": recipient, "subject": subject,
                           "body": render(body.as_deref().unwrap_or(""), &s.template)}),
                )
            }
            AutomationAction::AssignOwner { assignee, user_id } => match assignee {
                Some(AssigneeMode::User) => {
                    let name = match user_id {
                        Some(u) => user_name(db, t, *u).await?,
                        None => "—".into(),
                    };
                    (
                        format!("Atribuir o lead a {name}"),
                        json!({"owner_id": user_id}),
                    )
                }
                _ => (
                    "Atribuir o lead ao próximo vendedor do rodízio".into(),
                    json!({"round_robin": true}),
                ),
            },
            AutomationAction::UpdateField {
                status,
                add_tags,
                remove_tags,
                custom_fields,
            } => {
                let mut parts = vec![];
                if let Some(st) = status {
                    parts.push(format!("status → {}", leads::service::status_pt(st)));
                }
                if let Some(a) = add_tags.as_ref().filter(|a| !a.is_empty()) {
                    parts.push(format!("adicionar tags {}", a.join(", ")));
                }
                if let Some(r) = remove_tags.as_ref().filter(|r| !r.is_empty()) {
                    parts.push(format!("remover tags {}", r.join(", ")));
                }
                if let Some(cf) = custom_fields {
                    let keys: Vec<&str> = cf.keys().map(String::as_str).collect();
                    parts.push(format!("campos {}", keys.join(", ")));
                }
                (
                    format!("Alterar o lead: {}", parts.join("; ")),
                    json!({"status": status, "add_tags": add_tags, "remove_tags": remove_tags,
                           "custom_fields": custom_fields}),
                )
            }
            AutomationAction::AdjustScore { points } => {
                let n = points.unwrap_or(0);
                let summary = if n >= 0 {
                    format!("Somar {n} pontos ao score do lead")
                } else {
                    format!("Subtrair {} pontos do score do lead", -n)
                };
                (
                    summary,
                    json!({"points": n, "score": lead.map(|l| l.score)}),
                )
            }
            AutomationAction::MoveStage { stage_id } => {
                let name = match stage_id {
                    Some(sid) => stage::Entity::find_by_id((t, *sid))
                        .one(db)
                        .await?
                        .map(|st| st.name),
                    None => None,
                };
                let opp = match (&s.opportunity, lead) {
                    (Some(o), _) => Some(o.id),
                    (None, Some(l)) => open_opportunity_of(db, t, l.id).await?.map(|o| o.id),
                    _ => None,
                };
                let summary = match opp {
                    Some(_) => format!(
                        "Mover a oportunidade para a etapa {}",
                        name.as_deref().unwrap_or("—")
                    ),
                    None => "Falharia: não há oportunidade aberta.".into(),
                };
                (
                    summary,
                    json!({"opportunity_id": opp, "stage_id": stage_id}),
                )
            }
            AutomationAction::EnrollInCadence { cadence_id } => {
                let name = match cadence_id {
                    Some(c) => super::model::cadence::Entity::find_by_id((t, *c))
                        .one(db)
                        .await?
                        .map(|c| c.name),
                    None => None,
                };
                (
                    format!(
                        "Inscrever o lead na cadência {}",
                        name.as_deref().unwrap_or("—")
                    ),
                    json!({"cadence_id": cadence_id}),
                )
            }
            AutomationAction::Webhook { url, .. } => (
                format!(
                    "Enviar POST assinado para {}",
                    url.as_deref().unwrap_or("—")
                ),
                json!({"url": url}),
            ),
            AutomationAction::Wait {
                minutes,
                hours: h,
                days,
                business_hours: bh,
            } => {
                let d = Delay {
                    minutes: *minutes,
                    hours: *h,
                    days: *days,
                    business_hours: *bh,
                };
                at = hours.after(at, &d);
                (
                    format!(
                        "Aguardar até {}",
                        at.with_timezone(&hours.tz).format("%d/%m/%Y %H:%M")
                    ),
                    json!({"until": at}),
                )
            }
        };
        if lead.is_none()
            && !matches!(
                a,
                AutomationAction::Wait { .. }
                    | AutomationAction::Webhook { .. }
                    | AutomationAction::MoveStage { .. }
            )
        {
            out.push(ActionPreview {
                position: i as i32,
                action_type: a.action_type(),
                summary: no_lead.clone(),
                details,
            });
            continue;
        }
        out.push(ActionPreview {
            position: i as i32,
            action_type: a.action_type(),
            summary,
            details,
        });
    }
    Ok(out)
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
