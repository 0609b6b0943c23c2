//! The audit log: who changed what, when and from where, for every mutation.
//! Entries are written in the same transaction as the change they describe.

pub mod model;

use chrono::Utc;
use jtcrm_types::dto::audit::AuditLog;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::error::AppResult;
use crate::http::extract::{RequestMeta, TenantCtx};

/// Fields never written to the audit log, whatever entity they belong to.
const SECRET_FIELDS: &[&str] = &[
    "password",
    "password_hash",
    "current_password",
    "token",
    "refresh_token",
    "access_token",
];

pub struct Entry<'a> {
    pub tenant_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: String,
    pub changes: Value,
    pub meta: &'a RequestMeta,
}

impl<'a> Entry<'a> {
    /// A change made in `ctx`'s tenant by its user, in this request.
    pub fn tenant(
        ctx: &'a TenantCtx,
        action: &'a str,
        entity_type: &'a str,
        entity_id: impl ToString,
        changes: Value,
    ) -> Self {
        Entry {
            tenant_id: Some(ctx.tenant_id),
            actor_id: Some(ctx.user_id),
            action,
            entity_type,
            entity_id: entity_id.to_string(),
            changes,
            meta: &ctx.meta,
        }
    }
}

fn row(e: Entry<'_>) -> model::ActiveModel {
    let mut changes = e.changes;
    // Changes made by an automation name it (see `events::CAUSE`).
    if let (Some(cause), Value::Object(c)) = (crate::events::current_cause(), &mut changes) {
        c.insert("automation".into(), Value::Object(cause));
    }
    model::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(e.tenant_id),
        actor_id: Set(e.actor_id),
        action: Set(e.action.to_string()),
        entity_type: Set(e.entity_type.to_string()),
        entity_id: Set(e.entity_id),
        changes: Set(changes),
        request_id: Set(e.meta.request_id.clone()),
        ip: Set(e.meta.ip.clone()),
        created_at: Set(Utc::now()),
    }
}

pub async fn record<C: ConnectionTrait>(conn: &C, e: Entry<'_>) -> AppResult<()> {
    model::Entity::insert(row(e))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Many entries in multi-row INSERTs (bulk paths such as the CSV import).
pub async fn record_many<C: ConnectionTrait>(conn: &C, es: Vec<Entry<'_>>) -> AppResult<()> {
    crate::db::insert_all(conn, es.into_iter().map(row).collect()).await?;
    Ok(())
}

/// `{"field": {"from": old, "to": new}}` for every top-level field that differs, secrets excluded.
pub fn diff(before: &Value, after: &Value) -> Value {
    let empty = Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut out = Map::new();
    for (k, new) in a {
        if SECRET_FIELDS.contains(&k.as_str()) || matches!(k.as_str(), "updated_at" | "version") {
            continue;
        }
        let old = b.get(k).unwrap_or(&Value::Null);
        if old != new {
            out.insert(k.clone(), json!({"from": old, "to": new}));
        }
    }
    for (k, old) in b {
        if !a.contains_key(k) && !SECRET_FIELDS.contains(&k.as_str()) {
            out.insert(k.clone(), json!({"from": old, "to": Value::Null}));
        }
    }
    Value::Object(out)
}

/// A change that only says a secret was changed, without its value.
pub fn secret_changed(field: &str) -> Value {
    json!({ field: {"changed": true} })
}

pub fn to_dto(m: model::Model) -> AuditLog {
    AuditLog {
        id: m.id,
        tenant_id: m.tenant_id,
        actor_id: m.actor_id,
        action: m.action,
        entity_type: m.entity_type,
        entity_id: m.entity_id,
        changes: m.changes,
        request_id: m.request_id,
        ip: m.ip,
        created_at: m.created_at,
    }
}
