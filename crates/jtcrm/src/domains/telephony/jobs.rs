//! Telephony jobs: the history poll (a periodic chain that fans out one job per tenant with the
//! PABX enabled), the per-call CDR fetch after a click-to-call or a call event, the extension
//! sync (periodic and on demand), the follow-up of a completed call (new lead, callback task),
//! the copy of recordings and their deletion after the retention period.

use chrono::{DateTime, Duration, Utc};
use jtcrm_integrations::pabx::{CallFilter, PageRequest};
use jtcrm_types::ErrorCode;
use jtcrm_types::dto::integrations::IntegrationProvider;
use jtcrm_types::dto::leads::LeadInput;
use jtcrm_types::dto::tasks::TaskInput;
use jtcrm_types::dto::{Role, telephony::ExtensionSync};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use super::calls::{FETCH_CDR, pabx_error};
use super::ingest::{self, AFTER_CALL, Observed, RECORDING_COPY, Stats, TIMELINE_KIND};
use super::model::call;
use super::{extensions, recordings};
use crate::domains::integrations::{self, Loaded};
use crate::domains::{leads, tasks, users};
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::http::extract::{RequestMeta, TenantCtx};
use jtcrm_kernel::http::guard::Staff;
use jtcrm_kernel::jobs::{self, JobCtx, JobError, NewJob, Next, Periodic, Registry};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::timeline;

pub const POLL_SCAN: &str = "telephony.history_poll_scan";
pub const HISTORY_POLL: &str = "telephony.history_poll";
pub const EXT_SYNC_SCAN: &str = "telephony.extension_sync_scan";
pub const EXT_SYNC: &str = "telephony.extension_sync";
pub const RETENTION: &str = "telephony.recording_retention";

/// Every minute: one history poll per tenant with the PABX enabled.
pub const POLL_SCHEDULE: Periodic = Periodic::every(POLL_SCAN, 60);
/// Every hour: one extension sync per tenant.
pub const EXT_SYNC_SCHEDULE: Periodic = Periodic::every(EXT_SYNC_SCAN, 3600);
/// Daily at 04:30 UTC: recordings past their retention are deleted.
pub const RETENTION_SCHEDULE: Periodic = Periodic::daily_at(RETENTION, 4, 30);

/// Records per page asked of the PABX (the suite serves at most 1000).
pub const POLL_PAGE: u32 = 500;
/// The poll re-reads this much before its last window end: CDRs appear after a delay.
pub const POLL_OVERLAP_MINUTES: i64 = 15;
/// The first poll of a tenant reaches this far back.
pub const FIRST_POLL_HOURS: i64 = 24;

pub fn register(r: &mut Registry) {
    r.periodic(POLL_SCHEDULE, run_poll_scan);
    r.register(HISTORY_POLL, run_history_poll);
    r.register(FETCH_CDR, run_fetch_cdr);
    r.periodic(EXT_SYNC_SCHEDULE, run_ext_sync_scan);
    r.register(EXT_SYNC, run_ext_sync);
    r.register(AFTER_CALL, run_after_call);
    r.register(RECORDING_COPY, recordings::run_copy);
    r.periodic(RETENTION_SCHEDULE, recordings::run_retention);
}

fn tenant_of(ctx: &JobCtx) -> Result<Uuid, JobError> {
    ctx.tenant_id
        .ok_or_else(|| JobError::permanent("job de telefonia sem empresa"))
}

/// The tenant's enabled PABX settings when its plan still includes telephony; `None` otherwise
/// (the job has nothing to do).
pub async fn active_settings(state: &AppState, tenant_id: Uuid) -> AppResult<Option<Loaded>> {
    let Some(t) = state.tenants.get(&state.db, tenant_id).await? else {
        return Ok(None);
    };
    if !t.status.is_usable() || !t.features.telephony {
        return Ok(None);
    }
    integrations::load_enabled(
        &state.db,
        &state.secrets,
        tenant_id,
        IntegrationProvider::Pabx,
    )
    .await
}

/// Enqueues `kind` for every tenant with the PABX enabled, once per slot.
async fn fan_out(state: &AppState, kind: &'static str, period: i64) -> Result<(), JobError> {
    let slot = Utc::now().timestamp() / period.max(1);
    let tenants = integrations::enabled_tenants(&state.db, IntegrationProvider::Pabx).await?;
    let txn = state.begin().await?;
    for t in tenants {
        jobs::enqueue(
            &*txn,
            NewJob::new(kind, json!({}))
                .tenant(t)
                .idempotency_key(format!("{kind}:{t}:{slot}"))
                .max_attempts(3),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

async fn run_poll_scan(state: AppState, _ctx: JobCtx) -> Result<Next, JobError> {
    fan_out(&state, HISTORY_POLL, POLL_SCHEDULE.period_secs).await?;
    Ok(Next::NextSlot)
}

async fn run_ext_sync_scan(state: AppState, _ctx: JobCtx) -> Result<Next, JobError> {
    fan_out(&state, EXT_SYNC, EXT_SYNC_SCHEDULE.period_secs).await?;
    Ok(Next::NextSlot)
}

fn ts(v: Option<&Value>) -> Option<DateTime<Utc>> {
    v.and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// PABX errors in jobs: transport retried, the rest permanent (bad credentials will not fix
/// themselves).
fn job_error(e: AppError) -> JobError {
    JobError::from(e)
}

/// One history poll of a tenant: every page of the window since the last poll (minus an overlap,
/// CDRs appear late), ingested page by page; the window end is saved after the last page.
pub async fn poll(state: &AppState, tenant_id: Uuid) -> AppResult<Stats> {
    let Some(loaded) = active_settings(state, tenant_id).await? else {
        return Ok(Stats::default());
    };
    let settings = loaded.pabx();
    let client = loaded.pabx_client()?;
    let until = Utc::now();
    let since = ts(loaded.sync_state.get("history_until"))
        .map(|t| t - Duration::minutes(POLL_OVERLAP_MINUTES))
        .unwrap_or(until - Duration::hours(FIRST_POLL_HOURS));
    let filter = CallFilter {
        since: Some(since),
        until: Some(until),
        call_id: None,
    };
    let mut total = Stats::default();
    let mut page = Some(PageRequest::first(POLL_PAGE));
    while let Some(req) = page {
        let got = client.list_calls(&filter, req).await.map_err(pabx_error)?;
        page = got.next_request(POLL_PAGE);
        // Calls already completed are skipped before the ingestion transaction.
        let ids: Vec<String> = got
            .items
            .iter()
            .map(|r| r.provider_call_id.clone())
            .collect();
        let done = ingest::completed_among(&state.db, tenant_id, &ids).await?;
        let batch: Vec<Observed> = got
            .items
            .into_iter()
            .filter(|r| !done.contains(&r.provider_call_id))
            .map(Observed::from)
            .collect();
        let (s, _) = ingest::ingest(state, tenant_id, &settings, batch).await?;
        total.inserted += s.inserted;
        total.updated += s.updated;
        total.completed += s.completed;
    }
    let mut sync_state = loaded.sync_state.clone();
    sync_state.insert("history_until".into(), json!(until));
    sync_state.insert("history_polled_at".into(), json!(Utc::now()));
    let txn = state.begin().await?;
    integrations::save_sync_state(&*txn, tenant_id, IntegrationProvider::Pabx, sync_state).await?;
    txn.commit().await?;
    Ok(total)
}

async fn run_history_poll(state: AppState, ctx: JobCtx) -> Result<(), JobError> {
    let tenant_id = tenant_of(&ctx)?;
    let s = match poll(&state, tenant_id).await {
        Ok(s) => s,
        // Refused credentials or settings: the next minute's poll would fail the same way, so
        // no retries and no dead job a minute; the company sees it in `POST …/pabx/test`.
        Err(e)
            if matches!(
                e.code,
                ErrorCode::PabxRejected | ErrorCode::IntegrationNotConfigured
            ) =>
        {
            tracing::warn!(%tenant_id, error = %e.detail, "pabx history poll refused");
            return Ok(());
        }
        Err(e) => return Err(job_error(e)),
    };
    if s.inserted + s.updated > 0 {
        tracing::info!(%tenant_id, inserted = s.inserted, updated = s.updated, completed = s.completed, "pabx history poll");
    }
    Ok(())
}

/// Looks for one call's record; `Retry` while the PABX has not written it yet.
async fn run_fetch_cdr(state: AppState, ctx: JobCtx) -> Result<(), JobError> {
    let tenant_id = tenant_of(&ctx)?;
    let Some(pid) = ctx.payload.get("provider_call_id").and_then(Value::as_str) else {
        return Err(JobError::permanent("provider_call_id ausente"));
    };
    let Some(loaded) = active_settings(&state, tenant_id).await? else {
        return Ok(());
    };
    let done = ingest::completed_among(&state.db, tenant_id, &[pid.to_owned()]).await?;
    if !done.is_empty() {
        return Ok(());
    }
    let client = loaded.pabx_client().map_err(job_error)?;
    let since = ts(ctx.payload.get("since")).map(|t| t - Duration::minutes(1));
    let filter = CallFilter {
        since,
        until: None,
        call_id: Some(pid.to_owned()),
    };
    let page = client
        .list_calls(&filter, PageRequest::first(10))
        .await
        .map_err(|e| job_error(pabx_error(e)))?;
    let found: Vec<Observed> = page
        .items
        .into_iter()
        .filter(|r| r.provider_call_id == pid)
        .map(Observed::from)
        .collect();
    if found.is_empty() {
        return Err(JobError::retry(
            "registro da chamada ainda não disponível no PABX",
        ));
    }
    ingest::ingest(&state, tenant_id, &loaded.pabx(), found).await?;
    Ok(())
}

/// Runs an extension sync now (`POST /api/telephony/extensions/sync`).
pub async fn sync_now(state: &AppState, tenant_id: Uuid) -> AppResult<ExtensionSync> {
    extensions::sync(state, tenant_id).await
}

async fn run_ext_sync(state: AppState, ctx: JobCtx) -> Result<(), JobError> {
    let tenant_id = tenant_of(&ctx)?;
    if active_settings(&state, tenant_id).await?.is_none() {
        return Ok(());
    }
    let s = extensions::sync(&state, tenant_id)
        .await
        .map_err(job_error)?;
    if s.imported + s.updated + s.removed > 0 {
        tracing::info!(%tenant_id, imported = s.imported, updated = s.updated, removed = s.removed, "pabx extension sync");
    }
    Ok(())
}

/// A context acting as `user_id` with their real role (a job has no request).
async fn acting_as(
    state: &AppState,
    tenant_id: Uuid,
    user_id: Uuid,
) -> AppResult<Option<TenantCtx>> {
    let Some(tenant) = state.tenants.get(&state.db, tenant_id).await? else {
        return Ok(None);
    };
    let Some((role, active)) = users::service::role_of(&state.db, tenant_id, user_id).await? else {
        return Ok(None);
    };
    Ok(active.then_some(TenantCtx {
        tenant,
        tenant_id,
        user_id,
        role,
        meta: RequestMeta {
            request_id: None,
            ip: None,
        },
    }))
}

/// The first active admin of the tenant, acting.
async fn admin_ctx(state: &AppState, tenant_id: Uuid) -> AppResult<Option<TenantCtx>> {
    let admins = users::service::active_with_role(&state.db, tenant_id, Role::Admin).await?;
    match admins.first() {
        Some(a) => acting_as(state, tenant_id, *a).await,
        None => Ok(None),
    }
}

/// The follow-up of a completed call: an inbound call from an unknown number becomes a lead
/// (when the tenant wants it), a missed call gets a callback task for the lead's owner (or the
/// next seller in the round-robin, or the extension's user), due within the tenant's SLA.
async fn run_after_call(state: AppState, ctx: JobCtx) -> Result<(), JobError> {
    let tenant_id = tenant_of(&ctx)?;
    let Some(call_id) = ctx
        .payload
        .get("call_id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
    else {
        return Err(JobError::permanent("call_id ausente"));
    };
    let Some(loaded) = active_settings(&state, tenant_id).await? else {
        return Ok(());
    };
    let settings = loaded.pabx();
    let Some(m) = call::Entity::find_by_id((tenant_id, call_id))
        .one(&state.db)
        .await?
    else {
        return Ok(());
    };
    let mut lead_id = m.lead_id;
    if lead_id.is_none()
        && m.direction == "inbound"
        && settings.auto_create_leads
        && let Some(number) = m.counterpart_e164.clone()
    {
        lead_id = Some(new_lead(&state, tenant_id, &m, &number).await?);
    }
    let missed = ingest::is_missed(&m.direction, m.outcome.as_deref());
    if missed && settings.callback_task && m.callback_task_id.is_none() {
        let Some(lead_id) = lead_id else {
            return Ok(());
        };
        callback_task(
            &state,
            tenant_id,
            &m,
            lead_id,
            settings.callback_sla_minutes,
        )
        .await?;
    }
    Ok(())
}

/// Creates the lead of an unknown inbound number (or finds one created meanwhile) and links the
/// call to it, with the call's timeline entry.
async fn new_lead(
    state: &AppState,
    tenant_id: Uuid,
    m: &call::Model,
    number: &str,
) -> Result<Uuid, JobError> {
    let existing = leads::live_by_phones(&state.db, tenant_id, &[number.to_owned()]).await?;
    let lead_id = match existing.first() {
        Some(l) => l.id,
        None => {
            let actor = admin_ctx(state, tenant_id)
                .await?
                .ok_or_else(|| JobError::permanent("empresa sem administrador ativo"))?;
            let staff = actor.grant::<Staff>()?;
            let input = LeadInput {
                name: Some(Some(format!("Ligação de {number}"))),
                phone: Some(Some(number.to_owned())),
                source: Some(Some("inbound_call".into())),
                ..LeadInput::default()
            };
            match leads::service::create(state, &staff, input, false).await {
                Ok(u) => u.commit().await?.id,
                Err(e) if e.code == jtcrm_types::ErrorCode::DuplicateLead => {
                    leads::live_by_phones(&state.db, tenant_id, &[number.to_owned()])
                        .await?
                        .first()
                        .map(|l| l.id)
                        .ok_or_else(|| JobError::retry("lead duplicado sem registro"))?
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let txn = state.begin().await?;
    let linked = call::Entity::update_many()
        .col_expr(call::Column::LeadId, Expr::value(lead_id))
        .filter(call::Column::TenantId.eq(tenant_id))
        .filter(call::Column::Id.eq(m.id))
        .filter(call::Column::LeadId.is_null())
        .exec(&*txn)
        .await?
        .rows_affected;
    if linked == 1 {
        timeline::record(
            &*txn,
            timeline::NewEntry {
                tenant_id,
                lead_id: Some(lead_id),
                opportunity_id: None,
                kind: TIMELINE_KIND,
                actor_id: m.user_id,
                summary: format!(
                    "Ligação {} de {number}",
                    if ingest::is_missed(&m.direction, m.outcome.as_deref()) {
                        "perdida"
                    } else {
                        "recebida"
                    }
                ),
                data: json!({"call_id": m.id, "direction": m.direction, "outcome": m.outcome,
                    "duration_s": m.duration_s, "talk_s": m.talk_s, "counterpart": number}),
                reference: Some(("call", m.id)),
            },
        )
        .await?;
    }
    txn.commit().await?;
    Ok(lead_id)
}

async fn callback_task(
    state: &AppState,
    tenant_id: Uuid,
    m: &call::Model,
    lead_id: Uuid,
    sla_minutes: i64,
) -> Result<(), JobError> {
    let Some(lead) = leads::find_live(&state.db, tenant_id, lead_id).await? else {
        return Ok(());
    };
    let mut candidates = vec![lead.owner_id];
    if lead.owner_id.is_none() {
        candidates.push(leads::assignment::round_robin(&state.db, tenant_id).await?);
    }
    candidates.push(m.user_id);
    let mut assignee = None;
    for c in candidates.into_iter().flatten() {
        if let Some(a) = acting_as(state, tenant_id, c).await?
            && a.is_in::<Staff>()
        {
            assignee = Some(a);
            break;
        }
    }
    // The task is created by the company's admin (who sees the lead and may assign tasks to
    // anyone), for the chosen user; without an admin, by the assignee.
    let actor = match admin_ctx(state, tenant_id).await? {
        Some(a) => a,
        None => assignee
            .clone()
            .ok_or_else(|| JobError::permanent("empresa sem usuário para o retorno"))?,
    };
    let assignee_id = assignee.map(|a| a.user_id).unwrap_or(actor.user_id);
    let staff = actor.grant::<Staff>()?;
    let who = m
        .counterpart_e164
        .as_deref()
        .unwrap_or("número desconhecido");
    let input = TaskInput {
        title: Some(format!("Retornar ligação perdida de {}", lead.name)),
        description: Some(Some(format!(
            "Ligação perdida de {who} em {} (UTC).",
            m.started_at.format("%d/%m/%Y %H:%M")
        ))),
        task_type: Some("call".into()),
        priority: Some("high".into()),
        due_at: Some(Some(Utc::now() + Duration::minutes(sla_minutes.max(1)))),
        remind_at: None,
        assignee_id: Some(assignee_id),
        lead_id: Some(Some(lead_id)),
        opportunity_id: None,
    };
    let task = tasks::service::create(state, &staff, input).await?;
    let txn = state.begin().await?;
    call::Entity::update_many()
        .col_expr(call::Column::CallbackTaskId, Expr::value(task.id))
        .filter(call::Column::TenantId.eq(tenant_id))
        .filter(call::Column::Id.eq(m.id))
        .exec(&*txn)
        .await?;
    txn.commit().await?;
    Ok(())
}
