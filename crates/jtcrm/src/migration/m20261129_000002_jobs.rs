//! The durable job queue (docs/jobs.md): one platform table keyed by `id`, with a nullable `tenant_id`
//! (null = platform job) leading the indexes the API reads through. See docs/jobs.md.

use sea_orm_migration::prelude::*;

use super::cols::*;
use super::unique_index;
use jtcrm_kernel::error::UniqueIndex;

pub const UX_JOBS_IDEMPOTENCY: UniqueIndex = UniqueIndex {
    name: "ux_jobs_idempotency",
    table: "jobs",
    columns: &["idempotency_key"],
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("jobs")
                .col(uuid("id").primary_key())
                .col(uuid_null("tenant_id"))
                .col(text("kind", 80))
                .col(json("payload"))
                .col(text("status", 16))
                .col(int("attempts"))
                .col(int("max_attempts"))
                .col(ts("run_at"))
                .col(text_null("locked_by", 120))
                .col(ts_null("locked_until"))
                .col(text_null("idempotency_key", 200))
                .col(ColumnDef::new("last_error").text().null().take())
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(ts_null("finished_at"))
                .take(),
        )
        .await?;
        // The claim path: `status IN (…) AND run_at <= now ORDER BY run_at`, and expired leases
        // (`status = 'running'`, few rows). Also serves the cleanup of old succeeded jobs.
        m.create_index(idx("ix_jobs_claim", "jobs", &["status", "run_at"]))
            .await?;
        // The API: a tenant's jobs newest first, with or without a status filter.
        m.create_index(idx("ix_jobs_tenant", "jobs", &["tenant_id", "id"]))
            .await?;
        m.create_index(idx(
            "ix_jobs_tenant_status",
            "jobs",
            &["tenant_id", "status", "id"],
        ))
        .await?;
        // NULLs are distinct in unique indexes on both SQLite and PostgreSQL, so jobs without a key
        // never collide.
        m.create_index(unique_index(&UX_JOBS_IDEMPOTENCY)).await?;
        // The daily `system.cleanup` job deletes long-expired refresh tokens in batches by expiry.
        m.create_index(idx(
            "ix_refresh_tokens_expires",
            "refresh_tokens",
            &["expires_at"],
        ))
        .await?;
        Ok(())
    }
}
