//! Writing rows the same way in every domain: how a body's absent keys are treated ([`WriteMode`]),
//! the optimistic-lock update ([`optimistic_update`]), and the soft delete and restore tails
//! ([`soft_delete`], [`restore`]).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    ModelTrait, QueryFilter, Value,
};
use serde_json::json;

use crate::audit;
use crate::error::{AppError, AppResult, Validator};
use crate::http::extract::TenantCtx;
use crate::state::Tx;

/// How absent keys of the body are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Create,
    /// Absent optional keys are cleared.
    Replace,
    /// Absent keys are kept.
    Patch,
}

impl WriteMode {
    /// An optional text field of the body: kept from `current` when absent on `Patch`, cleared when
    /// absent otherwise or `null`, else trimmed and checked against `max` characters.
    pub fn optional_text(
        self,
        v: &mut Validator,
        field: &str,
        incoming: &Option<Option<String>>,
        current: Option<&String>,
        max: usize,
    ) -> Option<String> {
        match incoming {
            None if self == WriteMode::Patch => current.cloned(),
            None | Some(None) => None,
            Some(Some(s)) => v.optional_text(field, Some(s), max),
        }
    }
}

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

/// Moves `current` to the trash: sets `deleted_at` (and `updated_at`), applies `change` (what else
/// a deleted row gives up: a unique key, `active`…), bumps `version` with [`optimistic_update`],
/// records the `delete` audit entry of `entity_type` and commits. The table has `id`, `version`,
/// `deleted_at` and, usually, `updated_at` columns.
pub async fn soft_delete<E>(
    tx: Tx,
    ctx: &TenantCtx,
    entity_type: &str,
    current: E::Model,
    change: impl FnOnce(&mut E::ActiveModel),
) -> AppResult<()>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    set_deleted::<E>(&tx, ctx, entity_type, current, true, change).await?;
    tx.commit().await?;
    Ok(())
}

/// Takes `current` out of the trash: the inverse of [`soft_delete`], audited as `restore`.
pub async fn restore<E>(
    tx: Tx,
    ctx: &TenantCtx,
    entity_type: &str,
    current: E::Model,
) -> AppResult<E::Model>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let restored = set_deleted::<E>(&tx, ctx, entity_type, current, false, |_| {}).await?;
    tx.commit().await?;
    Ok(restored)
}

async fn set_deleted<E>(
    tx: &Tx,
    ctx: &TenantCtx,
    entity_type: &str,
    current: E::Model,
    deleted: bool,
    change: impl FnOnce(&mut E::ActiveModel),
) -> AppResult<E::Model>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let version_col = column::<E>("version")?;
    let Value::Int(Some(version)) = current.get(version_col) else {
        return Err(AppError::internal(anyhow::anyhow!(
            "{entity_type}: version is not an integer"
        )));
    };
    let Value::Uuid(Some(id)) = current.get(column::<E>("id")?) else {
        return Err(AppError::internal(anyhow::anyhow!(
            "{entity_type}: id is not a UUID"
        )));
    };
    let now = Utc::now();
    let mut am = current.into_active_model();
    change(&mut am);
    let deleted_at: Option<DateTime<Utc>> = deleted.then_some(now);
    am.try_set(column::<E>("deleted_at")?, deleted_at.into())?;
    if let Ok(c) = E::Column::from_str("updated_at") {
        am.try_set(c, now.into())?;
    }
    am.try_set(version_col, (version + 1).into())?;
    let saved = optimistic_update::<E, _>(&**tx, am, version_col, version).await?;
    let (action, changes) = if deleted {
        ("delete", json!({"deleted": {"from": false, "to": true}}))
    } else {
        ("restore", json!({"deleted": {"from": true, "to": false}}))
    };
    audit::record(
        &**tx,
        audit::Entry::tenant(ctx, action, entity_type, id, changes),
    )
    .await?;
    Ok(saved)
}

fn column<E: EntityTrait>(name: &str) -> AppResult<E::Column> {
    E::Column::from_str(name).map_err(|_| {
        AppError::internal(anyhow::anyhow!(
            "table {} has no column {name}",
            E::default().table_name()
        ))
    })
}
