use std::collections::HashSet;

use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::{Resp, TestApp, TestTenant, spawn_app};
use serde_json::{Value, json};

const OPPS: &str = "/api/pipelines/opportunities";

fn ids(r: &Resp) -> Vec<String> {
    r.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {}", r.text))
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

async fn default_pipeline(app: &TestApp, token: &str) -> Value {
    let r = app.get("/api/pipelines", token).await;
    r.assert(200);
    r.body["items"][0].clone()
}

fn stage(p: &Value, name: &str) -> String {
    p["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {p}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn product(app: &TestApp, token: &str, body: Value) -> String {
    let r = app.post("/api/products", token, body).await;
    r.assert(201);
    r.id()
}

async fn deal(app: &TestApp, token: &str, body: Value) -> String {
    let r = app.post(OPPS, token, body).await;
    r.assert(201);
    r.id()
}

async fn patch(app: &TestApp, path: &str, token: &str, body: Value) -> Resp {
    app.send(Method::PATCH, path, Some(token), Some(body)).await
}

async fn mv(app: &TestApp, token: &str, id: &str, body: Value) -> Resp {
    app.post(&format!("{OPPS}/{id}/move"), token, body).await
}

async fn board(app: &TestApp, token: &str, pipeline: &str, query: &str) -> Value {
    let r = app
        .get(&format!("/api/pipelines/{pipeline}/board{query}"), token)
        .await;
    r.assert(200);
    r.body
}

fn column<'a>(b: &'a Value, stage_id: &str) -> &'a Value {
    b["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == stage_id)
        .unwrap()
}

fn card_ids(b: &Value, stage_id: &str) -> Vec<String> {
    column(b, stage_id)["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every card of a stage in order, through the list's `sort=position` pages.
async fn stage_cards(app: &TestApp, token: &str, stage_id: &str) -> Vec<Value> {
    let mut out = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("{OPPS}?stage_id={stage_id}&sort=position&limit=7");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&path, token).await;
        r.assert(200);
        out.extend(r.body["items"].as_array().unwrap().iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

fn assert_strictly_ordered(cards: &[Value]) {
    let pos: Vec<i64> = cards
        .iter()
        .map(|c| c["position"].as_i64().unwrap())
        .collect();
    for w in pos.windows(2) {
        assert!(w[0] < w[1], "positions not strictly increasing: {pos:?}");
    }
}

#[tokio::test]
async fn new_tenants_get_a_default_pt_br_pipeline() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let r = app.get("/api/pipelines", &t.admin_token).await;
    r.assert(200);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let p = &items[0];
    assert_eq!(p["name"], "Funil de Vendas");
    assert_eq!(p["is_default"], true);
    let stages: Vec<(&str, i64, &str)> = p["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["probability"].as_i64().unwrap(),
                s["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        stages,
        vec![
            ("Prospecção", 10, "open"),
            ("Qualificação", 25, "open"),
            ("Proposta", 50, "open"),
            ("Negociação", 75, "open"),
            ("Fechado Ganho", 100, "won"),
            ("Fechado Perdido", 0, "lost"),
        ]
    );
    for (i, s) in p["stages"].as_array().unwrap().iter().enumerate() {
        assert_eq!(s["position"], i as i64);
        assert!(s["color"].as_str().unwrap().starts_with('#'));
    }
    let one = app
        .get(
            &format!("/api/pipelines/{}", p["id"].as_str().unwrap()),
            &t.admin_token,
        )
        .await;
    one.assert(200);
    assert_eq!(one.body["stages"], p["stages"]);
    let usage = app.get("/api/tenant/usage", &t.admin_token).await;
    usage.assert(200);
    assert_eq!(usage.body["usage"]["pipelines"]["used"], 1);
}

#[tokio::test]
async fn pipelines_crud_default_and_plan_limit() {
    let app = spawn_app().await;
    let t = app.create_tenant().await; // starter: max_pipelines = 2
    let first = default_pipeline(&app, &t.admin_token).await;
    let r = app
        .post(
            "/api/pipelines",
            &t.admin_token,
            json!({"name": "Corporativo", "stages": [
                {"name": "Contato", "probability": 20},
                {"name": "Proposta", "probability": 60, "color": "#0ea5e9"},
                {"name": "Ganho", "kind": "won"},
                {"name": "Perdido", "kind": "lost"}]}),
        )
        .await;
    r.assert(201);
    let id = r.id();
    assert_eq!(r.body["is_default"], false);
    assert_eq!(r.body["stages"][1]["color"], "#0EA5E9");
    assert_eq!(r.body["stages"][2]["probability"], 100);
    assert_eq!(
        r.header("location").unwrap(),
        format!("/api/pipelines/{id}")
    );
    let third = app
        .post(
            "/api/pipelines",
            &t.admin_token,
            json!({"name": "Terceiro"}),
        )
        .await;
    third.assert_problem(402, "plan_limit_exceeded");
    assert_eq!(third.body["context"]["limit"], "max_pipelines");

    // Rename with If-Match; a stale version is refused.
    let path = format!("/api/pipelines/{id}");
    let stale = TestApp::finish(
        app.raw(Method::PUT, &path)
            .bearer_auth(&t.admin_token)
            .header("if-match", "\"0\"")
            .json(&json!({"name": "X"})),
    )
    .await;
    stale.assert_problem(412, "precondition_failed");
    let put = TestApp::finish(
        app.raw(Method::PUT, &path)
            .bearer_auth(&t.admin_token)
            .header("if-match", "\"1\"")
            .json(&json!({"name": "Corporativo B2B", "is_default": true})),
    )
    .await;
    put.assert(200);
    assert_eq!(put.body["name"], "Corporativo B2B");
    assert_eq!(put.body["is_default"], true);
    let old = app
        .get(
            &format!("/api/pipelines/{}", first["id"].as_str().unwrap()),
            &t.admin_token,
        )
        .await;
    assert_eq!(old.body["is_default"], false, "only one default");
    app.put(
        &path,
        &t.admin_token,
        json!({"name": "X", "is_default": false}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.put(&path, &t.admin_token, json!({"name": "X", "stages": []}))
        .await
        .assert_problem(422, "validation_failed");

    // A deal in the pipeline blocks its deletion.
    let d = deal(
        &app,
        &t.admin_token,
        json!({"title": "Link", "pipeline_id": id}),
    )
    .await;
    app.delete(&path, &t.admin_token)
        .await
        .assert_problem(409, "pipeline_not_empty");
    app.delete(&format!("{OPPS}/{d}"), &t.admin_token)
        .await
        .assert(204);
    app.delete(&path, &t.admin_token).await.assert(204);
    app.get(&path, &t.admin_token)
        .await
        .assert_problem(404, "not_found");
    // The slot is free again, and the remaining pipeline became the default.
    let again = default_pipeline(&app, &t.admin_token).await;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["is_default"], true);
    app.post("/api/pipelines", &t.admin_token, json!({"name": "Novo"}))
        .await
        .assert(201);
    let list = app
        .get("/api/pipelines?include_total=true", &t.admin_token)
        .await;
    assert_eq!(list.body["total"], 2);
    let new = &list.body["items"][1];
    assert_eq!(new["stages"].as_array().unwrap().len(), 6, "default stages");
}

#[tokio::test]
async fn stages_are_added_changed_reordered_and_removed() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let p = default_pipeline(&app, &t.admin_token).await;
    let pid = p["id"].as_str().unwrap().to_string();
    let base = format!("/api/pipelines/{pid}/stages");
    let r = app
        .post(
            &base,
            &t.admin_token,
            json!({"name": "Visita técnica", "probability": 40, "position": 2}),
        )
        .await;
    r.assert(201);
    let visit = r.id();
    assert_eq!(r.body["position"], 2);
    let stages = app.get(&base, &t.admin_token).await;
    let names: Vec<&str> = stages
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names[..4],
        ["Prospecção", "Qualificação", "Visita técnica", "Proposta"]
    );
    for (i, s) in stages.body.as_array().unwrap().iter().enumerate() {
        assert_eq!(s["position"], i as i64);
    }
    app.post(
        &base,
        &t.admin_token,
        json!({"name": "", "probability": 101, "kind": "maybe", "color": "red"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    let r = app
        .post(
            &base,
            &t.admin_token,
            json!({"probability": 101, "kind": "maybe", "color": "red"}),
        )
        .await;
    let f = r.error_fields();
    for x in ["name", "probability", "kind", "color"] {
        assert!(f.contains(&x.to_string()), "{x} missing in {f:?}");
    }

    // Deals in the new stage follow its probability unless they override it.
    let d1 = deal(
        &app,
        &t.admin_token,
        json!({"title": "A", "stage_id": visit}),
    )
    .await;
    let d2 = deal(
        &app,
        &t.admin_token,
        json!({"title": "B", "stage_id": visit, "probability": 90}),
    )
    .await;
    let r = app
        .put(
            &format!("{base}/{visit}"),
            &t.admin_token,
            json!({"name": "Visita", "probability": 45}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["name"], "Visita");
    assert_eq!(r.body["kind"], "open", "absent keys kept");
    let o1 = app.get(&format!("{OPPS}/{d1}"), &t.admin_token).await;
    assert_eq!(o1.body["probability"], 45);
    let o2 = app.get(&format!("{OPPS}/{d2}"), &t.admin_token).await;
    assert_eq!(o2.body["probability"], 90);
    assert_eq!(o2.body["probability_overridden"], true);
    // The kind of a stage with deals cannot change.
    app.put(
        &format!("{base}/{visit}"),
        &t.admin_token,
        json!({"kind": "won"}),
    )
    .await
    .assert_problem(409, "stage_not_empty");

    // Reorder: a permutation of every stage.
    let mut order: Vec<String> = app
        .get(&base, &t.admin_token)
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    order.reverse();
    let r = app
        .put(&base, &t.admin_token, json!({"stage_ids": order}))
        .await;
    r.assert(200);
    let got: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, order.iter().map(String::as_str).collect::<Vec<_>>());
    app.put(&base, &t.admin_token, json!({"stage_ids": order[1..]}))
        .await
        .assert_problem(422, "validation_failed");
    app.put(
        &base,
        &t.admin_token,
        json!({"stage_ids": [uuid::Uuid::now_v7()]}),
    )
    .await
    .assert_problem(404, "not_found");
    app.put(&base, &t.admin_token, json!({"stage_ids": "x"}))
        .await
        .assert_problem(422, "validation_failed");

    // Removing a stage with deals needs a target of the same pipeline and kind.
    let qual = stage(&p, "Qualificação");
    let won = stage(&p, "Fechado Ganho");
    let r = app.delete(&format!("{base}/{visit}"), &t.admin_token).await;
    r.assert_problem(409, "stage_not_empty");
    assert_eq!(r.body["context"]["field"], "move_to");
    app.delete(&format!("{base}/{visit}?move_to={won}"), &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
    app.delete(&format!("{base}/{visit}?move_to={visit}"), &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
    app.delete(
        &format!("{base}/{visit}?move_to={}", uuid::Uuid::now_v7()),
        &t.admin_token,
    )
    .await
    .assert_problem(404, "not_found");
    app.delete(&format!("{base}/{visit}?move_to=abc"), &t.admin_token)
        .await
        .assert_problem(422, "validation_failed");
    let existing = deal(
        &app,
        &t.admin_token,
        json!({"title": "Q", "stage_id": qual}),
    )
    .await;
    app.delete(&format!("{base}/{visit}?move_to={qual}"), &t.admin_token)
        .await
        .assert(204);
    let cards = stage_cards(&app, &t.admin_token, &qual).await;
    let ids: Vec<&str> = cards.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids[0], existing, "moved deals go after the target's cards");
    assert_eq!(ids.len(), 3);
    assert_strictly_ordered(&cards);
    let o1 = app.get(&format!("{OPPS}/{d1}"), &t.admin_token).await;
    assert_eq!(o1.body["stage_id"], qual.as_str());
    assert_eq!(o1.body["probability"], 25);
    let h = app
        .get(&format!("{OPPS}/{d1}/history"), &t.admin_token)
        .await;
    let last = h.body.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event"], "stage_changed");
    assert_eq!(last["from_stage_name"], "Visita");
    assert_eq!(last["to_stage_name"], "Qualificação");
    // The last open stage stays.
    let p2 = app
        .post(
            "/api/pipelines",
            &t.admin_token,
            json!({"name": "Mínimo", "stages": [{"name": "Única"}, {"name": "Ganho", "kind": "won"}]}),
        )
        .await;
    p2.assert(201);
    let only = p2.body["stages"][0]["id"].as_str().unwrap().to_string();
    let p2id = p2.id();
    app.delete(
        &format!("/api/pipelines/{p2id}/stages/{only}"),
        &t.admin_token,
    )
    .await
    .assert_problem(422, "validation_failed");
    app.put(
        &format!("/api/pipelines/{p2id}/stages/{only}"),
        &t.admin_token,
        json!({"kind": "lost"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.post(
        "/api/pipelines",
        &t.admin_token,
        json!({"name": "Sem abertas", "stages": [{"name": "Ganho", "kind": "won"}]}),
    )
    .await
    .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn deal_money_is_computed_in_integer_cents() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let tok = &t.admin_token;
    let link = product(
        &app,
        tok,
        json!({"name": "Link Dedicado 100 Mbps", "sku": "LD-100", "category": "dedicated_internet",
               "billing": "monthly", "monthly_price_cents": 120000, "setup_price_cents": 50000}),
    )
    .await;
    let voip = product(
        &app,
        tok,
        json!({"name": "VoIP", "sku": "VOIP", "category": "voip", "billing": "monthly", "monthly_price_cents": 9999}),
    )
    .await;
    let router = product(
        &app,
        tok,
        json!({"name": "Roteador", "sku": "EQ-1", "category": "equipment", "billing": "one_time", "setup_price_cents": 45050}),
    )
    .await;
    let r = app
        .post(
            OPPS,
            tok,
            json!({"title": "FibraNet", "term_months": 24, "expected_close_date": "2026-12-20", "items": [
                {"product_id": link, "quantity": 2, "discount_percent": 10},
                {"product_id": voip, "quantity": 3, "discount_percent": 12.5},
                {"product_id": router, "discount_percent": 33.33}
            ]}),
        )
        .await;
    r.assert(201);
    let b = &r.body;
    let items = b["items"].as_array().unwrap();
    // 2 × 1200,00 × 90 % = 2160,00/month; 2 × 500,00 × 90 % = 900,00 setup.
    assert_eq!(items[0]["monthly_total_cents"], 216000);
    assert_eq!(items[0]["setup_total_cents"], 90000);
    assert_eq!(
        items[0]["monthly_price_cents"], 120000,
        "defaults from the product"
    );
    assert_eq!(items[0]["product_name"], "Link Dedicado 100 Mbps");
    // 3 × 99,99 × 87,5 % = 262,47375 → 262,47 (half up to the cent).
    assert_eq!(items[1]["monthly_total_cents"], 26247);
    assert_eq!(items[1]["discount_percent"], 12.5);
    // 450,50 × 66,67 % = 300,34835 → 300,35.
    assert_eq!(items[2]["monthly_total_cents"], 0);
    assert_eq!(items[2]["setup_total_cents"], 30035);
    assert_eq!(items[2]["quantity"], 1);
    assert_eq!(b["mrr_cents"], 242247);
    assert_eq!(b["setup_cents"], 120035);
    assert_eq!(b["tcv_cents"], 242247 * 24 + 120035);
    assert_eq!(b["value_cents"], b["tcv_cents"]);
    // Prospecção: 10 % of 59.339,63 = 5.933,963 → 5.933,96.
    assert_eq!(b["probability"], 10);
    assert_eq!(b["weighted_cents"], 593396);
    assert_eq!(b["expected_close_date"], "2026-12-20");
    let id = r.id();
    let path = format!("{OPPS}/{id}");

    // Term change recomputes the TCV from the stored lines.
    let r = patch(&app, &path, tok, json!({"term_months": 36})).await;
    r.assert(200);
    assert_eq!(r.body["tcv_cents"], 242247 * 36 + 120035);
    assert_eq!(
        r.body["items"].as_array().unwrap().len(),
        3,
        "PATCH keeps lines"
    );
    // Overridden unit prices; a line id keeps the rest of that line.
    let line0 = r.body["items"][0]["id"].as_str().unwrap().to_string();
    let r = patch(
        &app,
        &path,
        tok,
        json!({"items": [{"id": line0, "monthly_price_cents": 100000}, {"product_id": voip, "monthly_price_cents": 10000, "quantity": 1}]}),
    )
    .await;
    r.assert(200);
    assert_eq!(r.body["items"][0]["id"], line0.as_str());
    assert_eq!(r.body["items"][0]["quantity"], 2);
    assert_eq!(r.body["items"][0]["discount_percent"], 10.0);
    assert_eq!(r.body["items"][0]["monthly_total_cents"], 180000);
    assert_eq!(r.body["items"][1]["monthly_total_cents"], 10000);
    assert_eq!(r.body["mrr_cents"], 190000);
    assert_eq!(r.body["setup_cents"], 90000);
    assert_eq!(r.body["tcv_cents"], 190000 * 36 + 90000);
    // With lines the value is computed; a different value_cents is refused.
    let r = patch(&app, &path, tok, json!({"value_cents": 1})).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["value_cents"]);

    // Deactivated products stay on deals that use them but cannot be added.
    app.send(
        Method::PATCH,
        &format!("/api/products/{link}"),
        Some(tok),
        Some(json!({"active": false})),
    )
    .await
    .assert(200);
    let again = patch(
        &app,
        &path,
        tok,
        json!({"items": [{"id": line0}], "notes": "ok"}),
    )
    .await;
    again.assert(200);
    assert_eq!(again.body["items"][0]["monthly_total_cents"], 180000);
    let r = app
        .post(
            OPPS,
            tok,
            json!({"title": "Novo", "items": [{"product_id": link}]}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["items[0].product_id"]);
    // A deleted product: the deal keeps its line and its totals.
    app.delete(&format!("/api/products/{link}"), tok)
        .await
        .assert(204);
    let got = app.get(&path, tok).await;
    got.assert(200);
    assert_eq!(
        got.body["items"][0]["product_name"],
        "Link Dedicado 100 Mbps"
    );
    assert_eq!(got.body["mrr_cents"], 180000);
    let kept = patch(
        &app,
        &path,
        tok,
        json!({"items": [{"id": line0, "quantity": 1}]}),
    )
    .await;
    kept.assert(200);
    assert_eq!(kept.body["items"][0]["monthly_total_cents"], 90000);
    app.post(
        OPPS,
        tok,
        json!({"title": "Novo", "items": [{"product_id": link}]}),
    )
    .await
    .assert_problem(404, "not_found");

    // Without lines: a one-off value; weighted rounds half up (10,05 × 50 % = 5,025 → 5,03).
    let p = default_pipeline(&app, tok).await;
    let r = app
        .post(
            OPPS,
            tok,
            json!({"title": "Avulso", "value_cents": 1005, "stage_id": stage(&p, "Proposta")}),
        )
        .await;
    r.assert(201);
    assert_eq!(r.body["tcv_cents"], 1005);
    assert_eq!(r.body["mrr_cents"], 0);
    assert_eq!(r.body["weighted_cents"], 503);
    assert_eq!(r.body["term_months"], 12);
    assert!(r.body["items"].as_array().unwrap().is_empty());
    // PUT without items removes the lines.
    let put = app
        .put(&path, tok, json!({"title": "FibraNet", "value_cents": 777}))
        .await;
    put.assert(200);
    assert!(put.body["items"].as_array().unwrap().is_empty());
    assert_eq!(put.body["value_cents"], 777);
    assert_eq!(put.body["mrr_cents"], 0);
    assert_eq!(
        put.body["term_months"], 36,
        "PUT keeps the term when absent"
    );
}

#[tokio::test]
async fn opportunity_bad_input_gets_problem_json() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let tok = &t.admin_token;
    let p = default_pipeline(&app, tok).await;
    let voip = product(
        &app,
        tok,
        json!({"name": "VoIP", "sku": "VOIP", "category": "voip", "billing": "monthly", "monthly_price_cents": 9999}),
    )
    .await;
    let r = TestApp::finish(
        app.raw(Method::POST, OPPS)
            .bearer_auth(tok)
            .header("content-type", "application/json")
            .body("{\"title\": \"x\","),
    )
    .await;
    r.assert_problem(400, "malformed_json");
    let r = app.post(OPPS, tok, json!({})).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["title"]);
    let r = app
        .post(OPPS, tok, json!({"title": "x", "term_months": "12"}))
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["term_months"]);
    assert_eq!(r.body["errors"][0]["code"], "invalid_type");
    let r = app
        .post(
            OPPS,
            tok,
            json!({"title": "x", "expected_close_date": "20/12/2026"}),
        )
        .await;
    assert_eq!(r.error_fields(), vec!["expected_close_date"]);
    let r = app
        .post(OPPS, tok, json!({"title": "x", "stage_id": "abc"}))
        .await;
    assert_eq!(r.error_fields(), vec!["stage_id"]);
    let r = app
        .post(
            OPPS,
            tok,
            json!({"title": "x", "term_months": 0, "probability": 120, "value_cents": -5,
                   "items": [{"product_id": voip, "quantity": 0, "discount_percent": 12.345, "monthly_price_cents": -1}]}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    let f = r.error_fields();
    for x in [
        "term_months",
        "probability",
        "items[0].quantity",
        "items[0].discount_percent",
        "items[0].monthly_price_cents",
    ] {
        assert!(f.contains(&x.to_string()), "{x} missing in {f:?}");
    }
    let r = app
        .post(OPPS, tok, json!({"title": "x", "items": [{"quantity": 1}]}))
        .await;
    assert_eq!(r.error_fields(), vec!["items[0].product_id"]);
    let r = app
        .post(OPPS, tok, json!({"title": "x", "value_cents": -5}))
        .await;
    assert_eq!(r.error_fields(), vec!["value_cents"]);
    let r = app
        .post(OPPS, tok, json!({"title": "x", "status": "won"}))
        .await;
    assert_eq!(r.error_fields(), vec!["status"]);
    // A lost stage needs a reason; a reason needs a lost deal.
    let lost = stage(&p, "Fechado Perdido");
    let r = app
        .post(OPPS, tok, json!({"title": "x", "stage_id": lost}))
        .await;
    assert_eq!(r.error_fields(), vec!["lost_reason"]);
    let r = app
        .post(OPPS, tok, json!({"title": "x", "lost_reason": "caro"}))
        .await;
    assert_eq!(r.error_fields(), vec!["lost_reason"]);
    // Unknown references are 404 naming the field.
    for (field, body) in [
        (
            "stage_id",
            json!({"title": "x", "stage_id": uuid::Uuid::now_v7()}),
        ),
        (
            "pipeline_id",
            json!({"title": "x", "pipeline_id": uuid::Uuid::now_v7()}),
        ),
        (
            "lead_id",
            json!({"title": "x", "lead_id": uuid::Uuid::now_v7()}),
        ),
        (
            "items[0].product_id",
            json!({"title": "x", "items": [{"product_id": uuid::Uuid::now_v7()}]}),
        ),
    ] {
        let r = app.post(OPPS, tok, body).await;
        r.assert_problem(404, "not_found");
        assert_eq!(r.body["context"]["field"], field);
    }
    let r = app
        .post(
            OPPS,
            tok,
            json!({"title": "x", "owner_id": uuid::Uuid::now_v7()}),
        )
        .await;
    assert_eq!(r.error_fields(), vec!["owner_id"]);
    app.get(&format!("{OPPS}/xyz"), tok)
        .await
        .assert_problem(400, "invalid_id");
    app.get(&format!("{OPPS}/{}", uuid::Uuid::now_v7()), tok)
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("/api/pipelines/{}", uuid::Uuid::now_v7()), tok)
        .await
        .assert_problem(404, "not_found");
    app.get(
        &format!("/api/pipelines/{}/board", uuid::Uuid::now_v7()),
        tok,
    )
    .await
    .assert_problem(404, "not_found");
    let pid = p["id"].as_str().unwrap();
    app.get(&format!("/api/pipelines/{pid}/board?limit=0"), tok)
        .await
        .assert_problem(422, "validation_failed");
    for q in [
        "status=hot",
        "sort=color",
        "limit=500",
        "cursor=zzz",
        "stage_id=1",
        "close_from=ontem",
        "value_min=abc",
        "owner_id=x",
    ] {
        app.get(&format!("{OPPS}?{q}"), tok)
            .await
            .assert_problem(422, "validation_failed");
    }
    // Moves and status actions.
    let id = deal(&app, tok, json!({"title": "x"})).await;
    let r = mv(&app, tok, &id, json!({"stage_id": 5})).await;
    assert_eq!(r.error_fields(), vec!["stage_id"]);
    mv(&app, tok, &id, json!({"stage_id": uuid::Uuid::now_v7()}))
        .await
        .assert_problem(404, "not_found");
    let r = mv(&app, tok, &id, json!({"before_id": uuid::Uuid::now_v7()})).await;
    r.assert_problem(404, "not_found");
    assert_eq!(r.body["context"]["field"], "before_id");
    let r = mv(&app, tok, &id, json!({"after_id": id})).await;
    assert_eq!(r.error_fields(), vec!["after_id"]);
    let other = deal(
        &app,
        tok,
        json!({"title": "y", "stage_id": stage(&p, "Proposta")}),
    )
    .await;
    let r = mv(&app, tok, &id, json!({"before_id": other})).await;
    assert_eq!(
        r.error_fields(),
        vec!["before_id"],
        "anchor not in the target stage"
    );
    let r = mv(&app, tok, &id, json!({"stage_id": lost})).await;
    assert_eq!(r.error_fields(), vec!["lost_reason"]);
    let r = app
        .post(&format!("{OPPS}/{id}/lost"), tok, json!({"reason": "  "}))
        .await;
    assert_eq!(r.error_fields(), vec!["reason"]);
    let r = TestApp::finish(
        app.raw(Method::POST, &format!("{OPPS}/{id}/move"))
            .bearer_auth(tok)
            .header("content-type", "application/json")
            .body("{"),
    )
    .await;
    r.assert_problem(400, "malformed_json");
    let stale = TestApp::finish(
        app.raw(Method::PATCH, &format!("{OPPS}/{id}"))
            .bearer_auth(tok)
            .header("if-match", "\"9\"")
            .json(&json!({"title": "z"})),
    )
    .await;
    stale.assert_problem(412, "precondition_failed");
}

#[tokio::test]
async fn opportunity_list_filters_sorts_and_pages() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let tok = &t.admin_token;
    let p = default_pipeline(&app, tok).await;
    let seller = app.create_user(&t, "sales").await;
    let prop = stage(&p, "Proposta");
    let lead = app
        .post("/api/leads", tok, json!({"name": "Lead X"}))
        .await
        .id();
    let mut made = vec![];
    for i in 0..9i64 {
        let mut body = json!({"title": format!("Negócio {i}"), "value_cents": (i + 1) * 1000,
                              "expected_close_date": format!("2026-12-{:02}", i + 1)});
        if i % 3 == 0 {
            body["stage_id"] = json!(prop);
        }
        if i % 2 == 0 {
            body["owner_id"] = json!(seller.id);
        }
        if i == 4 {
            body["lead_id"] = json!(lead);
            body["title"] = json!("Conexão Fibra Ótica");
        }
        made.push(deal(&app, tok, body).await);
    }
    let r = app.get(OPPS, tok).await;
    r.assert(200);
    let mut newest_first = made.clone();
    newest_first.reverse();
    assert_eq!(ids(&r), newest_first, "default -created_at");
    assert!(
        r.body["items"][0].get("items").is_none(),
        "lines omitted in lists"
    );
    let r = app.get(&format!("{OPPS}?stage_id={prop}"), tok).await;
    assert_eq!(ids(&r).len(), 3);
    let r = app
        .get(
            &format!("{OPPS}?owner_id={}&stage_id={prop}", seller.id),
            tok,
        )
        .await;
    assert_eq!(ids(&r), vec![made[6].clone(), made[0].clone()]);
    let r = app.get(&format!("{OPPS}?lead_id={lead}"), tok).await;
    assert_eq!(ids(&r), vec![made[4].clone()]);
    let r = app.get(&format!("{OPPS}?q=conexao%20otica"), tok).await;
    assert_eq!(ids(&r), vec![made[4].clone()]);
    let r = app
        .get(&format!("{OPPS}?value_min=3000&value_max=5000"), tok)
        .await;
    assert_eq!(ids(&r).len(), 3);
    let r = app
        .get(
            &format!("{OPPS}?close_from=2026-12-08&close_to=2026-12-09"),
            tok,
        )
        .await;
    assert_eq!(ids(&r), vec![made[8].clone(), made[7].clone()]);
    let r = app
        .get(
            &format!(
                "{OPPS}?status=open&pipeline_id={}&include_total=true",
                p["id"].as_str().unwrap()
            ),
            tok,
        )
        .await;
    assert_eq!(r.body["total"], 9);
    let r = app.get(&format!("{OPPS}?owner_id=none"), tok).await;
    assert!(ids(&r).is_empty());
    // Sort by value with keyset pages.
    for sort in [
        "value_cents",
        "-value_cents",
        "title",
        "-updated_at",
        "tcv_cents",
    ] {
        let mut seen = vec![];
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("{OPPS}?sort={sort}&limit=4");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let r = app.get(&path, tok).await;
            r.assert(200);
            seen.extend(ids(&r));
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 9, "{sort}");
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 9, "{sort}");
        if sort == "value_cents" {
            assert_eq!(seen, made);
        }
        if sort == "-value_cents" {
            assert_eq!(seen, newest_first);
        }
    }
    // A cursor of another sort is refused.
    let r = app
        .get(&format!("{OPPS}?sort=value_cents&limit=2"), tok)
        .await;
    let c = r.body["next_cursor"].as_str().unwrap().to_string();
    app.get(&format!("{OPPS}?sort=title&cursor={c}"), tok)
        .await
        .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn kanban_moves_keep_a_stable_order_and_a_history() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let tok = &t.admin_token;
    let p = default_pipeline(&app, tok).await;
    let pid = p["id"].as_str().unwrap().to_string();
    let (pros, qual, prop) = (
        stage(&p, "Prospecção"),
        stage(&p, "Qualificação"),
        stage(&p, "Proposta"),
    );
    // New cards go to the top of their stage.
    let mut c = vec![];
    for i in 0..4 {
        c.push(deal(&app, tok, json!({"title": format!("C{i}")})).await);
    }
    let b = board(&app, tok, &pid, "").await;
    assert_eq!(
        card_ids(&b, &pros),
        vec![c[3].clone(), c[2].clone(), c[1].clone(), c[0].clone()]
    );
    // Within the stage: c0 before c2, c3 after c1.
    mv(&app, tok, &c[0], json!({"before_id": c[2]}))
        .await
        .assert(200);
    mv(
        &app,
        tok,
        &c[3],
        json!({"stage_id": pros, "after_id": c[1]}),
    )
    .await
    .assert(200);
    let b = board(&app, tok, &pid, "").await;
    assert_eq!(
        card_ids(&b, &pros),
        vec![c[0].clone(), c[2].clone(), c[1].clone(), c[3].clone()]
    );
    // Across stages.
    let r = mv(&app, tok, &c[2], json!({"stage_id": qual})).await;
    r.assert(200);
    assert_eq!(r.body["stage_id"], qual.as_str());
    assert_eq!(r.body["probability"], 25);
    assert_eq!(r.body["version"], 2);
    assert!(r.body["items"].is_array());
    mv(
        &app,
        tok,
        &c[1],
        json!({"stage_id": qual, "after_id": c[2]}),
    )
    .await
    .assert(200);
    mv(
        &app,
        tok,
        &c[0],
        json!({"stage_id": qual, "before_id": c[1]}),
    )
    .await
    .assert(200);
    let b = board(&app, tok, &pid, "").await;
    assert_eq!(card_ids(&b, &pros), vec![c[3].clone()]);
    assert_eq!(
        card_ids(&b, &qual),
        vec![c[2].clone(), c[0].clone(), c[1].clone()]
    );
    assert_eq!(column(&b, &qual)["count"], 3);
    // PATCH with a new stage moves to the top of it, with history.
    let r = patch(
        &app,
        &format!("{OPPS}/{}", c[3]),
        tok,
        json!({"stage_id": prop}),
    )
    .await;
    r.assert(200);
    assert_eq!(r.body["stage_id"], prop.as_str());
    assert_eq!(r.body["probability"], 50);
    // History with the time spent in each stage.
    let h = app.get(&format!("{OPPS}/{}/history", c[0]), tok).await;
    h.assert(200);
    let h = h.body.as_array().unwrap();
    let events: Vec<&str> = h.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        vec!["created", "stage_changed"],
        "moves within a stage are not stage changes"
    );
    assert!(h[0]["from_stage_id"].is_null());
    assert_eq!(h[0]["to_stage_name"], "Prospecção");
    assert_eq!(h[1]["from_stage_name"], "Prospecção");
    assert_eq!(h[1]["to_stage_name"], "Qualificação");
    assert_eq!(h[1]["actor_id"], t.admin_id.as_str());
    assert!(h[1]["seconds_in_from_stage"].as_i64().unwrap() >= 0);
    // Audit entries for the moves.
    let logs = app
        .get(
            &format!("/api/audit-logs?entity_type=opportunity&entity_id={}", c[0]),
            tok,
        )
        .await;
    let actions: Vec<&str> = logs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "move").count(),
        2,
        "{actions:?}"
    );
    assert!(actions.contains(&"create"));

    // Dropping into the same slot again and again forces a renumbering; order stays right.
    let anchor = c[2].clone();
    for i in 0..40 {
        let who = if i % 2 == 0 { &c[0] } else { &c[1] };
        mv(
            &app,
            tok,
            who,
            json!({"stage_id": qual, "after_id": anchor}),
        )
        .await
        .assert(200);
    }
    let cards = stage_cards(&app, tok, &qual).await;
    let order: Vec<&str> = cards.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(order, vec![c[2].as_str(), c[1].as_str(), c[0].as_str()]);
    assert_strictly_ordered(&cards);
}

#[tokio::test]
async fn concurrent_moves_never_lose_or_duplicate_cards() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let tok = t.admin_token.clone();
    let p = default_pipeline(&app, &tok).await;
    let pid = p["id"].as_str().unwrap().to_string();
    let (pros, qual) = (stage(&p, "Prospecção"), stage(&p, "Qualificação"));
    let anchor = deal(&app, &tok, json!({"title": "Âncora", "stage_id": qual})).await;
    let mut cards = vec![];
    for i in 0..16 {
        cards.push(
            deal(
                &app,
                &tok,
                json!({"title": format!("Card {i}"), "value_cents": 100}),
            )
            .await,
        );
    }
    let fire = |bodies: Vec<(String, Value)>| {
        let mut set = tokio::task::JoinSet::new();
        for (id, body) in bodies {
            let client = app.client.clone();
            let url = app.url(&format!("{OPPS}/{id}/move"));
            let tok = tok.clone();
            set.spawn(async move {
                client
                    .post(url)
                    .bearer_auth(tok)
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            });
        }
        set
    };
    // Wave 1: every card into the same stage at the same time, around the same anchor.
    let wave: Vec<(String, Value)> = cards
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let body = match i % 3 {
                0 => json!({"stage_id": qual, "before_id": anchor}),
                1 => json!({"stage_id": qual, "after_id": anchor}),
                _ => json!({"stage_id": qual}),
            };
            (id.clone(), body)
        })
        .collect();
    let mut set = fire(wave);
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap().unwrap(), 200);
    }
    let in_qual = stage_cards(&app, &tok, &qual).await;
    assert_eq!(in_qual.len(), 17, "no card lost");
    let unique: HashSet<&str> = in_qual.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), 17, "no card twice");
    assert_strictly_ordered(&in_qual);
    assert!(stage_cards(&app, &tok, &pros).await.is_empty());

    // Wave 2: concurrent reordering inside the stage and moves back out.
    let ordered: Vec<String> = in_qual
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let wave: Vec<(String, Value)> = ordered
        .iter()
        .enumerate()
        .filter(|(_, id)| **id != anchor)
        .map(|(i, id)| {
            let body = match i % 4 {
                0 => json!({"stage_id": pros}),
                1 => json!({"after_id": anchor}),
                2 => json!({"before_id": anchor}),
                _ => json!({"stage_id": pros, "lost_reason": "ignored"}),
            };
            (id.clone(), body)
        })
        .collect();
    let mut set = fire(wave);
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap().unwrap(), 200);
    }
    let a = stage_cards(&app, &tok, &pros).await;
    let b = stage_cards(&app, &tok, &qual).await;
    assert_eq!(a.len() + b.len(), 17);
    let all: HashSet<String> = a
        .iter()
        .chain(b.iter())
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(all.len(), 17);
    assert_strictly_ordered(&a);
    assert_strictly_ordered(&b);
    // The board agrees with the lists.
    let bd = board(&app, &tok, &pid, "?limit=200").await;
    assert_eq!(column(&bd, &pros)["count"], a.len() as i64);
    assert_eq!(column(&bd, &qual)["count"], b.len() as i64);
    assert_eq!(card_ids(&bd, &pros).len(), a.len());
}

#[tokio::test]
async fn won_lost_and_reopen() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let tok = &t.admin_token;
    let p = default_pipeline(&app, tok).await;
    let (prop, won, lost) = (
        stage(&p, "Proposta"),
        stage(&p, "Fechado Ganho"),
        stage(&p, "Fechado Perdido"),
    );
    let id = deal(
        &app,
        tok,
        json!({"title": "Deal", "stage_id": prop, "value_cents": 5000}),
    )
    .await;
    let r = app.post(&format!("{OPPS}/{id}/won"), tok, json!({})).await;
    r.assert(200);
    assert_eq!(r.body["status"], "won");
    assert_eq!(r.body["stage_id"], won.as_str());
    assert_eq!(r.body["probability"], 100);
    assert!(r.body["closed_at"].is_string());
    app.post(&format!("{OPPS}/{id}/won"), tok, json!({}))
        .await
        .assert_problem(409, "invalid_state_transition");
    let r = app
        .post(&format!("{OPPS}/{id}/reopen"), tok, json!({}))
        .await;
    r.assert(200);
    assert_eq!(r.body["status"], "open");
    assert_eq!(
        r.body["stage_id"],
        prop.as_str(),
        "back to the stage it was won from"
    );
    assert!(r.body["closed_at"].is_null());
    app.post(&format!("{OPPS}/{id}/reopen"), tok, json!({}))
        .await
        .assert_problem(409, "invalid_state_transition");
    let r = app
        .post(
            &format!("{OPPS}/{id}/lost"),
            tok,
            json!({"reason": "Preço"}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["status"], "lost");
    assert_eq!(r.body["stage_id"], lost.as_str());
    assert_eq!(r.body["lost_reason"], "Preço");
    // Editing a lost deal keeps its reason.
    let r = patch(&app, &format!("{OPPS}/{id}"), tok, json!({"notes": "x"})).await;
    r.assert(200);
    assert_eq!(r.body["lost_reason"], "Preço");
    // Moving into an open stage reopens; into the won stage wins.
    let r = mv(&app, tok, &id, json!({"stage_id": prop})).await;
    assert_eq!(r.body["status"], "open");
    assert!(r.body["lost_reason"].is_null());
    let r = mv(&app, tok, &id, json!({"stage_id": won})).await;
    assert_eq!(r.body["status"], "won");
    let r = mv(
        &app,
        tok,
        &id,
        json!({"stage_id": lost, "lost_reason": "Desistiu"}),
    )
    .await;
    assert_eq!(r.body["status"], "lost");
    assert_eq!(r.body["lost_reason"], "Desistiu");
    let h = app.get(&format!("{OPPS}/{id}/history"), tok).await;
    let events: Vec<&str> = h
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        vec![
            "created", "won", "reopened", "lost", "reopened", "won", "lost"
        ]
    );
    let last = h.body.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["from_status"], "won");
    assert_eq!(last["to_status"], "lost");
    assert_eq!(last["lost_reason"], "Desistiu");
    // Without won/lost stages the status changes in place.
    let p2 = app
        .post(
            "/api/pipelines",
            tok,
            json!({"name": "Simples", "stages": [{"name": "Aberto"}, {"name": "Outro"}]}),
        )
        .await;
    p2.assert(201);
    let aberto = p2.body["stages"][0]["id"].as_str().unwrap().to_string();
    let d = deal(&app, tok, json!({"title": "S", "stage_id": aberto})).await;
    let r = app.post(&format!("{OPPS}/{d}/won"), tok, json!({})).await;
    r.assert(200);
    assert_eq!(r.body["status"], "won");
    assert_eq!(r.body["stage_id"], aberto.as_str());
}

#[tokio::test]
async fn board_totals_are_sql_aggregates_with_cursors() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let tok = &t.admin_token;
    let p = default_pipeline(&app, tok).await;
    let pid = p["id"].as_str().unwrap().to_string();
    let prop = stage(&p, "Proposta");
    let link = product(
        &app,
        tok,
        json!({"name": "Link", "sku": "L1", "category": "dedicated_internet", "billing": "monthly",
               "monthly_price_cents": 120000, "setup_price_cents": 50000}),
    )
    .await;
    // Proposta (50 %): 10,05 at 50 %, 20,00 overridden to 33 %, and a line deal.
    deal(
        &app,
        tok,
        json!({"title": "A", "stage_id": prop, "value_cents": 1005}),
    )
    .await;
    deal(
        &app,
        tok,
        json!({"title": "B", "stage_id": prop, "value_cents": 2000, "probability": 33}),
    )
    .await;
    deal(
        &app,
        tok,
        json!({"title": "C", "stage_id": prop, "term_months": 24, "items": [{"product_id": link}]}),
    )
    .await;
    let deleted = deal(
        &app,
        tok,
        json!({"title": "D", "stage_id": prop, "value_cents": 99}),
    )
    .await;
    app.delete(&format!("{OPPS}/{deleted}"), tok)
        .await
        .assert(204);
    let b = board(&app, tok, &pid, "?limit=2").await;
    assert_eq!(b["pipeline_id"], pid.as_str());
    assert_eq!(b["stages"].as_array().unwrap().len(), 6);
    let col = column(&b, &prop);
    let c_tcv = 120000 * 24 + 50000;
    assert_eq!(col["count"], 3);
    assert_eq!(col["value_cents"], 1005 + 2000 + c_tcv);
    assert_eq!(col["mrr_cents"], 120000);
    assert_eq!(col["tcv_cents"], 1005 + 2000 + c_tcv);
    // Σ value × p = 1005·50 + 2000·33 + tcv·50 → /100, half up once per stage.
    let weighted = (1005 * 50 + 2000 * 33 + c_tcv * 50 + 50) / 100;
    assert_eq!(col["weighted_cents"], weighted);
    assert_eq!(col["kind"], "open");
    assert_eq!(col["probability"], 50);
    let cards = card_ids(&b, &prop);
    assert_eq!(cards.len(), 2);
    assert!(col["cards"][0].get("items").is_none());
    let cursor = col["next_cursor"].as_str().unwrap();
    let more = app
        .get(
            &format!("{OPPS}?stage_id={prop}&sort=position&cursor={cursor}"),
            tok,
        )
        .await;
    more.assert(200);
    assert_eq!(ids(&more).len(), 1);
    assert!(!cards.contains(&ids(&more)[0]));
    let empty = column(&b, &stage(&p, "Negociação"));
    assert_eq!(empty["count"], 0);
    assert_eq!(empty["weighted_cents"], 0);
    assert!(empty["next_cursor"].is_null());

    // A seller sees only their own cards and totals.
    let s = app.create_user(&t, "sales").await;
    deal(
        &app,
        &s.token,
        json!({"title": "Meu", "stage_id": prop, "value_cents": 300}),
    )
    .await;
    let sb = board(&app, &s.token, &pid, "").await;
    let col = column(&sb, &prop);
    assert_eq!(col["count"], 1);
    assert_eq!(col["value_cents"], 300);
    assert_eq!(col["weighted_cents"], 150);
    app.get(
        &format!("/api/pipelines/{pid}/board?owner_id={}", t.admin_id),
        &s.token,
    )
    .await
    .assert_problem(403, "forbidden");
    let ab = board(&app, tok, &pid, &format!("?owner_id={}", s.id)).await;
    assert_eq!(column(&ab, &prop)["count"], 1);
}

#[tokio::test]
async fn lead_conversion_is_one_transaction_and_happens_once() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let tok = &t.admin_token;
    let p = default_pipeline(&app, tok).await;
    let lead = app
        .post(
            "/api/leads",
            tok,
            json!({"name": "João", "company": "FibraNet Telecom", "email": "joao@fibranet.com.br"}),
        )
        .await
        .id();
    let link = product(
        &app,
        tok,
        json!({"name": "Link", "sku": "L1", "category": "dedicated_internet", "billing": "monthly",
               "monthly_price_cents": 120000, "setup_price_cents": 50000}),
    )
    .await;
    // A failing conversion (unknown product) changes nothing.
    app.post(
        &format!("/api/leads/{lead}/convert"),
        tok,
        json!({"items": [{"product_id": uuid::Uuid::now_v7()}]}),
    )
    .await
    .assert_problem(404, "not_found");
    let l = app.get(&format!("/api/leads/{lead}"), tok).await;
    assert_eq!(l.body["status"], "new");
    let r = TestApp::finish(
        app.raw(Method::POST, &format!("/api/leads/{lead}/convert"))
            .bearer_auth(tok)
            .header("idempotency-key", "conv-1")
            .json(&json!({"term_months": 24, "items": [{"product_id": link}]})),
    )
    .await;
    r.assert(201);
    let opp = r.id();
    assert_eq!(r.body["title"], "FibraNet Telecom");
    assert_eq!(r.body["lead_id"], lead.as_str());
    assert_eq!(r.body["stage_id"], stage(&p, "Prospecção").as_str());
    assert_eq!(r.body["owner_id"], t.admin_id.as_str());
    assert_eq!(r.body["tcv_cents"], 120000 * 24 + 50000);
    assert_eq!(r.header("location").unwrap(), format!("{OPPS}/{opp}"));
    // The same key replays; a second conversion is a conflict.
    let replay = TestApp::finish(
        app.raw(Method::POST, &format!("/api/leads/{lead}/convert"))
            .bearer_auth(tok)
            .header("idempotency-key", "conv-1")
            .json(&json!({"term_months": 24, "items": [{"product_id": link}]})),
    )
    .await;
    replay.assert(201);
    assert_eq!(replay.id(), opp);
    let again = app
        .send(
            Method::POST,
            &format!("/api/leads/{lead}/convert"),
            Some(tok),
            None,
        )
        .await;
    again.assert_problem(409, "already_converted");
    assert_eq!(again.body["context"]["opportunity_id"], opp.as_str());
    let l = app.get(&format!("/api/leads/{lead}"), tok).await;
    assert_eq!(l.body["status"], "converted");
    let hist = app
        .get(&format!("/api/leads/{lead}/status-history"), tok)
        .await;
    assert_eq!(
        hist.body.as_array().unwrap().last().unwrap()["to"],
        "converted"
    );
    let r = app.get(&format!("{OPPS}?lead_id={lead}"), tok).await;
    assert_eq!(ids(&r), vec![opp.clone()]);
    // Into another pipeline, without a body; title from the name when there is no company.
    let p2 = app
        .post(
            "/api/pipelines",
            tok,
            json!({"name": "Outro", "stages": [{"name": "Ganho", "kind": "won"}, {"name": "Início"}]}),
        )
        .await;
    p2.assert(201);
    let lead2 = app
        .post("/api/leads", tok, json!({"name": "Maria"}))
        .await
        .id();
    let r = app
        .post(
            &format!("/api/leads/{lead2}/convert"),
            tok,
            json!({"pipeline_id": p2.id()}),
        )
        .await;
    r.assert(201);
    assert_eq!(r.body["title"], "Maria");
    assert_eq!(
        r.body["stage_id"], p2.body["stages"][1]["id"],
        "first open stage"
    );
    // Unknown references.
    let lead3 = app
        .post("/api/leads", tok, json!({"name": "Ana"}))
        .await
        .id();
    let r = app
        .post(
            &format!("/api/leads/{lead3}/convert"),
            tok,
            json!({"pipeline_id": uuid::Uuid::now_v7()}),
        )
        .await;
    r.assert_problem(404, "not_found");
    assert_eq!(r.body["context"]["field"], "pipeline_id");
    app.post(
        &format!("/api/leads/{}/convert", uuid::Uuid::now_v7()),
        tok,
        json!({}),
    )
    .await
    .assert_problem(404, "not_found");
    let r = app
        .post(
            &format!("/api/leads/{lead3}/convert"),
            tok,
            json!({"term_months": "x"}),
        )
        .await;
    assert_eq!(r.error_fields(), vec!["term_months"]);
    // Viewers cannot convert.
    let viewer = app.create_user(&t, "viewer").await;
    app.post(
        &format!("/api/leads/{lead3}/convert"),
        &viewer.token,
        json!({}),
    )
    .await
    .assert_problem(403, "forbidden");
    let logs = app
        .get(
            &format!("/api/audit-logs?entity_type=lead&entity_id={lead}&action=convert"),
            tok,
        )
        .await;
    assert_eq!(logs.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_conversions_create_one_deal() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let lead = app
        .post("/api/leads", &t.admin_token, json!({"name": "Concorrente"}))
        .await
        .id();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let client = app.client.clone();
        let url = app.url(&format!("/api/leads/{lead}/convert"));
        let tok = t.admin_token.clone();
        set.spawn(async move {
            client
                .post(url)
                .bearer_auth(tok)
                .json(&json!({}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
    }
    let mut statuses = vec![];
    while let Some(r) = set.join_next().await {
        statuses.push(r.unwrap().unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, vec![201, 409, 409, 409, 409, 409]);
    let r = app
        .get(&format!("{OPPS}?lead_id={lead}"), &t.admin_token)
        .await;
    assert_eq!(ids(&r).len(), 1);
}

#[tokio::test]
async fn sellers_see_and_move_only_their_own_deals() {
    let app = spawn_app().await;
    let t = app.create_tenant_on("professional").await;
    let p = default_pipeline(&app, &t.admin_token).await;
    let pid = p["id"].as_str().unwrap().to_string();
    let qual = stage(&p, "Qualificação");
    let s1 = app.create_user(&t, "sales").await;
    let s2 = app.create_user(&t, "sales").await;
    let viewer = app.create_user(&t, "viewer").await;
    let support = app.create_user(&t, "support").await;
    let manager = app.create_user(&t, "manager").await;
    let mine = deal(&app, &s1.token, json!({"title": "Meu"})).await;
    let theirs = deal(&app, &s2.token, json!({"title": "Dele"})).await;
    let o = app.get(&format!("{OPPS}/{mine}"), &s1.token).await;
    assert_eq!(
        o.body["owner_id"],
        s1.id.as_str(),
        "a seller's deal is theirs"
    );
    // Others' deals do not exist for a seller.
    app.get(&format!("{OPPS}/{theirs}"), &s1.token)
        .await
        .assert_problem(404, "not_found");
    mv(&app, &s1.token, &theirs, json!({"stage_id": qual}))
        .await
        .assert_problem(404, "not_found");
    patch(
        &app,
        &format!("{OPPS}/{theirs}"),
        &s1.token,
        json!({"title": "x"}),
    )
    .await
    .assert_problem(404, "not_found");
    app.post(&format!("{OPPS}/{theirs}/won"), &s1.token, json!({}))
        .await
        .assert_problem(404, "not_found");
    app.delete(&format!("{OPPS}/{theirs}"), &s1.token)
        .await
        .assert_problem(404, "not_found");
    assert_eq!(ids(&app.get(OPPS, &s1.token).await), vec![mine.clone()]);
    let r = mv(&app, &s1.token, &mine, json!({"before_id": theirs})).await;
    r.assert_problem(404, "not_found");
    mv(&app, &s1.token, &mine, json!({"stage_id": qual}))
        .await
        .assert(200);
    // Sellers cannot give deals away or configure pipelines and products.
    app.post(OPPS, &s1.token, json!({"title": "x", "owner_id": s2.id}))
        .await
        .assert_problem(403, "forbidden");
    app.post(OPPS, &s1.token, json!({"title": "x", "owner_id": null}))
        .await
        .assert_problem(403, "forbidden");
    patch(
        &app,
        &format!("{OPPS}/{mine}"),
        &s1.token,
        json!({"owner_id": s2.id}),
    )
    .await
    .assert_problem(403, "forbidden");
    app.post("/api/pipelines", &s1.token, json!({"name": "x"}))
        .await
        .assert_problem(403, "forbidden");
    app.post(
        &format!("/api/pipelines/{pid}/stages"),
        &s1.token,
        json!({"name": "x"}),
    )
    .await
    .assert_problem(403, "forbidden");
    app.delete(&format!("/api/pipelines/{pid}"), &s1.token)
        .await
        .assert_problem(403, "forbidden");
    // Viewers and support read but do not write deals.
    assert_eq!(ids(&app.get(OPPS, &viewer.token).await).len(), 2);
    app.get(&format!("/api/pipelines/{pid}/board"), &viewer.token)
        .await
        .assert(200);
    app.post(OPPS, &viewer.token, json!({"title": "x"}))
        .await
        .assert_problem(403, "forbidden");
    mv(&app, &viewer.token, &mine, json!({"stage_id": qual}))
        .await
        .assert_problem(403, "forbidden");
    app.post(OPPS, &support.token, json!({"title": "x"}))
        .await
        .assert_problem(403, "forbidden");
    assert!(ids(&app.get(OPPS, &support.token).await).is_empty());
    // Managers see and reassign everything.
    let r = patch(
        &app,
        &format!("{OPPS}/{theirs}"),
        &manager.token,
        json!({"owner_id": s1.id}),
    )
    .await;
    r.assert(200);
    assert_eq!(ids(&app.get(OPPS, &s1.token).await).len(), 2);
    // Team visibility: sellers see and move everyone's deals.
    let other = deal(
        &app,
        &manager.token,
        json!({"title": "Gerente", "owner_id": manager.id}),
    )
    .await;
    app.get(&format!("{OPPS}/{other}"), &s2.token)
        .await
        .assert_problem(404, "not_found");
    app.put(
        "/api/tenant",
        &t.admin_token,
        json!({"settings": {"team_visibility": true}}),
    )
    .await
    .assert(200);
    app.get(&format!("{OPPS}/{other}"), &s2.token)
        .await
        .assert(200);
    mv(&app, &s2.token, &other, json!({"stage_id": qual}))
        .await
        .assert(200);
    assert_eq!(ids(&app.get(OPPS, &s2.token).await).len(), 3);
}

async fn tenant_with_data(app: &TestApp) -> (TestTenant, Value, String, String, String) {
    let t = app.create_tenant().await;
    let p = default_pipeline(app, &t.admin_token).await;
    let prod = product(
        app,
        &t.admin_token,
        json!({"name": "Link", "sku": "L1", "category": "dedicated_internet", "billing": "monthly", "monthly_price_cents": 1000}),
    )
    .await;
    let lead = app
        .post("/api/leads", &t.admin_token, json!({"name": "Lead A"}))
        .await
        .id();
    let opp = deal(
        app,
        &t.admin_token,
        json!({"title": "A", "items": [{"product_id": prod}], "lead_id": lead}),
    )
    .await;
    (t, p, prod, lead, opp)
}

#[tokio::test]
async fn another_tenants_records_are_not_found_anywhere() {
    let app = spawn_app().await;
    let (_a, pa, prod_a, lead_a, opp_a) = tenant_with_data(&app).await;
    let (b, pb, _prod_b, _lead_b, opp_b) = tenant_with_data(&app).await;
    let tok = &b.admin_token;
    let pid_a = pa["id"].as_str().unwrap();
    let stage_a = stage(&pa, "Proposta");
    let stage_b = stage(&pb, "Proposta");
    for path in [
        format!("/api/pipelines/{pid_a}"),
        format!("/api/pipelines/{pid_a}/board"),
        format!("/api/pipelines/{pid_a}/stages"),
        format!("{OPPS}/{opp_a}"),
        format!("{OPPS}/{opp_a}/history"),
        format!("/api/products/{prod_a}"),
    ] {
        app.get(&path, tok).await.assert_problem(404, "not_found");
    }
    app.put(
        &format!("/api/pipelines/{pid_a}"),
        tok,
        json!({"name": "x"}),
    )
    .await
    .assert_problem(404, "not_found");
    app.delete(&format!("/api/pipelines/{pid_a}"), tok)
        .await
        .assert_problem(404, "not_found");
    app.put(
        &format!("/api/pipelines/{pid_a}/stages/{stage_a}"),
        tok,
        json!({"name": "x"}),
    )
    .await
    .assert_problem(404, "not_found");
    app.delete(&format!("/api/pipelines/{pid_a}/stages/{stage_a}"), tok)
        .await
        .assert_problem(404, "not_found");
    // Another tenant's stage under one's own pipeline is not found either.
    let pid_b = pb["id"].as_str().unwrap();
    app.delete(&format!("/api/pipelines/{pid_b}/stages/{stage_a}"), tok)
        .await
        .assert_problem(404, "not_found");
    patch(&app, &format!("{OPPS}/{opp_a}"), tok, json!({"title": "x"}))
        .await
        .assert_problem(404, "not_found");
    app.delete(&format!("{OPPS}/{opp_a}"), tok)
        .await
        .assert_problem(404, "not_found");
    for action in ["won", "reopen"] {
        app.post(&format!("{OPPS}/{opp_a}/{action}"), tok, json!({}))
            .await
            .assert_problem(404, "not_found");
    }
    mv(&app, tok, &opp_a, json!({"stage_id": stage_b}))
        .await
        .assert_problem(404, "not_found");
    app.post(&format!("/api/leads/{lead_a}/convert"), tok, json!({}))
        .await
        .assert_problem(404, "not_found");
    // Inside bodies.
    for (field, body) in [
        ("stage_id", json!({"title": "x", "stage_id": stage_a})),
        ("pipeline_id", json!({"title": "x", "pipeline_id": pid_a})),
        ("lead_id", json!({"title": "x", "lead_id": lead_a})),
        (
            "items[0].product_id",
            json!({"title": "x", "items": [{"product_id": prod_a}]}),
        ),
    ] {
        let r = app.post(OPPS, tok, body).await;
        r.assert_problem(404, "not_found");
        assert_eq!(r.body["context"]["field"], field);
    }
    let r = mv(&app, tok, &opp_b, json!({"stage_id": stage_a})).await;
    r.assert_problem(404, "not_found");
    let r = mv(&app, tok, &opp_b, json!({"before_id": opp_a})).await;
    r.assert_problem(404, "not_found");
    let r = patch(
        &app,
        &format!("{OPPS}/{opp_b}"),
        tok,
        json!({"stage_id": stage_a}),
    )
    .await;
    r.assert_problem(404, "not_found");
    let r = patch(
        &app,
        &format!("{OPPS}/{opp_b}"),
        tok,
        json!({"items": [{"product_id": prod_a}]}),
    )
    .await;
    r.assert_problem(404, "not_found");
    app.put(
        &format!("/api/pipelines/{pid_b}/stages"),
        tok,
        json!({"stage_ids": [stage_a]}),
    )
    .await
    .assert_problem(404, "not_found");
    app.delete(
        &format!("/api/pipelines/{pid_b}/stages/{stage_b}?move_to={stage_a}"),
        tok,
    )
    .await
    .assert_problem(404, "not_found");
    // Absent from lists, even when filtering by the other tenant's ids.
    assert_eq!(ids(&app.get(OPPS, tok).await), vec![opp_b.clone()]);
    assert!(ids(&app.get(&format!("{OPPS}?pipeline_id={pid_a}"), tok).await).is_empty());
    assert!(ids(&app.get(&format!("{OPPS}?stage_id={stage_a}"), tok).await).is_empty());
    let pl = app.get("/api/pipelines", tok).await;
    assert_eq!(ids(&pl), vec![pid_b.to_string()]);
    let pr = app.get("/api/products", tok).await;
    assert!(!ids(&pr).contains(&prod_a));
}

#[tokio::test]
async fn create_accepts_an_idempotency_key() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let send = |title: &str| {
        app.raw(Method::POST, OPPS)
            .bearer_auth(&t.admin_token)
            .header("idempotency-key", "deal-1")
            .json(&json!({"title": title}))
    };
    let a = TestApp::finish(send("Único")).await;
    a.assert(201);
    let b = TestApp::finish(send("Único")).await;
    b.assert(201);
    assert_eq!(a.id(), b.id());
    TestApp::finish(send("Outro"))
        .await
        .assert_problem(409, "idempotency_key_reused");
    assert_eq!(ids(&app.get(OPPS, &t.admin_token).await).len(), 1);
}

#[test]
fn openapi_documents_pipelines_products_and_conversion() {
    let api = serde_json::to_value(jtcrm::http::openapi()).unwrap();
    let paths = api["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/pipelines", &["get", "post"][..]),
        ("/api/pipelines/{id}", &["get", "put", "delete"][..]),
        ("/api/pipelines/{id}/board", &["get"][..]),
        ("/api/pipelines/{id}/stages", &["get", "post", "put"][..]),
        (
            "/api/pipelines/{id}/stages/{stage_id}",
            &["put", "patch", "delete"][..],
        ),
        ("/api/pipelines/opportunities", &["get", "post"][..]),
        (
            "/api/pipelines/opportunities/{id}",
            &["get", "put", "patch", "delete"][..],
        ),
        ("/api/pipelines/opportunities/{id}/move", &["post"][..]),
        ("/api/pipelines/opportunities/{id}/won", &["post"][..]),
        ("/api/pipelines/opportunities/{id}/lost", &["post"][..]),
        ("/api/pipelines/opportunities/{id}/reopen", &["post"][..]),
        ("/api/pipelines/opportunities/{id}/history", &["get"][..]),
        ("/api/leads/{id}/convert", &["post"][..]),
        ("/api/products", &["get", "post"][..]),
        ("/api/products/{id}", &["get", "put", "patch", "delete"][..]),
    ] {
        let item = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing from OpenAPI"));
        for m in methods {
            let op = &item[*m];
            assert!(op.is_object(), "{m} {path} missing");
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{m} {path} has no responses"
            );
        }
    }
    let schemas = api["components"]["schemas"].as_object().unwrap();
    for s in [
        "Pipeline",
        "Stage",
        "Opportunity",
        "OpportunityItem",
        "OpportunityInput",
        "Board",
        "BoardStage",
        "MoveRequest",
        "StageChange",
        "ConvertLeadRequest",
        "Product",
        "ProductInput",
    ] {
        assert!(schemas.contains_key(s), "schema {s} missing");
    }
}

/// `(event_type, data)` of the domain events of an entity, oldest first.
async fn events_of(app: &TestApp, entity_id: &str) -> Vec<(String, Value)> {
    use jtcrm_kernel::events::model as event;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    event::Entity::find()
        .filter(event::Column::EntityId.eq(uuid::Uuid::parse_str(entity_id).unwrap()))
        .order_by_asc(event::Column::Id)
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event_type, e.data))
        .collect()
}

fn kinds(r: &Resp) -> Vec<String> {
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn stage_changes_emit_domain_events_and_timeline_entries() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let tok = &t.admin_token;
    let p = default_pipeline(&app, tok).await;
    let lead = app
        .post(
            "/api/leads",
            tok,
            json!({"name": "Eventos", "company": "Rede Sul"}),
        )
        .await
        .id();
    let r = app
        .post(
            &format!("/api/leads/{lead}/convert"),
            tok,
            json!({"value_cents": 123456}),
        )
        .await;
    r.assert(201);
    let id = r.id();
    let lead_events: Vec<String> = events_of(&app, &lead)
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(
        lead_events.contains(&"lead.converted".to_string()),
        "{lead_events:?}"
    );
    mv(
        &app,
        tok,
        &id,
        json!({"stage_id": stage(&p, "Qualificação")}),
    )
    .await
    .assert(200);
    mv(&app, tok, &id, json!({"before_id": id}))
        .await
        .assert_problem(422, "validation_failed");
    app.post(&format!("{OPPS}/{id}/won"), tok, json!({}))
        .await
        .assert(200);
    app.post(&format!("{OPPS}/{id}/reopen"), tok, json!({}))
        .await
        .assert(200);
    app.post(
        &format!("{OPPS}/{id}/lost"),
        tok,
        json!({"reason": "Sem verba"}),
    )
    .await
    .assert(200);
    patch(
        &app,
        &format!("{OPPS}/{id}"),
        tok,
        json!({"title": "Rede Sul 2"}),
    )
    .await
    .assert(200);
    let ev = events_of(&app, &id).await;
    let types: Vec<&str> = ev.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        types,
        vec![
            "opportunity.created",
            "opportunity.stage_changed",
            "opportunity.stage_changed",
            "opportunity.won",
            "opportunity.stage_changed",
            "opportunity.updated",
            "opportunity.stage_changed",
            "opportunity.lost",
            "opportunity.updated",
        ]
    );
    assert_eq!(ev[0].1["after"]["value_cents"], 123456);
    assert_eq!(ev[1].1["before"]["stage_name"], "Prospecção");
    assert_eq!(ev[1].1["after"]["stage_name"], "Qualificação");
    assert_eq!(ev[3].1["after"]["status"], "won");
    assert_eq!(ev[5].1["after"]["status"], "open");
    assert_eq!(ev[7].1["after"]["lost_reason"], "Sem verba");
    assert_eq!(ev[8].1["before"]["title"], "Rede Sul");
    assert_eq!(ev[8].1["after"]["title"], "Rede Sul 2");
    let tl = app.get(&format!("{OPPS}/{id}/timeline"), tok).await;
    tl.assert(200);
    let k = kinds(&tl);
    for x in [
        "opportunity_created",
        "opportunity_stage_changed",
        "opportunity_won",
        "opportunity_reopened",
        "opportunity_lost",
        "lead_converted",
    ] {
        assert!(k.contains(&x.to_string()), "{x} missing in {k:?}");
    }
    let won = tl.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "opportunity_won")
        .unwrap()
        .clone();
    assert_eq!(won["summary"], "Oportunidade ganha: Rede Sul (R$ 1.234,56)");
    let lt = app.get(&format!("/api/leads/{lead}/timeline"), tok).await;
    let k = kinds(&lt);
    assert!(k.contains(&"opportunity_lost".to_string()), "{k:?}");
    assert!(k.contains(&"lead_converted".to_string()), "{k:?}");
}

/// Per-stage sums of the deals the list returns (what the board's maintained totals must equal).
async fn list_totals(app: &TestApp, token: &str, pipeline: &str, owner: Option<&str>) -> Value {
    let mut sums = serde_json::Map::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("{OPPS}?pipeline_id={pipeline}&limit=100");
        if let Some(o) = owner {
            path.push_str(&format!("&owner_id={o}"));
        }
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&path, token).await;
        r.assert(200);
        for o in r.body["items"].as_array().unwrap() {
            let e = sums
                .entry(o["stage_id"].as_str().unwrap().to_string())
                .or_insert_with(|| json!([0, 0, 0, 0, 0]));
            let v = o["value_cents"].as_i64().unwrap();
            let add = [
                1,
                v,
                o["mrr_cents"].as_i64().unwrap(),
                o["tcv_cents"].as_i64().unwrap(),
                v * o["probability"].as_i64().unwrap(),
            ];
            for (i, x) in add.iter().enumerate() {
                e[i] = json!(e[i].as_i64().unwrap() + x);
            }
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    Value::Object(sums)
}

async fn assert_board_matches_list(
    app: &TestApp,
    token: &str,
    pipeline: &str,
    owner: Option<&str>,
) {
    let q = owner.map(|o| format!("?owner_id={o}")).unwrap_or_default();
    let b = board(app, token, pipeline, &q).await;
    let want = list_totals(app, token, pipeline, owner).await;
    for s in b["stages"].as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        let w = want.get(id).cloned().unwrap_or(json!([0, 0, 0, 0, 0]));
        let got = json!([
            s["count"],
            s["value_cents"],
            s["mrr_cents"],
            s["tcv_cents"],
            s["weighted_cents"]
        ]);
        let weighted = (w[4].as_i64().unwrap() + 50) / 100;
        let expected = json!([w[0], w[1], w[2], w[3], weighted]);
        assert_eq!(got, expected, "stage {} ({owner:?})", s["name"]);
    }
}

#[tokio::test]
async fn board_totals_stay_exact_through_every_kind_of_change() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let tok = &t.admin_token;
    let seller = app.create_user(&t, "sales").await;
    let p = default_pipeline(&app, tok).await;
    let pid = p["id"].as_str().unwrap().to_string();
    let (pros, qual, prop, neg) = (
        stage(&p, "Prospecção"),
        stage(&p, "Qualificação"),
        stage(&p, "Proposta"),
        stage(&p, "Negociação"),
    );
    let link = product(
        &app,
        tok,
        json!({"name": "Link 200", "sku": "L200", "category": "dedicated_internet",
               "billing": "monthly", "monthly_price_cents": 150000, "setup_price_cents": 70000}),
    )
    .await;
    let mut deals = vec![];
    for (i, st) in [&pros, &qual, &prop, &neg, &pros, &qual].iter().enumerate() {
        let body = if i % 2 == 0 {
            json!({"title": format!("Deal {i}"), "stage_id": st, "value_cents": 1000 * (i as i64 + 1) + 7})
        } else {
            json!({"title": format!("Deal {i}"), "stage_id": st, "term_months": 12 + i,
                   "items": [{"product_id": link, "quantity": i, "discount_percent": 5}]})
        };
        deals.push(deal(&app, tok, body).await);
    }
    let mine = deal(
        &app,
        &seller.token,
        json!({"title": "Do vendedor", "stage_id": qual, "value_cents": 4321}),
    )
    .await;
    assert_board_matches_list(&app, tok, &pid, None).await;

    // Moves, an amount and probability change, an owner change, won, lost, reopen, delete.
    mv(&app, tok, &deals[0], json!({"stage_id": neg}))
        .await
        .assert(200);
    mv(&app, tok, &deals[1], json!({"stage_id": pros}))
        .await
        .assert(200);
    patch(
        &app,
        &format!("{OPPS}/{}", deals[2]),
        tok,
        json!({"value_cents": 999_999, "probability": 80}),
    )
    .await
    .assert(200);
    patch(
        &app,
        &format!("{OPPS}/{}", deals[3]),
        tok,
        json!({"owner_id": seller.id}),
    )
    .await
    .assert(200);
    app.post(&format!("{OPPS}/{}/won", deals[4]), tok, json!({}))
        .await
        .assert(200);
    app.post(
        &format!("{OPPS}/{}/lost", deals[5]),
        tok,
        json!({"reason": "Preço"}),
    )
    .await
    .assert(200);
    app.post(&format!("{OPPS}/{}/reopen", deals[5]), tok, json!({}))
        .await
        .assert(200);
    app.delete(&format!("{OPPS}/{}", deals[1]), tok)
        .await
        .assert(204);
    assert_board_matches_list(&app, tok, &pid, None).await;
    assert_board_matches_list(&app, tok, &pid, Some(&seller.id)).await;
    assert_board_matches_list(&app, &seller.token, &pid, None).await;

    // A stage's probability change re-prices its deals; removing a stage moves them in bulk.
    app.send(
        Method::PATCH,
        &format!("/api/pipelines/{pid}/stages/{neg}"),
        Some(tok),
        Some(json!({"probability": 65})),
    )
    .await
    .assert(200);
    assert_board_matches_list(&app, tok, &pid, None).await;
    app.delete(
        &format!("/api/pipelines/{pid}/stages/{qual}?move_to={prop}"),
        tok,
    )
    .await
    .assert(204);
    assert_board_matches_list(&app, tok, &pid, None).await;
    assert_board_matches_list(&app, &seller.token, &pid, None).await;
    let b = board(&app, tok, &pid, "").await;
    assert!(
        b["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["id"] != qual.as_str())
    );
    let _ = mine;
}
