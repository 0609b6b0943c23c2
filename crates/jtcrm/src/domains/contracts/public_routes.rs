//! A signer's link, unauthenticated and rate-limited per IP: `/c/{token}` (the HTML page, its
//! PDF and the signature form) and `/api/public/contracts/{token}…` (the same as JSON).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use jtcrm_types::Problem;
use jtcrm_types::dto::contracts::{PublicContract, SignContractRequest};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::public;
use crate::domains::proposals::public_routes::{form, visitor};
use crate::domains::proposals::routes::pdf_response;
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::http::extract::{ApiJson, ApiPath, RequestMeta};
use jtcrm_kernel::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(public_contract_page))
        .routes(routes!(public_contract_page_pdf))
        .routes(routes!(public_sign_form))
        .routes(routes!(get_public_contract))
        .routes(routes!(get_public_contract_pdf))
        .routes(routes!(sign_public_contract))
}

/// The signer's page (HTML, pt-BR, mobile-friendly): the document, the PDF link and the signature
/// form. A wrong, expired or used-up token is `404`.
#[utoipa::path(get, path = "/c/{token}", tag = "public",
    params(("token" = String, Path, description = "The signer's token")),
    responses((status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 429, description = "Too many requests from this IP", body = Problem, content_type = "application/problem+json")))]
pub async fn public_contract_page(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> AppResult<Html<String>> {
    visitor(&state, &meta, &headers).await?;
    let c = public::open(&state, &token).await?;
    Ok(Html(public::page(&c, &token, None)))
}

/// The frozen PDF to be signed.
#[utoipa::path(get, path = "/c/{token}/pdf", tag = "public",
    params(("token" = String, Path, description = "The signer's token")),
    responses((status = 200, description = "The PDF", content_type = "application/pdf", body = Vec<u8>),
        (status = 429, description = "Too many requests from this IP", body = Problem, content_type = "application/problem+json")))]
pub async fn public_contract_page_pdf(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> AppResult<Response> {
    visitor(&state, &meta, &headers).await?;
    let (number, bytes) = public::pdf(&state, &token).await?;
    Ok(pdf_response(&number, bytes))
}

/// The signature form (`application/x-www-form-urlencoded`: `name`, `cpf`).
#[utoipa::path(post, path = "/c/{token}/sign", tag = "public",
    params(("token" = String, Path, description = "The signer's token")),
    request_body(content = SignContractRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The page with the outcome", content_type = "text/html", body = String),
        (status = 409, description = "Already signed: the page with the notice (HTML)", content((String = "text/html"), (Problem = "application/problem+json"))),
        (status = 422, description = "Invalid name or CPF: the page with the notice (HTML); an unreadable form is problem+json", content((String = "text/html"), (Problem = "application/problem+json"))),
        (status = 415, description = "Not a form body", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this IP", body = Problem, content_type = "application/problem+json")))]
pub async fn public_sign_form(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
    body: axum::body::Bytes,
) -> AppResult<Response> {
    let who = visitor(&state, &meta, &headers).await?;
    let input: SignContractRequest = form(&headers, &body)?;
    match public::sign(&state, &token, &who, input).await {
        Ok(c) => Ok(Html(public::page(
            &c,
            &token,
            Some("Contrato assinado. Obrigado!"),
        ))
        .into_response()),
        Err(e) if matches!(e.status().as_u16(), 409 | 422) => {
            let p = e.to_problem(None);
            let detail = p
                .errors
                .iter()
                .map(|f| f.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            let text = if detail.is_empty() { p.detail } else { detail };
            let c = public::open(&state, &token).await?;
            Ok((e.status(), Html(public::page(&c, &token, Some(&text)))).into_response())
        }
        Err(e) => Err(e),
    }
}

/// The contract as the signer sees it (JSON).
#[utoipa::path(get, path = "/api/public/contracts/{token}", tag = "public",
    params(("token" = String, Path, description = "The signer's token")),
    responses((status = 200, body = PublicContract),
        (status = 429, description = "Too many requests from this IP", body = Problem, content_type = "application/problem+json")))]
pub async fn get_public_contract(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> AppResult<Json<PublicContract>> {
    visitor(&state, &meta, &headers).await?;
    Ok(Json(public::open(&state, &token).await?))
}

/// The frozen PDF to be signed.
#[utoipa::path(get, path = "/api/public/contracts/{token}/pdf", tag = "public",
    params(("token" = String, Path, description = "The signer's token")),
    responses((status = 200, description = "The PDF", content_type = "application/pdf", body = Vec<u8>),
        (status = 429, description = "Too many requests from this IP", body = Problem, content_type = "application/problem+json")))]
pub async fn get_public_contract_pdf(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> AppResult<Response> {
    visitor(&state, &meta, &headers).await?;
    let (number, bytes) = public::pdf(&state, &token).await?;
    Ok(pdf_response(&number, bytes))
}

/// Sign: the signer's name and CPF (validated; it must match the CPF the contract names for the
/// signer, if any). Records the evidence (name, CPF, IP, user agent, time, SHA-256 of the frozen
/// PDF); the last signature makes the contract `signed` and (by default) wins its opportunity.
#[utoipa::path(post, path = "/api/public/contracts/{token}/sign", tag = "public",
    params(("token" = String, Path, description = "The signer's token")),
    request_body = SignContractRequest,
    responses((status = 200, body = PublicContract),
        (status = 409, description = "Already signed or the contract changed", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this IP", body = Problem, content_type = "application/problem+json")))]
pub async fn sign_public_contract(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
    ApiJson(input): ApiJson<SignContractRequest>,
) -> AppResult<Json<PublicContract>> {
    let who = visitor(&state, &meta, &headers).await?;
    Ok(Json(public::sign(&state, &token, &who, input).await?))
}
