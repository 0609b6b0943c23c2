//! Request and response bodies of the public API, grouped by domain.
//! Requests use `Option` for every field so that validation can name each missing field itself.

pub mod audit;
pub mod auth;
pub mod automations;
pub mod common;
pub mod contracts;
pub mod dashboards;
pub mod email;
pub mod integrations;
pub mod jobs;
pub mod leads;
pub mod pipelines;
pub mod plans;
pub mod products;
pub mod proposals;
pub mod tasks;
pub mod telephony;
pub mod tenants;
pub mod users;

pub use common::*;
