//! Unique-constraint violations are told apart by index name on both backends: the declared unique
//! indexes match the live schema, and every index a call site maps to an error code resolves to its
//! own name when violated.

use std::collections::BTreeMap;

use jtcrm::migration::{
    PLANS_PKEY, UNIQUE_INDEXES, UX_LEAD_FIELD_DEFS_KEY, UX_PLATFORM_ADMINS_EMAIL, UX_PRODUCTS_SKU,
    UX_TENANTS_SLUG, UX_USERS_EMAIL, UX_USERS_EXTENSION, unique_violation,
};
use jtcrm_kernel::error::UniqueIndex;
use jtcrm_testkit::{TestApp, spawn_app, unique};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;

/// One unique index of the live schema.
#[derive(Debug)]
struct LiveIndex {
    table: String,
    primary_key: bool,
    columns: Vec<String>,
}

/// The unique indexes of the live schema, by name, columns in index order.
async fn live_unique_indexes(app: &TestApp) -> BTreeMap<String, LiveIndex> {
    let db = &app.state.db;
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => {
            r#"SELECT m.name AS tbl, il.name AS idx, il.origin = 'pk' AS pk, ii.name AS col
               FROM sqlite_master m
               JOIN pragma_index_list(m.name) il
               JOIN pragma_index_info(il.name) ii
               WHERE m.type = 'table' AND il."unique" = 1
               ORDER BY m.name, il.name, ii.seqno"#
        }
        _ => {
            r#"SELECT t.relname::text AS tbl, i.relname::text AS idx, x.indisprimary AS pk,
                      a.attname::text AS col
               FROM pg_index x
               JOIN pg_class i ON i.oid = x.indexrelid
               JOIN pg_class t ON t.oid = x.indrelid
               JOIN pg_namespace n ON n.oid = t.relnamespace
               CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
               WHERE x.indisunique AND n.nspname = current_schema()
               ORDER BY 1, 2, k.ord"#
        }
    };
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap();
    let mut out: BTreeMap<String, LiveIndex> = BTreeMap::new();
    for r in rows {
        let name: String = r.try_get("", "idx").unwrap();
        let entry = out.entry(name).or_insert_with(|| LiveIndex {
            table: r.try_get("", "tbl").unwrap(),
            primary_key: r.try_get("", "pk").unwrap(),
            columns: vec![],
        });
        entry.columns.push(r.try_get("", "col").unwrap());
    }
    out
}

fn same_columns(declared: &UniqueIndex, live: &LiveIndex) -> bool {
    declared.table == live.table && declared.columns == live.columns.as_slice()
}

#[tokio::test]
async fn declared_unique_indexes_match_the_schema() {
    let app = spawn_app().await;
    let live = live_unique_indexes(&app).await;
    let sqlite = app.state.db.get_database_backend() == DbBackend::Sqlite;
    for d in UNIQUE_INDEXES {
        let found = match live.get(d.name) {
            Some(l) => same_columns(d, l),
            // SQLite names primary keys `sqlite_autoindex_<table>_N`; declared primary keys carry
            // PostgreSQL's name and are found by table and columns.
            None => sqlite && live.values().any(|l| l.primary_key && same_columns(d, l)),
        };
        assert!(
            found,
            "declared unique index {d:?} is not in the schema: {live:#?}"
        );
    }
    // Every unique index a migration created is declared (primary keys only when matched on).
    for (name, l) in &live {
        if l.primary_key {
            continue;
        }
        assert!(
            UNIQUE_INDEXES
                .iter()
                .any(|d| d.name == name && same_columns(d, l)),
            "unique index {name} {l:?} is not declared in migration::UNIQUE_INDEXES"
        );
    }
}

/// Runs `sql`, which must violate `index`, and checks the violation names it.
async fn assert_violates(app: &TestApp, sql: &str, index: &UniqueIndex) {
    let db = &app.state.db;
    let err = db.execute_unprepared(sql).await.unwrap_err();
    let v = unique_violation(&err).unwrap_or_else(|| panic!("no unique violation: {err}"));
    assert_eq!(v.constraint, index.name, "{sql}: {err}");
    assert!(v.is(index));
}

/// Each index a call site maps to an error code, violated directly (the services check most of them
/// before writing, so only races reach the index): the violation names the index on both backends.
#[tokio::test]
async fn violations_name_their_index() {
    let app = spawn_app().await;
    let a = app.create_tenant().await;
    let b = app.create_tenant().await;

    assert_violates(
        &app,
        &format!(
            "UPDATE tenants SET slug = '{}' WHERE slug = '{}'",
            a.slug, b.slug
        ),
        &UX_TENANTS_SLUG,
    )
    .await;
    assert_violates(
        &app,
        &format!(
            "UPDATE users SET email = '{}' WHERE email = '{}'",
            a.admin_email, b.admin_email
        ),
        &UX_USERS_EMAIL,
    )
    .await;

    for ext in ["1001", "1002"] {
        app.post(
            "/api/users",
            &a.admin_token,
            json!({"name": "Ramal", "email": format!("{}@x.com.br", unique("r")), "password": "12345678",
                   "role": "sales", "extension": ext}),
        )
        .await
        .assert(201);
    }
    assert_violates(
        &app,
        "UPDATE users SET extension = '1001' WHERE extension = '1002'",
        &UX_USERS_EXTENSION,
    )
    .await;

    let other_admin = format!("{}@jtcrm.test", unique("root"));
    jtcrm::domains::auth::service::create_super_admin(
        &app.state,
        "Outro",
        &other_admin,
        "super-secret-2",
    )
    .await
    .unwrap();
    assert_violates(
        &app,
        &format!(
            "UPDATE platform_admins SET email = '{}' WHERE email = '{other_admin}'",
            app.superadmin_email
        ),
        &UX_PLATFORM_ADMINS_EMAIL,
    )
    .await;

    assert_violates(
        &app,
        "UPDATE plans SET code = 'starter' WHERE code = 'enterprise'",
        &PLANS_PKEY,
    )
    .await;

    for key in ["segmento", "porte"] {
        app.post(
            "/api/leads/fields",
            &a.admin_token,
            json!({"key": key, "label": key, "type": "text"}),
        )
        .await
        .assert(201);
    }
    assert_violates(
        &app,
        r#"UPDATE lead_field_defs SET "key" = 'segmento' WHERE "key" = 'porte'"#,
        &UX_LEAD_FIELD_DEFS_KEY,
    )
    .await;

    for sku in ["LD-100", "LD-200"] {
        app.post(
            "/api/products",
            &a.admin_token,
            json!({"name": "Link", "sku": sku, "category": "dedicated_internet",
                   "billing": "monthly", "monthly_price_cents": 1000, "setup_price_cents": 0}),
        )
        .await
        .assert(201);
    }
    assert_violates(
        &app,
        "UPDATE products SET sku_key = 'LD-100' WHERE sku_key = 'LD-200'",
        &UX_PRODUCTS_SKU,
    )
    .await;
}
