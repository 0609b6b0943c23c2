//! Regressions of the API fuzzing (issue 11): U+0000 in bodies, query strings and paths, bodies
//! that are not objects, uneven query parameter rules, panics without their request id, dangling
//! `$ref`s in the OpenAPI document, and the security headers. Each runs on SQLite and PostgreSQL.

use std::net::SocketAddr;

use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::{Resp, TestApp, spawn_app};
use serde_json::{Value, json};

/// Asserts a 422 whose errors are exactly `(field, code)`, in any order.
#[track_caller]
fn assert_fields(r: &Resp, expected: &[(&str, &str)]) {
    r.assert_problem(422, "validation_failed");
    let mut got: Vec<(String, String)> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_string(),
                e["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut expected: Vec<(String, String)> = expected
        .iter()
        .map(|(f, c)| (f.to_string(), c.to_string()))
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "{}", r.text);
}

async fn raw_json(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Resp {
    let mut rb = app
        .raw(method, path)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    TestApp::finish(rb).await
}

#[tokio::test]
async fn nul_bytes_are_removed_from_bodies_and_queries_on_both_backends() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let sa = app.superadmin_token().await;
    let tok = t.admin_token.as_str();

    // Before login, in the JSON body: the address without U+0000 is the admin's.
    let r = app
        .send(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": format!("\u{0}{}", t.admin_email), "password": t.admin_password})),
        )
        .await;
    r.assert(200);

    // Create bodies: top-level, nested, in arrays and in keys; stored without U+0000 (PostgreSQL
    // could not store it), the same on SQLite.
    let r = app
        .post(
            "/api/leads",
            tok,
            json!({"name": "Lead\u{0}Nulo", "tags": ["ok", "a\u{0}b"]}),
        )
        .await;
    r.assert(201);
    assert_eq!(r.body["name"], "LeadNulo");
    assert_eq!(r.body["tags"], json!(["ok", "ab"]));
    let r = app
        .post(
            "/api/automations",
            tok,
            json!({"name": "Auto\u{0}", "trigger": {"event": "lead.created", "filters": {"after.st\u{0}atus": "new"}},
                   "actions": [{"type": "adjust_score", "points": 1}]}),
        )
        .await;
    r.assert(201);
    assert_eq!(r.body["name"], "Auto");
    assert_eq!(r.body["trigger"]["filters"], json!({"after.status": "new"}));
    let r = app
        .post(
            "/api/super-admin/tenants",
            &sa,
            json!({"name": "Prov\u{0}edor", "slug": "nul-tenant", "email": "c@nul.com.br",
                   "subscription_plan": "starter",
                   "admin": {"name": "A", "email": "a@nul.com.br", "password": "admin-pass-1"}}),
        )
        .await;
    r.assert(201);
    assert_eq!(r.body["name"], "Provedor");

    // An escaped backslash before `u0000` is literal text, not U+0000.
    let r = raw_json(
        &app,
        Method::POST,
        "/api/leads",
        Some(tok),
        r#"{"name": "Lead \\u0000 literal"}"#,
    )
    .await;
    r.assert(201);
    assert_eq!(r.body["name"], "Lead \\u0000 literal");

    // Query strings, typed (`ApiQuery`) and hand-parsed (leads, opportunities): the value
    // without U+0000 is used (`tag=o%00k` finds the lead tagged `ok`).
    let r = app.get("/api/leads?tag=o%00k", tok).await;
    r.assert(200);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.text);
    for path in [
        "/api/leads?q=a%00",
        "/api/leads/export?q=a%00",
        "/api/pipelines/opportunities?q=%00",
        "/api/products?q=a%00b",
        "/api/users?q=a%00b",
        "/api/audit-logs?action=a%00b",
        "/api/emails?kind=a%00b",
        "/api/jobs?kind=a%00b",
        "/api/automations?event=a%00b",
    ] {
        let r = app.get(path, tok).await;
        assert_eq!(r.status.as_u16(), 200, "{path}: {}", r.text);
    }
    app.get("/api/super-admin/tenants?q=a%00b", &sa)
        .await
        .assert(200);

    // A path segment: no record's key holds U+0000.
    app.get("/api/super-admin/plans/pro%00x", &sa)
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn request_bodies_must_be_json_objects() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let sa = app.superadmin_token().await;

    let r = raw_json(
        &app,
        Method::POST,
        "/api/leads",
        Some(&t.admin_token),
        r#"["Lead Posicional","posicional@exemplo.com.br"]"#,
    )
    .await;
    assert_fields(&r, &[("body", "invalid_type")]);
    let r = app.get("/api/leads", &t.admin_token).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0, "{}", r.text);

    let body = json!([t.admin_email, t.admin_password]).to_string();
    let r = raw_json(&app, Method::POST, "/api/auth/login", None, &body).await;
    assert_fields(&r, &[("body", "invalid_type")]);
    assert!(r.body.get("access_token").is_none());

    // An optional body too: present, it must be an object.
    let path = format!("/api/super-admin/tenants/{}/suspend", t.id);
    let r = raw_json(&app, Method::POST, &path, Some(&sa), r#"["inadimplente"]"#).await;
    assert_fields(&r, &[("body", "invalid_type")]);
    let r = app
        .get(&format!("/api/super-admin/tenants/{}", t.id), &sa)
        .await;
    assert_eq!(r.body["status"], "active", "{}", r.text);

    for body in [r#""texto""#, "42", "null", "true"] {
        let r = raw_json(&app, Method::POST, "/api/auth/login", None, body).await;
        assert_fields(&r, &[("body", "invalid_type")]);
    }
    // Malformed JSON stays a 400.
    let r = raw_json(&app, Method::POST, "/api/auth/login", None, "[1,").await;
    r.assert_problem(400, "malformed_json");
}

#[tokio::test]
async fn query_parameters_follow_one_rule_everywhere() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let tok = t.admin_token.as_str();
    let l = app.post("/api/leads", tok, json!({"name": "Ativo"})).await;
    l.assert(201);
    let gone = app
        .post("/api/leads", tok, json!({"name": "Na lixeira"}))
        .await;
    gone.assert(201);
    app.delete(&format!("/api/leads/{}", gone.id()), tok)
        .await
        .assert(204);

    // Booleans are exactly true or false, on the hand-parsed lists as on the typed ones.
    for (path, field) in [
        ("/api/leads?include_total=AAA", "include_total"),
        ("/api/leads?deleted=1", "deleted"),
        (
            "/api/pipelines/opportunities?include_total=yes",
            "include_total",
        ),
        ("/api/products?include_total=AAA", "include_total"),
        ("/api/users?include_total=1", "include_total"),
    ] {
        let r = app.get(path, tok).await;
        assert_eq!(r.status.as_u16(), 422, "{path}: {}", r.text);
        assert_eq!(r.error_fields(), vec![field.to_string()], "{path}");
    }
    let r = app
        .send(
            Method::POST,
            "/api/leads?allow_duplicate=sim",
            Some(tok),
            Some(json!({"name": "Outro"})),
        )
        .await;
    assert_fields(&r, &[("allow_duplicate", "invalid_value")]);
    let names = |r: &Resp| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect()
    };
    let r = app
        .get("/api/leads?deleted=true&include_total=true", tok)
        .await;
    r.assert(200);
    assert_eq!(names(&r), vec!["Na lixeira"]);
    assert_eq!(r.body["total"], 1);
    let r = app.get("/api/leads?deleted=false", tok).await;
    assert_eq!(names(&r), vec!["Ativo"]);

    // An empty (or blank) value is an absent parameter, for every optional parameter.
    for path in [
        "/api/leads?cursor=&limit=&deleted=&include_total=&sort=&owner_id=",
        "/api/automations?cursor=&active=&limit=",
        "/api/pipelines?cursor=&include_total=",
        "/api/pipelines/opportunities?stage_id=&lead_id=&cursor=&include_total=",
        "/api/tasks?lead_id=&due=&status=&cursor=",
        "/api/emails?lead_id=&status=&cursor=",
        "/api/products?active=&limit=%20&cursor=",
        "/api/users?role=&active=&cursor=",
        "/api/jobs?status=&tenant_id=&cursor=",
        "/api/audit-logs?actor_id=&from=&cursor=",
        "/api/leads/imports?cursor=&limit=",
        "/api/leads/export?cursor=&sort=",
    ] {
        let r = app.get(path, tok).await;
        assert_eq!(r.status.as_u16(), 200, "{path}: {}", r.text);
    }
    let r = app.get("/api/leads?deleted=&sort=", tok).await;
    assert_eq!(
        names(&r),
        vec!["Ativo"],
        "`deleted=` lists the active leads"
    );

    // The export documents only the parameters it honours.
    let doc = app
        .send(Method::GET, "/apidocs/openapi.json", None, None)
        .await;
    let params: Vec<String> = doc.body["paths"]["/api/leads/export"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    for p in ["limit", "cursor", "include_total"] {
        assert!(!params.iter().any(|n| n == p), "{p} in {params:?}");
    }
    for p in ["status", "q", "deleted", "sort"] {
        assert!(params.iter().any(|n| n == p), "{p} not in {params:?}");
    }
}

async fn panics() -> axum::http::StatusCode {
    panic!("test-only route: panics on purpose")
}

#[tokio::test]
async fn a_panic_answers_500_with_its_request_id() {
    let app = spawn_app().await;
    // The production router and middleware plus one test-only route; production never mounts it.
    let extra = axum::Router::new().route("/api/test/panic", axum::routing::get(panics));
    let router = jtcrm::http::build_router_with(app.state.clone(), extra);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    let url = format!("http://{addr}/api/test/panic");

    let r = TestApp::finish(app.client.get(&url).header("x-request-id", "panic-req-1")).await;
    r.assert_problem(500, "internal_error");
    assert_eq!(r.header("x-request-id").as_deref(), Some("panic-req-1"));
    assert_eq!(r.body["request_id"], "panic-req-1", "{}", r.text);
    assert_eq!(
        r.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );

    let r = TestApp::finish(app.client.get(&url)).await;
    r.assert_problem(500, "internal_error");
    let id = r.header("x-request-id").expect("x-request-id");
    assert_eq!(r.body["request_id"], id.as_str(), "{}", r.text);

    // The server keeps serving.
    let r = TestApp::finish(app.client.get(format!("http://{addr}/health"))).await;
    r.assert(200);
}

/// Every `$ref` string in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x.as_str()) {
                    ("$ref", Some(r)) => out.push(r),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_refs_all_resolve_and_no_body_is_an_array() {
    let app = spawn_app().await;
    let r = app
        .send(Method::GET, "/apidocs/openapi.json", None, None)
        .await;
    r.assert(200);
    let doc = &r.body;
    let mut all = vec![];
    refs(doc, &mut all);
    assert!(all.len() > 100, "too few $refs: {}", all.len());
    let dangling: Vec<&str> = all
        .iter()
        .copied()
        .filter(|r| {
            r.strip_prefix('#')
                .and_then(|pointer| doc.pointer(pointer))
                .is_none()
        })
        .collect();
    assert!(dangling.is_empty(), "unresolved $refs: {dangling:?}");
    // The task agenda's `due` filter (it pointed to a schema missing from the document).
    let due = doc["paths"]["/api/tasks"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "due")
        .unwrap();
    assert!(due.to_string().contains("this_week"), "{due}");

    // Request bodies are objects (the extractors refuse anything else).
    let resolve = |s: &Value| -> Value {
        match s["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
            Some(p) => doc.pointer(p).cloned().unwrap_or(Value::Null),
            None => s.clone(),
        }
    };
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(content) = op["requestBody"]["content"].as_object() else {
                continue;
            };
            let Some(schema) = content.get("application/json").map(|c| &c["schema"]) else {
                continue;
            };
            let mut options = vec![resolve(schema)];
            for key in ["oneOf", "anyOf"] {
                if let Some(alts) = schema[key].as_array() {
                    options.extend(alts.iter().map(resolve));
                }
            }
            for o in options {
                assert_ne!(o["type"], "array", "{method} {path} takes an array body");
            }
        }
    }
}

#[tokio::test]
async fn security_headers_on_the_api_and_the_swagger_page() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    for r in [
        app.send(Method::GET, "/health", None, None).await,
        app.get("/api/leads", &t.admin_token).await,
        app.send(Method::GET, "/api/nope", None, None).await,
    ] {
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert_eq!(r.header("referrer-policy").as_deref(), Some("no-referrer"));
        assert_eq!(
            r.header("content-security-policy").as_deref(),
            Some("default-src 'none'; frame-ancestors 'none'")
        );
    }

    let page = app.send(Method::GET, "/apidocs/", None, None).await;
    page.assert(200);
    assert_eq!(
        page.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(
        page.header("referrer-policy").as_deref(),
        Some("no-referrer")
    );
    let csp = page
        .header("content-security-policy")
        .expect("CSP on /apidocs/");
    let directive = |name: &str| -> String {
        csp.split(';')
            .map(str::trim)
            .find(|d| d.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {csp}"))
            .to_string()
    };
    assert_eq!(directive("default-src"), "default-src 'none'");
    assert_eq!(directive("script-src"), "script-src 'self'");
    assert!(directive("connect-src").contains("'self'"));
    assert!(directive("img-src").contains("data:"));
    // What the page needs is allowed by that policy: scripts only from files of this origin,
    // stylesheets of this origin.
    let html = &page.text;
    assert!(html.contains("swagger-ui-bundle.js"), "{html}");
    for tag in html.split("<script").skip(1) {
        let open = tag.split('>').next().unwrap_or("");
        assert!(
            open.contains("src=\"./"),
            "inline or external script: <script{open}>"
        );
    }
    for href in html.split("href=\"").skip(1) {
        let url = href.split('"').next().unwrap_or("");
        assert!(!url.contains("://"), "external resource {url}");
    }
    for file in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-initializer.js",
    ] {
        let r = app
            .send(Method::GET, &format!("/apidocs/{file}"), None, None)
            .await;
        r.assert(200);
        assert!(r.header("content-security-policy").is_some(), "{file}");
    }
    let init = app
        .send(Method::GET, "/apidocs/swagger-initializer.js", None, None)
        .await;
    assert!(init.text.contains("/apidocs/openapi.json"), "{}", init.text);
    assert!(
        init.text.contains("\"validatorUrl\": \"none\""),
        "the validator badge would load from swagger.io: {}",
        init.text
    );
}

#[tokio::test]
async fn integers_may_be_written_with_a_zero_fraction() {
    // JSON Schema's `integer` admits `120000.0`; so do the integer fields of the API.
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let r = app
        .post(
            "/api/products",
            &t.admin_token,
            json!({"name": "Link 50", "sku": "l-50", "category": "broadband", "billing": "monthly",
                   "monthly_price_cents": 9990.0, "setup_price_cents": 1e4}),
        )
        .await;
    r.assert(201);
    assert_eq!(r.body["monthly_price_cents"], 9990);
    assert_eq!(r.body["setup_price_cents"], 10000);
    // A real fraction is still refused, naming the field.
    let r = app
        .post(
            "/api/products",
            &t.admin_token,
            json!({"name": "Link 60", "sku": "l-60", "category": "broadband", "billing": "monthly",
                   "monthly_price_cents": 9990.5}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "monthly_price_cents");
}
