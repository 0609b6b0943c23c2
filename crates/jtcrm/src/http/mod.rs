//! HTTP layer: router assembly, cross-cutting middleware (request id, metrics, timeout, panics,
//! body limit) and the OpenAPI document served with Swagger UI at `/apidocs/`.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use jtcrm_types::ErrorCode;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::CorsLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;
use uuid::Uuid;

use crate::domains;

mod doc_rules;
pub mod openapi;
use jtcrm_kernel::error::{AppError, REQUEST_ID};
use jtcrm_kernel::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "jtcrm API",
        description = "CRM multi-empresa para operadoras e provedores (ISPs). Erros seguem RFC 9457 \
                       (`application/problem+json`) com `code` estável. Listas usam paginação por cursor \
                       (`limit`, `cursor`, `next_cursor`).",
        version = env!("CARGO_PKG_VERSION")
    ),
    modifiers(&BearerAuth),
    components(schemas(jtcrm_types::Problem, jtcrm_types::FieldError)),
    tags(
        (name = "auth", description = "Login, tokens e cadastro"),
        (name = "users", description = "Usuários da empresa"),
        (name = "tenant", description = "A própria empresa"),
        (name = "super-admin", description = "Gestão da plataforma (JT Telecom)"),
        (name = "audit", description = "Log de auditoria"),
        (name = "jobs", description = "Fila de jobs: execuções, falhas e reenvio"),
        (name = "email", description = "E-mails enviados (SMTP), status do envio e preferências de e-mail do usuário"),
        (name = "tasks", description = "Tarefas, agenda, notas e linha do tempo"),
        (name = "automations", description = "Automações (gatilho, condições, ações e histórico de execuções), cadências e horário comercial"),
        (name = "leads", description = "Leads, busca, deduplicação, campos personalizados e pontuação"),
        (name = "pipelines", description = "Pipelines (Kanban), etapas, oportunidades, quadro e conversão de leads"),
        (name = "products", description = "Catálogo de produtos e serviços de telecom"),
        (name = "proposals", description = "Propostas comerciais, modelos de proposta e de contrato, versões, envio e PDF"),
        (name = "contracts", description = "Contratos: fidelização, multa rescisória, SLA, comodato, assinatura, ativação e cancelamento"),
        (name = "dashboards", description = "Painéis e relatórios (visão geral, funil, KPIs, equipe, séries, CSV) e metas de vendas"),
        (name = "integrations", description = "Integrações da empresa (PABX): configuração, credenciais cifradas, token de webhook"),
        (name = "telephony", description = "Telefonia: ramais, clique-para-ligar, registro de chamadas, gravações e identificação de chamador"),
        (name = "webhooks", description = "Eventos enviados por sistemas externos (sem autenticação, token por empresa, limitado por IP)"),
        (name = "public", description = "Link público da proposta para o cliente (sem autenticação, limitado por IP)"),
        (name = "system", description = "Saúde e métricas")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                utoipa::openapi::security::HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        let _ = Http::new(HttpAuthScheme::Bearer);
    }
}

/// All API routes with their OpenAPI descriptions.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(domains::system::routes::router())
        .merge(domains::auth::routes::router())
        .merge(domains::users::routes::router())
        .merge(domains::tenants::routes::router())
        .merge(domains::plans::routes::router())
        .merge(domains::audit::routes::router())
        .merge(crate::domains::jobs::routes::router())
        .merge(crate::domains::email::routes::router())
        .merge(domains::leads::transfer_routes::router())
        .merge(domains::leads::routes::router())
        .merge(domains::pipelines::routes::router())
        .merge(domains::products::routes::router())
        .merge(domains::tasks::routes::router())
        .merge(domains::timeline::routes::router())
        .merge(domains::automations::routes::router())
        .merge(domains::proposals::routes::router())
        .merge(domains::proposals::public_routes::router())
        .merge(domains::contracts::routes::router())
        .merge(domains::contracts::public_routes::router())
        .merge(domains::files::routes::router())
        .merge(domains::dashboards::routes::router())
        .merge(domains::integrations::routes::router())
        .merge(domains::telephony::routes::router())
        .merge(domains::telephony::webhook::router())
}

/// The routes and their OpenAPI document (JSON), made exact by [`openapi::exact`].
fn split() -> (Router<AppState>, serde_json::Value) {
    let (router, api) = api_router().split_for_parts();
    // Serializing plain data (maps, strings, JSON values) cannot fail.
    let mut doc = serde_json::to_value(&api).unwrap_or_default();
    openapi::exact(&mut doc);
    (router, doc)
}

/// The OpenAPI document served at `/apidocs/openapi.json` and printed by `jtcrm openapi`.
pub fn openapi() -> serde_json::Value {
    split().1
}

pub fn build_router(state: AppState) -> Router {
    build_router_with(state, Router::new())
}

/// [`build_router`] with `extra` routes merged in under the same middleware (tests mount routes
/// that production never has, e.g. one that panics).
pub fn build_router_with(state: AppState, extra: Router<AppState>) -> Router {
    let (router, api) = split();
    let max_body = state.settings.max_body_bytes;
    router
        .merge(extra)
        .merge(
            SwaggerUi::new("/apidocs")
                .external_url_unchecked("/apidocs/openapi.json", api)
                // The online validator badge would load an image from swagger.io (and hand it the
                // document's URL); the page's CSP allows only this origin.
                .config(utoipa_swagger_ui::Config::default().validator_url("none")),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        // Inside the request context, so that a panic's answer is built within the request id's
        // scope (`request_id` in the body) and gets the `X-Request-Id` and security headers.
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .layer(CompressionLayer::new())
        .layer(CorsLayer::permissive().expose_headers([
            axum::http::header::HeaderName::from_static("x-request-id"),
            axum::http::header::LOCATION,
            axum::http::header::ETAG,
            axum::http::header::RETRY_AFTER,
        ]))
        .with_state(state)
}

async fn not_found() -> AppError {
    AppError::new(ErrorCode::NotFound, "Rota não encontrada.")
}

async fn method_not_allowed() -> AppError {
    AppError::new(
        ErrorCode::MethodNotAllowed,
        "Método HTTP não permitido nesta rota.",
    )
}

fn panic_response(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(request_id = ?jtcrm_kernel::error::current_request_id(), %message, "handler panicked");
    AppError::new(
        ErrorCode::Internal,
        "Erro interno. Informe o request_id ao suporte.",
    )
    .into_response()
}

/// The Swagger UI page's policy. The vendored Swagger UI loads only same-origin files (its bundle,
/// its CSS and the `swagger-initializer.js` that utoipa generates: no inline script) and fetches
/// the document and "Try it out" calls from this origin. `style-src 'unsafe-inline'` is needed:
/// Swagger UI applies inline styles as it renders (without it Chromium reports "Applying inline
/// style violates … style-src" on load) and its Markdown renderer writes `style` attributes.
/// `img-src data:` for the icons its CSS embeds. Only `/apidocs` gets this relaxed policy.
const SWAGGER_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The customer's proposal page (`/p/…`) and a signer's contract page (`/c/…`): inline styles and forms posting to itself; no
/// script at all.
const DOC_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Everything else is JSON, CSV or text: nothing to run, nothing to frame.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Headers on every response (decision: `Referrer-Policy: no-referrer`, as nothing of the API or
/// its docs page needs to send its URL to another site), plus a CSP: the Swagger UI page's, or one
/// that allows nothing.
fn security_headers(path: &str, headers: &mut axum::http::HeaderMap) {
    use axum::http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    let csp = if path == "/apidocs" || path.starts_with("/apidocs/") {
        SWAGGER_CSP
    } else if path.starts_with("/p/") || path.starts_with("/c/") {
        DOC_CSP
    } else {
        API_CSP
    };
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
}

fn valid_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| s.to_string())
}

/// Request id (accepted from the client when well-formed), timeout, access log and metrics.
async fn request_context(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(valid_request_id)
        .unwrap_or_else(|| Uuid::now_v7().to_string());
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let path = req.uri().path().to_string();
    let start = Instant::now();
    let timeout = Duration::from_secs(state.settings.request_timeout_secs.max(1));
    // Each request starts with no database scope: tenant-owned tables look empty on PostgreSQL
    // until the `TenantCtx` extractor enters the caller's tenant, or a platform route (super-admin
    // extractor, login, refresh, sign-up) enters the platform scope (jtcrm_kernel::db).
    let mut res = REQUEST_ID
        .scope(id.clone(), async move {
            match tokio::time::timeout(timeout, jtcrm_kernel::db::request(next.run(req))).await {
                Ok(res) => res,
                Err(_) => AppError::new(
                    ErrorCode::ServiceUnavailable,
                    "A requisição excedeu o tempo limite.",
                )
                .into_response(),
            }
        })
        .await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    security_headers(&path, res.headers_mut());
    let status = res.status();
    let elapsed = start.elapsed();
    let route_label = route.unwrap_or_else(|| "unmatched".to_string());
    let labels = [
        ("method", method.to_string()),
        ("route", route_label),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!("jtcrm_http_requests_total", &labels).increment(1);
    metrics::histogram!("jtcrm_http_request_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
    if status.is_server_error() {
        tracing::warn!(request_id = %id, %method, %path, status = status.as_u16(), ms = elapsed.as_millis() as u64, "request");
    } else if status != StatusCode::NOT_FOUND || !path.starts_with("/apidocs") {
        tracing::debug!(request_id = %id, %method, %path, status = status.as_u16(), ms = elapsed.as_millis() as u64, "request");
    }
    res
}
