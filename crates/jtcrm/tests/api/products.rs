use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::{Resp, TestApp, spawn_app};
use serde_json::{Value, json};

fn ids(r: &Resp) -> Vec<String> {
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

fn link(sku: &str) -> Value {
    json!({"name": "Link Dedicado 100 Mbps", "sku": sku, "category": "dedicated_internet",
           "billing": "monthly", "monthly_price_cents": 120000, "setup_price_cents": 50000})
}

#[tokio::test]
async fn product_crud_with_unique_sku() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let r = app
        .post("/api/products", &t.admin_token, link("ld-100"))
        .await;
    r.assert(201);
    let id = r.id();
    assert_eq!(r.body["sku"], "LD-100");
    assert_eq!(r.body["tax_class"], "scm", "internet defaults to SCM");
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.header("location").unwrap(), format!("/api/products/{id}"));
    // SKU unique per tenant, case-insensitive.
    app.post("/api/products", &t.admin_token, link("LD-100"))
        .await
        .assert_problem(409, "sku_taken");
    // Another tenant may use the same SKU.
    let t2 = app.create_tenant().await;
    app.post("/api/products", &t2.admin_token, link("LD-100"))
        .await
        .assert(201);

    let path = format!("/api/products/{id}");
    let got = app.get(&path, &t.admin_token).await;
    got.assert(200);
    assert_eq!(got.header("etag").unwrap(), "\"1\"");
    let put = app
        .put(
            &path,
            &t.admin_token,
            json!({"name": "Link 200", "sku": "LD-200", "category": "dedicated_internet", "billing": "monthly",
                   "monthly_price_cents": 180000, "tax_class": "sva"}),
        )
        .await;
    put.assert(200);
    assert_eq!(put.body["setup_price_cents"], 0, "PUT resets absent prices");
    assert_eq!(put.body["tax_class"], "sva");
    assert_eq!(put.body["version"], 2);
    let stale = TestApp::finish(
        app.raw(Method::PATCH, &path)
            .bearer_auth(&t.admin_token)
            .header("if-match", "\"1\"")
            .json(&json!({"active": false})),
    )
    .await;
    stale.assert_problem(412, "precondition_failed");
    let off = TestApp::finish(
        app.raw(Method::PATCH, &path)
            .bearer_auth(&t.admin_token)
            .header("if-match", "\"2\"")
            .json(&json!({"active": false})),
    )
    .await;
    off.assert(200);
    assert_eq!(off.body["active"], false);
    assert_eq!(off.body["name"], "Link 200", "PATCH keeps absent fields");
    // The old SKU is free again, the new one is taken.
    app.post("/api/products", &t.admin_token, link("LD-100"))
        .await
        .assert(201);
    app.post("/api/products", &t.admin_token, link("ld-200"))
        .await
        .assert_problem(409, "sku_taken");
    // Deleting frees the SKU and hides the product.
    app.delete(&path, &t.admin_token).await.assert(204);
    app.get(&path, &t.admin_token)
        .await
        .assert_problem(404, "not_found");
    app.delete(&path, &t.admin_token)
        .await
        .assert_problem(404, "not_found");
    app.post("/api/products", &t.admin_token, link("LD-200"))
        .await
        .assert(201);
    let logs = app
        .get(
            &format!("/api/audit-logs?entity_type=product&entity_id={id}"),
            &t.admin_token,
        )
        .await;
    logs.assert(200);
    let actions: Vec<&str> = logs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    for a in ["create", "update", "delete"] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
}

#[tokio::test]
async fn product_list_filters_search_and_pages() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let items = [
        (
            "Fibra Residencial 500",
            "BL-500",
            "broadband",
            "monthly",
            true,
        ),
        ("Telefonia VoIP", "VOIP-1", "voip", "monthly", true),
        ("Roteador Wi-Fi 6", "EQ-R6", "equipment", "one_time", true),
        (
            "Instalação técnica",
            "SV-INST",
            "service",
            "one_time",
            false,
        ),
        ("PABX em Nuvem", "PABX-10", "cloud_pabx", "monthly", true),
    ];
    for (name, sku, cat, billing, active) in items {
        let mut body = json!({"name": name, "sku": sku, "category": cat, "billing": billing,
                              "setup_price_cents": 10000, "active": active});
        if billing == "monthly" {
            body["monthly_price_cents"] = json!(9990);
        }
        app.post("/api/products", &t.admin_token, body)
            .await
            .assert(201);
    }
    let all = app.get("/api/products", &t.admin_token).await;
    all.assert(200);
    let names: Vec<&str> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "Fibra Residencial 500",
            "Instalação técnica",
            "PABX em Nuvem",
            "Roteador Wi-Fi 6",
            "Telefonia VoIP"
        ]
    );
    let r = app
        .get("/api/products?active=true&billing=one_time", &t.admin_token)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["items"][0]["sku"], "EQ-R6");
    let r = app.get("/api/products?q=instalacao", &t.admin_token).await;
    assert_eq!(r.body["items"][0]["sku"], "SV-INST", "accent-insensitive");
    let r = app.get("/api/products?q=pabx-1", &t.admin_token).await;
    assert_eq!(r.body["items"][0]["sku"], "PABX-10", "SKU search");
    let r = app.get("/api/products?category=voip", &t.admin_token).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    // Keyset pages of 2 cover everything once.
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/products?limit=2&include_total=true&cursor={c}"),
            None => "/api/products?limit=2&include_total=true".to_string(),
        };
        let r = app.get(&path, &t.admin_token).await;
        r.assert(200);
        assert_eq!(r.body["total"], 5);
        seen.extend(ids(&r));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ids(&all));
    app.get("/api/products?category=tv", &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/products?active=talvez", &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/products?cursor=zzz", &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn product_bad_input_is_named() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let r = TestApp::finish(
        app.raw(Method::POST, "/api/products")
            .bearer_auth(&t.admin_token)
            .header("content-type", "application/json")
            .body("{\"name\": "),
    )
    .await;
    r.assert_problem(400, "malformed_json");
    let r = app.post("/api/products", &t.admin_token, json!({})).await;
    r.assert_problem(422, "validation_failed");
    let f = r.error_fields();
    for x in ["name", "sku", "category", "billing"] {
        assert!(f.contains(&x.to_string()), "{x} missing in {f:?}");
    }
    let r = app
        .post(
            "/api/products",
            &t.admin_token,
            json!({"name": "X", "sku": "a b", "category": "tv", "billing": "weekly",
                   "monthly_price_cents": -1, "setup_price_cents": 20_000_000_000i64, "tax_class": "icms"}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    let f = r.error_fields();
    for x in [
        "sku",
        "category",
        "billing",
        "monthly_price_cents",
        "setup_price_cents",
        "tax_class",
    ] {
        assert!(f.contains(&x.to_string()), "{x} missing in {f:?}");
    }
    let r = app
        .post(
            "/api/products",
            &t.admin_token,
            json!({"name": "Roteador", "sku": "R1", "category": "equipment", "billing": "one_time",
                   "monthly_price_cents": 100}),
        )
        .await;
    assert_eq!(r.error_fields(), vec!["monthly_price_cents"]);
    let r = app
        .post(
            "/api/products",
            &t.admin_token,
            json!({"name": "X", "sku": "X1", "category": "voip", "billing": "monthly", "monthly_price_cents": "10"}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["monthly_price_cents"]);
    app.get("/api/products/nope", &t.admin_token)
        .await
        .assert_problem(400, "invalid_id");
    app.get(
        &format!("/api/products/{}", uuid::Uuid::now_v7()),
        &t.admin_token,
    )
    .await
    .assert_problem(404, "not_found");
}

#[tokio::test]
async fn products_are_isolated_and_role_checked() {
    let app = spawn_app().await;
    let a = app.create_tenant().await;
    let b = app.create_tenant().await;
    let r = app
        .post("/api/products", &a.admin_token, link("LD-1"))
        .await;
    let id = r.id();
    let path = format!("/api/products/{id}");
    app.get(&path, &b.admin_token)
        .await
        .assert_problem(404, "not_found");
    app.put(&path, &b.admin_token, link("LD-1"))
        .await
        .assert_problem(404, "not_found");
    app.delete(&path, &b.admin_token)
        .await
        .assert_problem(404, "not_found");
    assert!(ids(&app.get("/api/products", &b.admin_token).await).is_empty());

    // Everyone reads the catalog; only admins and managers change it.
    let sales = app.create_user(&a, "sales").await;
    let viewer = app.create_user(&a, "viewer").await;
    let manager = app.create_user(&a, "manager").await;
    app.get(&path, &sales.token).await.assert(200);
    assert_eq!(
        ids(&app.get("/api/products", &viewer.token).await),
        vec![id.clone()]
    );
    app.post("/api/products", &sales.token, link("LD-2"))
        .await
        .assert_problem(403, "forbidden");
    app.put(&path, &viewer.token, link("LD-1"))
        .await
        .assert_problem(403, "forbidden");
    app.delete(&path, &sales.token)
        .await
        .assert_problem(403, "forbidden");
    app.post("/api/products", &manager.token, link("LD-2"))
        .await
        .assert(201);
}
