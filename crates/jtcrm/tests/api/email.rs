//! Email over SMTP against a real local SMTP server (the testkit sink): delivery with the company's
//! identity and Portuguese text, idempotency, retries through an outage and temporary rejections,
//! dead emails on permanent rejections, `not_configured` without SMTP, task reminders, the daily
//! digest, isolation and bad input on the endpoints, and crash recovery without duplicates.

use std::time::{Duration, Instant};

use chrono::Utc;
use jtcrm::domains::email::{self, NewEmail, model::email as email_model};
use jtcrm_kernel::jobs::{self, Backoff, Worker, WorkerOptions, model as job_model};
use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::smtp_sink::SmtpSink;
use jtcrm_testkit::{TestApp, TestTenant, spawn_app_with};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

/// An app sending through `sink`, whose in-process worker polls fast and retries quickly.
async fn app_with(sink: &SmtpSink, run_worker: bool) -> TestApp {
    spawn_app_with(|s| {
        sink.configure(s);
        s.run_worker = run_worker;
        s.worker_poll_ms = 50;
        s.job_backoff_base_ms = 100;
        s.job_backoff_cap_ms = 400;
    })
    .await
}

fn fast_worker() -> WorkerOptions {
    WorkerOptions {
        poll_interval: Duration::from_millis(50),
        concurrency: 4,
        lease: Duration::from_secs(5),
        job_timeout: Duration::from_secs(20),
        shutdown_grace: Duration::from_secs(5),
        backoff: Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(400),
        },
        worker_id: None,
    }
}

fn tid(t: &TestTenant) -> Uuid {
    t.id.parse().unwrap()
}

fn new_email(tenant: Uuid, to: &str, subject: &str, body: &str) -> NewEmail {
    NewEmail {
        tenant_id: tenant,
        to: to.into(),
        subject: subject.into(),
        body_text: body.into(),
        lead_id: None,
        user_id: None,
        kind: "automation",
        idempotency_key: None,
        actor_id: None,
    }
}

async fn queue(app: &TestApp, e: NewEmail) -> Uuid {
    let tx = app.state.begin().await.unwrap();
    let id = email::queue(&*tx, &app.state.settings, e).await.unwrap();
    tx.commit().await.unwrap();
    id
}

async fn row(app: &TestApp, tenant: Uuid, id: Uuid) -> email_model::Model {
    email_model::Entity::find_by_id((tenant, id))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
}

/// Polls the email until `pred` holds; panics with its last state after `secs`.
async fn wait_email(
    app: &TestApp,
    tenant: Uuid,
    id: Uuid,
    secs: u64,
    pred: impl Fn(&email_model::Model) -> bool,
) -> email_model::Model {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let e = row(app, tenant, id).await;
        if pred(&e) {
            return e;
        }
        assert!(Instant::now() < deadline, "timed out; email is {e:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn send_job(app: &TestApp, tenant: Uuid, id: Uuid) -> job_model::Model {
    job_model::Entity::find()
        .filter(
            job_model::Column::IdempotencyKey.eq(format!("{}:{tenant}:{id}", email::send::KIND)),
        )
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
}

/// Polls the email's send job until `pred` holds. The worker records a job's result in its own
/// transaction after the handler's, so the job may still read `running` just after the email
/// row changed.
async fn wait_job(
    app: &TestApp,
    tenant: Uuid,
    id: Uuid,
    secs: u64,
    pred: impl Fn(&job_model::Model) -> bool,
) -> job_model::Model {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let j = send_job(app, tenant, id).await;
        if pred(&j) {
            return j;
        }
        assert!(Instant::now() < deadline, "timed out; job is {j:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn lead(app: &TestApp, token: &str, name: &str) -> String {
    let r = app.post("/api/leads", token, json!({"name": name})).await;
    r.assert(201);
    r.id()
}

#[tokio::test]
async fn queued_email_arrives_with_company_identity_and_accents() {
    let sink = SmtpSink::start_new().await;
    let app = app_with(&sink, true).await;
    let t = app.create_tenant().await;
    app.put(
        "/api/tenant",
        &t.admin_token,
        json!({"settings": {"email_sender_name": "Provedor São João", "email_reply_to": "Vendas@Provedor.com.br"}}),
    )
    .await
    .assert(200);
    let status = app.get("/api/emails/status", &t.admin_token).await;
    status.assert(200);
    assert_eq!(status.body["smtp_configured"], true);
    assert_eq!(status.body["from"], "no-reply@crm.jtcrm.test");
    assert_eq!(status.body["sender_name"], "Provedor São João");
    assert_eq!(status.body["reply_to"], "vendas@provedor.com.br");

    let l = lead(&app, &t.admin_token, "João da Silva").await;
    let subject = "Proposta de conexão — ação válida até sexta";
    let body = "Olá, João!\nSegue a proposta de 300 Mega com instalação grátis.\n.linha que começa com ponto\nAtenciosamente,\nEquipe São João";
    let mut e = new_email(tid(&t), "joao@cliente.com.br", subject, body);
    e.lead_id = Some(l.parse().unwrap());
    e.actor_id = Some(t.admin_id.parse().unwrap());
    let id = queue(&app, e).await;

    let msgs = sink.wait_for(1, Duration::from_secs(15)).await;
    let m = &msgs[0];
    assert_eq!(m.mail_from, "no-reply@crm.jtcrm.test");
    assert_eq!(m.rcpt_to, vec!["joao@cliente.com.br".to_string()]);
    let from = m.header("From").unwrap();
    assert!(from.contains("Provedor São João"), "{from}");
    assert!(from.contains("<no-reply@crm.jtcrm.test>"), "{from}");
    assert_eq!(m.header("Reply-To").unwrap(), "vendas@provedor.com.br");
    assert_eq!(m.header("To").unwrap(), "joao@cliente.com.br");
    assert_eq!(m.subject(), subject);
    let got = m.body_text();
    assert!(got.contains("Olá, João!"), "{got}");
    assert!(got.contains("\n.linha que começa com ponto\n"), "{got}");
    assert!(got.contains("Equipe São João"), "{got}");
    assert!(
        m.raw_header("Content-Type")
            .unwrap()
            .contains("charset=utf-8")
    );

    let sent = wait_email(&app, tid(&t), id, 10, |e| e.status == "sent").await;
    assert_eq!(sent.attempts, 1);
    assert!(sent.sent_at.is_some() && sent.last_error.is_none() && sent.send_claim.is_none());
    assert_eq!(
        sent.provider_message_id.as_deref(),
        m.raw_header("Message-ID").as_deref()
    );
    assert_eq!(
        sent.provider_message_id.unwrap(),
        format!("<{id}@crm.jtcrm.test>")
    );

    let api = app.get(&format!("/api/emails/{id}"), &t.admin_token).await;
    api.assert(200);
    assert_eq!(api.body["status"], "sent");
    assert_eq!(api.body["to"], "joao@cliente.com.br");
    assert_eq!(api.body["subject"], subject);
    assert_eq!(api.body["kind"], "automation");
    assert_eq!(api.body["lead_id"], l);
    let listed = app
        .get(
            &format!("/api/emails?lead_id={l}&status=sent"),
            &t.admin_token,
        )
        .await;
    listed.assert(200);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);

    // The lead's timeline shows the sent email.
    let tl = app
        .get(
            &format!("/api/leads/{l}/timeline?kind=email_sent"),
            &t.admin_token,
        )
        .await;
    tl.assert(200);
    let items = tl.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", tl.text);
    assert_eq!(items[0]["data"]["email_id"], id.to_string());
    assert_eq!(items[0]["actor"], t.admin_id);
    assert!(
        items[0]["summary"]
            .as_str()
            .unwrap()
            .contains("joao@cliente.com.br")
    );
}

#[tokio::test]
async fn same_idempotency_key_sends_once() {
    let sink = SmtpSink::start_new().await;
    let app = app_with(&sink, true).await;
    let t = app.create_tenant().await;
    let mut ids = vec![];
    for _ in 0..3 {
        let mut e = new_email(tid(&t), "ana@cliente.com.br", "Bem-vinda", "Olá, Ana!");
        e.idempotency_key = Some("welcome:ana".into());
        ids.push(queue(&app, e).await);
    }
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    // Both in one transaction too.
    let tx = app.state.begin().await.unwrap();
    for _ in 0..2 {
        let mut e = new_email(tid(&t), "ana@cliente.com.br", "Bem-vinda", "Olá, Ana!");
        e.idempotency_key = Some("welcome:ana".into());
        let id = email::queue(&*tx, &app.state.settings, e).await.unwrap();
        assert_eq!(id, ids[0]);
    }
    tx.commit().await.unwrap();
    // The same key in another company is another email.
    let other = app.create_tenant().await;
    let mut e = new_email(tid(&other), "ana@cliente.com.br", "Bem-vinda", "Olá, Ana!");
    e.idempotency_key = Some("welcome:ana".into());
    let other_id = queue(&app, e).await;
    assert_ne!(other_id, ids[0]);

    sink.wait_for(2, Duration::from_secs(15)).await;
    wait_email(&app, tid(&t), ids[0], 10, |e| e.status == "sent").await;
    app.wait_jobs_settled(&[jtcrm::domains::email::send::KIND], 20)
        .await;
    assert_eq!(sink.count(), 2);
    let n = email_model::Entity::find()
        .filter(email_model::Column::TenantId.eq(tid(&t)))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn smtp_outage_is_retried_and_delivered_when_the_server_returns() {
    let sink = SmtpSink::start_new().await;
    let app = app_with(&sink, true).await;
    let t = app.create_tenant().await;
    sink.stop();
    let id = queue(
        &app,
        new_email(
            tid(&t),
            "carlos@cliente.com.br",
            "Sua proposta",
            "Olá, Carlos!",
        ),
    )
    .await;
    // Several failed attempts while the server is down.
    let failed = wait_email(&app, tid(&t), id, 20, |e| {
        e.status == "failed" && e.attempts >= 2
    })
    .await;
    assert!(failed.last_error.is_some(), "{failed:?}");
    let job = send_job(&app, tid(&t), id).await;
    assert!(job.attempts >= 2, "{job:?}");
    assert_eq!(sink.count(), 0);

    sink.start().await;
    let msgs = sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(msgs[0].subject(), "Sua proposta");
    let sent = wait_email(&app, tid(&t), id, 10, |e| e.status == "sent").await;
    assert!(sent.attempts >= 3, "{sent:?}");
    assert!(sent.last_error.is_none());
    app.wait_jobs_settled(&[jtcrm::domains::email::send::KIND], 20)
        .await;
    assert_eq!(sink.count(), 1);
    wait_job(&app, tid(&t), id, 10, |j| j.status == "succeeded").await;
}

#[tokio::test]
async fn temporary_rejection_is_retried() {
    let sink = SmtpSink::start_new().await;
    let app = app_with(&sink, true).await;
    let t = app.create_tenant().await;
    sink.fail_with(451, "4.3.0 Tente mais tarde");
    let id = queue(
        &app,
        new_email(tid(&t), "bia@cliente.com.br", "Retorno", "Olá!"),
    )
    .await;
    let failed = wait_email(&app, tid(&t), id, 20, |e| {
        e.status == "failed" && e.attempts >= 2
    })
    .await;
    assert!(
        failed.last_error.as_deref().unwrap().contains("451"),
        "{failed:?}"
    );
    sink.accept();
    sink.wait_for(1, Duration::from_secs(20)).await;
    wait_email(&app, tid(&t), id, 10, |e| e.status == "sent").await;
}

#[tokio::test]
async fn permanent_rejection_goes_dead_with_the_error() {
    let sink = SmtpSink::start_new().await;
    let app = app_with(&sink, true).await;
    let t = app.create_tenant().await;
    sink.fail_with(550, "5.1.1 Caixa postal inexistente");
    let id = queue(
        &app,
        new_email(tid(&t), "nao.existe@cliente.com.br", "Oi", "Olá!"),
    )
    .await;
    let dead = wait_email(&app, tid(&t), id, 20, |e| e.status == "dead").await;
    let err = dead.last_error.unwrap();
    assert!(
        err.contains("550") && err.contains("Caixa postal inexistente"),
        "{err}"
    );
    assert_eq!(dead.attempts, 1, "a permanent rejection is not retried");
    assert!(dead.sent_at.is_none());
    wait_job(&app, tid(&t), id, 10, |j| j.status == "dead").await;
    let api = app.get("/api/emails?status=dead", &t.admin_token).await;
    api.assert(200);
    assert_eq!(api.body["items"][0]["id"], id.to_string());
    assert!(
        api.body["items"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("550")
    );
    assert_eq!(sink.count(), 0);
}

#[tokio::test]
async fn without_smtp_emails_are_not_configured_and_never_sent() {
    let sink = SmtpSink::start_new().await;
    // The sink runs, but the app is not pointed at it.
    let app = spawn_app_with(|s| {
        s.worker_poll_ms = 50;
        s.base_domain = Some("crm.exemplo.com.br".into());
    })
    .await;
    let t = app.create_tenant().await;
    let status = app.get("/api/emails/status", &t.admin_token).await;
    status.assert(200);
    assert_eq!(status.body["smtp_configured"], false);
    assert_eq!(status.body["from"], "no-reply@crm.exemplo.com.br");
    assert!(
        status.body["detail"]
            .as_str()
            .unwrap()
            .contains("not_configured")
    );
    let id = queue(
        &app,
        new_email(tid(&t), "ze@cliente.com.br", "Olá", "Olá, Zé!"),
    )
    .await;
    // The status is decided when the e-mail is queued (no job is created).
    let e = row(&app, tid(&t), id).await;
    assert_eq!(e.status, "not_configured");
    assert!(e.sent_at.is_none() && e.provider_message_id.is_none());
    let jobs = job_model::Entity::find()
        .filter(job_model::Column::Kind.eq(email::send::KIND))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(jobs, 0);
    let r = app
        .get("/api/emails?status=not_configured", &t.admin_token)
        .await;
    r.assert(200);
    assert_eq!(r.body["items"][0]["status"], "not_configured");
    let r = app.get("/api/emails?status=sent", &t.admin_token).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);
    assert_eq!(sink.connections(), 0);
}

#[tokio::test]
async fn task_reminder_emails_the_assignee_exactly_once() {
    let sink = SmtpSink::start_new().await;
    let app = app_with(&sink, true).await;
    let t = app.create_tenant().await;
    let seller = app.create_user(&t, "sales").await;
    let other = app.create_user(&t, "sales").await;
    let l = lead(&app, &t.admin_token, "Padaria Pão Quente").await;
    let due = (Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let remind = (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let r = app
        .post(
            "/api/tasks",
            &t.admin_token,
            json!({"title": "Ligar para o Sr. João", "type": "call", "priority": "high", "due_at": due,
                   "remind_at": remind, "assignee_id": seller.id, "lead_id": l}),
        )
        .await;
    r.assert(201);
    let task_id = r.id();
    // A task without a reminder, and one reminding in the future: no email.
    app.post(
        "/api/tasks",
        &t.admin_token,
        json!({"title": "Sem lembrete", "assignee_id": seller.id}),
    )
    .await
    .assert(201);
    let later = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    app.post(
        "/api/tasks",
        &t.admin_token,
        json!({"title": "Depois", "due_at": due, "remind_at": later, "assignee_id": seller.id}),
    )
    .await
    .assert(201);

    // The scan twice (the worker's own scan may run too): one email.
    let a = jtcrm::domains::tasks::reminders::scan(&app.state)
        .await
        .unwrap();
    let b = jtcrm::domains::tasks::reminders::scan(&app.state)
        .await
        .unwrap();
    assert!(a + b <= 1, "{a} {b}");
    let msgs = sink.wait_for(1, Duration::from_secs(15)).await;
    let m = &msgs[0];
    assert_eq!(m.rcpt_to, vec![seller.email.clone()]);
    assert_eq!(m.subject(), "Lembrete: Ligar para o Sr. João");
    let body = m.body_text();
    assert!(body.contains("Olá, User!"), "{body}");
    assert!(body.contains("Tipo: Ligação"), "{body}");
    assert!(body.contains("Prioridade: alta"), "{body}");
    assert!(body.contains("America/Sao_Paulo"), "{body}");
    assert!(body.contains("Lead: Padaria Pão Quente"), "{body}");

    // Editing the task clears `reminded_at`, but the same reminder time never emails twice.
    app.send(
        Method::PATCH,
        &format!("/api/tasks/{task_id}"),
        Some(&t.admin_token),
        Some(json!({"title": "Ligar para o Sr. João (2ª vez)"})),
    )
    .await
    .assert(200);
    jtcrm::domains::tasks::reminders::scan(&app.state)
        .await
        .unwrap();
    app.wait_jobs_settled(&[jtcrm::domains::email::send::KIND], 20)
        .await;
    assert_eq!(sink.count(), 1);
    let reminders = email_model::Entity::find()
        .filter(email_model::Column::TenantId.eq(tid(&t)))
        .filter(email_model::Column::Kind.eq("reminder"))
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(reminders.len(), 1);
    assert_eq!(reminders[0].user_id, Some(seller.id.parse().unwrap()));
    assert_eq!(
        reminders[0].lead_id, None,
        "internal: not in the lead's timeline"
    );

    // The assignee sees their reminder; a colleague does not.
    let mine = app.get("/api/emails?kind=reminder", &seller.token).await;
    mine.assert(200);
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 1);
    let id = mine.body["items"][0]["id"].as_str().unwrap().to_string();
    app.get(&format!("/api/emails/{id}"), &seller.token)
        .await
        .assert(200);
    let theirs = app.get("/api/emails", &other.token).await;
    assert_eq!(theirs.body["items"].as_array().unwrap().len(), 0);
    app.get(&format!("/api/emails/{id}"), &other.token)
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn daily_digest_goes_to_opted_in_users_only() {
    let sink = SmtpSink::start_new().await;
    let app = app_with(&sink, true).await;
    let t = app.create_tenant().await;
    let ana = app.create_user(&t, "sales").await; // opted in, with tasks
    let bruno = app.create_user(&t, "sales").await; // not opted in, with tasks
    let carla = app.create_user(&t, "sales").await; // opted in, without tasks
    let r = app.get("/api/users/me/preferences", &ana.token).await;
    r.assert(200);
    assert_eq!(r.body["daily_digest"], false);
    for u in [&ana, &carla] {
        let r = app
            .put(
                "/api/users/me/preferences",
                &u.token,
                json!({"daily_digest": true}),
            )
            .await;
        r.assert(200);
        assert_eq!(r.body["daily_digest"], true);
    }
    assert_eq!(
        app.get("/api/users/me/preferences", &ana.token).await.body["daily_digest"],
        true
    );
    let now = Utc::now();
    let yesterday = (now - chrono::Duration::days(2)).to_rfc3339();
    for u in [&ana, &bruno] {
        app.post("/api/tasks", &u.token, json!({"title": "Visitar cliente em São Paulo", "type": "visit", "due_at": now.to_rfc3339()}))
            .await
            .assert(201);
    }
    app.post(
        "/api/tasks",
        &ana.token,
        json!({"title": "Enviar proposta atrasada", "type": "email", "due_at": yesterday}),
    )
    .await
    .assert(201);

    let tz = jtcrm::domains::tasks::agenda::tz_of("America/Sao_Paulo");
    let today = now.with_timezone(&tz).date_naive();
    let n = jtcrm::domains::tasks::digest::send_for(&app.state, tid(&t), today)
        .await
        .unwrap();
    assert_eq!(n, 1);
    // A second run (retried job, second worker) queues nothing new.
    jtcrm::domains::tasks::digest::send_for(&app.state, tid(&t), today)
        .await
        .unwrap();
    let msgs = sink.wait_for(1, Duration::from_secs(15)).await;
    app.wait_jobs_settled(&[jtcrm::domains::email::send::KIND], 20)
        .await;
    assert_eq!(sink.count(), 1);
    let m = &msgs[0];
    assert_eq!(m.rcpt_to, vec![ana.email.clone()]);
    assert!(m.subject().starts_with("Sua agenda de "), "{}", m.subject());
    assert!(
        m.subject().contains("1 tarefa para hoje"),
        "{}",
        m.subject()
    );
    let body = m.body_text();
    assert!(body.contains("Tarefas de hoje (1):"), "{body}");
    assert!(body.contains("Visitar cliente em São Paulo"), "{body}");
    assert!(body.contains("Tarefas atrasadas (1):"), "{body}");
    assert!(body.contains("Enviar proposta atrasada"), "{body}");
    let digests = email_model::Entity::find()
        .filter(email_model::Column::Kind.eq("digest"))
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(digests.len(), 1);
    assert_eq!(
        digests[0].idempotency_key.as_deref(),
        Some(format!("digest:{}:{today}", ana.id).as_str())
    );

    // The planner schedules the company's digest for 07:00 local time tomorrow.
    jtcrm::domains::tasks::digest::plan(&app.state)
        .await
        .unwrap();
    let tomorrow = today.succ_opt().unwrap();
    let job = job_model::Entity::find()
        .filter(job_model::Column::IdempotencyKey.eq(format!(
            "{}:{}:{tomorrow}",
            jtcrm::domains::tasks::digest::KIND,
            t.id
        )))
        .one(&app.state.db)
        .await
        .unwrap()
        .expect("tomorrow's digest job");
    assert_eq!(
        job.run_at.with_timezone(&tz).format("%H:%M").to_string(),
        "07:00"
    );
    assert_eq!(job.tenant_id, Some(tid(&t)));
    // Opting out stops it.
    app.put(
        "/api/users/me/preferences",
        &ana.token,
        json!({"daily_digest": false}),
    )
    .await
    .assert(200);
    assert_eq!(
        jtcrm::domains::tasks::digest::send_for(&app.state, tid(&t), tomorrow)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn emails_are_isolated_between_companies_and_users() {
    let sink = SmtpSink::start_new().await;
    let app = app_with(&sink, true).await;
    let a = app.create_tenant().await;
    let b = app.create_tenant().await;
    let owner = app.create_user(&a, "sales").await;
    let colleague = app.create_user(&a, "sales").await;
    let manager = app.create_user(&a, "manager").await;
    let l = lead(&app, &owner.token, "Mercado Bom Preço").await;
    let mut e = new_email(tid(&a), "contato@bompreco.com.br", "Proposta", "Olá!");
    e.lead_id = Some(l.parse().unwrap());
    let id = queue(&app, e).await;
    let path = format!("/api/emails/{id}");

    app.get(&path, &a.admin_token).await.assert(200);
    app.get(&path, &manager.token).await.assert(200);
    app.get(&path, &owner.token).await.assert(200);
    app.get(&path, &colleague.token)
        .await
        .assert_problem(404, "not_found");
    app.get(&path, &b.admin_token)
        .await
        .assert_problem(404, "not_found");
    let listed = |r: &jtcrm_testkit::Resp| r.body["items"].as_array().unwrap().len();
    assert_eq!(listed(&app.get("/api/emails", &owner.token).await), 1);
    assert_eq!(listed(&app.get("/api/emails", &colleague.token).await), 0);
    assert_eq!(listed(&app.get("/api/emails", &b.admin_token).await), 0);
    assert_eq!(
        listed(
            &app.get(&format!("/api/emails?lead_id={l}"), &b.admin_token)
                .await
        ),
        0
    );
    // A lead or user of another company cannot be linked.
    let mut e = new_email(tid(&b), "x@y.com.br", "Oi", "Olá!");
    e.lead_id = Some(l.parse().unwrap());
    let tx = app.state.begin().await.unwrap();
    let err = email::queue(&*tx, &app.state.settings, e)
        .await
        .unwrap_err();
    assert_eq!(err.status().as_u16(), 404);
    assert_eq!(err.errors[0].field, "lead_id");
    let mut e = new_email(tid(&b), "x@y.com.br", "Oi", "Olá!");
    e.user_id = Some(owner.id.parse().unwrap());
    let err = email::queue(&*tx, &app.state.settings, e)
        .await
        .unwrap_err();
    assert_eq!(err.errors[0].field, "user_id");
    drop(tx);
    // Pagination.
    for i in 0..3 {
        queue(
            &app,
            new_email(tid(&a), "p@q.com.br", &format!("N{i}"), "x"),
        )
        .await;
    }
    let p1 = app.get("/api/emails?limit=2", &a.admin_token).await;
    assert_eq!(listed(&p1), 2);
    let cursor = p1.body["next_cursor"].as_str().unwrap();
    let p2 = app
        .get(
            &format!("/api/emails?limit=2&cursor={cursor}"),
            &a.admin_token,
        )
        .await;
    assert_eq!(listed(&p2), 2);
    assert!(p2.body["next_cursor"].is_null());
    assert_eq!(p1.body["items"][0]["subject"], "N2", "newest first");
}

#[tokio::test]
async fn email_endpoints_and_inputs_reject_bad_input() {
    let sink = SmtpSink::start_new().await;
    let app = app_with(&sink, false).await;
    let t = app.create_tenant().await;
    let tok = &t.admin_token;
    app.get("/api/emails?status=enviado", tok)
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(
        app.get("/api/emails?status=enviado", tok)
            .await
            .error_fields(),
        vec!["status"]
    );
    assert_eq!(
        app.get("/api/emails?limit=0", tok).await.error_fields(),
        vec!["limit"]
    );
    assert_eq!(
        app.get("/api/emails?lead_id=abc", tok).await.error_fields(),
        vec!["lead_id"]
    );
    assert_eq!(
        app.get("/api/emails?cursor=***", tok).await.error_fields(),
        vec!["cursor"]
    );
    app.get("/api/emails/not-a-uuid", tok)
        .await
        .assert_problem(400, "invalid_id");
    app.get(&format!("/api/emails/{}", Uuid::now_v7()), tok)
        .await
        .assert_problem(404, "not_found");
    app.send(Method::GET, "/api/emails", None, None)
        .await
        .assert_problem(401, "unauthenticated");

    let r = app
        .put(
            "/api/users/me/preferences",
            tok,
            json!({"daily_digest": "sim"}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["daily_digest"]);
    let r = app.put("/api/users/me/preferences", tok, json!({})).await;
    assert_eq!(r.error_fields(), vec!["daily_digest"]);
    let r = TestApp::finish(
        app.raw(Method::PUT, "/api/users/me/preferences")
            .bearer_auth(tok)
            .header("content-type", "application/json")
            .body("{\"daily_digest\": tru"),
    )
    .await;
    r.assert_problem(400, "malformed_json");

    let r = app
        .put(
            "/api/tenant",
            tok,
            json!({"settings": {"email_reply_to": "não é e-mail", "email_sender_name": "x".repeat(101)}}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    let mut fields = r.error_fields();
    fields.sort();
    assert_eq!(
        fields,
        vec!["settings.email_reply_to", "settings.email_sender_name"]
    );
    // Clearing works, with null or "".
    app.put(
        "/api/tenant",
        tok,
        json!({"settings": {"email_sender_name": "Loja", "email_reply_to": "a@b.com.br"}}),
    )
    .await
    .assert(200);
    let r = app
        .put(
            "/api/tenant",
            tok,
            json!({"settings": {"email_sender_name": null, "email_reply_to": ""}}),
        )
        .await;
    r.assert(200);
    assert!(r.body["settings"]["email_sender_name"].is_null());
    assert!(r.body["settings"]["email_reply_to"].is_null());

    // The producer API validates too.
    let tx = app.state.begin().await.unwrap();
    let mut e = new_email(tid(&t), "sem arroba", "", "x");
    e.idempotency_key = Some(String::new());
    let err = email::queue(&*tx, &app.state.settings, e)
        .await
        .unwrap_err();
    let mut fields: Vec<String> = err.errors.iter().map(|f| f.field.clone()).collect();
    fields.sort();
    assert_eq!(fields, vec!["idempotency_key", "to"]);
    let mut e = new_email(tid(&t), "a@b.com.br", &"x".repeat(301), "x");
    e.kind = "Não";
    let err = email::queue(&*tx, &app.state.settings, e)
        .await
        .unwrap_err();
    let mut fields: Vec<String> = err.errors.iter().map(|f| f.field.clone()).collect();
    fields.sort();
    assert_eq!(fields, vec!["kind", "subject"]);
    // A blank subject still sends, with a placeholder.
    let blank = email::queue(
        &*tx,
        &app.state.settings,
        new_email(tid(&t), "a@b.com.br", " \n ", "x"),
    )
    .await
    .unwrap();
    // A line break in a subject is folded into one line.
    let id = email::queue(
        &*tx,
        &app.state.settings,
        new_email(tid(&t), "a@b.com.br", "Linha 1\r\nBcc: intruso@x.com", "x"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        row(&app, tid(&t), id).await.subject,
        "Linha 1 Bcc: intruso@x.com"
    );
    assert_eq!(row(&app, tid(&t), blank).await.subject, "(sem assunto)");
}

/// A worker claimed the email job and died (its lease runs out, it never finishes); another worker
/// takes the job over and the message is delivered exactly once. Then: a worker that died after
/// the email was sent but before recording the job's result; the next one must not send again.
#[tokio::test]
async fn a_worker_dying_mid_job_never_duplicates_the_email() {
    let sink = SmtpSink::start_new().await;
    let app = app_with(&sink, false).await;
    let t = app.create_tenant().await;
    let id = queue(
        &app,
        new_email(tid(&t), "dora@cliente.com.br", "Contrato", "Olá, Dora!"),
    )
    .await;
    let claimed = jobs::worker::claim(&app.state, "worker-que-morreu", 10, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(claimed.iter().any(|j| j.kind == email::send::KIND));
    let w = Worker::spawn(app.state.clone(), jtcrm::app::registry(), fast_worker());
    sink.wait_for(1, Duration::from_secs(20)).await;
    let sent = wait_email(&app, tid(&t), id, 10, |e| e.status == "sent").await;
    assert_eq!(sent.attempts, 1, "the dead worker never talked to SMTP");
    let job = wait_job(&app, tid(&t), id, 10, |j| j.status == "succeeded").await;
    assert_eq!(job.attempts, 2);

    // Simulate a crash after the email was marked sent but before the job result was recorded:
    // the job is `running` with an expired lease; the worker reclaims it and skips the email.
    job_model::Entity::update_many()
        .col_expr(job_model::Column::Status, Expr::value("running"))
        .col_expr(job_model::Column::LockedBy, Expr::value("outro-que-morreu"))
        .col_expr(
            job_model::Column::LockedUntil,
            Expr::value(Utc::now() - chrono::Duration::seconds(1)),
        )
        .col_expr(
            job_model::Column::FinishedAt,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .filter(job_model::Column::Id.eq(job.id))
        .exec(&app.state.db)
        .await
        .unwrap();
    jobs::wake_workers();
    wait_job(&app, tid(&t), id, 10, |j| {
        j.status == "succeeded" && j.attempts == 3
    })
    .await;
    app.wait_jobs_settled(&[jtcrm::domains::email::send::KIND], 20)
        .await;
    assert_eq!(sink.count(), 1);
    assert_eq!(row(&app, tid(&t), id).await.attempts, 1);
    w.shutdown().await;
}

#[tokio::test]
async fn two_workers_deliver_each_email_exactly_once() {
    let sink = SmtpSink::start_new().await;
    let app = app_with(&sink, false).await;
    let t = app.create_tenant().await;
    let mut ids = vec![];
    for i in 0..20 {
        ids.push(
            queue(
                &app,
                new_email(
                    tid(&t),
                    &format!("c{i}@cliente.com.br"),
                    &format!("Mensagem {i}"),
                    "Olá!",
                ),
            )
            .await,
        );
    }
    let w1 = Worker::spawn(app.state.clone(), jtcrm::app::registry(), fast_worker());
    let w2 = Worker::spawn(app.state.clone(), jtcrm::app::registry(), fast_worker());
    let msgs = sink.wait_for(20, Duration::from_secs(60)).await;
    for id in &ids {
        wait_email(&app, tid(&t), *id, 20, |e| e.status == "sent").await;
    }
    app.wait_jobs_settled(&[jtcrm::domains::email::send::KIND], 20)
        .await;
    assert_eq!(sink.count(), 20);
    let mut mids: Vec<String> = msgs
        .iter()
        .map(|m| m.raw_header("Message-ID").unwrap())
        .collect();
    mids.sort();
    mids.dedup();
    assert_eq!(mids.len(), 20);
    w1.shutdown().await;
    w2.shutdown().await;
}

#[tokio::test]
async fn email_routes_are_documented() {
    let api = serde_json::to_value(jtcrm::http::openapi()).unwrap();
    for (path, methods) in [
        ("/api/emails", &["get"][..]),
        ("/api/emails/{id}", &["get"]),
        ("/api/emails/status", &["get"]),
        ("/api/users/me/preferences", &["get", "put"]),
    ] {
        for m in methods {
            let op = &api["paths"][path][m];
            assert!(op.is_object(), "{m} {path} missing from OpenAPI");
            assert_eq!(op["tags"][0], "email", "{m} {path}");
            assert!(op["responses"]["200"].is_object(), "{m} {path}");
        }
    }
    for schema in [
        "Email",
        "EmailStatus",
        "EmailStatusInfo",
        "UserPreferences",
        "UserPreferencesInput",
    ] {
        assert!(
            api["components"]["schemas"][schema].is_object(),
            "{schema} missing"
        );
    }
    let settings = &api["components"]["schemas"]["TenantSettings"]["properties"];
    assert!(settings["email_sender_name"].is_object() && settings["email_reply_to"].is_object());
}
