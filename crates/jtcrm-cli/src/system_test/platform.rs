//! Platform steps: health, API docs, super-admin, plans, tenants, users, tokens, isolation,
//! suspension and plan limits.

use super::*;

pub(super) async fn health(c: &Client) -> Result<()> {
    c.step("GET /health: healthy, database up", async || {
        let r = c.get("/health", None).await?;
        r.expect_status(StatusCode::OK)?;
        r.ensure(r.str("/status") == Some("healthy"), "status == \"healthy\"")?;
        r.ensure(
            r.body.pointer("/checks/database") == Some(&Value::Bool(true)),
            "checks.database == true",
        )
    })
    .await
}

pub(super) async fn api_docs(c: &Client) -> Result<()> {
    c.step(
        "GET /apidocs/openapi.json: OpenAPI 3.1 documenting /api/auth/login",
        async || {
            let r = c.get("/apidocs/openapi.json", None).await?;
            r.expect_status(StatusCode::OK)?;
            r.ensure(
                r.str("/openapi").is_some_and(|v| v.starts_with("3.1")),
                "openapi starts with \"3.1\"",
            )?;
            r.ensure(
                r.body.pointer("/paths/~1api~1auth~1login").is_some(),
                "paths contains /api/auth/login",
            )
        },
    )
    .await?;
    c.step("GET /apidocs/: Swagger UI page", async || {
        let r = c.get("/apidocs/", None).await?;
        r.expect_status(StatusCode::OK)?;
        r.ensure(
            r.body
                .as_str()
                .is_some_and(|html| html.to_lowercase().contains("swagger")),
            "an HTML page mentioning Swagger",
        )
    })
    .await
}

pub(super) async fn super_admin_login(c: &Client, ctx: &mut Ctx) -> Result<()> {
    ctx.root = c
        .step("super-admin logs in", async || {
            let r = c.login(&ctx.root_email, &ctx.root_password).await?;
            r.expect_status(StatusCode::OK)?;
            r.ensure(
                r.str("/token_type") == Some("Bearer"),
                "token_type == \"Bearer\"",
            )?;
            r.ensure(
                r.str("/user/role") == Some("super_admin"),
                "user.role == \"super_admin\"",
            )?;
            r.ensure(
                r.body.pointer("/user/tenant_id") == Some(&Value::Null),
                "user.tenant_id == null",
            )?;
            r.session()
        })
        .await?;
    c.step("GET /api/auth/me as super-admin", async || {
        let r = c.get("/api/auth/me", Some(&ctx.root.access)).await?;
        r.expect_status(StatusCode::OK)?;
        r.ensure(
            r.str("/role") == Some("super_admin"),
            "role == \"super_admin\"",
        )
    })
    .await
}

pub(super) async fn plans(c: &Client, ctx: &Ctx) -> Result<()> {
    c.step(
        "plans starter, professional and enterprise exist; starter allows 5 users",
        async || {
            let r = c
                .get("/api/super-admin/plans", Some(&ctx.root.access))
                .await?;
            r.expect_status(StatusCode::OK)?;
            let plans = r.body.as_array().map(Vec::as_slice).unwrap_or_default();
            let plan = |code: &str| plans.iter().find(|p| p["code"] == code);
            for code in ["starter", "professional", "enterprise"] {
                r.ensure(plan(code).is_some(), format!("plan {code} listed"))?;
            }
            r.ensure(
                plan("starter").and_then(|p| p.pointer("/limits/max_users"))
                    == Some(&json!(STARTER_MAX_USERS)),
                format!("starter limits.max_users == {STARTER_MAX_USERS}"),
            )
        },
    )
    .await
}

pub(super) async fn tenants(c: &Client, ctx: &mut Ctx) -> Result<()> {
    let root = ctx.root.access.clone();
    let run = ctx.run.clone();
    let body = |label: &str, slug: &str, admin_email: &str, cnpj: &str| {
        json!({
            "name": format!("Provedor {label} {run}"),
            "slug": slug,
            "email": format!("contato-{label}-{run}@system-test.example.com"),
            "cnpj": cnpj,
            "subscription_plan": "starter",
            "admin": {"name": format!("Admin {label}"), "email": admin_email, "password": PASSWORD},
        })
    };

    // Bare digits in, mask out: the API owns the formatting.
    let cases = [
        (&mut ctx.a, "A", CNPJ_NUMERIC_BARE, CNPJ_NUMERIC),
        (&mut ctx.b, "B", CNPJ_ALPHANUMERIC, CNPJ_ALPHANUMERIC),
    ];
    for (fx, label, cnpj_in, cnpj_out) in cases {
        let step = format!("create tenant {label} ({}) with CNPJ {cnpj_out}", fx.slug);
        fx.id = c
            .step(&step, async || {
                let payload = body(label, &fx.slug, &fx.admin_email, cnpj_in);
                let r = c
                    .post("/api/super-admin/tenants", Some(&root), payload)
                    .await?;
                r.expect_status(StatusCode::CREATED)?;
                r.ensure(r.headers.contains_key(LOCATION), "Location header")?;
                r.ensure(r.str("/status") == Some("active"), "status == \"active\"")?;
                r.ensure(
                    r.str("/cnpj") == Some(cnpj_out),
                    format!("cnpj returned masked as {cnpj_out}"),
                )?;
                r.string("/id")
            })
            .await?;
    }

    c.step("a taken slug answers 409 slug_taken", async || {
        let payload = body("C", &ctx.a.slug, &ctx.email("admin-c"), CNPJ_NUMERIC);
        let r = c
            .post("/api/super-admin/tenants", Some(&root), payload)
            .await?;
        r.expect_problem(StatusCode::CONFLICT, "slug_taken")
    })
    .await?;
    c.step("an invalid CNPJ answers 422 on field cnpj", async || {
        let payload = body(
            "D",
            &format!("st-d-{run}"),
            &ctx.email("admin-d"),
            CNPJ_INVALID,
        );
        let r = c
            .post("/api/super-admin/tenants", Some(&root), payload)
            .await?;
        r.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")?;
        r.expect_field_error("cnpj")
    })
    .await?;
    c.step("malformed JSON answers 400 malformed_json", async || {
        let r = c
            .send(
                Method::POST,
                "/api/super-admin/tenants",
                Some(&root),
                Body::RawJson(r#"{"name": "Provedor", "slug": "#),
            )
            .await?;
        r.expect_problem(StatusCode::BAD_REQUEST, "malformed_json")
    })
    .await
}

pub(super) async fn tenant_admin_login(c: &Client, ctx: &mut Ctx) -> Result<()> {
    for (fx, label) in [(&mut ctx.a, "A"), (&mut ctx.b, "B")] {
        fx.admin = c
            .step(&format!("tenant {label} admin logs in"), async || {
                let r = c.login(&fx.admin_email, PASSWORD).await?;
                r.expect_status(StatusCode::OK)?;
                r.ensure(
                    r.str("/user/role") == Some("admin"),
                    "user.role == \"admin\"",
                )?;
                r.ensure(
                    r.str("/user/tenant_id") == Some(fx.id.as_str()),
                    format!("user.tenant_id == {}", fx.id),
                )?;
                r.session()
            })
            .await?;
    }
    Ok(())
}

pub(super) async fn users(c: &Client, ctx: &mut Ctx) -> Result<()> {
    let admin = ctx.a.admin.access.clone();
    for (role, extension) in [("sales", "1001"), ("viewer", "1002")] {
        let email = ctx.email(role);
        let id = c
            .step(
                &format!("tenant A admin creates a {role} user; phone normalised to E.164"),
                async || {
                    let r = c
                        .post(
                            "/api/users",
                            Some(&admin),
                            json!({
                                "name": format!("Usuário {role}"),
                                "email": email,
                                "password": PASSWORD,
                                "role": role,
                                "phone": "(11) 98765-4321",
                                "extension": extension,
                            }),
                        )
                        .await?;
                    r.expect_status(StatusCode::CREATED)?;
                    r.ensure(r.str("/role") == Some(role), format!("role == \"{role}\""))?;
                    r.ensure(
                        r.str("/phone") == Some("+5511987654321"),
                        "phone == \"+5511987654321\"",
                    )?;
                    r.ensure(
                        r.str("/tenant_id") == Some(ctx.a.id.as_str()),
                        "tenant_id is tenant A",
                    )?;
                    r.string("/id")
                },
            )
            .await?;
        ctx.a.users.push(CreatedUser { id, email, role });
    }

    c.step("GET /api/users lists the new users", async || {
        let r = c.get("/api/users?limit=200", Some(&admin)).await?;
        r.expect_status(StatusCode::OK)?;
        let ids = r.item_strings("id");
        for u in &ctx.a.users {
            r.ensure(
                ids.contains(&u.id.as_str()),
                format!("items contain {}", u.id),
            )?;
        }
        Ok(())
    })
    .await?;

    let viewer = ctx.a.user("viewer")?;
    let viewer_session = c
        .step("a viewer may not create users (403)", async || {
            let login = c.login(&viewer.email, PASSWORD).await?;
            login.expect_status(StatusCode::OK)?;
            let session = login.session()?;
            let r = c
                .post(
                    "/api/users",
                    Some(&session.access),
                    json!({"name": "Intruso", "email": ctx.email("intruso"),
                           "password": PASSWORD, "role": "sales"}),
                )
                .await?;
            r.expect_status(StatusCode::FORBIDDEN)?;
            Ok(session)
        })
        .await?;
    // The token-flow section spends this session, sparing a login against the per-IP budget.
    ctx.a.viewer_session = viewer_session;

    c.step(
        "a 5-character password answers 422 on field password",
        async || {
            let r = c
                .post(
                    "/api/users",
                    Some(&admin),
                    json!({"name": "Senha Curta", "email": ctx.email("curta"),
                       "password": "abc12", "role": "sales"}),
                )
                .await?;
            r.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")?;
            r.expect_field_error("password")
        },
    )
    .await
}

pub(super) async fn token_flows(c: &Client, ctx: &Ctx) -> Result<()> {
    let old = ctx.a.viewer_session.refresh.clone();
    let new = c
        .step("refresh rotates the refresh token", async || {
            let r = c.refresh(&old).await?;
            r.expect_status(StatusCode::OK)?;
            let new = r.session()?;
            r.ensure(new.refresh != old, "a different refresh_token")?;
            Ok(new.refresh)
        })
        .await?;
    c.step("reusing a spent refresh token answers 401", async || {
        c.refresh(&old)
            .await?
            .expect_status(StatusCode::UNAUTHORIZED)
    })
    .await?;
    c.step(
        "after a reuse the whole family is revoked: the new token answers 401",
        async || {
            c.refresh(&new)
                .await?
                .expect_status(StatusCode::UNAUTHORIZED)
        },
    )
    .await?;

    let sales = ctx.a.user("sales")?;
    let session = c
        .step("logout answers 204", async || {
            let login = c.login(&sales.email, PASSWORD).await?;
            login.expect_status(StatusCode::OK)?;
            let session = login.session()?;
            c.send(
                Method::POST,
                "/api/auth/logout",
                Some(&session.access),
                Body::Empty,
            )
            .await?
            .expect_status(StatusCode::NO_CONTENT)?;
            Ok(session)
        })
        .await?;
    c.step("after logout the access token answers 401", async || {
        c.get("/api/auth/me", Some(&session.access))
            .await?
            .expect_status(StatusCode::UNAUTHORIZED)
    })
    .await?;
    c.step("after logout the refresh token answers 401", async || {
        c.refresh(&session.refresh)
            .await?
            .expect_status(StatusCode::UNAUTHORIZED)
    })
    .await
}

pub(super) async fn isolation(c: &Client, ctx: &Ctx) -> Result<()> {
    let b_admin = ctx.b.admin.access.as_str();
    let victim = ctx.a.user("sales")?;
    let path = format!("/api/users/{}", victim.id);
    c.step(
        "tenant B cannot read, update or delete a tenant A user (404)",
        async || {
            c.get(&path, Some(b_admin))
                .await?
                .expect_status(StatusCode::NOT_FOUND)?;
            c.put(&path, Some(b_admin), json!({"name": "Sequestrado"}))
                .await?
                .expect_status(StatusCode::NOT_FOUND)?;
            c.delete(&path, Some(b_admin))
                .await?
                .expect_status(StatusCode::NOT_FOUND)
        },
    )
    .await?;
    c.step("tenant B's user list holds no tenant A user", async || {
        let r = c.get("/api/users?limit=200", Some(b_admin)).await?;
        r.expect_status(StatusCode::OK)?;
        let tenants = r.item_strings("tenant_id");
        r.ensure(
            tenants.iter().all(|t| *t == ctx.b.id),
            "every item belongs to tenant B",
        )?;
        let ids = r.item_strings("id");
        r.ensure(
            ctx.a.users.iter().all(|u| !ids.contains(&u.id.as_str())),
            "no tenant A user id",
        )
    })
    .await?;
    c.step(
        "tenant A's audit log has entries, all its own",
        async || {
            let r = c
                .get("/api/audit-logs?limit=200", Some(&ctx.a.admin.access))
                .await?;
            r.expect_status(StatusCode::OK)?;
            let tenants = r.item_strings("tenant_id");
            r.ensure(!tenants.is_empty(), "at least one entry")?;
            r.ensure(
                tenants.iter().all(|t| *t == ctx.a.id),
                "every entry belongs to tenant A",
            )
        },
    )
    .await?;
    c.step(
        "tenant B's audit log has no entry about tenant A users",
        async || {
            let r = c.get("/api/audit-logs?limit=200", Some(b_admin)).await?;
            r.expect_status(StatusCode::OK)?;
            let entities = r.item_strings("entity_id");
            r.ensure(
                ctx.a
                    .users
                    .iter()
                    .all(|u| !entities.contains(&u.id.as_str())),
                "no entity_id of a tenant A user",
            )?;
            // The filtered query reaches entries beyond the first page too.
            for u in &ctx.a.users {
                let r = c
                    .get(
                        &format!("/api/audit-logs?entity_id={}", u.id),
                        Some(b_admin),
                    )
                    .await?;
                r.expect_status(StatusCode::OK)?;
                r.ensure(
                    r.item_strings("id").is_empty(),
                    format!("no entry with entity_id {}", u.id),
                )?;
            }
            Ok(())
        },
    )
    .await
}

pub(super) async fn suspension(c: &Client, ctx: &mut Ctx) -> Result<()> {
    let root = ctx.root.access.clone();
    let base = format!("/api/super-admin/tenants/{}", ctx.a.id);
    let a = &mut ctx.a;
    c.step("super-admin suspends tenant A", async || {
        let r = c
            .post(
                &format!("{base}/suspend"),
                Some(&root),
                json!({"reason": "inadimplência"}),
            )
            .await?;
        r.expect_status(StatusCode::OK)?;
        r.ensure(
            r.str("/status") == Some("suspended"),
            "status == \"suspended\"",
        )?;
        r.ensure(
            r.str("/suspended_reason") == Some("inadimplência"),
            "suspended_reason == \"inadimplência\"",
        )
    })
    .await?;
    c.step(
        "a suspended tenant's existing token answers 403 tenant_suspended",
        async || {
            c.get("/api/auth/me", Some(&a.admin.access))
                .await?
                .expect_problem(StatusCode::FORBIDDEN, "tenant_suspended")
        },
    )
    .await?;
    c.step(
        "a suspended tenant's login answers 403 tenant_suspended",
        async || {
            c.login(&a.admin_email, PASSWORD)
                .await?
                .expect_problem(StatusCode::FORBIDDEN, "tenant_suspended")
        },
    )
    .await?;
    c.step("super-admin re-activates tenant A", async || {
        let r = c
            .send(
                Method::POST,
                &format!("{base}/activate"),
                Some(&root),
                Body::Empty,
            )
            .await?;
        r.expect_status(StatusCode::OK)?;
        r.ensure(r.str("/status") == Some("active"), "status == \"active\"")
    })
    .await?;
    a.admin = c
        .step(
            "tenant A admin logs in again after activation",
            async || {
                let r = c.login(&a.admin_email, PASSWORD).await?;
                r.expect_status(StatusCode::OK)?;
                r.session()
            },
        )
        .await?;
    c.step(
        "tenant A usage counts its users against the starter limit",
        async || {
            let r = c.get(&format!("{base}/usage"), Some(&root)).await?;
            r.expect_status(StatusCode::OK)?;
            let used = r.body.pointer("/usage/users/used").and_then(Value::as_u64);
            r.ensure(used.is_some_and(|n| n >= 3), "usage.users.used >= 3")?;
            r.ensure(
                r.body.pointer("/usage/users/limit") == Some(&json!(STARTER_MAX_USERS)),
                format!("usage.users.limit == {STARTER_MAX_USERS}"),
            )
        },
    )
    .await
}

pub(super) async fn plan_limit(c: &Client, ctx: &Ctx) -> Result<()> {
    let admin = ctx.b.admin.access.clone();
    let new_user = |n: usize| {
        json!({
            "name": format!("Vendedor {n}"),
            "email": ctx.email(&format!("b-sales-{n}")),
            "password": PASSWORD,
            "role": "sales",
        })
    };
    // Tenant B holds only its admin so far: seats 2..=5 must be accepted.
    c.step(
        &format!("tenant B fills its starter plan up to {STARTER_MAX_USERS} users"),
        async || {
            for n in 2..=STARTER_MAX_USERS {
                c.post("/api/users", Some(&admin), new_user(n))
                    .await?
                    .expect_status(StatusCode::CREATED)
                    .with_context(|| format!("user #{n} of {STARTER_MAX_USERS}"))?;
            }
            Ok(())
        },
    )
    .await?;
    c.step(
        &format!(
            "user #{} answers 402 plan_limit_exceeded",
            STARTER_MAX_USERS + 1
        ),
        async || {
            c.post("/api/users", Some(&admin), new_user(STARTER_MAX_USERS + 1))
                .await?
                .expect_problem(StatusCode::PAYMENT_REQUIRED, "plan_limit_exceeded")
        },
    )
    .await
}
