//! Sales steps: leads (import, transfer), the agenda, the pipeline and automations.

use super::*;

pub(super) async fn leads(c: &Client, ctx: &Ctx) -> Result<()> {
    let a = c
        .step("tenant A admin logs in for the leads section", async || {
            let r = c.login(&ctx.a.admin_email, PASSWORD).await?;
            r.expect_status(StatusCode::OK)?;
            Ok(r.str("/access_token").unwrap_or_default().to_string())
        })
        .await?;
    let b = c
        .step("tenant B admin logs in for the leads section", async || {
            let r = c.login(&ctx.b.admin_email, PASSWORD).await?;
            r.expect_status(StatusCode::OK)?;
            Ok(r.str("/access_token").unwrap_or_default().to_string())
        })
        .await?;
    let email = ctx.email("lead-joao");
    let lead_id = c
        .step("POST /api/leads normalises CNPJ, phone and email and scores the lead", async || {
            let r = c
                .post(
                    "/api/leads",
                    Some(&a),
                    json!({"name": "João Conceição", "email": email.to_uppercase(), "phone": "(81) 99876-5432",
                           "company": format!("Fibra Sertão {}", ctx.run), "cnpj": "11222333000181",
                           "position": "Diretor de TI", "source": "referral", "state": "pe"}),
                )
                .await?;
            r.expect_status(StatusCode::CREATED)?;
            r.ensure(r.str("/phone") == Some("+5581998765432"), "phone in E.164")?;
            r.ensure(r.str("/cnpj") == Some("11.222.333/0001-81"), "masked CNPJ")?;
            r.ensure(r.str("/email") == Some(email.as_str()), "lower-cased email")?;
            r.ensure(r.body["score"].as_i64().unwrap_or(0) > 0, "a positive score")?;
            Ok(r.str("/id").unwrap_or_default().to_string())
        })
        .await?;
    c.step(
        "a duplicate (same email) answers 409 duplicate_lead with the existing id",
        async || {
            let r = c
                .post(
                    "/api/leads",
                    Some(&a),
                    json!({"name": "Outro João", "email": email}),
                )
                .await?;
            r.expect_problem(StatusCode::CONFLICT, "duplicate_lead")?;
            r.ensure(
                r.str("/context/existing_id") == Some(lead_id.as_str()),
                "context.existing_id",
            )
        },
    )
    .await?;
    c.step(
        "invalid CNPJ and DDD answer 422 naming the fields",
        async || {
            let r = c
                .post(
                    "/api/leads",
                    Some(&a),
                    json!({"name": "X", "cnpj": "11.222.333/0001-00", "phone": "(20) 91234-5678"}),
                )
                .await?;
            r.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")?;
            r.expect_field_error("cnpj")?;
            r.expect_field_error("phone")
        },
    )
    .await?;
    c.step(
        "search: accent-insensitive name, company prefix and masked phone digits",
        async || {
            for q in [
                "joao%20conceicao",
                "sertao",
                "99876-5432",
                "11.222.333%2F0001-81",
            ] {
                let r = c.get(&format!("/api/leads?q={q}"), Some(&a)).await?;
                r.expect_status(StatusCode::OK)?;
                let found = r.body["items"]
                    .as_array()
                    .is_some_and(|i| i.iter().any(|l| l["id"] == lead_id.as_str()));
                r.ensure(found, format!("lead found by q={q}"))?;
            }
            Ok(())
        },
    )
    .await?;
    c.step("GET /api/leads/{id}/score explains the score", async || {
        let r = c
            .get(&format!("/api/leads/{lead_id}/score"), Some(&a))
            .await?;
        r.expect_status(StatusCode::OK)?;
        let items = r.body["breakdown"].as_array().cloned().unwrap_or_default();
        let sum: i64 = items.iter().filter_map(|i| i["points"].as_i64()).sum();
        r.ensure(!items.is_empty(), "a non-empty breakdown")?;
        r.ensure(
            r.body["score"].as_i64() == Some(sum.clamp(0, 100)),
            "score = clamped sum of the breakdown",
        )
    })
    .await?;
    c.step(
        "another tenant gets 404 on the lead and finds nothing",
        async || {
            c.get(&format!("/api/leads/{lead_id}"), Some(&b))
                .await?
                .expect_problem(StatusCode::NOT_FOUND, "not_found")?;
            c.put(
                &format!("/api/leads/{lead_id}"),
                Some(&b),
                json!({"name": "x"}),
            )
            .await?
            .expect_problem(StatusCode::NOT_FOUND, "not_found")?;
            c.delete(&format!("/api/leads/{lead_id}"), Some(&b))
                .await?
                .expect_problem(StatusCode::NOT_FOUND, "not_found")?;
            let r = c.get("/api/leads?q=sertao", Some(&b)).await?;
            r.ensure(
                r.body["items"].as_array().is_some_and(Vec::is_empty),
                "an empty list for tenant B",
            )
        },
    )
    .await?;
    Ok(())
}

/// docs/automations.md: "when a lead becomes qualified, create a call task for its owner and email them";
/// qualify a lead; see the task, the email and the run log. Needs the deployment's job worker.
pub(super) async fn admin_token(c: &Client, email: &str) -> Result<String> {
    let r = c.login(email, PASSWORD).await?;
    r.expect_status(StatusCode::OK)?;
    Ok(r.str("/access_token").unwrap_or_default().to_string())
}

/// A multipart/form-data body with one CSV file part named `file`.
pub(super) fn csv_upload(csv: &str) -> (String, Vec<u8>) {
    let boundary = format!("jtcrm-{}", Uuid::now_v7().simple());
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"leads.csv\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes());
    body.extend_from_slice(csv.as_bytes());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub(super) async fn lead_transfer(c: &Client, ctx: &Ctx) -> Result<()> {
    let a = admin_token(c, &ctx.a.admin_email).await?;
    let b = admin_token(c, &ctx.b.admin_email).await?;
    let run = &ctx.run;
    let csv = format!(
        "nome;e-mail;telefone;empresa;uf\nAna Importada;ana-{run}@importe.com.br;(21) 99876-1234;Rede Importada {run};RJ\nBruno Importado;bruno-{run}@importe.com.br;(31) 3222-1111;Rede Importada {run};MG\n;sem-nome-{run}@importe.com.br;(20) 91234-5678;;\n"
    );
    let import_path = c
        .step(
            "POST /api/leads/import accepts a pt-BR CSV and answers 202 at once",
            async || {
                let (ct, bytes) = csv_upload(&csv);
                let r = c
                    .send(
                        Method::POST,
                        "/api/leads/import",
                        Some(&a),
                        Body::Raw(ct, bytes),
                    )
                    .await?;
                r.expect_status(StatusCode::ACCEPTED)?;
                Ok(r.headers
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string())
            },
        )
        .await?;
    c.step(
        "the import completes with 2 leads created and the bad row reported by line number",
        async || {
            for _ in 0..100 {
                let r = c.get(&import_path, Some(&a)).await?;
                r.expect_status(StatusCode::OK)?;
                match r.str("/status") {
                    Some("completed") => {
                        r.ensure(r.body["created"] == 2, "created = 2")?;
                        let rows: Vec<i64> = r.body["errors"]
                            .as_array()
                            .map(|e| e.iter().filter_map(|x| x["row"].as_i64()).collect())
                            .unwrap_or_default();
                        return r.ensure(
                            !rows.is_empty() && rows.iter().all(|l| *l == 4),
                            "errors on line 4 only",
                        );
                    }
                    Some("failed") => return Err(r.fail("status completed")),
                    _ => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
            Err(anyhow!("a importação não terminou em 20 s"))
        },
    )
    .await?;
    c.step(
        "GET /api/leads/export streams CSV with a BOM and the imported leads",
        async || {
            let r = c
                .get(&format!("/api/leads/export?q=importada%20{run}"), Some(&a))
                .await?;
            r.expect_status(StatusCode::OK)?;
            let text = r.body.as_str().unwrap_or_default().to_string();
            r.ensure(text.starts_with('\u{feff}'), "a UTF-8 BOM")?;
            r.ensure(
                text.contains(&format!("ana-{run}@importe.com.br"))
                    && text.contains("(21) 99876-1234"),
                "the imported rows",
            )
        },
    )
    .await?;
    c.step(
        "another tenant gets 404 on the import and exports nothing of it",
        async || {
            c.get(&import_path, Some(&b))
                .await?
                .expect_problem(StatusCode::NOT_FOUND, "not_found")?;
            let r = c
                .get(&format!("/api/leads/export?q=importada%20{run}"), Some(&b))
                .await?;
            r.expect_status(StatusCode::OK)?;
            r.ensure(
                !r.body
                    .as_str()
                    .unwrap_or_default()
                    .contains("importe.com.br"),
                "no rows of tenant A",
            )
        },
    )
    .await
}

pub(super) async fn agenda(c: &Client, ctx: &Ctx) -> Result<()> {
    let a = admin_token(c, &ctx.a.admin_email).await?;
    let b = admin_token(c, &ctx.b.admin_email).await?;
    let lead = c
        .step("a lead for the agenda", async || {
            let r = c
                .post(
                    "/api/leads",
                    Some(&a),
                    json!({"name": format!("Agenda {}", ctx.run)}),
                )
                .await?;
            r.expect_status(StatusCode::CREATED)?;
            Ok(r.str("/id").unwrap_or_default().to_string())
        })
        .await?;
    let task = c
        .step("POST /api/tasks creates a call task for the lead", async || {
            let due = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
            let r = c.post("/api/tasks", Some(&a), json!({"title": "Ligar para o cliente", "type": "call", "due_at": due, "lead_id": lead})).await?;
            r.expect_status(StatusCode::CREATED)?;
            Ok(r.str("/id").unwrap_or_default().to_string())
        })
        .await?;
    c.step(
        "the task is rescheduled twice and keeps both moves",
        async || {
            for days in [1, 2] {
                let due = (chrono::Utc::now() + chrono::Duration::days(days)).to_rfc3339();
                c.post(
                    &format!("/api/tasks/{task}/reschedule"),
                    Some(&a),
                    json!({"due_at": due, "reason": "cliente pediu"}),
                )
                .await?
                .expect_status(StatusCode::OK)?;
            }
            let r = c.get(&format!("/api/tasks/{task}"), Some(&a)).await?;
            r.ensure(
                r.body["reschedule_count"] == 2
                    && r.body["reschedules"]
                        .as_array()
                        .is_some_and(|h| h.len() == 2),
                "2 reschedules",
            )
        },
    )
    .await?;
    c.step(
        "completing it once works; a second completion answers 409",
        async || {
            c.post(
                &format!("/api/tasks/{task}/complete"),
                Some(&a),
                json!({"outcome": "Pediu proposta"}),
            )
            .await?
            .expect_status(StatusCode::OK)?;
            c.post(&format!("/api/tasks/{task}/complete"), Some(&a), json!({}))
                .await?
                .expect_problem(StatusCode::CONFLICT, "already_completed")
        },
    )
    .await?;
    c.step("a note and the lead's timeline, newest first", async || {
        c.post(&format!("/api/leads/{lead}/notes"), Some(&a), json!({"body": "Quer **link dedicado**"})).await?.expect_status(StatusCode::CREATED)?;
        let r = c.get(&format!("/api/leads/{lead}/timeline"), Some(&a)).await?;
        r.expect_status(StatusCode::OK)?;
        let kinds: Vec<&str> = r.body["items"].as_array().map(|i| i.iter().filter_map(|e| e["kind"].as_str()).collect()).unwrap_or_default();
        r.ensure(
            kinds == vec!["note", "task_completed", "task_rescheduled", "task_rescheduled", "task_created", "lead_created"],
            format!("timeline note, task_completed, 2× task_rescheduled, task_created, lead_created (got {kinds:?})"),
        )
    })
    .await?;
    c.step(
        "another tenant gets 404 on the task and the timeline",
        async || {
            c.get(&format!("/api/tasks/{task}"), Some(&b))
                .await?
                .expect_problem(StatusCode::NOT_FOUND, "not_found")?;
            c.get(&format!("/api/leads/{lead}/timeline"), Some(&b))
                .await?
                .expect_problem(StatusCode::NOT_FOUND, "not_found")
        },
    )
    .await
}

pub(super) async fn sales_pipeline(c: &Client, ctx: &Ctx) -> Result<()> {
    let a = admin_token(c, &ctx.a.admin_email).await?;
    let b = admin_token(c, &ctx.b.admin_email).await?;
    let run = &ctx.run;
    let (link, install) = c
        .step("POST /api/products creates a monthly link and a one-time installation", async || {
            let p1 = c.post("/api/products", Some(&a), json!({"name": "Link Dedicado 500 Mbps", "sku": format!("LD500-{run}"), "category": "dedicated_internet", "billing": "monthly", "monthly_price_cents": 120000, "tax_class": "scm"})).await?;
            p1.expect_status(StatusCode::CREATED)?;
            let p2 = c.post("/api/products", Some(&a), json!({"name": "Instalação", "sku": format!("INST-{run}"), "category": "service", "billing": "one_time", "setup_price_cents": 50000, "tax_class": "other"})).await?;
            p2.expect_status(StatusCode::CREATED)?;
            Ok((p1.str("/id").unwrap_or_default().to_string(), p2.str("/id").unwrap_or_default().to_string()))
        })
        .await?;
    let lead = c
        .step("a lead to convert", async || {
            let r = c
                .post(
                    "/api/leads",
                    Some(&a),
                    json!({"name": format!("Cliente Pipeline {run}")}),
                )
                .await?;
            r.expect_status(StatusCode::CREATED)?;
            Ok(r.str("/id").unwrap_or_default().to_string())
        })
        .await?;
    let (opp, pipeline) = c
        .step("POST /api/leads/{id}/convert creates the deal with items: MRR, setup and TCV in cents", async || {
            let r = c.post(&format!("/api/leads/{lead}/convert"), Some(&a), json!({"title": "Link dedicado matriz", "term_months": 24,
                "items": [{"product_id": link, "quantity": 1}, {"product_id": install, "quantity": 1}]})).await?;
            r.expect_status(StatusCode::CREATED)?;
            r.ensure(r.body["mrr_cents"] == 120000 && r.body["setup_cents"] == 50000, "mrr 120000 and setup 50000")?;
            r.ensure(r.body["tcv_cents"] == 120000 * 24 + 50000, "tcv = mrr × 24 + setup")?;
            Ok((r.str("/id").unwrap_or_default().to_string(), r.str("/pipeline_id").unwrap_or_default().to_string()))
        })
        .await?;
    c.step("converting the same lead again answers 409", async || {
        c.post(&format!("/api/leads/{lead}/convert"), Some(&a), json!({}))
            .await?
            .expect_problem(StatusCode::CONFLICT, "already_converted")
    })
    .await?;
    let stages = c
        .step(
            "GET /api/pipelines/{id} lists the stages in order",
            async || {
                let r = c
                    .get(&format!("/api/pipelines/{pipeline}"), Some(&a))
                    .await?;
                r.expect_status(StatusCode::OK)?;
                let stages: Vec<(String, String)> = r.body["stages"]
                    .as_array()
                    .map(|s| {
                        s.iter()
                            .map(|x| {
                                (
                                    x["id"].as_str().unwrap_or_default().to_string(),
                                    x["kind"].as_str().unwrap_or_default().to_string(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                r.ensure(stages.len() >= 3, "at least 3 stages")?;
                Ok(stages)
            },
        )
        .await?;
    c.step("the card moves across two stages and is won", async || {
        let open: Vec<&String> = stages
            .iter()
            .filter(|(_, k)| k == "open")
            .map(|(id, _)| id)
            .collect();
        for stage in open.iter().skip(1).take(2) {
            c.post(
                &format!("/api/pipelines/opportunities/{opp}/move"),
                Some(&a),
                json!({"stage_id": stage}),
            )
            .await?
            .expect_status(StatusCode::OK)?;
        }
        let r = c
            .post(
                &format!("/api/pipelines/opportunities/{opp}/won"),
                Some(&a),
                json!({}),
            )
            .await?;
        r.expect_status(StatusCode::OK)?;
        r.ensure(r.str("/status") == Some("won"), "status won")
    })
    .await?;
    c.step("the board totals the won stage in SQL", async || {
        let r = c
            .get(&format!("/api/pipelines/{pipeline}/board"), Some(&a))
            .await?;
        r.expect_status(StatusCode::OK)?;
        let won = r.body["stages"]
            .as_array()
            .and_then(|s| s.iter().find(|x| x["kind"] == "won"))
            .cloned()
            .unwrap_or_default();
        r.ensure(
            won["count"].as_u64().unwrap_or(0) >= 1
                && won["mrr_cents"].as_i64().unwrap_or(0) >= 120000,
            "the won stage counts the deal and its MRR",
        )
    })
    .await?;
    c.step(
        "another tenant gets 404 on the deal, the pipeline and the product",
        async || {
            c.get(&format!("/api/pipelines/opportunities/{opp}"), Some(&b))
                .await?
                .expect_problem(StatusCode::NOT_FOUND, "not_found")?;
            c.get(&format!("/api/pipelines/{pipeline}/board"), Some(&b))
                .await?
                .expect_problem(StatusCode::NOT_FOUND, "not_found")?;
            c.get(&format!("/api/products/{link}"), Some(&b))
                .await?
                .expect_problem(StatusCode::NOT_FOUND, "not_found")
        },
    )
    .await
}

pub(super) async fn automations(c: &Client, ctx: &Ctx) -> Result<()> {
    let a = c
        .step(
            "tenant A admin logs in for the automations section",
            async || {
                let r = c.login(&ctx.a.admin_email, PASSWORD).await?;
                r.expect_status(StatusCode::OK)?;
                r.string("/access_token")
            },
        )
        .await?;
    let b = c
        .step(
            "tenant B admin logs in for the automations section",
            async || {
                let r = c.login(&ctx.b.admin_email, PASSWORD).await?;
                r.expect_status(StatusCode::OK)?;
                r.string("/access_token")
            },
        )
        .await?;
    let seller = ctx.a.user("sales")?;
    let automation_id = c
        .step(
            "POST /api/automations: when a lead becomes qualified, a call task for its owner and an email",
            async || {
                let r = c
                    .post(
                        "/api/automations",
                        Some(&a),
                        json!({
                            "name": format!("Lead qualificado {}", ctx.run),
                            "trigger": {"event": "lead.status_changed", "filters": {"after.status": "qualified"}},
                            "actions": [
                                {"type": "create_task", "task_type": "call", "title": "Ligar para {{lead.name}}",
                                 "due_in": {"business_hours": 4}, "assignee": "owner"},
                                {"type": "send_email", "to": "owner", "subject": "Lead qualificado: {{lead.name}}",
                                 "body": "Olá {{owner.name}}, ligue para {{lead.name}} ({{lead.phone}})."}
                            ]
                        }),
                    )
                    .await?;
                r.expect_status(StatusCode::CREATED)?;
                r.ensure(r.body["active"] == Value::Bool(true), "active == true")?;
                r.string("/id")
            },
        )
        .await?;
    c.step("another tenant gets 404 on the automation", async || {
        c.get(&format!("/api/automations/{automation_id}"), Some(&b))
            .await?
            .expect_problem(StatusCode::NOT_FOUND, "not_found")
    })
    .await?;
    let name = format!("Lead Automação {}", ctx.run);
    let lead_id = c
        .step("a lead owned by the seller", async || {
            let r = c
                .post(
                    "/api/leads",
                    Some(&a),
                    json!({"name": name, "phone": "(11) 98888-7777", "owner_id": seller.id}),
                )
                .await?;
            r.expect_status(StatusCode::CREATED)?;
            r.string("/id")
        })
        .await?;
    c.step("PATCH the lead to qualified", async || {
        c.send(
            Method::PATCH,
            &format!("/api/leads/{lead_id}"),
            Some(&a),
            Body::Json(json!({"status": "qualified"})),
        )
        .await?
        .expect_status(StatusCode::OK)
    })
    .await?;
    let run = c
        .step(
            "GET /api/automations/{id}/runs: one succeeded run with both actions (waits up to 60 s for the worker)",
            async || {
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let r = c
                        .get(&format!("/api/automations/{automation_id}/runs"), Some(&a))
                        .await?;
                    r.expect_status(StatusCode::OK)?;
                    let run = r.body.pointer("/items/0").cloned();
                    if let Some(run) = run.filter(|x| x["status"] != "running") {
                        let actions = run["actions"].as_array().cloned().unwrap_or_default();
                        r.ensure(run["status"] == "succeeded", "run status == \"succeeded\"")?;
                        r.ensure(run["entity_id"] == lead_id.as_str(), "the run is about the lead")?;
                        r.ensure(
                            actions.len() == 2 && actions.iter().all(|x| x["status"] == "succeeded"),
                            "both actions succeeded",
                        )?;
                        return Ok(run);
                    }
                    r.ensure(Instant::now() < deadline, "a finished run within 60 s")?;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            },
        )
        .await?;
    let task_id = run
        .pointer("/actions/0/result/task_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    c.step("the call task belongs to the lead's owner", async || {
        let r = c.get(&format!("/api/tasks/{task_id}"), Some(&a)).await?;
        r.expect_status(StatusCode::OK)?;
        r.ensure(r.str("/type") == Some("call"), "type == \"call\"")?;
        r.ensure(
            r.str("/assignee_id") == Some(seller.id.as_str()),
            "assignee is the seller",
        )?;
        r.ensure(
            r.str("/lead_id") == Some(lead_id.as_str()),
            "linked to the lead",
        )?;
        r.ensure(
            r.str("/title") == Some(format!("Ligar para {name}").as_str()),
            "title rendered from the lead's name",
        )
    })
    .await?;
    let email_id = run
        .pointer("/actions/1/result/email_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    c.step("the email to the owner is stored", async || {
        let r = c.get(&format!("/api/emails/{email_id}"), Some(&a)).await?;
        r.expect_status(StatusCode::OK)?;
        r.ensure(
            r.str("/to") == Some(seller.email.as_str()),
            "to == the seller's email",
        )?;
        r.ensure(
            r.str("/kind") == Some("automation"),
            "kind == \"automation\"",
        )?;
        r.ensure(
            r.str("/subject") == Some(format!("Lead qualificado: {name}").as_str()),
            "subject rendered",
        )
    })
    .await?;
    Ok(())
}

impl TenantFx {
    pub(super) fn user(&self, role: &str) -> Result<&CreatedUser> {
        self.users.iter().find(|u| u.role == role).ok_or_else(|| {
            anyhow!(
                "cenário: nenhum usuário {role} criado no tenant {}",
                self.slug
            )
        })
    }
}
