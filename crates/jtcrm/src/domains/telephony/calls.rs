//! Click-to-call, the call log (list with filters and keyset pagination, one call) and caller
//! lookup. Who sees a call: everyone who sees all the company's leads; sales and support users
//! (without team visibility) the calls on their own extension and the calls of their own leads.

use chrono::{DateTime, Utc};
use jtcrm_integrations::pabx::{PabxError, normalise_number};
use jtcrm_types::dto::Page;
use jtcrm_types::dto::leads::LeadSource;
use jtcrm_types::dto::telephony::{
    Call, CallDirection, CallOutcome, CallSource, CallStatus, CallerLookup, ClickToCallRequest,
    LeadMatch, LeadSuggestion,
};
use jtcrm_types::{ErrorCode, FieldError};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use uuid::Uuid;

use super::call_dto;
use super::model::{call, extension, recording};
use crate::domains::{leads, users};
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Authorized, Staff};
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::jobs::{self, NewJob};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::{audit, visibility};

/// Job that fetches one call's record (CDR) from the history until it appears.
pub const FETCH_CDR: &str = "telephony.fetch_cdr";

/// A PABX failure as an API error (never a 500).
pub fn pabx_error(e: PabxError) -> AppError {
    match e {
        PabxError::Unauthorized(m) => AppError::new(
            ErrorCode::PabxRejected,
            format!("O PABX recusou as credenciais da integração: {m}"),
        ),
        PabxError::Rejected(m) | PabxError::InvalidInput(m) => AppError::new(
            ErrorCode::PabxRejected,
            format!("O PABX recusou a operação: {m}"),
        ),
        PabxError::Transport(m) | PabxError::InvalidResponse(m) => {
            tracing::warn!(error = %m, "pabx unavailable");
            AppError::new(
                ErrorCode::PabxUnavailable,
                "O PABX não respondeu. Tente novamente em instantes.",
            )
        }
    }
}

/// Whether the caller sees the call.
pub async fn visible<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    m: &call::Model,
) -> AppResult<bool> {
    if visibility::sees_all(ctx) || m.user_id == Some(ctx.user_id) {
        return Ok(true);
    }
    match m.lead_id {
        Some(l) => Ok(leads::service::find_visible(conn, ctx, l, true)
            .await
            .is_ok()),
        None => Ok(false),
    }
}

/// A call of the tenant the caller sees; otherwise `404`.
pub async fn find_visible<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    id: Uuid,
) -> AppResult<call::Model> {
    let m = call::Entity::find_by_id((ctx.tenant_id, id))
        .one(conn)
        .await?
        .ok_or_else(AppError::not_found)?;
    if !visible(conn, ctx, &m).await? {
        return Err(AppError::not_found());
    }
    Ok(m)
}

async fn recordings_of<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    ids: Vec<Uuid>,
) -> AppResult<Vec<recording::Model>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    Ok(recording::Entity::find()
        .filter(recording::Column::TenantId.eq(tenant_id))
        .filter(recording::Column::CallId.is_in(ids))
        .all(conn)
        .await?)
}

pub async fn get(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<Call> {
    let m = find_visible(&state.db, ctx, id).await?;
    let recs = recordings_of(&state.db, ctx.tenant_id, vec![m.id]).await?;
    Ok(call_dto(m, &recs))
}

/// Query parameters of `GET /api/telephony/calls`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallQuery {
    pub user_id: Option<Uuid>,
    pub lead_id: Option<Uuid>,
    /// `inbound`, `outbound` or `internal`.
    pub direction: Option<String>,
    /// `answered`, `no_answer`, `busy`, `failed` or `canceled`.
    pub outcome: Option<String>,
    /// `dialing`, `ended`, `completed` or `failed`.
    pub status: Option<String>,
    /// Calls that started at or after this instant (RFC 3339).
    pub started_from: Option<DateTime<Utc>>,
    /// Calls that started before this instant (RFC 3339).
    pub started_to: Option<DateTime<Utc>>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub include_total: Option<bool>,
}

fn bad(field: &str, msg: &str) -> AppError {
    AppError::validation(vec![FieldError::new(field, "invalid_value", msg)])
}

/// Calls, newest first (`started_at`, then id), keyset-paginated.
pub async fn list(state: &AppState, ctx: &TenantCtx, q: CallQuery) -> AppResult<Page<Call>> {
    let limit = pagination::limit(q.limit)?;
    let mut sel = call::Entity::find().filter(call::Column::TenantId.eq(ctx.tenant_id));
    if let Some(u) = q.user_id {
        sel = sel.filter(call::Column::UserId.eq(u));
    }
    if let Some(l) = q.lead_id {
        sel = sel.filter(call::Column::LeadId.eq(l));
    }
    let text = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if let Some(d) = text(&q.direction) {
        let d = CallDirection::parse(&d)
            .ok_or_else(|| bad("direction", "Use inbound, outbound ou internal"))?;
        sel = sel.filter(call::Column::Direction.eq(d.as_str()));
    }
    if let Some(o) = text(&q.outcome) {
        let o = CallOutcome::parse(&o).ok_or_else(|| {
            bad(
                "outcome",
                "Use answered, no_answer, busy, failed ou canceled",
            )
        })?;
        sel = sel.filter(call::Column::Outcome.eq(o.as_str()));
    }
    if let Some(s) = text(&q.status) {
        let s = CallStatus::parse(&s)
            .ok_or_else(|| bad("status", "Use dialing, ended, completed ou failed"))?;
        sel = sel.filter(call::Column::Status.eq(s.as_str()));
    }
    if let (Some(f), Some(t)) = (q.started_from, q.started_to)
        && f > t
    {
        return Err(bad(
            "started_to",
            "started_to deve ser posterior a started_from",
        ));
    }
    if let Some(f) = q.started_from {
        sel = sel.filter(call::Column::StartedAt.gte(f));
    }
    if let Some(t) = q.started_to {
        sel = sel.filter(call::Column::StartedAt.lt(t));
    }
    if !visibility::sees_all(ctx) {
        sel = sel.filter(
            Condition::any()
                .add(call::Column::UserId.eq(ctx.user_id))
                .add(
                    Expr::col(call::Column::LeadId)
                        .in_subquery(leads::owned_by(ctx.tenant_id, ctx.user_id)),
                ),
        );
    }
    let page = Keyset::desc([call::Column::StartedAt, call::Column::Id])
        .paginate(&state.db, sel, q.cursor.as_deref(), limit, q.include_total)
        .await?;
    let recs = recordings_of(
        &state.db,
        ctx.tenant_id,
        page.items.iter().map(|c| c.id).collect(),
    )
    .await?;
    Ok(page.map(|m| call_dto(m, &recs)))
}

/// The extension number to ring for the caller: the requested one (their own, or any when they
/// manage the team), else the extension mapped to them, else their user profile's `extension`.
async fn pick_extension<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    requested: Option<&str>,
) -> AppResult<String> {
    if let Some(num) = requested.map(str::trim).filter(|s| !s.is_empty()) {
        let ext = extension::Entity::find()
            .filter(extension::Column::TenantId.eq(ctx.tenant_id))
            .filter(extension::Column::Number.eq(num))
            .one(conn)
            .await?
            .ok_or_else(|| {
                AppError::field("extension", "unknown_extension", "Ramal inexistente")
            })?;
        if ext.user_id != Some(ctx.user_id) && !ctx.can_manage_all() {
            return Err(AppError::new(
                ErrorCode::Forbidden,
                "Só é possível ligar pelo próprio ramal.",
            ));
        }
        return Ok(ext.number);
    }
    if let Some(ext) = extension::Entity::find()
        .filter(extension::Column::TenantId.eq(ctx.tenant_id))
        .filter(extension::Column::UserId.eq(ctx.user_id))
        .one(conn)
        .await?
    {
        return Ok(ext.number);
    }
    users::service::find(conn, ctx.tenant_id, ctx.user_id)
        .await?
        .and_then(|u| u.extension)
        .ok_or_else(|| {
            AppError::field(
                "extension",
                "no_extension",
                "Você não tem ramal: informe extension ou peça a um administrador para mapear um ramal ao seu usuário",
            )
        })
}

/// `POST /api/telephony/call`: the call row is created at once (`dialing`), then the PABX rings
/// the extension and dials the number; its answer sets the PABX's call id (the webhook and the
/// history complete the call), a refusal marks the call `failed` and answers the error.
pub async fn click_to_call(
    state: &AppState,
    ctx: &Authorized<Staff>,
    req: ClickToCallRequest,
) -> AppResult<Call> {
    let loaded = super::settings(state, ctx.tenant_id).await?;
    let settings = loaded.pabx();
    let (number, lead_id) = match (req.lead_id, req.phone.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(AppError::field(
                "phone",
                "exclusive",
                "Informe lead_id ou phone, não os dois",
            ));
        }
        (None, None) => {
            return Err(AppError::field(
                "lead_id",
                "required",
                "Informe lead_id ou phone",
            ));
        }
        (Some(id), None) => {
            let lead = leads::service::find_visible(&state.db, ctx, id, false)
                .await
                .map_err(|_| AppError::field("lead_id", "unknown_lead", "Lead inexistente"))?;
            let phone = lead
                .phone
                .clone()
                .ok_or_else(|| AppError::field("lead_id", "no_phone", "O lead não tem telefone"))?;
            (phone, Some(lead.id))
        }
        (None, Some(p)) => {
            let e164 = normalise_number(p, Some(settings.area_code))
                .ok_or_else(|| AppError::field("phone", "invalid_phone", "Telefone inválido"))?;
            // A number that is a visible lead's phone is logged on that lead.
            let found =
                leads::live_by_phones(&state.db, ctx.tenant_id, std::slice::from_ref(&e164))
                    .await?;
            let lead = found
                .iter()
                .find(|l| visibility::visible_to(ctx, l.owner_id))
                .map(|l| l.id);
            (e164, lead)
        }
    };
    let ext = pick_extension(&state.db, ctx, req.extension.as_deref()).await?;
    let client = loaded.pabx_client()?;
    let now = Utc::now();
    let id = Uuid::now_v7();
    let txn = state.begin().await?;
    call::Entity::insert(call::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(id),
        provider_call_id: Set(None),
        direction: Set(CallDirection::Outbound.as_str().into()),
        status: Set(CallStatus::Dialing.as_str().into()),
        outcome: Set(None),
        source: Set(CallSource::ClickToCall.as_str().into()),
        from_number: Set(Some(ext.clone())),
        to_number: Set(Some(number.clone())),
        counterpart_e164: Set(Some(number.clone())),
        extension: Set(Some(ext.clone())),
        user_id: Set(Some(ctx.user_id)),
        lead_id: Set(lead_id),
        opportunity_id: Set(None),
        started_at: Set(now),
        duration_s: Set(0),
        talk_s: Set(0),
        wait_s: Set(0),
        sip_code: Set(None),
        hangup_reason: Set(None),
        contact_name: Set(None),
        transcription: Set(None),
        summary: Set(None),
        recording_urls: Set(json!([])),
        error: Set(None),
        callback_task_id: Set(None),
        ended_at: Set(None),
        completed_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        version: Set(1),
    })
    .exec_without_returning(&*txn)
    .await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "click_to_call",
            "call",
            id,
            json!({"lead_id": lead_id, "extension": ext, "number": number}),
        ),
    )
    .await?;
    txn.commit().await?;
    // No transaction is held while the PABX answers (it may take seconds).
    let placed = client.click_to_call(&ext, &number).await;
    let txn = state.begin().await?;
    let result = match placed {
        Ok(r) => {
            let pid = r.provider_call_id.filter(|p| !p.is_empty());
            // The webhook or the poll may have created the row of this id meanwhile: then the
            // dialing row stays without id and is adopted by the ingestion (same extension and
            // number), never a second row.
            let taken = match &pid {
                Some(p) => call::Entity::find()
                    .filter(call::Column::TenantId.eq(ctx.tenant_id))
                    .filter(call::Column::ProviderCallId.eq(p.as_str()))
                    .one(&*txn)
                    .await?
                    .is_some(),
                None => false,
            };
            if let Some(p) = pid.as_ref().filter(|_| !taken) {
                call::Entity::update_many()
                    .col_expr(call::Column::ProviderCallId, Expr::value(p.clone()))
                    .col_expr(call::Column::UpdatedAt, Expr::value(Utc::now()))
                    .col_expr(
                        call::Column::Version,
                        Expr::col(call::Column::Version).add(1),
                    )
                    .filter(call::Column::TenantId.eq(ctx.tenant_id))
                    .filter(call::Column::Id.eq(id))
                    .exec(&*txn)
                    .await?;
                jobs::enqueue(
                    &*txn,
                    NewJob::new(FETCH_CDR, json!({"provider_call_id": p, "since": now}))
                        .tenant(ctx.tenant_id)
                        .run_at(Utc::now() + chrono::Duration::seconds(3))
                        .idempotency_key(format!("{FETCH_CDR}:{}:{p}", ctx.tenant_id))
                        .max_attempts(10),
                )
                .await?;
            }
            Ok(())
        }
        Err(e) => {
            call::Entity::update_many()
                .col_expr(
                    call::Column::Status,
                    Expr::value(CallStatus::Failed.as_str()),
                )
                .col_expr(
                    call::Column::Error,
                    Expr::value(e.to_string().chars().take(500).collect::<String>()),
                )
                .col_expr(call::Column::UpdatedAt, Expr::value(Utc::now()))
                .col_expr(
                    call::Column::Version,
                    Expr::col(call::Column::Version).add(1),
                )
                .filter(call::Column::TenantId.eq(ctx.tenant_id))
                .filter(call::Column::Id.eq(id))
                .exec(&*txn)
                .await?;
            Err(pabx_error(e))
        }
    };
    txn.commit().await?;
    result?;
    get(state, ctx, id).await
}

/// `GET /api/telephony/lookup?number=`: the leads the caller sees whose phone is this number.
pub async fn lookup(state: &AppState, ctx: &TenantCtx, number: &str) -> AppResult<CallerLookup> {
    let number = number.trim();
    if number.is_empty() {
        return Err(AppError::field("number", "required", "Campo obrigatório"));
    }
    if number.chars().count() > 40 {
        return Err(AppError::field(
            "number",
            "too_long",
            "Máximo de 40 caracteres",
        ));
    }
    let area = crate::domains::integrations::service::enabled_config(
        &state.db,
        ctx.tenant_id,
        jtcrm_types::dto::integrations::IntegrationProvider::Pabx,
    )
    .await?
    .map(|c| crate::domains::integrations::pabx::PabxSettings::from_config(&c).area_code);
    let e164 = normalise_number(number, area)
        .ok_or_else(|| AppError::field("number", "invalid_phone", "Telefone inválido"))?;
    let found =
        leads::live_by_phones(&state.db, ctx.tenant_id, std::slice::from_ref(&e164)).await?;
    let leads: Vec<LeadMatch> = found
        .into_iter()
        .filter(|l| visibility::visible_to(ctx, l.owner_id))
        .map(|l| LeadMatch {
            id: l.id,
            name: l.name,
            company: l.company,
            phone: l.phone,
            status: l.status,
            owner_id: l.owner_id,
            score: l.score,
        })
        .collect();
    let suggestion = leads.is_empty().then(|| LeadSuggestion {
        name: format!("Ligação de {e164}"),
        phone: e164.clone(),
        source: LeadSource::InboundCall,
    });
    Ok(CallerLookup {
        number: number.to_owned(),
        e164,
        leads,
        suggestion,
    })
}
