//! Telephony on the tenant's cloud PABX (JT Telecom "suite" API, through the provider-neutral
//! `jtcrm_integrations::pabx::Pabx`): extensions kept in sync with the PABX and mapped to users
//! (plan quota `max_extensions`), click-to-call, the call log fed by the call-event webhook and
//! the periodic history poll (idempotent on the PABX's call id), caller identification by E.164,
//! missed-call follow-up, recordings, timeline, events and scoring signals. Gated by the plan's
//! `telephony` feature. See docs/telephony.md.

pub mod calls;
pub mod extensions;
pub mod ingest;
pub mod jobs;
#[cfg(feature = "internals")]
pub mod model;
#[cfg(not(feature = "internals"))]
mod model;
pub mod recordings;
pub mod routes;
pub mod webhook;

use jtcrm_types::dto::integrations::IntegrationProvider;
use jtcrm_types::dto::telephony::{
    Call, CallDirection, CallOutcome, CallRecording, CallSource, CallStatus, Extension,
    ExtensionOrigin, RecordingStatus,
};
use uuid::Uuid;

use self::model::{call, extension, recording};
use crate::domains::integrations;
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::state::AppState;

pub use jobs::register;

/// `403 feature_not_in_plan` unless the tenant's plan includes telephony.
pub fn require_feature(ctx: &TenantCtx) -> AppResult<()> {
    integrations::service::require_feature(ctx, IntegrationProvider::Pabx)
}

/// The tenant's enabled PABX settings, or `409 integration_not_configured`.
pub async fn settings(state: &AppState, tenant_id: Uuid) -> AppResult<integrations::Loaded> {
    integrations::load_enabled(
        &state.db,
        &state.secrets,
        tenant_id,
        IntegrationProvider::Pabx,
    )
    .await?
    .ok_or_else(integrations::service::not_configured)
}

pub fn extension_dto(m: extension::Model) -> Extension {
    Extension {
        id: m.id,
        provider_id: m.provider_id,
        number: m.number,
        name: m.name,
        user_id: m.user_id,
        group: m.group_name,
        area_code: m.area_code.map(i32::from),
        record_calls: m.record_calls,
        blocked: m.blocked,
        origin: ExtensionOrigin::parse(&m.origin).unwrap_or(ExtensionOrigin::Crm),
        synced_at: m.synced_at,
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
    }
}

pub fn recording_dto(m: &recording::Model) -> CallRecording {
    CallRecording {
        id: m.id,
        position: m.position,
        status: RecordingStatus::parse(&m.status).unwrap_or(RecordingStatus::Pending),
        size_bytes: m.size_bytes,
        content_type: m.content_type.clone(),
        url: format!(
            "/api/telephony/calls/{}/recordings/{}",
            m.call_id, m.position
        ),
        delete_after: m.delete_after,
    }
}

pub fn call_dto(m: call::Model, recordings: &[recording::Model]) -> Call {
    let mut recs: Vec<CallRecording> = recordings
        .iter()
        .filter(|r| r.call_id == m.id)
        .map(recording_dto)
        .collect();
    recs.sort_by_key(|r| r.position);
    Call {
        id: m.id,
        provider_call_id: m.provider_call_id,
        direction: CallDirection::parse(&m.direction).unwrap_or(CallDirection::Inbound),
        status: CallStatus::parse(&m.status).unwrap_or(CallStatus::Ended),
        outcome: m.outcome.as_deref().and_then(CallOutcome::parse),
        source: CallSource::parse(&m.source).unwrap_or(CallSource::History),
        from_number: m.from_number,
        to_number: m.to_number,
        counterpart: m.counterpart_e164,
        extension: m.extension,
        user_id: m.user_id,
        lead_id: m.lead_id,
        opportunity_id: m.opportunity_id,
        started_at: m.started_at,
        duration_s: m.duration_s,
        talk_s: m.talk_s,
        wait_s: m.wait_s,
        sip_code: m.sip_code,
        hangup_reason: m.hangup_reason,
        contact_name: m.contact_name,
        transcription: m.transcription,
        summary: m.summary,
        recordings: recs,
        callback_task_id: m.callback_task_id,
        error: m.error,
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
    }
}

/// `"2min 05s"` / `"42s"`.
pub fn human_duration(secs: i32) -> String {
    let secs = secs.max(0);
    if secs >= 60 {
        format!("{}min {:02}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}
