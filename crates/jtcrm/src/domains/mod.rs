//! Business domains. Each owns its tables (`model`), rules (`service`) and HTTP handlers (`routes`).
//! Services take the tenant context first and filter every query by it.

pub mod audit;
pub mod auth;
pub mod automations;
pub mod email;
pub mod jobs;
pub mod leads;
pub mod pipelines;
pub mod plans;
pub mod products;
pub mod system;
pub mod tasks;
pub mod tenants;
pub mod timeline;
pub mod users;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter,
};

use jtcrm_kernel::error::{AppError, AppResult};

/// Saves `am` only if the row still has version `expected`; otherwise `412 precondition_failed`.
pub async fn optimistic_update<E, C>(
    conn: &C,
    am: E::ActiveModel,
    version_col: E::Column,
    expected: i32,
) -> AppResult<E::Model>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    C: ConnectionTrait,
{
    match E::update(am)
        .validate()?
        .filter(version_col.eq(expected))
        .exec(conn)
        .await
    {
        Ok(m) => Ok(m),
        Err(DbErr::RecordNotUpdated) => Err(AppError::stale_version()),
        Err(e) => Err(e.into()),
    }
}
