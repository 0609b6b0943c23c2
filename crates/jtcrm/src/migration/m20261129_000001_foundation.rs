//! Platform foundation: plans, tenants, users, platform admins, refresh tokens, usage counters, audit.

use sea_orm_migration::prelude::*;

use super::cols::*;
use super::unique_index;
use jtcrm_kernel::error::UniqueIndex;

/// The primary key of `plans` (unnamed in the migration: PostgreSQL's default name).
pub const PLANS_PKEY: UniqueIndex = UniqueIndex {
    name: "plans_pkey",
    table: "plans",
    columns: &["code"],
};
pub const UX_TENANTS_SLUG: UniqueIndex = UniqueIndex {
    name: "ux_tenants_slug",
    table: "tenants",
    columns: &["slug"],
};
pub const UX_USERS_EMAIL: UniqueIndex = UniqueIndex {
    name: "ux_users_email",
    table: "users",
    columns: &["email"],
};
pub const UX_USERS_EXTENSION: UniqueIndex = UniqueIndex {
    name: "ux_users_extension",
    table: "users",
    columns: &["tenant_id", "extension"],
};
pub const UX_PLATFORM_ADMINS_EMAIL: UniqueIndex = UniqueIndex {
    name: "ux_platform_admins_email",
    table: "platform_admins",
    columns: &["email"],
};
pub const UX_REFRESH_TOKENS_HASH: UniqueIndex = UniqueIndex {
    name: "ux_refresh_tokens_hash",
    table: "refresh_tokens",
    columns: &["token_hash"],
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("plans")
                .col(text("code", 40).primary_key())
                .col(text("name", 120))
                .col(big("price_cents"))
                .col(boolean("active"))
                .col(big_null("max_users"))
                .col(big_null("max_leads"))
                .col(big_null("max_pipelines"))
                .col(big_null("max_extensions"))
                .col(big_null("max_automations"))
                .col(big_null("api_rate_per_minute"))
                .col(boolean("feature_telephony"))
                .col(boolean("feature_chatbot"))
                .col(boolean("feature_e_signature"))
                .col(boolean("feature_erp_sync"))
                .col(boolean("feature_whatsapp"))
                .col(boolean("feature_api_access"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(int("version"))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("tenants")
                .col(uuid("id").primary_key())
                .col(text("name", 200))
                .col(text("slug", 63))
                .col(text("email", 254))
                .col(text_null("cnpj", 14))
                .col(text("subscription_plan", 40))
                .col(text("status", 20))
                .col(text_null("suspended_reason", 500))
                .col(json("settings"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(int("version"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_tenants_plan")
                        .from("tenants", "subscription_plan")
                        .to("plans", "code")
                        .on_update(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        m.create_index(unique_index(&UX_TENANTS_SLUG)).await?;
        m.create_index(idx("ix_tenants_status", "tenants", &["status", "id"]))
            .await?;
        m.create_index(idx("ix_tenants_plan", "tenants", &["subscription_plan"]))
            .await?;

        m.create_table(
            Table::create()
                .table("users")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("name", 200))
                .col(text("email", 254))
                .col(text("password_hash", 255))
                .col(text("role", 20))
                .col(text_null("phone", 20))
                .col(text_null("extension", 20))
                .col(boolean("active"))
                .col(ts_null("last_login_at"))
                .col(ts_null("deleted_at"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(int("version"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_users_tenant")
                        .from("users", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        // Emails are unique across the platform: login resolves the tenant from the email.
        m.create_index(unique_index(&UX_USERS_EMAIL)).await?;
        m.create_index(unique_index(&UX_USERS_EXTENSION)).await?;
        m.create_index(idx("ix_users_role", "users", &["tenant_id", "role", "id"]))
            .await?;

        m.create_table(
            Table::create()
                .table("platform_admins")
                .col(uuid("id").primary_key())
                .col(text("name", 200))
                .col(text("email", 254))
                .col(text("password_hash", 255))
                .col(boolean("active"))
                .col(ts_null("last_login_at"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .take(),
        )
        .await?;
        m.create_index(unique_index(&UX_PLATFORM_ADMINS_EMAIL))
            .await?;

        m.create_table(
            Table::create()
                .table("refresh_tokens")
                .col(uuid("id").primary_key())
                .col(text("token_hash", 64))
                .col(uuid("family_id"))
                .col(uuid("user_id"))
                .col(uuid_null("tenant_id"))
                .col(ts("expires_at"))
                .col(ts_null("used_at"))
                .col(ts_null("revoked_at"))
                .col(ts("created_at"))
                .take(),
        )
        .await?;
        m.create_index(unique_index(&UX_REFRESH_TOKENS_HASH))
            .await?;
        m.create_index(idx(
            "ix_refresh_tokens_family",
            "refresh_tokens",
            &["family_id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_refresh_tokens_user",
            "refresh_tokens",
            &["user_id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("tenant_counters")
                .col(uuid("tenant_id"))
                .col(text("resource", 40))
                .col(big("count"))
                .primary_key(Index::create().col("tenant_id").col("resource"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_tenant_counters_tenant")
                        .from("tenant_counters", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("audit_logs")
                .col(uuid("id").primary_key())
                .col(uuid_null("tenant_id"))
                .col(uuid_null("actor_id"))
                .col(text("action", 60))
                .col(text("entity_type", 60))
                .col(text("entity_id", 80))
                .col(json("changes"))
                .col(text_null("request_id", 80))
                .col(text_null("ip", 64))
                .col(ts("created_at"))
                .take(),
        )
        .await?;
        m.create_index(idx("ix_audit_tenant", "audit_logs", &["tenant_id", "id"]))
            .await?;
        m.create_index(idx(
            "ix_audit_entity",
            "audit_logs",
            &["tenant_id", "entity_type", "entity_id", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_audit_actor",
            "audit_logs",
            &["tenant_id", "actor_id", "id"],
        ))
        .await?;
        Ok(())
    }
}
