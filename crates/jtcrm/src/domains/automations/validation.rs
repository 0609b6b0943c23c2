//! Validation.

#[allow(unused_imports)]
use super::*;

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

pub(super) fn check_template(v: &mut Validator, field: &str, s: &str, max: usize) {
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

pub(super) fn required_template(
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
        conditions: input.conditions.map(trimmed),
        actions: out,
        stop_on_error: input.stop_on_error.unwrap_or(false),
    })
}

/// The condition tree as stored: field paths without surrounding spaces (they are validated
/// trimmed, and evaluated by the trimmed path).
fn trimmed(mut c: Condition) -> Condition {
    c.field = c.field.map(|f| f.trim().to_string());
    c.all = c.all.map(|l| l.into_iter().map(trimmed).collect());
    c.any = c.any.map(|l| l.into_iter().map(trimmed).collect());
    c
}
