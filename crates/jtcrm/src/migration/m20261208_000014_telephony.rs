//! Per-tenant integration settings (`integration_settings`, one row per provider, secrets sealed
//! with AES-256-GCM), and telephony: PABX extensions (`telephony_extensions`), calls (`calls`)
//! and their recordings (`call_recordings`). Every key leads with `tenant_id`; a call is unique
//! per `(tenant_id, provider_call_id)`, which makes ingestion from the webhook and the history
//! poll idempotent. See docs/telephony.md.

use sea_orm_migration::prelude::*;

use super::cols::*;
use super::unique_index;
use jtcrm_kernel::error::UniqueIndex;

pub const UX_TELEPHONY_EXTENSIONS_NUMBER: UniqueIndex = UniqueIndex {
    name: "ux_telephony_extensions_number",
    table: "telephony_extensions",
    columns: &["tenant_id", "number"],
};

pub const UX_TELEPHONY_EXTENSIONS_USER: UniqueIndex = UniqueIndex {
    name: "ux_telephony_extensions_user",
    table: "telephony_extensions",
    columns: &["tenant_id", "user_id"],
};

pub const UX_CALLS_PROVIDER_ID: UniqueIndex = UniqueIndex {
    name: "ux_calls_provider_id",
    table: "calls",
    columns: &["tenant_id", "provider_call_id"],
};

pub const UX_CALL_RECORDINGS_POSITION: UniqueIndex = UniqueIndex {
    name: "ux_call_recordings_position",
    table: "call_recordings",
    columns: &["tenant_id", "call_id", "position"],
};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: [&str; 4] = [
    "integration_settings",
    "telephony_extensions",
    "calls",
    "call_recordings",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("integration_settings")
                .col(uuid("tenant_id"))
                .col(text("provider", 30))
                .col(boolean("enabled"))
                .col(json("config"))
                .col(json("secrets"))
                .col(text_null("webhook_token_hash", 64))
                .col(json("sync_state"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(int("version"))
                .primary_key(Index::create().col("tenant_id").col("provider"))
                .foreign_key(&mut tenant_fk(
                    "fk_integration_settings_tenant",
                    "integration_settings",
                ))
                .take(),
        )
        .await?;
        m.create_index(idx(
            "ix_integration_settings_provider",
            "integration_settings",
            &["provider", "enabled", "tenant_id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("telephony_extensions")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text_null("provider_id", 64))
                .col(text("number", 10))
                .col(text("name", 120))
                .col(uuid_null("user_id"))
                .col(text_null("group_name", 120))
                .col(ColumnDef::new("area_code").small_integer().null())
                .col(boolean("record_calls"))
                .col(boolean("blocked"))
                .col(text("origin", 10))
                .col(ts_null("synced_at"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(int("version"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk(
                    "fk_telephony_extensions_tenant",
                    "telephony_extensions",
                ))
                .take(),
        )
        .await?;
        m.create_index(unique_index(&UX_TELEPHONY_EXTENSIONS_NUMBER))
            .await?;
        m.create_index(unique_index(&UX_TELEPHONY_EXTENSIONS_USER))
            .await?;

        m.create_table(
            Table::create()
                .table("calls")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text_null("provider_call_id", 128))
                .col(text("direction", 10))
                .col(text("status", 12))
                .col(text_null("outcome", 12))
                .col(text("source", 16))
                .col(text_null("from_number", 64))
                .col(text_null("to_number", 64))
                .col(text_null("counterpart_e164", 20))
                .col(text_null("extension", 10))
                .col(uuid_null("user_id"))
                .col(uuid_null("lead_id"))
                .col(uuid_null("opportunity_id"))
                .col(ts("started_at"))
                .col(int("duration_s"))
                .col(int("talk_s"))
                .col(int("wait_s"))
                .col(ColumnDef::new("sip_code").integer().null())
                .col(text_null("hangup_reason", 200))
                .col(text_null("contact_name", 200))
                .col(ColumnDef::new("transcription").text().null())
                .col(ColumnDef::new("summary").text().null())
                .col(json("recording_urls"))
                .col(text_null("error", 500))
                .col(uuid_null("callback_task_id"))
                .col(ts_null("ended_at"))
                .col(ts_null("completed_at"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(int("version"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk("fk_calls_tenant", "calls"))
                .take(),
        )
        .await?;
        m.create_index(unique_index(&UX_CALLS_PROVIDER_ID)).await?;
        m.create_index(idx(
            "ix_calls_started",
            "calls",
            &["tenant_id", "started_at", "id"],
        ))
        .await?;
        for (name, col) in [("ix_calls_user", "user_id"), ("ix_calls_lead", "lead_id")] {
            m.create_index(idx(name, "calls", &["tenant_id", col, "started_at", "id"]))
                .await?;
        }
        m.create_index(idx(
            "ix_calls_counterpart",
            "calls",
            &["tenant_id", "counterpart_e164", "started_at"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("call_recordings")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("call_id"))
                .col(int("position"))
                .col(ColumnDef::new("provider_url").text().not_null())
                .col(text("status", 12))
                .col(text_null("file_key", 300))
                .col(text_null("content_type", 100))
                .col(big_null("size_bytes"))
                .col(text_null("error", 500))
                .col(ts_null("stored_at"))
                .col(ts("delete_after"))
                .col(ts_null("deleted_at"))
                .col(ts("created_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk(
                    "fk_call_recordings_tenant",
                    "call_recordings",
                ))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_call_recordings_call")
                        .from("call_recordings", ("tenant_id", "call_id"))
                        .to("calls", ("tenant_id", "id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        m.create_index(unique_index(&UX_CALL_RECORDINGS_POSITION))
            .await?;
        m.create_index(idx(
            "ix_call_recordings_retention",
            "call_recordings",
            &["delete_after", "status"],
        ))
        .await?;

        for t in TABLES {
            super::rls::enable(m, t).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in TABLES.iter().rev() {
            super::rls::disable(m, t).await?;
            m.drop_table(Table::drop().table(*t).to_owned()).await?;
        }
        Ok(())
    }
}
