//! The agenda: list with due filters in the tenant's timezone, and the per-user summary.

use super::*;

/// Agenda filter on the due date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DueFilter {
    Overdue,
    Today,
    Tomorrow,
    ThisWeek,
    NoDate,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    /// A user id or `me`.
    pub assignee_id: Option<String>,
    pub status: Option<TaskStatus>,
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub task_type: Option<TaskType>,
    pub priority: Option<TaskPriority>,
    pub lead_id: Option<Uuid>,
    pub opportunity_id: Option<Uuid>,
    /// Computed in the tenant's timezone.
    #[param(inline)]
    pub due: Option<DueFilter>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub include_total: Option<bool>,
}

/// The agenda: sorted by due date (undated last), then priority (urgent first).
pub async fn list(
    state: &AppState,
    ctx: &TenantCtx,
    q: TaskQuery,
) -> AppResult<jtcrm_types::dto::Page<Task>> {
    let limit = pagination::limit(q.limit)?;
    let mut sel = task::Entity::find()
        .filter(task::Column::TenantId.eq(ctx.tenant_id))
        .filter(task::Column::DeletedAt.is_null());
    let assignee = match q.assignee_id.as_deref() {
        None | Some("") => None,
        Some("me") => Some(ctx.user_id),
        Some(s) => Some(Uuid::parse_str(s).map_err(|_| {
            AppError::validation(vec![FieldError::new(
                "assignee_id",
                "invalid_value",
                "Use um id ou me",
            )])
        })?),
    };
    if !sees_all(ctx) {
        sel = sel.filter(task::Column::AssigneeId.eq(ctx.user_id));
    }
    if let Some(a) = assignee {
        sel = sel.filter(task::Column::AssigneeId.eq(a));
    }
    let now = Utc::now();
    let tz = agenda::tz_of(&ctx.tenant.settings.timezone);
    let r = agenda::ranges(tz, now);
    let status = match (q.status, q.due) {
        (s, Some(DueFilter::Overdue)) => Some(s.unwrap_or(TaskStatus::Pending)),
        (s, _) => s,
    };
    if let Some(s) = status {
        sel = sel.filter(task::Column::Status.eq(s.as_str()));
    }
    if let Some(t) = q.task_type {
        sel = sel.filter(task::Column::TaskType.eq(t.as_str()));
    }
    if let Some(p) = q.priority {
        sel = sel.filter(task::Column::Priority.eq(p.as_str()));
    }
    if let Some(l) = q.lead_id {
        sel = sel.filter(task::Column::LeadId.eq(l));
    }
    if let Some(o) = q.opportunity_id {
        sel = sel.filter(task::Column::OpportunityId.eq(o));
    }
    let range = match q.due {
        Some(DueFilter::Overdue) => {
            sel = sel.filter(task::Column::DueSort.lt(now));
            None
        }
        Some(DueFilter::Today) => Some(r.today),
        Some(DueFilter::Tomorrow) => Some(r.tomorrow),
        Some(DueFilter::ThisWeek) => Some(r.this_week),
        Some(DueFilter::NoDate) => {
            sel = sel.filter(task::Column::DueAt.is_null());
            None
        }
        None => None,
    };
    if let Some((from, to)) = range {
        sel = sel
            .filter(task::Column::DueSort.gte(from))
            .filter(task::Column::DueSort.lt(to));
    }
    let page = Keyset::asc([
        task::Column::DueSort,
        task::Column::PriorityRank,
        task::Column::Id,
    ])
    .paginate(&state.db, sel, q.cursor.as_deref(), limit, q.include_total)
    .await?;
    Ok(page.map(to_dto))
}

/// Counts of the caller's own agenda.
pub async fn summary(state: &AppState, ctx: &TenantCtx) -> AppResult<TaskSummary> {
    let now = Utc::now();
    let r = agenda::ranges(agenda::tz_of(&ctx.tenant.settings.timezone), now);
    let mine = || {
        task::Entity::find()
            .filter(task::Column::TenantId.eq(ctx.tenant_id))
            .filter(task::Column::AssigneeId.eq(ctx.user_id))
            .filter(task::Column::DeletedAt.is_null())
    };
    let pending = |a: DateTime<Utc>, b: DateTime<Utc>| {
        mine()
            .filter(task::Column::Status.eq("pending"))
            .filter(task::Column::DueSort.gte(a))
            .filter(task::Column::DueSort.lt(b))
    };
    let overdue = mine()
        .filter(task::Column::Status.eq("pending"))
        .filter(task::Column::DueSort.lt(now))
        .count(&state.db)
        .await?;
    let today = pending(r.today.0, r.today.1).count(&state.db).await?;
    let this_week = pending(r.this_week.0, r.this_week.1)
        .count(&state.db)
        .await?;
    let completed_today = mine()
        .filter(task::Column::Status.eq("completed"))
        .filter(task::Column::CompletedAt.gte(r.today.0))
        .filter(task::Column::CompletedAt.lt(r.today.1))
        .count(&state.db)
        .await?;
    Ok(TaskSummary {
        overdue,
        today,
        this_week,
        completed_today,
    })
}
