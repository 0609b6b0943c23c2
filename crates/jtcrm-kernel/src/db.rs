//! Database connection by URL scheme (SQLite default, PostgreSQL in production) and statement
//! helpers shared by every domain. Migrations live with the domains (`jtcrm::migration`).
//! SQLite runs in WAL mode with foreign keys on; the file's directory is created on first run.

use std::time::Duration;

use anyhow::Context;
use sea_orm::{
    ActiveModelTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend,
    DbErr, EntityTrait, Iterable,
};

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

pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Db> {
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
