//! The one backend-neutral migration tree (SQLite and PostgreSQL), applied by `serve` and `migrate`.
//! Tenant-owned tables lead every key with `tenant_id`; see docs/storage.md.

use anyhow::Context;
use jtcrm_kernel::error::{UniqueIndex, UniqueViolation};
use sea_orm_migration::prelude::*;

mod m20261129_000001_foundation;
mod m20261129_000002_jobs;
mod m20261129_000003_leads;
mod m20261129_000004_pipelines;
mod m20261129_000005_tasks_timeline;
mod m20261129_000006_email;
mod m20261129_000007_automations;
mod m20261130_000008_perf_indexes;
mod m20261130_000009_agenda_index;
/// Row-level security on PostgreSQL; its [`enable`](m20261207_000010_row_level_security::enable)
/// puts a new tenant-owned table under the tenant policy (docs/architecture.md, "Adding a module").
pub mod m20261207_000010_row_level_security;
pub use m20261207_000010_row_level_security as rls;
mod m20261207_000011_proposals;
mod m20261208_000012_contracts;
mod m20261208_000013_dashboards;
mod m20261208_000014_telephony;

pub use m20261129_000001_foundation::{
    PLANS_PKEY, UX_PLATFORM_ADMINS_EMAIL, UX_REFRESH_TOKENS_HASH, UX_TENANTS_SLUG, UX_USERS_EMAIL,
    UX_USERS_EXTENSION,
};
pub use m20261129_000002_jobs::UX_JOBS_IDEMPOTENCY;
pub use m20261129_000003_leads::UX_LEAD_FIELD_DEFS_KEY;
pub use m20261129_000004_pipelines::UX_PRODUCTS_SKU;
pub use m20261129_000006_email::UX_EMAILS_IDEMPOTENCY;
pub use m20261129_000007_automations::{UX_AUTOMATION_RUNS_EVENT, UX_CADENCE_ENROLLMENTS_ACTIVE};
pub use m20261207_000011_proposals::{UX_PROPOSALS_LINK, UX_PROPOSALS_NUMBER};
pub use m20261208_000012_contracts::{UX_CONTRACT_SIGNERS_LINK, UX_CONTRACTS_NUMBER};
pub use m20261208_000014_telephony::{
    UX_CALL_RECORDINGS_POSITION, UX_CALLS_PROVIDER_ID, UX_TELEPHONY_EXTENSIONS_NUMBER,
    UX_TELEPHONY_EXTENSIONS_USER,
};

/// Every unique index of the schema (and the primary keys a caller tells apart), each declared next
/// to the migration that creates it. A test checks this list against the live schema on both
/// backends; add new unique indexes here.
pub const UNIQUE_INDEXES: &[UniqueIndex] = &[
    PLANS_PKEY,
    UX_TENANTS_SLUG,
    UX_USERS_EMAIL,
    UX_USERS_EXTENSION,
    UX_PLATFORM_ADMINS_EMAIL,
    UX_REFRESH_TOKENS_HASH,
    UX_JOBS_IDEMPOTENCY,
    UX_LEAD_FIELD_DEFS_KEY,
    UX_PRODUCTS_SKU,
    UX_EMAILS_IDEMPOTENCY,
    UX_AUTOMATION_RUNS_EVENT,
    UX_CADENCE_ENROLLMENTS_ACTIVE,
    UX_PROPOSALS_NUMBER,
    UX_PROPOSALS_LINK,
    UX_CONTRACTS_NUMBER,
    UX_CONTRACT_SIGNERS_LINK,
    UX_TELEPHONY_EXTENSIONS_NUMBER,
    UX_TELEPHONY_EXTENSIONS_USER,
    UX_CALLS_PROVIDER_ID,
    UX_CALL_RECORDINGS_POSITION,
];

/// The unique index `e` violated, named on both backends (see
/// [`jtcrm_kernel::error::unique_violation`]); `None` when `e` is no unique violation. Match it
/// with [`UniqueViolation::is`] against the index the write can collide on.
pub fn unique_violation(e: &DbErr) -> Option<UniqueViolation> {
    jtcrm_kernel::error::unique_violation(e, UNIQUE_INDEXES)
}

/// `CREATE UNIQUE INDEX` for a declared unique index.
fn unique_index(u: &UniqueIndex) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(u.name).table(u.table).unique();
    for c in u.columns {
        i.col(*c);
    }
    i.take()
}

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_foundation::Migration),
            Box::new(m20261129_000002_jobs::Migration),
            Box::new(m20261129_000003_leads::Migration),
            Box::new(m20261129_000004_pipelines::Migration),
            Box::new(m20261129_000005_tasks_timeline::Migration),
            Box::new(m20261129_000006_email::Migration),
            Box::new(m20261129_000007_automations::Migration),
            Box::new(m20261130_000008_perf_indexes::Migration),
            Box::new(m20261130_000009_agenda_index::Migration),
            Box::new(m20261207_000010_row_level_security::Migration),
            Box::new(m20261207_000011_proposals::Migration),
            Box::new(m20261208_000012_contracts::Migration),
            Box::new(m20261208_000013_dashboards::Migration),
            Box::new(m20261208_000014_telephony::Migration),
        ]
    }
}

/// Shorthands that keep column definitions on one line.
pub(crate) mod cols {
    use sea_orm_migration::prelude::*;

    /// A (non-unique) index on `cols` of `table`.
    pub fn idx(name: &str, table: &'static str, cols: &[&'static str]) -> IndexCreateStatement {
        let mut i = Index::create();
        i.name(name).table(table);
        for c in cols {
            i.col(*c);
        }
        i.take()
    }

    /// `table.tenant_id` → `tenants.id`, deleted with its tenant.
    pub fn tenant_fk(name: &str, table: &'static str) -> ForeignKeyCreateStatement {
        ForeignKey::create()
            .name(name)
            .from(table, "tenant_id")
            .to("tenants", "id")
            .on_delete(ForeignKeyAction::Cascade)
            .take()
    }

    pub fn uuid(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).uuid().not_null().take()
    }
    pub fn uuid_null(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).uuid().null().take()
    }
    pub fn text(name: &'static str, len: u32) -> ColumnDef {
        ColumnDef::new(name).string_len(len).not_null().take()
    }
    pub fn text_null(name: &'static str, len: u32) -> ColumnDef {
        ColumnDef::new(name).string_len(len).null().take()
    }
    pub fn ts(name: &'static str) -> ColumnDef {
        ColumnDef::new(name)
            .timestamp_with_time_zone()
            .not_null()
            .take()
    }
    pub fn ts_null(name: &'static str) -> ColumnDef {
        ColumnDef::new(name)
            .timestamp_with_time_zone()
            .null()
            .take()
    }
    pub fn big(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).big_integer().not_null().take()
    }
    pub fn big_null(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).big_integer().null().take()
    }
    pub fn int(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).integer().not_null().take()
    }
    pub fn boolean(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).boolean().not_null().take()
    }
    pub fn json(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).json_binary().not_null().take()
    }
}

/// Applies every pending migration.
pub async fn migrate(db: &jtcrm_kernel::db::Db) -> anyhow::Result<()> {
    Migrator::up(db, None)
        .await
        .context("falha ao aplicar migrações")?;
    Ok(())
}
