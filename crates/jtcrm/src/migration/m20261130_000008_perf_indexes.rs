//! Found missing by the benchmarks (bench/RESULTS.md):
//!
//! - the automation dispatcher's claim as a partial index of the pending events;
//! - `pipeline_stage_totals`: the board's per-stage sums (count, value, MRR, TCV, value ×
//!   probability) kept per `(stage, owner)` by triggers on `opportunities`, so the board reads a
//!   few dozen rows instead of aggregating every deal of the pipeline on each request. Triggers
//!   (not application code) keep them, so every write path — API, bulk stage removal, imports,
//!   direct SQL — stays counted. `owner_key` is the owner, or the nil UUID for unowned deals.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

use super::cols::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const PG_NIL: &str = "'00000000-0000-0000-0000-000000000000'::uuid";
const SQLITE_NIL: &str = "zeroblob(16)";

/// `n, value, mrr, tcv, weighted` of a deal, signed.
fn deltas(row: &str, sign: &str) -> String {
    format!(
        "{sign}1, {sign}{row}.value_cents, {sign}{row}.mrr_cents, {sign}{row}.tcv_cents, \
         {sign}({row}.value_cents * {row}.probability)"
    )
}

/// Adds the deal `row` (NEW) to its stage/owner totals, creating the row when missing; with
/// `when`, only if that condition holds.
fn add(nil: &str, row: &str, when: Option<&str>) -> String {
    let values = format!(
        "{row}.tenant_id, {row}.stage_id, COALESCE({row}.owner_id, {nil}), {row}.pipeline_id, {}",
        deltas(row, "")
    );
    let source = match when {
        None => format!("VALUES ({values})"),
        Some(w) => format!("SELECT {values} WHERE {w}"),
    };
    format!(
        "INSERT INTO pipeline_stage_totals \
           (tenant_id, stage_id, owner_key, pipeline_id, n, value_cents, mrr_cents, tcv_cents, weighted_x100) \
         {source} \
         ON CONFLICT (tenant_id, stage_id, owner_key) DO UPDATE SET \
           n = pipeline_stage_totals.n + excluded.n, \
           value_cents = pipeline_stage_totals.value_cents + excluded.value_cents, \
           mrr_cents = pipeline_stage_totals.mrr_cents + excluded.mrr_cents, \
           tcv_cents = pipeline_stage_totals.tcv_cents + excluded.tcv_cents, \
           weighted_x100 = pipeline_stage_totals.weighted_x100 + excluded.weighted_x100"
    )
}

/// Removes the deal `row` (OLD) from its totals (the row exists: the deal was counted in it).
fn sub(nil: &str, row: &str, extra_where: &str) -> String {
    format!(
        "UPDATE pipeline_stage_totals SET n = n - 1, value_cents = value_cents - {row}.value_cents, \
           mrr_cents = mrr_cents - {row}.mrr_cents, tcv_cents = tcv_cents - {row}.tcv_cents, \
           weighted_x100 = weighted_x100 - ({row}.value_cents * {row}.probability) \
         WHERE {extra_where}tenant_id = {row}.tenant_id AND stage_id = {row}.stage_id \
           AND owner_key = COALESCE({row}.owner_id, {nil})"
    )
}

fn postgres_function() -> String {
    let nil = PG_NIL;
    format!(
        "CREATE OR REPLACE FUNCTION jtcrm_opportunity_totals() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF OLD.deleted_at IS NOT NULL AND NEW.deleted_at IS NOT NULL THEN RETURN NULL; END IF;
    IF OLD.deleted_at IS NULL AND NEW.deleted_at IS NULL
       AND OLD.stage_id = NEW.stage_id AND OLD.pipeline_id = NEW.pipeline_id
       AND OLD.owner_id IS NOT DISTINCT FROM NEW.owner_id
       AND OLD.value_cents = NEW.value_cents AND OLD.mrr_cents = NEW.mrr_cents
       AND OLD.tcv_cents = NEW.tcv_cents AND OLD.probability = NEW.probability THEN
      RETURN NULL;
    END IF;
    -- Two totals rows: lock the lower key first, so opposite concurrent moves cannot deadlock.
    IF OLD.deleted_at IS NULL AND NEW.deleted_at IS NULL
       AND (NEW.stage_id, COALESCE(NEW.owner_id, {nil})) < (OLD.stage_id, COALESCE(OLD.owner_id, {nil})) THEN
      {add_new};
      {sub_old};
      RETURN NULL;
    END IF;
  END IF;
  IF TG_OP <> 'INSERT' AND OLD.deleted_at IS NULL THEN
    {sub_old};
  END IF;
  IF TG_OP <> 'DELETE' AND NEW.deleted_at IS NULL THEN
    {add_new};
  END IF;
  RETURN NULL;
END
$fn$",
        add_new = add(nil, "NEW", None),
        sub_old = sub(nil, "OLD", ""),
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        // The dispatcher's claim (`WHERE processed_at IS NULL ORDER BY id LIMIT n`) as an index of
        // the pending events only: without it each claim scans and sorts the whole backlog.
        // Partial indexes are written the same on SQLite and PostgreSQL.
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS ix_domain_events_unprocessed \
             ON domain_events (id) WHERE processed_at IS NULL",
        )
        .await?;

        m.create_table(
            Table::create()
                .table("pipeline_stage_totals")
                .col(uuid("tenant_id"))
                .col(uuid("stage_id"))
                .col(uuid("owner_key"))
                .col(uuid("pipeline_id"))
                .col(big("n"))
                .col(big("value_cents"))
                .col(big("mrr_cents"))
                .col(big("tcv_cents"))
                .col(big("weighted_x100"))
                .primary_key(
                    Index::create()
                        .col("tenant_id")
                        .col("stage_id")
                        .col("owner_key"),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_pipeline_stage_totals_tenant")
                        .from("pipeline_stage_totals", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_pipeline_stage_totals_pipeline")
                .table("pipeline_stage_totals")
                .col("tenant_id")
                .col("pipeline_id")
                .col("owner_key")
                .take(),
        )
        .await?;

        // The board no longer aggregates the deals themselves.
        db.execute_unprepared("DROP INDEX IF EXISTS ix_opportunities_board_totals")
            .await?;

        let backend = m.get_database_backend();
        let nil = if backend == DbBackend::Postgres {
            PG_NIL
        } else {
            SQLITE_NIL
        };
        // What the triggers would have written for the deals that already exist.
        db.execute_unprepared(&format!(
            "INSERT INTO pipeline_stage_totals \
               (tenant_id, stage_id, owner_key, pipeline_id, n, value_cents, mrr_cents, tcv_cents, weighted_x100) \
             SELECT tenant_id, stage_id, COALESCE(owner_id, {nil}), pipeline_id, COUNT(*), \
               SUM(value_cents), SUM(mrr_cents), SUM(tcv_cents), SUM(value_cents * probability) \
             FROM opportunities WHERE deleted_at IS NULL \
             GROUP BY tenant_id, stage_id, COALESCE(owner_id, {nil}), pipeline_id"
        ))
        .await?;

        if backend == DbBackend::Postgres {
            db.execute_unprepared(&postgres_function()).await?;
            db.execute_unprepared(
                "CREATE TRIGGER trg_opportunity_totals AFTER INSERT OR UPDATE OR DELETE \
                 ON opportunities FOR EACH ROW EXECUTE FUNCTION jtcrm_opportunity_totals()",
            )
            .await?;
        } else {
            let cols = "stage_id, pipeline_id, owner_id, value_cents, mrr_cents, tcv_cents, \
                        probability, deleted_at";
            db.execute_unprepared(&format!(
                "CREATE TRIGGER trg_opportunity_totals_ins AFTER INSERT ON opportunities \
                 WHEN NEW.deleted_at IS NULL BEGIN {}; END",
                add(nil, "NEW", None)
            ))
            .await?;
            db.execute_unprepared(&format!(
                "CREATE TRIGGER trg_opportunity_totals_upd AFTER UPDATE OF {cols} ON opportunities \
                 BEGIN {}; {}; END",
                sub(nil, "OLD", "OLD.deleted_at IS NULL AND "),
                add(nil, "NEW", Some("NEW.deleted_at IS NULL"))
            ))
            .await?;
            db.execute_unprepared(&format!(
                "CREATE TRIGGER trg_opportunity_totals_del AFTER DELETE ON opportunities \
                 WHEN OLD.deleted_at IS NULL BEGIN {}; END",
                sub(nil, "OLD", "")
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if m.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("DROP TRIGGER IF EXISTS trg_opportunity_totals ON opportunities")
                .await?;
            db.execute_unprepared("DROP FUNCTION IF EXISTS jtcrm_opportunity_totals()")
                .await?;
        } else {
            for t in ["ins", "upd", "del"] {
                db.execute_unprepared(&format!(
                    "DROP TRIGGER IF EXISTS trg_opportunity_totals_{t}"
                ))
                .await?;
            }
        }
        m.drop_table(Table::drop().table("pipeline_stage_totals").take())
            .await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS ix_opportunities_board_totals ON opportunities \
             (tenant_id, pipeline_id, deleted_at, stage_id, value_cents, mrr_cents, tcv_cents, probability)",
        )
        .await?;
        db.execute_unprepared("DROP INDEX IF EXISTS ix_domain_events_unprocessed")
            .await?;
        Ok(())
    }
}
