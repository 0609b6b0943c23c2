//! Telephony (docs/telephony.md) against a PABX mock this process starts (jtcrm-integrations'
//! faithful mock of the suite API, on 127.0.0.1): the integration settings, an extension created
//! on the PABX, a click-to-call that reaches the lead's timeline with its duration and recording,
//! a missed inbound call from a known number that creates the callback task, an unknown number
//! offered as a new lead, and a cross-tenant 404.

use jtcrm_integrations::pabx::mock::{self, InboundCall, MockOutcome, MockPabxOptions};

#[allow(unused_imports)]
use super::*;

/// Polls `check` every 250 ms until it returns `Some`, for at most `secs`.
async fn eventually<T>(
    secs: u64,
    what: &str,
    mut check: impl AsyncFnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(anyhow!("{what}: not seen within {secs}s"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub(super) async fn telephony(c: &Client, ctx: &Ctx) -> Result<()> {
    let a = admin_token(c, &ctx.a.admin_email).await?;
    let b = admin_token(c, &ctx.b.admin_email).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("PABX mock: bind 127.0.0.1:0")?;
    let pabx = mock::serve(
        listener,
        MockPabxOptions {
            cdr_delay: Duration::from_secs(1),
            ..MockPabxOptions::default()
        },
    )
    .await;
    let (usuario, token) = pabx.credentials();
    c.step(
        "PUT /api/integrations/pabx saves the PABX (token encrypted, never returned)",
        async || {
            let r = c
                .put(
                    "/api/integrations/pabx",
                    Some(&a),
                    json!({"enabled": true,
                           "config": {"base_url": pabx.base_url(), "usuario": usuario, "area_code": 11, "callback_sla_minutes": 30},
                           "secrets": {"token": token}}),
                )
                .await?;
            r.expect_status(StatusCode::OK)?;
            r.ensure(
                r.body.pointer("/secrets/token/configured") == Some(&json!(true))
                    && !r.body.to_string().contains(&token),
                "token configured and masked",
            )
        },
    )
    .await?;
    let webhook = c
        .step(
            "POST /api/integrations/pabx/webhook-token gives the PABX its event URL",
            async || {
                let r = c
                    .post("/api/integrations/pabx/webhook-token", Some(&a), json!({}))
                    .await?;
                r.expect_status(StatusCode::OK)?;
                r.string("/path")
            },
        )
        .await?;
    pabx.set_event_url(Some(format!("{}{webhook}", c.base)));
    let me = c
        .step("GET /api/auth/me", async || {
            let r = c.get("/api/auth/me", Some(&a)).await?;
            r.expect_status(StatusCode::OK)?;
            r.string("/id").or_else(|_| r.string("/user/id"))
        })
        .await?;
    c.step(
        "POST /api/telephony/extensions creates extension 2001 on the PABX for the admin",
        async || {
            let r = c
                .post(
                    "/api/telephony/extensions",
                    Some(&a),
                    json!({"number": "2001", "name": "Admin", "user_id": me, "area_code": 11}),
                )
                .await?;
            r.expect_status(StatusCode::CREATED)?;
            r.ensure(
                r.str("/provider_id").is_some()
                    && pabx.extensions().iter().any(|e| e.number == "2001"),
                "the PABX has extension 2001",
            )
        },
    )
    .await?;
    let phone = "+5511987651234";
    let lead = c
        .step("a lead with a phone to call", async || {
            let r = c
                .post(
                    "/api/leads",
                    Some(&a),
                    json!({"name": format!("Cliente Telefone {}", ctx.run), "phone": "(11) 98765-1234"}),
                )
                .await?;
            r.expect_status(StatusCode::CREATED)?;
            r.string("/id")
        })
        .await?;
    let call = c
        .step(
            "POST /api/telephony/call rings 2001 and dials the lead (local: DDD dropped)",
            async || {
                let r = c
                    .post("/api/telephony/call", Some(&a), json!({"lead_id": lead}))
                    .await?;
                r.expect_status(StatusCode::CREATED)?;
                r.ensure(r.str("/status") == Some("dialing"), "status dialing")?;
                let dialled = pabx.calls().last().map(|c| c.destino.clone());
                r.ensure(
                    dialled.as_deref() == Some("987651234"),
                    format!("the PABX dialled 987651234, not {dialled:?}"),
                )?;
                r.string("/id")
            },
        )
        .await?;
    c.step(
        "the call reaches the lead's timeline with its duration and recording",
        async || {
            let entry = eventually(60, "the call on the timeline", async || {
                let r = c
                    .get(&format!("/api/leads/{lead}/timeline"), Some(&a))
                    .await?;
                r.expect_status(StatusCode::OK)?;
                Ok(r.body["items"]
                    .as_array()
                    .and_then(|items| items.iter().find(|e| e["kind"] == "call").cloned()))
            })
            .await?;
            let ok = entry["data"]["talk_s"].as_i64().is_some_and(|s| s > 0)
                && entry["data"]["recordings"].as_i64().is_some_and(|n| n >= 1)
                && entry["summary"]
                    .as_str()
                    .is_some_and(|s| s.contains("atendida"));
            if !ok {
                return Err(anyhow!(
                    "timeline entry without duration or recording: {entry}"
                ));
            }
            let rec = eventually(60, "the recording copied", async || {
                let r = c
                    .get(&format!("/api/telephony/calls/{call}"), Some(&a))
                    .await?;
                r.expect_status(StatusCode::OK)?;
                Ok(r.str("/recordings/0/url")
                    .filter(|_| r.str("/recordings/0/status") == Some("stored"))
                    .map(str::to_string))
            })
            .await?;
            let res = c
                .http
                .get(format!("{}{rec}", c.base))
                .bearer_auth(&a)
                .send()
                .await?;
            let status = res.status();
            let bytes = res.bytes().await?;
            if status != StatusCode::OK || !bytes.starts_with(b"RIFF") {
                return Err(anyhow!("GET {rec}: {status}, not a WAV"));
            }
            Ok(())
        },
    )
    .await?;
    c.step(
        "a missed inbound call from the lead's number creates the callback task",
        async || {
            pabx.push_inbound(InboundCall {
                from: phone.into(),
                extension: "2001".into(),
                outcome: MockOutcome::NoAnswer { ring_s: 25 },
            });
            let task = eventually(60, "the callback task", async || {
                let r = c
                    .get(&format!("/api/tasks?lead_id={lead}"), Some(&a))
                    .await?;
                r.expect_status(StatusCode::OK)?;
                Ok(r.body["items"].as_array().and_then(|items| {
                    items
                        .iter()
                        .find(|t| {
                            t["title"]
                                .as_str()
                                .is_some_and(|s| s.starts_with("Retornar ligação perdida"))
                        })
                        .cloned()
                }))
            })
            .await?;
            if task["type"] != "call" || task["priority"] != "high" {
                return Err(anyhow!("callback task is not a high-priority call: {task}"));
            }
            let r = c
                .get(
                    &format!(
                        "/api/telephony/calls?lead_id={lead}&direction=inbound&outcome=no_answer"
                    ),
                    Some(&a),
                )
                .await?;
            r.expect_status(StatusCode::OK)?;
            r.ensure(
                r.body["items"].as_array().is_some_and(|i| i.len() == 1),
                "one missed call in the log (webhook and history: one call)",
            )
        },
    )
    .await?;
    c.step(
        "GET /api/telephony/lookup offers an unknown number as a new lead",
        async || {
            let r = c
                .get(
                    "/api/telephony/lookup?number=%2821%29%2099999-0000",
                    Some(&a),
                )
                .await?;
            r.expect_status(StatusCode::OK)?;
            r.ensure(
                r.str("/e164") == Some("+5521999990000")
                    && r.body["leads"].as_array().is_some_and(Vec::is_empty)
                    && r.str("/suggestion/source") == Some("inbound_call"),
                "no match, a suggestion with source inbound_call",
            )
        },
    )
    .await?;
    c.step(
        "another tenant gets 404 on the call and sees no calls",
        async || {
            let r = c
                .get(&format!("/api/telephony/calls/{call}"), Some(&b))
                .await?;
            r.expect_problem(StatusCode::NOT_FOUND, "not_found")?;
            let r = c.get("/api/telephony/calls", Some(&b)).await?;
            r.expect_status(StatusCode::OK)?;
            r.ensure(
                r.body["items"].as_array().is_some_and(Vec::is_empty),
                "empty list",
            )
        },
    )
    .await?;
    drop(pabx);
    Ok(())
}
