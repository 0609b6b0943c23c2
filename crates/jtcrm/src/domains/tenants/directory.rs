//! The tenants domain's side of the kernel's tenant snapshot: how a snapshot is read from the
//! `tenants` and `plans` tables (see `jtcrm_kernel::tenancy`).

use jtcrm_kernel::db::Db;
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::tenancy::{BoxFuture, TenantDirectory, TenantSnapshot};
use jtcrm_types::dto::TenantStatus;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::model::tenant;
use crate::domains::plans;

/// Reads snapshots from the database.
pub struct Directory;

impl TenantDirectory for Directory {
    fn load<'a>(
        &'a self,
        db: &'a Db,
        id: Uuid,
    ) -> BoxFuture<'a, AppResult<Option<TenantSnapshot>>> {
        Box::pin(load(db, id))
    }

    fn id_for_slug<'a>(
        &'a self,
        db: &'a Db,
        slug: &'a str,
    ) -> BoxFuture<'a, AppResult<Option<Uuid>>> {
        Box::pin(async move {
            Ok(tenant::Entity::find()
                .select_only()
                .column(tenant::Column::Id)
                .filter(tenant::Column::Slug.eq(slug))
                .into_tuple()
                .one(db)
                .await?)
        })
    }
}

async fn load(db: &Db, id: Uuid) -> AppResult<Option<TenantSnapshot>> {
    let Some(t) = tenant::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let (limits, features) = plans::find(db, &t.subscription_plan)
        .await?
        .map(|p| (p.limits, p.features))
        .unwrap_or_default();
    Ok(Some(TenantSnapshot {
        id: t.id,
        slug: t.slug.clone(),
        name: t.name.clone(),
        status: TenantStatus::parse(&t.status).unwrap_or(TenantStatus::Suspended),
        plan_code: t.subscription_plan.clone(),
        limits,
        features,
        settings: super::settings_of(&t),
    }))
}
