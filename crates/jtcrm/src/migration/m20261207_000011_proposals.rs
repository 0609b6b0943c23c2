//! Document templates (`document_templates`, proposals and contracts), proposals (`proposals`,
//! with the customer's link and decision evidence) and their frozen sent versions
//! (`proposal_versions`). Every key leads with `tenant_id`; the public link is found by
//! `(tenant_id, link_token_hash)` (the token carries its tenant). See docs/proposals.md.

use sea_orm_migration::prelude::*;

use super::cols::*;
use super::unique_index;
use jtcrm_kernel::error::UniqueIndex;

pub const UX_PROPOSALS_NUMBER: UniqueIndex = UniqueIndex {
    name: "ux_proposals_number",
    table: "proposals",
    columns: &["tenant_id", "number"],
};

pub const UX_PROPOSALS_LINK: UniqueIndex = UniqueIndex {
    name: "ux_proposals_link",
    table: "proposals",
    columns: &["tenant_id", "link_token_hash"],
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("document_templates")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("kind", 20))
                .col(text("name", 200))
                .col(ColumnDef::new("body").text().not_null())
                .col(boolean("is_default"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(ts_null("deleted_at"))
                .col(int("version"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk(
                    "fk_document_templates_tenant",
                    "document_templates",
                ))
                .take(),
        )
        .await?;
        m.create_index(idx(
            "ix_document_templates_kind",
            "document_templates",
            &["tenant_id", "kind", "name", "id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("proposals")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("number", 30))
                .col(text("title", 200))
                .col(uuid("opportunity_id"))
                .col(uuid_null("lead_id"))
                .col(uuid_null("owner_id"))
                .col(uuid_null("template_id"))
                .col(text("status", 20))
                .col(ColumnDef::new("valid_until").date().not_null())
                .col(int("term_months"))
                .col(json("items"))
                .col(big("mrr_cents"))
                .col(big("setup_cents"))
                .col(big("tcv_cents"))
                .col(ColumnDef::new("notes").text().null())
                .col(int("revision"))
                .col(text_null("recipient_email", 320))
                .col(ts_null("sent_at"))
                .col(text_null("link_token_hash", 64))
                .col(ts_null("link_expires_at"))
                .col(ts_null("link_revoked_at"))
                .col(ts_null("viewed_at"))
                .col(text_null("viewed_ip", 64))
                .col(text_null("viewed_user_agent", 500))
                .col(ts_null("decided_at"))
                .col(text_null("decision_name", 200))
                .col(text_null("decision_cpf", 14))
                .col(ColumnDef::new("decision_reason").text().null())
                .col(text_null("decision_ip", 64))
                .col(text_null("decision_user_agent", 500))
                .col(text_null("decision_sha256", 64))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(ts_null("deleted_at"))
                .col(int("version"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk("fk_proposals_tenant", "proposals"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_proposals_opportunity")
                        .from("proposals", ("tenant_id", "opportunity_id"))
                        .to("opportunities", ("tenant_id", "id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        m.create_index(unique_index(&UX_PROPOSALS_NUMBER)).await?;
        m.create_index(unique_index(&UX_PROPOSALS_LINK)).await?;
        for (name, col) in [
            ("ix_proposals_status", "status"),
            ("ix_proposals_owner", "owner_id"),
            ("ix_proposals_lead", "lead_id"),
            ("ix_proposals_opportunity", "opportunity_id"),
        ] {
            m.create_index(idx(
                name,
                "proposals",
                &["tenant_id", col, "created_at", "id"],
            ))
            .await?;
        }
        m.create_index(idx(
            "ix_proposals_created",
            "proposals",
            &["tenant_id", "created_at", "id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("proposal_versions")
                .col(uuid("tenant_id"))
                .col(uuid("proposal_id"))
                .col(int("revision"))
                .col(json("snapshot"))
                .col(ColumnDef::new("content").text().not_null())
                .col(text("content_sha256", 64))
                .col(ts("sent_at"))
                .primary_key(
                    Index::create()
                        .col("tenant_id")
                        .col("proposal_id")
                        .col("revision"),
                )
                .foreign_key(&mut tenant_fk(
                    "fk_proposal_versions_tenant",
                    "proposal_versions",
                ))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_proposal_versions_proposal")
                        .from("proposal_versions", ("tenant_id", "proposal_id"))
                        .to("proposals", ("tenant_id", "id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        // Under the tenant policy on PostgreSQL (docs/tenancy.md, "Row-level security").
        for table in ["document_templates", "proposals", "proposal_versions"] {
            super::rls::enable(m, table).await?;
        }
        Ok(())
    }
}
