use jtcrm_testkit::spawn_app;
use serde_json::json;

#[tokio::test]
async fn mutations_are_audited_without_secrets() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let u = app.create_user(&t, "sales").await;
    app.put(
        &format!("/api/users/{}", u.id),
        &t.admin_token,
        json!({"role": "manager", "password": "another-pass-1"}),
    )
    .await
    .assert(200);
    let r = app
        .get(
            &format!("/api/audit-logs?entity_type=user&entity_id={}", u.id),
            &t.admin_token,
        )
        .await;
    r.assert(200);
    let items = r.body["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"create") && actions.contains(&"update"),
        "{actions:?}"
    );
    let update = items.iter().find(|i| i["action"] == "update").unwrap();
    assert_eq!(update["changes"]["role"]["from"], "sales");
    assert_eq!(update["changes"]["role"]["to"], "manager");
    assert_eq!(update["changes"]["password"]["changed"], true);
    assert_eq!(update["actor_id"], t.admin_id);
    assert_eq!(update["tenant_id"], t.id);
    assert!(update["request_id"].is_string());
    assert!(update["ip"].is_string());
    assert!(!r.text.contains("argon2"), "hash leaked: {}", r.text);
    assert!(!r.text.contains("another-pass-1"));
    // Filters.
    let by_actor = app
        .get(
            &format!("/api/audit-logs?actor_id={}&action=update", t.admin_id),
            &t.admin_token,
        )
        .await;
    assert!(
        by_actor.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["action"] == "update")
    );
    let future = app
        .get("/api/audit-logs?from=2999-01-01T00:00:00Z", &t.admin_token)
        .await;
    assert!(future.body["items"].as_array().unwrap().is_empty());
    let page = app.get("/api/audit-logs?limit=1", &t.admin_token).await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
    assert!(page.body["next_cursor"].is_string());
    app.get("/api/audit-logs?from=yesterday", &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn audit_log_is_per_tenant_and_admin_only() {
    let app = spawn_app().await;
    let a = app.create_tenant().await;
    let b = app.create_tenant().await;
    let a_user = app.create_user(&a, "sales").await;
    let r = app.get("/api/audit-logs", &b.admin_token).await;
    r.assert(200);
    assert!(
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["tenant_id"] == b.id)
    );
    let r = app
        .get(
            &format!("/api/audit-logs?entity_id={}", a_user.id),
            &b.admin_token,
        )
        .await;
    assert!(r.body["items"].as_array().unwrap().is_empty());
    // tenant_id filter is ignored for tenant admins.
    let r = app
        .get(
            &format!("/api/audit-logs?tenant_id={}", a.id),
            &b.admin_token,
        )
        .await;
    assert!(
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["tenant_id"] == b.id)
    );
    app.get("/api/audit-logs", &a_user.token)
        .await
        .assert_problem(403, "forbidden");
    // The super-admin sees everyone's.
    let sa = app.superadmin_token().await;
    let r = app
        .get(&format!("/api/audit-logs?entity_id={}", a_user.id), &sa)
        .await;
    assert!(!r.body["items"].as_array().unwrap().is_empty());
    let r = app
        .get(
            &format!("/api/audit-logs?tenant_id={}&entity_type=tenant", b.id),
            &sa,
        )
        .await;
    assert_eq!(r.body["items"][0]["entity_id"], b.id);
}
