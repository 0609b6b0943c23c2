use chrono::{Duration, Utc};
use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::{TestApp, spawn_app};
use serde_json::{Value, json};

fn ids(r: &jtcrm_testkit::Resp) -> Vec<String> {
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect()
}

async fn lead(app: &TestApp, token: &str, name: &str) -> String {
    let r = app.post("/api/leads", token, json!({"name": name})).await;
    r.assert(201);
    r.id()
}

#[tokio::test]
async fn task_lifecycle_with_reschedules_and_completion() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let l = lead(&app, &t.admin_token, "Cliente").await;
    let due = (Utc::now() + Duration::hours(5)).to_rfc3339();
    let r = app
        .post("/api/tasks", &t.admin_token, json!({"title": "Ligar", "type": "call", "priority": "high", "due_at": due, "lead_id": l}))
        .await;
    r.assert(201);
    let id = r.id();
    assert_eq!(r.body["assignee_id"], t.admin_id, "defaults to the creator");
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["reschedule_count"], 0);
    let p = format!("/api/tasks/{id}");
    let d1 = (Utc::now() + Duration::days(1)).to_rfc3339();
    let d2 = (Utc::now() + Duration::days(2)).to_rfc3339();
    app.post(
        &format!("{p}/reschedule"),
        &t.admin_token,
        json!({"due_at": d1, "reason": "Cliente viajando"}),
    )
    .await
    .assert(200);
    let r = app
        .post(
            &format!("{p}/reschedule"),
            &t.admin_token,
            json!({"due_at": d2}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["reschedule_count"], 2);
    let got = app.get(&p, &t.admin_token).await;
    let h = got.body["reschedules"].as_array().unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0]["reason"], "Cliente viajando");
    assert_eq!(h[0]["by"], t.admin_id);
    assert_eq!(h[1]["from"], h[0]["to"]);
    app.post(&format!("{p}/reschedule"), &t.admin_token, json!({}))
        .await
        .assert_problem(422, "validation_failed");
    let done = app
        .post(
            &format!("{p}/complete"),
            &t.admin_token,
            json!({"outcome": "Pediu proposta", "notes": "Quer 300 Mega"}),
        )
        .await;
    done.assert(200);
    assert_eq!(done.body["status"], "completed");
    assert_eq!(done.body["completed_by"], t.admin_id);
    assert_eq!(done.body["outcome"], "Pediu proposta");
    app.send(
        Method::POST,
        &format!("{p}/complete"),
        Some(&t.admin_token),
        None,
    )
    .await
    .assert_problem(409, "already_completed");
    app.post(
        &format!("{p}/reschedule"),
        &t.admin_token,
        json!({"due_at": d2}),
    )
    .await
    .assert_problem(409, "invalid_state_transition");
    // A completed call marks the lead contacted.
    let lr = app.get(&format!("/api/leads/{l}"), &t.admin_token).await;
    assert!(lr.body["last_contacted_at"].is_string());
    let r = app
        .send(
            Method::POST,
            &format!("{p}/reopen"),
            Some(&t.admin_token),
            None,
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["status"], "pending");
    assert!(r.body["completed_at"].is_null());
    app.send(
        Method::POST,
        &format!("{p}/reopen"),
        Some(&t.admin_token),
        None,
    )
    .await
    .assert_problem(409, "invalid_state_transition");
    // PATCH and If-Match.
    let r = TestApp::finish(
        app.raw(Method::PATCH, &p)
            .bearer_auth(&t.admin_token)
            .header("if-match", "\"1\"")
            .json(&json!({"title": "x"})),
    )
    .await;
    r.assert_problem(412, "precondition_failed");
    let r = app
        .send(
            Method::PATCH,
            &p,
            Some(&t.admin_token),
            Some(json!({"priority": "urgent"})),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["title"], "Ligar");
    assert_eq!(r.body["priority"], "urgent");
    app.delete(&p, &t.admin_token).await.assert(204);
    app.get(&p, &t.admin_token)
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn concurrent_completions_complete_once() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let id = app
        .post("/api/tasks", &t.admin_token, json!({"title": "Uma vez"}))
        .await
        .id();
    let mut hs = vec![];
    for _ in 0..6 {
        let rb = app
            .raw(Method::POST, &format!("/api/tasks/{id}/complete"))
            .bearer_auth(&t.admin_token);
        hs.push(tokio::spawn(async move {
            TestApp::finish(rb).await.status.as_u16()
        }));
    }
    let mut codes = vec![];
    for h in hs {
        codes.push(h.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 200 || *c == 409), "{codes:?}");
}

#[tokio::test]
async fn bad_input_is_problem_json() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let r = app
        .post(
            "/api/tasks",
            &t.admin_token,
            json!({"type": "fax", "priority": "asap", "due_at": "amanhã"}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    let r = app
        .post(
            "/api/tasks",
            &t.admin_token,
            json!({"type": "fax", "priority": "asap"}),
        )
        .await;
    let f = r.error_fields();
    for x in ["title", "type", "priority"] {
        assert!(f.contains(&x.to_string()), "{x} in {f:?}");
    }
    let due = Utc::now().to_rfc3339();
    let later = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let r = app
        .post(
            "/api/tasks",
            &t.admin_token,
            json!({"title": "x", "due_at": due, "remind_at": later}),
        )
        .await;
    assert_eq!(r.error_fields(), vec!["remind_at"]);
    app.post(
        "/api/tasks",
        &t.admin_token,
        json!({"title": "x", "lead_id": uuid::Uuid::now_v7()}),
    )
    .await
    .assert_problem(404, "not_found");
    app.post(
        "/api/tasks",
        &t.admin_token,
        json!({"title": "x", "assignee_id": uuid::Uuid::now_v7()}),
    )
    .await
    .assert_problem(404, "not_found");
    let r = TestApp::finish(
        app.raw(Method::POST, "/api/tasks")
            .bearer_auth(&t.admin_token)
            .header("content-type", "application/json")
            .body("["),
    )
    .await;
    r.assert_problem(400, "malformed_json");
    app.get("/api/tasks?due=someday", &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/tasks?assignee_id=fulano", &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/tasks/nope", &t.admin_token)
        .await
        .assert_problem(400, "invalid_id");
    app.get(
        &format!("/api/tasks/{}", uuid::Uuid::now_v7()),
        &t.admin_token,
    )
    .await
    .assert_problem(404, "not_found");
}

#[tokio::test]
async fn tasks_are_isolated_and_permissioned() {
    let app = spawn_app().await;
    let a = app.create_tenant().await;
    let b = app.create_tenant().await;
    let s1 = app.create_user(&a, "sales").await;
    let s2 = app.create_user(&a, "sales").await;
    let viewer = app.create_user(&a, "viewer").await;
    let manager = app.create_user(&a, "manager").await;
    let mine = app
        .post("/api/tasks", &s1.token, json!({"title": "Do S1"}))
        .await
        .id();
    let theirs = app
        .post("/api/tasks", &s2.token, json!({"title": "Do S2"}))
        .await
        .id();
    // Another tenant.
    let p = format!("/api/tasks/{mine}");
    app.get(&p, &b.admin_token)
        .await
        .assert_problem(404, "not_found");
    app.put(&p, &b.admin_token, json!({"title": "x"}))
        .await
        .assert_problem(404, "not_found");
    app.send(
        Method::PATCH,
        &p,
        Some(&b.admin_token),
        Some(json!({"title": "x"})),
    )
    .await
    .assert_problem(404, "not_found");
    app.delete(&p, &b.admin_token)
        .await
        .assert_problem(404, "not_found");
    for action in ["complete", "reopen"] {
        app.send(
            Method::POST,
            &format!("{p}/{action}"),
            Some(&b.admin_token),
            None,
        )
        .await
        .assert_problem(404, "not_found");
    }
    app.post(
        &format!("{p}/reschedule"),
        &b.admin_token,
        json!({"due_at": Utc::now().to_rfc3339()}),
    )
    .await
    .assert_problem(404, "not_found");
    assert!(ids(&app.get("/api/tasks", &b.admin_token).await).is_empty());
    // A lead of tenant A cannot be linked from tenant B.
    let la = lead(&app, &a.admin_token, "Lead A").await;
    app.post(
        "/api/tasks",
        &b.admin_token,
        json!({"title": "x", "lead_id": la}),
    )
    .await
    .assert_problem(404, "not_found");
    // Sales see only their own.
    assert_eq!(
        ids(&app.get("/api/tasks", &s1.token).await),
        vec![mine.clone()]
    );
    app.get(&format!("/api/tasks/{theirs}"), &s1.token)
        .await
        .assert_problem(404, "not_found");
    app.send(
        Method::POST,
        &format!("/api/tasks/{theirs}/complete"),
        Some(&s1.token),
        None,
    )
    .await
    .assert_problem(404, "not_found");
    app.post(
        "/api/tasks",
        &s1.token,
        json!({"title": "x", "assignee_id": s2.id}),
    )
    .await
    .assert_problem(403, "forbidden");
    app.send(
        Method::PATCH,
        &p,
        Some(&s1.token),
        Some(json!({"assignee_id": s2.id})),
    )
    .await
    .assert_problem(403, "forbidden");
    // Viewers read everything, write nothing.
    assert_eq!(ids(&app.get("/api/tasks", &viewer.token).await).len(), 2);
    app.post("/api/tasks", &viewer.token, json!({"title": "x"}))
        .await
        .assert_problem(403, "forbidden");
    app.send(
        Method::POST,
        &format!("{p}/complete"),
        Some(&viewer.token),
        None,
    )
    .await
    .assert_problem(403, "forbidden");
    // Managers see and reassign everyone's.
    let r = app
        .send(
            Method::PATCH,
            &p,
            Some(&manager.token),
            Some(json!({"assignee_id": s2.id})),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["assignee_id"], s2.id);
    assert!(ids(&app.get("/api/tasks", &s1.token).await).is_empty());
    assert_eq!(
        ids(&app.get("/api/tasks?assignee_id=me", &s2.token).await).len(),
        2
    );
    let r = app
        .post(
            "/api/tasks",
            &manager.token,
            json!({"title": "Para S1", "assignee_id": s1.id}),
        )
        .await;
    r.assert(201);
}

#[tokio::test]
async fn agenda_filters_in_the_tenant_timezone_and_summary() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let tz: chrono_tz::Tz = "America/Sao_Paulo".parse().unwrap();
    let now = Utc::now();
    let local_today = now.with_timezone(&tz).date_naive();
    let at_local = |days: i64, h: u32, m: u32| {
        let d = local_today + chrono::Days::new(0) + Duration::days(days);
        chrono::TimeZone::from_local_datetime(&tz, &d.and_hms_opt(h, m, 0).unwrap())
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    };
    let mk = |title: &str, due: Option<chrono::DateTime<Utc>>, prio: &str| {
        let mut b = json!({"title": title, "priority": prio});
        if let Some(d) = due {
            b["due_at"] = json!(d.to_rfc3339());
        }
        b
    };
    let overdue = app
        .post(
            "/api/tasks",
            &t.admin_token,
            mk("atrasada", Some(now - Duration::hours(30)), "low"),
        )
        .await
        .id();
    // 23:59 local today is still today even though it is tomorrow in UTC.
    let late_today = app
        .post(
            "/api/tasks",
            &t.admin_token,
            mk("hoje tarde", Some(at_local(0, 23, 59)), "normal"),
        )
        .await
        .id();
    let early_tomorrow = app
        .post(
            "/api/tasks",
            &t.admin_token,
            mk("amanhã cedo", Some(at_local(1, 0, 1)), "urgent"),
        )
        .await
        .id();
    let undated = app
        .post("/api/tasks", &t.admin_token, mk("sem data", None, "high"))
        .await
        .id();
    let today = ids(&app.get("/api/tasks?due=today", &t.admin_token).await);
    assert!(
        today.contains(&late_today) && !today.contains(&early_tomorrow),
        "{today:?}"
    );
    let tomorrow = ids(&app.get("/api/tasks?due=tomorrow", &t.admin_token).await);
    assert_eq!(tomorrow, vec![early_tomorrow.clone()]);
    assert_eq!(
        ids(&app.get("/api/tasks?due=overdue", &t.admin_token).await),
        vec![overdue.clone()]
    );
    assert_eq!(
        ids(&app.get("/api/tasks?due=no_date", &t.admin_token).await),
        vec![undated.clone()]
    );
    // Sorted by due date, undated last.
    let all = ids(&app.get("/api/tasks?status=pending", &t.admin_token).await);
    assert_eq!(all.first(), Some(&overdue));
    assert_eq!(all.last(), Some(&undated));
    // Keyset pages cover everything once.
    let p1 = app.get("/api/tasks?limit=2", &t.admin_token).await;
    let c = p1.body["next_cursor"].as_str().unwrap().to_string();
    let p2 = app
        .get(&format!("/api/tasks?limit=2&cursor={c}"), &t.admin_token)
        .await;
    let mut walk = ids(&p1);
    walk.extend(ids(&p2));
    assert_eq!(walk, all);
    let s = app.get("/api/tasks/summary", &t.admin_token).await;
    s.assert(200);
    assert_eq!(s.body["overdue"], 1);
    assert!(s.body["today"].as_u64().unwrap() >= 1);
    assert_eq!(s.body["completed_today"], 0);
    app.send(
        Method::POST,
        &format!("/api/tasks/{late_today}/complete"),
        Some(&t.admin_token),
        None,
    )
    .await
    .assert(200);
    let s = app.get("/api/tasks/summary", &t.admin_token).await;
    assert_eq!(s.body["completed_today"], 1);
    // Another timezone moves the boundary.
    app.put(
        "/api/tenant",
        &t.admin_token,
        json!({"settings": {"timezone": "Asia/Tokyo"}}),
    )
    .await
    .assert(200);
    let _ = app.get("/api/tasks?due=today", &t.admin_token).await;
}

#[tokio::test]
async fn overdue_events_are_emitted_once() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let id = app
        .post(
            "/api/tasks",
            &t.admin_token,
            json!({"title": "Vencida", "due_at": (Utc::now() - Duration::minutes(5)).to_rfc3339()}),
        )
        .await
        .id();
    let first = jtcrm::domains::tasks::overdue::scan(&app.state)
        .await
        .unwrap();
    let second = jtcrm::domains::tasks::overdue::scan(&app.state)
        .await
        .unwrap();
    assert!(first <= 1 && second == 0, "{first} then {second}");
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let n = jtcrm_kernel::events::model::Entity::find()
        .filter(jtcrm_kernel::events::model::Column::EventType.eq("task.overdue"))
        .filter(
            jtcrm_kernel::events::model::Column::EntityId.eq(uuid::Uuid::parse_str(&id).unwrap()),
        )
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(
        n, 1,
        "exactly one task.overdue event (the worker may have emitted it first)"
    );
    let created = jtcrm_kernel::events::model::Entity::find()
        .filter(jtcrm_kernel::events::model::Column::EventType.eq("task.created"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(created, 1);
    // Rescheduling into the past again re-arms the event.
    app.post(
        &format!("/api/tasks/{id}/reschedule"),
        &t.admin_token,
        json!({"due_at": (Utc::now() - Duration::minutes(1)).to_rfc3339()}),
    )
    .await
    .assert(200);
    jtcrm::domains::tasks::overdue::scan(&app.state)
        .await
        .unwrap();
    let n = jtcrm_kernel::events::model::Entity::find()
        .filter(jtcrm_kernel::events::model::Column::EventType.eq("task.overdue"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn notes_and_the_lead_timeline() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let other = app.create_tenant().await;
    let sales = app.create_user(&t, "sales").await;
    let l = lead(&app, &t.admin_token, "Timeline").await;
    let n = app
        .post(
            &format!("/api/leads/{l}/notes"),
            &t.admin_token,
            json!({"body": "Primeira **nota**\ncom detalhes"}),
        )
        .await;
    n.assert(201);
    let note = n.id();
    app.send(
        Method::PATCH,
        &format!("/api/leads/{l}"),
        Some(&t.admin_token),
        Some(json!({"status": "contacted"})),
    )
    .await
    .assert(200);
    let task = app
        .post(
            "/api/tasks",
            &t.admin_token,
            json!({"title": "Visitar", "type": "visit", "lead_id": l}),
        )
        .await
        .id();
    app.post(
        &format!("/api/tasks/{task}/reschedule"),
        &t.admin_token,
        json!({"due_at": (Utc::now() + Duration::days(1)).to_rfc3339()}),
    )
    .await
    .assert(200);
    app.post(
        &format!("/api/tasks/{task}/reschedule"),
        &t.admin_token,
        json!({"due_at": (Utc::now() + Duration::days(2)).to_rfc3339()}),
    )
    .await
    .assert(200);
    app.send(
        Method::POST,
        &format!("/api/tasks/{task}/complete"),
        Some(&t.admin_token),
        None,
    )
    .await
    .assert(200);
    let tl = app
        .get(&format!("/api/leads/{l}/timeline"), &t.admin_token)
        .await;
    tl.assert(200);
    let kinds: Vec<&str> = tl.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "task_completed",
            "task_rescheduled",
            "task_rescheduled",
            "task_created",
            "lead_status_changed",
            "note",
            "lead_created"
        ]
    );
    let first = &tl.body["items"][0];
    assert!(
        first["summary"]
            .as_str()
            .unwrap()
            .starts_with("Tarefa concluída")
    );
    assert_eq!(first["actor"], t.admin_id);
    let times: Vec<&str> = tl.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["occurred_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    // Filter by kind and paginate.
    let only = app
        .get(
            &format!("/api/leads/{l}/timeline?kind=note,lead_created"),
            &t.admin_token,
        )
        .await;
    assert_eq!(only.body["items"].as_array().unwrap().len(), 2);
    let p1 = app
        .get(&format!("/api/leads/{l}/timeline?limit=3"), &t.admin_token)
        .await;
    let c = p1.body["next_cursor"].as_str().unwrap().to_string();
    let p2 = app
        .get(
            &format!("/api/leads/{l}/timeline?limit=10&cursor={c}"),
            &t.admin_token,
        )
        .await;
    assert_eq!(
        p1.body["items"].as_array().unwrap().len() + p2.body["items"].as_array().unwrap().len(),
        7
    );
    // Notes: author or admin edits; others cannot.
    let np = format!("/api/notes/{note}");
    app.put(&np, &sales.token, json!({"body": "hack"}))
        .await
        .assert_problem(404, "not_found");
    let r = app
        .put(&np, &t.admin_token, json!({"body": "Nota editada"}))
        .await;
    r.assert(200);
    let tl = app
        .get(
            &format!("/api/leads/{l}/timeline?kind=note"),
            &t.admin_token,
        )
        .await;
    assert_eq!(tl.body["items"][0]["summary"], "Nota: Nota editada");
    app.put(&np, &t.admin_token, json!({"body": ""}))
        .await
        .assert_problem(422, "validation_failed");
    app.post(&format!("/api/leads/{l}/notes"), &t.admin_token, json!({}))
        .await
        .assert_problem(422, "validation_failed");
    // Isolation.
    app.get(&format!("/api/leads/{l}/timeline"), &other.admin_token)
        .await
        .assert_problem(404, "not_found");
    app.post(
        &format!("/api/leads/{l}/notes"),
        &other.admin_token,
        json!({"body": "x"}),
    )
    .await
    .assert_problem(404, "not_found");
    app.put(&np, &other.admin_token, json!({"body": "x"}))
        .await
        .assert_problem(404, "not_found");
    app.delete(&np, &other.admin_token)
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("/api/leads/{l}/timeline"), &sales.token)
        .await
        .assert_problem(404, "not_found");
    app.delete(&np, &t.admin_token).await.assert(204);
    let tl = app
        .get(
            &format!("/api/leads/{l}/timeline?kind=note"),
            &t.admin_token,
        )
        .await;
    assert!(tl.body["items"].as_array().unwrap().is_empty());
    let _: Value = tl.body;
}
