//! Automations, cadences and business hours end to end: event dispatch through the real worker,
//! the run log, conditions, dry runs and manual execution, replays, loop prevention, waits, signed
//! webhooks, plan limits, isolation, roles and bad input.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use jtcrm::domains::automations::model::{run, run_action};
use jtcrm_kernel::events::model as event;
use jtcrm_kernel::jobs::model as job;
use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::{Resp, TestApp, TestTenant, spawn_app_with};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

async fn app() -> TestApp {
    spawn_app_with(|s| {
        s.worker_poll_ms = 50;
        s.webhook_allow_loopback = true;
        s.job_backoff_base_ms = 100;
        s.job_backoff_cap_ms = 400;
    })
    .await
}

/// Polls `f` until it yields `Some`; panics naming `what` after `secs`.
async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every event is dispatched and no automation or cadence job is due (twice in a row,
/// so a job that emits an event between the two counts is not missed).
async fn settle(app: &TestApp) {
    let db = &app.state.db;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut quiet = 0;
    while quiet < 2 {
        let pending = event::Entity::find()
            .filter(event::Column::ProcessedAt.is_null())
            .count(db)
            .await
            .unwrap();
        let busy = job::Entity::find()
            .filter(job::Column::Kind.is_in([
                "automations.action",
                "automations.action_batch",
                "automations.cadence_step",
            ]))
            .filter(job::Column::Status.is_in(["queued", "running", "failed"]))
            .filter(job::Column::RunAt.lte(Utc::now()))
            .count(db)
            .await
            .unwrap();
        quiet = if pending == 0 && busy == 0 {
            quiet + 1
        } else {
            0
        };
        assert!(
            Instant::now() < deadline,
            "timed out waiting for automations to settle"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn lead(app: &TestApp, token: &str, body: Value) -> String {
    let r = app.post("/api/leads", token, body).await;
    r.assert(201);
    r.id()
}

async fn patch(app: &TestApp, path: &str, token: &str, body: Value) -> Resp {
    app.send(Method::PATCH, path, Some(token), Some(body)).await
}

async fn automation(app: &TestApp, t: &TestTenant, body: Value) -> String {
    let r = app.post("/api/automations", &t.admin_token, body).await;
    r.assert(201);
    r.id()
}

async fn runs(app: &TestApp, t: &TestTenant, id: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/automations/{id}/runs"), &t.admin_token)
        .await;
    r.assert(200);
    r.body["items"].as_array().unwrap().clone()
}

/// Waits for `n` finished runs of the automation and returns them (newest first).
async fn finished_runs(app: &TestApp, t: &TestTenant, id: &str, n: usize) -> Vec<Value> {
    wait_for(30, "finished runs", || async {
        let rs = runs(app, t, id).await;
        (rs.len() >= n && rs.iter().all(|r| r["status"] != "running")).then_some(rs)
    })
    .await
}

async fn tasks_of(app: &TestApp, t: &TestTenant, lead_id: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/tasks?lead_id={lead_id}"), &t.admin_token)
        .await;
    r.assert(200);
    r.body["items"].as_array().unwrap().clone()
}

async fn always_open(app: &TestApp, t: &TestTenant) {
    app.put(
        "/api/automations/business-hours",
        &t.admin_token,
        json!({"weekdays": [1, 2, 3, 4, 5, 6, 7], "start": "00:00", "end": "24:00"}),
    )
    .await
    .assert(200);
}

fn ts(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn qualified_lead_gets_a_call_task_for_its_owner_and_an_email() {
    let app = app().await;
    let t = app.create_tenant_on("enterprise").await;
    let seller = app.create_user(&t, "sales").await;
    let r = app
        .post(
            "/api/automations",
            &t.admin_token,
            json!({
                "name": "Lead qualificado → ligação",
                "trigger": {"event": "lead.status_changed", "filters": {"after.status": "qualified"}},
                "actions": [
                    {"type": "create_task", "task_type": "call", "priority": "high",
                     "title": "Ligar para {{lead.name}} ({{lead.company}})", "due_in": {"business_hours": 4}},
                    {"type": "send_email", "to": "owner", "subject": "Lead qualificado: {{lead.name}}",
                     "body": "Olá {{owner.name}}, ligue para {{lead.name}} em {{lead.phone}}.{{lead.nada}} {{automation.name}}"}
                ]
            }),
        )
        .await;
    r.assert(201);
    let id = r.id();
    assert_eq!(
        r.header("location").unwrap(),
        format!("/api/automations/{id}")
    );
    assert_eq!(r.body["actions"][0]["assignee"], "owner");
    assert_eq!(r.body["active"], true);
    let l = lead(
        &app,
        &t.admin_token,
        json!({"name": "João Qualificado", "company": "Fibra Sul", "phone": "(81) 99876-5432", "owner_id": seller.id}),
    )
    .await;
    let lp = format!("/api/leads/{l}");
    patch(&app, &lp, &t.admin_token, json!({"status": "contacted"}))
        .await
        .assert(200);
    patch(&app, &lp, &t.admin_token, json!({"status": "qualified"}))
        .await
        .assert(200);
    let rs = finished_runs(&app, &t, &id, 1).await;
    settle(&app).await;
    let rs2 = runs(&app, &t, &id).await;
    assert_eq!(
        rs2.len(),
        1,
        "only the change to qualified matches: {rs2:?}"
    );
    let run = &rs[0];
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["source"], "event");
    assert_eq!(run["event_type"], "lead.status_changed");
    assert_eq!(run["entity_id"], l.as_str());
    assert_eq!(run["depth"], 1);
    let acts = run["actions"].as_array().unwrap();
    assert_eq!(acts.len(), 2);
    assert!(
        acts.iter()
            .all(|a| a["status"] == "succeeded" && a["attempts"] == 1),
        "{acts:?}"
    );
    // The call task, for the lead's owner.
    let task_id = acts[0]["result"]["task_id"].as_str().unwrap();
    let task = app
        .get(&format!("/api/tasks/{task_id}"), &t.admin_token)
        .await;
    task.assert(200);
    assert_eq!(task.body["type"], "call");
    assert_eq!(task.body["priority"], "high");
    assert_eq!(task.body["assignee_id"], seller.id);
    assert_eq!(task.body["lead_id"], l.as_str());
    assert_eq!(
        task.body["title"],
        "Ligar para João Qualificado (Fibra Sul)"
    );
    assert!(ts(&task.body["due_at"]) > Utc::now());
    let mine = app.get("/api/tasks?assignee_id=me", &seller.token).await;
    assert!(
        mine.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == task_id)
    );
    // The email to the owner, stored (SMTP is not configured here: never reported as sent).
    let email_id = acts[1]["result"]["email_id"].as_str().unwrap();
    let e = app
        .get(&format!("/api/emails/{email_id}"), &t.admin_token)
        .await;
    e.assert(200);
    assert_eq!(e.body["to"], seller.email);
    assert_eq!(e.body["kind"], "automation");
    assert_eq!(e.body["lead_id"], l.as_str());
    assert_eq!(e.body["subject"], "Lead qualificado: João Qualificado");
    assert_eq!(
        e.body["body_text"],
        "Olá User sales, ligue para João Qualificado em +5581998765432. Lead qualificado → ligação"
    );
    assert_eq!(e.body["status"], "not_configured");
    // The change carries the automation as its actor: event data and audit entry name it.
    let tid = Uuid::parse_str(task_id).unwrap();
    let ev = event::Entity::find()
        .filter(event::Column::EntityId.eq(tid))
        .filter(event::Column::EventType.eq("task.created"))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.data["automation_id"], id.as_str());
    assert_eq!(ev.data["automation_depth"], 1);
    assert_eq!(
        ev.actor_id.unwrap().to_string(),
        t.admin_id,
        "the automation's author"
    );
    let audit = app
        .get(
            &format!("/api/audit-logs?entity_type=task&entity_id={task_id}"),
            &t.admin_token,
        )
        .await;
    audit.assert(200);
    let entry = &audit.body["items"][0];
    assert_eq!(
        entry["changes"]["automation"]["automation_id"],
        id.as_str(),
        "{entry}"
    );
}

#[tokio::test]
async fn conditions_all_any_and_changed_from_to() {
    let app = app().await;
    let t = app.create_tenant_on("enterprise").await;
    let id = automation(
        &app,
        &t,
        json!({
            "name": "VIP contatado",
            "trigger": {"event": "lead.status_changed"},
            "conditions": {"all": [
                {"field": "status", "op": "changed", "from": "new", "to": "contacted"},
                {"any": [
                    {"field": "tags", "op": "contains", "value": "vip"},
                    {"field": "custom_fields.links", "op": "gte", "value": 10}
                ]}
            ]},
            "actions": [{"type": "adjust_score", "points": 7}]
        }),
    )
    .await;
    let mk = |name: &str, tags: Value| json!({"name": name, "tags": tags});
    let vip = lead(&app, &t.admin_token, mk("VIP", json!(["vip"]))).await;
    let plain = lead(&app, &t.admin_token, mk("Comum", json!(["fibra"]))).await;
    let vip_qualified = lead(&app, &t.admin_token, mk("VIP direto", json!(["vip"]))).await;
    let contacted_first = lead(&app, &t.admin_token, mk("VIP recontato", json!(["vip"]))).await;
    for (l, status) in [
        (&vip, "contacted"),
        (&plain, "contacted"),
        (&vip_qualified, "qualified"),
        (&contacted_first, "qualified"),
    ] {
        patch(
            &app,
            &format!("/api/leads/{l}"),
            &t.admin_token,
            json!({"status": status}),
        )
        .await
        .assert(200);
    }
    // qualified → contacted: changed, but not from `new`.
    patch(
        &app,
        &format!("/api/leads/{contacted_first}"),
        &t.admin_token,
        json!({"status": "contacted"}),
    )
    .await
    .assert(200);
    settle(&app).await;
    let rs = runs(&app, &t, &id).await;
    let hit: Vec<&str> = rs
        .iter()
        .map(|r| r["entity_id"].as_str().unwrap())
        .collect();
    assert_eq!(hit, vec![vip.as_str()], "{rs:?}");
    assert_eq!(rs[0]["actions"][0]["result"]["points"], 7);
}

#[tokio::test]
async fn dry_run_changes_nothing_and_execute_runs_on_a_filter() {
    let app = app().await;
    let t = app.create_tenant_on("enterprise").await;
    let seller = app.create_user(&t, "sales").await;
    let id = automation(
        &app,
        &t,
        json!({
            "name": "Campanha promo",
            "trigger": {"event": "lead.assigned"},
            "conditions": {"field": "city", "op": "ne", "value": "Olinda"},
            "actions": [
                {"type": "create_task", "title": "Oferecer promo a {{lead.name}}", "assignee": "user", "user_id": seller.id,
                 "due_in": {"days": 1}},
                {"type": "update_field", "add_tags": ["Promo-Enviada"], "remove_tags": ["promo"]},
                {"type": "wait", "business_hours": 2},
                {"type": "send_email", "to": "lead", "subject": "Promo {{company.name}}", "body": "Oi {{lead.name}}"}
            ]
        }),
    )
    .await;
    let mut promo = vec![];
    for (i, city) in ["Recife", "Caruaru", "Olinda"].iter().enumerate() {
        promo.push(
            lead(
                &app,
                &t.admin_token,
                json!({"name": format!("Promo {i}"), "city": city, "tags": ["promo"], "email": format!("p{i}@x.com.br")}),
            )
            .await,
        );
    }
    let other = lead(
        &app,
        &t.admin_token,
        json!({"name": "Fora", "tags": ["outro"]}),
    )
    .await;
    settle(&app).await;
    let counts = || async {
        let tasks = app
            .get("/api/tasks?include_total=true", &t.admin_token)
            .await
            .body["total"]
            .clone();
        let versions: Vec<Value> = {
            let mut v = vec![];
            for l in promo.iter().chain([&other]) {
                v.push(
                    app.get(&format!("/api/leads/{l}"), &t.admin_token)
                        .await
                        .body["version"]
                        .clone(),
                );
            }
            v
        };
        let jobs = job::Entity::find()
            .filter(job::Column::Kind.is_in(["automations.action", "automations.action_batch"]))
            .count(&app.state.db)
            .await
            .unwrap();
        (tasks, versions, jobs)
    };
    let before = counts().await;
    let r = app
        .post(
            &format!("/api/automations/{id}/execute"),
            &t.admin_token,
            json!({"filter": {"tag": "promo"}, "dry_run": true}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["dry_run"], true);
    assert_eq!(
        r.body["matched"], 2,
        "Olinda fails the condition: {}",
        r.text
    );
    assert_eq!(r.body["skipped"], 1);
    assert!(r.body["runs"].as_array().unwrap().is_empty());
    let previews = r.body["previews"].as_array().unwrap();
    assert_eq!(previews.len(), 3);
    let first = previews
        .iter()
        .find(|p| p["entity_id"] == promo[0].as_str())
        .unwrap();
    assert_eq!(first["conditions_met"], true);
    assert_eq!(
        first["actions"][0]["details"]["title"],
        "Oferecer promo a Promo 0"
    );
    assert_eq!(first["actions"][0]["details"]["assignee_id"], seller.id);
    assert!(
        first["actions"][0]["summary"]
            .as_str()
            .unwrap()
            .contains("User sales")
    );
    assert_eq!(first["actions"][2]["type"], "wait");
    assert_eq!(first["actions"][3]["details"]["to"], "p0@x.com.br");
    let olinda = previews
        .iter()
        .find(|p| p["entity_id"] == promo[2].as_str())
        .unwrap();
    assert_eq!(olinda["conditions_met"], false);
    assert!(runs(&app, &t, &id).await.is_empty());
    assert_eq!(counts().await, before, "a dry run writes nothing");
    // For real, on the filter.
    let r = app
        .post(
            &format!("/api/automations/{id}/execute"),
            &t.admin_token,
            json!({"filter": {"tag": "promo"}}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["matched"], 2);
    assert_eq!(r.body["runs"].as_array().unwrap().len(), 2);
    assert!(r.body.get("previews").is_none());
    wait_for(20, "the two runs to reach the wait", || async {
        let rs = runs(&app, &t, &id).await;
        let ok = rs.len() == 2 && rs.iter().all(|r| r["actions"][1]["status"] == "succeeded");
        ok.then_some(())
    })
    .await;
    for l in &promo[..2] {
        let tasks = tasks_of(&app, &t, l).await;
        assert_eq!(tasks.len(), 1, "{tasks:?}");
        assert_eq!(tasks[0]["assignee_id"], seller.id);
        let lr = app.get(&format!("/api/leads/{l}"), &t.admin_token).await;
        assert_eq!(lr.body["tags"], json!(["promo-enviada"]));
    }
    assert!(tasks_of(&app, &t, &promo[2]).await.is_empty());
    assert!(tasks_of(&app, &t, &other).await.is_empty());
    let rs = runs(&app, &t, &id).await;
    assert!(
        rs.iter()
            .all(|r| r["source"] == "manual" && r["status"] == "running")
    );
    // One entity by id.
    let r = app
        .post(
            &format!("/api/automations/{id}/execute"),
            &t.admin_token,
            json!({"entity_id": other, "dry_run": true}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["matched"], 1);
}

#[tokio::test]
async fn replaying_an_event_or_a_job_creates_no_duplicate_task() {
    let app = app().await;
    let t = app.create_tenant_on("enterprise").await;
    // `{{owner.name}}` keeps this create_task on the per-action job (a batched one records its
    // result in the task's own transaction, see `batched_create_task_*`), whose retried attempt
    // must find the task an earlier attempt made.
    let id = automation(
        &app,
        &t,
        json!({"name": "Boas-vindas", "trigger": {"event": "lead.created"},
               "actions": [{"type": "create_task", "title": "Primeiro contato com {{lead.name}} ({{owner.name}})"}]}),
    )
    .await;
    let l = lead(&app, &t.admin_token, json!({"name": "Replay"})).await;
    finished_runs(&app, &t, &id, 1).await;
    settle(&app).await;
    assert_eq!(tasks_of(&app, &t, &l).await.len(), 1);
    // Replay the event: the dispatcher sees it again and starts nothing new.
    let lid = Uuid::parse_str(&l).unwrap();
    let replayed = event::Entity::update_many()
        .col_expr(
            event::Column::ProcessedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(event::Column::EntityId.eq(lid))
        .filter(event::Column::EventType.eq("lead.created"))
        .exec(&app.state.db)
        .await
        .unwrap();
    assert_eq!(replayed.rows_affected, 1);
    settle(&app).await;
    assert_eq!(tasks_of(&app, &t, &l).await.len(), 1);
    assert_eq!(runs(&app, &t, &id).await.len(), 1);
    // Replay the action's job as if its worker died after creating the task but before recording
    // it: the retried attempt finds the task its first attempt made.
    let rs = runs(&app, &t, &id).await;
    let run_id = Uuid::parse_str(rs[0]["id"].as_str().unwrap()).unwrap();
    let tenant = Uuid::parse_str(&t.id).unwrap();
    run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value("running"))
        .filter(run::Column::Id.eq(run_id))
        .exec(&app.state.db)
        .await
        .unwrap();
    run_action::Entity::update_many()
        .col_expr(run_action::Column::Status, Expr::value("queued"))
        .filter(run_action::Column::RunId.eq(run_id))
        .exec(&app.state.db)
        .await
        .unwrap();
    let replayed = job::Entity::update_many()
        .col_expr(job::Column::Status, Expr::value("queued"))
        .col_expr(job::Column::Attempts, Expr::value(1))
        .col_expr(job::Column::RunAt, Expr::value(Utc::now()))
        .filter(job::Column::TenantId.eq(tenant))
        .filter(job::Column::Kind.eq("automations.action"))
        .exec(&app.state.db)
        .await
        .unwrap();
    assert_eq!(replayed.rows_affected, 1);
    jtcrm_kernel::jobs::wake_workers();
    let rs = finished_runs(&app, &t, &id, 1).await;
    settle(&app).await;
    assert_eq!(
        rs[0]["actions"][0]["result"]["recovered"], true,
        "{:?}",
        rs[0]
    );
    assert_eq!(rs[0]["actions"][0]["attempts"], 2);
    assert_eq!(tasks_of(&app, &t, &l).await.len(), 1);
}

#[tokio::test]
async fn an_automation_that_retriggers_itself_stops_at_the_depth_limit() {
    let app = app().await;
    let t = app.create_tenant_on("enterprise").await;
    let id = automation(
        &app,
        &t,
        json!({"name": "Loop de score", "trigger": {"event": "lead.score_changed"},
               "actions": [{"type": "adjust_score", "points": 5}]}),
    )
    .await;
    let l = lead(&app, &t.admin_token, json!({"name": "Loop"})).await;
    let s0 = app
        .get(&format!("/api/leads/{l}"), &t.admin_token)
        .await
        .body["score"]
        .as_i64()
        .unwrap();
    app.post(
        &format!("/api/automations/{id}/execute"),
        &t.admin_token,
        json!({"entity_id": l}),
    )
    .await
    .assert(200);
    settle(&app).await;
    let rs = runs(&app, &t, &id).await;
    let mut depths: Vec<i64> = rs.iter().map(|r| r["depth"].as_i64().unwrap()).collect();
    depths.sort_unstable();
    assert_eq!(depths, vec![1, 2, 3], "{rs:?}");
    let s1 = app
        .get(&format!("/api/leads/{l}"), &t.admin_token)
        .await
        .body["score"]
        .as_i64()
        .unwrap();
    assert_eq!(s1, (s0 + 15).min(100));
    // The last change was made at depth 3 and dispatched without starting anything.
    let lid = Uuid::parse_str(&l).unwrap();
    let evs = event::Entity::find()
        .filter(event::Column::EntityId.eq(lid))
        .filter(event::Column::EventType.eq("lead.score_changed"))
        .all(&app.state.db)
        .await
        .unwrap();
    let mut ds: Vec<i64> = evs
        .iter()
        .map(|e| e.data["automation_depth"].as_i64().unwrap())
        .collect();
    ds.sort_unstable();
    assert_eq!(ds, vec![1, 2, 3]);
    assert!(evs.iter().all(|e| e.processed_at.is_some()));
}

#[tokio::test]
async fn wait_delays_the_actions_after_it() {
    let app = app().await;
    let t = app.create_tenant_on("enterprise").await;
    let id = automation(
        &app,
        &t,
        json!({"name": "Espera", "trigger": {"event": "lead.assigned"}, "actions": [
            {"type": "adjust_score", "points": 1},
            {"type": "wait", "hours": 2},
            {"type": "create_task", "title": "Depois da espera"}
        ]}),
    )
    .await;
    let l = lead(&app, &t.admin_token, json!({"name": "Espera"})).await;
    let started = Utc::now();
    app.post(
        &format!("/api/automations/{id}/execute"),
        &t.admin_token,
        json!({"entity_id": l}),
    )
    .await
    .assert(200);
    let run = wait_for(20, "the first action", || async {
        let rs = runs(&app, &t, &id).await;
        rs.first()
            .filter(|r| r["actions"][0]["status"] == "succeeded")
            .cloned()
    })
    .await;
    let acts = run["actions"].as_array().unwrap();
    assert_eq!(acts[1]["status"], "queued");
    assert_eq!(acts[2]["status"], "queued");
    let due = ts(&acts[2]["run_at"]);
    assert!(due >= started + chrono::Duration::hours(2), "{due}");
    assert!(due <= Utc::now() + chrono::Duration::hours(2), "{due}");
    assert_eq!(acts[1]["run_at"], acts[2]["run_at"]);
    let key = format!("auto:{id}:{}:2", run["id"].as_str().unwrap());
    let j = job::Entity::find()
        .filter(job::Column::IdempotencyKey.eq(key))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(j.status, "queued");
    assert_eq!(j.run_at, due);
    assert_eq!(run["status"], "running");
    assert!(tasks_of(&app, &t, &l).await.is_empty());
}

type Hits = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A local webhook receiver: answers 500 to the first `fail` requests, then 200.
async fn receiver(fail: usize) -> (String, Hits) {
    let hits: Hits = Arc::default();
    let seen = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let h = h.clone();
            let seen = seen.clone();
            async move {
                h.lock().unwrap().push((headers, body));
                if seen.fetch_add(1, Ordering::SeqCst) < fail {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://127.0.0.1:{port}/hook"), hits)
}

#[tokio::test]
async fn webhooks_are_signed_retried_and_never_reach_private_addresses() {
    let app = app().await;
    let t = app.create_tenant_on("enterprise").await;
    let (url, hits) = receiver(1).await;
    let secret = "segredo-do-webhook-123";
    let id = automation(
        &app,
        &t,
        json!({"name": "Webhook", "trigger": {"event": "lead.created"},
               "actions": [{"type": "webhook", "url": url, "secret": secret}]}),
    )
    .await;
    let got = app
        .get(&format!("/api/automations/{id}"), &t.admin_token)
        .await;
    assert!(
        got.body["actions"][0].get("secret").is_none(),
        "write-only: {}",
        got.text
    );
    // At rest the secret is sealed (AES-256-GCM), never stored in clear.
    let stored = jtcrm::domains::automations::model::automation::Entity::find()
        .filter(
            jtcrm::domains::automations::model::automation::Column::Id
                .eq(id.parse::<Uuid>().unwrap()),
        )
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let stored = stored.actions.to_string();
    assert!(!stored.contains(secret), "{stored}");
    assert!(stored.contains("enc:v1:"), "{stored}");
    let l = lead(&app, &t.admin_token, json!({"name": "Cliente Webhook"})).await;
    let rs = finished_runs(&app, &t, &id, 1).await;
    let act = &rs[0]["actions"][0];
    assert_eq!(act["status"], "succeeded", "{act}");
    assert_eq!(
        act["attempts"], 2,
        "the first delivery got a 500 and was retried"
    );
    assert_eq!(act["result"]["status"], 200);
    let hits = hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 2);
    let (headers, body) = hits.last().unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(headers["x-jtcrm-signature"].to_str().unwrap(), expected);
    assert_eq!(headers["x-jtcrm-event"].to_str().unwrap(), "lead.created");
    assert_eq!(
        headers["x-jtcrm-delivery"], hits[0].0["x-jtcrm-delivery"],
        "a retry keeps its delivery id"
    );
    let payload: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(payload["automation"]["id"], id.as_str());
    assert_eq!(payload["event"]["type"], "lead.created");
    assert_eq!(payload["lead"]["id"], l.as_str());
    assert_eq!(payload["lead"]["name"], "Cliente Webhook");
    // PUT without the secret keeps it for the same URL; a new URL needs one.
    let mut body = json!({"name": "Webhook 2", "trigger": {"event": "lead.created"},
                          "actions": [{"type": "webhook", "url": url}]});
    app.put(
        &format!("/api/automations/{id}"),
        &t.admin_token,
        body.clone(),
    )
    .await
    .assert(200);
    body["actions"][0]["url"] = json!("https://hooks.exemplo.com.br/crm");
    let r = app
        .put(&format!("/api/automations/{id}"), &t.admin_token, body)
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["actions[0].secret"]);
    // Private, link-local and metadata addresses are refused.
    for bad in [
        "http://10.0.0.7/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://192.168.0.10:8080/",
        "ftp://exemplo.com.br/x",
        "não é url",
    ] {
        let r = app
            .post(
                "/api/automations",
                &t.admin_token,
                json!({"name": "x", "trigger": {"event": "lead.created"},
                       "actions": [{"type": "webhook", "url": bad, "secret": secret}]}),
            )
            .await;
        r.assert_problem(422, "validation_failed");
        assert_eq!(r.error_fields(), vec!["actions[0].url"], "{bad}");
    }
}

#[tokio::test]
async fn webhooks_to_loopback_are_refused_unless_the_deployment_allows_them() {
    let app = spawn_app_with(|s| s.worker_poll_ms = 50).await;
    let t = app.create_tenant_on("enterprise").await;
    let r = app
        .post(
            "/api/automations",
            &t.admin_token,
            json!({"name": "x", "trigger": {"event": "lead.created"},
                   "actions": [{"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "0123456789abcdef"}]}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["actions[0].url"]);
}

#[tokio::test]
async fn the_plan_limits_automations() {
    let app = app().await;
    let t = app.create_tenant().await;
    let body = |n: usize| {
        json!({"name": format!("A{n}"), "trigger": {"event": "lead.created"},
               "actions": [{"type": "adjust_score", "points": 1}]})
    };
    let mut ids = vec![];
    for n in 0..5 {
        ids.push(automation(&app, &t, body(n)).await);
    }
    let r = app.post("/api/automations", &t.admin_token, body(5)).await;
    r.assert_problem(402, "plan_limit_exceeded");
    assert_eq!(r.body["context"]["limit"], "max_automations");
    app.delete(&format!("/api/automations/{}", ids[0]), &t.admin_token)
        .await
        .assert(204);
    app.post("/api/automations", &t.admin_token, body(6))
        .await
        .assert(201);
    let usage = app.get("/api/tenant/usage", &t.admin_token).await;
    usage.assert(200);
    assert_eq!(usage.body["usage"]["automations"]["used"], 5);
    assert_eq!(usage.body["usage"]["automations"]["limit"], 5);
}

#[tokio::test]
async fn automations_are_isolated_and_permissioned() {
    let app = app().await;
    let a = app.create_tenant_on("enterprise").await;
    let b = app.create_tenant_on("enterprise").await;
    let a_seller = app.create_user(&a, "sales").await;
    let id = automation(
        &app,
        &a,
        json!({"name": "Só de A", "trigger": {"event": "lead.created"},
               "actions": [{"type": "adjust_score", "points": 1}]}),
    )
    .await;
    let a_lead = lead(&app, &a.admin_token, json!({"name": "Lead A"})).await;
    let cad = app
        .post(
            "/api/automations/cadences",
            &a.admin_token,
            json!({"name": "Cadência A", "steps": [{"channel": "call"}]}),
        )
        .await;
    cad.assert(201);
    let cad = cad.id();
    // Another tenant: 404 and absent from lists.
    let p = format!("/api/automations/{id}");
    app.get(&p, &b.admin_token)
        .await
        .assert_problem(404, "not_found");
    app.put(&p, &b.admin_token, json!({"name": "x", "trigger": {"event": "lead.created"}, "actions": [{"type": "adjust_score", "points": 1}]}))
        .await
        .assert_problem(404, "not_found");
    app.delete(&p, &b.admin_token)
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("{p}/runs"), &b.admin_token)
        .await
        .assert_problem(404, "not_found");
    app.post(
        &format!("{p}/execute"),
        &b.admin_token,
        json!({"entity_id": a_lead}),
    )
    .await
    .assert_problem(404, "not_found");
    let list = app.get("/api/automations", &b.admin_token).await;
    assert!(list.body["items"].as_array().unwrap().is_empty());
    let cp = format!("/api/automations/cadences/{cad}");
    app.get(&cp, &b.admin_token)
        .await
        .assert_problem(404, "not_found");
    app.post(
        &format!("{cp}/enroll"),
        &b.admin_token,
        json!({"lead_ids": [a_lead]}),
    )
    .await
    .assert_problem(404, "not_found");
    app.get(&format!("{cp}/enrollments"), &b.admin_token)
        .await
        .assert_problem(404, "not_found");
    assert!(
        app.get("/api/automations/cadences", &b.admin_token)
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Ids of another tenant inside bodies: 422 naming the field.
    let b_id = automation(
        &app,
        &b,
        json!({"name": "De B", "trigger": {"event": "lead.assigned"},
               "actions": [{"type": "adjust_score", "points": 1}]}),
    )
    .await;
    let r = app
        .post(
            "/api/automations",
            &b.admin_token,
            json!({"name": "x", "trigger": {"event": "lead.created"}, "actions": [
                {"type": "assign_owner", "assignee": "user", "user_id": a_seller.id},
                {"type": "enroll_in_cadence", "cadence_id": cad},
                {"type": "create_task", "title": "x", "assignee": "user", "user_id": a.admin_id},
                {"type": "move_stage", "stage_id": Uuid::now_v7()}
            ]}),
        )
        .await;
    // Ids in a body that name nothing of this company: 404, naming each field.
    r.assert_problem(404, "not_found");
    assert_eq!(
        r.error_fields(),
        vec![
            "actions[0].user_id",
            "actions[2].user_id",
            "actions[1].cadence_id",
            "actions[3].stage_id"
        ]
    );
    app.post(
        &format!("/api/automations/{b_id}/execute"),
        &b.admin_token,
        json!({"entity_id": a_lead}),
    )
    .await
    .assert_problem(404, "not_found");
    let b_cad = app
        .post(
            "/api/automations/cadences",
            &b.admin_token,
            json!({"name": "B", "steps": [{"channel": "task"}]}),
        )
        .await
        .id();
    let r = app
        .post(
            &format!("/api/automations/cadences/{b_cad}/enroll"),
            &b.admin_token,
            json!({"lead_ids": [a_lead]}),
        )
        .await;
    r.assert_problem(404, "not_found");
    assert_eq!(r.body["context"]["lead_ids"][0], a_lead.as_str());
    // Roles: admins and managers manage automations; others get 403.
    let manager = app.create_user(&a, "manager").await;
    let viewer = app.create_user(&a, "viewer").await;
    for tok in [&a_seller.token, &viewer.token] {
        app.get("/api/automations", tok)
            .await
            .assert_problem(403, "forbidden");
        app.get(&p, tok).await.assert_problem(403, "forbidden");
        app.get(&format!("{p}/runs"), tok)
            .await
            .assert_problem(403, "forbidden");
        app.post("/api/automations", tok, json!({"name": "x"}))
            .await
            .assert_problem(403, "forbidden");
        app.post(&format!("{p}/execute"), tok, json!({"entity_id": a_lead}))
            .await
            .assert_problem(403, "forbidden");
        app.delete(&p, tok).await.assert_problem(403, "forbidden");
        app.post(
            "/api/automations/cadences",
            tok,
            json!({"name": "x", "steps": [{"channel": "call"}]}),
        )
        .await
        .assert_problem(403, "forbidden");
        app.put(
            "/api/automations/business-hours",
            tok,
            json!({"start": "09:00"}),
        )
        .await
        .assert_problem(403, "forbidden");
        // Cadences and business hours are readable by everyone.
        app.get("/api/automations/cadences", tok).await.assert(200);
        app.get(&cp, tok).await.assert(200);
        app.get("/api/automations/business-hours", tok)
            .await
            .assert(200);
    }
    app.post(
        &format!("{cp}/enroll"),
        &viewer.token,
        json!({"lead_ids": [a_lead]}),
    )
    .await
    .assert_problem(403, "forbidden");
    // A seller enrols only leads it can see.
    app.post(
        &format!("{cp}/enroll"),
        &a_seller.token,
        json!({"lead_ids": [a_lead]}),
    )
    .await
    .assert_problem(404, "not_found");
    let own = lead(&app, &a_seller.token, json!({"name": "Do vendedor"})).await;
    app.post(
        &format!("{cp}/enroll"),
        &a_seller.token,
        json!({"lead_ids": [own]}),
    )
    .await
    .assert(200);
    app.get("/api/automations", &manager.token)
        .await
        .assert(200);
    app.post(
        "/api/automations",
        &manager.token,
        json!({"name": "Do gestor", "trigger": {"event": "task.overdue"}, "actions": [{"type": "adjust_score", "points": -5}]}),
    )
    .await
    .assert(201);
}

#[tokio::test]
async fn bad_input_is_problem_json_naming_the_field() {
    let app = app().await;
    let t = app.create_tenant_on("enterprise").await;
    let post = |body: Value| app.post("/api/automations", &t.admin_token, body);
    let r = TestApp::finish(
        app.raw(Method::POST, "/api/automations")
            .bearer_auth(&t.admin_token)
            .header("content-type", "application/json")
            .body("{"),
    )
    .await;
    r.assert_problem(400, "malformed_json");
    let r = post(json!({})).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["name", "trigger.event", "actions"]);
    let r = post(json!({"name": "x", "trigger": {"event": "lead.exploded"}, "actions": [{"type": "adjust_score", "points": 1}]})).await;
    assert_eq!(r.error_fields(), vec!["trigger.event"]);
    let r = post(json!({"name": "x", "trigger": {"event": "lead.created"}, "actions": [{"type": "teleport"}]})).await;
    r.assert_problem(422, "validation_failed");
    assert!(r.error_fields()[0].starts_with("actions"), "{}", r.text);
    let r = post(json!({"name": "x", "trigger": {"event": "lead.created", "filters": {"after status": {"a": 1}}},
                        "conditions": {"all": [{"field": "score", "op": "gt"}]},
                        "actions": [
                            {"type": "create_task"},
                            {"type": "send_email", "to": "address", "subject": "{{tenant.secret}}", "body": "x"},
                            {"type": "update_field", "status": "vendido", "custom_fields": {"nope": 1}},
                            {"type": "adjust_score", "points": 500},
                            {"type": "wait", "hours": 1, "days": 1},
                            {"type": "wait", "minutes": 5}
                        ]})).await;
    r.assert_problem(422, "validation_failed");
    let f = r.error_fields();
    for x in [
        "trigger.filters.after status",
        "conditions.all[0].value",
        "actions[0].title",
        "actions[1].address",
        "actions[1].subject",
        "actions[2].status",
        "actions[2].custom_fields.nope",
        "actions[3].points",
        "actions[4]",
        "actions[5]",
    ] {
        assert!(f.contains(&x.to_string()), "{x} in {f:?}");
    }
    let r = post(json!({"name": "x", "trigger": {"event": "lead.created"}, "actions": [{"type": "adjust_score", "points": "dez"}]})).await;
    r.assert_problem(422, "validation_failed");
    app.get("/api/automations/nope", &t.admin_token)
        .await
        .assert_problem(400, "invalid_id");
    app.get(
        &format!("/api/automations/{}", Uuid::now_v7()),
        &t.admin_token,
    )
    .await
    .assert_problem(404, "not_found");
    app.get("/api/automations?limit=0", &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
    let id = automation(
        &app,
        &t,
        json!({"name": "ok", "trigger": {"event": "lead.created"}, "actions": [{"type": "adjust_score", "points": 1}]}),
    )
    .await;
    let ex = format!("/api/automations/{id}/execute");
    app.post(&ex, &t.admin_token, json!({}))
        .await
        .assert_problem(422, "validation_failed");
    let r = app
        .post(
            &ex,
            &t.admin_token,
            json!({"filter": {"status": "pensando"}}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["filter.status"]);
    app.post(&ex, &t.admin_token, json!({"entity_id": Uuid::now_v7()}))
        .await
        .assert_problem(404, "not_found");
    app.get(
        &format!("/api/automations/{id}/runs?status=talvez"),
        &t.admin_token,
    )
    .await
    .assert_problem(422, "validation_failed");
    // Stale If-Match.
    let r = TestApp::finish(
        app.raw(Method::PUT, &format!("/api/automations/{id}"))
            .bearer_auth(&t.admin_token)
            .header("if-match", "\"7\"")
            .json(&json!({"name": "ok", "trigger": {"event": "lead.created"}, "actions": [{"type": "adjust_score", "points": 1}]})),
    )
    .await;
    r.assert_problem(412, "precondition_failed");
    // Cadences and business hours.
    let r = app.post("/api/automations/cadences", &t.admin_token, json!({"name": "", "steps": [
        {"channel": "email"}, {"delay": {"days": 1, "business_hours": 2}, "channel": "call"}, {"channel": "fax"}
    ]})).await;
    r.assert_problem(422, "validation_failed");
    let r = app
        .post(
            "/api/automations/cadences",
            &t.admin_token,
            json!({"name": "", "steps": [
                {"channel": "email"}, {"delay": {"days": 1, "business_hours": 2}, "channel": "call"}
            ]}),
        )
        .await;
    let f = r.error_fields();
    for x in [
        "name",
        "steps[0].subject",
        "steps[0].body",
        "steps[1].delay",
    ] {
        assert!(f.contains(&x.to_string()), "{x} in {f:?}");
    }
    let r = app
        .put("/api/automations/business-hours", &t.admin_token, json!({"weekdays": [0, 8], "start": "18:00", "end": "08:00", "timezone": "Marte/Olimpo"}))
        .await;
    r.assert_problem(422, "validation_failed");
    let f = r.error_fields();
    for x in ["weekdays", "end", "timezone"] {
        assert!(f.contains(&x.to_string()), "{x} in {f:?}");
    }
    let cad = app
        .post(
            "/api/automations/cadences",
            &t.admin_token,
            json!({"name": "c", "steps": [{"channel": "task"}]}),
        )
        .await
        .id();
    let cp = format!("/api/automations/cadences/{cad}");
    app.post(
        &format!("{cp}/enroll"),
        &t.admin_token,
        json!({"lead_ids": []}),
    )
    .await
    .assert_problem(422, "validation_failed");
    let l = lead(&app, &t.admin_token, json!({"name": "Sai"})).await;
    app.post(
        &format!("{cp}/enrollments/{l}/exit"),
        &t.admin_token,
        json!({"reason": "cansou"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.post(
        &format!("{cp}/enrollments/{l}/exit"),
        &t.admin_token,
        json!({"reason": "replied"}),
    )
    .await
    .assert_problem(404, "not_found");
}

#[tokio::test]
async fn cadence_enrolment_steps_exits_and_409_on_re_enrol() {
    let app = app().await;
    let t = app.create_tenant_on("enterprise").await;
    always_open(&app, &t).await;
    let seller = app.create_user(&t, "sales").await;
    let r = app
        .post(
            "/api/automations/cadences",
            &t.admin_token,
            json!({"name": "Prospecção", "steps": [
                {"channel": "call", "title": "Ligar para {{lead.name}}"},
                {"delay": {"days": 2}, "channel": "email", "subject": "Oi {{lead.name}}", "body": "Conheça nossos planos"},
                {"delay": {"business_hours": 8}, "channel": "whatsapp"}
            ]}),
        )
        .await;
    r.assert(201);
    assert_eq!(
        r.body["steps"][2]["title"],
        "Enviar WhatsApp para {{lead.name}}"
    );
    let cad = r.id();
    let cp = format!("/api/automations/cadences/{cad}");
    let l = lead(
        &app,
        &t.admin_token,
        json!({"name": "Maria Cadência", "email": "maria@cliente.com.br", "owner_id": seller.id}),
    )
    .await;
    let r = app
        .post(
            &format!("{cp}/enroll"),
            &seller.token,
            json!({"lead_ids": [l]}),
        )
        .await;
    r.assert(200);
    let e = &r.body["enrolled"][0];
    assert_eq!(e["status"], "active");
    assert_eq!(e["current_step"], 0);
    assert_eq!(e["steps_total"], 3);
    let r = app
        .post(
            &format!("{cp}/enroll"),
            &t.admin_token,
            json!({"lead_ids": [l]}),
        )
        .await;
    r.assert_problem(409, "already_enrolled");
    assert_eq!(r.body["context"]["lead_ids"][0], l.as_str());
    // Step 0 runs now: a call task for the owner; step 1 is due in two days.
    let en = wait_for(20, "step 0", || async {
        let r = app.get(&format!("{cp}/enrollments"), &t.admin_token).await;
        r.body["items"]
            .as_array()
            .unwrap()
            .first()
            .filter(|e| e["current_step"] == 1)
            .cloned()
    })
    .await;
    let next = ts(&en["next_run_at"]);
    let two_days = Utc::now() + chrono::Duration::days(2);
    assert!((next - two_days).num_minutes().abs() <= 1, "{next}");
    let task_id = en["history"][0]["result"]["task_id"].as_str().unwrap();
    let task = app
        .get(&format!("/api/tasks/{task_id}"), &seller.token)
        .await;
    task.assert(200);
    assert_eq!(task.body["type"], "call");
    assert_eq!(task.body["assignee_id"], seller.id);
    assert_eq!(task.body["title"], "Ligar para Maria Cadência");
    // The lead replied: it leaves, and can be enrolled again later.
    let r = app
        .post(
            &format!("{cp}/enrollments/{l}/exit"),
            &seller.token,
            json!({"reason": "replied"}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["status"], "exited");
    assert_eq!(r.body["exit_reason"], "replied");
    assert!(r.body["next_run_at"].is_null());
    app.post(
        &format!("{cp}/enroll"),
        &t.admin_token,
        json!({"lead_ids": [l]}),
    )
    .await
    .assert(200);
    let r = app
        .post(
            &format!("{cp}/unenroll"),
            &t.admin_token,
            json!({"lead_ids": [l]}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["unenrolled"], 1);
    // Converting the lead ends its enrolments (via the lead.status_changed event).
    app.post(
        &format!("{cp}/enroll"),
        &t.admin_token,
        json!({"lead_ids": [l]}),
    )
    .await
    .assert(200);
    patch(
        &app,
        &format!("/api/leads/{l}"),
        &t.admin_token,
        json!({"status": "converted"}),
    )
    .await
    .assert(200);
    wait_for(20, "exit on conversion", || async {
        let r = app
            .get(
                &format!("{cp}/enrollments?lead_id={l}&status=exited"),
                &t.admin_token,
            )
            .await;
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["exit_reason"] == "converted")
            .then_some(())
    })
    .await;
    let all = app.get(&format!("{cp}/enrollments"), &t.admin_token).await;
    let reasons: Vec<&str> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["exit_reason"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(reasons, vec!["converted", "manual", "replied"]);
    // An automation can enrol leads too.
    let auto = automation(
        &app,
        &t,
        json!({"name": "Novo lead → cadência", "trigger": {"event": "lead.created"},
               "actions": [{"type": "enroll_in_cadence", "cadence_id": cad}]}),
    )
    .await;
    let l2 = lead(
        &app,
        &t.admin_token,
        json!({"name": "Auto Cadência", "owner_id": seller.id}),
    )
    .await;
    // The run for this lead (not just any finished run of the automation) enrols it.
    let run = wait_for(30, "the run of the new lead", || async {
        runs(&app, &t, &auto)
            .await
            .into_iter()
            .find(|r| r["entity_id"] == l2.as_str() && r["status"] != "running")
    })
    .await;
    assert_eq!(run["status"], "succeeded", "{run:?}");
    let r = app
        .get(&format!("{cp}/enrollments?lead_id={l2}"), &t.admin_token)
        .await;
    assert_eq!(r.body["items"][0]["status"], "active", "{}", r.text);
    // Deleting the cadence ends its enrolments.
    app.delete(&cp, &t.admin_token).await.assert(204);
    app.get(&cp, &t.admin_token)
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn cadence_steps_wait_for_business_hours() {
    let app = app().await;
    let t = app.create_tenant_on("enterprise").await;
    let bh = app
        .get("/api/automations/business-hours", &t.admin_token)
        .await;
    bh.assert(200);
    assert_eq!(
        bh.body,
        json!({"timezone": "America/Sao_Paulo", "weekdays": [1, 2, 3, 4, 5], "start": "08:00", "end": "18:00", "holidays": []})
    );
    let cad = app
        .post(
            "/api/automations/cadences",
            &t.admin_token,
            json!({"name": "Horário", "steps": [{"delay": {"business_hours": 3}, "channel": "task"}]}),
        )
        .await
        .id();
    let l = lead(&app, &t.admin_token, json!({"name": "Horário"})).await;
    let r = app
        .post(
            &format!("/api/automations/cadences/{cad}/enroll"),
            &t.admin_token,
            json!({"lead_ids": [l]}),
        )
        .await;
    r.assert(200);
    let next = ts(&r.body["enrolled"][0]["next_run_at"]);
    let tz: chrono_tz::Tz = "America/Sao_Paulo".parse().unwrap();
    let local = next.with_timezone(&tz);
    use chrono::{Datelike, Timelike};
    assert!(local.weekday().number_from_monday() <= 5, "{local}");
    let minutes = local.hour() * 60 + local.minute();
    assert!((8 * 60..=18 * 60).contains(&minutes), "{local}");
    assert!(next >= Utc::now() + chrono::Duration::hours(3) - chrono::Duration::minutes(1));
    // Changing the hours: a 24/7 company.
    let r = app
        .put(
            "/api/automations/business-hours",
            &t.admin_token,
            json!({"weekdays": [7, 1, 1, 2, 3, 4, 5, 6], "start": "00:00", "end": "24:00", "holidays": ["2026-12-25"]}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["weekdays"], json!([1, 2, 3, 4, 5, 6, 7]));
    assert_eq!(r.body["end"], "24:00");
    assert_eq!(r.body["holidays"], json!(["2026-12-25"]));
}

#[tokio::test]
async fn concurrent_dispatchers_and_workers_run_each_action_once() {
    use jtcrm::domains::automations::engine;
    use jtcrm_kernel::jobs::{Worker, WorkerOptions};
    let app = spawn_app_with(|s| s.run_worker = false).await;
    let t = app.create_tenant_on("enterprise").await;
    let id = automation(
        &app,
        &t,
        json!({"name": "Cada lead uma tarefa", "trigger": {"event": "lead.created"},
               "actions": [{"type": "create_task", "title": "Contato com {{lead.name}}"}]}),
    )
    .await;
    let n = 60;
    let mut leads = vec![];
    for i in 0..n {
        leads.push(
            lead(
                &app,
                &t.admin_token,
                json!({"name": format!("Concorrente {i}")}),
            )
            .await,
        );
    }
    // Four dispatchers drain the same backlog at once.
    let mut hs = vec![];
    for _ in 0..4 {
        let state = app.state.clone();
        hs.push(tokio::spawn(async move {
            let mut claimed = 0;
            loop {
                let k = engine::dispatch_once(&state).await.unwrap();
                if k == 0 {
                    return claimed;
                }
                claimed += k;
            }
        }));
    }
    let mut claimed = 0;
    for h in hs {
        claimed += h.await.unwrap();
    }
    assert!(claimed >= n, "{claimed}");
    let tenant = Uuid::parse_str(&t.id).unwrap();
    let runs_n = run::Entity::find()
        .filter(run::Column::TenantId.eq(tenant))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(runs_n, n as u64);
    // Two workers run the actions.
    let opts = || WorkerOptions {
        poll_interval: Duration::from_millis(20),
        concurrency: 4,
        ..WorkerOptions::default()
    };
    let w1 = Worker::spawn(app.state.clone(), jtcrm::app::registry(), opts());
    let w2 = Worker::spawn(app.state.clone(), jtcrm::app::registry(), opts());
    wait_for(60, "all tasks", || async {
        let r = app
            .get("/api/tasks?include_total=true&limit=1", &t.admin_token)
            .await;
        (r.body["total"].as_u64() == Some(n as u64)).then_some(())
    })
    .await;
    settle(&app).await;
    w1.shutdown().await;
    w2.shutdown().await;
    for l in &leads {
        assert_eq!(tasks_of(&app, &t, l).await.len(), 1, "lead {l}");
    }
    let rs = runs(&app, &t, &id).await;
    assert!(
        rs.iter()
            .all(|r| r["status"] == "succeeded" && r["actions"][0]["attempts"] == 1)
    );
}

#[tokio::test]
async fn opportunity_events_trigger_automations_and_a_won_deal_ends_the_cadence() {
    let app = app().await;
    let t = app.create_tenant_on("enterprise").await;
    always_open(&app, &t).await;
    let seller = app.create_user(&t, "sales").await;
    let p = app.get("/api/pipelines", &t.admin_token).await;
    p.assert(200);
    let pipeline = p.body["items"][0].clone();
    let stage = |name: &str| -> String {
        pipeline["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (proposta, negociacao) = (stage("Proposta"), stage("Negociação"));
    // "When a deal reaches Proposta: a follow-up task for its owner, then move it to Negociação."
    let auto = automation(
        &app,
        &t,
        json!({"name": "Proposta → follow-up", "trigger": {"event": "opportunity.stage_changed",
                "filters": {"after.stage_name": "Proposta"}},
               "actions": [
                   {"type": "create_task", "task_type": "follow_up", "title": "Acompanhar proposta de {{lead.name}}"},
                   {"type": "move_stage", "stage_id": negociacao}
               ]}),
    )
    .await;
    let l = lead(
        &app,
        &t.admin_token,
        json!({"name": "Empresa Funil", "email": "compras@funil.com.br", "owner_id": seller.id}),
    )
    .await;
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
    let conv = app
        .post(
            &format!("/api/leads/{l}/convert"),
            &t.admin_token,
            json!({"title": "Link dedicado"}),
        )
        .await;
    conv.assert(201);
    let opp = conv.id();
    // Converting ends the enrolment (the lead is converted).
    let r = wait_for(20, "exit on conversion", || async {
        let r = app
            .get(&format!("{cp}/enrollments?lead_id={l}"), &t.admin_token)
            .await;
        let e = r.body["items"][0].clone();
        (e["status"] == "exited").then_some(e)
    })
    .await;
    assert_eq!(r["exit_reason"], "converted", "{r}");
    // A move into another stage does not match the filter; into Proposta it does.
    app.post(
        &format!("/api/pipelines/opportunities/{opp}/move"),
        &t.admin_token,
        json!({"stage_id": stage("Qualificação")}),
    )
    .await
    .assert(200);
    app.post(
        &format!("/api/pipelines/opportunities/{opp}/move"),
        &t.admin_token,
        json!({"stage_id": proposta}),
    )
    .await
    .assert(200);
    let rs = finished_runs(&app, &t, &auto, 1).await;
    settle(&app).await;
    let rs2 = runs(&app, &t, &auto).await;
    assert_eq!(rs2.len(), 1, "{rs2:?}");
    assert_eq!(rs[0]["status"], "succeeded", "{:?}", rs[0]);
    let o = app
        .get(
            &format!("/api/pipelines/opportunities/{opp}"),
            &t.admin_token,
        )
        .await;
    o.assert(200);
    assert_eq!(o.body["stage_id"], negociacao.as_str());
    let tasks = tasks_of(&app, &t, &l).await;
    let follow: Vec<&Value> = tasks.iter().filter(|x| x["type"] == "follow_up").collect();
    assert_eq!(follow.len(), 1, "{tasks:?}");
    assert_eq!(follow[0]["title"], "Acompanhar proposta de Empresa Funil");
    assert_eq!(follow[0]["assignee_id"], seller.id);
    // The automation's own move (to Negociação) is in the deal's history, made by the automation.
    let tl = app
        .get(
            &format!("/api/pipelines/opportunities/{opp}/timeline?kind=opportunity_stage_changed"),
            &t.admin_token,
        )
        .await;
    tl.assert(200);
    assert_eq!(tl.body["items"].as_array().unwrap().len(), 3, "{}", tl.text);

    // A lead enrolled while its deal is open leaves the cadence when the deal is won.
    let l2 = lead(
        &app,
        &t.admin_token,
        json!({"name": "Outra Empresa", "email": "ti@outra.com.br", "owner_id": seller.id}),
    )
    .await;
    let d = app
        .post(
            "/api/pipelines/opportunities",
            &t.admin_token,
            json!({"title": "PABX em nuvem", "lead_id": l2, "stage_id": stage("Qualificação"),
                   "value_cents": 50000}),
        )
        .await;
    d.assert(201);
    let deal2 = d.id();
    app.post(
        &format!("{cp}/enroll"),
        &t.admin_token,
        json!({"lead_ids": [l2]}),
    )
    .await
    .assert(200);
    app.post(
        &format!("/api/pipelines/opportunities/{deal2}/won"),
        &t.admin_token,
        json!({}),
    )
    .await
    .assert(200);
    let r = wait_for(20, "exit on won", || async {
        let r = app
            .get(&format!("{cp}/enrollments?lead_id={l2}"), &t.admin_token)
            .await;
        let e = r.body["items"][0].clone();
        (e["status"] == "exited").then_some(e)
    })
    .await;
    assert_eq!(r["exit_reason"], "won", "{r}");
}

#[tokio::test]
async fn batched_create_task_runs_once_in_one_job_and_hands_odd_cases_to_single_jobs() {
    use jtcrm::domains::automations::engine;
    use jtcrm_kernel::jobs::{Worker, WorkerOptions};
    let app = spawn_app_with(|s| s.run_worker = false).await;
    let t = app.create_tenant_on("enterprise").await;
    let tenant = Uuid::parse_str(&t.id).unwrap();
    let id = automation(
        &app,
        &t,
        json!({"name": "Ligação e pontos", "trigger": {"event": "lead.created"},
               "actions": [{"type": "create_task", "task_type": "call", "priority": "high",
                            "title": "Ligar para {{lead.name}}", "due_in": {"hours": 2}},
                           {"type": "adjust_score", "points": 5}]}),
    )
    .await;
    let mut leads = vec![];
    for i in 0..5 {
        leads.push(lead(&app, &t.admin_token, json!({"name": format!("Lote {i}")})).await);
    }
    while engine::dispatch_once(&app.state).await.unwrap() > 0 {}
    // One batch job holds the five first actions; no per-action job yet.
    let kinds = |kind: &'static str| {
        let db = app.state.db.clone();
        async move {
            job::Entity::find()
                .filter(job::Column::TenantId.eq(tenant))
                .filter(job::Column::Kind.eq(kind))
                .all(&db)
                .await
                .unwrap()
        }
    };
    let batches = kinds("automations.action_batch").await;
    assert_eq!(batches.len(), 1, "{batches:?}");
    assert_eq!(batches[0].payload["items"].as_array().unwrap().len(), 5);
    assert!(kinds("automations.action").await.is_empty());
    // The last lead is deleted after dispatch: its action cannot run in the batch.
    app.delete(&format!("/api/leads/{}", leads[4]), &t.admin_token)
        .await
        .assert(204);

    let w = Worker::spawn(
        app.state.clone(),
        jtcrm::app::registry(),
        WorkerOptions {
            poll_interval: Duration::from_millis(20),
            ..WorkerOptions::default()
        },
    );
    let rs = finished_runs(&app, &t, &id, 5).await;
    settle(&app).await;
    for l in &leads[..4] {
        let ts = tasks_of(&app, &t, l).await;
        assert_eq!(ts.len(), 1, "lead {l}: {ts:?}");
        let name = app
            .get(&format!("/api/leads/{l}"), &t.admin_token)
            .await
            .body["name"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(ts[0]["title"], format!("Ligar para {name}"));
        assert_eq!(ts[0]["type"], "call");
        assert_eq!(ts[0]["priority"], "high");
        assert!(ts[0]["due_at"].is_string());
        let run = rs.iter().find(|r| r["entity_id"] == l.as_str()).unwrap();
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["actions"][0]["status"], "succeeded");
        assert_eq!(run["actions"][0]["attempts"], 1);
        assert_eq!(run["actions"][0]["result"]["task_id"], ts[0]["id"]);
        // The action after the batched one ran in its own job.
        assert_eq!(run["actions"][1]["status"], "succeeded", "{run}");
        // The task's event names the run (loop prevention and tracing), and so does its audit.
        let tid = Uuid::parse_str(ts[0]["id"].as_str().unwrap()).unwrap();
        let ev = event::Entity::find()
            .filter(event::Column::TenantId.eq(tenant))
            .filter(event::Column::EntityId.eq(tid))
            .filter(event::Column::EventType.eq("task.created"))
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ev.data["automation_run_id"], run["id"]);
        assert_eq!(ev.data["automation_depth"], 1);
        let tl = app
            .get(
                &format!("/api/leads/{l}/timeline?kind=task_created"),
                &t.admin_token,
            )
            .await;
        tl.assert(200);
        assert_eq!(tl.body["items"].as_array().unwrap().len(), 1, "{}", tl.body);
    }
    // The deleted lead's action went to a single job, which recorded why it failed.
    let gone = rs
        .iter()
        .find(|r| r["entity_id"] == leads[4].as_str())
        .unwrap();
    assert_eq!(gone["status"], "failed", "{gone}");
    assert_eq!(gone["actions"][0]["status"], "failed");
    assert!(
        gone["actions"][0]["error"]
            .as_str()
            .unwrap()
            .contains("lead"),
        "{gone}"
    );

    // Delivering the batch job again (as after a lost lease) creates nothing.
    let batch = kinds("automations.action_batch").await.remove(0);
    assert_eq!(batch.status, "succeeded");
    job::Entity::update_many()
        .col_expr(job::Column::Status, Expr::value("queued"))
        .col_expr(job::Column::RunAt, Expr::value(Utc::now()))
        .filter(job::Column::Id.eq(batch.id))
        .exec(&app.state.db)
        .await
        .unwrap();
    jtcrm_kernel::jobs::wake_workers();
    wait_for(20, "the batch job again", || async {
        let j = job::Entity::find_by_id(batch.id)
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap();
        (j.status == "succeeded" && j.attempts == 2).then_some(())
    })
    .await;
    settle(&app).await;
    w.shutdown().await;
    for l in &leads[..4] {
        assert_eq!(tasks_of(&app, &t, l).await.len(), 1, "lead {l}");
    }
    assert_eq!(runs(&app, &t, &id).await.len(), 5);
}

#[tokio::test]
async fn a_run_cancelled_during_a_wait_leaves_nothing_queued() {
    let app = app().await;
    let t = app.create_tenant_on("enterprise").await;
    let def = json!({"name": "Cancelável", "trigger": {"event": "lead.assigned"}, "actions": [
        {"type": "create_task", "title": "Antes da espera"},
        {"type": "wait", "minutes": 1},
        {"type": "create_task", "title": "Depois da espera"}
    ]});
    let id = automation(&app, &t, def.clone()).await;
    let l = lead(&app, &t.admin_token, json!({"name": "Cancelada"})).await;
    app.post(
        &format!("/api/automations/{id}/execute"),
        &t.admin_token,
        json!({"entity_id": l}),
    )
    .await
    .assert(200);
    let manual = || async {
        runs(&app, &t, &id)
            .await
            .into_iter()
            .find(|r| r["source"] == "manual")
    };
    let run = wait_for(20, "the first action", || async {
        manual()
            .await
            .filter(|r| r["actions"][0]["status"] == "succeeded")
    })
    .await;
    assert_eq!(run["actions"][1]["status"], "queued", "{run}");
    assert_eq!(run["actions"][2]["status"], "queued", "{run}");

    // Changed while the run waits.
    let mut changed = def.clone();
    changed["name"] = json!("Cancelável (alterada)");
    app.put(&format!("/api/automations/{id}"), &t.admin_token, changed)
        .await
        .assert(200);
    // The action after the wait comes due now rather than in a minute.
    let key = format!("auto:{id}:{}:2", run["id"].as_str().unwrap());
    let moved = job::Entity::update_many()
        .col_expr(job::Column::RunAt, Expr::value(Utc::now()))
        .filter(job::Column::IdempotencyKey.eq(key))
        .exec(&app.state.db)
        .await
        .unwrap();
    assert_eq!(moved.rows_affected, 1);
    jtcrm_kernel::jobs::wake_workers();

    let run = wait_for(20, "the run to close", || async {
        manual().await.filter(|r| r["status"] != "running")
    })
    .await;
    assert_eq!(run["status"], "cancelled", "{run}");
    let statuses: Vec<&str> = run["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["succeeded", "skipped", "skipped"], "{run}");
    for a in &run["actions"].as_array().unwrap()[1..] {
        assert!(
            a["error"].as_str().unwrap().starts_with("Cancelada"),
            "{run}"
        );
        assert!(a["finished_at"].is_string(), "{run}");
    }
    assert!(run["finished_at"].is_string(), "{run}");
    let tasks = tasks_of(&app, &t, &l).await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["title"], "Antes da espera");
    // The new status is a filter of the run log like the others.
    let r = app
        .get(
            &format!("/api/automations/{id}/runs?status=cancelled"),
            &t.admin_token,
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.text);
}

#[tokio::test]
async fn automations_act_with_their_authors_role_never_more() {
    use jtcrm::domains::automations::actor_ctx;
    use jtcrm_types::dto::Role;
    let app = spawn_app_with(|_| {}).await;
    let t = app.create_tenant().await;
    let tenant: Uuid = t.id.parse().unwrap();
    let admin: Uuid = t.admin_id.parse().unwrap();
    let manager = app.create_user(&t, "manager").await;
    let seller = app.create_user(&t, "sales").await;
    let manager_id: Uuid = manager.id.parse().unwrap();
    let seller_id: Uuid = seller.id.parse().unwrap();

    // The author acts, with the author's own role.
    let ctx = actor_ctx(&app.state, tenant, &[Some(manager_id)])
        .await
        .unwrap();
    assert_eq!((ctx.user_id, ctx.role), (manager_id, Role::Manager));
    let ctx = actor_ctx(&app.state, tenant, &[Some(seller_id), Some(manager_id)])
        .await
        .unwrap();
    assert_eq!((ctx.user_id, ctx.role), (seller_id, Role::Sales));

    // A deactivated author: the next preferred user acts, else an admin with the author's role.
    // (A fresh user: an author seen active in the last 10 s is cached as active.)
    let seller = app.create_user(&t, "sales").await;
    let seller_id: Uuid = seller.id.parse().unwrap();
    app.put(
        &format!("/api/users/{seller_id}"),
        &t.admin_token,
        json!({"active": false}),
    )
    .await
    .assert(200);
    let ctx = actor_ctx(&app.state, tenant, &[Some(seller_id), Some(manager_id)])
        .await
        .unwrap();
    assert_eq!((ctx.user_id, ctx.role), (manager_id, Role::Manager));
    let ctx = actor_ctx(&app.state, tenant, &[Some(seller_id)])
        .await
        .unwrap();
    assert_eq!(
        (ctx.user_id, ctx.role),
        (admin, Role::Sales),
        "never more than the author"
    );

    // An author that no longer exists (or none): the admin acts as admin.
    let ctx = actor_ctx(&app.state, tenant, &[Some(Uuid::now_v7())])
        .await
        .unwrap();
    assert_eq!((ctx.user_id, ctx.role), (admin, Role::Admin));
    let ctx = actor_ctx(&app.state, tenant, &[None]).await.unwrap();
    assert_eq!((ctx.user_id, ctx.role), (admin, Role::Admin));
}

/// A number at the edge of f64 in a JSON column reads back as written on both backends
/// (PostgreSQL's jsonb prints it as a 309-digit decimal: found by the fuzzer as a 500).
#[tokio::test]
async fn extreme_numbers_in_json_columns_read_back() {
    let app = jtcrm_testkit::spawn_app().await;
    let t = app.create_tenant().await;
    let values = json!([
        1.7976931348623157e308,
        -1.7976931348623157e308,
        5e-324,
        -941067766043590524928.0
    ]);
    let r = app
        .post(
            "/api/automations",
            &t.admin_token,
            json!({"name": "Números extremos", "trigger": {"event": "lead.created"},
                   "conditions": {"field": "score", "op": "in", "value": values},
                   "actions": [{"type": "adjust_score", "points": 5}]}),
        )
        .await;
    r.assert(201);
    let got = app
        .get(&format!("/api/automations/{}", r.id()), &t.admin_token)
        .await;
    got.assert(200);
    assert_eq!(got.body["conditions"]["value"], values, "{}", got.text);
    let list = app.get("/api/automations", &t.admin_token).await;
    list.assert(200);
}
