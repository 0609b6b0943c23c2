//! Automations with their runs and per-action results, cadences with their enrolments, and each
//! company's business hours. Every table is keyed `(tenant_id, …)`.

use sea_orm_migration::prelude::*;

use super::cols::*;
use super::unique_index;
use jtcrm_kernel::error::UniqueIndex;

pub const UX_AUTOMATION_RUNS_EVENT: UniqueIndex = UniqueIndex {
    name: "ux_automation_runs_event",
    table: "automation_runs",
    columns: &["tenant_id", "automation_id", "event_id"],
};
pub const UX_CADENCE_ENROLLMENTS_ACTIVE: UniqueIndex = UniqueIndex {
    name: "ux_cadence_enrollments_active",
    table: "cadence_enrollments",
    columns: &["tenant_id", "cadence_id", "active_lead_id"],
};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn json_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).json_binary().null().take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("automations")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("name", 200))
                .col(ColumnDef::new("description").text().null())
                .col(boolean("active"))
                // Copied out of `trigger` so the dispatcher finds candidates with an index.
                .col(text("trigger_event", 60))
                .col(json("trigger"))
                .col(json_null("conditions"))
                .col(json("actions"))
                .col(boolean("stop_on_error"))
                .col(uuid_null("created_by"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(ts_null("deleted_at"))
                .col(int("version"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk("fk_automations_tenant", "automations"))
                .take(),
        )
        .await?;
        m.create_index(idx(
            "ix_automations_trigger",
            "automations",
            &["tenant_id", "trigger_event", "active"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("automation_runs")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("automation_id"))
                // The definition's version when the run started: an edited automation cancels the
                // remaining actions of older runs instead of running shifted ones.
                .col(int("automation_version"))
                .col(text("source", 10))
                .col(uuid_null("event_id"))
                .col(text_null("event_type", 60))
                .col(text("entity_type", 40))
                .col(uuid("entity_id"))
                .col(int("depth"))
                .col(text("status", 16))
                .col(int("actions_total"))
                .col(ts("created_at"))
                .col(ts_null("finished_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk(
                    "fk_automation_runs_tenant",
                    "automation_runs",
                ))
                .foreign_key(
                    &mut ForeignKey::create()
                        .name("fk_automation_runs_automation")
                        .from("automation_runs", ("tenant_id", "automation_id"))
                        .to("automations", ("tenant_id", "id"))
                        .take(),
                )
                .take(),
        )
        .await?;
        // One run per automation and event: a replayed event starts nothing new. Manual runs have
        // no event (NULLs are distinct on both backends).
        m.create_index(unique_index(&UX_AUTOMATION_RUNS_EVENT))
            .await?;
        m.create_index(idx(
            "ix_automation_runs_log",
            "automation_runs",
            &["tenant_id", "automation_id", "id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("automation_run_actions")
                .col(uuid("tenant_id"))
                .col(uuid("run_id"))
                .col(int("position"))
                .col(text("action_type", 30))
                .col(text("status", 16))
                .col(ts_null("run_at"))
                .col(int("attempts"))
                .col(json_null("result"))
                .col(ColumnDef::new("error").text().null())
                .col(ts_null("started_at"))
                .col(ts_null("finished_at"))
                .primary_key(
                    Index::create()
                        .col("tenant_id")
                        .col("run_id")
                        .col("position"),
                )
                .foreign_key(&mut tenant_fk(
                    "fk_automation_run_actions_tenant",
                    "automation_run_actions",
                ))
                .foreign_key(
                    &mut ForeignKey::create()
                        .name("fk_automation_run_actions_run")
                        .from("automation_run_actions", ("tenant_id", "run_id"))
                        .to("automation_runs", ("tenant_id", "id"))
                        .on_delete(ForeignKeyAction::Cascade)
                        .take(),
                )
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("cadences")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("name", 200))
                .col(ColumnDef::new("description").text().null())
                .col(boolean("active"))
                .col(json("steps"))
                .col(uuid_null("created_by"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(ts_null("deleted_at"))
                .col(int("version"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk("fk_cadences_tenant", "cadences"))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("cadence_enrollments")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("cadence_id"))
                .col(uuid("lead_id"))
                // `lead_id` while the enrolment is active, NULL afterwards: the unique index below
                // then allows one active enrolment per lead and cadence, and any number of past ones.
                .col(uuid_null("active_lead_id"))
                .col(text("status", 16))
                .col(int("current_step"))
                .col(ts_null("next_run_at"))
                .col(text_null("exit_reason", 40))
                .col(json("history"))
                // Automation depth of the enrolment (0 when a person enrolled the lead), carried
                // by the events its steps cause.
                .col(int("depth"))
                .col(uuid_null("enrolled_by"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(ts_null("finished_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk(
                    "fk_cadence_enrollments_tenant",
                    "cadence_enrollments",
                ))
                .foreign_key(
                    &mut ForeignKey::create()
                        .name("fk_cadence_enrollments_cadence")
                        .from("cadence_enrollments", ("tenant_id", "cadence_id"))
                        .to("cadences", ("tenant_id", "id"))
                        .take(),
                )
                .foreign_key(
                    &mut ForeignKey::create()
                        .name("fk_cadence_enrollments_lead")
                        .from("cadence_enrollments", ("tenant_id", "lead_id"))
                        .to("leads", ("tenant_id", "id"))
                        // LGPD erasure of a lead takes its enrolments with it.
                        .on_delete(ForeignKeyAction::Cascade)
                        .take(),
                )
                .take(),
        )
        .await?;
        m.create_index(unique_index(&UX_CADENCE_ENROLLMENTS_ACTIVE))
            .await?;
        m.create_index(idx(
            "ix_cadence_enrollments_list",
            "cadence_enrollments",
            &["tenant_id", "cadence_id", "id"],
        ))
        .await?;
        // Exits: every active enrolment of a lead.
        m.create_index(idx(
            "ix_cadence_enrollments_lead",
            "cadence_enrollments",
            &["tenant_id", "active_lead_id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("business_hours")
                .col(uuid("tenant_id"))
                .col(text_null("timezone", 64))
                .col(json("weekdays"))
                .col(int("start_minute"))
                .col(int("end_minute"))
                .col(json("holidays"))
                .col(ts("updated_at"))
                .col(int("version"))
                .primary_key(Index::create().col("tenant_id"))
                .foreign_key(&mut tenant_fk("fk_business_hours_tenant", "business_hours"))
                .take(),
        )
        .await?;
        Ok(())
    }
}
