//! jtcrm: a multi-tenant CRM for Brazilian telecom companies and ISPs.
//!
//! This crate holds the business domains (`domains/<name>/`), the migrations, the router and
//! `app.rs`, which assembles routes, job handlers, periodic schedules and per-tenant seeders. What
//! every domain builds on lives in the `jtcrm-kernel` crate below it; see `docs/architecture.md`.

pub mod app;
pub mod domains;
pub mod http;
pub mod migration;
pub mod storage;

pub use app::Application;
pub use jtcrm_kernel::config::Settings;
pub use jtcrm_kernel::state::AppState;
