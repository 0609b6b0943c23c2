use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::{TestApp, spawn_app, unique};
use serde_json::json;

#[tokio::test]
async fn admin_creates_lists_and_reads_users() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let email = format!("{}@x.com.br", unique("maria"));
    let r = app
        .post(
            "/api/users",
            &t.admin_token,
            json!({"name": "Maria", "email": email.to_uppercase(), "password": "12345678", "role": "sales",
                   "phone": "(11) 98765-4321", "extension": "1001"}),
        )
        .await;
    r.assert(201);
    assert_eq!(r.body["email"], email, "lower-cased");
    assert_eq!(r.body["phone"], "+5511987654321");
    assert_eq!(r.body["extension"], "1001");
    assert_eq!(r.body["role"], "sales");
    assert!(r.body.get("password_hash").is_none() && r.body.get("password").is_none());
    let id = r.id();
    assert_eq!(r.header("location").unwrap(), format!("/api/users/{id}"));
    let list = app.get("/api/users", &t.admin_token).await;
    list.assert(200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
    let list = app
        .get("/api/users?role=sales&include_total=true", &t.admin_token)
        .await;
    assert_eq!(list.body["total"], 1);
    let list = app.get("/api/users?q=MARIA", &t.admin_token).await;
    assert_eq!(list.body["items"][0]["id"], id);
    app.get("/api/users?role=god", &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
    let one = app.get(&format!("/api/users/{id}"), &t.admin_token).await;
    one.assert(200);
    assert_eq!(one.body["name"], "Maria");
    // Extension unique within the tenant.
    app.post(
        "/api/users",
        &t.admin_token,
        json!({"name": "João", "email": format!("{}@x.com.br", unique("j")), "password": "12345678", "role": "sales", "extension": "1001"}),
    )
    .await
    .assert_problem(409, "extension_taken");
    // Also when an update takes it (the unique index decides, by name).
    let joao = app.create_user(&t, "sales").await;
    let r = app
        .put(
            &format!("/api/users/{}", joao.id),
            &t.admin_token,
            json!({"extension": "1001"}),
        )
        .await;
    r.assert_problem(409, "extension_taken");
    assert_eq!(r.body["context"]["field"], "extension");
}

#[tokio::test]
async fn search_takes_percent_and_underscore_literally() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let mut ids = vec![];
    for name in ["Ana 100% Fibra", "Ana 1000 Fibra", "Rede_Sul", "RedeXSul"] {
        let r = app
            .post(
                "/api/users",
                &t.admin_token,
                json!({"name": name, "email": format!("{}@x.com.br", unique("u")), "password": "12345678", "role": "sales"}),
            )
            .await;
        r.assert(201);
        ids.push(r.id());
    }
    let found = |q: &'static str| {
        let app = &app;
        let token = t.admin_token.clone();
        async move {
            let r = app.get(&format!("/api/users?q={q}"), &token).await;
            r.assert(200);
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        found("100%25").await,
        vec![ids[0].clone()],
        "% is not a wildcard"
    );
    assert_eq!(
        found("rede_sul").await,
        vec![ids[2].clone()],
        "_ is not a wildcard"
    );
    assert_eq!(found("%25").await, vec![ids[0].clone()]);
    assert_eq!(found("fibra").await.len(), 2);
}

#[tokio::test]
async fn create_user_bad_input() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let r = app.post("/api/users", &t.admin_token, json!({})).await;
    r.assert_problem(422, "validation_failed");
    let f = r.error_fields();
    for x in ["name", "email", "password", "role"] {
        assert!(f.contains(&x.to_string()), "{x} in {f:?}");
    }
    let r = app
        .post(
            "/api/users",
            &t.admin_token,
            json!({"name": "A", "email": "a@b.com.br", "password": "12345678", "role": "super_admin", "phone": "(20) 98765-4321", "extension": "12a"}),
        )
        .await;
    let f = r.error_fields();
    for x in ["role", "phone", "extension"] {
        assert!(f.contains(&x.to_string()), "{x} in {f:?}");
    }
    app.post(
        "/api/users",
        &t.admin_token,
        json!({"name": "A", "email": "a@b.com.br", "password": 12345678, "role": "sales"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.post("/api/users", &t.admin_token, json!([1, 2]))
        .await
        .assert_problem(422, "validation_failed");
    let r = TestApp::finish(
        app.raw(Method::POST, "/api/users")
            .bearer_auth(&t.admin_token)
            .header("content-type", "application/json")
            .body("{\"name\": }"),
    )
    .await;
    r.assert_problem(400, "malformed_json");
    app.get("/api/users/123", &t.admin_token)
        .await
        .assert_problem(400, "invalid_id");
    app.get(
        &format!("/api/users/{}", uuid::Uuid::now_v7()),
        &t.admin_token,
    )
    .await
    .assert_problem(404, "not_found");
}

#[tokio::test]
async fn roles_without_permission_get_403() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let sales = app.create_user(&t, "sales").await;
    let viewer = app.create_user(&t, "viewer").await;
    let manager = app.create_user(&t, "manager").await;
    let body = json!({"name": "X", "email": "x@x.com.br", "password": "12345678", "role": "sales"});
    for token in [&sales.token, &viewer.token, &manager.token] {
        app.post("/api/users", token, body.clone())
            .await
            .assert_problem(403, "forbidden");
        app.delete(&format!("/api/users/{}", t.admin_id), token)
            .await
            .assert_problem(403, "forbidden");
    }
    app.get("/api/users", &sales.token)
        .await
        .assert_problem(403, "forbidden");
    app.get("/api/users", &viewer.token)
        .await
        .assert_problem(403, "forbidden");
    app.get("/api/users", &manager.token).await.assert(200);
    app.get(&format!("/api/users/{}", t.admin_id), &sales.token)
        .await
        .assert_problem(403, "forbidden");
    app.get(&format!("/api/users/{}", sales.id), &sales.token)
        .await
        .assert(200);
    app.get(&format!("/api/users/{}", sales.id), &manager.token)
        .await
        .assert(200);
    app.put(
        &format!("/api/users/{}", t.admin_id),
        &sales.token,
        json!({"name": "hack"}),
    )
    .await
    .assert_problem(403, "forbidden");
    app.put(
        &format!("/api/users/{}", sales.id),
        &sales.token,
        json!({"role": "admin"}),
    )
    .await
    .assert_problem(403, "forbidden");
    app.put(
        &format!("/api/users/{}", sales.id),
        &manager.token,
        json!({"name": "x"}),
    )
    .await
    .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn users_are_isolated_between_tenants() {
    let app = spawn_app().await;
    let a = app.create_tenant().await;
    let b = app.create_tenant().await;
    let a_user = app.create_user(&a, "sales").await;
    let path = format!("/api/users/{}", a_user.id);
    app.get(&path, &b.admin_token)
        .await
        .assert_problem(404, "not_found");
    app.put(&path, &b.admin_token, json!({"name": "pwned"}))
        .await
        .assert_problem(404, "not_found");
    app.delete(&path, &b.admin_token)
        .await
        .assert_problem(404, "not_found");
    let list = app
        .get("/api/users?include_total=true", &b.admin_token)
        .await;
    assert_eq!(list.body["total"], 1);
    assert!(
        list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["tenant_id"] == b.id)
    );
    let list = app
        .get(&format!("/api/users?q={}", a_user.email), &b.admin_token)
        .await;
    assert!(list.body["items"].as_array().unwrap().is_empty());
    // Unchanged.
    assert_ne!(app.get(&path, &a.admin_token).await.body["name"], "pwned");
}

#[tokio::test]
async fn self_service_profile_and_password() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let u = app.create_user(&t, "sales").await;
    let path = format!("/api/users/{}", u.id);
    let r = app
        .put(
            &path,
            &u.token,
            json!({"name": "Novo Nome", "phone": "11 3456-7890"}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["phone"], "+551134567890");
    app.put(&path, &u.token, json!({"password": "new-password-1"}))
        .await
        .assert_problem(422, "validation_failed");
    app.put(
        &path,
        &u.token,
        json!({"password": "new-password-1", "current_password": "wrong-one"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.put(
        &path,
        &u.token,
        json!({"password": "new-password-1", "current_password": u.password}),
    )
    .await
    .assert(200);
    // Changing the password ends existing sessions.
    app.get("/api/auth/me", &u.token)
        .await
        .assert_problem(401, "invalid_token");
    app.login(&u.email, &u.password).await.assert(401);
    app.login(&u.email, "new-password-1").await.assert(200);
}

#[tokio::test]
async fn admin_updates_with_if_match_and_role_change_ends_sessions() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let u = app.create_user(&t, "sales").await;
    let path = format!("/api/users/{}", u.id);
    let r = TestApp::finish(
        app.raw(Method::PUT, &path)
            .bearer_auth(&t.admin_token)
            .header("if-match", "\"7\"")
            .json(&json!({"role": "manager"})),
    )
    .await;
    r.assert_problem(412, "precondition_failed");
    let r = TestApp::finish(
        app.raw(Method::PUT, &path)
            .bearer_auth(&t.admin_token)
            .header("if-match", "\"1\"")
            .json(&json!({"role": "manager"})),
    )
    .await;
    r.assert(200);
    assert_eq!(r.body["role"], "manager");
    assert_eq!(r.body["version"], 2);
    app.get("/api/auth/me", &u.token)
        .await
        .assert_problem(401, "invalid_token");
    let fresh = app.login(&u.email, &u.password).await;
    assert_eq!(fresh.body["user"]["role"], "manager");
    let r = TestApp::finish(
        app.raw(Method::PUT, &path)
            .bearer_auth(&t.admin_token)
            .header("if-match", "garbage")
            .json(&json!({})),
    )
    .await;
    r.assert_problem(400, "bad_request");
}

#[tokio::test]
async fn concurrent_updates_with_the_same_version_never_both_win() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let u = app.create_user(&t, "sales").await;
    let mut handles = vec![];
    for i in 0..6 {
        let rb = app
            .raw(Method::PUT, &format!("/api/users/{}", u.id))
            .bearer_auth(&t.admin_token)
            .header("if-match", "\"1\"")
            .json(&json!({"name": format!("N{i}")}));
        handles.push(tokio::spawn(async move {
            rb.send().await.unwrap().status().as_u16()
        }));
    }
    let mut codes = vec![];
    for h in handles {
        codes.push(h.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 200 || *c == 412), "{codes:?}");
}

#[tokio::test]
async fn plan_user_limit_holds_under_concurrency() {
    let app = spawn_app().await;
    let t = app.create_tenant().await; // starter: 5 users, admin is one
    let mut handles = vec![];
    for i in 0..10 {
        let rb = app.raw(Method::POST, "/api/users").bearer_auth(&t.admin_token).json(&json!({
            "name": format!("U{i}"), "email": format!("{}@x.com.br", unique("c")), "password": "12345678", "role": "sales"
        }));
        handles.push(tokio::spawn(async move { TestApp::finish(rb).await }));
    }
    let mut created = 0;
    for h in handles {
        let r = h.await.unwrap();
        match r.status.as_u16() {
            201 => created += 1,
            402 => {
                r.assert_problem(402, "plan_limit_exceeded");
                assert_eq!(r.body["context"]["limit"], "max_users");
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!(created, 4);
    let list = app
        .get("/api/users?include_total=true", &t.admin_token)
        .await;
    assert_eq!(list.body["total"], 5);
    // Deleting frees a seat.
    let victim = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["role"] == "sales")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.delete(&format!("/api/users/{victim}"), &t.admin_token)
        .await
        .assert(204);
    app.create_user(&t, "viewer").await;
}

#[tokio::test]
async fn delete_deactivate_and_last_admin_protection() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let u = app.create_user(&t, "sales").await;
    let path = format!("/api/users/{}", u.id);
    // Deactivation blocks login and live tokens.
    app.put(&path, &t.admin_token, json!({"active": false}))
        .await
        .assert(200);
    app.get("/api/auth/me", &u.token)
        .await
        .assert_problem(401, "invalid_token");
    app.login(&u.email, &u.password)
        .await
        .assert_problem(401, "invalid_credentials");
    app.put(&path, &t.admin_token, json!({"active": true}))
        .await
        .assert(200);
    let token = app.token_for(&u.email, &u.password).await;
    app.delete(&path, &t.admin_token).await.assert(204);
    app.get(&path, &t.admin_token)
        .await
        .assert_problem(404, "not_found");
    app.get("/api/auth/me", &token)
        .await
        .assert_problem(401, "invalid_token");
    app.delete(&path, &t.admin_token)
        .await
        .assert_problem(404, "not_found");
    // The only admin cannot demote, deactivate or delete itself.
    let admin_path = format!("/api/users/{}", t.admin_id);
    app.put(&admin_path, &t.admin_token, json!({"role": "sales"}))
        .await
        .assert_problem(409, "last_admin");
    app.put(&admin_path, &t.admin_token, json!({"active": false}))
        .await
        .assert_problem(409, "last_admin");
    app.delete(&admin_path, &t.admin_token)
        .await
        .assert_problem(409, "cannot_delete_self");
    // Email already used elsewhere.
    let other = app.create_user(&t, "viewer").await;
    app.put(
        &format!("/api/users/{}", other.id),
        &t.admin_token,
        json!({"email": t.admin_email}),
    )
    .await
    .assert_problem(409, "email_taken");
}
