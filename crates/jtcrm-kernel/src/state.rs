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
    pub secrets: crate::secrets::SecretBox,
    pub tenants: TenantCache,
    /// What every new tenant is filled with (assembled by `jtcrm::app`).
    pub seeders: Seeders,
    pub metrics: Option<PrometheusHandle>,
    /// `Some` on SQLite: see [`Tx`].
    pub write_lock: Option<Arc<tokio::sync::Mutex<()>>>,
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
