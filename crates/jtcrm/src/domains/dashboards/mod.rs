//! Dashboards and reports: overview, sales funnel, KPIs, team performance, time series and
//! monthly sales quotas, in the company's timezone, as JSON or CSV (docs/dashboards.md).
//!
//! The figures are SQL aggregates over what the other domains write (leads, deals and their
//! stage history, tasks, notes, proposals, automation runs), read through each domain's `stats`
//! module; this domain owns only the quotas table.

pub mod csv;
#[cfg(feature = "internals")]
pub mod model;
#[cfg(not(feature = "internals"))]
mod model;
pub mod period;
pub mod queries;
pub mod quotas;
pub mod routes;
pub mod service;
pub mod sql;
