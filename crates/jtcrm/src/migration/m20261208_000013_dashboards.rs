//! Dashboards (docs/dashboards.md): the monthly sales quotas, and the access paths of the report
//! queries found missing by the dashboards benchmark (bench/RESULTS.md, "Dashboards"):
//!
//! - deals closed in a period (`status`, `closed_at`) and stage changes in a period;
//! - tasks completed in a period, leads contacted in a period, notes and automation runs written
//!   in a period.

use sea_orm_migration::prelude::*;

use super::cols::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: &[(&str, &str, &[&str])] = &[
    (
        "ix_opportunities_closed",
        "opportunities",
        &["tenant_id", "status", "closed_at"],
    ),
    (
        "ix_opportunity_stage_history_created",
        "opportunity_stage_history",
        &["tenant_id", "created_at"],
    ),
    (
        "ix_tasks_completed",
        "tasks",
        &["tenant_id", "status", "completed_at"],
    ),
    (
        "ix_leads_contacted",
        "leads",
        &["tenant_id", "last_contacted_at"],
    ),
    ("ix_notes_created", "notes", &["tenant_id", "created_at"]),
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
        for (name, table, cols) in INDEXES {
            m.create_index(idx(name, table, cols)).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in INDEXES {
            m.drop_index(Index::drop().name(*name).table(*table).to_owned())
                .await?;
        }
        super::rls::disable(m, "sales_quotas").await?;
        m.drop_table(Table::drop().table("sales_quotas").take())
            .await?;
        Ok(())
    }
}
