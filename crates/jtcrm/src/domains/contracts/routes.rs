//! `/api/contracts…` (authenticated): CRUD, sending for signature, signatures recorded from
//! outside, activation, cancellation with the early-termination fee, versions and PDFs.

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use jtcrm_types::Problem;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::contracts::{
    ActivateContractRequest, CancelContractRequest, Contract, ContractCreate, ContractUpdate,
    ContractVersion, SendContractRequest, SentContract, TerminationFee,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use uuid::Uuid;

use super::service::{self, ContractQuery};
use super::signing::{self, ExternalSignature};
use crate::domains::files;
use crate::domains::proposals::routes::{origin, pdf_response};
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::http::extract::{
    ApiJson, ApiPath, ApiQuery, IfMatch, JsonBytes, OptionalJson, TenantCtx, etag, parse_json,
};
use jtcrm_kernel::http::guard::{Authorized, Managers, Sellers};
use jtcrm_kernel::http::idempotency;
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store::WriteMode;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_contracts, create_contract))
        .routes(routes!(get_contract, replace_contract, delete_contract))
        .routes(routes!(send_contract))
        .routes(
            routes!(sign_contract_external)
                .layer(DefaultBodyLimit::max(files::MAX_UPLOAD_BYTES + 64 * 1024)),
        )
        .routes(routes!(activate_contract))
        .routes(routes!(cancel_contract))
        .routes(routes!(contract_termination_fee))
        .routes(routes!(list_contract_versions))
        .routes(routes!(contract_version_pdf))
        .routes(routes!(contract_pdf))
        .routes(routes!(contract_signature_evidence))
}

/// Contracts, newest first, filtered by effective status, owner, lead, opportunity, proposal and
/// creation period. Sales users see their own unless the tenant has team visibility.
#[utoipa::path(get, path = "/api/contracts", tag = "contracts", security(("bearer" = [])),
    params(ContractQuery), responses((status = 200, body = Page<Contract>)))]
pub async fn list_contracts(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<ContractQuery>,
) -> AppResult<Json<Page<Contract>>> {
    Ok(Json(service::list(&state, &ctx, q).await?))
}

/// Create a contract from an accepted proposal (`proposal_id`: its items, term and the customer
/// who accepted become the contract's, the acceptor the default signer) or from an opportunity
/// (`opportunity_id`). Numbered `CTR-{year}-{seq}` per tenant without gaps. Accepts
/// `Idempotency-Key`.
#[utoipa::path(post, path = "/api/contracts", tag = "contracts", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first response")),
    request_body = ContractCreate,
    responses((status = 201, body = Contract, headers(("Location" = String))),
        (status = 404, description = "The proposal, opportunity or template named in the body does not exist (or is another tenant's)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The proposal is not accepted", body = Problem, content_type = "application/problem+json")))]
pub async fn create_contract(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> AppResult<Response> {
    let input: ContractCreate = parse_json(&body)?;
    let idem = idempotency::from_headers(&headers, "POST /api/contracts", &body)?;
    let work = service::create(&state, &ctx, input);
    idempotency::created(&state, ctx.tenant_id, idem, "/api/contracts", work).await
}

/// Get a contract with its signers and their evidence.
#[utoipa::path(get, path = "/api/contracts/{id}", tag = "contracts", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Contract)))]
pub async fn get_contract(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<impl IntoResponse> {
    let c = service::get(&state, &ctx, id).await?;
    Ok((etag(c.version), Json(c)))
}

/// Replace the editable fields (`title` and `sla` required; absent `equipment` clears it, absent
/// `items`, `signers` and `term_months` are kept). Changing a sent or partially signed contract
/// opens a new revision in `draft`: its signatures and links are void, the sent revision stays
/// under `/versions`. Signed, active, cancelled and expired contracts answer `409`.
#[utoipa::path(put, path = "/api/contracts/{id}", tag = "contracts", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = ContractUpdate,
    responses((status = 200, body = Contract),
        (status = 409, description = "The contract is signed, active, cancelled or expired", body = Problem, content_type = "application/problem+json")))]
pub async fn replace_contract(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<ContractUpdate>,
) -> AppResult<impl IntoResponse> {
    let c = service::update(&state, &ctx, id, if_match, input, WriteMode::Replace).await?;
    Ok((etag(c.version), Json(c)))
}

/// Delete a contract nobody signed (soft; its links stop working). Contracts with a signature
/// are records and stay (`409`).
#[utoipa::path(delete, path = "/api/contracts/{id}", tag = "contracts", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204),
        (status = 409, description = "Someone signed it", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_contract(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    service::delete(&state, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send for signature through a provider (`email_link`: each pending signer gets an e-mail with a
/// personal link to review the PDF and sign with name and CPF). Freezes the revision: the PDF
/// bytes are stored and their SHA-256 is the contract's `document_sha256`. The links are shown
/// only in this answer. Plans without `e_signature` answer `403 feature_not_in_plan`.
#[utoipa::path(post, path = "/api/contracts/{id}/send", tag = "contracts", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body(content = Option<SendContractRequest>),
    responses((status = 200, body = SentContract),
        (status = 403, description = "The plan has no electronic signature (`feature_not_in_plan`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The contract is signed, active, cancelled or expired", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No items, no pending signer, or a signer without e-mail", body = Problem, content_type = "application/problem+json")))]
pub async fn send_contract(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    OptionalJson(input): OptionalJson<SendContractRequest>,
) -> AppResult<Json<SentContract>> {
    let base = origin(&state, &headers);
    Ok(Json(
        signing::send(&state, &ctx, id, &base, input.unwrap_or_default()).await?,
    ))
}

/// The multipart form of `POST /api/contracts/{id}/sign`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ExternalSignatureForm {
    /// The evidence: the signed paper scanned, a photo (PDF, PNG or JPEG, up to 10 MiB).
    #[schema(value_type = String, format = Binary)]
    pub evidence: Vec<u8>,
    /// The signer (default: the first pending one).
    pub signer_id: Option<Uuid>,
    /// Default: the signer's name.
    pub name: Option<String>,
    /// The signer's CPF, when known.
    pub cpf: Option<String>,
    /// When it was signed (RFC 3339 date-time or `aaaa-mm-dd`; default now; not in the future).
    pub signed_at: Option<String>,
}

fn parse_signed_at(s: &str) -> AppResult<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(crate::domains::proposals::service::end_of_day(
            d.pred_opt().unwrap_or(d),
        ));
    }
    Err(AppError::field(
        "signed_at",
        "invalid_value",
        "Data inválida (use aaaa-mm-dd ou RFC 3339)",
    ))
}

/// Record a signature made outside the system (in person, on paper) with an evidence file
/// (admins and managers; audited). A draft is frozen first, so the signature is bound to the
/// document's hash. When it is the last signature the contract is `signed` and (by default) its
/// opportunity won.
#[utoipa::path(post, path = "/api/contracts/{id}/sign", tag = "contracts", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body(content = ExternalSignatureForm, content_type = "multipart/form-data"),
    responses((status = 200, body = Contract),
        (status = 409, description = "Already signed by this signer, or the contract is signed, active, cancelled or expired", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No evidence file, not a PDF/PNG/JPEG, bad CPF or date", body = Problem, content_type = "application/problem+json")))]
pub async fn sign_contract_external(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
    multipart: Result<Multipart, MultipartRejection>,
) -> AppResult<Json<Contract>> {
    // Unknown or invisible contract first: 404 whatever the body.
    service::find_visible(&state.db, &ctx, id).await?;
    let up = files::routes::read_multipart(
        multipart,
        "evidence",
        &["signer_id", "name", "cpf", "signed_at"],
        files::MAX_UPLOAD_BYTES,
    )
    .await?;
    let Some((evidence_name, evidence)) = up.file.filter(|(_, b)| !b.is_empty()) else {
        return Err(AppError::field(
            "evidence",
            "required",
            "Envie o arquivo de evidência da assinatura",
        ));
    };
    let text = |k: &str| {
        up.texts
            .get(k)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let signer_id =
        match text("signer_id") {
            Some(s) => Some(Uuid::try_parse(&s).map_err(|_| {
                AppError::field("signer_id", "invalid_uuid", "Identificador inválido")
            })?),
            None => None,
        };
    let signed_at = match text("signed_at") {
        Some(s) => Some(parse_signed_at(&s)?),
        None => None,
    };
    Ok(Json(
        signing::sign_external(
            &state,
            &ctx,
            id,
            ExternalSignature {
                signer_id,
                name: text("name"),
                cpf: text("cpf"),
                signed_at,
                evidence_name,
                evidence,
            },
        )
        .await?,
    ))
}

/// Activate a signed contract (admins and managers): the services start on `start_date` (default:
/// the contract's, else today) and the loyalty term runs from it.
#[utoipa::path(post, path = "/api/contracts/{id}/activate", tag = "contracts", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body(content = Option<ActivateContractRequest>),
    responses((status = 200, body = Contract),
        (status = 409, description = "The contract is not signed", body = Problem, content_type = "application/problem+json")))]
pub async fn activate_contract(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
    OptionalJson(input): OptionalJson<ActivateContractRequest>,
) -> AppResult<Json<Contract>> {
    Ok(Json(
        signing::activate(&state, &ctx, id, input.unwrap_or_default()).await?,
    ))
}

/// Cancel a contract (admins and managers). A signed or active contract owes the early-termination
/// fee for the whole months left on `effective_date` (`termination_fee_cents`); an unsigned one is
/// withdrawn without fee and its links stop working.
#[utoipa::path(post, path = "/api/contracts/{id}/cancel", tag = "contracts", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = CancelContractRequest,
    responses((status = 200, body = Contract),
        (status = 409, description = "Already cancelled", body = Problem, content_type = "application/problem+json")))]
pub async fn cancel_contract(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<CancelContractRequest>,
) -> AppResult<Json<Contract>> {
    Ok(Json(signing::cancel(&state, &ctx, id, input).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeeQuery {
    /// The cancellation day (default today).
    pub on: Option<NaiveDate>,
}

/// The early-termination fee if the contract were cancelled on `on`.
#[utoipa::path(get, path = "/api/contracts/{id}/termination-fee", tag = "contracts", security(("bearer" = [])),
    params(("id" = Uuid, Path), FeeQuery), responses((status = 200, body = TerminationFee)))]
pub async fn contract_termination_fee(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<FeeQuery>,
) -> AppResult<Json<TerminationFee>> {
    Ok(Json(
        service::termination_fee(&state, &ctx, id, q.on).await?,
    ))
}

/// The sent revisions, oldest first, each frozen (content, PDF hash and size).
#[utoipa::path(get, path = "/api/contracts/{id}/versions", tag = "contracts", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Vec<ContractVersion>)))]
pub async fn list_contract_versions(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Vec<ContractVersion>>> {
    Ok(Json(service::versions(&state, &ctx, id).await?))
}

/// The frozen PDF of a sent revision (its SHA-256 is the version's `document_sha256`).
#[utoipa::path(get, path = "/api/contracts/{id}/versions/{n}/pdf", tag = "contracts", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("n" = i32, Path, description = "Revision number (1, 2, …)")),
    responses((status = 200, description = "The PDF", content_type = "application/pdf", body = Vec<u8>)))]
pub async fn contract_version_pdf(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath((id, n)): ApiPath<(Uuid, i32)>,
) -> AppResult<Response> {
    let (number, bytes) = service::version_pdf(&state, &ctx, id, n).await?;
    Ok(pdf_response(&number, bytes))
}

/// The contract as PDF: the frozen bytes once sent (SHA-256 = `document_sha256`), the current
/// draft rendered otherwise.
#[utoipa::path(get, path = "/api/contracts/{id}/pdf", tag = "contracts", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "The PDF", content_type = "application/pdf", body = Vec<u8>)))]
pub async fn contract_pdf(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Response> {
    let (number, bytes) = signing::pdf(&state, &ctx, id).await?;
    Ok(pdf_response(&number, bytes))
}

/// The evidence file of a signature recorded from outside the system.
#[utoipa::path(get, path = "/api/contracts/{id}/signers/{signer_id}/evidence", tag = "contracts", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("signer_id" = Uuid, Path)),
    responses((status = 200, description = "The file", content((Vec<u8> = "application/pdf"), (Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"))),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn contract_signature_evidence(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath((id, signer_id)): ApiPath<(Uuid, Uuid)>,
) -> AppResult<Response> {
    signing::evidence(&state, &ctx, id, signer_id).await
}
