//! Row-level security on PostgreSQL (docs/tenancy.md): queries that forget their `tenant_id`
//! filter still see only the current tenant's rows, and with no scope a tenant table is empty.
//! Skipped on SQLite (no RLS there; the application's filters are the only line).

use jtcrm::migration::rls::{APP_ROLE, POLICY, TENANT_TABLES};
use jtcrm_kernel::db;
use jtcrm_testkit::{TestApp, spawn_app};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;
use uuid::Uuid;

async fn scalar<C: ConnectionTrait>(c: &C, sql: &str) -> Result<i64, sea_orm::DbErr> {
    let row = c
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql.to_string()))
        .await?
        .expect("a row");
    row.try_get_by_index::<i64>(0)
}

async fn text<C: ConnectionTrait>(c: &C, sql: &str) -> String {
    let row = c
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql.to_string()))
        .await
        .unwrap()
        .expect("a row");
    row.try_get_by_index::<String>(0).unwrap()
}

async fn add_leads(app: &TestApp, token: &str, n: usize) {
    for i in 0..n {
        app.post(
            "/api/leads",
            token,
            json!({"name": format!("Lead RLS {i}"), "email": format!("rls{i}-{}@exemplo.com.br", Uuid::now_v7().simple())}),
        )
        .await
        .assert(201);
    }
}

#[tokio::test]
async fn a_query_without_tenant_filter_sees_only_the_current_tenant() {
    let app = spawn_app().await;
    if !db::is_postgres(&app.state.db) {
        eprintln!("rls: PostgreSQL only (JTCRM_TEST_DATABASE_URL); skipped on SQLite");
        return;
    }
    let a = app.create_tenant().await;
    let b = app.create_tenant().await;
    add_leads(&app, &a.admin_token, 3).await;
    add_leads(&app, &b.admin_token, 2).await;
    let (ta, tb): (Uuid, Uuid) = (a.id.parse().unwrap(), b.id.parse().unwrap());
    // The server's pool: the application role, not superuser, no BYPASSRLS.
    let server = app.server_state.clone();
    let role = db::platform(text(
        &server.db,
        "SELECT current_user::text || ':' || r.rolsuper::text || ':' || r.rolbypassrls::text \
         FROM pg_roles r WHERE r.rolname = current_user",
    ))
    .await;
    assert_eq!(role, format!("{APP_ROLE}:false:false"));
    // The owner sees everything (what the test kit uses to inspect rows).
    let all = scalar(&app.state.db, "SELECT count(*) FROM leads")
        .await
        .unwrap();
    assert_eq!(all, 5);

    // Tenant path: a query that forgets its tenant filter, inside a tenant-scoped transaction.
    let (in_a, in_b) = {
        let s = server.clone();
        db::tenant(ta, async move {
            let tx = s.begin().await.unwrap();
            let n = scalar(&*tx, "SELECT count(*) FROM leads").await.unwrap();
            let other = scalar(
                &*tx,
                &format!("SELECT count(*) FROM leads WHERE tenant_id = '{tb}'"),
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
            (n, other)
        })
        .await
    };
    assert_eq!(
        (in_a, in_b),
        (3, 0),
        "tenant A sees its 3 leads, none of B's"
    );
    // Outside a transaction too (a read on the pool), and for the other tenant.
    let n = db::tenant(tb, scalar(&server.db, "SELECT count(*) FROM leads"))
        .await
        .unwrap();
    assert_eq!(n, 2);
    // An explicit tenant transaction opened from no scope.
    let tx = server.begin_tenant(tb).await.unwrap();
    assert_eq!(scalar(&*tx, "SELECT count(*) FROM leads").await.unwrap(), 2);
    tx.rollback().await.unwrap();

    // Writing another tenant's row from a tenant scope is refused by the policy's WITH CHECK.
    let s = server.clone();
    let moved = db::tenant(ta, async move {
        s.db.execute_unprepared(&format!(
            "UPDATE leads SET tenant_id = '{tb}' WHERE tenant_id = '{ta}'"
        ))
        .await
    })
    .await;
    assert!(moved.is_err(), "moving rows to another tenant must fail");
    let s = server.clone();
    let touched = db::tenant(ta, async move {
        s.db.execute_unprepared(&format!(
            "UPDATE leads SET name = name WHERE tenant_id = '{tb}'"
        ))
        .await
    })
    .await
    .unwrap();
    assert_eq!(
        touched.rows_affected(),
        0,
        "B's rows are invisible to A's updates"
    );

    // No scope: the tenant table is empty through the application role.
    let none = scalar(&server.db, "SELECT count(*) FROM leads")
        .await
        .unwrap();
    assert_eq!(none, 0, "no tenant set: nothing visible");
    let users = scalar(&server.db, "SELECT count(*) FROM users")
        .await
        .unwrap();
    assert_eq!(users, 0);
    // Platform path: everything.
    let p = db::platform(scalar(&server.db, "SELECT count(*) FROM leads"))
        .await
        .unwrap();
    assert_eq!(p, 5);

    // A pooled connection does not keep the previous holder's tenant: after A's work above, the
    // same (single) pool answers B's and no-scope queries with their own rows only.
    for _ in 0..10 {
        let (x, y, z) = (
            db::tenant(ta, scalar(&server.db, "SELECT count(*) FROM leads"))
                .await
                .unwrap(),
            scalar(&server.db, "SELECT count(*) FROM leads")
                .await
                .unwrap(),
            db::tenant(tb, scalar(&server.db, "SELECT count(*) FROM leads"))
                .await
                .unwrap(),
        );
        assert_eq!((x, y, z), (3, 0, 2));
    }

    // The API keeps working with its own filters on top (second line of defence).
    let r = app
        .get("/api/leads?include_total=true", &a.admin_token)
        .await;
    r.assert(200);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn every_table_with_a_tenant_id_has_the_tenant_policy() {
    let app = spawn_app().await;
    if !db::is_postgres(&app.state.db) {
        eprintln!("rls: PostgreSQL only; skipped on SQLite");
        return;
    }
    let rows = app
        .state
        .db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT c.table_name::text, t.relrowsecurity, \
                        EXISTS (SELECT 1 FROM pg_policies p WHERE p.tablename = c.table_name \
                                AND p.policyname = '{POLICY}') \
                 FROM information_schema.columns c \
                 JOIN pg_class t ON t.relname = c.table_name \
                 JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = c.table_schema \
                 WHERE c.column_name = 'tenant_id' AND c.table_schema = current_schema() \
                 ORDER BY 1"
            ),
        ))
        .await
        .unwrap();
    let mut seen = vec![];
    for r in rows {
        let (t, on, pol): (String, bool, bool) = (
            r.try_get_by_index(0).unwrap(),
            r.try_get_by_index(1).unwrap(),
            r.try_get_by_index(2).unwrap(),
        );
        assert!(
            on && pol,
            "{t}: tenant_id without row-level security ({on}, {pol})"
        );
        seen.push(t);
    }
    // Later migrations add tables with `rls::enable`; the RLS migration's own list must all exist.
    for t in TENANT_TABLES {
        assert!(seen.iter().any(|s| s == t), "{t} has no tenant_id column");
    }
    assert!(seen.len() >= TENANT_TABLES.len());
}
