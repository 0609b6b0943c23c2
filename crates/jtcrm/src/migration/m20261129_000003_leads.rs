//! Leads: the lead record, its search terms and tags, status history, scoring rules, custom field
//! definitions, CSV imports and idempotency keys. Every table is keyed `(tenant_id, …)`.

use sea_orm_migration::prelude::*;

use super::cols::*;
use super::unique_index;
use jtcrm_kernel::error::UniqueIndex;

pub const UX_LEAD_FIELD_DEFS_KEY: UniqueIndex = UniqueIndex {
    name: "ux_lead_field_defs_key",
    table: "lead_field_defs",
    columns: &["tenant_id", "key"],
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Byte-order collation on PostgreSQL for columns searched by prefix range, whatever the database's
/// locale (SQLite already compares bytes).
fn binary_text(m: &SchemaManager, name: &'static str, len: u32) -> ColumnDef {
    let mut c = text(name, len);
    if m.get_database_backend() == sea_orm::DbBackend::Postgres {
        c.extra("COLLATE \"C\"");
    }
    c
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("leads")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("name", 200))
                // Accent- and case-folded name: sort key and search prefix.
                .col(binary_text(m, "name_sort", 200))
                .col(text_null("email", 254))
                .col(text_null("phone", 20))
                .col(text_null("company", 200))
                .col(text_null("cnpj", 14))
                .col(text_null("position", 120))
                .col(text("source", 20))
                .col(text("status", 20))
                .col(uuid_null("owner_id"))
                .col(json("tags"))
                .col(json("custom_fields"))
                .col(text_null("cep", 8))
                .col(text_null("city", 120))
                .col(text_null("state", 2))
                .col(ColumnDef::new("notes").text().null())
                .col(int("score"))
                .col(int("signal_points"))
                .col(ts_null("last_contacted_at"))
                .col(uuid_null("merged_into"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(ts_null("deleted_at"))
                .col(int("version"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk("fk_leads_tenant", "leads"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_leads_owner")
                        .from("leads", ("tenant_id", "owner_id"))
                        .to("users", ("tenant_id", "id")),
                )
                .take(),
        )
        .await?;
        // Access paths of the list: default sort, each sort key, the usual filters, dedupe lookups.
        m.create_index(idx(
            "ix_leads_created",
            "leads",
            &["tenant_id", "created_at", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_leads_updated",
            "leads",
            &["tenant_id", "updated_at", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_leads_score",
            "leads",
            &["tenant_id", "score", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_leads_name",
            "leads",
            &["tenant_id", "name_sort", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_leads_status",
            "leads",
            &["tenant_id", "status", "created_at", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_leads_status_score",
            "leads",
            &["tenant_id", "status", "score", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_leads_owner",
            "leads",
            &["tenant_id", "owner_id", "created_at", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_leads_owner_status_score",
            "leads",
            &["tenant_id", "owner_id", "status", "score", "id"],
        ))
        .await?;
        m.create_index(idx("ix_leads_email", "leads", &["tenant_id", "email"]))
            .await?;
        m.create_index(idx("ix_leads_cnpj", "leads", &["tenant_id", "cnpj"]))
            .await?;
        m.create_index(idx("ix_leads_phone", "leads", &["tenant_id", "phone"]))
            .await?;

        // Inverted index for `q`: folded words of name/company, email parts, CNPJ and phone digits.
        m.create_table(
            Table::create()
                .table("lead_terms")
                .col(uuid("tenant_id"))
                .col(binary_text(m, "term", 64))
                .col(uuid("lead_id"))
                .primary_key(Index::create().col("tenant_id").col("term").col("lead_id"))
                .foreign_key(&mut tenant_fk("fk_lead_terms_tenant", "lead_terms"))
                .take(),
        )
        .await?;
        m.create_index(idx(
            "ix_lead_terms_lead",
            "lead_terms",
            &["tenant_id", "lead_id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("lead_tags")
                .col(uuid("tenant_id"))
                .col(text("tag", 60))
                .col(uuid("lead_id"))
                .primary_key(Index::create().col("tenant_id").col("tag").col("lead_id"))
                .foreign_key(&mut tenant_fk("fk_lead_tags_tenant", "lead_tags"))
                .take(),
        )
        .await?;
        m.create_index(idx(
            "ix_lead_tags_lead",
            "lead_tags",
            &["tenant_id", "lead_id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("lead_status_history")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("lead_id"))
                .col(text_null("from_status", 20))
                .col(text("to_status", 20))
                .col(uuid_null("actor_id"))
                .col(ts("created_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk(
                    "fk_lead_status_history_tenant",
                    "lead_status_history",
                ))
                .take(),
        )
        .await?;
        m.create_index(idx(
            "ix_lead_status_history_lead",
            "lead_status_history",
            &["tenant_id", "lead_id", "id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("lead_scoring_rules")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("field", 80))
                .col(text("operator", 40))
                .col(json("value"))
                .col(int("points"))
                .col(text("description", 200))
                .col(boolean("active"))
                .col(int("position"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(int("version"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk(
                    "fk_lead_scoring_rules_tenant",
                    "lead_scoring_rules",
                ))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("lead_field_defs")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("key", 40))
                .col(text("label", 120))
                .col(text("field_type", 20))
                .col(boolean("required"))
                .col(json("options"))
                .col(int("position"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(int("version"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk(
                    "fk_lead_field_defs_tenant",
                    "lead_field_defs",
                ))
                .take(),
        )
        .await?;
        m.create_index(unique_index(&UX_LEAD_FIELD_DEFS_KEY))
            .await?;

        m.create_table(
            Table::create()
                .table("lead_imports")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("status", 20))
                .col(text("filename", 255))
                .col(text("file_path", 500))
                .col(json("options"))
                .col(big("rows_total"))
                .col(big("rows_done"))
                .col(big("created"))
                .col(big("updated"))
                .col(big("skipped"))
                .col(big("error_count"))
                .col(json("errors"))
                .col(text_null("failure", 500))
                .col(uuid_null("created_by"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(ts_null("finished_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk("fk_lead_imports_tenant", "lead_imports"))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("idempotency_keys")
                .col(uuid("tenant_id"))
                .col(text("key", 200))
                .col(text("scope", 200))
                .col(text("fingerprint", 64))
                .col(int("status_code"))
                .col(ColumnDef::new("response").text().not_null())
                .col(ts("created_at"))
                .primary_key(Index::create().col("tenant_id").col("key"))
                .foreign_key(&mut tenant_fk(
                    "fk_idempotency_keys_tenant",
                    "idempotency_keys",
                ))
                .take(),
        )
        .await?;
        Ok(())
    }
}
