//! The subject of a run.

#[allow(unused_imports)]
use super::*;

/// What a run acts on: the entity, the lead behind it, and the placeholder context.
pub struct Subject {
    pub lead: Option<Lead>,
    pub opportunity: Option<Opportunity>,
    pub entity: Value,
    pub template: Value,
}

pub(super) async fn user_json<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Option<Uuid>,
) -> AppResult<Value> {
    let Some(id) = id else {
        return Ok(Value::Null);
    };
    Ok(users::service::find(conn, tenant_id, id)
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
        "task" => match tasks::find(conn, tenant_id, entity_id).await? {
            Some(t) => {
                lead_id = t.lead_id;
                let v = serde_json::to_value(t).unwrap_or_default();
                template.insert("task".into(), v.clone());
                v
            }
            None => Value::Null,
        },
        "opportunity" => match pipelines::opportunities::find(conn, tenant_id, entity_id).await? {
            Some(o) => {
                lead_id = o.lead_id;
                let v = serde_json::to_value(&o).unwrap_or_default();
                template.insert("opportunity".into(), v.clone());
                opportunity = Some(o);
                v
            }
            None => Value::Null,
        },
        _ => Value::Null,
    };
    let lead = match lead_id {
        Some(id) => leads::find_live(conn, tenant_id, id).await?,
        None => None,
    };
    let entity = if entity_type == "lead" {
        lead.clone()
            .map(|l| serde_json::to_value(l).unwrap_or_default())
            .unwrap_or(Value::Null)
    } else {
        entity
    };
    if let Some(l) = &lead {
        template.insert("lead".into(), serde_json::to_value(l).unwrap_or_default());
        if people {
            template.insert(
                "owner".into(),
                user_json(conn, tenant_id, l.owner_id).await?,
            );
        }
    }
    if people {
        let company = tenants::name_of(conn, tenant_id)
            .await?
            .map(|name| json!({"name": name}))
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
pub fn lead_template(l: &Lead, source: (Uuid, &str)) -> Value {
    json!({
        "lead": serde_json::to_value(l).unwrap_or_default(),
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
pub(super) async fn open_opportunity_of<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    lead_id: Uuid,
) -> AppResult<Option<Opportunity>> {
    pipelines::opportunities::open_of_lead(conn, tenant_id, lead_id).await
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
pub(super) fn v7_floor(t: DateTime<Utc>) -> Uuid {
    let ms = (t.timestamp_millis().max(0) as u64).to_be_bytes();
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms[2..8]);
    b[6] = 0x70;
    b[8] = 0x80;
    Uuid::from_bytes(b)
}
