//! Telephony (issue 15) against the faithful PABX mock: integration settings (secrets sealed and
//! masked), extensions (PABX round trip, sync, atomic quota), click-to-call with the dialling
//! rule, calls completed from the history, webhook and poll ingesting one call once, caller
//! lookup by E.164, the missed-call follow-up (event, callback task, timeline), recordings'
//! access and retention, the plan gate, isolation and bad input.

use std::time::{Duration, Instant};

use jtcrm::domains::integrations::model::setting;
use jtcrm::domains::telephony::model::{call, recording};
use jtcrm::domains::telephony::{jobs as tel_jobs, recordings as tel_recordings};
use jtcrm_integrations::pabx::ExtensionSpec;
use jtcrm_integrations::pabx::mock::{
    self, EventFormat, InboundCall, MockOutcome, MockPabxHandle, MockPabxOptions, fixtures,
};
use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::{Resp, TestApp, TestTenant, spawn_app_with, unique};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

async fn app() -> TestApp {
    spawn_app_with(|s| {
        s.job_backoff_base_ms = 150;
        s.job_backoff_cap_ms = 1_000;
    })
    .await
}

async fn pabx(event_url: Option<String>) -> MockPabxHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    mock::serve(
        listener,
        MockPabxOptions {
            cdr_delay: Duration::from_millis(300),
            event_url,
            ..MockPabxOptions::default()
        },
    )
    .await
}

/// Connects `t` to `m` (DDD 11) and returns the webhook path.
async fn connect(app: &TestApp, t: &TestTenant, m: &MockPabxHandle, extra: Value) -> String {
    let (usuario, token) = m.credentials();
    let mut config = json!({"base_url": m.base_url(), "usuario": usuario, "area_code": 11});
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    app.put(
        "/api/integrations/pabx",
        &t.admin_token,
        json!({"enabled": true, "config": config, "secrets": {"token": token}}),
    )
    .await
    .assert(200);
    let w = app
        .post(
            "/api/integrations/pabx/webhook-token",
            &t.admin_token,
            json!({}),
        )
        .await;
    w.assert(200);
    w.body["path"].as_str().unwrap().to_string()
}

async fn lead(app: &TestApp, token: &str, name: &str, phone: &str) -> String {
    let r = app
        .post("/api/leads", token, json!({"name": name, "phone": phone}))
        .await;
    r.assert(201);
    r.id()
}

/// Polls `f` until it returns `Some`, for at most `secs`.
async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn call_status(app: &TestApp, token: &str, id: &str) -> Resp {
    app.get(&format!("/api/telephony/calls/{id}"), token).await
}

async fn wait_completed(app: &TestApp, token: &str, id: &str) -> Value {
    wait_for(20, "the call to complete", || async {
        let r = call_status(app, token, id).await;
        r.assert(200);
        (r.body["status"] == "completed").then_some(r.body)
    })
    .await
}

/// Waits until the hourly extension-sync scan's first link (run when the worker starts) is done,
/// so that it cannot import the mock's extensions in the middle of a test that counts them.
async fn after_startup_sync_scan(app: &TestApp) {
    use jtcrm_kernel::jobs::model as job;
    wait_for(20, "the startup extension sync scan", || async {
        let n = job::Entity::find()
            .filter(job::Column::Kind.eq(tel_jobs::EXT_SYNC_SCAN))
            .filter(job::Column::Status.eq("succeeded"))
            .count(&app.state.db)
            .await
            .unwrap();
        (n > 0).then_some(())
    })
    .await;
}

fn tid(t: &TestTenant) -> Uuid {
    Uuid::parse_str(&t.id).unwrap()
}

#[tokio::test]
async fn integration_settings_are_validated_and_secrets_never_returned() {
    let app = app().await;
    let t = app.create_tenant().await;
    let m = pabx(None).await;
    let tok = &t.admin_token;
    let r = app.get("/api/integrations/pabx", tok).await;
    r.assert(200);
    assert_eq!(r.body["version"], 0);
    assert_eq!(r.body["secrets"]["token"]["configured"], false);
    app.get("/api/integrations/erp-x", tok)
        .await
        .assert_problem(404, "not_found");
    // Enabling needs URL, user and token; bad values name their fields.
    let r = app
        .put(
            "/api/integrations/pabx",
            tok,
            json!({"enabled": true, "config": {"base_url": "ftp://x", "area_code": 20, "nope": 1, "callback_sla_minutes": "10"}}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    let mut fields = r.error_fields();
    fields.sort();
    assert_eq!(
        fields,
        [
            "config.area_code",
            "config.base_url",
            "config.callback_sla_minutes",
            "config.nope",
            "config.usuario",
            "secrets.token"
        ]
    );
    app.put("/api/integrations/pabx", tok, json!([1]))
        .await
        .assert_problem(422, "validation_failed");
    app.put(
        "/api/integrations/pabx",
        tok,
        json!({"secrets": {"password": "x"}}),
    )
    .await
    .assert_problem(422, "validation_failed");
    connect(&app, &t, &m, json!({})).await;
    let r = app.get("/api/integrations/pabx", tok).await;
    r.assert(200);
    assert_eq!(r.body["enabled"], true);
    assert_eq!(r.body["secrets"]["token"]["configured"], true);
    assert_eq!(r.body["secrets"]["token"]["masked"], "••••en");
    assert_eq!(r.body["config"]["callback_sla_minutes"], 60);
    assert_eq!(r.body["webhook_configured"], true);
    assert!(!r.text.contains("mock-token"), "secret leaked: {}", r.text);
    // Sealed at rest: the column holds no plaintext.
    let row = setting::Entity::find_by_id((tid(&t), "pabx".to_string()))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let sealed = row.secrets["token"].as_str().unwrap();
    assert!(!sealed.contains("mock-token") && sealed.len() > 20);
    assert_eq!(row.webhook_token_hash.as_deref().map(str::len), Some(64));
    // Stale If-Match.
    let r = app
        .client
        .put(app.url("/api/integrations/pabx"))
        .bearer_auth(tok)
        .header("If-Match", "\"1\"")
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 412);
    // Connection test.
    let r = app
        .post("/api/integrations/pabx/test", tok, json!({}))
        .await;
    r.assert(200);
    assert_eq!(r.body["ok"], true, "{}", r.text);
    // Admins only.
    let seller = app.create_user(&t, "sales").await;
    app.get("/api/integrations/pabx", &seller.token)
        .await
        .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn extensions_round_trip_sync_and_quota() {
    let app = app().await;
    let sa = app.superadmin_token().await;
    let code = unique("tel").to_lowercase();
    app.post(
        "/api/super-admin/plans",
        &sa,
        json!({"code": code, "name": "Tel mini", "limits": {"max_extensions": 2}, "features": {"telephony": true}}),
    )
    .await
    .assert(201);
    let t = app.create_tenant_on(&code).await;
    let m = pabx(None).await;
    let tok = &t.admin_token;
    after_startup_sync_scan(&app).await;
    connect(&app, &t, &m, json!({})).await;
    let seller = app.create_user(&t, "sales").await;
    let r = app
        .post(
            "/api/telephony/extensions",
            tok,
            json!({"number": "2001", "name": "Maria", "user_id": seller.id, "area_code": 21}),
        )
        .await;
    r.assert(201);
    assert!(r.header("location").unwrap().ends_with(&r.id()));
    let ext_id = r.id();
    let pid = r.body["provider_id"].as_str().unwrap().to_string();
    assert!(
        m.extensions()
            .iter()
            .any(|e| e.number == "2001" && e.provider_id == pid)
    );
    app.post(
        "/api/telephony/extensions",
        tok,
        json!({"number": "2001", "name": "Outro"}),
    )
    .await
    .assert_problem(409, "extension_taken");
    app.post(
        "/api/telephony/extensions",
        tok,
        json!({"number": "2002", "name": "Outro", "user_id": seller.id}),
    )
    .await
    .assert_problem(409, "extension_taken");
    // Changed on the PABX too.
    let r = app
        .put(
            &format!("/api/telephony/extensions/{ext_id}"),
            tok,
            json!({"name": "Maria Vendas"}),
        )
        .await;
    r.assert(200);
    assert!(
        m.extensions()
            .iter()
            .any(|e| e.number == "2001" && e.name == "Maria Vendas")
    );
    // Quota: one left; concurrent creates never pass it.
    let mut handles = vec![];
    for n in 0..4 {
        let (client, url, tok) = (
            app.client.clone(),
            app.url("/api/telephony/extensions"),
            tok.clone(),
        );
        handles.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(tok)
                .json(&json!({"number": format!("30{n}1"), "name": "Ramal"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut codes = vec![];
    for h in handles {
        codes.push(h.await.unwrap());
    }
    codes.sort();
    assert_eq!(codes, [201, 402, 402, 402]);
    let list = app
        .get("/api/telephony/extensions?include_total=true", tok)
        .await;
    list.assert(200);
    assert_eq!(list.body["total"], 2);
    // Sync: the 3 extensions created on the PABX directly exceed the plan; after a delete, one
    // is imported; one deleted on the PABX is removed.
    app.delete(&format!("/api/telephony/extensions/{ext_id}"), tok)
        .await
        .assert(204);
    assert!(!m.extensions().iter().any(|e| e.number == "2001"));
    let r = app
        .post("/api/telephony/extensions/sync", tok, json!({}))
        .await;
    r.assert(200);
    assert_eq!(r.body["imported"], 1, "{}", r.text);
    assert_eq!(r.body["skipped_over_limit"], 2, "{}", r.text);
    let list = app.get("/api/telephony/extensions", tok).await;
    let numbers: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers.len(), 2);
    let imported = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["origin"] == "pabx")
        .unwrap()
        .clone();
    let r = app
        .post("/api/telephony/extensions/sync", tok, json!({}))
        .await;
    assert_eq!(r.body["imported"], 0, "{}", r.text);
    // Seller may list, not change.
    app.get("/api/telephony/extensions", &seller.token)
        .await
        .assert(200);
    app.post(
        "/api/telephony/extensions",
        &seller.token,
        json!({"number": "2009", "name": "x"}),
    )
    .await
    .assert_problem(403, "forbidden");
    // Bad input.
    let r = app
        .post(
            "/api/telephony/extensions",
            tok,
            json!({"number": "1", "area_code": 20}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    let mut f = r.error_fields();
    f.sort();
    assert_eq!(f, ["area_code", "name", "number"]);
    app.get("/api/telephony/extensions/not-a-uuid", tok)
        .await
        .assert_problem(400, "invalid_id");
    let _ = imported;
}

#[tokio::test]
async fn click_to_call_dials_by_the_rule_and_the_history_completes_the_call() {
    let app = app().await;
    let t = app.create_tenant().await;
    let m = pabx(None).await;
    connect(&app, &t, &m, json!({})).await;
    let seller = app.create_user(&t, "sales").await;
    let other = app.create_user(&t, "sales").await;
    app.post(
        "/api/telephony/extensions",
        &t.admin_token,
        json!({"number": "1101", "name": "Vendas 1", "user_id": seller.id, "area_code": 11}),
    )
    .await
    .assert(201);
    let local = lead(&app, &seller.token, "Cliente Local", "(11) 98765-4321").await;
    let far = lead(&app, &seller.token, "Cliente Rio", "21987654321").await;
    let hidden = lead(&app, &other.token, "Lead de outro", "(11) 91234-5678").await;
    // Local call: the DDD is dropped.
    let r = app
        .post(
            "/api/telephony/call",
            &seller.token,
            json!({"lead_id": local}),
        )
        .await;
    r.assert(201);
    assert_eq!(r.body["status"], "dialing");
    assert_eq!(r.body["lead_id"], local.as_str());
    assert!(r.body["provider_call_id"].is_string(), "{}", r.text);
    let id = r.id();
    let c = m.calls().last().unwrap().clone();
    assert_eq!(
        (c.destino.as_str(), c.extension.as_str()),
        ("987654321", "1101")
    );
    // A retry with the same Idempotency-Key answers the first call and rings nobody again.
    let rings = m.calls().len();
    let mut first = None;
    for _ in 0..2 {
        let r = app
            .client
            .post(app.url("/api/telephony/call"))
            .bearer_auth(&seller.token)
            .header("Idempotency-Key", "ligar-1")
            .json(&json!({"lead_id": local}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let id = r.json::<Value>().await.unwrap()["id"].clone();
        assert!(first.get_or_insert(id.clone()) == &id);
    }
    assert_eq!(m.calls().len(), rings + 1);
    // Long distance: 0 + DDD.
    app.post(
        "/api/telephony/call",
        &seller.token,
        json!({"lead_id": far}),
    )
    .await
    .assert(201);
    assert_eq!(m.calls().last().unwrap().destino, "021987654321");
    // The CDR job completes it (outcome, durations, recording), and the lead's timeline has it.
    let done = wait_completed(&app, &seller.token, &id).await;
    assert_eq!(done["outcome"], "answered");
    assert_eq!(done["talk_s"], 42);
    assert_eq!(done["duration_s"], 47);
    assert_eq!(done["counterpart"], "+5511987654321");
    assert_eq!(done["recordings"].as_array().unwrap().len(), 1, "{done}");
    let tl = app
        .get(&format!("/api/leads/{local}/timeline"), &seller.token)
        .await;
    tl.assert(200);
    let entry = tl.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "call")
        .unwrap_or_else(|| panic!("no call entry: {}", tl.text))
        .clone();
    assert!(
        entry["summary"].as_str().unwrap().contains("atendida, 42s"),
        "{entry}"
    );
    // A seller calls only leads they see; bad input is problem+json.
    app.post(
        "/api/telephony/call",
        &seller.token,
        json!({"lead_id": hidden}),
    )
    .await
    .assert_problem(404, "not_found");
    app.post(
        "/api/telephony/call",
        &seller.token,
        json!({"lead_id": local, "phone": "11987654321"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.post("/api/telephony/call", &seller.token, json!({}))
        .await
        .assert_problem(422, "validation_failed");
    app.post(
        "/api/telephony/call",
        &seller.token,
        json!({"phone": "123"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.post(
        "/api/telephony/call",
        &other.token,
        json!({"phone": "11987654321"}),
    )
    .await
    .assert_problem(422, "validation_failed"); // no extension
    app.post(
        "/api/telephony/call",
        &other.token,
        json!({"phone": "11987654321", "extension": "1101"}),
    )
    .await
    .assert_problem(403, "forbidden");
    // A manager or admin may ring any extension; an unreachable PABX logs the call as failed.
    let r = app
        .post(
            "/api/telephony/call",
            &t.admin_token,
            json!({"phone": "11987654321", "extension": "1101"}),
        )
        .await;
    r.assert(201);
    m.fail_next(2, 503);
    app.post(
        "/api/telephony/call",
        &t.admin_token,
        json!({"phone": "11987654321", "extension": "1101"}),
    )
    .await
    .assert_problem(503, "pabx_unavailable");
    let failed = call::Entity::find()
        .filter(call::Column::TenantId.eq(tid(&t)))
        .filter(call::Column::Status.eq("failed"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(failed, 1);
    // Lists: filters and keyset pagination; sellers see their own calls only.
    let all = app
        .get("/api/telephony/calls?include_total=true", &t.admin_token)
        .await;
    all.assert(200);
    assert_eq!(all.body["total"], 5, "{}", all.text);
    let p1 = app
        .get("/api/telephony/calls?limit=2", &t.admin_token)
        .await;
    let cursor = p1.body["next_cursor"].as_str().unwrap().to_string();
    let p2 = app
        .get(
            &format!("/api/telephony/calls?limit=2&cursor={cursor}"),
            &t.admin_token,
        )
        .await;
    p2.assert(200);
    let ids: Vec<&str> = p1.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2.body["items"].as_array().unwrap())
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        4
    );
    assert!(p2.body["next_cursor"].is_string(), "{}", p2.text);
    let mine = app
        .get(
            &format!(
                "/api/telephony/calls?user_id={}&direction=outbound",
                seller.id
            ),
            &t.admin_token,
        )
        .await;
    assert_eq!(
        mine.body["items"].as_array().unwrap().len(),
        3,
        "{}",
        mine.text
    );
    let again = first.as_ref().and_then(Value::as_str).unwrap().to_string();
    wait_completed(&app, &seller.token, &again).await;
    let answered = app
        .get(
            &format!(
                "/api/telephony/calls?lead_id={local}&user_id={}&outcome=answered&status=completed",
                seller.id
            ),
            &t.admin_token,
        )
        .await;
    assert_eq!(
        answered.body["items"].as_array().unwrap().len(),
        2,
        "{}",
        answered.text
    );
    // The admin's two calls to the same number were logged on the seller's lead: the seller sees
    // them (calls of their leads).
    let by_lead = app
        .get(
            &format!("/api/telephony/calls?lead_id={local}"),
            &seller.token,
        )
        .await;
    assert_eq!(
        by_lead.body["items"].as_array().unwrap().len(),
        4,
        "{}",
        by_lead.text
    );
    let others = app.get("/api/telephony/calls", &other.token).await;
    assert_eq!(others.body["items"].as_array().unwrap().len(), 0);
    app.get(&format!("/api/telephony/calls/{id}"), &other.token)
        .await
        .assert_problem(404, "not_found");
    for q in [
        "outcome=talvez",
        "direction=up",
        "cursor=%%%",
        "limit=0",
        "started_from=ontem",
        "started_from=2026-12-02T00:00:00Z&started_to=2026-12-01T00:00:00Z",
        "user_id=x",
    ] {
        let r = app
            .get(&format!("/api/telephony/calls?{q}"), &t.admin_token)
            .await;
        assert!(
            matches!(r.status.as_u16(), 400 | 422),
            "{q}: {} {}",
            r.status,
            r.text
        );
        assert_eq!(
            r.header("content-type").unwrap(),
            "application/problem+json",
            "{q}"
        );
    }
}

#[tokio::test]
async fn webhook_and_history_poll_ingest_a_call_once_and_a_missed_call_gets_its_follow_up() {
    let app = app().await;
    let t = app.create_tenant().await;
    let m = pabx(None).await;
    let path = connect(&app, &t, &m, json!({"callback_sla_minutes": 30})).await;
    m.set_event_url(Some(app.url(&path)));
    let seller = app.create_user(&t, "sales").await;
    let lead_id = lead(&app, &seller.token, "Cliente Ligou", "+5511987650000").await;
    let before_ids = m.calls().len();
    // Three inbound calls from the lead: events as JSON, JSON with a trailing comma, a form.
    let mut pids = vec![];
    for _ in 0..3 {
        pids.push(m.push_inbound(InboundCall {
            from: "+5511987650000".into(),
            extension: "1001".into(),
            outcome: MockOutcome::NoAnswer { ring_s: 20 },
        }));
    }
    assert_eq!(m.calls().len(), before_ids + 3);
    wait_for(10, "the three events", || async {
        let sent = m.events_sent();
        (sent.len() == 3 && sent.iter().all(|e| e.status == Some(202))).then_some(())
    })
    .await;
    let bodies: Vec<String> = m.events_sent().into_iter().map(|e| e.body).collect();
    assert!(
        bodies.iter().any(|b| b.ends_with(",}")),
        "no trailing comma: {bodies:?}"
    );
    // The events' CDR jobs and the history poll both see the calls: one row each.
    let state = &app.state;
    wait_for(20, "CDRs", || async {
        let n = call::Entity::find()
            .filter(call::Column::TenantId.eq(tid(&t)))
            .filter(call::Column::Status.eq("completed"))
            .count(&state.db)
            .await
            .unwrap();
        (n == 3).then_some(())
    })
    .await;
    let s = tel_jobs::poll(state, tid(&t)).await.unwrap();
    assert_eq!((s.inserted, s.completed), (0, 0), "{s:?}");
    // The same event again (a PABX retry) changes nothing.
    let first = m.events_sent().remove(0);
    let r = app
        .client
        .post(app.url(&path))
        .header("content-type", first.content_type)
        .body(first.body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let rows = call::Entity::find()
        .filter(call::Column::TenantId.eq(tid(&t)))
        .all(&state.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    for p in &pids {
        assert_eq!(
            rows.iter()
                .filter(|c| c.provider_call_id.as_deref() == Some(p))
                .count(),
            1
        );
    }
    assert!(
        rows.iter()
            .all(|c| c.lead_id.map(|l| l.to_string()) == Some(lead_id.clone()))
    );
    assert!(
        rows.iter()
            .all(|c| c.outcome.as_deref() == Some("no_answer"))
    );
    // call.missed once per call; one callback task per call for the lead's owner, due in 30 min.
    let missed = jtcrm_kernel::events::model::Entity::find()
        .filter(jtcrm_kernel::events::model::Column::TenantId.eq(tid(&t)))
        .filter(jtcrm_kernel::events::model::Column::EventType.eq("call.missed"))
        .count(&state.db)
        .await
        .unwrap();
    assert_eq!(missed, 3);
    app.wait_jobs_settled(&["telephony.after_call"], 20).await;
    let tasks = app
        .get(
            &format!("/api/tasks?lead_id={lead_id}&assignee_id={}", seller.id),
            &seller.token,
        )
        .await;
    tasks.assert(200);
    let items = tasks.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{}", tasks.text);
    assert!(
        items[0]["title"]
            .as_str()
            .unwrap()
            .starts_with("Retornar ligação perdida")
    );
    assert_eq!(items[0]["type"], "call");
    let due = chrono::DateTime::parse_from_rfc3339(items[0]["due_at"].as_str().unwrap()).unwrap();
    let mins = (due.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
    assert!((25..=30).contains(&mins), "due in {mins} min");
    let c = call_status(&app, &seller.token, &rows[0].id.to_string()).await;
    assert!(c.body["callback_task_id"].is_string(), "{}", c.text);
    let tl = app
        .get(&format!("/api/leads/{lead_id}/timeline"), &seller.token)
        .await;
    let calls_in_tl = tl.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "call")
        .count();
    assert_eq!(calls_in_tl, 3);
    // Documented fixtures: a trailing comma, ints and an array; a form. Unreadable bodies: 400.
    for (ct, body) in [
        ("application/json", fixtures::EVENT_TRAILING_COMMA),
        ("application/json", fixtures::EVENT_INTS_AND_ARRAY),
        ("application/x-www-form-urlencoded", fixtures::EVENT_FORM),
    ] {
        let r = app
            .client
            .post(app.url(&path))
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202, "{body}");
    }
    for body in ["", "{", "{\"origem\":\"1001\"}", "[1,2,]", "\u{0}\u{1}"] {
        let r = app
            .client
            .post(app.url(&path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{body:?}");
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "application/problem+json"
        );
    }
    // Wrong, malformed or another tenant's token: 404.
    let other = app.create_tenant().await;
    let mut wrong = path.clone();
    wrong.pop();
    wrong.push(if path.ends_with('A') { 'B' } else { 'A' });
    let forged = format!(
        "/api/webhooks/pabx/{}{}",
        Uuid::parse_str(&other.id).unwrap().simple(),
        &path[path.len() - 43..]
    );
    for p in [wrong, forged, "/api/webhooks/pabx/short".to_string()] {
        let r = app
            .client
            .post(app.url(&p))
            .body(fixtures::EVENT_FORM)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "{p}");
    }
}

#[tokio::test]
async fn caller_lookup_matches_every_format_and_offers_a_new_lead() {
    let app = app().await;
    let t = app.create_tenant().await;
    let m = pabx(None).await;
    connect(&app, &t, &m, json!({})).await;
    let seller = app.create_user(&t, "sales").await;
    let a = lead(&app, &seller.token, "Ana", "+5511987654321").await;
    let r = app
        .post(
            "/api/leads?allow_duplicate=true",
            &t.admin_token,
            json!({"name": "Ana (duplicada)", "phone": "11 98765-4321"}),
        )
        .await;
    r.assert(201);
    let b = r.id();
    for n in [
        "(11) 98765-4321",
        "011987654321",
        "5511987654321",
        "+55 11 98765 4321",
        "987654321",
    ] {
        let r = app
            .get(
                &format!("/api/telephony/lookup?number={}", urlencode(n)),
                &t.admin_token,
            )
            .await;
        r.assert(200);
        assert_eq!(r.body["e164"], "+5511987654321", "{n}");
        let ids: Vec<&str> = r.body["leads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [b.as_str(), a.as_str()], "{n}");
        assert!(r.body["suggestion"].is_null());
    }
    // The seller sees only their own lead.
    let r = app
        .get("/api/telephony/lookup?number=11987654321", &seller.token)
        .await;
    assert_eq!(r.body["leads"].as_array().unwrap().len(), 1);
    let r = app
        .get("/api/telephony/lookup?number=21999990000", &t.admin_token)
        .await;
    r.assert(200);
    assert_eq!(r.body["leads"].as_array().unwrap().len(), 0);
    assert_eq!(r.body["suggestion"]["source"], "inbound_call");
    assert_eq!(r.body["suggestion"]["phone"], "+5521999990000");
    for q in ["number=abc", "number=", "", "number=2098765432"] {
        let r = app
            .get(&format!("/api/telephony/lookup?{q}"), &t.admin_token)
            .await;
        assert!(matches!(r.status.as_u16(), 400 | 422), "{q}: {}", r.text);
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn unknown_inbound_number_becomes_a_lead_when_the_tenant_wants_it() {
    let app = app().await;
    let t = app.create_tenant().await;
    let m = pabx(None).await;
    connect(&app, &t, &m, json!({"auto_create_leads": true})).await;
    let pid = m.push_inbound(InboundCall {
        from: "+5531988887777".into(),
        extension: "1002".into(),
        outcome: MockOutcome::Answered {
            ring_s: 3,
            talk_s: 90,
        },
    });
    m.release_all();
    tel_jobs::poll(&app.state, tid(&t)).await.unwrap();
    app.wait_jobs_settled(&["telephony.after_call"], 20).await;
    let c = call::Entity::find()
        .filter(call::Column::TenantId.eq(tid(&t)))
        .filter(call::Column::ProviderCallId.eq(pid.as_str()))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let lead_id = c.lead_id.expect("the call was linked to a new lead");
    let l = app
        .get(&format!("/api/leads/{lead_id}"), &t.admin_token)
        .await;
    l.assert(200);
    assert_eq!(l.body["source"], "inbound_call");
    assert_eq!(l.body["phone"], "+5531988887777");
}

#[tokio::test]
async fn recordings_are_copied_streamed_to_who_sees_the_call_and_deleted_after_retention() {
    let app = app().await;
    let t = app.create_tenant().await;
    let m = pabx(None).await;
    connect(&app, &t, &m, json!({"recording_retention_days": 30})).await;
    let seller = app.create_user(&t, "sales").await;
    let other = app.create_user(&t, "sales").await;
    app.post(
        "/api/telephony/extensions",
        &t.admin_token,
        json!({"number": "1201", "name": "Vendas", "user_id": seller.id}),
    )
    .await
    .assert(201);
    let l = lead(&app, &seller.token, "Cliente", "11955554444").await;
    let opp = app
        .post(
            "/api/pipelines/opportunities",
            &seller.token,
            json!({"title": "Link dedicado", "lead_id": l}),
        )
        .await;
    opp.assert(201);
    let opp = opp.id();
    let r = app
        .post("/api/telephony/call", &seller.token, json!({"lead_id": l}))
        .await;
    r.assert(201);
    let id = r.id();
    let done = wait_completed(&app, &seller.token, &id).await;
    // On the open deal's timeline too.
    let c = call_status(&app, &seller.token, &id).await;
    assert_eq!(c.body["opportunity_id"], opp.as_str(), "{}", c.text);
    let tl = app
        .get(
            &format!("/api/pipelines/opportunities/{opp}/timeline"),
            &seller.token,
        )
        .await;
    assert!(
        tl.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "call"),
        "{}",
        tl.text
    );
    let rec = wait_for(20, "the recording copy", || async {
        let c = call_status(&app, &seller.token, &id).await;
        let rec = c.body["recordings"][0].clone();
        (rec["status"] == "stored").then_some(rec)
    })
    .await;
    let url = rec["url"].as_str().unwrap().to_string();
    let started =
        chrono::DateTime::parse_from_rfc3339(done["started_at"].as_str().unwrap()).unwrap();
    let delete_after =
        chrono::DateTime::parse_from_rfc3339(rec["delete_after"].as_str().unwrap()).unwrap();
    assert_eq!((delete_after - started).num_days(), 30);
    let audio = app
        .client
        .get(app.url(&url))
        .bearer_auth(&seller.token)
        .send()
        .await
        .unwrap();
    assert_eq!(audio.status().as_u16(), 200);
    assert_eq!(audio.headers()["content-type"], "audio/wav");
    let bytes = audio.bytes().await.unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(rec["size_bytes"].as_i64(), Some(bytes.len() as i64));
    // Another seller does not see the call, so neither its recording.
    app.get(&url, &other.token)
        .await
        .assert_problem(404, "not_found");
    app.get(
        &format!("/api/telephony/calls/{id}/recordings/9"),
        &seller.token,
    )
    .await
    .assert_problem(404, "not_found");
    // Retention: once past, the file and the link are gone.
    let row = recording::Entity::find()
        .filter(recording::Column::TenantId.eq(tid(&t)))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let key = row.file_key.clone().unwrap();
    assert!(key.starts_with(&format!("{}/call_recording/", tid(&t).simple())));
    assert!(app.state.files.get(&key).await.unwrap().is_some());
    recording::Entity::update_many()
        .col_expr(
            recording::Column::DeleteAfter,
            Expr::value(chrono::Utc::now() - chrono::Duration::minutes(1)),
        )
        .filter(recording::Column::TenantId.eq(tid(&t)))
        .exec(&app.state.db)
        .await
        .unwrap();
    assert!(tel_recordings::purge_expired(&app.state).await.unwrap() >= 1);
    assert!(app.state.files.get(&key).await.unwrap().is_none());
    app.get(&url, &seller.token)
        .await
        .assert_problem(404, "not_found");
    let c = call_status(&app, &seller.token, &id).await;
    assert_eq!(c.body["recordings"][0]["status"], "deleted");
}

#[tokio::test]
async fn answered_and_inbound_calls_feed_the_lead_score_once() {
    let app = app().await;
    let t = app.create_tenant().await;
    let m = pabx(None).await;
    connect(
        &app,
        &t,
        &m,
        json!({"answered_min_seconds": 30, "answered_points": 7, "inbound_points": 2, "callback_task": false}),
    )
    .await;
    let l = lead(&app, &t.admin_token, "Pontuado", "11944443333").await;
    let before = app
        .get(&format!("/api/leads/{l}"), &t.admin_token)
        .await
        .body["score"]
        .as_i64()
        .unwrap();
    m.push_inbound(InboundCall {
        from: "+5511944443333".into(),
        extension: "1001".into(),
        outcome: MockOutcome::Answered {
            ring_s: 2,
            talk_s: 45,
        },
    });
    m.push_inbound(InboundCall {
        from: "+5511944443333".into(),
        extension: "1001".into(),
        outcome: MockOutcome::Answered {
            ring_s: 2,
            talk_s: 10,
        },
    });
    m.release_all();
    tel_jobs::poll(&app.state, tid(&t)).await.unwrap();
    tel_jobs::poll(&app.state, tid(&t)).await.unwrap();
    let after = app
        .get(&format!("/api/leads/{l}"), &t.admin_token)
        .await
        .body["score"]
        .as_i64()
        .unwrap();
    // 7 + 2 for the long call, 2 for the short one; polled twice, counted once.
    assert_eq!(after - before, 11, "{before} → {after}");
}

#[tokio::test]
async fn telephony_is_gated_by_the_plan_and_isolated_between_tenants() {
    let app = app().await;
    let sa = app.superadmin_token().await;
    let code = unique("notel").to_lowercase();
    app.post(
        "/api/super-admin/plans",
        &sa,
        json!({"code": code, "name": "Sem telefonia", "features": {"telephony": false}}),
    )
    .await
    .assert(201);
    let no = app.create_tenant_on(&code).await;
    for (method, p) in [
        (Method::GET, "/api/telephony/calls"),
        (Method::GET, "/api/telephony/extensions"),
        (Method::POST, "/api/telephony/call"),
        (Method::GET, "/api/telephony/lookup?number=11987654321"),
        (Method::GET, "/api/integrations/pabx"),
    ] {
        let r = app
            .send(
                method,
                p,
                Some(&no.admin_token),
                Some(json!({"phone": "11987654321"})),
            )
            .await;
        r.assert_problem(403, "feature_not_in_plan");
    }
    // A telephony tenant without settings: 409.
    let t = app.create_tenant().await;
    app.post(
        "/api/telephony/call",
        &t.admin_token,
        json!({"phone": "11987654321"}),
    )
    .await
    .assert_problem(409, "integration_not_configured");
    // Isolation.
    let m = pabx(None).await;
    connect(&app, &t, &m, json!({})).await;
    let ext = app
        .post(
            "/api/telephony/extensions",
            &t.admin_token,
            json!({"number": "1301", "name": "A", "user_id": t.admin_id}),
        )
        .await;
    ext.assert(201);
    let r = app
        .post(
            "/api/telephony/call",
            &t.admin_token,
            json!({"phone": "11987654321"}),
        )
        .await;
    r.assert(201);
    let call_id = r.id();
    let b = app.create_tenant().await;
    app.get(&format!("/api/telephony/calls/{call_id}"), &b.admin_token)
        .await
        .assert_problem(404, "not_found");
    app.get(
        &format!("/api/telephony/calls/{call_id}/recordings/1"),
        &b.admin_token,
    )
    .await
    .assert_problem(404, "not_found");
    app.get(
        &format!("/api/telephony/extensions/{}", ext.id()),
        &b.admin_token,
    )
    .await
    .assert_problem(404, "not_found");
    app.delete(
        &format!("/api/telephony/extensions/{}", ext.id()),
        &b.admin_token,
    )
    .await
    .assert_problem(404, "not_found");
    let l = app.get("/api/telephony/calls", &b.admin_token).await;
    assert_eq!(l.body["items"].as_array().unwrap().len(), 0);
    let l = app.get("/api/telephony/extensions", &b.admin_token).await;
    assert_eq!(l.body["items"].as_array().unwrap().len(), 0);
    let r = app.get("/api/integrations/pabx", &b.admin_token).await;
    assert_eq!(r.body["version"], 0);
    // The mock keeps its own extension list: adding one there does not leak into b either.
    m.add_extension(ExtensionSpec::new("1399", "Direto no PABX"));
    m.set_event_format(EventFormat::Json);
}

#[tokio::test]
async fn a_missed_call_on_an_unowned_lead_goes_to_the_round_robin_seller() {
    let app = app().await;
    let t = app.create_tenant().await;
    let m = pabx(None).await;
    connect(&app, &t, &m, json!({})).await;
    let seller = app.create_user(&t, "sales").await;
    // Created by the admin: no owner (assignment mode none), so the seller cannot see it.
    let l = lead(&app, &t.admin_token, "Sem dono", "11977776666").await;
    app.get(&format!("/api/leads/{l}"), &seller.token)
        .await
        .assert_problem(404, "not_found");
    m.push_inbound(InboundCall {
        from: "+5511977776666".into(),
        extension: "1003".into(),
        outcome: MockOutcome::Busy,
    });
    m.release_all();
    tel_jobs::poll(&app.state, tid(&t)).await.unwrap();
    app.wait_jobs_settled(&["telephony.after_call"], 20).await;
    let tasks = app
        .get(&format!("/api/tasks?lead_id={l}"), &t.admin_token)
        .await;
    let items = tasks.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", tasks.text);
    assert_eq!(items[0]["assignee_id"], seller.id.as_str());
}

#[tokio::test]
async fn refused_credentials_and_the_webhook_rate_limit_answer_problems() {
    let app = app().await;
    let t = app.create_tenant().await;
    let m = pabx(None).await;
    after_startup_sync_scan(&app).await;
    let path = connect(&app, &t, &m, json!({})).await;
    // The PABX answers bad credentials inside an HTTP 200: the CRM reads the envelope.
    app.put(
        "/api/integrations/pabx",
        &t.admin_token,
        json!({"secrets": {"token": "errado"}}),
    )
    .await
    .assert(200);
    let r = app
        .post("/api/integrations/pabx/test", &t.admin_token, json!({}))
        .await;
    assert_eq!(r.body["ok"], false, "{}", r.text);
    let r = app
        .post(
            "/api/telephony/call",
            &t.admin_token,
            json!({"phone": "11987654321", "extension": "1999"}),
        )
        .await;
    r.assert_problem(422, "validation_failed"); // no such extension in the CRM
    app.post(
        "/api/telephony/extensions",
        &t.admin_token,
        json!({"number": "1401", "name": "x"}),
    )
    .await
    .assert_problem(422, "pabx_rejected");
    // Nothing was left behind by the refused create (row and quota undone).
    let l = app
        .get(
            "/api/telephony/extensions?include_total=true",
            &t.admin_token,
        )
        .await;
    assert_eq!(l.body["total"], 0);
    // 600 events per minute per IP, then 429 with Retry-After. The window is the calendar
    // minute, so up to two windows' worth is sent (in concurrent batches) before giving up.
    let mut limited = None;
    let mut sent = 0;
    while limited.is_none() && sent < 1300 {
        let batch: Vec<_> = (0..50)
            .map(|_| {
                let (client, url) = (app.client.clone(), app.url(&path));
                tokio::spawn(async move {
                    let r = client.post(url).body("callid=").send().await.unwrap();
                    (r.status().as_u16(), r.headers().contains_key("retry-after"))
                })
            })
            .collect();
        for h in batch {
            let (status, retry_after) = h.await.unwrap();
            assert!(matches!(status, 400 | 429), "{status}");
            if status == 429 {
                limited = Some(retry_after);
            }
        }
        sent += 50;
    }
    assert_eq!(limited, Some(true), "no 429 after {sent} events");
}

#[tokio::test]
async fn an_answered_call_ends_the_cadence_and_call_missed_triggers_automations() {
    let app = app().await;
    let t = app.create_tenant().await;
    let m = pabx(None).await;
    connect(&app, &t, &m, json!({"callback_task": false})).await;
    let l = lead(&app, &t.admin_token, "Em cadência", "11933332222").await;
    let cad = app
        .post(
            "/api/automations/cadences",
            &t.admin_token,
            json!({"name": "Nutrição", "steps": [
                {"delay": {"days": 3}, "channel": "call", "title": "Ligar para {{lead.name}}"}
            ]}),
        )
        .await;
    cad.assert(201);
    let cp = format!("/api/automations/cadences/{}", cad.id());
    app.post(
        &format!("{cp}/enroll"),
        &t.admin_token,
        json!({"lead_ids": [l]}),
    )
    .await
    .assert(200);
    // The tenant's own follow-up of a missed call, instead of the built-in callback task.
    app.post(
        "/api/automations",
        &t.admin_token,
        json!({"name": "Perdida → tarefa urgente", "trigger": {"event": "call.missed"},
               "actions": [{"type": "create_task", "task_type": "call", "title": "Urgente: retornar {{lead.name}}", "priority": "urgent"}]}),
    )
    .await
    .assert(201);
    m.push_inbound(InboundCall {
        from: "+5511933332222".into(),
        extension: "1001".into(),
        outcome: MockOutcome::NoAnswer { ring_s: 15 },
    });
    m.push_inbound(InboundCall {
        from: "+5511933332222".into(),
        extension: "1001".into(),
        outcome: MockOutcome::Answered {
            ring_s: 3,
            talk_s: 60,
        },
    });
    m.release_all();
    tel_jobs::poll(&app.state, tid(&t)).await.unwrap();
    let e = wait_for(20, "exit on an answered call", || async {
        let r = app
            .get(&format!("{cp}/enrollments?lead_id={l}"), &t.admin_token)
            .await;
        let e = r.body["items"][0].clone();
        (e["status"] == "exited").then_some(e)
    })
    .await;
    assert_eq!(e["exit_reason"], "answered_call", "{e}");
    let task = wait_for(20, "the automation's task", || async {
        let r = app
            .get(&format!("/api/tasks?lead_id={l}"), &t.admin_token)
            .await;
        r.body["items"]
            .as_array()
            .and_then(|i| i.iter().find(|t| t["priority"] == "urgent").cloned())
    })
    .await;
    assert_eq!(task["title"], "Urgente: retornar Em cadência");
}
