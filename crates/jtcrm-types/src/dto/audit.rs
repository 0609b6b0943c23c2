use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-000000000009", "tenant_id": "0193a1b2-0000-7000-8000-000000000002",
    "actor_id": "0193a1b2-0000-7000-8000-000000000001", "action": "update", "entity_type": "user",
    "entity_id": "0193a1b2-0000-7000-8000-000000000003",
    "changes": {"role": {"from": "sales", "to": "manager"}},
    "request_id": "0193a1b2-0000-7000-8000-0000000000aa", "ip": "203.0.113.7", "created_at": "2026-11-29T12:00:00Z"
}))]
pub struct AuditLog {
    pub id: Uuid,
    /// `null` for platform-level changes (plans).
    pub tenant_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    /// Changed fields as `{"field": {"from": …, "to": …}}`; secrets are never included.
    pub changes: serde_json::Value,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
}
