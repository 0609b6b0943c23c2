//! Authentication: login with throttling, rotating refresh-token families with reuse detection,
//! logout (family revocation + access-token denylist), registration and the super-admin bootstrap.

pub mod jobs;
pub mod routes;
pub mod service;

/// Registers the auth domain's jobs: the daily clean-up of expired refresh tokens.
pub fn register(r: &mut jtcrm_kernel::jobs::Registry) {
    r.periodic(jobs::SCHEDULE, jobs::cleanup);
}
