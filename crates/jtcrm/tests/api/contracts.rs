//! Contracts (issue 13): from an accepted proposal or an opportunity, numbering under concurrency,
//! sending through the `email_link` provider (plan-gated, SMTP sink), signer links (wrong CPF,
//! signed once, expired by a new revision), the frozen PDF hash, the last signature winning the
//! deal, signatures recorded from outside with evidence (managers only, audited), activation,
//! the early-termination fee, the tenant logo, permissions, isolation and bad input.

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::smtp_sink::SmtpSink;
use jtcrm_testkit::{Resp, TestApp, TestTenant, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::proposals::{get_bytes, pdftotext, setup, token_of};

const C: &str = "/api/contracts";
const BOUNDARY: &str = "jtcrm-test-boundary-7d3f";
/// A 1×1 PNG.
const PNG_B64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";
const CPF: &str = "529.982.247-25";

fn png() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(PNG_B64)
        .unwrap()
}

fn sha_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A tenant on `plan` with the deal of `proposals::setup` moved there.
async fn setup_on(app: &TestApp, plan: &str) -> (TestTenant, String, String) {
    let (t, lead, opp) = setup(app).await;
    if plan != "starter" {
        let sa = app.superadmin_token().await;
        app.put(
            &format!("/api/super-admin/tenants/{}", t.id),
            &sa,
            json!({"subscription_plan": plan}),
        )
        .await
        .assert(200);
    }
    (t, lead, opp)
}

/// Waits until the tenant's plan change is visible (the tenant snapshot is cached a few seconds).
async fn wait_feature(app: &TestApp, token: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = app.get("/api/tenant", token).await;
        if r.body["plan"]["features"]["e_signature"] == true
            || r.body["features"]["e_signature"] == true
            || std::time::Instant::now() > deadline
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn accepted_proposal(app: &TestApp, tok: &str, opp: &str) -> String {
    let p = app
        .post("/api/proposals", tok, json!({"opportunity_id": opp}))
        .await;
    p.assert(201);
    let id = p.id();
    let s = app
        .post(&format!("/api/proposals/{id}/send"), tok, json!({}))
        .await;
    s.assert(200);
    let token = token_of(s.body["public_url"].as_str().unwrap());
    app.send(
        Method::POST,
        &format!("/api/public/proposals/{token}/accept"),
        None,
        Some(json!({"name": "João da Conceição", "cpf": CPF})),
    )
    .await
    .assert(200);
    id
}

fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (name, filename, bytes) in parts {
        b.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match filename {
            Some(f) => b.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                    .as_bytes(),
            ),
            None => b.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        b.extend_from_slice(bytes);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

async fn sign_external(
    app: &TestApp,
    token: &str,
    id: &str,
    parts: &[(&str, Option<&str>, &[u8])],
) -> Resp {
    TestApp::finish(
        app.raw(Method::POST, &format!("{C}/{id}/sign"))
            .bearer_auth(token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(multipart(parts)),
    )
    .await
}

async fn timeline_kinds(app: &TestApp, tok: &str, opp: &str) -> Vec<String> {
    let r = app
        .get(&format!("/api/pipelines/opportunities/{opp}/timeline"), tok)
        .await;
    r.assert(200);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn from_accepted_proposal_signed_by_link_wins_the_deal() {
    let sink = SmtpSink::start_new().await;
    let app = spawn_app_with(|s| {
        sink.configure(s);
        s.run_worker = true;
        s.worker_poll_ms = 50;
    })
    .await;
    let (t, lead, opp) = setup_on(&app, "professional").await;
    let tok = &t.admin_token;
    wait_feature(&app, tok).await;
    let pid = accepted_proposal(&app, tok, &opp).await;
    let before_emails = sink.wait_for(1, Duration::from_secs(20)).await.len();

    let r = app
        .post(
            C,
            tok,
            json!({"proposal_id": pid, "start_date": "2027-01-01",
                   "equipment": [{"name": "Roteador Wi-Fi 6", "quantity": 1, "serial": "SN123"}],
                   "early_termination": {"percent_of_remaining": 30}}),
        )
        .await;
    r.assert(201);
    let c = r.body.clone();
    let id = r.id();
    assert!(
        c["number"].as_str().unwrap().starts_with("CTR-20"),
        "{}",
        r.text
    );
    assert_eq!(c["status"], "draft");
    assert_eq!(c["proposal_id"], pid.as_str());
    assert_eq!(c["lead_id"], lead.as_str());
    assert_eq!(c["term_months"], 24);
    assert_eq!(c["mrr_cents"], 123456 + 2 * 29990);
    assert_eq!(c["tcv_cents"], (123456 + 2 * 29990) * 24 + 50000);
    assert_eq!(c["end_date"], "2028-12-31");
    // The acceptor is the default signer, with the CPF they typed and the proposal's e-mail.
    assert_eq!(c["signers"].as_array().unwrap().len(), 1);
    assert_eq!(c["signers"][0]["name"], "João da Conceição");
    assert_eq!(c["signers"][0]["cpf"], CPF);
    assert_eq!(c["signers"][0]["email"], "joao@cliente.com.br");
    // Add a witness.
    let r = app
        .put(
            &format!("{C}/{id}"),
            tok,
            json!({"title": c["title"], "sla": c["sla"], "start_date": "2027-01-01",
                   "equipment": [{"name": "Roteador Wi-Fi 6", "quantity": 1, "serial": "SN123"}],
                   "signers": [{"name": "João da Conceição", "email": "joao@cliente.com.br", "cpf": CPF},
                               {"name": "Maria Testemunha", "email": "maria@cliente.com.br"}]}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["signers"].as_array().unwrap().len(), 2);

    let s = app.post(&format!("{C}/{id}/send"), tok, json!({})).await;
    s.assert(200);
    assert_eq!(s.body["contract"]["status"], "sent");
    let sha = s.body["contract"]["document_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sha.len(), 64);
    let links = s.body["links"].as_array().unwrap().clone();
    assert_eq!(links.len(), 2);
    let t1 = token_of(links[0]["url"].as_str().unwrap());
    let t2 = token_of(links[1]["url"].as_str().unwrap());
    let msgs = sink
        .wait_for(before_emails + 2, Duration::from_secs(20))
        .await;
    let bodies: Vec<String> = msgs.iter().map(|m| m.body_text()).collect();
    assert!(
        bodies
            .iter()
            .any(|b| b.contains(links[0]["url"].as_str().unwrap()))
    );
    assert!(
        bodies
            .iter()
            .any(|b| b.contains(links[1]["url"].as_str().unwrap()))
    );

    // The frozen PDF: its bytes hash to document_sha256, the text is the contract's.
    let (st, pdf, ct) = get_bytes(&app, &format!("{C}/{id}/pdf"), Some(tok)).await;
    assert_eq!((st, ct.as_str()), (200, "application/pdf"));
    assert_eq!(sha_hex(&pdf), sha);
    let text = pdftotext(&pdf);
    for want in [
        c["number"].as_str().unwrap(),
        "Açaí & Cia Ltda",
        "11.222.333/0001-81",
        "fidelização de 24 meses",
        "30%",
        "Roteador Wi-Fi 6 (nº de série SN123)",
        "Página 1 de",
        "R$ 1.834,36",
    ] {
        assert!(text.contains(want), "{want} not in:\n{text}");
    }
    // The signer's public PDF is the same bytes.
    let (st, pub_pdf, _) = get_bytes(&app, &format!("/c/{t1}/pdf"), None).await;
    assert_eq!(st, 200);
    assert_eq!(sha_hex(&pub_pdf), sha);

    // The page.
    let page = app
        .raw(Method::GET, &format!("/c/{t1}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Assinar contrato"), "{html}");
    assert!(html.contains(&sha));

    // Wrong CPF for this signer; then the right one.
    let r = app
        .send(
            Method::POST,
            &format!("/api/public/contracts/{t1}/sign"),
            None,
            Some(json!({"name": "João", "cpf": "111.444.777-35"})),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["code"], "cpf_mismatch", "{}", r.text);
    let r = app
        .raw(Method::POST, &format!("/api/public/contracts/{t1}/sign"))
        .header("user-agent", "Celular/2.0")
        .json(&json!({"name": "João da Conceição", "cpf": "52998224725"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let got = app.get(&format!("{C}/{id}"), tok).await;
    assert_eq!(got.body["status"], "partially_signed");
    let ev = &got.body["signers"][0]["signature"];
    assert_eq!(ev["method"], "email_link");
    assert_eq!(ev["cpf"], CPF);
    assert_eq!(ev["user_agent"], "Celular/2.0");
    assert_eq!(ev["document_sha256"], sha.as_str());
    assert!(ev["ip"].as_str().is_some());
    // Signing twice is refused; the link stays readable.
    app.send(
        Method::POST,
        &format!("/api/public/contracts/{t1}/sign"),
        None,
        Some(json!({"name": "João", "cpf": CPF})),
    )
    .await
    .assert_problem(409, "invalid_state_transition");
    let opp_now = app
        .get(&format!("/api/pipelines/opportunities/{opp}"), tok)
        .await;
    assert_eq!(opp_now.body["status"], "open");

    // The witness signs through the HTML form: the contract is signed and the deal won.
    let r = app
        .raw(Method::POST, &format!("/c/{t2}/sign"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=Maria+Testemunha&cpf=111.444.777-35")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let got = app.get(&format!("{C}/{id}"), tok).await;
    assert_eq!(got.body["status"], "signed", "{}", got.text);
    assert!(got.body["signed_at"].as_str().is_some());
    let opp_now = app
        .get(&format!("/api/pipelines/opportunities/{opp}"), tok)
        .await;
    assert_eq!(opp_now.body["status"], "won", "{}", opp_now.text);
    let kinds = timeline_kinds(&app, tok, &opp).await;
    for k in [
        "contract_created",
        "contract_sent",
        "contract_signature",
        "contract_signed",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing in {kinds:?}");
    }
    // Sent again after signing: refused; a signed contract is not deleted.
    app.post(&format!("{C}/{id}/send"), tok, json!({}))
        .await
        .assert_problem(409, "invalid_state_transition");
    app.delete(&format!("{C}/{id}"), tok)
        .await
        .assert_problem(409, "invalid_state_transition");
    // Activation starts the term.
    let r = app
        .post(
            &format!("{C}/{id}/activate"),
            tok,
            json!({"start_date": "2027-02-01"}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["end_date"], "2029-01-31");
}

#[tokio::test]
async fn a_new_revision_voids_links_and_keeps_the_frozen_version() {
    let app = spawn_app().await;
    let (t, _lead, opp) = setup_on(&app, "professional").await;
    let tok = &t.admin_token;
    wait_feature(&app, tok).await;
    let r = app
        .post(
            C,
            tok,
            json!({"opportunity_id": opp, "signers": [{"name": "Cliente", "email": "c@x.com.br"}]}),
        )
        .await;
    r.assert(201);
    let id = r.id();
    let s = app
        .post(&format!("{C}/{id}/send"), tok, json!({"deadline_days": 10}))
        .await;
    s.assert(200);
    let sha1 = s.body["contract"]["document_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let tk = token_of(s.body["links"][0]["url"].as_str().unwrap());
    app.send(
        Method::GET,
        &format!("/api/public/contracts/{tk}"),
        None,
        None,
    )
    .await
    .assert(200);
    // Stale If-Match is refused.
    let r = app
        .send(
            Method::PUT,
            &format!("{C}/{id}"),
            Some(tok),
            Some(json!({"title": "Novo", "sla": "99%"})),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["revision"], 2);
    assert_eq!(r.body["status"], "draft");
    assert!(r.body["document_sha256"].is_null());
    assert_eq!(r.body["signers"][0]["status"], "pending");
    // The old link is dead.
    app.send(
        Method::GET,
        &format!("/api/public/contracts/{tk}"),
        None,
        None,
    )
    .await
    .assert_problem(404, "not_found");
    let v = app.get(&format!("{C}/{id}/versions"), tok).await;
    v.assert(200);
    assert_eq!(v.body.as_array().unwrap().len(), 1);
    assert_eq!(v.body[0]["revision"], 1);
    assert_eq!(v.body[0]["document_sha256"], sha1.as_str());
    let (st, old_pdf, _) = get_bytes(&app, &format!("{C}/{id}/versions/1/pdf"), Some(tok)).await;
    assert_eq!(st, 200);
    assert_eq!(sha_hex(&old_pdf), sha1);
    let (st, _, _) = get_bytes(&app, &format!("{C}/{id}/versions/2/pdf"), Some(tok)).await;
    assert_eq!(st, 404);
    // Sending revision 2 freezes a different document.
    let s2 = app.post(&format!("{C}/{id}/send"), tok, json!({})).await;
    s2.assert(200);
    let sha2 = s2.body["contract"]["document_sha256"].as_str().unwrap();
    assert_ne!(sha2, sha1);
    // Stale version on PUT.
    app.send(
        Method::PUT,
        &format!("{C}/{id}"),
        Some(tok),
        Some(json!({"title": "X", "sla": "Y"})),
    )
    .await
    .assert(200);
    let r = TestApp::finish(
        app.raw(Method::PUT, &format!("{C}/{id}"))
            .bearer_auth(tok)
            .header("if-match", "\"1\"")
            .json(&json!({"title": "X", "sla": "Y"})),
    )
    .await;
    r.assert_problem(412, "precondition_failed");
}

#[tokio::test]
async fn external_signature_with_evidence_managers_only_and_plan_gate() {
    let app = spawn_app().await;
    // Starter: no electronic signature.
    let (t, _lead, opp) = setup(&app).await;
    let tok = &t.admin_token;
    let r = app
        .post(C, tok, json!({"opportunity_id": opp, "signers": [{"name": "Cliente Papel", "email": "p@x.com.br"}]}))
        .await;
    r.assert(201);
    let id = r.id();
    let r = app.post(&format!("{C}/{id}/send"), tok, json!({})).await;
    r.assert_problem(403, "feature_not_in_plan");
    // A seller may not record a signature.
    let seller = app.create_user(&t, "sales").await;
    let png = png();
    sign_external(
        &app,
        &seller.token,
        &id,
        &[("evidence", Some("a.png"), &png)],
    )
    .await
    .assert_problem(403, "forbidden");
    // Bad evidence, missing evidence, not multipart, bad CPF.
    let r = sign_external(&app, tok, &id, &[("evidence", Some("a.txt"), b"texto")]).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "evidence");
    let r = sign_external(&app, tok, &id, &[("name", None, b"Fulano")]).await;
    r.assert_problem(422, "validation_failed");
    let r = app
        .post(&format!("{C}/{id}/sign"), tok, json!({"x": 1}))
        .await;
    r.assert_problem(415, "unsupported_media_type");
    let r = sign_external(
        &app,
        tok,
        &id,
        &[("evidence", Some("a.png"), &png), ("cpf", None, b"123")],
    )
    .await;
    r.assert_problem(422, "validation_failed");
    let r = sign_external(
        &app,
        tok,
        &id,
        &[
            ("evidence", Some("a.png"), &png),
            ("signed_at", None, b"2099-01-01"),
        ],
    )
    .await;
    r.assert_problem(422, "validation_failed");
    let r = sign_external(
        &app,
        tok,
        &id,
        &[
            ("evidence", Some("a.png"), &png),
            (
                "signer_id",
                None,
                uuid::Uuid::now_v7().to_string().as_bytes(),
            ),
        ],
    )
    .await;
    r.assert_problem(404, "not_found");
    // A manager records it: the draft is frozen, signed, the deal won.
    let manager = app.create_user(&t, "manager").await;
    let r = sign_external(
        &app,
        &manager.token,
        &id,
        &[
            ("evidence", Some("assinatura papel.png"), &png),
            ("cpf", None, CPF.as_bytes()),
            ("signed_at", None, b"2026-12-01"),
        ],
    )
    .await;
    r.assert(200);
    assert_eq!(r.body["status"], "signed", "{}", r.text);
    assert_eq!(r.body["revision"], 1);
    assert_eq!(r.body["document_sha256"].as_str().unwrap().len(), 64);
    let sig = &r.body["signers"][0]["signature"];
    assert_eq!(sig["method"], "external");
    assert_eq!(sig["cpf"], CPF);
    assert_eq!(sig["recorded_by"], manager.id.as_str());
    let signer_id = r.body["signers"][0]["id"].as_str().unwrap().to_string();
    let (st, bytes, ct) = get_bytes(
        &app,
        &format!("{C}/{id}/signers/{signer_id}/evidence"),
        Some(tok),
    )
    .await;
    assert_eq!((st, ct.as_str()), (200, "image/png"));
    assert_eq!(bytes, png);
    let opp_now = app
        .get(&format!("/api/pipelines/opportunities/{opp}"), tok)
        .await;
    assert_eq!(opp_now.body["status"], "won");
    // Audited.
    let audit = app.get("/api/audit-logs?entity_type=contract", tok).await;
    audit.assert(200);
    assert!(
        audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "record_signature"),
        "{}",
        audit.text
    );
    // Again: this signer already signed.
    sign_external(&app, tok, &id, &[("evidence", Some("a.png"), &png)])
        .await
        .assert_problem(409, "invalid_state_transition");
}

#[tokio::test]
async fn cancelling_computes_the_early_termination_fee() {
    let app = spawn_app().await;
    let (t, _lead, opp) = setup(&app).await;
    let tok = &t.admin_token;
    let r = app
        .post(C, tok, json!({"opportunity_id": opp, "term_months": 12, "early_termination": {"percent_of_remaining": 40},
                              "signers": [{"name": "Cliente"}]}))
        .await;
    r.assert(201);
    let id = r.id();
    let mrr = r.body["mrr_cents"].as_i64().unwrap();
    assert_eq!(mrr, 123456 + 2 * 29990);
    // Preview before start: the whole term.
    let f = app.get(&format!("{C}/{id}/termination-fee"), tok).await;
    f.assert(200);
    assert_eq!(f.body["months_remaining"], 12);
    sign_external(
        &app,
        tok,
        &id,
        &[("evidence", Some("a.pdf"), b"%PDF-1.4 evidencia")],
    )
    .await
    .assert(200);
    app.post(
        &format!("{C}/{id}/activate"),
        tok,
        json!({"start_date": "2026-01-15"}),
    )
    .await
    .assert(200);
    // On 2026-06-20: 5 whole months elapsed (Feb 15 … Jun 15), 7 left: 40 % of 7 × MRR.
    let f = app
        .get(&format!("{C}/{id}/termination-fee?on=2026-06-20"), tok)
        .await;
    f.assert(200);
    assert_eq!(f.body["months_elapsed"], 5);
    assert_eq!(f.body["months_remaining"], 7);
    let want = (mrr * 7 * 40 + 50) / 100;
    assert_eq!(f.body["fee_cents"], want);
    // A seller cannot cancel; a reason is required.
    let seller = app.create_user(&t, "sales").await;
    app.post(
        &format!("{C}/{id}/cancel"),
        &seller.token,
        json!({"reason": "x"}),
    )
    .await
    .assert_problem(403, "forbidden");
    app.post(&format!("{C}/{id}/cancel"), tok, json!({}))
        .await
        .assert_problem(422, "validation_failed");
    app.post(
        &format!("{C}/{id}/cancel"),
        tok,
        json!({"reason": "x", "effective_date": "2025-12-01"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    let r = app
        .post(
            &format!("{C}/{id}/cancel"),
            tok,
            json!({"reason": "Mudança de endereço", "effective_date": "2026-06-20"}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(r.body["termination_fee_cents"], want);
    app.post(
        &format!("{C}/{id}/cancel"),
        tok,
        json!({"reason": "de novo"}),
    )
    .await
    .assert_problem(409, "invalid_state_transition");
    let kinds = timeline_kinds(&app, tok, &opp).await;
    assert!(kinds.iter().any(|k| k == "contract_cancelled"), "{kinds:?}");
    // An unsigned contract is withdrawn without fee.
    let r = app.post(C, tok, json!({"opportunity_id": opp})).await;
    let id2 = r.id();
    let r = app
        .post(
            &format!("{C}/{id2}/cancel"),
            tok,
            json!({"reason": "Desistência"}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["termination_fee_cents"], 0);
}

#[tokio::test]
async fn numbering_has_no_gaps_or_duplicates_under_concurrency() {
    let app = spawn_app().await;
    let (t, _lead, opp) = setup(&app).await;
    let tok = t.admin_token.clone();
    let mut handles = vec![];
    for _ in 0..8 {
        let client = app.client.clone();
        let url = app.url(C);
        let tok = tok.clone();
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
            let v: Value = r.json().await.unwrap();
            v["number"].as_str().unwrap().to_string()
        }));
    }
    let mut numbers = HashSet::new();
    for h in handles {
        numbers.insert(h.await.unwrap());
    }
    let seqs: HashSet<u32> = numbers
        .iter()
        .map(|n| n.rsplit('-').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(seqs, (1..=8).collect::<HashSet<u32>>(), "{numbers:?}");
}

#[tokio::test]
async fn sellers_see_their_own_and_other_tenants_get_404() {
    let app = spawn_app().await;
    let (a, _lead, opp) = setup(&app).await;
    let tok = &a.admin_token;
    let pid = accepted_proposal(&app, tok, &opp).await;
    let r = app.post(C, tok, json!({"proposal_id": pid})).await;
    r.assert(201);
    let id = r.id();
    sign_external(&app, tok, &id, &[("evidence", Some("a.png"), &png())])
        .await
        .assert(200);
    let signer = app.get(&format!("{C}/{id}"), tok).await.body["signers"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let b = app.create_tenant().await;
    let bt = &b.admin_token;
    for path in [
        format!("{C}/{id}"),
        format!("{C}/{id}/pdf"),
        format!("{C}/{id}/versions"),
        format!("{C}/{id}/versions/1/pdf"),
        format!("{C}/{id}/termination-fee"),
        format!("{C}/{id}/signers/{signer}/evidence"),
    ] {
        app.get(&path, bt).await.assert_problem(404, "not_found");
    }
    app.put(&format!("{C}/{id}"), bt, json!({"title": "x", "sla": "y"}))
        .await
        .assert_problem(404, "not_found");
    app.delete(&format!("{C}/{id}"), bt)
        .await
        .assert_problem(404, "not_found");
    for action in ["send", "activate", "cancel"] {
        app.post(&format!("{C}/{id}/{action}"), bt, json!({"reason": "x"}))
            .await
            .assert_problem(404, "not_found");
    }
    sign_external(&app, bt, &id, &[("evidence", Some("a.png"), &png())])
        .await
        .assert_problem(404, "not_found");
    let list = app.get(C, bt).await;
    list.assert(200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 0);
    // Ids of A in B's bodies: not found, naming the field.
    let r = app.post(C, bt, json!({"proposal_id": pid})).await;
    r.assert_problem(404, "not_found");
    let r = app.post(C, bt, json!({"opportunity_id": opp})).await;
    r.assert_problem(404, "not_found");
    // B's logo is B's.
    app.get("/api/tenant/logo", bt)
        .await
        .assert_problem(404, "not_found");

    // Sellers: their own only.
    let s1 = app.create_user(&a, "sales").await;
    let s2 = app.create_user(&a, "sales").await;
    let lead = app
        .post(
            "/api/leads",
            &s1.token,
            json!({"name": "Lead do S1", "email": "s1@x.com.br"}),
        )
        .await;
    lead.assert(201);
    let o = app
        .post(
            "/api/pipelines/opportunities",
            &s1.token,
            json!({"title": "Deal S1", "lead_id": lead.id(), "term_months": 12}),
        )
        .await;
    o.assert(201);
    let r = app
        .post(C, &s1.token, json!({"opportunity_id": o.id()}))
        .await;
    r.assert(201);
    let cid = r.id();
    app.get(&format!("{C}/{cid}"), &s1.token).await.assert(200);
    app.get(&format!("{C}/{cid}"), &s2.token)
        .await
        .assert_problem(404, "not_found");
    let l2 = app.get(C, &s2.token).await;
    assert_eq!(l2.body["items"].as_array().unwrap().len(), 0);
    let l1 = app.get(C, &s1.token).await;
    assert_eq!(l1.body["items"].as_array().unwrap().len(), 1);
    let all = app.get(&format!("{C}?status=signed"), tok).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_input_gets_problem_json() {
    let app = spawn_app().await;
    let (t, _lead, opp) = setup(&app).await;
    let tok = &t.admin_token;
    let raw = |body: &'static str| {
        TestApp::finish(
            app.raw(Method::POST, C)
                .bearer_auth(tok)
                .header("content-type", "application/json")
                .body(body),
        )
    };
    raw("{nope").await.assert_problem(400, "malformed_json");
    raw("[]").await.assert_problem(422, "validation_failed");
    app.post(C, tok, json!({}))
        .await
        .assert_problem(422, "validation_failed");
    app.post(C, tok, json!({"opportunity_id": opp, "proposal_id": opp}))
        .await
        .assert_problem(422, "validation_failed");
    app.post(C, tok, json!({"opportunity_id": 12}))
        .await
        .assert_problem(422, "validation_failed");
    app.post(C, tok, json!({"opportunity_id": uuid::Uuid::now_v7()}))
        .await
        .assert_problem(404, "not_found");
    for (body, field) in [
        (
            json!({"opportunity_id": opp, "term_months": 0}),
            "term_months",
        ),
        (
            json!({"opportunity_id": opp, "early_termination": {"percent_of_remaining": 101}}),
            "early_termination.percent_of_remaining",
        ),
        (
            json!({"opportunity_id": opp, "signers": [{"name": "A", "cpf": "123"}]}),
            "signers[0].cpf",
        ),
        (
            json!({"opportunity_id": opp, "signers": [{"name": "A", "email": "não"}]}),
            "signers[0].email",
        ),
        (
            json!({"opportunity_id": opp, "signers": [{"email": "a@b.com"}]}),
            "signers[0].name",
        ),
        (
            json!({"opportunity_id": opp, "equipment": [{"name": "R", "quantity": 0}]}),
            "equipment[0].quantity",
        ),
    ] {
        let r = app.post(C, tok, body).await;
        r.assert_problem(422, "validation_failed");
        assert!(
            r.error_fields().contains(&field.to_string()),
            "{field}: {}",
            r.text
        );
    }
    // A draft proposal does not become a contract.
    let p = app
        .post("/api/proposals", tok, json!({"opportunity_id": opp}))
        .await;
    app.post(C, tok, json!({"proposal_id": p.id()}))
        .await
        .assert_problem(409, "invalid_state_transition");
    // Unknown ids and bad paths.
    let unknown = uuid::Uuid::now_v7();
    app.get(&format!("{C}/{unknown}"), tok)
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("{C}/nao-e-uuid"), tok)
        .await
        .assert_problem(400, "invalid_id");
    app.get(&format!("{C}?status=talvez"), tok)
        .await
        .assert_problem(422, "validation_failed");
    app.get(
        &format!("{C}?created_from=2026-12-10&created_to=2026-12-01"),
        tok,
    )
    .await
    .assert_problem(422, "validation_failed");
    let r = app.post(C, tok, json!({"opportunity_id": opp})).await;
    let id = r.id();
    app.get(&format!("{C}/{id}/termination-fee?on=ontem"), tok)
        .await
        .assert_problem(422, "validation_failed");
    app.post(&format!("{C}/{id}/activate"), tok, json!({}))
        .await
        .assert_problem(409, "invalid_state_transition");
    // No signers to send to (and the plan gate first on starter).
    app.post(&format!("{C}/{id}/send"), tok, json!({"deadline_days": 0}))
        .await
        .assert_problem(403, "feature_not_in_plan");
    // Oversized body.
    let big = "x".repeat(3 * 1024 * 1024);
    app.post(C, tok, json!({"opportunity_id": opp, "sla": big}))
        .await
        .assert_problem(413, "payload_too_large");
    // Public links: wrong tokens.
    for tkn in ["x", &format!("{}{}", t.id.replace('-', ""), "A".repeat(43))] {
        app.send(
            Method::GET,
            &format!("/api/public/contracts/{tkn}"),
            None,
            None,
        )
        .await
        .assert_problem(404, "not_found");
        let r = app
            .raw(Method::GET, &format!("/c/{tkn}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404);
    }
}

#[tokio::test]
async fn the_tenant_logo_is_admin_only_and_printed_on_documents() {
    let app = spawn_app().await;
    let (t, _lead, opp) = setup(&app).await;
    let tok = &t.admin_token;
    app.get("/api/tenant/logo", tok)
        .await
        .assert_problem(404, "not_found");
    let put = |token: String, body: Vec<u8>| {
        TestApp::finish(
            app.raw(Method::PUT, "/api/tenant/logo")
                .bearer_auth(token)
                .header("content-type", "image/png")
                .body(body),
        )
    };
    let seller = app.create_user(&t, "sales").await;
    put(seller.token.clone(), png())
        .await
        .assert_problem(403, "forbidden");
    put(tok.clone(), b"GIF89a".to_vec())
        .await
        .assert_problem(422, "validation_failed");
    TestApp::finish(
        app.raw(Method::PUT, "/api/tenant/logo")
            .bearer_auth(tok)
            .header("content-type", "text/plain")
            .body(png()),
    )
    .await
    .assert_problem(415, "unsupported_media_type");
    put(tok.clone(), vec![0u8; 2 * 1024 * 1024])
        .await
        .assert_problem(413, "payload_too_large");
    let r = put(tok.clone(), png()).await;
    r.assert(200);
    assert_eq!(r.body["content_type"], "image/png");
    assert_eq!(r.body["sha256"], sha_hex(&png()));
    let (st, bytes, ct) = get_bytes(&app, "/api/tenant/logo", Some(&seller.token)).await;
    assert_eq!((st, ct.as_str()), (200, "image/png"));
    assert_eq!(bytes, png());
    // Documents carry it (an image XObject) and still read right.
    let r = app.post(C, tok, json!({"opportunity_id": opp})).await;
    let (st, pdf, _) = get_bytes(&app, &format!("{C}/{}/pdf", r.id()), Some(tok)).await;
    assert_eq!(st, 200);
    assert!(
        pdf.windows(6).any(|w| w == b"/Image"),
        "no image in the PDF"
    );
    assert!(pdftotext(&pdf).contains("Contrato de Prestação de Serviços"));
    app.delete("/api/tenant/logo", tok).await.assert(204);
    app.get("/api/tenant/logo", tok)
        .await
        .assert_problem(404, "not_found");
    app.delete("/api/tenant/logo", tok)
        .await
        .assert_problem(404, "not_found");
}
