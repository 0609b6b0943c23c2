//! `/api/dashboard/*` reports and `/api/quotas` over HTTP. Every role of the company may read the
//! reports (sales and support users get their own figures unless team visibility is on); only
//! managers and admins set quotas.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use jtcrm_types::Problem;
use jtcrm_types::dto::dashboards::{
    DashboardQuery, KpiFigures, OverviewFigures, QuotaInput, QuotaMonth, QuotaQuery, Report,
    SalesFunnel, Series, TeamPerformance,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{csv, quotas, service};
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::http::extract::{ApiJson, ApiQuery, TenantCtx};
use jtcrm_kernel::http::guard::{Authorized, Managers};
use jtcrm_kernel::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(overview))
        .routes(routes!(sales_funnel))
        .routes(routes!(kpis))
        .routes(routes!(team_performance))
        .routes(routes!(series))
        .routes(routes!(get_quotas, put_quotas))
}

/// Overview: new leads, open deals, won and lost in the period (top lost reasons), tasks due
/// today and overdue, calls today (when telephony exists), proposals sent/viewed/accepted.
#[utoipa::path(get, path = "/api/dashboard/overview", tag = "dashboards", security(("bearer" = [])),
    params(DashboardQuery),
    responses((status = 200, body = Report<OverviewFigures>, description = "JSON, or CSV with `format=csv`"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn overview(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<DashboardQuery>,
) -> AppResult<Response> {
    let p = service::parse(&state, &ctx, &q).await?;
    let r = service::overview(&state, &p).await?;
    if p.csv {
        let mut extra = vec![vec![]];
        extra.push(vec!["motivo de perda".to_string(), "perdidos".to_string()]);
        for x in &r.current.lost.top_reasons {
            extra.push(vec![
                csv::text(x.reason.as_deref().unwrap_or("(sem motivo)")),
                x.count.to_string(),
            ]);
        }
        return Ok(csv::response("visao-geral", &csv::report(&r, extra)?));
    }
    Ok(Json(r).into_response())
}

/// Sales funnel of a pipeline (the default one unless `pipeline_id`): per stage cards, value,
/// MRR, weighted value, stage-to-stage conversion and days in stage; lead → deal → won of the
/// leads created in the period, in total and by source.
#[utoipa::path(get, path = "/api/dashboard/sales-funnel", tag = "dashboards", security(("bearer" = [])),
    params(DashboardQuery),
    responses((status = 200, body = SalesFunnel, description = "JSON, or CSV with `format=csv`"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn sales_funnel(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<DashboardQuery>,
) -> AppResult<Response> {
    let p = service::parse(&state, &ctx, &q).await?;
    let f = service::funnel(&state, &p).await?;
    if p.csv {
        return Ok(csv::response("funil-de-vendas", &csv::funnel(&f)));
    }
    Ok(Json(f).into_response())
}

/// KPIs: win rate, average deal, sales cycle, new/churned/net new MRR, lead conversion, time to
/// first contact, activities per seller per day, automation runs.
#[utoipa::path(get, path = "/api/dashboard/kpis", tag = "dashboards", security(("bearer" = [])),
    params(DashboardQuery),
    responses((status = 200, body = Report<KpiFigures>, description = "JSON, or CSV with `format=csv`"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn kpis(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<DashboardQuery>,
) -> AppResult<Response> {
    let p = service::parse(&state, &ctx, &q).await?;
    let r = service::kpis(&state, &p).await?;
    if p.csv {
        return Ok(csv::response("kpis", &csv::report(&r, vec![])?));
    }
    Ok(Json(r).into_response())
}

/// Per user: leads owned and contacted, tasks done and overdue, deals won and lost, new MRR and
/// quota attainment.
#[utoipa::path(get, path = "/api/dashboard/team-performance", tag = "dashboards", security(("bearer" = [])),
    params(DashboardQuery),
    responses((status = 200, body = TeamPerformance, description = "JSON, or CSV with `format=csv`"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn team_performance(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<DashboardQuery>,
) -> AppResult<Response> {
    let p = service::parse(&state, &ctx, &q).await?;
    let t = service::team(&state, &p).await?;
    if p.csv {
        return Ok(csv::response("desempenho-da-equipe", &csv::team(&t)));
    }
    Ok(Json(t).into_response())
}

/// A time series for charts (`metric`, `interval`); empty buckets are zeros.
#[utoipa::path(get, path = "/api/dashboard/series", tag = "dashboards", security(("bearer" = [])),
    params(DashboardQuery),
    responses((status = 200, body = Series, description = "JSON, or CSV with `format=csv`"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn series(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<DashboardQuery>,
) -> AppResult<Response> {
    let p = service::parse(&state, &ctx, &q).await?;
    let s = service::series(&state, &p, &q).await?;
    if p.csv {
        return Ok(csv::response("serie", &csv::series(&s)));
    }
    Ok(Json(s).into_response())
}

/// The month's sales quotas (sales and support users: their own).
#[utoipa::path(get, path = "/api/quotas", tag = "dashboards", security(("bearer" = [])),
    params(QuotaQuery),
    responses((status = 200, body = QuotaMonth),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn get_quotas(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<QuotaQuery>,
) -> AppResult<Json<QuotaMonth>> {
    Ok(Json(quotas::get(&state, &ctx, q.month.as_deref()).await?))
}

/// Sets monthly quotas (new MRR and/or deals won) of the users listed (managers and admins).
#[utoipa::path(put, path = "/api/quotas", tag = "dashboards", security(("bearer" = [])),
    request_body = QuotaInput,
    responses((status = 200, body = QuotaMonth),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_quotas(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiJson(input): ApiJson<QuotaInput>,
) -> AppResult<Json<QuotaMonth>> {
    Ok(Json(quotas::put(&state, &ctx, input).await?))
}
