use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A page of a keyset-paginated list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Opaque cursor of the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// Only with `?include_total=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

impl<T> Page<T> {
    /// The same page with each item converted by `f`.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
            total: self.total,
        }
    }
}

/// Platform-wide roles. `super_admin` belongs to the platform, never to a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    SuperAdmin,
    Admin,
    Manager,
    Sales,
    Support,
    Viewer,
}

/// The roles a company's user can have (every [`Role`] but `super_admin`); the schema of the
/// `role` fields of user requests.
#[derive(Debug, Clone, Copy, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantRole {
    Admin,
    Manager,
    Sales,
    Support,
    Viewer,
}

impl Role {
    pub const TENANT_ROLES: [Role; 5] = [
        Role::Admin,
        Role::Manager,
        Role::Sales,
        Role::Support,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::SuperAdmin => "super_admin",
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Sales => "sales",
            Role::Support => "support",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "super_admin" => Role::SuperAdmin,
            "admin" => Role::Admin,
            "manager" => Role::Manager,
            "sales" => Role::Sales,
            "support" => Role::Support,
            "viewer" => Role::Viewer,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Trial,
    Active,
    Suspended,
    Cancelled,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Trial => "trial",
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<TenantStatus> {
        Some(match s {
            "trial" => TenantStatus::Trial,
            "active" => TenantStatus::Active,
            "suspended" => TenantStatus::Suspended,
            "cancelled" => TenantStatus::Cancelled,
            _ => return None,
        })
    }

    /// Suspended and cancelled tenants keep their data but may not use the API.
    pub fn is_usable(self) -> bool {
        matches!(self, TenantStatus::Trial | TenantStatus::Active)
    }
}
