use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::common::{Role, TenantRole};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"email": "admin@provedor.com.br", "password": "s3nh4-forte"}))]
pub struct LoginRequest {
    /// Required (not blank), at most 254 characters.
    #[schema(required = true, value_type = String, pattern = r"\S", max_length = 254)]
    pub email: Option<String>,
    /// Required.
    #[schema(required = true, value_type = String, min_length = 1)]
    pub password: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// Required (not blank).
    #[schema(required = true, value_type = String, pattern = r"\S")]
    pub refresh_token: Option<String>,
}

/// Either an admin creating a user in its own tenant (`name`, `email`, `password`, `role`), or, when
/// public signup is enabled and the call is anonymous, a new trial company (`company_name`, `name`,
/// `email`, `password`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Maria Vendas", "email": "maria@provedor.com.br", "password": "s3nh4-forte", "role": "sales"}))]
pub struct RegisterRequest {
    /// Anonymous signup only (the new trial company's name); ignored with a bearer token.
    pub company_name: Option<String>,
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

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthUser {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub role: Role,
    /// `null` for the platform super-admin.
    pub tenant_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "access_token": "eyJhbGciOiJIUzI1NiJ9…",
    "refresh_token": "rt_3q2+7w…",
    "token_type": "Bearer",
    "expires_in": 86400,
    "user": {"id": "0193a1b2-0000-7000-8000-000000000001", "name": "Maria", "email": "maria@provedor.com.br", "role": "admin", "tenant_id": "0193a1b2-0000-7000-8000-000000000002"}
}))]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub user: AuthUser,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct LogoutRequest {
    /// Optional: also revoke this refresh token's family (the session's own family is always revoked).
    pub refresh_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MeTenant {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub subscription_plan: String,
    pub status: super::common::TenantStatus,
}

/// The current user; `tenant` is `null` for the super-admin.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MeResponse {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub tenant_id: Option<Uuid>,
    pub phone: Option<String>,
    pub extension: Option<String>,
    pub tenant: Option<MeTenant>,
}
