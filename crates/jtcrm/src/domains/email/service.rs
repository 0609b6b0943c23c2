//! Email read rules and per-user preferences. Admins and managers see every email of the company;
//! other users see the emails of leads they can see and the emails sent to themselves. Another
//! company's email is `404` and never listed.

use chrono::Utc;
use jtcrm_types::FieldError;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::Role;
use jtcrm_types::dto::email::{
    Email, EmailStatus, EmailStatusInfo, UserPreferences, UserPreferencesInput,
};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use uuid::Uuid;

use super::model::{email, preference};
use super::{send, to_dto};
use crate::domains::leads;
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::visibility;

fn sees_all(ctx: &TenantCtx) -> bool {
    matches!(ctx.role, Role::Admin | Role::Manager)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EmailQuery {
    /// Only emails about this lead.
    pub lead_id: Option<Uuid>,
    /// `queued`, `sending`, `sent`, `failed`, `dead` or `not_configured`.
    pub status: Option<String>,
    /// `automation`, `cadence`, `reminder`, `digest`, …
    pub kind: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// What a non-manager may see: emails to themselves, and emails about leads visible to them.
fn visibility(ctx: &TenantCtx) -> Condition {
    let leads_cond = if visibility::sees_all(ctx) {
        email::Column::LeadId.is_not_null()
    } else {
        email::Column::LeadId.in_subquery(leads::owned_by(ctx.tenant_id, ctx.user_id))
    };
    Condition::any()
        .add(email::Column::UserId.eq(ctx.user_id))
        .add(leads_cond)
}

pub async fn list(state: &AppState, ctx: &TenantCtx, q: EmailQuery) -> AppResult<Page<Email>> {
    let limit = pagination::limit(q.limit)?;
    let mut errors = vec![];
    let status = match q.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match EmailStatus::parse(s) {
            Some(st) => Some(st),
            None => {
                errors.push(FieldError::new(
                    "status",
                    "invalid_value",
                    "Status inválido: queued, sending, sent, failed, dead ou not_configured",
                ));
                None
            }
        },
    };
    let kind = q.kind.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if kind.is_some_and(|k| k.chars().count() > super::MAX_KIND_CHARS) {
        errors.push(FieldError::new("kind", "invalid_value", "Tipo inválido"));
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let mut sel = email::Entity::find().filter(email::Column::TenantId.eq(ctx.tenant_id));
    if !sees_all(ctx) {
        sel = sel.filter(visibility(ctx));
    }
    if let Some(l) = q.lead_id {
        sel = sel.filter(email::Column::LeadId.eq(l));
    }
    if let Some(s) = status {
        sel = sel.filter(email::Column::Status.eq(s.as_str()));
    }
    if let Some(k) = kind {
        sel = sel.filter(email::Column::Kind.eq(k));
    }
    let page = Keyset::desc([email::Column::Id])
        .paginate(&state.db, sel, q.cursor.as_deref(), limit, false)
        .await?;
    Ok(page.map(to_dto))
}

pub async fn get(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<Email> {
    let m = email::Entity::find_by_id((ctx.tenant_id, id))
        .one(&state.db)
        .await?
        .ok_or_else(AppError::not_found)?;
    if sees_all(ctx) || m.user_id == Some(ctx.user_id) {
        return Ok(to_dto(m));
    }
    match m.lead_id {
        Some(l) => {
            leads::service::find_visible(&state.db, ctx, l, true).await?;
            Ok(to_dto(m))
        }
        None => Err(AppError::not_found()),
    }
}

pub async fn status(state: &AppState, ctx: &TenantCtx) -> AppResult<EmailStatusInfo> {
    let who = send::identity(state, ctx.tenant_id).await?;
    let smtp_configured = state.settings.smtp_configured();
    let detail = if smtp_configured {
        "E-mails são enviados por SMTP.".to_string()
    } else {
        "O envio de e-mails não está configurado (SMTP_SERVER): os e-mails ficam registrados com \
         status not_configured e não são enviados."
            .to_string()
    };
    Ok(EmailStatusInfo {
        smtp_configured,
        from: who.from,
        sender_name: who.sender_name,
        reply_to: who.reply_to,
        detail,
    })
}

async fn load_prefs<C: ConnectionTrait>(conn: &C, ctx: &TenantCtx) -> AppResult<UserPreferences> {
    let p = preference::Entity::find_by_id((ctx.tenant_id, ctx.user_id))
        .one(conn)
        .await?;
    Ok(UserPreferences {
        daily_digest: p.is_some_and(|p| p.daily_digest),
    })
}

pub async fn get_preferences(state: &AppState, ctx: &TenantCtx) -> AppResult<UserPreferences> {
    load_prefs(&state.db, ctx).await
}

pub async fn put_preferences(
    state: &AppState,
    ctx: &TenantCtx,
    input: UserPreferencesInput,
) -> AppResult<UserPreferences> {
    let now = Utc::now();
    let txn = state.begin().await?;
    let before = load_prefs(&*txn, ctx).await?;
    preference::Entity::insert(preference::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        user_id: Set(ctx.user_id),
        daily_digest: Set(input.daily_digest),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([preference::Column::TenantId, preference::Column::UserId])
            .update_columns([
                preference::Column::DailyDigest,
                preference::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(&*txn)
    .await?;
    if before.daily_digest != input.daily_digest {
        audit::record(
            &*txn,
            audit::Entry::tenant(
                ctx,
                "update",
                "user_preferences",
                ctx.user_id,
                json!({"daily_digest": {"from": before.daily_digest, "to": input.daily_digest}}),
            ),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(UserPreferences {
        daily_digest: input.daily_digest,
    })
}
