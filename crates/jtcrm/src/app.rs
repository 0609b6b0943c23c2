//! Builds the application from settings: storage, migrations, seeds, state, router and listener.
//! `main` and the test harness both go through `Application::build`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use jtcrm_kernel::config::Settings;
use jtcrm_kernel::jobs::{Registry, Worker, WorkerOptions};
use jtcrm_kernel::security::{JwtKeys, PasswordHasherCfg};
use jtcrm_kernel::state::{AppState, Inner};
use jtcrm_kernel::tenancy::{Seeders, TenantCache};

/// Connects, migrates, seeds the default plans and the env-configured super-admin.
pub async fn build_state(settings: Settings) -> anyhow::Result<AppState> {
    build(settings, false).await
}

/// [`build_state`] whose pool stays on the connecting role (the tables' owner, which bypasses
/// row-level security and may run DDL): for maintenance tools only — the benchmark seeders, which
/// drop and rebuild indexes around a bulk load. Never for serving requests.
pub async fn build_owner_state(settings: Settings) -> anyhow::Result<AppState> {
    build(settings, true).await
}

async fn build(mut settings: Settings, keep_owner: bool) -> anyhow::Result<AppState> {
    settings.finalize()?;
    use jtcrm_kernel::db::{self, Access};
    let url = settings.database_url.expose();
    // Migrations and the default plans run as the connecting role (the tables' owner); the
    // server's pool then runs as the application role, under row-level security (db.rs).
    let owner = db::connect(url, 2, Access::Owner).await?;
    crate::migration::migrate(&owner).await?;
    crate::domains::plans::seed_defaults(&owner)
        .await
        .map_err(|e| anyhow::anyhow!("seeding plans: {e}"))?;
    let db = if db::is_postgres(&owner) && !keep_owner {
        owner.close().await.ok();
        let access = Access::App {
            rls: settings.db_rls,
        };
        db::connect(url, settings.db_max_connections, access).await?
    } else {
        // SQLite has no roles: one pool (so an in-memory database stays one database).
        owner
    };
    let kv = jtcrm_kernel::kv::build(
        settings.redis_url.as_ref().map(|s| s.expose()),
        &settings.redis_key_prefix,
    )
    .await
    .context("não foi possível conectar ao Redis (REDIS_URL)")?;
    let write_lock =
        (!jtcrm_kernel::db::is_postgres(&db)).then(|| Arc::new(tokio::sync::Mutex::new(())));
    let state = AppState(Arc::new(Inner {
        jwt: JwtKeys::new(settings.jwt_secret.expose(), settings.access_token_ttl_secs),
        hasher: PasswordHasherCfg::new(settings.argon2_memory_kib, settings.argon2_iterations),
        secrets: Arc::new(settings.secret_box()?),
        files: crate::storage::from_settings(&settings)?,
        tenants: Arc::new(TenantCache::new(
            settings.tenant_cache_ttl_secs,
            Arc::new(crate::domains::tenants::directory::Directory),
        )),
        seeders: seeders(),
        metrics: jtcrm_kernel::telemetry::metrics_handle(),
        settings: Arc::new(settings),
        db,
        kv,
        write_lock,
    }));
    if let Some(email) =
        db::platform(crate::domains::auth::service::ensure_super_admin(&state)).await?
    {
        tracing::info!(%email, "super-admin criado a partir de JTCRM_SUPERADMIN_EMAIL");
    }
    Ok(state)
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let bind = settings.bind;
        let state = build_state(settings).await?;
        let listener = TcpListener::bind(bind)
            .await
            .with_context(|| format!("não foi possível escutar em {bind}"))?;
        Ok(Self { listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = crate::http::build_router(self.state.clone());
        // The in-process worker (JTCRM_RUN_WORKER); stopped after the server, so requests that
        // were draining could still enqueue.
        let worker = self.state.settings.run_worker.then(|| {
            let opts = jtcrm_kernel::jobs::WorkerOptions::from_settings(&self.state.settings);
            jtcrm_kernel::jobs::Worker::spawn(self.state.clone(), registry(), opts)
        });
        let served = axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        if let Some(w) = worker {
            w.shutdown().await;
        }
        served?;
        self.state.db.clone().close().await.ok();
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// What every new tenant starts with, in order. A domain with per-tenant defaults adds one line.
pub fn seeders() -> Seeders {
    let mut s = Seeders::new();
    s.add("scoring_rules", crate::domains::leads::scoring::seed_tenant);
    s.add("default_pipeline", crate::domains::pipelines::seed_tenant);
    s.add("document_templates", crate::domains::proposals::seed_tenant);
    s
}

/// The product's job registry: the kernel's jobs and every domain's handlers and periodic chains.
/// A new domain adds one line here.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    jtcrm_kernel::jobs::register(&mut r);
    crate::domains::auth::register(&mut r);
    crate::domains::email::register(&mut r);
    crate::domains::tasks::register(&mut r);
    crate::domains::automations::register(&mut r);
    crate::domains::leads::register(&mut r);
    crate::domains::telephony::register(&mut r);
    r
}

/// Runs only the worker (`jtcrm worker`) until `shutdown` resolves, then stops gracefully.
pub async fn run_worker(
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let state = build_state(settings).await?;
    let opts = WorkerOptions::from_settings(&state.settings);
    let handle = Worker::spawn(state.clone(), registry(), opts);
    tracing::info!(
        worker_id = handle.id(),
        "worker em execução (Ctrl-C para parar)"
    );
    shutdown.await;
    handle.shutdown().await;
    state.db.clone().close().await.ok();
    Ok(())
}
