//! Task rules: who sees and changes which task, links to leads (same tenant, visible), completion
//! (once), reschedules (kept and counted), and the events, timeline entries and audit of each change.

use chrono::{DateTime, Utc};
use jtcrm_types::dto::Role;
use jtcrm_types::dto::tasks::{
    CompleteTaskRequest, Reschedule, RescheduleRequest, Task, TaskInput, TaskPriority, TaskStatus,
    TaskSummary, TaskType,
};
use jtcrm_types::{ErrorCode, FieldError};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder,
};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use uuid::Uuid;

use super::model::{reschedule, task};
use super::{agenda, no_date_sort, to_dto};
use crate::domains::leads;
use crate::domains::users;
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::events;
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Authorized, Staff};
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store;
use jtcrm_kernel::timeline::{self, kinds};

mod lifecycle;
mod list;

pub use lifecycle::*;
pub use list::*;

fn sees_all(ctx: &TenantCtx) -> bool {
    matches!(ctx.role, Role::Admin | Role::Manager | Role::Viewer)
}

fn manages(ctx: &TenantCtx) -> bool {
    matches!(ctx.role, Role::Admin | Role::Manager)
}

/// A task of the tenant the caller may see; otherwise `404`.
async fn find_visible<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    id: Uuid,
) -> AppResult<task::Model> {
    let t = task::Entity::find_by_id((ctx.tenant_id, id))
        .filter(task::Column::DeletedAt.is_null())
        .one(conn)
        .await?
        .ok_or_else(AppError::not_found)?;
    if !sees_all(ctx) && t.assignee_id != ctx.user_id {
        return Err(AppError::not_found());
    }
    Ok(t)
}

/// The caller may act on the task (complete, reschedule, edit): its assignee, or a manager. The
/// route admits [`Staff`] only.
fn can_act(ctx: &Authorized<Staff>, t: &task::Model) -> AppResult<()> {
    if manages(ctx) || t.assignee_id == ctx.user_id {
        Ok(())
    } else {
        Err(AppError::forbidden())
    }
}

/// A lead of the tenant the caller can see, else `422 lead_id` (never a link across tenants).
async fn check_lead<C: ConnectionTrait>(conn: &C, ctx: &TenantCtx, id: Uuid) -> AppResult<()> {
    leads::service::find_visible(conn, ctx, id, false)
        .await
        .map(|_| ())
        .map_err(|_| AppError::field("lead_id", "unknown_lead", "Lead inexistente"))
}

async fn check_assignee<C: ConnectionTrait>(conn: &C, ctx: &TenantCtx, id: Uuid) -> AppResult<()> {
    if users::is_active_user(conn, ctx.tenant_id, id).await? {
        Ok(())
    } else {
        Err(AppError::field(
            "assignee_id",
            "unknown_user",
            "Usuário inexistente ou inativo",
        ))
    }
}

async fn check_opportunity<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    id: Uuid,
) -> AppResult<Option<Uuid>> {
    crate::domains::pipelines::opportunities::find_visible(conn, ctx, id, false)
        .await
        .map(|o| o.lead_id)
        .map_err(|_| {
            AppError::field(
                "opportunity_id",
                "unknown_opportunity",
                "Oportunidade inexistente",
            )
        })
}

struct Draft {
    title: String,
    description: Option<String>,
    task_type: TaskType,
    priority: TaskPriority,
    due_at: Option<DateTime<Utc>>,
    remind_at: Option<DateTime<Utc>>,
    assignee_id: Uuid,
    lead_id: Option<Uuid>,
    opportunity_id: Option<Uuid>,
}

fn validate(
    v: &mut Validator,
    input: &TaskInput,
    cur: Option<&task::Model>,
    patch: bool,
    me: Uuid,
) -> Option<Draft> {
    let title = match (&input.title, cur) {
        (None, Some(c)) if patch => Some(c.title.clone()),
        (t, _) => v.required_text("title", t.as_deref(), 200),
    };
    let description = match (&input.description, cur) {
        (None, Some(c)) if patch => c.description.clone(),
        (None, _) | (Some(None), _) => None,
        (Some(Some(d)), _) => v.optional_text("description", Some(d), 20_000),
    };
    let task_type = match (&input.task_type, cur) {
        (None, Some(c)) if patch => TaskType::parse(&c.task_type).unwrap_or(TaskType::Other),
        (None, _) => TaskType::FollowUp,
        (Some(t), _) => TaskType::parse(t).unwrap_or_else(|| {
            v.add(
                "type",
                "invalid_type",
                "Tipo inválido: call, email, meeting, whatsapp, visit, follow_up ou other",
            );
            TaskType::Other
        }),
    };
    let priority = match (&input.priority, cur) {
        (None, Some(c)) if patch => {
            TaskPriority::parse(&c.priority).unwrap_or(TaskPriority::Normal)
        }
        (None, _) => TaskPriority::Normal,
        (Some(p), _) => TaskPriority::parse(p).unwrap_or_else(|| {
            v.add(
                "priority",
                "invalid_priority",
                "Prioridade inválida: low, normal, high ou urgent",
            );
            TaskPriority::Normal
        }),
    };
    let keep = |x: &Option<Option<DateTime<Utc>>>, c: Option<DateTime<Utc>>| match x {
        None if patch => c,
        None => None,
        Some(v) => *v,
    };
    let due_at = keep(&input.due_at, cur.and_then(|c| c.due_at));
    let remind_at = keep(&input.remind_at, cur.and_then(|c| c.remind_at));
    if let (Some(r), Some(d)) = (remind_at, due_at)
        && r > d
    {
        v.add(
            "remind_at",
            "after_due",
            "O lembrete deve ser antes do vencimento",
        );
    }
    let keep_id = |x: &Option<Option<Uuid>>, c: Option<Uuid>| match x {
        None if patch => c,
        None => None,
        Some(v) => *v,
    };
    let lead_id = keep_id(&input.lead_id, cur.and_then(|c| c.lead_id));
    let opportunity_id = keep_id(&input.opportunity_id, cur.and_then(|c| c.opportunity_id));
    let assignee_id = input
        .assignee_id
        .or(cur.map(|c| c.assignee_id))
        .unwrap_or(me);
    Some(Draft {
        title: title?,
        description,
        task_type,
        priority,
        due_at,
        remind_at,
        assignee_id,
        lead_id,
        opportunity_id,
    })
}

fn short(s: &str) -> String {
    let t: String = s.chars().take(120).collect();
    if t.len() < s.len() {
        format!("{t}…")
    } else {
        t
    }
}

/// The timeline entry of a change to task `t` (none for a task of no lead or opportunity).
fn timeline_entry<'a>(
    ctx: &TenantCtx,
    t: &task::Model,
    kind: &'a str,
    summary: String,
) -> Option<timeline::NewEntry<'a>> {
    if t.lead_id.is_none() && t.opportunity_id.is_none() {
        return None;
    }
    Some(timeline::NewEntry {
        tenant_id: ctx.tenant_id,
        lead_id: t.lead_id,
        opportunity_id: t.opportunity_id,
        kind,
        actor_id: Some(ctx.user_id),
        summary,
        data: json!({"task_id": t.id, "type": t.task_type, "title": t.title, "due_at": t.due_at, "outcome": t.outcome}),
        reference: None,
    })
}

async fn entry<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    t: &task::Model,
    kind: &str,
    summary: String,
) -> AppResult<()> {
    if let Some(e) = timeline_entry(ctx, t, kind, summary) {
        timeline::record(conn, e).await?;
    }
    Ok(())
}

async fn emit<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    t: &task::Model,
    kind: &str,
    data: serde_json::Value,
) -> AppResult<()> {
    events::emit(
        conn,
        events::Event {
            tenant_id: ctx.tenant_id,
            event_type: kind,
            entity_type: "task",
            entity_id: t.id,
            actor_id: Some(ctx.user_id),
            data,
        },
    )
    .await?;
    Ok(())
}

pub async fn create(
    state: &AppState,
    ctx: &Authorized<Staff>,
    input: TaskInput,
) -> AppResult<Task> {
    let mut v = Validator::new();
    let d = validate(&mut v, &input, None, false, ctx.user_id);
    v.finish()?;
    let Some(d) = d else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    if d.assignee_id != ctx.user_id && !manages(ctx) {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "Apenas gestores criam tarefas para outros usuários.",
        ));
    }
    let txn = state.begin().await?;
    check_assignee(&*txn, ctx, d.assignee_id).await?;
    let mut lead_id = d.lead_id;
    if let Some(l) = d.lead_id {
        check_lead(&*txn, ctx, l).await?;
    }
    if let Some(o) = d.opportunity_id {
        let opp_lead = check_opportunity(&*txn, ctx, o).await?;
        lead_id = lead_id.or(opp_lead);
    }
    let m = write_created(
        &*txn,
        ctx,
        vec![(new_row(ctx, d, lead_id, Utc::now()), Default::default())],
    )
    .await?
    .remove(0);
    txn.commit().await?;
    Ok(to_dto(m))
}

fn new_row(
    ctx: &TenantCtx,
    d: Draft,
    lead_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> task::ActiveModel {
    task::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(Uuid::now_v7()),
        title: Set(d.title),
        description: Set(d.description),
        task_type: Set(d.task_type.as_str().into()),
        priority: Set(d.priority.as_str().into()),
        priority_rank: Set(d.priority.rank()),
        due_at: Set(d.due_at),
        due_sort: Set(d.due_at.unwrap_or_else(no_date_sort)),
        remind_at: Set(d.remind_at),
        assignee_id: Set(d.assignee_id),
        lead_id: Set(lead_id),
        opportunity_id: Set(d.opportunity_id),
        status: Set(TaskStatus::Pending.as_str().into()),
        completed_at: Set(None),
        completed_by: Set(None),
        outcome: Set(None),
        reschedule_count: Set(0),
        overdue_emitted_at: Set(None),
        reminded_at: Set(None),
        created_by: Set(Some(ctx.user_id)),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        version: Set(1),
    }
}

/// Creates many tasks for leads inside the caller's transaction, writing what [`create`] writes
/// for each — the task, its `task.created` event, timeline entry and audit entry — in multi-row
/// INSERTs (the automation engine's batched `create_task`). Each item carries the `events::CAUSE`
/// keys its event and audit entry get. Every input is validated as `create` validates it, and
/// its assignee must be an active user of the tenant and its lead a live lead the actor sees:
/// the first item that fails answers the error and nothing is written.
pub async fn create_many_in<C: ConnectionTrait>(
    conn: &C,
    ctx: &Authorized<Staff>,
    items: Vec<(TaskInput, serde_json::Map<String, serde_json::Value>)>,
) -> AppResult<Vec<task::Model>> {
    let mut drafts = Vec::with_capacity(items.len());
    for (input, cause) in items {
        let mut v = Validator::new();
        let d = validate(&mut v, &input, None, false, ctx.user_id);
        v.finish()?;
        let d = d.ok_or_else(|| AppError::bad_request("Dados inválidos."))?;
        if d.opportunity_id.is_some() || d.lead_id.is_none() {
            return Err(AppError::bad_request(
                "Criação em lote aceita apenas tarefas de leads.",
            ));
        }
        if d.assignee_id != ctx.user_id && !manages(ctx) {
            return Err(AppError::new(
                ErrorCode::Forbidden,
                "Apenas gestores criam tarefas para outros usuários.",
            ));
        }
        drafts.push((d, cause));
    }
    let mut users: Vec<Uuid> = drafts.iter().map(|(d, _)| d.assignee_id).collect();
    users.sort();
    users.dedup();
    let active = users::active_users_among(conn, ctx.tenant_id, &users).await?;
    if users.iter().any(|u| !active.contains(u)) {
        return Err(AppError::field(
            "assignee_id",
            "unknown_user",
            "Usuário inexistente ou inativo",
        ));
    }
    let mut lead_ids: Vec<Uuid> = drafts.iter().filter_map(|(d, _)| d.lead_id).collect();
    lead_ids.sort();
    lead_ids.dedup();
    let visible = leads::service::visible_ids(conn, ctx, &lead_ids).await?;
    if lead_ids.iter().any(|l| !visible.contains(l)) {
        return Err(AppError::field(
            "lead_id",
            "unknown_lead",
            "Lead inexistente",
        ));
    }
    let now = Utc::now();
    let rows = drafts
        .into_iter()
        .map(|(d, cause)| {
            let lead_id = d.lead_id;
            (new_row(ctx, d, lead_id, now), cause)
        })
        .collect();
    write_created(conn, ctx, rows).await
}

/// Inserts new task rows with what each creation writes: the `task.created` event, the timeline
/// entry and the audit entry, in multi-row INSERTs. A non-empty cause (automation markers) is
/// added to the event's data and the audit entry; an empty one leaves both to `events::CAUSE`.
async fn write_created<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    rows: Vec<(
        task::ActiveModel,
        serde_json::Map<String, serde_json::Value>,
    )>,
) -> AppResult<Vec<task::Model>> {
    let (rows, causes): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
    let models: Vec<task::Model> = rows
        .iter()
        .map(|am| sea_orm::TryIntoModel::try_into_model(am.clone()))
        .collect::<Result<_, sea_orm::DbErr>>()?;
    jtcrm_kernel::db::insert_all(conn, rows).await?;
    let mut evs = Vec::with_capacity(models.len());
    let mut entries = Vec::with_capacity(models.len());
    let mut audits = Vec::with_capacity(models.len());
    for (m, cause) in models.iter().zip(causes) {
        let snapshot = serde_json::to_value(to_dto(m.clone())).unwrap_or_default();
        let mut changes = audit::diff(&json!({}), &snapshot);
        let mut data = json!({"after": snapshot});
        if !cause.is_empty()
            && let (Some(d), Some(c)) = (data.as_object_mut(), changes.as_object_mut())
        {
            for (k, v) in &cause {
                d.entry(k.clone()).or_insert_with(|| v.clone());
            }
            c.insert("automation".into(), serde_json::Value::Object(cause));
        }
        evs.push(events::Event {
            tenant_id: ctx.tenant_id,
            event_type: "task.created",
            entity_type: "task",
            entity_id: m.id,
            actor_id: Some(ctx.user_id),
            data,
        });
        entries.extend(timeline_entry(
            ctx,
            m,
            kinds::TASK_CREATED,
            format!("Tarefa criada: {}", short(&m.title)),
        ));
        audits.push(audit::Entry::tenant(ctx, "create", "task", m.id, changes));
    }
    events::emit_many(conn, evs).await?;
    timeline::record_many(conn, entries).await?;
    audit::record_many(conn, audits).await?;
    Ok(models)
}

pub async fn get(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<Task> {
    let t = find_visible(&state.db, ctx, id).await?;
    let hist = reschedule::Entity::find()
        .filter(reschedule::Column::TenantId.eq(ctx.tenant_id))
        .filter(reschedule::Column::TaskId.eq(id))
        .order_by_asc(reschedule::Column::Id)
        .all(&state.db)
        .await?;
    let mut dto = to_dto(t);
    dto.reschedules = Some(
        hist.into_iter()
            .map(|r| Reschedule {
                from: r.from_due_at,
                to: r.to_due_at,
                reason: r.reason,
                by: r.by_user,
                at: r.created_at,
            })
            .collect(),
    );
    Ok(dto)
}

pub async fn update(
    state: &AppState,
    ctx: &Authorized<Staff>,
    id: Uuid,
    if_match: Option<i32>,
    input: TaskInput,
    patch: bool,
) -> AppResult<Task> {
    let txn = state.begin().await?;
    let cur = find_visible(&*txn, ctx, id).await?;
    can_act(ctx, &cur)?;
    if if_match.is_some_and(|v| v != cur.version) {
        return Err(AppError::stale_version());
    }
    let mut v = Validator::new();
    let d = validate(&mut v, &input, Some(&cur), patch, ctx.user_id);
    v.finish()?;
    let Some(d) = d else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    if d.assignee_id != cur.assignee_id {
        if !manages(ctx) {
            return Err(AppError::new(
                ErrorCode::Forbidden,
                "Apenas gestores reatribuem tarefas.",
            ));
        }
        check_assignee(&*txn, ctx, d.assignee_id).await?;
    }
    if d.lead_id != cur.lead_id
        && let Some(l) = d.lead_id
    {
        check_lead(&*txn, ctx, l).await?;
    }
    if d.opportunity_id != cur.opportunity_id
        && let Some(o) = d.opportunity_id
    {
        check_opportunity(&*txn, ctx, o).await?;
    }
    let before = serde_json::to_value(to_dto(cur.clone())).unwrap_or_default();
    let version = cur.version;
    let mut m = cur.into_active_model();
    m.title = Set(d.title);
    m.description = Set(d.description);
    m.task_type = Set(d.task_type.as_str().into());
    m.priority = Set(d.priority.as_str().into());
    m.priority_rank = Set(d.priority.rank());
    m.due_at = Set(d.due_at);
    m.due_sort = Set(d.due_at.unwrap_or_else(no_date_sort));
    m.remind_at = Set(d.remind_at);
    m.reminded_at = Set(None);
    m.overdue_emitted_at = Set(None);
    m.assignee_id = Set(d.assignee_id);
    m.lead_id = Set(d.lead_id);
    m.opportunity_id = Set(d.opportunity_id);
    m.updated_at = Set(Utc::now());
    m.version = Set(version + 1);
    let updated = crate::domains::optimistic_update::<task::Entity, _>(
        &*txn,
        m,
        task::Column::Version,
        version,
    )
    .await?;
    let dto = to_dto(updated);
    let after = serde_json::to_value(&dto).unwrap_or_default();
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "update", "task", id, audit::diff(&before, &after)),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

pub async fn delete(state: &AppState, ctx: &Authorized<Staff>, id: Uuid) -> AppResult<()> {
    let txn = state.begin().await?;
    let cur = find_visible(&*txn, ctx, id).await?;
    can_act(ctx, &cur)?;
    store::soft_delete::<task::Entity>(txn, ctx, "task", cur, |_| {}).await
}
