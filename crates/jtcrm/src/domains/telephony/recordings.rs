//! Call recordings: copied from the PABX's links (which expire) into the CRM's own storage by a
//! job, streamed only to users who see the call, deleted after the tenant's retention period
//! (LGPD) by a daily job.
//!
//! Storage: files under `{data_dir}/recordings/{tenant_id}/` named by call and position; the key
//! stored in `call_recordings.file_key` is relative to the data directory, so a tenant's files
//! never mix with another's.

use std::path::{Path, PathBuf};
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

fn root(state: &AppState) -> PathBuf {
    state.settings.data_dir.clone()
}

fn key_for(tenant_id: Uuid, call_id: Uuid, position: i32, ext: &str) -> String {
    format!("recordings/{tenant_id}/{call_id}-{position}.{ext}")
}

/// A stored key as a path under the data directory; `None` for anything that could escape it.
fn path_of(state: &AppState, tenant_id: Uuid, key: &str) -> Option<PathBuf> {
    let prefix = format!("recordings/{tenant_id}/");
    let name = key.strip_prefix(&prefix)?;
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return None;
    }
    Some(root(state).join(Path::new(key)))
}

fn extension_of(content_type: &str, url: &str) -> &'static str {
    let ct = content_type.to_ascii_lowercase();
    if ct.contains("mpeg") || ct.contains("mp3") || url.ends_with(".mp3") {
        "mp3"
    } else if ct.contains("ogg") || url.ends_with(".ogg") {
        "ogg"
    } else {
        "wav"
    }
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
                let key = key_for(
                    tenant_id,
                    call_id,
                    r.position,
                    extension_of(&content_type, &r.provider_url),
                );
                let path = path_of(&state, tenant_id, &key)
                    .ok_or_else(|| JobError::permanent("chave de arquivo inválida"))?;
                if let Some(dir) = path.parent() {
                    tokio::fs::create_dir_all(dir)
                        .await
                        .map_err(|e| JobError::retry(format!("armazenamento: {e}")))?;
                }
                // Written under a temporary name, then renamed: a crash leaves no half file.
                let tmp = path.with_extension("part");
                tokio::fs::write(&tmp, &bytes)
                    .await
                    .map_err(|e| JobError::retry(format!("armazenamento: {e}")))?;
                tokio::fs::rename(&tmp, &path)
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
        if let Some(p) = r
            .file_key
            .as_deref()
            .and_then(|k| path_of(state, r.tenant_id, k))
        {
            match tokio::fs::remove_file(&p).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(AppError::internal(e)),
            }
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
    let path = r
        .file_key
        .as_deref()
        .and_then(|k| path_of(state, ctx.tenant_id, k))
        .ok_or_else(AppError::not_found)?;
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(AppError::not_found()),
        Err(e) => return Err(AppError::internal(e)),
    };
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
