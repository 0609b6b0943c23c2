//! Business domains. Each owns its tables (`model`), rules (`service`) and HTTP handlers (`routes`).
//! Services take the tenant context first and filter every query by it.

pub mod audit;
pub mod auth;
pub mod automations;
pub mod contracts;
pub mod dashboards;
pub mod email;
pub mod files;
pub mod integrations;
pub mod jobs;
pub mod leads;
pub mod pipelines;
pub mod plans;
pub mod products;
pub mod proposals;
pub mod system;
pub mod tasks;
pub mod telephony;
pub mod tenants;
pub mod timeline;
pub mod users;

pub use jtcrm_kernel::store::optimistic_update;
