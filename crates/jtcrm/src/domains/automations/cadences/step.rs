//! The step job.

#[allow(unused_imports)]
use super::*;

#[derive(Deserialize)]
pub(super) struct StepPayload {
    pub(super) enrollment_id: Uuid,
    pub(super) step: i32,
}

/// Handler of `automations.cadence_step`.
pub async fn run_step(state: AppState, job: JobCtx) -> Result<(), JobError> {
    let tenant_id = job
        .tenant_id
        .ok_or_else(|| JobError::permanent("cadence_step sem tenant_id"))?;
    let p: StepPayload = serde_json::from_value(job.payload.clone())
        .map_err(|e| JobError::permanent(format!("payload inválido: {e}")))?;
    let Some(e) = enrollment::Entity::find_by_id((tenant_id, p.enrollment_id))
        .one(&state.db)
        .await?
    else {
        return Ok(());
    };
    if e.status != EnrollmentStatus::Active.as_str() || e.current_step != p.step {
        // Exited, completed, or this step already ran.
        return Ok(());
    }
    let end = |reason: &'static str| {
        let state = state.clone();
        async move {
            let tx = state.begin().await?;
            end_enrollments(&*tx, tenant_id, None, None, Some(p.enrollment_id), reason).await?;
            tx.commit().await?;
            Ok::<(), JobError>(())
        }
    };
    let Some(c) = cadence::Entity::find_by_id((tenant_id, e.cadence_id))
        .one(&state.db)
        .await?
        .filter(|c| c.deleted_at.is_none())
    else {
        return end("cadence_deleted").await;
    };
    let steps = parse_steps(&c.steps);
    let ctx = actor_ctx(&state, tenant_id, &[e.enrolled_by, c.created_by]).await?;
    let hours = business_hours::load(&state.db, tenant_id, &ctx.tenant.settings.timezone).await?;
    let now = Utc::now();
    let open = hours.next_open(now);
    if open > now + chrono::Duration::minutes(1) {
        // Due outside business hours (a late worker, changed hours): wait for the window.
        let tx = state.begin().await?;
        enrollment::Entity::update_many()
            .col_expr(enrollment::Column::NextRunAt, Expr::value(open))
            .filter(enrollment::Column::TenantId.eq(tenant_id))
            .filter(enrollment::Column::Id.eq(e.id))
            .exec(&*tx)
            .await?;
        let key = format!("{}:{}", step_key(e.id, p.step), open.timestamp());
        enqueue_step(&*tx, tenant_id, e.id, p.step, open, key).await?;
        tx.commit().await?;
        return Ok(());
    }
    let Some(l) = leads::find_live(&state.db, tenant_id, e.lead_id).await? else {
        return end("lead_deleted").await;
    };
    match l.status {
        LeadStatus::Converted => return end("converted").await,
        LeadStatus::Lost => return end("lost").await,
        _ => {}
    }
    let Some(step) = steps.get(p.step as usize).cloned() else {
        // The cadence was shortened: nothing left to do.
        return advance(
            &state,
            &e,
            &steps,
            &hours,
            p.step,
            None,
            json!({"skipped": true}),
        )
        .await;
    };
    let channel = step.channel.unwrap_or(CadenceChannel::Task);
    let mut cause = Map::new();
    cause.insert("cadence_id".into(), json!(c.id));
    cause.insert("cadence_enrollment_id".into(), json!(e.id));
    cause.insert("cadence_step".into(), json!(p.step));
    cause.insert("automation_depth".into(), json!(e.depth));
    let people = super::super::templates::mentions_people(&[
        step.title.as_deref(),
        step.subject.as_deref(),
        step.body.as_deref(),
    ]);
    let template = super::super::actions::load_subject(
        &state.db,
        tenant_id,
        (c.id, &c.name),
        "lead",
        l.id,
        people,
    )
    .await?
    .template;
    if channel == CadenceChannel::Email {
        let email = match &l.email {
            Some(to) => Some(crate::domains::email::NewEmail {
                tenant_id,
                to: to.clone(),
                subject: clip(
                    render(step.subject.as_deref().unwrap_or(""), &template).trim(),
                    300,
                ),
                body_text: render(step.body.as_deref().unwrap_or(""), &template),
                lead_id: Some(l.id),
                user_id: None,
                kind: "cadence",
                idempotency_key: Some(step_key(e.id, p.step)),
                actor_id: None,
            }),
            None => None,
        };
        let result = if email.is_some() {
            json!({})
        } else {
            json!({"error": "O lead não tem e-mail; passo não enviado."})
        };
        return advance(&state, &e, &steps, &hours, p.step, email, result).await;
    }
    let existing = if job.attempt > 1 {
        find_marked_event(
            &state.db,
            tenant_id,
            "task.created",
            e.updated_at,
            ("cadence_enrollment_id", e.id),
            ("cadence_step", i64::from(p.step)),
        )
        .await?
    } else {
        None
    };
    let result = match existing {
        Some(task_id) => json!({"task_id": task_id, "recovered": true}),
        None => {
            let task_type = match channel {
                CadenceChannel::Call => "call",
                CadenceChannel::Whatsapp => "whatsapp",
                _ => "follow_up",
            };
            let mut title = clip(
                render(step.title.as_deref().unwrap_or(""), &template).trim(),
                200,
            );
            if title.is_empty() {
                title = clip(&render(default_title(channel), &template), 200);
            }
            // Due by the end of today's business hours.
            let due = hours
                .window(now.with_timezone(&hours.tz).date_naive())
                .map_or(now, |(_, end)| end);
            let input = TaskInput {
                title: Some(title),
                description: Some(
                    step.body
                        .as_deref()
                        .map(|b| clip(&render(b, &template), 20_000))
                        .filter(|b| !b.trim().is_empty()),
                ),
                task_type: Some(task_type.into()),
                priority: None,
                due_at: Some(Some(due)),
                remind_at: None,
                assignee_id: Some(l.owner_id.unwrap_or(ctx.user_id)),
                lead_id: Some(Some(l.id)),
                opportunity_id: None,
            };
            match events::CAUSE
                .scope(cause, async {
                    tasks::service::create(&state, &ctx.grant::<Staff>()?, input).await
                })
                .await
            {
                Ok(t) => json!({"task_id": t.id, "assignee_id": t.assignee_id}),
                Err(err)
                    if matches!(err.code.status(), 412 | 429 | 500..) && !job.is_last_attempt() =>
                {
                    return Err(err.into());
                }
                Err(err) => json!({"error": err.detail}),
            }
        }
    };
    advance(&state, &e, &steps, &hours, p.step, None, result).await
}

/// Records step `step` in the history and schedules the next one, or completes the enrolment —
/// only if it is still active at that step (a concurrent exit wins, and then nothing is sent).
pub(super) async fn advance(
    state: &AppState,
    e: &enrollment::Model,
    steps: &[CadenceStep],
    hours: &Hours,
    step: i32,
    email: Option<crate::domains::email::NewEmail>,
    mut result: Value,
) -> Result<(), JobError> {
    let now = Utc::now();
    let tx = state.begin().await?;
    if let Some(mail) = email {
        let id = crate::domains::email::queue(&*tx, &state.settings, mail).await;
        match id {
            Ok(id) => result = json!({"email_id": id}),
            Err(err) if matches!(err.code.status(), 412 | 429 | 500..) => return Err(err.into()),
            Err(err) => result = json!({"error": err.detail}),
        }
    }
    let channel = steps
        .get(step as usize)
        .and_then(|s| s.channel)
        .map(|c| c.as_str());
    let mut history: Vec<Value> = serde_json::from_value(e.history.clone()).unwrap_or_default();
    history.push(json!({"step": step, "channel": channel, "at": now, "result": result}));
    let next = step + 1;
    let mut q = enrollment::Entity::update_many()
        .col_expr(
            enrollment::Column::History,
            Expr::value(Value::Array(history)),
        )
        .col_expr(enrollment::Column::CurrentStep, Expr::value(next))
        .col_expr(enrollment::Column::UpdatedAt, Expr::value(now));
    let next_at = steps
        .get(next as usize)
        .map(|s| hours.schedule(now, s.delay.as_ref()));
    match next_at {
        Some(at) => q = q.col_expr(enrollment::Column::NextRunAt, Expr::value(at)),
        None => {
            q = q
                .col_expr(
                    enrollment::Column::Status,
                    Expr::value(EnrollmentStatus::Completed.as_str()),
                )
                .col_expr(
                    enrollment::Column::ActiveLeadId,
                    Expr::value(Option::<Uuid>::None),
                )
                .col_expr(
                    enrollment::Column::NextRunAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .col_expr(enrollment::Column::FinishedAt, Expr::value(now));
        }
    }
    let changed = q
        .filter(enrollment::Column::TenantId.eq(e.tenant_id))
        .filter(enrollment::Column::Id.eq(e.id))
        .filter(enrollment::Column::Status.eq(EnrollmentStatus::Active.as_str()))
        .filter(enrollment::Column::CurrentStep.eq(step))
        .exec(&*tx)
        .await?
        .rows_affected;
    if changed == 0 {
        // Exited meanwhile: drop everything of this step.
        return Ok(());
    }
    if let Some(at) = next_at {
        enqueue_step(&*tx, e.tenant_id, e.id, next, at, step_key(e.id, next)).await?;
    }
    tx.commit().await?;
    Ok(())
}
