//! Benchmark data (`jtcrm bench seed`, see `bench/README.md`): one big tenant and a few smaller
//! ones, filled with realistic, deterministic pt-BR leads written straight to the database.
//!
//! Tenants, their admins and sellers go through the library (`tenants::create_with_admin`,
//! `users::service::insert_user`), so plans, counters, default scoring rules and audit rows are what
//! the app makes. Leads are generated from a seeded PRNG, validated and normalised by the same code
//! as `POST /api/leads` (`leads::validate`), scored by the tenant's real [`Scorer`], and written in
//! large multi-row INSERTs, one transaction per chunk, together with their `lead_terms`
//! (`search::terms_for`), `lead_tags`, the creation row of `lead_status_history` and the
//! `tenant_counters` reservation, so every committed chunk is consistent. Per-lead audit rows and
//! `lead.*` events are not written (a bulk import does not write them either).
//!
//! Generation (CPU) runs on a blocking thread one chunk ahead of the database writes.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Duration, Utc};
use jtcrm_types::br::fold_for_search;
use jtcrm_types::dto::leads::{LeadInput, LeadSource, LeadStatus};
use jtcrm_types::dto::{Role, TenantStatus};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryTrait, Statement,
};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use jtcrm::domains::leads::model::{lead, status_history, tag, term};
use jtcrm::domains::leads::scoring::Scorer;
use jtcrm::domains::leads::{self, LeadDraft, search};
use jtcrm::domains::plans;
use jtcrm::domains::tenants::model::tenant;
use jtcrm::domains::tenants::{self, NewTenant};
use jtcrm::domains::users::{self, NewUser};
use jtcrm_kernel::error::{AppError, Validator};
use jtcrm_kernel::http::extract::RequestMeta;
use jtcrm_kernel::quota::{self, Resource};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store::WriteMode;

mod generate;
mod words;

#[allow(unused_imports)]
use generate::*;
#[allow(unused_imports)]
use words::*;

/// What to seed. Sizes are per tenant; tenant 0 is the big one.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    pub leads: u64,
    pub tenants_extra: u32,
    pub leads_per_extra: u64,
    /// Sales users (lead owners) per tenant.
    pub owners: u32,
    /// PRNG seed: the same seed gives the same leads.
    pub seed: u64,
    /// Slug/email prefix, so a database can hold several seeded sets.
    pub prefix: String,
    /// Password of every seeded user.
    pub password: String,
    /// Leads per INSERT statement (terms, tags and history use proportionally larger statements).
    pub batch: usize,
    /// Leads per transaction.
    pub chunk: usize,
    /// Concurrent writer transactions (PostgreSQL; SQLite has one writer).
    pub writers: usize,
    /// Sample lead ids and phones kept per tenant for the load scripts.
    pub samples: usize,
    /// Company-name prefix whose share is reported (the generator makes ~0.6 % of companies match).
    pub company_prefix: String,
    /// Run `VACUUM (ANALYZE)` (PostgreSQL) or `ANALYZE` (SQLite) at the end.
    pub analyze: bool,
    /// Drop the secondary indexes of the lead tables for the load and re-create them from their
    /// saved definitions afterwards (a sorted build is several times faster than maintaining
    /// eleven indexes row by row).
    pub drop_indexes: bool,
}

impl SeedOptions {
    /// Defaults for the backend: PostgreSQL 1,000,000 + 4 × 100,000; SQLite 200,000 + 2 × 20,000.
    pub fn defaults_for(backend: DbBackend) -> Self {
        let (leads, extra, per_extra) = match backend {
            DbBackend::Postgres => (1_000_000, 4, 100_000),
            _ => (200_000, 2, 20_000),
        };
        Self {
            leads,
            tenants_extra: extra,
            leads_per_extra: per_extra,
            owners: 10,
            seed: 20261129,
            prefix: "bench".into(),
            password: "bench-senha-forte".into(),
            batch: 1000,
            chunk: 10_000,
            writers: if backend == DbBackend::Postgres { 2 } else { 1 },
            samples: 2000,
            company_prefix: "fibra".into(),
            analyze: true,
            drop_indexes: true,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SeededTenant {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub plan: String,
    /// Lead rows written (live and trashed).
    pub leads: u64,
    /// Live (not deleted) leads: the `tenant_counters` value.
    pub live_leads: u64,
    pub admin_user_id: Uuid,
    pub admin_email: String,
    pub admin_password: String,
    /// A ready-to-use access token of the admin (signed with this deployment's JWT secret).
    pub admin_token: String,
    pub owner_ids: Vec<Uuid>,
    /// The seller with the most live `qualified` leads, and how many (for the filter scenario).
    pub qualified_owner_id: Option<Uuid>,
    pub qualified_owner_leads: u64,
    pub company_prefix: String,
    /// Live leads with a search term starting with `company_prefix`.
    pub company_prefix_matches: u64,
    /// Ids of live leads, spread over the whole table.
    pub sample_lead_ids: Vec<Uuid>,
    /// National digits (DDD + number) of live leads' phones.
    pub sample_phones: Vec<String>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedReport {
    pub backend: String,
    pub seed: u64,
    pub generated_at: DateTime<Utc>,
    pub tenants: Vec<SeededTenant>,
    pub rows: BTreeMap<String, u64>,
    pub seconds: f64,
    /// Time spent re-creating the secondary indexes dropped for the load.
    pub index_seconds: f64,
    pub analyze_seconds: f64,
}

fn app(e: AppError) -> anyhow::Error {
    anyhow!("{}", e.detail_with_fields())
}

/// Seeds the database of `state` and returns what the load scripts need. `log` receives progress.
pub async fn seed(
    state: &AppState,
    opts: &SeedOptions,
    log: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<SeedReport> {
    let started = Instant::now();
    let backend = state.db.get_database_backend();
    let mut opts = opts.clone();
    // Bind-parameter limits: SQLite 32,766, PostgreSQL 65,535; a lead row has 26 columns.
    opts.batch = opts.batch.clamp(1, 1200);
    opts.chunk = opts.chunk.max(opts.batch);
    unlimited_enterprise(state).await?;
    log("plano enterprise: api_rate_per_minute = ilimitado, max_leads = ilimitado");
    let hash = state
        .hasher
        .hash(opts.password.clone())
        .await
        .map_err(app)?;
    let mut rows = BTreeMap::new();
    let mut tenants_out = vec![];
    let saved = if opts.drop_indexes {
        drop_secondary_indexes(state, log).await?
    } else {
        vec![]
    };
    let loaded = async {
        for i in 0..=opts.tenants_extra {
            let n = if i == 0 {
                opts.leads
            } else {
                opts.leads_per_extra
            };
            let t = seed_tenant(state, &opts, i, n, &hash, &mut rows, log).await?;
            tenants_out.push(t);
        }
        anyhow::Ok(())
    }
    .await;
    // Even after a failure: the schema must be whole again.
    let index_started = Instant::now();
    recreate_indexes(state, &saved, log).await?;
    let index_seconds = index_started.elapsed().as_secs_f64();
    loaded?;
    let analyze_started = Instant::now();
    if opts.analyze {
        log("ANALYZE…");
        match backend {
            DbBackend::Postgres => {
                // A bulk load is followed by autovacuum's insert-triggered VACUUM within minutes in
                // production; doing it now measures the steady state (visibility map set, stats).
                for t in [
                    "leads",
                    "lead_terms",
                    "lead_tags",
                    "lead_status_history",
                    "users",
                    "tenants",
                    "tenant_counters",
                ] {
                    state
                        .db
                        .execute_unprepared(&format!("VACUUM (ANALYZE) {t}"))
                        .await?;
                }
            }
            _ => {
                state.db.execute_unprepared("ANALYZE").await?;
            }
        }
    }
    let analyze_seconds = analyze_started.elapsed().as_secs_f64();
    Ok(SeedReport {
        backend: match backend {
            DbBackend::Postgres => "postgres".into(),
            _ => "sqlite".into(),
        },
        seed: opts.seed,
        generated_at: Utc::now(),
        tenants: tenants_out,
        rows,
        seconds: started.elapsed().as_secs_f64(),
        index_seconds,
        analyze_seconds,
    })
}

/// Tables whose secondary indexes are dropped during the load.
const LOAD_TABLES: [&str; 4] = ["leads", "lead_terms", "lead_tags", "lead_status_history"];

/// An index dropped for the load: its name and the DDL that re-creates it as the migration made it.
struct SavedIndex {
    name: String,
    ddl: String,
}

/// Drops the indexes of [`LOAD_TABLES`] that back no constraint (primary keys and unique
/// constraints stay) and returns their definitions.
async fn drop_secondary_indexes(
    state: &AppState,
    log: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<Vec<SavedIndex>> {
    let backend = state.db.get_database_backend();
    let list = LOAD_TABLES
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = match backend {
        DbBackend::Postgres => format!(
            "SELECT indexname AS name, indexdef AS ddl FROM pg_indexes i \
             WHERE schemaname = current_schema() AND tablename IN ({list}) \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname) \
             ORDER BY tablename, indexname"
        ),
        _ => format!(
            "SELECT name, sql AS ddl FROM sqlite_master WHERE type = 'index' \
             AND tbl_name IN ({list}) AND sql IS NOT NULL ORDER BY tbl_name, name"
        ),
    };
    let rows = state
        .db
        .query_all_raw(Statement::from_string(backend, sql))
        .await?;
    let mut saved = vec![];
    for r in rows {
        let name: String = r.try_get("", "name")?;
        let ddl: String = r.try_get("", "ddl")?;
        saved.push(SavedIndex { name, ddl });
    }
    for i in &saved {
        state
            .db
            .execute_unprepared(&format!("DROP INDEX \"{}\"", i.name))
            .await?;
    }
    log(&format!(
        "{} índices secundários removidos durante a carga (recriados no fim)",
        saved.len()
    ));
    Ok(saved)
}

async fn recreate_indexes(
    state: &AppState,
    saved: &[SavedIndex],
    log: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<()> {
    if saved.is_empty() {
        return Ok(());
    }
    let backend = state.db.get_database_backend();
    for i in saved {
        let t = Instant::now();
        let txn = state.begin().await?;
        if backend == DbBackend::Postgres {
            // A larger sort area for the build, for this transaction only.
            txn.execute_unprepared("SET LOCAL maintenance_work_mem = '256MB'")
                .await?;
        }
        txn.execute_unprepared(&i.ddl)
            .await
            .with_context(|| format!("recriando o índice {}: {}", i.name, i.ddl))?;
        txn.commit().await?;
        log(&format!(
            "  índice {} recriado em {:.1} s",
            i.name,
            t.elapsed().as_secs_f64()
        ));
    }
    Ok(())
}

/// The bench runs on the enterprise plan with neither a lead limit nor an API rate limit, so the
/// rate limiter does not distort the measurements.
async fn unlimited_enterprise(state: &AppState) -> anyhow::Result<()> {
    plans::model::Entity::update_many()
        .col_expr(
            plans::model::Column::ApiRatePerMinute,
            Expr::value(sea_orm::Value::BigInt(None)),
        )
        .col_expr(
            plans::model::Column::MaxLeads,
            Expr::value(sea_orm::Value::BigInt(None)),
        )
        .filter(plans::model::Column::Code.eq("enterprise"))
        .exec(&state.db)
        .await?;
    Ok(())
}

const COVERAGE: [&[&str]; 5] = [
    &["SP", "RJ", "MG"],
    &["PR", "SC", "RS"],
    &["BA", "PE", "CE"],
    &["GO", "DF", "MT"],
    &["SP", "PR"],
];

async fn seed_tenant(
    state: &AppState,
    opts: &SeedOptions,
    index: u32,
    n: u64,
    hash: &str,
    rows: &mut BTreeMap<String, u64>,
    log: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<SeededTenant> {
    let started = Instant::now();
    let prefix = &opts.prefix;
    let (name, slug) = if index == 0 {
        (
            "Bench Grande Telecom Ltda".to_string(),
            format!("{prefix}-grande"),
        )
    } else {
        (
            format!("Bench Provedor {index} Ltda"),
            format!("{prefix}-provedor-{index}"),
        )
    };
    let domain = format!("{slug}.example.com.br");
    let admin_email = format!("admin@{domain}");
    let meta = RequestMeta::default();
    let (t, admin) = tenants::create_with_admin(
        state,
        None,
        &meta,
        NewTenant {
            name: name.clone(),
            slug: slug.clone(),
            email: format!("contato@{domain}"),
            cnpj: None,
            plan: "enterprise".into(),
            status: TenantStatus::Active,
        },
        NewUser {
            name: "Administrador Bench".into(),
            email: admin_email.clone(),
            password: opts.password.clone(),
            role: Role::Admin,
            phone: None,
            extension: None,
        },
    )
    .await
    .map_err(app)
    .with_context(|| {
        format!("criando a empresa {slug} (o banco já foi semeado? use um banco novo ou --prefix)")
    })?;
    let tenant_id = t.id;
    let coverage: Vec<String> = COVERAGE[index as usize % COVERAGE.len()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut settings = t.settings.clone();
    settings.coverage_states = coverage.clone();
    tenant::Entity::update_many()
        .col_expr(
            tenant::Column::Settings,
            Expr::value(serde_json::to_value(&settings)?),
        )
        .filter(tenant::Column::Id.eq(tenant_id))
        .exec(&state.db)
        .await?;

    // Sellers: one transaction, seats reserved like `POST /api/users`.
    let mut owner_ids = vec![];
    {
        let txn = state.begin().await?;
        quota::reserve(&*txn, tenant_id, Resource::Users, opts.owners as i64, None)
            .await
            .map_err(app)?;
        let mut rng = StdRng::seed_from_u64(opts.seed ^ 0x5e11e5 ^ u64::from(index));
        for k in 0..opts.owners {
            let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
            let last = SURNAMES[rng.random_range(0..SURNAMES.len())];
            let u = users::service::insert_user(
                &*txn,
                tenant_id,
                &NewUser {
                    name: format!("{first} {last}"),
                    email: format!("vendedor{:02}@{domain}", k + 1),
                    password: opts.password.clone(),
                    role: Role::Sales,
                    phone: None,
                    extension: Some(format!("{}", 2001 + k)),
                },
                hash.to_string(),
            )
            .await
            .map_err(app)?;
            owner_ids.push(u.id);
        }
        txn.commit().await?;
    }
    *rows.entry("users".into()).or_default() += u64::from(opts.owners) + 1;
    *rows.entry("tenants".into()).or_default() += 1;

    let scorer = Scorer::load(&state.db, tenant_id, &coverage)
        .await
        .map_err(app)?;
    let (token, _) = state
        .jwt
        .issue(
            admin.id,
            Some(tenant_id),
            Role::Admin.as_str(),
            Uuid::now_v7(),
        )
        .map_err(app)?;
    log(&format!(
        "empresa {slug} ({tenant_id}): {} vendedores, {} regras de pontuação; gerando {n} leads…",
        owner_ids.len(),
        scorer.rules.len()
    ));

    let backend = state.db.get_database_backend();
    let (tx, rx) = tokio::sync::mpsc::channel::<anyhow::Result<Chunk>>(2);
    let gen_cfg = GenConfig {
        tenant_id,
        admin_id: admin.id,
        owners: owner_ids.clone(),
        scorer,
        seed: opts.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(index),
        n,
        batch: opts.batch,
        chunk: opts.chunk,
        samples: opts.samples,
        company_prefix: opts.company_prefix.clone(),
        backend,
        now: Utc::now(),
    };
    let producer = std::thread::spawn(move || produce(gen_cfg, tx));

    // Writers take chunks from the generator in turn; each chunk is one transaction.
    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Written>();
    let mut writers = vec![];
    for _ in 0..opts.writers.max(1) {
        let (rx, done_tx, state) = (rx.clone(), done_tx.clone(), state.clone());
        writers.push(tokio::spawn(async move {
            loop {
                let next = rx.lock().await.recv().await;
                let Some(chunk) = next else {
                    return anyhow::Ok(());
                };
                let chunk = chunk?;
                write_chunk(&state, tenant_id, chunk.statements, chunk.live).await?;
                let _ = done_tx.send(Written {
                    leads: chunk.leads,
                    live: chunk.live,
                    rows: chunk.rows,
                    summary: chunk.summary,
                });
            }
        }));
    }
    drop(done_tx);
    let mut written = 0u64;
    let mut live_total = 0u64;
    let mut table_rows: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut summary = Summary::default();
    let mut last_log = Instant::now();
    let load_started = Instant::now();
    while let Some(w) = done_rx.recv().await {
        written += w.leads;
        live_total += w.live;
        for (k, v) in w.rows {
            *table_rows.entry(k).or_default() += v;
        }
        if let Some(s) = w.summary {
            summary = s;
        }
        if last_log.elapsed().as_secs_f64() >= 5.0 || written == n {
            let secs = load_started.elapsed().as_secs_f64().max(1e-9);
            let all_rows: u64 = table_rows.values().sum();
            log(&format!(
                "  {slug}: {written}/{n} leads ({:.0} leads/s, {:.0} linhas/s em todas as tabelas)",
                written as f64 / secs,
                all_rows as f64 / secs
            ));
            last_log = Instant::now();
        }
    }
    for w in writers {
        w.await??;
    }
    producer
        .join()
        .map_err(|_| anyhow!("o gerador de leads falhou"))?;
    if written != n {
        return Err(anyhow!("gerados {written} de {n} leads"));
    }
    for (k, v) in &table_rows {
        *rows.entry((*k).to_string()).or_default() += v;
    }
    let secs = started.elapsed().as_secs_f64();
    log(&format!(
        "  {slug}: pronto em {secs:.1} s ({} linhas: {:?})",
        table_rows.values().sum::<u64>(),
        table_rows
    ));
    let (qualified_owner_id, qualified_owner_leads) = summary
        .qualified_by_owner
        .iter()
        .max_by_key(|(id, c)| (**c, **id))
        .map(|(id, c)| (Some(*id), *c))
        .unwrap_or((None, 0));
    Ok(SeededTenant {
        id: tenant_id,
        slug,
        name,
        plan: "enterprise".into(),
        leads: written,
        live_leads: live_total,
        admin_user_id: admin.id,
        admin_email,
        admin_password: opts.password.clone(),
        admin_token: token,
        owner_ids,
        qualified_owner_id,
        qualified_owner_leads,
        company_prefix: opts.company_prefix.clone(),
        company_prefix_matches: summary.prefix_matches,
        sample_lead_ids: summary.sample_ids,
        sample_phones: summary.sample_phones,
        seconds: secs,
    })
}

/// `jtcrm bench seed`: connects to `settings.database_url` (migrating it), applies `configure` to
/// the backend's defaults, seeds, writes the report as JSON to `out` and prints a summary.
pub async fn run_seed(
    mut settings: jtcrm_kernel::config::Settings,
    configure: impl FnOnce(&mut SeedOptions),
    out: &std::path::Path,
) -> anyhow::Result<()> {
    settings.superadmin_email = None;
    let state = jtcrm::app::build_owner_state(settings).await?;
    let mut opts = SeedOptions::defaults_for(state.db.get_database_backend());
    configure(&mut opts);
    let log = |m: &str| eprintln!("{m}");
    let report = seed(&state, &opts, &log).await?;
    std::fs::write(out, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("escrevendo {}", out.display()))?;
    let all: u64 = report.rows.values().sum();
    println!(
        "semeado em {:.1} s ({all} linhas, {:.0} linhas/s; ANALYZE {:.1} s): {:?}",
        report.seconds,
        all as f64 / (report.seconds - report.analyze_seconds).max(1e-9),
        report.analyze_seconds,
        report.rows
    );
    for t in &report.tenants {
        println!(
            "  {} {} leads={} admin={} senha={}",
            t.slug, t.id, t.leads, t.admin_email, t.admin_password
        );
    }
    println!("tokens, ids e amostras em {}", out.display());
    state.db.clone().close().await.ok();
    Ok(())
}

/// One chunk in one transaction: its INSERTs, then the plan counter (last, so the counter row's
/// lock is held only until the commit and concurrent writers do not queue on it).
async fn write_chunk(
    state: &AppState,
    tenant_id: Uuid,
    statements: Vec<Statement>,
    live: u64,
) -> anyhow::Result<()> {
    let txn = state.begin().await?;
    if state.db.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("SET LOCAL synchronous_commit = off")
            .await?;
    }
    for stmt in statements {
        txn.execute_raw(stmt).await?;
    }
    quota::reserve(&*txn, tenant_id, Resource::Leads, live as i64, None)
        .await
        .map_err(app)?;
    txn.commit().await?;
    Ok(())
}

struct Written {
    leads: u64,
    live: u64,
    rows: Vec<(&'static str, u64)>,
    summary: Option<Summary>,
}
