//! The `jtcrm` binary: parses arguments and calls the library. Subcommands: serve (default),
//! worker, migrate, admin create-super-admin, openapi, system-test, mock, bench.

mod mock;
mod system_test;

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use jtcrm::{Application, Settings};

#[derive(Parser)]
#[command(
    name = "jtcrm",
    version,
    about = "CRM multi-empresa para operadoras e provedores (ISPs)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve(ServeArgs),
    /// Run only the job worker until Ctrl-C/SIGTERM (scaled separately from `serve`).
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Platform administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Print the OpenAPI document (JSON) and exit.
    Openapi,
    /// Run the end-to-end scenario against a live deployment; exits non-zero on the first failure.
    SystemTest {
        /// Base URL of the deployment, e.g. http://localhost:5000
        #[arg(long, default_value = "http://localhost:5000")]
        url: String,
        /// Print every request and response status.
        #[arg(long)]
        verbose: bool,
        /// The HTTP view of the SMTP sink the deployment sends through (`jtcrm mock smtp
        /// --http-port M` → `http://127.0.0.1:M`): the proposal and contract e-mails must arrive
        /// there. Without it, only the stored e-mails are checked.
        #[arg(long, env = "JTCRM_SYSTEM_TEST_SMTP_SINK")]
        smtp_sink: Option<String>,
    },
    /// Run a faithful mock of an external system (pabx, d4sign, flyerp, llm, whatsapp, s3, smtp)
    /// for local trials; prints its URL and credentials.
    Mock(mock::MockArgs),
    /// Benchmark tooling (see bench/README.md).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Fill DATABASE_URL with benchmark tenants and leads; writes ids, logins and tokens as JSON.
    Seed(BenchSeedArgs),
    /// Add opportunities, tasks and a long timeline to a tenant seeded by `bench seed`.
    SeedSales(BenchSalesArgs),
    /// Render proposal PDFs (default template, 30 items each): PDFs/s, p99 per PDF, peak RSS.
    Pdf(BenchPdfArgs),
    /// Ingest call records through the history poll's path, then measure the calls list and the
    /// caller lookup (bench/README.md, "Telephony").
    Telephony(BenchTelephonyArgs),
}

#[derive(clap::Args)]
struct BenchTelephonyArgs {
    /// Slug of the tenant (`bench seed`'s big tenant is `<prefix>-grande`).
    #[arg(long, default_value = "bench-grande")]
    tenant: String,
    /// Call records to ingest.
    #[arg(long, default_value_t = 1_000_000)]
    calls: u64,
    /// Share of the calls made with a lead's phone.
    #[arg(long, default_value_t = 0.2)]
    match_ratio: f64,
    /// The calls spread over this many past days.
    #[arg(long, default_value_t = 90)]
    days: i64,
    /// Concurrent clients of the read scenarios.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds measured per read scenario (after 2 s of warm-up).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// PRNG seed.
    #[arg(long, default_value_t = 20261208)]
    seed: u64,
    /// Where to write the JSON report.
    #[arg(long)]
    out: std::path::PathBuf,
}

#[derive(clap::Args)]
struct BenchPdfArgs {
    /// PDFs to render.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Items (lines) per proposal.
    #[arg(long, default_value_t = 30)]
    items: usize,
    /// Threads rendering at once.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Write one of the PDFs here.
    #[arg(long)]
    sample: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
struct BenchSalesArgs {
    /// Slug of the tenant to fill (`bench seed`'s big tenant is `<prefix>-grande`).
    #[arg(long, default_value = "bench-grande")]
    tenant: String,
    /// Open opportunities in the default pipeline.
    #[arg(long, default_value_t = 100_000)]
    open: u64,
    /// Won and lost opportunities (half each).
    #[arg(long, default_value_t = 20_000)]
    closed: u64,
    /// Tasks in the tenant.
    #[arg(long, default_value_t = 1_000_000)]
    tasks: u64,
    /// Of those, tasks of the agenda scenario's seller.
    #[arg(long, default_value_t = 50_000)]
    agenda_tasks: u64,
    /// Timeline entries of one lead.
    #[arg(long, default_value_t = 5_000)]
    timeline: u64,
    /// PRNG seed.
    #[arg(long, default_value_t = 20261130)]
    seed: u64,
    /// Where to write the JSON report (ids and the agenda user's token).
    #[arg(long)]
    out: std::path::PathBuf,
}

#[derive(clap::Args)]
struct BenchSeedArgs {
    /// Leads of the big tenant (default: 1,000,000 on PostgreSQL, 200,000 on SQLite).
    #[arg(long)]
    leads: Option<u64>,
    /// Number of extra tenants (default: 4 on PostgreSQL, 2 on SQLite).
    #[arg(long)]
    tenants_extra: Option<u32>,
    /// Leads of each extra tenant (default: 100,000 on PostgreSQL, 20,000 on SQLite).
    #[arg(long)]
    leads_per_extra: Option<u64>,
    /// Sales users per tenant.
    #[arg(long, default_value_t = 10)]
    owners: u32,
    /// PRNG seed.
    #[arg(long, default_value_t = 20261129)]
    seed: u64,
    /// Slug and e-mail prefix of the seeded tenants.
    #[arg(long, default_value = "bench")]
    prefix: String,
    /// Password of every seeded user.
    #[arg(long, default_value = "bench-senha-forte")]
    password: String,
    /// Leads per INSERT statement (max 1200).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Leads per transaction.
    #[arg(long, default_value_t = 10_000)]
    chunk: usize,
    /// Skip the final VACUUM (ANALYZE) / ANALYZE.
    #[arg(long)]
    no_analyze: bool,
    /// Keep the lead tables' secondary indexes during the load (slower; by default they are
    /// dropped and re-created from their saved definitions at the end).
    #[arg(long)]
    keep_indexes: bool,
    /// Where to write the JSON report (tenant ids, admin logins, tokens, sample ids and phones).
    #[arg(long)]
    out: std::path::PathBuf,
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// Port to listen on (also read from PORT; default 5000).
    #[arg(long)]
    port: Option<u16>,
    /// Address to bind (default 0.0.0.0).
    #[arg(long)]
    bind: Option<IpAddr>,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a platform super-admin.
    CreateSuperAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long, default_value = "Super Admin")]
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("erro: não foi possível iniciar o runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("erro: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve(args).await,
        Command::Worker => {
            let settings = load_settings()?;
            jtcrm::app::run_worker(settings, jtcrm::app::shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let settings = load_settings()?;
            let db = jtcrm_kernel::db::connect(
                settings.database_url.expose(),
                2,
                jtcrm_kernel::db::Access::Owner,
            )
            .await?;
            jtcrm::migration::migrate(&db).await?;
            jtcrm::domains::plans::seed_defaults(&db)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("migrações aplicadas");
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin {
            command:
                AdminCommand::CreateSuperAdmin {
                    email,
                    password,
                    name,
                },
        } => {
            let mut settings = load_settings()?;
            settings.superadmin_email = None;
            let state = jtcrm::app::build_state(settings).await?;
            // Platform work (db.rs): no tenant yet.
            let id = jtcrm_kernel::db::platform(jtcrm::domains::auth::service::create_super_admin(
                &state, &name, &email, &password,
            ))
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.detail_with_fields()))?;
            println!("super-admin criado: {email} ({id})");
            Ok(ExitCode::SUCCESS)
        }
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&jtcrm::http::openapi())
                    .context("serializing OpenAPI")?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::SystemTest {
            url,
            verbose,
            smtp_sink,
        } => system_test::run(&url, verbose, smtp_sink.as_deref()).await,
        Command::Mock(a) => mock::run(a).await.map(|()| ExitCode::SUCCESS),
        Command::Bench {
            command: BenchCommand::Seed(a),
        } => {
            let configure = |o: &mut jtcrm_bench::seed::SeedOptions| {
                o.leads = a.leads.unwrap_or(o.leads);
                o.tenants_extra = a.tenants_extra.unwrap_or(o.tenants_extra);
                o.leads_per_extra = a.leads_per_extra.unwrap_or(o.leads_per_extra);
                o.owners = a.owners;
                o.seed = a.seed;
                o.prefix = a.prefix.clone();
                o.password = a.password.clone();
                o.batch = a.batch;
                o.chunk = a.chunk;
                o.analyze = !a.no_analyze;
                o.drop_indexes = !a.keep_indexes;
            };
            // Platform work (db.rs): the seeder writes several tenants' rows directly.
            jtcrm_kernel::db::platform(jtcrm_bench::seed::run_seed(
                load_settings()?,
                configure,
                &a.out,
            ))
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command: BenchCommand::SeedSales(a),
        } => {
            let opts = jtcrm_bench::sales::SalesOptions {
                tenant_slug: a.tenant,
                open: a.open,
                closed: a.closed,
                tasks: a.tasks,
                agenda_tasks: a.agenda_tasks,
                timeline: a.timeline,
                seed: a.seed,
                samples: 2000,
            };
            jtcrm_kernel::db::platform(jtcrm_bench::sales::run_seed_sales(
                load_settings()?,
                opts,
                &a.out,
            ))
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command: BenchCommand::Telephony(a),
        } => {
            let opts = jtcrm_bench::telephony::TelephonyOptions {
                tenant_slug: a.tenant,
                calls: a.calls,
                match_ratio: a.match_ratio,
                days: a.days,
                seed: a.seed,
                concurrency: a.concurrency,
                seconds: a.seconds,
            };
            jtcrm_kernel::db::platform(jtcrm_bench::telephony::run(load_settings()?, opts, &a.out))
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command: BenchCommand::Pdf(a),
        } => {
            let r = jtcrm_bench::pdf::run(&jtcrm_bench::pdf::PdfBenchOptions {
                count: a.count,
                items: a.items,
                threads: a.threads,
                sample: a.sample,
            })?;
            println!(
                "{} PDFs of {} items on {} thread(s) in {:.2} s: {:.1} PDFs/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} bytes each, peak RSS {} KiB",
                r.count,
                r.items,
                r.threads,
                r.seconds,
                r.pdfs_per_sec,
                r.p50_ms,
                r.p99_ms,
                r.max_ms,
                r.avg_bytes,
                r.peak_rss_kib
                    .map(|k| k.to_string())
                    .unwrap_or_else(|| "?".into())
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load_settings() -> anyhow::Result<Settings> {
    let s = Settings::from_env()?;
    jtcrm_kernel::telemetry::init_logging(&s.log_level, s.json_logs);
    Ok(s)
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut settings = load_settings()?;
    if let Some(p) = args.port {
        settings.bind.set_port(p);
    }
    if let Some(ip) = args.bind {
        settings.bind = SocketAddr::new(ip, settings.bind.port());
    }
    let has_superadmin_env = settings.superadmin_email.is_some();
    let db_url = settings
        .database_url
        .expose()
        .split('?')
        .next()
        .unwrap_or("")
        .to_string();
    let app = Application::build(settings).await?;
    let addr = app.local_addr();
    let host = if addr.ip().is_unspecified() {
        "localhost".to_string()
    } else {
        addr.ip().to_string()
    };
    let base = format!("http://{host}:{}", addr.port());
    let db_shown = if db_url.starts_with("postgres") {
        "PostgreSQL".to_string()
    } else {
        db_url
    };
    println!("jtcrm {} ouvindo em {base}", env!("CARGO_PKG_VERSION"));
    println!("  banco de dados: {db_shown}");
    println!("  documentação da API: {base}/apidocs/");
    println!("  saúde: {base}/health");
    if has_superadmin_env {
        println!(
            "  login: POST {base}/api/auth/login com JTCRM_SUPERADMIN_EMAIL / JTCRM_SUPERADMIN_PASSWORD"
        );
    } else {
        println!(
            "  login: crie o super-admin com `jtcrm admin create-super-admin --email … --password …` \
             (ou defina JTCRM_SUPERADMIN_EMAIL e JTCRM_SUPERADMIN_PASSWORD) e faça POST {base}/api/auth/login"
        );
    }
    app.run(jtcrm::app::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
