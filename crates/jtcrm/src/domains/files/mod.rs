//! Tenant files: generated PDFs, signature evidence, the tenant's logo. The bytes live in the
//! kernel's object store (`jtcrm_kernel::files`: local under the data dir by default), the
//! metadata here. Nothing is served from a public path: the domain that owns a file checks the
//! caller's rights and streams it with [`download`]. See docs/contracts.md ("Files").

#[cfg(feature = "internals")]
pub mod model;
#[cfg(not(feature = "internals"))]
mod model;
pub mod routes;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use jtcrm_types::dto::contracts::FileInfo;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::state::AppState;
use model::file;

/// What a stored file is for (the `kind` column, part of its key).
pub mod kinds {
    pub const CONTRACT_PDF: &str = "contract_pdf";
    pub const SIGNATURE_EVIDENCE: &str = "signature_evidence";
    pub const TENANT_LOGO: &str = "tenant_logo";
}

/// Largest upload accepted (evidence scans, logos).
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;

fn to_info(m: file::Model) -> FileInfo {
    FileInfo {
        id: m.id,
        kind: m.kind,
        name: m.name,
        content_type: m.content_type,
        size_bytes: m.size_bytes,
        sha256: m.sha256,
        created_at: m.created_at,
    }
}

/// The content type of the bytes, from their signature: PDF, PNG or JPEG; `None` otherwise.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else {
        None
    }
}

/// Width and height of a PNG or JPEG image, read from its header; `None` when it is not one.
pub fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let data: krilla::Data = bytes.to_vec().into();
    let img = match sniff(bytes)? {
        "image/png" => krilla::image::Image::from_png(data, true)?,
        "image/jpeg" => krilla::image::Image::from_jpeg(data, true)?,
        _ => return None,
    };
    let (w, h) = img.size();
    (w > 0 && h > 0).then_some((w, h))
}

/// A file name safe to show and to put in `Content-Disposition`: at most 200 characters of
/// letters, digits, spaces and `._-()`; anything else becomes `_`.
pub fn clean_name(name: &str) -> String {
    let s: String = name
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | ' ' | '(' | ')') {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    let s = s.trim().to_string();
    if s.is_empty() { "arquivo".into() } else { s }
}

/// A failure of the object store as an API error: a bad key is a bug (`500`); anything else
/// (disk, network, an S3 store refusing the credentials) means the storage is unavailable
/// (`503 service_unavailable`; the cause is logged with the request id, never shown).
pub fn store_error(e: std::io::Error) -> AppError {
    if e.kind() == std::io::ErrorKind::InvalidInput {
        AppError::internal(e)
    } else {
        AppError::unavailable(anyhow::Error::new(e).context("armazenamento de arquivos"))
    }
}

/// A new file to keep.
pub struct NewFile<'a> {
    pub tenant_id: Uuid,
    pub kind: &'static str,
    pub name: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
    pub created_by: Option<Uuid>,
}

/// Writes the bytes to the object store, then the metadata row in `conn` (the caller's
/// transaction). If that transaction rolls back, the object stays unreferenced (harmless: keys
/// are random and never listed).
pub async fn save<C: ConnectionTrait>(
    state: &AppState,
    conn: &C,
    f: NewFile<'_>,
) -> AppResult<FileInfo> {
    let id = Uuid::now_v7();
    let key = format!("{}/{}/{}", f.tenant_id.simple(), f.kind, id.simple());
    state.files.put(&key, f.bytes).await.map_err(store_error)?;
    let m = file::Entity::insert(file::ActiveModel {
        tenant_id: Set(f.tenant_id),
        id: Set(id),
        kind: Set(f.kind.to_string()),
        name: Set(clean_name(f.name)),
        content_type: Set(f.content_type.chars().take(100).collect()),
        size_bytes: Set(i64::try_from(f.bytes.len()).unwrap_or(i64::MAX)),
        sha256: Set(jtcrm_kernel::security::sha256_hex_bytes(f.bytes)),
        storage_key: Set(key),
        created_by: Set(f.created_by),
        created_at: Set(Utc::now()),
        deleted_at: Set(None),
    })
    .exec_with_returning(conn)
    .await?;
    Ok(to_info(m))
}

/// A live file of the tenant's; `404` otherwise.
pub async fn info<C: ConnectionTrait>(conn: &C, tenant_id: Uuid, id: Uuid) -> AppResult<FileInfo> {
    file::Entity::find_by_id((tenant_id, id))
        .one(conn)
        .await?
        .filter(|m| m.deleted_at.is_none())
        .map(to_info)
        .ok_or_else(AppError::not_found)
}

/// The file's metadata and bytes (the caller has checked the rights); `404` when either is gone.
pub async fn read(state: &AppState, tenant_id: Uuid, id: Uuid) -> AppResult<(FileInfo, Vec<u8>)> {
    let m = file::Entity::find_by_id((tenant_id, id))
        .one(&state.db)
        .await?
        .filter(|m| m.deleted_at.is_none())
        .ok_or_else(AppError::not_found)?;
    let bytes = state
        .files
        .get(&m.storage_key)
        .await
        .map_err(store_error)?
        .ok_or_else(|| {
            tracing::error!(file_id = %m.id, key = %m.storage_key, "objeto do arquivo ausente no armazenamento");
            AppError::not_found()
        })?;
    Ok((to_info(m), bytes))
}

/// The newest live file of a kind (e.g. the tenant's logo).
pub async fn latest<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    kind: &str,
) -> AppResult<Option<FileInfo>> {
    Ok(file::Entity::find()
        .filter(file::Column::TenantId.eq(tenant_id))
        .filter(file::Column::Kind.eq(kind))
        .filter(file::Column::DeletedAt.is_null())
        .order_by_desc(file::Column::CreatedAt)
        .order_by_desc(file::Column::Id)
        .one(conn)
        .await?
        .map(to_info))
}

/// The tenant's logo bytes, if it uploaded one (for document headers).
pub async fn logo(state: &AppState, tenant_id: Uuid) -> AppResult<Option<Vec<u8>>> {
    match latest(&state.db, tenant_id, kinds::TENANT_LOGO).await? {
        Some(i) => Ok(read(state, tenant_id, i.id).await.ok().map(|(_, b)| b)),
        None => Ok(None),
    }
}

/// Marks every live file of a kind deleted and removes their objects (the logo's replacement).
pub async fn delete_kind(state: &AppState, tenant_id: Uuid, kind: &str) -> AppResult<u64> {
    let rows = file::Entity::find()
        .filter(file::Column::TenantId.eq(tenant_id))
        .filter(file::Column::Kind.eq(kind))
        .filter(file::Column::DeletedAt.is_null())
        .all(&state.db)
        .await?;
    let n = rows.len() as u64;
    for m in rows {
        let key = m.storage_key.clone();
        let mut am: file::ActiveModel = m.into();
        am.deleted_at = Set(Some(Utc::now()));
        sea_orm::ActiveModelTrait::update(am, &state.db).await?;
        if let Err(e) = state.files.delete(&key).await {
            tracing::warn!(%key, error = %e, "não foi possível remover o objeto do arquivo");
        }
    }
    Ok(n)
}

/// The bytes as a download: the stored type, `attachment` with the file's name, `nosniff`, no
/// caching by shared caches.
pub fn download(info: &FileInfo, bytes: Vec<u8>, inline: bool) -> Response {
    let mut r = (StatusCode::OK, bytes).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&info.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    let disp = format!(
        "{}; filename=\"{}\"",
        if inline { "inline" } else { "attachment" },
        info.name.replace('"', "_")
    );
    if let Ok(v) = HeaderValue::from_str(&disp) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}
