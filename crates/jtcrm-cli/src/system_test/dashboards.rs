//! Dashboards (docs/dashboards.md): the overview, KPIs and sales funnel of tenant A before and
//! after the section wins one deal of a known MRR — every figure must move by exactly that deal —
//! plus the CSV format, bad input, a seller asking for someone else's figures, and tenant B
//! naming A's pipeline.

#[allow(unused_imports)]
use super::*;

/// `from=…&to=…`: today ± a day (UTC dates), so the window holds "now" in any company timezone
/// even when the run crosses midnight.
fn window() -> String {
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Duration::days(2);
    let to = today + chrono::Duration::days(1);
    format!("from={from}&to={to}")
}

fn int(r: &Response, pointer: &str) -> Result<i64> {
    r.body
        .pointer(pointer)
        .and_then(Value::as_i64)
        .ok_or_else(|| r.fail(format!("an integer at {pointer}")))
}

/// The won stage of the default pipeline in a sales-funnel body: `(cards, mrr_cents)`.
fn won_stage(r: &Response) -> Result<(i64, i64)> {
    let st = r
        .body
        .pointer("/stages")
        .and_then(Value::as_array)
        .and_then(|s| s.iter().find(|s| s["kind"] == "won"))
        .ok_or_else(|| r.fail("a won stage in the funnel"))?;
    Ok((
        st["cards"].as_i64().unwrap_or(-1),
        st["mrr_cents"].as_i64().unwrap_or(-1),
    ))
}

pub(super) async fn dashboards(c: &Client, ctx: &Ctx) -> Result<()> {
    let a = admin_token(c, &ctx.a.admin_email).await?;
    let b = admin_token(c, &ctx.b.admin_email).await?;
    let run = &ctx.run;
    let w = window();
    let overview = format!("/api/dashboard/overview?{w}");
    let kpis = format!("/api/dashboard/kpis?{w}");
    let funnel = format!("/api/dashboard/sales-funnel?{w}");
    let (o0, k0, f0) = c
        .step(
            "GET /api/dashboard/overview, kpis and sales-funnel before the deal",
            async || {
                let o = c.get(&overview, Some(&a)).await?;
                o.expect_status(StatusCode::OK)?;
                let k = c.get(&kpis, Some(&a)).await?;
                k.expect_status(StatusCode::OK)?;
                let f = c.get(&funnel, Some(&a)).await?;
                f.expect_status(StatusCode::OK)?;
                Ok((o, k, f))
            },
        )
        .await?;
    let mrr = 45_600;
    let setup = 9_900;
    c.step("a new lead and a deal of MRR 456,00 + setup 99,00, won", async || {
        let p = c
            .post(
                "/api/products",
                Some(&a),
                json!({"name": "Fibra Empresarial 1 Giga", "sku": format!("FE1G-{run}"), "category": "broadband",
                       "billing": "monthly", "monthly_price_cents": mrr, "setup_price_cents": setup}),
            )
            .await?;
        p.expect_status(StatusCode::CREATED)?;
        let l = c
            .post("/api/leads", Some(&a), json!({"name": format!("Painel {run}"), "source": "event"}))
            .await?;
        l.expect_status(StatusCode::CREATED)?;
        let o = c
            .post(
                "/api/pipelines/opportunities",
                Some(&a),
                json!({"title": "Painel", "lead_id": l.string("/id")?, "term_months": 12,
                       "items": [{"product_id": p.string("/id")?, "quantity": 1}]}),
            )
            .await?;
        o.expect_status(StatusCode::CREATED)?;
        let id = o.string("/id")?;
        let r = c
            .post(&format!("/api/pipelines/opportunities/{id}/won"), Some(&a), json!({}))
            .await?;
        r.expect_status(StatusCode::OK)
    })
    .await?;
    c.step(
        "overview: one more new lead, exactly one more deal won with its MRR and setup",
        async || {
            let o = c.get(&overview, Some(&a)).await?;
            o.expect_status(StatusCode::OK)?;
            for (ptr, delta) in [
                ("/current/new_leads", 1),
                ("/current/won/count", 1),
                ("/current/won/mrr_cents", mrr),
                ("/current/won/setup_cents", setup),
                ("/current/won/tcv_cents", mrr * 12 + setup),
                ("/current/lost/count", 0),
            ] {
                let (before, after) = (int(&o0, ptr)?, int(&o, ptr)?);
                o.ensure(
                    after - before == delta,
                    format!("{ptr}: {before} + {delta}"),
                )?;
            }
            o.ensure(
                o.body["current"]["calls_today"]["available"] == false,
                "calls labelled unavailable",
            )
        },
    )
    .await?;
    c.step(
        "kpis: new MRR and net new MRR grow by the deal's MRR; churn labelled unavailable",
        async || {
            let k = c.get(&kpis, Some(&a)).await?;
            k.expect_status(StatusCode::OK)?;
            for (ptr, delta) in [
                ("/current/won_count", 1),
                ("/current/new_mrr_cents", mrr),
                ("/current/net_new_mrr_cents", mrr),
            ] {
                let (before, after) = (int(&k0, ptr)?, int(&k, ptr)?);
                k.ensure(
                    after - before == delta,
                    format!("{ptr}: {before} + {delta}"),
                )?;
            }
            k.ensure(
                k.body["current"]["churned_mrr_cents"] == json!({"value": 0, "available": false}),
                "churned_mrr_cents unavailable",
            )
        },
    )
    .await?;
    c.step(
        "sales-funnel: the won stage holds one more card with the deal's MRR",
        async || {
            let f = c.get(&funnel, Some(&a)).await?;
            f.expect_status(StatusCode::OK)?;
            let ((n0, m0), (n1, m1)) = (won_stage(&f0)?, won_stage(&f)?);
            f.ensure(
                n1 - n0 == 1 && m1 - m0 == mrr,
                format!("won stage {n0}/{m0} → +1/+{mrr}"),
            )?;
            let before = int(&f0, "/leads/leads")?;
            let after = int(&f, "/leads/leads")?;
            f.ensure(after - before == 1, "one more lead in the lead funnel")
        },
    )
    .await?;
    c.step(
        "format=csv: UTF-8 with BOM, ';' and decimal comma",
        async || {
            let r = c.get(&format!("{overview}&format=csv"), Some(&a)).await?;
            r.expect_status(StatusCode::OK)?;
            let text = r.body.as_str().unwrap_or("");
            r.ensure(
                text.starts_with('\u{FEFF}') && text.contains("won.mrr (R$);"),
                "a BOM and a 'won.mrr (R$);' row",
            )
        },
    )
    .await?;
    c.step(
        "bad input: period=yesterday and from after to answer 422",
        async || {
            let r = c
                .get("/api/dashboard/kpis?period=yesterday", Some(&a))
                .await?;
            r.expect_field_error("period")?;
            let r = c
                .get(
                    "/api/dashboard/overview?from=2026-12-02&to=2026-12-01",
                    Some(&a),
                )
                .await?;
            r.expect_field_error("from")
        },
    )
    .await?;
    let pipeline = f0.string("/pipeline_id")?;
    c.step("tenant B naming tenant A's pipeline gets 404", async || {
        let r = c
            .get(
                &format!("/api/dashboard/sales-funnel?pipeline_id={pipeline}"),
                Some(&b),
            )
            .await?;
        r.expect_problem(StatusCode::NOT_FOUND, "not_found")
    })
    .await?;
    let seller = ctx.a.user("sales")?;
    let viewer = ctx.a.user("viewer")?;
    c.step(
        "a seller asking for someone else's figures gets 403",
        async || {
            let s = c.login(&seller.email, PASSWORD).await?;
            s.expect_status(StatusCode::OK)?;
            let tok = s.string("/access_token")?;
            let r = c
                .get(
                    &format!("/api/dashboard/overview?owner_id={}", viewer.id),
                    Some(&tok),
                )
                .await?;
            r.expect_problem(StatusCode::FORBIDDEN, "forbidden")
        },
    )
    .await?;
    Ok(())
}
