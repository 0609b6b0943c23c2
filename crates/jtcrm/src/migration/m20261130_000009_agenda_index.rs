//! Found by the agenda and board benchmarks (bench/RESULTS.md):
//!
//! - `ix_tasks_assignee_due`: a seller's agenda for a day (`due=today|tomorrow|this_week`, any
//!   status) is a range on `due_sort` within the assignee. `ix_tasks_agenda` puts `status` before
//!   `due_sort`, so without a status filter it scanned every task of the assignee (50,000 in the
//!   benchmark) to find the day's few dozen.
//! - `pipeline_stage_totals` on PostgreSQL: each deal change rewrites one or two of its few rows, so
//!   it is kept with free space in each page (HOT updates, no index churn) and vacuumed after a few
//!   hundred dead rows instead of a share of a table that never grows.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("ix_tasks_assignee_due")
                .table("tasks")
                .col("tenant_id")
                .col("assignee_id")
                .col("due_sort")
                .col("priority_rank")
                .col("id")
                .take(),
        )
        .await?;
        if m.get_database_backend() == DbBackend::Postgres {
            m.get_connection()
                .execute_unprepared(
                    "ALTER TABLE pipeline_stage_totals SET (fillfactor = 50, \
                     autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 500, \
                     autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 500)",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS ix_tasks_assignee_due")
            .await?;
        if m.get_database_backend() == DbBackend::Postgres {
            m.get_connection()
                .execute_unprepared(
                    "ALTER TABLE pipeline_stage_totals RESET (fillfactor, \
                     autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, \
                     autovacuum_analyze_scale_factor, autovacuum_analyze_threshold)",
                )
                .await?;
        }
        Ok(())
    }
}
