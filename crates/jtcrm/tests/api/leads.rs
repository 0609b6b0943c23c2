use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::{TestApp, TestTenant, spawn_app, unique};
use serde_json::{Value, json};

async fn create(app: &TestApp, token: &str, body: Value) -> jtcrm_testkit::Resp {
    app.post("/api/leads", token, body).await
}

fn ids(r: &jtcrm_testkit::Resp) -> Vec<String> {
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn create_normalises_brazilian_data() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let r = create(
        &app,
        &t.admin_token,
        json!({"name": "  João da Silva ", "email": "Joao@FibraNet.com.BR", "phone": "(11) 98765-4321",
               "company": "FibraNet Telecom", "cnpj": "12.abc.345/01de-35", "cep": "01310100", "state": "sp",
               "city": "São Paulo", "position": "Diretor de TI", "source": "inbound_call", "tags": ["Link", "link", " fibra "]}),
    )
    .await;
    r.assert(201);
    let b = &r.body;
    assert_eq!(b["name"], "João da Silva");
    assert_eq!(b["email"], "joao@fibranet.com.br");
    assert_eq!(b["phone"], "+5511987654321");
    assert_eq!(b["cnpj"], "12.ABC.345/01DE-35");
    assert_eq!(b["cep"], "01310-100");
    assert_eq!(b["state"], "SP");
    assert_eq!(b["status"], "new");
    assert_eq!(b["tags"], json!(["link", "fibra"]));
    assert_eq!(b["version"], 1);
    assert!(b["score"].as_i64().unwrap() > 0);
    assert_eq!(
        r.header("location").unwrap(),
        format!("/api/leads/{}", r.id())
    );
    let got = app
        .get(&format!("/api/leads/{}", r.id()), &t.admin_token)
        .await;
    got.assert(200);
    assert_eq!(got.body["cnpj"], "12.ABC.345/01DE-35");
}

#[tokio::test]
async fn invalid_fields_are_named() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let r = create(
        &app,
        &t.admin_token,
        json!({"email": "nope", "phone": "(20) 98765-4321", "cnpj": "11.222.333/0001-00", "cep": "123",
               "state": "XX", "source": "tv", "status": "hot", "tags": "x"}),
    )
    .await;
    r.assert_problem(422, "validation_failed");
    let r = create(
        &app,
        &t.admin_token,
        json!({"email": "nope", "phone": "(20) 98765-4321", "cnpj": "11.222.333/0001-00", "cep": "123",
               "state": "XX", "source": "tv", "status": "hot"}),
    )
    .await;
    let f = r.error_fields();
    for x in [
        "name", "email", "phone", "cnpj", "cep", "state", "source", "status",
    ] {
        assert!(f.contains(&x.to_string()), "{x} missing in {f:?}");
    }
    let phone = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["field"] == "phone")
        .unwrap();
    assert_eq!(phone["code"], "invalid_area_code");
    // A mobile without the ninth digit is refused; a landline is fine.
    let r = create(
        &app,
        &t.admin_token,
        json!({"name": "X", "phone": "(11) 9765-4321"}),
    )
    .await;
    assert_eq!(r.error_fields(), vec!["phone"]);
    let r = create(
        &app,
        &t.admin_token,
        json!({"name": "X", "phone": "(11) 3765-4321"}),
    )
    .await;
    r.assert(201);
    assert_eq!(r.body["phone"], "+551137654321");
}

#[tokio::test]
async fn bad_requests_get_problem_json() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let r = TestApp::finish(
        app.raw(Method::POST, "/api/leads")
            .bearer_auth(&t.admin_token)
            .header("content-type", "application/json")
            .body("{\"name\":"),
    )
    .await;
    r.assert_problem(400, "malformed_json");
    create(&app, &t.admin_token, json!({"name": 5}))
        .await
        .assert_problem(422, "validation_failed");
    create(
        &app,
        &t.admin_token,
        json!({"name": "x", "owner_id": "abc"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    create(
        &app,
        &t.admin_token,
        json!({"name": "x", "owner_id": uuid::Uuid::now_v7()}),
    )
    .await
    .assert_problem(404, "not_found");
    app.get("/api/leads/xyz", &t.admin_token)
        .await
        .assert_problem(400, "invalid_id");
    app.get(
        &format!("/api/leads/{}", uuid::Uuid::now_v7()),
        &t.admin_token,
    )
    .await
    .assert_problem(404, "not_found");
    app.get("/api/leads?limit=500", &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/leads?status=hot", &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/leads?sort=color", &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/leads?created_from=ontem", &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/leads?cursor=zzz", &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/leads?cf.nope=1", &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
    let big = "x".repeat(1_100_000);
    let r = TestApp::finish(
        app.raw(Method::POST, "/api/leads")
            .bearer_auth(&t.admin_token)
            .header("content-type", "application/json")
            .body(format!("{{\"name\":\"{big}\"}}")),
    )
    .await;
    r.assert_problem(413, "payload_too_large");
}

#[tokio::test]
async fn update_patch_if_match_delete_restore() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let r = create(
        &app,
        &t.admin_token,
        json!({"name": "Ana", "email": "ana@provedor.com.br", "city": "Recife"}),
    )
    .await;
    let id = r.id();
    let path = format!("/api/leads/{id}");
    let p = TestApp::finish(
        app.raw(Method::PATCH, &path)
            .bearer_auth(&t.admin_token)
            .header("if-match", "\"1\"")
            .json(&json!({"status": "qualified"})),
    )
    .await;
    p.assert(200);
    assert_eq!(p.body["status"], "qualified");
    assert_eq!(p.body["city"], "Recife", "PATCH keeps absent fields");
    assert_eq!(p.body["version"], 2);
    let stale = TestApp::finish(
        app.raw(Method::PATCH, &path)
            .bearer_auth(&t.admin_token)
            .header("if-match", "\"1\"")
            .json(&json!({"status": "lost"})),
    )
    .await;
    stale.assert_problem(412, "precondition_failed");
    let put = app
        .put(&path, &t.admin_token, json!({"name": "Ana Maria"}))
        .await;
    put.assert(200);
    assert!(put.body["city"].is_null(), "PUT clears absent fields");
    assert_eq!(
        put.body["status"], "qualified",
        "PUT without status keeps it"
    );
    let clear = app
        .send(
            Method::PATCH,
            &path,
            Some(&t.admin_token),
            Some(json!({"email": null})),
        )
        .await;
    assert!(clear.body["email"].is_null());
    let hist = app
        .get(&format!("{path}/status-history"), &t.admin_token)
        .await;
    hist.assert(200);
    let h = hist.body.as_array().unwrap();
    assert_eq!(h.len(), 2);
    assert!(h[0]["from"].is_null());
    assert_eq!(h[1]["from"], "new");
    assert_eq!(h[1]["to"], "qualified");
    app.delete(&path, &t.admin_token).await.assert(204);
    app.get(&path, &t.admin_token)
        .await
        .assert_problem(404, "not_found");
    let trash = app.get("/api/leads?deleted=true", &t.admin_token).await;
    assert_eq!(ids(&trash), vec![id.clone()]);
    assert!(ids(&app.get("/api/leads", &t.admin_token).await).is_empty());
    let restored = app
        .send(
            Method::POST,
            &format!("{path}/restore"),
            Some(&t.admin_token),
            None,
        )
        .await;
    restored.assert(200);
    assert!(restored.body.get("deleted_at").is_none());
    app.send(
        Method::POST,
        &format!("{path}/restore"),
        Some(&t.admin_token),
        None,
    )
    .await
    .assert_problem(409, "invalid_state_transition");
    // Audit trail.
    let log = app
        .get(
            &format!("/api/audit-logs?entity_type=lead&entity_id={id}"),
            &t.admin_token,
        )
        .await;
    let actions: Vec<&str> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    for a in ["create", "update", "delete", "restore"] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
}

#[tokio::test]
async fn leads_are_isolated_between_tenants() {
    let app = spawn_app().await;
    let a = app.create_tenant().await;
    let b = app.create_tenant().await;
    let lead = create(
        &app,
        &a.admin_token,
        json!({"name": "Segredo", "email": "s@a.com.br", "phone": "11987654321"}),
    )
    .await;
    let id = lead.id();
    let p = format!("/api/leads/{id}");
    let bt = &b.admin_token;
    app.get(&p, bt).await.assert_problem(404, "not_found");
    app.put(&p, bt, json!({"name": "x"}))
        .await
        .assert_problem(404, "not_found");
    app.send(Method::PATCH, &p, Some(bt), Some(json!({"name": "x"})))
        .await
        .assert_problem(404, "not_found");
    app.delete(&p, bt).await.assert_problem(404, "not_found");
    app.send(Method::POST, &format!("{p}/restore"), Some(bt), None)
        .await
        .assert_problem(404, "not_found");
    app.post(&format!("{p}/assign"), bt, json!({"owner_id": null}))
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("{p}/score"), bt)
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("{p}/status-history"), bt)
        .await
        .assert_problem(404, "not_found");
    app.post(
        &format!("{p}/merge"),
        bt,
        json!({"duplicate_ids": [uuid::Uuid::now_v7()]}),
    )
    .await
    .assert_problem(404, "not_found");
    let mine = create(&app, bt, json!({"name": "Meu"})).await.id();
    app.post(
        &format!("/api/leads/{mine}/merge"),
        bt,
        json!({"duplicate_ids": [id]}),
    )
    .await
    .assert_problem(404, "not_found");
    assert_eq!(ids(&app.get("/api/leads", bt).await), vec![mine.clone()]);
    assert!(ids(&app.get("/api/leads?q=segredo", bt).await).is_empty());
    assert!(ids(&app.get("/api/leads?q=11987654321", bt).await).is_empty());
    assert!(
        app.get("/api/leads/duplicates", bt)
            .await
            .body
            .as_array()
            .unwrap()
            .is_empty()
    );
    // The same email in another tenant is not a duplicate.
    create(&app, bt, json!({"name": "Outro", "email": "s@a.com.br"}))
        .await
        .assert(201);
    // Another tenant's user as owner is rejected without saying why.
    create(
        &app,
        &a.admin_token,
        json!({"name": "x", "owner_id": b.admin_id}),
    )
    .await
    .assert_problem(404, "not_found");
}

#[tokio::test]
async fn permissions_and_visibility() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let s1 = app.create_user(&t, "sales").await;
    let s2 = app.create_user(&t, "sales").await;
    let viewer = app.create_user(&t, "viewer").await;
    let l1 = create(&app, &s1.token, json!({"name": "Do S1"})).await;
    l1.assert(201);
    assert_eq!(l1.body["owner_id"], s1.id, "a seller's lead is its own");
    let l2 = create(&app, &s2.token, json!({"name": "Do S2"})).await.id();
    assert_eq!(ids(&app.get("/api/leads", &s1.token).await), vec![l1.id()]);
    app.get(&format!("/api/leads/{l2}"), &s1.token)
        .await
        .assert_problem(404, "not_found");
    app.send(
        Method::PATCH,
        &format!("/api/leads/{l2}"),
        Some(&s1.token),
        Some(json!({"name": "x"})),
    )
    .await
    .assert_problem(404, "not_found");
    // Admin and viewer see all; viewer cannot write.
    assert_eq!(ids(&app.get("/api/leads", &t.admin_token).await).len(), 2);
    assert_eq!(ids(&app.get("/api/leads", &viewer.token).await).len(), 2);
    create(&app, &viewer.token, json!({"name": "x"}))
        .await
        .assert_problem(403, "forbidden");
    app.send(
        Method::PATCH,
        &format!("/api/leads/{l2}"),
        Some(&viewer.token),
        Some(json!({"name": "x"})),
    )
    .await
    .assert_problem(403, "forbidden");
    app.delete(&format!("/api/leads/{l2}"), &viewer.token)
        .await
        .assert_problem(403, "forbidden");
    // Sellers cannot reassign.
    app.post(
        &format!("/api/leads/{}/assign", l1.id()),
        &s1.token,
        json!({"owner_id": s2.id}),
    )
    .await
    .assert_problem(403, "forbidden");
    create(&app, &s1.token, json!({"name": "x", "owner_id": s2.id}))
        .await
        .assert_problem(403, "forbidden");
    let r = app
        .post(
            &format!("/api/leads/{}/assign", l1.id()),
            &t.admin_token,
            json!({"owner_id": s2.id}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["owner_id"], s2.id);
    assert!(ids(&app.get("/api/leads", &s1.token).await).is_empty());
    // Team visibility.
    app.put(
        "/api/tenant",
        &t.admin_token,
        json!({"settings": {"team_visibility": true}}),
    )
    .await
    .assert(200);
    let all = app.get("/api/leads?owner_id=me", &s2.token).await;
    assert_eq!(ids(&all).len(), 2);
    let s1_all = app.get("/api/leads", &s1.token).await;
    assert_eq!(ids(&s1_all).len(), 2);
}

#[tokio::test]
async fn idempotency_key_replays_the_first_response() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let send = |body: Value, key: &str| {
        app.raw(Method::POST, "/api/leads")
            .bearer_auth(&t.admin_token)
            .header("idempotency-key", key)
            .json(&body)
    };
    let a = TestApp::finish(send(json!({"name": "Uma vez"}), "k-1")).await;
    a.assert(201);
    let b = TestApp::finish(send(json!({"name": "Uma vez"}), "k-1")).await;
    b.assert(201);
    assert_eq!(a.body["id"], b.body["id"]);
    assert_eq!(ids(&app.get("/api/leads", &t.admin_token).await).len(), 1);
    TestApp::finish(send(json!({"name": "Outra"}), "k-1"))
        .await
        .assert_problem(409, "idempotency_key_reused");
    // Concurrent retries create exactly one lead.
    let mut hs = vec![];
    for _ in 0..5 {
        let rb = send(json!({"name": "Concorrente"}), "k-2");
        hs.push(tokio::spawn(async move { TestApp::finish(rb).await }));
    }
    let mut seen = std::collections::BTreeSet::new();
    for h in hs {
        let r = h.await.unwrap();
        r.assert(201);
        seen.insert(r.body["id"].as_str().unwrap().to_string());
    }
    assert_eq!(seen.len(), 1);
    assert_eq!(ids(&app.get("/api/leads", &t.admin_token).await).len(), 2);
}

#[tokio::test]
async fn plan_lead_limit() {
    let app = spawn_app().await;
    let sa = app.superadmin_token().await;
    let code = unique("l3-");
    app.post(
        "/api/super-admin/plans",
        &sa,
        json!({"code": code, "name": "Três", "limits": {"max_users": 5, "max_leads": 3}}),
    )
    .await
    .assert(201);
    let t = app.create_tenant_on(&code).await;
    let mut hs = vec![];
    for i in 0..6 {
        let rb = app
            .raw(Method::POST, "/api/leads")
            .bearer_auth(&t.admin_token)
            .json(&json!({"name": format!("L{i}")}));
        hs.push(tokio::spawn(async move { TestApp::finish(rb).await }));
    }
    let mut ok = 0;
    for h in hs {
        let r = h.await.unwrap();
        if r.status.as_u16() == 201 {
            ok += 1;
        } else {
            r.assert_problem(402, "plan_limit_exceeded");
            assert_eq!(r.body["context"]["limit"], "max_leads");
        }
    }
    assert_eq!(ok, 3);
    let one = ids(&app.get("/api/leads?limit=1", &t.admin_token).await).remove(0);
    app.delete(&format!("/api/leads/{one}"), &t.admin_token)
        .await
        .assert(204);
    create(&app, &t.admin_token, json!({"name": "Cabe"}))
        .await
        .assert(201);
    app.send(
        Method::POST,
        &format!("/api/leads/{one}/restore"),
        Some(&t.admin_token),
        None,
    )
    .await
    .assert_problem(402, "plan_limit_exceeded");
}

#[tokio::test]
async fn duplicates_are_refused_listed_and_merged() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let a = create(
        &app,
        &t.admin_token,
        json!({"name": "Carlos", "email": "carlos@isp.com.br", "tags": ["a"], "notes": "primeiro"}),
    )
    .await
    .id();
    let r = create(
        &app,
        &t.admin_token,
        json!({"name": "Carlos 2", "email": "CARLOS@isp.com.br"}),
    )
    .await;
    r.assert_problem(409, "duplicate_lead");
    assert_eq!(r.body["context"]["existing_id"], a);
    assert_eq!(r.body["context"]["matched_on"], "email");
    let r = create(
        &app,
        &t.admin_token,
        json!({"name": "C", "phone": "11 3456-7890"}),
    )
    .await;
    let c = r.id();
    create(
        &app,
        &t.admin_token,
        json!({"name": "C2", "phone": "(11) 3456-7890"}),
    )
    .await
    .assert_problem(409, "duplicate_lead");
    let b = app
        .send(Method::POST, "/api/leads?allow_duplicate=true", Some(&t.admin_token),
              Some(json!({"name": "Carlos Dup", "email": "carlos@isp.com.br", "phone": "(11) 3456-7890", "company": "ISP", "tags": ["b"], "notes": "segundo"})))
        .await;
    b.assert(201);
    let b = b.id();
    // Editing another lead into a duplicate is refused too.
    app.send(
        Method::PATCH,
        &format!("/api/leads/{c}"),
        Some(&t.admin_token),
        Some(json!({"email": "carlos@isp.com.br"})),
    )
    .await
    .assert_problem(409, "duplicate_lead");
    let groups = app.get("/api/leads/duplicates", &t.admin_token).await;
    groups.assert(200);
    let g = groups.body.as_array().unwrap();
    assert!(
        g.iter()
            .any(|x| x["matched_on"] == "email" && x["leads"].as_array().unwrap().len() == 2)
    );
    assert!(
        g.iter()
            .any(|x| x["matched_on"] == "phone" && x["leads"].as_array().unwrap().len() == 2)
    );
    // Merge b into a, taking the name from b.
    let m = app
        .post(
            &format!("/api/leads/{a}/merge"),
            &t.admin_token,
            json!({"duplicate_ids": [b], "fields": {"name": b}}),
        )
        .await;
    m.assert(200);
    assert_eq!(m.body["id"], a);
    assert_eq!(m.body["name"], "Carlos Dup");
    assert_eq!(
        m.body["company"], "ISP",
        "empty field filled from the duplicate"
    );
    assert_eq!(m.body["tags"], json!(["a", "b"]));
    assert!(
        m.body["notes"].as_str().unwrap().contains("primeiro")
            && m.body["notes"].as_str().unwrap().contains("segundo")
    );
    app.get(&format!("/api/leads/{b}"), &t.admin_token)
        .await
        .assert_problem(404, "not_found");
    let r = app
        .send(
            Method::POST,
            &format!("/api/leads/{b}/restore"),
            Some(&t.admin_token),
            None,
        )
        .await;
    r.assert_problem(409, "lead_merged");
    assert_eq!(r.body["context"]["merged_into"], a);
    let log = app
        .get(
            &format!("/api/audit-logs?entity_type=lead&entity_id={a}&action=merge"),
            &t.admin_token,
        )
        .await;
    assert_eq!(log.body["items"][0]["changes"]["merged_ids"][0], b);
    app.post(
        &format!("/api/leads/{a}/merge"),
        &t.admin_token,
        json!({"duplicate_ids": []}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.post(
        &format!("/api/leads/{a}/merge"),
        &t.admin_token,
        json!({"duplicate_ids": [a]}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.post(
        &format!("/api/leads/{a}/merge"),
        &t.admin_token,
        json!({"duplicate_ids": [c], "fields": {"score": c}}),
    )
    .await
    .assert_problem(422, "validation_failed");
}

async fn seed_search(app: &TestApp, t: &TestTenant) -> Vec<String> {
    let mut out = vec![];
    for body in [
        json!({"name": "João Álvares", "company": "Fibra Rápida Ltda", "phone": "(81) 99876-5432", "status": "qualified"}),
        json!({"name": "Maria Souza", "company": "Conecta Telecom", "email": "maria@conecta.net.br", "cnpj": "11.222.333/0001-81"}),
        json!({"name": "José Lima", "company": "Fibra Norte", "tags": ["vip"], "status": "contacted"}),
    ] {
        let r = create(app, &t.admin_token, body).await;
        r.assert(201);
        out.push(r.id());
    }
    out
}

#[tokio::test]
async fn search_is_accent_and_case_insensitive_and_matches_digits() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let ids_ = seed_search(&app, &t).await;
    let q = |s: &str| format!("/api/leads?q={}", urlencode(s));
    assert_eq!(
        ids(&app.get(&q("joao"), &t.admin_token).await),
        vec![ids_[0].clone()]
    );
    assert_eq!(
        ids(&app.get(&q("ÁLVA"), &t.admin_token).await),
        vec![ids_[0].clone()]
    );
    let fibra = ids(&app.get(&q("fibra"), &t.admin_token).await);
    assert_eq!(fibra.len(), 2);
    assert_eq!(
        ids(&app.get(&q("fibra norte"), &t.admin_token).await),
        vec![ids_[2].clone()]
    );
    assert_eq!(
        ids(&app.get(&q("99876-5432"), &t.admin_token).await),
        vec![ids_[0].clone()]
    );
    assert_eq!(
        ids(&app.get(&q("81998765432"), &t.admin_token).await),
        vec![ids_[0].clone()]
    );
    assert_eq!(
        ids(&app.get(&q("+55 (81) 99876-5432"), &t.admin_token).await),
        vec![ids_[0].clone()]
    );
    assert_eq!(
        ids(&app.get(&q("11.222.333/0001-81"), &t.admin_token).await),
        vec![ids_[1].clone()]
    );
    assert_eq!(
        ids(&app.get(&q("11222333"), &t.admin_token).await),
        vec![ids_[1].clone()]
    );
    assert_eq!(
        ids(&app.get(&q("maria@conecta"), &t.admin_token).await),
        vec![ids_[1].clone()]
    );
    assert_eq!(
        ids(&app.get(&q("conecta.net.br"), &t.admin_token).await),
        vec![ids_[1].clone()]
    );
    assert!(ids(&app.get(&q("inexistente"), &t.admin_token).await).is_empty());
    // Filters combine with q.
    assert_eq!(
        ids(&app
            .get("/api/leads?q=fibra&status=contacted", &t.admin_token)
            .await),
        vec![ids_[2].clone()]
    );
    assert_eq!(
        ids(&app.get("/api/leads?tag=VIP", &t.admin_token).await),
        vec![ids_[2].clone()]
    );
    assert_eq!(
        ids(&app
            .get(
                "/api/leads?status=qualified,contacted&sort=name",
                &t.admin_token
            )
            .await),
        vec![ids_[0].clone(), ids_[2].clone()]
    );
    // Renaming updates the index.
    app.send(
        Method::PATCH,
        &format!("/api/leads/{}", ids_[0]),
        Some(&t.admin_token),
        Some(json!({"name": "Pedro"})),
    )
    .await
    .assert(200);
    assert!(ids(&app.get(&q("joao"), &t.admin_token).await).is_empty());
    assert_eq!(
        ids(&app.get(&q("pedro"), &t.admin_token).await),
        vec![ids_[0].clone()]
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn sorting_and_keyset_pagination_are_stable() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let mut created = vec![];
    for i in 0..7 {
        let body = json!({"name": format!("Lead {i}"), "cnpj": if i % 2 == 0 { json!("11222333000181") } else { Value::Null }});
        let r = app
            .send(
                Method::POST,
                "/api/leads?allow_duplicate=true",
                Some(&t.admin_token),
                Some(body),
            )
            .await;
        created.push(r.id());
    }
    for sort in [
        "-created_at",
        "created_at",
        "-score",
        "score",
        "name",
        "-name",
        "-updated_at",
    ] {
        let mut seen = vec![];
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => {
                    format!("/api/leads?limit=3&sort={sort}&cursor={c}&allow_duplicate=true")
                }
                None => format!("/api/leads?limit=3&sort={sort}&include_total=true"),
            };
            let r = app.get(&url, &t.admin_token).await;
            r.assert(200);
            if cursor.is_none() {
                assert!(r.body["total"].as_i64().unwrap() >= 7);
                // Concurrent inserts do not disturb an ongoing walk.
                app.send(
                    Method::POST,
                    "/api/leads?allow_duplicate=true",
                    Some(&t.admin_token),
                    Some(json!({"name": "Intruso", "cnpj": "11222333000181"})),
                )
                .await
                .assert(201);
            }
            seen.extend(ids(&r));
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let unique: std::collections::BTreeSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{sort}: duplicates in walk");
        for id in &created {
            assert!(seen.contains(id), "{sort}: {id} missing");
        }
    }
    // Cursor of another sort is rejected.
    let r = app
        .get("/api/leads?limit=1&sort=name", &t.admin_token)
        .await;
    let c = r.body["next_cursor"].as_str().unwrap().to_string();
    app.get(&format!("/api/leads?sort=score&cursor={c}"), &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
    let r = app
        .get(
            "/api/leads?sort=-score&score_min=20&limit=200",
            &t.admin_token,
        )
        .await;
    let scores: Vec<i64> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["score"].as_i64().unwrap())
        .collect();
    assert!(
        scores.iter().all(|s| *s >= 20) && scores.windows(2).all(|w| w[0] >= w[1]),
        "{scores:?}"
    );
}

#[tokio::test]
async fn custom_fields_are_defined_validated_and_filterable() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let sales = app.create_user(&t, "sales").await;
    let f = app
        .post("/api/leads/fields", &t.admin_token, json!({"key": "segmento", "label": "Segmento", "type": "select", "options": ["provedor", "varejo"]}))
        .await;
    f.assert(201);
    app.post(
        "/api/leads/fields",
        &t.admin_token,
        json!({"key": "links", "label": "Links", "type": "number"}),
    )
    .await
    .assert(201);
    app.post(
        "/api/leads/fields",
        &t.admin_token,
        json!({"key": "segmento", "label": "X", "type": "text"}),
    )
    .await
    .assert_problem(409, "field_key_taken");
    app.post(
        "/api/leads/fields",
        &t.admin_token,
        json!({"key": "Bad Key", "label": "X", "type": "color"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.post(
        "/api/leads/fields",
        &t.admin_token,
        json!({"key": "x", "label": "X", "type": "select"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.post(
        "/api/leads/fields",
        &sales.token,
        json!({"key": "y", "label": "Y", "type": "text"}),
    )
    .await
    .assert_problem(403, "forbidden");
    let ok = create(
        &app,
        &t.admin_token,
        json!({"name": "P", "custom_fields": {"segmento": "Provedor", "links": "3"}}),
    )
    .await;
    ok.assert(201);
    assert_eq!(ok.body["custom_fields"]["segmento"], "provedor");
    assert_eq!(ok.body["custom_fields"]["links"], 3.0);
    create(
        &app,
        &t.admin_token,
        json!({"name": "V", "custom_fields": {"segmento": "varejo", "links": 1}}),
    )
    .await
    .assert(201);
    let r = create(&app, &t.admin_token, json!({"name": "E", "custom_fields": {"segmento": "banco", "cor": "azul", "links": "muitos"}})).await;
    r.assert_problem(422, "validation_failed");
    let fields = r.error_fields();
    for x in [
        "custom_fields.segmento",
        "custom_fields.cor",
        "custom_fields.links",
    ] {
        assert!(fields.contains(&x.to_string()), "{x} in {fields:?}");
    }
    assert_eq!(
        ids(&app
            .get("/api/leads?cf.segmento=provedor", &t.admin_token)
            .await),
        vec![ok.id()]
    );
    assert_eq!(
        ids(&app.get("/api/leads?cf.links=3", &t.admin_token).await),
        vec![ok.id()]
    );
    app.get("/api/leads?cf.segmento=banco", &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
    // Required fields.
    let fid = f.id();
    app.put(
        &format!("/api/leads/fields/{fid}"),
        &t.admin_token,
        json!({"required": true}),
    )
    .await
    .assert(200);
    let r = create(&app, &t.admin_token, json!({"name": "Sem segmento"})).await;
    assert_eq!(r.error_fields(), vec!["custom_fields.segmento"]);
    app.put(
        &format!("/api/leads/fields/{fid}"),
        &t.admin_token,
        json!({"key": "other"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    // Another tenant sees none of it.
    let other = app.create_tenant().await;
    assert!(
        app.get("/api/leads/fields", &other.admin_token)
            .await
            .body
            .as_array()
            .unwrap()
            .is_empty()
    );
    app.put(
        &format!("/api/leads/fields/{fid}"),
        &other.admin_token,
        json!({"label": "x"}),
    )
    .await
    .assert_problem(404, "not_found");
    app.delete(&format!("/api/leads/fields/{fid}"), &other.admin_token)
        .await
        .assert_problem(404, "not_found");
    app.delete(&format!("/api/leads/fields/{fid}"), &t.admin_token)
        .await
        .assert(204);
    // Values stay on leads after the definition is deleted, and the lead stays editable.
    let kept = app
        .get(&format!("/api/leads/{}", ok.id()), &t.admin_token)
        .await;
    assert_eq!(kept.body["custom_fields"]["segmento"], "provedor");
    app.send(
        Method::PATCH,
        &format!("/api/leads/{}", ok.id()),
        Some(&t.admin_token),
        Some(json!({"city": "Natal"})),
    )
    .await
    .assert(200);
}

#[tokio::test]
async fn round_robin_assignment_is_fair_under_concurrency() {
    let app = spawn_app().await;
    let sa = app.superadmin_token().await;
    let t = app.create_tenant_on("professional").await;
    let sellers = [
        app.create_user(&t, "sales").await,
        app.create_user(&t, "sales").await,
        app.create_user(&t, "sales").await,
    ];
    let _ = sa;
    app.put(
        "/api/tenant",
        &t.admin_token,
        json!({"settings": {"lead_assignment": {"mode": "round_robin"}}}),
    )
    .await
    .assert(200);
    let mut hs = vec![];
    for i in 0..12 {
        let rb = app
            .raw(Method::POST, "/api/leads")
            .bearer_auth(&t.admin_token)
            .json(&json!({"name": format!("RR {i}")}));
        hs.push(tokio::spawn(async move { TestApp::finish(rb).await }));
    }
    let mut counts = std::collections::BTreeMap::new();
    for h in hs {
        let r = h.await.unwrap();
        r.assert(201);
        *counts
            .entry(r.body["owner_id"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    for s in &sellers {
        assert_eq!(counts.get(&s.id), Some(&4), "{counts:?}");
    }
    // Fixed mode.
    app.put(
        "/api/tenant",
        &t.admin_token,
        json!({"settings": {"lead_assignment": {"mode": "fixed", "user_id": sellers[1].id}}}),
    )
    .await
    .assert(200);
    let r = create(&app, &t.admin_token, json!({"name": "Fixo"})).await;
    assert_eq!(r.body["owner_id"], sellers[1].id);
    app.put("/api/tenant", &t.admin_token, json!({"settings": {"lead_assignment": {"mode": "fixed", "user_id": uuid::Uuid::now_v7()}}}))
        .await
        .assert_problem(404, "not_found");
    // Explicit owner wins.
    let r = create(
        &app,
        &t.admin_token,
        json!({"name": "Explícito", "owner_id": sellers[2].id}),
    )
    .await;
    assert_eq!(r.body["owner_id"], sellers[2].id);
}

#[tokio::test]
async fn scoring_explains_and_rescoring_runs_in_background() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    app.put(
        "/api/tenant",
        &t.admin_token,
        json!({"settings": {"coverage_states": ["PE", "pb"]}}),
    )
    .await
    .assert(200);
    let rules = app.get("/api/leads/scoring-rules", &t.admin_token).await;
    rules.assert(200);
    assert!(
        rules.body.as_array().unwrap().len() >= 5,
        "default rules seeded"
    );
    let l = create(
        &app,
        &t.admin_token,
        json!({"name": "Diretora", "email": "ana@provedorx.com.br", "cnpj": "11222333000181", "position": "Diretora Comercial",
               "source": "referral", "state": "PE", "phone": "81 3333-4444", "company": "Provedor X"}),
    )
    .await;
    l.assert(201);
    let id = l.id();
    let s = app
        .get(&format!("/api/leads/{id}/score"), &t.admin_token)
        .await;
    s.assert(200);
    assert_eq!(s.body["score"], l.body["score"]);
    let descs: Vec<&str> = s.body["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["description"].as_str().unwrap())
        .collect();
    assert!(descs.iter().any(|d| d.contains("CNPJ")), "{descs:?}");
    assert!(descs.iter().any(|d| d.contains("corporativo")), "{descs:?}");
    assert!(descs.iter().any(|d| d.contains("cobertura")), "{descs:?}");
    assert!(descs.iter().any(|d| d.contains("decisão")), "{descs:?}");
    let sum: i64 = s.body["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["points"].as_i64().unwrap())
        .sum();
    assert_eq!(s.body["raw_points"], sum);
    assert_eq!(s.body["score"], sum.clamp(0, 100));
    let gmail = create(
        &app,
        &t.admin_token,
        json!({"name": "Pessoa", "email": "pessoa@gmail.com"}),
    )
    .await;
    assert_eq!(gmail.body["score"], 0);
    // A new rule rescoring existing leads in the background.
    let r = app
        .post("/api/leads/scoring-rules", &t.admin_token, json!({"field": "name", "operator": "contains", "value": "pessoa", "points": 33, "description": "Nome de teste"}))
        .await;
    r.assert(201);
    let mut score = 0;
    for _ in 0..100 {
        score = app
            .get(&format!("/api/leads/{}", gmail.id()), &t.admin_token)
            .await
            .body["score"]
            .as_i64()
            .unwrap();
        if score == 33 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(score, 33, "lead not rescored in the background");
    // Negative points and clamping.
    let rid = r.id();
    app.put(
        &format!("/api/leads/scoring-rules/{rid}"),
        &t.admin_token,
        json!({"points": -100}),
    )
    .await
    .assert(200);
    let changed = app
        .send(
            Method::PATCH,
            &format!("/api/leads/{}", gmail.id()),
            Some(&t.admin_token),
            Some(json!({"city": "Natal"})),
        )
        .await;
    assert_eq!(changed.body["score"], 0);
    // Bad rules and permissions.
    app.post(
        "/api/leads/scoring-rules",
        &t.admin_token,
        json!({"field": "shoe_size", "operator": "gt", "value": "x", "points": 500}),
    )
    .await
    .assert_problem(422, "validation_failed");
    let sales = app.create_user(&t, "sales").await;
    app.post(
        "/api/leads/scoring-rules",
        &sales.token,
        json!({"field": "name", "operator": "exists", "points": 1, "description": "x"}),
    )
    .await
    .assert_problem(403, "forbidden");
    let other = app.create_tenant().await;
    app.put(
        &format!("/api/leads/scoring-rules/{rid}"),
        &other.admin_token,
        json!({"points": 1}),
    )
    .await
    .assert_problem(404, "not_found");
    app.delete(
        &format!("/api/leads/scoring-rules/{rid}"),
        &other.admin_token,
    )
    .await
    .assert_problem(404, "not_found");
    assert!(
        !app.get("/api/leads/scoring-rules", &other.admin_token)
            .await
            .text
            .contains(&rid)
    );
    app.delete(&format!("/api/leads/scoring-rules/{rid}"), &t.admin_token)
        .await
        .assert(204);
}

/// Every page of a search, in order (the text search's index-window path and its fallbacks).
async fn search_pages(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/leads?{query}&limit=3");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&path, token).await;
        r.assert(200);
        out.extend(ids(&r));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn text_search_pages_in_creation_order_with_other_filters() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let tok = &t.admin_token;
    let mut fibra = vec![];
    let mut qualified = vec![];
    for i in 0..40 {
        let company = if i % 3 == 0 {
            format!("Provedor Sinal {i}")
        } else {
            format!("Fibra Rápida {i}")
        };
        let status = if i % 4 == 0 { "qualified" } else { "new" };
        let r = create(
            &app,
            tok,
            json!({"name": format!("Contato {i}"), "company": company, "status": status}),
        )
        .await;
        r.assert(201);
        if i % 3 != 0 {
            fibra.push(r.id());
            if status == "qualified" {
                qualified.push(r.id());
            }
        }
    }
    // One match deleted: never listed.
    let gone = fibra.remove(5);
    app.delete(&format!("/api/leads/{gone}"), tok)
        .await
        .assert(204);
    qualified.retain(|x| *x != gone);
    let newest_first: Vec<String> = fibra.iter().rev().cloned().collect();
    assert_eq!(search_pages(&app, tok, "q=fibra").await, newest_first);
    assert_eq!(
        search_pages(&app, tok, "q=FIBRA&sort=created_at").await,
        fibra
    );
    // A selective second filter: few matches per window, same answer.
    let q_newest: Vec<String> = qualified.iter().rev().cloned().collect();
    assert_eq!(
        search_pages(&app, tok, "q=fib&status=qualified").await,
        q_newest
    );
    // Two words: both must match.
    let r = app.get("/api/leads?q=fibra%20rapida%2017", tok).await;
    r.assert(200);
    assert_eq!(ids(&r).len(), 1);
    // Other sorts take the general path and agree on the set.
    let mut by_name = search_pages(&app, tok, "q=fibra&sort=name").await;
    by_name.sort();
    let mut all = fibra.clone();
    all.sort();
    assert_eq!(by_name, all);
}
