use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::{TestApp, spawn_app, unique};
use serde_json::json;

#[tokio::test]
async fn default_plans_are_seeded() {
    let app = spawn_app().await;
    let sa = app.superadmin_token().await;
    let r = app.get("/api/super-admin/plans", &sa).await;
    r.assert(200);
    let codes: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    for c in ["starter", "professional", "enterprise"] {
        assert!(codes.contains(&c), "{codes:?}");
    }
    let starter = app.get("/api/super-admin/plans/starter", &sa).await;
    starter.assert(200);
    assert_eq!(starter.body["limits"]["max_users"], 5);
    for f in [
        "telephony",
        "chatbot",
        "e_signature",
        "erp_sync",
        "whatsapp",
        "api_access",
    ] {
        assert!(starter.body["features"][f].is_boolean(), "{f}");
    }
    for l in [
        "max_users",
        "max_leads",
        "max_pipelines",
        "max_extensions",
        "max_automations",
        "api_rate_per_minute",
    ] {
        assert!(starter.body["limits"].get(l).is_some(), "{l}");
    }
    let ent = app.get("/api/super-admin/plans/enterprise", &sa).await;
    assert!(
        ent.body["limits"]["max_users"].is_null(),
        "enterprise is unlimited"
    );
    app.get("/api/super-admin/plans/gold", &sa)
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn create_and_update_plans() {
    let app = spawn_app().await;
    let sa = app.superadmin_token().await;
    let code = unique("isp-");
    let body = json!({"code": code, "name": "ISP Plus", "price_cents": 49900,
        "limits": {"max_users": 2, "max_leads": 100, "api_rate_per_minute": 1000},
        "features": {"telephony": true, "chatbot": true}});
    let r = app.post("/api/super-admin/plans", &sa, body.clone()).await;
    r.assert(201);
    assert_eq!(r.body["limits"]["max_users"], 2);
    assert!(r.body["limits"]["max_pipelines"].is_null());
    assert_eq!(r.body["features"]["chatbot"], true);
    assert_eq!(r.body["features"]["whatsapp"], false);
    assert_eq!(
        r.header("location").unwrap(),
        format!("/api/super-admin/plans/{code}")
    );
    app.post("/api/super-admin/plans", &sa, body)
        .await
        .assert_problem(409, "plan_code_taken");
    let r = app
        .post(
            "/api/super-admin/plans",
            &sa,
            json!({"code": "Bad Code", "limits": {"max_users": -1}}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    let fields = r.error_fields();
    assert!(fields.contains(&"code".to_string()) && fields.contains(&"name".to_string()));
    assert!(fields.contains(&"limits.max_users".to_string()));
    app.post(
        "/api/super-admin/plans",
        &sa,
        json!({"code": "x1", "name": "X", "price_cents": "10"}),
    )
    .await
    .assert_problem(422, "validation_failed");

    let path = format!("/api/super-admin/plans/{code}");
    let r = app.put(&path, &sa, json!({"limits": {"max_users": null, "max_leads": 500}, "features": {"whatsapp": true}})).await;
    r.assert(200);
    assert!(r.body["limits"]["max_users"].is_null());
    assert_eq!(r.body["limits"]["max_leads"], 500);
    assert_eq!(r.body["limits"]["api_rate_per_minute"], 1000, "untouched");
    assert_eq!(r.body["features"]["whatsapp"], true);
    assert_eq!(r.body["features"]["chatbot"], true, "untouched");
    assert_eq!(r.body["version"], 2);
    let r = TestApp::finish(
        app.raw(Method::PUT, &path)
            .bearer_auth(&sa)
            .header("if-match", "1")
            .json(&json!({"name": "Y"})),
    )
    .await;
    r.assert_problem(412, "precondition_failed");
    app.put(&path, &sa, json!({"code": "other"}))
        .await
        .assert_problem(422, "validation_failed");
    app.put("/api/super-admin/plans/nope", &sa, json!({"name": "x"}))
        .await
        .assert_problem(404, "not_found");
    // Audit.
    let log = app
        .get(
            &format!("/api/audit-logs?entity_type=plan&entity_id={code}"),
            &sa,
        )
        .await;
    log.assert(200);
    assert_eq!(log.body["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn plan_changes_apply_to_tenants_and_rate_limit_is_enforced() {
    let app = spawn_app_fast().await;
    let sa = app.superadmin_token().await;
    let code = unique("tiny-");
    app.post(
        "/api/super-admin/plans",
        &sa,
        json!({"code": code, "name": "Tiny", "limits": {"max_users": 3, "api_rate_per_minute": 5}}),
    )
    .await
    .assert(201);
    let t = app.create_tenant_on(&code).await;
    let mut statuses = vec![];
    for _ in 0..8 {
        statuses.push(app.get("/api/auth/me", &t.admin_token).await);
    }
    let limited: Vec<_> = statuses
        .iter()
        .filter(|r| r.status.as_u16() == 429)
        .collect();
    assert!(!limited.is_empty(), "rate limit never hit");
    limited[0].assert_problem(429, "rate_limited");
    assert!(limited[0].header("retry-after").is_some());
    // Raising the limit takes effect at once.
    app.put(
        &format!("/api/super-admin/plans/{code}"),
        &sa,
        json!({"limits": {"api_rate_per_minute": 10000}}),
    )
    .await
    .assert(200);
    app.get("/api/auth/me", &t.admin_token).await.assert(200);
}

async fn spawn_app_fast() -> TestApp {
    spawn_app().await
}
