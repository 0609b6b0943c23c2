//! Contracts (docs/contracts.md): from the accepted proposal, the plan gate on electronic
//! signature, sending through `email_link` (with `--smtp-sink`, the e-mail must reach the sink),
//! the signer's link and signature, the deal won, the
//! frozen PDF's text, the early-termination fee, and a cross-tenant 404.

#[allow(unused_imports)]
use super::*;

pub(super) async fn contracts(c: &Client, ctx: &Ctx, proposal: &str, opp: &str) -> Result<()> {
    let a = admin_token(c, &ctx.a.admin_email).await?;
    let b = admin_token(c, &ctx.b.admin_email).await?;
    let contract = c
        .step(
            "POST /api/contracts from the accepted proposal: CTR number, the acceptor signs",
            async || {
                let r = c
                    .post(
                        "/api/contracts",
                        Some(&a),
                        json!({"proposal_id": proposal, "start_date": "2027-01-01",
                               "equipment": [{"name": "ONU GPON", "quantity": 1}]}),
                    )
                    .await?;
                r.expect_status(StatusCode::CREATED)?;
                r.ensure(
                    r.str("/number").is_some_and(|n| n.starts_with("CTR-")),
                    "number CTR-…",
                )?;
                r.ensure(r.body["mrr_cents"] == 123456, "MRR from the proposal")?;
                r.ensure(
                    r.str("/signers/0/cpf") == Some("529.982.247-25"),
                    "the acceptor is the signer, with the CPF typed",
                )?;
                r.string("/id")
            },
        )
        .await?;
    c.step(
        "POST /api/contracts/{id}/send on a plan without e-signature is 403 feature_not_in_plan",
        async || {
            c.post(
                &format!("/api/contracts/{contract}/send"),
                Some(&a),
                json!({}),
            )
            .await?
            .expect_problem(StatusCode::FORBIDDEN, "feature_not_in_plan")
        },
    )
    .await?;
    c.step(
        "the super-admin moves the company to the professional plan",
        async || {
            c.put(
                &format!("/api/super-admin/tenants/{}", ctx.a.id),
                Some(&ctx.root.access),
                json!({"subscription_plan": "professional"}),
            )
            .await?
            .expect_status(StatusCode::OK)
        },
    )
    .await?;
    let link = c
        .step(
            "POST /api/contracts/{id}/send freezes the PDF and e-mails the signer's link",
            async || {
                // The tenant snapshot is cached for a few seconds: retry while the old plan shows.
                let deadline = Instant::now() + Duration::from_secs(20);
                let r = loop {
                    let r = c
                        .post(
                            &format!("/api/contracts/{contract}/send"),
                            Some(&a),
                            json!({}),
                        )
                        .await?;
                    if r.status != StatusCode::FORBIDDEN || Instant::now() > deadline {
                        break r;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                };
                r.expect_status(StatusCode::OK)?;
                r.ensure(r.str("/contract/status") == Some("sent"), "status sent")?;
                r.ensure(
                    r.str("/contract/document_sha256")
                        .is_some_and(|s| s.len() == 64),
                    "the frozen PDF's SHA-256",
                )?;
                let email = r.string("/links/0/email_id")?;
                let url = r.string("/links/0/url")?;
                let e = c.get(&format!("/api/emails/{email}"), Some(&a)).await?;
                e.expect_status(StatusCode::OK)?;
                e.ensure(
                    e.str("/body_text").is_some_and(|b| b.contains(&url)),
                    "the e-mail carries the signer's link",
                )?;
                let to = e.string("/to")?;
                Ok((url, to))
            },
        )
        .await?;
    let (link, signer_email) = link;
    delivered_step(
        c,
        "the signature e-mail reaches the SMTP sink: to the signer, with the link",
        &signer_email,
        &link,
    )
    .await?;
    let token = link.rsplit('/').next().unwrap_or_default().to_string();
    c.step(
        "GET /c/{token} shows the contract with the signature form",
        async || {
            let r = c.get(&format!("/c/{token}"), None).await?;
            r.expect_status(StatusCode::OK)?;
            r.ensure(
                r.body
                    .as_str()
                    .is_some_and(|h| h.contains("Assinar contrato") && h.contains("ONU GPON")),
                "the page has the document and the form",
            )
        },
    )
    .await?;
    c.step(
        "the signer signs with name and CPF: contract signed, opportunity won",
        async || {
            let r = c
                .post(
                    &format!("/api/public/contracts/{token}/sign"),
                    None,
                    json!({"name": "Cliente Assinante", "cpf": "52998224725"}),
                )
                .await?;
            r.expect_status(StatusCode::OK)?;
            let k = c
                .get(&format!("/api/contracts/{contract}"), Some(&a))
                .await?;
            k.ensure(k.str("/status") == Some("signed"), "status signed")?;
            k.ensure(
                k.str("/signers/0/signature/document_sha256") == k.str("/document_sha256"),
                "the evidence names the frozen document",
            )?;
            let o = c
                .get(&format!("/api/pipelines/opportunities/{opp}"), Some(&a))
                .await?;
            o.ensure(o.str("/status") == Some("won"), "the opportunity is won")
        },
    )
    .await?;
    c.step(
        "the contract PDF's text has the loyalty clause and the equipment (pdftotext)",
        async || {
            let pdf = get_pdf(c, &format!("/api/contracts/{contract}/pdf"), Some(&a)).await?;
            if !pdf.starts_with(b"%PDF") {
                return Err(anyhow!("not a PDF"));
            }
            match pdf_text(&pdf) {
                Some(t) if t.contains("fidelização") && t.contains("ONU GPON") => Ok(()),
                Some(t) => Err(anyhow!(
                    "the contract PDF lacks the clause or equipment: {t}"
                )),
                None => {
                    println!("  (pdftotext not installed: only the PDF header was checked)");
                    Ok(())
                }
            }
        },
    )
    .await?;
    c.step(
        "activate, then cancel: the early-termination fee is computed",
        async || {
            c.post(
                &format!("/api/contracts/{contract}/activate"),
                Some(&a),
                json!({"start_date": "2026-01-10"}),
            )
            .await?
            .expect_status(StatusCode::OK)?;
            let r = c
                .post(
                    &format!("/api/contracts/{contract}/cancel"),
                    Some(&a),
                    json!({"reason": "Mudança de endereço", "effective_date": "2026-06-20"}),
                )
                .await?;
            r.expect_status(StatusCode::OK)?;
            // 12 months, 5 elapsed (Feb 10 … Jun 10), 7 left × R$ 1.234,56 × 30 %.
            let want = (123_456_i64 * 7 * 30 + 50) / 100;
            r.ensure(
                r.body["termination_fee_cents"] == want,
                format!("termination_fee_cents == {want}"),
            )
        },
    )
    .await?;
    c.step(
        "another tenant gets 404 on the contract, its PDF and the proposal id in a body",
        async || {
            c.get(&format!("/api/contracts/{contract}"), Some(&b))
                .await?
                .expect_problem(StatusCode::NOT_FOUND, "not_found")?;
            c.get(&format!("/api/contracts/{contract}/pdf"), Some(&b))
                .await?
                .expect_problem(StatusCode::NOT_FOUND, "not_found")?;
            c.post("/api/contracts", Some(&b), json!({"proposal_id": proposal}))
                .await?
                .expect_problem(StatusCode::NOT_FOUND, "not_found")
        },
    )
    .await
}
