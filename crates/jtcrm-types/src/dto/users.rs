use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::common::{Role, TenantRole};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-000000000003", "tenant_id": "0193a1b2-0000-7000-8000-000000000002",
    "name": "Maria Vendas", "email": "maria@provedor.com.br", "role": "sales", "phone": "+5511987654321",
    "extension": "1001", "active": true, "last_login_at": null,
    "created_at": "2026-11-29T12:00:00Z", "updated_at": "2026-11-29T12:00:00Z", "version": 1
}))]
pub struct User {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub email: String,
    pub role: Role,
    /// E.164.
    pub phone: Option<String>,
    /// PABX extension (ramal).
    pub extension: Option<String>,
    pub active: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Maria Vendas", "email": "maria@provedor.com.br", "password": "s3nh4-forte", "role": "sales", "phone": "(11) 98765-4321", "extension": "1001"}))]
pub struct CreateUserRequest {
    #[schema(required = true, nullable = false, min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(required = true, nullable = false, format = Email, max_length = 254)]
    pub email: Option<String>,
    #[schema(required = true, nullable = false, min_length = 8, max_length = 256)]
    pub password: Option<String>,
    #[schema(required = true, nullable = false, value_type = TenantRole)]
    pub role: Option<String>,
    #[schema(format = "br-phone")]
    pub phone: Option<String>,
    #[schema(pattern = "^[0-9]{0,10}$")]
    pub extension: Option<String>,
}

/// Any subset. `role` and `active` are admin-only; changing one's own `password` needs
/// `current_password` (admins changing someone else's do not).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct UpdateUserRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    #[schema(value_type = Option<TenantRole>)]
    pub role: Option<String>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    #[schema(format = "br-phone")]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    #[schema(pattern = "^[0-9]{0,10}$")]
    pub extension: Option<Option<String>>,
    pub active: Option<bool>,
    #[schema(min_length = 8, max_length = 256)]
    pub password: Option<String>,
    pub current_password: Option<String>,
}
