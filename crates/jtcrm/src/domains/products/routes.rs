//! `/api/products…`: the product catalog.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jtcrm_types::Problem;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::products::{Product, ProductInput};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::ProductQuery;
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::http::extract::{
    ApiJson, ApiPath, ApiQuery, IfMatch, JsonBytes, TenantCtx, etag, parse_json,
};
use jtcrm_kernel::http::guard::{Authorized, Managers};
use jtcrm_kernel::http::idempotency;
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store::WriteMode;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_products, create_product))
        .routes(routes!(
            get_product,
            replace_product,
            patch_product,
            delete_product
        ))
}

/// List the catalog (by name).
#[utoipa::path(get, path = "/api/products", tag = "products", security(("bearer" = [])),
    params(ProductQuery),
    responses((status = 200, body = Page<Product>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_products(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<ProductQuery>,
) -> AppResult<Json<Page<Product>>> {
    Ok(Json(super::list(&state, &ctx, q).await?))
}

/// Add a product (admins and managers). The SKU is unique per tenant. Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/api/products", tag = "products", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first response")),
    request_body = ProductInput,
    responses((status = 201, body = Product, headers(("Location" = String))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "SKU in use", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_product(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> AppResult<Response> {
    let input: ProductInput = parse_json(&body)?;
    let idem = idempotency::from_headers(&headers, "POST /api/products", &body)?;
    let work = super::create(&state, &ctx, input);
    idempotency::created(&state, ctx.tenant_id, idem, "/api/products", work).await
}

/// Get a product.
#[utoipa::path(get, path = "/api/products/{id}", tag = "products", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Product), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_product(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<impl IntoResponse> {
    let p = super::get(&state, &ctx, id).await?;
    Ok((etag(p.version), Json(p)))
}

/// Replace a product (`name`, `sku`, `category`, `billing` required; absent prices become 0).
#[utoipa::path(put, path = "/api/products/{id}", tag = "products", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = ProductInput,
    responses((status = 200, body = Product),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn replace_product(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<ProductInput>,
) -> AppResult<impl IntoResponse> {
    let p = super::update(&state, &ctx, id, if_match, input, WriteMode::Replace).await?;
    Ok((etag(p.version), Json(p)))
}

/// Change some fields of a product, e.g. `{"active": false}` to deactivate it.
#[utoipa::path(patch, path = "/api/products/{id}", tag = "products", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = ProductInput,
    responses((status = 200, body = Product),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn patch_product(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<ProductInput>,
) -> AppResult<impl IntoResponse> {
    let p = super::update(&state, &ctx, id, if_match, input, WriteMode::Patch).await?;
    Ok((etag(p.version), Json(p)))
}

/// Delete a product (soft): it leaves the catalog and frees its SKU; deals keep their lines.
#[utoipa::path(delete, path = "/api/products/{id}", tag = "products", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_product(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    super::delete(&state, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
