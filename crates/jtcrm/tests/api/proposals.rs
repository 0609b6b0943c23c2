//! Proposals (issue 13): templates checked at save, the default telecom templates, proposals from
//! an opportunity, numbering under concurrency, revisions, sending by e-mail (SMTP sink), the
//! customer's public link (viewed once, expired, wrong, revoked), acceptance evidence and the
//! opportunity moved, PDFs (checked with pdftotext), permissions, isolation and bad input.

use std::collections::HashSet;
use std::time::Duration;

use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::smtp_sink::SmtpSink;
use jtcrm_testkit::{Resp, TestApp, TestTenant, spawn_app, spawn_app_with};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

const P: &str = "/api/proposals";

async fn patch(app: &TestApp, path: &str, token: &str, body: Value) -> Resp {
    app.send(Method::PATCH, path, Some(token), Some(body)).await
}

/// A tenant with a lead (with e-mail and CNPJ), two products and a deal with both.
pub(crate) async fn setup(app: &TestApp) -> (TestTenant, String, String) {
    let t = app.create_tenant().await;
    let tok = &t.admin_token;
    let p1 = app
        .post(
            "/api/products",
            tok,
            json!({"name": "Link Dedicado 100 Mbps", "sku": "LD-100", "category": "dedicated_internet",
                   "billing": "monthly", "monthly_price_cents": 123456, "setup_price_cents": 50000}),
        )
        .await;
    p1.assert(201);
    let p2 = app
        .post(
            "/api/products",
            tok,
            json!({"name": "PABX em nuvem — 10 ramais", "sku": "PABX-10", "category": "cloud_pabx",
                   "billing": "monthly", "monthly_price_cents": 29990}),
        )
        .await;
    p2.assert(201);
    let lead = app
        .post(
            "/api/leads",
            tok,
            json!({"name": "João da Conceição", "email": "joao@cliente.com.br", "company": "Açaí & Cia Ltda",
                   "cnpj": "11222333000181", "city": "São Paulo", "state": "SP", "cep": "01310100"}),
        )
        .await;
    lead.assert(201);
    let lead = lead.id();
    let opp = app
        .post(
            "/api/pipelines/opportunities",
            tok,
            json!({"title": "Açaí — link e PABX", "lead_id": lead, "term_months": 24,
                   "items": [{"product_id": p1.id(), "quantity": 1}, {"product_id": p2.id(), "quantity": 2}]}),
        )
        .await;
    opp.assert(201);
    (t, lead, opp.id())
}

/// Polls the proposal until it answers `want` (the tenant snapshot with the visibility setting
/// is cached for a few seconds); returns the last status after 15 s.
async fn poll_status(app: &TestApp, token: &str, id: &str, want: u16) -> u16 {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let s = app.get(&format!("{P}/{id}"), token).await.status.as_u16();
        if s == want || std::time::Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create(app: &TestApp, token: &str, opp: &str) -> Value {
    let r = app.post(P, token, json!({"opportunity_id": opp})).await;
    r.assert(201);
    r.body
}

pub(crate) fn token_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_string()
}

async fn send(app: &TestApp, token: &str, id: &str) -> Value {
    let r = app.post(&format!("{P}/{id}/send"), token, json!({})).await;
    r.assert(200);
    r.body
}

pub(crate) fn pdftotext(bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("jtcrm-pdf-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("doc.pdf");
    std::fs::write(&path, bytes).unwrap();
    // For a look at the layout: JTCRM_DUMP_PDF=/some/dir keeps a copy.
    if let Ok(keep) = std::env::var("JTCRM_DUMP_PDF") {
        let _ = std::fs::copy(
            &path,
            std::path::Path::new(&keep).join(format!("{}.pdf", uuid::Uuid::now_v7())),
        );
    }
    let out = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) must be installed");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "pdftotext failed");
    String::from_utf8_lossy(&out.stdout).to_string()
}

pub(crate) async fn get_bytes(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
) -> (u16, Vec<u8>, String) {
    let mut rb = app.raw(Method::GET, path);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, r.bytes().await.unwrap().to_vec(), ct)
}

#[tokio::test]
async fn new_tenants_get_default_telecom_templates() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    for (path, word) in [
        ("/api/proposals/templates", "fidelização"),
        ("/api/contracts/templates", "comodato"),
    ] {
        let r = app.get(path, &t.admin_token).await;
        r.assert(200);
        let items = r.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{}", r.text);
        assert_eq!(items[0]["is_default"], true);
        let body = items[0]["body"].as_str().unwrap();
        assert!(body.contains(word), "{path}");
        assert!(body.contains("SLA"), "{path}");
    }
}

#[tokio::test]
async fn templates_are_checked_at_save_with_line_and_column() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let tok = &t.admin_token;
    let path = "/api/proposals/templates";
    let r = app
        .post(
            path,
            tok,
            json!({"name": "X", "body": "linha 1\n{% if x %}sem fim"}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["code"], "template_syntax", "{}", r.text);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("linha")
    );
    let r = app
        .post(
            path,
            tok,
            json!({"name": "X", "body": "ok\n  {{ totals.mrr_cents | dinheiro }}"}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["code"], "unknown_filter");
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("linha 2, coluna 25"),
        "{}",
        r.text
    );
    // A good one: CRUD, the default moves, contracts have their own list.
    let r = app
        .post(
            path,
            tok,
            json!({"name": "Curta", "body": "# {{ proposal.number }}\n{{ customer.name }} {{ totals.tcv_cents | brl }} {{ totals.tcv_cents | extenso }}\n{{ items_table }}", "is_default": true}),
        )
        .await;
    r.assert(201);
    let id = r.id();
    assert!(r.header("location").unwrap().ends_with(&id));
    let list = app.get(path, tok).await;
    let defaults: Vec<_> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["is_default"] == true)
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(defaults, vec![id.clone()]);
    let r = app
        .put(
            &format!("{path}/{id}"),
            tok,
            json!({"name": "Curta 2", "body": "{{ x | nope }}"}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    let r = app
        .put(&format!("{path}/{id}"), tok, json!({"name": "Curta 2", "body": "{{ customer.name }}\n{{ items_table }}", "is_default": true}))
        .await;
    r.assert(200);
    assert_eq!(r.body["version"], 2);
    // Not a contract template.
    app.get(&format!("/api/contracts/templates/{id}"), tok)
        .await
        .assert_problem(404, "not_found");
    app.delete(&format!("{path}/{id}"), tok).await.assert(204);
    app.get(&format!("{path}/{id}"), tok)
        .await
        .assert_problem(404, "not_found");
    // Sellers read but do not write templates.
    let seller = app.create_user(&t, "sales").await;
    app.get(path, &seller.token).await.assert(200);
    app.post(path, &seller.token, json!({"name": "S", "body": "x"}))
        .await
        .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn the_whole_flow_send_view_accept_with_evidence_pdf_and_timeline() {
    let sink = SmtpSink::start_new().await;
    let app = spawn_app_with(|s| {
        sink.configure(s);
        s.run_worker = true;
        s.worker_poll_ms = 50;
    })
    .await;
    let (t, lead, opp) = setup(&app).await;
    let tok = &t.admin_token;
    // The tenant moves accepted deals to "Negociação".
    let pipe = app.get("/api/pipelines", tok).await.body["items"][0].clone();
    let stage = pipe["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Negociação")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.send(
        Method::PUT,
        "/api/tenant",
        Some(tok),
        Some(json!({"settings": {"proposal_accept_stage_id": stage}})),
    )
    .await
    .assert(200);

    let p = create(&app, tok, &opp).await;
    let id = p["id"].as_str().unwrap().to_string();
    assert!(p["number"].as_str().unwrap().starts_with("PROP-20"));
    assert_eq!(p["status"], "draft");
    assert_eq!(p["items"].as_array().unwrap().len(), 2);
    assert_eq!(p["mrr_cents"], 123456 + 2 * 29990);
    assert_eq!(p["recipient_email"], "joao@cliente.com.br");
    assert_eq!(p["lead_id"], lead.as_str());

    // The draft's PDF.
    let (s, pdf, ct) = get_bytes(&app, &format!("{P}/{id}/pdf"), Some(tok)).await;
    assert_eq!(s, 200);
    assert_eq!(ct, "application/pdf");
    let text = pdftotext(&pdf);
    assert!(text.contains("João da Conceição"), "{text}");
    assert!(text.contains("Açaí & Cia Ltda"), "{text}");
    assert!(text.contains("11.222.333/0001-81"), "{text}");
    assert!(text.contains("R$ 1.234,56"), "{text}");
    assert!(text.contains("Página 1 de"), "{text}");
    assert!(text.contains("fidelização"), "{text}");

    let sent = send(&app, tok, &id).await;
    assert_eq!(sent["proposal"]["status"], "sent");
    let url = sent["public_url"].as_str().unwrap().to_string();
    let token = token_of(&url);
    let msgs = sink.wait_for(1, Duration::from_secs(20)).await;
    assert!(
        msgs[0].body_text().contains(&url),
        "{}",
        msgs[0].body_text()
    );
    assert!(msgs[0].subject().contains(p["number"].as_str().unwrap()));

    // The page: HTML, marks viewed once.
    let page = app
        .raw(Method::GET, &format!("/p/{token}"))
        .header("user-agent", "Celular/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("Açaí &amp; Cia Ltda"), "{html}");
    assert!(html.contains(&format!("/p/{token}/pdf")));
    assert!(html.contains("viewport"));
    let got = app.get(&format!("{P}/{id}"), tok).await;
    assert_eq!(got.body["status"], "viewed");
    assert_eq!(got.body["viewed"]["user_agent"], "Celular/1.0");
    let first_view = got.body["viewed"]["at"].clone();
    app.get(&format!("/api/public/proposals/{token}"), tok)
        .await
        .assert(200);
    let again = app.get(&format!("{P}/{id}"), tok).await;
    assert_eq!(again.body["viewed"]["at"], first_view);

    // Public PDF.
    let (s, pdf, _) = get_bytes(&app, &format!("/p/{token}/pdf"), None).await;
    assert_eq!(s, 200);
    assert!(pdftotext(&pdf).contains("João da Conceição"));

    // Accept: a bad CPF is 422; a good one records the evidence.
    let r = app
        .send(
            Method::POST,
            &format!("/api/public/proposals/{token}/accept"),
            None,
            Some(json!({"name": "João da Conceição", "cpf": "111.111.111-11"})),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "cpf");
    let r = app
        .send(
            Method::POST,
            &format!("/api/public/proposals/{token}/accept"),
            None,
            Some(json!({"name": "João da Conceição", "cpf": "52998224725"})),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["status"], "accepted");
    let sha = r.body["content_sha256"].as_str().unwrap().to_string();
    let got = app.get(&format!("{P}/{id}"), tok).await.body;
    assert_eq!(got["status"], "accepted");
    let d = &got["decision"];
    assert_eq!(d["name"], "João da Conceição");
    assert_eq!(d["cpf"], "529.982.247-25");
    assert_eq!(d["document_sha256"], sha.as_str());
    assert!(
        d["ip"].as_str().is_some_and(|ip| ip.contains("127.0.0.1")),
        "{d}"
    );
    assert!(d["at"].is_string());
    // The hash is the frozen version's.
    let v = app.get(&format!("{P}/{id}/versions/1"), tok).await;
    v.assert(200);
    assert_eq!(v.body["content_sha256"], sha.as_str());
    // Twice: 409; reject after accept: 409.
    app.send(
        Method::POST,
        &format!("/api/public/proposals/{token}/reject"),
        None,
        Some(json!({"reason": "mudei de ideia"})),
    )
    .await
    .assert_problem(409, "invalid_state_transition");
    // The deal moved to the configured stage.
    let o = app
        .get(&format!("/api/pipelines/opportunities/{opp}"), tok)
        .await;
    assert_eq!(o.body["stage_id"], stage.as_str(), "{}", o.text);
    // Timeline of the lead and the deal; events in the outbox.
    for path in [
        format!("/api/leads/{lead}/timeline"),
        format!("/api/pipelines/opportunities/{opp}/timeline"),
    ] {
        let tl = app.get(&path, tok).await;
        tl.assert(200);
        let kinds: HashSet<String> = tl.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect();
        for k in ["proposal_sent", "proposal_viewed", "proposal_accepted"] {
            assert!(kinds.contains(k), "{path}: {kinds:?}");
        }
    }
    let evs: HashSet<String> = jtcrm_kernel::events::model::Entity::find()
        .filter(
            jtcrm_kernel::events::model::Column::EntityId.eq(opp.parse::<uuid::Uuid>().unwrap()),
        )
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    for e in ["proposal.sent", "proposal.viewed", "proposal.accepted"] {
        assert!(evs.contains(e), "{evs:?}");
    }
    // Accepted proposals are kept.
    app.delete(&format!("{P}/{id}"), tok)
        .await
        .assert_problem(409, "invalid_state_transition");
}

#[tokio::test]
async fn numbering_has_no_gaps_or_duplicates_under_concurrency() {
    let app = spawn_app().await;
    let (t, _, opp) = setup(&app).await;
    let mut handles = vec![];
    for _ in 0..20 {
        let client = app.client.clone();
        let url = app.url(P);
        let tok = t.admin_token.clone();
        let opp = opp.clone();
        handles.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(tok)
                .json(&json!({"opportunity_id": opp}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 201);
            let b: Value = r.json().await.unwrap();
            b["number"].as_str().unwrap().to_string()
        }));
    }
    let mut numbers = vec![];
    for h in handles {
        numbers.push(h.await.unwrap());
    }
    let mut seqs: Vec<u32> = numbers
        .iter()
        .map(|n| n.rsplit('-').next().unwrap().parse().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>(), "{numbers:?}");
    assert!(numbers.iter().all(|n| n.len() == "PROP-2026-0001".len()));
    // Another tenant starts at 1.
    let (t2, _, opp2) = setup(&app).await;
    let p = create(&app, &t2.admin_token, &opp2).await;
    assert!(p["number"].as_str().unwrap().ends_with("-0001"));
}

#[tokio::test]
async fn editing_after_sending_opens_a_new_version_and_revokes_the_link() {
    let app = spawn_app().await;
    let (t, _, opp) = setup(&app).await;
    let tok = &t.admin_token;
    let p = create(&app, tok, &opp).await;
    let id = p["id"].as_str().unwrap();
    // Drafts are edited in place.
    let r = patch(&app, &format!("{P}/{id}"), tok, json!({"title": "Nova"})).await;
    r.assert(200);
    assert_eq!(r.body["revision"], 1);
    let sent = send(&app, tok, id).await;
    let token = token_of(sent["public_url"].as_str().unwrap());
    let ver = sent["proposal"]["version"].as_i64().unwrap();
    // Stale If-Match.
    let r = app
        .raw(Method::PATCH, &format!("{P}/{id}"))
        .bearer_auth(tok)
        .header("if-match", "1")
        .json(&json!({"notes": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 412);
    let r = app
        .raw(Method::PATCH, &format!("{P}/{id}"))
        .bearer_auth(tok)
        .header("if-match", ver.to_string())
        .json(&json!({"items": [{"name": "Banda larga 500 Mega", "quantity": 3, "monthly_price_cents": 9990, "setup_price_cents": 0, "discount_percent": 10}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["revision"], 2);
    assert_eq!(b["status"], "draft");
    assert_eq!(b["mrr_cents"], 26973);
    assert_eq!(b["link_revoked"], true);
    // The old link is gone; version 1 is readable and unchanged.
    app.send(
        Method::GET,
        &format!("/api/public/proposals/{token}"),
        None,
        None,
    )
    .await
    .assert_problem(404, "not_found");
    let vs = app.get(&format!("{P}/{id}/versions"), tok).await;
    vs.assert(200);
    assert_eq!(vs.body.as_array().unwrap().len(), 1);
    assert_eq!(vs.body[0]["revision"], 1);
    assert_eq!(vs.body[0]["items"].as_array().unwrap().len(), 2);
    let sent2 = send(&app, tok, id).await;
    assert_eq!(sent2["proposal"]["revision"], 2);
    let vs = app.get(&format!("{P}/{id}/versions"), tok).await;
    assert_eq!(vs.body.as_array().unwrap().len(), 2);
    let v2 = app.get(&format!("{P}/{id}/versions/2"), tok).await;
    assert_eq!(v2.body["items"][0]["name"], "Banda larga 500 Mega");
    assert_ne!(v2.body["content_sha256"], vs.body[0]["content_sha256"]);
    app.get(&format!("{P}/{id}/versions/3"), tok)
        .await
        .assert_problem(404, "not_found");
    // Revoke: 404 on every public endpoint.
    let token2 = token_of(sent2["public_url"].as_str().unwrap());
    app.post(&format!("{P}/{id}/revoke-link"), tok, json!({}))
        .await
        .assert(200);
    for path in [
        format!("/p/{token2}"),
        format!("/p/{token2}/pdf"),
        format!("/api/public/proposals/{token2}"),
    ] {
        let r = app.send(Method::GET, &path, None, None).await;
        r.assert_problem(404, "not_found");
    }
}

#[tokio::test]
async fn public_link_wrong_expired_and_rejected() {
    let app = spawn_app().await;
    let (t, _, opp) = setup(&app).await;
    let tok = &t.admin_token;
    let p = create(&app, tok, &opp).await;
    let id = p["id"].as_str().unwrap().to_string();
    let sent = send(&app, tok, &id).await;
    let token = token_of(sent["public_url"].as_str().unwrap());
    // Wrong tokens: same 404, nothing leaked.
    let mut wrong = token.clone();
    wrong.pop();
    wrong.push(if token.ends_with('A') { 'B' } else { 'A' });
    let other_tenant = format!("{}{}", uuid::Uuid::now_v7().simple(), &token[32..]);
    for bad in [wrong.as_str(), "x", other_tenant.as_str(), &"0".repeat(75)] {
        let r = app
            .send(
                Method::GET,
                &format!("/api/public/proposals/{bad}"),
                None,
                None,
            )
            .await;
        r.assert_problem(404, "not_found");
        assert!(!r.text.contains(&id));
        let r = app
            .send(
                Method::POST,
                &format!("/api/public/proposals/{bad}/accept"),
                None,
                Some(json!({"name": "A", "cpf": "52998224725"})),
            )
            .await;
        r.assert_problem(404, "not_found");
    }
    // Reject with a reason (required).
    app.send(
        Method::POST,
        &format!("/api/public/proposals/{token}/reject"),
        None,
        Some(json!({})),
    )
    .await
    .assert_problem(422, "validation_failed");
    let r = app
        .send(
            Method::POST,
            &format!("/api/public/proposals/{token}/reject"),
            None,
            Some(json!({"reason": "Preço alto"})),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["status"], "rejected");
    let got = app.get(&format!("{P}/{id}"), tok).await.body;
    assert_eq!(got["decision"]["reason"], "Preço alto");
    // Rejected proposals are not edited.
    patch(&app, &format!("{P}/{id}"), tok, json!({"title": "x"}))
        .await
        .assert_problem(409, "invalid_state_transition");

    // Expired: validity in the past (set directly), the link is 404 and the status reads expired.
    let p2 = create(&app, tok, &opp).await;
    let id2 = p2["id"].as_str().unwrap().to_string();
    let sent = send(&app, tok, &id2).await;
    let token2 = token_of(sent["public_url"].as_str().unwrap());
    {
        use jtcrm::domains::proposals::model::proposal;
        use sea_orm::sea_query::Expr;
        proposal::Entity::update_many()
            .col_expr(
                proposal::Column::ValidUntil,
                Expr::value(chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap()),
            )
            .col_expr(
                proposal::Column::LinkExpiresAt,
                Expr::value(chrono::Utc::now() - chrono::Duration::days(1)),
            )
            .filter(proposal::Column::Id.eq(id2.parse::<uuid::Uuid>().unwrap()))
            .exec(&app.state.db)
            .await
            .unwrap();
    }
    app.send(Method::GET, &format!("/p/{token2}"), None, None)
        .await
        .assert_problem(404, "not_found");
    let got = app.get(&format!("{P}/{id2}"), tok).await.body;
    assert_eq!(got["status"], "expired");
    let list = app.get(&format!("{P}?status=expired"), tok).await;
    let ids: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![id2.as_str()]);
    app.post(&format!("{P}/{id2}/send"), tok, json!({}))
        .await
        .assert_problem(409, "invalid_state_transition");
}

#[tokio::test]
async fn sellers_see_their_own_and_other_tenants_see_nothing() {
    let app = spawn_app().await;
    let (t, lead, opp) = setup(&app).await;
    let tok = &t.admin_token;
    let p = create(&app, tok, &opp).await;
    let id = p["id"].as_str().unwrap().to_string();
    // A seller with their own deal.
    let seller = app.create_user(&t, "sales").await;
    let prod = app
        .post(
            "/api/products",
            tok,
            json!({"name": "Banda larga", "sku": "BL", "category": "broadband", "billing": "monthly", "monthly_price_cents": 9990}),
        )
        .await
        .id();
    let own = app
        .post(
            "/api/pipelines/opportunities",
            &seller.token,
            json!({"title": "Meu", "items": [{"product_id": prod}]}),
        )
        .await;
    own.assert(201);
    let mine = create(&app, &seller.token, &own.id()).await;
    let list = app.get(P, &seller.token).await;
    let ids: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![mine["id"].as_str().unwrap()]);
    app.get(&format!("{P}/{id}"), &seller.token)
        .await
        .assert_problem(404, "not_found");
    // With team visibility the seller sees the colleague's proposal too.
    app.put(
        "/api/tenant",
        tok,
        json!({"settings": {"team_visibility": true}}),
    )
    .await
    .assert(200);
    assert_eq!(poll_status(&app, &seller.token, &id, 200).await, 200);
    app.put(
        "/api/tenant",
        tok,
        json!({"settings": {"team_visibility": false}}),
    )
    .await
    .assert(200);
    assert_eq!(poll_status(&app, &seller.token, &id, 404).await, 404);
    // The admin's deal is not the seller's either.
    app.post(P, &seller.token, json!({"opportunity_id": opp}))
        .await
        .assert_problem(404, "not_found");
    // The admin sees both; filters.
    let all = app.get(&format!("{P}?include_total=true"), tok).await;
    assert_eq!(all.body["total"], 2);
    let by_lead = app.get(&format!("{P}?lead_id={lead}"), tok).await;
    assert_eq!(by_lead.body["items"].as_array().unwrap().len(), 1);
    let by_owner = app.get(&format!("{P}?owner_id={}", seller.id), tok).await;
    assert_eq!(by_owner.body["items"].as_array().unwrap().len(), 1);
    let by_opp = app
        .get(&format!("{P}?opportunity_id={opp}&status=draft"), tok)
        .await;
    assert_eq!(by_opp.body["items"].as_array().unwrap().len(), 1);
    let paged = app.get(&format!("{P}?limit=1"), tok).await;
    let cursor = paged.body["next_cursor"].as_str().unwrap();
    let next = app.get(&format!("{P}?limit=1&cursor={cursor}"), tok).await;
    assert_eq!(next.body["items"].as_array().unwrap().len(), 1);
    assert_ne!(next.body["items"][0]["id"], paged.body["items"][0]["id"]);

    // Another tenant: 404 everywhere, nothing in lists, foreign ids in bodies are not found.
    let other = app.create_tenant().await;
    let o = &other.admin_token;
    let list = app.get(P, o).await;
    assert!(list.body["items"].as_array().unwrap().is_empty());
    let tpl = app.get("/api/proposals/templates", tok).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ctpl = app.get("/api/contracts/templates", tok).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        app.get("/api/contracts/templates", o).await.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["id"] != ctpl.as_str())
    );
    for (m, path, body) in [
        (Method::GET, format!("{P}/{id}"), None),
        (
            Method::PUT,
            format!("{P}/{id}"),
            Some(json!({"title": "x", "valid_until": "2099-01-01", "items": []})),
        ),
        (
            Method::PATCH,
            format!("{P}/{id}"),
            Some(json!({"title": "x"})),
        ),
        (Method::DELETE, format!("{P}/{id}"), None),
        (Method::POST, format!("{P}/{id}/send"), Some(json!({}))),
        (
            Method::POST,
            format!("{P}/{id}/revoke-link"),
            Some(json!({})),
        ),
        (Method::GET, format!("{P}/{id}/versions"), None),
        (Method::GET, format!("{P}/{id}/versions/1"), None),
        (Method::GET, format!("{P}/{id}/pdf"), None),
        (Method::GET, format!("/api/proposals/templates/{tpl}"), None),
        (
            Method::PUT,
            format!("/api/proposals/templates/{tpl}"),
            Some(json!({"name": "x", "body": "y"})),
        ),
        (
            Method::DELETE,
            format!("/api/proposals/templates/{tpl}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/contracts/templates/{ctpl}"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/contracts/templates/{ctpl}"),
            Some(json!({"name": "x", "body": "y"})),
        ),
        (
            Method::DELETE,
            format!("/api/contracts/templates/{ctpl}"),
            None,
        ),
        (
            Method::POST,
            P.to_string(),
            Some(json!({"opportunity_id": opp})),
        ),
    ] {
        let r = app.send(m.clone(), &path, Some(o), body).await;
        r.assert_problem(404, "not_found");
        assert!(!r.text.contains(&t.id), "{m} {path}");
    }
    // Another tenant's template in a body.
    let (_, _, opp2) = {
        let lead2 = app.post("/api/leads", o, json!({"name": "L"})).await.id();
        let prod2 = app
            .post(
                "/api/products",
                o,
                json!({"name": "VoIP", "sku": "V1", "category": "voip", "billing": "monthly", "monthly_price_cents": 5000}),
            )
            .await
            .id();
        let opp2 = app
            .post(
                "/api/pipelines/opportunities",
                o,
                json!({"title": "T", "lead_id": lead2, "items": [{"product_id": prod2}]}),
            )
            .await
            .id();
        ((), (), opp2)
    };
    app.post(P, o, json!({"opportunity_id": opp2, "template_id": tpl}))
        .await
        .assert_problem(404, "not_found");
    // The first tenant's proposal is untouched.
    app.get(&format!("{P}/{id}"), tok).await.assert(200);
}

#[tokio::test]
async fn bad_input_gets_problem_json() {
    let app = spawn_app().await;
    let (t, _, opp) = setup(&app).await;
    let tok = &t.admin_token;
    // Malformed JSON, arrays, wrong types.
    let r = app
        .raw(Method::POST, P)
        .bearer_auth(tok)
        .header("content-type", "application/json")
        .body("{\"opportunity_id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("problem+json")
    );
    for body in [
        json!([]),
        json!({"opportunity_id": 12}),
        json!({"opportunity_id": "not-a-uuid"}),
        json!({"opportunity_id": opp, "valid_until": "31/12/2026"}),
        json!({"opportunity_id": opp, "valid_until": "2001-01-01"}),
        json!({}),
    ] {
        let r = app.post(P, tok, body.clone()).await;
        assert!(
            matches!(r.status.as_u16(), 400 | 422),
            "{body}: {} {}",
            r.status,
            r.text
        );
        assert!(r.body["code"].is_string(), "{body}: {}", r.text);
    }
    app.post(P, tok, json!({"opportunity_id": uuid::Uuid::now_v7()}))
        .await
        .assert_problem(404, "not_found");
    let p = create(&app, tok, &opp).await;
    let id = p["id"].as_str().unwrap();
    for body in [
        json!({"items": [{"quantity": 0}]}),
        json!({"items": [{"name": "x", "discount_percent": 101}]}),
        json!({"items": {"name": "x"}}),
        json!({"term_months": 0}),
        json!({"recipient_email": "nao-e-email"}),
        json!({"status": "accepted"}),
    ] {
        let r = patch(&app, &format!("{P}/{id}"), tok, body.clone()).await;
        assert!(
            matches!(r.status.as_u16(), 400 | 422),
            "{body}: {} {}",
            r.status,
            r.text
        );
    }
    app.get(&format!("{P}/not-a-uuid"), tok)
        .await
        .assert_problem(400, "invalid_id");
    app.get(&format!("{P}?status=bogus"), tok)
        .await
        .assert_problem(422, "validation_failed");
    app.post(&format!("{P}/{id}/send"), tok, json!({"to": "x"}))
        .await
        .assert_problem(422, "validation_failed");
    // Idempotent create.
    let key = uuid::Uuid::now_v7().to_string();
    let mut numbers = vec![];
    for _ in 0..2 {
        let r = app
            .raw(Method::POST, P)
            .bearer_auth(tok)
            .header("idempotency-key", &key)
            .json(&json!({"opportunity_id": opp}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let b: Value = r.json().await.unwrap();
        numbers.push(b["number"].as_str().unwrap().to_string());
    }
    assert_eq!(numbers[0], numbers[1]);
}

#[tokio::test]
async fn the_public_endpoints_are_rate_limited_per_ip() {
    let app = spawn_app().await;
    let mut last = 0;
    for _ in 0..70 {
        let r = app
            .send(Method::GET, "/api/public/proposals/nope", None, None)
            .await;
        last = r.status.as_u16();
        if last == 429 {
            assert!(r.header("retry-after").is_some());
            break;
        }
        assert_eq!(last, 404);
    }
    assert_eq!(last, 429);
}

#[tokio::test]
async fn the_html_page_forms_accept_a_proposal() {
    let app = spawn_app().await;
    let (t, _, opp) = setup(&app).await;
    let tok = &t.admin_token;
    let p = create(&app, tok, &opp).await;
    let id = p["id"].as_str().unwrap().to_string();
    let sent = send(&app, tok, &id).await;
    let token = token_of(sent["public_url"].as_str().unwrap());
    let page = app
        .raw(Method::GET, &format!("/p/{token}"))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("form-action 'self'") && !csp.contains("script-src"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("action=\"/p/{token}/accept\"")));
    // JSON to the form endpoint: 415.
    let r = app
        .send(
            Method::POST,
            &format!("/p/{token}/accept"),
            None,
            Some(json!({"name": "A", "cpf": "52998224725"})),
        )
        .await;
    r.assert_problem(415, "unsupported_media_type");
    // A bad CPF: the page again, with the message, 422.
    let r = app
        .raw(Method::POST, &format!("/p/{token}/accept"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=Maria+Souza&cpf=123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    assert!(r.text().await.unwrap().contains("CPF"));
    let r = app
        .raw(Method::POST, &format!("/p/{token}/accept"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=Maria+Souza&cpf=529.982.247-25")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Proposta aceita"), "{html}");
    assert!(!html.contains("action=\"/p/"), "no forms once answered");
    let got = app.get(&format!("{P}/{id}"), tok).await.body;
    assert_eq!(got["status"], "accepted");
    assert_eq!(got["decision"]["name"], "Maria Souza");
}
