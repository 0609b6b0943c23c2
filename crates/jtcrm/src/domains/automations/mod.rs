//! Automations: when a domain event happens (a lead qualified, a task overdue, a deal won…) and the
//! conditions hold, run ordered actions as jobs and keep a run log; also cadences and business hours.
//! Definitions and their API live here; dispatch in `engine`, actions in `actions`. See docs/automations.md.

pub mod actions;
pub mod batch;
pub mod business_hours;
pub mod cadences;
pub mod conditions;
pub mod engine;
pub mod model;
pub mod routes;
pub mod templates;

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use chrono::Utc;
use dashmap::DashMap;
use jtcrm_types::dto::automations::{
    ActionResult, ActionStatus, ActionType, AssigneeMode, Automation, AutomationAction,
    AutomationInput, AutomationRun, Condition, EmailTo, RunStatus, Trigger,
};
use jtcrm_types::dto::leads::LeadStatus;
use jtcrm_types::dto::tasks::{TaskPriority, TaskType};
use jtcrm_types::dto::{Page, Role};
use jtcrm_types::{ErrorCode, FieldError};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder,
};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use uuid::Uuid;

use self::model::{automation, cadence, run, run_action};
use crate::domains::leads::{self, fields};
use crate::domains::tenants::limits::{self, Resource};
use crate::domains::users::{self, user};
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::{RequestMeta, TenantCtx};
use jtcrm_kernel::http::guard::{Authorized, Managers};
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store;

/// Events caused by an automation at this depth trigger no further automation (loop guard).
pub const MAX_DEPTH: i32 = 3;
pub const MAX_ACTIONS: usize = 20;
pub const MAX_FILTERS: usize = 20;
const MAX_TEMPLATE: usize = 20_000;

/// Events an automation can be triggered by, with the type of their entity.
pub const TRIGGER_EVENTS: &[(&str, &str)] = &[
    ("lead.created", "lead"),
    ("lead.updated", "lead"),
    ("lead.status_changed", "lead"),
    ("lead.assigned", "lead"),
    ("lead.score_changed", "lead"),
    ("lead.converted", "lead"),
    ("task.created", "task"),
    ("task.completed", "task"),
    ("task.rescheduled", "task"),
    ("task.overdue", "task"),
    ("opportunity.created", "opportunity"),
    ("opportunity.updated", "opportunity"),
    ("opportunity.stage_changed", "opportunity"),
    ("opportunity.won", "opportunity"),
    ("opportunity.lost", "opportunity"),
];

pub fn entity_type_of(event: &str) -> Option<&'static str> {
    TRIGGER_EVENTS
        .iter()
        .find(|(e, _)| *e == event)
        .map(|(_, t)| *t)
}

/// A stored automation with its JSON columns parsed.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub model: automation::Model,
    pub trigger: Trigger,
    pub conditions: Option<Condition>,
    pub actions: Vec<AutomationAction>,
}

impl Parsed {
    pub fn new(model: automation::Model) -> Self {
        Self {
            trigger: serde_json::from_value(model.trigger.clone()).unwrap_or_default(),
            conditions: model
                .conditions
                .clone()
                .and_then(|c| serde_json::from_value(c).ok()),
            actions: serde_json::from_value(model.actions.clone()).unwrap_or_default(),
            model,
        }
    }
}

pub fn to_dto(m: automation::Model) -> Automation {
    let p = Parsed::new(m);
    let mut actions = p.actions;
    for a in &mut actions {
        if let AutomationAction::Webhook { secret, .. } = a {
            *secret = None;
        }
    }
    let m = p.model;
    Automation {
        id: m.id,
        name: m.name,
        description: m.description,
        active: m.active,
        trigger: p.trigger,
        conditions: p.conditions,
        actions,
        stop_on_error: m.stop_on_error,
        created_by: m.created_by,
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
    }
}

/// Actors confirmed active recently: one query less per action. A user deactivated meanwhile may
/// still be the actor for [`ACTOR_TTL`].
static ACTIVE_ACTORS: LazyLock<DashMap<(Uuid, Uuid), (Instant, Role)>> =
    LazyLock::new(DashMap::new);
const ACTOR_TTL: Duration = Duration::from_secs(10);

fn recently_active(tenant_id: Uuid, user_id: Uuid) -> Option<Role> {
    ACTIVE_ACTORS
        .get(&(tenant_id, user_id))
        .filter(|e| e.0.elapsed() < ACTOR_TTL)
        .map(|e| e.1)
}

/// The context an automation (or a cadence) acts in, with **the permissions of its author**: the
/// first active user of `preferred` (the automation's author; for a cadence step the user who
/// enrolled the lead, then the cadence's author), with that user's real role, so the actions see
/// and change only what that user could (a seller's cadence step cannot touch another seller's
/// lead when team visibility is off). When none of them is active any more, the company's first
/// active admin acts, but with the role the author had (never more than the author could do);
/// only an author that no longer exists at all leaves the admin's own role. Changes carry the
/// acting user and the automation marker of `events::CAUSE` in events and audit.
pub async fn actor_ctx(
    state: &AppState,
    tenant_id: Uuid,
    preferred: &[Option<Uuid>],
) -> AppResult<TenantCtx> {
    let tenant = state
        .tenants
        .get(&state.db, tenant_id)
        .await?
        .ok_or_else(AppError::not_found)?;
    if !tenant.status.is_usable() {
        return Err(jtcrm_kernel::http::extract::suspended());
    }
    let mut acting: Option<(Uuid, Role)> = None;
    let mut author_role: Option<Role> = None;
    for id in preferred.iter().flatten() {
        let Some((role, active)) = user_role(state, tenant_id, *id).await? else {
            continue;
        };
        author_role.get_or_insert(role);
        if active {
            acting = Some((*id, role));
            break;
        }
    }
    let (user_id, role) = match acting {
        Some(a) => a,
        None => {
            let admin = user::Entity::find()
                .filter(user::Column::TenantId.eq(tenant_id))
                .filter(user::Column::Role.eq(Role::Admin.as_str()))
                .filter(user::Column::Active.eq(true))
                .filter(user::Column::DeletedAt.is_null())
                .order_by_asc(user::Column::Id)
                .one(&state.db)
                .await?
                .map(|u| u.id)
                .ok_or_else(|| {
                    AppError::new(
                        ErrorCode::NoActiveAdmin,
                        "A empresa não tem usuário administrador ativo para executar a automação.",
                    )
                })?;
            (admin, author_role.unwrap_or(Role::Admin))
        }
    };
    Ok(TenantCtx {
        tenant,
        tenant_id,
        user_id,
        role,
        meta: RequestMeta::default(),
    })
}

/// The role of a tenant user and whether it may act now (active, not deleted); `None` when the
/// user does not exist. Active users are cached for a few seconds (`ACTIVE_ACTORS`).
async fn user_role(
    state: &AppState,
    tenant_id: Uuid,
    user_id: Uuid,
) -> AppResult<Option<(Role, bool)>> {
    if let Some(role) = recently_active(tenant_id, user_id) {
        return Ok(Some((role, true)));
    }
    let Some(u) = user::Entity::find_by_id((tenant_id, user_id))
        .one(&state.db)
        .await?
    else {
        return Ok(None);
    };
    // A role this build does not know acts with the least rights.
    let role = Role::parse(&u.role).unwrap_or(Role::Viewer);
    let active = u.active && u.deleted_at.is_none();
    if active {
        ACTIVE_ACTORS.insert((tenant_id, user_id), (Instant::now(), role));
    }
    Ok(Some((role, active)))
}

// ---------- validation ----------

/// A validated definition, ready to store.
pub struct Definition {
    pub name: String,
    pub description: Option<String>,
    pub active: bool,
    pub trigger: Trigger,
    pub event: String,
    pub conditions: Option<Condition>,
    pub actions: Vec<AutomationAction>,
    pub stop_on_error: bool,
}

fn check_template(v: &mut Validator, field: &str, s: &str, max: usize) {
    if s.chars().count() > max {
        v.add(field, "too_long", &format!("Máximo de {max} caracteres"));
    }
    let unknown = templates::unknown_roots(s);
    if !unknown.is_empty() {
        v.add(
            field,
            "unknown_placeholder",
            &format!(
                "Marcadores desconhecidos: {}. Use lead, owner, task, opportunity, automation ou company.",
                unknown.join(", ")
            ),
        );
    }
}

fn required_template(
    v: &mut Validator,
    field: &str,
    s: &Option<String>,
    max: usize,
) -> Option<String> {
    match s.as_deref().map(str::trim) {
        None | Some("") => {
            v.add(field, "required", "Campo obrigatório");
            None
        }
        Some(t) => {
            check_template(v, field, t, max);
            Some(t.to_string())
        }
    }
}

/// Tags as leads store them: trimmed, lower-case, unique.
pub fn normalize_tags(v: &mut Validator, field: &str, list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for t in list {
        let t = t.trim().to_lowercase();
        if t.is_empty() {
            continue;
        }
        if t.chars().count() > leads::MAX_TAG_LEN {
            v.add(
                field,
                "too_long",
                "Cada tag pode ter no máximo 60 caracteres",
            );
        } else if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.len() > leads::MAX_TAGS {
        v.add(field, "too_many", "No máximo 30 tags");
    }
    out
}

/// Validates a whole definition. Ids in actions must name live records of the caller's company
/// (`422` naming the field otherwise). `existing` supplies the secrets of webhook actions whose
/// body omits them.
pub async fn validate_definition<C: ConnectionTrait>(
    conn: &C,
    state: &AppState,
    ctx: &TenantCtx,
    input: AutomationInput,
    existing: Option<&[AutomationAction]>,
) -> AppResult<Definition> {
    let mut v = Validator::new();
    let name = v.required_text("name", input.name.as_deref(), 200);
    let description = v.optional_text("description", input.description.as_deref(), 5000);
    let mut trigger = input.trigger.unwrap_or_default();
    let event = match trigger.event.as_deref().map(str::trim) {
        None | Some("") => {
            v.add("trigger.event", "required", "Campo obrigatório");
            None
        }
        Some(e) if entity_type_of(e).is_none() => {
            let known: Vec<&str> = TRIGGER_EVENTS.iter().map(|(e, _)| *e).collect();
            v.add(
                "trigger.event",
                "unknown_event",
                &format!("Evento desconhecido. Use: {}", known.join(", ")),
            );
            None
        }
        Some(e) => Some(e.to_string()),
    };
    trigger.event = event.clone();
    if let Some(filters) = &trigger.filters {
        if filters.len() > MAX_FILTERS {
            v.add(
                "trigger.filters",
                "too_many",
                &format!("No máximo {MAX_FILTERS} filtros"),
            );
        }
        for (path, val) in filters {
            let field = format!("trigger.filters.{path}");
            if !templates::is_path(path) {
                v.add(
                    &field,
                    "invalid_field",
                    "Use um caminho como after.status ou before.owner_id",
                );
            }
            let scalar = |x: &Value| !matches!(x, Value::Object(_) | Value::Array(_));
            let ok = match val {
                Value::Array(items) => !items.is_empty() && items.iter().all(scalar),
                other => scalar(other),
            };
            if !ok {
                v.add(
                    &field,
                    "invalid_value",
                    "Use um valor simples ou uma lista de valores",
                );
            }
        }
        if filters.is_empty() {
            trigger.filters = None;
        }
    }
    if let Some(c) = &input.conditions {
        conditions::validate(&mut v, c, "conditions");
    }
    let actions = input.actions.unwrap_or_default();
    if actions.is_empty() {
        v.add("actions", "required", "Informe ao menos uma ação");
    }
    if actions.len() > MAX_ACTIONS {
        v.add(
            "actions",
            "too_many",
            &format!("No máximo {MAX_ACTIONS} ações"),
        );
    }
    if matches!(actions.last(), Some(AutomationAction::Wait { .. })) {
        v.add(
            &format!("actions[{}]", actions.len() - 1),
            "invalid_value",
            "Uma espera precisa de uma ação depois dela",
        );
    }
    let mut users_to_check: Vec<(String, Uuid)> = vec![];
    let mut cadences_to_check: Vec<(String, Uuid)> = vec![];
    let mut stages_to_check: Vec<(String, Uuid)> = vec![];
    let mut custom_to_check: Vec<(String, serde_json::Map<String, Value>)> = vec![];
    let mut out = Vec::with_capacity(actions.len());
    for (i, a) in actions.into_iter().enumerate() {
        let f = |name: &str| format!("actions[{i}].{name}");
        let a = match a {
            AutomationAction::CreateTask {
                task_type,
                title,
                description,
                priority,
                due_in,
                assignee,
                user_id,
            } => {
                let title = required_template(&mut v, &f("title"), &title, 500);
                if let Some(d) = &description {
                    check_template(&mut v, &f("description"), d, MAX_TEMPLATE);
                }
                let task_type = task_type.unwrap_or_else(|| "follow_up".into());
                if TaskType::parse(&task_type).is_none() {
                    v.add(
                        &f("task_type"),
                        "invalid_type",
                        "Tipo inválido: call, email, meeting, whatsapp, visit, follow_up ou other",
                    );
                }
                if let Some(p) = &priority
                    && TaskPriority::parse(p).is_none()
                {
                    v.add(
                        &f("priority"),
                        "invalid_priority",
                        "Prioridade inválida: low, normal, high ou urgent",
                    );
                }
                if let Some(d) = &due_in {
                    business_hours::validate_delay(&mut v, &f("due_in"), d);
                }
                let assignee = assignee.unwrap_or(AssigneeMode::Owner);
                let user_id = match (assignee, user_id) {
                    (AssigneeMode::User, None) => {
                        v.add(&f("user_id"), "required", "Informe o usuário");
                        None
                    }
                    (AssigneeMode::User, Some(u)) => {
                        users_to_check.push((f("user_id"), u));
                        Some(u)
                    }
                    _ => None,
                };
                AutomationAction::CreateTask {
                    task_type: Some(task_type),
                    title,
                    description,
                    priority,
                    due_in,
                    assignee: Some(assignee),
                    user_id,
                }
            }
            AutomationAction::SendEmail {
                to,
                address,
                subject,
                body,
            } => {
                let address = match (to, address.as_deref().map(str::trim)) {
                    (None, _) => {
                        v.add(&f("to"), "required", "Use lead, owner ou address");
                        None
                    }
                    (Some(EmailTo::Address), None | Some("")) => {
                        v.add(&f("address"), "required", "Informe o e-mail");
                        None
                    }
                    (Some(EmailTo::Address), Some(a)) => match jtcrm_types::br::Email::parse(a) {
                        Ok(e) => Some(e.as_str().to_string()),
                        Err(_) => {
                            v.add(&f("address"), "invalid_email", "E-mail inválido");
                            None
                        }
                    },
                    (Some(_), _) => None,
                };
                let subject = required_template(&mut v, &f("subject"), &subject, 300);
                let body = required_template(&mut v, &f("body"), &body, MAX_TEMPLATE);
                AutomationAction::SendEmail {
                    to,
                    address,
                    subject,
                    body,
                }
            }
            AutomationAction::AssignOwner { assignee, user_id } => {
                let user_id = match (assignee, user_id) {
                    (None | Some(AssigneeMode::Owner), _) => {
                        v.add(&f("assignee"), "invalid_value", "Use user ou round_robin");
                        None
                    }
                    (Some(AssigneeMode::User), None) => {
                        v.add(&f("user_id"), "required", "Informe o usuário");
                        None
                    }
                    (Some(AssigneeMode::User), Some(u)) => {
                        users_to_check.push((f("user_id"), u));
                        Some(u)
                    }
                    (Some(AssigneeMode::RoundRobin), _) => None,
                };
                AutomationAction::AssignOwner { assignee, user_id }
            }
            AutomationAction::UpdateField {
                status,
                add_tags,
                remove_tags,
                custom_fields,
            } => {
                if status.is_none()
                    && add_tags.is_none()
                    && remove_tags.is_none()
                    && custom_fields.is_none()
                {
                    v.add(
                        &format!("actions[{i}]"),
                        "required",
                        "Informe status, add_tags, remove_tags ou custom_fields",
                    );
                }
                if let Some(s) = &status
                    && LeadStatus::parse(s).is_none()
                {
                    v.add(&f("status"), "invalid_status", "Status inválido");
                }
                let add_tags = add_tags.map(|t| normalize_tags(&mut v, &f("add_tags"), &t));
                let remove_tags =
                    remove_tags.map(|t| normalize_tags(&mut v, &f("remove_tags"), &t));
                if let Some(cf) = &custom_fields {
                    custom_to_check.push((f("custom_fields"), cf.clone()));
                }
                AutomationAction::UpdateField {
                    status,
                    add_tags,
                    remove_tags,
                    custom_fields,
                }
            }
            AutomationAction::AdjustScore { points } => {
                match points {
                    None => v.add(&f("points"), "required", "Campo obrigatório"),
                    Some(0) => v.add(
                        &f("points"),
                        "invalid_value",
                        "Use um valor diferente de zero",
                    ),
                    Some(p) if !(-100..=100).contains(&p) => v.add(
                        &f("points"),
                        "out_of_range",
                        "Use um valor entre -100 e 100",
                    ),
                    _ => {}
                }
                AutomationAction::AdjustScore { points }
            }
            AutomationAction::MoveStage { stage_id } => {
                match stage_id {
                    None => v.add(&f("stage_id"), "required", "Campo obrigatório"),
                    Some(s) => stages_to_check.push((f("stage_id"), s)),
                }
                AutomationAction::MoveStage { stage_id }
            }
            AutomationAction::EnrollInCadence { cadence_id } => {
                match cadence_id {
                    None => v.add(&f("cadence_id"), "required", "Campo obrigatório"),
                    Some(c) => cadences_to_check.push((f("cadence_id"), c)),
                }
                AutomationAction::EnrollInCadence { cadence_id }
            }
            AutomationAction::Webhook { url, secret } => {
                let url = match url.as_deref().map(str::trim) {
                    None | Some("") => {
                        v.add(&f("url"), "required", "Campo obrigatório");
                        None
                    }
                    Some(u) => {
                        if let Err(msg) =
                            actions::check_url(u, state.settings.webhook_allow_loopback)
                        {
                            v.add(&f("url"), "invalid_url", msg);
                        }
                        Some(u.to_string())
                    }
                };
                let kept = existing.and_then(|ex| {
                    ex.iter().find_map(|a| match a {
                        AutomationAction::Webhook {
                            url: Some(u),
                            secret: Some(s),
                        } if Some(u) == url.as_ref() => Some(s.clone()),
                        _ => None,
                    })
                });
                let secret = match secret {
                    Some(s) if !(16..=200).contains(&s.chars().count()) => {
                        v.add(&f("secret"), "invalid_length", "Use de 16 a 200 caracteres");
                        None
                    }
                    // Stored sealed (AES-256-GCM, `jtcrm_kernel::secrets`); opened only to sign.
                    Some(s) => Some(state.secrets.seal(&s)?),
                    None if kept.is_some() => kept,
                    None => {
                        v.add(
                            &f("secret"),
                            "required",
                            "Informe o segredo da assinatura (16 a 200 caracteres)",
                        );
                        None
                    }
                };
                AutomationAction::Webhook { url, secret }
            }
            AutomationAction::Wait {
                minutes,
                hours,
                days,
                business_hours: bh,
            } => {
                let d = jtcrm_types::dto::automations::Delay {
                    minutes,
                    hours,
                    days,
                    business_hours: bh,
                };
                business_hours::validate_delay(&mut v, &format!("actions[{i}]"), &d);
                AutomationAction::Wait {
                    minutes,
                    hours,
                    days,
                    business_hours: bh,
                }
            }
        };
        out.push(a);
    }
    // References: each must be a live record of this company.
    for (field, id) in users_to_check {
        if !users::is_active_user(conn, ctx.tenant_id, id).await? {
            v.add(&field, "unknown_user", "Usuário inexistente ou inativo");
        }
    }
    for (field, id) in cadences_to_check {
        let found = cadence::Entity::find_by_id((ctx.tenant_id, id))
            .one(conn)
            .await?
            .is_some_and(|c| c.deleted_at.is_none());
        if !found {
            v.add(&field, "unknown_cadence", "Cadência inexistente");
        }
    }
    for (field, id) in stages_to_check {
        if crate::domains::pipelines::service::find_stage(conn, ctx.tenant_id, id)
            .await
            .is_err()
        {
            v.add(&field, "unknown_stage", "Etapa inexistente");
        }
    }
    if !custom_to_check.is_empty() {
        let defs = fields::list_defs(conn, ctx.tenant_id).await?;
        for (field, map) in custom_to_check {
            for (k, val) in map {
                match defs.iter().find(|d| d.key == k) {
                    None => v.add(
                        &format!("{field}.{k}"),
                        "unknown_field",
                        "Campo personalizado não definido",
                    ),
                    Some(def) if !val.is_null() && fields::normalize_value(def, &val).is_none() => {
                        v.add(
                            &format!("{field}.{k}"),
                            "invalid_value",
                            "Valor inválido para o tipo do campo",
                        )
                    }
                    Some(_) => {}
                }
            }
        }
    }
    v.finish()?;
    let (Some(name), Some(event)) = (name, event) else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    Ok(Definition {
        name,
        description,
        active: input.active.unwrap_or(true),
        trigger,
        event,
        conditions: input.conditions,
        actions: out,
        stop_on_error: input.stop_on_error.unwrap_or(false),
    })
}

// ---------- CRUD ----------

/// A live automation of the caller's company, else `404`.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    id: Uuid,
) -> AppResult<automation::Model> {
    automation::Entity::find_by_id((ctx.tenant_id, id))
        .one(conn)
        .await?
        .filter(|a| a.deleted_at.is_none())
        .ok_or_else(AppError::not_found)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AutomationQuery {
    pub active: Option<bool>,
    /// Trigger event type, e.g. `lead.created`.
    pub event: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub include_total: Option<bool>,
}

/// Newest first.
pub async fn list(
    state: &AppState,
    ctx: &Authorized<Managers>,
    q: AutomationQuery,
) -> AppResult<Page<Automation>> {
    let limit = pagination::limit(q.limit)?;
    let mut sel = automation::Entity::find()
        .filter(automation::Column::TenantId.eq(ctx.tenant_id))
        .filter(automation::Column::DeletedAt.is_null());
    if let Some(a) = q.active {
        sel = sel.filter(automation::Column::Active.eq(a));
    }
    if let Some(e) = q.event.as_deref().filter(|e| !e.is_empty()) {
        if e.chars().count() > 60 {
            return Err(AppError::field(
                "event",
                "too_long",
                "Máximo de 60 caracteres",
            ));
        }
        sel = sel.filter(automation::Column::TriggerEvent.eq(e));
    }
    let page = Keyset::desc([automation::Column::Id])
        .paginate(&state.db, sel, q.cursor.as_deref(), limit, q.include_total)
        .await?;
    Ok(page.map(to_dto))
}

pub async fn get(state: &AppState, ctx: &Authorized<Managers>, id: Uuid) -> AppResult<Automation> {
    Ok(to_dto(find(&state.db, ctx, id).await?))
}

fn store_json<T: serde::Serialize>(v: &T) -> AppResult<Value> {
    serde_json::to_value(v).map_err(AppError::internal)
}

pub async fn create(
    state: &AppState,
    ctx: &Authorized<Managers>,
    input: AutomationInput,
) -> AppResult<Automation> {
    let txn = state.begin().await?;
    let d = validate_definition(&*txn, state, ctx, input, None).await?;
    limits::reserve(
        &*txn,
        ctx.tenant_id,
        Resource::Automations,
        1,
        ctx.tenant.limits.max_automations,
    )
    .await?;
    let now = Utc::now();
    let m = automation::Entity::insert(automation::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(Uuid::now_v7()),
        name: Set(d.name),
        description: Set(d.description),
        active: Set(d.active),
        trigger_event: Set(d.event),
        trigger: Set(store_json(&d.trigger)?),
        conditions: Set(d.conditions.as_ref().map(store_json).transpose()?),
        actions: Set(store_json(&d.actions)?),
        stop_on_error: Set(d.stop_on_error),
        created_by: Set(Some(ctx.user_id)),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        version: Set(1),
    })
    .exec_with_returning(&*txn)
    .await?;
    let dto = to_dto(m);
    let snapshot = store_json(&dto)?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create",
            "automation",
            dto.id,
            audit::diff(&json!({}), &snapshot),
        ),
    )
    .await?;
    engine::ensure_scheduled_in(&*txn).await?;
    txn.commit().await?;
    Ok(dto)
}

/// `PUT`: replaces the definition (absent optional fields take their defaults). Runs already
/// started keep going only if they do not reach an action after the change: a changed automation
/// cancels the remaining actions of its running runs.
pub async fn update(
    state: &AppState,
    ctx: &Authorized<Managers>,
    id: Uuid,
    if_match: Option<i32>,
    input: AutomationInput,
) -> AppResult<Automation> {
    let txn = state.begin().await?;
    let cur = find(&*txn, ctx, id).await?;
    if if_match.is_some_and(|v| v != cur.version) {
        return Err(AppError::stale_version());
    }
    let existing = Parsed::new(cur.clone()).actions;
    let d = validate_definition(&*txn, state, ctx, input, Some(&existing)).await?;
    let before = store_json(&to_dto(cur.clone()))?;
    let version = cur.version;
    let mut am = cur.into_active_model();
    am.name = Set(d.name);
    am.description = Set(d.description);
    am.active = Set(d.active);
    am.trigger_event = Set(d.event);
    am.trigger = Set(store_json(&d.trigger)?);
    am.conditions = Set(d.conditions.as_ref().map(store_json).transpose()?);
    am.actions = Set(store_json(&d.actions)?);
    am.stop_on_error = Set(d.stop_on_error);
    am.updated_at = Set(Utc::now());
    am.version = Set(version + 1);
    let m = crate::domains::optimistic_update::<automation::Entity, _>(
        &*txn,
        am,
        automation::Column::Version,
        version,
    )
    .await?;
    let dto = to_dto(m);
    let after = store_json(&dto)?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "update",
            "automation",
            id,
            audit::diff(&before, &after),
        ),
    )
    .await?;
    engine::ensure_scheduled_in(&*txn).await?;
    txn.commit().await?;
    Ok(dto)
}

/// Soft delete: frees the plan slot; runs in progress skip their remaining actions.
pub async fn delete(state: &AppState, ctx: &Authorized<Managers>, id: Uuid) -> AppResult<()> {
    let txn = state.begin().await?;
    let cur = find(&*txn, ctx, id).await?;
    limits::release(&*txn, ctx.tenant_id, Resource::Automations, 1).await?;
    store::soft_delete::<automation::Entity>(txn, ctx, "automation", cur, |am| {
        am.active = Set(false);
    })
    .await
}

// ---------- run log ----------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    pub status: Option<RunStatus>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

pub fn action_result(m: run_action::Model) -> ActionResult {
    ActionResult {
        position: m.position,
        action_type: ActionType::parse(&m.action_type).unwrap_or(ActionType::Wait),
        status: ActionStatus::parse(&m.status).unwrap_or(ActionStatus::Pending),
        run_at: m.run_at,
        attempts: m.attempts,
        result: m.result,
        error: m.error,
        finished_at: m.finished_at,
    }
}

pub fn run_dto(m: run::Model, actions: Vec<ActionResult>) -> AutomationRun {
    AutomationRun {
        id: m.id,
        automation_id: m.automation_id,
        source: m.source,
        event_id: m.event_id,
        event_type: m.event_type,
        entity_type: m.entity_type,
        entity_id: m.entity_id,
        depth: m.depth,
        status: RunStatus::parse(&m.status).unwrap_or(RunStatus::Running),
        actions,
        created_at: m.created_at,
        finished_at: m.finished_at,
    }
}

/// The run log of an automation (deleted ones included), newest first, each run with the status,
/// result and error of every action.
pub async fn runs(
    state: &AppState,
    ctx: &Authorized<Managers>,
    id: Uuid,
    q: RunQuery,
) -> AppResult<Page<AutomationRun>> {
    automation::Entity::find_by_id((ctx.tenant_id, id))
        .one(&state.db)
        .await?
        .ok_or_else(AppError::not_found)?;
    let limit = pagination::limit(q.limit)?;
    let mut sel = run::Entity::find()
        .filter(run::Column::TenantId.eq(ctx.tenant_id))
        .filter(run::Column::AutomationId.eq(id));
    if let Some(s) = q.status {
        sel = sel.filter(run::Column::Status.eq(s.as_str()));
    }
    let page = Keyset::desc([run::Column::Id])
        .paginate(&state.db, sel, q.cursor.as_deref(), limit, false)
        .await?;
    let ids: Vec<Uuid> = page.items.iter().map(|r| r.id).collect();
    let mut by_run: HashMap<Uuid, Vec<ActionResult>> = HashMap::new();
    if !ids.is_empty() {
        let acts = run_action::Entity::find()
            .filter(run_action::Column::TenantId.eq(ctx.tenant_id))
            .filter(run_action::Column::RunId.is_in(ids))
            .order_by_asc(run_action::Column::RunId)
            .order_by_asc(run_action::Column::Position)
            .all(&state.db)
            .await?;
        for a in acts {
            by_run.entry(a.run_id).or_default().push(action_result(a));
        }
    }
    Ok(page.map(|r| {
        let acts = by_run.remove(&r.id).unwrap_or_default();
        run_dto(r, acts)
    }))
}

/// Field errors for a JSON filter object turned into lead-list query parameters.
pub fn filter_to_query(filter: &serde_json::Map<String, Value>) -> AppResult<String> {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    let mut errors = vec![];
    for (k, v) in filter {
        if matches!(
            k.as_str(),
            "limit" | "cursor" | "sort" | "include_total" | "deleted"
        ) {
            continue;
        }
        let text = match v {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(items) => {
                let mut parts = vec![];
                for i in items {
                    match i {
                        Value::String(s) => parts.push(s.clone()),
                        Value::Number(n) => parts.push(n.to_string()),
                        _ => errors.push(FieldError::new(
                            format!("filter.{k}"),
                            "invalid_value",
                            "Use textos ou números",
                        )),
                    }
                }
                parts.join(",")
            }
            Value::Object(_) => {
                errors.push(FieldError::new(
                    format!("filter.{k}"),
                    "invalid_value",
                    "Use um valor simples ou uma lista",
                ));
                continue;
            }
        };
        ser.append_pair(k, &text);
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    Ok(ser.finish())
}

/// Renames the fields of a lead-list validation error to `filter.<param>`.
pub fn prefix_filter_errors(mut e: AppError) -> AppError {
    for fe in &mut e.errors {
        fe.field = format!("filter.{}", fe.field);
    }
    e
}

/// The distinct ids, sorted.
pub fn unique_ids(ids: &[Uuid]) -> Vec<Uuid> {
    let mut seen = BTreeMap::new();
    for id in ids {
        seen.insert(*id, ());
    }
    seen.into_keys().collect()
}

/// Registers the automation jobs: the periodic event dispatcher, actions (one by one and in
/// batches) and cadence steps.
pub fn register(r: &mut jtcrm_kernel::jobs::Registry) {
    r.periodic(engine::SCHEDULE, engine::run);
    r.register(actions::ACTION_KIND, actions::run);
    r.register(batch::BATCH_KIND, batch::run);
    r.register(cadences::STEP_KIND, cadences::run_step);
}
