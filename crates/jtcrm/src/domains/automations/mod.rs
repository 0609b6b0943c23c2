//! Automations: when a domain event happens (a lead qualified, a task overdue, a deal won…) and the
//! conditions hold, run ordered actions as jobs and keep a run log; also cadences and business hours.
//! Definitions and their API live here; dispatch in `engine`, actions in `actions`. See docs/automations.md.

pub mod actions;
pub mod batch;
pub mod business_hours;
pub mod cadences;
pub mod conditions;
pub mod engine;
#[cfg(feature = "internals")]
pub mod model;
#[cfg(not(feature = "internals"))]
mod model;
pub mod routes;
pub mod stats;
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
use crate::domains::users;
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::{RequestMeta, TenantCtx};
use jtcrm_kernel::http::guard::{Authorized, Managers};
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::quota::{self, Resource};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store;

mod crud;
mod run_log;
mod validation;

pub use crud::*;
pub use run_log::*;
pub use validation::*;

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
    // Proposal events are about the proposal's opportunity (entity), with the proposal in `data`.
    ("proposal.sent", "opportunity"),
    ("proposal.viewed", "opportunity"),
    ("proposal.accepted", "opportunity"),
    ("proposal.rejected", "opportunity"),
    // Contract events, likewise about the contract's opportunity.
    ("contract.sent", "opportunity"),
    ("contract.signed", "opportunity"),
    ("contract.activated", "opportunity"),
    ("contract.cancelled", "opportunity"),
    // Call events are about the call's lead (entity), with the call in `data`.
    ("call.answered", "lead"),
    ("call.missed", "lead"),
    ("call.ended", "lead"),
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
            let admin = users::service::active_with_role(&state.db, tenant_id, Role::Admin)
                .await?
                .first()
                .copied()
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
    // A role this build does not know acts with the least rights (`role_of` reads it as viewer).
    let Some((role, active)) = users::service::role_of(&state.db, tenant_id, user_id).await? else {
        return Ok(None);
    };
    if active {
        ACTIVE_ACTORS.insert((tenant_id, user_id), (Instant::now(), role));
    }
    Ok(Some((role, active)))
}
