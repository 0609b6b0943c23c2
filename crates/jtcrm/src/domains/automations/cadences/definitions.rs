//! Definitions.

#[allow(unused_imports)]
use super::*;

pub(super) fn parse_steps(v: &Value) -> Vec<CadenceStep> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

pub fn to_dto(m: cadence::Model) -> Cadence {
    Cadence {
        steps: parse_steps(&m.steps),
        id: m.id,
        name: m.name,
        description: m.description,
        active: m.active,
        created_by: m.created_by,
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
    }
}

pub fn enrollment_dto(m: enrollment::Model, steps_total: i32) -> Enrollment {
    Enrollment {
        id: m.id,
        cadence_id: m.cadence_id,
        lead_id: m.lead_id,
        status: EnrollmentStatus::parse(&m.status).unwrap_or(EnrollmentStatus::Exited),
        current_step: m.current_step,
        steps_total,
        next_run_at: m.next_run_at,
        exit_reason: m.exit_reason,
        enrolled_by: m.enrolled_by,
        enrolled_at: m.created_at,
        finished_at: m.finished_at,
        history: serde_json::from_value(m.history).unwrap_or_default(),
    }
}

pub(super) fn default_title(channel: CadenceChannel) -> &'static str {
    match channel {
        CadenceChannel::Call => "Ligar para {{lead.name}}",
        CadenceChannel::Whatsapp => "Enviar WhatsApp para {{lead.name}}",
        CadenceChannel::Email | CadenceChannel::Task => "Follow-up com {{lead.name}}",
    }
}

pub(super) fn validate_steps(
    v: &mut Validator,
    steps: Option<Vec<CadenceStep>>,
) -> Vec<CadenceStep> {
    let steps = steps.unwrap_or_default();
    if steps.is_empty() {
        v.add("steps", "required", "Informe ao menos um passo");
    }
    if steps.len() > MAX_STEPS {
        v.add(
            "steps",
            "too_many",
            &format!("No máximo {MAX_STEPS} passos"),
        );
    }
    let mut out = Vec::with_capacity(steps.len());
    for (i, mut s) in steps.into_iter().enumerate() {
        let f = |n: &str| format!("steps[{i}].{n}");
        if let Some(d) = &s.delay {
            business_hours::validate_delay(v, &f("delay"), d);
        }
        let text = |v: &mut Validator, field: &str, t: &Option<String>, max: usize| {
            if let Some(t) = t {
                if t.chars().count() > max {
                    v.add(field, "too_long", &format!("Máximo de {max} caracteres"));
                }
                let unknown = super::super::templates::unknown_roots(t);
                if !unknown.is_empty() {
                    v.add(
                        field,
                        "unknown_placeholder",
                        &format!("Marcadores desconhecidos: {}", unknown.join(", ")),
                    );
                }
            }
        };
        text(v, &f("title"), &s.title, 500);
        text(v, &f("subject"), &s.subject, 300);
        text(v, &f("body"), &s.body, 20_000);
        match s.channel {
            None => v.add(
                &f("channel"),
                "required",
                "Use call, whatsapp, email ou task",
            ),
            Some(CadenceChannel::Email) => {
                for (name, val) in [("subject", &s.subject), ("body", &s.body)] {
                    if val.as_deref().is_none_or(|x| x.trim().is_empty()) {
                        v.add(&f(name), "required", "Campo obrigatório para e-mail");
                    }
                }
            }
            Some(c) => {
                if s.title.as_deref().is_none_or(|x| x.trim().is_empty()) {
                    s.title = Some(default_title(c).into());
                }
            }
        }
        out.push(s);
    }
    out
}

pub(super) async fn find<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<cadence::Model> {
    cadence::Entity::find_by_id((tenant_id, id))
        .one(conn)
        .await?
        .filter(|c| c.deleted_at.is_none())
        .ok_or_else(AppError::not_found)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CadenceQuery {
    pub active: Option<bool>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// Every tenant user reads cadences (to enrol leads); newest first.
pub async fn list(state: &AppState, ctx: &TenantCtx, q: CadenceQuery) -> AppResult<Page<Cadence>> {
    let limit = pagination::limit(q.limit)?;
    let mut sel = cadence::Entity::find()
        .filter(cadence::Column::TenantId.eq(ctx.tenant_id))
        .filter(cadence::Column::DeletedAt.is_null());
    if let Some(a) = q.active {
        sel = sel.filter(cadence::Column::Active.eq(a));
    }
    let page = Keyset::desc([cadence::Column::Id])
        .paginate(&state.db, sel, q.cursor.as_deref(), limit, false)
        .await?;
    Ok(page.map(to_dto))
}

pub async fn get(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<Cadence> {
    Ok(to_dto(find(&state.db, ctx.tenant_id, id).await?))
}

pub async fn create(
    state: &AppState,
    ctx: &Authorized<Managers>,
    input: CadenceInput,
) -> AppResult<Cadence> {
    let mut v = Validator::new();
    let name = v.required_text("name", input.name.as_deref(), 200);
    let description = v.optional_text("description", input.description.as_deref(), 5000);
    let steps = validate_steps(&mut v, input.steps);
    v.finish()?;
    let Some(name) = name else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    let now = Utc::now();
    let txn = state.begin().await?;
    let m = cadence::Entity::insert(cadence::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(Uuid::now_v7()),
        name: Set(name),
        description: Set(description),
        active: Set(input.active.unwrap_or(true)),
        steps: Set(serde_json::to_value(&steps).map_err(AppError::internal)?),
        created_by: Set(Some(ctx.user_id)),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        version: Set(1),
    })
    .exec_with_returning(&*txn)
    .await?;
    let dto = to_dto(m);
    let snap = serde_json::to_value(&dto).unwrap_or_default();
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create",
            "cadence",
            dto.id,
            audit::diff(&json!({}), &snap),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

/// `PUT`: replaces the definition. Enrolled leads keep their position (the index of their next
/// step); a lead past the new last step completes.
pub async fn update(
    state: &AppState,
    ctx: &Authorized<Managers>,
    id: Uuid,
    if_match: Option<i32>,
    input: CadenceInput,
) -> AppResult<Cadence> {
    let mut v = Validator::new();
    let name = v.required_text("name", input.name.as_deref(), 200);
    let description = v.optional_text("description", input.description.as_deref(), 5000);
    let steps = validate_steps(&mut v, input.steps);
    v.finish()?;
    let Some(name) = name else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    let txn = state.begin().await?;
    let cur = find(&*txn, ctx.tenant_id, id).await?;
    if if_match.is_some_and(|v| v != cur.version) {
        return Err(AppError::stale_version());
    }
    let before = serde_json::to_value(to_dto(cur.clone())).unwrap_or_default();
    let version = cur.version;
    let mut am = cur.into_active_model();
    am.name = Set(name);
    am.description = Set(description);
    am.active = Set(input.active.unwrap_or(true));
    am.steps = Set(serde_json::to_value(&steps).map_err(AppError::internal)?);
    am.updated_at = Set(Utc::now());
    am.version = Set(version + 1);
    let m = crate::domains::optimistic_update::<cadence::Entity, _>(
        &*txn,
        am,
        cadence::Column::Version,
        version,
    )
    .await?;
    let dto = to_dto(m);
    let after = serde_json::to_value(&dto).unwrap_or_default();
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "update", "cadence", id, audit::diff(&before, &after)),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

/// Soft delete; active enrolments end with reason `cadence_deleted`.
pub async fn delete(state: &AppState, ctx: &Authorized<Managers>, id: Uuid) -> AppResult<()> {
    let txn = state.begin().await?;
    let cur = find(&*txn, ctx.tenant_id, id).await?;
    end_enrollments(
        &*txn,
        ctx.tenant_id,
        Some(id),
        None,
        None,
        "cadence_deleted",
    )
    .await?;
    store::soft_delete::<cadence::Entity>(txn, ctx, "cadence", cur, |am| {
        am.active = Set(false);
    })
    .await
}
