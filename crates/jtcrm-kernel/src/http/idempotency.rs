//! `Idempotency-Key` support for `POST`: the first response is stored in the same transaction as the
//! change it reports, and a retry with the same key replays it instead of creating a second record.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use jtcrm_types::{ErrorCode, FieldError};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use serde::Serialize;
use uuid::Uuid;

use crate::error::{AppError, AppResult, is_unique_violation};
use crate::security::sha256_hex;
use crate::state::{AppState, Tx};

pub mod model {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub scope: String,
        pub fingerprint: String,
        pub status_code: i32,
        pub response: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The key sent by the client, with the request it came with.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub scope: String,
    pub fingerprint: String,
}

/// A stored response to replay.
pub struct Replay {
    pub status: u16,
    pub body: serde_json::Value,
}

/// Reads `Idempotency-Key` (1–200 visible ASCII characters).
pub fn from_headers(
    headers: &HeaderMap,
    scope: &str,
    body: &[u8],
) -> AppResult<Option<IdempotencyKey>> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v.to_str().unwrap_or("").trim();
    if key.is_empty() || key.len() > 200 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::validation(vec![FieldError::new(
            "Idempotency-Key",
            "invalid_value",
            "Idempotency-Key deve ter de 1 a 200 caracteres visíveis",
        )]));
    }
    let fingerprint = sha256_hex(&format!("{scope}\n{}", String::from_utf8_lossy(body)));
    Ok(Some(IdempotencyKey {
        key: key.to_string(),
        scope: scope.to_string(),
        fingerprint,
    }))
}

/// A previous response for this key, if any. The same key with another request is refused.
pub async fn lookup<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    k: &IdempotencyKey,
) -> AppResult<Option<Replay>> {
    let Some(row) = model::Entity::find_by_id((tenant_id, k.key.clone()))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    if row.fingerprint != k.fingerprint || row.scope != k.scope {
        return Err(AppError::new(
            ErrorCode::IdempotencyKeyReused,
            "Esta Idempotency-Key já foi usada com outra requisição.",
        ));
    }
    let body = serde_json::from_str(&row.response).unwrap_or(serde_json::Value::Null);
    Ok(Some(Replay {
        status: row.status_code as u16,
        body,
    }))
}

/// Stores the response in the caller's transaction. Returns `false` when a concurrent request with
/// the same key got there first (the caller must roll back and replay).
pub async fn store<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    k: &IdempotencyKey,
    status: u16,
    body: &serde_json::Value,
) -> AppResult<bool> {
    let row = model::ActiveModel {
        tenant_id: Set(tenant_id),
        key: Set(k.key.clone()),
        scope: Set(k.scope.clone()),
        fingerprint: Set(k.fingerprint.clone()),
        status_code: Set(i32::from(status)),
        response: Set(body.to_string()),
        created_at: Set(Utc::now()),
    };
    // ON CONFLICT DO NOTHING: a failed INSERT would abort the whole transaction on PostgreSQL.
    match model::Entity::insert(row)
        .on_conflict_do_nothing()
        .exec_without_returning(conn)
        .await
    {
        Ok(sea_orm::TryInsertResult::Inserted(n)) => Ok(n > 0),
        Ok(_) => Ok(false),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A change made in `txn` and not yet committed, with the value it produced. A service whose
/// create supports `Idempotency-Key` returns this: the route layer commits it with [`finish`], which
/// stores the response in the same transaction; any other caller just calls [`Uncommitted::commit`].
pub struct Uncommitted<T> {
    pub txn: Tx,
    pub value: T,
}

impl<T> Uncommitted<T> {
    pub fn new(txn: Tx, value: T) -> Self {
        Self { txn, value }
    }

    pub async fn commit(self) -> AppResult<T> {
        self.txn.commit().await?;
        Ok(self.value)
    }
}

/// What a create answers: its own result, or the stored response of an earlier request with the
/// same key.
pub enum Answer<T> {
    Fresh(T),
    Replay(Replay),
}

/// The stored response for `idem`, when a request with that key already completed.
pub async fn replay(
    state: &AppState,
    tenant_id: Uuid,
    idem: Option<&IdempotencyKey>,
) -> AppResult<Option<Replay>> {
    match idem {
        Some(k) => lookup(&state.db, tenant_id, k).await,
        None => Ok(None),
    }
}

/// Commits `done`, storing `status` and its value as the response for `idem` in the same
/// transaction. When a concurrent request with the same key won, rolls back and answers as it did.
pub async fn finish<T: Serialize>(
    state: &AppState,
    tenant_id: Uuid,
    idem: Option<&IdempotencyKey>,
    status: u16,
    done: Uncommitted<T>,
) -> AppResult<Answer<T>> {
    if let Some(k) = idem {
        let body = serde_json::to_value(&done.value).map_err(AppError::internal)?;
        if !store(&*done.txn, tenant_id, k, status, &body).await? {
            drop(done);
            return match lookup(&state.db, tenant_id, k).await? {
                Some(r) => Ok(Answer::Replay(r)),
                None => Err(AppError::new(
                    ErrorCode::IdempotencyKeyInUse,
                    "Requisição com esta Idempotency-Key em andamento.",
                )),
            };
        }
    }
    Ok(Answer::Fresh(done.commit().await?))
}

/// A create over HTTP: replays an earlier response for the same key, or runs `work` and answers
/// `201 Created` with its value, a `Location` of `{location}/{id}` and an `ETag` of its `version`
/// (when the value has those fields). `work` is not started when the request is a replay.
pub async fn created<T: Serialize>(
    state: &AppState,
    tenant_id: Uuid,
    idem: Option<IdempotencyKey>,
    location: &str,
    work: impl Future<Output = AppResult<Uncommitted<T>>>,
) -> AppResult<Response> {
    let (status, body) = match replay(state, tenant_id, idem.as_ref()).await? {
        Some(r) => (r.status, r.body),
        None => match finish(state, tenant_id, idem.as_ref(), 201, work.await?).await? {
            Answer::Fresh(v) => (201, serde_json::to_value(&v).map_err(AppError::internal)?),
            Answer::Replay(r) => (r.status, r.body),
        },
    };
    let mut res = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED),
        Json(&body),
    )
        .into_response();
    if let Some(id) = body.get("id").and_then(|v| v.as_str())
        && let Ok(v) = HeaderValue::from_str(&format!("{location}/{id}"))
    {
        res.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(ver) = body.get("version").and_then(|v| v.as_i64())
        && let Ok(v) = HeaderValue::from_str(&format!("\"{ver}\""))
    {
        res.headers_mut().insert(header::ETAG, v);
    }
    Ok(res)
}
