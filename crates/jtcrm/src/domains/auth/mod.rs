//! Authentication: login with throttling, rotating refresh-token families with reuse detection,
//! logout (family revocation + access-token denylist), registration and the super-admin bootstrap.

pub mod model;
pub mod routes;
pub mod service;
