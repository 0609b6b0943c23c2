//! Sales: the product catalog, pipelines and their stages, opportunities with their items, and the
//! stage history (which is also the event record of stage changes, wins and losses). Every table is
//! keyed `(tenant_id, …)` and every foreign key leads with `tenant_id`. See docs/pipelines.md.

use sea_orm_migration::prelude::*;

use super::cols::*;
use super::unique_index;
use jtcrm_kernel::error::UniqueIndex;

pub const UX_PRODUCTS_SKU: UniqueIndex = UniqueIndex {
    name: "ux_products_sku",
    table: "products",
    columns: &["tenant_id", "sku_key"],
};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn fk(
    name: &str,
    table: &'static str,
    col: &'static str,
    to: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, ("tenant_id", col))
        .to(to, ("tenant_id", "id"))
        .take()
}

/// Byte-order collation on PostgreSQL for sort keys compared in keyset cursors, whatever the
/// database's locale (SQLite already compares bytes).
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
                .table("products")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("name", 200))
                .col(binary_text(m, "name_sort", 200))
                .col(text("sku", 60))
                // Upper-cased SKU of live products; NULL once deleted, which frees the SKU (NULLs
                // are distinct in unique indexes on both backends).
                .col(text_null("sku_key", 60))
                .col(text("category", 30))
                .col(text("billing", 20))
                .col(big("monthly_price_cents"))
                .col(big("setup_price_cents"))
                .col(text("tax_class", 10))
                .col(boolean("active"))
                .col(ColumnDef::new("description").text().null())
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(ts_null("deleted_at"))
                .col(int("version"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk("fk_products_tenant", "products"))
                .take(),
        )
        .await?;
        m.create_index(unique_index(&UX_PRODUCTS_SKU)).await?;
        m.create_index(idx(
            "ix_products_name",
            "products",
            &["tenant_id", "name_sort", "id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("pipelines")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("name", 120))
                .col(boolean("is_default"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(ts_null("deleted_at"))
                .col(int("version"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk("fk_pipelines_tenant", "pipelines"))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("pipeline_stages")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("pipeline_id"))
                .col(text("name", 80))
                .col(int("position"))
                .col(int("probability"))
                .col(text("kind", 10))
                .col(text("color", 7))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk(
                    "fk_pipeline_stages_tenant",
                    "pipeline_stages",
                ))
                .foreign_key(&mut fk(
                    "fk_pipeline_stages_pipeline",
                    "pipeline_stages",
                    "pipeline_id",
                    "pipelines",
                ))
                .take(),
        )
        .await?;
        m.create_index(idx(
            "ix_pipeline_stages_pipeline",
            "pipeline_stages",
            &["tenant_id", "pipeline_id", "position"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("opportunities")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("pipeline_id"))
                .col(uuid("stage_id"))
                .col(uuid_null("lead_id"))
                .col(uuid_null("owner_id"))
                .col(text("title", 200))
                .col(binary_text(m, "title_sort", 200))
                .col(text("status", 10))
                .col(text_null("lost_reason", 500))
                .col(ColumnDef::new("expected_close_date").date().null())
                // Effective probability (the stage's unless overridden), kept in the row so that the
                // weighted forecast is one SQL aggregate.
                .col(int("probability"))
                .col(boolean("probability_overridden"))
                .col(int("term_months"))
                .col(big("value_cents"))
                .col(big("mrr_cents"))
                .col(big("setup_cents"))
                .col(big("tcv_cents"))
                // Order within the stage (gapped integers; see pipelines/board.rs).
                .col(big("position"))
                .col(ColumnDef::new("notes").text().null())
                .col(ts("stage_entered_at"))
                .col(ts_null("closed_at"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(ts_null("deleted_at"))
                .col(int("version"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk("fk_opportunities_tenant", "opportunities"))
                .foreign_key(&mut fk(
                    "fk_opportunities_pipeline",
                    "opportunities",
                    "pipeline_id",
                    "pipelines",
                ))
                .foreign_key(&mut fk(
                    "fk_opportunities_stage",
                    "opportunities",
                    "stage_id",
                    "pipeline_stages",
                ))
                .foreign_key(&mut fk(
                    "fk_opportunities_lead",
                    "opportunities",
                    "lead_id",
                    "leads",
                ))
                .foreign_key(&mut fk(
                    "fk_opportunities_owner",
                    "opportunities",
                    "owner_id",
                    "users",
                ))
                .take(),
        )
        .await?;
        // Board cards, stage lists in card order, neighbours of a move, renumbering.
        m.create_index(idx(
            "ix_opportunities_stage_pos",
            "opportunities",
            &["tenant_id", "stage_id", "position", "id"],
        ))
        .await?;
        // The board of a seller without team visibility; the list filtered by owner and stage.
        m.create_index(idx(
            "ix_opportunities_owner_stage_pos",
            "opportunities",
            &["tenant_id", "owner_id", "stage_id", "position", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_opportunities_owner_stage_created",
            "opportunities",
            &["tenant_id", "owner_id", "stage_id", "created_at", "id"],
        ))
        .await?;
        // Board aggregates: one covering index scan grouped by stage (count, value, MRR, TCV,
        // weighted), no table access.
        m.create_index(idx(
            "ix_opportunities_board_totals",
            "opportunities",
            &[
                "tenant_id",
                "pipeline_id",
                "deleted_at",
                "stage_id",
                "value_cents",
                "mrr_cents",
                "tcv_cents",
                "probability",
            ],
        ))
        .await?;
        // List access paths: default order, per pipeline, per owner, per status and close date.
        m.create_index(idx(
            "ix_opportunities_created",
            "opportunities",
            &["tenant_id", "created_at", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_opportunities_pipeline_created",
            "opportunities",
            &["tenant_id", "pipeline_id", "created_at", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_opportunities_owner_created",
            "opportunities",
            &["tenant_id", "owner_id", "created_at", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_opportunities_status_close",
            "opportunities",
            &["tenant_id", "status", "expected_close_date"],
        ))
        .await?;
        m.create_index(idx(
            "ix_opportunities_lead",
            "opportunities",
            &["tenant_id", "lead_id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("opportunity_items")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("opportunity_id"))
                .col(int("position"))
                .col(uuid("product_id"))
                // Snapshot of the product when the line was written: deals keep their lines when
                // the product is renamed, repriced, deactivated or deleted.
                .col(text("product_name", 200))
                .col(text("sku", 60))
                .col(text("billing", 20))
                .col(int("quantity"))
                .col(big("monthly_price_cents"))
                .col(big("setup_price_cents"))
                // Hundredths of a percent (1250 = 12.50 %).
                .col(int("discount_bp"))
                .col(big("monthly_total_cents"))
                .col(big("setup_total_cents"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk(
                    "fk_opportunity_items_tenant",
                    "opportunity_items",
                ))
                .foreign_key(&mut fk(
                    "fk_opportunity_items_opportunity",
                    "opportunity_items",
                    "opportunity_id",
                    "opportunities",
                ))
                .foreign_key(&mut fk(
                    "fk_opportunity_items_product",
                    "opportunity_items",
                    "product_id",
                    "products",
                ))
                .take(),
        )
        .await?;
        m.create_index(idx(
            "ix_opportunity_items_opportunity",
            "opportunity_items",
            &["tenant_id", "opportunity_id", "position"],
        ))
        .await?;
        m.create_index(idx(
            "ix_opportunity_items_product",
            "opportunity_items",
            &["tenant_id", "product_id"],
        ))
        .await?;

        // History of stage and status changes; also the durable record of the
        // `opportunity.stage_changed` / `.won` / `.lost` / `.reopened` events, in id (time) order.
        m.create_table(
            Table::create()
                .table("opportunity_stage_history")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("opportunity_id"))
                .col(uuid("pipeline_id"))
                .col(text("event", 40))
                .col(uuid_null("from_stage_id"))
                .col(text_null("from_stage_name", 80))
                .col(uuid("to_stage_id"))
                .col(text("to_stage_name", 80))
                .col(text_null("from_status", 10))
                .col(text("to_status", 10))
                .col(text_null("lost_reason", 500))
                .col(big_null("seconds_in_from_stage"))
                .col(uuid_null("actor_id"))
                .col(ts("created_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut tenant_fk(
                    "fk_opportunity_stage_history_tenant",
                    "opportunity_stage_history",
                ))
                .foreign_key(&mut fk(
                    "fk_opportunity_stage_history_opportunity",
                    "opportunity_stage_history",
                    "opportunity_id",
                    "opportunities",
                ))
                .take(),
        )
        .await?;
        m.create_index(idx(
            "ix_opportunity_stage_history_opportunity",
            "opportunity_stage_history",
            &["tenant_id", "opportunity_id", "id"],
        ))
        .await?;
        m.create_index(idx(
            "ix_opportunity_stage_history_event",
            "opportunity_stage_history",
            &["tenant_id", "event", "id"],
        ))
        .await?;
        Ok(())
    }
}
