//! Lead rules: permissions and visibility, plan limit, duplicate detection, assignment, scoring on
//! every write, status history, soft delete and restore, all in one transaction per change.

use chrono::Utc;
use jtcrm_types::ErrorCode;
use jtcrm_types::dto::Role;
use jtcrm_types::dto::leads::{Lead, LeadInput, LeadStatus, ScoreBreakdown, StatusChange};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::model::{lead, status_history};
use super::scoring::Scorer;
use super::{LeadDraft, assignment, fields, search, to_dto};
use crate::domains::users;
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::events;
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Authorized, Staff};
use jtcrm_kernel::http::idempotency::Uncommitted;
use jtcrm_kernel::quota::{self, Resource};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store::{self, WriteMode};
use jtcrm_kernel::timeline;
use jtcrm_kernel::visibility;

pub fn can_reassign(ctx: &TenantCtx) -> bool {
    matches!(ctx.role, Role::Admin | Role::Manager)
}

/// A lead of the caller's tenant that the caller may see; otherwise `404`.
pub async fn find_visible<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    id: Uuid,
    include_deleted: bool,
) -> AppResult<lead::Model> {
    let m = lead::Entity::find_by_id((ctx.tenant_id, id))
        .one(conn)
        .await?
        .ok_or_else(AppError::not_found)?;
    if (!include_deleted && m.deleted_at.is_some()) || !visibility::visible_to(ctx, m.owner_id) {
        return Err(AppError::not_found());
    }
    Ok(m)
}

/// Which of `ids` are live leads of the tenant the caller may see (one query).
pub async fn visible_ids<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    ids: &[Uuid],
) -> AppResult<std::collections::HashSet<Uuid>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<(Uuid, Option<Uuid>)> = lead::Entity::find()
        .select_only()
        .column(lead::Column::Id)
        .column(lead::Column::OwnerId)
        .filter(lead::Column::TenantId.eq(ctx.tenant_id))
        .filter(lead::Column::Id.is_in(ids.iter().copied()))
        .filter(lead::Column::DeletedAt.is_null())
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, owner)| visibility::visible_to(ctx, *owner))
        .map(|(id, _)| id)
        .collect())
}

/// The first live lead sharing the email, CNPJ or phone of `d` (other than `exclude`).
pub async fn find_duplicate<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    d: &LeadDraft,
    exclude: Option<Uuid>,
) -> AppResult<Option<(Uuid, &'static str)>> {
    // One lookup per key, each in its own `(tenant_id, key)` index: an `OR` of the three ordered
    // by id makes SQLite walk the tenant's whole primary key instead.
    let keys = [
        (lead::Column::Email, &d.email, "email"),
        (lead::Column::Cnpj, &d.cnpj, "cnpj"),
        (lead::Column::Phone, &d.phone, "phone"),
    ];
    for (col, value, on) in keys {
        let Some(value) = value else { continue };
        let mut q = lead::Entity::find()
            .select_only()
            .column(lead::Column::Id)
            .filter(lead::Column::TenantId.eq(tenant_id))
            .filter(col.eq(value.as_str()))
            .filter(lead::Column::DeletedAt.is_null());
        if let Some(x) = exclude {
            q = q.filter(lead::Column::Id.ne(x));
        }
        // No ORDER BY: it would make SQLite prefer the primary key over the key's index. The
        // oldest of the first few is as good as the oldest of all (duplicates are refused).
        let ids: Vec<Uuid> = q.limit(20).into_tuple().all(conn).await?;
        if let Some(id) = ids.into_iter().min() {
            return Ok(Some((id, on)));
        }
    }
    Ok(None)
}

pub fn duplicate_error(existing: Uuid, on: &str) -> AppError {
    AppError::new(
        ErrorCode::DuplicateLead,
        format!(
            "Já existe um lead com o mesmo {on}. Use ?allow_duplicate=true para criar mesmo assim."
        ),
    )
    .with_context(json!({"existing_id": existing, "matched_on": on}))
}

async fn check_owner<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    owner: Option<Uuid>,
) -> AppResult<()> {
    users::check_active_owner(conn, ctx.tenant_id, owner).await
}

async fn record_status<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    lead_id: Uuid,
    from: Option<&str>,
    to: &str,
    actor: Option<Uuid>,
) -> AppResult<()> {
    status_history::Entity::insert(status_history::ActiveModel {
        tenant_id: Set(tenant_id),
        id: Set(Uuid::now_v7()),
        lead_id: Set(lead_id),
        from_status: Set(from.map(str::to_string)),
        to_status: Set(to.to_string()),
        actor_id: Set(actor),
        created_at: Set(Utc::now()),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Inserts a validated lead: owner, score, search index, tags, status history, the
/// `lead.created` event, the timeline entry and the plan reservation (see [`insert_leads_bulk`],
/// which it is with one lead). The caller has checked duplicates and permissions and owns the
/// transaction; on `plan_limit_exceeded` it rolls back.
pub async fn insert_lead<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    d: LeadDraft,
    scorer: &Scorer,
) -> AppResult<lead::Model> {
    insert_leads_bulk(conn, ctx, vec![d], scorer)
        .await?
        .pop()
        .ok_or_else(|| AppError::internal_msg("lead insert returned no row"))
}

/// Inserts validated leads (one from `POST /api/leads`, a batch from the CSV import): owners
/// (round-robin advanced once for the batch), scores, and the leads with their search terms, tags,
/// status history, `lead.created` events and timeline entries as multi-row INSERTs, then one plan
/// reservation for all of them. Answers `plan_limit_exceeded` when they do not fit: the caller
/// rolls back (the import then goes one lead at a time to find the row that hit the limit). The
/// caller has checked duplicates and permissions and owns the transaction.
pub async fn insert_leads_bulk<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    mut drafts: Vec<LeadDraft>,
    scorer: &Scorer,
) -> AppResult<Vec<lead::Model>> {
    if drafts.is_empty() {
        return Ok(vec![]);
    }
    let unowned = drafts.iter().filter(|d| d.owner_id.is_none()).count();
    if unowned > 0 {
        let mut owners = if matches!(ctx.role, Role::Sales | Role::Support) {
            vec![Some(ctx.user_id); unowned]
        } else {
            assignment::pick_owners(conn, &ctx.tenant, unowned).await?
        }
        .into_iter();
        for d in drafts.iter_mut().filter(|d| d.owner_id.is_none()) {
            d.owner_id = owners.next().flatten();
        }
    }
    let now = Utc::now();
    let t = ctx.tenant_id;
    let mut models = Vec::with_capacity(drafts.len());
    let (mut terms, mut tags, mut history, mut events, mut entries) =
        (vec![], vec![], vec![], vec![], vec![]);
    for d in &drafts {
        let id = Uuid::now_v7();
        let m = lead::Model {
            tenant_id: t,
            id,
            name_sort: d.name_sort(),
            name: d.name.clone(),
            email: d.email.clone(),
            phone: d.phone.clone(),
            company: d.company.clone(),
            cnpj: d.cnpj.clone(),
            position: d.position.clone(),
            source: d.source.as_str().to_string(),
            status: d.status.as_str().to_string(),
            owner_id: d.owner_id,
            tags: json!(d.tags),
            custom_fields: Value::Object(d.custom_fields.clone()),
            cep: d.cep.clone(),
            city: d.city.clone(),
            state: d.state.clone(),
            notes: d.notes.clone(),
            score: scorer.score(d, 0),
            signal_points: 0,
            last_contacted_at: d.last_contacted_at,
            merged_into: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            version: 1,
        };
        terms.extend(
            search::terms_for(d)
                .into_iter()
                .map(|x| search::term_row(t, id, x)),
        );
        tags.extend(d.tags.iter().map(|x| search::tag_row(t, id, x.clone())));
        history.push(status_history::ActiveModel {
            tenant_id: Set(t),
            id: Set(Uuid::now_v7()),
            lead_id: Set(id),
            from_status: Set(None),
            to_status: Set(d.status.as_str().to_string()),
            actor_id: Set(Some(ctx.user_id)),
            created_at: Set(now),
        });
        let snapshot = serde_json::to_value(to_dto(m.clone())).unwrap_or_default();
        events.push(events::Event {
            tenant_id: t,
            event_type: "lead.created",
            entity_type: "lead",
            entity_id: id,
            actor_id: Some(ctx.user_id),
            data: json!({"after": snapshot}),
        });
        entries.push(timeline::NewEntry {
            tenant_id: t,
            lead_id: Some(id),
            opportunity_id: None,
            kind: timeline::kinds::LEAD_CREATED,
            actor_id: Some(ctx.user_id),
            summary: format!("Lead criado (origem: {})", d.source.as_str()),
            data: json!({"source": d.source.as_str(), "status": d.status.as_str()}),
            reference: None,
        });
        models.push(m);
    }
    let rows = models
        .iter()
        .cloned()
        .map(IntoActiveModel::into_active_model)
        .collect();
    jtcrm_kernel::db::insert_all(conn, rows).await?;
    jtcrm_kernel::db::insert_all(conn, terms).await?;
    jtcrm_kernel::db::insert_all(conn, tags).await?;
    jtcrm_kernel::db::insert_all(conn, history).await?;
    events::emit_many(conn, events).await?;
    timeline::record_many(conn, entries).await?;
    // Last: the counter row stays locked until the commit, so concurrent creates of the tenant
    // queue on it for as short a time as possible. On `plan_limit_exceeded` the caller rolls back.
    quota::reserve(
        conn,
        ctx.tenant_id,
        Resource::Leads,
        models.len() as i64,
        ctx.tenant.limits.max_leads,
    )
    .await?;
    Ok(models)
}

/// Adds `points` of signal to the lead's score (the automations' `adjust_score` command) in the
/// caller's transaction: emits `lead.score_changed` when the score moves, and audits. Returns the
/// score before and after (`fallback` is the "before" when the lead is gone).
pub async fn adjust_score<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    lead_id: Uuid,
    points: i32,
    fallback: i32,
) -> AppResult<(i32, i32)> {
    let before = lead::Entity::find_by_id((ctx.tenant_id, lead_id))
        .one(conn)
        .await?
        .map_or(fallback, |m| m.score);
    let scorer = load_scorer(conn, ctx).await?;
    let after =
        super::scoring::add_signal_points(conn, ctx.tenant_id, lead_id, points, &scorer).await?;
    if after != before {
        let data = json!({"before": {"score": before}, "after": {"score": after}});
        emit(conn, ctx, "lead.score_changed", lead_id, data).await?;
    }
    audit::record(
        conn,
        audit::Entry {
            tenant_id: Some(ctx.tenant_id),
            actor_id: Some(ctx.user_id),
            action: "adjust_score",
            entity_type: "lead",
            entity_id: lead_id.to_string(),
            changes: json!({"score": {"from": before, "to": after}, "signal_points": points}),
            meta: &ctx.meta,
        },
    )
    .await?;
    Ok((before, after))
}

/// Writes a domain event of a lead in the caller's transaction.
pub async fn emit<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    event_type: &str,
    lead_id: Uuid,
    data: Value,
) -> AppResult<()> {
    events::emit(
        conn,
        events::Event {
            tenant_id: ctx.tenant_id,
            event_type,
            entity_type: "lead",
            entity_id: lead_id,
            actor_id: Some(ctx.user_id),
            data,
        },
    )
    .await?;
    Ok(())
}

pub async fn load_scorer<C: ConnectionTrait>(conn: &C, ctx: &TenantCtx) -> AppResult<Scorer> {
    Scorer::load(conn, ctx.tenant_id, &ctx.tenant.settings.coverage_states).await
}

/// `POST /api/leads`. Returns the status and body to send (a replay of an earlier response when the
/// same `Idempotency-Key` was already used).
pub async fn create(
    state: &AppState,
    ctx: &Authorized<Staff>,
    input: LeadInput,
    allow_duplicate: bool,
) -> AppResult<Uncommitted<Lead>> {
    let defs = fields::list_defs(&state.db, ctx.tenant_id).await?;
    let mut v = Validator::new();
    let draft = super::validate(&mut v, &input, None, WriteMode::Create, &defs);
    v.finish()?;
    let Some(draft) = draft else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    if draft.owner_id.is_some_and(|o| o != ctx.user_id) && !can_reassign(ctx) {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "Apenas gestores atribuem leads a outros usuários.",
        ));
    }
    let scorer = load_scorer(&state.db, ctx).await?;
    let txn = state.begin().await?;
    check_owner(&*txn, ctx, draft.owner_id).await?;
    if !allow_duplicate
        && let Some((existing, on)) = find_duplicate(&*txn, ctx.tenant_id, &draft, None).await?
    {
        return Err(duplicate_error(existing, on));
    }
    let m = insert_lead(&*txn, ctx, draft, &scorer).await?;
    let dto = to_dto(m);
    let body = serde_json::to_value(&dto).map_err(AppError::internal)?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create",
            "lead",
            dto.id,
            audit::diff(&json!({}), &body),
        ),
    )
    .await?;
    Ok(Uncommitted::new(txn, dto))
}

pub async fn get(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<Lead> {
    Ok(to_dto(find_visible(&state.db, ctx, id, false).await?))
}

pub async fn update(
    state: &AppState,
    ctx: &Authorized<Staff>,
    id: Uuid,
    if_match: Option<i32>,
    input: LeadInput,
    mode: WriteMode,
    allow_duplicate: bool,
) -> AppResult<Lead> {
    let defs = fields::list_defs(&state.db, ctx.tenant_id).await?;
    let scorer = load_scorer(&state.db, ctx).await?;
    let txn = state.begin().await?;
    let current = find_visible(&*txn, ctx, id, false).await?;
    if if_match.is_some_and(|v| v != current.version) {
        return Err(AppError::stale_version());
    }
    let before = LeadDraft::from_model(&current);
    let mut v = Validator::new();
    let draft = super::validate(&mut v, &input, Some(&before), mode, &defs);
    v.finish()?;
    let Some(draft) = draft else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    if draft.owner_id != before.owner_id {
        if !can_reassign(ctx) {
            return Err(AppError::new(
                ErrorCode::Forbidden,
                "Apenas gestores reatribuem leads.",
            ));
        }
        check_owner(&*txn, ctx, draft.owner_id).await?;
    }
    let keys_changed =
        draft.email != before.email || draft.cnpj != before.cnpj || draft.phone != before.phone;
    if keys_changed
        && !allow_duplicate
        && let Some((existing, on)) = find_duplicate(&*txn, ctx.tenant_id, &draft, Some(id)).await?
    {
        return Err(duplicate_error(existing, on));
    }
    let updated = save_draft(&*txn, ctx, current, &draft, &scorer).await?;
    let before_dto = serde_json::to_value(to_dto_from(&before, &updated)).unwrap_or_default();
    let dto = to_dto(updated);
    let after = serde_json::to_value(&dto).unwrap_or_default();
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "update", "lead", id, audit::diff(&before_dto, &after)),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

/// The DTO of `before` with the identity fields of `m` (so the audit diff shows only real changes).
fn to_dto_from(before: &LeadDraft, m: &lead::Model) -> Lead {
    let mut dto = to_dto(m.clone());
    dto.name = before.name.clone();
    dto.email = before.email.clone();
    dto.phone = before.phone.clone();
    dto.company = before.company.clone();
    dto.cnpj = before.cnpj.clone().map(|c| {
        jtcrm_types::br::Cnpj::parse(&c)
            .map(|c| c.masked())
            .unwrap_or(c)
    });
    dto.position = before.position.clone();
    dto.source = before.source;
    dto.status = before.status;
    dto.owner_id = before.owner_id;
    dto.tags = before.tags.clone();
    dto.custom_fields = before.custom_fields.clone();
    dto.cep = before.cep.clone().map(|c| {
        jtcrm_types::br::Cep::parse(&c)
            .map(|c| c.masked())
            .unwrap_or(c)
    });
    dto.city = before.city.clone();
    dto.state = before.state.clone();
    dto.notes = before.notes.clone();
    dto.last_contacted_at = before.last_contacted_at;
    dto
}

/// Writes `d` over `current` (optimistic on its version), rescoring and reindexing, and records a
/// status change in the history.
pub async fn save_draft<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    current: lead::Model,
    d: &LeadDraft,
    scorer: &Scorer,
) -> AppResult<lead::Model> {
    let id = current.id;
    let version = current.version;
    let old_status = current.status.clone();
    let old_owner = current.owner_id;
    let old_score = current.score;
    let before_json = serde_json::to_value(to_dto(current.clone())).unwrap_or_default();
    let index_changed = {
        let before = LeadDraft::from_model(&current);
        search::terms_for(&before) != search::terms_for(d) || before.tags != d.tags
    };
    let score = scorer.score(d, current.signal_points);
    let mut m = current.into_active_model();
    m.name_sort = Set(d.name_sort());
    m.name = Set(d.name.clone());
    m.email = Set(d.email.clone());
    m.phone = Set(d.phone.clone());
    m.company = Set(d.company.clone());
    m.cnpj = Set(d.cnpj.clone());
    m.position = Set(d.position.clone());
    m.source = Set(d.source.as_str().to_string());
    m.status = Set(d.status.as_str().to_string());
    m.owner_id = Set(d.owner_id);
    m.tags = Set(json!(d.tags));
    m.custom_fields = Set(Value::Object(d.custom_fields.clone()));
    m.cep = Set(d.cep.clone());
    m.city = Set(d.city.clone());
    m.state = Set(d.state.clone());
    m.notes = Set(d.notes.clone());
    m.last_contacted_at = Set(d.last_contacted_at);
    m.score = Set(score);
    m.updated_at = Set(Utc::now());
    m.version = Set(version + 1);
    let updated = crate::domains::optimistic_update::<lead::Entity, _>(
        conn,
        m,
        lead::Column::Version,
        version,
    )
    .await?;
    if index_changed {
        search::write_index(conn, ctx.tenant_id, id, d, true).await?;
    }
    let after = serde_json::to_value(to_dto(updated.clone())).unwrap_or_default();
    let changes = jtcrm_kernel::audit::diff(&before_json, &after);
    if changes.as_object().is_some_and(|c| !c.is_empty()) {
        emit(conn, ctx, "lead.updated", id, json!({"changes": changes})).await?;
    }
    if old_status != d.status.as_str() {
        record_status(
            conn,
            ctx.tenant_id,
            id,
            Some(&old_status),
            d.status.as_str(),
            Some(ctx.user_id),
        )
        .await?;
        let data =
            json!({"before": {"status": old_status}, "after": {"status": d.status.as_str()}});
        emit(conn, ctx, "lead.status_changed", id, data).await?;
        timeline::record(
            conn,
            timeline::NewEntry {
                tenant_id: ctx.tenant_id,
                lead_id: Some(id),
                opportunity_id: None,
                kind: timeline::kinds::LEAD_STATUS_CHANGED,
                actor_id: Some(ctx.user_id),
                summary: format!(
                    "Status alterado de {} para {}",
                    status_pt(&old_status),
                    status_pt(d.status.as_str())
                ),
                data: json!({"from": old_status, "to": d.status.as_str()}),
                reference: None,
            },
        )
        .await?;
    }
    if old_owner != d.owner_id {
        let data = json!({"before": {"owner_id": old_owner}, "after": {"owner_id": d.owner_id}});
        emit(conn, ctx, "lead.assigned", id, data).await?;
    }
    if old_score != updated.score {
        let data = json!({"before": {"score": old_score}, "after": {"score": updated.score}});
        emit(conn, ctx, "lead.score_changed", id, data).await?;
    }
    Ok(updated)
}

/// pt-BR label of a lead status, for timeline summaries.
pub fn status_pt(s: &str) -> &'static str {
    match s {
        "new" => "Novo",
        "contacted" => "Contatado",
        "qualified" => "Qualificado",
        "unqualified" => "Desqualificado",
        "converted" => "Convertido",
        "lost" => "Perdido",
        _ => "Desconhecido",
    }
}

/// Soft delete: the lead goes to the trash (`?deleted=true`), frees its plan slot, keeps its data.
pub async fn delete(state: &AppState, ctx: &Authorized<Staff>, id: Uuid) -> AppResult<()> {
    let txn = state.begin().await?;
    let current = find_visible(&*txn, ctx, id, false).await?;
    quota::release(&*txn, ctx.tenant_id, Resource::Leads, 1).await?;
    store::soft_delete::<lead::Entity>(txn, ctx, "lead", current, |_| {}).await
}

pub async fn restore(state: &AppState, ctx: &Authorized<Staff>, id: Uuid) -> AppResult<Lead> {
    let txn = state.begin().await?;
    let current = find_visible(&*txn, ctx, id, true).await?;
    if current.deleted_at.is_none() {
        return Err(AppError::new(
            ErrorCode::InvalidStateTransition,
            "O lead não está na lixeira.",
        ));
    }
    if current.merged_into.is_some() {
        return Err(AppError::new(
            ErrorCode::LeadMerged,
            "Este lead foi mesclado em outro e não pode ser restaurado.",
        )
        .with_context(json!({"merged_into": current.merged_into})));
    }
    quota::reserve(
        &*txn,
        ctx.tenant_id,
        Resource::Leads,
        1,
        ctx.tenant.limits.max_leads,
    )
    .await?;
    let restored = store::restore::<lead::Entity>(txn, ctx, "lead", current).await?;
    Ok(to_dto(restored))
}

pub async fn assign(
    state: &AppState,
    ctx: &TenantCtx,
    id: Uuid,
    owner: Option<Uuid>,
) -> AppResult<Lead> {
    if !can_reassign(ctx) {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "Apenas gestores reatribuem leads.",
        ));
    }
    let txn = state.begin().await?;
    let current = find_visible(&*txn, ctx, id, false).await?;
    check_owner(&*txn, ctx, owner).await?;
    let before = current.owner_id;
    let version = current.version;
    let mut m = current.into_active_model();
    m.owner_id = Set(owner);
    m.updated_at = Set(Utc::now());
    m.version = Set(version + 1);
    let updated = crate::domains::optimistic_update::<lead::Entity, _>(
        &*txn,
        m,
        lead::Column::Version,
        version,
    )
    .await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "assign",
            "lead",
            id,
            json!({"owner_id": {"from": before, "to": owner}}),
        ),
    )
    .await?;
    if before != owner {
        let data = json!({"before": {"owner_id": before}, "after": {"owner_id": owner}});
        emit(&*txn, ctx, "lead.assigned", id, data).await?;
    }
    txn.commit().await?;
    Ok(to_dto(updated))
}

pub async fn score(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<ScoreBreakdown> {
    let m = find_visible(&state.db, ctx, id, false).await?;
    let scorer = load_scorer(&state.db, ctx).await?;
    Ok(scorer.breakdown(&LeadDraft::from_model(&m), m.signal_points))
}

pub async fn status_history(
    state: &AppState,
    ctx: &TenantCtx,
    id: Uuid,
) -> AppResult<Vec<StatusChange>> {
    find_visible(&state.db, ctx, id, true).await?;
    let rows = status_history::Entity::find()
        .filter(status_history::Column::TenantId.eq(ctx.tenant_id))
        .filter(status_history::Column::LeadId.eq(id))
        .order_by_asc(status_history::Column::Id)
        .all(&state.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| StatusChange {
            from: r.from_status.as_deref().and_then(LeadStatus::parse),
            to: LeadStatus::parse(&r.to_status).unwrap_or(LeadStatus::New),
            actor_id: r.actor_id,
            at: r.created_at,
        })
        .collect())
}
