//! Role guards: the roles a route admits are part of its handler's signature.
//!
//! A handler declares `ctx: Authorized<Managers>` instead of `ctx: TenantCtx`; the extractor runs
//! the [`TenantCtx`] checks and then answers `403 forbidden` when the caller's role is not in the
//! set, before the handler body runs. A service whose operation needs a role takes
//! `&Authorized<R>` too, so every caller must hold the proof: the extractor is one way to get it,
//! [`TenantCtx::grant`] (an explicit check, for paths without a request such as automations) the
//! other. Visibility and ownership rules that depend on the role ("sales see their own leads")
//! are not permissions of the route; they stay in the bodies, through helpers such as
//! [`TenantCtx::can_manage_all`].

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jtcrm_types::dto::Role;

use super::extract::TenantCtx;
use crate::error::AppError;
use crate::state::AppState;

/// A set of tenant roles, named by a marker type.
pub trait RoleSet: Send + Sync + 'static {
    const ROLES: &'static [Role];
}

/// `admin`.
pub struct Admins;
/// `admin`, `manager`: tenant configuration (pipelines, catalog, scoring, automations), the team.
pub struct Managers;
/// `admin`, `manager`, `sales`: deals, imports, merges.
pub struct Sellers;
/// Every tenant role but `viewer`: leads, tasks, notes, cadence enrolments.
pub struct Staff;

impl RoleSet for Admins {
    const ROLES: &'static [Role] = &[Role::Admin];
}
impl RoleSet for Managers {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Manager];
}
impl RoleSet for Sellers {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Manager, Role::Sales];
}
impl RoleSet for Staff {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Manager, Role::Sales, Role::Support];
}

/// A [`TenantCtx`] whose role is in `R`. Only the extractor and [`TenantCtx::grant`] build one.
pub struct Authorized<R: RoleSet> {
    ctx: TenantCtx,
    _roles: PhantomData<fn() -> R>,
}

impl<R: RoleSet> Authorized<R> {
    fn check(ctx: TenantCtx) -> Result<Self, AppError> {
        if R::ROLES.contains(&ctx.role) {
            Ok(Authorized {
                ctx,
                _roles: PhantomData,
            })
        } else {
            Err(AppError::forbidden())
        }
    }

    pub fn into_inner(self) -> TenantCtx {
        self.ctx
    }
}

impl<R: RoleSet> Deref for Authorized<R> {
    type Target = TenantCtx;

    fn deref(&self) -> &TenantCtx {
        &self.ctx
    }
}

impl<R: RoleSet> Clone for Authorized<R> {
    fn clone(&self) -> Self {
        Authorized {
            ctx: self.ctx.clone(),
            _roles: PhantomData,
        }
    }
}

impl<R: RoleSet> fmt::Debug for Authorized<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Authorized")
            .field(&R::ROLES)
            .field(&self.ctx)
            .finish()
    }
}

impl<R: RoleSet> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        Authorized::check(TenantCtx::from_request_parts(parts, state).await?)
    }
}

impl TenantCtx {
    /// The proof that this context's role is in `R`, or `403 forbidden`. For callers that did not
    /// come through an [`Authorized`] extractor (automations act as a tenant admin).
    pub fn grant<R: RoleSet>(&self) -> Result<Authorized<R>, AppError> {
        Authorized::check(self.clone())
    }

    /// Whether the role is in `R` (for visibility and ownership rules, not route permissions).
    pub fn is_in<R: RoleSet>(&self) -> bool {
        R::ROLES.contains(&self.role)
    }

    /// Admins and managers act on every record of the tenant; other roles on their own.
    pub fn can_manage_all(&self) -> bool {
        self.is_in::<Managers>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_sets_nest_and_leave_out_viewer_and_super_admin() {
        let sets = [Admins::ROLES, Managers::ROLES, Sellers::ROLES, Staff::ROLES];
        for pair in sets.windows(2) {
            assert!(pair[0].iter().all(|r| pair[1].contains(r)));
            assert!(pair[0].len() < pair[1].len());
        }
        for set in sets {
            assert!(!set.contains(&Role::Viewer) && !set.contains(&Role::SuperAdmin));
        }
        assert_eq!(Staff::ROLES.len(), Role::TENANT_ROLES.len() - 1);
    }
}
