//! Tenant files (`files`: metadata of objects in the file store), contracts (`contracts`), their
//! frozen sent revisions (`contract_versions`) and signers with their evidence
//! (`contract_signers`). Every key leads with `tenant_id`; a signer's link is found by
//! `(tenant_id, link_token_hash)` (the token carries its tenant). See docs/contracts.md.

use sea_orm_migration::prelude::*;

use super::cols::*;
use super::unique_index;
use jtcrm_kernel::error::UniqueIndex;

pub const UX_CONTRACTS_NUMBER: UniqueIndex = UniqueIndex {
    name: "ux_contracts_number",
    table: "contracts",
    columns: &["tenant_id", "number"],
};

pub const UX_CONTRACT_SIGNERS_LINK: UniqueIndex = UniqueIndex {
    name: "ux_contract_signers_link",
    table: "contract_signers",
    columns: &["tenant_id", "link_token_hash"],
};

fn date_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).date().null().take()
}

fn child_fk(
    name: &str,
    from: &'static str,
    col: &'static str,
    to: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from, ("tenant_id", col))
        .to(to, ("tenant_id", "id"))
        .on_delete(ForeignKeyAction::Cascade)
        .take()
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("files")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("kind", 40))
                .col(text("name", 200))
                .col(text("content_type", 100))
                .col(big("size_bytes"))
                .col(text("sha256", 64))
                .col(text("storage_key", 300))
                .col(uuid_null("created_by"))
                .col(ts("created_at"))
                .col(ts_null("deleted_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk("fk_files_tenant", "files"))
                .take(),
        )
        .await?;
        m.create_index(idx(
            "ix_files_kind",
            "files",
            &["tenant_id", "kind", "created_at", "id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("contracts")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("number", 30))
                .col(text("title", 200))
                .col(uuid_null("proposal_id"))
                .col(uuid("opportunity_id"))
                .col(uuid_null("lead_id"))
                .col(uuid_null("owner_id"))
                .col(uuid_null("template_id"))
                .col(text("status", 20))
                .col(json("items"))
                .col(big("mrr_cents"))
                .col(big("setup_cents"))
                .col(big("tcv_cents"))
                .col(int("term_months"))
                .col(date_null("start_date"))
                .col(int("early_termination_percent"))
                .col(ColumnDef::new("sla").text().not_null())
                .col(json("equipment"))
                .col(text("provider", 20))
                .col(int("revision"))
                .col(ColumnDef::new("generated_content").text().null())
                .col(text_null("document_sha256", 64))
                .col(uuid_null("pdf_file_id"))
                .col(date_null("signature_deadline"))
                .col(ts_null("sent_at"))
                .col(ts_null("signed_at"))
                .col(ts_null("activated_at"))
                .col(ts_null("cancelled_at"))
                .col(ColumnDef::new("cancel_reason").text().null())
                .col(big_null("termination_fee_cents"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(ts_null("deleted_at"))
                .col(int("version"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk("fk_contracts_tenant", "contracts"))
                .foreign_key(&mut child_fk(
                    "fk_contracts_opportunity",
                    "contracts",
                    "opportunity_id",
                    "opportunities",
                ))
                .take(),
        )
        .await?;
        m.create_index(unique_index(&UX_CONTRACTS_NUMBER)).await?;
        for (name, col) in [
            ("ix_contracts_status", "status"),
            ("ix_contracts_owner", "owner_id"),
            ("ix_contracts_lead", "lead_id"),
            ("ix_contracts_opportunity", "opportunity_id"),
            ("ix_contracts_proposal", "proposal_id"),
        ] {
            m.create_index(idx(
                name,
                "contracts",
                &["tenant_id", col, "created_at", "id"],
            ))
            .await?;
        }
        m.create_index(idx(
            "ix_contracts_created",
            "contracts",
            &["tenant_id", "created_at", "id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("contract_versions")
                .col(uuid("tenant_id"))
                .col(uuid("contract_id"))
                .col(int("revision"))
                .col(json("snapshot"))
                .col(ColumnDef::new("content").text().not_null())
                .col(text("document_sha256", 64))
                .col(uuid("pdf_file_id"))
                .col(big("pdf_size_bytes"))
                .col(ts("sent_at"))
                .primary_key(
                    Index::create()
                        .col("tenant_id")
                        .col("contract_id")
                        .col("revision"),
                )
                .foreign_key(&mut tenant_fk(
                    "fk_contract_versions_tenant",
                    "contract_versions",
                ))
                .foreign_key(&mut child_fk(
                    "fk_contract_versions_contract",
                    "contract_versions",
                    "contract_id",
                    "contracts",
                ))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("contract_signers")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("contract_id"))
                .col(int("position"))
                .col(text("name", 200))
                .col(text_null("email", 320))
                .col(text_null("cpf", 14))
                .col(text("status", 20))
                .col(text_null("link_token_hash", 64))
                .col(ts_null("link_expires_at"))
                .col(text_null("method", 20))
                .col(ts_null("signed_at"))
                .col(text_null("signed_name", 200))
                .col(text_null("signed_cpf", 14))
                .col(text_null("signed_ip", 64))
                .col(text_null("signed_user_agent", 500))
                .col(text_null("signed_sha256", 64))
                .col(uuid_null("evidence_file_id"))
                .col(uuid_null("recorded_by"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk(
                    "fk_contract_signers_tenant",
                    "contract_signers",
                ))
                .foreign_key(&mut child_fk(
                    "fk_contract_signers_contract",
                    "contract_signers",
                    "contract_id",
                    "contracts",
                ))
                .take(),
        )
        .await?;
        m.create_index(unique_index(&UX_CONTRACT_SIGNERS_LINK))
            .await?;
        m.create_index(idx(
            "ix_contract_signers_contract",
            "contract_signers",
            &["tenant_id", "contract_id", "position"],
        ))
        .await?;
        // Under the tenant policy on PostgreSQL (docs/tenancy.md, "Row-level security").
        for table in [
            "files",
            "contracts",
            "contract_versions",
            "contract_signers",
        ] {
            super::rls::enable(m, table).await?;
        }
        Ok(())
    }
}
