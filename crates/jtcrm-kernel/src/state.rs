//! Shared application state handed to every handler: database, settings, key-value store, keys.
//! Cheap to clone (one `Arc`).

use std::ops::Deref;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Settings;
use crate::db::Db;
use crate::kv::SharedKv;
use crate::security::{JwtKeys, PasswordHasherCfg};
use crate::tenancy::{Seeders, TenantCache};

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub db: Db,
    pub settings: Arc<Settings>,
    pub kv: SharedKv,
    pub jwt: JwtKeys,
    pub hasher: PasswordHasherCfg,
    /// Seals and opens secrets at rest (AES-256-GCM).
    pub secrets: Arc<crate::secrets::SecretBox>,
    /// Where file bytes live (`files`: local under the data dir by default).
    pub files: crate::files::SharedStore,
    pub tenants: Arc<TenantCache>,
    /// What every new tenant is filled with (assembled by `jtcrm::app`).
    pub seeders: Seeders,
    pub metrics: Option<PrometheusHandle>,
    /// `Some` on SQLite: see [`Tx`].
    pub write_lock: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl AppState {
    /// This state on another pool (sharing everything else: key-value store, keys, tenant cache,
    /// SQLite write lock). The test kit uses it to inspect and prepare rows through the tables'
    /// owner, outside row-level security; the server never does.
    pub fn with_db(&self, db: Db) -> AppState {
        let i = &self.0;
        AppState(Arc::new(Inner {
            db,
            settings: i.settings.clone(),
            kv: i.kv.clone(),
            jwt: i.jwt.clone(),
            hasher: i.hasher.clone(),
            secrets: i.secrets.clone(),
            files: i.files.clone(),
            tenants: i.tenants.clone(),
            seeders: i.seeders.clone(),
            metrics: i.metrics.clone(),
            write_lock: i.write_lock.clone(),
        }))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// A write transaction. On SQLite, write transactions are serialised in-process: SQLite allows one
/// writer at a time, and a deferred transaction that read before writing would otherwise fail with
/// `SQLITE_BUSY` instead of waiting.
pub struct Tx {
    txn: sea_orm::DatabaseTransaction,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Tx {
    pub async fn commit(self) -> Result<(), sea_orm::DbErr> {
        self.txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), sea_orm::DbErr> {
        self.txn.rollback().await
    }
}

impl Deref for Tx {
    type Target = sea_orm::DatabaseTransaction;
    fn deref(&self) -> &sea_orm::DatabaseTransaction {
        &self.txn
    }
}

impl Inner {
    /// Opens a write transaction on the current task's database scope (`db::Scope`, written
    /// into the connection when the pool hands it out): inside a tenant request or a tenant's job
    /// it is a tenant transaction, under `db::platform` a platform one. To open one for a
    /// tenant explicitly, use [`Inner::begin_tenant`].
    pub async fn begin(&self) -> Result<Tx, sea_orm::DbErr> {
        use sea_orm::TransactionTrait;
        let guard = match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let txn = self.db.begin().await?;
        Ok(Tx { txn, _guard: guard })
    }
}

impl Inner {
    /// A transaction that sees only `tenant_id`'s rows whatever the task's scope (the tenant path,
    /// stated at the call site; PostgreSQL: `set_config('app.tenant_id', …, true)`, local to the
    /// transaction). For work that holds a tenant id outside a tenant request or job.
    pub async fn begin_tenant(&self, tenant_id: uuid::Uuid) -> Result<Tx, sea_orm::DbErr> {
        let tx = self.begin().await?;
        if crate::db::is_postgres(&self.db) && self.settings.db_rls {
            use sea_orm::ConnectionTrait;
            tx.execute_unprepared(&format!(
                "SELECT set_config('app.tenant_id', '{tenant_id}', true), \
                 set_config('app.platform', 'off', true)"
            ))
            .await?;
        }
        Ok(tx)
    }
}
