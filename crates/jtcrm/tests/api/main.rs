//! Black-box API tests: the real app on a real port, a fresh database per test (SQLite by default,
//! PostgreSQL with `JTCRM_TEST_DATABASE_URL`), Redis-backed limits with `JTCRM_TEST_REDIS_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod auth;
mod automations;
mod constraints;
mod contracts;
mod dashboards;
mod email;
mod errors;
mod files;
mod hardening;
mod jobs;
mod kv;
mod lead_import;
mod leads;
mod openapi;
mod pipelines;
mod plans;
mod products;
mod proposals;
mod rls;
mod roles;
mod system;
mod tasks;
mod telephony;
mod tenants;
mod users;
