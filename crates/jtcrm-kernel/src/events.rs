//! Domain events (`lead.created`, `task.completed`, …) written to the `domain_events` outbox in the
//! same transaction as the change, for the automation engine and integrations to consume.

use chrono::Utc;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use serde_json::Value;
use uuid::Uuid;

use crate::error::AppResult;

pub mod model {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "domain_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub event_type: String,
        pub entity_type: String,
        pub entity_id: Uuid,
        pub actor_id: Option<Uuid>,
        pub data: Json,
        pub created_at: DateTimeUtc,
        pub processed_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

tokio::task_local! {
    /// Set by the automation engine around the changes an automation (or a cadence step) makes:
    /// its keys (`automation_id`, `automation_depth`, …) are added to the `data` of every event
    /// emitted meanwhile and to audit entries, which is how loops are cut and actors traced.
    pub static CAUSE: serde_json::Map<String, Value>;
}

/// The current [`CAUSE`], if any.
pub fn current_cause() -> Option<serde_json::Map<String, Value>> {
    CAUSE.try_with(Clone::clone).ok()
}

/// One event. `data` carries what changed, as `{"before": {…}, "after": {…}}` where it applies.
pub struct Event<'a> {
    pub tenant_id: Uuid,
    pub event_type: &'a str,
    pub entity_type: &'a str,
    pub entity_id: Uuid,
    pub actor_id: Option<Uuid>,
    pub data: Value,
}

fn row(e: Event<'_>) -> model::ActiveModel {
    let mut data = e.data;
    if let (Some(cause), Value::Object(d)) = (current_cause(), &mut data) {
        for (k, v) in cause {
            d.entry(k).or_insert(v);
        }
    }
    model::ActiveModel {
        tenant_id: Set(e.tenant_id),
        id: Set(Uuid::now_v7()),
        event_type: Set(e.event_type.to_string()),
        entity_type: Set(e.entity_type.to_string()),
        entity_id: Set(e.entity_id),
        actor_id: Set(e.actor_id),
        data: Set(data),
        created_at: Set(Utc::now()),
        processed_at: Set(None),
    }
}

pub async fn emit<C: ConnectionTrait>(conn: &C, e: Event<'_>) -> AppResult<Uuid> {
    let am = row(e);
    let id = am.id.clone().unwrap();
    model::Entity::insert(am)
        .exec_without_returning(conn)
        .await?;
    Ok(id)
}

/// Many events in multi-row INSERTs (bulk paths such as the CSV import), in order.
pub async fn emit_many<C: ConnectionTrait>(conn: &C, es: Vec<Event<'_>>) -> AppResult<()> {
    crate::db::insert_all(conn, es.into_iter().map(row).collect()).await?;
    Ok(())
}
