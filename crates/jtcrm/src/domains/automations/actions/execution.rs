//! Execution.

#[allow(unused_imports)]
use super::*;

/// Whether the action's texts name the owner or the company.
pub fn uses_people(a: &AutomationAction) -> bool {
    match a {
        AutomationAction::CreateTask {
            title, description, ..
        } => super::super::templates::mentions_people(&[title.as_deref(), description.as_deref()]),
        AutomationAction::SendEmail { subject, body, .. } => {
            super::super::templates::mentions_people(&[subject.as_deref(), body.as_deref()])
        }
        _ => false,
    }
}

pub(super) struct Env<'a> {
    pub(super) state: &'a AppState,
    pub(super) ctx: TenantCtx,
    pub(super) auto: &'a Parsed,
    pub(super) step: &'a Step<'a>,
}

impl Env<'_> {
    pub(super) fn tenant(&self) -> Uuid {
        self.ctx.tenant_id
    }

    pub(super) async fn execute(&self, action: &AutomationAction) -> Result<Outcome, Failure> {
        let r = self.step.run;
        let s = load_subject(
            &self.state.db,
            self.tenant(),
            (self.auto.model.id, &self.auto.model.name),
            &r.entity_type,
            r.entity_id,
            uses_people(action),
        )
        .await?;
        let need_lead = || {
            s.lead.clone().ok_or_else(|| {
                Failure::fatal("Esta ação precisa de um lead, e o registro não tem lead (ou ele foi excluído).")
            })
        };
        match action {
            AutomationAction::CreateTask {
                assignee, user_id, ..
            } => {
                let l = need_lead()?;
                if self.step.attempt > 1
                    && let Some(id) = find_marked_event(
                        &self.state.db,
                        self.tenant(),
                        "task.created",
                        r.created_at,
                        ("automation_run_id", r.id),
                        ("automation_action", self.step.position as i64),
                    )
                    .await?
                {
                    return Ok(Outcome::Done(json!({"task_id": id, "recovered": true})));
                }
                let assignee_id = self
                    .assignee(assignee.unwrap_or(AssigneeMode::Owner), *user_id, &l)
                    .await?;
                let input = task_input(
                    action,
                    &s.template,
                    self.step.hours,
                    &self.auto.model.name,
                    assignee_id,
                    l.id,
                )
                .ok_or_else(|| Failure::fatal("Ação não é create_task."))?;
                let due_at = input.due_at.flatten();
                let task =
                    tasks::service::create(self.state, &self.ctx.grant::<Staff>()?, input).await?;
                Ok(Outcome::Done(
                    json!({"task_id": task.id, "assignee_id": assignee_id, "due_at": due_at}),
                ))
            }
            AutomationAction::SendEmail {
                to,
                address,
                subject,
                body,
            } => {
                let l = need_lead()?;
                let (to_addr, user_id) = match to.unwrap_or(EmailTo::Lead) {
                    EmailTo::Lead => (
                        l.email
                            .clone()
                            .ok_or_else(|| Failure::fatal("O lead não tem e-mail."))?,
                        None,
                    ),
                    EmailTo::Owner => {
                        let owner = l
                            .owner_id
                            .ok_or_else(|| Failure::fatal("O lead não tem responsável."))?;
                        let u = users::service::find(&self.state.db, self.tenant(), owner)
                            .await?
                            .ok_or_else(|| Failure::fatal("Responsável do lead não encontrado."))?;
                        (u.email, Some(owner))
                    }
                    EmailTo::Address => (
                        address
                            .clone()
                            .ok_or_else(|| Failure::fatal("Endereço não configurado."))?,
                        None,
                    ),
                };
                let mut subj = clip(
                    render(subject.as_deref().unwrap_or(""), &s.template).trim(),
                    300,
                );
                if subj.is_empty() {
                    subj = clip(&self.auto.model.name, 300);
                }
                let text = render(body.as_deref().unwrap_or(""), &s.template);
                let tx = self.state.begin().await?;
                let email_id = crate::domains::email::queue(
                    &*tx,
                    &self.state.settings,
                    crate::domains::email::NewEmail {
                        tenant_id: self.tenant(),
                        to: to_addr.clone(),
                        subject: subj,
                        body_text: text,
                        lead_id: Some(l.id),
                        user_id,
                        kind: "automation",
                        idempotency_key: Some(format!("auto:{}:{}", r.id, self.step.position)),
                        actor_id: None,
                    },
                )
                .await?;
                record(
                    &*tx,
                    self.step,
                    Ok(json!({"email_id": email_id, "to": to_addr})),
                )
                .await?;
                tx.commit().await?;
                Ok(Outcome::Recorded)
            }
            AutomationAction::AssignOwner { assignee, user_id } => {
                let l = need_lead()?;
                let target = self
                    .assignee(assignee.unwrap_or(AssigneeMode::RoundRobin), *user_id, &l)
                    .await?;
                if l.owner_id == Some(target) {
                    return Ok(Outcome::Done(
                        json!({"owner_id": target, "unchanged": true}),
                    ));
                }
                leads::service::assign(self.state, &self.ctx, l.id, Some(target)).await?;
                Ok(Outcome::Done(
                    json!({"owner_id": target, "previous_owner_id": l.owner_id}),
                ))
            }
            AutomationAction::UpdateField {
                status,
                add_tags,
                remove_tags,
                custom_fields,
            } => {
                let l = need_lead()?;
                let mut input = LeadInput::default();
                if let Some(st) = status {
                    input.status = Some(Some(st.clone()));
                }
                if add_tags.is_some() || remove_tags.is_some() {
                    let mut tags: Vec<String> = l.tags.clone();
                    for t in add_tags.iter().flatten() {
                        if !tags.contains(t) {
                            tags.push(t.clone());
                        }
                    }
                    if let Some(rm) = remove_tags {
                        tags.retain(|t| !rm.contains(t));
                    }
                    input.tags = Some(Some(tags));
                }
                if let Some(cf) = custom_fields {
                    input.custom_fields = Some(Some(cf.clone()));
                }
                let updated = leads::service::update(
                    self.state,
                    &self.ctx.grant::<Staff>()?,
                    l.id,
                    None,
                    input,
                    WriteMode::Patch,
                    true,
                )
                .await?;
                Ok(Outcome::Done(json!({
                    "status": updated.status, "tags": updated.tags, "custom_fields": updated.custom_fields
                })))
            }
            AutomationAction::AdjustScore { points } => {
                let l = need_lead()?;
                let points = points.unwrap_or(0);
                let tx = self.state.begin().await?;
                let (_, after) =
                    leads::service::adjust_score(&*tx, &self.ctx, l.id, points, l.score).await?;
                record(
                    &*tx,
                    self.step,
                    Ok(json!({"points": points, "score": after})),
                )
                .await?;
                tx.commit().await?;
                Ok(Outcome::Recorded)
            }
            AutomationAction::MoveStage { stage_id } => {
                let stage_id = stage_id.ok_or_else(|| Failure::fatal("Etapa não configurada."))?;
                let opp = match &s.opportunity {
                    Some(o) => o.clone(),
                    None => {
                        let l = need_lead()?;
                        open_opportunity_of(&self.state.db, self.tenant(), l.id)
                            .await?
                            .ok_or_else(|| Failure::fatal("O lead não tem oportunidade aberta."))?
                    }
                };
                if opp.stage_id == stage_id {
                    return Ok(Outcome::Done(
                        json!({"opportunity_id": opp.id, "stage_id": stage_id, "unchanged": true}),
                    ));
                }
                let moved = pipelines::opportunities::transition(
                    self.state,
                    &self.ctx.grant::<Sellers>()?,
                    opp.id,
                    Transition::Move {
                        stage_id: Some(stage_id),
                        anchor: Anchor::Top,
                        lost_reason: Some(format!("Automação: {}", self.auto.model.name)),
                    },
                )
                .await?;
                Ok(Outcome::Done(json!({
                    "opportunity_id": opp.id, "stage_id": moved.stage_id, "status": moved.status
                })))
            }
            AutomationAction::EnrollInCadence { cadence_id } => {
                let l = need_lead()?;
                let cadence_id =
                    cadence_id.ok_or_else(|| Failure::fatal("Cadência não configurada."))?;
                let tx = self.state.begin().await?;
                let res =
                    cadences::enroll_one(&*tx, self.state, &self.ctx, cadence_id, l.id, r.depth)
                        .await?;
                let result = match res {
                    Some(e) => json!({"cadence_id": cadence_id, "enrollment_id": e}),
                    None => json!({"cadence_id": cadence_id, "already_enrolled": true}),
                };
                record(&*tx, self.step, Ok(result)).await?;
                tx.commit().await?;
                Ok(Outcome::Recorded)
            }
            AutomationAction::Webhook { url, secret } => {
                let url = url
                    .as_deref()
                    .ok_or_else(|| Failure::fatal("URL não configurada."))?;
                let secret = secret
                    .as_deref()
                    .ok_or_else(|| Failure::fatal("Segredo não configurado."))?;
                let secret = self
                    .state
                    .secrets
                    .open(secret)
                    .map_err(|e| Failure::fatal(e.detail))?;
                let secret = secret.as_str();
                let ev = match r.event_id {
                    Some(id) => event::Entity::find_by_id((self.tenant(), id))
                        .one(&self.state.db)
                        .await?
                        .map(|e| {
                            json!({"id": e.id, "type": e.event_type, "entity_type": e.entity_type,
                                   "entity_id": e.entity_id, "actor_id": e.actor_id, "data": e.data,
                                   "created_at": e.created_at})
                        }),
                    None => None,
                };
                let delivery = format!("{}:{}", r.id, self.step.position);
                let body = json!({
                    "delivery_id": delivery,
                    "automation": {"id": self.auto.model.id, "name": self.auto.model.name},
                    "run_id": r.id,
                    "event": ev,
                    "entity_type": r.entity_type,
                    "entity_id": r.entity_id,
                    "entity": s.entity,
                    "lead": s.template.get("lead").cloned().unwrap_or(Value::Null),
                    "sent_at": Utc::now(),
                });
                let bytes = serde_json::to_vec(&body)
                    .map_err(|e| Failure::fatal(format!("corpo inválido: {e}")))?;
                let status = send_webhook(
                    url,
                    secret,
                    &delivery,
                    r.event_type.as_deref().unwrap_or("manual"),
                    bytes,
                    self.state.settings.webhook_allow_loopback,
                )
                .await?;
                Ok(Outcome::Done(json!({"status": status})))
            }
            AutomationAction::Wait { .. } => Ok(Outcome::Done(json!({}))),
        }
    }

    /// The user a task or lead goes to.
    pub(super) async fn assignee(
        &self,
        mode: AssigneeMode,
        user_id: Option<Uuid>,
        l: &Lead,
    ) -> Result<Uuid, Failure> {
        match mode {
            AssigneeMode::Owner => Ok(l.owner_id.unwrap_or(self.ctx.user_id)),
            AssigneeMode::User => {
                let u = user_id.ok_or_else(|| Failure::fatal("Usuário não configurado."))?;
                if users::is_active_user(&self.state.db, self.tenant(), u).await? {
                    Ok(u)
                } else {
                    Err(Failure::fatal(
                        "O usuário configurado está inativo ou foi excluído.",
                    ))
                }
            }
            AssigneeMode::RoundRobin => {
                let tx = self.state.begin().await?;
                let next = assignment::round_robin(&*tx, self.tenant()).await?;
                tx.commit().await?;
                next.ok_or_else(|| Failure::fatal("Nenhum vendedor ativo para o rodízio."))
            }
        }
    }
}
