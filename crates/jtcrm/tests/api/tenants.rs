use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::{TestApp, spawn_app, unique};
use serde_json::json;

fn tenant_body(slug: &str, cnpj: &str, admin_email: &str) -> serde_json::Value {
    json!({
        "name": "Provedor Teste", "slug": slug, "email": format!("contato@{slug}.com.br"), "cnpj": cnpj,
        "subscription_plan": "starter",
        "admin": {"name": "Ana", "email": admin_email, "password": "12345678"}
    })
}

#[tokio::test]
async fn create_tenant_with_numeric_and_alphanumeric_cnpj() {
    let app = spawn_app().await;
    let sa = app.superadmin_token().await;
    let slug = unique("p-");
    let r = app
        .post(
            "/api/super-admin/tenants",
            &sa,
            tenant_body(&slug, "11222333000181", &format!("a@{slug}.com")),
        )
        .await;
    r.assert(201);
    assert_eq!(r.body["cnpj"], "11.222.333/0001-81");
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["subscription_plan"], "starter");
    assert_eq!(r.body["slug"], slug);
    assert_eq!(
        r.header("location").unwrap(),
        format!("/api/super-admin/tenants/{}", r.id())
    );
    let slug2 = unique("p-");
    let r = app
        .post(
            "/api/super-admin/tenants",
            &sa,
            tenant_body(&slug2, "12.abc.345/01de-35", &format!("a@{slug2}.com")),
        )
        .await;
    r.assert(201);
    assert_eq!(r.body["cnpj"], "12.ABC.345/01DE-35");
    // The first admin can log in as admin of that tenant.
    let login = app.login(&format!("a@{slug2}.com"), "12345678").await;
    login.assert(200);
    assert_eq!(login.body["user"]["tenant_id"], r.body["id"]);
    assert_eq!(login.body["user"]["role"], "admin");
    // Stored normalised: the database holds the 14 characters.
    let get = app
        .get(&format!("/api/super-admin/tenants/{}", r.id()), &sa)
        .await;
    assert_eq!(get.body["cnpj"], "12.ABC.345/01DE-35");
}

#[tokio::test]
async fn create_tenant_rejects_duplicates_and_bad_input() {
    let app = spawn_app().await;
    let sa = app.superadmin_token().await;
    let slug = unique("p-");
    app.post(
        "/api/super-admin/tenants",
        &sa,
        tenant_body(&slug, "11.222.333/0001-81", &format!("a@{slug}.com")),
    )
    .await
    .assert(201);
    app.post(
        "/api/super-admin/tenants",
        &sa,
        tenant_body(&slug, "11.222.333/0001-81", "other@x.com.br"),
    )
    .await
    .assert_problem(409, "slug_taken");
    let s2 = unique("p-");
    app.post(
        "/api/super-admin/tenants",
        &sa,
        tenant_body(&s2, "11.222.333/0001-81", &format!("a@{slug}.com")),
    )
    .await
    .assert_problem(409, "email_taken");
    // Nothing was left behind by the failed attempt: the slug is still free.
    app.post(
        "/api/super-admin/tenants",
        &sa,
        tenant_body(&s2, "11.222.333/0001-81", &format!("b@{s2}.com")),
    )
    .await
    .assert(201);

    for (cnpj, field) in [
        ("11.222.333/0001-00", "cnpj"),
        ("00000000000000", "cnpj"),
        ("12.ABC.345/01DE-36", "cnpj"),
    ] {
        let s = unique("p-");
        let r = app
            .post(
                "/api/super-admin/tenants",
                &sa,
                tenant_body(&s, cnpj, &format!("a@{s}.com")),
            )
            .await;
        r.assert_problem(422, "validation_failed");
        assert_eq!(r.error_fields(), vec![field], "{cnpj}");
    }
    let mut body = tenant_body("Bad_Slug", "11222333000181", "q@x.com.br");
    body["email"] = json!("contato@provedor.com.br");
    let r = app.post("/api/super-admin/tenants", &sa, body).await;
    assert_eq!(r.error_fields(), vec!["slug"]);
    let r = app.post("/api/super-admin/tenants", &sa, json!({})).await;
    r.assert_problem(422, "validation_failed");
    let fields = r.error_fields();
    for f in ["name", "slug", "email", "subscription_plan", "admin"] {
        assert!(fields.contains(&f.to_string()), "{f} missing in {fields:?}");
    }
    let r = app
        .post(
            "/api/super-admin/tenants",
            &sa,
            json!({"name": "X", "slug": unique("p-"), "email": "x@x.com.br", "subscription_plan": "gold",
                   "admin": {"name": "A", "email": "not-an-email", "password": "123"}}),
        )
        .await;
    let fields = r.error_fields();
    assert!(fields.contains(&"admin.email".to_string()), "{fields:?}");
    assert!(fields.contains(&"admin.password".to_string()), "{fields:?}");
    let s = unique("p-");
    let mut body = tenant_body(&s, "11222333000181", &format!("a@{s}.com"));
    body["subscription_plan"] = json!("gold");
    let r = app.post("/api/super-admin/tenants", &sa, body).await;
    assert_eq!(r.error_fields(), vec!["subscription_plan"]);
    let r = app
        .post(
            "/api/super-admin/tenants",
            &sa,
            json!({"name": ["x"], "admin": "x"}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    let r = TestApp::finish(
        app.raw(Method::POST, "/api/super-admin/tenants")
            .bearer_auth(&sa)
            .header("content-type", "application/json")
            .body("{]"),
    )
    .await;
    r.assert_problem(400, "malformed_json");
    let big = "x".repeat(2 * 1024 * 1024);
    let r = TestApp::finish(
        app.raw(Method::POST, "/api/super-admin/tenants")
            .bearer_auth(&sa)
            .header("content-type", "application/json")
            .body(format!("{{\"name\":\"{big}\"}}")),
    )
    .await;
    r.assert_problem(413, "payload_too_large");
}

#[tokio::test]
async fn super_admin_endpoints_refuse_tenant_users_and_anonymous() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let paths = [
        (Method::GET, "/api/super-admin/tenants".to_string()),
        (Method::POST, "/api/super-admin/tenants".to_string()),
        (Method::GET, format!("/api/super-admin/tenants/{}", t.id)),
        (Method::PUT, format!("/api/super-admin/tenants/{}", t.id)),
        (
            Method::POST,
            format!("/api/super-admin/tenants/{}/suspend", t.id),
        ),
        (
            Method::POST,
            format!("/api/super-admin/tenants/{}/activate", t.id),
        ),
        (
            Method::GET,
            format!("/api/super-admin/tenants/{}/usage", t.id),
        ),
        (Method::GET, "/api/super-admin/plans".to_string()),
        (Method::POST, "/api/super-admin/plans".to_string()),
        (Method::GET, "/api/super-admin/plans/starter".to_string()),
        (Method::PUT, "/api/super-admin/plans/starter".to_string()),
    ];
    for (m, p) in paths {
        let body = matches!(m, Method::POST | Method::PUT).then(|| json!({"name": "x"}));
        app.send(m.clone(), &p, Some(&t.admin_token), body.clone())
            .await
            .assert_problem(403, "forbidden");
        app.send(m, &p, None, body)
            .await
            .assert_problem(401, "unauthenticated");
    }
}

#[tokio::test]
async fn list_get_update_tenants() {
    let app = spawn_app().await;
    let sa = app.superadmin_token().await;
    let a = app.create_tenant().await;
    let _b = app.create_tenant().await;
    let r = app
        .get("/api/super-admin/tenants?limit=1&include_total=true", &sa)
        .await;
    r.assert(200);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["total"], 2);
    let cursor = r.body["next_cursor"].as_str().unwrap().to_string();
    let r2 = app
        .get(
            &format!("/api/super-admin/tenants?limit=1&cursor={cursor}"),
            &sa,
        )
        .await;
    assert_eq!(r2.body["items"].as_array().unwrap().len(), 1);
    assert_ne!(r2.body["items"][0]["id"], r.body["items"][0]["id"]);
    assert!(r2.body["next_cursor"].is_null());
    let r = app
        .get(&format!("/api/super-admin/tenants?q={}", a.slug), &sa)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    app.get("/api/super-admin/tenants?limit=0", &sa)
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/super-admin/tenants?limit=abc", &sa)
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/super-admin/tenants?cursor=@@", &sa)
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/super-admin/tenants?status=weird", &sa)
        .await
        .assert_problem(422, "validation_failed");

    let path = format!("/api/super-admin/tenants/{}", a.id);
    let got = app.get(&path, &sa).await;
    got.assert(200);
    assert_eq!(got.header("etag").unwrap(), "\"1\"");
    let r = app.put(&path, &sa, json!({"name": "Novo Nome", "subscription_plan": "professional", "settings": {"team_visibility": true}})).await;
    r.assert(200);
    assert_eq!(r.body["name"], "Novo Nome");
    assert_eq!(r.body["subscription_plan"], "professional");
    assert_eq!(r.body["settings"]["team_visibility"], true);
    assert_eq!(r.body["version"], 2);
    // Stale If-Match.
    let r = TestApp::finish(
        app.raw(Method::PUT, &path)
            .bearer_auth(&sa)
            .header("if-match", "\"1\"")
            .json(&json!({"name": "Z"})),
    )
    .await;
    r.assert_problem(412, "precondition_failed");
    let r = TestApp::finish(
        app.raw(Method::PUT, &path)
            .bearer_auth(&sa)
            .header("if-match", "\"2\"")
            .json(&json!({"name": "Z"})),
    )
    .await;
    r.assert(200);
    app.put(&path, &sa, json!({"cnpj": "123"}))
        .await
        .assert_problem(422, "validation_failed");
    app.put(&path, &sa, json!({"subscription_plan": "nope"}))
        .await
        .assert_problem(422, "validation_failed");
    app.put(&path, &sa, json!({"settings": {"timezone": "not a zone"}}))
        .await
        .assert_problem(422, "validation_failed");
    app.put(&path, &sa, json!({"slug": _b.slug}))
        .await
        .assert_problem(409, "slug_taken");
    let r = app.put(&path, &sa, json!({"cnpj": null})).await;
    r.assert(200);
    assert!(r.body["cnpj"].is_null());
    let unknown = format!("/api/super-admin/tenants/{}", uuid::Uuid::now_v7());
    app.get(&unknown, &sa)
        .await
        .assert_problem(404, "not_found");
    app.put(&unknown, &sa, json!({"name": "x"}))
        .await
        .assert_problem(404, "not_found");
    app.get("/api/super-admin/tenants/not-a-uuid", &sa)
        .await
        .assert_problem(400, "invalid_id");
}

#[tokio::test]
async fn downgrade_below_current_usage_is_refused() {
    let app = spawn_app().await;
    let sa = app.superadmin_token().await;
    let t = app.create_tenant_on("professional").await;
    for _ in 0..5 {
        app.create_user(&t, "sales").await;
    }
    let r = app
        .put(
            &format!("/api/super-admin/tenants/{}", t.id),
            &sa,
            json!({"subscription_plan": "starter"}),
        )
        .await;
    r.assert_problem(402, "plan_limit_exceeded");
    assert_eq!(r.body["context"]["limit"], "max_users");
}

#[tokio::test]
async fn suspension_blocks_every_call_and_keeps_data() {
    let app = spawn_app().await;
    let sa = app.superadmin_token().await;
    let t = app.create_tenant().await;
    let sales = app.create_user(&t, "sales").await;
    let r = app
        .post(
            &format!("/api/super-admin/tenants/{}/suspend", t.id),
            &sa,
            json!({"reason": "inadimplência"}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["status"], "suspended");
    assert_eq!(r.body["suspended_reason"], "inadimplência");
    app.get("/api/auth/me", &t.admin_token)
        .await
        .assert_problem(403, "tenant_suspended");
    app.get("/api/users", &t.admin_token)
        .await
        .assert_problem(403, "tenant_suspended");
    app.get(&format!("/api/users/{}", sales.id), &sales.token)
        .await
        .assert_problem(403, "tenant_suspended");
    app.login(&t.admin_email, &t.admin_password)
        .await
        .assert_problem(403, "tenant_suspended");
    // Suspend without a body also works.
    app.send(
        Method::POST,
        &format!("/api/super-admin/tenants/{}/suspend", t.id),
        Some(&sa),
        None,
    )
    .await
    .assert(200);
    let r = app
        .send(
            Method::POST,
            &format!("/api/super-admin/tenants/{}/activate", t.id),
            Some(&sa),
            None,
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["status"], "active");
    assert!(r.body["suspended_reason"].is_null());
    app.login(&t.admin_email, &t.admin_password)
        .await
        .assert(200);
    let users = app.get("/api/users", &t.admin_token).await;
    users.assert(200);
    assert_eq!(
        users.body["items"].as_array().unwrap().len(),
        2,
        "data kept"
    );
    // Cancelled tenants are blocked the same way.
    app.put(
        &format!("/api/super-admin/tenants/{}", t.id),
        &sa,
        json!({"status": "cancelled"}),
    )
    .await
    .assert(200);
    app.get("/api/auth/me", &sales.token)
        .await
        .assert_problem(403, "tenant_suspended");
    let unknown = uuid::Uuid::now_v7();
    app.send(
        Method::POST,
        &format!("/api/super-admin/tenants/{unknown}/suspend"),
        Some(&sa),
        None,
    )
    .await
    .assert_problem(404, "not_found");
    app.post(
        &format!("/api/super-admin/tenants/{}/suspend", t.id),
        &sa,
        json!({"reason": 3}),
    )
    .await
    .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn usage_reports_counts_against_limits() {
    let app = spawn_app().await;
    let sa = app.superadmin_token().await;
    let t = app.create_tenant().await;
    app.create_user(&t, "sales").await;
    app.create_user(&t, "viewer").await;
    let r = app
        .get(&format!("/api/super-admin/tenants/{}/usage", t.id), &sa)
        .await;
    r.assert(200);
    assert_eq!(r.body["usage"]["users"]["used"], 3);
    assert_eq!(r.body["usage"]["users"]["limit"], 5);
    assert_eq!(r.body["usage"]["leads"]["used"], 0);
    assert!(
        r.body["usage"]["api_requests_this_minute"]["used"]
            .as_i64()
            .unwrap()
            >= 2
    );
    assert_eq!(r.body["subscription_plan"], "starter");
    let own = app.get("/api/tenant/usage", &t.admin_token).await;
    own.assert(200);
    assert_eq!(own.body["usage"]["users"]["used"], 3);
    app.get(
        &format!("/api/super-admin/tenants/{}/usage", uuid::Uuid::now_v7()),
        &sa,
    )
    .await
    .assert_problem(404, "not_found");
}

#[tokio::test]
async fn tenant_reads_and_edits_itself() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let other = app.create_tenant().await;
    let sales = app.create_user(&t, "sales").await;
    let r = app.get("/api/tenant", &sales.token).await;
    r.assert(200);
    assert_eq!(r.body["id"], t.id);
    let r = app.get("/api/tenant", &other.admin_token).await;
    assert_eq!(r.body["id"], other.id, "each tenant sees only itself");
    app.put("/api/tenant", &sales.token, json!({"name": "x"}))
        .await
        .assert_problem(403, "forbidden");
    app.get("/api/tenant/usage", &sales.token)
        .await
        .assert_problem(403, "forbidden");
    let r = app
        .put(
            "/api/tenant",
            &t.admin_token,
            json!({"settings": {"team_visibility": true, "timezone": "America/Manaus"}}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["settings"]["timezone"], "America/Manaus");
    app.put(
        "/api/tenant",
        &t.admin_token,
        json!({"subscription_plan": "enterprise"}),
    )
    .await
    .assert_problem(403, "forbidden");
    app.put("/api/tenant", &t.admin_token, json!({"email": "nope"}))
        .await
        .assert_problem(422, "validation_failed");
    let r = app.get("/api/tenant", &other.admin_token).await;
    assert_eq!(r.body["settings"]["timezone"], "America/Sao_Paulo");
}
