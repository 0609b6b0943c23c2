//! Who sees which owned records (leads, deals, and the e-mails and enrolments about them): sales
//! and support users see only their own unless the tenant turns team visibility on; every other
//! role sees them all.

use jtcrm_types::dto::Role;
use uuid::Uuid;

use crate::http::extract::TenantCtx;

/// Whether the caller sees every owned record of the tenant.
pub fn sees_all(ctx: &TenantCtx) -> bool {
    !matches!(ctx.role, Role::Sales | Role::Support) || ctx.tenant.settings.team_visibility
}

/// Whether the caller sees a record owned by `owner_id`.
pub fn visible_to(ctx: &TenantCtx, owner_id: Option<Uuid>) -> bool {
    sees_all(ctx) || owner_id == Some(ctx.user_id)
}
