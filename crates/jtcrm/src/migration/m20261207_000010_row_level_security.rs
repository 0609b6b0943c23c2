//! Row-level security on PostgreSQL (no-op on SQLite): the database itself keeps each tenant's rows
//! away from the others, behind the application's own `tenant_id` filters (docs/tenancy.md).
//!
//! - The role [`APP_ROLE`] (`NOLOGIN NOBYPASSRLS`, not superuser, not the tables' owner) gets
//!   `SELECT, INSERT, UPDATE, DELETE` on the schema's tables (and on tables created later by the
//!   migrating role: default privileges). The server's pool switches to it on every connection
//!   (`SET ROLE`, `jtcrm_kernel::db`); the connecting role is made a member when it is not a
//!   superuser. Migrations keep running as the connecting role, the tables' owner.
//! - Every tenant-owned table (every table with a `tenant_id` column, [`TENANT_TABLES`]) gets RLS
//!   enabled and the policy [`POLICY`]: a row is visible and writable when its `tenant_id` is the
//!   connection's `app.tenant_id`, or when `app.platform` is `on` (the platform path). With
//!   neither set, tenant-owned tables look empty and refuse writes. The owner is not subject to the
//!   policies (no `FORCE`), which is how migrations and maintenance tools see everything.
//!
//! **A later migration that creates a tenant-owned table** calls [`enable`] for it (one line), and
//! adds it to the list a test checks (`tests/api/rls.rs` fails on a `tenant_id` table without
//! the policy).

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

pub use jtcrm_kernel::db::APP_ROLE;

/// The name of the tenant policy on every tenant-owned table.
pub const POLICY: &str = "tenant_isolation";

/// The tenant-owned tables at this migration (those with a `tenant_id` column).
pub const TENANT_TABLES: &[&str] = &[
    "users",
    "refresh_tokens",
    "tenant_counters",
    "audit_logs",
    "jobs",
    "leads",
    "lead_terms",
    "lead_tags",
    "lead_status_history",
    "lead_scoring_rules",
    "lead_field_defs",
    "lead_imports",
    "idempotency_keys",
    "products",
    "pipelines",
    "pipeline_stages",
    "pipeline_stage_totals",
    "opportunities",
    "opportunity_items",
    "opportunity_stage_history",
    "tasks",
    "task_reschedules",
    "notes",
    "timeline_entries",
    "domain_events",
    "emails",
    "user_preferences",
    "automations",
    "automation_runs",
    "automation_run_actions",
    "cadences",
    "cadence_enrollments",
    "business_hours",
];

/// The policy's condition: the row's tenant is the connection's, or the connection does platform
/// work. `current_setting(…, true)` is NULL when unset, and the comparison is then not true.
pub const POLICY_CONDITION: &str = "current_setting('app.platform', true) = 'on' \
     OR tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid";

/// Tables whose rows with a NULL `tenant_id` are platform rows that any scope may write and read:
/// `jobs` (a tenant's change enqueues or nudges platform jobs, e.g. the link of a periodic chain;
/// the queue is shared). Their tenants' rows are confined like everywhere else.
pub const SHARED_PLATFORM_ROWS: &[&str] = &["jobs"];

/// [`POLICY_CONDITION`] for a table of [`SHARED_PLATFORM_ROWS`].
pub const SHARED_POLICY_CONDITION: &str = "tenant_id IS NULL \
     OR current_setting('app.platform', true) = 'on' \
     OR tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid";

/// The statements that put `table` under the tenant policy (idempotent).
pub fn enable_sql(table: &str) -> Vec<String> {
    let cond = if SHARED_PLATFORM_ROWS.contains(&table) {
        SHARED_POLICY_CONDITION
    } else {
        POLICY_CONDITION
    };
    vec![
        format!("ALTER TABLE \"{table}\" ENABLE ROW LEVEL SECURITY"),
        format!("DROP POLICY IF EXISTS {POLICY} ON \"{table}\""),
        format!("CREATE POLICY {POLICY} ON \"{table}\" USING ({cond}) WITH CHECK ({cond})"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON \"{table}\" TO {APP_ROLE}"),
    ]
}

/// Puts a tenant-owned `table` under row-level security with the tenant policy. PostgreSQL only;
/// a no-op on SQLite. Call it in the migration that creates the table, after creating it.
pub async fn enable(m: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    if m.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let conn = m.get_connection();
    for sql in enable_sql(table) {
        conn.execute_unprepared(&sql).await?;
    }
    Ok(())
}

/// Undoes [`enable`] (for a migration's `down`).
pub async fn disable(m: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    if m.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let conn = m.get_connection();
    conn.execute_unprepared(&format!("DROP POLICY IF EXISTS {POLICY} ON \"{table}\""))
        .await?;
    conn.execute_unprepared(&format!(
        "ALTER TABLE \"{table}\" DISABLE ROW LEVEL SECURITY"
    ))
    .await?;
    Ok(())
}

/// Creates the application role (cluster-wide, so several databases of one server share it; a
/// concurrent creation by another database's migration is not an error) and grants it the schema.
fn role_sql() -> Vec<String> {
    vec![
        format!(
            "DO $$ BEGIN \
               CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; \
             END $$"
        ),
        // The connecting role must be a member to `SET ROLE` (a superuser needs no membership).
        format!(
            "DO $$ BEGIN \
               IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) \
                  AND NOT pg_has_role(current_user, '{APP_ROLE}', 'MEMBER') THEN \
                 EXECUTE format('GRANT {APP_ROLE} TO %I', current_user); \
               END IF; \
             END $$"
        ),
        format!(
            "DO $$ BEGIN \
               EXECUTE format('GRANT USAGE ON SCHEMA %I TO {APP_ROLE}', current_schema()); \
               EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I \
                               TO {APP_ROLE}', current_schema()); \
               EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I \
                               TO {APP_ROLE}', current_schema()); \
               EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, \
                               UPDATE, DELETE ON TABLES TO {APP_ROLE}', current_schema()); \
               EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT, \
                               UPDATE ON SEQUENCES TO {APP_ROLE}', current_schema()); \
             END $$"
        ),
    ]
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for sql in role_sql() {
            m.get_connection().execute_unprepared(&sql).await?;
        }
        for t in TENANT_TABLES {
            enable(m, t).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in TENANT_TABLES {
            disable(m, t).await?;
        }
        Ok(())
    }
}
