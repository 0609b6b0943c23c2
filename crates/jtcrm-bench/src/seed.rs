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
use jtcrm::domains::tenants::limits::{self, Resource};
use jtcrm::domains::tenants::model::tenant;
use jtcrm::domains::tenants::{self, NewTenant};
use jtcrm::domains::users::{self, NewUser};
use jtcrm_kernel::error::{AppError, Validator};
use jtcrm_kernel::http::extract::RequestMeta;
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store::WriteMode;

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
        limits::reserve(&*txn, tenant_id, Resource::Users, opts.owners as i64, None)
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
    let state = jtcrm::app::build_state(settings).await?;
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
    limits::reserve(&*txn, tenant_id, Resource::Leads, live as i64, None)
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

// ---------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------

struct GenConfig {
    tenant_id: Uuid,
    admin_id: Uuid,
    owners: Vec<Uuid>,
    scorer: Scorer,
    seed: u64,
    n: u64,
    batch: usize,
    chunk: usize,
    samples: usize,
    company_prefix: String,
    backend: DbBackend,
    /// Leads are created over the two years before this instant.
    now: DateTime<Utc>,
}

/// What the load scripts need, accumulated while generating (sent with the last chunk).
#[derive(Default, Clone)]
struct Summary {
    qualified_by_owner: BTreeMap<Uuid, u64>,
    prefix_matches: u64,
    sample_ids: Vec<Uuid>,
    sample_phones: Vec<String>,
}

struct Chunk {
    statements: Vec<Statement>,
    leads: u64,
    live: u64,
    rows: Vec<(&'static str, u64)>,
    summary: Option<Summary>,
}

struct GenLead {
    id: Uuid,
    draft: LeadDraft,
    score: i32,
    signal_points: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    version: i32,
}

fn produce(cfg: GenConfig, tx: tokio::sync::mpsc::Sender<anyhow::Result<Chunk>>) {
    let mut g = Generator::new(&cfg);
    let mut summary = Summary::default();
    let every = (cfg.n / cfg.samples.max(1) as u64).max(1);
    let mut done = 0u64;
    while done < cfg.n {
        let size = (cfg.n - done).min(cfg.chunk as u64) as usize;
        let mut leads = Vec::with_capacity(size);
        for k in 0..size {
            let i = done + k as u64;
            let l = match g.lead(i) {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            if l.deleted_at.is_none() {
                if l.draft.status == LeadStatus::Qualified
                    && let Some(o) = l.draft.owner_id
                {
                    *summary.qualified_by_owner.entry(o).or_default() += 1;
                }
                if i.is_multiple_of(every) && summary.sample_ids.len() < cfg.samples {
                    summary.sample_ids.push(l.id);
                }
                if i % every == (every / 2)
                    && summary.sample_phones.len() < cfg.samples
                    && let Some(p) = &l.draft.phone
                {
                    summary.sample_phones.push(search::national_digits(p));
                }
            }
            leads.push(l);
        }
        done += size as u64;
        let chunk = build_chunk(&cfg, &leads, &mut summary);
        let chunk = chunk.map(|mut c| {
            if done == cfg.n {
                c.summary = Some(summary.clone());
            }
            c
        });
        if tx.blocking_send(chunk).is_err() {
            return;
        }
    }
}

fn build_chunk(cfg: &GenConfig, leads: &[GenLead], summary: &mut Summary) -> anyhow::Result<Chunk> {
    let t = cfg.tenant_id;
    let mut statements = vec![];
    let mut lead_rows = vec![];
    let mut term_rows = vec![];
    let mut tag_rows = vec![];
    let mut hist_rows = vec![];
    let mut live = 0;
    let mut n_terms = 0u64;
    let mut n_tags = 0u64;
    let flush_terms = (cfg.batch * 8).min(10_000);
    let flush_hist = (cfg.batch * 4).min(4_000);
    let mut terms_stmts = vec![];
    let mut tags_stmts = vec![];
    let mut hist_stmts = vec![];
    for l in leads {
        let d = &l.draft;
        if l.deleted_at.is_none() {
            live += 1;
        }
        let terms = search::terms_for(d);
        if l.deleted_at.is_none() && terms.iter().any(|x| x.starts_with(&cfg.company_prefix)) {
            summary.prefix_matches += 1;
        }
        lead_rows.push(lead::ActiveModel {
            tenant_id: Set(t),
            id: Set(l.id),
            name_sort: Set(d.name_sort()),
            name: Set(d.name.clone()),
            email: Set(d.email.clone()),
            phone: Set(d.phone.clone()),
            company: Set(d.company.clone()),
            cnpj: Set(d.cnpj.clone()),
            position: Set(d.position.clone()),
            source: Set(d.source.as_str().to_string()),
            status: Set(d.status.as_str().to_string()),
            owner_id: Set(d.owner_id),
            tags: Set(json!(d.tags)),
            custom_fields: Set(Value::Object(d.custom_fields.clone())),
            cep: Set(d.cep.clone()),
            city: Set(d.city.clone()),
            state: Set(d.state.clone()),
            notes: Set(d.notes.clone()),
            score: Set(l.score),
            signal_points: Set(l.signal_points),
            last_contacted_at: Set(d.last_contacted_at),
            merged_into: Set(None),
            created_at: Set(l.created_at),
            updated_at: Set(l.updated_at),
            deleted_at: Set(l.deleted_at),
            version: Set(l.version),
        });
        if lead_rows.len() >= cfg.batch {
            statements
                .push(lead::Entity::insert_many(std::mem::take(&mut lead_rows)).build(cfg.backend));
        }
        for x in terms {
            n_terms += 1;
            term_rows.push(term::ActiveModel {
                tenant_id: Set(t),
                term: Set(x),
                lead_id: Set(l.id),
            });
            if term_rows.len() >= flush_terms {
                terms_stmts.push(
                    term::Entity::insert_many(std::mem::take(&mut term_rows)).build(cfg.backend),
                );
            }
        }
        for x in &d.tags {
            n_tags += 1;
            tag_rows.push(tag::ActiveModel {
                tenant_id: Set(t),
                tag: Set(x.clone()),
                lead_id: Set(l.id),
            });
            if tag_rows.len() >= flush_terms {
                tags_stmts.push(
                    tag::Entity::insert_many(std::mem::take(&mut tag_rows)).build(cfg.backend),
                );
            }
        }
        hist_rows.push(status_history::ActiveModel {
            tenant_id: Set(t),
            id: Set(v7_at(l.created_at, l.id)),
            lead_id: Set(l.id),
            from_status: Set(None),
            to_status: Set(d.status.as_str().to_string()),
            actor_id: Set(Some(cfg.admin_id)),
            created_at: Set(l.created_at),
        });
        if hist_rows.len() >= flush_hist {
            hist_stmts.push(
                status_history::Entity::insert_many(std::mem::take(&mut hist_rows))
                    .build(cfg.backend),
            );
        }
    }
    if !lead_rows.is_empty() {
        statements.push(lead::Entity::insert_many(lead_rows).build(cfg.backend));
    }
    if !term_rows.is_empty() {
        terms_stmts.push(term::Entity::insert_many(term_rows).build(cfg.backend));
    }
    if !tag_rows.is_empty() {
        tags_stmts.push(tag::Entity::insert_many(tag_rows).build(cfg.backend));
    }
    if !hist_rows.is_empty() {
        hist_stmts.push(status_history::Entity::insert_many(hist_rows).build(cfg.backend));
    }
    statements.extend(terms_stmts);
    statements.extend(tags_stmts);
    statements.extend(hist_stmts);
    let n = leads.len() as u64;
    Ok(Chunk {
        statements,
        leads: n,
        live,
        rows: vec![
            ("leads", n),
            ("lead_terms", n_terms),
            ("lead_tags", n_tags),
            ("lead_status_history", n),
        ],
        summary: None,
    })
}

/// A UUID v7 at `at` whose random part is derived from `salt` (deterministic).
fn v7_at(at: DateTime<Utc>, salt: Uuid) -> Uuid {
    let b = salt.as_bytes();
    let mut r = [0u8; 10];
    for (k, x) in r.iter_mut().enumerate() {
        *x = b[15 - k] ^ 0xA5;
    }
    uuid::Builder::from_unix_timestamp_millis(at.timestamp_millis().max(0) as u64, &r).into_uuid()
}

struct Generator<'a> {
    cfg: &'a GenConfig,
    rng: StdRng,
    now: DateTime<Utc>,
    /// Creation time of the next lead; leads are created in time order over two years.
    clock_ms: f64,
    step_ms: f64,
}

fn pick<'x, T>(rng: &mut StdRng, items: &'x [T]) -> &'x T {
    &items[rng.random_range(0..items.len())]
}

/// An item of `(value, weight)` pairs.
fn weighted<T: Copy>(rng: &mut StdRng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total);
    for (v, w) in items {
        if x < *w {
            return *v;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

fn chance(rng: &mut StdRng, p: f64) -> bool {
    rng.random_bool(p)
}

impl<'a> Generator<'a> {
    fn new(cfg: &'a GenConfig) -> Self {
        let now = cfg.now;
        let span_ms = Duration::days(730).num_milliseconds() as f64;
        Self {
            cfg,
            rng: StdRng::seed_from_u64(cfg.seed),
            now,
            clock_ms: (now.timestamp_millis() as f64) - span_ms,
            step_ms: span_ms / (cfg.n.max(1) as f64),
        }
    }

    fn lead(&mut self, i: u64) -> anyhow::Result<GenLead> {
        let rng = &mut self.rng;
        self.clock_ms += rng.random_range(0.0..(2.0 * self.step_ms));
        let created_at = DateTime::<Utc>::from_timestamp_millis(self.clock_ms as i64)
            .unwrap_or(self.now)
            .min(self.now);
        let mut rand10 = [0u8; 10];
        rng.fill(&mut rand10);
        let id = uuid::Builder::from_unix_timestamp_millis(
            created_at.timestamp_millis().max(0) as u64,
            &rand10,
        )
        .into_uuid();

        let first = *pick(rng, FIRST_NAMES);
        let last1 = *pick(rng, SURNAMES);
        let name = match rng.random_range(0..10) {
            0..=3 => format!("{first} {last1}"),
            4..=6 => {
                let mut middle = *pick(rng, SURNAMES);
                while middle == last1 {
                    middle = *pick(rng, SURNAMES);
                }
                format!("{first} {middle} {last1}")
            }
            7 => format!("{first} {} {last1}", pick(rng, PARTICLES)),
            8 => format!("{first} {} {last1}", pick(rng, FIRST_NAMES)),
            _ => format!("{} {first} {last1}", pick(rng, FIRST_NAMES)),
        };
        let city = weighted(rng, CITIES_W);
        let (city_name, uf, cep_base, ddd) = city;

        let company = chance(rng, 0.70).then(|| company_name(rng, last1));
        let email = chance(rng, 0.62).then(|| email_for(rng, first, last1, company.as_deref()));
        let phone = chance(rng, 0.85).then(|| phone_for(rng, ddd));
        let cnpj = chance(rng, 0.30).then(|| cnpj_for(rng));
        let position =
            (company.is_some() && chance(rng, 0.6)).then(|| pick(rng, POSITIONS).to_string());
        let source = weighted(rng, SOURCES_W);
        let status = weighted(rng, STATUSES_W);
        let owner = (!self.cfg.owners.is_empty() && chance(rng, 0.92))
            .then(|| *pick(rng, &self.cfg.owners));
        let ntags = weighted(rng, &[(0usize, 40), (1, 35), (2, 18), (3, 7)]);
        let mut tags: Vec<String> = vec![];
        while tags.len() < ntags {
            let t = pick(rng, TAGS).to_string();
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        let has_place = chance(rng, 0.8);
        let cep = (has_place && chance(rng, 0.7)).then(|| {
            let n = cep_base * 1000 + rng.random_range(0..1000u32);
            let s = format!("{n:08}");
            if chance(rng, 0.5) {
                format!("{}-{}", &s[..5], &s[5..])
            } else {
                s
            }
        });
        let notes = chance(rng, 0.15).then(|| pick(rng, NOTES).to_string());
        let last_contacted_at = (status != LeadStatus::New && chance(rng, 0.8)).then(|| {
            (created_at + Duration::minutes(rng.random_range(5..60 * 24 * 45))).min(self.now)
        });
        let updated_at = if chance(rng, 0.5) {
            created_at
        } else {
            (created_at + Duration::minutes(rng.random_range(1..60 * 24 * 90))).min(self.now)
        };
        let version = if updated_at == created_at {
            1
        } else {
            rng.random_range(2..6)
        };
        let deleted_at = chance(rng, 0.005).then_some(updated_at);
        let signal_points = if status != LeadStatus::New && chance(rng, 0.2) {
            rng.random_range(5..=25)
        } else {
            0
        };

        let input = LeadInput {
            name: Some(Some(name)),
            email: Some(email),
            phone: Some(phone),
            company: Some(company),
            cnpj: Some(cnpj),
            position: Some(position),
            source: Some(Some(source.as_str().to_string())),
            status: Some(Some(status.as_str().to_string())),
            owner_id: Some(owner),
            tags: Some(Some(tags)),
            custom_fields: None,
            cep: Some(cep),
            city: Some(has_place.then(|| city_name.to_string())),
            state: Some(has_place.then(|| uf.to_string())),
            notes: Some(notes),
            last_contacted_at: Some(last_contacted_at),
        };
        let mut v = Validator::new();
        let draft = leads::validate(&mut v, &input, None, WriteMode::Create, &[]);
        if !v.errors.is_empty() {
            return Err(anyhow!(
                "lead {i} gerado inválido: {:?} ({input:?})",
                v.errors
            ));
        }
        let draft = draft.ok_or_else(|| anyhow!("lead {i} gerado inválido"))?;
        let score = self.cfg.scorer.score(&draft, signal_points);
        Ok(GenLead {
            id,
            draft,
            score,
            signal_points,
            created_at,
            updated_at,
            deleted_at,
            version,
        })
    }
}

fn company_name(rng: &mut StdRng, surname: &str) -> String {
    // ~0.6 % of companies are named "Fibra…" (the company-prefix search scenario).
    let core = if chance(rng, 0.006) {
        pick(rng, FIBRA_CORES).to_string()
    } else {
        match rng.random_range(0..10) {
            0..=5 => format!("{} {}", pick(rng, BRAND_WORDS), pick(rng, SECTOR_WORDS)),
            6 | 7 => format!("{} {}", pick(rng, SECTOR_WORDS), pick(rng, PLACE_WORDS)),
            8 => format!("{surname} & Filhos {}", pick(rng, SECTOR_WORDS)),
            _ => format!("Irmãos {surname} {}", pick(rng, SECTOR_WORDS)),
        }
    };
    let suffix = *pick(rng, COMPANY_SUFFIXES);
    if suffix.is_empty() {
        core
    } else {
        format!("{core} {suffix}")
    }
}

fn ascii_word(s: &str) -> String {
    fold_for_search(s)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

fn email_for(rng: &mut StdRng, first: &str, last: &str, company: Option<&str>) -> String {
    let f = ascii_word(first);
    let l = ascii_word(last);
    let corporate = company.filter(|_| chance(rng, 0.65));
    match corporate {
        Some(c) => {
            let words: Vec<String> = c
                .split_whitespace()
                .map(ascii_word)
                .filter(|w| {
                    !w.is_empty()
                        && !["ltda", "me", "eireli", "sa", "epp", "filhos", "irmaos"]
                            .contains(&w.as_str())
                })
                .take(2)
                .collect();
            let domain = format!("{}{}", words.join(""), pick(rng, TLDS));
            let local = match rng.random_range(0..5) {
                0 => pick(rng, ROLE_MAILBOXES).to_string(),
                1 => f.clone(),
                _ => format!("{f}.{l}"),
            };
            format!("{local}@{domain}")
        }
        None => {
            let local = match rng.random_range(0..4) {
                0 => format!("{f}.{l}"),
                1 => format!("{f}{l}{}", rng.random_range(1..100)),
                2 => format!("{f}_{l}"),
                _ => format!("{f}.{l}{}", rng.random_range(1960..2006)),
            };
            let d = weighted(rng, FREE_DOMAINS_W);
            // Mixed case on input: the app lower-cases.
            if chance(rng, 0.1) {
                format!("{}@{d}", local.to_uppercase())
            } else {
                format!("{local}@{d}")
            }
        }
    }
}

const VALID_DDDS: &[u8] = &[
    11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 24, 27, 28, 31, 32, 33, 34, 35, 37, 38, 41, 42, 43,
    44, 45, 46, 47, 48, 49, 51, 53, 54, 55, 61, 62, 63, 64, 65, 66, 67, 68, 69, 71, 73, 74, 75, 77,
    79, 81, 82, 83, 84, 85, 86, 87, 88, 89, 91, 92, 93, 94, 95, 96, 97, 98, 99,
];

/// A valid phone in one of the formats people type (the app normalises to E.164).
fn phone_for(rng: &mut StdRng, city_ddd: u8) -> String {
    let ddd = if chance(rng, 0.8) {
        city_ddd
    } else {
        *pick(rng, VALID_DDDS)
    };
    let mobile = chance(rng, 0.75);
    let sub = if mobile {
        format!(
            "9{}{:07}",
            rng.random_range(6..=9),
            rng.random_range(0..10_000_000u32)
        )
    } else {
        format!(
            "{}{:07}",
            rng.random_range(2..=5),
            rng.random_range(0..10_000_000u32)
        )
    };
    let (head, tail) = sub.split_at(sub.len() - 4);
    match rng.random_range(0..5) {
        0 => format!("+55{ddd}{sub}"),
        1 => format!("({ddd}) {head}-{tail}"),
        2 => format!("{ddd}{sub}"),
        3 => format!("0{ddd} {head}-{tail}"),
        _ => format!("+55 {ddd} {head}-{tail}"),
    }
}

fn mod11(values: &[u32], weights: &[u32]) -> u32 {
    let sum: u32 = values.iter().zip(weights).map(|(v, w)| v * w).sum();
    let r = sum % 11;
    if r < 2 { 0 } else { 11 - r }
}

/// A valid CNPJ: mostly numeric head office (`/0001`), some branches, ~3 % in the alphanumeric
/// format of July 2026; masked half of the time.
fn cnpj_for(rng: &mut StdRng) -> String {
    const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut body: Vec<u8> = Vec::with_capacity(14);
    let alnum = chance(rng, 0.03);
    for _ in 0..8 {
        body.push(if alnum {
            ALNUM[rng.random_range(0..ALNUM.len())]
        } else {
            b'0' + rng.random_range(0..10u8)
        });
    }
    if chance(rng, 0.85) {
        body.extend_from_slice(b"0001");
    } else {
        body.extend_from_slice(format!("{:04}", rng.random_range(2..60)).as_bytes());
    }
    let mut v: Vec<u32> = body.iter().map(|b| u32::from(b - b'0')).collect();
    let dv1 = mod11(&v, &[5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]);
    v.push(dv1);
    let dv2 = mod11(&v, &[6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]);
    let mut s = String::from_utf8_lossy(&body).into_owned();
    s.push_str(&format!("{dv1}{dv2}"));
    if s.bytes().all(|b| b == s.as_bytes()[0]) {
        return "11222333000181".into();
    }
    if chance(rng, 0.5) {
        format!(
            "{}.{}.{}/{}-{}",
            &s[0..2],
            &s[2..5],
            &s[5..8],
            &s[8..12],
            &s[12..14]
        )
    } else {
        s
    }
}

// ---------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------

const FIRST_NAMES: &[&str] = &[
    "João",
    "José",
    "Antônio",
    "Francisco",
    "Carlos",
    "Paulo",
    "Pedro",
    "Lucas",
    "Luiz",
    "Marcos",
    "Luís",
    "Gabriel",
    "Rafael",
    "Daniel",
    "Marcelo",
    "Bruno",
    "Eduardo",
    "Felipe",
    "Raimundo",
    "Rodrigo",
    "Sebastião",
    "Flávio",
    "Fábio",
    "Vinícius",
    "Otávio",
    "Caio",
    "Thiago",
    "André",
    "César",
    "Sérgio",
    "Rogério",
    "Rômulo",
    "Édson",
    "Márcio",
    "Cícero",
    "Benedito",
    "Júlio",
    "Maurício",
    "Álvaro",
    "Inácio",
    "Maria",
    "Ana",
    "Francisca",
    "Antônia",
    "Adriana",
    "Juliana",
    "Márcia",
    "Fernanda",
    "Patrícia",
    "Aline",
    "Sandra",
    "Camila",
    "Amanda",
    "Bruna",
    "Jéssica",
    "Letícia",
    "Júlia",
    "Luciana",
    "Vanessa",
    "Mariana",
    "Gabriela",
    "Vitória",
    "Larissa",
    "Cláudia",
    "Beatriz",
    "Luana",
    "Rita",
    "Sônia",
    "Renata",
    "Eliane",
    "Conceição",
    "Tânia",
    "Ângela",
    "Mônica",
    "Lúcia",
    "Débora",
    "Gisele",
    "Cristiane",
    "Simone",
    "Alessandra",
    "Heloísa",
    "Lívia",
    "Valéria",
    "Íris",
    "Úrsula",
    "Raquel",
    "Natália",
    "Priscila",
    "Tatiane",
    "Joana",
];

const SURNAMES: &[&str] = &[
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Rodrigues",
    "Ferreira",
    "Alves",
    "Pereira",
    "Lima",
    "Gomes",
    "Costa",
    "Ribeiro",
    "Martins",
    "Carvalho",
    "Almeida",
    "Lopes",
    "Soares",
    "Fernandes",
    "Vieira",
    "Barbosa",
    "Rocha",
    "Dias",
    "Nascimento",
    "Andrade",
    "Moreira",
    "Nunes",
    "Marques",
    "Machado",
    "Mendes",
    "Freitas",
    "Cardoso",
    "Ramos",
    "Gonçalves",
    "Santana",
    "Teixeira",
    "Araújo",
    "Magalhães",
    "Brandão",
    "Simões",
    "Guimarães",
    "Frazão",
    "Falcão",
    "Assunção",
    "Romão",
    "Patrício",
    "Sá",
    "Catão",
    "Leão",
    "Conceição",
    "Aragão",
    "Gusmão",
    "Monção",
    "Ávila",
    "Évora",
    "Antunes",
    "Batista",
    "Cavalcanti",
    "Albuquerque",
    "Queiroz",
    "Peixoto",
];

const PARTICLES: &[&str] = &["da", "de", "dos", "das", "do"];

const BRAND_WORDS: &[&str] = &[
    "Conecta",
    "Rede",
    "Link",
    "Net",
    "Via",
    "Sinal",
    "Onda",
    "Mega",
    "Giga",
    "Ultra",
    "Turbo",
    "Vale",
    "Serra",
    "Litoral",
    "Cerrado",
    "Pampa",
    "Planalto",
    "Horizonte",
    "Nova",
    "Digital",
    "Alfa",
    "Prime",
    "Master",
    "Inova",
    "Tech",
    "Ágil",
    "Ômega",
    "Vértice",
    "Órbita",
    "Satélite",
    "Rápida",
    "Estrela",
    "Aurora",
    "Sol",
    "Brasil",
    "Norte",
    "Sul",
    "Leste",
    "Oeste",
    "Central",
    "Capital",
    "Metrópole",
    "União",
    "Progresso",
    "Vitória",
    "Esperança",
    "Cristal",
    "Diamante",
];

const SECTOR_WORDS: &[&str] = &[
    "Telecom",
    "Internet",
    "Provedor",
    "Comunicações",
    "Soluções",
    "Tecnologia",
    "Distribuidora",
    "Comércio",
    "Logística",
    "Serviços",
    "Informática",
    "Construções",
    "Alimentos",
    "Supermercados",
    "Farmácia",
    "Clínica",
    "Escola",
    "Transportes",
    "Engenharia",
    "Consultoria",
    "Contabilidade",
    "Advocacia",
    "Hotel",
    "Padaria",
    "Academia",
    "Autopeças",
    "Imóveis",
    "Agropecuária",
    "Metalúrgica",
    "Têxtil",
    "Móveis",
    "Calçados",
    "Laticínios",
    "Gráfica",
    "Ótica",
    "Veículos",
    "Segurança",
    "Saúde",
    "Educação",
    "Energia",
];

const PLACE_WORDS: &[&str] = &[
    "Paulista",
    "Carioca",
    "Mineira",
    "Gaúcha",
    "Baiana",
    "Nordeste",
    "Amazônia",
    "Paraná",
    "Goiás",
    "Capixaba",
    "Catarinense",
    "Potiguar",
    "Sergipana",
    "Maranhense",
    "do Vale",
    "do Sertão",
    "da Serra",
    "do Litoral",
    "São Paulo",
    "Rio",
    "Minas",
    "Recife",
    "Natal",
];

/// Company cores starting with "fibra" (folded), the company-prefix scenario's matches.
const FIBRA_CORES: &[&str] = &[
    "Fibra Norte Telecom",
    "FibraNet Provedor",
    "Fibra Sul Internet",
    "Fibramax Telecom",
    "Fibra Óptica Soluções",
    "FibraLink Comunicações",
];

const COMPANY_SUFFIXES: &[&str] = &["Ltda", "Ltda", "Ltda", "ME", "EIRELI", "S.A.", "EPP", ""];

const TLDS: &[&str] = &[
    ".com.br", ".com.br", ".com.br", ".net.br", ".com", ".ind.br",
];

const ROLE_MAILBOXES: &[&str] = &[
    "contato",
    "comercial",
    "ti",
    "financeiro",
    "compras",
    "diretoria",
];

const FREE_DOMAINS_W: &[(&str, u32)] = &[
    ("gmail.com", 45),
    ("hotmail.com", 18),
    ("outlook.com", 8),
    ("yahoo.com.br", 8),
    ("uol.com.br", 5),
    ("bol.com.br", 5),
    ("terra.com.br", 3),
    ("icloud.com", 4),
    ("ig.com.br", 2),
    ("globo.com", 2),
];

const POSITIONS: &[&str] = &[
    "Diretor de TI",
    "Gerente de TI",
    "Gerente de Compras",
    "Sócio",
    "Sócia-proprietária",
    "CEO",
    "CTO",
    "Analista de TI",
    "Coordenador Administrativo",
    "Proprietário",
    "Assistente Administrativo",
    "Comprador",
    "Gerente Comercial",
    "Diretora Financeira",
    "Técnico de Redes",
    "Recepcionista",
];

const TAGS: &[&str] = &[
    "fibra",
    "link-dedicado",
    "corporativo",
    "residencial",
    "pme",
    "telefonia-ip",
    "pabx-nuvem",
    "upgrade",
    "indicação",
    "evento-2026",
    "renovação",
    "vip",
    "5g",
    "cloud",
    "sd-wan",
];

const NOTES: &[&str] = &[
    "Cliente interessado em link dedicado de 200 Mbps.",
    "Pediu proposta de PABX em nuvem com 10 ramais.",
    "Retornar após o dia 10; responsável pelas compras em férias.",
    "Contrato atual com a concorrência vence em março.",
    "Quer migrar a telefonia fixa para VoIP.",
    "Indicação do cliente Provedor Exemplo.",
    "Precisa de cobertura na zona rural; verificar viabilidade técnica.",
    "Solicitou visita técnica para avaliar a rede interna.",
];

const SOURCES_W: &[(LeadSource, u32)] = &[
    (LeadSource::Website, 25),
    (LeadSource::Referral, 10),
    (LeadSource::ColdCall, 15),
    (LeadSource::InboundCall, 10),
    (LeadSource::Chatbot, 8),
    (LeadSource::Whatsapp, 12),
    (LeadSource::Event, 5),
    (LeadSource::Import, 8),
    (LeadSource::Partner, 5),
    (LeadSource::Other, 2),
];

const STATUSES_W: &[(LeadStatus, u32)] = &[
    (LeadStatus::New, 30),
    (LeadStatus::Contacted, 25),
    (LeadStatus::Qualified, 15),
    (LeadStatus::Unqualified, 10),
    (LeadStatus::Converted, 8),
    (LeadStatus::Lost, 12),
];

type City = (&'static str, &'static str, u32, u8);

/// (city, UF, first five CEP digits, DDD), weighted roughly by population.
const CITIES_W: &[(City, u32)] = &[
    (("São Paulo", "SP", 1310, 11), 120),
    (("Guarulhos", "SP", 7010, 11), 12),
    (("Campinas", "SP", 13010, 19), 12),
    (("Santos", "SP", 11010, 13), 5),
    (("Ribeirão Preto", "SP", 14010, 16), 6),
    (("Sorocaba", "SP", 18010, 15), 6),
    (("São José dos Campos", "SP", 12210, 12), 6),
    (("Rio de Janeiro", "RJ", 20010, 21), 65),
    (("Niterói", "RJ", 24020, 21), 5),
    (("Petrópolis", "RJ", 25610, 24), 3),
    (("Belo Horizonte", "MG", 30110, 31), 25),
    (("Uberlândia", "MG", 38400, 34), 7),
    (("Juiz de Fora", "MG", 36010, 32), 5),
    (("Montes Claros", "MG", 39400, 38), 4),
    (("Curitiba", "PR", 80010, 41), 19),
    (("Londrina", "PR", 86010, 43), 6),
    (("Maringá", "PR", 87010, 44), 4),
    (("Porto Alegre", "RS", 90010, 51), 15),
    (("Caxias do Sul", "RS", 95010, 54), 5),
    (("Pelotas", "RS", 96010, 53), 3),
    (("Florianópolis", "SC", 88010, 48), 5),
    (("Joinville", "SC", 89201, 47), 6),
    (("Chapecó", "SC", 89801, 49), 2),
    (("Salvador", "BA", 40010, 71), 24),
    (("Feira de Santana", "BA", 44001, 75), 6),
    (("Vitória da Conquista", "BA", 45000, 77), 3),
    (("Recife", "PE", 50010, 81), 16),
    (("Caruaru", "PE", 55002, 81), 3),
    (("Fortaleza", "CE", 60010, 85), 26),
    (("Juazeiro do Norte", "CE", 63010, 88), 3),
    (("Brasília", "DF", 70040, 61), 30),
    (("Goiânia", "GO", 74003, 62), 15),
    (("Anápolis", "GO", 75020, 62), 3),
    (("Manaus", "AM", 69005, 92), 21),
    (("Belém", "PA", 66010, 91), 14),
    (("Santarém", "PA", 68005, 93), 3),
    (("Vitória", "ES", 29010, 27), 4),
    (("Vila Velha", "ES", 29100, 27), 5),
    (("Natal", "RN", 59010, 84), 9),
    (("João Pessoa", "PB", 58010, 83), 8),
    (("Campina Grande", "PB", 58400, 83), 4),
    (("Maceió", "AL", 57020, 82), 10),
    (("Aracaju", "SE", 49010, 79), 6),
    (("Teresina", "PI", 64000, 86), 9),
    (("São Luís", "MA", 65010, 98), 11),
    (("Imperatriz", "MA", 65900, 99), 3),
    (("Cuiabá", "MT", 78005, 65), 6),
    (("Rondonópolis", "MT", 78700, 66), 2),
    (("Campo Grande", "MS", 79002, 67), 9),
    (("Palmas", "TO", 77001, 63), 3),
    (("Porto Velho", "RO", 76801, 69), 5),
    (("Macapá", "AP", 68900, 96), 4),
    (("Boa Vista", "RR", 69301, 95), 4),
    (("Rio Branco", "AC", 69900, 68), 4),
];

#[cfg(test)]
mod tests {
    use super::*;
    use jtcrm_types::br::{Cnpj, Phone};

    #[test]
    fn generated_values_are_valid() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..5000 {
            let c = cnpj_for(&mut rng);
            assert!(Cnpj::parse(&c).is_ok(), "{c}");
            let ddd = *pick(&mut rng, VALID_DDDS);
            let p = phone_for(&mut rng, ddd);
            assert!(Phone::parse(&p).is_ok(), "{p}");
        }
    }

    #[test]
    fn generation_is_deterministic_and_valid() {
        let cfg = GenConfig {
            tenant_id: Uuid::nil(),
            admin_id: Uuid::nil(),
            owners: vec![Uuid::from_u128(1), Uuid::from_u128(2)],
            scorer: Scorer::default(),
            seed: 42,
            n: 3000,
            batch: 100,
            chunk: 1000,
            samples: 10,
            company_prefix: "fibra".into(),
            backend: DbBackend::Sqlite,
            now: Utc::now(),
        };
        let mut a = Generator::new(&cfg);
        let mut b = Generator::new(&cfg);
        for i in 0..3000 {
            let (x, y) = match (a.lead(i), b.lead(i)) {
                (Ok(x), Ok(y)) => (x, y),
                (Err(e), _) | (_, Err(e)) => panic!("{e}"),
            };
            assert_eq!(x.draft, y.draft);
        }
    }
}
