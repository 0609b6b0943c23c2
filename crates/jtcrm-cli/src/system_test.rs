//! `jtcrm system-test`: the end-to-end scenario run against a live deployment over HTTP.
//! Stops at the first broken step, printing the step, the HTTP status and the response body.

use std::cell::Cell;
use std::fmt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// Every user the scenario creates gets this password; 8+ chars per the password policy.
const PASSWORD: &str = "Senha-forte-2026";
const CNPJ_NUMERIC_BARE: &str = "11222333000181";
const CNPJ_NUMERIC: &str = "11.222.333/0001-81";
const CNPJ_ALPHANUMERIC: &str = "12.ABC.345/01DE-35";
const CNPJ_INVALID: &str = "11.222.333/0001-00";
const STARTER_MAX_USERS: usize = 5;

pub async fn run(url: &str, verbose: bool) -> Result<ExitCode> {
    let root_email = env_var("JTCRM_SUPERADMIN_EMAIL")?;
    let root_password = env_var("JTCRM_SUPERADMIN_PASSWORD")?;
    let client = Client::new(url, verbose)?;
    let mut ctx = Ctx::new(root_email, root_password);
    println!("system-test against {} (run {})", client.base, ctx.run);

    let outcome = scenario(&client, &mut ctx).await;
    println!(
        "{} passed, {} failed",
        client.passed.get(),
        client.failed.get()
    );
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // `step` has already printed the failing step with its response.
        Err(e) if e.is::<StepFailed>() => Ok(ExitCode::FAILURE),
        Err(e) => Err(e),
    }
}

fn env_var(name: &str) -> Result<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .with_context(|| format!("defina {name} com as credenciais do super-admin da implantação"))
}

/// Sections run in order; each relies on what the previous ones stored in [`Ctx`].
async fn scenario(c: &Client, ctx: &mut Ctx) -> Result<()> {
    health(c).await?;
    api_docs(c).await?;
    super_admin_login(c, ctx).await?;
    plans(c, ctx).await?;
    tenants(c, ctx).await?;
    tenant_admin_login(c, ctx).await?;
    users(c, ctx).await?;
    token_flows(c, ctx).await?;
    isolation(c, ctx).await?;
    suspension(c, ctx).await?;
    plan_limit(c, ctx).await?;
    leads(c, ctx).await?;
    lead_transfer(c, ctx).await?;
    agenda(c, ctx).await?;
    sales_pipeline(c, ctx).await?;
    automations(c, ctx).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Scenario state

/// What the sections share: tokens and ids created along the way.
struct Ctx {
    /// Suffix that keeps names, emails and slugs unique so the scenario can rerun on one server.
    run: String,
    root_email: String,
    root_password: String,
    root: Session,
    a: TenantFx,
    b: TenantFx,
}

impl Ctx {
    fn new(root_email: String, root_password: String) -> Self {
        // The tail of a v7 UUID is random; its head is the clock and would repeat within a run.
        let id = Uuid::now_v7().simple().to_string();
        let run = id[id.len() - 8..].to_string();
        let fixture = |label: &str| TenantFx {
            slug: format!("st-{label}-{run}"),
            admin_email: format!("admin-{label}-{run}@system-test.example.com"),
            ..TenantFx::default()
        };
        Self {
            a: fixture("a"),
            b: fixture("b"),
            run,
            root_email,
            root_password,
            root: Session::default(),
        }
    }

    fn email(&self, who: &str) -> String {
        format!("{who}-{}@system-test.example.com", self.run)
    }
}

#[derive(Default)]
struct TenantFx {
    id: String,
    slug: String,
    admin_email: String,
    admin: Session,
    /// A viewer's login, spent by the token-flow section.
    viewer_session: Session,
    /// Users created by the scenario besides the admin.
    users: Vec<CreatedUser>,
}

#[derive(Default, Clone)]
struct Session {
    access: String,
    refresh: String,
}

struct CreatedUser {
    id: String,
    email: String,
    role: &'static str,
}

// ---------------------------------------------------------------------------------------------
// Sections

async fn health(c: &Client) -> Result<()> {
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

async fn api_docs(c: &Client) -> Result<()> {
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

async fn super_admin_login(c: &Client, ctx: &mut Ctx) -> Result<()> {
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

async fn plans(c: &Client, ctx: &Ctx) -> Result<()> {
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

async fn tenants(c: &Client, ctx: &mut Ctx) -> Result<()> {
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

async fn tenant_admin_login(c: &Client, ctx: &mut Ctx) -> Result<()> {
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

async fn users(c: &Client, ctx: &mut Ctx) -> Result<()> {
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

async fn token_flows(c: &Client, ctx: &Ctx) -> Result<()> {
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

async fn isolation(c: &Client, ctx: &Ctx) -> Result<()> {
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

async fn suspension(c: &Client, ctx: &mut Ctx) -> Result<()> {
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

async fn plan_limit(c: &Client, ctx: &Ctx) -> Result<()> {
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

async fn leads(c: &Client, ctx: &Ctx) -> Result<()> {
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
async fn admin_token(c: &Client, email: &str) -> Result<String> {
    let r = c.login(email, PASSWORD).await?;
    r.expect_status(StatusCode::OK)?;
    Ok(r.str("/access_token").unwrap_or_default().to_string())
}

/// A multipart/form-data body with one CSV file part named `file`.
fn csv_upload(csv: &str) -> (String, Vec<u8>) {
    let boundary = format!("jtcrm-{}", Uuid::now_v7().simple());
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"leads.csv\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes());
    body.extend_from_slice(csv.as_bytes());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn lead_transfer(c: &Client, ctx: &Ctx) -> Result<()> {
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

async fn agenda(c: &Client, ctx: &Ctx) -> Result<()> {
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

async fn sales_pipeline(c: &Client, ctx: &Ctx) -> Result<()> {
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

async fn automations(c: &Client, ctx: &Ctx) -> Result<()> {
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
    fn user(&self, role: &str) -> Result<&CreatedUser> {
        self.users.iter().find(|u| u.role == role).ok_or_else(|| {
            anyhow!(
                "cenário: nenhum usuário {role} criado no tenant {}",
                self.slug
            )
        })
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP client and checks

/// Marks an error that `step` has already reported, so `run` does not print it twice.
#[derive(Debug)]
struct StepFailed;

impl fmt::Display for StepFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("step failed")
    }
}

impl std::error::Error for StepFailed {}

/// A response that did not meet a check, kept whole so the report shows what the server said.
#[derive(Debug)]
struct CheckFailed {
    expected: String,
    request: String,
    status: StatusCode,
    body: Value,
}

impl fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body =
            serde_json::to_string_pretty(&self.body).unwrap_or_else(|_| self.body.to_string());
        write!(
            f,
            "expected {}\n  request: {}\n  status:  {}\n  body:    {}",
            self.expected,
            self.request,
            self.status,
            body.replace('\n', "\n           ")
        )
    }
}

impl std::error::Error for CheckFailed {}

enum Body<'a> {
    Empty,
    Json(Value),
    /// Sent as `application/json` unchecked, to exercise the server's parser.
    RawJson(&'a str),
    /// A prepared body with its content type (multipart uploads).
    Raw(String, Vec<u8>),
}

struct Client {
    http: reqwest::Client,
    base: String,
    verbose: bool,
    // Cells so steps can borrow the client shared while their closures also use it.
    passed: Cell<usize>,
    failed: Cell<usize>,
}

impl Client {
    fn new(base: &str, verbose: bool) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("criando o cliente HTTP")?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            verbose,
            passed: Cell::new(0),
            failed: Cell::new(0),
        })
    }

    /// Runs one checked step: prints `✔ name` on success, or the failure with its response.
    async fn step<T>(&self, name: &str, check: impl AsyncFnOnce() -> Result<T>) -> Result<T> {
        match check().await {
            Ok(value) => {
                self.passed.set(self.passed.get() + 1);
                println!("✔ {name}");
                Ok(value)
            }
            Err(e) => {
                self.failed.set(self.failed.get() + 1);
                println!("✘ {name}");
                println!("  {e:#}");
                Err(StepFailed.into())
            }
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Result<Response> {
        self.send(Method::GET, path, token, Body::Empty).await
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Result<Response> {
        self.send(Method::POST, path, token, Body::Json(body)).await
    }

    async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Result<Response> {
        self.send(Method::PUT, path, token, Body::Json(body)).await
    }

    async fn delete(&self, path: &str, token: Option<&str>) -> Result<Response> {
        self.send(Method::DELETE, path, token, Body::Empty).await
    }

    async fn login(&self, email: &str, password: &str) -> Result<Response> {
        let body = json!({"email": email, "password": password});
        self.post("/api/auth/login", None, body).await
    }

    async fn refresh(&self, refresh_token: &str) -> Result<Response> {
        let body = json!({"refresh_token": refresh_token});
        self.post("/api/auth/refresh", None, body).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Body<'_>,
    ) -> Result<Response> {
        let request = format!("{method} {path}");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req = match body {
            Body::Empty => req,
            Body::Json(v) => req.json(&v),
            Body::RawJson(raw) => req
                .header(CONTENT_TYPE, "application/json")
                .body(raw.to_string()),
            Body::Raw(content_type, bytes) => req.header(CONTENT_TYPE, content_type).body(bytes),
        };
        let started = Instant::now();
        let res = req.send().await.with_context(|| request.clone())?;
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.with_context(|| request.clone())?;
        if self.verbose {
            println!(
                "    {request} → {} ({} ms)",
                status.as_u16(),
                started.elapsed().as_millis()
            );
        }
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(Response {
            request,
            status,
            headers,
            body,
        })
    }
}

struct Response {
    /// `METHOD /path`, for failure reports.
    request: String,
    status: StatusCode,
    headers: HeaderMap,
    /// JSON when the body parses as JSON, otherwise the raw text; `Null` when empty.
    body: Value,
}

impl Response {
    fn fail(&self, expected: impl Into<String>) -> anyhow::Error {
        CheckFailed {
            expected: expected.into(),
            request: self.request.clone(),
            status: self.status,
            body: self.body.clone(),
        }
        .into()
    }

    fn expect_status(&self, want: StatusCode) -> Result<()> {
        self.ensure(self.status == want, format!("status {want}"))
    }

    /// A problem+json error with the given status and stable `code`.
    fn expect_problem(&self, want: StatusCode, code: &str) -> Result<()> {
        self.ensure(
            self.status == want && self.str("/code") == Some(code),
            format!("status {want} with code \"{code}\""),
        )
    }

    fn expect_field_error(&self, field: &str) -> Result<()> {
        let fields = self
            .body
            .get("errors")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        self.ensure(
            fields.iter().any(|e| e["field"] == field),
            format!("an errors[] entry with field \"{field}\""),
        )
    }

    fn ensure(&self, ok: bool, expected: impl Into<String>) -> Result<()> {
        if ok { Ok(()) } else { Err(self.fail(expected)) }
    }

    /// The string at a JSON pointer, e.g. `/user/role`.
    fn str(&self, pointer: &str) -> Option<&str> {
        self.body.pointer(pointer).and_then(Value::as_str)
    }

    fn string(&self, pointer: &str) -> Result<String> {
        self.str(pointer)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| self.fail(format!("a string at {pointer}")))
    }

    /// The string `field` of every element of `items` in a page.
    fn item_strings(&self, field: &str) -> Vec<&str> {
        self.body
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|item| item.get(field).and_then(Value::as_str))
            .collect()
    }

    /// The tokens of a login or refresh answer.
    fn session(&self) -> Result<Session> {
        Ok(Session {
            access: self.string("/access_token")?,
            refresh: self.string("/refresh_token")?,
        })
    }
}
