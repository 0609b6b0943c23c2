//! Outgoing emails (`emails`) and per-user preferences (`user_preferences`, the daily digest
//! opt-in). Both keyed `(tenant_id, …)`.

use sea_orm_migration::prelude::*;

use super::cols::*;
use super::unique_index;
use jtcrm_kernel::error::UniqueIndex;

pub const UX_EMAILS_IDEMPOTENCY: UniqueIndex = UniqueIndex {
    name: "ux_emails_idempotency",
    table: "emails",
    columns: &["tenant_id", "idempotency_key"],
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("emails")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("to_address", 320))
                .col(text("subject", 300))
                .col(ColumnDef::new("body_text").text().not_null())
                .col(text("kind", 40))
                .col(uuid_null("lead_id"))
                .col(uuid_null("user_id"))
                .col(text("status", 20))
                .col(int("attempts"))
                .col(ColumnDef::new("last_error").text().null())
                .col(text_null("provider_message_id", 300))
                .col(text_null("idempotency_key", 200))
                // The handler run that holds the `sending` claim (see email::send).
                .col(uuid_null("send_claim"))
                .col(uuid_null("actor_id"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(ts_null("sent_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_emails_tenant")
                        .from("emails", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        // NULL keys never collide (both backends), so emails without a key are unconstrained.
        m.create_index(unique_index(&UX_EMAILS_IDEMPOTENCY)).await?;
        m.create_index(idx(
            "ix_emails_lead",
            "emails",
            &["tenant_id", "lead_id", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_emails_user",
            "emails",
            &["tenant_id", "user_id", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_emails_status",
            "emails",
            &["tenant_id", "status", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_emails_kind",
            "emails",
            &["tenant_id", "kind", "id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("user_preferences")
                .col(uuid("tenant_id"))
                .col(uuid("user_id"))
                .col(boolean("daily_digest"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("user_id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_user_preferences_tenant")
                        .from("user_preferences", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_user_preferences_user")
                        .from("user_preferences", ("tenant_id", "user_id"))
                        .to("users", ("tenant_id", "id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        // The digest planner looks for tenants with at least one opted-in user, across tenants.
        m.create_index(idx(
            "ix_user_preferences_digest",
            "user_preferences",
            &["daily_digest", "tenant_id"],
        ))
        .await?;
        Ok(())
    }
}
