//! jtcrm: a multi-tenant CRM for Brazilian telecom companies and ISPs.
//! This crate is the whole service; the `jtcrm` binary only parses arguments and calls it.

pub mod app;
pub mod bench;
pub mod bench_sales;
pub mod config;
pub mod db;
pub mod domains;
pub mod email;
pub mod error;
pub mod events;
pub mod http;
pub mod jobs;
pub mod kv;
pub mod migration;
pub mod security;
pub mod state;
pub mod telemetry;

pub use app::Application;
pub use config::Settings;
pub use state::AppState;
