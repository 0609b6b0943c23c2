//! `/api/tenant/logo`: the company's logo, printed on its proposals and contracts. Admins upload
//! it (PNG or JPEG, up to 1 MiB, as the raw request body); every user of the company can read it.

use std::collections::HashMap;

use axum::Json;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use jtcrm_types::dto::contracts::FileInfo;
use jtcrm_types::{ErrorCode, Problem};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::{NewFile, kinds};
use axum::response::Response;
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Admins, Authorized};
use jtcrm_kernel::state::AppState;

/// Largest logo accepted.
pub const MAX_LOGO_BYTES: usize = 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(
        routes!(get_logo, put_logo, delete_logo)
            .layer(DefaultBodyLimit::max(MAX_LOGO_BYTES + 64 * 1024)),
    )
}

fn too_large(max: usize) -> AppError {
    AppError::new(
        ErrorCode::PayloadTooLarge,
        format!("O arquivo excede o limite de {} KiB.", max / 1024),
    )
}

/// A multipart upload read into memory: the file part named `file_field` (name, bytes) and the
/// text parts named in `texts` (each up to 4 KiB). Anything over `max` bytes is `413`.
pub struct Upload {
    pub file: Option<(String, Vec<u8>)>,
    pub texts: HashMap<String, String>,
}

fn multipart_error(e: MultipartError, max: usize) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(max)
    } else {
        AppError::bad_request(format!("Corpo multipart inválido: {}", e.body_text()))
    }
}

pub async fn read_multipart(
    multipart: Result<Multipart, MultipartRejection>,
    file_field: &str,
    texts: &[&str],
    max: usize,
) -> AppResult<Upload> {
    let mut mp = multipart.map_err(|_| {
        AppError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "Envie um formulário multipart/form-data com o arquivo na parte `{file_field}`."
            ),
        )
    })?;
    let mut out = Upload {
        file: None,
        texts: HashMap::new(),
    };
    while let Some(mut field) = mp.next_field().await.map_err(|e| multipart_error(e, max))? {
        let name = field.name().unwrap_or("").to_string();
        let mut buf = Vec::new();
        let limit = if name == file_field { max } else { 4096 };
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, max))? {
            if buf.len() + chunk.len() > limit {
                return Err(if name == file_field {
                    too_large(max)
                } else {
                    AppError::field(&name, "too_long", "Máximo de 4096 caracteres")
                });
            }
            buf.extend_from_slice(&chunk);
        }
        if name == file_field {
            if out.file.is_some() {
                return Err(AppError::field(
                    &name,
                    "too_many_files",
                    "Envie um único arquivo",
                ));
            }
            let filename = field.file_name().unwrap_or("arquivo").to_string();
            out.file = Some((filename, buf));
        } else if texts.contains(&name.as_str()) {
            let s = String::from_utf8(buf)
                .map_err(|_| AppError::field(&name, "invalid_value", "Texto UTF-8 inválido"))?;
            out.texts.insert(name, s.replace('\0', ""));
        }
    }
    Ok(out)
}

/// The company's logo (PNG or JPEG). `404` when there is none.
#[utoipa::path(get, path = "/api/tenant/logo", tag = "tenant", security(("bearer" = [])),
    responses((status = 200, description = "The logo", content((Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"))),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_logo(State(state): State<AppState>, ctx: TenantCtx) -> AppResult<Response> {
    let info = super::latest(&state.db, ctx.tenant_id, kinds::TENANT_LOGO)
        .await?
        .ok_or_else(AppError::not_found)?;
    let (info, bytes) = super::read(&state, ctx.tenant_id, info.id).await?;
    Ok(super::download(&info, bytes, true))
}

/// Upload the company's logo (admins): the PNG or JPEG image as the request body (up to 1 MiB),
/// replacing the previous one. It is printed in the header of proposals and contracts.
#[utoipa::path(put, path = "/api/tenant/logo", tag = "tenant", security(("bearer" = [])),
    request_body(content((Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg")), description = "PNG or JPEG bytes"),
    responses((status = 200, body = FileInfo),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Content-Type is not image/png or image/jpeg", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a PNG or JPEG image", body = Problem, content_type = "application/problem+json")))]
pub async fn put_logo(
    State(state): State<AppState>,
    ctx: Authorized<Admins>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> AppResult<Json<FileInfo>> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if ct != "image/png" && ct != "image/jpeg" {
        return Err(AppError::new(
            ErrorCode::UnsupportedMediaType,
            "Envie a imagem com Content-Type: image/png ou image/jpeg.",
        ));
    }
    let body = body.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(MAX_LOGO_BYTES)
        } else {
            AppError::bad_request("Não foi possível ler o corpo da requisição.")
        }
    })?;
    if body.len() > MAX_LOGO_BYTES {
        return Err(too_large(MAX_LOGO_BYTES));
    }
    let ct = match super::sniff(&body) {
        Some(ct @ ("image/png" | "image/jpeg")) => ct,
        _ => {
            return Err(AppError::field(
                "body",
                "invalid_image",
                "Envie uma imagem PNG ou JPEG",
            ));
        }
    };
    if super::image_size(&body).is_none() {
        return Err(AppError::field(
            "body",
            "invalid_image",
            "Imagem PNG ou JPEG ilegível",
        ));
    }
    super::delete_kind(&state, ctx.tenant_id, kinds::TENANT_LOGO).await?;
    let txn = state.begin().await?;
    let name = if ct == "image/png" {
        "logo.png"
    } else {
        "logo.jpg"
    };
    let info = super::save(
        &state,
        &*txn,
        NewFile {
            tenant_id: ctx.tenant_id,
            kind: kinds::TENANT_LOGO,
            name,
            content_type: ct,
            bytes: &body,
            created_by: Some(ctx.user_id),
        },
    )
    .await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            &ctx,
            "upload_logo",
            "tenant",
            ctx.tenant_id,
            serde_json::json!({"file_id": info.id, "size_bytes": info.size_bytes, "sha256": info.sha256}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(Json(info))
}

/// Remove the company's logo (admins).
#[utoipa::path(delete, path = "/api/tenant/logo", tag = "tenant", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_logo(
    State(state): State<AppState>,
    ctx: Authorized<Admins>,
) -> AppResult<StatusCode> {
    if super::delete_kind(&state, ctx.tenant_id, kinds::TENANT_LOGO).await? == 0 {
        return Err(AppError::not_found());
    }
    let txn = state.begin().await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            &ctx,
            "delete_logo",
            "tenant",
            ctx.tenant_id,
            serde_json::json!({}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
