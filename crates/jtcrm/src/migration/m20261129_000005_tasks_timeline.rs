//! Tasks with their reschedule history, notes, the per-lead/opportunity timeline and the domain
//! event outbox. Every table is keyed `(tenant_id, …)`.

use sea_orm_migration::prelude::*;

use super::cols::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("tasks")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("title", 200))
                .col(ColumnDef::new("description").text().null())
                .col(text("task_type", 20))
                .col(text("priority", 10))
                // 0 = urgent … 3 = low: sorts "most urgent first" with a plain ascending index.
                .col(int("priority_rank"))
                .col(ts_null("due_at"))
                // due_at, or a far-future instant for undated tasks, so keyset order needs no NULLs.
                .col(ts("due_sort"))
                .col(ts_null("remind_at"))
                .col(uuid("assignee_id"))
                .col(uuid_null("lead_id"))
                .col(uuid_null("opportunity_id"))
                .col(text("status", 20))
                .col(ts_null("completed_at"))
                .col(uuid_null("completed_by"))
                .col(ColumnDef::new("outcome").text().null())
                .col(int("reschedule_count"))
                .col(ts_null("overdue_emitted_at"))
                .col(ts_null("reminded_at"))
                .col(uuid_null("created_by"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(ts_null("deleted_at"))
                .col(int("version"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk("fk_tasks_tenant", "tasks"))
                .foreign_key(
                    &mut ForeignKey::create()
                        .name("fk_tasks_assignee")
                        .from("tasks", ("tenant_id", "assignee_id"))
                        .to("users", ("tenant_id", "id"))
                        .take(),
                )
                .take(),
        )
        .await?;
        m.create_index(idx(
            "ix_tasks_agenda",
            "tasks",
            &[
                "tenant_id",
                "assignee_id",
                "status",
                "due_sort",
                "priority_rank",
                "id",
            ],
        ))
        .await?;
        m.create_index(idx(
            "ix_tasks_due",
            "tasks",
            &["tenant_id", "status", "due_sort", "priority_rank", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_tasks_lead",
            "tasks",
            &["tenant_id", "lead_id", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_tasks_opportunity",
            "tasks",
            &["tenant_id", "opportunity_id", "id"],
        ))
        .await?;
        // The overdue and reminder scans run across tenants.
        m.create_index(idx(
            "ix_tasks_overdue_scan",
            "tasks",
            &["status", "overdue_emitted_at", "due_at"],
        ))
        .await?;
        m.create_index(idx(
            "ix_tasks_remind_scan",
            "tasks",
            &["status", "reminded_at", "remind_at"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("task_reschedules")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("task_id"))
                .col(ts_null("from_due_at"))
                .col(ts("to_due_at"))
                .col(text_null("reason", 500))
                .col(uuid_null("by_user"))
                .col(ts("created_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk(
                    "fk_task_reschedules_tenant",
                    "task_reschedules",
                ))
                .take(),
        )
        .await?;
        m.create_index(idx(
            "ix_task_reschedules_task",
            "task_reschedules",
            &["tenant_id", "task_id", "id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("notes")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("subject_type", 20))
                .col(uuid("subject_id"))
                .col(uuid_null("lead_id"))
                .col(ColumnDef::new("body").text().not_null())
                .col(uuid("author_id"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(ts_null("deleted_at"))
                .col(int("version"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk("fk_notes_tenant", "notes"))
                .take(),
        )
        .await?;
        m.create_index(idx(
            "ix_notes_subject",
            "notes",
            &["tenant_id", "subject_type", "subject_id", "id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("timeline_entries")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid_null("lead_id"))
                .col(uuid_null("opportunity_id"))
                .col(text("kind", 40))
                .col(ts("occurred_at"))
                .col(uuid_null("actor_id"))
                .col(text("summary", 300))
                .col(json("data"))
                // The record the entry describes (a note, a task…), so edits and deletes follow it.
                .col(text_null("ref_type", 40))
                .col(uuid_null("ref_id"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk(
                    "fk_timeline_entries_tenant",
                    "timeline_entries",
                ))
                .take(),
        )
        .await?;
        m.create_index(idx(
            "ix_timeline_lead",
            "timeline_entries",
            &["tenant_id", "lead_id", "occurred_at", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_timeline_opportunity",
            "timeline_entries",
            &["tenant_id", "opportunity_id", "occurred_at", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_timeline_ref",
            "timeline_entries",
            &["tenant_id", "ref_type", "ref_id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("domain_events")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("event_type", 60))
                .col(text("entity_type", 40))
                .col(uuid("entity_id"))
                .col(uuid_null("actor_id"))
                .col(json("data"))
                .col(ts("created_at"))
                .col(ts_null("processed_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk("fk_domain_events_tenant", "domain_events"))
                .take(),
        )
        .await?;
        m.create_index(idx(
            "ix_domain_events_entity",
            "domain_events",
            &["tenant_id", "entity_type", "entity_id", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_domain_events_pending",
            "domain_events",
            &["processed_at", "id"],
        ))
        .await?;
        Ok(())
    }
}
