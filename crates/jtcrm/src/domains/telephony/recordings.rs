//! Call recordings: copied from the PABX's links (which expire) into the CRM's own storage by a
//! job, streamed only to users who see the call, deleted after the tenant's retention period
//! (LGPD) by a daily job.
//!
//! Storage: the kernel's object store (`jtcrm_kernel::files`, local under the data dir by
//! default), key `<tenant>/call_recording/<call>-<n>` (the tenant's prefix, as every object), kept
//! in `call_recordings.file_key`; the metadata (type, size, retention) is the recording's row.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use chrono::Utc;
use jtcrm_types::dto::telephony::RecordingStatus;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;
use uuid::Uuid;

use super::calls::find_visible;
use super::model::recording;
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::jobs::{JobCtx, JobError, Next};
use jtcrm_kernel::state::AppState;

/// Largest recording copied (a long call in WAV).
pub const MAX_RECORDING_BYTES: usize = 200 * 1024 * 1024;

/// The object key of a call's recording.
fn key_for(tenant_id: Uuid, call_id: Uuid, position: i32) -> String {
    format!(
        "{}/call_recording/{}-{position}",
        tenant_id.simple(),
        call_id.simple()
    )
}

/// A stored key, only when it is one of this tenant's.
fn own_key(tenant_id: Uuid, key: &str) -> Option<&str> {
    key.starts_with(&format!("{}/call_recording/", tenant_id.simple()))
        .then_some(key)
}

static HTTP: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(|| {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap_or_default()
});

/// What one download attempt gave.
enum Fetched {
    Ok {
        bytes: Vec<u8>,
        content_type: String,
    },
    /// The link is gone or refused (4xx): copying it again will not help.
    Gone(String),
}

async fn fetch(url: &str) -> Result<Fetched, JobError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|_| JobError::permanent(format!("link de gravação inválido: {url}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Ok(Fetched::Gone("link de gravação não é http(s)".into()));
    }
    let resp = HTTP
        .get(parsed)
        .send()
        .await
        .map_err(|e| JobError::retry(format!("download da gravação falhou: {e}")))?;
    let status = resp.status();
    if status.is_client_error() {
        return Ok(Fetched::Gone(format!("o PABX respondeu HTTP {status}")));
    }
    if !status.is_success() {
        return Err(JobError::retry(format!("o PABX respondeu HTTP {status}")));
    }
    if resp
        .content_length()
        .is_some_and(|n| n as usize > MAX_RECORDING_BYTES)
    {
        return Ok(Fetched::Gone("gravação grande demais".into()));
    }
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("audio/wav")
        .to_owned();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| JobError::retry(format!("download da gravação interrompido: {e}")))?;
    if bytes.len() > MAX_RECORDING_BYTES {
        return Ok(Fetched::Gone("gravação grande demais".into()));
    }
    Ok(Fetched::Ok {
        bytes: bytes.to_vec(),
        content_type,
    })
}

/// `telephony.recording_copy`: copies the pending recordings of one call.
pub async fn run_copy(state: AppState, ctx: JobCtx) -> Result<(), JobError> {
    let tenant_id = ctx
        .tenant_id
        .ok_or_else(|| JobError::permanent("job sem empresa"))?;
    let Some(call_id) = ctx
        .payload
        .get("call_id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
    else {
        return Err(JobError::permanent("call_id ausente"));
    };
    let pending = recording::Entity::find()
        .filter(recording::Column::TenantId.eq(tenant_id))
        .filter(recording::Column::CallId.eq(call_id))
        .filter(recording::Column::Status.eq(RecordingStatus::Pending.as_str()))
        .order_by_asc(recording::Column::Position)
        .all(&state.db)
        .await?;
    let mut retry = None;
    for r in pending {
        let (status, key, ct, size, error) = match fetch(&r.provider_url).await {
            Ok(Fetched::Ok {
                bytes,
                content_type,
            }) => {
                let key = key_for(tenant_id, call_id, r.position);
                state
                    .files
                    .put(&key, &bytes)
                    .await
                    .map_err(|e| JobError::retry(format!("armazenamento: {e}")))?;
                (
                    RecordingStatus::Stored,
                    Some(key),
                    Some(content_type),
                    Some(bytes.len() as i64),
                    None,
                )
            }
            Ok(Fetched::Gone(why)) => (RecordingStatus::Failed, None, None, None, Some(why)),
            Err(e) if ctx.is_last_attempt() => (
                RecordingStatus::Failed,
                None,
                None,
                None,
                Some(e.message().to_owned()),
            ),
            Err(e) => {
                retry = Some(e);
                continue;
            }
        };
        let txn = state.begin().await?;
        recording::Entity::update_many()
            .col_expr(recording::Column::Status, Expr::value(status.as_str()))
            .col_expr(recording::Column::FileKey, Expr::value(key))
            .col_expr(recording::Column::ContentType, Expr::value(ct))
            .col_expr(recording::Column::SizeBytes, Expr::value(size))
            .col_expr(recording::Column::Error, Expr::value(error))
            .col_expr(
                recording::Column::StoredAt,
                Expr::value((status == RecordingStatus::Stored).then(Utc::now)),
            )
            .filter(recording::Column::TenantId.eq(tenant_id))
            .filter(recording::Column::Id.eq(r.id))
            .filter(recording::Column::Status.eq(RecordingStatus::Pending.as_str()))
            .exec(&*txn)
            .await?;
        txn.commit().await?;
    }
    match retry {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `telephony.recording_retention` (daily, all tenants): deletes the files and marks the rows
/// of recordings past `delete_after`; the provider link is forgotten too.
pub async fn run_retention(state: AppState, _ctx: JobCtx) -> Result<Next, JobError> {
    let n = purge_expired(&state).await?;
    if n > 0 {
        tracing::info!(deleted = n, "gravações apagadas (retenção)");
    }
    Ok(if n >= 500 { Next::Now } else { Next::NextSlot })
}

/// Deletes up to 500 expired recordings; returns how many.
pub async fn purge_expired(state: &AppState) -> AppResult<u64> {
    let now = Utc::now();
    let due = recording::Entity::find()
        .filter(recording::Column::DeleteAfter.lte(now))
        .filter(recording::Column::Status.ne(RecordingStatus::Deleted.as_str()))
        .order_by_asc(recording::Column::DeleteAfter)
        .limit(500)
        .all(&state.db)
        .await?;
    let n = due.len() as u64;
    for r in due {
        if let Some(k) = r.file_key.as_deref().and_then(|k| own_key(r.tenant_id, k)) {
            state.files.delete(k).await.map_err(AppError::internal)?;
        }
        let txn = state.begin().await?;
        recording::Entity::update_many()
            .col_expr(
                recording::Column::Status,
                Expr::value(RecordingStatus::Deleted.as_str()),
            )
            .col_expr(recording::Column::FileKey, Expr::value(None::<String>))
            .col_expr(recording::Column::ProviderUrl, Expr::value(""))
            .col_expr(recording::Column::DeletedAt, Expr::value(now))
            .filter(recording::Column::TenantId.eq(r.tenant_id))
            .filter(recording::Column::Id.eq(r.id))
            .exec(&*txn)
            .await?;
        txn.commit().await?;
    }
    Ok(n)
}

/// The stored audio of a call's recording, for a user who sees the call; `404` otherwise (and
/// while it is not stored, or after its deletion).
pub async fn stream(
    state: &AppState,
    ctx: &TenantCtx,
    call_id: Uuid,
    position: i32,
) -> AppResult<Response> {
    let call = find_visible(&state.db, ctx, call_id).await?;
    let r = recording::Entity::find()
        .filter(recording::Column::TenantId.eq(ctx.tenant_id))
        .filter(recording::Column::CallId.eq(call.id))
        .filter(recording::Column::Position.eq(position))
        .one(&state.db)
        .await?
        .filter(|r| r.status == RecordingStatus::Stored.as_str())
        .ok_or_else(AppError::not_found)?;
    let key = r
        .file_key
        .as_deref()
        .and_then(|k| own_key(ctx.tenant_id, k))
        .ok_or_else(AppError::not_found)?;
    let bytes = state
        .files
        .get(key)
        .await
        .map_err(AppError::internal)?
        .ok_or_else(|| {
            tracing::error!(recording_id = %r.id, %key, "gravação ausente no armazenamento");
            AppError::not_found()
        })?;
    let ct = r.content_type.unwrap_or_else(|| "audio/wav".into());
    let mut res = Response::new(Body::from(bytes));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&ct).unwrap_or(HeaderValue::from_static("audio/wav")),
    );
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(res)
}
