//! CSV import and export of leads: encodings, separators, header mapping, row errors with line
//! numbers, dedupe policies, dry runs, resume after a crash, limits, permissions, tenant isolation,
//! and the streamed export (BOM, headers, filters, custom fields, visibility, round trip).

use std::time::Duration;

use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::{Resp, TestApp, TestTenant, spawn_app, spawn_app_with, unique};
use serde_json::{Value, json};

const BOUNDARY: &str = "jtcrmTestBoundary7MA4YWxkTrZu0gW";

enum Part<'a> {
    File(&'a str, &'a [u8]),
    Text(&'a str, &'a str),
}

fn form(parts: &[Part]) -> Vec<u8> {
    let mut b = Vec::new();
    for p in parts {
        b.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match p {
            Part::File(name, bytes) => {
                b.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n")
                        .as_bytes(),
                );
                b.extend_from_slice(bytes);
            }
            Part::Text(name, value) => {
                b.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}")
                        .as_bytes(),
                );
            }
        }
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

async fn post_form(app: &TestApp, token: &str, parts: &[Part<'_>]) -> Resp {
    TestApp::finish(
        app.raw(Method::POST, "/api/leads/import")
            .bearer_auth(token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(form(parts)),
    )
    .await
}

/// Uploads `csv` with optional text parts and waits until the import is finished.
async fn import(app: &TestApp, token: &str, csv: &[u8], opts: &[(&str, &str)]) -> Value {
    let mut parts = vec![Part::File("leads.csv", csv)];
    parts.extend(opts.iter().map(|(k, v)| Part::Text(k, v)));
    let r = post_form(app, token, &parts).await;
    r.assert(202);
    assert_eq!(r.body["status"], "queued");
    let loc = r.header("location").unwrap();
    assert_eq!(loc, format!("/api/leads/imports/{}", r.id()));
    wait(app, token, &loc).await
}

/// Polls an import until it is completed or failed (bounded).
async fn wait(app: &TestApp, token: &str, loc: &str) -> Value {
    for _ in 0..600 {
        let g = app.get(loc, token).await;
        // A slow machine can make polling hit the starter plan's API rate; back off and keep waiting.
        if g.status.as_u16() == 429 {
            tokio::time::sleep(Duration::from_millis(1000)).await;
            continue;
        }
        g.assert(200);
        if matches!(g.body["status"].as_str(), Some("completed" | "failed")) {
            return g.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("import {loc} did not finish in time");
}

async fn leads(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/leads?limit=200&{query}"), token)
        .await;
    r.assert(200);
    r.body["items"].as_array().unwrap().clone()
}

fn by_name<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {list:?}"))
}

fn errors(imp: &Value) -> Vec<(u64, String)> {
    imp["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn export(app: &TestApp, token: &str, query: &str) -> (Resp, Vec<Vec<String>>) {
    let r = app.get(&format!("/api/leads/export{query}"), token).await;
    r.assert(200);
    let body = r
        .text
        .strip_prefix('\u{feff}')
        .expect("UTF-8 BOM")
        .to_string();
    let rows = body
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split(';')
                .map(|c| c.trim_matches('"').to_string())
                .collect()
        })
        .collect();
    (r, rows)
}

#[tokio::test]
async fn lead_import_windows_1252_semicolon_pt_headers() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    // What Excel pt-BR saves: Windows-1252, `;`, CRLF.
    let csv: &[u8] = b"Nome;E-mail;Celular;Raz\xe3o Social;CNPJ;Cargo;Cidade;UF;CEP;Observa\xe7\xf5es;Tags\r\n\
Jo\xe3o da Concei\xe7\xe3o;JOAO@Fibra.com.br;(11) 98765-4321;Fibra\xe7\xe3o Telecom;11.222.333/0001-81;Diretor;S\xe3o Paulo;sp;01310-100;Cliente \"VIP\";fibra|link\r\n\
Mar\xeda;maria@rede.com.br;21 99876-5432;Rede Sul;;Gerente;Niter\xf3i;RJ;;;\r\n";
    let imp = import(&app, &t.admin_token, csv, &[]).await;
    assert_eq!(imp["status"], "completed", "{imp}");
    assert_eq!(imp["encoding"], "windows-1252");
    assert_eq!(imp["delimiter"], ";");
    assert_eq!(
        (imp["rows_total"].as_i64(), imp["rows_done"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        (imp["created"].as_i64(), imp["error_count"].as_i64()),
        (Some(2), Some(0)),
        "{imp}"
    );
    assert!(imp["finished_at"].is_string());
    assert_eq!(
        imp["columns"][3],
        json!({"header": "Razão Social", "field": "company"})
    );
    let list = leads(&app, &t.admin_token, "").await;
    let j = by_name(&list, "João da Conceição");
    assert_eq!(j["email"], "joao@fibra.com.br");
    assert_eq!(j["phone"], "+5511987654321");
    assert_eq!(j["company"], "Fibração Telecom");
    assert_eq!(j["cnpj"], "11.222.333/0001-81");
    assert_eq!(j["city"], "São Paulo");
    assert_eq!(j["state"], "SP");
    assert_eq!(j["cep"], "01310-100");
    assert_eq!(j["notes"], "Cliente \"VIP\"");
    assert_eq!(j["tags"], json!(["fibra", "link"]));
    assert_eq!(j["source"], "import");
    assert!(
        j["score"].as_i64().unwrap() > 0,
        "scored like POST /api/leads"
    );
    let m = by_name(&list, "María");
    assert_eq!(m["city"], "Niterói");
    assert!(m["cnpj"].is_null());
}

#[tokio::test]
async fn lead_import_utf8_bom_comma_english_headers_and_mapping() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    app.post(
        "/api/leads/fields",
        &t.admin_token,
        json!({"key": "segmento", "label": "Segmento", "type": "select", "options": ["provedor", "varejo"]}),
    )
    .await
    .assert(201);
    app.post(
        "/api/leads/fields",
        &t.admin_token,
        json!({"key": "links", "label": "Links", "type": "number"}),
    )
    .await
    .assert(201);
    let csv = "\u{feff}Name,Email,Phone,Company,Status,Source,Segmento,cf.links,Notes\n\
Ana Souza,ana@provedor.net,+55 31 3456-7890,Provedor Ágil,qualified,referral,Provedor,\"12,5\",\"first, second\"\n";
    let imp = import(&app, &t.admin_token, csv.as_bytes(), &[]).await;
    assert_eq!(imp["status"], "completed", "{imp}");
    assert_eq!(imp["encoding"], "utf-8");
    assert_eq!(imp["delimiter"], ",");
    assert_eq!(imp["created"], 1, "{imp}");
    let list = leads(&app, &t.admin_token, "").await;
    let a = by_name(&list, "Ana Souza");
    assert_eq!(a["phone"], "+553134567890");
    assert_eq!(a["company"], "Provedor Ágil");
    assert_eq!(a["status"], "qualified");
    assert_eq!(a["source"], "referral");
    assert_eq!(
        a["custom_fields"],
        json!({"segmento": "provedor", "links": 12.5})
    );
    assert_eq!(a["notes"], "first, second");

    // Explicit mapping: unknown headers become fields, a known one is ignored.
    let csv = "Contato;Razão;Vendedor;E-mail;Seg\nBeto;Beto Telecom;{owner};beto@x.com.br;varejo\n";
    let sales = app.create_user(&t, "sales").await;
    let csv = csv.replace("{owner}", &sales.email);
    let mapping =
        json!({"Razão": "company", "Vendedor": "owner", "e-mail": null, "Seg": "cf.segmento"})
            .to_string();
    let imp = import(
        &app,
        &t.admin_token,
        csv.as_bytes(),
        &[("mapping", &mapping)],
    )
    .await;
    assert_eq!(imp["created"], 1, "{imp}");
    let list = leads(&app, &t.admin_token, "").await;
    let b = by_name(&list, "Beto");
    assert_eq!(b["company"], "Beto Telecom");
    assert!(b["email"].is_null(), "column mapped to null is ignored");
    assert_eq!(b["owner_id"], sales.id);
    assert_eq!(b["custom_fields"]["segmento"], "varejo");

    // Mapping errors are caught on upload.
    let bad = json!({"Razão": "color"}).to_string();
    let r = post_form(
        &app,
        &t.admin_token,
        &[
            Part::File("x.csv", csv.as_bytes()),
            Part::Text("mapping", &bad),
        ],
    )
    .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["mapping.Razão"]);
    let r = post_form(
        &app,
        &t.admin_token,
        &[
            Part::File("x.csv", csv.as_bytes()),
            Part::Text("mapping", "[1]"),
        ],
    )
    .await;
    assert_eq!(r.error_fields(), vec!["mapping"]);
    let missing = json!({"Nope": "company"}).to_string();
    let r = post_form(
        &app,
        &t.admin_token,
        &[
            Part::File("x.csv", csv.as_bytes()),
            Part::Text("mapping", &missing),
        ],
    )
    .await;
    assert_eq!(r.error_fields(), vec!["mapping.Nope"]);
}

#[tokio::test]
async fn lead_import_row_errors_name_the_line() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let csv = "Nome;E-mail;Observações;UF\n\
Ana;ana@x.com.br;ok;SP\n\
Bruno;nope;\"linha 1\nlinha 2\";SP\n\
;sem-nome@x.com.br;x;SP\n\
\n\
Carla;carla@x.com.br;\"a\nb\nc\";SP\n\
Dani;dani@x.com.br;x;XX\n\
;;;\n\
Edu;edu@x.com.br;;\n";
    let imp = import(&app, &t.admin_token, csv.as_bytes(), &[]).await;
    assert_eq!(imp["status"], "completed", "{imp}");
    assert_eq!(imp["rows_total"], 6, "blank lines are not rows: {imp}");
    assert_eq!(imp["rows_done"], 6);
    assert_eq!(imp["created"], 3);
    assert_eq!(imp["error_count"], 3);
    assert_eq!(
        errors(&imp),
        vec![
            (3, "email".to_string()),
            (5, "name".to_string()),
            (10, "state".to_string())
        ],
        "{imp}"
    );
    assert!(imp["errors"][0]["message"].as_str().unwrap().len() > 3);
    let names: Vec<String> = leads(&app, &t.admin_token, "sort=name")
        .await
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["Ana", "Carla", "Edu"]);
    assert_eq!(
        by_name(&leads(&app, &t.admin_token, "").await, "Carla")["notes"],
        "a\nb\nc"
    );
}

#[tokio::test]
async fn lead_import_dedupe_policies() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let csv = "Nome;E-mail;Telefone;CNPJ;Cidade\n\
Ana;ana@x.com.br;;;Recife\n\
Bia;;(11) 98765-4321;;Recife\n\
Caio;;;11.222.333/0001-81;Recife\n";
    let first = import(&app, &t.admin_token, csv.as_bytes(), &[]).await;
    assert_eq!(first["created"], 3, "{first}");
    // Same file again, default policy skip: nothing new (matched by email, phone and CNPJ).
    let again = import(&app, &t.admin_token, csv.as_bytes(), &[]).await;
    assert_eq!(
        (again["created"].as_i64(), again["skipped"].as_i64()),
        (Some(0), Some(3)),
        "{again}"
    );
    assert_eq!(leads(&app, &t.admin_token, "").await.len(), 3);
    // update: only the file's columns change (PATCH); unchanged rows count as skipped.
    let ana = by_name(&leads(&app, &t.admin_token, "").await, "Ana").clone();
    app.send(
        Method::PATCH,
        &format!("/api/leads/{}", ana["id"].as_str().unwrap()),
        Some(&t.admin_token),
        Some(json!({"company": "Ana Ltda"})),
    )
    .await
    .assert(200);
    let upd = "Nome;E-mail;Cidade;Status\nAna Maria;ana@x.com.br;Olinda;Qualificado\nBia Nova;bia-nova@x.com.br;Recife;\n";
    let u = import(
        &app,
        &t.admin_token,
        upd.as_bytes(),
        &[("dedupe", "update")],
    )
    .await;
    assert_eq!(
        (u["updated"].as_i64(), u["created"].as_i64()),
        (Some(1), Some(1)),
        "{u}"
    );
    let list = leads(&app, &t.admin_token, "").await;
    let a = by_name(&list, "Ana Maria");
    assert_eq!(a["city"], "Olinda");
    assert_eq!(a["status"], "qualified");
    assert_eq!(
        a["company"], "Ana Ltda",
        "columns absent from the file are kept"
    );
    assert_eq!(
        a["source"], ana["source"],
        "the default source does not overwrite"
    );
    assert_eq!(a["version"], 3);
    let same = import(
        &app,
        &t.admin_token,
        upd.as_bytes(),
        &[("dedupe", "update")],
    )
    .await;
    assert_eq!(
        (same["updated"].as_i64(), same["skipped"].as_i64()),
        (Some(0), Some(2)),
        "{same}"
    );
    // create: duplicates anyway.
    let c = import(
        &app,
        &t.admin_token,
        csv.as_bytes(),
        &[("dedupe", "create")],
    )
    .await;
    assert_eq!(c["created"], 3, "{c}");
    assert_eq!(leads(&app, &t.admin_token, "").await.len(), 7);
    assert_eq!(
        leads(&app, &t.admin_token, "status=qualified").await.len(),
        1
    );
}

#[tokio::test]
async fn lead_import_dry_run_writes_nothing() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let csv = "Nome,Email\nAna,ana@x.com.br\nBia,bia@\nCaio,caio@x.com.br\n";
    let d = import(&app, &t.admin_token, csv.as_bytes(), &[("dry_run", "true")]).await;
    assert_eq!(d["status"], "completed");
    assert_eq!(d["dry_run"], true);
    assert_eq!(
        (d["rows_total"].as_i64(), d["rows_done"].as_i64()),
        (Some(3), Some(3))
    );
    assert_eq!(
        (d["created"].as_i64(), d["error_count"].as_i64()),
        (Some(2), Some(1)),
        "{d}"
    );
    assert_eq!(errors(&d), vec![(3, "email".to_string())]);
    assert!(leads(&app, &t.admin_token, "").await.is_empty());
    let usage = app.get("/api/tenant/usage", &t.admin_token).await;
    usage.assert(200);
    assert_eq!(usage.body["usage"]["leads"]["used"], 0);
}

#[tokio::test]
async fn lead_import_resumes_after_a_crash_without_duplicates() {
    use jtcrm::domains::leads::model::import as model;
    use sea_orm::{ActiveValue::Set, EntityTrait, IntoActiveModel};
    let app = spawn_app_with(|s| s.run_worker = false).await;
    let t = app.create_tenant().await;
    let csv = "Nome;E-mail\nAna;ana@x.com.br\nBia;bia@x.com.br\nCaio;caio@x.com.br\n";
    let r = post_form(
        &app,
        &t.admin_token,
        &[
            Part::File("a.csv", csv.as_bytes()),
            Part::Text("dedupe", "create"),
        ],
    )
    .await;
    r.assert(202);
    let loc = r.header("location").unwrap();
    // A first run committed its first row, then died.
    create_lead(&app, &t, json!({"name": "Ana", "email": "ana@x.com.br"})).await;
    let key = (
        uuid::Uuid::parse_str(&t.id).unwrap(),
        uuid::Uuid::parse_str(&r.id()).unwrap(),
    );
    let m = model::Entity::find_by_id(key)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let mut am = m.into_active_model();
    am.status = Set("running".into());
    am.rows_done = Set(1);
    am.created = Set(1);
    model::Entity::update(am).exec(&app.state.db).await.unwrap();
    let worker = jtcrm_kernel::jobs::Worker::spawn(
        app.state.clone(),
        jtcrm::app::registry(),
        jtcrm_kernel::jobs::WorkerOptions::default(),
    );
    let imp = wait(&app, &t.admin_token, &loc).await;
    worker.shutdown().await;
    assert_eq!(imp["status"], "completed", "{imp}");
    assert_eq!(
        (imp["rows_done"].as_i64(), imp["created"].as_i64()),
        (Some(3), Some(3)),
        "{imp}"
    );
    let names: Vec<String> = leads(&app, &t.admin_token, "sort=name")
        .await
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        vec!["Ana", "Bia", "Caio"],
        "the committed row is not imported again"
    );
}

async fn create_lead(app: &TestApp, t: &TestTenant, body: Value) -> String {
    let r = app.post("/api/leads", &t.admin_token, body).await;
    r.assert(201);
    r.id()
}

#[tokio::test]
async fn lead_import_stops_at_the_plan_limit() {
    let app = spawn_app().await;
    let sa = app.superadmin_token().await;
    let code = unique("l3-");
    app.post(
        "/api/super-admin/plans",
        &sa,
        json!({"code": code, "name": "Três", "limits": {"max_users": 5, "max_leads": 3}}),
    )
    .await
    .assert(201);
    let t = app.create_tenant_on(&code).await;
    create_lead(&app, &t, json!({"name": "Já existe"})).await;
    let csv = "Nome\nA\nB\nC\nD\n";
    let dry = import(&app, &t.admin_token, csv.as_bytes(), &[("dry_run", "true")]).await;
    assert_eq!(dry["status"], "completed");
    assert_eq!(dry["created"], 2);
    assert_eq!(errors(&dry), vec![(4, "limit".to_string())], "{dry}");
    let imp = import(&app, &t.admin_token, csv.as_bytes(), &[]).await;
    assert_eq!(imp["status"], "failed", "{imp}");
    assert_eq!(imp["created"], 2);
    assert_eq!(imp["rows_done"], 3);
    assert_eq!(errors(&imp), vec![(4, "limit".to_string())]);
    assert!(
        imp["failure"].as_str().unwrap().contains("linha 4"),
        "{imp}"
    );
    assert_eq!(leads(&app, &t.admin_token, "").await.len(), 3);
}

#[tokio::test]
async fn lead_import_rejects_bad_uploads() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let csv = b"Nome\nAna\n".as_slice();
    post_form(&app, &t.admin_token, &[Part::Text("dedupe", "skip")])
        .await
        .assert_problem(422, "validation_failed");
    let r = post_form(&app, &t.admin_token, &[Part::Text("dedupe", "skip")]).await;
    assert_eq!(r.error_fields(), vec!["file"]);
    for (bytes, code) in [
        (b"".as_slice(), "empty_file"),
        (b"\xEF\xBB\xBF\r\n \n".as_slice(), "empty_file"),
        (
            b"Telefone;Cidade\n11987654321;Recife\n".as_slice(),
            "missing_name_column",
        ),
    ] {
        let r = post_form(&app, &t.admin_token, &[Part::File("x.csv", bytes)]).await;
        r.assert_problem(422, "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], "file", "{}", r.text);
        assert_eq!(r.body["errors"][0]["code"], code, "{}", r.text);
    }
    let r = post_form(
        &app,
        &t.admin_token,
        &[
            Part::File("x.csv", csv),
            Part::Text("dedupe", "merge"),
            Part::Text("dry_run", "talvez"),
        ],
    )
    .await;
    assert_eq!(r.error_fields(), vec!["dedupe", "dry_run"]);
    let r = TestApp::finish(
        app.raw(Method::POST, "/api/leads/import")
            .bearer_auth(&t.admin_token)
            .header("content-type", "text/csv")
            .body("Nome\nAna\n"),
    )
    .await;
    r.assert_problem(415, "unsupported_media_type");
    // Over 50 MiB.
    let mut big = b"Nome;Notas\n".to_vec();
    let line = format!("Ana;{}\n", "x".repeat(1000));
    while big.len() <= 50 * 1024 * 1024 {
        big.extend_from_slice(line.as_bytes());
    }
    let r = post_form(&app, &t.admin_token, &[Part::File("big.csv", &big)]).await;
    r.assert_problem(413, "payload_too_large");
    // Roles.
    for role in ["viewer", "support"] {
        let u = app.create_user(&t, role).await;
        post_form(&app, &u.token, &[Part::File("x.csv", csv)])
            .await
            .assert_problem(403, "forbidden");
    }
    app.send(Method::POST, "/api/leads/import", None, None)
        .await
        .assert(401);
    assert!(leads(&app, &t.admin_token, "").await.is_empty());
    let list = app.get("/api/leads/imports", &t.admin_token).await;
    list.assert(200);
    assert_eq!(
        list.body["items"],
        json!([]),
        "rejected uploads leave no import"
    );
}

#[tokio::test]
async fn lead_imports_are_per_tenant_and_per_seller() {
    let app = spawn_app().await;
    let a = app.create_tenant().await;
    let b = app.create_tenant().await;
    let seller = app.create_user(&a, "sales").await;
    let other = app.create_user(&a, "sales").await;
    let imp = import(&app, &seller.token, b"Nome;E-mail\nAna;ana@x.com.br\n", &[]).await;
    assert_eq!(imp["created"], 1, "{imp}");
    assert_eq!(imp["created_by"], seller.id);
    let id = imp["id"].as_str().unwrap();
    let lead = &leads(&app, &seller.token, "").await[0];
    assert_eq!(
        lead["owner_id"], seller.id,
        "a seller's imported lead is theirs"
    );
    // Another tenant: 404 and an empty list.
    app.get(&format!("/api/leads/imports/{id}"), &b.admin_token)
        .await
        .assert_problem(404, "not_found");
    let list = app.get("/api/leads/imports", &b.admin_token).await;
    assert_eq!(list.body["items"], json!([]));
    // Another seller of the same tenant does not see it; the admin does.
    app.get(&format!("/api/leads/imports/{id}"), &other.token)
        .await
        .assert_problem(404, "not_found");
    assert_eq!(
        app.get("/api/leads/imports", &other.token).await.body["items"],
        json!([])
    );
    let all = app.get("/api/leads/imports", &a.admin_token).await;
    assert_eq!(all.body["items"][0]["id"], id);
    assert!(
        all.body["items"][0].get("errors").is_none(),
        "lists omit errors"
    );
    // Keyset pagination, newest first.
    import(&app, &a.admin_token, b"Nome\nBia\n", &[]).await;
    let p1 = app.get("/api/leads/imports?limit=1", &a.admin_token).await;
    assert_eq!(p1.body["items"].as_array().unwrap().len(), 1);
    let cursor = p1.body["next_cursor"].as_str().unwrap();
    let p2 = app
        .get(
            &format!("/api/leads/imports?limit=1&cursor={cursor}"),
            &a.admin_token,
        )
        .await;
    assert_eq!(p2.body["items"][0]["id"], id);
    assert!(p2.body["next_cursor"].is_null());
    app.get("/api/leads/imports/nope", &a.admin_token)
        .await
        .assert_problem(400, "invalid_id");
}

#[tokio::test]
async fn lead_export_streams_excel_csv() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    app.post(
        "/api/leads/fields",
        &t.admin_token,
        json!({"key": "segmento", "label": "Segmento", "type": "select", "options": ["provedor", "varejo"]}),
    )
    .await
    .assert(201);
    create_lead(
        &app,
        &t,
        json!({"name": "João", "email": "joao@x.com.br", "phone": "11987654321", "cnpj": "11222333000181", "cep": "01310100",
               "status": "qualified", "tags": ["a", "b"], "custom_fields": {"segmento": "provedor"}, "company": "=HYPERLINK(\"x\")"}),
    )
    .await;
    create_lead(&app, &t, json!({"name": "Maria; \"M\"", "status": "new"})).await;
    let (r, rows) = export(&app, &t.admin_token, "").await;
    assert_eq!(r.header("content-type").unwrap(), "text/csv; charset=utf-8");
    let cd = r.header("content-disposition").unwrap();
    assert!(
        cd.starts_with("attachment; filename=\"leads-") && cd.ends_with(".csv\""),
        "{cd}"
    );
    assert_eq!(
        rows[0],
        [
            "Nome",
            "E-mail",
            "Telefone",
            "Empresa",
            "CNPJ",
            "Cargo",
            "Origem",
            "Status",
            "Responsável",
            "Tags",
            "CEP",
            "Cidade",
            "UF",
            "Pontuação",
            "Criado em",
            "Atualizado em",
            "Segmento"
        ]
    );
    assert_eq!(rows.len(), 3, "oldest first: {rows:?}");
    let j = &rows[1];
    assert_eq!(j[0], "João");
    assert_eq!(j[2], "(11) 98765-4321");
    assert!(j[3].starts_with("'="), "formulas are defused: {}", j[3]);
    assert_eq!(j[4], "11.222.333/0001-81");
    assert_eq!(j[7], "Qualificado");
    assert_eq!(j[9], "a, b");
    assert_eq!(j[10], "01310-100");
    assert_eq!(j[16], "provedor");
    assert!(
        r.text.contains("\"Maria; \"\"M\"\"\""),
        "quoted: {}",
        r.text
    );
    let (_, q) = export(&app, &t.admin_token, "?status=qualified").await;
    assert_eq!(q.len(), 2);
    assert_eq!(q[1][0], "João");
    let (_, desc) = export(
        &app,
        &t.admin_token,
        "?sort=-created_at&limit=1000&cursor=x",
    )
    .await;
    assert!(desc[1][0].starts_with("Maria"));
    app.get("/api/leads/export?status=hot", &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
    // Visibility: a seller exports only their own leads; a viewer may export what it sees.
    let seller = app.create_user(&t, "sales").await;
    app.post("/api/leads", &seller.token, json!({"name": "Do vendedor"}))
        .await
        .assert(201);
    let (_, mine) = export(&app, &seller.token, "").await;
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert_eq!(mine[1][0], "Do vendedor");
    assert_eq!(mine[1][8], seller.id);
    let viewer = app.create_user(&t, "viewer").await;
    assert_eq!(export(&app, &viewer.token, "").await.1.len(), 4);
    let other = app.create_tenant().await;
    assert_eq!(
        export(&app, &other.admin_token, "").await.1.len(),
        1,
        "only the header"
    );
}

#[tokio::test]
async fn lead_export_pages_and_round_trips() {
    let app = spawn_app().await;
    let a = app.create_tenant().await;
    let b = app.create_tenant().await;
    // More than one export page (1000) goes through the importer and back.
    let mut csv = String::from("Nome;E-mail;Telefone;Empresa;Cidade;UF;Status;Tags\n");
    for i in 0..1205 {
        csv.push_str(&format!(
            "Lead {i:04};lead{i}@empresa{i}.com.br;(11) 9{:04}-{:04};Empresa {i};Cidade {};SP;{};t{}|=x\n",
            i % 10_000,
            (i * 7) % 10_000,
            i % 13,
            if i % 3 == 0 { "Qualificado" } else { "new" },
            i % 5
        ));
    }
    let imp = import(&app, &a.admin_token, csv.as_bytes(), &[]).await;
    assert_eq!(
        (imp["created"].as_i64(), imp["error_count"].as_i64()),
        (Some(1205), Some(0)),
        "{imp}"
    );
    let (r, rows) = export(&app, &a.admin_token, "").await;
    assert_eq!(rows.len(), 1206);
    assert_eq!(rows[1][0], "Lead 0000");
    assert_eq!(rows[1205][0], "Lead 1204");
    let back = import(&app, &b.admin_token, r.text.as_bytes(), &[]).await;
    assert_eq!(back["status"], "completed", "{back}");
    assert_eq!(
        (back["created"].as_i64(), back["error_count"].as_i64()),
        (Some(1205), Some(0)),
        "{back}"
    );
    let one = |t: &TestTenant| {
        let t = t.admin_token.clone();
        let app = &app;
        async move { leads(app, &t, "q=lead3@empresa3.com.br").await.remove(0) }
    };
    let (la, lb) = (one(&a).await, one(&b).await);
    for k in [
        "name", "email", "phone", "company", "city", "state", "status", "tags", "score",
    ] {
        assert_eq!(la[k], lb[k], "{k}");
    }
    assert_eq!(lb["tags"], json!(["t3", "=x"]));
    assert_eq!(
        leads(&app, &b.admin_token, "status=qualified&include_total=true")
            .await
            .len(),
        200
    );
    let total = app
        .get(
            "/api/leads?status=qualified&include_total=true",
            &b.admin_token,
        )
        .await;
    assert_eq!(total.body["total"], 402);
}

#[tokio::test]
async fn lead_import_body_limit_is_per_route() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    // Above the global 1 MiB body limit, below the import's 50 MiB.
    let notes = "x".repeat(2 * 1024 * 1024);
    let csv = format!("Nome;Observações\nAna;{notes}\nBia;curta\n");
    let imp = import(&app, &t.admin_token, csv.as_bytes(), &[]).await;
    assert_eq!(imp["status"], "completed", "{imp}");
    assert_eq!(
        (imp["created"].as_i64(), imp["error_count"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(errors(&imp), vec![(2, "notes".to_string())]);
    // Other routes keep the global limit.
    let r = TestApp::finish(
        app.raw(Method::POST, "/api/leads")
            .bearer_auth(&t.admin_token)
            .header("content-type", "application/json")
            .body(json!({"name": "x", "notes": notes}).to_string()),
    )
    .await;
    r.assert_problem(413, "payload_too_large");
    // Over the limit without a Content-Length (chunked): the multipart reader stops at the limit.
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut rd, mut wr) = sock.split();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = format!(
        "POST /api/leads/import HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\n\r\n",
        t.admin_token
    );
    let writer = async {
        wr.write_all(head.as_bytes()).await?;
        let start = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n\r\nNome;Notas\n"
        );
        wr.write_all(format!("{:x}\r\n{start}\r\n", start.len()).as_bytes())
            .await?;
        let chunk = format!("Ana;{}\n", "y".repeat(64 * 1024));
        for _ in 0..(51 * 16) {
            wr.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
                .await?;
        }
        std::io::Result::Ok(())
    };
    let reader = async {
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&got).to_string()
    };
    let (_, response) = tokio::join!(writer, reader);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
}

#[tokio::test]
async fn lead_transfer_routes_are_documented() {
    let app = spawn_app().await;
    let r = app
        .send(Method::GET, "/apidocs/openapi.json", None, None)
        .await;
    r.assert(200);
    let paths = &r.body["paths"];
    for p in [
        "/api/leads/import",
        "/api/leads/imports",
        "/api/leads/imports/{id}",
        "/api/leads/export",
    ] {
        assert!(paths.get(p).is_some(), "{p} missing from OpenAPI");
    }
    let body = &paths["/api/leads/import"]["post"]["requestBody"]["content"]["multipart/form-data"];
    assert!(
        body["schema"].is_object(),
        "multipart body undocumented: {}",
        paths["/api/leads/import"]
    );
    assert!(
        paths["/api/leads/export"]["get"]["responses"]["200"]["content"]["text/csv"].is_object()
    );
    for s in [
        "LeadImport",
        "LeadImportForm",
        "ImportRowError",
        "DedupePolicy",
    ] {
        assert!(
            r.body["components"]["schemas"].get(s).is_some(),
            "{s} schema missing"
        );
    }
}

#[tokio::test]
async fn lead_import_headers_starting_with_accented_letters() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    // Each header starts with a multi-byte letter within its first three bytes.
    let csv = "Orçamento;Nome;Início;Seção;Ção\n1500;Ana;2026-01-05;Vendas;x\n";
    let imp = import(&app, &t.admin_token, csv.as_bytes(), &[]).await;
    assert_eq!(imp["status"], "completed", "{imp}");
    assert_eq!(imp["created"], 1, "{imp}");
    let cols: Vec<(String, Value)> = imp["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["header"].as_str().unwrap().to_string(),
                c["field"].clone(),
            )
        })
        .collect();
    assert_eq!(cols[1], ("Nome".to_string(), json!("name")), "{imp}");
    assert!(
        cols.iter()
            .filter(|(h, _)| h != "Nome")
            .all(|(_, f)| f.is_null()),
        "{imp}"
    );
    assert_eq!(leads(&app, &t.admin_token, "").await.len(), 1);
}

#[tokio::test]
async fn lead_import_handles_nul_bytes() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    // A NUL in a mapped cell fails its row; in an unmapped column it is never read.
    let csv = b"Nome;E-mail;Extra\nAna;ana@x.com.br;a\x00b\nBru\x00no;bruno@x.com.br;ok\nCarla;car\x00la@x.com.br;ok\n";
    let imp = import(&app, &t.admin_token, csv, &[]).await;
    assert_eq!(imp["status"], "completed", "{imp}");
    assert_eq!(imp["created"], 1, "{imp}");
    assert_eq!(imp["error_count"], 2, "{imp}");
    assert_eq!(
        errors(&imp),
        vec![(3, "name".to_string()), (4, "email".to_string())],
        "{imp}"
    );
    assert!(
        imp["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("U+0000"),
        "{imp}"
    );
    let names: Vec<Value> = leads(&app, &t.admin_token, "")
        .await
        .iter()
        .map(|l| l["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("Ana")]);

    // In a header or a text part: U+0000 is removed, as in JSON bodies.
    let ok = b"Nome\nDavi\n".as_slice();
    for parts in [
        vec![Part::File("x.csv", b"Nome;Ex\x00tra\nDavi;x\n".as_slice())],
        vec![
            Part::File("x.csv", ok),
            Part::Text("mapping", r#"{"Nome\u0000": "name"}"#),
        ],
        vec![Part::File("x.csv", ok), Part::Text("dedupe", "sk\0ip")],
    ] {
        let r = post_form(&app, &t.admin_token, &parts).await;
        assert_eq!(r.status.as_u16(), 202, "{}", r.text);
    }
    let imp = import(&app, &t.admin_token, b"Nome;Ex\x00tra\nDavi;x\n", &[]).await;
    assert_eq!(imp["columns"][1]["header"], "Extra", "{imp}");
    let list = app.get("/api/leads/imports", &t.admin_token).await;
    assert_eq!(
        list.body["items"].as_array().unwrap().len(),
        5,
        "{}",
        list.text
    );
}
