//! Proposals (docs/proposals.md): a template, a proposal from an opportunity, sending it (the
//! e-mail is stored, and with `--smtp-sink` must reach the sink), the customer's public link,
//! acceptance with evidence, the PDF's text (pdftotext) and a cross-tenant 404.

#[allow(unused_imports)]
use super::*;

/// The PDF's text through `pdftotext` (poppler-utils); `None` when it is not installed.
pub(super) fn pdf_text(bytes: &[u8]) -> Option<String> {
    let dir = std::env::temp_dir().join(format!("jtcrm-st-{}", Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join("p.pdf");
    std::fs::write(&path, bytes).ok()?;
    let out = std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .ok();
    let _ = std::fs::remove_dir_all(&dir);
    out.filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

pub(super) async fn get_pdf(c: &Client, path: &str, token: Option<&str>) -> Result<Vec<u8>> {
    let mut req = c.http.get(format!("{}{path}", c.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.with_context(|| format!("GET {path}"))?;
    if res.status() != StatusCode::OK {
        return Err(anyhow!("GET {path}: status {}", res.status()));
    }
    let ct = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if ct != "application/pdf" {
        return Err(anyhow!("GET {path}: content-type {ct}"));
    }
    Ok(res.bytes().await?.to_vec())
}

pub(super) async fn proposals(c: &Client, ctx: &Ctx) -> Result<(String, String)> {
    let a = admin_token(c, &ctx.a.admin_email).await?;
    let b = admin_token(c, &ctx.b.admin_email).await?;
    let run = &ctx.run;
    let customer = format!("Cliente Proposta {run}");
    c.step(
        "POST /api/proposals/templates rejects an unknown filter with line and column",
        async || {
            let r = c
                .post(
                    "/api/proposals/templates",
                    Some(&a),
                    json!({"name": "Ruim", "body": "ok\n{{ totals.mrr_cents | dinheiro }}"}),
                )
                .await?;
            r.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")?;
            r.ensure(
                r.str("/errors/0/message")
                    .is_some_and(|m| m.contains("linha 2")),
                "the message names line 2",
            )
        },
    )
    .await?;
    c.step(
        "POST /api/proposals/templates saves a template (pt-BR filters)",
        async || {
            let r = c
                .post(
                    "/api/proposals/templates",
                    Some(&a),
                    json!({"name": format!("Proposta curta {run}"),
                           "body": "# Proposta {{ proposal.number }}\nCliente: {{ customer.name }}\n{{ items_table }}\nTotal: {{ totals.tcv_cents | brl }} ({{ totals.tcv_cents | extenso }})\nVálida até {{ proposal.valid_until | data }}"}),
                )
                .await?;
            r.expect_status(StatusCode::CREATED)
        },
    )
    .await?;
    let opp = c
        .step("an opportunity with items for the proposal", async || {
            let p = c
                .post(
                    "/api/products",
                    Some(&a),
                    json!({"name": "Banda Larga 600 Mega", "sku": format!("BL600-{run}"), "category": "broadband",
                           "billing": "monthly", "monthly_price_cents": 123456, "setup_price_cents": 10000}),
                )
                .await?;
            p.expect_status(StatusCode::CREATED)?;
            let l = c
                .post(
                    "/api/leads",
                    Some(&a),
                    json!({"name": customer, "email": ctx.email("cliente-proposta"), "company": "Padaria Pão de Açúcar"}),
                )
                .await?;
            l.expect_status(StatusCode::CREATED)?;
            let o = c
                .post(
                    "/api/pipelines/opportunities",
                    Some(&a),
                    json!({"title": "Banda larga filial", "lead_id": l.string("/id")?, "term_months": 12,
                           "items": [{"product_id": p.string("/id")?, "quantity": 1}]}),
                )
                .await?;
            o.expect_status(StatusCode::CREATED)?;
            o.string("/id")
        })
        .await?;
    let proposal = c
        .step(
            "POST /api/proposals from the opportunity: items copied, numbered PROP-{year}-NNNN",
            async || {
                let r = c
                    .post("/api/proposals", Some(&a), json!({"opportunity_id": opp}))
                    .await?;
                r.expect_status(StatusCode::CREATED)?;
                r.ensure(
                    r.str("/number").is_some_and(|n| n.starts_with("PROP-")),
                    "number PROP-…",
                )?;
                r.ensure(r.body["mrr_cents"] == 123456, "mrr copied")?;
                r.ensure(r.str("/status") == Some("draft"), "draft")?;
                r.string("/id")
            },
        )
        .await?;
    let url = c
        .step(
            "POST /api/proposals/{id}/send e-mails the link through the job queue",
            async || {
                let r = c
                    .post(
                        &format!("/api/proposals/{proposal}/send"),
                        Some(&a),
                        json!({}),
                    )
                    .await?;
                r.expect_status(StatusCode::OK)?;
                r.ensure(r.str("/proposal/status") == Some("sent"), "status sent")?;
                let email = r.string("/email_id")?;
                let e = c.get(&format!("/api/emails/{email}"), Some(&a)).await?;
                e.expect_status(StatusCode::OK)?;
                e.ensure(
                    e.str("/kind") == Some("proposal"),
                    "an e-mail of kind proposal",
                )?;
                let url = r.string("/public_url")?;
                e.ensure(
                    e.str("/body_text").is_some_and(|b| b.contains(&url)),
                    "the e-mail carries the link",
                )?;
                Ok(url)
            },
        )
        .await?;
    delivered_step(
        c,
        "the proposal e-mail reaches the SMTP sink: to the customer, with the public link",
        &ctx.email("cliente-proposta"),
        &url,
    )
    .await?;
    let token = url.rsplit('/').next().unwrap_or_default().to_string();
    c.step(
        "GET /p/{token} shows the proposal and marks it viewed",
        async || {
            let r = c.get(&format!("/p/{token}"), None).await?;
            r.expect_status(StatusCode::OK)?;
            r.ensure(
                r.body.as_str().is_some_and(|h| h.contains(&customer)),
                "the page names the customer",
            )?;
            let p = c
                .get(&format!("/api/proposals/{proposal}"), Some(&a))
                .await?;
            p.ensure(p.str("/status") == Some("viewed"), "status viewed")
        },
    )
    .await?;
    c.step(
        "the customer accepts with name and CPF; the evidence is stored",
        async || {
            let r = c
                .post(
                    &format!("/api/public/proposals/{token}/accept"),
                    None,
                    json!({"name": customer, "cpf": "529.982.247-25"}),
                )
                .await?;
            r.expect_status(StatusCode::OK)?;
            let p = c
                .get(&format!("/api/proposals/{proposal}"), Some(&a))
                .await?;
            p.ensure(p.str("/status") == Some("accepted"), "status accepted")?;
            p.ensure(
                p.str("/decision/cpf") == Some("529.982.247-25")
                    && p.str("/decision/document_sha256")
                        .is_some_and(|s| s.len() == 64),
                "CPF and document hash recorded",
            )
        },
    )
    .await?;
    c.step(
        "the PDF's text names the customer (pdftotext)",
        async || {
            let pdf = get_pdf(c, &format!("/api/proposals/{proposal}/pdf"), Some(&a)).await?;
            if !pdf.starts_with(b"%PDF") {
                return Err(anyhow!("not a PDF"));
            }
            match pdf_text(&pdf) {
                Some(text) if text.contains(&customer) => Ok(()),
                Some(text) => Err(anyhow!("the PDF text lacks {customer}: {text}")),
                None => {
                    println!("  (pdftotext not installed: only the PDF header was checked)");
                    Ok(())
                }
            }
        },
    )
    .await?;
    c.step(
        "another tenant gets 404 on the proposal, its PDF and its versions",
        async || {
            c.get(&format!("/api/proposals/{proposal}"), Some(&b))
                .await?
                .expect_problem(StatusCode::NOT_FOUND, "not_found")?;
            c.get(&format!("/api/proposals/{proposal}/pdf"), Some(&b))
                .await?
                .expect_problem(StatusCode::NOT_FOUND, "not_found")?;
            c.get(&format!("/api/proposals/{proposal}/versions"), Some(&b))
                .await?
                .expect_problem(StatusCode::NOT_FOUND, "not_found")
        },
    )
    .await?;
    Ok((proposal, opp))
}
