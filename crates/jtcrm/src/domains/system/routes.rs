//! `/health` and `/metrics`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use jtcrm_kernel::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(metrics))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthChecks {
    pub database: bool,
    /// `null` when Redis is not configured (in-process store).
    pub redis: Option<bool>,
    /// One entry per configured external API.
    pub external_apis: BTreeMap<String, bool>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "healthy", "checks": {"database": true, "redis": null, "external_apis": {}}, "timestamp": "2026-11-29T12:00:00Z", "version": "0.1.0"}))]
pub struct Health {
    /// `healthy` or `unhealthy`.
    pub status: String,
    pub checks: HealthChecks,
    pub timestamp: DateTime<Utc>,
    pub version: String,
}

/// Health of the service and its dependencies: `200` when healthy, `503` otherwise.
#[utoipa::path(get, path = "/health", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let (database, redis) = tokio::join!(jtcrm_kernel::db::ping(&state.db), state.kv.ping());
    let redis = redis.unwrap_or(Some(false));
    let mut external_apis = BTreeMap::new();
    // The local file store is the data dir, not an external API; an S3 store is (docs/files.md).
    if state.files.kind() != "local" {
        external_apis.insert(state.files.kind().to_string(), state.files.ping().await);
    }
    let healthy = database && redis != Some(false) && external_apis.values().all(|ok| *ok);
    let body = Health {
        status: if healthy { "healthy" } else { "unhealthy" }.into(),
        checks: HealthChecks {
            database,
            redis,
            external_apis,
        },
        timestamp: Utc::now(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    (
        if healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
}

/// Prometheus metrics: request counters and latency histograms by route and status, and requests
/// per tenant.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
