//! Dry run.

#[allow(unused_imports)]
use super::*;

pub(super) async fn user_name<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<String> {
    Ok(users::service::find(conn, tenant_id, id)
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
                    Some(sid) => pipelines::service::stage_name(db, t, *sid).await?,
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
                    Some(c) => super::super::model::cadence::Entity::find_by_id((t, *c))
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
