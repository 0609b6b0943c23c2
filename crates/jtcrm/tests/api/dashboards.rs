//! Dashboards: every figure against a small data set built by hand (timestamps moved to known
//! instants, including the edges of the period in the company's timezone), permissions,
//! isolation, bad input and the CSV format. docs/dashboards.md defines the figures.

use chrono::{DateTime, Duration, Utc};
use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::{Resp, TestApp, TestTenant, TestUser, spawn_app};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value as DbValue};
use serde_json::{Value, json};
use uuid::Uuid;

const OPPS: &str = "/api/pipelines/opportunities";
const NOV: &str = "from=2026-11-01&to=2026-11-30";

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn uid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

/// Runs `sql` (placeholders `$n`) on the test's own connection (outside row-level security).
async fn exec(app: &TestApp, sql: &str, vals: Vec<DbValue>) {
    let db = &app.state.db;
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Postgres {
        sql.to_string()
    } else {
        sql.replace('$', "?")
    };
    let r = db
        .execute_raw(Statement::from_sql_and_values(backend, &sql, vals))
        .await
        .unwrap();
    assert!(r.rows_affected() >= 1, "no row changed by {sql}");
}

async fn set_ts(app: &TestApp, table: &str, col: &str, id: &str, at: &str) {
    exec(
        app,
        &format!("UPDATE {table} SET {col} = $1 WHERE id = $2"),
        vec![ts(at).into(), uid(id).into()],
    )
    .await;
}

/// Moves a stage-history row of a deal (by event) to `at` with `secs` spent in the stage left.
async fn set_history(app: &TestApp, opp: &str, event: &str, at: &str, secs: i64) {
    exec(
        app,
        "UPDATE opportunity_stage_history SET created_at = $1, seconds_in_from_stage = $2 \
         WHERE opportunity_id = $3 AND event = $4",
        vec![ts(at).into(), secs.into(), uid(opp).into(), event.into()],
    )
    .await;
}

async fn lead(app: &TestApp, tok: &str, name: &str, source: &str, owner: &str, at: &str) -> String {
    let r = app
        .post(
            "/api/leads",
            tok,
            json!({"name": name, "source": source, "owner_id": owner}),
        )
        .await;
    r.assert(201);
    let id = r.id();
    set_ts(app, "leads", "created_at", &id, at).await;
    id
}

async fn deal(app: &TestApp, tok: &str, body: Value, created: &str) -> Value {
    let r = app.post(OPPS, tok, body).await;
    r.assert(201);
    set_ts(app, "opportunities", "created_at", &r.id(), created).await;
    r.body.clone()
}

async fn close(app: &TestApp, tok: &str, id: &str, how: &str, reason: Option<&str>, at: &str) {
    let body = match reason {
        Some(r) => json!({"reason": r}),
        None => json!({}),
    };
    app.post(&format!("{OPPS}/{id}/{how}"), tok, body)
        .await
        .assert(200);
    set_ts(app, "opportunities", "closed_at", id, at).await;
}

async fn done_task(
    app: &TestApp,
    tok: &str,
    kind: &str,
    assignee: &str,
    lead: &str,
    completed: &str,
) -> String {
    let r = app
        .post(
            "/api/tasks",
            tok,
            json!({"title": "Contato", "type": kind, "assignee_id": assignee, "lead_id": lead}),
        )
        .await;
    r.assert(201);
    let id = r.id();
    app.post(&format!("/api/tasks/{id}/complete"), tok, json!({}))
        .await
        .assert(200);
    set_ts(app, "tasks", "completed_at", &id, completed).await;
    id
}

fn stage_id(p: &Value, name: &str) -> String {
    p["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn i(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

struct World {
    app: TestApp,
    t: TestTenant,
    a: TestUser,
    b: TestUser,
    pipeline: Value,
    /// (mrr, tcv, value) of D1, D2, D3, D6.
    d: [(i64, i64, i64); 4],
    t5_overdue: bool,
}

/// The data set of docs/dashboards.md's worked example: November 2026 in São Paulo
/// (`[2026-11-01T03:00Z, 2026-12-01T03:00Z)`).
async fn world() -> World {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let tok = t.admin_token.clone();
    let a = app.create_user(&t, "sales").await;
    let b = app.create_user(&t, "sales").await;
    let r = app
        .post(
            "/api/products",
            &tok,
            json!({"name": "Fibra 500", "sku": "F500", "category": "broadband", "billing": "monthly",
                   "monthly_price_cents": 10000, "setup_price_cents": 5000}),
        )
        .await;
    r.assert(201);
    let prod = r.id();
    let pipeline = app.get("/api/pipelines", &tok).await.body["items"][0].clone();

    // Leads: L2 and L4 sit just outside the period's edges, L1 and L3 just inside.
    let l1 = lead(&app, &tok, "L1", "website", &a.id, "2026-11-01T03:00:00Z").await;
    let _l2 = lead(&app, &tok, "L2", "website", &a.id, "2026-11-01T02:59:59Z").await;
    let l3 = lead(&app, &tok, "L3", "referral", &b.id, "2026-12-01T02:59:59Z").await;
    let _l4 = lead(&app, &tok, "L4", "referral", &b.id, "2026-12-01T03:00:00Z").await;
    let l5 = lead(&app, &tok, "L5", "website", &a.id, "2026-11-15T12:00:00Z").await;

    let items = |q: i64| json!([{"product_id": prod, "quantity": q}]);
    let d1 = deal(
        &app,
        &tok,
        json!({"title": "D1", "lead_id": l1, "owner_id": a.id, "items": items(1)}),
        "2026-11-02T12:00:00Z",
    )
    .await;
    let d2 = deal(
        &app,
        &tok,
        json!({"title": "D2", "lead_id": l3, "owner_id": b.id, "items": items(2)}),
        "2026-11-05T02:00:00Z",
    )
    .await;
    let d3 = deal(
        &app,
        &tok,
        json!({"title": "D3", "owner_id": a.id, "items": items(3)}),
        "2026-11-04T00:00:00Z",
    )
    .await;
    let d4 = deal(
        &app,
        &tok,
        json!({"title": "D4", "owner_id": b.id, "items": items(4)}),
        "2026-10-15T00:00:00Z",
    )
    .await;
    let d5 = deal(
        &app,
        &tok,
        json!({"title": "D5", "owner_id": a.id, "items": items(5)}),
        "2026-10-15T00:00:00Z",
    )
    .await;
    let d6 = deal(
        &app,
        &tok,
        json!({"title": "D6", "lead_id": l1, "owner_id": a.id, "items": items(1)}),
        "2026-11-03T00:00:00Z",
    )
    .await;
    let id = |d: &Value| d["id"].as_str().unwrap().to_string();
    let (d1i, d2i, d3i, d4i, d5i, d6i) = (id(&d1), id(&d2), id(&d3), id(&d4), id(&d5), id(&d6));

    // Stage moves and closes, with their history moved into November.
    let mv = |opp: String, stage: String| {
        let app = &app;
        let tok = tok.clone();
        async move {
            app.post(
                &format!("{OPPS}/{opp}/move"),
                &tok,
                json!({"stage_id": stage}),
            )
            .await
            .assert(200);
        }
    };
    mv(d6i.clone(), stage_id(&pipeline, "Qualificação")).await;
    set_history(
        &app,
        &d6i,
        "stage_changed",
        "2026-11-07T00:00:00Z",
        4 * 86400,
    )
    .await;
    mv(d3i.clone(), stage_id(&pipeline, "Proposta")).await;
    set_history(
        &app,
        &d3i,
        "stage_changed",
        "2026-11-06T00:00:00Z",
        2 * 86400,
    )
    .await;
    close(&app, &tok, &d1i, "won", None, "2026-11-10T12:00:00Z").await;
    set_history(&app, &d1i, "won", "2026-11-10T12:00:00Z", 8 * 86400).await;
    // Won at 23:00 on Nov 30th in São Paulo: inside.
    close(&app, &tok, &d2i, "won", None, "2026-12-01T02:00:00Z").await;
    set_history(&app, &d2i, "won", "2026-12-01T02:00:00Z", 26 * 86400).await;
    close(
        &app,
        &tok,
        &d3i,
        "lost",
        Some("Preço"),
        "2026-11-20T15:00:00Z",
    )
    .await;
    set_history(&app, &d3i, "lost", "2026-11-20T15:00:00Z", 14 * 86400).await;
    // Lost at 00:00 on Dec 1st, and at 23:59:59 on Oct 31st: outside.
    close(
        &app,
        &tok,
        &d4i,
        "lost",
        Some("Preço"),
        "2026-12-01T03:00:00Z",
    )
    .await;
    close(
        &app,
        &tok,
        &d5i,
        "lost",
        Some("Concorrente"),
        "2026-11-01T02:59:59Z",
    )
    .await;

    // Tasks: first contacts of L1 (5 h) and L3 (2 h, done in December), a follow-up (not a
    // contact) in the period, a note; and pending tasks for the "now" figures.
    done_task(&app, &tok, "call", &a.id, &l1, "2026-11-01T08:00:00Z").await;
    done_task(&app, &tok, "email", &b.id, &l3, "2026-12-01T04:59:59Z").await;
    done_task(&app, &tok, "follow_up", &a.id, &l5, "2026-11-30T12:00:00Z").await;
    set_ts(
        &app,
        "leads",
        "last_contacted_at",
        &l1,
        "2026-11-01T08:00:00Z",
    )
    .await;
    set_ts(
        &app,
        "leads",
        "last_contacted_at",
        &l3,
        "2026-12-01T04:59:59Z",
    )
    .await;
    let r = app
        .post(
            &format!("/api/leads/{l1}/notes"),
            &a.token,
            json!({"body": "Pediu proposta"}),
        )
        .await;
    r.assert(201);
    set_ts(&app, "notes", "created_at", &r.id(), "2026-11-10T10:00:00Z").await;
    let now = Utc::now();
    let r = app
        .post(
            "/api/tasks",
            &tok,
            json!({"title": "Atrasada", "type": "call", "assignee_id": a.id,
                   "due_at": (now - Duration::days(1)).to_rfc3339()}),
        )
        .await;
    r.assert(201);
    // Noon today in São Paulo (UTC−3 all year since 2019).
    let local_today = (now - Duration::hours(3)).date_naive();
    let noon = local_today.and_hms_opt(15, 0, 0).unwrap().and_utc();
    app.post(
        "/api/tasks",
        &tok,
        json!({"title": "Hoje", "type": "call", "assignee_id": b.id, "due_at": noon.to_rfc3339()}),
    )
    .await
    .assert(201);
    let t5_overdue = noon < Utc::now();

    let m = |d: &Value| (i(&d["mrr_cents"]), i(&d["tcv_cents"]), i(&d["value_cents"]));
    assert_eq!(m(&d1).0, 10000);
    assert_eq!(m(&d2).0, 20000);
    assert_eq!(m(&d3).0, 30000);
    assert_eq!(i(&d2["setup_cents"]), 10000);
    World {
        d: [m(&d1), m(&d2), m(&d3), m(&d6)],
        app,
        t,
        a,
        b,
        pipeline,
        t5_overdue,
    }
}

async fn ok(app: &TestApp, tok: &str, path: &str) -> Value {
    let r = app.get(path, tok).await;
    r.assert(200);
    r.body.clone()
}

#[tokio::test]
async fn overview_figures_match_the_hand_computed_answers() {
    let w = world().await;
    let (app, tok) = (&w.app, &w.t.admin_token);
    let [d1, d2, d3, d6] = w.d;
    let r = ok(
        app,
        tok,
        &format!("/api/dashboard/overview?{NOV}&compare=previous_period"),
    )
    .await;
    assert_eq!(r["period"]["start"], "2026-11-01T03:00:00Z");
    assert_eq!(r["period"]["end"], "2026-12-01T03:00:00Z");
    assert_eq!(r["period"]["timezone"], "America/Sao_Paulo");
    let c = &r["current"];
    assert_eq!(c["new_leads"], 3, "L1, L3, L5");
    assert_eq!(c["open_opportunities"]["count"], 1, "D6");
    assert_eq!(i(&c["open_opportunities"]["mrr_cents"]), d6.0);
    assert_eq!(i(&c["open_opportunities"]["tcv_cents"]), d6.1);
    assert_eq!(c["won"]["count"], 2, "D1, D2");
    assert_eq!(i(&c["won"]["mrr_cents"]), 30000);
    assert_eq!(i(&c["won"]["tcv_cents"]), d1.1 + d2.1);
    assert_eq!(i(&c["won"]["setup_cents"]), 15000);
    assert_eq!(c["lost"]["count"], 1, "D3 only");
    assert_eq!(i(&c["lost"]["mrr_cents"]), d3.0);
    assert_eq!(
        c["lost"]["top_reasons"],
        json!([{"reason": "Preço", "count": 1}])
    );
    assert_eq!(c["tasks"]["due_today"], 1);
    assert_eq!(c["tasks"]["overdue"], 1 + i64::from(w.t5_overdue));
    assert_eq!(c["calls_today"], json!({"value": 0, "available": false}));
    assert_eq!(c["proposals"]["sent"], 0);
    // The previous period of Nov 1–30 is Oct 2–31: L2 and D5 (lost at 23:59:59 on Oct 31st).
    assert_eq!(r["previous_period"]["from"], "2026-10-02");
    assert_eq!(r["previous_period"]["to"], "2026-10-31");
    let p = &r["previous"];
    assert_eq!(p["new_leads"], 1);
    assert_eq!(p["won"]["count"], 0);
    assert_eq!(p["lost"]["count"], 1);
    assert_eq!(p["lost"]["top_reasons"][0]["reason"], "Concorrente");
    assert_eq!(
        r["change"]["new_leads"],
        json!({"absolute": 2.0, "relative": 2.0})
    );
    assert_eq!(
        r["change"]["won.count"],
        json!({"absolute": 2.0, "relative": null})
    );
    assert_eq!(r["change"]["lost.count"]["absolute"], 0.0);

    // The owner filter, and `me`.
    let r = ok(
        app,
        tok,
        &format!("/api/dashboard/overview?{NOV}&owner_id={}", w.a.id),
    )
    .await;
    assert_eq!(r["current"]["new_leads"], 2);
    assert_eq!(r["current"]["won"]["count"], 1);
    assert_eq!(i(&r["current"]["won"]["mrr_cents"]), 10000);
    assert_eq!(r["current"]["lost"]["count"], 1);
    assert_eq!(r["current"]["tasks"]["overdue"], 1);
    assert_eq!(r["filters"]["owner_ids"], json!([w.a.id]));
    let r = ok(
        app,
        &w.b.token,
        &format!("/api/dashboard/overview?{NOV}&owner_id=me"),
    )
    .await;
    assert_eq!(r["current"]["new_leads"], 1);
    assert_eq!(i(&r["current"]["won"]["mrr_cents"]), 20000);
    assert_eq!(r["current"]["lost"]["count"], 0);
    // A team.
    let r = ok(
        app,
        tok,
        &format!("/api/dashboard/overview?{NOV}&team={},{}", w.a.id, w.b.id),
    )
    .await;
    assert_eq!(r["current"]["new_leads"], 3);
    assert_eq!(r["current"]["won"]["count"], 2);
    // One day: November 30th holds L3 (created at 23:59:59 local) and D2.
    let r = ok(
        app,
        tok,
        "/api/dashboard/overview?from=2026-11-30&to=2026-11-30",
    )
    .await;
    assert_eq!(r["current"]["new_leads"], 1);
    assert_eq!(r["current"]["won"]["count"], 1);
    assert_eq!(i(&r["current"]["won"]["mrr_cents"]), 20000);
}

#[tokio::test]
async fn kpis_match_the_hand_computed_answers() {
    let w = world().await;
    let (app, tok) = (&w.app, &w.t.admin_token);
    let [d1, d2, d3, _] = w.d;
    let r = ok(app, tok, &format!("/api/dashboard/kpis?{NOV}")).await;
    let k = &r["current"];
    assert_eq!(k["won_count"], 2);
    assert_eq!(k["lost_count"], 1);
    assert_eq!(k["win_rate_count"], 0.6667);
    let wr = ((d1.1 + d2.1) as f64 / (d1.1 + d2.1 + d3.1) as f64 * 10000.0).round() / 10000.0;
    assert_eq!(k["win_rate_value"], wr);
    assert_eq!(k["average_deal_mrr_cents"], 15000);
    assert_eq!(
        i(&k["average_deal_tcv_cents"]),
        ((d1.1 + d2.1) as f64 / 2.0).round() as i64
    );
    // 8 and 26 days.
    assert_eq!(
        k["sales_cycle_days"],
        json!({"count": 2, "median": 17.0, "p90": 24.2, "average": 17.0})
    );
    assert_eq!(k["new_mrr_cents"], 30000);
    assert_eq!(
        k["churned_mrr_cents"],
        json!({"value": 0, "available": false})
    );
    assert_eq!(k["net_new_mrr_cents"], 30000);
    // L1 and L3 have deals, L5 not.
    assert_eq!(
        k["lead_to_opportunity"],
        json!({"from": 3, "to": 2, "rate": 0.6667})
    );
    // L1 first contacted after 5 h, L3 after 2 h (in December: still its first contact).
    assert_eq!(
        k["time_to_first_contact_hours"],
        json!({"count": 2, "median": 3.5, "p90": 4.7, "average": 3.5})
    );
    // Two tasks done in November (the e-mail to L3 was done on Dec 1st local) and one note,
    // two sellers, 30 days.
    assert_eq!(k["activities"], 3);
    assert_eq!(k["sellers"], 2);
    assert_eq!(k["activities_per_seller_per_day"], 0.05);
    assert_eq!(
        k["automations"],
        json!({"runs": 0, "succeeded": 0, "success_rate": null, "actions": 0, "actions_per_day": 0.0})
    );
    // Seller A alone.
    let r = ok(app, &w.a.token, &format!("/api/dashboard/kpis?{NOV}")).await;
    let k = &r["current"];
    assert_eq!(k["won_count"], 1);
    assert_eq!(k["win_rate_count"], 0.5);
    assert_eq!(k["sales_cycle_days"]["median"], 8.0);
    assert_eq!(k["activities"], 3);
    assert_eq!(k["sellers"], 1);
    assert_eq!(k["activities_per_seller_per_day"], 0.1);
    assert_eq!(
        k["lead_to_opportunity"],
        json!({"from": 2, "to": 1, "rate": 0.5})
    );
}

#[tokio::test]
async fn sales_funnel_matches_the_hand_computed_answers() {
    let w = world().await;
    let (app, tok) = (&w.app, &w.t.admin_token);
    let [_, _, _, d6] = w.d;
    let pid = w.pipeline["id"].as_str().unwrap();
    let r = ok(
        app,
        tok,
        &format!("/api/dashboard/sales-funnel?{NOV}&pipeline_id={pid}"),
    )
    .await;
    let again = ok(app, tok, &format!("/api/dashboard/sales-funnel?{NOV}")).await;
    assert_eq!(again["stages"], r["stages"], "the default pipeline");
    assert_eq!(r["pipeline_id"], pid);
    let st = r["stages"].as_array().unwrap();
    let names: Vec<&str> = st.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "Prospecção",
            "Qualificação",
            "Proposta",
            "Negociação",
            "Fechado Ganho",
            "Fechado Perdido"
        ]
    );
    // Cohort: D1, D2, D3, D6 (created in November); furthest stages 4, 4, 2, 1.
    let reached: Vec<Value> = st.iter().map(|s| s["reached"].clone()).collect();
    assert_eq!(
        reached,
        [
            json!(4),
            json!(4),
            json!(3),
            json!(2),
            json!(2),
            Value::Null
        ]
    );
    let conv: Vec<Value> = st.iter().map(|s| s["conversion_to_next"].clone()).collect();
    assert_eq!(
        conv,
        [
            json!(1.0),
            json!(0.75),
            json!(0.6667),
            json!(1.0),
            Value::Null,
            Value::Null
        ]
    );
    // Cards now: D6 in Qualificação; D1, D2 won; D3, D4, D5 lost.
    let cards: Vec<i64> = st.iter().map(|s| i(&s["cards"])).collect();
    assert_eq!(cards, [0, 1, 0, 0, 2, 3]);
    assert_eq!(i(&st[1]["mrr_cents"]), d6.0);
    assert_eq!(i(&st[1]["value_cents"]), d6.2);
    assert_eq!(
        i(&st[1]["weighted_cents"]),
        (d6.2 as f64 * 25.0 / 100.0).round() as i64
    );
    assert_eq!(i(&st[4]["mrr_cents"]), 30000);
    // Days in Prospecção of the deals that left it in November: 2, 4, 8, 26.
    assert_eq!(
        st[0]["days_in_stage"],
        json!({"count": 4, "median": 6.0, "p90": 20.6, "average": 10.0})
    );
    assert_eq!(
        st[2]["days_in_stage"],
        json!({"count": 1, "median": 14.0, "p90": 14.0, "average": 14.0})
    );
    assert_eq!(st[1]["days_in_stage"]["count"], 0);
    assert_eq!(
        r["leads"],
        json!({"leads": 3, "with_opportunity": 2, "won": 2, "lead_to_opportunity": 0.6667,
               "opportunity_to_won": 1.0, "lead_to_won": 0.6667})
    );
    assert_eq!(
        r["by_source"],
        json!([
            {"source": "referral", "leads": 1, "with_opportunity": 1, "won": 1,
             "lead_to_opportunity": 1.0, "opportunity_to_won": 1.0, "lead_to_won": 1.0},
            {"source": "website", "leads": 2, "with_opportunity": 1, "won": 1,
             "lead_to_opportunity": 0.5, "opportunity_to_won": 1.0, "lead_to_won": 0.5}
        ])
    );
    // Seller B: D2 only.
    let r = ok(
        app,
        tok,
        &format!("/api/dashboard/sales-funnel?{NOV}&owner_id={}", w.b.id),
    )
    .await;
    let reached: Vec<Value> = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reached"].clone())
        .collect();
    assert_eq!(
        reached,
        [
            json!(1),
            json!(1),
            json!(1),
            json!(1),
            json!(1),
            Value::Null
        ]
    );
    let cards: Vec<i64> = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| i(&s["cards"]))
        .collect();
    assert_eq!(cards, [0, 0, 0, 0, 1, 1]);
}

#[tokio::test]
async fn team_performance_and_quotas() {
    let w = world().await;
    let (app, tok) = (&w.app, &w.t.admin_token);
    let q = app
        .put(
            "/api/quotas",
            tok,
            json!({"month": "2026-11", "items": [
                {"user_id": w.a.id, "mrr_cents": 20000, "deals": 2},
                {"user_id": w.b.id, "mrr_cents": 10000}
            ]}),
        )
        .await;
    q.assert(200);
    assert_eq!(q.body["items"].as_array().unwrap().len(), 2);
    app.put(
        "/api/quotas",
        tok,
        json!({"month": "2026-12", "items": [{"user_id": w.a.id, "mrr_cents": 31000}]}),
    )
    .await
    .assert(200);
    let got = ok(app, tok, "/api/quotas?month=2026-11").await;
    assert_eq!(got["month"], "2026-11");
    assert_eq!(got["items"].as_array().unwrap().len(), 2);
    // A seller sees their own quota only.
    let mine = ok(app, &w.a.token, "/api/quotas?month=2026-11").await;
    assert_eq!(
        mine["items"],
        json!([{"user_id": w.a.id, "mrr_cents": 20000, "deals": 2}])
    );

    let r = ok(app, tok, &format!("/api/dashboard/team-performance?{NOV}")).await;
    let users = r["users"].as_array().unwrap();
    assert_eq!(users.len(), 3, "admin and the two sellers");
    let by = |id: &str| users.iter().find(|u| u["user_id"] == id).unwrap().clone();
    let a = by(&w.a.id);
    assert_eq!(a["leads_owned"], 2, "L1, L5");
    assert_eq!(a["leads_contacted"], 1, "L1");
    assert_eq!(a["tasks_done"], 2);
    assert_eq!(a["tasks_overdue"], 1);
    assert_eq!(a["deals_won"], 1);
    assert_eq!(a["deals_lost"], 1);
    assert_eq!(a["new_mrr_cents"], 10000);
    assert_eq!(a["calls_available"], false);
    assert_eq!(
        a["quota"],
        json!({"mrr_target_cents": 20000, "deals_target": 2.0, "mrr_attainment": 0.5, "deals_attainment": 0.5})
    );
    let b = by(&w.b.id);
    assert_eq!(b["leads_owned"], 1);
    assert_eq!(b["leads_contacted"], 0, "contacted on Dec 1st local");
    assert_eq!(b["tasks_done"], 0);
    assert_eq!(b["tasks_overdue"], i64::from(w.t5_overdue));
    assert_eq!(b["deals_won"], 1);
    assert_eq!(b["deals_lost"], 0);
    assert_eq!(b["new_mrr_cents"], 20000);
    assert_eq!(
        b["quota"],
        json!({"mrr_target_cents": 10000, "deals_target": null, "mrr_attainment": 2.0, "deals_attainment": null})
    );
    // Half of November (15/30) and half of December (15/31): 10000 + 15000.
    let r = ok(
        app,
        tok,
        "/api/dashboard/team-performance?from=2026-11-16&to=2026-12-15",
    )
    .await;
    let a = r["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user_id"] == w.a.id.as_str())
        .unwrap()
        .clone();
    assert_eq!(a["quota"]["mrr_target_cents"], 25000);
    assert_eq!(a["quota"]["deals_target"], 1.0);
    // Removing a quota.
    app.put(
        "/api/quotas",
        tok,
        json!({"month": "2026-11", "items": [{"user_id": w.b.id, "mrr_cents": null, "deals": null}]}),
    )
    .await
    .assert(200);
    let got = ok(app, tok, "/api/quotas?month=2026-11").await;
    assert_eq!(got["items"].as_array().unwrap().len(), 1);
    // Sellers cannot set quotas.
    app.put(
        "/api/quotas",
        &w.a.token,
        json!({"month": "2026-11", "items": [{"user_id": w.a.id, "mrr_cents": 1}]}),
    )
    .await
    .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn series_fill_empty_buckets_with_zeros() {
    let w = world().await;
    let (app, tok) = (&w.app, &w.t.admin_token);
    let r = ok(
        app,
        tok,
        &format!("/api/dashboard/series?{NOV}&metric=new_leads"),
    )
    .await;
    let pts = r["points"].as_array().unwrap();
    assert_eq!(pts.len(), 30);
    assert_eq!(pts[0], json!({"start": "2026-11-01", "value": 1}));
    assert_eq!(pts[14], json!({"start": "2026-11-15", "value": 1}));
    assert_eq!(pts[29], json!({"start": "2026-11-30", "value": 1}));
    assert_eq!(pts.iter().map(|p| i(&p["value"])).sum::<i64>(), 3);
    let r = ok(
        app,
        tok,
        &format!("/api/dashboard/series?{NOV}&metric=new_leads&interval=week"),
    )
    .await;
    assert_eq!(
        r["points"],
        json!([
            {"start": "2026-10-26", "value": 1}, {"start": "2026-11-02", "value": 0},
            {"start": "2026-11-09", "value": 1}, {"start": "2026-11-16", "value": 0},
            {"start": "2026-11-23", "value": 0}, {"start": "2026-11-30", "value": 1}
        ])
    );
    let r = ok(
        app,
        tok,
        &format!("/api/dashboard/series?{NOV}&metric=won_mrr&interval=month"),
    )
    .await;
    assert_eq!(
        r["points"],
        json!([{"start": "2026-11-01", "value": 30000}])
    );
    let r = ok(
        app,
        tok,
        &format!("/api/dashboard/series?{NOV}&metric=activities"),
    )
    .await;
    let nonzero: Vec<Value> = r["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| i(&p["value"]) != 0)
        .cloned()
        .collect();
    assert_eq!(
        nonzero,
        [
            json!({"start": "2026-11-01", "value": 1}),
            json!({"start": "2026-11-10", "value": 1}),
            json!({"start": "2026-11-30", "value": 1})
        ]
    );
}

#[tokio::test]
async fn days_follow_the_company_timezone_across_daylight_saving() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let tok = &t.admin_token;
    app.put(
        "/api/tenant",
        tok,
        json!({"settings": {"timezone": "America/New_York"}}),
    )
    .await
    .assert(200);
    // New York left DST on 2026-11-01 at 02:00 EDT: that day runs from 04:00Z to 05:00Z next day.
    for (n, at) in [
        ("a", "2026-11-01T03:59:59Z"),
        ("b", "2026-11-01T04:00:00Z"),
        ("c", "2026-11-02T04:59:59Z"),
        ("d", "2026-11-02T05:00:00Z"),
    ] {
        lead(&app, tok, n, "website", &t.admin_id, at).await;
    }
    let r = ok(
        &app,
        tok,
        "/api/dashboard/series?from=2026-10-31&to=2026-11-02&metric=new_leads",
    )
    .await;
    assert_eq!(
        r["points"],
        json!([
            {"start": "2026-10-31", "value": 1}, {"start": "2026-11-01", "value": 2},
            {"start": "2026-11-02", "value": 1}
        ])
    );
    let r = ok(
        &app,
        tok,
        "/api/dashboard/overview?from=2026-11-01&to=2026-11-01",
    )
    .await;
    assert_eq!(r["period"]["start"], "2026-11-01T04:00:00Z");
    assert_eq!(r["period"]["end"], "2026-11-02T05:00:00Z");
    assert_eq!(r["current"]["new_leads"], 2);
}

#[tokio::test]
async fn sellers_see_their_own_figures_unless_team_visibility() {
    let w = world().await;
    let app = &w.app;
    let a = &w.a.token;
    let r = ok(app, a, &format!("/api/dashboard/overview?{NOV}")).await;
    assert_eq!(r["current"]["new_leads"], 2);
    assert_eq!(r["filters"]["owner_ids"], json!([w.a.id]));
    app.get(
        &format!("/api/dashboard/overview?{NOV}&owner_id={}", w.b.id),
        a,
    )
    .await
    .assert_problem(403, "forbidden");
    app.get(
        &format!("/api/dashboard/kpis?{NOV}&team={},{}", w.a.id, w.b.id),
        a,
    )
    .await
    .assert_problem(403, "forbidden");
    let r = ok(app, a, &format!("/api/dashboard/team-performance?{NOV}")).await;
    let ids: Vec<&str> = r["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [w.a.id.as_str()]);
    let r = ok(app, a, &format!("/api/dashboard/sales-funnel?{NOV}")).await;
    assert_eq!(r["leads"]["leads"], 2);
    app.put(
        "/api/tenant",
        &w.t.admin_token,
        json!({"settings": {"team_visibility": true}}),
    )
    .await
    .assert(200);
    let r = ok(app, a, &format!("/api/dashboard/overview?{NOV}")).await;
    assert_eq!(r["current"]["new_leads"], 3);
    let r = ok(
        app,
        a,
        &format!("/api/dashboard/overview?{NOV}&owner_id={}", w.b.id),
    )
    .await;
    assert_eq!(r["current"]["new_leads"], 1);
    // Viewers read the whole company's figures.
    let v = app.create_user(&w.t, "viewer").await;
    let r = ok(app, &v.token, &format!("/api/dashboard/kpis?{NOV}")).await;
    assert_eq!(r["current"]["won_count"], 2);
}

#[tokio::test]
async fn another_company_sees_nothing_and_gets_404_for_ids() {
    let w = world().await;
    let app = &w.app;
    let other = app.create_tenant().await;
    let ot = &other.admin_token;
    let r = ok(app, ot, &format!("/api/dashboard/overview?{NOV}")).await;
    assert_eq!(r["current"]["new_leads"], 0);
    assert_eq!(r["current"]["won"]["count"], 0);
    assert_eq!(r["current"]["open_opportunities"]["count"], 0);
    let r = ok(app, ot, &format!("/api/dashboard/sales-funnel?{NOV}")).await;
    assert!(
        r["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["cards"] == 0)
    );
    let r = ok(app, ot, &format!("/api/dashboard/team-performance?{NOV}")).await;
    assert_eq!(r["users"].as_array().unwrap().len(), 1);
    assert_eq!(
        ok(app, ot, "/api/quotas?month=2026-11").await["items"],
        json!([])
    );
    let pid = w.pipeline["id"].as_str().unwrap();
    for path in [
        format!("/api/dashboard/sales-funnel?pipeline_id={pid}"),
        format!("/api/dashboard/overview?pipeline_id={pid}"),
        format!("/api/dashboard/kpis?owner_id={}", w.a.id),
        format!("/api/dashboard/team-performance?team={}", w.b.id),
    ] {
        app.get(&path, ot).await.assert_problem(404, "not_found");
    }
    app.put(
        "/api/quotas",
        ot,
        json!({"month": "2026-11", "items": [{"user_id": w.a.id, "mrr_cents": 1}]}),
    )
    .await
    .assert_problem(404, "not_found");
}

#[tokio::test]
async fn bad_input_gets_problem_json() {
    let app = spawn_app().await;
    let t = app.create_tenant().await;
    let tok = &t.admin_token;
    let unknown = Uuid::now_v7();
    for (q, field) in [
        ("period=yesterday", "period"),
        ("period=today&from=2026-11-01&to=2026-11-02", "period"),
        ("from=2026-11-02&to=2026-11-01", "from"),
        ("from=2026-11-01", "to"),
        ("to=2026-11-01", "from"),
        ("from=2026-02-30&to=2026-03-01", "from"),
        ("from=01/11/2026&to=2026-11-30", "from"),
        ("from=2020-01-01&to=2026-11-30", "to"),
        ("pipeline_id=abc", "pipeline_id"),
        ("owner_id=nobody", "owner_id"),
        ("team=,", "team"),
        ("team=me,xyz", "team"),
        ("compare=last_year", "compare"),
        ("format=xlsx", "format"),
    ] {
        for ep in ["overview", "sales-funnel", "kpis", "team-performance"] {
            let r = app.get(&format!("/api/dashboard/{ep}?{q}"), tok).await;
            r.assert_problem(422, "validation_failed");
            assert_eq!(r.error_fields(), vec![field], "{ep}?{q}");
        }
    }
    for ep in [
        "overview",
        "sales-funnel",
        "kpis",
        "team-performance",
        "series?metric=new_leads&",
    ] {
        let sep = if ep.ends_with('&') { "" } else { "?" };
        app.get(
            &format!("/api/dashboard/{ep}{sep}pipeline_id={unknown}"),
            tok,
        )
        .await
        .assert_problem(404, "not_found");
        app.get(&format!("/api/dashboard/{ep}{sep}owner_id={unknown}"), tok)
            .await
            .assert_problem(404, "not_found");
    }
    for (q, field) in [
        ("", "metric"),
        ("metric=calls", "metric"),
        ("metric=new_leads&interval=year", "interval"),
    ] {
        let r = app.get(&format!("/api/dashboard/series?{q}"), tok).await;
        r.assert_problem(422, "validation_failed");
        assert_eq!(r.error_fields(), vec![field], "series?{q}");
    }
    app.get("/api/dashboard/overview", "not-a-token")
        .await
        .assert(401);
    // Quotas.
    app.get("/api/quotas?month=2026-13", tok)
        .await
        .assert_problem(422, "validation_failed");
    for (body, field) in [
        (
            json!({"items": [{"user_id": t.admin_id, "mrr_cents": 1}]}),
            "month",
        ),
        (
            json!({"month": "11/2026", "items": [{"user_id": t.admin_id}]}),
            "month",
        ),
        (json!({"month": "2026-11", "items": []}), "items"),
        (
            json!({"month": "2026-11", "items": [{"mrr_cents": 1}]}),
            "items[0].user_id",
        ),
        (
            json!({"month": "2026-11", "items": [{"user_id": t.admin_id, "mrr_cents": -1}]}),
            "items[0].mrr_cents",
        ),
        (
            json!({"month": "2026-11", "items": [{"user_id": t.admin_id, "deals": 10000000}]}),
            "items[0].deals",
        ),
    ] {
        let r = app.put("/api/quotas", tok, body.clone()).await;
        r.assert_problem(422, "validation_failed");
        assert!(
            r.error_fields().contains(&field.to_string()),
            "{body} → {:?}",
            r.error_fields()
        );
    }
    // An unknown user is a missing reference: 404 naming the field (docs/api.md).
    let r = app
        .put(
            "/api/quotas",
            tok,
            json!({"month": "2026-11", "items": [{"user_id": unknown, "deals": 1}]}),
        )
        .await;
    r.assert_problem(404, "not_found");
    assert_eq!(r.error_fields(), vec!["items[0].user_id"]);
    let r = app
        .put(
            "/api/quotas",
            tok,
            json!({"month": "2026-11", "items": [{"user_id": "x", "deals": 1}]}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 422, "{:?}", r.body);
    let r = TestApp::finish(
        app.raw(Method::PUT, "/api/quotas")
            .bearer_auth(tok)
            .header("content-type", "application/json")
            .body("{\"month\": "),
    )
    .await;
    r.assert_problem(400, "malformed_json");
}

fn csv_body(r: &Resp) -> String {
    r.text.clone()
}

#[tokio::test]
async fn csv_export_opens_in_brazilian_excel() {
    let w = world().await;
    let (app, tok) = (&w.app, &w.t.admin_token);
    let r = app
        .get(
            &format!("/api/dashboard/overview?{NOV}&format=csv&compare=previous_period"),
            tok,
        )
        .await;
    r.assert(200);
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    assert!(r.header("content-disposition").unwrap().contains(".csv"));
    let body = csv_body(&r);
    assert!(body.starts_with('\u{FEFF}'), "BOM");
    assert!(body.contains("\r\n"));
    assert!(
        body.contains("won.mrr (R$);300,00;0,00;300,00;\r\n"),
        "{body}"
    );
    assert!(body.contains("new_leads;3;1;2;2\r\n"), "{body}");
    assert!(body.contains("Preço;1\r\n"), "{body}");
    let r = app
        .get(&format!("/api/dashboard/kpis?{NOV}&format=csv"), tok)
        .await;
    let body = csv_body(&r);
    assert!(body.contains("win_rate_count;0,6667\r\n"), "{body}");
    assert!(body.contains("sales_cycle_days.p90;24,2\r\n"), "{body}");
    let r = app
        .get(
            &format!("/api/dashboard/sales-funnel?{NOV}&format=csv"),
            tok,
        )
        .await;
    let body = csv_body(&r);
    assert!(
        body.contains("Proposta;open;0;0,00;0,00;0,00;3;0,6667;14;14;14\r\n"),
        "{body}"
    );
    assert!(body.contains("website;2;1;1;0,5;1;0,5\r\n"), "{body}");
    let r = app
        .get(
            &format!("/api/dashboard/team-performance?{NOV}&format=csv"),
            tok,
        )
        .await;
    assert!(csv_body(&r).lines().count() >= 5);
    let r = app
        .get(
            &format!("/api/dashboard/series?{NOV}&metric=won_mrr&interval=month&format=csv"),
            tok,
        )
        .await;
    assert_eq!(
        csv_body(&r),
        "\u{FEFF}início;MRR ganho (R$)\r\n01/11/2026;300,00\r\n"
    );
}

/// The funnel's cards and sums come from the board's trigger-kept `pipeline_stage_totals`: they
/// equal the raw aggregate over the deals, after moves, wins, losses and a deletion.
#[tokio::test]
async fn rollup_figures_equal_the_raw_aggregate() {
    let w = world().await;
    let (app, tok) = (&w.app, &w.t.admin_token);
    // One more change of each kind: a deletion and a reopen.
    let list = ok(app, tok, &format!("{OPPS}?limit=200")).await;
    let opp = |title: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["title"] == title)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    app.delete(&format!("{OPPS}/{}", opp("D5")), tok)
        .await
        .assert(204);
    app.post(&format!("{OPPS}/{}/reopen", opp("D4")), tok, json!({}))
        .await
        .assert(200);
    let f = ok(app, tok, &format!("/api/dashboard/sales-funnel?{NOV}")).await;
    let tid = uid(&w.t.id);
    let db = &app.state.db;
    let backend = db.get_database_backend();
    let ph = |n: usize| {
        if backend == DbBackend::Postgres {
            format!("${n}")
        } else {
            format!("?{n}")
        }
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT stage_id, COUNT(*), CAST(SUM(value_cents) AS BIGINT), CAST(SUM(mrr_cents) AS BIGINT), \
                   CAST(SUM(value_cents * probability) AS BIGINT) \
                 FROM opportunities WHERE tenant_id = {} AND deleted_at IS NULL GROUP BY stage_id",
                ph(1)
            ),
            vec![tid.into()],
        ))
        .await
        .unwrap();
    let mut raw = std::collections::HashMap::new();
    for r in rows {
        let id: Uuid = r.try_get_by_index(0).unwrap();
        let v: (i64, i64, i64, i64) = (
            r.try_get_by_index(1).unwrap(),
            r.try_get_by_index(2).unwrap(),
            r.try_get_by_index(3).unwrap(),
            r.try_get_by_index(4).unwrap(),
        );
        raw.insert(id.to_string(), v);
    }
    for s in f["stages"].as_array().unwrap() {
        let (n, value, mrr, w100) = raw
            .get(s["stage_id"].as_str().unwrap())
            .copied()
            .unwrap_or_default();
        assert_eq!(i(&s["cards"]), n, "{s}");
        assert_eq!(i(&s["value_cents"]), value, "{s}");
        assert_eq!(i(&s["mrr_cents"]), mrr, "{s}");
        assert_eq!(
            i(&s["weighted_cents"]),
            (w100 as f64 / 100.0).round() as i64,
            "{s}"
        );
    }
    // D4 reopened lands in an open stage: the overview's open deals follow.
    let o = ok(app, tok, &format!("/api/dashboard/overview?{NOV}")).await;
    assert_eq!(o["current"]["open_opportunities"]["count"], 2);
    assert_eq!(o["current"]["lost"]["count"], 1);
}
