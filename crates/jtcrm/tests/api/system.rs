use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::spawn_app;

#[tokio::test]
async fn health_reports_dependencies() {
    let app = spawn_app().await;
    let r = app.send(Method::GET, "/health", None, None).await;
    r.assert(200);
    assert_eq!(r.body["status"], "healthy");
    assert_eq!(r.body["checks"]["database"], true);
    if jtcrm_testkit::redis_url().is_some() {
        assert_eq!(r.body["checks"]["redis"], true);
    } else {
        assert!(r.body["checks"]["redis"].is_null());
    }
    assert!(r.body["checks"]["external_apis"].is_object());
    assert!(r.body["timestamp"].is_string() && r.body["version"].is_string());
}

#[tokio::test]
async fn metrics_expose_routes_statuses_and_tenants() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    app.get("/api/users", &t.admin_token).await.assert(200);
    let r = app.send(Method::GET, "/metrics", None, None).await;
    r.assert(200);
    assert!(
        r.text.contains("jtcrm_http_requests_total"),
        "{}",
        &r.text[..r.text.len().min(500)]
    );
    assert!(r.text.contains("route=\"/api/users\""));
    assert!(
        r.text
            .contains("jtcrm_http_request_duration_seconds_bucket")
    );
    assert!(r.text.contains(&format!(
        "jtcrm_tenant_requests_total{{tenant_id=\"{}\"}}",
        t.id
    )));
}

#[tokio::test]
async fn openapi_documents_every_route_with_bearer_auth() {
    let app = spawn_app().await;
    let r = app
        .send(Method::GET, "/apidocs/openapi.json", None, None)
        .await;
    r.assert(200);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(
        r.body["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = r.body["paths"].as_object().unwrap();
    for p in [
        "/health",
        "/metrics",
        "/api/auth/login",
        "/api/auth/refresh",
        "/api/auth/logout",
        "/api/auth/me",
        "/api/auth/register",
        "/api/users",
        "/api/users/{id}",
        "/api/tenant",
        "/api/tenant/usage",
        "/api/super-admin/tenants",
        "/api/super-admin/tenants/{id}",
        "/api/super-admin/tenants/{id}/suspend",
        "/api/super-admin/tenants/{id}/activate",
        "/api/super-admin/tenants/{id}/usage",
        "/api/super-admin/plans",
        "/api/super-admin/plans/{code}",
        "/api/audit-logs",
    ] {
        assert!(paths.contains_key(p), "{p} missing from OpenAPI");
    }
    // Every operation has at least one response with a schema or description.
    for (p, item) in paths {
        for (m, op) in item.as_object().unwrap() {
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{m} {p} has no responses"
            );
        }
    }
    let ui = app.send(Method::GET, "/apidocs/", None, None).await;
    ui.assert(200);
    assert!(ui.text.contains("swagger"), "Swagger UI not served");
}
