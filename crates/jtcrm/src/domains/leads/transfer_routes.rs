//! `/api/leads/import…` and `/api/leads/export`: CSV import (upload, then a background job with
//! progress) and streamed CSV export for Excel pt-BR.

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jtcrm_types::Problem;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::leads::{DedupePolicy, LeadImport};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use uuid::Uuid;

use super::{export, import};
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::http::extract::{ApiPath, ApiQuery, TenantCtx};
use jtcrm_kernel::http::guard::{Authorized, Sellers};
use jtcrm_kernel::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // Overrides the global body limit for this route only (a layer nearer the handler wins).
        .routes(
            routes!(import_leads)
                .layer(DefaultBodyLimit::max(import::MAX_UPLOAD_BYTES + 64 * 1024)),
        )
        .routes(routes!(list_imports))
        .routes(routes!(get_import))
        .routes(routes!(export_leads))
}

/// The multipart form of `POST /api/leads/import`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LeadImportForm {
    /// The CSV file, up to 50 MiB: UTF-8 (with or without BOM) or Windows-1252 (Excel), separated by
    /// `;` or `,`, with a header row. Headers are recognised in Portuguese and English (Nome, E-mail,
    /// Telefone/Celular, Empresa/Razão Social, CNPJ, Cargo, Cidade, UF, CEP, Origem, Status, Tags,
    /// Observações) and `cf.<key>` or a custom field's label.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// JSON object column header → lead field, applied before the automatic recognition, e.g.
    /// `{"Razão Social": "company", "Vendedor": "owner", "Segmento": "cf.segmento"}`; `null` or `""`
    /// ignores a column. `owner` takes a user id or e-mail.
    #[schema(example = json!("{\"Razão Social\": \"company\"}"))]
    pub mapping: Option<String>,
    /// For rows matching an existing lead (same e-mail, CNPJ or phone): `skip` (default) counts them
    /// as skipped, `update` changes the existing lead with the file's non-empty cells, `create`
    /// creates a duplicate.
    pub dedupe: Option<DedupePolicy>,
    /// `true` validates and counts without writing leads (a form field: the text `true` or
    /// `false`; also `1`/`0`, `yes`/`no`, `sim`/`nao`, `on`/`off`, in any case).
    #[schema(value_type = Option<String>, pattern = r"^\s*(true|false|1|0|yes|no|sim|nao|on|off)?\s*$")]
    pub dry_run: Option<bool>,
    /// Forces `utf-8` or `windows-1252` (also `utf8`, `cp1252`, `latin1`, `latin-1`,
    /// `iso-8859-1`, `ansi`, in any case) instead of detecting it.
    #[schema(
        pattern = r"^\s*(utf-8|utf8|windows-1252|cp1252|latin1|latin-1|iso-8859-1|ansi)?\s*$"
    )]
    pub encoding: Option<String>,
    /// Forces `;`, `,` or `tab` (also a tab character or `\t`) instead of detecting it.
    #[schema(pattern = r"^(|\t|\s*(;|,|tab|TAB|\\t)\s*)$")]
    pub delimiter: Option<String>,
}

/// Import leads from a CSV file. The file is stored and processed in the background: the answer is
/// `202` with the import (status `queued`) and its `Location`; poll it for progress and row errors.
/// Admins, managers and sellers (a seller's imported leads are theirs).
#[utoipa::path(post, path = "/api/leads/import", tag = "leads", security(("bearer" = [])),
    request_body(content = LeadImportForm, content_type = "multipart/form-data"),
    responses((status = 202, body = LeadImport, headers(("Location" = String))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "File over 50 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No `file`, empty file, no header or no name column, bad options", body = Problem,
            content_type = "application/problem+json")))]
pub async fn import_leads(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> AppResult<Response> {
    let imp = import::start(&state, &ctx, &headers, multipart).await?;
    let location = format!("/api/leads/imports/{}", imp.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(imp),
    )
        .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportListQuery {
    /// Default 50, max 200.
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// CSV imports, newest first (without their row errors). Admins and managers see all of the
/// company's; other users their own.
#[utoipa::path(get, path = "/api/leads/imports", tag = "leads", security(("bearer" = [])),
    params(ImportListQuery),
    responses((status = 200, body = Page<LeadImport>),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_imports(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<ImportListQuery>,
) -> AppResult<Json<Page<LeadImport>>> {
    Ok(Json(
        import::list(&state, &ctx, q.limit, q.cursor.as_deref()).await?,
    ))
}

/// A CSV import: status, progress counters and the first 1000 row errors (`row` = line in the file).
#[utoipa::path(get, path = "/api/leads/imports/{id}", tag = "leads", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = LeadImport),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_import(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<LeadImport>> {
    Ok(Json(import::get(&state, &ctx, id).await?))
}

/// Export the leads the caller can see as CSV for Excel pt-BR (UTF-8 with BOM, `;`), with the
/// filters of the list (`limit` and `cursor` are ignored; default order oldest first). Streamed:
/// any size in constant memory. Every role may export what it can see.
#[utoipa::path(get, path = "/api/leads/export", tag = "leads", security(("bearer" = [])),
    params(export::ExportQueryDoc),
    responses((status = 200, description = "CSV: Nome;E-mail;Telefone;Empresa;CNPJ;Cargo;Origem;Status;Responsável;\
        Tags;CEP;Cidade;UF;Pontuação;Criado em;Atualizado em, then one column per custom field",
        content_type = "text/csv", body = String,
        headers(("Content-Disposition" = String, description = "attachment; filename=\"leads-AAAAMMDD.csv\""))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn export_leads(
    State(state): State<AppState>,
    ctx: TenantCtx,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    export::stream(state, ctx, raw.as_deref().unwrap_or("")).await
}
