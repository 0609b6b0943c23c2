use base64::Engine;
use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::{spawn_app, spawn_app_with, unique};
use serde_json::json;

#[tokio::test]
async fn login_returns_tokens_and_user() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let r = app.login(&t.admin_email, &t.admin_password).await;
    r.assert(200);
    assert_eq!(r.body["token_type"], "Bearer");
    assert!(r.body["expires_in"].as_i64().unwrap() > 3600);
    assert!(r.body["refresh_token"].as_str().unwrap().len() > 20);
    assert_eq!(r.body["user"]["role"], "admin");
    assert_eq!(r.body["user"]["tenant_id"], t.id);
    assert_eq!(r.body["user"]["email"], t.admin_email);
    // Email lookup is case-insensitive.
    app.login(&t.admin_email.to_uppercase(), &t.admin_password)
        .await
        .assert(200);
    let me = app.get("/api/auth/me", &t.admin_token).await;
    me.assert(200);
    assert_eq!(me.body["id"], t.admin_id);
    assert_eq!(me.body["tenant"]["slug"], t.slug);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let a = app.login(&t.admin_email, "wrong-password").await;
    let b = app.login("nobody@nowhere.com.br", "wrong-password").await;
    a.assert_problem(401, "invalid_credentials");
    b.assert_problem(401, "invalid_credentials");
    assert_eq!(a.body["detail"], b.body["detail"]);
}

#[tokio::test]
async fn login_bad_input() {
    let app = spawn_app().await;
    app.send(Method::POST, "/api/auth/login", None, Some(json!({})))
        .await
        .assert_problem(422, "validation_failed");
    let r = app
        .send(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": 5, "password": "x"})),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["email"]);
    let r = app
        .send(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "a@b.com"})),
        )
        .await;
    assert_eq!(r.error_fields(), vec!["password"]);
    let r = jtcrm_testkit::TestApp::finish(
        app.raw(Method::POST, "/api/auth/login")
            .header("content-type", "application/json")
            .body("{\"email\":"),
    )
    .await;
    r.assert_problem(400, "malformed_json");
    let r =
        jtcrm_testkit::TestApp::finish(app.raw(Method::POST, "/api/auth/login").body("email=a"))
            .await;
    r.assert_problem(415, "unsupported_media_type");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let login = app.login(&t.admin_email, &t.admin_password).await;
    let rt1 = login.body["refresh_token"].as_str().unwrap().to_string();
    let r = app
        .send(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": rt1})),
        )
        .await;
    r.assert(200);
    let rt2 = r.body["refresh_token"].as_str().unwrap().to_string();
    let at2 = r.body["access_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2);
    app.get("/api/auth/me", &at2).await.assert(200);
    // Reusing the spent token fails and kills the family, including the fresh token.
    app.send(
        Method::POST,
        "/api/auth/refresh",
        None,
        Some(json!({"refresh_token": rt1})),
    )
    .await
    .assert_problem(401, "invalid_token");
    app.send(
        Method::POST,
        "/api/auth/refresh",
        None,
        Some(json!({"refresh_token": rt2})),
    )
    .await
    .assert_problem(401, "invalid_token");
    // Other sessions are unaffected.
    let other = app.login(&t.admin_email, &t.admin_password).await;
    let rt3 = other.body["refresh_token"].as_str().unwrap().to_string();
    app.send(
        Method::POST,
        "/api/auth/refresh",
        None,
        Some(json!({"refresh_token": rt3})),
    )
    .await
    .assert(200);
    // Garbage and missing tokens.
    app.send(
        Method::POST,
        "/api/auth/refresh",
        None,
        Some(json!({"refresh_token": "nope"})),
    )
    .await
    .assert_problem(401, "invalid_token");
    app.send(Method::POST, "/api/auth/refresh", None, Some(json!({})))
        .await
        .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_succeed_at_most_once() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let rt = app.login(&t.admin_email, &t.admin_password).await.body["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut handles = vec![];
    for _ in 0..6 {
        let body = json!({"refresh_token": rt});
        let client = app.client.clone();
        let url = app.url("/api/auth/refresh");
        handles.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0;
    for h in handles {
        if h.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert!(ok <= 1, "{ok} refreshes succeeded");
}

#[tokio::test]
async fn logout_revokes_refresh_and_access_tokens() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let login = app.login(&t.admin_email, &t.admin_password).await;
    let at = login.body["access_token"].as_str().unwrap().to_string();
    let rt = login.body["refresh_token"].as_str().unwrap().to_string();
    app.send(Method::POST, "/api/auth/logout", Some(&at), None)
        .await
        .assert(204);
    app.get("/api/auth/me", &at)
        .await
        .assert_problem(401, "invalid_token");
    app.send(
        Method::POST,
        "/api/auth/refresh",
        None,
        Some(json!({"refresh_token": rt})),
    )
    .await
    .assert_problem(401, "invalid_token");
    // The other session of the same user still works.
    app.get("/api/auth/me", &t.admin_token).await.assert(200);
    app.send(Method::POST, "/api/auth/logout", None, None)
        .await
        .assert_problem(401, "unauthenticated");
}

fn forge(claims: serde_json::Value, header: serde_json::Value, sig: &str) -> String {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.{}",
        e.encode(header.to_string()),
        e.encode(claims.to_string()),
        sig
    )
}

#[tokio::test]
async fn tampered_none_and_expired_tokens_are_rejected() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let parts: Vec<&str> = t.admin_token.split('.').collect();
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: serde_json::Value =
        serde_json::from_slice(&e.decode(parts[1]).unwrap()).unwrap();
    // Escalation attempt: same signature, different role.
    claims["role"] = json!("super_admin");
    let tampered = format!("{}.{}.{}", parts[0], e.encode(claims.to_string()), parts[2]);
    app.get("/api/auth/me", &tampered)
        .await
        .assert_problem(401, "invalid_token");
    // alg: none
    let none = forge(claims.clone(), json!({"alg": "none", "typ": "JWT"}), "");
    app.get("/api/auth/me", &none)
        .await
        .assert_problem(401, "invalid_token");
    // HS512 with a random key.
    let hs512 = forge(claims.clone(), json!({"alg": "HS512", "typ": "JWT"}), "abc");
    app.get("/api/auth/me", &hs512)
        .await
        .assert_problem(401, "invalid_token");
    // Expired but validly signed.
    let short = spawn_app_with(|s| s.access_token_ttl_secs = 1).await;
    let t2 = short.create_tenant().await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    short
        .get("/api/auth/me", &t2.admin_token)
        .await
        .assert_problem(401, "invalid_token");
    // Not a bearer at all.
    let r = jtcrm_testkit::TestApp::finish(
        app.raw(Method::GET, "/api/auth/me")
            .header("authorization", "Basic abc"),
    )
    .await;
    r.assert_problem(401, "unauthenticated");
}

#[tokio::test]
async fn login_is_throttled_per_account_and_per_ip() {
    let app = spawn_app_with(|s| {
        s.login_max_failures_per_account = 3;
        s.login_max_attempts_per_ip = 8;
    })
    .await;
    let t = app.create_tenant().await; // 1 successful login
    for _ in 0..3 {
        app.login(&t.admin_email, "wrong-password")
            .await
            .assert(401);
    }
    let r = app.login(&t.admin_email, &t.admin_password).await;
    r.assert_problem(429, "rate_limited");
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    // Per IP: every attempt counts, whatever the account.
    for i in 0..3 {
        app.login(&format!("x{i}@y.com.br"), "whatever-1").await;
    }
    app.login("z@y.com.br", "whatever-1")
        .await
        .assert_problem(429, "rate_limited");
}

#[tokio::test]
async fn register_by_admin_creates_a_user_in_its_tenant() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let email = format!("{}@x.com.br", unique("reg"));
    let r = app
        .post(
            "/api/auth/register",
            &t.admin_token,
            json!({"name": "Novo", "email": email, "password": "12345678", "role": "sales"}),
        )
        .await;
    r.assert(201);
    assert_eq!(r.body["tenant_id"], t.id);
    assert_eq!(r.body["role"], "sales");
    let token = app.token_for(&email, "12345678").await;
    // A sales user may not register others.
    app.post(
        "/api/auth/register",
        &token,
        json!({"name": "X", "email": "x@x.com.br", "password": "12345678", "role": "sales"}),
    )
    .await
    .assert_problem(403, "forbidden");
    // Short password.
    let r = app
        .post(
            "/api/auth/register",
            &t.admin_token,
            json!({"name": "X", "email": "y@x.com.br", "password": "1234567", "role": "sales"}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["password"]);
    // Duplicate email, across the platform.
    let other = app.create_tenant().await;
    app.post(
        "/api/auth/register",
        &other.admin_token,
        json!({"name": "X", "email": email, "password": "12345678", "role": "sales"}),
    )
    .await
    .assert_problem(409, "email_taken");
}

#[tokio::test]
async fn anonymous_register_is_refused_unless_public_signup_is_on() {
    let app = spawn_app().await;
    let body = json!({"company_name": "Fibra Rápida Ltda", "name": "Dono", "email": "dono@fibra.com.br", "password": "12345678"});
    app.send(Method::POST, "/api/auth/register", None, Some(body.clone()))
        .await
        .assert_problem(403, "signup_disabled");

    let open = spawn_app_with(|s| s.public_signup = true).await;
    let r = open
        .send(Method::POST, "/api/auth/register", None, Some(body.clone()))
        .await;
    r.assert(201);
    let token = r.body["access_token"].as_str().unwrap().to_string();
    let me = open.get("/api/auth/me", &token).await;
    me.assert(200);
    assert_eq!(me.body["role"], "admin");
    assert_eq!(me.body["tenant"]["status"], "trial");
    assert_eq!(me.body["tenant"]["slug"], "fibra-rapida-ltda");
    // Same company name again: a different slug, but the email is taken.
    open.send(Method::POST, "/api/auth/register", None, Some(body))
        .await
        .assert_problem(409, "email_taken");
    let r = open
        .send(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"company_name": "Fibra Rápida Ltda", "name": "B", "email": "b@fibra.com.br", "password": "12345678"})),
        )
        .await;
    r.assert(201);
    let me = open
        .get("/api/auth/me", r.body["access_token"].as_str().unwrap())
        .await;
    assert_ne!(me.body["tenant"]["slug"], "fibra-rapida-ltda");
    open.send(
        Method::POST,
        "/api/auth/register",
        None,
        Some(json!({"name": "B"})),
    )
    .await
    .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn tenant_slug_header_must_match_the_token() {
    let app = spawn_app().await;
    let a = app.create_tenant().await;
    let b = app.create_tenant().await;
    let r = jtcrm_testkit::TestApp::finish(
        app.raw(Method::GET, "/api/auth/me")
            .bearer_auth(&a.admin_token)
            .header("x-tenant-slug", &b.slug),
    )
    .await;
    r.assert_problem(403, "tenant_mismatch");
    let r = jtcrm_testkit::TestApp::finish(
        app.raw(Method::GET, "/api/auth/me")
            .bearer_auth(&a.admin_token)
            .header("x-tenant-slug", &a.slug),
    )
    .await;
    r.assert(200);
    let r = jtcrm_testkit::TestApp::finish(
        app.raw(Method::POST, "/api/auth/login")
            .header("x-tenant-slug", &b.slug)
            .json(&json!({"email": a.admin_email, "password": a.admin_password})),
    )
    .await;
    r.assert_problem(403, "tenant_mismatch");
}
