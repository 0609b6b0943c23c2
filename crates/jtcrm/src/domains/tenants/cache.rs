//! In-process cache of each tenant's status, plan limits and settings, read on every request.
//! Entries expire after a few seconds (other nodes' changes) and are dropped at once on local changes.

use std::time::{Duration, Instant};

use dashmap::DashMap;
use jtcrm_types::dto::TenantStatus;
use jtcrm_types::dto::plans::{PlanFeatures, PlanLimits};
use jtcrm_types::dto::tenants::TenantSettings;
use sea_orm::EntityTrait;
use uuid::Uuid;

use super::model::tenant;
use crate::db::Db;
use crate::domains::plans::{self, model as plan};
use crate::error::AppResult;

#[derive(Debug, Clone)]
pub struct TenantSnapshot {
    pub id: Uuid,
    pub slug: String,
    pub status: TenantStatus,
    pub plan_code: String,
    pub limits: PlanLimits,
    pub features: PlanFeatures,
    pub settings: TenantSettings,
}

pub struct TenantCache {
    by_id: DashMap<Uuid, (Option<TenantSnapshot>, Instant)>,
    by_slug: DashMap<String, (Option<Uuid>, Instant)>,
    ttl: Duration,
}

impl TenantCache {
    pub fn new(ttl_secs: u64) -> Self {
        Self {
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
        let snap = load(db, id).await?;
        self.by_id.insert(id, (snap.clone(), Instant::now()));
        Ok(snap)
    }

    pub async fn id_for_slug(&self, db: &Db, slug: &str) -> AppResult<Option<Uuid>> {
        if let Some(e) = self.by_slug.get(slug)
            && e.1.elapsed() < self.ttl
        {
            return Ok(e.0);
        }
        use sea_orm::{ColumnTrait, QueryFilter};
        let id = tenant::Entity::find()
            .filter(tenant::Column::Slug.eq(slug))
            .one(db)
            .await?
            .map(|t| t.id);
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

async fn load(db: &Db, id: Uuid) -> AppResult<Option<TenantSnapshot>> {
    let Some(t) = tenant::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let p = plan::Entity::find_by_id(t.subscription_plan.clone())
        .one(db)
        .await?;
    let (limits, features) = p
        .map(|p| (plans::limits_of(&p), plans::features_of(&p)))
        .unwrap_or_default();
    Ok(Some(TenantSnapshot {
        id: t.id,
        slug: t.slug.clone(),
        status: TenantStatus::parse(&t.status).unwrap_or(TenantStatus::Suspended),
        plan_code: t.subscription_plan.clone(),
        limits,
        features,
        settings: super::settings_of(&t),
    }))
}
