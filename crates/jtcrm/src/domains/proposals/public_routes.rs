//! The customer's link, unauthenticated and rate-limited per IP: `/p/{token}` (the HTML page, its
//! PDF and its forms) and `/api/public/proposals/{token}…` (the same as JSON).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use jtcrm_types::Problem;
use jtcrm_types::dto::proposals::{AcceptProposalRequest, PublicProposal, RejectProposalRequest};
use serde::de::DeserializeOwned;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::public::{self, Visitor};
use super::routes::pdf_response;
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::http::extract::{ApiJson, ApiPath, RequestMeta};
use jtcrm_kernel::state::AppState;
use jtcrm_types::ErrorCode;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(public_proposal_page))
        .routes(routes!(public_proposal_page_pdf))
        .routes(routes!(public_accept_form))
        .routes(routes!(public_reject_form))
        .routes(routes!(get_public_proposal))
        .routes(routes!(get_public_proposal_pdf))
        .routes(routes!(accept_public_proposal))
        .routes(routes!(reject_public_proposal))
}

pub async fn visitor(
    state: &AppState,
    meta: &RequestMeta,
    headers: &HeaderMap,
) -> AppResult<Visitor> {
    public::throttle(state, meta.ip.as_deref()).await?;
    Ok(Visitor {
        ip: meta.ip.clone(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    })
}

/// A form body; anything but `application/x-www-form-urlencoded` is `415`.
pub fn form<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> AppResult<T> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(AppError::new(
            ErrorCode::UnsupportedMediaType,
            "Envie o formulário como application/x-www-form-urlencoded.",
        ));
    }
    serde_urlencoded::from_bytes(body).map_err(|_| AppError::bad_request("Formulário inválido."))
}

/// The proposal page (HTML, pt-BR, mobile-friendly) with the PDF link and the accept and reject
/// forms. The first opening marks the proposal `viewed`. A wrong, expired or revoked token is `404`.
#[utoipa::path(get, path = "/p/{token}", tag = "public",
    params(("token" = String, Path, description = "The link's token")),
    responses((status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 429, description = "Too many requests from this IP", body = Problem, content_type = "application/problem+json")))]
pub async fn public_proposal_page(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> AppResult<Html<String>> {
    let who = visitor(&state, &meta, &headers).await?;
    let o = public::open(&state, &token, &who).await?;
    Ok(Html(public::page(&o, &token, None)))
}

/// The proposal's PDF.
#[utoipa::path(get, path = "/p/{token}/pdf", tag = "public",
    params(("token" = String, Path, description = "The link's token")),
    responses((status = 200, description = "The PDF", content_type = "application/pdf", body = Vec<u8>),
        (status = 429, description = "Too many requests from this IP", body = Problem, content_type = "application/problem+json")))]
pub async fn public_proposal_page_pdf(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> AppResult<Response> {
    visitor(&state, &meta, &headers).await?;
    let (number, bytes) = public::pdf(&state, &token).await?;
    Ok(pdf_response(&number, bytes))
}

/// Renders a form's outcome: the page with a notice, or the error as a notice (`422`/`409`).
async fn form_outcome(
    state: &AppState,
    token: &str,
    who: &Visitor,
    result: AppResult<public::Opened>,
    ok: &str,
) -> AppResult<Response> {
    match result {
        Ok(o) => Ok(Html(public::page(&o, token, Some(ok))).into_response()),
        Err(e) if matches!(e.status().as_u16(), 409 | 422) => {
            let msg = e.to_problem(None);
            let detail = msg
                .errors
                .iter()
                .map(|f| f.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            let text = if detail.is_empty() {
                msg.detail
            } else {
                detail
            };
            let o = public::open(state, token, who).await?;
            Ok((e.status(), Html(public::page(&o, token, Some(&text)))).into_response())
        }
        Err(e) => Err(e),
    }
}

/// The accept form (`application/x-www-form-urlencoded`: `name`, `cpf`).
#[utoipa::path(post, path = "/p/{token}/accept", tag = "public",
    params(("token" = String, Path, description = "The link's token")),
    request_body(content = AcceptProposalRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The page with the outcome", content_type = "text/html", body = String),
        (status = 409, description = "Already answered: the page with the notice (HTML)", content((String = "text/html"), (Problem = "application/problem+json"))),
        (status = 422, description = "Invalid name, CPF or reason: the page with the notice (HTML); an unreadable form is problem+json", content((String = "text/html"), (Problem = "application/problem+json"))),
        (status = 415, description = "Not a form body", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this IP", body = Problem, content_type = "application/problem+json")))]
pub async fn public_accept_form(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
    body: axum::body::Bytes,
) -> AppResult<Response> {
    let who = visitor(&state, &meta, &headers).await?;
    let input: AcceptProposalRequest = form(&headers, &body)?;
    let r = public::accept(&state, &token, &who, input).await;
    form_outcome(&state, &token, &who, r, "Proposta aceita. Obrigado!").await
}

/// The reject form (`application/x-www-form-urlencoded`: `reason`).
#[utoipa::path(post, path = "/p/{token}/reject", tag = "public",
    params(("token" = String, Path, description = "The link's token")),
    request_body(content = RejectProposalRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The page with the outcome", content_type = "text/html", body = String),
        (status = 409, description = "Already answered: the page with the notice (HTML)", content((String = "text/html"), (Problem = "application/problem+json"))),
        (status = 422, description = "Invalid name, CPF or reason: the page with the notice (HTML); an unreadable form is problem+json", content((String = "text/html"), (Problem = "application/problem+json"))),
        (status = 415, description = "Not a form body", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this IP", body = Problem, content_type = "application/problem+json")))]
pub async fn public_reject_form(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
    body: axum::body::Bytes,
) -> AppResult<Response> {
    let who = visitor(&state, &meta, &headers).await?;
    let input: RejectProposalRequest = form(&headers, &body)?;
    let r = public::reject(&state, &token, &who, input).await;
    form_outcome(
        &state,
        &token,
        &who,
        r,
        "Proposta recusada. Obrigado pelo retorno.",
    )
    .await
}

/// The proposal as JSON (the frozen text, items and totals). The first opening marks it `viewed`.
#[utoipa::path(get, path = "/api/public/proposals/{token}", tag = "public",
    params(("token" = String, Path, description = "The link's token")),
    responses((status = 200, body = PublicProposal),
        (status = 429, description = "Too many requests from this IP", body = Problem, content_type = "application/problem+json")))]
pub async fn get_public_proposal(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> AppResult<Json<PublicProposal>> {
    let who = visitor(&state, &meta, &headers).await?;
    Ok(Json(public::open(&state, &token, &who).await?.proposal))
}

/// The proposal's PDF.
#[utoipa::path(get, path = "/api/public/proposals/{token}/pdf", tag = "public",
    params(("token" = String, Path, description = "The link's token")),
    responses((status = 200, description = "The PDF", content_type = "application/pdf", body = Vec<u8>),
        (status = 429, description = "Too many requests from this IP", body = Problem, content_type = "application/problem+json")))]
pub async fn get_public_proposal_pdf(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> AppResult<Response> {
    visitor(&state, &meta, &headers).await?;
    let (number, bytes) = public::pdf(&state, &token).await?;
    Ok(pdf_response(&number, bytes))
}

/// Accept: the customer's name and CPF (validated). Records the evidence (name, CPF, IP, user
/// agent, time, SHA-256 of the document) and, when the tenant configures
/// `proposal_accept_stage_id`, moves the opportunity to that stage.
#[utoipa::path(post, path = "/api/public/proposals/{token}/accept", tag = "public",
    params(("token" = String, Path, description = "The link's token")),
    request_body = AcceptProposalRequest,
    responses((status = 200, body = PublicProposal),
        (status = 409, description = "Already answered or changed", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this IP", body = Problem, content_type = "application/problem+json")))]
pub async fn accept_public_proposal(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
    ApiJson(input): ApiJson<AcceptProposalRequest>,
) -> AppResult<Json<PublicProposal>> {
    let who = visitor(&state, &meta, &headers).await?;
    Ok(Json(
        public::accept(&state, &token, &who, input).await?.proposal,
    ))
}

/// Reject, with a reason.
#[utoipa::path(post, path = "/api/public/proposals/{token}/reject", tag = "public",
    params(("token" = String, Path, description = "The link's token")),
    request_body = RejectProposalRequest,
    responses((status = 200, body = PublicProposal),
        (status = 409, description = "Already answered or changed", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this IP", body = Problem, content_type = "application/problem+json")))]
pub async fn reject_public_proposal(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
    ApiJson(input): ApiJson<RejectProposalRequest>,
) -> AppResult<Json<PublicProposal>> {
    let who = visitor(&state, &meta, &headers).await?;
    Ok(Json(
        public::reject(&state, &token, &who, input).await?.proposal,
    ))
}
