//! `/api/proposals…` and `/api/contracts/templates…`: templates, proposals, versions, sending and
//! the PDF (authenticated).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jtcrm_types::Problem;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::proposals::{
    DocumentTemplate, Proposal, ProposalCreate, ProposalUpdate, ProposalVersion,
    SendProposalRequest, SentProposal, TemplateInput, TemplateKind,
};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::service::{self, ProposalQuery};
use super::templates::{self, TemplateQuery};
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::http::extract::{
    ApiJson, ApiPath, ApiQuery, IfMatch, JsonBytes, OptionalJson, TenantCtx, etag, parse_json,
};
use jtcrm_kernel::http::guard::{Authorized, Managers, Sellers};
use jtcrm_kernel::http::idempotency;
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store::WriteMode;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_proposal_templates, create_proposal_template))
        .routes(routes!(
            get_proposal_template,
            replace_proposal_template,
            delete_proposal_template
        ))
        .routes(routes!(list_contract_templates, create_contract_template))
        .routes(routes!(
            get_contract_template,
            replace_contract_template,
            delete_contract_template
        ))
        .routes(routes!(list_proposals, create_proposal))
        .routes(routes!(
            get_proposal,
            replace_proposal,
            patch_proposal,
            delete_proposal
        ))
        .routes(routes!(send_proposal))
        .routes(routes!(revoke_proposal_link))
        .routes(routes!(list_proposal_versions))
        .routes(routes!(get_proposal_version))
        .routes(routes!(proposal_pdf))
}

// ---------- templates ----------

async fn tpl_create(
    state: AppState,
    ctx: Authorized<Managers>,
    headers: HeaderMap,
    body: bytes::Bytes,
    kind: TemplateKind,
    path: &'static str,
) -> AppResult<Response> {
    let input: TemplateInput = parse_json(&body)?;
    let idem = idempotency::from_headers(&headers, &format!("POST {path}"), &body)?;
    let work = templates::create(&state, &ctx, kind, input);
    idempotency::created(&state, ctx.tenant_id, idem, path, work).await
}

/// Proposal templates, by name.
#[utoipa::path(get, path = "/api/proposals/templates", tag = "proposals", security(("bearer" = [])),
    params(TemplateQuery), responses((status = 200, body = Page<DocumentTemplate>)))]
pub async fn list_proposal_templates(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<TemplateQuery>,
) -> AppResult<Json<Page<DocumentTemplate>>> {
    Ok(Json(
        templates::list(&state, &ctx, TemplateKind::Proposal, q).await?,
    ))
}

/// Add a proposal template (admins and managers). Syntax errors and unknown filters answer `422`
/// naming the line and column. `is_default: true` makes it the tenant's default. Accepts
/// `Idempotency-Key`.
#[utoipa::path(post, path = "/api/proposals/templates", tag = "proposals", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first response")),
    request_body = TemplateInput,
    responses((status = 201, body = DocumentTemplate, headers(("Location" = String))),
        (status = 422, description = "Invalid fields, a template syntax error or an unknown filter (line and column in `errors`)", body = Problem, content_type = "application/problem+json")))]
pub async fn create_proposal_template(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> AppResult<Response> {
    tpl_create(
        state,
        ctx,
        headers,
        body,
        TemplateKind::Proposal,
        "/api/proposals/templates",
    )
    .await
}

/// Get a proposal template.
#[utoipa::path(get, path = "/api/proposals/templates/{id}", tag = "proposals", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = DocumentTemplate)))]
pub async fn get_proposal_template(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<impl IntoResponse> {
    let t = templates::get(&state, &ctx, TemplateKind::Proposal, id).await?;
    Ok((etag(t.version), Json(t)))
}

/// Replace a proposal template (admins and managers; `name` and `body` required).
#[utoipa::path(put, path = "/api/proposals/templates/{id}", tag = "proposals", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = TemplateInput, responses((status = 200, body = DocumentTemplate)))]
pub async fn replace_proposal_template(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<TemplateInput>,
) -> AppResult<impl IntoResponse> {
    let t = templates::update(&state, &ctx, TemplateKind::Proposal, id, if_match, input).await?;
    Ok((etag(t.version), Json(t)))
}

/// Delete a proposal template (soft; documents that named it use the default from then on).
#[utoipa::path(delete, path = "/api/proposals/templates/{id}", tag = "proposals", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 204)))]
pub async fn delete_proposal_template(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    templates::delete(&state, &ctx, TemplateKind::Proposal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Contract templates, by name.
#[utoipa::path(get, path = "/api/contracts/templates", tag = "proposals", security(("bearer" = [])),
    params(TemplateQuery), responses((status = 200, body = Page<DocumentTemplate>)))]
pub async fn list_contract_templates(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<TemplateQuery>,
) -> AppResult<Json<Page<DocumentTemplate>>> {
    Ok(Json(
        templates::list(&state, &ctx, TemplateKind::Contract, q).await?,
    ))
}

/// Add a contract template (admins and managers); same rules as proposal templates, with the
/// contract variables (`contract.term_months`, `contract.early_termination_rule`,
/// `contract.sla`, `contract.equipment`). Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/api/contracts/templates", tag = "proposals", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first response")),
    request_body = TemplateInput,
    responses((status = 201, body = DocumentTemplate, headers(("Location" = String))),
        (status = 422, description = "Invalid fields, a template syntax error or an unknown filter (line and column in `errors`)", body = Problem, content_type = "application/problem+json")))]
pub async fn create_contract_template(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> AppResult<Response> {
    tpl_create(
        state,
        ctx,
        headers,
        body,
        TemplateKind::Contract,
        "/api/contracts/templates",
    )
    .await
}

/// Get a contract template.
#[utoipa::path(get, path = "/api/contracts/templates/{id}", tag = "proposals", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = DocumentTemplate)))]
pub async fn get_contract_template(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<impl IntoResponse> {
    let t = templates::get(&state, &ctx, TemplateKind::Contract, id).await?;
    Ok((etag(t.version), Json(t)))
}

/// Replace a contract template (admins and managers).
#[utoipa::path(put, path = "/api/contracts/templates/{id}", tag = "proposals", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = TemplateInput, responses((status = 200, body = DocumentTemplate)))]
pub async fn replace_contract_template(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<TemplateInput>,
) -> AppResult<impl IntoResponse> {
    let t = templates::update(&state, &ctx, TemplateKind::Contract, id, if_match, input).await?;
    Ok((etag(t.version), Json(t)))
}

/// Delete a contract template (soft).
#[utoipa::path(delete, path = "/api/contracts/templates/{id}", tag = "proposals", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 204)))]
pub async fn delete_contract_template(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    templates::delete(&state, &ctx, TemplateKind::Contract, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------- proposals ----------

/// Proposals, newest first, filtered by status (effective: a sent proposal past `valid_until` is
/// `expired`), owner, lead, opportunity and creation period. Sales users see their own unless the
/// tenant has team visibility.
#[utoipa::path(get, path = "/api/proposals", tag = "proposals", security(("bearer" = [])),
    params(ProposalQuery), responses((status = 200, body = Page<Proposal>)))]
pub async fn list_proposals(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<ProposalQuery>,
) -> AppResult<Json<Page<Proposal>>> {
    Ok(Json(service::list(&state, &ctx, q).await?))
}

/// Create a proposal from an opportunity: its lines, term and customer are copied (then
/// editable); numbered `PROP-{year}-{seq}` per tenant without gaps. Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/api/proposals", tag = "proposals", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first response")),
    request_body = ProposalCreate,
    responses((status = 201, body = Proposal, headers(("Location" = String))),
        (status = 404, description = "The opportunity or template named in the body does not exist (or is another tenant's)", body = Problem, content_type = "application/problem+json")))]
pub async fn create_proposal(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> AppResult<Response> {
    let input: ProposalCreate = parse_json(&body)?;
    let idem = idempotency::from_headers(&headers, "POST /api/proposals", &body)?;
    let work = service::create(&state, &ctx, input);
    idempotency::created(&state, ctx.tenant_id, idem, "/api/proposals", work).await
}

/// Get a proposal.
#[utoipa::path(get, path = "/api/proposals/{id}", tag = "proposals", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Proposal)))]
pub async fn get_proposal(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<impl IntoResponse> {
    let p = service::get(&state, &ctx, id).await?;
    Ok((etag(p.version), Json(p)))
}

/// Replace the editable fields (`title`, `valid_until`, `items` required). Editing a sent or viewed
/// proposal opens a new revision in `draft` (the sent one stays readable under `/versions`) and
/// revokes the customer's link. Accepted, rejected and expired proposals answer `409`.
#[utoipa::path(put, path = "/api/proposals/{id}", tag = "proposals", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = ProposalUpdate,
    responses((status = 200, body = Proposal),
        (status = 409, description = "The proposal is accepted, rejected or expired", body = Problem, content_type = "application/problem+json")))]
pub async fn replace_proposal(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<ProposalUpdate>,
) -> AppResult<impl IntoResponse> {
    let p = service::update(&state, &ctx, id, if_match, input, WriteMode::Replace).await?;
    Ok((etag(p.version), Json(p)))
}

/// Change some fields (absent keys are kept); same revision rules as `PUT`.
#[utoipa::path(patch, path = "/api/proposals/{id}", tag = "proposals", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = ProposalUpdate,
    responses((status = 200, body = Proposal),
        (status = 409, description = "The proposal is accepted, rejected or expired", body = Problem, content_type = "application/problem+json")))]
pub async fn patch_proposal(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<ProposalUpdate>,
) -> AppResult<impl IntoResponse> {
    let p = service::update(&state, &ctx, id, if_match, input, WriteMode::Patch).await?;
    Ok((etag(p.version), Json(p)))
}

/// Delete a proposal (soft; revokes its link). Accepted proposals are kept (`409`).
#[utoipa::path(delete, path = "/api/proposals/{id}", tag = "proposals", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204),
        (status = 409, description = "Accepted proposals are kept", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_proposal(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    service::delete(&state, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The origin customers reach this server at, for the link in the e-mail: the request's `Host`
/// (and `X-Forwarded-Proto` behind a trusted proxy).
pub fn origin(state: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .unwrap_or("localhost:5000");
    let proto = state
        .settings
        .trust_proxy_headers
        .then(|| {
            headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
        })
        .flatten()
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    format!("{proto}://{host}")
}

/// Send the proposal: freezes the current revision (text and SHA-256 in `/versions`), issues a new
/// customer link (the previous one stops working), e-mails it through the job queue and moves a
/// draft to `sent`. The link is shown only in this answer.
#[utoipa::path(post, path = "/api/proposals/{id}/send", tag = "proposals", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body(content = Option<SendProposalRequest>),
    responses((status = 200, body = SentProposal),
        (status = 409, description = "The proposal is accepted, rejected or expired", body = Problem, content_type = "application/problem+json")))]
pub async fn send_proposal(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    OptionalJson(input): OptionalJson<SendProposalRequest>,
) -> AppResult<Json<SentProposal>> {
    let base = origin(&state, &headers);
    Ok(Json(
        super::send::send(&state, &ctx, id, &base, input.unwrap_or_default()).await?,
    ))
}

/// Revoke the customer's link (it then answers `404`; sending again issues a new one).
#[utoipa::path(post, path = "/api/proposals/{id}/revoke-link", tag = "proposals", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Proposal)))]
pub async fn revoke_proposal_link(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Proposal>> {
    Ok(Json(super::send::revoke_link(&state, &ctx, id).await?))
}

/// The sent revisions, oldest first, each frozen (content and SHA-256).
#[utoipa::path(get, path = "/api/proposals/{id}/versions", tag = "proposals", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Vec<ProposalVersion>)))]
pub async fn list_proposal_versions(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Vec<ProposalVersion>>> {
    Ok(Json(service::versions(&state, &ctx, id).await?))
}

/// One sent revision.
#[utoipa::path(get, path = "/api/proposals/{id}/versions/{n}", tag = "proposals", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("n" = i32, Path, description = "Revision number (1, 2, …)")),
    responses((status = 200, body = ProposalVersion)))]
pub async fn get_proposal_version(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath((id, n)): ApiPath<(Uuid, i32)>,
) -> AppResult<Json<ProposalVersion>> {
    Ok(Json(service::version_of(&state, &ctx, id, n).await?))
}

pub fn pdf_response(number: &str, bytes: Vec<u8>) -> Response {
    let disposition = format!("inline; filename=\"{number}.pdf\"");
    let mut r = (StatusCode::OK, bytes).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// The proposal as PDF (the frozen text once sent; the current draft otherwise).
#[utoipa::path(get, path = "/api/proposals/{id}/pdf", tag = "proposals", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "The PDF", content_type = "application/pdf", body = Vec<u8>)))]
pub async fn proposal_pdf(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Response> {
    let (number, bytes) = super::documents::pdf(&state, &ctx, id).await?;
    Ok(pdf_response(&number, bytes))
}
