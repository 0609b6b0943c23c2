//! The kernel of jtcrm: everything every business domain builds on, and nothing that belongs to
//! one of them. It imports no domain (the compiler enforces it: domains live in the `jtcrm` crate,
//! above this one). See `docs/architecture.md` for the layers and the allowed directions.
//!
//! - [`config`], [`db`], [`kv`], [`security`], [`telemetry`]: settings, storage, key-value store,
//!   keys and hashing, logging and metrics.
//! - [`sessions`]: refresh tokens (issued by `auth`, revoked by whoever ends a user's access).
//! - [`quota`]: per-tenant counters: plan-limit reservations and named sequences.
//! - [`state`]: the shared [`state::AppState`] and write transactions ([`state::Tx`]).
//! - [`store`]: how every domain writes rows: write modes, optimistic-lock updates, soft delete and
//!   restore.
//! - [`http`]: the request context (tenant, actor with role, request meta), role guards,
//!   body/path/query extractors, pagination and cursors, idempotency keys.
//! - [`tenancy`]: the per-request tenant snapshot (status, plan limits and features, settings).
//! - [`visibility`]: who sees which owned records (own only, or the whole team).
//! - [`error`]: the problem+json error type and its code table.
//! - [`sql`]: shared SQL pieces (literal `LIKE` patterns).
//! - [`events`], [`audit`]: the domain-event outbox and the audit log, written in the caller's
//!   transaction.
//! - [`timeline`]: the lead/opportunity feed every domain appends to in its own transaction.
//! - [`jobs`]: the durable job queue, the worker and the registry domains register into.

pub mod audit;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod files;
pub mod http;
pub mod jobs;
pub mod kv;
pub mod quota;
pub mod secrets;
pub mod security;
pub mod sessions;
pub mod sql;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tenancy;
pub mod timeline;
pub mod visibility;
