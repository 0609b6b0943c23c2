//! Ingestion of what the PABX reports, from both paths: call-end events (webhook) and call
//! records (history poll, and the per-call CDR fetch after a click-to-call or an event). A call is
//! one row per `(tenant_id, provider_call_id)` (unique index), so a call seen twice — by the
//! webhook and the poll, or by two polls — is one call. A click-to-call row created before the
//! PABX gave an id is adopted by the first record of the same extension and number.
//!
//! The transition to `completed` is a conditional UPDATE (or the INSERT of a complete row), so the
//! side effects of a completion happen once: the `call.ended` event plus `call.answered` or (an
//! inbound call not answered) `call.missed`, the timeline entries of the lead and its open deal,
//! and the follow-up jobs (recordings copy, callback task / new lead / scoring signal).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use jtcrm_integrations::pabx::{CallEvent, CallRecord, Direction, Outcome};
use jtcrm_types::dto::leads::Lead;
use jtcrm_types::dto::telephony::{CallSource, CallStatus, RecordingStatus};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::human_duration;
use super::model::{call, extension, recording};
use crate::domains::integrations::pabx::PabxSettings;
use crate::domains::{leads, pipelines};
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::jobs::{self, NewJob};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::{events, timeline};

/// Job that runs the follow-up of a completed call (new lead, callback task, score).
pub const AFTER_CALL: &str = "telephony.after_call";
/// Job that copies a call's recordings into the CRM's storage.
pub const RECORDING_COPY: &str = "telephony.recording_copy";

/// The timeline kind of a call.
pub const TIMELINE_KIND: &str = "call";

/// What the call record adds to an event.
#[derive(Debug, Clone)]
pub struct Complete {
    pub outcome: Outcome,
    pub sip_code: Option<u16>,
    pub talk_s: u32,
    pub wait_s: u32,
    pub hangup_reason: Option<String>,
    pub contact_name: Option<String>,
    pub transcription: Option<String>,
    pub summary: Option<String>,
}

/// One observation of a call by either path.
#[derive(Debug, Clone)]
pub struct Observed {
    pub provider_call_id: String,
    pub direction: Direction,
    pub from_raw: Option<String>,
    pub to_raw: Option<String>,
    /// The outside party in E.164.
    pub counterpart: Option<String>,
    pub extension: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub duration_s: Option<u32>,
    pub recording_urls: Vec<String>,
    pub source: CallSource,
    /// Present when this is the PABX's call record (CDR).
    pub complete: Option<Complete>,
}

fn counterpart(direction: Direction, from: Option<&str>, to: Option<&str>) -> Option<String> {
    match direction {
        Direction::Inbound => from.map(str::to_owned),
        Direction::Outbound => to.map(str::to_owned),
        Direction::Internal => None,
    }
}

impl From<CallRecord> for Observed {
    fn from(r: CallRecord) -> Self {
        Observed {
            counterpart: counterpart(r.direction, r.from.e164.as_deref(), r.to.e164.as_deref()),
            provider_call_id: r.provider_call_id,
            direction: r.direction,
            from_raw: Some(r.from.raw).filter(|s| !s.is_empty()),
            to_raw: Some(r.to.raw).filter(|s| !s.is_empty()),
            extension: r.extension,
            started_at: r.started_at,
            duration_s: Some(r.duration_s),
            recording_urls: r.recording_urls,
            source: CallSource::History,
            complete: Some(Complete {
                outcome: r.outcome,
                sip_code: r.sip_code,
                talk_s: r.talk_s,
                wait_s: r.wait_s,
                hangup_reason: r.hangup_reason,
                contact_name: r.contact_name,
                transcription: r.transcription,
                summary: r.summary,
            }),
        }
    }
}

impl From<CallEvent> for Observed {
    fn from(e: CallEvent) -> Self {
        let from_e164 = e.from.as_ref().and_then(|p| p.e164.clone());
        let to_e164 = e.to.as_ref().and_then(|p| p.e164.clone());
        Observed {
            counterpart: counterpart(e.direction, from_e164.as_deref(), to_e164.as_deref()),
            provider_call_id: e.provider_call_id,
            direction: e.direction,
            from_raw: e.from.map(|p| p.raw),
            to_raw: e.to.map(|p| p.raw),
            extension: e.extension,
            started_at: e.occurred_at,
            duration_s: e.duration_s,
            recording_urls: e.recording_urls,
            source: CallSource::Webhook,
            complete: None,
        }
    }
}

fn outcome_str(o: Outcome) -> &'static str {
    o.as_str()
}

fn clip(s: Option<String>, n: usize) -> Option<String> {
    s.map(|s| s.chars().take(n).collect())
}

fn i32_of(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// What one ingestion did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub inserted: u64,
    pub updated: u64,
    pub completed: u64,
}

/// Ingests a batch of observations of one tenant in one transaction (retried once when a
/// concurrent ingestion inserted the same call first). Returns the call ids by provider id.
pub async fn ingest(
    state: &AppState,
    tenant_id: Uuid,
    settings: &PabxSettings,
    batch: Vec<Observed>,
) -> AppResult<(Stats, HashMap<String, Uuid>)> {
    // The same call twice in one batch: keep the most complete observation.
    let mut by_id: HashMap<String, Observed> = HashMap::with_capacity(batch.len());
    let mut order = Vec::with_capacity(batch.len());
    for o in batch {
        let id = o.provider_call_id.clone();
        match by_id.get(&id) {
            Some(prev) if prev.complete.is_some() && o.complete.is_none() => {}
            Some(_) => {
                by_id.insert(id, o);
            }
            None => {
                order.push(id.clone());
                by_id.insert(id, o);
            }
        }
    }
    let batch: Vec<Observed> = order
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .collect();
    let mut last_err = None;
    for _ in 0..3 {
        match ingest_once(state, tenant_id, settings, &batch).await {
            Ok(r) => return Ok(r),
            Err(e)
                if e.db_error().is_some_and(|d| {
                    crate::migration::unique_violation(d)
                        .is_some_and(|v| v.is(&crate::migration::UX_CALLS_PROVIDER_ID))
                }) =>
            {
                last_err = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| AppError::internal_msg("ingestion failed")))
}

struct Ctx<'a> {
    tenant_id: Uuid,
    settings: &'a PabxSettings,
    now: DateTime<Utc>,
    ext_users: HashMap<String, Uuid>,
    leads: HashMap<String, Vec<Lead>>,
    coverage_states: Vec<String>,
}

impl Ctx<'_> {
    fn user_of(&self, ext: Option<&str>) -> Option<Uuid> {
        ext.and_then(|e| self.ext_users.get(e).copied())
    }

    /// The lead of a number: the one owned by the extension's user, else the newest.
    fn lead_of(&self, number: Option<&str>, user: Option<Uuid>) -> Option<&Lead> {
        let found = self.leads.get(number?)?;
        found
            .iter()
            .find(|l| user.is_some() && l.owner_id == user)
            .or_else(|| found.first())
    }
}

async fn ingest_once(
    state: &AppState,
    tenant_id: Uuid,
    settings: &PabxSettings,
    batch: &[Observed],
) -> AppResult<(Stats, HashMap<String, Uuid>)> {
    let mut stats = Stats::default();
    let mut ids = HashMap::with_capacity(batch.len());
    if batch.is_empty() {
        return Ok((stats, ids));
    }
    let txn = state.begin().await?;
    let conn = &*txn;
    let provider_ids: Vec<String> = batch.iter().map(|o| o.provider_call_id.clone()).collect();
    let mut existing: HashMap<String, call::Model> = HashMap::new();
    for chunk in provider_ids.chunks(500) {
        for m in call::Entity::find()
            .filter(call::Column::TenantId.eq(tenant_id))
            .filter(call::Column::ProviderCallId.is_in(chunk.iter().cloned()))
            .all(conn)
            .await?
        {
            if let Some(p) = m.provider_call_id.clone() {
                existing.insert(p, m);
            }
        }
    }
    let ext_users: HashMap<String, Uuid> = extension::Entity::find()
        .filter(extension::Column::TenantId.eq(tenant_id))
        .filter(extension::Column::UserId.is_not_null())
        .all(conn)
        .await?
        .into_iter()
        .filter_map(|e| e.user_id.map(|u| (e.number, u)))
        .collect();
    let numbers: Vec<String> = {
        let set: HashSet<String> = batch
            .iter()
            .filter(|o| {
                existing
                    .get(&o.provider_call_id)
                    .is_none_or(|m| m.lead_id.is_none())
            })
            .filter_map(|o| o.counterpart.clone())
            .collect();
        set.into_iter().collect()
    };
    let mut lead_map: HashMap<String, Vec<Lead>> = HashMap::new();
    for chunk in numbers.chunks(500) {
        for l in leads::live_by_phones(conn, tenant_id, chunk).await? {
            if let Some(p) = l.phone.clone() {
                lead_map.entry(p).or_default().push(l);
            }
        }
    }
    let coverage_states = state
        .tenants
        .get(&state.db, tenant_id)
        .await?
        .map(|t| t.settings.coverage_states)
        .unwrap_or_default();
    let cx = Ctx {
        tenant_id,
        settings,
        now: Utc::now(),
        ext_users,
        leads: lead_map,
        coverage_states,
    };
    // Click-to-call rows still waiting for their PABX id (rare: the suite usually returns it).
    let orphans = call::Entity::find()
        .filter(call::Column::TenantId.eq(tenant_id))
        .filter(call::Column::ProviderCallId.is_null())
        .filter(call::Column::Status.eq(CallStatus::Dialing.as_str()))
        .filter(call::Column::CreatedAt.gt(cx.now - Duration::hours(2)))
        .order_by_asc(call::Column::CreatedAt)
        .limit(500)
        .all(conn)
        .await?;
    let mut adopted: HashSet<Uuid> = HashSet::new();
    let mut new_rows = Vec::new();
    let mut completions: Vec<call::Model> = Vec::new();
    for o in batch {
        let cur = existing.get(&o.provider_call_id).cloned().or_else(|| {
            let m = orphans.iter().find(|m| {
                !adopted.contains(&m.id)
                    && o.direction == Direction::Outbound
                    && m.extension.is_some()
                    && m.extension == o.extension
                    && m.counterpart_e164.is_some()
                    && m.counterpart_e164 == o.counterpart
            })?;
            adopted.insert(m.id);
            Some(m.clone())
        });
        match cur {
            None => {
                let row = new_row(&cx, o);
                let m: call::Model = sea_orm::TryIntoModel::try_into_model(row.clone())?;
                ids.insert(o.provider_call_id.clone(), m.id);
                if m.status == CallStatus::Completed.as_str() {
                    completions.push(m.clone());
                }
                new_rows.push(row);
                stats.inserted += 1;
            }
            Some(m) => {
                ids.insert(o.provider_call_id.clone(), m.id);
                if let Some(done) = update_existing(conn, &cx, &m, o).await? {
                    stats.updated += 1;
                    if done.status == CallStatus::Completed.as_str()
                        && m.status != CallStatus::Completed.as_str()
                    {
                        completions.push(done);
                    }
                }
            }
        }
    }
    jtcrm_kernel::db::insert_all(conn, new_rows).await?;
    stats.completed = completions.len() as u64;
    on_completed(conn, &cx, completions).await?;
    txn.commit().await?;
    Ok((stats, ids))
}

fn new_row(cx: &Ctx<'_>, o: &Observed) -> call::ActiveModel {
    let user = cx.user_of(o.extension.as_deref());
    let lead = cx.lead_of(o.counterpart.as_deref(), user);
    let complete = o.complete.as_ref();
    let status = if complete.is_some() {
        CallStatus::Completed
    } else {
        CallStatus::Ended
    };
    call::ActiveModel {
        tenant_id: Set(cx.tenant_id),
        id: Set(Uuid::now_v7()),
        provider_call_id: Set(Some(o.provider_call_id.clone())),
        direction: Set(o.direction.as_str().into()),
        status: Set(status.as_str().into()),
        outcome: Set(complete.map(|c| outcome_str(c.outcome).to_string())),
        source: Set(o.source.as_str().into()),
        from_number: Set(clip(o.from_raw.clone(), 64)),
        to_number: Set(clip(o.to_raw.clone(), 64)),
        counterpart_e164: Set(o.counterpart.clone()),
        extension: Set(clip(o.extension.clone(), 10)),
        user_id: Set(user),
        lead_id: Set(lead.map(|l| l.id)),
        opportunity_id: Set(None),
        started_at: Set(o.started_at.unwrap_or(cx.now)),
        duration_s: Set(i32_of(o.duration_s.unwrap_or(0))),
        talk_s: Set(complete.map(|c| i32_of(c.talk_s)).unwrap_or(0)),
        wait_s: Set(complete.map(|c| i32_of(c.wait_s)).unwrap_or(0)),
        sip_code: Set(complete.and_then(|c| c.sip_code).map(i32::from)),
        hangup_reason: Set(clip(complete.and_then(|c| c.hangup_reason.clone()), 200)),
        contact_name: Set(clip(complete.and_then(|c| c.contact_name.clone()), 200)),
        transcription: Set(complete.and_then(|c| c.transcription.clone())),
        summary: Set(complete.and_then(|c| c.summary.clone())),
        recording_urls: Set(json!(o.recording_urls)),
        error: Set(None),
        callback_task_id: Set(None),
        ended_at: Set(Some(cx.now)),
        completed_at: Set(complete.map(|_| cx.now)),
        created_at: Set(cx.now),
        updated_at: Set(cx.now),
        version: Set(1),
    }
}

/// Applies a new observation to an existing call; `None` when it adds nothing (an event about a
/// call already ended or completed, a record of a completed call).
async fn update_existing<C: ConnectionTrait>(
    conn: &C,
    cx: &Ctx<'_>,
    m: &call::Model,
    o: &Observed,
) -> AppResult<Option<call::Model>> {
    let completed = m.status == CallStatus::Completed.as_str();
    let mut urls: Vec<String> =
        serde_json::from_value(m.recording_urls.clone()).unwrap_or_default();
    for u in &o.recording_urls {
        if !urls.contains(u) {
            urls.push(u.clone());
        }
    }
    let mut next = m.clone();
    let known_urls = m.recording_urls.as_array().map(Vec::len).unwrap_or(0);
    match &o.complete {
        Some(_) if completed => return Ok(None),
        // An event about a call already ended: only new recording links are worth keeping.
        None if (completed || m.status == CallStatus::Ended.as_str())
            && urls.len() == known_urls =>
        {
            return Ok(None);
        }
        _ => {}
    }
    next.provider_call_id = Some(o.provider_call_id.clone());
    next.recording_urls = json!(urls);
    if next.from_number.is_none() {
        next.from_number = clip(o.from_raw.clone(), 64);
    }
    if next.to_number.is_none() {
        next.to_number = clip(o.to_raw.clone(), 64);
    }
    if next.counterpart_e164.is_none() {
        next.counterpart_e164 = o.counterpart.clone();
    }
    if next.extension.is_none() {
        next.extension = clip(o.extension.clone(), 10);
    }
    if next.user_id.is_none() {
        next.user_id = cx.user_of(next.extension.as_deref());
    }
    if next.lead_id.is_none() {
        next.lead_id = cx
            .lead_of(next.counterpart_e164.as_deref(), next.user_id)
            .map(|l| l.id);
    }
    if let Some(d) = o.duration_s {
        next.duration_s = i32_of(d);
    }
    if next.ended_at.is_none() {
        next.ended_at = Some(cx.now);
    }
    if let Some(c) = &o.complete {
        // The record is the source of truth of the call (its start, its outcome).
        if let Some(at) = o.started_at {
            next.started_at = at;
        }
        next.status = CallStatus::Completed.as_str().into();
        next.outcome = Some(outcome_str(c.outcome).into());
        next.talk_s = i32_of(c.talk_s);
        next.wait_s = i32_of(c.wait_s);
        next.sip_code = c.sip_code.map(i32::from);
        next.hangup_reason = clip(c.hangup_reason.clone(), 200);
        next.contact_name = clip(c.contact_name.clone(), 200);
        next.transcription = c.transcription.clone();
        next.summary = c.summary.clone();
        next.completed_at = Some(cx.now);
    } else if !completed {
        next.status = CallStatus::Ended.as_str().into();
    }
    next.updated_at = cx.now;
    next.version = m.version + 1;
    // Conditional on the version read: a concurrent completion makes this a no-op.
    let res = call::Entity::update_many()
        .col_expr(
            call::Column::ProviderCallId,
            Expr::value(next.provider_call_id.clone()),
        )
        .col_expr(call::Column::Status, Expr::value(next.status.clone()))
        .col_expr(call::Column::Outcome, Expr::value(next.outcome.clone()))
        .col_expr(
            call::Column::FromNumber,
            Expr::value(next.from_number.clone()),
        )
        .col_expr(call::Column::ToNumber, Expr::value(next.to_number.clone()))
        .col_expr(
            call::Column::CounterpartE164,
            Expr::value(next.counterpart_e164.clone()),
        )
        .col_expr(call::Column::Extension, Expr::value(next.extension.clone()))
        .col_expr(call::Column::UserId, Expr::value(next.user_id))
        .col_expr(call::Column::LeadId, Expr::value(next.lead_id))
        .col_expr(call::Column::StartedAt, Expr::value(next.started_at))
        .col_expr(call::Column::DurationS, Expr::value(next.duration_s))
        .col_expr(call::Column::TalkS, Expr::value(next.talk_s))
        .col_expr(call::Column::WaitS, Expr::value(next.wait_s))
        .col_expr(call::Column::SipCode, Expr::value(next.sip_code))
        .col_expr(
            call::Column::HangupReason,
            Expr::value(next.hangup_reason.clone()),
        )
        .col_expr(
            call::Column::ContactName,
            Expr::value(next.contact_name.clone()),
        )
        .col_expr(
            call::Column::Transcription,
            Expr::value(next.transcription.clone()),
        )
        .col_expr(call::Column::Summary, Expr::value(next.summary.clone()))
        .col_expr(
            call::Column::RecordingUrls,
            Expr::value(next.recording_urls.clone()),
        )
        .col_expr(call::Column::EndedAt, Expr::value(next.ended_at))
        .col_expr(call::Column::CompletedAt, Expr::value(next.completed_at))
        .col_expr(call::Column::UpdatedAt, Expr::value(next.updated_at))
        .col_expr(
            call::Column::Version,
            Expr::col(call::Column::Version).add(1),
        )
        .filter(call::Column::TenantId.eq(m.tenant_id))
        .filter(call::Column::Id.eq(m.id))
        .filter(call::Column::Version.eq(m.version))
        .exec(conn)
        .await?;
    Ok((res.rows_affected == 1).then_some(next))
}

/// The score points a completed call earns its lead: an answered call with at least
/// `answered_min_seconds` of talk, and an inbound call (the lead called).
pub fn signal_points(s: &PabxSettings, m: &call::Model) -> i32 {
    let mut points = 0;
    if m.outcome.as_deref() == Some(Outcome::Answered.as_str())
        && i64::from(m.talk_s) >= s.answered_min_seconds
    {
        points += s.answered_points;
    }
    if m.direction == Direction::Inbound.as_str() {
        points += s.inbound_points;
    }
    points
}

/// Whether a completed call is a missed inbound call.
pub fn is_missed(direction: &str, outcome: Option<&str>) -> bool {
    direction == Direction::Inbound.as_str() && outcome != Some(Outcome::Answered.as_str())
}

fn summary_of(m: &call::Model) -> String {
    let who = m
        .counterpart_e164
        .as_deref()
        .unwrap_or("número desconhecido");
    let outcome = match m.outcome.as_deref() {
        Some("answered") => format!("atendida, {}", human_duration(m.talk_s)),
        Some("no_answer") => "não atendida".into(),
        Some("busy") => "ocupado".into(),
        Some("canceled") => "cancelada".into(),
        _ => "falhou".into(),
    };
    match m.direction.as_str() {
        "inbound" if is_missed(&m.direction, m.outcome.as_deref()) => {
            format!("Ligação perdida de {who}")
        }
        "inbound" => format!("Ligação recebida de {who} — {outcome}"),
        "outbound" => format!("Ligação para {who} — {outcome}"),
        _ => format!("Ligação interna — {outcome}"),
    }
}

/// The side effects of calls that just became `completed` (in the completing transaction).
async fn on_completed<C: ConnectionTrait>(
    conn: &C,
    cx: &Ctx<'_>,
    calls: Vec<call::Model>,
) -> AppResult<()> {
    if calls.is_empty() {
        return Ok(());
    }
    let mut evs = Vec::with_capacity(calls.len() * 2);
    let mut entries = Vec::new();
    let mut recs = Vec::new();
    let retention = Duration::days(Ord::max(cx.settings.recording_retention_days, 1));
    let mut scorer: Option<leads::scoring::Scorer> = None;
    for m in &calls {
        let missed = is_missed(&m.direction, m.outcome.as_deref());
        let answered = m.outcome.as_deref() == Some(Outcome::Answered.as_str());
        let urls: Vec<String> =
            serde_json::from_value(m.recording_urls.clone()).unwrap_or_default();
        let data = json!({
            "call_id": m.id, "provider_call_id": m.provider_call_id, "direction": m.direction,
            "outcome": m.outcome, "duration_s": m.duration_s, "talk_s": m.talk_s,
            "counterpart": m.counterpart_e164, "extension": m.extension, "user_id": m.user_id,
            "lead_id": m.lead_id, "started_at": m.started_at, "recordings": urls.len(),
        });
        let (etype, eid) = match m.lead_id {
            Some(l) => ("lead", l),
            None => ("call", m.id),
        };
        let mut push = |event_type: &'static str| {
            evs.push(events::Event {
                tenant_id: cx.tenant_id,
                event_type,
                entity_type: etype,
                entity_id: eid,
                actor_id: m.user_id,
                data: data.clone(),
            })
        };
        push("call.ended");
        if answered {
            push("call.answered");
        }
        if missed {
            push("call.missed");
        }
        if let Some(lead_id) = m.lead_id {
            let opp = pipelines::opportunities::open_of_lead(conn, cx.tenant_id, lead_id)
                .await?
                .map(|o| o.id);
            if let Some(o) = opp {
                call::Entity::update_many()
                    .col_expr(call::Column::OpportunityId, Expr::value(o))
                    .filter(call::Column::TenantId.eq(cx.tenant_id))
                    .filter(call::Column::Id.eq(m.id))
                    .exec(conn)
                    .await?;
            }
            entries.push(timeline::NewEntry {
                tenant_id: cx.tenant_id,
                lead_id: Some(lead_id),
                opportunity_id: opp,
                kind: TIMELINE_KIND,
                actor_id: m.user_id,
                summary: summary_of(m),
                data: data.clone(),
                reference: Some(("call", m.id)),
            });
            if answered {
                leads::touch_contacted(conn, cx.tenant_id, lead_id, m.started_at).await?;
            }
            // Call signals feed the lead score (leads' scoring extension point), once per call.
            let points = signal_points(cx.settings, m);
            if points != 0 {
                if scorer.is_none() {
                    scorer = Some(
                        leads::scoring::Scorer::load(conn, cx.tenant_id, &cx.coverage_states)
                            .await?,
                    );
                }
                if let Some(sc) = &scorer {
                    leads::scoring::add_signal_points(conn, cx.tenant_id, lead_id, points, sc)
                        .await?;
                }
            }
        }
        for (i, url) in urls.iter().enumerate() {
            recs.push(recording::ActiveModel {
                tenant_id: Set(cx.tenant_id),
                id: Set(Uuid::now_v7()),
                call_id: Set(m.id),
                position: Set(i as i32 + 1),
                provider_url: Set(url.clone()),
                status: Set(RecordingStatus::Pending.as_str().into()),
                file_key: Set(None),
                content_type: Set(None),
                size_bytes: Set(None),
                error: Set(None),
                stored_at: Set(None),
                delete_after: Set(m.started_at + retention),
                deleted_at: Set(None),
                created_at: Set(cx.now),
            });
        }
        if !urls.is_empty() {
            jobs::enqueue(
                conn,
                NewJob::new(RECORDING_COPY, json!({"call_id": m.id}))
                    .tenant(cx.tenant_id)
                    .idempotency_key(format!("{RECORDING_COPY}:{}:{}", cx.tenant_id, m.id))
                    .max_attempts(8),
            )
            .await?;
        }
        // A missed call gets its callback task; an inbound call from an unknown number may
        // become a lead (tenant setting).
        let follow_up = (missed && cx.settings.callback_task)
            || (m.direction == "inbound" && m.lead_id.is_none() && cx.settings.auto_create_leads);
        if follow_up {
            jobs::enqueue(
                conn,
                NewJob::new(AFTER_CALL, json!({"call_id": m.id}))
                    .tenant(cx.tenant_id)
                    .idempotency_key(format!("{AFTER_CALL}:{}:{}", cx.tenant_id, m.id)),
            )
            .await?;
        }
    }
    // Recording rows of a call are unique by position: a second completion cannot happen, but a
    // retried transaction must not fail on them either.
    for r in recs {
        recording::Entity::insert(r)
            .on_conflict_do_nothing()
            .exec_without_returning(conn)
            .await?;
    }
    events::emit_many(conn, evs).await?;
    timeline::record_many(conn, entries).await?;
    Ok(())
}

/// The call ids (by provider id) the tenant already completed among `ids` (the poll skips them).
pub async fn completed_among<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    ids: &[String],
) -> AppResult<HashSet<String>> {
    let mut out = HashSet::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<Option<String>> = call::Entity::find()
            .select_only()
            .column(call::Column::ProviderCallId)
            .filter(call::Column::TenantId.eq(tenant_id))
            .filter(call::Column::ProviderCallId.is_in(chunk.iter().cloned()))
            .filter(call::Column::Status.eq(CallStatus::Completed.as_str()))
            .into_tuple()
            .all(conn)
            .await?;
        out.extend(rows.into_iter().flatten());
    }
    Ok(out)
}

/// For the benchmark and tests: a JSON value's string array.
pub fn urls_of(v: &Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}
