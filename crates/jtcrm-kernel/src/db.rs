//! Database connection by URL scheme (SQLite default, PostgreSQL in production) and statement
//! helpers shared by every domain. Migrations live with the domains (`jtcrm::migration`).
//! SQLite runs in WAL mode with foreign keys on; the file's directory is created on first run.
//!
//! **Row-level security (PostgreSQL).** Every tenant-owned table has a policy on `tenant_id`
//! (migration `m20261207_000010_row_level_security`). The server's pool ([`Access::App`]) switches
//! each connection to the application role [`APP_ROLE`] (no `BYPASSRLS`, not superuser, not the
//! tables' owner), and every checkout of a connection from the pool writes the caller's [`Scope`]
//! into the connection (`app.tenant_id`, `app.platform`) before any statement runs. The scope is
//! chosen explicitly by the code, in two paths only:
//!
//! - **tenant** — [`tenant`] (a future run for one tenant) or [`enter_tenant`] (the `TenantCtx`
//!   extractor, for the rest of the request). Rows of other tenants are invisible and cannot be
//!   written, even by a query that forgets its `tenant_id` filter.
//! - **platform** — [`platform`] / [`enter_platform`]: super-admin routes, login and token
//!   refresh, the job worker's claim and bookkeeping, periodic chains, tenant creation (its
//!   seeders), CLI tools. Every row is visible; the application's own filters apply.
//!
//! Code that chose neither (a task spawned without a scope, a request before authentication)
//! sees no tenant-owned row at all. Migrations run on an [`Access::Owner`] connection.

use std::cell::Cell;
use std::future::Future;

use std::time::Duration;

use anyhow::Context;
use sea_orm::{
    ActiveModelTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend,
    DbErr, EntityTrait, Iterable,
};
use uuid::Uuid;

pub type Db = DatabaseConnection;

/// Normalises `sqlite://path`, `sqlite:path` and bare file paths; creates the parent directory.
fn prepare_sqlite_url(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path != ":memory:"
        && !path.is_empty()
        && let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut out = format!("sqlite://{path}");
    let mut params: Vec<&str> = query.map(|q| q.split('&').collect()).unwrap_or_default();
    if !params.iter().any(|p| p.starts_with("mode=")) {
        params.push("mode=rwc");
    }
    out.push('?');
    out.push_str(&params.join("&"));
    Ok(out)
}

/// The PostgreSQL role the server's queries run as (created by the RLS migration: `NOLOGIN`,
/// `NOBYPASSRLS`, granted DML on the schema's tables).
pub const APP_ROLE: &str = "jtcrm_app";

/// Which rows the queries of the current task may see on PostgreSQL (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Nothing chosen yet: tenant-owned tables look empty.
    None,
    /// One tenant's rows.
    Tenant(Uuid),
    /// Every row (platform work).
    Platform,
}

tokio::task_local! {
    static SCOPE: Cell<Scope>;
}

/// The current task's scope ([`Scope::None`] outside any scope).
pub fn scope() -> Scope {
    SCOPE.try_with(Cell::get).unwrap_or(Scope::None)
}

/// Runs `f` with its queries confined to `tenant_id`'s rows (the tenant path).
pub async fn tenant<F: Future>(tenant_id: Uuid, f: F) -> F::Output {
    SCOPE.scope(Cell::new(Scope::Tenant(tenant_id)), f).await
}

/// Runs `f` as platform work: every row visible (the platform path). Use it only for work that
/// belongs to no single tenant or precedes knowing it (see the module docs).
pub async fn platform<F: Future>(f: F) -> F::Output {
    SCOPE.scope(Cell::new(Scope::Platform), f).await
}

/// Runs `f` in a scope that starts as [`Scope::None`] and that [`enter_tenant`] or
/// [`enter_platform`] may narrow or widen later (the HTTP layer wraps each request in one).
pub async fn request<F: Future>(f: F) -> F::Output {
    SCOPE.scope(Cell::new(Scope::None), f).await
}

fn enter(s: Scope) {
    if SCOPE.try_with(|c| c.set(s)).is_err() {
        tracing::warn!(scope = ?s, "escopo de banco definido fora de um escopo de requisição");
    }
}

/// From here on, the current request's queries see `tenant_id`'s rows only (called by the
/// `TenantCtx` extractor once the caller is authenticated).
pub fn enter_tenant(tenant_id: Uuid) {
    enter(Scope::Tenant(tenant_id));
}

/// From here on, the current request is platform work (super-admin routes, login, refresh,
/// sign-up, public token lookups).
pub fn enter_platform() {
    enter(Scope::Platform);
}

/// Who a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The connecting role as is: migrations and bootstrap seeding (the tables' owner).
    Owner,
    /// The server's pool. With `rls` (the default; `JTCRM_DB_RLS=off` for benchmarks only) each
    /// PostgreSQL connection runs as [`APP_ROLE`] and carries the task's [`Scope`].
    App { rls: bool },
}

/// `SELECT set_config(...)` writing `s` into the connection: issued at every checkout from the
/// pool, so a connection never keeps the previous holder's scope (session-level on purpose: it is
/// overwritten on each checkout, before the holder's first statement).
fn scope_sql(s: Scope) -> String {
    let (tenant, platform) = match s {
        Scope::None => (String::new(), "off"),
        Scope::Tenant(t) => (t.to_string(), "off"),
        Scope::Platform => (String::new(), "on"),
    };
    format!(
        "SELECT set_config('app.tenant_id', '{tenant}', false), \
         set_config('app.platform', '{platform}', false)"
    )
}

async fn apply_scope(conn: &mut sea_orm::sqlx::PgConnection) -> Result<(), sea_orm::sqlx::Error> {
    let sql = scope_sql(scope());
    sea_orm::sqlx::Executor::execute(&mut *conn, sea_orm::sqlx::AssertSqlSafe(sql)).await?;
    Ok(())
}

pub async fn connect(url: &str, max_connections: u32, access: Access) -> anyhow::Result<Db> {
    let is_sqlite = url.starts_with("sqlite:") || !url.contains("://");
    let url = if is_sqlite {
        prepare_sqlite_url(url)?
    } else {
        url.to_string()
    };
    let mut opts = ConnectOptions::new(url.clone());
    opts.max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if is_sqlite {
        opts.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(15))
        });
    }
    if !is_sqlite && access == (Access::App { rls: true }) {
        // The scope is written by these hooks, which sqlx runs in the acquiring task (so they see
        // its task-local scope): `after_connect` for a new connection, `before_acquire` for an
        // idle one. The statement doubles as the liveness check, so the default ping is off.
        opts.test_before_acquire(false);
        opts.map_sqlx_postgres_pool_opts(|o| {
            o.after_connect(|conn, _| {
                Box::pin(async move {
                    sea_orm::sqlx::Executor::execute(
                        &mut *conn,
                        sea_orm::sqlx::AssertSqlSafe(format!("SET ROLE {APP_ROLE}")),
                    )
                    .await?;
                    apply_scope(conn).await
                })
            })
            .before_acquire(|conn, _| {
                Box::pin(async move {
                    apply_scope(conn).await?;
                    Ok(true)
                })
            })
        });
    }
    let db = Database::connect(opts)
        .await
        .with_context(|| "não foi possível conectar ao banco de dados")?;
    Ok(db)
}

pub fn is_postgres(db: &Db) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

pub async fn ping(db: &Db) -> bool {
    tokio::time::timeout(Duration::from_secs(2), db.execute_unprepared("SELECT 1"))
        .await
        .is_ok_and(|r| r.is_ok())
}

/// Inserts `rows` in multi-row INSERTs of at most about 30,000 bound values each (SQLite accepts
/// 32,766 per statement, PostgreSQL 65,535). Bulk paths (CSV import) use it instead of one
/// statement per row.
pub async fn insert_all<A, C>(conn: &C, rows: Vec<A>) -> Result<(), DbErr>
where
    A: ActiveModelTrait + Send,
    C: ConnectionTrait,
{
    let cols = <A::Entity as EntityTrait>::Column::iter().count().max(1);
    let per = (30_000 / cols).max(1);
    let mut it = rows.into_iter().peekable();
    while it.peek().is_some() {
        let chunk: Vec<A> = it.by_ref().take(per).collect();
        A::Entity::insert_many(chunk)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Makes the current PostgreSQL transaction commit without waiting for its WAL flush
/// (`synchronous_commit = off` for this transaction only). For the job queue's own bookkeeping —
/// claims, lease renewals, marking a job finished — whose loss in a crash only means a job runs
/// again, which every job tolerates (at-least-once, docs/jobs.md). WAL stays ordered, so a later
/// synchronous commit (a job's effects) also makes the earlier claim durable. No-op on SQLite.
pub async fn relax_commit<C: ConnectionTrait>(conn: &C) -> Result<(), DbErr> {
    if conn.get_database_backend() == DbBackend::Postgres {
        conn.execute_unprepared("SET LOCAL synchronous_commit = off")
            .await?;
    }
    Ok(())
}
