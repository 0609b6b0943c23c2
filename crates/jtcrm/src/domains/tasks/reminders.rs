//! `tasks.remind_scan`: every minute, emails each pending task's assignee when its `remind_at`
//! passes. "Exactly once" rests on two guards: the conditional update of `reminded_at` (only the
//! scan that flips it from NULL queues the email, in the same transaction) and the email's
//! idempotency key `reminder:{task_id}:{remind_at}` (a task edited after its reminder fired gets
//! `reminded_at` cleared by the tasks module, but the same reminder time never emails twice; a new
//! `remind_at` is a new reminder).
//!
//! Reminders are internal: the email carries the recipient user (`user_id`), not the lead, so it
//! does not show in the customer's timeline. Tasks of suspended or cancelled companies and tasks
//! of inactive users are marked reminded without an email.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use jtcrm_types::dto::tasks::{TaskPriority, TaskType};
use jtcrm_types::dto::users::User;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::agenda;
use super::model::task;
use crate::domains::email::{NewEmail, queue};
use crate::domains::{leads, users};
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::jobs::{JobCtx, JobError, Next, Periodic};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::tenancy::TenantSnapshot;

pub const KIND: &str = "tasks.remind_scan";
/// Every minute.
pub const SCHEDULE: Periodic = Periodic::every(KIND, 60);
pub const EMAIL_KIND: &str = "reminder";
const BATCH: u64 = 200;
const MAX_BATCHES: usize = 50;

pub(crate) fn type_pt(t: &str) -> &'static str {
    match TaskType::parse(t) {
        Some(TaskType::Call) => "Ligação",
        Some(TaskType::Email) => "E-mail",
        Some(TaskType::Meeting) => "Reunião",
        Some(TaskType::Whatsapp) => "WhatsApp",
        Some(TaskType::Visit) => "Visita",
        Some(TaskType::FollowUp) => "Follow-up",
        Some(TaskType::Other) | None => "Outra",
    }
}

pub(crate) fn priority_pt(p: &str) -> &'static str {
    match TaskPriority::parse(p) {
        Some(TaskPriority::Urgent) => "urgente",
        Some(TaskPriority::High) => "alta",
        Some(TaskPriority::Normal) | None => "normal",
        Some(TaskPriority::Low) => "baixa",
    }
}

/// `30/11/2026 14:00` in the company's timezone.
pub(crate) fn local(tz: Tz, at: DateTime<Utc>) -> String {
    at.with_timezone(&tz).format("%d/%m/%Y %H:%M").to_string()
}

pub(crate) fn first_name(name: &str) -> &str {
    name.split_whitespace().next().unwrap_or(name)
}

fn reminder_text(
    t: &task::Model,
    assignee: &User,
    lead_name: Option<&str>,
    tz: Tz,
) -> (String, String) {
    let title: String = t.title.chars().take(250).collect();
    let subject = format!("Lembrete: {title}");
    let mut body = format!(
        "Olá, {}!\n\nEste é o lembrete da sua tarefa \"{}\".\n\n",
        first_name(&assignee.name),
        t.title
    );
    body.push_str(&format!("Tipo: {}\n", type_pt(&t.task_type)));
    body.push_str(&format!("Prioridade: {}\n", priority_pt(&t.priority)));
    match t.due_at {
        Some(d) => body.push_str(&format!("Vencimento: {} ({})\n", local(tz, d), tz.name())),
        None => body.push_str("Vencimento: sem data\n"),
    }
    if let Some(l) = lead_name {
        body.push_str(&format!("Lead: {l}\n"));
    }
    if let Some(d) = t.description.as_deref().filter(|d| !d.trim().is_empty()) {
        let d: String = d.chars().take(2000).collect();
        body.push_str(&format!("\nDescrição:\n{d}\n"));
    }
    body.push_str("\nBom trabalho!\n— jtcrm\n");
    (subject, body)
}

/// Queues the reminder emails that are due now; returns how many tasks were marked reminded.
pub async fn scan(state: &AppState) -> AppResult<u64> {
    let mut marked = 0;
    let mut tenants: HashMap<Uuid, Option<TenantSnapshot>> = HashMap::new();
    for _ in 0..MAX_BATCHES {
        let now = Utc::now();
        let due: Vec<task::Model> = task::Entity::find()
            .filter(task::Column::Status.eq("pending"))
            .filter(task::Column::RemindedAt.is_null())
            .filter(task::Column::RemindAt.lte(now))
            .filter(task::Column::DeletedAt.is_null())
            .order_by_asc(task::Column::RemindAt)
            .limit(BATCH)
            .all(&state.db)
            .await?;
        if due.is_empty() {
            break;
        }
        let n = due.len() as u64;
        // Everything the emails need, in three queries per batch (ids are UUIDv7, unique
        // platform-wide; the tenant is re-checked on each match).
        let user_ids: HashSet<Uuid> = due.iter().map(|t| t.assignee_id).collect();
        let users: HashMap<Uuid, User> = users::service::active_among(&state.db, None, user_ids)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let lead_ids: HashSet<Uuid> = due.iter().filter_map(|t| t.lead_id).collect();
        let leads = leads::names_of(&state.db, lead_ids).await?;
        for t in &due {
            if let Entry::Vacant(slot) = tenants.entry(t.tenant_id) {
                slot.insert(state.tenants.get(&state.db, t.tenant_id).await?);
            }
        }

        let tx = state.begin().await?;
        for t in &due {
            let Some(remind_at) = t.remind_at else {
                continue;
            };
            let claimed = task::Entity::update_many()
                .col_expr(task::Column::RemindedAt, Expr::value(now))
                .filter(task::Column::TenantId.eq(t.tenant_id))
                .filter(task::Column::Id.eq(t.id))
                .filter(task::Column::RemindedAt.is_null())
                .filter(task::Column::Status.eq("pending"))
                .filter(task::Column::RemindAt.eq(remind_at))
                .exec(&*tx)
                .await?
                .rows_affected;
            if claimed != 1 {
                continue;
            }
            marked += 1;
            let snap = tenants.get(&t.tenant_id).and_then(Option::as_ref);
            let Some(snap) = snap.filter(|s| s.status.is_usable()) else {
                continue;
            };
            let Some(assignee) = users
                .get(&t.assignee_id)
                .filter(|u| u.tenant_id == t.tenant_id)
            else {
                continue;
            };
            let lead_name = t
                .lead_id
                .and_then(|l| leads.get(&l))
                .filter(|(tenant, _)| *tenant == t.tenant_id)
                .map(|(_, name)| name.as_str());
            let tz = agenda::tz_of(&snap.settings.timezone);
            let (subject, body_text) = reminder_text(t, assignee, lead_name, tz);
            let queued = queue(
                &*tx,
                &state.settings,
                NewEmail {
                    tenant_id: t.tenant_id,
                    to: assignee.email.clone(),
                    subject,
                    body_text,
                    lead_id: None,
                    user_id: Some(assignee.id),
                    kind: EMAIL_KIND,
                    idempotency_key: Some(format!("reminder:{}:{}", t.id, remind_at.timestamp())),
                    actor_id: None,
                },
            )
            .await;
            match queued {
                Ok(_) => {}
                // Refused before any write (e.g. an address SMTP cannot use): skip this one
                // rather than block every reminder behind it.
                Err(e) if e.status().is_client_error() => {
                    tracing::warn!(task_id = %t.id, error = %e, "lembrete não enviado");
                }
                Err(e) => return Err(e),
            }
        }
        tx.commit().await?;
        if n < BATCH {
            break;
        }
    }
    Ok(marked)
}

pub async fn run(state: AppState, _ctx: JobCtx) -> Result<Next, JobError> {
    let n = scan(&state).await?;
    if n > 0 {
        tracing::info!(reminders = n, "lembretes de tarefas enviados");
    }
    Ok(Next::NextSlot)
}
