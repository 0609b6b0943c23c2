//! Dashboards (docs/dashboards.md): the monthly sales quotas, and the access paths of the report
//! queries found missing by the dashboards benchmark (bench/RESULTS.md, "Dashboards"):
//!
//! - leads created and contacted in a period, deals closed in a period, tasks completed and notes
//!   written in a period: partial indexes of the live rows covering the columns the reports read;
//! - stage changes and automation runs in a period.

use sea_orm_migration::prelude::*;

use super::cols::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `(name, table, columns)`: partial indexes of the live rows (`deleted_at IS NULL`, written the same
/// on SQLite and PostgreSQL) whose columns cover the report queries, so PostgreSQL answers them
/// with index-only scans.
const INDEXES: &[(&str, &str, &str)] = &[
    (
        "ix_leads_dash_created",
        "leads",
        "tenant_id, created_at, owner_id, source, id",
    ),
    (
        "ix_leads_dash_contacted",
        "leads",
        "tenant_id, last_contacted_at, owner_id",
    ),
    (
        "ix_opportunities_dash_closed",
        "opportunities",
        "tenant_id, status, closed_at, owner_id, pipeline_id, mrr_cents, tcv_cents, setup_cents",
    ),
    (
        "ix_tasks_dash_completed",
        "tasks",
        "tenant_id, status, completed_at, assignee_id",
    ),
    (
        "ix_notes_dash_created",
        "notes",
        "tenant_id, created_at, author_id",
    ),
];

/// Plain indexes: stage changes and automation runs in a period.
const PLAIN: &[(&str, &str, &[&str])] = &[
    (
        "ix_opportunity_stage_history_created",
        "opportunity_stage_history",
        &["tenant_id", "created_at"],
    ),
    (
        "ix_automation_runs_created",
        "automation_runs",
        &["tenant_id", "created_at"],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("sales_quotas")
                .col(uuid("tenant_id"))
                // First day of the month (company timezone) as `YYYY-MM`.
                .col(text("month", 7))
                .col(uuid("user_id"))
                .col(big_null("mrr_cents"))
                .col(big_null("deals"))
                .col(uuid_null("updated_by"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("month").col("user_id"))
                .foreign_key(&mut tenant_fk("fk_sales_quotas_tenant", "sales_quotas"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_sales_quotas_user")
                        .from("sales_quotas", ("tenant_id", "user_id"))
                        .to("users", ("tenant_id", "id")),
                )
                .take(),
        )
        .await?;
        super::rls::enable(m, "sales_quotas").await?;
        let db = m.get_connection();
        for (name, table, cols) in INDEXES {
            db.execute_unprepared(&format!(
                "CREATE INDEX {name} ON {table} ({cols}) WHERE deleted_at IS NULL"
            ))
            .await?;
        }
        for (name, table, cols) in PLAIN {
            m.create_index(idx(name, table, cols)).await?;
        }
        // Tasks due today and overdue, now: the pending ones only.
        db.execute_unprepared(
            "CREATE INDEX ix_tasks_dash_pending ON tasks (tenant_id, due_sort, assignee_id) \
             WHERE deleted_at IS NULL AND status = 'pending'",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS ix_tasks_dash_pending")
            .await?;
        for (name, _, _) in INDEXES {
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS {name}"))
                .await?;
        }
        for (name, table, _) in PLAIN {
            m.drop_index(Index::drop().name(*name).table(*table).to_owned())
                .await?;
        }
        super::rls::disable(m, "sales_quotas").await?;
        m.drop_table(Table::drop().table("sales_quotas").take())
            .await?;
        Ok(())
    }
}
