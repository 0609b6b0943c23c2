//! Tasks and activities: the seller's agenda (due filters in the tenant's timezone), completion,
//! reschedules with history, reopen, notes on leads, and the events and timeline entries they write.

pub mod agenda;
pub mod digest;
#[cfg(feature = "internals")]
pub mod model;
#[cfg(not(feature = "internals"))]
mod model;
pub mod overdue;
mod queries;
pub mod reminders;
pub mod routes;
pub mod service;
pub mod stats;

use chrono::{DateTime, TimeZone, Utc};
use jtcrm_types::dto::tasks::{Task, TaskPriority, TaskStatus, TaskType};

use self::model::task;
pub use self::queries::{find, find_live_across};

/// `due_sort` of undated tasks: after every real date.
pub fn no_date_sort() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

pub fn to_dto(m: task::Model) -> Task {
    let status = TaskStatus::parse(&m.status).unwrap_or(TaskStatus::Pending);
    Task {
        overdue: status == TaskStatus::Pending && m.due_at.is_some_and(|d| d < Utc::now()),
        id: m.id,
        title: m.title,
        description: m.description,
        task_type: TaskType::parse(&m.task_type).unwrap_or(TaskType::Other),
        priority: TaskPriority::parse(&m.priority).unwrap_or(TaskPriority::Normal),
        due_at: m.due_at,
        remind_at: m.remind_at,
        assignee_id: m.assignee_id,
        lead_id: m.lead_id,
        opportunity_id: m.opportunity_id,
        status,
        completed_at: m.completed_at,
        completed_by: m.completed_by,
        outcome: m.outcome,
        reschedule_count: m.reschedule_count,
        created_by: m.created_by,
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
        reschedules: None,
    }
}

/// Registers the tasks domain's jobs: the per-minute overdue scan.
pub fn register(r: &mut jtcrm_kernel::jobs::Registry) {
    r.periodic(overdue::SCHEDULE, overdue::run);
    r.periodic(reminders::SCHEDULE, reminders::run);
    r.periodic(digest::PLAN_SCHEDULE, digest::run_plan);
    r.register(digest::KIND, digest::run);
}
