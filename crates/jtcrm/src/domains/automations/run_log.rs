//! Run log.

#[allow(unused_imports)]
use super::*;

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
