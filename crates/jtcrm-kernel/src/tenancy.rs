//! The tenant snapshot read on every request (status, plan limits and features, settings) and its
//! in-process cache. Entries expire after a few seconds (other nodes' changes) and are dropped at
//! once on local changes. The kernel does not know the tenants' tables: the tenants domain
//! implements [`TenantDirectory`] and `app.rs` hands it to the cache.

use std::time::{Duration, Instant};

use dashmap::DashMap;
use jtcrm_types::dto::TenantStatus;
use jtcrm_types::dto::plans::{PlanFeatures, PlanLimits};
use jtcrm_types::dto::tenants::TenantSettings;
use uuid::Uuid;

use crate::db::Db;
use crate::error::AppResult;

/// A boxed future, for the object-safe [`TenantDirectory`].
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Where snapshots come from (implemented by the tenants domain).
pub trait TenantDirectory: Send + Sync {
    /// The tenant's snapshot; `None` when it does not exist.
    fn load<'a>(&'a self, db: &'a Db, id: Uuid)
    -> BoxFuture<'a, AppResult<Option<TenantSnapshot>>>;
    /// The id of the tenant with this slug.
    fn id_for_slug<'a>(
        &'a self,
        db: &'a Db,
        slug: &'a str,
    ) -> BoxFuture<'a, AppResult<Option<Uuid>>>;
}

#[derive(Debug, Clone)]
pub struct TenantSnapshot {
    pub id: Uuid,
    pub slug: String,
    /// The company's display name.
    pub name: String,
    pub status: TenantStatus,
    pub plan_code: String,
    pub limits: PlanLimits,
    pub features: PlanFeatures,
    pub settings: TenantSettings,
}

pub struct TenantCache {
    directory: std::sync::Arc<dyn TenantDirectory>,
    by_id: DashMap<Uuid, (Option<TenantSnapshot>, Instant)>,
    by_slug: DashMap<String, (Option<Uuid>, Instant)>,
    ttl: Duration,
}

impl TenantCache {
    pub fn new(ttl_secs: u64, directory: std::sync::Arc<dyn TenantDirectory>) -> Self {
        Self {
            directory,
            by_id: DashMap::new(),
            by_slug: DashMap::new(),
            ttl: Duration::from_secs(ttl_secs),
        }
    }

    /// `None` when the tenant does not exist.
    pub async fn get(&self, db: &Db, id: Uuid) -> AppResult<Option<TenantSnapshot>> {
        if let Some(e) = self.by_id.get(&id)
            && e.1.elapsed() < self.ttl
        {
            return Ok(e.0.clone());
        }
        let snap = self.directory.load(db, id).await?;
        self.by_id.insert(id, (snap.clone(), Instant::now()));
        Ok(snap)
    }

    pub async fn id_for_slug(&self, db: &Db, slug: &str) -> AppResult<Option<Uuid>> {
        if let Some(e) = self.by_slug.get(slug)
            && e.1.elapsed() < self.ttl
        {
            return Ok(e.0);
        }
        let id = self.directory.id_for_slug(db, slug).await?;
        self.by_slug.insert(slug.to_string(), (id, Instant::now()));
        Ok(id)
    }

    pub fn invalidate(&self, id: Uuid) {
        self.by_id.remove(&id);
        self.by_slug.clear();
    }

    pub fn invalidate_all(&self) {
        self.by_id.clear();
        self.by_slug.clear();
    }
}

/// What a seeder knows about the tenant being created.
#[derive(Debug, Clone)]
pub struct NewTenantSeed {
    pub tenant_id: Uuid,
    pub limits: PlanLimits,
    pub features: PlanFeatures,
}

/// Fills a new tenant with a domain's defaults (the default pipeline, scoring rules, document
/// templates, …), in the tenant-creation transaction: a failing seeder fails the creation.
pub type Seeder =
    for<'a> fn(&'a sea_orm::DatabaseTransaction, &'a NewTenantSeed) -> BoxFuture<'a, AppResult<()>>;

/// The seeders every new tenant goes through, in order (assembled by `jtcrm::app`; a domain
/// with defaults adds one entry there).
#[derive(Clone, Default)]
pub struct Seeders(Vec<(&'static str, Seeder)>);

impl Seeders {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `seeder` under `name` (for logs and errors).
    pub fn add(&mut self, name: &'static str, seeder: Seeder) -> &mut Self {
        self.0.push((name, seeder));
        self
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().map(|(n, _)| *n)
    }

    /// Runs every seeder for `seed` in `txn`.
    pub async fn run(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        seed: &NewTenantSeed,
    ) -> AppResult<()> {
        for (name, seeder) in &self.0 {
            seeder(txn, seed).await.inspect_err(|e| {
                tracing::debug!(seeder = name, error = %e, "valores iniciais da empresa falharam");
            })?;
        }
        Ok(())
    }
}
