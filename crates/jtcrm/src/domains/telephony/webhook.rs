//! `POST /api/webhooks/pabx/{token}`: the call-end events the PABX pushes. Unauthenticated and
//! rate-limited per IP; the token names the tenant (its first 32 characters) and is checked
//! against the stored hash of the tenant's current token. Whatever the body, the answer is JSON
//! or problem+json, never a 500: the tolerant parser accepts JSON (also with trailing commas),
//! forms, numbers as strings. The event creates or ends the call at once; its record (outcome,
//! durations, recordings) is fetched from the history by a job until it appears.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{Duration, Utc};
use jtcrm_integrations::pabx::event::{EventContext, MAX_EVENT_BYTES, parse_call_event};
use jtcrm_integrations::pabx::wire::sao_paulo_offset;
use jtcrm_types::Problem;
use jtcrm_types::dto::integrations::IntegrationProvider;
use jtcrm_types::dto::telephony::CallEventAccepted;
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::calls::FETCH_CDR;
use super::ingest::{self, Observed};
use super::jobs::active_settings;
use crate::domains::integrations;
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::http::extract::{ApiPath, RequestMeta};
use jtcrm_kernel::jobs::{self, NewJob};
use jtcrm_kernel::state::AppState;

/// Events per minute one IP may post (a PABX posts one per call).
pub const MAX_PER_MINUTE: u64 = 600;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(pabx_call_event))
}

async fn throttle(state: &AppState, ip: Option<&str>) -> AppResult<()> {
    let minute = Utc::now().timestamp() / 60;
    let key = format!("rl:whk:pabx:{}:{minute}", ip.unwrap_or("-"));
    let (count, ttl) = state
        .kv
        .hit(&key, 60)
        .await
        .map_err(AppError::unavailable)?;
    if count > MAX_PER_MINUTE {
        return Err(AppError::rate_limited(ttl));
    }
    Ok(())
}

/// A call event from the tenant's PABX (`callid, origem, destino, direcao, data, timestamp,
/// duracao, gravacao`, as JSON or a form). A wrong or revoked token, a disabled integration or a
/// plan without telephony: `404`.
#[utoipa::path(post, path = "/api/webhooks/pabx/{token}", tag = "webhooks",
    params(("token" = String, Path, description = "The tenant's webhook token (POST /api/integrations/pabx/webhook-token)")),
    request_body(content = String, description = "The event, JSON (tolerated: trailing commas, numbers as strings) or application/x-www-form-urlencoded", content_type = "application/json"),
    responses((status = 202, body = CallEventAccepted),
        (status = 400, description = "Unreadable event or no call id", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this IP", body = Problem, content_type = "application/problem+json")))]
pub async fn pabx_call_event(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
    body: Bytes,
) -> AppResult<(StatusCode, Json<CallEventAccepted>)> {
    throttle(&state, meta.ip.as_deref()).await?;
    let tenant_id =
        integrations::service::resolve_webhook(&state, IntegrationProvider::Pabx, &token)
            .await?
            .ok_or_else(AppError::not_found)?;
    let loaded = active_settings(&state, tenant_id)
        .await?
        .ok_or_else(AppError::not_found)?;
    if body.len() > MAX_EVENT_BYTES {
        return Err(AppError::new(
            jtcrm_types::ErrorCode::PayloadTooLarge,
            "Evento grande demais.",
        ));
    }
    let settings = loaded.pabx();
    let ctx = EventContext {
        utc_offset: sao_paulo_offset(),
        area_code: Some(settings.area_code),
    };
    let event = parse_call_event(&headers, &body, &ctx)
        .map_err(|e| AppError::bad_request(format!("Evento de chamada ilegível: {e}")))?;
    let pid = event.provider_call_id.clone();
    let since = event.occurred_at.unwrap_or_else(Utc::now);
    let (_, ids) =
        ingest::ingest(&state, tenant_id, &settings, vec![Observed::from(event)]).await?;
    let call_id = ids
        .get(&pid)
        .copied()
        .ok_or_else(|| AppError::internal_msg("evento sem chamada"))?;
    let done = ingest::completed_among(&state.db, tenant_id, std::slice::from_ref(&pid)).await?;
    if done.is_empty() {
        let txn = state.begin().await?;
        jobs::enqueue(
            &*txn,
            NewJob::new(FETCH_CDR, json!({"provider_call_id": pid, "since": since}))
                .tenant(tenant_id)
                .run_at(Utc::now() + Duration::seconds(2))
                .idempotency_key(format!("{FETCH_CDR}:{tenant_id}:{pid}"))
                .max_attempts(10),
        )
        .await?;
        txn.commit().await?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(CallEventAccepted {
            call_id,
            provider_call_id: pid,
        }),
    ))
}
